//! Runtime values used during evaluation: scalars, constraints (kinds and bounds), references to
//! vertices (structs and lists), disjunctions, errors, builtin functions and packages.

use std::fmt;
use std::rc::Rc;

use crate::ast::Span;

pub type VId = u32;

pub const K_NULL: u16 = 1;
pub const K_BOOL: u16 = 2;
pub const K_INT: u16 = 4;
pub const K_FLOAT: u16 = 8;
pub const K_STRING: u16 = 16;
pub const K_BYTES: u16 = 32;
pub const K_STRUCT: u16 = 64;
pub const K_LIST: u16 = 128;
pub const K_NUMBER: u16 = K_INT | K_FLOAT;
pub const K_TOP: u16 = 255;

pub fn kind_name(k: u16) -> String {
    let names = [
        (K_NULL, "null"),
        (K_BOOL, "bool"),
        (K_INT, "int"),
        (K_FLOAT, "float"),
        (K_STRING, "string"),
        (K_BYTES, "bytes"),
        (K_STRUCT, "struct"),
        (K_LIST, "list"),
    ];
    if k == K_TOP {
        return "_".into();
    }
    if k & K_NUMBER == K_NUMBER {
        let rest = k & !K_NUMBER;
        let mut v = vec!["number".to_string()];
        for (b, n) in names {
            if rest & b != 0 {
                v.push(n.to_string());
            }
        }
        return v.join("|");
    }
    let v: Vec<&str> = names
        .iter()
        .filter(|(b, _)| k & b != 0)
        .map(|(_, n)| *n)
        .collect();
    if v.is_empty() {
        "_|_".into()
    } else {
        v.join("|")
    }
}

/// An error value.
#[derive(Debug, Clone)]
pub struct Bot {
    pub msg: String,
    pub incomplete: bool,
    pub spans: Vec<Span>,
    /// Set when the error was raised for a specific field (e.g. closedness), else the path of the
    /// vertex where it is found is used.
    pub path: Option<String>,
}

#[derive(Clone, Debug)]
pub enum BoundOp {
    Lt,
    Le,
    Gt,
    Ge,
    Ne,
    Match,
    NotMatch,
    /// A builtin validator (`strings.MinRunes(3)`): `val` is the `Val::Func`, these are the
    /// arguments after the value being checked.
    Call(Rc<[Val]>),
}

impl BoundOp {
    /// The operator as CUE writes it before the bound's value (`<`, `=~`, ...). A validator call
    /// has no operator of its own; callers print it with `builtins::validator_display` instead.
    pub(crate) fn symbol(&self) -> &'static str {
        match self {
            BoundOp::Lt => "<",
            BoundOp::Le => "<=",
            BoundOp::Gt => ">",
            BoundOp::Ge => ">=",
            BoundOp::Ne => "!=",
            BoundOp::Match => "=~",
            BoundOp::NotMatch | BoundOp::Call(_) => "!~",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Bound {
    pub op: BoundOp,
    pub val: Val,
    pub re: Option<Rc<regex::Regex>>,
}

/// A non-concrete scalar: a set of kinds restricted by bounds.
#[derive(Clone, Debug)]
pub struct Atom {
    pub kinds: u16,
    pub bounds: Vec<Bound>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Builtin {
    Len,
    Close,
    And,
    Or,
    Div,
    Mod,
    Quo,
    Rem,
    /// A package function, by interned index into the builtin table.
    Pkg(u16),
    /// A host function registered on the Runtime, by index.
    Host(u16),
}

#[derive(Clone, Debug)]
pub enum Val {
    Top,
    Bottom(Rc<Bot>),
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Rc<str>),
    Bytes(Rc<[u8]>),
    Atom(Rc<Atom>),
    Vertex(VId),
    Disj(Rc<Vec<(Val, bool)>>),
    Func(Builtin),
    Pkg(Rc<str>),
}

impl Val {
    pub fn bot(msg: impl Into<String>, span: Span) -> Val {
        Val::Bottom(Rc::new(Bot {
            msg: msg.into(),
            incomplete: false,
            spans: vec![span],
            path: None,
        }))
    }
    pub fn incomplete(msg: impl Into<String>, span: Span) -> Val {
        Val::Bottom(Rc::new(Bot {
            msg: msg.into(),
            incomplete: true,
            spans: vec![span],
            path: None,
        }))
    }
    pub fn kind_bits(&self) -> u16 {
        match self {
            Val::Top => K_TOP,
            Val::Bottom(_) => 0,
            Val::Null => K_NULL,
            Val::Bool(_) => K_BOOL,
            Val::Int(_) => K_INT,
            Val::Float(_) => K_FLOAT,
            Val::Str(_) => K_STRING,
            Val::Bytes(_) => K_BYTES,
            Val::Atom(a) => a.kinds,
            Val::Vertex(_) => K_STRUCT | K_LIST,
            Val::Disj(_) | Val::Func(_) | Val::Pkg(_) => K_TOP,
        }
    }
    pub fn is_concrete_scalar(&self) -> bool {
        matches!(
            self,
            Val::Null | Val::Bool(_) | Val::Int(_) | Val::Float(_) | Val::Str(_) | Val::Bytes(_)
        )
    }
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Val::Int(i) => Some(*i as f64),
            Val::Float(f) => Some(*f),
            _ => None,
        }
    }
}

pub fn fmt_float(f: f64) -> String {
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e21 {
        format!("{f:.1}")
    } else {
        format!("{f}")
    }
}

pub fn quote_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

impl fmt::Display for Val {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Val::Top => write!(f, "_"),
            Val::Bottom(b) => write!(f, "_|_ // {}", b.msg),
            Val::Null => write!(f, "null"),
            Val::Bool(b) => write!(f, "{b}"),
            Val::Int(i) => write!(f, "{i}"),
            Val::Float(x) => write!(f, "{}", fmt_float(*x)),
            Val::Str(s) => write!(f, "{}", quote_str(s)),
            Val::Bytes(b) => write!(f, "'{}'", String::from_utf8_lossy(b)),
            Val::Atom(a) => {
                let mut parts = Vec::new();
                let bk = a.bounds.iter().fold(0u16, |acc, b| acc | bound_kinds(b));
                if a.bounds.is_empty() || (a.kinds & !bk) != 0 && a.kinds != bk {
                    if !(a.bounds.len() == 1 && (a.kinds == bk)) {
                        parts.push(kind_name(a.kinds));
                    }
                }
                for b in &a.bounds {
                    if let BoundOp::Call(args) = &b.op {
                        parts.push(crate::builtins::validator_display(&b.val, args));
                        continue;
                    }
                    let op = b.op.symbol();
                    parts.push(format!("{op}{}", b.val));
                }
                if parts.is_empty() {
                    parts.push(kind_name(a.kinds));
                }
                write!(f, "{}", parts.join(" & "))
            }
            Val::Vertex(_) => write!(f, "{{...}}"),
            Val::Disj(alts) => {
                let v: Vec<String> = alts
                    .iter()
                    .map(|(v, d)| if *d { format!("*{v}") } else { v.to_string() })
                    .collect();
                write!(f, "{}", v.join(" | "))
            }
            Val::Func(_) => write!(f, "<func>"),
            Val::Pkg(p) => write!(f, "<package {p}>"),
        }
    }
}

pub fn bound_kinds(b: &Bound) -> u16 {
    match b.op {
        BoundOp::Match | BoundOp::NotMatch => K_STRING | K_BYTES,
        BoundOp::Ne => K_TOP,
        BoundOp::Call(_) => crate::builtins::validator_kinds(&b.val),
        _ => match b.val {
            Val::Str(_) => K_STRING,
            Val::Bytes(_) => K_BYTES,
            _ => K_NUMBER,
        },
    }
}

pub fn type_name(v: &Val) -> String {
    match v {
        Val::Atom(a) => kind_name(a.kinds),
        Val::Vertex(_) => "struct".into(),
        other => kind_name(other.kind_bits()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names() {
        assert_eq!(kind_name(K_INT), "int");
        assert_eq!(kind_name(K_NUMBER), "number");
        assert_eq!(kind_name(K_STRING | K_BYTES), "string|bytes");
        assert_eq!(fmt_float(2.0), "2.0");
    }
}

/// A fast hasher for short label keys and vertex ids (no DoS concern: keys come from the
/// program): multiply-rotate over 8 bytes at a time, as rustc's FxHash does. (The name is
/// historical: it was byte-at-a-time FNV-1a, which cost 4 instructions per byte.)
#[derive(Default, Clone, Copy)]
pub struct Fnv(u64);

impl std::hash::Hasher for Fnv {
    #[inline]
    fn finish(&self) -> u64 {
        self.0.rotate_left(26)
    }
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        self.0 = word_hash(self.0, bytes);
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.0 = self.0.wrapping_add(i as u64).wrapping_mul(HASH_K);
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.0 = self.0.wrapping_add(i as u64).wrapping_mul(HASH_K);
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.0 = self.0.wrapping_add(i).wrapping_mul(HASH_K);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.0 = self.0.wrapping_add(i as u64).wrapping_mul(HASH_K);
    }
}

pub(crate) const HASH_K: u64 = 0xf1357aea2e62a9c5;

/// Folds `bytes` into the hash state `h`, 8 bytes per multiply.
#[inline]
pub fn word_hash(mut h: u64, bytes: &[u8]) -> u64 {
    h = h.wrapping_add(bytes.len() as u64).wrapping_mul(HASH_K);
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let w: [u8; 8] = c.try_into().unwrap_or_default();
        h = h.wrapping_add(u64::from_le_bytes(w)).wrapping_mul(HASH_K);
    }
    // The last 1–7 bytes, read without a variable-length copy (the length is already mixed
    // in, so overlapping reads are fine).
    let r = chunks.remainder();
    let n = r.len();
    if n >= 4 {
        let lo = u32::from_le_bytes([r[0], r[1], r[2], r[3]]) as u64;
        let hi = u32::from_le_bytes([r[n - 4], r[n - 3], r[n - 2], r[n - 1]]) as u64;
        h = h.wrapping_add(lo | (hi << 32)).wrapping_mul(HASH_K);
    } else if n > 0 {
        let w = r[0] as u64 | (r[n / 2] as u64) << 8 | (r[n - 1] as u64) << 16;
        h = h.wrapping_add(w).wrapping_mul(HASH_K);
    }
    h
}

pub type FnvBuild = std::hash::BuildHasherDefault<Fnv>;
