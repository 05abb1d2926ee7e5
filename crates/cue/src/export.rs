//! Turning the evaluation arena into an immutable, thread-safe [`Value`] tree, and exporting it:
//! JSON (`cue export`), validation (KubeVela's `Validate()`), lookups and field listings.

use std::rc::Rc;
use std::sync::Arc;

use crate::ast::Comments;
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

#[derive(Debug)]
pub(crate) struct NField {
    name: String,
    kind: FK,
    value: Arc<Node>,
    comments: Comments,
}

#[derive(Debug)]
pub(crate) enum Node {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Struct(Vec<NField>, Option<Error>),
    List(Vec<Arc<Node>>),
    Err(Error),
    Incomplete(Error),
    /// A scalar embedded in a struct that also declares definitions or hidden fields.
    WithDefs(Arc<Node>, Vec<NField>),
}

impl Node {
    fn base(&self) -> &Node {
        match self {
            Node::WithDefs(n, _) => n,
            other => other,
        }
    }
}

/// An evaluated value: immutable, cheap to clone, `Send + Sync`.
#[derive(Clone, Debug)]
pub struct Value {
    node: Arc<Node>,
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
    /// Error-free struct and list nodes already built, by vertex: a field that is a plain
    /// reference to one of them shares its node (`all: [r0.output, …]`).
    built: std::collections::HashMap<u32, Arc<Node>, crate::value::FnvBuild>,
    /// Error and incomplete nodes built so far (a node built while it did not change is clean).
    errors: u64,
}

pub(crate) enum Seg {
    Label(Rc<str>),
    Index(usize),
}

fn join_path(path: &[Seg]) -> String {
    let mut out = String::new();
    for (i, s) in path.iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        match s {
            Seg::Label(l) => out.push_str(&fmt_label(crate::eval::display_label(l))),
            Seg::Index(n) => out.push_str(&n.to_string()),
        }
    }
    out
}

fn fmt_label(name: &str) -> String {
    let ident = !name.is_empty()
        && name.chars().enumerate().all(|(i, c)| {
            c.is_ascii_alphanumeric() || c == '_' || c == '$' || (c == '#' && i == 0)
        })
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if ident {
        name.to_string()
    } else {
        crate::value::quote_str(name)
    }
}

impl Builder<'_, '_> {
    fn err(&self, b: &Bot, path: &[Seg]) -> Error {
        let p = b.path.clone().unwrap_or_else(|| join_path(path));
        let mut positions = Vec::new();
        for s in &b.spans {
            if s.end == 0 && s.start == 0 {
                continue;
            }
            if let Some(pos) = pos_of(&self.inner.sources, *s) {
                if !positions.contains(&pos) {
                    positions.push(pos);
                }
            }
        }
        Error::full(b.msg.clone(), p, positions, b.incomplete)
    }

    fn build(&mut self, vid: u32, path: &mut Vec<Seg>, depth: usize) -> Arc<Node> {
        if let Some(w) = self.ev.plain_ref_target(vid) {
            if let Some(n) = self.built.get(&w) {
                return n.clone();
            }
        }
        let before = self.errors;
        let n = self.build_vertex(vid, path, depth);
        match &*n {
            Node::Err(_) | Node::Incomplete(_) | Node::Struct(_, Some(_)) => self.errors += 1,
            Node::WithDefs(b, _) if matches!(**b, Node::Err(_) | Node::Incomplete(_)) => {
                self.errors += 1
            }
            Node::Struct(..) | Node::List(_) if self.errors == before => {
                let r = self.ev.deref(vid);
                self.built.insert(r, n.clone());
            }
            _ => {}
        }
        n
    }

    fn build_vertex(&mut self, vid: u32, path: &mut Vec<Seg>, depth: usize) -> Arc<Node> {
        // Fast path: plain data nobody unified anything with.
        {
            let x = &self.ev.vs[vid as usize];
            if x.state == crate::eval::St::New && x.forward.is_none() && x.conjs.len() == 1 {
                match x.conjs.get(0).map(|c| &c.x) {
                    Some(CX::Json(j)) => return json_node(j),
                    Some(CX::JsonAt([], j)) => return json_node(j),
                    _ => {}
                }
            }
        }
        if depth > self.ev.limits.max_depth {
            self.ev.depth_hit = true;
            return Arc::new(Node::Err(Error::full(
                format!(
                    "structural cycle or value nested deeper than {}",
                    self.ev.limits.max_depth
                ),
                join_path(path),
                vec![],
                false,
            )));
        }
        if self.ev.fatal.is_some() {
            return Arc::new(Node::Err(Error::full(
                "evaluation aborted".into(),
                join_path(path),
                vec![],
                false,
            )));
        }
        self.ev.expand(vid);
        let r = self.ev.deref(vid);
        let (err, disj, is_list, is_struct, atom, comp_err) = {
            let x = &self.ev.vs[r as usize];
            let orig = &self.ev.vs[vid as usize];
            let disj = if orig.forward.is_none() {
                orig.disj_result().cloned()
            } else {
                None
            };
            (
                x.err.clone(),
                disj,
                x.is_list,
                x.is_struct,
                x.atom.clone(),
                x.comp_err().cloned(),
            )
        };
        if let Some(b) = err {
            let e = self.err(&b, path);
            return Arc::new(if b.incomplete {
                Node::Incomplete(e)
            } else {
                Node::Err(e)
            });
        }
        if let Some(alts) = disj {
            let vals: Vec<String> = alts
                .iter()
                .map(|(u, d)| {
                    let v = self.ev.value_of(*u);
                    let s = match &v {
                        Val::Vertex(_) => "{...}".to_string(),
                        other => other.to_string(),
                    };
                    if *d { format!("*{s}") } else { s }
                })
                .collect();
            let e = Error::full(
                format!("incomplete value {}", vals.join(" | ")),
                join_path(path),
                vec![],
                true,
            );
            return Arc::new(Node::Incomplete(e));
        }
        if is_list {
            let elems = self.ev.vs[r as usize].elems.clone();
            let mut out = Vec::with_capacity(elems.len());
            for (i, e) in elems.into_iter().enumerate() {
                path.push(Seg::Index(i));
                out.push(self.build(e, path, depth + 1));
                path.pop();
            }
            let list = Arc::new(Node::List(out));
            let extra: Vec<(Rc<str>, crate::eval::ArcInfo)> = self.ev.vs[r as usize]
                .arcs
                .iter()
                .filter(|(_, a)| a.kind != FK::Regular)
                .map(|(k, a)| (k.clone(), a.clone()))
                .collect();
            if extra.is_empty() {
                return list;
            }
            let mut fields = Vec::with_capacity(extra.len());
            for (k, a) in extra {
                path.push(Seg::Label(k.clone()));
                let n = self.build(a.vid, path, depth + 1);
                path.pop();
                fields.push(NField {
                    name: crate::eval::display_label(&k).to_string(),
                    kind: a.kind,
                    value: n,
                    comments: a.comments,
                });
            }
            return Arc::new(Node::WithDefs(list, fields));
        }
        if is_struct {
            let arcs: Vec<(Rc<str>, crate::eval::ArcInfo)> = self.ev.vs[r as usize]
                .arcs
                .iter()
                .map(|(k, a)| (k.clone(), a.clone()))
                .collect();
            let mut fields = Vec::with_capacity(arcs.len());
            for (k, a) in arcs {
                if a.kind == FK::Regular && !a.regular {
                    if a.required {
                        path.push(Seg::Label(k.clone()));
                        let e = Error::full(
                            "field is required but not present".to_string(),
                            join_path(path),
                            vec![],
                            true,
                        );
                        path.pop();
                        fields.push(NField {
                            name: crate::eval::display_label(&k).to_string(),
                            kind: a.kind,
                            value: Arc::new(Node::Incomplete(e)),
                            comments: a.comments.clone(),
                        });
                    }
                    continue;
                }
                path.push(Seg::Label(k.clone()));
                let n = self.build(a.vid, path, depth + 1);
                path.pop();
                fields.push(NField {
                    name: crate::eval::display_label(&k).to_string(),
                    kind: a.kind,
                    value: n,
                    comments: a.comments,
                });
            }
            let ce = comp_err.map(|b| self.err(&b, path));
            return Arc::new(Node::Struct(fields, ce));
        }
        let extra: Vec<(Rc<str>, crate::eval::ArcInfo)> = self.ev.vs[r as usize]
            .arcs
            .iter()
            .filter(|(_, a)| a.kind != FK::Regular)
            .map(|(k, a)| (k.clone(), a.clone()))
            .collect();
        let scalar = self.scalar_node(atom, path);
        if extra.is_empty() {
            return scalar;
        }
        let mut fields = Vec::with_capacity(extra.len());
        for (k, a) in extra {
            path.push(Seg::Label(k.clone()));
            let n = self.build(a.vid, path, depth + 1);
            path.pop();
            fields.push(NField {
                name: crate::eval::display_label(&k).to_string(),
                kind: a.kind,
                value: n,
                comments: a.comments,
            });
        }
        Arc::new(Node::WithDefs(scalar, fields))
    }

    fn scalar_node(&mut self, atom: Val, path: &[Seg]) -> Arc<Node> {
        Arc::new(match atom {
            Val::Null => Node::Null,
            Val::Bool(b) => Node::Bool(b),
            Val::Int(i) => Node::Int(i),
            Val::Float(f) => Node::Float(f),
            // `String::from(&str)`: `Rc<str>::to_string` goes through `Display` and the formatter.
            Val::Str(s) => Node::Str(String::from(&*s)),
            Val::Bytes(b) => Node::Bytes(b.to_vec()),
            Val::Bottom(b) => Node::Err(self.err(&b, path)),
            other => {
                let msg = match &other {
                    Val::Top => "incomplete value _".to_string(),
                    o => format!("incomplete value {o}"),
                };
                let _ = type_name(&other);
                Node::Incomplete(Error::full(msg, join_path(path), vec![], true))
            }
        })
    }
}

/// Depth budget for evaluating on the caller's stack; deeper programs are re-run on a
/// dedicated thread with a stack sized for the configured limit.
const FAST_DEPTH: usize = if cfg!(debug_assertions) { 0 } else { 120 };

fn json_node(j: &serde_json::Value) -> Arc<Node> {
    use serde_json::Value as J;
    Arc::new(match j {
        J::Null => Node::Null,
        J::Bool(b) => Node::Bool(*b),
        J::Number(n) => match n.as_i64() {
            Some(i) => Node::Int(i),
            None => Node::Float(n.as_f64().unwrap_or(0.0)),
        },
        J::String(s) => Node::Str(s.clone()),
        J::Array(a) => Node::List(a.iter().map(json_node).collect()),
        J::Object(m) => Node::Struct(
            m.iter()
                .map(|(k, v)| NField {
                    name: k.clone(),
                    kind: FK::Regular,
                    value: json_node(v),
                    comments: Comments::default(),
                })
                .collect(),
            None,
        ),
    })
}

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
    // Evaluation recurses; run it on a thread whose stack fits the configured depth limit.
    let stack = (inner.limits.max_depth.max(64))
        .saturating_mul(48 * 1024)
        .min(1 << 30);
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .stack_size(stack)
            .spawn_scoped(s, || evaluate_here(inner, inputs, inner.limits.clone()).0)
            .map_err(|e| Error::new(format!("cannot start evaluation thread: {e}")))?
            .join()
            .map_err(|_| Error::new("internal error: evaluation panicked"))?
    })
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
    let mut b = Builder {
        ev,
        inner,
        built: Default::default(),
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
    let node = b.build(root, &mut path, 0);
    let hit = b.ev.depth_hit;
    if let Some(f) = b.ev.fatal.take() {
        return (Err(f), hit);
    }
    (Ok(Value { node }), hit)
}

impl Value {
    /// Looks up a dotted path of field names (regular, definition or hidden); a segment may be
    /// quoted (`metadata.labels."app.oam.dev/name"`) and list elements are selected by index.
    pub fn lookup(&self, path: &str) -> Option<Value> {
        let mut cur = self.node.clone();
        if path.is_empty() {
            return Some(self.clone());
        }
        for seg in split_path(path) {
            let seg = seg.as_str();
            let next = match &*cur {
                Node::WithDefs(base, fields) => fields
                    .iter()
                    .find(|f| f.name == seg)
                    .map(|f| f.value.clone())
                    .or_else(|| match &**base {
                        // a list that also declares hidden fields or definitions
                        Node::List(elems) => seg
                            .parse::<usize>()
                            .ok()
                            .and_then(|i| elems.get(i).cloned()),
                        _ => None,
                    }),
                Node::Struct(fields, _) => fields
                    .iter()
                    .find(|f| f.name == seg)
                    .map(|f| f.value.clone()),
                Node::List(elems) => seg
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| elems.get(i).cloned()),
                _ => None,
            }?;
            cur = next;
        }
        Some(Value { node: cur })
    }

    /// True unless the value is an error (bottom).
    pub fn exists(&self) -> bool {
        !matches!(&*self.node, Node::Err(_))
    }

    pub fn kind(&self) -> Kind {
        match self.node.base() {
            Node::Null => Kind::Null,
            Node::Bool(_) => Kind::Bool,
            Node::Int(_) => Kind::Int,
            Node::Float(_) => Kind::Float,
            Node::Str(_) => Kind::String,
            Node::Bytes(_) => Kind::Bytes,
            Node::Struct(..) => Kind::Struct,
            Node::List(_) => Kind::List,
            Node::Err(_) => Kind::Bottom,
            Node::Incomplete(_) | Node::WithDefs(..) => Kind::Incomplete,
        }
    }

    /// True when the value and everything in it (regular fields) is concrete and error free.
    pub fn is_concrete(&self) -> bool {
        self.to_json().is_ok()
    }

    /// `cue export`: fails naming the path of any incomplete or erroring field.
    pub fn to_json(&self) -> Result<serde_json::Value, Error> {
        to_json(&self.node)
    }

    /// `cue export` as JSON text (indented when `pretty`): the same result and errors as
    /// serialising [`Value::to_json`], without building the intermediate `serde_json::Value`.
    pub fn to_json_string(&self, pretty: bool) -> Result<String, Error> {
        check_json(&self.node)?;
        let ser = JsonNode(&self.node);
        let r = if pretty {
            serde_json::to_string_pretty(&ser)
        } else {
            serde_json::to_string(&ser)
        };
        r.map_err(|e| Error::new(format!("cannot encode JSON: {e}")))
    }

    /// Like KubeVela's `Validate()`: any non-incomplete error anywhere fails.
    pub fn validate(&self) -> Result<(), Error> {
        validate(&self.node)
    }

    /// The regular fields, in order.
    pub fn fields(&self) -> Vec<Field> {
        match self.node.base() {
            Node::Struct(fields, _) => fields
                .iter()
                .filter(|f| f.kind == FK::Regular)
                .map(|f| Field {
                    name: f.name.clone(),
                    value: Value {
                        node: f.value.clone(),
                    },
                    comments: f.comments.clone(),
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// All fields including hidden fields and definitions.
    pub fn all_fields(&self) -> Vec<Field> {
        match self.node.base() {
            Node::Struct(fields, _) => fields
                .iter()
                .map(|f| Field {
                    name: f.name.clone(),
                    value: Value {
                        node: f.value.clone(),
                    },
                    comments: f.comments.clone(),
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    pub fn elements(&self) -> Vec<Value> {
        match self.node.base() {
            Node::List(e) => e.iter().map(|n| Value { node: n.clone() }).collect(),
            _ => Vec::new(),
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self.node.base() {
            Node::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<String> {
        match self.node.base() {
            Node::Str(s) => Some(s.clone()),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self.node.base() {
            Node::Int(i) => Some(*i),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self.node.base() {
            Node::Int(i) => Some(*i as f64),
            Node::Float(f) => Some(*f),
            _ => None,
        }
    }

    /// The error carried by this value, if it is bottom or incomplete.
    pub fn error(&self) -> Option<Error> {
        match self.node.base() {
            Node::Err(e) | Node::Incomplete(e) => Some(e.clone()),
            _ => None,
        }
    }
}

/// Splits `a."b.c".0` into `a`, `b.c`, `0`.
fn split_path(path: &str) -> Vec<String> {
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

fn to_json(n: &Node) -> Result<serde_json::Value, Error> {
    use serde_json::Value as J;
    Ok(match n.base() {
        Node::Null => J::Null,
        Node::Bool(b) => J::Bool(*b),
        Node::Int(i) => J::from(*i),
        Node::Float(f) => match serde_json::Number::from_f64(*f) {
            Some(x) => J::Number(x),
            None => return Err(Error::new(format!("invalid float {f}"))),
        },
        Node::Str(s) => J::String(s.clone()),
        Node::Bytes(b) => J::String(base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            b,
        )),
        Node::Struct(fields, ce) => {
            if let Some(e) = ce {
                return Err(e.clone());
            }
            let mut m = serde_json::Map::with_capacity(fields.len());
            for f in fields {
                if f.kind != FK::Regular {
                    continue;
                }
                m.insert(f.name.clone(), to_json(&f.value)?);
            }
            J::Object(m)
        }
        Node::List(e) => J::Array(e.iter().map(|x| to_json(x)).collect::<Result<_, _>>()?),
        Node::Err(e) | Node::Incomplete(e) => return Err(e.clone()),
        Node::WithDefs(..) => return Err(Error::new("internal error: nested scalar wrapper")),
    })
}

/// The first error `to_json` would return for `n`, in the same order, without building JSON.
fn check_json(n: &Node) -> Result<(), Error> {
    match n.base() {
        Node::Float(f) if !f.is_finite() => Err(Error::new(format!("invalid float {f}"))),
        Node::Struct(fields, ce) => {
            if let Some(e) = ce {
                return Err(e.clone());
            }
            for f in fields {
                if f.kind == FK::Regular {
                    check_json(&f.value)?;
                }
            }
            Ok(())
        }
        Node::List(e) => e.iter().try_for_each(|x| check_json(x)),
        Node::Err(e) | Node::Incomplete(e) => Err(e.clone()),
        Node::WithDefs(..) => Err(Error::new("internal error: nested scalar wrapper")),
        _ => Ok(()),
    }
}

/// Serialises a node checked by [`check_json`] as `to_json` would build it.
struct JsonNode<'n>(&'n Node);

impl serde::Serialize for JsonNode<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{Error as _, SerializeMap, SerializeSeq};
        match self.0.base() {
            Node::Null => s.serialize_unit(),
            Node::Bool(b) => s.serialize_bool(*b),
            Node::Int(i) => s.serialize_i64(*i),
            Node::Float(f) => s.serialize_f64(*f),
            Node::Str(x) => s.serialize_str(x),
            Node::Bytes(b) => s.serialize_str(&base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                b,
            )),
            Node::Struct(fields, _) => {
                let n = fields.iter().filter(|f| f.kind == FK::Regular).count();
                let mut m = s.serialize_map(Some(n))?;
                for f in fields {
                    if f.kind == FK::Regular {
                        m.serialize_entry(&f.name, &JsonNode(&f.value))?;
                    }
                }
                m.end()
            }
            Node::List(e) => {
                let mut q = s.serialize_seq(Some(e.len()))?;
                for x in e {
                    q.serialize_element(&JsonNode(x))?;
                }
                q.end()
            }
            Node::Err(e) | Node::Incomplete(e) => Err(S::Error::custom(e)),
            Node::WithDefs(..) => Err(S::Error::custom("internal error: nested scalar wrapper")),
        }
    }
}

fn validate(n: &Node) -> Result<(), Error> {
    match n {
        Node::WithDefs(b, fields) => {
            for f in fields {
                validate(&f.value)?;
            }
            validate(b)
        }
        Node::Err(e) => Err(e.clone()),
        Node::Struct(fields, _) => {
            for f in fields {
                validate(&f.value)?;
            }
            Ok(())
        }
        Node::List(e) => {
            for x in e {
                validate(x)?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}
