//! `encoding/csv`: CUE's `csv.Decode` (Go's `csv.NewReader(r).ReadAll()` with its defaults:
//! comma-separated, `""` for a quote inside a quoted field, no lazy quotes, every record with
//! as many fields as the first, empty lines skipped, `\r\n` read as `\n`) and `csv.Encode`
//! (Go's `csv.Writer`: a field quoted when it holds a comma, a quote, `\r` or `\n`, starts
//! with a space, or is `\.`; records end with `\n`).

/// Go's `csv.ParseError` text.
fn parse_error(start: usize, line: usize, col: usize, msg: &str) -> String {
    if start != line {
        format!("record on line {start}; parse error on line {line}, column {col}: {msg}")
    } else {
        format!("parse error on line {line}, column {col}: {msg}")
    }
}

const BARE_QUOTE: &str = "bare \" in non-quoted-field";
const QUOTE: &str = "extraneous or missing \" in quoted-field";

/// The lines of `input`, each with its `\n` (a final line may have none), `\r\n` read as `\n`.
fn lines(input: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = input;
    while !rest.is_empty() {
        let (mut l, r) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (rest[..=i].to_vec(), &rest[i + 1..]),
            None => {
                let mut l = rest.to_vec();
                // Go drops a trailing `\r` before the end of the input
                if l.last() == Some(&b'\r') {
                    l.pop();
                }
                (l, &rest[rest.len()..])
            }
        };
        let n = l.len();
        if n >= 2 && l[n - 2] == b'\r' && l[n - 1] == b'\n' {
            l.truncate(n - 2);
            l.push(b'\n');
        }
        out.push(l);
        rest = r;
    }
    out
}

fn strip_nl(b: &[u8]) -> &[u8] {
    b.strip_suffix(b"\n").unwrap_or(b)
}

fn text(b: &[u8]) -> Result<String, String> {
    String::from_utf8(b.to_vec()).map_err(|_| "invalid UTF-8 in CSV input".to_string())
}

/// All the records of `input`.
pub fn decode(input: &[u8]) -> Result<Vec<Vec<String>>, String> {
    let lines = lines(input);
    let mut records: Vec<Vec<String>> = Vec::new();
    let mut want_fields: Option<usize> = None;
    let mut li = 0;
    while li < lines.len() {
        let start = li + 1;
        let mut line: &[u8] = &lines[li];
        li += 1;
        if strip_nl(line).is_empty() {
            continue;
        }
        let mut lineno = start;
        // byte offset of `line` in its physical line, for error columns
        let mut col0 = 0;
        let mut fields: Vec<String> = Vec::new();
        'fields: loop {
            if line.first() != Some(&b'"') {
                let comma = line.iter().position(|&b| b == b',');
                let field = match comma {
                    Some(i) => &line[..i],
                    None => strip_nl(line),
                };
                if let Some(j) = field.iter().position(|&b| b == b'"') {
                    return Err(parse_error(start, lineno, col0 + j + 1, BARE_QUOTE));
                }
                fields.push(text(field)?);
                match comma {
                    Some(i) => {
                        line = &line[i + 1..];
                        col0 += i + 1;
                    }
                    None => break 'fields,
                }
            } else {
                let mut field: Vec<u8> = Vec::new();
                line = &line[1..];
                col0 += 1;
                loop {
                    if let Some(i) = line.iter().position(|&b| b == b'"') {
                        field.extend_from_slice(&line[..i]);
                        line = &line[i + 1..];
                        col0 += i + 1;
                        match line.first() {
                            Some(b'"') => {
                                field.push(b'"');
                                line = &line[1..];
                                col0 += 1;
                            }
                            Some(b',') => {
                                line = &line[1..];
                                col0 += 1;
                                fields.push(text(&field)?);
                                continue 'fields;
                            }
                            None | Some(b'\n') if strip_nl(line).is_empty() => {
                                fields.push(text(&field)?);
                                break 'fields;
                            }
                            _ => return Err(parse_error(start, lineno, col0 + 1, QUOTE)),
                        }
                    } else if !line.is_empty() {
                        // the field goes on on the next line
                        field.extend_from_slice(line);
                        match lines.get(li) {
                            Some(next) => {
                                line = next;
                                li += 1;
                                lineno += 1;
                                col0 = 0;
                            }
                            None => {
                                return Err(parse_error(start, lineno, col0 + line.len(), QUOTE));
                            }
                        }
                    } else {
                        return Err(parse_error(start, lineno, col0 + 1, QUOTE));
                    }
                }
            }
        }
        match want_fields {
            None => want_fields = Some(fields.len()),
            Some(n) if n != fields.len() => {
                return Err(format!("record on line {start}: wrong number of fields"));
            }
            Some(_) => {}
        }
        records.push(fields);
    }
    Ok(records)
}

fn needs_quotes(f: &str) -> bool {
    if f.is_empty() {
        return false;
    }
    if f == "\\." || f.contains([',', '"', '\r', '\n']) {
        return true;
    }
    f.chars().next().is_some_and(char::is_whitespace)
}

/// The CSV text of `rows`.
pub fn encode(rows: &[Vec<String>]) -> String {
    let mut out = String::new();
    for row in rows {
        for (i, f) in row.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            if needs_quotes(f) {
                out.push('"');
                out.push_str(&f.replace('"', "\"\""));
                out.push('"');
            } else {
                out.push_str(f);
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(rows: &[&[&str]]) -> Vec<Vec<String>> {
        rows.iter()
            .map(|r| r.iter().map(|s| s.to_string()).collect())
            .collect()
    }

    #[test]
    fn decodes_as_go_reader() {
        // pkg/encoding/csv's own test: csv.Decode("1,2,3\n4,5,6")
        assert_eq!(
            decode(b"1,2,3\n4,5,6"),
            Ok(rec(&[&["1", "2", "3"], &["4", "5", "6"]]))
        );
        assert_eq!(
            decode(b"a,\"b \"\"q\"\", c\"\r\n\n\"multi\r\nline\",x\n"),
            Ok(rec(&[&["a", "b \"q\", c"], &["multi\nline", "x"]]))
        );
        assert_eq!(decode(b""), Ok(vec![]));
        assert_eq!(decode(b",\n"), Ok(rec(&[&["", ""]])));
    }

    #[test]
    fn decode_errors_as_go() {
        assert_eq!(
            decode(b"a,b\nc\n"),
            Err("record on line 2: wrong number of fields".to_string())
        );
        assert_eq!(
            decode(b"a,b\"c\n"),
            Err("parse error on line 1, column 4: bare \" in non-quoted-field".to_string())
        );
        assert!(decode(b"\"abc\"d,e\n").is_err_and(|e| e.contains("extraneous or missing")));
        assert!(decode(b"\"abc\n").is_err_and(|e| e.contains("extraneous or missing")));
    }

    #[test]
    fn encodes_as_go_writer() {
        // pkg/encoding/csv's own test: csv.Encode([["a", "b"], ["c"]])
        assert_eq!(encode(&rec(&[&["a", "b"], &["c"]])), "a,b\nc\n");
        assert_eq!(
            encode(&rec(&[&[
                "x,y",
                "say \"hi\"",
                " lead",
                "",
                "\\.",
                "l1\nl2"
            ]])),
            "\"x,y\",\"say \"\"hi\"\"\",\" lead\",,\"\\.\",\"l1\nl2\"\n"
        );
    }
}
