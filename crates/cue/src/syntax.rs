//! `cue eval`: an evaluated program printed in CUE syntax, non-concrete values included.
//!
//! [`Program::eval_syntax`] evaluates the program and walks the evaluation arena (not the
//! exported [`crate::Value`] tree, which keeps no type, bound or expression of a value that is
//! not concrete) into a small document model ([`Doc`]), then lays that out as `cue eval`
//! (v0.14, `cue/format` with 4-space indentation) does:
//!
//! - concrete values as literals; strings quoted and escaped the CUE way, a string with a
//!   newline as a `"""` block indented one level deeper than its field;
//! - types and bounds as CUE (`int`, `>=0 & <10`, `=~"^a"`, `int | string`); defaults
//!   resolved (`*"x" | string` is `"x"`; several defaults leave their disjunction, without
//!   marks); an open list tail is dropped (`[1, 2, ...int]` is `[1, 2]`);
//! - a value that is incomplete because an expression cannot be computed yet as that
//!   expression, as written (`g: a + 1`), binary operators spaced as `cue fmt` spaces them;
//! - definitions printed; hidden fields (`_x`) only with [`SyntaxOptions::hidden`], optional
//!   fields (`x?`) only with [`SyntaxOptions::optional`]; a required field that is not there
//!   as `x!: T`;
//! - consecutive fields whose values are neither structs nor lists aligned on their values,
//!   as `cue fmt` aligns them; lists on one line, non-empty structs one field per line.
//!
//! Errors are not printed here: the caller validates first (`cue eval` fails on any error
//! that is not incomplete); an error met anyway is written `_|_ // message`.

use std::fmt::Write as _;

use crate::ast::{self, BinOp, Clause, Decl, Expr, ExprKind, InterpPart, Label, ListElem, UnaryOp};
use crate::eval::{CX, Closed, Conj, Ev, FK};
use crate::value::{Atom, BoundOp, K_BOOL, K_BYTES, K_FLOAT, K_INT, K_LIST, K_NULL, K_NUMBER};
use crate::value::{K_STRING, K_STRUCT, K_TOP, VId, Val};
use crate::{Error, Program, ProgramInner};

/// What [`Program::eval_syntax`] shows besides regular fields and definitions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyntaxOptions {
    /// Hidden fields (`_x`, `_#x`): `cue eval -H/--show-hidden`.
    pub hidden: bool,
    /// Optional fields (`x?: T`): `cue eval -O/--show-optional`.
    pub optional: bool,
}

impl Program {
    /// Evaluates the program and prints it (or the value at `path`, a dotted path as
    /// [`crate::Value::lookup`] takes, when given) in CUE syntax, as `cue eval` prints it. The
    /// text ends with a newline. `Err` for a path that is not there or a fatal evaluation
    /// error (a limit); errors inside the value are not checked here (see
    /// [`crate::Value::validate`]).
    pub fn eval_syntax(&self, path: Option<&str>, opts: &SyntaxOptions) -> Result<String, Error> {
        let inner: &ProgramInner = &self.inner;
        // Evaluation and printing recurse, as the exporter's deep path does.
        crate::export::on_deep_stack(&inner.limits, || print_program(inner, path, opts))
    }
}

fn print_program(
    inner: &ProgramInner,
    path: Option<&str>,
    opts: &SyntaxOptions,
) -> Result<String, Error> {
    let mut ev = Ev::new(&inner.files, inner.limits.clone());
    ev.hosts = &inner.hosts;
    ev.packages = &inner.packages;
    ev.main_files = inner.main_files;
    let root = ev.new_vertex();
    for f in inner.files.iter().take(inner.main_files) {
        ev.vs[root as usize].conjs.push(Conj {
            x: CX::Lit(&f.body),
            env: None,
            closed: Closed::No,
        });
    }
    let imports: Vec<(String, String)> = inner
        .files
        .iter()
        .take(inner.main_files)
        .flat_map(|f| f.imports.iter())
        .map(|i| (i.local_name(), i.path.clone()))
        .collect();
    let mut p = Printer {
        ev,
        opts: *opts,
        imports,
        used: Vec::new(),
        sources: &inner.sources,
        refs: Vec::new(),
    };
    let mut target = root;
    if let Some(path) = path.filter(|p| !p.is_empty()) {
        for seg in crate::export::split_path(path) {
            target = p
                .child(target, &seg)
                .ok_or_else(|| Error::new(format!("reference {path:?} not found")))?;
        }
    }
    let doc = p.vertex(target, 0);
    if let Some(f) = p.ev.fatal.take() {
        return Err(f);
    }
    let mut out = String::new();
    let mut used = std::mem::take(&mut p.used);
    used.sort();
    used.dedup();
    if !used.is_empty() && target == root {
        if let [one] = used.as_slice() {
            let _ = writeln!(out, "import {}\n", quote_str(one));
        } else {
            out.push_str("import (\n");
            for u in &used {
                let _ = writeln!(out, "    {}", quote_str(u));
            }
            out.push_str(")\n\n");
        }
    }
    match doc {
        // the file (or a selected struct) is its fields, without braces
        Doc::Block(items) => {
            render_items(&items, 0, &mut out);
            if items.is_empty() {
                // an empty struct is an empty line (`cue eval -e x` of `x: {}`)
                out.push('\n');
            }
        }
        d => {
            render(&d, 0, &mut out);
            out.push('\n');
        }
    }
    if inner.skip_teardown {
        // a one-shot process: the arena goes back to the operating system at exit
        std::mem::forget(p);
    }
    Ok(out)
}

// ------------------------------------------------------------------------- document model

/// A piece of CUE text to lay out.
#[derive(Debug, Clone)]
enum Doc {
    /// Text on one line.
    Text(String),
    /// Pieces on one line, one after the other (a piece may itself span lines).
    Seq(Vec<Doc>),
    /// A struct: `{}` when empty, else one item per line, indented.
    Block(Vec<Item>),
    /// A list: `[a, b]`, on one line (an element may span lines).
    List(Vec<Doc>),
    /// A multi-line string: `open`, then each line indented one level deeper than the line
    /// the string starts on (empty lines stay empty), then `close` on a line of its own.
    Multi {
        open: String,
        lines: Vec<String>,
        close: String,
    },
}

#[derive(Debug, Clone)]
enum Item {
    /// `label: value` (the label includes its `?` or `!`).
    Field(String, Doc),
    /// A line of its own: an embedded value, a comprehension, a `let`, `...`.
    Line(Doc),
}

fn text(s: impl Into<String>) -> Doc {
    Doc::Text(s.into())
}

fn multi_line(d: &Doc) -> bool {
    match d {
        Doc::Text(_) => false,
        Doc::Seq(v) | Doc::List(v) => v.iter().any(multi_line),
        Doc::Block(items) => !items.is_empty(),
        Doc::Multi { .. } => true,
    }
}

const INDENT: &str = "    ";

fn indent(out: &mut String, level: usize) {
    for _ in 0..level {
        out.push_str(INDENT);
    }
}

/// Writes `d`, whose first line is already indented at `level`.
fn render(d: &Doc, level: usize, out: &mut String) {
    match d {
        Doc::Text(s) => out.push_str(s),
        Doc::Seq(v) => v.iter().for_each(|x| render(x, level, out)),
        Doc::List(v) => {
            out.push('[');
            for (i, x) in v.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                render(x, level, out);
            }
            out.push(']');
        }
        Doc::Block(items) if items.is_empty() => out.push_str("{}"),
        Doc::Block(items) => {
            out.push_str("{\n");
            render_items(items, level + 1, out);
            indent(out, level);
            out.push('}');
        }
        Doc::Multi { open, lines, close } => {
            out.push_str(open);
            for l in lines {
                out.push('\n');
                if !l.is_empty() {
                    indent(out, level + 1);
                    out.push_str(l);
                }
            }
            out.push('\n');
            indent(out, level + 1);
            out.push_str(close);
        }
    }
}

/// Whether a field's value is aligned with its neighbours' (`cue fmt` puts a tab stop before
/// any value but a struct or list literal).
fn aligned(d: &Doc) -> bool {
    !matches!(d, Doc::Block(_) | Doc::List(_))
}

/// Writes struct items one per line at `level`. A run of consecutive fields with aligned
/// values shares one value column; a field whose value spans lines ends its run.
fn render_items(items: &[Item], level: usize, out: &mut String) {
    let mut i = 0;
    while i < items.len() {
        // the run starting here
        let mut j = i;
        let mut width = 0;
        while let Some(Item::Field(l, v)) = items.get(j) {
            if !aligned(v) {
                break;
            }
            width = width.max(l.chars().count());
            j += 1;
            if multi_line(v) {
                break;
            }
        }
        if j == i {
            // not aligned: one item
            indent(out, level);
            match &items[i] {
                Item::Field(l, v) => {
                    out.push_str(l);
                    out.push_str(": ");
                    render(v, level, out);
                }
                Item::Line(d) => render(d, level, out),
            }
            out.push('\n');
            i += 1;
            continue;
        }
        for it in &items[i..j] {
            if let Item::Field(l, v) = it {
                indent(out, level);
                out.push_str(l);
                out.push(':');
                for _ in 0..=(width - l.chars().count()) {
                    out.push(' ');
                }
                render(v, level, out);
                out.push('\n');
            }
        }
        i = j;
    }
}

// ------------------------------------------------------------------------- literals

/// A CUE string (or, with `quote` `'`, bytes) literal of `s`, as `cue` quotes a value
/// (`literal.String.WithOptionalTabIndent`): one line with escapes, or a `"""` block when
/// `s` has a newline.
fn quote_doc(s: &str, quote: char) -> Doc {
    if !s.contains('\n') {
        let mut out = String::with_capacity(s.len() + 2);
        out.push(quote);
        escape_into(s, quote, false, &mut out);
        out.push(quote);
        return Doc::Text(out);
    }
    let triple: String = std::iter::repeat_n(quote, 3).collect();
    let hashes = "#".repeat(required_hashes(s, &triple, quote));
    let mut esc = String::with_capacity(s.len());
    escape_into(s, quote, true, &mut esc);
    if !hashes.is_empty() {
        esc = esc.replace('\\', &format!("\\{hashes}"));
    }
    Doc::Multi {
        open: format!("{hashes}{triple}"),
        lines: esc.split('\n').map(str::to_string).collect(),
        close: format!("{triple}{hashes}"),
    }
}

/// `s` quoted on one line (import paths, labels).
fn quote_str(s: &str) -> String {
    let mut out = String::from('"');
    escape_into(s, '"', false, &mut out);
    out.push('"');
    out
}

/// The `#`s a multi-line literal needs so that a `"""` inside it does not end it.
fn required_hashes(s: &str, triple: &str, quote: char) -> usize {
    let mut n = 0;
    let mut rest = s;
    while let Some(j) = rest.find(triple) {
        rest = &rest[j + 3..];
        rest = rest.trim_start_matches(quote);
        let h = rest.len() - rest.trim_start_matches('#').len();
        n = n.max(h + 1);
        rest = rest.trim_start_matches('#');
    }
    n
}

/// Escapes `s` as CUE does: `\` always, the quote on one line, control and non-printable
/// characters as `\n`, `\t`, `\u00XX`…; newlines kept in a multi-line literal.
fn escape_into(s: &str, quote: char, multi: bool, out: &mut String) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' if multi => out.push('\n'),
            c if c == quote && !multi => {
                out.push('\\');
                out.push(c);
            }
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            // bytes literals are exact: a control byte is `\xNN`
            c if quote == '\'' && (c as u32) < 0x20 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_control() || is_unprintable(c) => {
                let n = c as u32;
                if n < 0x10000 {
                    let _ = write!(out, "\\u{n:04x}");
                } else {
                    let _ = write!(out, "\\U{n:08x}");
                }
            }
            c => out.push(c),
        }
    }
}

/// Characters Go's `strconv.IsPrint` rejects beyond the controls: separators other than the
/// space, and the BOM / other format characters that matter in practice.
fn is_unprintable(c: char) -> bool {
    matches!(
        c,
        '\u{a0}' | '\u{ad}' | '\u{2028}' | '\u{2029}' | '\u{feff}'
    ) || ('\u{2000}'..='\u{200f}').contains(&c)
}

/// Bytes as a CUE bytes literal: text where it is UTF-8, `\xNN` for other bytes.
fn bytes_doc(b: &[u8]) -> Doc {
    let mut out = String::from('\'');
    let mut rest = b;
    while !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                escape_into(s, '\'', false, &mut out);
                break;
            }
            Err(e) => {
                let (ok, bad) = rest.split_at(e.valid_up_to());
                escape_into(
                    std::str::from_utf8(ok).unwrap_or_default(),
                    '\'',
                    false,
                    &mut out,
                );
                let n = e.error_len().unwrap_or(bad.len()).max(1).min(bad.len());
                for x in &bad[..n] {
                    let _ = write!(out, "\\x{x:02x}");
                }
                rest = &bad[n..];
            }
        }
    }
    out.push('\'');
    Doc::Text(out)
}

fn float_text(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let a = f.abs();
    if a != 0.0 && !(1e-6..1e21).contains(&a) {
        let s = format!("{f:e}");
        // Rust writes `1e300`, `1.5e-7`; CUE `1e+300`, `1.5e-7`
        return match s.split_once('e') {
            Some((m, e)) if !e.starts_with('-') => format!("{m}e+{e}"),
            _ => s,
        };
    }
    crate::value::fmt_float(f)
}

/// A label as CUE writes it: an identifier when it is one, else quoted. `quoted` forces the
/// quotes (a regular field whose name looks like a definition or hidden field).
fn label_text(name: &str, quoted: bool) -> String {
    if !quoted && is_ident(name) {
        name.to_string()
    } else {
        quote_str(name)
    }
}

fn is_ident(name: &str) -> bool {
    let body = name
        .strip_prefix("_#")
        .or_else(|| name.strip_prefix('#'))
        .unwrap_or(name);
    if body.is_empty() || name == "_" {
        return false;
    }
    let mut cs = body.chars();
    let first_ok = cs
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_' || c == '$');
    first_ok && cs.all(|c| c.is_alphanumeric() || c == '_' || c == '$')
}

fn kind_text(k: u16) -> String {
    if k == K_TOP {
        return "_".into();
    }
    let mut parts: Vec<&str> = Vec::new();
    let mut rest = k;
    if rest & K_NUMBER == K_NUMBER {
        parts.push("number");
        rest &= !K_NUMBER;
    }
    for (bit, name) in [
        (K_NULL, "null"),
        (K_BOOL, "bool"),
        (K_INT, "int"),
        (K_FLOAT, "float"),
        (K_STRING, "string"),
        (K_BYTES, "bytes"),
        (K_STRUCT, "{...}"),
        (K_LIST, "[...]"),
    ] {
        if rest & bit != 0 {
            parts.push(name);
        }
    }
    if parts.is_empty() {
        return "_|_".into();
    }
    parts.join(" | ")
}

// ------------------------------------------------------------------------- values

struct Printer<'a> {
    ev: Ev<'a>,
    opts: SyntaxOptions,
    /// The main files' imports: (local name, path).
    imports: Vec<(String, String)>,
    /// Import paths referred to by printed expressions.
    used: Vec<String>,
    /// The program's files' line indexes (whether a literal was written on one line).
    sources: &'a [crate::SourceFile],
    /// Identifiers referred to by printed expressions, in order (which `let`s to print).
    refs: Vec<String>,
}

impl<'a> Printer<'a> {
    /// The field `name` (as written in a path: `#d`, `_h`, `x`) or list element of vertex `v`.
    fn child(&mut self, v: VId, name: &str) -> Option<VId> {
        self.ev.expand(v);
        let r = self.ev.deref(v);
        let x = &self.ev.vs[r as usize];
        if x.is_list {
            return name
                .parse::<usize>()
                .ok()
                .and_then(|i| x.elems.get(i).copied());
        }
        x.arcs
            .iter()
            .find(|(k, a)| {
                crate::eval::display_label(k) == name && (a.regular || a.kind != FK::Regular)
            })
            .map(|(_, a)| a.vid)
    }

    fn vertex(&mut self, vid: VId, depth: usize) -> Doc {
        if depth > self.ev.limits.max_depth {
            self.ev.depth_hit = true;
            return text("_|_ // structural cycle");
        }
        if self.ev.fatal.is_some() {
            return text("_|_ // evaluation aborted");
        }
        self.ev.expand(vid);
        let r = self.ev.deref(vid);
        let orig = &self.ev.vs[vid as usize];
        if orig.forward.is_none() {
            if let Some(alts) = orig.disj_result().cloned() {
                let alts: Vec<(VId, bool)> = alts.iter().copied().collect();
                return self.disjunction(&alts, depth);
            }
        }
        let x = &self.ev.vs[r as usize];
        if let Some(b) = x.err.clone() {
            if b.incomplete {
                if let Some(d) = self.conjunct_exprs(vid, r, depth) {
                    return d;
                }
            }
            return text(format!("_|_ // {}", b.msg));
        }
        if x.is_list {
            let elems = x.elems.clone();
            let docs = elems.iter().map(|&e| self.vertex(e, depth + 1)).collect();
            return Doc::List(docs);
        }
        if x.is_struct {
            // a scalar embedded in a struct that has definitions: `{string, #foo: "bar"}`
            let embedded = match &x.atom {
                Val::Vertex(_) => None,
                Val::Top if !self.embeds_top(r) && !self.embeds_top(vid) => None,
                a => Some(a.clone()),
            };
            let fields = self.fields(r, true, depth);
            let Some(a) = embedded else {
                return Doc::Block(fields);
            };
            let base = self.scalar(&a);
            if fields.is_empty() {
                // `{_}` is `_`, `{string}` is `string`
                return base;
            }
            let mut items = vec![Item::Line(base)];
            items.extend(fields);
            return Doc::Block(items);
        }
        let atom = x.atom.clone();
        if !atom.is_concrete_scalar() && self.has_incomplete_expr(vid) {
            if let Some(d) = self.conjunct_exprs(vid, r, depth) {
                return d;
            }
        }
        let base = self.atom(&atom, vid, r, depth);
        // a scalar with definitions or hidden fields beside it: `{1, #y: 1}`
        let defs = self.fields(r, false, depth);
        if defs.is_empty() {
            return base;
        }
        let mut items = vec![Item::Line(base)];
        items.extend(defs);
        Doc::Block(items)
    }

    /// The fields of struct vertex `r` to print (all, or only definitions and hidden fields),
    /// then its pending comprehensions (whose conditions are not known yet) as written.
    fn fields(&mut self, r: VId, regular_too: bool, depth: usize) -> Vec<Item> {
        let arcs: Vec<(String, crate::eval::ArcInfo)> = self.ev.vs[r as usize]
            .arcs
            .iter()
            .map(|(k, a)| (k.to_string(), a.clone()))
            .collect();
        let stalled: Vec<(usize, &'a ast::Comprehension)> = if regular_too {
            self.ev.vs[r as usize].comp_stalled().to_vec()
        } else {
            Vec::new()
        };
        let mut stalled = stalled.into_iter().peekable();
        let refs_before = self.refs.len();
        let mut items = Vec::new();
        for (i, (key, arc)) in arcs.into_iter().enumerate() {
            // comprehensions still waiting for their clauses, where they were written
            while let Some((_, c)) = stalled.next_if(|(pos, _)| *pos <= i) {
                items.push(Item::Line(self.comprehension(c)));
            }
            let name = crate::eval::display_label(&key);
            let forced_quotes = key.starts_with('\u{1}');
            let hidden = arc.kind != FK::Regular && name.starts_with('_');
            if hidden && !self.opts.hidden {
                continue;
            }
            if arc.kind == FK::Regular && !regular_too {
                continue;
            }
            let mark = if arc.regular {
                ""
            } else if arc.required {
                "!"
            } else if arc.optional && self.opts.optional {
                "?"
            } else {
                continue;
            };
            let label = format!("{}{mark}", label_text(name, forced_quotes));
            let value = self.vertex(arc.vid, depth + 1);
            items.push(Item::Field(label, value));
        }
        for (_, c) in stalled {
            items.push(Item::Line(self.comprehension(c)));
        }
        if self.refs.len() > refs_before {
            let lets = self.lets_referred(r, refs_before);
            if !lets.is_empty() {
                items.splice(0..0, lets);
            }
        }
        items
    }

    /// The struct literals among the conjuncts of vertex `r`.
    fn struct_lits(&self, r: VId) -> Vec<&'a ast::StructLit> {
        self.ev.vs[r as usize]
            .conjs
            .iter()
            .filter_map(|c| match c.x {
                CX::Lit(l) => Some(l),
                CX::Expr(e) => match &e.kind {
                    ExprKind::Struct(l) => Some(&**l),
                    _ => None,
                },
                _ => None,
            })
            .collect()
    }

    /// Whether a struct literal of vertex `r` embeds `_` (`{_, #a: 1}`): the value is top
    /// with definitions beside it, not an empty struct.
    fn embeds_top(&self, r: VId) -> bool {
        self.struct_lits(r).iter().any(|l| {
            l.decls.iter().any(|d| {
                matches!(d, Decl::Embed(e) if matches!(&e.kind, ExprKind::Top)
                    || matches!(&e.kind, ExprKind::Ident(n) if n == "_"))
            })
        })
    }

    /// The `let` declarations of the struct literals of vertex `r` that expressions printed
    /// since `refs[from]` refer to, as `let x = expr` lines (without them the printed
    /// expressions would refer to nothing).
    fn lets_referred(&mut self, r: VId, from: usize) -> Vec<Item> {
        let lits = self.struct_lits(r);
        let mut out = Vec::new();
        let mut printed: Vec<&str> = Vec::new();
        for l in lits {
            for d in &l.decls {
                let Decl::Let(x) = d else { continue };
                if printed.contains(&x.name.as_str()) || !self.refs[from..].contains(&x.name) {
                    continue;
                }
                printed.push(&x.name);
                let v = self.expr(&x.value);
                out.push(Item::Line(Doc::Seq(vec![
                    text(format!("let {} = ", x.name)),
                    v,
                ])));
            }
        }
        out
    }

    /// Alternatives of a disjunction left open: its defaults if it has any (`cue eval`
    /// resolves defaults), else all of them.
    fn disjunction(&mut self, alts: &[(VId, bool)], depth: usize) -> Doc {
        let defaults: Vec<VId> = alts.iter().filter(|a| a.1).map(|a| a.0).collect();
        let pick: Vec<VId> = if defaults.is_empty() {
            alts.iter().map(|a| a.0).collect()
        } else {
            defaults
        };
        let mut parts = Vec::new();
        for (i, v) in pick.into_iter().enumerate() {
            if i > 0 {
                parts.push(text(" | "));
            }
            parts.push(self.vertex(v, depth + 1));
        }
        if parts.len() == 1 {
            return parts.pop().unwrap_or_else(|| text("_"));
        }
        Doc::Seq(parts)
    }

    /// A vertex that is incomplete because of an expression: the expressions of its
    /// conjuncts, as written (`a + 1`), joined by `&`.
    fn conjunct_exprs(&mut self, vid: VId, r: VId, depth: usize) -> Option<Doc> {
        let mut conjs: Vec<CX<'a>> = self.ev.vs[vid as usize]
            .conjs
            .iter()
            .map(|c| c.x.clone())
            .collect();
        if conjs.is_empty() && r != vid {
            conjs = self.ev.vs[r as usize]
                .conjs
                .iter()
                .map(|c| c.x.clone())
                .collect();
        }
        let mut parts: Vec<Doc> = Vec::new();
        for c in conjs {
            let d = match c {
                CX::Expr(e) => self.expr(e),
                CX::Lit(l) => self.struct_lit(l),
                CX::Val(v) => self.value(&v, depth),
                CX::Vertex(w) if w != vid && w != r => self.vertex(w, depth + 1),
                CX::Json(j) => json_doc(j),
                _ => continue,
            };
            if !parts.is_empty() {
                parts.push(text(" & "));
            }
            parts.push(d);
        }
        match parts.len() {
            0 => None,
            1 => parts.pop(),
            _ => Some(Doc::Seq(parts)),
        }
    }

    /// Whether a conjunct of `vid` (not concrete) is an expression that cannot be computed
    /// yet (`c - a` in a cycle, `>min` of a field that is not concrete): `cue eval` prints
    /// such a field as its expressions, not as the type the other conjuncts give it.
    fn has_incomplete_expr(&mut self, vid: VId) -> bool {
        let conjs: Vec<(&'a Expr, crate::eval::Env<'a>)> = self.ev.vs[vid as usize]
            .conjs
            .iter()
            .filter_map(|c| match c.x {
                CX::Expr(e) if !is_type_expr(e) => Some((e, c.env.clone())),
                _ => None,
            })
            .collect();
        conjs.into_iter().any(|(e, env)| {
            let v = self.ev.eval(e, &env);
            matches!(v, Val::Bottom(b) if b.incomplete)
        })
    }

    /// A runtime value that is not a vertex's own (a conjunct, a disjunct).
    fn value(&mut self, v: &Val, depth: usize) -> Doc {
        match v {
            Val::Vertex(w) => self.vertex(*w, depth + 1),
            other => self.scalar(other),
        }
    }

    fn atom(&mut self, v: &Val, vid: VId, r: VId, depth: usize) -> Doc {
        match v {
            Val::Bottom(b) if b.incomplete => {
                if let Some(d) = self.conjunct_exprs(vid, r, depth) {
                    return d;
                }
            }
            // a string written on one line in the source keeps that form (`cue` prints a
            // literal as written), even with `\n`s inside
            Val::Str(s) if s.contains('\n') && self.written_on_one_line(vid, s) => {
                let mut out = String::from('"');
                escape_into(s, '"', false, &mut out);
                out.push('"');
                return Doc::Text(out);
            }
            // a type using a predeclared name (`uint16 & >=1`) as written, not as its bounds
            Val::Atom(_) => {
                if let Some(e) = self.single_named_type(vid) {
                    return self.expr(e);
                }
            }
            _ => {}
        }
        self.scalar(v)
    }

    /// Whether a conjunct of `vid` is the string literal `s` written on one source line.
    fn written_on_one_line(&self, vid: VId, s: &str) -> bool {
        self.ev.vs[vid as usize].conjs.iter().any(|c| match c.x {
            CX::Expr(e) => {
                matches!(&e.kind, ExprKind::Str(x) if x == s)
                    && crate::pos_of(self.sources, e.span).map(|p| p.line)
                        == crate::pos_of(
                            self.sources,
                            ast::Span {
                                start: e.span.end.saturating_sub(1),
                                ..e.span
                            },
                        )
                        .map(|p| p.line)
            }
            _ => false,
        })
    }

    /// The one conjunct of `vid` when it is a type expression naming a predeclared sized
    /// number type (`uint16`, `int32 & >0`, `float64`).
    fn single_named_type(&self, vid: VId) -> Option<&'a Expr> {
        let x = &self.ev.vs[vid as usize];
        if x.conjs.len() != 1 {
            return None;
        }
        let CX::Expr(e) = x.conjs.get(0)?.x else {
            return None;
        };
        (is_type_expr(e) && names_sized_type(e)).then_some(e)
    }

    fn scalar(&mut self, v: &Val) -> Doc {
        match v {
            Val::Top => text("_"),
            Val::Null => text("null"),
            Val::Bool(b) => text(b.to_string()),
            Val::Int(i) => text(i.to_string()),
            Val::Float(f) => text(float_text(*f)),
            Val::Str(s) => quote_doc(s, '"'),
            Val::Bytes(b) => bytes_doc(b),
            Val::Atom(a) => self.atom_doc(a),
            Val::Disj(alts) => {
                let defaults: Vec<&Val> = alts.iter().filter(|a| a.1).map(|a| &a.0).collect();
                let pick: Vec<&Val> = if defaults.is_empty() {
                    alts.iter().map(|a| &a.0).collect()
                } else {
                    defaults
                };
                let mut parts = Vec::new();
                for (i, x) in pick.into_iter().enumerate() {
                    if i > 0 {
                        parts.push(text(" | "));
                    }
                    parts.push(self.scalar(x));
                }
                Doc::Seq(parts)
            }
            Val::Vertex(_) => text("{...}"),
            Val::Bottom(b) => text(format!("_|_ // {}", b.msg)),
            Val::Func(_) | Val::Pkg(_) => text(v.to_string()),
        }
    }

    /// Kinds and bounds: `int`, `>=0 & <10`, `string & =~"^a"`, `int | string`.
    fn atom_doc(&mut self, a: &Atom) -> Doc {
        // what the bounds imply together (`>=0` a number, `=~"a"` a string or bytes)
        let implied = a
            .bounds
            .iter()
            .fold(K_TOP, |acc, b| acc & crate::value::bound_kinds(b));
        let mut parts: Vec<Doc> = Vec::new();
        if a.bounds.is_empty() || a.kinds != implied {
            parts.push(text(kind_text(a.kinds)));
        }
        for b in &a.bounds {
            if let BoundOp::Call(args) = &b.op {
                parts.push(text(crate::builtins::validator_display(&b.val, args)));
                continue;
            }
            let op = b.op.symbol();
            parts.push(Doc::Seq(vec![text(op), self.scalar(&b.val)]));
        }
        let mut out = Vec::new();
        for (i, p) in parts.into_iter().enumerate() {
            if i > 0 {
                out.push(text(" & "));
            }
            out.push(p);
        }
        if out.len() == 1 {
            return out.pop().unwrap_or_else(|| text("_"));
        }
        Doc::Seq(out)
    }

    // --------------------------------------------------------------------- expressions

    fn expr(&mut self, e: &'a Expr) -> Doc {
        self.expr1(e, 0, 1)
    }

    /// An expression as `cue fmt` writes it (`expr1` of `cue/format`): binary operators of
    /// precedence `prec1` or above without parentheses, `depth` deciding the spacing.
    fn expr1(&mut self, e: &'a Expr, prec1: u8, depth: usize) -> Doc {
        match &e.kind {
            ExprKind::Binary(..) => {
                let cut = cutoff(e, depth);
                self.binary(e, prec1, cut, depth)
            }
            ExprKind::Ident(name) => {
                if let Some((_, path)) = self.imports.iter().find(|(n, _)| n == name) {
                    self.used.push(path.clone());
                }
                self.refs.push(name.clone());
                text(name.clone())
            }
            ExprKind::Null => text("null"),
            ExprKind::Bool(b) => text(b.to_string()),
            ExprKind::Int(i) => text(i.to_string()),
            ExprKind::Float(f) => text(float_text(*f)),
            ExprKind::Str(s) => quote_doc(s, '"'),
            ExprKind::Bytes(b) => bytes_doc(b),
            ExprKind::Interp { parts, bytes } => self.interp(parts, *bytes),
            ExprKind::Top => text("_"),
            ExprKind::Bottom => text("_|_"),
            ExprKind::Struct(l) => self.struct_lit(l),
            ExprKind::List(elems) => {
                let mut docs = Vec::new();
                for el in elems {
                    docs.push(match el {
                        ListElem::Expr(x) => self.expr(x),
                        ListElem::Comprehension(c) => self.comprehension(c),
                        ListElem::Ellipsis(None, _) => text("..."),
                        ListElem::Ellipsis(Some(t), _) => {
                            Doc::Seq(vec![text("..."), self.expr1(t, 8, depth)])
                        }
                    });
                }
                Doc::List(docs)
            }
            ExprKind::Unary(op, x) => {
                let o = match op {
                    UnaryOp::Neg => "-",
                    UnaryOp::Pos => "+",
                    UnaryOp::Not => "!",
                    UnaryOp::Default => "*",
                    UnaryOp::Lt => "<",
                    UnaryOp::Le => "<=",
                    UnaryOp::Gt => ">",
                    UnaryOp::Ge => ">=",
                    UnaryOp::Ne => "!=",
                    UnaryOp::Match => "=~",
                    UnaryOp::NotMatch => "!~",
                    UnaryOp::Eq => "==",
                };
                Doc::Seq(vec![text(o), self.expr1(x, 8, depth)])
            }
            ExprKind::Selector(x, name, _) => {
                Doc::Seq(vec![self.expr1(x, 8, depth), text("."), text(name.clone())])
            }
            ExprKind::Index(x, i) => Doc::Seq(vec![
                self.expr1(x, 8, depth),
                text("["),
                self.expr1(i, 0, depth + 1),
                text("]"),
            ]),
            ExprKind::Slice(x, lo, hi) => {
                let mut v = vec![self.expr1(x, 8, depth), text("[")];
                if let Some(lo) = lo {
                    v.push(self.expr1(lo, 0, depth + 1));
                }
                v.push(text(":"));
                if let Some(hi) = hi {
                    v.push(self.expr1(hi, 0, depth + 1));
                }
                v.push(text("]"));
                Doc::Seq(v)
            }
            ExprKind::Call(f, args) => {
                let mut v = vec![self.expr1(f, 8, depth), text("(")];
                // one argument keeps the depth, several are compact (`cue/format` does the same)
                let d = if args.len() > 1 { depth + 1 } else { depth };
                for (i, a) in args.iter().enumerate() {
                    if i > 0 {
                        v.push(text(", "));
                    }
                    v.push(self.expr1(a, 0, d));
                }
                v.push(text(")"));
                Doc::Seq(v)
            }
            ExprKind::Paren(x) => {
                if matches!(x.kind, ExprKind::Paren(_)) {
                    return self.expr1(x, 0, depth);
                }
                Doc::Seq(vec![
                    text("("),
                    self.expr1(x, 0, depth.saturating_sub(1).max(1)),
                    text(")"),
                ])
            }
            ExprKind::Alias(name, x) => Doc::Seq(vec![text(format!("{name}=")), self.expr(x)]),
        }
    }

    fn binary(&mut self, e: &'a Expr, prec1: u8, cut: u8, depth: usize) -> Doc {
        let ExprKind::Binary(op, l, r) = &e.kind else {
            return self.expr1(e, prec1, depth);
        };
        let prec = precedence(*op);
        if prec < prec1 {
            return Doc::Seq(vec![
                text("("),
                self.expr1(e, 0, depth.saturating_sub(1).max(1)),
                text(")"),
            ]);
        }
        let blank = prec < cut;
        let left = self.expr1(l, prec, depth + diff_prec(l, prec));
        let right = self.expr1(r, prec + 1, depth + 1);
        let o = op.as_str();
        let o = if blank || o.chars().all(char::is_alphabetic) {
            format!(" {o} ")
        } else {
            o.to_string()
        };
        Doc::Seq(vec![left, text(o), right])
    }

    fn interp(&mut self, parts: &'a [InterpPart], bytes: bool) -> Doc {
        let quote = if bytes { '\'' } else { '"' };
        let multi = parts
            .iter()
            .any(|p| matches!(p, InterpPart::Lit(s) if s.contains('\n')));
        // the literal parts escaped, each expression as `\(expr)` on one line
        let mut s = String::new();
        for p in parts {
            match p {
                InterpPart::Lit(l) => escape_into(l, quote, multi, &mut s),
                InterpPart::Expr(x) => {
                    let d = self.expr(x);
                    let mut t = String::new();
                    render(&d, 0, &mut t);
                    s.push_str("\\(");
                    s.push_str(&t);
                    s.push(')');
                }
            }
        }
        if !multi {
            return Doc::Text(format!("{quote}{s}{quote}"));
        }
        let triple: String = std::iter::repeat_n(quote, 3).collect();
        Doc::Multi {
            open: triple.clone(),
            lines: s.split('\n').map(str::to_string).collect(),
            close: triple,
        }
    }

    fn struct_lit(&mut self, l: &'a ast::StructLit) -> Doc {
        let mut items = Vec::new();
        for d in &l.decls {
            match d {
                Decl::Field(f) => {
                    let mut label = match &f.label {
                        Label::Ident(n, _) => n.clone(),
                        Label::Str(s, _) => {
                            label_text(s, crate::eval::label_kind(s) != FK::Regular)
                        }
                        // an interpolated label is written as a string
                        Label::Dynamic(x) if matches!(x.kind, ExprKind::Interp { .. }) => {
                            let mut t = String::new();
                            render(&self.expr(x), 0, &mut t);
                            t
                        }
                        Label::Dynamic(x) => {
                            let mut t = String::from("(");
                            render(&self.expr(x), 0, &mut t);
                            t.push(')');
                            t
                        }
                        Label::Pattern(x) => {
                            let mut t = String::from("[");
                            render(&self.expr(x), 0, &mut t);
                            t.push(']');
                            t
                        }
                    };
                    if let Some(a) = f.alias() {
                        label = format!("{a}={label}");
                    }
                    match f.constraint {
                        ast::Constraint::Optional => label.push('?'),
                        ast::Constraint::Required => label.push('!'),
                        ast::Constraint::None => {}
                    }
                    let v = self.expr(&f.value);
                    items.push(Item::Field(label, v));
                }
                Decl::Embed(x) => items.push(Item::Line(self.expr(x))),
                Decl::Let(l) => {
                    let v = self.expr(&l.value);
                    items.push(Item::Line(Doc::Seq(vec![
                        text(format!("let {} = ", l.name)),
                        v,
                    ])));
                }
                Decl::Comprehension(c) => items.push(Item::Line(self.comprehension(c))),
                Decl::Ellipsis(None, _) => items.push(Item::Line(text("..."))),
                Decl::Ellipsis(Some(t), _) => {
                    let v = self.expr(t);
                    items.push(Item::Line(Doc::Seq(vec![text("..."), v])));
                }
            }
        }
        Doc::Block(items)
    }

    /// `for k, v in src if cond let x = e {body}`, as written.
    fn comprehension(&mut self, c: &'a ast::Comprehension) -> Doc {
        let mut v = Vec::new();
        for cl in &c.clauses {
            match cl {
                Clause::For {
                    key, value, source, ..
                } => {
                    let head = match key {
                        Some(k) => format!("for {k}, {value} in "),
                        None => format!("for {value} in "),
                    };
                    v.push(text(head));
                    v.push(self.expr(source));
                }
                Clause::If(x) => {
                    v.push(text("if "));
                    v.push(self.expr(x));
                }
                Clause::Let { name, value, .. } => {
                    v.push(text(format!("let {name} = ")));
                    v.push(self.expr(value));
                }
            }
            v.push(text(" "));
        }
        v.push(self.expr(&c.body));
        Doc::Seq(v)
    }
}

/// Concrete JSON input data as CUE.
fn json_doc(j: &serde_json::Value) -> Doc {
    use serde_json::Value as J;
    match j {
        J::Null => text("null"),
        J::Bool(b) => text(b.to_string()),
        J::Number(n) => match n.as_i64() {
            Some(i) => text(i.to_string()),
            None => text(float_text(n.as_f64().unwrap_or(0.0))),
        },
        J::String(s) => quote_doc(s, '"'),
        J::Array(xs) => Doc::List(xs.iter().map(json_doc).collect()),
        J::Object(m) => Doc::Block(
            m.iter()
                .map(|(k, v)| {
                    Item::Field(
                        label_text(k, crate::eval::label_kind(k) != FK::Regular),
                        json_doc(v),
                    )
                })
                .collect(),
        ),
    }
}

/// CUE's operator precedences (`cue/token`): `|` 1, `&` 2, `||` 3, `&&` 4, comparisons 5,
/// `+ -` 6, `* / div mod quo rem` 7.
fn precedence(op: BinOp) -> u8 {
    match op {
        BinOp::Or => 1,
        BinOp::And => 2,
        BinOp::LOr => 3,
        BinOp::LAnd => 4,
        BinOp::Eq
        | BinOp::Ne
        | BinOp::Lt
        | BinOp::Le
        | BinOp::Gt
        | BinOp::Ge
        | BinOp::Match
        | BinOp::NotMatch => 5,
        BinOp::Add | BinOp::Sub => 6,
        BinOp::Mul | BinOp::Div | BinOp::IntDiv | BinOp::IntMod | BinOp::IntQuo | BinOp::IntRem => {
            7
        }
    }
}

/// Which precedence levels of a binary expression (outside parentheses) occur, and the
/// clashes that force spaces (`cue/format`'s `walkBinary`).
fn walk_binary(e: &Expr) -> (bool, bool, u8) {
    let ExprKind::Binary(op, l, r) = &e.kind else {
        return (false, false, 0);
    };
    let p = precedence(*op);
    let (mut h6, mut h7, mut problem) = (p == 6, p == 7, 0);
    if let ExprKind::Binary(lop, ..) = &l.kind {
        if precedence(*lop) >= p {
            let (a, b, m) = walk_binary(l);
            h6 |= a;
            h7 |= b;
            problem = problem.max(m);
        }
    }
    match &r.kind {
        ExprKind::Binary(rop, ..) if precedence(*rop) > p => {
            let (a, b, m) = walk_binary(r);
            h6 |= a;
            h7 |= b;
            problem = problem.max(m);
        }
        ExprKind::Unary(u, _) => {
            let pair = (op.as_str(), *u);
            match pair {
                ("/", UnaryOp::Default) => problem = 8,
                ("+", UnaryOp::Pos) | ("-", UnaryOp::Neg) => problem = problem.max(6),
                _ => {}
            }
        }
        _ => {}
    }
    (h6, h7, problem)
}

/// The precedence from which operators are written without spaces (`cue/format`'s
/// `cutoff`: spaces everywhere at the top level unless `+ -` and `* /` mix).
fn cutoff(e: &Expr, depth: usize) -> u8 {
    let (h6, h7, problem) = walk_binary(e);
    if problem > 0 {
        return problem + 1;
    }
    if h6 && h7 {
        return if depth == 1 { 7 } else { 6 };
    }
    if depth == 1 { 8 } else { 6 }
}

fn diff_prec(e: &Expr, prec: u8) -> usize {
    match &e.kind {
        ExprKind::Binary(op, ..) if precedence(*op) == prec => 0,
        _ => 1,
    }
}

/// The predeclared sized number types: bounds of `int` or `float` that `cue` prints by name.
const SIZED_TYPES: [&str; 14] = [
    "uint", "uint8", "uint16", "uint32", "uint64", "uint128", "int8", "int16", "int32", "int64",
    "int128", "float32", "float64", "rune",
];

/// Whether a type expression (see [`is_type_expr`]) names a predeclared sized number type.
fn names_sized_type(e: &Expr) -> bool {
    match &e.kind {
        ExprKind::Ident(n) => SIZED_TYPES.contains(&n.as_str()),
        ExprKind::Unary(_, x) | ExprKind::Paren(x) => names_sized_type(x),
        ExprKind::Binary(BinOp::Or, ..) => false,
        ExprKind::Binary(_, a, b) => names_sized_type(a) || names_sized_type(b),
        _ => false,
    }
}

/// An expression built only from literals, predeclared types (`int`, `string`, `_`) and
/// operators: its value never depends on another field.
fn is_type_expr(e: &Expr) -> bool {
    match &e.kind {
        ExprKind::Ident(n) => {
            matches!(
                n.as_str(),
                "int" | "float" | "number" | "string" | "bytes" | "bool" | "null" | "_"
            ) || SIZED_TYPES.contains(&n.as_str())
        }
        ExprKind::Null
        | ExprKind::Bool(_)
        | ExprKind::Int(_)
        | ExprKind::Float(_)
        | ExprKind::Str(_)
        | ExprKind::Bytes(_)
        | ExprKind::Top
        | ExprKind::Bottom => true,
        ExprKind::Unary(_, x) | ExprKind::Paren(x) => is_type_expr(x),
        ExprKind::Binary(_, a, b) => is_type_expr(a) && is_type_expr(b),
        _ => false,
    }
}
