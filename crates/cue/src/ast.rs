//! The abstract syntax tree. Every node carries a byte-offset [`Span`] into its source file.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU16, Ordering::Relaxed};

/// Hasher for label sets (labels are short; no untrusted-key DoS concern here): the same
/// word-at-a-time hash as [`crate::value`]'s label maps.
#[derive(Default, Clone, Copy)]
pub struct LabelHasher(u64);

impl std::hash::Hasher for LabelHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0.rotate_left(26)
    }
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        self.0 = crate::value::word_hash(self.0, bytes);
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.0 = self
            .0
            .wrapping_add(i as u64)
            .wrapping_mul(crate::value::HASH_K);
    }
}

/// A set of label names.
pub type LabelSet = HashSet<String, std::hash::BuildHasherDefault<LabelHasher>>;

/// Byte offsets `[start, end)` into the source of file number `file`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Span {
    pub file: u32,
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub fn to(self, other: Span) -> Span {
        Span {
            file: self.file,
            start: self.start,
            end: other.end.max(self.end),
        }
    }
}

#[derive(Debug, Clone)]
pub struct File {
    pub name: String,
    pub package: Option<String>,
    pub imports: Vec<Import>,
    /// The top-level declarations, as one struct literal (the file is an implicit struct).
    pub body: StructLit,
    pub span: Span,
    /// Whether the file declares a struct `let` or an alias anywhere (checked for use:
    /// `unused.rs`).
    pub binds: bool,
}

#[derive(Debug, Clone)]
pub struct Import {
    /// Explicit local name (`import foo "path"`), if any.
    pub name: Option<String>,
    pub path: String,
    pub span: Span,
}

impl Import {
    /// The name the import is referred to by in the file (without allocating).
    pub fn local_name_ref(&self) -> &str {
        if let Some(n) = &self.name {
            return n;
        }
        if let Some((_, q)) = self.path.split_once(':') {
            return q;
        }
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }

    /// The name the import is referred to by in the file.
    pub fn local_name(&self) -> String {
        if let Some(n) = &self.name {
            return n.clone();
        }
        let p = self.path.split(':').next().unwrap_or(&self.path);
        if let Some((_, q)) = self.path.split_once(':') {
            return q.to_string();
        }
        p.rsplit('/').next().unwrap_or(p).to_string()
    }
}

#[derive(Debug, Clone, Default)]
pub struct StructLit {
    pub decls: Vec<Decl>,
    pub span: Span,
    /// True when the literal has embedded expressions or comprehensions.
    pub has_embed: bool,
    /// One bit per name of a field with an identifier label declared directly here
    /// ([`label_bloom`]): a lookup skips, without comparing names, the literals that certainly
    /// do not declare it.
    pub ident_bloom: u64,
    /// The same for the names bound by `let` declarations and aliases declared directly here.
    pub bind_bloom: u64,
    /// The identifier-labelled field names, only for literals with many of them (a small
    /// literal's declarations are scanned instead: no allocation per literal and name).
    idents: Option<Box<LabelSet>>,
    /// [`StructLit::data_depth`], worked out on first use.
    data: DataMark,
    /// [`StructLit::distinct_labels`], worked out on first use: 0 not yet, 1 no, 2 yes.
    distinct: DataMark,
    /// One bit ([`label_bloom`]) per identifier referenced anywhere inside this literal (its
    /// labels' and values' expressions, embeddings, comprehensions, `let` values, nested
    /// literals), recorded by the parser; all bits where it was not recorded. A name whose bit
    /// is not here is looked up from nowhere inside the literal: when none of its own fields'
    /// names is, no lookup can end at its scope, and the evaluator gives it none.
    pub refs: u64,
}

/// The cached answer of [`StructLit::data_depth`]: 0 not worked out yet, 1 not plain data,
/// `2 + levels` plain data. Atomic so that the syntax tree stays `Sync` (a compiled program is
/// shared between threads; two threads working it out at once store the same answer). Left
/// out of the tree's debug text, which is the same whether it was worked out or not.
#[derive(Default)]
struct DataMark(AtomicU16);

impl Clone for DataMark {
    fn clone(&self) -> Self {
        DataMark(AtomicU16::new(self.0.load(Relaxed)))
    }
}

impl std::fmt::Debug for DataMark {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("_")
    }
}

/// Literals with at least this many identifier-labelled fields keep a set of their names.
const IDENT_SET_MIN: usize = 16;

impl StructLit {
    /// A literal of the declarations `decls`, with its name filters set.
    pub fn new(decls: Vec<Decl>, span: Span) -> StructLit {
        let mut lit = StructLit {
            decls,
            span,
            refs: u64::MAX,
            ..StructLit::default()
        };
        let mut n = 0usize;
        for d in &lit.decls {
            match d {
                Decl::Field(f) => {
                    // quoted labels are not referable by identifiers
                    if let Label::Ident(name, _) = &f.label {
                        lit.ident_bloom |= label_bloom(name);
                        n += 1;
                    }
                    if let Some(a) = f.alias() {
                        lit.bind_bloom |= label_bloom(a);
                    }
                }
                Decl::Embed(e) => {
                    lit.has_embed = true;
                    if let ExprKind::Alias(a, _) = &e.kind {
                        lit.bind_bloom |= label_bloom(a);
                    }
                }
                Decl::Comprehension(_) => lit.has_embed = true,
                Decl::Let(l) => lit.bind_bloom |= label_bloom(&l.name),
                Decl::Ellipsis(..) => {}
            }
        }
        if n >= IDENT_SET_MIN {
            let mut set = LabelSet::with_capacity_and_hasher(n, Default::default());
            for d in &lit.decls {
                if let Decl::Field(Field {
                    label: Label::Ident(name, _),
                    ..
                }) = d
                {
                    set.insert(name.clone());
                }
            }
            lit.idents = Some(Box::new(set));
        }
        lit
    }

    /// Whether this literal declares the field `name` (with an identifier label), whose
    /// [`label_bloom`] bit is `bit`.
    #[inline]
    pub fn declares(&self, name: &str, bit: u64) -> bool {
        if self.ident_bloom & bit == 0 {
            return false;
        }
        match &self.idents {
            Some(set) => set.contains(name),
            None => self.decls.iter().any(
                |d| matches!(d, Decl::Field(Field { label: Label::Ident(n, _), .. }) if n == name),
            ),
        }
    }

    /// Plain data: when every declaration is a field `name: value` (a regular identifier or
    /// quoted label, no two alike, no constraint, alias, attribute or comment) whose value is
    /// a scalar literal (`null`, a boolean, number or string) or plain data itself (a struct
    /// literal, or a list literal of plain data elements), the levels of values below this
    /// literal's vertex (1 for a struct of scalars; see [`data_depth`]); 0 when it is not
    /// plain data. Such a literal means the same with or without evaluation: a vertex whose
    /// one conjunct it is can be exported from the syntax tree. Worked out on the first call
    /// (nested literals' answers included) and kept: no cost at parse time, and a program's
    /// literals are looked at once however often it is evaluated.
    pub fn data_depth(&self) -> u16 {
        match self.data.0.load(Relaxed) {
            0 => {
                let d = self.work_out_data_depth();
                self.data.0.store(d.map_or(1, |d| d + 2), Relaxed);
                d.unwrap_or(0)
            }
            1 => 0,
            m => m - 2,
        }
    }

    /// Whether the fields with an identifier or quoted label all have different labels (none
    /// starting with the byte 1, which arc keys use as a marker): then no two of them share an
    /// arc, and the evaluator adds them to a vertex without arcs without looking each one up.
    /// Worked out on the first call and kept.
    pub fn distinct_labels(&self) -> bool {
        match self.distinct.0.load(Relaxed) {
            0 => {
                let d = self.work_out_distinct_labels();
                self.distinct.0.store(1 + u16::from(d), Relaxed);
                d
            }
            m => m == 2,
        }
    }

    #[inline(never)]
    fn work_out_distinct_labels(&self) -> bool {
        let mut seen = 0u64;
        for (i, d) in self.decls.iter().enumerate() {
            let Decl::Field(f) = d else {
                continue;
            };
            let name = match &f.label {
                Label::Ident(name, _) | Label::Str(name, _) => name.as_bytes(),
                _ => continue,
            };
            let (first, last) = (name.first().copied(), name.last().copied());
            if first == Some(1) {
                return false;
            }
            let (first, last) = (first.unwrap_or(0), last.unwrap_or(0));
            let bit = 1u64 << ((name.len() as u64 ^ u64::from(first) ^ u64::from(last) << 2) & 63);
            if seen & bit != 0 && repeats(&self.decls[..i], name) {
                return false;
            }
            seen |= bit;
        }
        true
    }

    /// [`StructLit::data_depth`] (`None`: not plain data), not cached. Past `u16::MAX - 2`
    /// levels a literal counts as not plain data.
    #[inline(never)]
    fn work_out_data_depth(&self) -> Option<u16> {
        // the levels below, and a mask of the labels seen (by length and end bytes) that finds
        // a repeated label without comparing most pairs
        let mut depth = 0u16;
        let mut seen = 0u64;
        for (i, d) in self.decls.iter().enumerate() {
            let Decl::Field(f) = d else {
                return None;
            };
            // the value first: in a template most are not plain data
            depth = depth.max(data_depth(&f.value)?);
            let name = match &f.label {
                Label::Ident(name, _) | Label::Str(name, _) => name.as_bytes(),
                _ => return None,
            };
            // definitions, hidden fields (and quoted labels that look like them, which get an
            // arc key of their own) and the empty label are not plain data
            let (&first, &last) = (name.first()?, name.last()?);
            if matches!(first, b'#' | b'_' | b'\x01')
                || f.constraint != Constraint::None
                || f.rare.is_some()
                || !f.comments.is_empty()
            {
                return None;
            }
            let bit = 1u64 << ((name.len() as u64 ^ u64::from(first) ^ u64::from(last) << 2) & 63);
            if seen & bit != 0 && repeats(&self.decls[..i], name) {
                return None;
            }
            seen |= bit;
        }
        depth.checked_add(1).filter(|&d| d < u16::MAX - 2)
    }

    /// Whether a `let` declaration or an alias declared directly here may bind the name whose
    /// [`label_bloom`] bit is `bit` (false: certainly not; true: scan the declarations).
    #[inline]
    pub fn may_bind(&self, bit: u64) -> bool {
        self.bind_bloom & bit != 0
    }
}

/// Whether one of `decls` is a field labelled `name`.
fn repeats(decls: &[Decl], name: &[u8]) -> bool {
    decls.iter().any(|d| match d {
        Decl::Field(g) => match &g.label {
            Label::Ident(m, _) | Label::Str(m, _) => m.as_bytes() == name,
            _ => false,
        },
        _ => false,
    })
}

/// Lists nested deeper than this in plain data are not looked into (a list carries no cached
/// answer, so a list is scanned by every list it is nested in).
const DATA_LIST_NEST: u8 = 8;

/// The levels of values below plain data `e` (see [`StructLit::data_depth`]): 0 for a scalar
/// literal; `None` when `e` is not plain data.
pub fn data_depth(e: &Expr) -> Option<u16> {
    data_depth_in(e, DATA_LIST_NEST)
}

fn data_depth_in(e: &Expr, lists: u8) -> Option<u16> {
    match &e.kind {
        ExprKind::Null
        | ExprKind::Bool(_)
        | ExprKind::Int(_)
        | ExprKind::Float(_)
        | ExprKind::Str(_) => Some(0),
        ExprKind::Struct(l) => match l.data_depth() {
            0 => None,
            d => Some(d),
        },
        ExprKind::List(xs) => {
            let lists = lists.checked_sub(1)?;
            let mut d = 0u16;
            for x in xs {
                let ListElem::Expr(e) = x else {
                    return None;
                };
                d = d.max(data_depth_in(e, lists)?);
            }
            d.checked_add(1).filter(|&d| d < u16::MAX - 2)
        }
        _ => None,
    }
}

/// The bloom bit of a name: one of 64, from the top bits of a hash of its length and its
/// first, middle and last bytes (one multiply; the whole name through `word_hash` cost a
/// literal's construction about twice as much).
#[inline]
pub fn label_bloom(name: &str) -> u64 {
    let b = name.as_bytes();
    let (Some(&first), Some(&last)) = (b.first(), b.last()) else {
        return 1;
    };
    let mid = b.get(b.len() / 2).copied().unwrap_or(0);
    let w = b.len() as u64 | u64::from(first) << 16 | u64::from(mid) << 24 | u64::from(last) << 32;
    1u64 << (w.wrapping_mul(crate::value::HASH_K) >> 58)
}

#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)]
pub enum Decl {
    Field(Field),
    Embed(Expr),
    Let(LetDecl),
    Comprehension(Comprehension),
    Ellipsis(Option<Expr>, Span),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Constraint {
    None,
    Optional,
    Required,
}

/// Doc comment lines of a field, shared (not copied) by every value the field reaches.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Comments(Option<std::sync::Arc<[String]>>);

impl Comments {
    #[inline]
    pub fn from_vec(lines: Vec<String>) -> Comments {
        if lines.is_empty() {
            Comments(None)
        } else {
            Comments(Some(lines.into()))
        }
    }

    /// Adds the lines of `other` not already here, in order.
    pub fn merge(&mut self, other: &Comments) {
        let Some(o) = &other.0 else {
            return;
        };
        match &self.0 {
            None => self.0 = Some(o.clone()),
            Some(s) if std::sync::Arc::ptr_eq(s, o) => {}
            Some(s) => {
                if o.iter().all(|c| s.contains(c)) {
                    return;
                }
                let mut v: Vec<String> = s.to_vec();
                for c in o.iter() {
                    if !v.contains(c) {
                        v.push(c.clone());
                    }
                }
                self.0 = Some(v.into());
            }
        }
    }
}

impl std::ops::Deref for Comments {
    type Target = [String];
    fn deref(&self) -> &[String] {
        self.0.as_deref().unwrap_or(&[])
    }
}

impl std::fmt::Debug for Comments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl PartialEq<Vec<String>> for Comments {
    fn eq(&self, other: &Vec<String>) -> bool {
        **self == other[..]
    }
}

#[derive(Debug, Clone)]
pub struct Field {
    pub label: Label,
    pub constraint: Constraint,
    pub value: Expr,
    /// The parts most fields do without (boxed: every declaration is moved and stored by value).
    pub rare: Option<Box<FieldRare>>,
    /// Doc comment lines (without `//`, trimmed).
    pub comments: Comments,
    pub span: Span,
}

/// A field's alias and attributes.
#[derive(Debug, Clone)]
pub struct FieldRare {
    /// `X=label: value`
    pub alias: Option<Box<str>>,
    pub attrs: Box<[Attr]>,
}

impl Field {
    /// The alias of `X=label: value`.
    pub fn alias(&self) -> Option<&str> {
        self.rare.as_ref().and_then(|r| r.alias.as_deref())
    }

    /// The attributes after the value.
    pub fn attrs(&self) -> &[Attr] {
        self.rare.as_ref().map_or(&[], |r| &r.attrs)
    }
}

#[derive(Debug, Clone)]
pub struct Attr {
    pub name: String,
    pub body: String,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub enum Label {
    /// An identifier label, including `#def`, `_hidden` and `_#hiddenDef`.
    Ident(String, Span),
    /// A quoted label without interpolation.
    Str(String, Span),
    /// A quoted label with interpolation, or `(expr)`.
    Dynamic(Box<Expr>),
    /// `[expr]: value`
    Pattern(Box<Expr>),
}

impl Label {
    pub fn span(&self) -> Span {
        match self {
            Label::Ident(_, s) | Label::Str(_, s) => *s,
            Label::Dynamic(e) | Label::Pattern(e) => e.span,
        }
    }
}

#[derive(Debug, Clone)]
pub struct LetDecl {
    pub name: String,
    pub value: Expr,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct Comprehension {
    pub clauses: Vec<Clause>,
    pub body: Box<Expr>,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub enum Clause {
    For {
        key: Option<String>,
        value: String,
        source: Expr,
        span: Span,
    },
    If(Expr),
    Let {
        name: String,
        value: Expr,
        span: Span,
    },
}

#[derive(Debug, Clone)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnaryOp {
    Neg,
    Pos,
    Not,
    Default,
    Lt,
    Le,
    Gt,
    Ge,
    Ne,
    Match,
    NotMatch,
    Eq,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Or,
    And,
    LOr,
    LAnd,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Match,
    NotMatch,
    Add,
    Sub,
    Mul,
    Div,
    /// Legacy infix integer operators `div`, `mod`, `quo`, `rem`.
    IntDiv,
    IntMod,
    IntQuo,
    IntRem,
}

impl BinOp {
    pub fn as_str(self) -> &'static str {
        match self {
            BinOp::Or => "|",
            BinOp::And => "&",
            BinOp::LOr => "||",
            BinOp::LAnd => "&&",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::Match => "=~",
            BinOp::NotMatch => "!~",
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::IntDiv => "div",
            BinOp::IntMod => "mod",
            BinOp::IntQuo => "quo",
            BinOp::IntRem => "rem",
        }
    }
}

#[derive(Debug, Clone)]
pub enum InterpPart {
    Lit(String),
    Expr(Expr),
}

#[derive(Debug, Clone)]
pub enum ListElem {
    Expr(Expr),
    Comprehension(Comprehension),
    Ellipsis(Option<Box<Expr>>, Span),
}

#[derive(Debug, Clone)]
pub enum ExprKind {
    Ident(String),
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Interp {
        parts: Vec<InterpPart>,
        bytes: bool,
    },
    Top,
    Bottom,
    Struct(Box<StructLit>),
    List(Vec<ListElem>),
    Unary(UnaryOp, Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    Selector(Box<Expr>, String, Span),
    Index(Box<Expr>, Box<Expr>),
    Slice(Box<Expr>, Option<Box<Expr>>, Option<Box<Expr>>),
    Call(Box<Expr>, Vec<Expr>),
    Paren(Box<Expr>),
    /// `X=expr` as a value alias.
    Alias(String, Box<Expr>),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The AST's node sizes: every expression, declaration and list element is moved and stored
    /// by value, so a variant that grows them all (an inline struct literal did, to 128 bytes)
    /// costs time and memory per node.
    /// Which literals have distinct field labels, and which are plain data (both worked out
    /// on first use and kept).
    #[test]
    fn distinct_labels_and_plain_data() {
        let cases = [
            ("a: 1\nb: {c: [1, {d: null}]}", true, 4),
            ("a: 1\n\"a\": 2", false, 0),
            ("a: 1\nb: 2\na: 3", false, 0),
            ("\"\\u0001x\": 1\nx: 2", false, 0),
            ("(k): 1\na: 2\nk: \"b\"", true, 0),
            ("a: 1\n#b: 2", true, 0),
            ("a: 1\nb: c", true, 0),
            ("a?: 1", true, 0),
        ];
        for (src, distinct, data) in cases {
            let f = crate::parse("t.cue", src).unwrap_or_else(|e| panic!("{src}: {e}"));
            for _ in 0..2 {
                assert_eq!(f.body.distinct_labels(), distinct, "{src}");
                assert_eq!(f.body.data_depth(), data, "{src}");
            }
        }
    }

    /// The identifiers a struct literal refers to, as the parser records them: references
    /// anywhere inside (nested literals, interpolations, comprehensions), not labels.
    #[test]
    fn referenced_identifiers_are_recorded() {
        let lit = |e: &Expr| match &e.kind {
            ExprKind::Struct(l) => l.refs,
            _ => panic!("not a struct literal"),
        };
        let field = |f: &File, i: usize| match &f.body.decls[i] {
            Decl::Field(f) => f.value.clone(),
            _ => panic!("not a field"),
        };
        let f = crate::parse(
            "t.cue",
            "a: {b?: x, c: {d: y}, \"e\": \"\\(z)\", for k, v in w {}}\nb: p: q\nc: {\"k\": [1, {\"l\": null}]}",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let bits = |names: &[&str]| names.iter().fold(0, |m, n| m | label_bloom(n));
        assert_eq!(lit(&field(&f, 0)), bits(&["x", "y", "z", "w"]));
        assert_eq!(lit(&field(&f, 1)), bits(&["q"]));
        assert_eq!(lit(&field(&f, 2)), 0);
    }

    #[test]
    fn node_sizes() {
        use std::mem::size_of;
        eprintln!(
            "Expr {} ExprKind {} Decl {} Field {} Label {} ListElem {} StructLit {} LetDecl {} Comprehension {}",
            size_of::<Expr>(),
            size_of::<ExprKind>(),
            size_of::<Decl>(),
            size_of::<Field>(),
            size_of::<Label>(),
            size_of::<ListElem>(),
            size_of::<StructLit>(),
            size_of::<LetDecl>(),
            size_of::<Comprehension>()
        );
        assert!(size_of::<Expr>() <= 64, "Expr: {}", size_of::<Expr>());
        assert!(size_of::<Decl>() <= 144, "Decl: {}", size_of::<Decl>());
        assert!(
            size_of::<ListElem>() <= 64,
            "ListElem: {}",
            size_of::<ListElem>()
        );
    }
}
