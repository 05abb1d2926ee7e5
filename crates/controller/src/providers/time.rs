//! The `time` provider: `time.#DateToTimestamp` (`timestamp`), `time.#TimestampToDate`
//! (`date`) and `time.#Now` (`now`, the time the step runs at). Layouts are Go's, as KubeVela takes them (`2006-01-02T15:04:05Z07:00`, RFC 3339
//! when empty); dates are written in UTC.

use super::{Answer, Problem};
use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use serde_json::{Value, json};
use workflow::task::Outcome;

pub(crate) fn call(action: &str, params: &Value) -> Answer {
    let layout = params
        .get("layout")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match action {
        "timestamp" => {
            let date = params
                .get("date")
                .and_then(Value::as_str)
                .filter(|d| !d.is_empty())
                .ok_or_else(|| {
                    Problem::Invalid("time.timestamp: date is missing or empty".into())
                })?;
            let ts = to_timestamp(date, layout).map_err(Problem::Invalid)?;
            Ok(Outcome::Returns(json!({ "timestamp": ts })))
        }
        "date" => {
            let ts = params
                .get("timestamp")
                .and_then(Value::as_i64)
                .ok_or_else(|| {
                    Problem::Invalid(
                        "time.date: timestamp must be a whole number of seconds".into(),
                    )
                })?;
            let date = to_date(ts, layout).map_err(Problem::Invalid)?;
            Ok(Outcome::Returns(json!({ "date": date })))
        }
        "now" => {
            let ts = Utc::now().timestamp();
            let date = to_date(ts, layout).map_err(Problem::Invalid)?;
            Ok(Outcome::Returns(json!({ "timestamp": ts, "date": date })))
        }
        other => Err(Problem::Invalid(format!(
            "time has no operation {other:?} (timestamp, date, now)"
        ))),
    }
}

/// Seconds since the epoch of `date` written in `layout` (RFC 3339 when empty). A layout
/// without a zone reads the date as UTC, as Go does.
pub(crate) fn to_timestamp(date: &str, layout: &str) -> Result<i64, String> {
    if layout.is_empty() {
        return DateTime::parse_from_rfc3339(date)
            .map(|d| d.timestamp())
            .map_err(|e| format!("time: {date:?} is not an RFC 3339 date: {e}"));
    }
    let (fmt, zone) = chrono_format(layout)?;
    let bad =
        |e: chrono::ParseError| format!("time: {date:?} does not match layout {layout:?}: {e}");
    if zone {
        // Go writes UTC as `Z` where the layout says `Z07:00`.
        let date = match date.strip_suffix('Z') {
            Some(rest) if layout.contains("Z07") => format!("{rest}+00:00"),
            _ => date.to_string(),
        };
        return DateTime::parse_from_str(&date, &fmt)
            .map(|d| d.timestamp())
            .map_err(bad);
    }
    match NaiveDateTime::parse_from_str(date, &fmt) {
        Ok(d) => Ok(Utc.from_utc_datetime(&d).timestamp()),
        Err(e) => match NaiveDate::parse_from_str(date, &fmt) {
            Ok(d) => Ok(Utc
                .from_utc_datetime(&d.and_hms_opt(0, 0, 0).unwrap_or_default())
                .timestamp()),
            Err(_) => Err(bad(e)),
        },
    }
}

/// `ts` (seconds since the epoch) written in `layout` (RFC 3339 when empty), in UTC.
pub(crate) fn to_date(ts: i64, layout: &str) -> Result<String, String> {
    let t = Utc
        .timestamp_opt(ts, 0)
        .single()
        .ok_or_else(|| format!("time: {ts} is out of range"))?;
    if layout.is_empty() {
        return Ok(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    }
    // In UTC, Go writes `Z` for the `Z07:00` family.
    let layout = layout
        .replace("Z07:00", "Z")
        .replace("Z0700", "Z")
        .replace("Z07", "Z");
    let (fmt, _) = chrono_format(&layout)?;
    Ok(t.format(&fmt).to_string())
}

/// A Go layout as a chrono format, and whether it has a zone offset.
fn chrono_format(layout: &str) -> Result<(String, bool), String> {
    // Longest first, so `2006` is not read as `2` then `006`.
    const TOKENS: &[(&str, &str, bool)] = &[
        ("January", "%B", false),
        ("Monday", "%A", false),
        ("Z07:00", "%:z", true),
        ("-07:00", "%:z", true),
        ("Z0700", "%z", true),
        ("-0700", "%z", true),
        ("2006", "%Y", false),
        ("Jan", "%b", false),
        ("Mon", "%a", false),
        ("MST", "%Z", false),
        ("002", "%j", false),
        (".000000000", "%.9f", false),
        (".000000", "%.6f", false),
        (".000", "%.3f", false),
        (".999999999", "%.f", false),
        (".999999", "%.f", false),
        (".999", "%.f", false),
        ("Z07", "%#z", true),
        ("-07", "%#z", true),
        ("01", "%m", false),
        ("02", "%d", false),
        ("_2", "%e", false),
        ("03", "%I", false),
        ("04", "%M", false),
        ("05", "%S", false),
        ("06", "%y", false),
        ("15", "%H", false),
        ("PM", "%p", false),
        ("pm", "%P", false),
        ("1", "%-m", false),
        ("2", "%-d", false),
        ("3", "%-I", false),
        ("4", "%-M", false),
        ("5", "%-S", false),
    ];
    let mut out = String::new();
    let mut zone = false;
    let mut matched = false;
    let mut rest = layout;
    'outer: while !rest.is_empty() {
        for (go, ch, z) in TOKENS {
            if let Some(r) = rest.strip_prefix(go) {
                out.push_str(ch);
                zone |= z;
                matched = true;
                rest = r;
                continue 'outer;
            }
        }
        let mut chars = rest.chars();
        if let Some(c) = chars.next() {
            if c == '%' {
                out.push_str("%%");
            } else {
                out.push(c);
            }
        }
        rest = chars.as_str();
    }
    if !matched {
        return Err(format!(
            "time: layout {layout:?} has no Go date fields (write it like 2006-01-02 15:04:05)"
        ));
    }
    Ok((out, zone))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn now_is_the_clock_in_both_forms() {
        let before = Utc::now().timestamp();
        let Ok(Outcome::Returns(v)) = call("now", &json!({})) else {
            panic!("now did not return");
        };
        let after = Utc::now().timestamp();
        let ts = v["timestamp"].as_i64().expect("timestamp");
        assert!(before <= ts && ts <= after, "{v}");
        assert_eq!(v["date"], to_date(ts, "").unwrap(), "{v}");
    }

    #[test]
    fn rfc3339_both_ways() {
        assert_eq!(
            to_timestamp("2021-11-07T01:47:51Z", "").unwrap(),
            1636249671
        );
        assert_eq!(
            to_timestamp("2021-11-07T09:47:51+08:00", "").unwrap(),
            1636249671
        );
        assert_eq!(to_date(1636249671, "").unwrap(), "2021-11-07T01:47:51Z");
    }

    #[test]
    fn go_layouts() {
        assert_eq!(
            to_timestamp("2021-11-07 01:47:51", "2006-01-02 15:04:05").unwrap(),
            1636249671
        );
        assert_eq!(
            to_timestamp("2021-11-07", "2006-01-02").unwrap(),
            1636243200
        );
        assert_eq!(
            to_timestamp("2021-11-07T01:47:51Z", "2006-01-02T15:04:05Z07:00").unwrap(),
            1636249671
        );
        assert_eq!(
            to_date(1636249671, "Jan 2, 2006 at 3:04pm (MST)").unwrap(),
            "Nov 7, 2021 at 1:47am (UTC)"
        );
        assert_eq!(to_date(1636249671, "2006-01-02").unwrap(), "2021-11-07");
        assert_eq!(
            to_date(1636249671, time_layout_rfc3339()).unwrap(),
            "2021-11-07T01:47:51Z"
        );
    }

    fn time_layout_rfc3339() -> &'static str {
        "2006-01-02T15:04:05Z07:00"
    }

    #[test]
    fn bad_input_says_what() {
        let e = to_timestamp("yesterday", "").unwrap_err();
        assert!(e.contains("\"yesterday\" is not an RFC 3339 date"), "{e}");
        let e = to_timestamp("07/11/2021", "2006-01-02").unwrap_err();
        assert!(e.contains("does not match layout"), "{e}");
        match call("date", &json!({"timestamp": "soon"})) {
            Err(Problem::Invalid(e)) => assert!(e.contains("whole number"), "{e}"),
            other => panic!("{other:?}"),
        }
    }
}
