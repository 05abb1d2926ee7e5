//! Turning the evaluation arena into an immutable, thread-safe [`Value`] tree, and exporting it:
//! JSON (`cue export`), validation (KubeVela's `Validate()`), lookups and field listings.

use std::ops::ControlFlow;
use std::sync::Arc;

use crate::ast::{Comments, Decl, Expr, ExprKind, Label, ListElem, Span};
use crate::eval::{CX, Closed, Conj, Ev, FK};
use crate::value::{Bot, Val, type_name};
use crate::{Error, ProgramInner, pos_of};

/// The kind of an evaluated value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Null,
    Bool,
    Int,
    Float,
    String,
    Bytes,
    Struct,
    List,
    /// An error.
    Bottom,
    /// A value that is not concrete (a type, a bound, an unresolved disjunction, `_`).
    Incomplete,
}

/// One node of a [`Tree`]: scalars inline, everything else as index ranges into the tree's
/// shared vectors (16 bytes, no allocation of its own).
#[derive(Clone, Copy, Debug)]
enum N {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// `tree.strs[start..end]`
    Str(u32, u32),
    /// `tree.bytes[start..end]`
    Bytes(u32, u32),
    /// `tree.fields[start..end]`, and the struct's comprehension error (`tree.errors[i]`,
    /// [`NO_ERR`] for none).
    Struct(u32, u32, u32),
    /// `tree.elems[start..end]`
    List(u32, u32),
    /// `tree.errors[i]`
    Err(u32),
    Incomplete(u32),
    /// A scalar or list (node `base`) embedded in a struct that also declares definitions or
    /// hidden fields (`tree.fields[start..end]`).
    WithDefs(u32, u32, u32),
}

const NO_ERR: u32 = u32::MAX;

/// The node or something below it (any field, hidden fields and definitions too) is an error:
/// `validate` fails there.
const F_ERR: u8 = 1;
/// Exporting the node as JSON fails (an error or incomplete value among its regular fields, a
/// comprehension error, a float JSON cannot hold).
const F_JSON: u8 = 2;

#[derive(Debug)]
struct NField {
    /// `tree.strs[name.0..name.1]`
    name: (u32, u32),
    kind: FK,
    value: u32,
    comments: Comments,
}

/// An evaluated value tree, built once per evaluation: every node, field name and string in a
/// few flat vectors (a handful of allocations for the whole tree, freed at once), and per node
/// whether validation or export can fail below it, so that a clean tree is validated and
/// checked for export without walking it.
#[derive(Debug, Default)]
struct Tree {
    nodes: Vec<N>,
    /// [`F_ERR`] and [`F_JSON`] bits, by node.
    flags: Vec<u8>,
    fields: Vec<NField>,
    elems: Vec<u32>,
    strs: String,
    bytes: Vec<u8>,
    errors: Vec<Error>,
}

impl Tree {
    /// A tree sized for `n` bytes of source text: JSON-like data makes about one node per 15
    /// bytes and one field per 18 (bench40: 6,156 nodes, 5,274 fields and 20 KB of names and
    /// strings from 94 KB), a template far fewer. Growing the vectors by doubling instead
    /// copied each of them about once over (`realloc`, about 9 K instructions per render).
    fn with_source_len(n: usize) -> Tree {
        Tree {
            nodes: Vec::with_capacity(n / 12),
            flags: Vec::with_capacity(n / 12),
            fields: Vec::with_capacity(n / 14),
            elems: Vec::with_capacity(n / 64),
            strs: String::with_capacity(n / 3),
            ..Tree::default()
        }
    }

    fn n(&self, id: u32) -> N {
        self.nodes[id as usize]
    }

    fn flags(&self, id: u32) -> u8 {
        self.flags[id as usize]
    }

    /// The node a scalar wrapper stands for (`WithDefs` → its base), else `id` itself.
    fn base(&self, id: u32) -> u32 {
        match self.n(id) {
            N::WithDefs(b, _, _) => b,
            _ => id,
        }
    }

    fn str(&self, (a, b): (u32, u32)) -> &str {
        &self.strs[a as usize..b as usize]
    }

    fn fields(&self, a: u32, b: u32) -> &[NField] {
        &self.fields[a as usize..b as usize]
    }

    fn elems(&self, a: u32, b: u32) -> &[u32] {
        &self.elems[a as usize..b as usize]
    }

    fn error(&self, i: u32) -> &Error {
        &self.errors[i as usize]
    }

    #[inline(always)]
    fn push(&mut self, n: N, flags: u8) -> u32 {
        let id = self.nodes.len() as u32;
        self.nodes.push(n);
        self.flags.push(flags);
        id
    }

    fn push_err(&mut self, e: Error, incomplete: bool) -> u32 {
        let i = self.errors.len() as u32;
        self.errors.push(e);
        if incomplete {
            self.push(N::Incomplete(i), F_JSON)
        } else {
            self.push(N::Err(i), F_ERR | F_JSON)
        }
    }

    /// Appends text to `strs`, giving its range (`None` past 4 GiB of text in one tree).
    #[inline]
    fn push_str(&mut self, s: &str) -> Option<(u32, u32)> {
        let a = u32::try_from(self.strs.len()).ok()?;
        let b = u32::try_from(self.strs.len() + s.len()).ok()?;
        self.strs.push_str(s);
        Some((a, b))
    }

    /// Sets the value of field `i` (reserved earlier) and gives the flags it passes to its
    /// struct: `F_ERR` always, `F_JSON` for a regular field only.
    fn set_field(&mut self, i: usize, value: u32) -> u8 {
        let f = &mut self.fields[i];
        f.value = value;
        let fl = self.flags[value as usize];
        if f.kind == FK::Regular {
            fl
        } else {
            fl & F_ERR
        }
    }

    /// Adds concrete JSON input data.
    fn json(&mut self, j: &serde_json::Value) -> u32 {
        use serde_json::Value as J;
        match j {
            J::Null => self.push(N::Null, 0),
            J::Bool(b) => self.push(N::Bool(*b), 0),
            J::Number(n) => match n.as_i64() {
                Some(i) => self.push(N::Int(i), 0),
                None => {
                    let f = n.as_f64().unwrap_or(0.0);
                    self.push(N::Float(f), if f.is_finite() { 0 } else { F_JSON })
                }
            },
            J::String(s) => match self.push_str(s) {
                Some((a, b)) => self.push(N::Str(a, b), 0),
                None => self.push_err(Error::new(TOO_BIG), false),
            },
            J::Array(xs) => {
                // the elements' slots first, filled as they are built
                let a = self.elems.len();
                self.elems.resize(a + xs.len(), 0);
                let mut fl = 0;
                for (i, x) in xs.iter().enumerate() {
                    let id = self.json(x);
                    self.elems[a + i] = id;
                    fl |= self.flags(id);
                }
                self.push(N::List(a as u32, (a + xs.len()) as u32), fl)
            }
            J::Object(m) => {
                // the fields' slots (names) first, values filled as they are built
                let a = self.fields.len();
                for k in m.keys() {
                    let Some(name) = self.push_str(k) else {
                        self.fields.truncate(a);
                        return self.push_err(Error::new(TOO_BIG), false);
                    };
                    self.fields.push(NField {
                        name,
                        kind: FK::Regular,
                        value: 0,
                        comments: Comments::default(),
                    });
                }
                let mut fl = 0;
                for (i, v) in m.values().enumerate() {
                    let id = self.json(v);
                    fl |= self.set_field(a + i, id);
                }
                self.push(N::Struct(a as u32, (a + m.len()) as u32, NO_ERR), fl)
            }
        }
    }

    /// Adds plain data from the syntax tree (see [`crate::ast::StructLit::data_depth`]): the
    /// nodes its vertices would give once evaluated, without making the vertices.
    fn data(&mut self, e: &Expr) -> u32 {
        match &e.kind {
            ExprKind::Null => self.push(N::Null, 0),
            ExprKind::Bool(b) => self.push(N::Bool(*b), 0),
            ExprKind::Int(i) => self.push(N::Int(*i), 0),
            ExprKind::Float(f) => self.push(N::Float(*f), if f.is_finite() { 0 } else { F_JSON }),
            ExprKind::Str(s) => match self.push_str(s) {
                Some((a, b)) => self.push(N::Str(a, b), 0),
                None => self.push_err(Error::new(TOO_BIG), false),
            },
            ExprKind::List(xs) => {
                // the elements' slots first, filled as they are built
                let a = self.elems.len();
                self.elems.resize(a + xs.len(), 0);
                let mut fl = 0;
                for (i, x) in xs.iter().enumerate() {
                    let id = match x {
                        ListElem::Expr(x) => self.data(x),
                        _ => self.push_err(Error::new(NOT_DATA), false),
                    };
                    self.elems[a + i] = id;
                    fl |= self.flags(id);
                }
                self.push(N::List(a as u32, (a + xs.len()) as u32), fl)
            }
            ExprKind::Struct(l) => {
                // the fields' slots (names) first, values filled as they are built
                let a = self.fields.len();
                for d in &l.decls {
                    if let Decl::Field(f) = d {
                        if let Label::Ident(k, _) | Label::Str(k, _) = &f.label {
                            let Some(name) = self.push_str(k) else {
                                self.fields.truncate(a);
                                return self.push_err(Error::new(TOO_BIG), false);
                            };
                            self.fields.push(NField {
                                name,
                                kind: FK::Regular,
                                value: 0,
                                comments: Comments::default(),
                            });
                        }
                    }
                }
                let b = self.fields.len();
                let mut fl = 0;
                let values = l.decls.iter().filter_map(|d| match d {
                    Decl::Field(f) if matches!(f.label, Label::Ident(..) | Label::Str(..)) => {
                        Some(&f.value)
                    }
                    _ => None,
                });
                for (i, v) in values.enumerate() {
                    let id = self.data(v);
                    fl |= self.set_field(a + i, id);
                }
                self.push(N::Struct(a as u32, b as u32, NO_ERR), fl)
            }
            _ => self.push_err(Error::new(NOT_DATA), false),
        }
    }
}

const TOO_BIG: &str = "value too large: more than 4 GiB of text";

/// [`Tree::data`] of something that is not plain data (`data_depth` lets none through).
const NOT_DATA: &str = "internal error: not plain data";

/// An evaluated value: immutable, cheap to clone, `Send + Sync`.
#[derive(Clone)]
pub struct Value {
    tree: Arc<Tree>,
    id: u32,
}

impl std::fmt::Debug for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        DebugNode(&self.tree, self.id).fmt(f)
    }
}

struct DebugNode<'t>(&'t Tree, u32);

impl std::fmt::Debug for DebugNode<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let t = self.0;
        let fields = |f: &mut std::fmt::Formatter<'_>, a, b| {
            f.debug_map()
                .entries(
                    t.fields(a, b)
                        .iter()
                        .map(|x| (t.str(x.name), DebugNode(t, x.value))),
                )
                .finish()
        };
        match t.n(self.1) {
            N::Null => f.write_str("null"),
            N::Bool(b) => write!(f, "{b}"),
            N::Int(i) => write!(f, "{i}"),
            N::Float(x) => write!(f, "{x:?}"),
            N::Str(a, b) => write!(f, "{:?}", t.str((a, b))),
            N::Bytes(a, b) => write!(f, "{:?}", &t.bytes[a as usize..b as usize]),
            N::Struct(a, b, _) => fields(f, a, b),
            N::List(a, b) => f
                .debug_list()
                .entries(t.elems(a, b).iter().map(|&e| DebugNode(t, e)))
                .finish(),
            N::Err(i) => write!(f, "Err({})", t.error(i)),
            N::Incomplete(i) => write!(f, "Incomplete({})", t.error(i)),
            N::WithDefs(base, a, b) => {
                DebugNode(t, base).fmt(f)?;
                f.write_str(" & ")?;
                fields(f, a, b)
            }
        }
    }
}

/// A regular field of a struct value.
#[derive(Clone, Debug)]
pub struct Field {
    pub name: String,
    pub value: Value,
    /// Doc comment lines attached to this field in any conjunct.
    pub comments: Comments,
}

struct Builder<'p, 'a> {
    ev: Ev<'a>,
    inner: &'p ProgramInner,
    t: Tree,
    /// Error-free struct and list nodes already built, by vertex (`NONE` if not): a field that is
    /// a plain reference to one of them shares its node (`all: [r0.output, …]`).
    built: Vec<u32>,
    /// Field names already in `t.strs`, by the address of the evaluator's interned name: a
    /// direct-mapped cache ([`LABEL_SLOTS`] slots), each slot holding its name (so that the
    /// address cannot be reused for another name while it is cached) and the name's range.
    labels: Vec<LabelSlot>,
    /// Error and incomplete nodes built so far (a node built while it did not change is clean).
    errors: u64,
}

const NONE: u32 = u32::MAX;

/// Slots of [`Builder::labels`] (a power of two).
const LABEL_SLOTS: usize = 256;

/// A slot of [`Builder::labels`]: a field name and its range in `t.strs`.
type LabelSlot = Option<(std::rc::Rc<str>, (u32, u32))>;

/// The range of field name `k` in `t.strs`, copied there once per name (while it stays in
/// its `labels` slot) instead of once per field.
fn label_range(t: &mut Tree, labels: &mut [LabelSlot], k: &std::rc::Rc<str>) -> Option<(u32, u32)> {
    let addr = std::rc::Rc::as_ptr(k).cast::<u8>() as usize;
    let slot = (addr >> 4).wrapping_mul(0x9E37_79B9) >> 7 & (LABEL_SLOTS - 1);
    if let Some(Some((c, range))) = labels.get(slot) {
        if std::rc::Rc::ptr_eq(c, k) {
            return Some(*range);
        }
    }
    let range = t.push_str(crate::eval::display_label(k))?;
    if let Some(x) = labels.get_mut(slot) {
        *x = Some((k.clone(), range));
    }
    Some(range)
}

/// A step of the path to the node being built: a field name (`tree.strs` range, display form)
/// or a list index. Joined into text only for an error.
#[derive(Clone, Copy)]
enum Seg {
    Label(u32, u32),
    Index(usize),
}

fn fmt_label(name: &str, out: &mut String) {
    let ident = !name.is_empty()
        && name.chars().enumerate().all(|(i, c)| {
            c.is_ascii_alphanumeric() || c == '_' || c == '$' || (c == '#' && i == 0)
        })
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if ident {
        out.push_str(name);
    } else {
        out.push_str(&crate::value::quote_str(name));
    }
}

impl<'a> Builder<'_, 'a> {
    fn join_path(&self, path: &[Seg]) -> String {
        let mut out = String::new();
        for (i, s) in path.iter().enumerate() {
            if i > 0 {
                out.push('.');
            }
            match *s {
                Seg::Label(a, b) => fmt_label(self.t.str((a, b)), &mut out),
                Seg::Index(n) => out.push_str(&n.to_string()),
            }
        }
        out
    }

    fn err(&self, b: &Bot, path: &[Seg]) -> Error {
        let p = b.path.clone().unwrap_or_else(|| self.join_path(path));
        Error::full(b.msg.clone(), p, self.positions(&b.spans), b.incomplete)
    }

    /// The distinct source positions of `spans` (a span without position is left out).
    fn positions(&self, spans: &[Span]) -> Vec<crate::Pos> {
        let mut positions = Vec::new();
        for s in spans {
            if s.end == 0 && s.start == 0 {
                continue;
            }
            if let Some(pos) = pos_of(&self.inner.sources, *s) {
                if !positions.contains(&pos) {
                    positions.push(pos);
                }
            }
        }
        positions
    }

    fn build(&mut self, vid: u32, path: &mut Vec<Seg>, depth: usize) -> u32 {
        if let Some(w) = self.ev.plain_ref_target(vid) {
            if let Some(&n) = self.built.get(w as usize) {
                if n != NONE {
                    return n;
                }
            }
            if let Some(n) = self.referenced_scalar(w) {
                return n;
            }
        }
        let before = self.errors;
        let n = self.build_vertex(vid, path, depth);
        match self.t.n(n) {
            N::Err(_) | N::Incomplete(_) => self.errors += 1,
            N::Struct(_, _, ce) if ce != NO_ERR => self.errors += 1,
            N::WithDefs(b, _, _) if matches!(self.t.n(b), N::Err(_) | N::Incomplete(_)) => {
                self.errors += 1
            }
            N::Struct(..) | N::List(..) if self.errors == before => {
                let r = self.ev.deref(vid) as usize;
                if self.built.len() <= r {
                    self.built.resize(r + 1, NONE);
                }
                self.built[r] = n;
            }
            _ => {}
        }
        n
    }

    /// The node of a field that is a plain reference to field `w` (see [`Ev::plain_ref_target`])
    /// when `w`'s value is a concrete scalar without error, definitions or hidden fields: the
    /// field's value is that scalar, taken from `w` (evaluated here if it was not yet) without
    /// evaluating the referring field again. `None` otherwise: the field is built in its own
    /// right (an error keeps the referring field's path).
    fn referenced_scalar(&mut self, w: u32) -> Option<u32> {
        if self.ev.is_self_contained(w) {
            self.ev.expand(w);
        }
        let orig = &self.ev.vs[w as usize];
        if orig.state != crate::eval::St::Done
            || (orig.forward.is_none() && orig.disj_result().is_some())
        {
            return None;
        }
        let x = &self.ev.vs[self.ev.deref(w) as usize];
        if x.err.is_some() || x.is_list || x.is_struct || !x.arcs.is_empty() {
            return None;
        }
        Some(match &x.atom {
            Val::Null => self.t.push(N::Null, 0),
            Val::Bool(b) => self.t.push(N::Bool(*b), 0),
            Val::Int(i) => self.t.push(N::Int(*i), 0),
            Val::Float(f) => self
                .t
                .push(N::Float(*f), if f.is_finite() { 0 } else { F_JSON }),
            Val::Str(s) => {
                let (a, b) = self.t.push_str(s)?;
                self.t.push(N::Str(a, b), 0)
            }
            _ => return None,
        })
    }

    fn error_node(&mut self, msg: String, path: &[Seg], incomplete: bool) -> u32 {
        let e = Error::full(msg, self.join_path(path), vec![], incomplete);
        self.t.push_err(e, incomplete)
    }

    /// An incomplete value of vertex `vid`, with where it comes from: the position of the
    /// value itself (`string` in `image: string`) and of each expression that makes the field
    /// (`img: parameter.image`), so that the message points at the line to fix.
    #[cold]
    #[inline(never)]
    fn incomplete_node(&mut self, msg: String, vid: u32, path: &[Seg]) -> u32 {
        let mut spans = Vec::new();
        let r = self.ev.deref(vid);
        if let Some(s) = self.ev.vs[r as usize].atom_span {
            spans.push(s);
        }
        for v in [vid, r] {
            for c in self.ev.vs[v as usize].conjs.iter() {
                match &c.x {
                    CX::Expr(e) => spans.push(e.span),
                    CX::Lit(l) => spans.push(l.span),
                    _ => {}
                }
            }
        }
        let e = Error::full(msg, self.join_path(path), self.positions(&spans), true);
        self.t.push_err(e, true)
    }

    /// Builds the fields of vertex `r` (all of them, or only its definitions and hidden fields)
    /// into a range of `t.fields`: first each field's slot (name, kind, comments, and as value
    /// the vertex to build, `NONE` for a required field that is not there) as the arcs are
    /// now, then the values in order, each replacing its vertex (a regular field that is not
    /// really there, e.g. optional, is left out unless it is required: then it is an
    /// incomplete error). Gives the range and the OR of the fields' flags, or `None` past
    /// 4 GiB of text.
    fn build_fields(
        &mut self,
        r: u32,
        regular_too: bool,
        path: &mut Vec<Seg>,
        depth: usize,
    ) -> Option<(u32, u32, u8)> {
        let a = self.t.fields.len();
        for (k, arc) in self.ev.vs[r as usize].arcs.iter() {
            let vid = if arc.kind != FK::Regular {
                arc.vid
            } else if !regular_too {
                continue;
            } else if arc.regular {
                arc.vid
            } else if arc.required {
                NONE
            } else {
                continue;
            };
            let Some(name) = label_range(&mut self.t, &mut self.labels, k) else {
                self.t.fields.truncate(a);
                return None;
            };
            // the vertex to build, until its node replaces it
            self.t.fields.push(NField {
                name,
                kind: arc.kind,
                value: vid,
                comments: arc.comments.clone(),
            });
        }
        let b = self.t.fields.len();
        let mut flags = 0;
        if a == b {
            return Some((a as u32, b as u32, flags));
        }
        // one path segment, rewritten for each field
        path.push(Seg::Index(0));
        for i in a..b {
            let NField {
                name, value: vid, ..
            } = self.t.fields[i];
            if let Some(last) = path.last_mut() {
                *last = Seg::Label(name.0, name.1);
            }
            let value = if vid == NONE {
                self.error_node("field is required but not present".to_string(), path, true)
            } else {
                self.build(vid, path, depth + 1)
            };
            flags |= self.t.set_field(i, value);
        }
        path.pop();
        Some((a as u32, b as u32, flags))
    }

    /// Wraps `base` with the definitions and hidden fields of vertex `r`, if it has any.
    #[inline]
    fn with_defs(&mut self, base: u32, r: u32, path: &mut Vec<Seg>, depth: usize) -> u32 {
        if self.ev.vs[r as usize].arcs.is_empty() {
            return base;
        }
        self.with_defs_of(base, r, path, depth)
    }

    /// [`Builder::with_defs`] of a vertex that has arcs.
    #[inline(never)]
    fn with_defs_of(&mut self, base: u32, r: u32, path: &mut Vec<Seg>, depth: usize) -> u32 {
        let Some((a, b, fl)) = self.build_fields(r, false, path, depth) else {
            return self.t.push_err(Error::new(TOO_BIG), false);
        };
        if a == b {
            return base;
        }
        let flags = (fl & F_ERR) | self.t.flags(base);
        self.t.push(N::WithDefs(base, a, b), flags)
    }

    fn build_vertex(&mut self, vid: u32, path: &mut Vec<Seg>, depth: usize) -> u32 {
        // Fast path: plain data nobody unified anything with.
        {
            let x = &self.ev.vs[vid as usize];
            if x.state == crate::eval::St::New && x.forward.is_none() && x.conjs.len() == 1 {
                match x.conjs.get(0).map(|c| &c.x) {
                    Some(CX::Json(j)) | Some(CX::JsonAt([], j)) => {
                        let j: &serde_json::Value = j;
                        return self.t.json(j);
                    }
                    _ => {}
                }
            }
        }
        if depth > self.ev.limits.max_depth || self.ev.fatal.is_some() {
            return self.limit_node(path, depth);
        }
        if let Some(e) = self.plain_data(vid, depth) {
            return self.t.data(e);
        }
        self.ev.expand(vid);
        let r = self.ev.deref(vid);
        // (the vertex is read in place; what an error path needs is cloned there)
        let x = &self.ev.vs[r as usize];
        let orig = &self.ev.vs[vid as usize];
        if x.err.is_some() || (orig.forward.is_none() && orig.disj_result().is_some()) {
            return self.error_vertex(vid, r, path);
        }
        if x.is_list {
            // the elements' vertices copied into their slots, each replaced by its node
            let a = self.t.elems.len();
            self.t
                .elems
                .extend_from_slice(&self.ev.vs[r as usize].elems);
            let b = self.t.elems.len();
            let mut fl = 0;
            path.push(Seg::Index(0));
            for i in a..b {
                if let Some(last) = path.last_mut() {
                    *last = Seg::Index(i - a);
                }
                let n = self.build(self.t.elems[i], path, depth + 1);
                self.t.elems[i] = n;
                fl |= self.t.flags(n);
            }
            path.pop();
            let list = self.t.push(N::List(a as u32, b as u32), fl);
            return self.with_defs(list, r, path, depth);
        }
        if x.is_struct {
            let comp_err = x.comp_err().cloned();
            let Some((a, b, mut fl)) = self.build_fields(r, true, path, depth) else {
                return self.t.push_err(Error::new(TOO_BIG), false);
            };
            let ce = match comp_err {
                Some(b) => {
                    let e = self.err(&b, path);
                    fl |= F_JSON;
                    self.t.errors.push(e);
                    self.t.errors.len() as u32 - 1
                }
                None => NO_ERR,
            };
            return self.t.push(N::Struct(a, b, ce), fl);
        }
        let scalar = match &x.atom {
            Val::Null => self.t.push(N::Null, 0),
            Val::Bool(b) => self.t.push(N::Bool(*b), 0),
            Val::Int(i) => self.t.push(N::Int(*i), 0),
            Val::Str(s) => match self.t.push_str(s) {
                Some((a, b)) => self.t.push(N::Str(a, b), 0),
                None => self.t.push_err(Error::new(TOO_BIG), false),
            },
            atom => {
                let atom = atom.clone();
                self.scalar_node(atom, vid, path)
            }
        };
        self.with_defs(scalar, r, path, depth)
    }

    /// The one conjunct of vertex `vid` when it is plain data (a scalar, struct or list
    /// literal: [`crate::ast::data_depth`]) that nothing else was unified with, and that fits
    /// the depth limit from `depth`: its nodes are then built from the syntax tree, without
    /// evaluating it (as JSON inputs are). Once its parent is evaluated, a field vertex has
    /// all its conjuncts (pattern constraints and closedness errors included), so a vertex
    /// still unevaluated with one conjunct has nothing else coming. The vertex is left
    /// unevaluated: a reference to it evaluates it as before.
    #[inline]
    fn plain_data(&self, vid: u32, depth: usize) -> Option<&'a Expr> {
        let x = &self.ev.vs[vid as usize];
        if x.state != crate::eval::St::New
            || x.forward.is_some()
            || x.err.is_some()
            || x.rare.is_some()
            || x.conjs.len() != 1
        {
            return None;
        }
        let Some(CX::Expr(e)) = x.conjs.get(0).map(|c| &c.x) else {
            return None;
        };
        let e: &'a Expr = e;
        let d = crate::ast::data_depth(e)?;
        (depth + usize::from(d) <= self.ev.limits.max_depth).then_some(e)
    }

    /// The node of a vertex past the depth limit or after a fatal error (rare: out of line).
    #[cold]
    #[inline(never)]
    fn limit_node(&mut self, path: &[Seg], depth: usize) -> u32 {
        if depth > self.ev.limits.max_depth {
            self.ev.depth_hit = true;
            let msg = format!(
                "structural cycle or value nested deeper than {}",
                self.ev.limits.max_depth
            );
            return self.error_node(msg, path, false);
        }
        self.error_node("evaluation aborted".into(), path, false)
    }

    /// The node of vertex `vid` (evaluated, `r` once forwarded) that is an error or an
    /// unresolved disjunction (rare: out of line).
    #[cold]
    #[inline(never)]
    fn error_vertex(&mut self, vid: u32, r: u32, path: &[Seg]) -> u32 {
        if let Some(b) = self.ev.vs[r as usize].err.clone() {
            let e = self.err(&b, path);
            return self.t.push_err(e, b.incomplete);
        }
        let alts = self.ev.vs[vid as usize]
            .disj_result()
            .cloned()
            .unwrap_or_default();
        // every alternative marked is how a disjunction without a default is kept
        let all_marked = alts.iter().all(|(_, d)| *d);
        let vals: Vec<String> = alts
            .iter()
            .map(|(u, d)| {
                let v = self.ev.value_of(*u);
                let s = match &v {
                    Val::Vertex(_) => "{...}".to_string(),
                    other => other.to_string(),
                };
                if *d && !all_marked {
                    format!("*{s}")
                } else {
                    s
                }
            })
            .collect();
        self.incomplete_node(format!("incomplete value {}", vals.join(" | ")), vid, path)
    }

    /// The node of `atom`, the value of vertex `vid` (for the positions of an incomplete one).
    fn scalar_node(&mut self, atom: Val, vid: u32, path: &[Seg]) -> u32 {
        match atom {
            Val::Null => self.t.push(N::Null, 0),
            Val::Bool(b) => self.t.push(N::Bool(b), 0),
            Val::Int(i) => self.t.push(N::Int(i), 0),
            Val::Float(f) => self
                .t
                .push(N::Float(f), if f.is_finite() { 0 } else { F_JSON }),
            Val::Str(s) => match self.t.push_str(&s) {
                Some((a, b)) => self.t.push(N::Str(a, b), 0),
                None => self.t.push_err(Error::new(TOO_BIG), false),
            },
            Val::Bytes(b) => {
                let (Ok(x), Ok(y)) = (
                    u32::try_from(self.t.bytes.len()),
                    u32::try_from(self.t.bytes.len() + b.len()),
                ) else {
                    return self.t.push_err(Error::new(TOO_BIG), false);
                };
                self.t.bytes.extend_from_slice(&b);
                self.t.push(N::Bytes(x, y), 0)
            }
            Val::Bottom(b) => {
                let e = self.err(&b, path);
                // an error atom is an error whatever its `incomplete` flag says
                let i = self.t.errors.len() as u32;
                self.t.errors.push(e);
                self.t.push(N::Err(i), F_ERR | F_JSON)
            }
            other => {
                let msg = match &other {
                    Val::Top => "incomplete value _".to_string(),
                    o => format!("incomplete value {o}"),
                };
                let _ = type_name(&other);
                self.incomplete_node(msg, vid, path)
            }
        }
    }
}

/// Depth budget for evaluating on the caller's stack; deeper programs are re-run on a
/// dedicated thread with a stack sized for the configured limit.
const FAST_DEPTH: usize = if cfg!(debug_assertions) { 0 } else { 120 };

pub(crate) type Inputs<'x> = [(&'x [String], &'x serde_json::Value)];

pub(crate) fn evaluate(inner: &ProgramInner, inputs: &Inputs<'_>) -> Result<Value, Error> {
    if FAST_DEPTH == 0 {
        // (debug builds: frames are large, always use the dedicated thread)
    } else if inner.limits.max_depth > FAST_DEPTH {
        let mut limits = inner.limits.clone();
        limits.max_depth = FAST_DEPTH;
        let (r, hit) = evaluate_here(inner, inputs, limits);
        if !hit {
            return r;
        }
    } else {
        return evaluate_here(inner, inputs, inner.limits.clone()).0;
    }
    on_deep_stack(&inner.limits, || {
        evaluate_here(inner, inputs, inner.limits.clone()).0
    })
}

/// Runs `f` on a thread whose stack fits the configured depth limit: evaluation (and the eval
/// printer) recurse once per nesting level.
pub(crate) fn on_deep_stack<T: Send>(
    limits: &crate::Limits,
    f: impl FnOnce() -> Result<T, Error> + Send,
) -> Result<T, Error> {
    let stack = (limits.max_depth.max(64))
        .saturating_mul(48 * 1024)
        .min(1 << 30);
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .stack_size(stack)
            .spawn_scoped(s, f)
            .map_err(|e| Error::new(format!("cannot start evaluation thread: {e}")))?
            .join()
            .map_err(|_| Error::new("internal error: evaluation panicked"))?
    })
}

/// The bytes of source text of the main package's files (what the tree is sized from), capped
/// by the caller so that a huge file of comments reserves no more than a few megabytes.
fn source_len(inner: &ProgramInner) -> usize {
    inner
        .files
        .iter()
        .take(inner.main_files)
        .map(|f| f.span.end.saturating_sub(f.span.start) as usize)
        .sum()
}

fn evaluate_here(
    inner: &ProgramInner,
    inputs: &Inputs<'_>,
    limits: crate::Limits,
) -> (Result<Value, Error>, bool) {
    let mut ev = Ev::new(&inner.files, limits);
    ev.hosts = &inner.hosts;
    ev.packages = &inner.packages;
    ev.main_files = inner.main_files;
    let n = source_len(inner).min(1 << 23);
    let mut b = Builder {
        ev,
        inner,
        t: Tree::with_source_len(n),
        built: Vec::with_capacity(n / 8),
        labels: vec![None; LABEL_SLOTS],
        errors: 0,
    };
    let root = b.ev.new_vertex();
    for f in inner.files.iter().take(inner.main_files) {
        b.ev.vs[root as usize].conjs.push(Conj {
            x: CX::Lit(&f.body),
            env: None,
            closed: Closed::No,
        });
    }
    for (path, j) in inputs {
        b.ev.vs[root as usize].conjs.push(Conj {
            x: CX::JsonAt(path, j),
            env: None,
            closed: Closed::No,
        });
    }
    let mut path = Vec::new();
    let id = b.build(root, &mut path, 0);
    let hit = b.ev.depth_hit;
    if let Some(f) = b.ev.fatal.take() {
        return (Err(f), hit);
    }
    let tree = Arc::new(std::mem::take(&mut b.t));
    if inner.skip_teardown {
        // The embedder exits soon and asked not to spend time freeing the arena
        // (`Runtime::skip_teardown`); the memory goes back to the operating system at exit.
        std::mem::forget(b);
    }
    (Ok(Value { tree, id }), hit)
}

impl Value {
    fn at(&self, id: u32) -> Value {
        Value {
            tree: self.tree.clone(),
            id,
        }
    }

    /// Looks up a dotted path of field names (regular, definition or hidden); a segment may be
    /// quoted (`metadata.labels."app.oam.dev/name"`) and list elements are selected by index.
    pub fn lookup(&self, path: &str) -> Option<Value> {
        if path.is_empty() {
            return Some(self.clone());
        }
        let t = &*self.tree;
        let find = |a, b, seg: &str| {
            t.fields(a, b)
                .iter()
                .find(|f| t.str(f.name) == seg)
                .map(|f| f.value)
        };
        let index = |a, b, seg: &str| {
            seg.parse::<usize>()
                .ok()
                .and_then(|i| t.elems(a, b).get(i).copied())
        };
        let mut cur = self.id;
        for seg in split_path(path) {
            let seg = seg.as_str();
            cur = match t.n(cur) {
                N::WithDefs(base, a, b) => find(a, b, seg).or_else(|| match t.n(base) {
                    // a list that also declares hidden fields or definitions
                    N::List(x, y) => index(x, y, seg),
                    _ => None,
                }),
                N::Struct(a, b, _) => find(a, b, seg),
                N::List(a, b) => index(a, b, seg),
                _ => None,
            }?;
        }
        Some(self.at(cur))
    }

    /// True unless the value is an error (bottom).
    pub fn exists(&self) -> bool {
        !matches!(self.tree.n(self.id), N::Err(_))
    }

    fn base(&self) -> N {
        self.tree.n(self.tree.base(self.id))
    }

    pub fn kind(&self) -> Kind {
        match self.base() {
            N::Null => Kind::Null,
            N::Bool(_) => Kind::Bool,
            N::Int(_) => Kind::Int,
            N::Float(_) => Kind::Float,
            N::Str(..) => Kind::String,
            N::Bytes(..) => Kind::Bytes,
            N::Struct(..) => Kind::Struct,
            N::List(..) => Kind::List,
            N::Err(_) => Kind::Bottom,
            N::Incomplete(_) | N::WithDefs(..) => Kind::Incomplete,
        }
    }

    /// True when the value and everything in it (regular fields) is concrete and error free.
    pub fn is_concrete(&self) -> bool {
        self.tree.flags(self.id) & F_JSON == 0
    }

    /// `cue export`: fails naming the path of any incomplete or erroring field.
    pub fn to_json(&self) -> Result<serde_json::Value, Error> {
        to_json(&self.tree, self.id)
    }

    /// `cue export` as JSON text (indented when `pretty`): the same result and errors as
    /// serialising [`Value::to_json`], without building the intermediate `serde_json::Value`.
    pub fn to_json_string(&self, pretty: bool) -> Result<String, Error> {
        check_json(&self.tree, self.id)?;
        let mut out = String::with_capacity(4096);
        write_json(&self.tree, self.id, pretty, 0, &mut out)?;
        Ok(out)
    }

    /// Like KubeVela's `Validate()`: any non-incomplete error anywhere fails.
    pub fn validate(&self) -> Result<(), Error> {
        validate(&self.tree, self.id)
    }

    /// Every error [`Value::validate`] could report (not only the first), sorted by field path
    /// and each once, as `cue` lists them; empty when the value validates.
    pub fn errors(&self) -> Vec<Error> {
        all_errors(|f| fatal_errors(&self.tree, self.id, f))
    }

    /// Every error [`Value::to_json`] could report, incomplete values included (not only the
    /// first), sorted by field path and each once; empty when the value exports.
    pub fn export_errors(&self) -> Vec<Error> {
        all_errors(|f| json_errors(&self.tree, self.id, f))
    }

    fn field_list(&self, all: bool) -> Vec<Field> {
        let t = &*self.tree;
        match self.base() {
            N::Struct(a, b, _) => t
                .fields(a, b)
                .iter()
                .filter(|f| all || f.kind == FK::Regular)
                .map(|f| Field {
                    name: t.str(f.name).to_string(),
                    value: self.at(f.value),
                    comments: f.comments.clone(),
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The regular fields, in order.
    pub fn fields(&self) -> Vec<Field> {
        self.field_list(false)
    }

    /// All fields including hidden fields and definitions.
    pub fn all_fields(&self) -> Vec<Field> {
        self.field_list(true)
    }

    pub fn elements(&self) -> Vec<Value> {
        match self.base() {
            N::List(a, b) => self.tree.elems(a, b).iter().map(|&e| self.at(e)).collect(),
            _ => Vec::new(),
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self.base() {
            N::Bool(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<String> {
        match self.base() {
            N::Str(a, b) => Some(self.tree.str((a, b)).to_string()),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self.base() {
            N::Int(i) => Some(i),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self.base() {
            N::Int(i) => Some(i as f64),
            N::Float(f) => Some(f),
            _ => None,
        }
    }

    /// The error carried by this value, if it is bottom or incomplete.
    pub fn error(&self) -> Option<Error> {
        match self.base() {
            N::Err(e) | N::Incomplete(e) => Some(self.tree.error(e).clone()),
            _ => None,
        }
    }
}

/// Splits `a."b.c".0` into `a`, `b.c`, `0`.
pub(crate) fn split_path(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = path.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                let mut q = String::from('"');
                let mut esc = false;
                for d in chars.by_ref() {
                    q.push(d);
                    if esc {
                        esc = false;
                    } else if d == '\\' {
                        esc = true;
                    } else if d == '"' {
                        break;
                    }
                }
                cur.push_str(&serde_json::from_str::<String>(&q).unwrap_or(q));
            }
            '.' => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out
}

fn bytes_b64(t: &Tree, a: u32, b: u32) -> String {
    base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        &t.bytes[a as usize..b as usize],
    )
}

fn to_json(t: &Tree, n: u32) -> Result<serde_json::Value, Error> {
    use serde_json::Value as J;
    Ok(match t.n(t.base(n)) {
        N::Null => J::Null,
        N::Bool(b) => J::Bool(b),
        N::Int(i) => J::from(i),
        N::Float(f) => match serde_json::Number::from_f64(f) {
            Some(x) => J::Number(x),
            None => return Err(Error::new(format!("invalid float {f}"))),
        },
        N::Str(a, b) => J::String(t.str((a, b)).to_string()),
        N::Bytes(a, b) => J::String(bytes_b64(t, a, b)),
        N::Struct(a, b, ce) => {
            if ce != NO_ERR {
                return Err(t.error(ce).clone());
            }
            let fields = t.fields(a, b);
            let mut m = serde_json::Map::with_capacity(fields.len());
            for f in fields {
                if f.kind != FK::Regular {
                    continue;
                }
                m.insert(t.str(f.name).to_string(), to_json(t, f.value)?);
            }
            J::Object(m)
        }
        N::List(a, b) => J::Array(
            t.elems(a, b)
                .iter()
                .map(|&x| to_json(t, x))
                .collect::<Result<_, _>>()?,
        ),
        N::Err(e) | N::Incomplete(e) => return Err(t.error(e).clone()),
        N::WithDefs(..) => return Err(Error::new("internal error: nested scalar wrapper")),
    })
}

/// The first error `to_json` would return for `n`, in the same order, without building JSON
/// (and without walking a node whose flags say it has none).
fn check_json(t: &Tree, n: u32) -> Result<(), Error> {
    first_error(|f| json_errors(t, n, f))
}

/// Calls `f` with each error `to_json` meets under `n` (incomplete values included), in the
/// order it meets them, until `f` breaks.
fn json_errors(
    t: &Tree,
    n: u32,
    f: &mut (impl FnMut(Error) -> ControlFlow<Error> + ?Sized),
) -> ControlFlow<Error> {
    if t.flags(n) & F_JSON == 0 {
        return ControlFlow::Continue(());
    }
    match t.n(t.base(n)) {
        N::Float(x) if !x.is_finite() => f(Error::new(format!("invalid float {x}"))),
        N::Struct(a, b, ce) => {
            if ce != NO_ERR {
                // the struct's own error stands for all of it, as in `to_json`
                return f(t.error(ce).clone());
            }
            for fl in t.fields(a, b) {
                if fl.kind == FK::Regular {
                    json_errors(t, fl.value, f)?;
                }
            }
            ControlFlow::Continue(())
        }
        N::List(a, b) => t.elems(a, b).iter().try_for_each(|&x| json_errors(t, x, f)),
        N::Err(e) | N::Incomplete(e) => f(t.error(e).clone()),
        N::WithDefs(..) => f(Error::new("internal error: nested scalar wrapper")),
        _ => ControlFlow::Continue(()),
    }
}

/// Writes node `n`, checked by [`check_json`], as JSON text exactly as serde_json writes what
/// `to_json` builds (`to_string_pretty` when `pretty`, else `to_string`), straight from the tree.
fn write_json(t: &Tree, n: u32, pretty: bool, depth: usize, out: &mut String) -> Result<(), Error> {
    const SPACES: &str = "\n                                                              ";
    let newline = |out: &mut String, depth: usize| match SPACES.get(..1 + 2 * depth) {
        Some(s) => out.push_str(s),
        None => {
            out.push('\n');
            for _ in 0..depth {
                out.push_str("  ");
            }
        }
    };
    match t.n(t.base(n)) {
        N::Null => out.push_str("null"),
        N::Bool(b) => out.push_str(if b { "true" } else { "false" }),
        N::Int(i) => {
            use std::fmt::Write;
            // writing to a String cannot fail
            let _ = write!(out, "{i}");
        }
        N::Float(f) => out.push_str(&serde_json::Value::from(f).to_string()),
        N::Str(a, b) => push_json_str(out, t.str((a, b))),
        N::Bytes(a, b) => push_json_str(out, &bytes_b64(t, a, b)),
        N::Struct(a, b, _) => {
            out.push('{');
            let mut empty = true;
            for f in t.fields(a, b) {
                if f.kind != FK::Regular {
                    continue;
                }
                if !empty {
                    out.push(',');
                }
                empty = false;
                if pretty {
                    newline(out, depth + 1);
                }
                push_json_str(out, t.str(f.name));
                out.push_str(if pretty { ": " } else { ":" });
                write_json(t, f.value, pretty, depth + 1, out)?;
            }
            if pretty && !empty {
                newline(out, depth);
            }
            out.push('}');
        }
        N::List(a, b) => {
            out.push('[');
            let e = t.elems(a, b);
            for (i, &x) in e.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                if pretty {
                    newline(out, depth + 1);
                }
                write_json(t, x, pretty, depth + 1, out)?;
            }
            if pretty && !e.is_empty() {
                newline(out, depth);
            }
            out.push(']');
        }
        N::Err(e) | N::Incomplete(e) => {
            return Err(Error::new(format!("cannot encode JSON: {}", t.error(e))));
        }
        N::WithDefs(..) => {
            return Err(Error::new(
                "cannot encode JSON: internal error: nested scalar wrapper",
            ));
        }
    }
    Ok(())
}

/// Whether any of the 8 bytes packed in `w` needs escaping in a JSON string: a control
/// character (below 0x20), `"` or `\` (bytes of multi-byte UTF-8 characters never do). The
/// word tests are exact for "any byte of the word".
fn word_needs_escape(w: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero_in = |v: u64| v.wrapping_sub(ONES) & !v & HIGH != 0;
    let below_space = w.wrapping_sub(ONES * 0x20) & !w & HIGH != 0;
    below_space || zero_in(w ^ (ONES * u64::from(b'"'))) || zero_in(w ^ (ONES * u64::from(b'\\')))
}

/// Whether any byte of `s` needs escaping in a JSON string (see [`word_needs_escape`]): eight
/// bytes at a time, the last eight overlapping the previous word; byte by byte below eight.
fn needs_escape(s: &[u8]) -> bool {
    if s.len() < 8 {
        return s.iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\');
    }
    let word = |w: &[u8]| {
        <[u8; 8]>::try_from(w).map_or(true, |w| word_needs_escape(u64::from_le_bytes(w)))
    };
    s.chunks_exact(8).any(word) || word(&s[s.len() - 8..])
}

/// A JSON string literal, escaped as serde_json escapes it. A string with nothing to escape
/// (nearly all) is checked eight bytes at a time and copied whole.
fn push_json_str(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(s.len() + 2);
    out.push('"');
    if !needs_escape(s.as_bytes()) {
        out.push_str(s);
        out.push('"');
        return;
    }
    let mut start = 0;
    for (i, &b) in s.as_bytes().iter().enumerate() {
        let esc = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f => "",
            _ => continue,
        };
        // `b` is ASCII: `i` is a character boundary
        out.push_str(&s[start..i]);
        if esc.is_empty() {
            out.push_str("\\u00");
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 0xf) as usize] as char);
        } else {
            out.push_str(esc);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// The first error `validate` finds below `n`: definitions and hidden fields before the value
/// they decorate, fields in order; nodes whose flags say they hold none are not walked.
fn validate(t: &Tree, n: u32) -> Result<(), Error> {
    first_error(|f| fatal_errors(t, n, f))
}

/// The first error an error walk (`json_errors`, `fatal_errors`) meets, if any.
fn first_error(
    walk: impl FnOnce(&mut dyn FnMut(Error) -> ControlFlow<Error>) -> ControlFlow<Error>,
) -> Result<(), Error> {
    match walk(&mut ControlFlow::Break) {
        ControlFlow::Break(e) => Err(e),
        ControlFlow::Continue(()) => Ok(()),
    }
}

/// Calls `f` with each non-incomplete error under `n` (definitions and hidden fields included),
/// in field order, until `f` breaks.
fn fatal_errors(
    t: &Tree,
    n: u32,
    f: &mut (impl FnMut(Error) -> ControlFlow<Error> + ?Sized),
) -> ControlFlow<Error> {
    if t.flags(n) & F_ERR == 0 {
        return ControlFlow::Continue(());
    }
    match t.n(n) {
        N::WithDefs(b, x, y) => {
            for fl in t.fields(x, y) {
                fatal_errors(t, fl.value, f)?;
            }
            fatal_errors(t, b, f)
        }
        N::Err(e) => f(t.error(e).clone()),
        N::Struct(a, b, _) => {
            for fl in t.fields(a, b) {
                fatal_errors(t, fl.value, f)?;
            }
            ControlFlow::Continue(())
        }
        N::List(a, b) => t
            .elems(a, b)
            .iter()
            .try_for_each(|&x| fatal_errors(t, x, f)),
        _ => ControlFlow::Continue(()),
    }
}

/// Every error an error walk (`json_errors`, `fatal_errors`) meets, as `cue` lists them: sorted
/// by field path (stably: one path's errors keep their order), each distinct error once.
fn all_errors(
    walk: impl FnOnce(&mut dyn FnMut(Error) -> ControlFlow<Error>) -> ControlFlow<Error>,
) -> Vec<Error> {
    let mut all = Vec::new();
    let _ = walk(&mut |e| {
        all.push(e);
        ControlFlow::Continue(())
    });
    all.sort_by(|a, b| a.path().cmp(b.path()));
    all.dedup_by(|a, b| a.to_string() == b.to_string());
    all
}

#[cfg(test)]
mod tests {
    use super::push_json_str;

    /// The word-at-a-time scan escapes exactly what serde_json escapes, wherever the special
    /// byte falls in (or after) an eight-byte word.
    #[test]
    fn json_strings_escape_like_serde_json() {
        let mut cases: Vec<String> = vec![
            String::new(),
            "app.oam.dev/name".into(),
            "héllo wörld, ünïcode ✓ 🚀 and more".into(),
            "\u{7f}\u{80}\u{ff}\u{2028}".into(),
        ];
        for b in 0u8..0x80 {
            for pad in 0..18 {
                let mut s = "x".repeat(pad);
                s.push(b as char);
                s.push_str("tail-ü");
                cases.push(s);
            }
        }
        for s in cases {
            let mut out = String::new();
            push_json_str(&mut out, &s);
            assert_eq!(out, serde_json::to_string(&s).unwrap(), "for {s:?}");
        }
    }
}
