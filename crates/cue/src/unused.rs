//! A `let` declaration or an alias that no expression refers to is an error in CUE: its
//! compiler reports "unreferenced alias or let clause X" when it leaves the scope (cue-lang
//! `internal/core/compile`, `popScope`), so `cue eval` and `cue export` fail. The spec says
//! nothing either way; the archives have no case. References are resolved here as the
//! evaluator resolves them (lexically, innermost scope first: a struct's fields, lets and
//! aliases, a comprehension's bindings), and a reference counts wherever it is, even in
//! another `let` nobody reads (as in CUE). Comprehension `let` clauses are not checked (CUE
//! does not either). The CUE v0.4 oracle (`oracle.mjs --cue eval`) accepts every program the
//! tests below accept and rejects the others (the two with a `let` shadowed by a field or a
//! comprehension variable with another message: "cannot have both alias and field with name").

use crate::ast::*;

/// What is wrong with a file's `let` declarations and aliases, as CUE's compiler says it.
#[derive(Debug, PartialEq, Eq)]
pub enum BindError<'a> {
    /// `alias "X" redeclared in same scope` (two lets or aliases of one name in one struct).
    Redeclared(&'a str, Span),
    /// `unreferenced alias or let clause X`.
    Unreferenced(&'a str, Span),
}

impl std::fmt::Display for BindError<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BindError::Redeclared(n, _) => write!(f, "alias \"{n}\" redeclared in same scope"),
            BindError::Unreferenced(n, _) => write!(f, "unreferenced alias or let clause {n}"),
        }
    }
}

impl BindError<'_> {
    pub fn span(&self) -> Span {
        match self {
            BindError::Redeclared(_, s) | BindError::Unreferenced(_, s) => *s,
        }
    }
}

/// The first `let` or alias of `file` declared twice in one scope, else the first that nothing
/// refers to.
///
/// Cheap where it can be: a file without any (the parser says so, [`File::binds`]) is not
/// walked; otherwise a first walk collects the names declared (and finds redeclarations), and
/// the second resolves only identifiers with one of those names, keeping in its scopes only the
/// declarations with one of them (a field of another name can't shadow a `let`).
pub fn check_binds(file: &File) -> Option<BindError<'_>> {
    if !file.binds {
        return None;
    }
    let body = &file.body;
    let mut w = Walker {
        collecting: true,
        ..Walker::default()
    };
    w.lit(body);
    if let Some((n, s)) = w.redeclared {
        return Some(BindError::Redeclared(n, s));
    }
    if w.lets.is_empty() {
        return None;
    }
    w.names = w.lets.iter().map(|l| l.0).collect();
    w.lets.clear();
    w.collecting = false;
    w.lit(body);
    w.lets
        .iter()
        .find(|l| !l.2)
        .map(|l| BindError::Unreferenced(l.0, l.1))
}

#[derive(Default)]
struct Walker<'a> {
    /// The first walk: only collects the lets and aliases declared (in `lets`).
    collecting: bool,
    /// The second walk: the names of every `let` and alias (the only ones resolved).
    names: Vec<&'a str>,
    /// The names each enclosing scope binds, innermost last; a `let` with its index in `lets`.
    scopes: Vec<Vec<(&'a str, Option<usize>)>>,
    /// Every `let` and alias met: name, position, referred to.
    lets: Vec<(&'a str, Span, bool)>,
    /// The first `let` or alias whose name one before it in the same struct already binds.
    redeclared: Option<(&'a str, Span)>,
}

impl<'a> Walker<'a> {
    fn lit(&mut self, lit: &'a StructLit) {
        let mut scope = Vec::new();
        for d in &lit.decls {
            match d {
                Decl::Field(f) => {
                    if let Label::Ident(n, _) = &f.label {
                        if self.tracked(n) {
                            scope.push((n.as_str(), None));
                        }
                    }
                    if let Some(a) = f.alias() {
                        // `X=label: value`
                        self.declare(&mut scope, a, f.span);
                    }
                }
                Decl::Let(l) => self.declare(&mut scope, &l.name, l.span),
                Decl::Embed(Expr {
                    kind: ExprKind::Alias(a, _),
                    span,
                }) => {
                    // `label: X=value` (parsed as the value's struct embedding `X=value`)
                    self.declare(&mut scope, a, *span);
                }
                _ => {}
            }
        }
        self.scopes.push(scope);
        for d in &lit.decls {
            match d {
                Decl::Field(f) => {
                    if let Label::Pattern(x) | Label::Dynamic(x) = &f.label {
                        self.expr(x);
                    }
                    self.expr(&f.value);
                }
                Decl::Embed(e) => self.expr(e),
                Decl::Let(l) => self.expr(&l.value),
                Decl::Comprehension(c) => self.comp(c),
                Decl::Ellipsis(Some(e), _) => self.expr(e),
                Decl::Ellipsis(None, _) => {}
            }
        }
        self.scopes.pop();
    }

    /// A `let` or alias of `name` declared in the struct whose scope is being built.
    fn declare(&mut self, scope: &mut Vec<(&'a str, Option<usize>)>, name: &'a str, span: Span) {
        if self.collecting
            && self.redeclared.is_none()
            && scope.iter().any(|&(n, l)| n == name && l.is_some())
        {
            self.redeclared = Some((name, span));
        }
        self.lets.push((name, span, false));
        scope.push((name, Some(self.lets.len() - 1)));
    }

    fn comp(&mut self, c: &'a Comprehension) {
        let depth = self.scopes.len();
        for cl in &c.clauses {
            match cl {
                Clause::For {
                    key, value, source, ..
                } => {
                    self.expr(source);
                    let mut s = Vec::new();
                    for n in key.iter().chain([value]) {
                        if self.tracked(n) {
                            s.push((n.as_str(), None));
                        }
                    }
                    self.scopes.push(s);
                }
                Clause::If(e) => self.expr(e),
                Clause::Let { name, value, .. } => {
                    self.expr(value);
                    let s = if self.tracked(name) {
                        vec![(name.as_str(), None)]
                    } else {
                        Vec::new()
                    };
                    self.scopes.push(s);
                }
            }
        }
        self.expr(&c.body);
        self.scopes.truncate(depth);
    }

    fn expr(&mut self, e: &'a Expr) {
        match &e.kind {
            ExprKind::Ident(n) => self.refer(n),
            ExprKind::Interp { parts, .. } => {
                for p in parts {
                    if let InterpPart::Expr(x) = p {
                        self.expr(x);
                    }
                }
            }
            ExprKind::Struct(l) => self.lit(l),
            ExprKind::List(elems) => {
                for el in elems {
                    match el {
                        ListElem::Expr(x) => self.expr(x),
                        ListElem::Comprehension(c) => self.comp(c),
                        ListElem::Ellipsis(Some(x), _) => self.expr(x),
                        ListElem::Ellipsis(None, _) => {}
                    }
                }
            }
            ExprKind::Unary(_, x)
            | ExprKind::Paren(x)
            | ExprKind::Alias(_, x)
            | ExprKind::Selector(x, _, _) => self.expr(x),
            ExprKind::Binary(_, a, b) | ExprKind::Index(a, b) => {
                self.expr(a);
                self.expr(b);
            }
            ExprKind::Slice(x, lo, hi) => {
                self.expr(x);
                for y in [lo, hi].into_iter().flatten() {
                    self.expr(y);
                }
            }
            ExprKind::Call(f, args) => {
                self.expr(f);
                for a in args {
                    self.expr(a);
                }
            }
            ExprKind::Null
            | ExprKind::Bool(_)
            | ExprKind::Int(_)
            | ExprKind::Float(_)
            | ExprKind::Str(_)
            | ExprKind::Bytes(_)
            | ExprKind::Top
            | ExprKind::Bottom => {}
        }
    }

    /// Whether identifiers named `name` are resolved (in the second walk).
    fn tracked(&self, name: &str) -> bool {
        !self.collecting && self.names.contains(&name)
    }

    fn refer(&mut self, name: &str) {
        if !self.tracked(name) {
            return;
        }
        for s in self.scopes.iter().rev() {
            if let Some(&(_, l)) = s.iter().find(|x| x.0 == name) {
                if let Some(i) = l {
                    if let Some(x) = self.lets.get_mut(i) {
                        x.2 = true;
                    }
                }
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unused(src: &str) -> Option<String> {
        let f = crate::parse("t.cue", src).unwrap_or_else(|e| panic!("{src}: {e}"));
        match check_binds(&f) {
            Some(BindError::Unreferenced(n, _)) => Some(n.to_string()),
            _ => None,
        }
    }

    #[test]
    fn the_parser_says_which_files_declare_lets_or_aliases() {
        for (src, binds) in [
            (
                "a: b == c && d >= 1 && e <= 2 && f != 3 && g =~ \"x\" // +usage=x\n",
                false,
            ),
            ("a: [for x in [1] let y = 2 {x}]\n", false),
            ("let x = 1\n", true),
            ("a: {\n\tlet\tx = 1\n}\n", true),
            ("a: X=1\n", true),
            ("X=a: 1\n", true),
        ] {
            let f = crate::parse("t.cue", src).unwrap_or_else(|e| panic!("{src}: {e}"));
            assert_eq!(f.binds, binds, "{src}");
        }
    }

    #[test]
    fn finds_the_let_nothing_refers_to() {
        assert_eq!(unused("let x = 1\na: 2\n"), Some("x".into()));
        assert_eq!(unused("a: {let y = 1, b: 2}\n"), Some("y".into()));
        // shadowed by a field of an inner struct: the let is not what `x` names there
        assert_eq!(unused("let x = 1\na: {x: 2, b: x}\n"), Some("x".into()));
        // shadowed by a comprehension's binding
        assert_eq!(
            unused("let v = 1\na: [for v in [1] {v}]\n"),
            Some("v".into())
        );
    }

    #[test]
    fn finds_the_alias_nothing_refers_to() {
        assert_eq!(unused("a: X=1\nb: 2\n"), Some("X".into()));
        assert_eq!(unused("X=a: 1\nb: 2\n"), Some("X".into()));
        assert_eq!(unused("a: X={b: 1, c: X.b}\n"), None);
        assert_eq!(unused("X=a: {b: 1}\nc: X.b\n"), None);
        // a comprehension's `let` clause is not checked (nor in CUE)
        assert_eq!(unused("a: [for x in [1] let y = 2 {x}]\n"), None);
    }

    #[test]
    fn every_kind_of_reference_counts() {
        let used = [
            "let x = 1\na: x\n",
            "let x = 1\na: b: c: x + 1\n",
            "let x = {a: 1}\nb: x.a\n",
            "let x = [1]\nb: x[0]\n",
            "let x = \"k\"\n(x): 1\n",
            "let x = \"k\"\n\"\\(x)\": 1\n",
            "let x = string\na: {[x]: int}\n",
            "let x = [1]\na: [for y in x {y}]\n",
            "let x = true\na: {if x {b: 1}}\n",
            "let x = 1\na: [if true let z = x {z}]\n",
            "let x = 1\nlet y = x\nb: y\n",
            "import \"strings\"\nlet x = \"a\"\nb: strings.ToUpper(x)\n",
            "let x = 1\na: [...x]\n",
            "let x = 1\na: {...x}\n",
            "a: {let x = 1, b: {c: x}}\n",
            "let x = 1\na: *x | 2\n",
        ];
        for src in used {
            assert_eq!(unused(src), None, "{src}");
        }
        // referred to only from another let nobody reads: still a reference (as in CUE), so
        // only that other let is reported
        assert_eq!(unused("let x = 1\nlet y = x\nb: 2\n"), Some("y".into()));
    }
}
