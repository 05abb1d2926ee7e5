//! The abstract syntax tree. Every node carries a byte-offset [`Span`] into its source file.

use std::collections::HashSet;

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
}

/// Literals with at least this many identifier-labelled fields keep a set of their names.
const IDENT_SET_MIN: usize = 16;

impl StructLit {
    /// A literal of the declarations `decls`, with its name filters set.
    pub fn new(decls: Vec<Decl>, span: Span) -> StructLit {
        let mut lit = StructLit {
            decls,
            span,
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

    /// Whether a `let` declaration or an alias declared directly here may bind the name whose
    /// [`label_bloom`] bit is `bit` (false: certainly not; true: scan the declarations).
    #[inline]
    pub fn may_bind(&self, bit: u64) -> bool {
        self.bind_bloom & bit != 0
    }
}

/// The bloom bit of a name: one of 64, from the top bits of its hash.
#[inline]
pub fn label_bloom(name: &str) -> u64 {
    1u64 << (crate::value::word_hash(0, name.as_bytes()) >> 58)
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
