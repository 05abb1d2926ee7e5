//! Label and field selectors.

use serde_json::Value;

use crate::status::ApiError;

#[derive(Debug, Clone, PartialEq)]
enum Req {
    Eq(String, String),
    Ne(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed label selector.
#[derive(Debug, Clone, Default)]
pub struct LabelSelector {
    reqs: Vec<Req>,
}

fn valid_key(k: &str) -> bool {
    let re_ok = |s: &str, max: usize| {
        !s.is_empty()
            && s.len() <= max
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
            && s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
            && s.chars().last().is_some_and(|c| c.is_ascii_alphanumeric())
    };
    match k.split_once('/') {
        Some((prefix, name)) => re_ok(prefix, 253) && !prefix.contains('_') && re_ok(name, 63),
        None => re_ok(k, 63),
    }
}

fn valid_value(v: &str) -> bool {
    v.is_empty()
        || (v.len() <= 63
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
            && v.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
            && v.chars().last().is_some_and(|c| c.is_ascii_alphanumeric()))
}

/// Split on commas that are not inside parentheses.
fn split_top(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut cur = String::new();
    for c in s.chars() {
        match c {
            '(' => {
                depth += 1;
                cur.push(c)
            }
            ')' => {
                depth -= 1;
                cur.push(c)
            }
            ',' if depth == 0 => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out
}

fn bad(sel: &str, why: &str) -> ApiError {
    ApiError::bad_request(format!(
        "unable to parse requirement: {why} (selector {sel:?})"
    ))
}

impl LabelSelector {
    pub fn parse(s: &str) -> Result<LabelSelector, ApiError> {
        let mut reqs = Vec::new();
        if s.trim().is_empty() {
            return Ok(LabelSelector { reqs });
        }
        for part in split_top(s) {
            let p = part.trim();
            if p.is_empty() {
                return Err(bad(s, "found '', expected: identifier"));
            }
            let check_key = |k: &str| -> Result<String, ApiError> {
                let k = k.trim();
                if valid_key(k) {
                    Ok(k.to_string())
                } else {
                    Err(bad(s, &format!("invalid label key {k:?}")))
                }
            };
            let check_val = |v: &str| -> Result<String, ApiError> {
                let v = v.trim();
                if valid_value(v) {
                    Ok(v.to_string())
                } else {
                    Err(bad(s, &format!("invalid label value: {v:?}")))
                }
            };
            if let Some(k) = p.strip_prefix('!') {
                reqs.push(Req::NotExists(check_key(k)?));
            } else if let Some((k, v)) = p.split_once("!=") {
                reqs.push(Req::Ne(check_key(k)?, check_val(v)?));
            } else if let Some((k, v)) = p.split_once("==") {
                reqs.push(Req::Eq(check_key(k)?, check_val(v)?));
            } else if let Some((k, v)) = p.split_once('=') {
                reqs.push(Req::Eq(check_key(k)?, check_val(v)?));
            } else if let Some(idx) = find_word(p, " notin ") {
                let (k, rest) = p.split_at(idx);
                let vals = parse_set(s, &rest[" notin ".len()..])?;
                let vals = vals
                    .iter()
                    .map(|v| check_val(v))
                    .collect::<Result<_, _>>()?;
                reqs.push(Req::NotIn(check_key(k)?, vals));
            } else if let Some(idx) = find_word(p, " in ") {
                let (k, rest) = p.split_at(idx);
                let vals = parse_set(s, &rest[" in ".len()..])?;
                let vals = vals
                    .iter()
                    .map(|v| check_val(v))
                    .collect::<Result<_, _>>()?;
                reqs.push(Req::In(check_key(k)?, vals));
            } else if p.contains(['(', ')', ' ', '<', '>']) {
                return Err(bad(s, &format!("unexpected token in {p:?}")));
            } else {
                reqs.push(Req::Exists(check_key(p)?));
            }
        }
        Ok(LabelSelector { reqs })
    }

    #[allow(dead_code)]
    pub fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }

    pub fn matches(&self, obj: &Value) -> bool {
        if self.reqs.is_empty() {
            return true;
        }
        let labels = obj.pointer("/metadata/labels").and_then(Value::as_object);
        let get = |k: &str| {
            labels
                .and_then(|m| m.get(k))
                .map(|v| v.as_str().unwrap_or(""))
        };
        self.reqs.iter().all(|r| match r {
            Req::Eq(k, v) => get(k) == Some(v.as_str()),
            Req::Ne(k, v) => get(k) != Some(v.as_str()),
            Req::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Req::NotIn(k, vs) => get(k).is_none_or(|x| !vs.iter().any(|v| v == x)),
            Req::Exists(k) => get(k).is_some(),
            Req::NotExists(k) => get(k).is_none(),
        })
    }

    /// From a metav1.LabelSelector object (matchLabels + matchExpressions).
    pub fn from_object(sel: &Value) -> LabelSelector {
        let mut reqs = Vec::new();
        if let Some(m) = sel.get("matchLabels").and_then(Value::as_object) {
            for (k, v) in m {
                reqs.push(Req::Eq(k.clone(), v.as_str().unwrap_or("").to_string()));
            }
        }
        if let Some(exprs) = sel.get("matchExpressions").and_then(Value::as_array) {
            for e in exprs {
                let key = e
                    .get("key")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                let vals: Vec<String> = e
                    .get("values")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                match e.get("operator").and_then(Value::as_str) {
                    Some("In") => reqs.push(Req::In(key, vals)),
                    Some("NotIn") => reqs.push(Req::NotIn(key, vals)),
                    Some("Exists") => reqs.push(Req::Exists(key)),
                    Some("DoesNotExist") => reqs.push(Req::NotExists(key)),
                    _ => {}
                }
            }
        }
        LabelSelector { reqs }
    }

    /// String form (for scale subresource status.selector).
    pub fn to_string_form(&self) -> String {
        self.reqs
            .iter()
            .map(|r| match r {
                Req::Eq(k, v) => format!("{k}={v}"),
                Req::Ne(k, v) => format!("{k}!={v}"),
                Req::In(k, vs) => format!("{k} in ({})", vs.join(",")),
                Req::NotIn(k, vs) => format!("{k} notin ({})", vs.join(",")),
                Req::Exists(k) => k.clone(),
                Req::NotExists(k) => format!("!{k}"),
            })
            .collect::<Vec<_>>()
            .join(",")
    }
}

fn find_word(p: &str, w: &str) -> Option<usize> {
    p.find(w)
}

fn parse_set(sel: &str, s: &str) -> Result<Vec<String>, ApiError> {
    let s = s.trim();
    let inner = s
        .strip_prefix('(')
        .and_then(|x| x.strip_suffix(')'))
        .ok_or_else(|| bad(sel, "found '', expected: '('"))?;
    Ok(inner
        .split(',')
        .map(|x| x.trim().to_string())
        .filter(|x| !x.is_empty())
        .collect())
}

/// A parsed field selector (metadata.name, metadata.namespace and a few kind-specific fields).
#[derive(Debug, Clone, Default)]
pub struct FieldSelector {
    reqs: Vec<(String, bool, String)>,
}

const FIELDS_ALWAYS: &[&str] = &["metadata.name", "metadata.namespace"];
const FIELDS_EXTRA: &[(&str, &[&str])] = &[
    (
        "Pod",
        &[
            "spec.nodeName",
            "status.phase",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "status.podIP",
        ],
    ),
    (
        "Event",
        &[
            "involvedObject.kind",
            "involvedObject.name",
            "involvedObject.namespace",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "source",
            "type",
            "reportingComponent",
        ],
    ),
    ("Secret", &["type"]),
    ("Namespace", &["status.phase"]),
    ("Node", &["spec.unschedulable"]),
    ("ReplicaSet", &["status.replicas"]),
    ("Job", &["status.successful"]),
];

impl FieldSelector {
    pub fn parse(s: &str, kind: &str) -> Result<FieldSelector, ApiError> {
        let mut reqs = Vec::new();
        if s.trim().is_empty() {
            return Ok(FieldSelector { reqs });
        }
        for part in s.split(',') {
            let p = part.trim();
            let (k, eq, v) = if let Some((k, v)) = p.split_once("!=") {
                (k, false, v)
            } else if let Some((k, v)) = p.split_once("==") {
                (k, true, v)
            } else if let Some((k, v)) = p.split_once('=') {
                (k, true, v)
            } else {
                return Err(ApiError::bad_request(format!(
                    "invalid selector: '{s}'; can't understand '{p}'"
                )));
            };
            let k = k.trim();
            let allowed = FIELDS_ALWAYS.contains(&k)
                || FIELDS_EXTRA
                    .iter()
                    .any(|(kk, fs)| *kk == kind && fs.contains(&k));
            if !allowed {
                return Err(ApiError::bad_request(format!(
                    "field label not supported: {k}"
                )));
            }
            reqs.push((k.to_string(), eq, v.trim().to_string()));
        }
        Ok(FieldSelector { reqs })
    }

    /// The name if the selector pins metadata.name.
    #[allow(dead_code)]
    pub fn pinned_name(&self) -> Option<&str> {
        self.reqs
            .iter()
            .find(|(k, eq, _)| k == "metadata.name" && *eq)
            .map(|(_, _, v)| v.as_str())
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.reqs.iter().all(|(k, eq, v)| {
            let mut cur = obj;
            let mut found = true;
            for seg in k.split('.') {
                match cur.get(seg) {
                    Some(x) => cur = x,
                    None => {
                        found = false;
                        break;
                    }
                }
            }
            let actual = if !found {
                String::new()
            } else {
                match cur {
                    Value::String(s) => s.clone(),
                    Value::Null => String::new(),
                    other => other.to_string(),
                }
            };
            (actual == *v) == *eq
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn label_selectors() {
        let o = json!({"metadata": {"labels": {"app": "web", "tier": "fe"}}});
        for (s, want) in [
            ("app=web", true),
            ("app==web", true),
            ("app!=web", false),
            ("app in (web,db)", true),
            ("app notin (web,db)", false),
            ("tier", true),
            ("!tier", false),
            ("!missing", true),
            ("app=web,tier in (fe)", true),
            ("missing notin (x)", true),
        ] {
            assert_eq!(LabelSelector::parse(s).expect(s).matches(&o), want, "{s}");
        }
        assert!(LabelSelector::parse("app=(").is_err());
        assert!(LabelSelector::parse("a b c").is_err());
        assert!(LabelSelector::parse("app in web").is_err());
    }

    #[test]
    fn field_selectors() {
        let o = json!({"metadata": {"name": "a", "namespace": "ns"}});
        assert!(
            FieldSelector::parse("metadata.name=a", "Pod")
                .expect("ok")
                .matches(&o)
        );
        assert!(
            !FieldSelector::parse("metadata.name!=a", "Pod")
                .expect("ok")
                .matches(&o)
        );
        assert!(FieldSelector::parse("spec.foo=a", "ConfigMap").is_err());
    }
}
