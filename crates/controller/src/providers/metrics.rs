//! The `metrics` provider: `metrics.#PromCheck` (`promCheck`), a Prometheus instant query
//! compared with a condition (`>=0.95`). It passes once the condition has held for `duration`
//! and fails once it has failed for `failDuration`; in between the step waits, saying how long
//! it has held or failed. When the condition started to hold or fail is kept in the workflow
//! context (key `$promcheck/<stepID>`), so a controller restart does not restart the clock.

use super::{Answer, Problem, invalid};
use crate::steps::Runner;
use http_body_util::{BodyExt, Full};
use serde_json::{Map, Value, json};
use std::time::Duration;
use workflow::task::Outcome;

const QUERY_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_ANSWER: usize = 4 * 1024 * 1024;

pub(crate) async fn call(
    runner: &Runner<'_>,
    session: &str,
    action: &str,
    params: &Value,
) -> Answer {
    if action != "promCheck" {
        return invalid(format!("metrics has no operation {action:?} (promCheck)"));
    }
    let s = |k: &str| params.get(k).and_then(Value::as_str).unwrap_or("");
    let (endpoint, query, condition) = (s("metricEndpoint"), s("query"), s("condition"));
    for (k, v) in [
        ("metricEndpoint", endpoint),
        ("query", query),
        ("condition", condition),
    ] {
        if v.is_empty() {
            return invalid(format!("metrics.promCheck: {k} is missing or empty"));
        }
    }
    let duration = parse(params, "duration", "5m")?;
    let fail_duration = parse(params, "failDuration", "2m")?;
    let step_id = match s("stepID") {
        "" => session.to_string(),
        id => id.to_string(),
    };
    let value = query_value(endpoint, query).await?;
    let holds = compare(&value, condition)?;

    // When it started to hold (or fail), from the workflow context.
    let key = format!("$promcheck/{step_id}");
    let vars = crate::cuestep::load_variables(runner.fleet.local().client(), runner.app)
        .await
        .map_err(|e| Problem::Retry(e.to_string()))?;
    let now = chrono::Utc::now().timestamp();
    let state = vars.get(&key).cloned().unwrap_or(Value::Null);
    let since = |k: &str| state.get(k).and_then(Value::as_i64);
    let (field, other, window) = if holds {
        ("success", "fail", duration)
    } else {
        ("fail", "success", fail_duration)
    };
    let started = since(field).filter(|_| since(other).is_none());
    let mut result = json!({"result": false, "failed": false});
    let message = match started {
        None => {
            // First time this way round: the clock starts now.
            store(runner, vars, &key, json!({ field: now })).await?;
            if holds {
                format!(
                    "the condition {condition} holds (the query gave {value}); it must hold for {}",
                    humanize(duration)
                )
            } else {
                format!(
                    "the condition {condition} does not hold (the query gave {value}); the check fails if it does not for {}",
                    humanize(fail_duration)
                )
            }
        }
        Some(t) => {
            let held = Duration::from_secs(u64::try_from(now - t).unwrap_or(0));
            if held >= window {
                if holds {
                    result["result"] = json!(true);
                    format!(
                        "the condition {condition} held for {} (the query gave {value})",
                        humanize(held)
                    )
                } else {
                    result["failed"] = json!(true);
                    format!(
                        "the condition {condition} did not hold for {} (the query gave {value}); the check failed",
                        humanize(held)
                    )
                }
            } else if holds {
                format!(
                    "the condition {condition} has held for {} of {} (the query gave {value})",
                    humanize(held),
                    humanize(window)
                )
            } else {
                format!(
                    "the condition {condition} has not held for {} (the query gave {value}); the check fails at {}",
                    humanize(held),
                    humanize(window)
                )
            }
        }
    };
    result["message"] = json!(message);
    Ok(Outcome::Returns(result))
}

fn parse(params: &Value, key: &str, default: &str) -> Result<Duration, Problem> {
    let text = params
        .get(key)
        .and_then(Value::as_str)
        .filter(|d| !d.is_empty())
        .unwrap_or(default);
    workflow::parse_duration(text).ok_or_else(|| {
        Problem::Invalid(format!(
            "metrics.promCheck: {key} {text:?} is not a duration (like 30s, 5m, 1h)"
        ))
    })
}

fn humanize(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, (s % 3600) / 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m{s}s"),
        (h, m, _) => format!("{h}h{m}m"),
    }
}

async fn store(
    runner: &Runner<'_>,
    loaded: Map<String, Value>,
    key: &str,
    v: Value,
) -> Result<(), Problem> {
    // The context as stored, plus what this round already has, plus this check's clock.
    {
        let mut vars = runner.variables.lock().unwrap_or_else(|p| p.into_inner());
        for (k, val) in loaded {
            vars.entry(k).or_insert(val);
        }
    }
    let mut m = Map::new();
    m.insert(key.to_string(), v);
    runner
        .export(m)
        .await
        .map_err(|e| Problem::Retry(format!("storing the metric check's clock: {e}")))
}

/// Whether `value condition` is true, e.g. `0.97 >=0.95`, evaluated as CUE as KubeVela does.
pub(crate) fn compare(value: &str, condition: &str) -> Result<bool, Problem> {
    let src = format!("result: {value} {condition}\n");
    let bad = |e: String| {
        Problem::Invalid(format!(
            "metrics.promCheck: cannot compare the query's value {value} with condition {condition:?}: {e}"
        ))
    };
    let program = cue::Runtime::new()
        .compile("condition", &src)
        .map_err(|e| bad(e.to_string()))?;
    let v = program.eval().map_err(|e| bad(e.to_string()))?;
    v.lookup("result")
        .and_then(|r| r.to_json().ok())
        .and_then(|r| r.as_bool())
        .ok_or_else(|| bad("the comparison is not a boolean".into()))
}

/// The one value an instant query gives (a scalar, or a vector of exactly one sample).
async fn query_value(endpoint: &str, query: &str) -> Result<String, Problem> {
    let url = format!(
        "{}/api/v1/query?query={}",
        endpoint.trim_end_matches('/'),
        encode(query)
    );
    let req = http::Request::builder()
        .method("GET")
        .uri(&url)
        .header(http::header::USER_AGENT, "sailplane")
        .body(Full::new(bytes::Bytes::new()))
        .map_err(|e| {
            Problem::Invalid(format!("metrics.promCheck: bad endpoint {endpoint:?}: {e}"))
        })?;
    let client = super::http::http_client()?;
    let exchange = async {
        let resp = client.request(req).await.map_err(|e| {
            Problem::Retry(format!(
                "prometheus at {endpoint}: {}",
                super::http::root_cause(&e)
            ))
        })?;
        let status = resp.status();
        let body = http_body_util::Limited::new(resp.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map_err(|e| {
                Problem::Retry(format!("prometheus at {endpoint}: reading the answer: {e}"))
            })?
            .to_bytes();
        Ok::<_, Problem>((status, body))
    };
    let (status, body) = tokio::time::timeout(QUERY_TIMEOUT, exchange)
        .await
        .map_err(|_| {
            Problem::Retry(format!(
                "prometheus at {endpoint}: no answer within {}s",
                QUERY_TIMEOUT.as_secs()
            ))
        })??;
    let answer: Value = serde_json::from_slice(&body).map_err(|_| {
        Problem::Retry(format!(
            "prometheus at {endpoint} answered {status} with no JSON: {}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        ))
    })?;
    if answer.get("status").and_then(Value::as_str) != Some("success") {
        let error = answer.get("error").and_then(Value::as_str).unwrap_or("");
        return Err(match answer.get("errorType").and_then(Value::as_str) {
            // The query itself is wrong: asking again gives the same answer.
            Some("bad_data") => {
                Problem::Invalid(format!("the query {query:?} is invalid: {error}"))
            }
            _ => Problem::Retry(format!(
                "prometheus at {endpoint} answered {status}: {error}"
            )),
        });
    }
    let data = answer.get("data").unwrap_or(&Value::Null);
    let sample = |v: &Value| {
        v.get(1)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| {
                Problem::Retry(format!(
                    "prometheus at {endpoint}: a sample without a value"
                ))
            })
    };
    match data.get("resultType").and_then(Value::as_str) {
        Some("scalar") => sample(data.get("result").unwrap_or(&Value::Null)),
        Some("vector") => {
            let result = data
                .get("result")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if result.len() != 1 {
                return Err(Problem::Retry(format!(
                    "the query {query:?} gave {} results; it must give exactly one (aggregate it, e.g. with sum)",
                    result.len()
                )));
            }
            sample(result[0].get("value").unwrap_or(&Value::Null))
        }
        other => Err(Problem::Invalid(format!(
            "the query {query:?} gave a {} result; it must give a scalar or a one-sample vector",
            other.unwrap_or("missing")
        ))),
    }
}

/// Percent-encoding of a query parameter (RFC 3986 unreserved characters stay).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_compare_as_cue() {
        assert!(compare("0.97", ">=0.95").unwrap());
        assert!(!compare("0.90", ">=0.95").unwrap());
        assert!(compare("3", "== 3").unwrap());
        assert!(matches!(compare("NaN", ">1"), Err(Problem::Invalid(_))));
        assert!(matches!(compare("1", "likes 2"), Err(Problem::Invalid(_))));
    }

    #[test]
    fn queries_are_percent_encoded() {
        assert_eq!(
            encode("sum(rate(x{a=\"b\"}[5m]))"),
            "sum%28rate%28x%7Ba%3D%22b%22%7D%5B5m%5D%29%29"
        );
    }
}
