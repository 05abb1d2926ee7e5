//! Builtin functions: the predeclared identifiers (`len`, `close`, `div`, type names …) and the
//! standard packages (`strings`, `strconv`, `list`, `math`, `regexp`, `encoding/*`, `struct`,
//! `time`).

mod csv;
mod yaml;

use std::rc::Rc;

use crate::ast::Span;
use crate::eval::Ev;
use crate::value::*;

/// Every package function, as (import path, name). Index = `Builtin::Pkg` id.
const FUNCS: &[(&str, &str)] = &[
    ("strings", "ToLower"),
    ("strings", "ToUpper"),
    ("strings", "Contains"),
    ("strings", "HasPrefix"),
    ("strings", "HasSuffix"),
    ("strings", "TrimPrefix"),
    ("strings", "TrimSuffix"),
    ("strings", "TrimSpace"),
    ("strings", "Trim"),
    ("strings", "TrimLeft"),
    ("strings", "TrimRight"),
    ("strings", "Split"),
    ("strings", "SplitN"),
    ("strings", "Join"),
    ("strings", "Replace"),
    ("strings", "Index"),
    ("strings", "LastIndex"),
    ("strings", "Repeat"),
    ("strings", "Fields"),
    ("strings", "Count"),
    ("strings", "ToTitle"),
    ("strings", "ContainsAny"),
    ("strings", "IndexAny"),
    ("strings", "SliceRunes"),
    ("strconv", "FormatInt"),
    ("strconv", "Itoa"),
    ("strconv", "Atoi"),
    ("strconv", "ParseInt"),
    ("strconv", "ParseBool"),
    ("strconv", "FormatBool"),
    ("strconv", "ParseFloat"),
    ("strconv", "FormatFloat"),
    ("strconv", "Quote"),
    ("strconv", "Unquote"),
    ("list", "Concat"),
    ("list", "Contains"),
    ("list", "FlattenN"),
    ("list", "Range"),
    ("list", "SortStrings"),
    ("list", "Sum"),
    ("list", "Max"),
    ("list", "Min"),
    ("list", "Avg"),
    ("list", "Take"),
    ("list", "Drop"),
    ("list", "Slice"),
    ("list", "Repeat"),
    ("list", "Product"),
    ("math", "Floor"),
    ("math", "Ceil"),
    ("math", "Round"),
    ("math", "Abs"),
    ("math", "Sqrt"),
    ("math", "Pow"),
    ("math", "Trunc"),
    ("regexp", "Match"),
    ("regexp", "Find"),
    ("regexp", "FindAll"),
    ("regexp", "FindSubmatch"),
    ("regexp", "ReplaceAll"),
    ("regexp", "ReplaceAllLiteral"),
    ("regexp", "FindNamedSubmatch"),
    ("encoding/json", "Marshal"),
    ("encoding/json", "Unmarshal"),
    ("encoding/json", "Valid"),
    ("encoding/json", "MarshalStream"),
    ("encoding/yaml", "Marshal"),
    ("encoding/yaml", "Unmarshal"),
    ("encoding/yaml", "MarshalStream"),
    ("encoding/base64", "Encode"),
    ("encoding/base64", "Decode"),
    ("encoding/base64", "EncodedLen"),
    ("encoding/base64", "DecodedLen"),
    ("encoding/hex", "Encode"),
    ("encoding/hex", "Decode"),
    ("strings", "Compare"),
    ("list", "UniqueItems"),
    ("list", "MinItems"),
    ("list", "MaxItems"),
    ("struct", "MinFields"),
    ("struct", "MaxFields"),
    ("strings", "MinRunes"),
    ("strings", "MaxRunes"),
    ("time", "Duration"),
    ("time", "Time"),
    ("time", "Format"),
    ("time", "Parse"),
    ("math", "Log"),
    ("math", "Exp"),
    ("math", "MultipleOf"),
    ("list", "IsSorted"),
    ("list", "Sort"),
    ("strings", "Runes"),
    ("strings", "ByteAt"),
    ("math/bits", "And"),
    ("math/bits", "Or"),
    ("math/bits", "Xor"),
    ("math/bits", "Clear"),
    ("math/bits", "Lsh"),
    ("math/bits", "Rsh"),
    ("math/bits", "At"),
    ("math/bits", "Set"),
    ("math/bits", "OnesCount"),
    ("math/bits", "Len"),
    ("text/template", "Execute"),
    ("encoding/csv", "Decode"),
    ("encoding/csv", "Encode"),
    ("encoding/hex", "EncodedLen"),
    ("encoding/hex", "DecodedLen"),
];

/// Import paths this crate implements.
pub const PACKAGES: &[&str] = &[
    "strings",
    "strconv",
    "list",
    "math",
    "math/bits",
    "regexp",
    "encoding/json",
    "encoding/yaml",
    "encoding/base64",
    "encoding/hex",
    "encoding/csv",
    "struct",
    "time",
    "text/template",
];

pub fn is_known_package(p: &str) -> bool {
    PACKAGES.contains(&p)
}

/// A number between `-max` and `max` (CUE's `float32` and `float64`).
fn number_range(max: f64) -> Option<Val> {
    Some(Val::Atom(Rc::new(Atom {
        kinds: K_NUMBER,
        bounds: vec![
            Bound {
                op: BoundOp::Ge,
                val: Val::Float(-max),
                re: None,
            },
            Bound {
                op: BoundOp::Le,
                val: Val::Float(max),
                re: None,
            },
        ],
    })))
}

fn range(lo: i64, hi: i64) -> Option<Val> {
    Some(Val::Atom(Rc::new(Atom {
        kinds: K_INT,
        bounds: vec![
            Bound {
                op: BoundOp::Ge,
                val: Val::Int(lo),
                re: None,
            },
            Bound {
                op: BoundOp::Le,
                val: Val::Int(hi),
                re: None,
            },
        ],
    })))
}

pub fn predeclared(name: &str) -> Option<Val> {
    let atom = |k| {
        Some(Val::Atom(Rc::new(Atom {
            kinds: k,
            bounds: vec![],
        })))
    };
    match name {
        "int" => atom(K_INT),
        "float" => atom(K_FLOAT),
        "number" => atom(K_NUMBER),
        "string" => atom(K_STRING),
        "bytes" => atom(K_BYTES),
        "bool" => atom(K_BOOL),
        "int8" => range(-128, 127),
        "int16" => range(-32768, 32767),
        "int32" => range(i32::MIN as i64, i32::MAX as i64),
        "int64" => range(i64::MIN, i64::MAX),
        "uint" => Some(Val::Atom(Rc::new(Atom {
            kinds: K_INT,
            bounds: vec![Bound {
                op: BoundOp::Ge,
                val: Val::Int(0),
                re: None,
            }],
        }))),
        "uint8" | "byte" => range(0, 255),
        "uint16" => range(0, 65535),
        "uint32" => range(0, u32::MAX as i64),
        // Integers are 64-bit here (a larger literal is an error), so the 64- and 128-bit
        // types admit the same values as in CUE; their upper bounds are the i64 limit.
        "uint64" | "uint128" => range(0, i64::MAX),
        "int128" => range(i64::MIN, i64::MAX),
        "rune" => range(0, 0x10FFFF),
        // `float32` and `float64` are number bounds in CUE (`>=-3.4e+38 & <=3.4e+38`), not the
        // float kind: `int & float64` is an int.
        "float32" => number_range(f32::MAX as f64),
        "float64" => number_range(f64::MAX),
        "len" => Some(Val::Func(Builtin::Len)),
        "close" => Some(Val::Func(Builtin::Close)),
        "and" => Some(Val::Func(Builtin::And)),
        "or" => Some(Val::Func(Builtin::Or)),
        "div" => Some(Val::Func(Builtin::Div)),
        "mod" => Some(Val::Func(Builtin::Mod)),
        "quo" => Some(Val::Func(Builtin::Quo)),
        "rem" => Some(Val::Func(Builtin::Rem)),
        _ => None,
    }
}

pub fn member(pkg: &str, name: &str) -> Option<Val> {
    // the name first: names vary in length, most entries fail on it without a byte compare
    if let Some(i) = FUNCS
        .iter()
        .position(|(p, n)| n.len() == name.len() && *n == name && *p == pkg)
    {
        return Some(Val::Func(Builtin::Pkg(i as u16)));
    }
    match (pkg, name) {
        ("math", "Pi") => Some(Val::Float(std::f64::consts::PI)),
        ("math", "E") => Some(Val::Float(std::f64::consts::E)),
        ("math", "MaxInt64") | ("math", "MaxInt") => Some(Val::Int(i64::MAX)),
        ("math", "MinInt64") | ("math", "MinInt") => Some(Val::Int(i64::MIN)),
        ("math", "MaxInt32") => Some(Val::Int(i32::MAX as i64)),
        ("math", "MinInt32") => Some(Val::Int(i32::MIN as i64)),
        ("time", "Nanosecond") => Some(Val::Int(1)),
        ("time", "Microsecond") => Some(Val::Int(1_000)),
        ("time", "Millisecond") => Some(Val::Int(1_000_000)),
        ("time", "Second") => Some(Val::Int(1_000_000_000)),
        ("time", "Minute") => Some(Val::Int(60_000_000_000)),
        ("time", "Hour") => Some(Val::Int(3_600_000_000_000)),
        ("time", "RFC3339") => Some(Val::Str(Rc::from("2006-01-02T15:04:05Z07:00"))),
        _ => None,
    }
}

pub fn fmt_num(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e21 {
        format!("{}", f as i64)
    } else {
        format!("{f}")
    }
}

struct Args<'x> {
    vals: &'x [Val],
    name: String,
    span: Span,
}

type R<T> = Result<T, Val>;

impl Args<'_> {
    fn get(&self, i: usize) -> R<&Val> {
        self.vals.get(i).ok_or_else(|| {
            bot_val(
                format!("not enough arguments in call to {}", self.name),
                self.span,
            )
        })
    }
    fn check(&self, i: usize) -> R<&Val> {
        let v = self.get(i)?;
        match v {
            Val::Bottom(_) => Err(v.clone()),
            Val::Top | Val::Atom(_) | Val::Disj(_) => Err(Val::incomplete(
                format!("{}: non-concrete argument {}", self.name, i),
                self.span,
            )),
            _ => Ok(v),
        }
    }
    fn str(&self, i: usize) -> R<Rc<str>> {
        match self.check(i)? {
            Val::Str(s) => Ok(s.clone()),
            other => Err(self.type_err(i, other, "string")),
        }
    }
    fn bytes_or_str(&self, i: usize) -> R<Vec<u8>> {
        match self.check(i)? {
            Val::Str(s) => Ok(s.as_bytes().to_vec()),
            Val::Bytes(b) => Ok(b.to_vec()),
            other => Err(self.type_err(i, other, "bytes")),
        }
    }
    fn int(&self, i: usize) -> R<i64> {
        match self.check(i)? {
            Val::Int(n) => Ok(*n),
            other => Err(self.type_err(i, other, "int")),
        }
    }
    fn num(&self, i: usize) -> R<f64> {
        match self.check(i)? {
            Val::Int(n) => Ok(*n as f64),
            Val::Float(f) => Ok(*f),
            other => Err(self.type_err(i, other, "number")),
        }
    }
    fn type_err(&self, i: usize, v: &Val, want: &str) -> Val {
        bot_val(
            format!(
                "cannot use {} (type {}) as {} in argument {} to {}",
                v,
                type_name(v),
                want,
                i + 1,
                self.name
            ),
            self.span,
        )
    }
}

fn bot_val(msg: impl Into<String>, span: Span) -> Val {
    Val::bot(msg, span)
}

fn s(x: impl AsRef<str>) -> Val {
    Val::Str(Rc::from(x.as_ref()))
}

fn list_of(ev: &mut Ev<'_>, a: &Args<'_>, i: usize) -> R<Vec<Val>> {
    match a.check(i)? {
        Val::Vertex(w) => {
            let w = *w;
            match ev.list_elems(w) {
                Some(es) => {
                    let mut out = Vec::with_capacity(es.len());
                    for e in es {
                        let v = ev.value_of(e);
                        let v = ev.concrete(v);
                        out.push(v);
                    }
                    Ok(out)
                }
                None => Err(bot_val(
                    format!(
                        "cannot use struct as list in argument {} to {}",
                        i + 1,
                        a.name
                    ),
                    a.span,
                )),
            }
        }
        other => Err(a.type_err(i, other, "list")),
    }
}

fn list_elems_raw(ev: &mut Ev<'_>, a: &Args<'_>, i: usize) -> R<Vec<Val>> {
    match a.check(i)? {
        Val::Vertex(w) => {
            let w = *w;
            match ev.list_elems(w) {
                Some(es) => Ok(es.into_iter().map(Val::Vertex).collect()),
                None => Err(bot_val(
                    format!(
                        "cannot use struct as list in argument {} to {}",
                        i + 1,
                        a.name
                    ),
                    a.span,
                )),
            }
        }
        other => Err(a.type_err(i, other, "list")),
    }
}

/// Scalar validators: (function, arity including the checked value, kinds it applies to).
/// Called with one argument fewer than the arity, such a function is a constraint
/// (`strings.MinRunes(3)`) checked when the value becomes concrete.
const VALIDATORS: &[(&str, &str, usize, u16)] = &[
    ("strings", "Contains", 2, K_STRING),
    ("strings", "ContainsAny", 2, K_STRING),
    ("strings", "HasPrefix", 2, K_STRING),
    ("strings", "HasSuffix", 2, K_STRING),
    ("strings", "MinRunes", 2, K_STRING),
    ("strings", "MaxRunes", 2, K_STRING),
    ("math", "MultipleOf", 2, K_NUMBER),
    ("encoding/json", "Valid", 1, K_STRING | K_BYTES),
];

fn validator(f: &Val) -> Option<(&'static str, &'static str, usize, u16)> {
    let Val::Func(Builtin::Pkg(i)) = f else {
        return None;
    };
    let (p, n) = FUNCS.get(*i as usize)?;
    VALIDATORS
        .iter()
        .find(|(vp, vn, _, _)| vp == p && vn == n)
        .copied()
}

/// The kinds of values a validator bound applies to.
pub fn validator_kinds(f: &Val) -> u16 {
    validator(f).map(|v| v.3).unwrap_or(K_TOP)
}

/// `strings.MinRunes(3)`: how a validator bound prints.
pub fn validator_display(f: &Val, args: &[Val]) -> String {
    let name = match f {
        Val::Func(b) => builtin_name(&[], *b),
        _ => "<func>".into(),
    };
    let a: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    format!("{name}({})", a.join(", "))
}

/// Checks a concrete scalar against a validator bound: `Err(())` when the value has the wrong
/// type for it.
pub fn check_validator(f: &Val, v: &Val, args: &[Val]) -> Result<bool, ()> {
    let Some((pkg, name, _, _)) = validator(f) else {
        return Err(());
    };
    let arg_str = |i: usize| match args.get(i) {
        Some(Val::Str(s)) => Ok(s.clone()),
        _ => Err(()),
    };
    let arg_int = |i: usize| match args.get(i) {
        Some(Val::Int(n)) => Ok(*n),
        _ => Err(()),
    };
    match (pkg, name, v) {
        ("strings", "Contains", Val::Str(x)) => Ok(x.contains(&*arg_str(0)?)),
        ("strings", "ContainsAny", Val::Str(x)) => {
            let cs = arg_str(0)?;
            Ok(x.chars().any(|c| cs.contains(c)))
        }
        ("strings", "HasPrefix", Val::Str(x)) => Ok(x.starts_with(&*arg_str(0)?)),
        ("strings", "HasSuffix", Val::Str(x)) => Ok(x.ends_with(&*arg_str(0)?)),
        ("strings", "MinRunes", Val::Str(x)) => Ok(x.chars().count() as i64 >= arg_int(0)?),
        ("strings", "MaxRunes", Val::Str(x)) => Ok(x.chars().count() as i64 <= arg_int(0)?),
        ("math", "MultipleOf", Val::Int(x)) => match args.first() {
            Some(Val::Int(0)) => Ok(false),
            Some(Val::Int(n)) => Ok(x.checked_rem(*n).is_some_and(|r| r == 0)),
            Some(Val::Float(n)) if *n != 0.0 => Ok((*x as f64 / n).fract() == 0.0),
            _ => Err(()),
        },
        ("math", "MultipleOf", Val::Float(x)) => match args.first().and_then(Val::as_f64) {
            Some(n) if n != 0.0 => Ok((x / n).fract() == 0.0),
            _ => Err(()),
        },
        ("encoding/json", "Valid", Val::Str(x)) => {
            Ok(serde_json::from_str::<serde_json::Value>(x).is_ok())
        }
        ("encoding/json", "Valid", Val::Bytes(x)) => {
            Ok(serde_json::from_slice::<serde_json::Value>(x).is_ok())
        }
        _ => Err(()),
    }
}

fn builtin_name(hosts: &[crate::HostFunc], b: Builtin) -> String {
    match b {
        Builtin::Len => "len".to_string(),
        Builtin::Close => "close".into(),
        Builtin::And => "and".into(),
        Builtin::Or => "or".into(),
        Builtin::Div => "div".into(),
        Builtin::Mod => "mod".into(),
        Builtin::Quo => "quo".into(),
        Builtin::Rem => "rem".into(),
        Builtin::Host(i) => hosts
            .get(i as usize)
            .map(|h| {
                format!(
                    "{}.{}",
                    h.path.rsplit('/').next().unwrap_or(&h.path),
                    h.name
                )
            })
            .unwrap_or_default(),
        Builtin::Pkg(i) => FUNCS
            .get(i as usize)
            .map(|(p, n)| format!("{}.{}", p.rsplit('/').next().unwrap_or(p), n))
            .unwrap_or_default(),
    }
}

pub fn call(ev: &mut Ev<'_>, b: Builtin, args: Vec<Val>, span: Span) -> Val {
    let args: Vec<Val> = args.into_iter().map(|v| ev.concrete(v)).collect();
    if let Some((_, _, arity, kinds)) = validator(&Val::Func(b)) {
        if args.len() + 1 == arity {
            if let Some(bad) = args.iter().find(|a| !a.is_concrete_scalar()) {
                return match bad {
                    Val::Bottom(_) => bad.clone(),
                    _ => Val::incomplete(
                        format!("{}: non-concrete argument {bad}", builtin_name(ev.hosts, b)),
                        span,
                    ),
                };
            }
            return Val::Atom(Rc::new(Atom {
                kinds,
                bounds: vec![Bound {
                    op: BoundOp::Call(Rc::from(args)),
                    val: Val::Func(b),
                    re: None,
                }],
            }));
        }
    }
    let name = builtin_name(ev.hosts, b);
    let a = Args {
        vals: &args,
        name,
        span,
    };
    match call_inner(ev, b, &a) {
        Ok(v) | Err(v) => v,
    }
}

fn call_inner(ev: &mut Ev<'_>, b: Builtin, a: &Args<'_>) -> R<Val> {
    match b {
        Builtin::Len => match a.check(0)? {
            Val::Str(s) => Ok(Val::Int(s.len() as i64)),
            Val::Bytes(b) => Ok(Val::Int(b.len() as i64)),
            Val::Vertex(w) => {
                let w = *w;
                ev.expand(w);
                let d = ev.deref(w);
                let x = &ev.vs[d as usize];
                if let Some(e) = &x.err {
                    return Err(Val::Bottom(e.clone()));
                }
                if x.is_list {
                    Ok(Val::Int(x.elems.len() as i64))
                } else {
                    Ok(Val::Int(
                        x.arcs
                            .values()
                            .filter(|a| a.kind == crate::eval::FK::Regular && a.regular)
                            .count() as i64,
                    ))
                }
            }
            other => Err(bot_val(format!("invalid argument {other} for len"), a.span)),
        },
        Builtin::Close | Builtin::And | Builtin::Or => Err(bot_val(
            format!("unsupported: {} in this position", a.name),
            a.span,
        )),
        Builtin::Div | Builtin::Mod | Builtin::Quo | Builtin::Rem => {
            let x = a.int(0)?;
            let y = a.int(1)?;
            if y == 0 {
                return Err(bot_val("division by zero", a.span));
            }
            let r = match b {
                Builtin::Div => x.checked_div_euclid(y),
                Builtin::Mod => x.checked_rem_euclid(y),
                Builtin::Quo => x.checked_div(y),
                _ => x.checked_rem(y),
            };
            r.map(Val::Int)
                .ok_or_else(|| bot_val("integer overflow", a.span))
        }
        Builtin::Pkg(i) => {
            let (pkg, name) = FUNCS.get(i as usize).copied().unwrap_or(("", ""));
            pkg_call(ev, pkg, name, a)
        }
        Builtin::Host(i) => {
            let Some(f) = ev.hosts.get(i as usize).map(|h| h.f.clone()) else {
                return Err(bot_val("unknown host function", a.span));
            };
            let mut args = Vec::with_capacity(a.vals.len());
            for v in a.vals {
                args.push(ev.json_of(v, 0).map_err(Val::Bottom)?);
            }
            match f(&args) {
                Ok(j) => Ok(ev.make_from_json(&j)),
                Err(m) => Err(bot_val(format!("{}: {m}", a.name), a.span)),
            }
        }
    }
}

fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's encoding/json escaping of HTML characters.
pub fn go_json_escape(s: String) -> String {
    if !s.contains(['<', '>', '&', '\u{2028}', '\u{2029}']) {
        return s;
    }
    s.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

fn format_int(mut n: i64, base: u32) -> String {
    if base == 10 {
        return n.to_string();
    }
    let neg = n < 0;
    let mut digits = Vec::new();
    if n == 0 {
        return "0".into();
    }
    while n != 0 {
        let d = (n % base as i64).unsigned_abs() as u32;
        digits.push(std::char::from_digit(d, base).unwrap_or('?'));
        n /= base as i64;
    }
    if neg {
        digits.push('-');
    }
    digits.iter().rev().collect()
}

fn pkg_call(ev: &mut Ev<'_>, pkg: &str, name: &str, a: &Args<'_>) -> R<Val> {
    let sp = a.span;
    match (pkg, name) {
        ("strings", "ToLower") => Ok(s(a.str(0)?.to_lowercase())),
        ("strings", "ToUpper") => Ok(s(a.str(0)?.to_uppercase())),
        ("strings", "ToTitle") => Ok(s(a.str(0)?.to_uppercase())),
        ("strings", "Contains") => Ok(Val::Bool(a.str(0)?.contains(&*a.str(1)?))),
        ("strings", "ContainsAny") => {
            let chars = a.str(1)?;
            Ok(Val::Bool(a.str(0)?.chars().any(|c| chars.contains(c))))
        }
        ("strings", "HasPrefix") => Ok(Val::Bool(a.str(0)?.starts_with(&*a.str(1)?))),
        ("strings", "HasSuffix") => Ok(Val::Bool(a.str(0)?.ends_with(&*a.str(1)?))),
        ("strings", "TrimPrefix") => {
            let x = a.str(0)?;
            let p = a.str(1)?;
            Ok(s(x.strip_prefix(&*p).unwrap_or(&x)))
        }
        ("strings", "TrimSuffix") => {
            let x = a.str(0)?;
            let p = a.str(1)?;
            Ok(s(x.strip_suffix(&*p).unwrap_or(&x)))
        }
        ("strings", "TrimSpace") => Ok(s(a.str(0)?.trim())),
        ("strings", "Trim") => {
            let cut = a.str(1)?;
            Ok(s(a.str(0)?.trim_matches(|c| cut.contains(c))))
        }
        ("strings", "TrimLeft") => {
            let cut = a.str(1)?;
            Ok(s(a.str(0)?.trim_start_matches(|c| cut.contains(c))))
        }
        ("strings", "TrimRight") => {
            let cut = a.str(1)?;
            Ok(s(a.str(0)?.trim_end_matches(|c| cut.contains(c))))
        }
        ("strings", "Split") => {
            let x = a.str(0)?;
            let sep = a.str(1)?;
            let parts: Vec<Val> = if sep.is_empty() {
                x.chars().map(|c| s(c.to_string())).collect()
            } else {
                x.split(&*sep).map(s).collect()
            };
            Ok(ev.make_list(parts))
        }
        ("strings", "SplitN") => {
            let x = a.str(0)?;
            let sep = a.str(1)?;
            let n = a.int(2)?;
            let parts: Vec<Val> = if n < 0 {
                x.split(&*sep).map(s).collect()
            } else {
                x.splitn(n as usize, &*sep).map(s).collect()
            };
            Ok(ev.make_list(parts))
        }
        ("strings", "Fields") => {
            let parts = a.str(0)?.split_whitespace().map(s).collect();
            Ok(ev.make_list(parts))
        }
        ("strings", "Join") => {
            let items = list_of(ev, a, 0)?;
            let sep = a.str(1)?;
            let mut out = Vec::new();
            for it in items {
                match it {
                    Val::Str(x) => out.push(x.to_string()),
                    Val::Bottom(b) => return Err(Val::Bottom(b)),
                    other if !other.is_concrete_scalar() && !matches!(other, Val::Vertex(_)) => {
                        return Err(Val::incomplete("strings.Join: non-concrete element", sp));
                    }
                    other => {
                        return Err(bot_val(
                            format!(
                                "cannot use {other} as string in list argument to strings.Join"
                            ),
                            sp,
                        ));
                    }
                }
            }
            let r = out.join(&sep);
            ev.check_bytes(r.len(), sp)?;
            Ok(s(r))
        }
        ("strings", "Replace") => {
            let x = a.str(0)?;
            let old = a.str(1)?;
            let new = a.str(2)?;
            let n = a.int(3)?;
            let r = if n < 0 {
                x.replace(&*old, &new)
            } else {
                x.replacen(&*old, &new, n as usize)
            };
            ev.check_bytes(r.len(), sp)?;
            Ok(s(r))
        }
        ("strings", "Index") => {
            let x = a.str(0)?;
            Ok(Val::Int(
                x.find(&*a.str(1)?).map(|i| i as i64).unwrap_or(-1),
            ))
        }
        ("strings", "IndexAny") => {
            let x = a.str(0)?;
            let chars = a.str(1)?;
            Ok(Val::Int(
                x.find(|c| chars.contains(c))
                    .map(|i| i as i64)
                    .unwrap_or(-1),
            ))
        }
        ("strings", "LastIndex") => {
            let x = a.str(0)?;
            Ok(Val::Int(
                x.rfind(&*a.str(1)?).map(|i| i as i64).unwrap_or(-1),
            ))
        }
        ("strings", "Repeat") => {
            let x = a.str(0)?;
            let n = a.int(1)?;
            if n < 0 {
                return Err(bot_val("negative repeat count", sp));
            }
            ev.check_bytes(x.len().saturating_mul(n as usize), sp)?;
            Ok(s(x.repeat(n as usize)))
        }
        ("strings", "Count") => {
            let x = a.str(0)?;
            let sub = a.str(1)?;
            Ok(Val::Int(if sub.is_empty() {
                x.chars().count() as i64 + 1
            } else {
                x.matches(&*sub).count() as i64
            }))
        }
        ("strings", "Compare") => Ok(Val::Int(match a.str(0)?.cmp(&a.str(1)?) {
            std::cmp::Ordering::Less => -1,
            std::cmp::Ordering::Equal => 0,
            std::cmp::Ordering::Greater => 1,
        })),
        ("strings", "SliceRunes") => {
            let x: Vec<char> = a.str(0)?.chars().collect();
            let lo = a.int(1)?;
            let hi = a.int(2)?;
            if lo < 0 || hi < lo || hi as usize > x.len() {
                return Err(bot_val("index out of range", sp));
            }
            Ok(s(x[lo as usize..hi as usize].iter().collect::<String>()))
        }
        ("strings", "Runes") => {
            let v = a.str(0)?.chars().map(|c| Val::Int(c as i64)).collect();
            Ok(ev.make_list(v))
        }
        ("strings", "ByteAt") => {
            let x = a.bytes_or_str(0)?;
            let i = a.int(1)?;
            x.get(i as usize)
                .map(|b| Val::Int(*b as i64))
                .ok_or_else(|| bot_val("index out of range", sp))
        }
        ("strconv", "FormatInt") => {
            let n = a.int(0)?;
            let base = a.int(1)?;
            if !(2..=36).contains(&base) {
                return Err(bot_val("invalid base", sp));
            }
            Ok(s(format_int(n, base as u32)))
        }
        ("strconv", "Itoa") => Ok(s(a.int(0)?.to_string())),
        ("strconv", "Atoi") => {
            let x = a.str(0)?;
            x.parse::<i64>().map(Val::Int).map_err(|_| {
                bot_val(
                    format!("strconv.Atoi: parsing {}: invalid syntax", quote_str(&x)),
                    sp,
                )
            })
        }
        ("strconv", "ParseInt") => {
            let x = a.str(0)?;
            let base = a.int(1)?;
            let base = if base == 0 { 10 } else { base };
            if !(2..=36).contains(&base) {
                return Err(bot_val("invalid base", sp));
            }
            i64::from_str_radix(&x, base as u32)
                .map(Val::Int)
                .map_err(|_| {
                    bot_val(
                        format!(
                            "strconv.ParseInt: parsing {}: invalid syntax",
                            quote_str(&x)
                        ),
                        sp,
                    )
                })
        }
        ("strconv", "ParseBool") => match &*a.str(0)? {
            "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(Val::Bool(true)),
            "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(Val::Bool(false)),
            x => Err(bot_val(
                format!(
                    "strconv.ParseBool: parsing {}: invalid syntax",
                    quote_str(x)
                ),
                sp,
            )),
        },
        ("strconv", "FormatBool") => match a.check(0)? {
            Val::Bool(b) => Ok(s(b.to_string())),
            other => Err(a.type_err(0, other, "bool")),
        },
        ("strconv", "ParseFloat") => {
            let x = a.str(0)?;
            x.parse::<f64>().map(Val::Float).map_err(|_| {
                bot_val(
                    format!(
                        "strconv.ParseFloat: parsing {}: invalid syntax",
                        quote_str(&x)
                    ),
                    sp,
                )
            })
        }
        ("strconv", "FormatFloat") => {
            let f = a.num(0)?;
            Ok(s(fmt_num(f)))
        }
        ("strconv", "Quote") => Ok(s(go_quote(&a.str(0)?))),
        ("strconv", "Unquote") => {
            let x = a.str(0)?;
            match serde_json::from_str::<String>(&x) {
                Ok(u) => Ok(s(u)),
                Err(_) => Err(bot_val("invalid syntax", sp)),
            }
        }
        ("list", "Concat") => {
            let outer = list_elems_raw(ev, a, 0)?;
            let mut vals = Vec::new();
            for l in outer {
                let l = ev.concrete(l);
                match l {
                    Val::Vertex(w) => match ev.list_elems(w) {
                        Some(es) => vals.extend(es.into_iter().map(Val::Vertex)),
                        None => return Err(bot_val("list.Concat: element is not a list", sp)),
                    },
                    Val::Bottom(b) => return Err(Val::Bottom(b)),
                    _ => return Err(Val::incomplete("list.Concat: non-concrete element", sp)),
                }
            }
            Ok(ev.make_list(vals))
        }
        ("list", "Contains") => {
            let items = list_of(ev, a, 0)?;
            let x = a.get(1)?.clone();
            for it in items {
                if ev.values_equal(&it, &x).unwrap_or(false) {
                    return Ok(Val::Bool(true));
                }
            }
            Ok(Val::Bool(false))
        }
        ("list", "FlattenN") => {
            let depth = a.int(1)?;
            let items = list_elems_raw(ev, a, 0)?;
            let out = flatten(ev, items, depth)?;
            Ok(ev.make_list(out))
        }
        ("list", "Range") => {
            let (st, en, step) = (a.num(0)?, a.num(1)?, a.num(2)?);
            if step == 0.0 {
                return Err(bot_val("step must be non zero", sp));
            }
            let all_int = a.vals.iter().take(3).all(|v| matches!(v, Val::Int(_)));
            let mut out = Vec::new();
            let mut x = st;
            while (step > 0.0 && x < en) || (step < 0.0 && x > en) {
                out.push(if all_int {
                    Val::Int(x as i64)
                } else {
                    Val::Float(x)
                });
                x += step;
                if out.len() > 1_000_000 {
                    return Err(bot_val("list.Range: too many elements", sp));
                }
            }
            Ok(ev.make_list(out))
        }
        ("list", "SortStrings") => {
            let items = list_of(ev, a, 0)?;
            let mut ss = Vec::new();
            for it in items {
                match it {
                    Val::Str(x) => ss.push(x),
                    other => {
                        return Err(bot_val(
                            format!("list.SortStrings: {other} is not a string"),
                            sp,
                        ));
                    }
                }
            }
            ss.sort();
            Ok(ev.make_list(ss.into_iter().map(Val::Str).collect()))
        }
        ("list", "Sum")
        | ("list", "Max")
        | ("list", "Min")
        | ("list", "Avg")
        | ("list", "Product") => {
            let items = list_of(ev, a, 0)?;
            let all_int = items.iter().all(|v| matches!(v, Val::Int(_)));
            let mut nums = Vec::new();
            for it in &items {
                match it.as_f64() {
                    Some(f) => nums.push(f),
                    None => return Err(bot_val(format!("{}: {} is not a number", a.name, it), sp)),
                }
            }
            if nums.is_empty() && name != "Sum" && name != "Product" {
                return Err(bot_val(format!("{}: empty list", a.name), sp));
            }
            if all_int && name != "Avg" {
                let ints: Vec<i64> = items
                    .iter()
                    .filter_map(|v| if let Val::Int(i) = v { Some(*i) } else { None })
                    .collect();
                return Ok(Val::Int(match name {
                    "Sum" => ints
                        .iter()
                        .try_fold(0i64, |acc, x| acc.checked_add(*x))
                        .ok_or_else(|| bot_val("integer overflow", sp))?,
                    "Product" => ints
                        .iter()
                        .try_fold(1i64, |acc, x| acc.checked_mul(*x))
                        .ok_or_else(|| bot_val("integer overflow", sp))?,
                    "Max" => ints.iter().copied().max().unwrap_or(0),
                    _ => ints.iter().copied().min().unwrap_or(0),
                }));
            }
            Ok(Val::Float(match name {
                "Sum" => nums.iter().sum(),
                "Product" => nums.iter().product(),
                "Max" => nums.iter().copied().fold(f64::MIN, f64::max),
                "Min" => nums.iter().copied().fold(f64::MAX, f64::min),
                _ => nums.iter().sum::<f64>() / nums.len() as f64,
            }))
        }
        ("list", "Take") | ("list", "Drop") => {
            let items = list_elems_raw(ev, a, 0)?;
            let n = a.int(1)?;
            if n < 0 {
                return Err(bot_val("negative index", sp));
            }
            let n = (n as usize).min(items.len());
            let out = if name == "Take" {
                items[..n].to_vec()
            } else {
                items[n..].to_vec()
            };
            Ok(ev.make_list(out))
        }
        ("list", "Slice") => {
            let items = list_elems_raw(ev, a, 0)?;
            let lo = a.int(1)?;
            let hi = a.int(2)?;
            if lo < 0 || hi < lo || hi as usize > items.len() {
                return Err(bot_val("list.Slice: index out of range", sp));
            }
            Ok(ev.make_list(items[lo as usize..hi as usize].to_vec()))
        }
        ("list", "Repeat") => {
            let items = list_elems_raw(ev, a, 0)?;
            let n = a.int(1)?;
            if n < 0 {
                return Err(bot_val("negative count", sp));
            }
            let mut out = Vec::new();
            for _ in 0..n {
                out.extend(items.iter().cloned());
                if out.len() > 1_000_000 {
                    return Err(bot_val("list too large", sp));
                }
            }
            Ok(ev.make_list(out))
        }
        ("list", "IsSorted") | ("list", "Sort") => Err(bot_val(
            format!("unsupported: {} at builtin call", a.name),
            sp,
        )),
        ("math/bits", "And") => Ok(Val::Int(a.int(0)? & a.int(1)?)),
        ("math/bits", "Or") => Ok(Val::Int(a.int(0)? | a.int(1)?)),
        ("math/bits", "Xor") => Ok(Val::Int(a.int(0)? ^ a.int(1)?)),
        ("math/bits", "Clear") => Ok(Val::Int(a.int(0)? & !a.int(1)?)),
        ("math/bits", "Lsh") | ("math/bits", "Rsh") => {
            let x = a.int(0)?;
            let n = a.int(1)?;
            if !(0..64).contains(&n) {
                return Err(bot_val(format!("{}: shift {n} out of range", a.name), sp));
            }
            let r = if name == "Lsh" {
                x.checked_shl(n as u32).filter(|r| r >> n == x)
            } else {
                Some(x >> n)
            };
            r.map(Val::Int)
                .ok_or_else(|| bot_val(format!("{}: integer overflow", a.name), sp))
        }
        ("math/bits", "At") => {
            let x = a.int(0)?;
            let i = a.int(1)?;
            if !(0..64).contains(&i) || x < 0 {
                return Err(bot_val(format!("{}: index {i} out of range", a.name), sp));
            }
            Ok(Val::Int((x >> i) & 1))
        }
        ("math/bits", "Set") => {
            let x = a.int(0)?;
            let i = a.int(1)?;
            let bit = a.int(2)?;
            if !(0..63).contains(&i) || x < 0 {
                return Err(bot_val(format!("{}: index {i} out of range", a.name), sp));
            }
            Ok(Val::Int(if bit == 0 {
                x & !(1 << i)
            } else {
                x | (1 << i)
            }))
        }
        ("math/bits", "OnesCount") => Ok(Val::Int(a.int(0)?.count_ones() as i64)),
        ("math/bits", "Len") => {
            let x = a.int(0)?;
            Ok(Val::Int(64 - x.unsigned_abs().leading_zeros() as i64))
        }
        ("math", "Floor") => Ok(float_or_int(a.num(0)?.floor())),
        ("math", "Ceil") => Ok(float_or_int(a.num(0)?.ceil())),
        ("math", "Round") => Ok(float_or_int(a.num(0)?.round())),
        ("math", "Trunc") => Ok(float_or_int(a.num(0)?.trunc())),
        ("math", "Abs") => match a.check(0)? {
            Val::Int(i) => Ok(Val::Int(i.abs())),
            _ => Ok(Val::Float(a.num(0)?.abs())),
        },
        ("math", "Sqrt") => Ok(Val::Float(a.num(0)?.sqrt())),
        ("math", "Pow") => Ok(Val::Float(a.num(0)?.powf(a.num(1)?))),
        ("math", "Log") => Ok(Val::Float(a.num(0)?.ln())),
        ("math", "Exp") => Ok(Val::Float(a.num(0)?.exp())),
        ("regexp", "Match") => {
            let re = compile_re(&a.str(0)?, sp)?;
            Ok(Val::Bool(re.is_match(&a.str(1)?)))
        }
        ("regexp", "Find") => {
            let re = compile_re(&a.str(0)?, sp)?;
            let x = a.str(1)?;
            re.find(&x)
                .map(|m| s(m.as_str()))
                .ok_or_else(|| bot_val("regexp.Find: no match", sp))
        }
        ("regexp", "FindAll") => {
            let re = compile_re(&a.str(0)?, sp)?;
            let x = a.str(1)?;
            let n = a.int(2)?;
            let mut out: Vec<Val> = re.find_iter(&x).map(|m| s(m.as_str())).collect();
            if n >= 0 {
                out.truncate(n as usize);
            }
            if out.is_empty() {
                return Err(bot_val("regexp.FindAll: no match", sp));
            }
            Ok(ev.make_list(out))
        }
        ("regexp", "FindSubmatch") => {
            let re = compile_re(&a.str(0)?, sp)?;
            let x = a.str(1)?;
            match re.captures(&x) {
                Some(c) => {
                    let v = c
                        .iter()
                        .map(|m| s(m.map(|m| m.as_str()).unwrap_or("")))
                        .collect();
                    Ok(ev.make_list(v))
                }
                None => Err(bot_val("regexp.FindSubmatch: no match", sp)),
            }
        }
        ("regexp", "FindNamedSubmatch") => {
            let re = compile_re(&a.str(0)?, sp)?;
            let x = a.str(1)?;
            match re.captures(&x) {
                Some(c) => {
                    let mut f = Vec::new();
                    for n in re.capture_names().flatten() {
                        f.push((
                            n.to_string(),
                            s(c.name(n).map(|m| m.as_str()).unwrap_or("")),
                        ));
                    }
                    Ok(ev.make_struct(f))
                }
                None => Err(bot_val("regexp.FindNamedSubmatch: no match", sp)),
            }
        }
        ("regexp", "ReplaceAll") => {
            let re = compile_re(&a.str(0)?, sp)?;
            let x = a.str(1)?;
            let rep = a.str(2)?;
            Ok(s(re.replace_all(&x, &*rep)))
        }
        ("regexp", "ReplaceAllLiteral") => {
            let re = compile_re(&a.str(0)?, sp)?;
            let x = a.str(1)?;
            let rep = a.str(2)?;
            Ok(s(re.replace_all(&x, regex::NoExpand(&rep))))
        }
        ("encoding/json", "Marshal") => {
            let v = a.get(0)?.clone();
            let j = ev.json_of(&v, 0).map_err(Val::Bottom)?;
            let out =
                serde_json::to_string(&j).map_err(|e| bot_val(format!("json.Marshal: {e}"), sp))?;
            Ok(s(go_json_escape(out)))
        }
        ("encoding/json", "MarshalStream") => {
            let items = list_elems_raw(ev, a, 0)?;
            let mut out = String::new();
            for it in items {
                let j = ev.json_of(&it, 0).map_err(Val::Bottom)?;
                out.push_str(&go_json_escape(
                    serde_json::to_string(&j).unwrap_or_default(),
                ));
                out.push('\n');
            }
            Ok(s(out))
        }
        ("encoding/json", "Unmarshal") => {
            let data = a.bytes_or_str(0)?;
            match serde_json::from_slice::<serde_json::Value>(&data) {
                Ok(j) => Ok(ev.make_from_json(&j)),
                Err(e) => Err(bot_val(format!("json: invalid JSON: {e}"), sp)),
            }
        }
        ("encoding/json", "Valid") => {
            let data = a.bytes_or_str(0)?;
            Ok(Val::Bool(
                serde_json::from_slice::<serde_json::Value>(&data).is_ok(),
            ))
        }
        ("encoding/yaml", "Marshal") => {
            let v = a.get(0)?.clone();
            let j = ev.json_of(&v, 0).map_err(Val::Bottom)?;
            Ok(s(yaml::to_yaml(&j)))
        }
        ("encoding/yaml", "MarshalStream") => {
            let items = list_elems_raw(ev, a, 0)?;
            let mut docs = Vec::new();
            for it in items {
                let j = ev.json_of(&it, 0).map_err(Val::Bottom)?;
                docs.push(yaml::to_yaml(&j));
            }
            Ok(s(docs.join("---\n")))
        }
        ("encoding/yaml", "Unmarshal") => {
            let data = a.bytes_or_str(0)?;
            let text = String::from_utf8_lossy(&data);
            match yaml::from_yaml(&text) {
                Ok(j) => Ok(ev.make_from_json(&j)),
                Err(e) => Err(bot_val(format!("yaml: {e}"), sp)),
            }
        }
        ("encoding/base64", "Encode") => {
            let data = a.bytes_or_str(1)?;
            Ok(s(base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                data,
            )))
        }
        ("encoding/base64", "Decode") => {
            let data = a.bytes_or_str(1)?;
            match base64::Engine::decode(&base64::engine::general_purpose::STANDARD, data) {
                Ok(b) => Ok(Val::Bytes(Rc::from(b.as_slice()))),
                Err(e) => Err(bot_val(format!("base64.Decode: {e}"), sp)),
            }
        }
        ("encoding/base64", "EncodedLen") => {
            let n = a.int(1)?;
            Ok(Val::Int((n + 2) / 3 * 4))
        }
        ("encoding/base64", "DecodedLen") => {
            let n = a.int(1)?;
            Ok(Val::Int(n / 4 * 3))
        }
        ("encoding/hex", "Encode") => {
            let data = a.bytes_or_str(0)?;
            Ok(s(data
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()))
        }
        ("encoding/hex", "EncodedLen") => a
            .int(0)?
            .checked_mul(2)
            .map(Val::Int)
            .ok_or_else(|| bot_val("integer overflow", sp)),
        ("encoding/hex", "DecodedLen") => Ok(Val::Int(a.int(0)? / 2)),
        ("encoding/csv", "Decode") => {
            let data = a.bytes_or_str(0)?;
            let rows = csv::decode(&data).map_err(|m| bot_val(format!("{}: {m}", a.name), sp))?;
            let rows = rows
                .into_iter()
                .map(|r| {
                    let fields = r.into_iter().map(s).collect();
                    ev.make_list(fields)
                })
                .collect();
            Ok(ev.make_list(rows))
        }
        ("encoding/csv", "Encode") => {
            let mut rows = Vec::new();
            for row in list_of(ev, a, 0)? {
                let Val::Vertex(w) = row else {
                    return Err(bot_val(
                        format!("{}: cannot use {row} as a list of fields", a.name),
                        sp,
                    ));
                };
                let Some(es) = ev.list_elems(w) else {
                    return Err(bot_val(
                        format!("{}: cannot use a struct as a list of fields", a.name),
                        sp,
                    ));
                };
                let mut fields = Vec::with_capacity(es.len());
                for e in es {
                    let v = ev.value_of(e);
                    let v = ev.concrete(v);
                    match v {
                        Val::Str(x) => fields.push(x.to_string()),
                        other => {
                            let j = ev.json_of(&other, 0).map_err(Val::Bottom)?;
                            fields.push(j.to_string());
                        }
                    }
                }
                rows.push(fields);
            }
            Ok(s(csv::encode(&rows)))
        }
        ("text/template", "Execute") => {
            let t = a.str(0)?;
            let data = a.get(1)?.clone();
            let j = ev.json_of(&data, 0).map_err(Val::Bottom)?;
            template_execute(&t, &j).map(s).map_err(|m| bot_val(m, sp))
        }
        ("encoding/hex", "Decode") => {
            let x = a.str(0)?;
            let mut out = Vec::new();
            let b = x.as_bytes();
            if b.len() % 2 != 0 {
                return Err(bot_val("encoding/hex: odd length hex string", sp));
            }
            for ch in b.chunks(2) {
                let h = std::str::from_utf8(ch)
                    .ok()
                    .and_then(|t| u8::from_str_radix(t, 16).ok())
                    .ok_or_else(|| bot_val("encoding/hex: invalid byte", sp))?;
                out.push(h);
            }
            Ok(Val::Bytes(Rc::from(out.as_slice())))
        }
        _ => Err(bot_val(
            format!("unsupported: builtin {}.{}", pkg, name),
            sp,
        )),
    }
}

fn float_or_int(f: f64) -> Val {
    Val::Float(f)
}

fn compile_re(re: &str, sp: Span) -> R<regex::Regex> {
    regex::Regex::new(re).map_err(|e| bot_val(format!("invalid regular expression: {e}"), sp))
}

fn flatten(ev: &mut Ev<'_>, items: Vec<Val>, depth: i64) -> R<Vec<Val>> {
    let mut out = Vec::new();
    for it in items {
        let c = ev.concrete(it.clone());
        if depth != 0 {
            if let Val::Vertex(w) = c {
                if let Some(es) = ev.list_elems(w) {
                    let sub = flatten(ev, es.into_iter().map(Val::Vertex).collect(), depth - 1)?;
                    out.extend(sub);
                    continue;
                }
            }
        }
        out.push(it);
    }
    Ok(out)
}

/// A subset of Go's text/template: text and `{{.}}` / `{{.a.b}}` field actions (with `{{-`/`-}}`
/// trimming). Anything else is an explicit `unsupported` error.
fn template_execute(t: &str, data: &serde_json::Value) -> Result<String, String> {
    use serde_json::Value as J;
    let mut out = String::new();
    let mut rest = t;
    while let Some(i) = rest.find("{{") {
        let mut text = &rest[..i];
        let after = &rest[i + 2..];
        let Some(j) = after.find("}}") else {
            return Err("template: unclosed action".into());
        };
        let mut action = &after[..j];
        let mut next = &after[j + 2..];
        if let Some(a) = action.strip_prefix('-') {
            if a.starts_with([' ', '\t', '\n', '\r']) {
                text = text.trim_end();
                action = a;
            }
        }
        if let Some(a) = action.strip_suffix('-') {
            if a.ends_with([' ', '\t', '\n', '\r']) {
                next = next.trim_start();
                action = a;
            }
        }
        out.push_str(text);
        let action = action.trim();
        if !action.starts_with('.') || action.contains(char::is_whitespace) {
            return Err(format!(
                "unsupported: text/template action {{{{{action}}}}} (only {{{{.field}}}} is supported)"
            ));
        }
        let mut cur = Some(data);
        for seg in action[1..].split('.').filter(|s| !s.is_empty()) {
            cur = match cur {
                Some(J::Object(m)) => m.get(seg),
                Some(J::Null) | None => None,
                Some(_) => {
                    return Err(format!(
                        "template: can't evaluate field {seg} in a non-struct value"
                    ));
                }
            };
        }
        match cur {
            None | Some(J::Null) => out.push_str("<no value>"),
            Some(J::String(x)) => out.push_str(x),
            Some(J::Bool(b)) => out.push_str(if *b { "true" } else { "false" }),
            Some(J::Number(n)) => out.push_str(&n.to_string()),
            Some(_) => {
                return Err(format!(
                    "unsupported: text/template printing of a struct or list ({{{{{action}}}}})"
                ));
            }
        }
        rest = next;
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_int_bases() {
        assert_eq!(format_int(255, 16), "ff");
        assert_eq!(format_int(-5, 2), "-101");
        assert_eq!(format_int(80, 10), "80");
    }

    #[test]
    fn html_escape() {
        assert_eq!(
            go_json_escape("\"<a&b>\"".into()),
            "\"\\u003ca\\u0026b\\u003e\""
        );
    }
}
