//! A small YAML emitter (matching the style of CUE's `yaml.Marshal`: 2-space indentation,
//! block style, quoting only where needed) and a parser adapter for `yaml.Unmarshal`.

use serde_json::Value as J;

pub fn to_yaml(v: &J) -> String {
    let mut out = String::new();
    match v {
        J::Object(m) if !m.is_empty() => emit_map(m, 0, &mut out),
        J::Array(a) if !a.is_empty() => emit_seq(a, 0, &mut out),
        other => {
            out.push_str(&scalar(other, 0));
            out.push('\n');
        }
    }
    out
}

fn pad(n: usize, out: &mut String) {
    for _ in 0..n {
        out.push(' ');
    }
}

fn emit_map(m: &serde_json::Map<String, J>, ind: usize, out: &mut String) {
    for (k, v) in m {
        pad(ind, out);
        out.push_str(&quote_if_needed(k));
        out.push(':');
        emit_value_after_key(v, ind, out);
    }
}

fn emit_value_after_key(v: &J, ind: usize, out: &mut String) {
    match v {
        J::Object(m) if !m.is_empty() => {
            out.push('\n');
            emit_map(m, ind + 2, out);
        }
        J::Array(a) if !a.is_empty() => {
            out.push('\n');
            emit_seq(a, ind + 2, out);
        }
        other => {
            out.push(' ');
            out.push_str(&scalar(other, ind + 2));
            out.push('\n');
        }
    }
}

fn emit_seq(a: &[J], ind: usize, out: &mut String) {
    for v in a {
        pad(ind, out);
        out.push('-');
        match v {
            J::Object(m) if !m.is_empty() => {
                // first key on the same line
                let mut first = true;
                for (k, x) in m {
                    if first {
                        out.push(' ');
                        first = false;
                    } else {
                        pad(ind + 2, out);
                    }
                    out.push_str(&quote_if_needed(k));
                    out.push(':');
                    emit_value_after_key(x, ind + 2, out);
                }
            }
            J::Array(x) if !x.is_empty() => {
                out.push('\n');
                emit_seq(x, ind + 2, out);
            }
            other => {
                out.push(' ');
                out.push_str(&scalar(other, ind + 2));
                out.push('\n');
            }
        }
    }
}

fn scalar(v: &J, ind: usize) -> String {
    match v {
        J::Null => "null".into(),
        J::Bool(b) => b.to_string(),
        J::Number(n) => n.to_string(),
        J::String(s) => {
            if s.contains('\n')
                && !s.trim_end_matches('\n').is_empty()
                && !s.chars().any(|c| c != '\n' && c.is_control() && c != '\t')
            {
                let trimmed = s.ends_with('\n');
                let chomp = if !trimmed {
                    "|-"
                } else if s.ends_with("\n\n") {
                    "|+"
                } else {
                    "|"
                };
                let mut out = String::from(chomp);
                if s.starts_with(' ') {
                    out = format!("|2{}", &chomp[1..]);
                }
                let body = if trimmed {
                    &s[..s.len() - 1]
                } else {
                    s.as_str()
                };
                for line in body.split('\n') {
                    out.push('\n');
                    if !line.is_empty() {
                        for _ in 0..ind {
                            out.push(' ');
                        }
                        out.push_str(line);
                    }
                }
                out
            } else {
                quote_if_needed(s)
            }
        }
        J::Object(_) => "{}".into(),
        J::Array(_) => "[]".into(),
    }
}

fn looks_special(s: &str) -> bool {
    let l = s.to_ascii_lowercase();
    if matches!(
        l.as_str(),
        "true"
            | "false"
            | "yes"
            | "no"
            | "on"
            | "off"
            | "y"
            | "n"
            | "null"
            | "~"
            | ".nan"
            | ".inf"
            | "-.inf"
            | "+.inf"
    ) {
        return true;
    }
    let t = s.trim_start_matches(['+', '-']);
    if !t.is_empty()
        && (t.parse::<f64>().is_ok()
            || t.starts_with("0x")
            || t.starts_with("0o")
            || t.starts_with("0b"))
        && t.chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit() || c == '.')
    {
        return true;
    }
    false
}

pub fn quote_if_needed(s: &str) -> String {
    let needs = s.is_empty()
        || looks_special(s)
        || s.starts_with([
            ' ', '\t', '-', '?', ':', ',', '[', ']', '{', '}', '#', '&', '*', '!', '|', '>', '\'',
            '"', '%', '@', '`',
        ]) && !(s.starts_with('-')
            && s.len() > 1
            && !s.starts_with("- ")
            && !s.starts_with("--- ")
            && s != "---")
        || s.ends_with([' ', '\t', ':'])
        || s.contains(": ")
        || s.contains(" #")
        || s.chars().any(|c| c.is_control() || c == '\u{feff}');
    if !needs {
        return s.to_string();
    }
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

pub fn from_yaml(s: &str) -> Result<J, String> {
    serde_saphyr::from_str::<J>(s).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emits_block_yaml() {
        let v: J = serde_json::from_str(
            r#"{"a":1,"b":["x","true"],"c":{"d":null},"e":[{"f":1,"g":2}],"h":{}}"#,
        )
        .expect("json");
        assert_eq!(
            to_yaml(&v),
            "a: 1\nb:\n  - x\n  - \"true\"\nc:\n  d: null\ne:\n  - f: 1\n    g: 2\nh: {}\n"
        );
    }

    #[test]
    fn parses_yaml() {
        let v = from_yaml("a: 1\nb: [x, z]\n").expect("yaml");
        assert_eq!(v, serde_json::json!({"a": 1, "b": ["x", "z"]}));
    }
}
