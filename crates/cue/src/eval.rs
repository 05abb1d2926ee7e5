//! The evaluator. Values live in an arena of vertices; each vertex collects conjuncts
//! (expression + lexical environment) and is expanded lazily: its conjuncts are unified into a
//! scalar part (atom), arcs (fields) or list elements. References add the referenced vertex's
//! conjuncts (re-evaluated in the new place), disjunctions are resolved by evaluating each
//! combination of alternatives, and closedness is tracked per group of struct literals.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use crate::Limits;
use crate::ast::*;
use crate::builtins;
use crate::value::*;

pub type Env<'a> = Option<Rc<Frame<'a>>>;

pub struct Frame<'a> {
    pub kind: FrameKind<'a>,
    pub parent: Env<'a>,
}

pub enum FrameKind<'a> {
    Struct {
        vid: VId,
        lit: &'a StructLit,
        /// Vertices of the literal's `let` declarations (by declaration index), made on first
        /// reference. A literal has few lets: a list, empty (no allocation) for most.
        lets: RefCell<Vec<(usize, VId)>>,
        root: bool,
    },
    Bind {
        a: (&'a str, Val),
        b: Option<(&'a str, Val)>,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Closed {
    No,
    /// `close()`: this struct is closed, its children are not. Carries the closedness id.
    Shallow(u32),
    /// A definition: closed recursively. Struct literals with the same id share one allowed set.
    Deep(u32),
}

impl Closed {
    pub fn child(self) -> Closed {
        match self {
            Closed::Deep(c) => Closed::Deep(c),
            _ => Closed::No,
        }
    }
    pub fn is_closed(self) -> bool {
        !matches!(self, Closed::No)
    }
    pub fn cid(self) -> u32 {
        match self {
            Closed::No => 0,
            Closed::Shallow(c) | Closed::Deep(c) => c,
        }
    }
}

#[derive(Clone)]
pub enum CX<'a> {
    Expr(&'a Expr),
    Lit(&'a StructLit),
    Json(&'a serde_json::Value),
    /// JSON data to unify at a path below the vertex (inputs of `eval_with`).
    JsonAt(&'a [String], &'a serde_json::Value),
    Val(Val),
    Vertex(VId),
}

#[derive(Clone)]
pub struct Conj<'a> {
    pub x: CX<'a>,
    pub env: Env<'a>,
    pub closed: Closed,
}

/// The conjuncts of a vertex. Most vertices have exactly one: it is kept inline, so a vertex
/// with one conjunct allocates nothing for it.
#[derive(Clone, Default)]
pub struct Conjs<'a> {
    first: Option<Conj<'a>>,
    rest: Vec<Conj<'a>>,
}

impl<'a> Conjs<'a> {
    pub fn len(&self) -> usize {
        if self.first.is_some() {
            1 + self.rest.len()
        } else {
            0
        }
    }
    pub fn is_empty(&self) -> bool {
        self.first.is_none()
    }
    pub fn push(&mut self, c: Conj<'a>) {
        if self.first.is_none() {
            self.first = Some(c);
        } else {
            self.rest.push(c);
        }
    }
    pub fn get(&self, i: usize) -> Option<&Conj<'a>> {
        if i == 0 {
            self.first.as_ref()
        } else {
            self.rest.get(i - 1)
        }
    }
    pub fn iter(&self) -> impl Iterator<Item = &Conj<'a>> {
        self.first.iter().chain(self.rest.iter())
    }
}

/// A vector that keeps its first element inline: most vertices have at most one closedness
/// group, which then costs no allocation. Reads go through the slice it derefs to.
#[derive(Clone)]
pub enum Inline1<T> {
    One(Option<T>),
    Many(Vec<T>),
}

impl<T> Default for Inline1<T> {
    fn default() -> Self {
        Inline1::One(None)
    }
}

impl<T> Inline1<T> {
    pub fn push(&mut self, x: T) {
        match self {
            Inline1::One(slot @ None) => *slot = Some(x),
            Inline1::One(first @ Some(_)) => {
                let mut v = Vec::with_capacity(2);
                v.extend(first.take());
                v.push(x);
                *self = Inline1::Many(v);
            }
            Inline1::Many(v) => v.push(x),
        }
    }
}

impl<T> IntoIterator for Inline1<T> {
    type Item = T;
    type IntoIter = std::iter::Chain<std::option::IntoIter<T>, std::vec::IntoIter<T>>;
    fn into_iter(self) -> Self::IntoIter {
        match self {
            Inline1::One(x) => x.into_iter().chain(Vec::new()),
            Inline1::Many(v) => None.into_iter().chain(v),
        }
    }
}

impl<T> std::ops::Deref for Inline1<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        match self {
            Inline1::One(x) => x.as_slice(),
            Inline1::Many(v) => v,
        }
    }
}

impl<T> std::ops::DerefMut for Inline1<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        match self {
            Inline1::One(x) => x.as_mut_slice(),
            Inline1::Many(v) => v,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FK {
    Regular,
    Hidden,
    Def,
}

/// The scope of a field's value in which its aliases name what they bind: the field's label
/// (a pattern constraint's `[X=expr]`, a dynamic field's `(X=expr)`) or the field itself
/// (`X=[expr]`).
fn bind_aliases<'a>(a: (&'a str, Val), b: Option<(&'a str, Val)>, parent: &Env<'a>) -> Env<'a> {
    Some(Rc::new(Frame {
        kind: FrameKind::Bind { a, b },
        parent: parent.clone(),
    }))
}

/// Arc key of a field: regular fields whose quoted name looks like a definition or hidden label
/// get a marker prefix so they don't share the definition's / hidden field's slot.
pub fn regular_key(name: &str, kind: FK) -> std::borrow::Cow<'_, str> {
    if kind == FK::Regular && label_kind(name) != FK::Regular {
        std::borrow::Cow::Owned(format!("\u{1}{name}"))
    } else {
        std::borrow::Cow::Borrowed(name)
    }
}

/// The user-visible name of an arc key.
pub fn display_label(key: &str) -> &str {
    key.strip_prefix('\u{1}').unwrap_or(key)
}

pub fn label_kind(name: &str) -> FK {
    if name.starts_with('#') || name.starts_with("_#") {
        FK::Def
    } else if name.starts_with('_') && name.len() > 1 {
        FK::Hidden
    } else {
        FK::Regular
    }
}

#[derive(Clone)]
pub struct ArcInfo {
    pub vid: VId,
    pub kind: FK,
    pub regular: bool,
    pub optional: bool,
    pub required: bool,
    pub comments: Comments,
}

/// Most structs have a few fields: below this many arcs a lookup is a linear scan (no hashing,
/// no table to allocate); above it a hash index is built.
const ARCS_SCAN: usize = 16;

/// The arcs (fields) of a vertex in insertion order, looked up by name.
#[derive(Clone, Default)]
pub struct Arcs {
    entries: Vec<(Rc<str>, ArcInfo)>,
    /// Name → position, only once there are more than [`ARCS_SCAN`] arcs. Boxed: most
    /// vertices never have one, and a pointer keeps every vertex 24 bytes smaller.
    #[allow(clippy::box_collection)]
    index: Option<Box<HashMap<Rc<str>, u32, FnvBuild>>>,
}

impl Arcs {
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    #[inline(always)]
    pub fn get_index_of(&self, name: &str) -> Option<usize> {
        match &self.index {
            Some(ix) => ix.get(name).map(|&i| i as usize),
            None => {
                let b = name.as_bytes();
                self.entries.iter().position(|(k, _)| {
                    let kb = k.as_bytes();
                    kb.len() == b.len() && kb.first() == b.first() && kb == b
                })
            }
        }
    }
    #[inline]
    pub fn get(&self, name: &str) -> Option<&ArcInfo> {
        let i = self.get_index_of(name)?;
        Some(&self.entries[i].1)
    }
    #[inline]
    pub fn get_mut(&mut self, name: &str) -> Option<&mut ArcInfo> {
        let i = self.get_index_of(name)?;
        Some(&mut self.entries[i].1)
    }
    pub fn get_index_mut(&mut self, i: usize) -> Option<&mut ArcInfo> {
        self.entries.get_mut(i).map(|(_, a)| a)
    }
    /// Adds an arc at the end, or replaces the value of an existing one in place. Returns its
    /// position.
    pub fn insert(&mut self, key: Rc<str>, info: ArcInfo) -> usize {
        if let Some(i) = self.get_index_of(&key) {
            self.entries[i].1 = info;
            return i;
        }
        self.push_new(key, info)
    }
    /// Adds an arc known not to be here yet.
    #[inline(always)]
    fn push_new(&mut self, key: Rc<str>, info: ArcInfo) -> usize {
        let i = self.entries.len();
        match &mut self.index {
            Some(ix) => {
                ix.insert(key.clone(), i as u32);
            }
            None if i >= ARCS_SCAN => self.index = Some(Box::new(self.build_index(Some(&key)))),
            None => {}
        }
        self.entries.push((key, info));
        i
    }
    fn build_index(&self, extra: Option<&Rc<str>>) -> HashMap<Rc<str>, u32, FnvBuild> {
        let n = (self.entries.len() + usize::from(extra.is_some())).max(self.entries.capacity());
        let mut ix = HashMap::with_capacity_and_hasher(n, FnvBuild::default());
        for (i, (k, _)) in self.entries.iter().enumerate() {
            ix.insert(k.clone(), i as u32);
        }
        if let Some(k) = extra {
            ix.insert(k.clone(), self.entries.len() as u32);
        }
        ix
    }
    pub fn reserve(&mut self, n: usize) {
        self.entries.reserve(n);
    }
    pub fn iter(&self) -> impl Iterator<Item = (&Rc<str>, &ArcInfo)> {
        self.entries.iter().map(|(k, a)| (k, a))
    }
    pub fn values(&self) -> impl Iterator<Item = &ArcInfo> {
        self.entries.iter().map(|(_, a)| a)
    }
    /// Moves the arc at `from` to `to`, shifting the ones between (as `IndexMap::move_index`).
    pub fn move_index(&mut self, from: usize, to: usize) {
        if from < to {
            self.entries[from..=to].rotate_left(1);
        } else if to < from {
            self.entries[to..=from].rotate_right(1);
        }
        if self.index.is_some() {
            self.index = Some(Box::new(self.build_index(None)));
        }
    }
}

#[derive(Clone)]
pub struct PatternC<'a> {
    pub label: &'a Expr,
    pub env: Env<'a>,
    pub value: Conj<'a>,
    /// `[X=expr]: value`: the name bound to the matched label in `value`.
    pub alias: Option<&'a str>,
    /// `X=[expr]: value`: the name bound to the matched field in `value`.
    pub field_alias: Option<&'a str>,
}

#[derive(Clone, Default)]
pub struct Group<'a> {
    /// Whether `allowed` is recorded (only needed when the group is or may become closed).
    pub track: bool,
    pub cid: u32,
    pub closed: bool,
    pub open: bool,
    /// The group of a package's top-level declarations (all its files).
    pub root: bool,
    /// The allowed labels and the patterns: boxed, as most groups record neither (a group is
    /// 16 bytes instead of 64, and every vertex has room for one inline).
    ext: Option<Box<GroupExt<'a>>>,
}

#[derive(Clone, Default)]
struct GroupExt<'a> {
    allowed: HashSet<Rc<str>, FnvBuild>,
    patterns: Vec<PatternC<'a>>,
}

impl<'a> Group<'a> {
    fn ext_mut(&mut self) -> &mut GroupExt<'a> {
        self.ext.get_or_insert_with(Box::default)
    }
    /// The labels recorded as allowed (see `track`), made on first write.
    pub fn allowed_mut(&mut self) -> &mut HashSet<Rc<str>, FnvBuild> {
        &mut self.ext_mut().allowed
    }
    pub fn allows(&self, name: &str) -> bool {
        self.ext.as_ref().is_some_and(|e| e.allowed.contains(name))
    }
    pub fn patterns(&self) -> &[PatternC<'a>] {
        self.ext.as_ref().map_or(&[], |e| &e.patterns)
    }
    pub fn push_pattern(&mut self, p: PatternC<'a>) {
        self.ext_mut().patterns.push(p);
    }
}

#[derive(Clone)]
pub enum Pending<'a> {
    Comp(&'a Comprehension, Env<'a>, Closed, usize, usize),
    Dyn(&'a Field, &'a Expr, Env<'a>, Closed, usize),
    /// An embedded computation (`{#a + #b, #a: int}`): evaluated once the vertex has all its
    /// conjuncts, so that it sees the fields unified in after the literal.
    Embed(&'a Expr, Env<'a>, Closed, usize),
}

#[derive(Clone)]
pub struct PendingDisj<'a> {
    pub alts: Vec<(Conj<'a>, bool)>,
    /// For a disjunction met inside a chosen alternative of the disjunct being evaluated
    /// (`1 | (*2 | 3)`): the index of that alternative's disjunction in the parent's list,
    /// so that its defaults count for that disjunction there. `None` at the top, or when
    /// not known (a deferred embedding).
    pub parent: Option<usize>,
}

/// A disjunct of a disjunct's own disjunctions, with its default status per disjunction of
/// the parent (by index there).
pub type NestedDisjunct = (VId, Vec<(usize, DefMode)>);

/// A disjunct's default status in one disjunction (CUE's defaultMode): `Maybe` where the
/// disjunction has no marked alternative, `Is` for a marked one, `Not` for an unmarked one
/// beside marked ones. Unifying takes the greatest (`Not` wins).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum DefMode {
    Maybe,
    Is,
    Not,
}

impl DefMode {
    fn of(has_marks: bool, marked: bool) -> DefMode {
        match (has_marks, marked) {
            (false, _) => DefMode::Maybe,
            (true, true) => DefMode::Is,
            (true, false) => DefMode::Not,
        }
    }
}

/// The default status of each surviving disjunct, from its status in each disjunction (in
/// the order they were met), as CUE v0.14 folds them: a disjunction none of whose marked
/// alternatives survived counts as unmarked ("if all the marked disjuncts of a marked
/// disjunction are eliminated, the remaining ones are considered as if they originated from
/// an unmarked disjunction"), and so does the combination of the earlier ones.
fn fold_default_modes(modes: &[Vec<DefMode>], n: usize) -> Vec<DefMode> {
    let mut acc = vec![DefMode::Maybe; modes.len()];
    for i in 0..n {
        let left_drops = !acc.contains(&DefMode::Is);
        let right_drops = !modes.iter().any(|m| m.get(i) == Some(&DefMode::Is));
        for (a, m) in acc.iter_mut().zip(modes) {
            let l = if left_drops { DefMode::Maybe } else { *a };
            let r = match m.get(i) {
                Some(r) if !right_drops => *r,
                _ => DefMode::Maybe,
            };
            *a = l.max(r);
        }
    }
    acc
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum St {
    New,
    Expanding,
    Done,
}

pub struct Vertex<'a> {
    pub conjs: Conjs<'a>,
    pub state: St,
    pub forward: Option<VId>,
    pub atom: Val,
    /// Where the current atom came from.
    pub atom_span: Option<Span>,
    pub err: Option<Rc<Bot>>,
    pub is_struct: bool,
    pub saw_lit: bool,
    /// A struct literal without embeddings was unified here: the value must be a struct.
    pub forced_struct: bool,
    pub is_list: bool,
    pub arcs: Arcs,
    pub elems: Vec<VId>,
    /// The length of a closed list. Every element is a vertex (a `VId`, u32), so it fits.
    pub list_closed: Option<u32>,
    pub groups: Inline1<Group<'a>>,
    pub synthetic: bool,
    /// Created for a struct/list expression in value position (not a field).
    pub anon: bool,
    /// An inline value that is selected into (`(#D & {b: 2}).b`): definitions referenced in it
    /// don't close it (CUE's OpenInline).
    pub open_all: bool,
    /// The state few vertices need (disjunctions, list tails, comprehension bookkeeping,
    /// validators), boxed so that every other vertex is smaller.
    pub rare: Option<Box<Rare<'a>>>,
}

#[derive(Default)]
pub struct Rare<'a> {
    /// An incomplete error from a comprehension clause: the struct can't be exported but its
    /// other fields stay accessible.
    pub comp_err: Option<Rc<Bot>>,
    /// Comprehensions whose clauses stayed incomplete, with their insertion position (`cue
    /// eval` prints them as written).
    pub comp_stalled: Vec<(usize, &'a Comprehension)>,
    pub comp_inserts: Vec<(usize, usize)>,
    pub tails: Vec<(usize, Conj<'a>)>,
    /// Most vertices with a disjunction have one: kept inline.
    pub disjs: Inline1<PendingDisj<'a>>,
    pub disj_result: Option<Rc<Vec<(VId, bool)>>>,
    /// A disjunct's choice of alternative, one per disjunction of the vertices it descends
    /// from, level by level: level 0 for the disjunctions of the vertex first split, level 1
    /// for those met inside its chosen alternatives, and so on.
    pub choices: Option<Rc<Vec<usize>>>,
    /// Where each level starts in `choices` (set with `choices`).
    pub choice_levels: Option<Rc<Vec<usize>>>,
    /// The next unread choice of each level (relative to its start).
    pub choice_cur: Vec<usize>,
    /// The level below which no choice is read: 1 + the level of the alternative being
    /// added (0 outside any).
    pub choice_depth: usize,
    /// While the alternative chosen at the last level is added: its disjunction's index there.
    pub choice_parent: Option<usize>,
    /// The disjuncts of this disjunct's own disjunctions (those met inside its chosen
    /// alternatives), with their default status per disjunction of the parent: the parent
    /// puts them in this disjunct's place.
    pub nested: Option<Rc<Vec<NestedDisjunct>>>,
    /// `matchN(…)` / `matchIf(…)` calls unified here, checked once the vertex is complete.
    pub validators: Vec<(&'a Expr, Env<'a>)>,
    /// Comprehensions, dynamic fields and embedded computations still to run.
    pub pending: Vec<Pending<'a>>,
}

impl<'a> Vertex<'a> {
    /// The rare state, made on first write.
    fn rm(&mut self) -> &mut Rare<'a> {
        self.rare.get_or_insert_with(Box::default)
    }
    pub fn comp_err(&self) -> Option<&Rc<Bot>> {
        self.rare.as_ref().and_then(|r| r.comp_err.as_ref())
    }
    pub fn comp_stalled(&self) -> &[(usize, &'a Comprehension)] {
        self.rare.as_ref().map_or(&[], |r| &r.comp_stalled)
    }
    pub fn comp_inserts(&self) -> &[(usize, usize)] {
        self.rare.as_ref().map_or(&[], |r| &r.comp_inserts)
    }
    pub fn tails(&self) -> &[(usize, Conj<'a>)] {
        self.rare.as_ref().map_or(&[], |r| &r.tails)
    }
    pub fn disjs(&self) -> &[PendingDisj<'a>] {
        self.rare.as_ref().map_or(&[], |r| &r.disjs)
    }
    pub fn disj_result(&self) -> Option<&Rc<Vec<(VId, bool)>>> {
        self.rare.as_ref().and_then(|r| r.disj_result.as_ref())
    }
    pub fn choices(&self) -> Option<&Rc<Vec<usize>>> {
        self.rare.as_ref().and_then(|r| r.choices.as_ref())
    }
    pub fn validators(&self) -> &[(&'a Expr, Env<'a>)] {
        self.rare.as_ref().map_or(&[], |r| &r.validators)
    }
    pub fn pending(&self) -> &[Pending<'a>] {
        self.rare.as_ref().map_or(&[], |r| &r.pending)
    }

    #[inline(always)]
    fn new() -> Vertex<'a> {
        Vertex {
            conjs: Conjs::default(),
            state: St::New,
            forward: None,
            atom: Val::Top,
            atom_span: None,
            err: None,
            is_struct: false,
            saw_lit: false,
            forced_struct: false,
            is_list: false,
            arcs: Arcs::default(),
            elems: Vec::new(),
            list_closed: None,
            groups: Inline1::default(),
            synthetic: false,
            anon: false,
            open_all: false,
            rare: None,
        }
    }
}

#[derive(Clone)]
pub enum Target {
    Vertex(VId),
    Val(Val),
}

/// log2 of the number of vertices per chunk of [`Vertices`]. 8192 vertices (about 1.9 MB) per
/// chunk: with mimalloc, a bench400 export's peak RSS (`/usr/bin/time -f %M`) depends on the
/// chunk's size, not only on the vertices in it: 69.5 MB at 8192, 77.9 MB at 4096 and 80 MB at
/// 1024 (232-byte vertices; instruction counts equal). A small export pays one chunk (bench1:
/// 14.3 MB instead of 12.3 MB, no measurable CPU time).
const CHUNK_BITS: u32 = 13;
const CHUNK: usize = 1 << CHUNK_BITS;

#[allow(clippy::len_without_is_empty)]
/// The vertex arena: a first run of vertices in one vector sized up front ([`Vertices::reserve`],
/// from the source length: most evaluations never need more), then fixed-size chunks, so that
/// growing it never moves (copies) the vertices already made, and never holds two copies of
/// the arena while it grows. A vertex of the first run is one bounds check away (the chunks
/// took two, on every access of every vertex).
#[derive(Default)]
pub struct Vertices<'a> {
    /// Never grows past its capacity: once it is full, vertices go to `chunks`.
    head: Vec<Vertex<'a>>,
    chunks: Vec<Vec<Vertex<'a>>>,
    len: usize,
}

impl<'a> Vertices<'a> {
    pub fn len(&self) -> usize {
        self.len
    }
    /// Room for `n` vertices in the first run; only before the first vertex is made.
    pub fn reserve(&mut self, n: usize) {
        if self.len == 0 {
            self.head.reserve_exact(n);
        }
    }
    /// Adds a new empty vertex, written straight into its slot (no temporary to copy).
    #[inline(always)]
    fn push_new(&mut self) {
        if self.head.len() < self.head.capacity() {
            // `resize_with` writes the fields into the slot; `push` built the vertex on the
            // stack and copied it (memcpy of ~330 bytes per vertex)
            self.head.resize_with(self.len + 1, Vertex::new);
        } else {
            self.push_chunked();
        }
        self.len += 1;
    }
    #[inline(never)]
    fn push_chunked(&mut self) {
        let i = self.len - self.head.len();
        if i.is_multiple_of(CHUNK) {
            self.chunks.push(Vec::with_capacity(CHUNK));
        }
        if let Some(c) = self.chunks.last_mut() {
            c.resize_with(c.len() + 1, Vertex::new);
        }
    }
    #[cold]
    #[inline(never)]
    fn chunked(&self, i: usize) -> &Vertex<'a> {
        let i = i - self.head.len();
        &self.chunks[i >> CHUNK_BITS][i & (CHUNK - 1)]
    }
    #[cold]
    #[inline(never)]
    fn chunked_mut(&mut self, i: usize) -> &mut Vertex<'a> {
        let i = i - self.head.len();
        &mut self.chunks[i >> CHUNK_BITS][i & (CHUNK - 1)]
    }
}

impl<'a> std::ops::Index<usize> for Vertices<'a> {
    type Output = Vertex<'a>;
    #[inline]
    fn index(&self, i: usize) -> &Vertex<'a> {
        match self.head.get(i) {
            Some(v) => v,
            None => self.chunked(i),
        }
    }
}

impl<'a> std::ops::IndexMut<usize> for Vertices<'a> {
    #[inline]
    fn index_mut(&mut self, i: usize) -> &mut Vertex<'a> {
        if i < self.head.len() {
            &mut self.head[i]
        } else {
            self.chunked_mut(i)
        }
    }
}

/// Where a reference site's identifier was found (see [`Ev::lookup_ident`]).
pub struct RefSite {
    /// How many frames up from the site's environment.
    depth: u32,
    at: SiteAt,
}

enum SiteAt {
    /// A field of the literal at address `lit`: arc number `idx` of the frame's vertex, if that
    /// arc is still the one with this (interned) key.
    Arc { lit: usize, idx: u32, key: Rc<str> },
    /// A comprehension variable: the first or second name of the frame, at address `name`.
    Bind { second: bool, name: usize },
    /// Declared in no enclosing scope: an import or a predeclared identifier, found past the
    /// outermost frame (the file's, literal at address `root`), as long as that frame's vertex
    /// has the `arcs` it had then (arcs are only ever added).
    Outer {
        root: usize,
        arcs: usize,
        target: Target,
    },
}

pub struct Ev<'a> {
    pub vs: Vertices<'a>,
    pub files: &'a [File],
    pub hosts: &'a [crate::HostFunc],
    pub limits: Limits,
    pub steps: u64,
    pub depth: usize,
    pub copy_stack: Vec<VId>,
    pub fatal: Option<crate::Error>,
    pub next_cid: u32,
    /// Set when the depth limit was reached (the caller may retry with a bigger stack).
    pub depth_hit: bool,
    /// Set while creating the group of a struct literal with embeddings.
    pub track_next: bool,
    /// Disjunctions being resolved (by address of their first alternative), to cut structural
    /// cycles through disjunctions (`#T: {sub: #T | null}`).
    pub disj_stack: Vec<usize>,
    /// Span of the conjunct expression being added (for error positions).
    pub cur_span: Span,
    /// The next add_vertex is a direct definition reference: its conjuncts take the new id.
    pub replace_cid: bool,
    /// Values of predeclared identifiers (`int`, `string`, `len` …) already looked up.
    pub predecl_cache: Vec<(String, Val)>,
    /// Closedness ids derived for a definition referenced inside another definition.
    pub cid_parent: HashMap<u32, u32>,
    pub cid_map: HashMap<(u32, u32), u32>,
    /// The next add_vertex copies a value selected out of an inline expression
    /// (`(#D & {…}).x`): its conjuncts lose their closedness, as CUE's OpenInline does.
    pub open_inline: bool,
    /// Imported CUE packages (import path, file indices) and their root vertices once made.
    pub packages: &'a [(String, Vec<usize>)],
    pub package_roots: HashMap<String, VId>,
    /// Files before this index belong to the main package.
    pub main_files: usize,
    /// The next anonymous vertex is an inline value being selected into.
    pub anon_open: bool,
    /// Set while a schema validator (`matchN`) checks a copy of a value: validators met in
    /// the copy are not checked again.
    pub in_validator: bool,
    /// Field names and string literals of this evaluation, shared instead of allocated again.
    pub interned: HashSet<Rc<str>, FnvBuild>,
    /// The error an existence test (`x.y != _|_`) gets for a missing field: only its being an
    /// error matters there, so one shared value replaces a message, span list and `Rc` each.
    absent: Option<Rc<Bot>>,
    /// Resolved reference sites: a direct-mapped table by address of their identifier
    /// expression ([`SITE_SLOTS`] slots, made on first use; a site whose slot another one
    /// took is resolved by the walk again).
    ref_sites: Vec<(usize, Option<RefSite>)>,
}

const CYCLE: &str = "cycle detected";

/// Slots of the table of resolved reference sites (a power of two).
const SITE_SLOTS: usize = 1024;

#[inline]
fn site_slot(site: usize) -> usize {
    ((site >> 4) ^ (site >> 14)) & (SITE_SLOTS - 1)
}

/// The error of a vertex whose evaluation reached the depth limit.
#[inline(never)]
fn too_deep() -> Rc<Bot> {
    Rc::new(Bot {
        msg: "evaluation too deep".into(),
        incomplete: false,
        spans: vec![],
        path: None,
    })
}

pub fn bot_val(msg: impl Into<String>, span: Span) -> Val {
    Val::bot(msg, span)
}

fn merge_bot(a: &Option<Rc<Bot>>, b: Rc<Bot>) -> Rc<Bot> {
    match a {
        None => b,
        Some(x) => {
            if x.incomplete && !b.incomplete {
                b
            } else {
                x.clone()
            }
        }
    }
}

impl<'a> Ev<'a> {
    pub fn new(files: &'a [File], limits: Limits) -> Ev<'a> {
        // the arena's first run sized from the source: a render makes about one vertex per 12
        // bytes of JSON-like data and far fewer per byte of template (bench40: 6,352 vertices
        // from 94 KB, bench1 229 from 17 KB); capped at 2^17 vertices (30 MB of address space,
        // only the part used is touched)
        let source: usize = files
            .iter()
            .map(|f| f.span.end.saturating_sub(f.span.start) as usize)
            .sum();
        let mut vs = Vertices::default();
        vs.reserve((source / 8).min(1 << 17));
        Ev {
            vs,
            hosts: &[],
            files,
            limits,
            steps: 0,
            depth: 0,
            copy_stack: Vec::new(),
            fatal: None,
            next_cid: 1 << 31,
            depth_hit: false,
            track_next: false,
            disj_stack: Vec::new(),
            cur_span: Span::default(),
            replace_cid: false,
            predecl_cache: Vec::new(),
            cid_parent: HashMap::new(),
            cid_map: HashMap::new(),
            open_inline: false,
            packages: &[],
            package_roots: HashMap::new(),
            main_files: usize::MAX,
            anon_open: false,
            in_validator: false,
            interned: HashSet::default(),
            absent: None,
            ref_sites: Vec::new(),
        }
    }

    /// The one shared copy of `s` in this evaluation.
    #[inline(always)]
    pub fn intern(&mut self, s: &str) -> Rc<str> {
        if let Some(k) = self.interned.get(s) {
            return k.clone();
        }
        let k: Rc<str> = Rc::from(s);
        self.interned.insert(k.clone());
        k
    }

    pub fn new_vertex(&mut self) -> VId {
        if self.vs.len() >= u32::MAX as usize - 1 || self.vs.len() * 256 > self.limits.max_bytes {
            if self.fatal.is_none() {
                self.fatal = Some(crate::Error::new(format!(
                    "limit exceeded: more than {} bytes of values",
                    self.limits.max_bytes
                )));
            }
            // reuse vertex 0 in a degraded way: still return a fresh one to keep invariants
        }
        self.vs.push_new();
        (self.vs.len() - 1) as VId
    }

    fn v(&self, id: VId) -> &Vertex<'a> {
        &self.vs[id as usize]
    }
    fn vm(&mut self, id: VId) -> &mut Vertex<'a> {
        &mut self.vs[id as usize]
    }

    pub fn deref(&self, mut id: VId) -> VId {
        let mut n = 0;
        while let Some(f) = self.v(id).forward {
            id = f;
            n += 1;
            if n > 10000 {
                break;
            }
        }
        id
    }

    #[inline]
    fn step(&mut self) -> bool {
        self.steps += 1;
        if self.steps > self.limits.max_steps {
            return self.steps_exceeded();
        }
        self.fatal.is_none()
    }

    #[cold]
    fn steps_exceeded(&mut self) -> bool {
        if self.fatal.is_none() {
            self.fatal = Some(crate::Error::new(format!(
                "limit exceeded: more than {} evaluation steps",
                self.limits.max_steps
            )));
        }
        false
    }

    #[inline]
    fn enter(&mut self, span: Span) -> Result<(), Val> {
        self.depth += 1;
        if self.depth > self.limits.max_depth || !self.step() {
            return Err(self.enter_failed(span));
        }
        Ok(())
    }

    #[cold]
    #[inline(never)]
    fn enter_failed(&mut self, span: Span) -> Val {
        self.depth -= 1;
        if self.depth + 1 > self.limits.max_depth {
            self.depth_hit = true;
            return bot_val(
                format!(
                    "structural cycle (evaluation deeper than {})",
                    self.limits.max_depth
                ),
                span,
            );
        }
        bot_val("evaluation limit exceeded", span)
    }

    // ---------------------------------------------------------------- expansion

    /// Evaluates vertex `id` (the one it forwards to) unless that is done or under way.
    #[inline]
    pub fn expand(&mut self, id: VId) {
        // most calls find the vertex expanded already: answered here, without the call
        let x = self.v(id);
        if x.forward.is_none() && x.state != St::New {
            return;
        }
        self.expand_new(id);
    }

    #[inline(never)]
    fn expand_new(&mut self, id: VId) {
        let id = self.deref(id);
        if self.v(id).state != St::New {
            return;
        }
        if self.scalar_leaf(id) {
            return;
        }
        if self.enter(Span::default()).is_err() {
            self.vm(id).err = Some(too_deep());
            self.vm(id).state = St::Done;
            return;
        }
        self.vm(id).state = St::Expanding;
        let n = self.v(id).conjs.len();
        for i in 0..n {
            // most conjuncts are expressions: copied here, without `Conj::clone`'s call and
            // its match over every kind
            let c = match self.v(id).conjs.get(i) {
                Some(Conj {
                    x: CX::Expr(e),
                    env,
                    closed,
                }) => Conj {
                    x: CX::Expr(e),
                    env: env.clone(),
                    closed: *closed,
                },
                Some(c) => c.clone(),
                None => break,
            };
            self.add_own_conj(id, c);
        }
        self.run_pending(id);
        if !self.v(id).disjs().is_empty() {
            self.resolve_disj(id);
        }
        if self.v(id).forward.is_none() {
            self.finalize(id);
            if !self.v(id).validators().is_empty() {
                self.vm(id).state = St::Done;
                self.run_validators(id);
            }
        }
        self.vm(id).state = St::Done;
        self.depth -= 1;
    }

    /// Expands a vertex whose one conjunct is a scalar literal (`"web"`, `80`, `true`, `null`:
    /// most data leaves) directly: the state the general path leaves (the value, its span,
    /// done) and the same three evaluation steps counted, without its calls and copies. Not
    /// taken where any of those steps would hit a limit.
    #[inline]
    fn scalar_leaf(&mut self, id: VId) -> bool {
        let x = self.v(id);
        let Some(Conj { x: CX::Expr(e), .. }) = x.conjs.get(0) else {
            return false;
        };
        let e: &'a Expr = e;
        if !is_scalar_lit(e)
            || x.conjs.len() != 1
            || x.rare.is_some()
            || !x.arcs.is_empty()
            || !x.elems.is_empty()
            || !x.groups.is_empty()
            || !matches!(x.atom, Val::Top)
            || x.err.is_some()
            || x.is_struct
            || x.is_list
            || x.saw_lit
            || x.forced_struct
            || x.list_closed.is_some()
            || self.depth + 3 > self.limits.max_depth
            || self.steps + 3 > self.limits.max_steps
            || self.fatal.is_some()
        {
            return false;
        }
        // expand_new's, add_conj's and the literal's `enter`
        self.steps += 3;
        let val = self.scalar_lit(e);
        let x = self.vm(id);
        x.atom_span = Some(e.span).filter(|s| *s != Span::default());
        x.atom = val;
        x.state = St::Done;
        true
    }

    /// [`Ev::add_conj`] of one of a vertex's own conjuncts as it is expanded, with the two common
    /// kinds, a struct literal and a scalar literal, handled here: the same steps counted, the
    /// same spans and effects as through `add_conj` and `add_expr`, without those two calls.
    #[inline]
    fn add_own_conj(&mut self, v: VId, c: Conj<'a>) {
        if let CX::Expr(e) = &c.x {
            let e: &'a Expr = e;
            if let ExprKind::Struct(lit) = &e.kind {
                // add_conj's `enter`, then add_expr's span
                if self.enter(Span::default()).is_err() {
                    self.set_err(v, too_deep());
                    return;
                }
                let saved = std::mem::replace(&mut self.cur_span, e.span);
                self.process_lit(v, lit, c.env, c.closed, None);
                self.cur_span = saved;
                self.depth -= 1;
                return;
            }
            if is_scalar_lit(e)
                && self.depth + 2 <= self.limits.max_depth
                && self.steps + 2 <= self.limits.max_steps
                && self.fatal.is_none()
            {
                // add_conj's `enter` and the literal's
                self.steps += 2;
                let val = self.scalar_lit(e);
                let saved = std::mem::replace(&mut self.cur_span, e.span);
                self.add_val(v, val, None, c.closed);
                self.cur_span = saved;
                return;
            }
        }
        self.add_conj(v, c, None);
    }

    /// The value of a scalar literal (see [`is_scalar_lit`]), as `eval` gives it.
    #[inline]
    fn scalar_lit(&mut self, e: &'a Expr) -> Val {
        match &e.kind {
            ExprKind::Str(s) => Val::Str(self.intern(s)),
            ExprKind::Int(i) => Val::Int(*i),
            ExprKind::Float(f) => Val::Float(*f),
            ExprKind::Bool(b) => Val::Bool(*b),
            _ => Val::Null,
        }
    }

    /// Checks the `matchN` / `matchIf` constraints of a complete vertex.
    fn run_validators(&mut self, v: VId) {
        let vals = std::mem::take(&mut self.vm(v).rm().validators);
        for (e, env) in vals {
            let ExprKind::Call(f, args) = &e.kind else {
                continue;
            };
            let ExprKind::Ident(name) = &f.kind else {
                continue;
            };
            let saved = std::mem::replace(&mut self.in_validator, true);
            let r = self.check_schema_validator(v, name, args, &env, e.span);
            self.in_validator = saved;
            if let Err(b) = r {
                self.set_err(v, b);
            }
        }
    }

    /// Whether `v & schema` has no fatal error.
    fn matches_schema(&mut self, v: VId, schema: VId) -> bool {
        let t = self.new_vertex();
        self.vm(t).conjs.push(Conj {
            x: CX::Vertex(v),
            env: None,
            closed: Closed::No,
        });
        self.vm(t).conjs.push(Conj {
            x: CX::Vertex(schema),
            env: None,
            closed: Closed::No,
        });
        self.has_fatal_inner(t, 64).is_none()
    }

    fn schema_list(&mut self, x: &'a Expr, env: &Env<'a>) -> Result<Vec<VId>, Rc<Bot>> {
        let l = self.eval(x, env);
        let l = self.concrete(l);
        match l {
            Val::Vertex(w) => self.list_elems(w).ok_or_else(|| {
                Rc::new(Bot {
                    msg: "matchN: schemas must be a list".into(),
                    incomplete: false,
                    spans: vec![x.span],
                    path: None,
                })
            }),
            Val::Bottom(b) => Err(b),
            _ => Err(Rc::new(Bot {
                msg: "matchN: schemas must be a list".into(),
                incomplete: false,
                spans: vec![x.span],
                path: None,
            })),
        }
    }

    fn schema_of(&mut self, x: &'a Expr, env: &Env<'a>) -> VId {
        let nv = self.new_vertex();
        self.vm(nv).conjs.push(Conj {
            x: CX::Expr(x),
            env: env.clone(),
            closed: Closed::No,
        });
        nv
    }

    fn check_schema_validator(
        &mut self,
        v: VId,
        name: &str,
        args: &'a [Expr],
        env: &Env<'a>,
        span: Span,
    ) -> Result<(), Rc<Bot>> {
        let err = |msg: String, incomplete: bool| {
            Rc::new(Bot {
                msg,
                incomplete,
                spans: vec![span],
                path: None,
            })
        };
        if self.v(v).err.is_some() {
            return Ok(());
        }
        let ok = match (name, args) {
            ("matchN", [n, list]) => {
                let nv = self.eval(n, env);
                let nv = self.concrete(nv);
                if let Val::Bottom(b) = nv {
                    return Err(b);
                }
                let schemas = self.schema_list(list, env)?;
                let mut count = 0;
                for s in schemas {
                    if self.matches_schema(v, s) {
                        count += 1;
                    }
                }
                !matches!(unify_atoms(&nv, &Val::Int(count)), Val::Bottom(_))
            }
            ("matchIf", [c, t, f]) => {
                let cs = self.schema_of(c, env);
                let branch = if self.matches_schema(v, cs) { t } else { f };
                let bs = self.schema_of(branch, env);
                self.matches_schema(v, bs)
            }
            _ => return Err(err(format!("invalid arguments in call to {name}"), false)),
        };
        if ok {
            return Ok(());
        }
        // a value that is not concrete yet may still come to satisfy the constraint
        let val = Val::Vertex(v);
        let incomplete = matches!(self.json_of(&val, 0), Err(b) if b.incomplete);
        Err(err(
            format!("invalid value (does not satisfy {name})"),
            incomplete,
        ))
    }

    fn derive_cid(&mut self, inner: u32, outer: u32) -> u32 {
        if let Some(c) = self.cid_map.get(&(inner, outer)) {
            return *c;
        }
        self.next_cid += 1;
        let c = self.next_cid;
        self.cid_map.insert((inner, outer), c);
        self.cid_parent.insert(c, outer);
        c
    }

    fn set_err(&mut self, id: VId, b: Rc<Bot>) {
        let cur = self.v(id).err.clone();
        self.vm(id).err = Some(merge_bot(&cur, b));
    }

    fn arc_for(&mut self, id: VId, name: &str, kind: FK) -> VId {
        self.arc_at(id, name, kind).1
    }

    /// The position and vertex of arc `name` of `id`, made if missing.
    #[inline(always)]
    fn arc_at(&mut self, id: VId, name: &str, kind: FK) -> (usize, VId) {
        let arcs = &self.v(id).arcs;
        if let Some(i) = arcs.get_index_of(name) {
            return (i, arcs.entries[i].1.vid);
        }
        self.new_arc(id, name, kind)
    }

    /// A new arc `name` of `id`, known not to be there yet.
    #[inline(always)]
    fn new_arc(&mut self, id: VId, name: &str, kind: FK) -> (usize, VId) {
        let nv = self.new_vertex();
        let key = self.intern(name);
        let i = self.vm(id).arcs.push_new(
            key,
            ArcInfo {
                vid: nv,
                kind,
                regular: false,
                optional: false,
                required: false,
                comments: Comments::default(),
            },
        );
        (i, nv)
    }

    #[inline]
    fn push_arc_conj(&mut self, arc: VId, c: Conj<'a>) {
        let x = self.vm(arc);
        if x.state == St::New {
            x.conjs.push(c);
        } else {
            self.push_late_conj(arc, c);
        }
    }

    /// A conjunct for a vertex already expanded (or being expanded).
    #[inline(never)]
    fn push_late_conj(&mut self, arc: VId, c: Conj<'a>) {
        // Late conjunct on an already expanded vertex: process in place.
        self.vm(arc).conjs.push(c.clone());
        let t = self.deref(arc);
        if self.v(t).synthetic {
            return;
        }
        self.add_conj(t, c, None);
        self.run_pending(t);
        if !self.v(t).disjs().is_empty() && self.v(t).state == St::Done {
            self.vm(t).rm().disjs = Inline1::default();
        }
    }

    pub fn add_conj(&mut self, v: VId, c: Conj<'a>, group: Option<usize>) {
        if self.enter(Span::default()).is_err() {
            self.set_err(v, too_deep());
            return;
        }
        self.add_conj_inner(v, c, group);
        self.depth -= 1;
    }

    fn add_conj_inner(&mut self, v: VId, c: Conj<'a>, group: Option<usize>) {
        match c.x {
            CX::Lit(lit) => self.process_lit(v, lit, c.env, c.closed, group),
            CX::Val(val) => self.add_val(v, val, group, c.closed),
            CX::Vertex(w) => self.add_vertex(v, w, group, c.closed),
            CX::Json(j) => {
                let saved = std::mem::take(&mut self.cur_span);
                self.add_json(v, j, group);
                self.cur_span = saved;
            }
            CX::Expr(e) => self.add_expr(v, e, c.env, c.closed, group),
            CX::JsonAt(path, j) => match path.split_first() {
                None => {
                    let saved = std::mem::take(&mut self.cur_span);
                    self.add_json(v, j, group);
                    self.cur_span = saved;
                }
                Some((first, rest)) => {
                    self.vm(v).is_struct = true;
                    self.vm(v).saw_lit = true;
                    let g = self.group_for(v, None, Closed::No);
                    let k: &str = &regular_key(first, FK::Regular);
                    let (i, av) = self.arc_at(v, k, FK::Regular);
                    if self.v(v).groups[g].track {
                        let key = self.v(v).arcs.entries[i].0.clone();
                        self.vm(v).groups[g].allowed_mut().insert(key);
                    }
                    if let Some(ai) = self.vm(v).arcs.get_index_mut(i) {
                        ai.regular = true;
                    }
                    self.push_arc_conj(
                        av,
                        Conj {
                            x: CX::JsonAt(rest, j),
                            env: None,
                            closed: Closed::No,
                        },
                    );
                }
            },
        }
    }

    fn add_expr(
        &mut self,
        v: VId,
        e: &'a Expr,
        env: Env<'a>,
        closed: Closed,
        group: Option<usize>,
    ) {
        let saved = self.cur_span;
        self.cur_span = e.span;
        self.add_expr_inner(v, e, env, closed, group);
        self.cur_span = saved;
    }

    fn add_expr_inner(
        &mut self,
        v: VId,
        e: &'a Expr,
        env: Env<'a>,
        closed: Closed,
        group: Option<usize>,
    ) {
        match &e.kind {
            ExprKind::Struct(lit) => self.process_lit(v, lit, env, closed, group),
            ExprKind::Paren(x) => self.add_expr(v, x, env, closed, group),
            ExprKind::Binary(BinOp::And, a, b) => {
                self.add_expr(v, a, env.clone(), closed, group);
                self.add_expr(v, b, env, closed, group);
            }
            ExprKind::Binary(BinOp::Or, _, _) => {
                // the alternatives straight into their conjuncts: one allocation, not two
                let mut alts = Vec::new();
                flatten_disj(e, &mut |x, d| {
                    alts.push((
                        Conj {
                            x: CX::Expr(x),
                            env: env.clone(),
                            closed,
                        },
                        d,
                    ))
                });
                self.add_disj(v, alts, group);
            }
            ExprKind::Unary(UnaryOp::Default, x) => self.add_expr(v, x, env, closed, group),
            ExprKind::List(elems) => self.process_list(v, elems, env, closed),
            ExprKind::Alias(_, x) => self.add_expr(v, x, env, closed, group),
            ExprKind::Ident(_) | ExprKind::Selector(..) | ExprKind::Index(..) => {
                let is_def = match &e.kind {
                    ExprKind::Ident(n) => label_kind(n) == FK::Def,
                    ExprKind::Selector(_, n, _) => label_kind(n) == FK::Def,
                    _ => false,
                };
                let open_all = self.v(v).open_all;
                let is_def = is_def && !open_all;
                let replace = is_def && !matches!(closed, Closed::Deep(_));
                let closed = if is_def && !matches!(closed, Closed::Deep(_)) {
                    // Definitions embedded in one struct literal share one closedness id, so
                    // their fields (and their children's) are unioned.
                    let gcid = group
                        .and_then(|g| self.v(v).groups.get(g))
                        .map(|g| g.cid)
                        .unwrap_or(0);
                    if gcid != 0 {
                        Closed::Deep(gcid)
                    } else {
                        self.next_cid += 1;
                        let c = self.next_cid;
                        if let Some(g) = group {
                            if let Some(gr) = self.vm(v).groups.get_mut(g) {
                                gr.cid = c;
                            }
                        }
                        Closed::Deep(c)
                    }
                } else {
                    closed
                };
                match self.resolve_ref(e, &env) {
                    Some(Target::Vertex(w)) => {
                        self.replace_cid = replace;
                        self.open_inline = open_all;
                        self.add_vertex(v, w, group, closed);
                        self.open_inline = false;
                    }
                    Some(Target::Val(val)) => self.add_val(v, val, group, closed),
                    None => {
                        let val = self.eval(e, &env);
                        self.open_inline = is_inline_selection(e);
                        self.add_val(v, val, group, closed);
                        self.open_inline = false;
                    }
                }
            }
            ExprKind::Call(f, args) => {
                if let ExprKind::Ident(n) = &f.kind {
                    if n == "close" && args.len() == 1 && self.is_predeclared(n, &env) {
                        // close() starts its own closedness, also inside a definition
                        self.next_cid += 1;
                        let cl = if let Closed::Deep(_) = closed {
                            Closed::Deep(self.next_cid)
                        } else {
                            Closed::Shallow(self.next_cid)
                        };
                        self.add_expr(v, &args[0], env, cl, group);
                        return;
                    }
                    if (n == "matchN" || n == "matchIf") && self.is_predeclared(n, &env) {
                        // a constraint: checked when the vertex is complete. Like other
                        // validators taking schemas, it leaves the struct it is embedded in open.
                        if !self.in_validator {
                            self.vm(v).rm().validators.push((e, env.clone()));
                        }
                        if let Some(g) = group {
                            if let Some(gr) = self.vm(v).groups.get_mut(g) {
                                gr.open = true;
                            }
                        }
                        return;
                    }
                    if n == "and" && args.len() == 1 && self.is_predeclared(n, &env) {
                        if let ExprKind::List(elems) = &args[0].kind {
                            for el in elems {
                                if let ListElem::Expr(x) = el {
                                    self.add_expr(v, x, env.clone(), closed, group);
                                }
                            }
                            return;
                        }
                    }
                    if n == "or" && args.len() == 1 && self.is_predeclared(n, &env) {
                        if let ExprKind::List(elems) = &args[0].kind {
                            let alts: Vec<(Conj<'a>, bool)> = elems
                                .iter()
                                .filter_map(|el| {
                                    if let ListElem::Expr(x) = el {
                                        Some((
                                            Conj {
                                                x: CX::Expr(x),
                                                env: env.clone(),
                                                closed,
                                            },
                                            false,
                                        ))
                                    } else {
                                        None
                                    }
                                })
                                .collect();
                            if alts.is_empty() {
                                self.set_err(
                                    v,
                                    Rc::new(Bot {
                                        msg: "empty list in call to or".into(),
                                        incomplete: false,
                                        spans: vec![e.span],
                                        path: None,
                                    }),
                                );
                            } else {
                                self.add_disj(v, alts, group);
                            }
                            return;
                        }
                    }
                }
                let val = self.eval(e, &env);
                self.add_val(v, val, group, closed)
            }
            // a string literal (most data): `eval`'s steps without its dispatch
            ExprKind::Str(s) => {
                let val = match self.enter(e.span) {
                    Ok(()) => {
                        let val = Val::Str(self.intern(s));
                        self.depth -= 1;
                        val
                    }
                    Err(b) => b,
                };
                self.add_val(v, val, group, closed)
            }
            _ => {
                let val = self.eval(e, &env);
                self.add_val(v, val, group, closed)
            }
        }
    }

    fn add_disj(&mut self, v: VId, alts: Vec<(Conj<'a>, bool)>, group: Option<usize>) {
        let parent = match self.v(v).choices().cloned() {
            Some(ch) => {
                // The first level at or above the current depth with a choice left: a
                // disjunction inside a chosen alternative reads the next level, not the
                // choices meant for the disjunctions that follow it at this one.
                let r = self.vm(v).rm();
                let levels = r.choice_levels.clone().unwrap_or_default();
                let n = levels.len();
                if r.choice_cur.len() < n {
                    r.choice_cur.resize(n, 0);
                }
                let mut found = None;
                for l in r.choice_depth.min(n)..n {
                    let end = levels.get(l + 1).copied().unwrap_or(ch.len());
                    let pos = levels[l] + r.choice_cur[l];
                    if pos < end {
                        r.choice_cur[l] += 1;
                        found = Some((l, pos));
                        break;
                    }
                }
                match found {
                    Some((l, pos)) => {
                        let k = ch[pos];
                        let (depth, par) = (r.choice_depth, r.choice_parent);
                        r.choice_depth = l + 1;
                        if l + 1 == n {
                            r.choice_parent = Some(pos - levels[l]);
                        }
                        if let Some((c, _)) = alts.into_iter().nth(k) {
                            self.add_conj(v, c, group);
                        }
                        let r = self.vm(v).rm();
                        r.choice_depth = depth;
                        r.choice_parent = par;
                        return;
                    }
                    None => r.choice_parent,
                }
            }
            None => None,
        };
        self.vm(v).rm().disjs.push(PendingDisj { alts, parent });
    }

    // inlined: its common case (a scalar into `_`) is a few moves
    #[inline(always)]
    fn add_val(&mut self, v: VId, val: Val, group: Option<usize>, closed: Closed) {
        match val {
            Val::Vertex(w) => self.add_vertex(v, w, group, closed),
            Val::Disj(alts) => {
                // every alternative flagged is how a disjunction without a default is kept
                let all = alts.iter().all(|(_, d)| *d);
                let alts = alts
                    .iter()
                    .map(|(x, d)| {
                        (
                            Conj {
                                x: CX::Val(x.clone()),
                                env: None,
                                closed,
                            },
                            *d && !all,
                        )
                    })
                    .collect();
                self.add_disj(v, alts, group);
            }
            Val::Bottom(b) if b.incomplete && b.msg == CYCLE => {}
            Val::Bottom(b) => self.set_err(v, b),
            other => {
                let cur = std::mem::replace(&mut self.vm(v).atom, Val::Top);
                // `_ & x` is `x` (unify_atoms' first case), without a copy of `x`
                let r = if matches!(cur, Val::Top) {
                    other
                } else {
                    unify_atoms(&cur, &other)
                };
                let here = self.cur_span;
                match r {
                    Val::Bottom(b) => {
                        self.vm(v).atom = cur;
                        let mut b = (*b).clone();
                        if let Some(s) = self.v(v).atom_span {
                            b.spans.push(s);
                        }
                        if here != Span::default() {
                            b.spans.push(here);
                        }
                        self.set_err(v, Rc::new(b));
                    }
                    r => {
                        let x = self.vm(v);
                        if matches!(x.atom, Val::Top) || x.atom_span.is_none() {
                            x.atom_span = Some(here).filter(|s| *s != Span::default());
                        }
                        x.atom = r;
                    }
                }
            }
        }
    }

    fn add_vertex(&mut self, v: VId, w: VId, group: Option<usize>, closed: Closed) {
        let replace = std::mem::take(&mut self.replace_cid);
        let open = std::mem::take(&mut self.open_inline);
        if w == v || self.copy_stack.contains(&w) {
            // reference cycle: contributes nothing new
            return;
        }
        let w_is_syn = self.v(w).synthetic;
        if !w_is_syn && !self.v(w).conjs.is_empty() {
            let n = self.v(w).conjs.len();
            self.copy_stack.push(w);
            for i in 0..n {
                let Some(mut c) = self.v(w).conjs.get(i).cloned() else {
                    break;
                };
                if open {
                    c.closed = match closed {
                        Closed::Deep(_) => closed,
                        _ => Closed::No,
                    };
                }
                match (closed, c.closed) {
                    _ if open => {}
                    // A definition referenced inside another one keeps its own closedness, and
                    // its fields also count as declared by the enclosing definition.
                    (Closed::Deep(_), Closed::Deep(_)) if replace => c.closed = closed,
                    (Closed::Deep(outer), Closed::Deep(inner)) if inner != outer => {
                        c.closed = Closed::Deep(self.derive_cid(inner, outer))
                    }
                    (Closed::Deep(_), Closed::No) | (Closed::Shallow(_), Closed::No) => {
                        c.closed = closed
                    }
                    _ => {}
                }
                self.add_conj(v, c, group);
            }
            self.copy_stack.pop();
            return;
        }
        // structural copy of an evaluated vertex
        self.expand(w);
        let w = self.deref(w);
        let (atom, err, is_struct, is_list, arcs, elems, list_closed) = {
            let x = self.v(w);
            (
                x.atom.clone(),
                x.err.clone(),
                x.is_struct,
                x.is_list,
                x.arcs.clone(),
                x.elems.clone(),
                x.list_closed,
            )
        };
        // copying is work in proportion to the copied value: charge it, so that values that
        // double at each level hit the step limit early
        self.steps += (arcs.len() + elems.len()) as u64;
        if let Some(b) = err {
            self.set_err(v, b);
        }
        if !matches!(atom, Val::Top) {
            self.add_val(v, atom, group, closed);
        }
        if is_struct {
            self.vm(v).is_struct = true;
            self.vm(v).saw_lit = true;
            let g = self.group_for(v, group, closed);
            for (k, a) in arcs.iter() {
                let (i, av) = self.arc_at(v, k, a.kind);
                if self.v(v).groups[g].track {
                    self.vm(v).groups[g].allowed_mut().insert(k.clone());
                }
                if let Some(ai) = self.vm(v).arcs.get_index_mut(i) {
                    ai.regular |= a.regular;
                    ai.optional |= a.optional;
                    ai.required |= a.required;
                    ai.comments.merge(&a.comments);
                }
                self.push_arc_conj(
                    av,
                    Conj {
                        x: CX::Vertex(a.vid),
                        env: None,
                        closed: Closed::No,
                    },
                );
            }
        }
        if is_list {
            self.vm(v).is_list = true;
            let n = elems.len();
            self.check_list_len(v, n, list_closed.is_some(), Span::default());
            for (i, e) in elems.iter().enumerate() {
                let ev = self.elem_for(v, i);
                self.push_arc_conj(
                    ev,
                    Conj {
                        x: CX::Vertex(*e),
                        env: None,
                        closed: Closed::No,
                    },
                );
            }
        }
    }

    /// Add JSON data to `v`. `group` is the struct group of an embedding: data embedded in a
    /// closed literal adds its field names to that literal's allowed set, as a literal would.
    fn add_json(&mut self, v: VId, j: &'a serde_json::Value, group: Option<usize>) {
        use serde_json::Value as J;
        match j {
            J::Null => self.add_val(v, Val::Null, None, Closed::No),
            J::Bool(b) => self.add_val(v, Val::Bool(*b), None, Closed::No),
            J::Number(n) => {
                let val = if let Some(i) = n.as_i64() {
                    Val::Int(i)
                } else {
                    Val::Float(n.as_f64().unwrap_or(0.0))
                };
                self.add_val(v, val, None, Closed::No)
            }
            J::String(s) => self.add_val(v, Val::Str(Rc::from(s.as_str())), None, Closed::No),
            J::Object(m) => {
                self.vm(v).is_struct = true;
                self.vm(v).saw_lit = true;
                let g = self.group_for(v, group, Closed::No);
                for (k, x) in m {
                    let kind = FK::Regular;
                    let k: &str = &regular_key(k, kind);
                    let av = self.arc_for(v, k, kind);
                    if self.v(v).groups[g].track {
                        let key = self.intern(k);
                        self.vm(v).groups[g].allowed_mut().insert(key);
                    }
                    if let Some(ai) = self.vm(v).arcs.get_mut(k) {
                        ai.regular = true;
                    }
                    self.push_arc_conj(
                        av,
                        Conj {
                            x: CX::Json(x),
                            env: None,
                            closed: Closed::No,
                        },
                    );
                }
            }
            J::Array(a) => {
                self.vm(v).is_list = true;
                self.check_list_len(v, a.len(), true, Span::default());
                for (i, x) in a.iter().enumerate() {
                    let ev = self.elem_for(v, i);
                    self.push_arc_conj(
                        ev,
                        Conj {
                            x: CX::Json(x),
                            env: None,
                            closed: Closed::No,
                        },
                    );
                }
            }
        }
    }

    // inlined: one per struct literal and per copied struct
    #[inline(always)]
    fn group_for(&mut self, v: VId, group: Option<usize>, closed: Closed) -> usize {
        let cid = closed.cid();
        let existing = if cid != 0 {
            self.v(v).groups.iter().position(|g| g.cid == cid)
        } else {
            None
        };
        let g = match (group, existing) {
            (Some(g), _) if g < self.v(v).groups.len() => g,
            (_, Some(g)) => g,
            _ => {
                let track = closed.is_closed() || self.track_next;
                self.vm(v).groups.push(Group {
                    cid,
                    track,
                    ..Group::default()
                });
                self.v(v).groups.len() - 1
            }
        };
        if closed.is_closed() {
            self.vm(v).groups[g].closed = true;
        }
        g
    }

    fn process_lit(
        &mut self,
        v: VId,
        lit: &'a StructLit,
        env: Env<'a>,
        closed: Closed,
        group: Option<usize>,
    ) {
        let root = env.is_none();
        // A scope that declares no identifier (no identifier-labelled field, let or alias:
        // `{ parameter.labels }`, `{"app.oam.dev/name": x}`) is passed over by every lookup
        // (lookup_ident, is_predeclared), so a non-root one needs no frame of its own.
        // Nor does one none of whose field names is referenced from inside it (`output:
        // {kind: "Deployment", spec: {…}}`, see `StructLit::refs`): no lookup from inside
        // ends at its scope, and none from outside passes it.
        let fenv = if !root && lit.bind_bloom == 0 && lit.ident_bloom & lit.refs == 0 {
            env
        } else {
            Some(Rc::new(Frame {
                kind: FrameKind::Struct {
                    vid: v,
                    lit,
                    lets: RefCell::new(Vec::new()),
                    root,
                },
                parent: env,
            }))
        };
        let has_field = lit.decls.iter().any(|d| matches!(d, Decl::Field(_)));
        // a vertex without arcs gets this literal's fields first: when their labels differ, none
        // of them needs looking up among the arcs made before it
        let mut fresh = false;
        if has_field && self.v(v).arcs.is_empty() {
            // one allocation of the right size instead of growing (and rehashing) per field
            self.vm(v).arcs.reserve(lit.decls.len());
            fresh = lit.distinct_labels();
        }
        {
            let vx = self.vm(v);
            vx.saw_lit = true;
            if has_field || !lit.has_embed {
                vx.is_struct = true;
            }
            if !lit.has_embed && !root {
                vx.forced_struct = true;
            }
        }
        // The files of a package are one struct literal: their top-level declarations share a
        // group, so an embedding in one file (`#Config & {…}`) allows the fields of the others.
        let group = match group {
            None if root && closed == Closed::No => self.v(v).groups.iter().position(|g| g.root),
            g => g,
        };
        self.track_next = lit.has_embed || root;
        let g = self.group_for(v, group, closed);
        self.track_next = false;
        if root && closed == Closed::No {
            self.vm(v).groups[g].root = true;
        }
        if has_field && self.v(v).groups[g].track {
            // one allocation of the right size instead of growing (and rehashing) per field
            self.vm(v).groups[g].allowed_mut().reserve(lit.decls.len());
        }
        let child_closed = closed.child();
        let mut embeds: Vec<(&'a Expr, usize)> = Vec::new();
        for d in &lit.decls {
            match d {
                Decl::Field(f) => match &f.label {
                    Label::Ident(n, _) | Label::Str(n, _) => {
                        let quoted = matches!(f.label, Label::Str(..));
                        let kind = if quoted { FK::Regular } else { label_kind(n) };
                        let key = if kind == FK::Hidden {
                            self.hidden_key(n, f.value.span.file)
                        } else {
                            regular_key(n, kind)
                        };
                        let n: &str = &key;
                        let cc = if kind == FK::Def {
                            let arc = self.arc_for(v, n, kind);
                            // A definition field brought in by a definition is closed apart from
                            // one declared in a plain struct: each restricts the other.
                            match closed {
                                Closed::Deep(c) => Closed::Deep(self.derive_cid(arc, c)),
                                _ => Closed::Deep(arc),
                            }
                        } else {
                            child_closed
                        };
                        let x = if f.constraint != Constraint::Optional
                            && matches!(
                                f.value.kind,
                                ExprKind::Ident(_)
                                    | ExprKind::Paren(_)
                                    | ExprKind::Binary(BinOp::And, _, _)
                            )
                            && self.self_reference(&f.value, &fenv)
                        {
                            // `#S: {s: #S}`: a regular field that embeds its own declaration
                            // unrolls forever; CUE calls it a structural cycle.
                            CX::Val(Val::Bottom(Rc::new(Bot {
                                msg: format!("structural cycle: {n} refers to its own declaration"),
                                incomplete: false,
                                spans: vec![f.value.span],
                                path: None,
                            })))
                        } else {
                            CX::Expr(&f.value)
                        };
                        // (a definition's arc was made just above, by `arc_for`)
                        self.add_field_to(
                            v,
                            n,
                            kind,
                            f,
                            Conj {
                                x,
                                env: fenv.clone(),
                                closed: cc,
                            },
                            g,
                            fresh && kind != FK::Def,
                        );
                    }
                    Label::Dynamic(x) => {
                        // dynamic fields go before pending comprehensions (they may define
                        // fields that comprehension guards test)
                        let k = self
                            .v(v)
                            .pending()
                            .iter()
                            .take_while(|p| matches!(p, Pending::Dyn(..)))
                            .count();
                        self.vm(v)
                            .rm()
                            .pending
                            .insert(k, Pending::Dyn(f, x, fenv.clone(), child_closed, g))
                    }
                    Label::Pattern(x) => {
                        let (label, alias) = match &x.kind {
                            ExprKind::Alias(a, inner) => (&**inner, Some(a.as_str())),
                            _ => (&**x, None),
                        };
                        let pc = PatternC {
                            label,
                            env: fenv.clone(),
                            value: Conj {
                                x: CX::Expr(&f.value),
                                env: fenv.clone(),
                                closed: child_closed,
                            },
                            alias,
                            field_alias: f.alias(),
                        };
                        self.vm(v).groups[g].push_pattern(pc);
                    }
                },
                Decl::Embed(x)
                    if matches!(&x.kind, ExprKind::Binary(op, _, _)
                        if !matches!(op, BinOp::And | BinOp::Or)) =>
                {
                    self.vm(v)
                        .rm()
                        .pending
                        .push(Pending::Embed(x, fenv.clone(), closed, g))
                }
                Decl::Embed(x) => {
                    // after the literal's own fields: an embedding may refer to them
                    embeds.push((x, self.v(v).arcs.len()));
                }
                Decl::Comprehension(c) => {
                    let pos = self.v(v).arcs.len();
                    self.vm(v)
                        .rm()
                        .pending
                        .push(Pending::Comp(c, fenv.clone(), closed, g, pos))
                }
                Decl::Ellipsis(_, _) => self.vm(v).groups[g].open = true,
                Decl::Let(_) => {}
            }
        }
        for (x, pos) in embeds {
            let before = self.v(v).arcs.len();
            self.add_conj(
                v,
                Conj {
                    x: CX::Expr(x),
                    env: fenv.clone(),
                    closed,
                },
                Some(g),
            );
            self.reorder_comp_arcs(v, pos, before);
        }
    }

    // inlined, with arc_at, push_new and intern: a field of a literal costs process_lit one
    // call, not four (their saved registers and stack frames were a large part of a field)
    #[inline(always)]
    fn add_field(&mut self, v: VId, name: &str, kind: FK, f: &'a Field, c: Conj<'a>, g: usize) {
        self.add_field_to(v, name, kind, f, c, g, false)
    }

    /// [`Ev::add_field`]; `fresh`: `name` is known not to be an arc of `v` yet.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn add_field_to(
        &mut self,
        v: VId,
        name: &str,
        kind: FK,
        f: &'a Field,
        c: Conj<'a>,
        g: usize,
        fresh: bool,
    ) {
        let (i, av) = if fresh {
            self.new_arc(v, name, kind)
        } else {
            self.arc_at(v, name, kind)
        };
        let x = self.vm(v);
        if x.groups[g].track {
            let key = x.arcs.entries[i].0.clone();
            x.groups[g].allowed_mut().insert(key);
        }
        if let Some(ai) = x.arcs.get_index_mut(i) {
            match f.constraint {
                Constraint::None => ai.regular = true,
                Constraint::Optional => ai.optional = true,
                Constraint::Required => ai.required = true,
            }
            if !f.comments.is_empty() {
                ai.comments.merge(&f.comments);
            }
        }
        self.push_arc_conj(av, c);
    }

    #[inline(always)]
    fn elem_for(&mut self, v: VId, i: usize) -> VId {
        while self.v(v).elems.len() <= i {
            let nv = self.new_vertex();
            self.vm(v).elems.push(nv);
        }
        self.v(v).elems[i]
    }

    #[inline(always)]
    fn check_list_len(&mut self, v: VId, n: usize, closed: bool, span: Span) {
        let cur_closed = self.v(v).list_closed;
        let cur_len = self.v(v).elems.len();
        if let Some(m) = cur_closed.map(|m| m as usize) {
            if (closed && m != n) || (!closed && n > m) {
                self.set_err(
                    v,
                    Rc::new(Bot {
                        msg: format!("incompatible list lengths ({m} and {n})"),
                        incomplete: false,
                        spans: vec![span],
                        path: None,
                    }),
                );
                return;
            }
        } else if closed && cur_len > n {
            self.set_err(
                v,
                Rc::new(Bot {
                    msg: format!("incompatible list lengths ({cur_len} and {n})"),
                    incomplete: false,
                    spans: vec![span],
                    path: None,
                }),
            );
            return;
        }
        if closed {
            self.vm(v).list_closed = Some(n as u32);
        }
    }

    fn process_list(&mut self, v: VId, elems: &'a [ListElem], env: Env<'a>, closed: Closed) {
        self.vm(v).is_list = true;
        let child_closed = closed.child();
        // the span of the last element (for a length error), the open tail, comprehensions
        let mut open = false;
        let mut span = Span::default();
        let mut tail: Option<Conj<'a>> = None;
        let mut has_comp = false;
        for el in elems {
            match el {
                ListElem::Expr(x) => span = x.span,
                ListElem::Ellipsis(t, _) => {
                    open = true;
                    if let Some(t) = t {
                        tail = Some(Conj {
                            x: CX::Expr(t),
                            env: env.clone(),
                            closed: child_closed,
                        });
                    }
                }
                ListElem::Comprehension(_) => has_comp = true,
            }
        }
        let n = if !has_comp {
            // no comprehension: the elements' conjuncts go straight to their vertices
            let n = elems
                .iter()
                .filter(|el| matches!(el, ListElem::Expr(_)))
                .count();
            self.check_list_len(v, n, !open, span);
            if self.v(v).elems.is_empty() {
                self.vm(v).elems.reserve_exact(n);
            }
            let mut i = 0;
            for el in elems {
                if let ListElem::Expr(x) = el {
                    let ev = self.elem_for(v, i);
                    self.push_arc_conj(
                        ev,
                        Conj {
                            x: CX::Expr(x),
                            env: env.clone(),
                            closed: child_closed,
                        },
                    );
                    i += 1;
                }
            }
            n
        } else {
            let mut items: Vec<Conj<'a>> = Vec::new();
            for el in elems {
                match el {
                    ListElem::Expr(x) => items.push(Conj {
                        x: CX::Expr(x),
                        env: env.clone(),
                        closed: child_closed,
                    }),
                    ListElem::Ellipsis(..) => {}
                    ListElem::Comprehension(c) => {
                        let mut out = Vec::new();
                        if let Err(b) =
                            self.run_comp(&c.clauses, 0, env.clone(), &mut |_, e| out.push(e))
                        {
                            self.set_err(v, b);
                            return;
                        }
                        for e in out {
                            items.push(Conj {
                                x: CX::Expr(&c.body),
                                env: e,
                                closed: child_closed,
                            });
                        }
                    }
                }
            }
            let n = items.len();
            self.check_list_len(v, n, !open, span);
            for (i, c) in items.into_iter().enumerate() {
                let ev = self.elem_for(v, i);
                self.push_arc_conj(ev, c);
            }
            n
        };
        if let Some(t) = tail {
            self.vm(v).rm().tails.push((n, t));
        }
    }

    /// Runs comprehension clauses, calling `yield_` with the environment of each iteration.
    fn run_comp(
        &mut self,
        clauses: &'a [Clause],
        i: usize,
        env: Env<'a>,
        yield_: &mut dyn FnMut(&mut Self, Env<'a>),
    ) -> Result<(), Rc<Bot>> {
        let Some(cl) = clauses.get(i) else {
            yield_(self, env);
            return Ok(());
        };
        if !self.step() {
            return Err(Rc::new(Bot {
                msg: "evaluation limit exceeded".into(),
                incomplete: false,
                spans: vec![],
                path: None,
            }));
        }
        match cl {
            Clause::If(cond) => {
                let c = self.eval(cond, &env);
                let c = self.concrete(c);
                match c {
                    Val::Bool(true) => self.run_comp(clauses, i + 1, env, yield_),
                    Val::Bool(false) => Ok(()),
                    Val::Bottom(b) => Err(b),
                    other if other.is_concrete_scalar() => Err(Rc::new(Bot {
                        msg: format!(
                            "cannot use {} (type {}) as type bool",
                            other,
                            type_name(&other)
                        ),
                        incomplete: false,
                        spans: vec![cond.span],
                        path: None,
                    })),
                    other => Err(Rc::new(Bot {
                        msg: format!("incomplete condition: {other}"),
                        incomplete: true,
                        spans: vec![cond.span],
                        path: None,
                    })),
                }
            }
            Clause::Let { name, value, .. } => {
                let nv = self.new_vertex();
                self.vm(nv).conjs.push(Conj {
                    x: CX::Expr(value),
                    env: env.clone(),
                    closed: Closed::No,
                });
                let fr = Rc::new(Frame {
                    kind: FrameKind::Bind {
                        a: (name.as_str(), Val::Vertex(nv)),
                        b: None,
                    },
                    parent: env,
                });
                self.run_comp(clauses, i + 1, Some(fr), yield_)
            }
            Clause::For {
                key,
                value,
                source,
                span,
            } => {
                let src = self.eval(source, &env);
                let src = self.concrete(src);
                let w = match src {
                    Val::Vertex(w) => w,
                    Val::Bottom(b) => return Err(b),
                    other => {
                        let inc = !other.is_concrete_scalar()
                            && other.kind_bits() & (K_STRUCT | K_LIST) != 0;
                        return Err(Rc::new(Bot {
                            msg: format!("cannot range over {other}"),
                            incomplete: inc,
                            spans: vec![*span],
                            path: None,
                        }));
                    }
                };
                self.expand(w);
                let w = self.deref(w);
                if let Some(e) = self.v(w).err.clone() {
                    return Err(e);
                }
                let mut items: Vec<(Val, VId)> = Vec::new();
                if self.v(w).is_list {
                    for (i, e) in self.v(w).elems.iter().enumerate() {
                        items.push((Val::Int(i as i64), *e));
                    }
                    // ranging over a list with an erroneous element is an error
                    for (_, e) in &items {
                        if let Some(b) = self.has_fatal_inner(*e, 1) {
                            return Err(b);
                        }
                    }
                } else if self.v(w).is_struct {
                    for (k, a) in self.v(w).arcs.iter() {
                        if a.kind == FK::Regular && a.regular {
                            // the arc's own (interned) name unless it carries a marker
                            let name = if k.starts_with('\u{1}') {
                                Rc::from(display_label(k))
                            } else {
                                k.clone()
                            };
                            items.push((Val::Str(name), a.vid));
                        }
                    }
                } else {
                    return Err(Rc::new(Bot {
                        msg: "cannot range over non-struct, non-list value".into(),
                        incomplete: true,
                        spans: vec![*span],
                        path: None,
                    }));
                }
                for (k, e) in items {
                    let ev = Val::Vertex(e);
                    let kind = match key {
                        Some(kn) => FrameKind::Bind {
                            a: (kn.as_str(), k),
                            b: Some((value.as_str(), ev)),
                        },
                        None => FrameKind::Bind {
                            a: (value.as_str(), ev),
                            b: None,
                        },
                    };
                    let fr = Rc::new(Frame {
                        kind,
                        parent: env.clone(),
                    });
                    self.run_comp(clauses, i + 1, Some(fr), yield_)?;
                }
                Ok(())
            }
        }
    }

    /// Runs the pending comprehensions, dynamic fields and embedded computations of `v`
    /// (most vertices have none: answered inline).
    #[inline]
    fn run_pending(&mut self, v: VId) {
        if !self.v(v).pending().is_empty() {
            self.run_pending_now(v);
        }
    }

    #[inline(never)]
    fn run_pending_now(&mut self, v: VId) {
        let mut guard = 0;
        // Comprehensions put back in the queue since the last one that made progress.
        let mut stalled = 0;
        while !self.v(v).pending().is_empty() {
            guard += 1;
            if guard > 100_000 || !self.step() {
                break;
            }
            let p = self.vm(v).rm().pending.remove(0);
            match p {
                Pending::Comp(c, env, closed, g, pos) => {
                    let before = self.v(v).arcs.len();
                    // most comprehensions of a struct are an `if`: one environment, kept inline
                    let mut out: Inline1<Env<'a>> = Inline1::default();
                    match self.run_comp(&c.clauses, 0, env.clone(), &mut |_, e| out.push(e)) {
                        // An incomplete clause may depend on fields that later comprehensions
                        // of the same struct define (`if x.a == 1 {…}` before `if true {a: 1}`):
                        // try again after them, until a whole round makes no progress.
                        Err(b) if b.incomplete && stalled < self.v(v).pending().len() => {
                            stalled += 1;
                            self.vm(v)
                                .rm()
                                .pending
                                .push(Pending::Comp(c, env, closed, g, pos));
                        }
                        Err(b) if b.incomplete => {
                            if self.v(v).comp_err().is_none() {
                                self.vm(v).rm().comp_err = Some(b);
                            }
                            self.vm(v).rm().comp_stalled.push((pos, c));
                            self.vm(v).saw_lit = true;
                        }
                        Err(b) => self.set_err(v, b),
                        Ok(()) => {
                            // Comprehensions nested in the body run before the ones that
                            // follow this one in the literal: a later `if` may test a field
                            // the nested one defines (`if true { if true { a: 1 } }`, then
                            // `if x.a == 1 {…}`).
                            let rest = std::mem::take(&mut self.vm(v).rm().pending);
                            for e in out {
                                self.add_conj(
                                    v,
                                    Conj {
                                        x: CX::Expr(&c.body),
                                        env: e,
                                        closed,
                                    },
                                    Some(g),
                                );
                            }
                            let pending = &mut self.vm(v).rm().pending;
                            if pending.is_empty() {
                                *pending = rest;
                            } else {
                                pending.extend(rest);
                            }
                            self.reorder_comp_arcs(v, pos, before);
                            stalled = 0;
                        }
                    }
                }
                Pending::Embed(x, env, closed, g) => {
                    stalled = 0;
                    self.add_conj(
                        v,
                        Conj {
                            x: CX::Expr(x),
                            env,
                            closed,
                        },
                        Some(g),
                    );
                }
                Pending::Dyn(f, x, env, closed, g) => {
                    stalled = 0;
                    let l = self.eval(x, &env);
                    let l = self.concrete(l);
                    match l {
                        Val::Str(s) => {
                            let s = regular_key(&s, FK::Regular);
                            let env = match &x.kind {
                                // `(X=expr): value`: X is the label in `value`
                                ExprKind::Alias(a, _) => {
                                    bind_aliases((a, Val::Str(Rc::from(&*s))), None, &env)
                                }
                                _ => env.clone(),
                            };
                            let c = Conj {
                                x: CX::Expr(&f.value),
                                env,
                                closed,
                            };
                            self.add_field(v, &s, FK::Regular, f, c, g);
                        }
                        Val::Bottom(b) => self.set_err(v, b),
                        other => {
                            let inc = !other.is_concrete_scalar();
                            self.set_err(
                                v,
                                Rc::new(Bot {
                                    msg: format!("invalid label: {other} is not a string"),
                                    incomplete: inc,
                                    spans: vec![x.span],
                                    path: None,
                                }),
                            )
                        }
                    }
                }
            }
        }
    }

    /// Moves the arcs a comprehension added (at the end) to where the comprehension appeared in
    /// its struct literal, so fields keep source order as in current CUE.
    fn reorder_comp_arcs(&mut self, v: VId, pos: usize, before: usize) {
        let after = self.v(v).arcs.len();
        if after == before {
            return;
        }
        let shift: usize = self
            .v(v)
            .comp_inserts()
            .iter()
            .filter(|(p, _)| *p <= pos)
            .map(|(_, n)| *n)
            .sum();
        let target = (pos + shift).min(before);
        if target < before {
            let vx = self.vm(v);
            for i in 0..(after - before) {
                vx.arcs.move_index(before + i, target + i);
            }
        }
        self.vm(v).rm().comp_inserts.push((pos, after - before));
    }

    /// Fast path: one disjunction of plain scalars/types on a scalar vertex
    /// (`*"TCP" | "UDP"`, `*false | bool`, `*80 | int`): no re-evaluation needed.
    fn try_scalar_disj(&mut self, v: VId) -> bool {
        {
            let x = self.v(v);
            if x.disjs().len() != 1
                || !x.arcs.is_empty()
                || x.is_struct
                || x.is_list
                || x.saw_lit
                || !x.pending().is_empty()
                || x.err.is_some()
                || x.choices().is_some()
            {
                return false;
            }
        }
        // taken out (not cloned); put back if this is not a scalar disjunction
        let disjs = std::mem::take(&mut self.vm(v).rm().disjs);
        let alts = &disjs[0].alts;
        let mut vals: Vec<(Val, bool)> = Vec::with_capacity(alts.len());
        for (c, d) in alts {
            let val = match &c.x {
                CX::Expr(e) => {
                    let simple = match &e.kind {
                        ExprKind::Int(_)
                        | ExprKind::Float(_)
                        | ExprKind::Str(_)
                        | ExprKind::Bool(_)
                        | ExprKind::Null
                        | ExprKind::Top => true,
                        ExprKind::Ident(n) => {
                            matches!(
                                n.as_str(),
                                "int" | "string" | "bool" | "float" | "number" | "bytes"
                            ) && self.is_predeclared(n, &c.env)
                        }
                        _ => false,
                    };
                    if !simple {
                        self.vm(v).rm().disjs = disjs;
                        return false;
                    }
                    self.eval(e, &c.env)
                }
                CX::Val(val)
                    if val.is_concrete_scalar() || matches!(val, Val::Atom(_) | Val::Top) =>
                {
                    val.clone()
                }
                _ => {
                    self.vm(v).rm().disjs = disjs;
                    return false;
                }
            };
            vals.push((val, *d));
        }
        let atom = self.v(v).atom.clone();
        let mut survivors: Vec<(Val, bool)> = Vec::new();
        let mut first_err: Option<Rc<Bot>> = None;
        for (val, d) in vals {
            match unify_atoms(&atom, &val) {
                Val::Bottom(b) => {
                    if first_err.is_none() {
                        first_err = Some(b);
                    }
                }
                r => {
                    if let Some(x) = survivors.iter_mut().find(|x| atoms_equal(&x.0, &r)) {
                        x.1 |= d;
                    } else {
                        survivors.push((r, d));
                    }
                }
            }
        }
        let has_default = alts.iter().any(|(_, d)| *d);
        drop(disjs);
        match survivors.len() {
            0 => {
                let msg = match &first_err {
                    Some(b) => format!("empty disjunction: {}", b.msg),
                    None => "empty disjunction".to_string(),
                };
                let spans = first_err.map(|b| b.spans.clone()).unwrap_or_default();
                self.set_err(
                    v,
                    Rc::new(Bot {
                        msg,
                        incomplete: false,
                        spans,
                        path: None,
                    }),
                );
            }
            1 => {
                if let Some((r, _)) = survivors.pop() {
                    self.vm(v).atom = r;
                }
            }
            _ => {
                let leaves: Vec<(VId, bool)> = survivors
                    .into_iter()
                    .map(|(r, d)| (self.make_leaf(r), d || !has_default))
                    .collect();
                let mut defaults = leaves.iter().filter(|x| x.1).map(|x| x.0);
                if let (Some(d), None) = (defaults.next(), defaults.next()) {
                    self.vm(v).forward = Some(d);
                }
                self.vm(v).rm().disj_result = Some(Rc::new(leaves));
            }
        }
        true
    }

    fn resolve_disj(&mut self, v: VId) {
        if self.try_scalar_disj(v) {
            return;
        }
        let disjs = std::mem::take(&mut self.vm(v).rm().disjs);
        // combos
        let prefix: Vec<usize> = self.v(v).choices().map(|c| c.to_vec()).unwrap_or_default();
        let mut combos: Vec<Vec<usize>> = vec![prefix.clone()];
        for d in disjs.iter() {
            let mut next = Vec::new();
            for c in &combos {
                for k in 0..d.alts.len() {
                    let mut c2 = c.clone();
                    c2.push(k);
                    next.push(c2);
                }
            }
            combos = next;
            if combos.len() > 4096 {
                self.set_err(
                    v,
                    Rc::new(Bot {
                        msg: "too many disjunction combinations".into(),
                        incomplete: false,
                        spans: vec![],
                        path: None,
                    }),
                );
                return;
            }
        }
        let key = disjs
            .first()
            .and_then(|d| d.alts.first())
            .map(|(c, _)| match c.x {
                CX::Expr(e) => e as *const Expr as usize,
                _ => 0,
            })
            .unwrap_or(0);
        if key != 0 && self.disj_stack.iter().filter(|k| **k == key).count() >= 3 {
            self.set_err(
                v,
                Rc::new(Bot {
                    msg: "structural cycle".into(),
                    incomplete: false,
                    spans: vec![],
                    path: None,
                }),
            );
            return;
        }
        self.disj_stack.push(key);
        self.resolve_combos(v, disjs, combos, prefix);
        self.disj_stack.pop();
    }

    fn resolve_combos(
        &mut self,
        v: VId,
        disjs: Inline1<PendingDisj<'a>>,
        combos: Vec<Vec<usize>>,
        prefix: Vec<usize>,
    ) {
        let conjs = self.v(v).conjs.clone();
        let levels: Rc<Vec<usize>> = {
            let mut l = self
                .v(v)
                .rare
                .as_ref()
                .and_then(|r| r.choice_levels.as_ref())
                .map(|l| l.to_vec())
                .unwrap_or_default();
            l.push(prefix.len());
            Rc::new(l)
        };
        let has_marks: Vec<bool> = disjs
            .iter()
            .map(|d| d.alts.iter().any(|(_, x)| *x))
            .collect();
        // each disjunct with its default status in each disjunction
        let mut survivors: Vec<(VId, Vec<DefMode>)> = Vec::new();
        // and, for a disjunct of a nested disjunction, that status there and which
        // alternative (of which disjunction here) held it
        let mut nested_modes: Vec<Vec<(usize, usize, DefMode)>> = Vec::new();
        let mut errs: Vec<Rc<Bot>> = Vec::new();
        for combo in combos {
            let modes: Vec<DefMode> = disjs
                .iter()
                .zip(&has_marks)
                .zip(combo.iter().skip(prefix.len()))
                .map(|((d, &has), &k)| DefMode::of(has, d.alts.get(k).is_some_and(|a| a.1)))
                .collect();
            let ks: Vec<usize> = combo.get(prefix.len()..).unwrap_or_default().to_vec();
            let u = self.new_vertex();
            {
                let ux = self.vm(u);
                ux.conjs = conjs.clone();
                let r = ux.rm();
                r.choices = Some(Rc::new(combo));
                r.choice_levels = Some(levels.clone());
            }
            self.expand(u);
            let ud = self.deref(u);
            if let Some(e) = self.v(ud).err.clone() {
                errs.push(e);
                continue;
            }
            // The disjunctions met inside the chosen alternatives (`1 | (*2 | 3)`): their
            // disjuncts take this one's place, their defaults counting for the disjunction
            // whose alternative held them.
            match self.v(u).rare.as_ref().and_then(|r| r.nested.clone()) {
                Some(nested) => {
                    for (w, pm) in nested.iter() {
                        let held: Vec<(usize, usize, DefMode)> = pm
                            .iter()
                            .map(|&(i, x)| (i, ks.get(i).copied().unwrap_or(0), x))
                            .collect();
                        survivors.push((*w, modes.clone()));
                        nested_modes.push(held);
                    }
                }
                None => {
                    survivors.push((u, modes));
                    nested_modes.push(Vec::new());
                }
            }
        }
        // A nested disjunction none of whose marked disjuncts survived under an alternative
        // counts as unmarked there (CUE expands it before the disjunctions that follow:
        // `p: *P | int` with `P: (*1 | int) & 2` keeps the default 2).
        let mut marked_held: Vec<(usize, usize)> = nested_modes
            .iter()
            .flatten()
            .filter(|e| e.2 == DefMode::Is)
            .map(|e| (e.0, e.1))
            .collect();
        marked_held.sort_unstable();
        marked_held.dedup();
        for (s, held) in survivors.iter_mut().zip(&nested_modes) {
            for &(i, k, x) in held {
                let dropped = x != DefMode::Is && marked_held.binary_search(&(i, k)).is_err();
                let x = if dropped { DefMode::Maybe } else { x };
                if let Some(m) = s.1.get_mut(i) {
                    *m = (*m).max(x);
                }
            }
        }
        if survivors.len() > 1 {
            // deeper check for conflicts inside struct alternatives
            let mut keep = Vec::new();
            for (u, d) in survivors {
                if let Some(e) = self.has_fatal(u, 6) {
                    errs.push(e);
                    continue;
                }
                keep.push((u, d));
            }
            survivors = keep;
        }
        if self.v(v).choices().is_some() {
            // a disjunct itself: its disjuncts, for the parent to put in its place
            let parents: Option<Vec<usize>> = disjs.iter().map(|d| d.parent).collect();
            let nested = parents.map(|parents| {
                let list: Vec<NestedDisjunct> = survivors
                    .iter()
                    .map(|(u, m)| {
                        let mut pm: Vec<(usize, DefMode)> = Vec::new();
                        for (&p, &x) in parents.iter().zip(m) {
                            match pm.iter_mut().find(|e| e.0 == p) {
                                Some(e) => e.1 = e.1.max(x),
                                None => pm.push((p, x)),
                            }
                        }
                        (*u, pm)
                    })
                    .collect();
                Rc::new(list)
            });
            self.vm(v).rm().nested = nested;
        }
        let modes: Vec<Vec<DefMode>> = survivors.iter().map(|(_, m)| m.clone()).collect();
        let folded = fold_default_modes(&modes, disjs.len());
        // without a default left, every disjunct is flagged (no default), as before
        let any_default = folded.contains(&DefMode::Is);
        let survivors: Vec<(VId, bool)> = survivors
            .into_iter()
            .zip(folded)
            .map(|((u, _), m)| (u, m == DefMode::Is || !any_default))
            .collect();
        // dedupe
        let mut uniq: Vec<(VId, bool)> = Vec::new();
        for (u, d) in survivors {
            let mut found = false;
            for x in uniq.iter_mut() {
                if self.equal_vertices(x.0, u, 8) {
                    x.1 |= d;
                    found = true;
                    break;
                }
            }
            if !found {
                uniq.push((u, d));
            }
        }
        if uniq.is_empty() {
            let mut b = errs.into_iter().find(|e| !e.incomplete).or(None);
            if b.is_none() {
                b = Some(Rc::new(Bot {
                    msg: "empty disjunction".into(),
                    incomplete: true,
                    spans: vec![],
                    path: None,
                }));
            }
            if let Some(b) = b {
                let msg = if b.msg.starts_with("empty disjunction") {
                    b.msg.clone()
                } else {
                    format!("empty disjunction: {}", b.msg)
                };
                self.set_err(
                    v,
                    Rc::new(Bot {
                        msg,
                        incomplete: b.incomplete,
                        spans: b.spans.clone(),
                        path: None,
                    }),
                );
            }
            return;
        }
        if uniq.len() == 1 {
            self.vm(v).forward = Some(uniq[0].0);
            return;
        }
        let defaults: Vec<VId> = uniq.iter().filter(|x| x.1).map(|x| x.0).collect();
        if defaults.len() == 1 {
            self.vm(v).forward = Some(defaults[0]);
        }
        self.vm(v).rm().disj_result = Some(Rc::new(uniq));
    }

    fn has_fatal(&mut self, u: VId, depth: usize) -> Option<Rc<Bot>> {
        self.expand(u);
        let u = self.deref(u);
        if let Some(e) = &self.v(u).err {
            return Some(e.clone());
        }
        self.has_fatal_inner(u, depth)
    }

    fn has_fatal_inner(&mut self, u: VId, depth: usize) -> Option<Rc<Bot>> {
        self.expand(u);
        let u = self.deref(u);
        if let Some(e) = &self.v(u).err {
            if !e.incomplete {
                return Some(e.clone());
            }
            return None;
        }
        if depth == 0 {
            return None;
        }
        // the children as they are now (checking them may add arcs): up to 16 on the stack
        let mut few = [0 as VId; 16];
        let mut n = 0;
        let mut more: Vec<VId> = Vec::new();
        let x = self.v(u);
        let kids = x
            .arcs
            .values()
            .filter(|a| a.regular || a.required)
            .map(|a| a.vid)
            .chain(x.elems.iter().copied());
        for k in kids {
            if n < few.len() {
                few[n] = k;
                n += 1;
            } else {
                more.push(k);
            }
        }
        for k in few[..n].iter().chain(more.iter()) {
            if let Some(e) = self.has_fatal_inner(*k, depth - 1) {
                return Some(e);
            }
        }
        None
    }

    pub fn equal_vertices(&mut self, a: VId, b: VId, depth: usize) -> bool {
        self.expand(a);
        self.expand(b);
        let a = self.deref(a);
        let b = self.deref(b);
        if a == b {
            return true;
        }
        if depth == 0 {
            return false;
        }
        let (xa, xb) = (self.v(a), self.v(b));
        if xa.is_struct != xb.is_struct || xa.is_list != xb.is_list {
            return false;
        }
        if xa.disj_result().is_some() || xb.disj_result().is_some() {
            return false;
        }
        if !atoms_equal(&xa.atom, &xb.atom) {
            return false;
        }
        if xa.is_list {
            if xa.elems.len() != xb.elems.len()
                || xa.list_closed.is_some() != xb.list_closed.is_some()
            {
                return false;
            }
            let pairs: Vec<(VId, VId)> = xa
                .elems
                .iter()
                .copied()
                .zip(xb.elems.iter().copied())
                .collect();
            return pairs
                .into_iter()
                .all(|(x, y)| self.equal_vertices(x, y, depth - 1));
        }
        if xa.is_struct {
            let ka: Vec<(Rc<str>, VId, bool)> = xa
                .arcs
                .iter()
                .map(|(k, v)| (k.clone(), v.vid, v.regular))
                .collect();
            if ka.len() != xb.arcs.len() {
                return false;
            }
            let mut pairs = Vec::new();
            for (k, va, ra) in ka {
                match xb.arcs.get(&k) {
                    Some(bi) if bi.regular == ra => pairs.push((va, bi.vid)),
                    _ => return false,
                }
            }
            let closed_a = xa.groups.iter().any(|g| g.closed && !g.open);
            let closed_b = xb.groups.iter().any(|g| g.closed && !g.open);
            if closed_a != closed_b {
                return false;
            }
            return pairs
                .into_iter()
                .all(|(x, y)| self.equal_vertices(x, y, depth - 1));
        }
        true
    }

    fn finalize(&mut self, v: VId) {
        let needs = {
            let x = self.v(v);
            !x.tails().is_empty()
                || x.groups
                    .iter()
                    .any(|g| !g.patterns().is_empty() || (g.closed && !g.open))
        };
        if needs {
            self.finalize_constraints(v);
        }
        self.finalize_kinds(v);
    }

    fn finalize_constraints(&mut self, v: VId) {
        // patterns
        let groups = self.v(v).groups.clone();
        let has_patterns = groups.iter().any(|g| !g.patterns().is_empty());
        let arcs: Vec<(Rc<str>, VId, FK)> = self
            .v(v)
            .arcs
            .iter()
            .map(|(k, a)| (k.clone(), a.vid, a.kind))
            .collect();
        let mut pattern_cache: Vec<Vec<Val>> = Vec::new();
        if has_patterns {
            for g in groups.iter() {
                let mut pv = Vec::new();
                for p in g.patterns() {
                    let val = self.eval(p.label, &p.env);
                    pv.push(val);
                }
                pattern_cache.push(pv);
            }
            for (name, av, kind) in &arcs {
                if *kind != FK::Regular {
                    continue;
                }
                for (gi, g) in groups.iter().enumerate() {
                    for (pi, p) in g.patterns().iter().enumerate() {
                        let pv = pattern_cache[gi][pi].clone();
                        if self.label_matches(&pv, name) {
                            let label = p.alias.map(|a| (a, Val::Str(name.clone())));
                            let field = p.field_alias.map(|fa| (fa, Val::Vertex(*av)));
                            let (first, second) = match field {
                                Some(f) => (Some(f), label),
                                None => (label, None),
                            };
                            let c = match first {
                                None => p.value.clone(),
                                Some(a) => Conj {
                                    env: bind_aliases(a, second, &p.value.env),
                                    ..p.value.clone()
                                },
                            };
                            self.push_arc_conj(*av, c);
                        }
                    }
                }
            }
        }
        // closedness
        let closed_groups: Vec<usize> = groups
            .iter()
            .enumerate()
            .filter(|(_, g)| g.closed && !g.open)
            .map(|(i, _)| i)
            .collect();
        if !closed_groups.is_empty() {
            for (name, av, kind) in &arcs {
                if *kind != FK::Regular {
                    continue;
                }
                for &gi in &closed_groups {
                    let g = &groups[gi];
                    if g.allows(name) {
                        continue;
                    }
                    if g.cid != 0
                        && groups.iter().any(|h| {
                            h.cid != 0
                                && self.cid_parent.get(&h.cid) == Some(&g.cid)
                                && h.allows(name)
                        })
                    {
                        continue;
                    }
                    let mut ok = false;
                    if has_patterns {
                        for pv in &pattern_cache[gi] {
                            if self.label_matches(pv, name) {
                                ok = true;
                                break;
                            }
                        }
                    }
                    if !ok {
                        let spans: Vec<Span> = self
                            .v(*av)
                            .conjs
                            .iter()
                            .filter_map(|c| match c.x {
                                CX::Expr(e) => Some(e.span),
                                _ => None,
                            })
                            .take(2)
                            .collect();
                        let b = Rc::new(Bot {
                            msg: "field not allowed".to_string(),
                            incomplete: false,
                            spans,
                            path: None,
                        });
                        let t = self.deref(*av);
                        self.set_err(t, b.clone());
                        if self.v(t).state == St::New {
                            // make sure it sticks even after expansion
                            self.vm(*av).conjs.push(Conj {
                                x: CX::Val(Val::Bottom(b)),
                                env: None,
                                closed: Closed::No,
                            });
                        }
                        break;
                    }
                }
            }
        }
        // list tails
        let tails = self.v(v).tails().to_vec();
        if !tails.is_empty() {
            let elems = self.v(v).elems.clone();
            for (start, t) in tails {
                for e in elems.iter().skip(start) {
                    self.push_arc_conj(*e, t.clone());
                }
            }
        }
    }

    fn finalize_kinds(&mut self, v: VId) {
        // kind conflicts
        let vx = self.v(v);
        let atom = &vx.atom;
        // Optional fields alone don't make a struct: `{bar?: int, _} & "x"` is "x".
        let has_regular_arcs = vx
            .arcs
            .values()
            .any(|a| a.kind == FK::Regular && (a.regular || a.required));
        let mut err: Option<String> = None;
        if vx.is_list && (vx.forced_struct || vx.is_struct && has_regular_arcs) {
            err = Some(
                "conflicting values list and struct (mismatched types list and struct)".into(),
            );
        } else if vx.is_list {
            if atom.kind_bits() & K_LIST == 0 {
                err = Some(format!(
                    "conflicting values {} and [...] (mismatched types {} and list)",
                    atom,
                    type_name(atom)
                ));
            }
        } else if vx.is_struct
            && (has_regular_arcs
                || matches!(atom, Val::Top)
                || matches!(atom, Val::Atom(a) if a.kinds & K_STRUCT != 0))
        {
            if atom.kind_bits() & K_STRUCT == 0 {
                err = Some(format!(
                    "conflicting values {} and {{...}} (mismatched types {} and struct)",
                    atom,
                    type_name(atom)
                ));
            }
        }
        if err.is_none()
            && vx.forced_struct
            && !vx.is_list
            && !matches!(atom, Val::Top)
            && atom.kind_bits() & K_STRUCT == 0
        {
            err = Some(format!(
                "conflicting values {} and {{...}} (mismatched types {} and struct)",
                atom,
                type_name(atom)
            ));
        }
        let becomes_struct = !vx.is_list && !vx.is_struct && vx.saw_lit && matches!(atom, Val::Top);
        if let Some(m) = err {
            self.set_err(
                v,
                Rc::new(Bot {
                    msg: m,
                    incomplete: false,
                    spans: vec![],
                    path: None,
                }),
            );
        }
        if becomes_struct {
            self.vm(v).is_struct = true;
        }
        if self.v(v).is_struct
            && !has_regular_arcs
            && !matches!(self.v(v).atom, Val::Top | Val::Atom(_))
        {
            // embedded scalar with only hidden/definition fields: it's the scalar
            self.vm(v).is_struct = false;
        }
    }

    pub fn label_matches(&mut self, pat: &Val, name: &str) -> bool {
        match pat {
            Val::Top => true,
            Val::Str(s) => &**s == name,
            Val::Atom(a) => {
                if a.kinds & K_STRING == 0 {
                    return false;
                }
                let s = Val::Str(Rc::from(name));
                !matches!(unify_atoms(pat, &s), Val::Bottom(_))
            }
            Val::Disj(alts) => alts.iter().any(|(x, _)| self.label_matches(x, name)),
            Val::Vertex(w) => {
                let w = *w;
                self.expand(w);
                let w = self.deref(w);
                if let Some(dr) = self.v(w).disj_result().cloned() {
                    return dr.iter().any(|(u, _)| {
                        let val = self.value_of(*u);
                        self.label_matches(&val, name)
                    });
                }
                let a = self.v(w).atom.clone();
                if self.v(w).is_struct || self.v(w).is_list {
                    return false;
                }
                self.label_matches(&a, name)
            }
            _ => false,
        }
    }

    // ---------------------------------------------------------------- references

    pub fn is_predeclared(&self, name: &str, env: &Env<'a>) -> bool {
        let bit = label_bloom(name);
        let mut e = env.as_ref();
        while let Some(f) = e {
            match &f.kind {
                FrameKind::Struct { lit, .. } => {
                    if lit.declares(name, bit) {
                        return false;
                    }
                }
                FrameKind::Bind { a, b } => {
                    if a.0 == name || b.as_ref().is_some_and(|b| b.0 == name) {
                        return false;
                    }
                }
            }
            e = f.parent.as_ref();
        }
        true
    }

    /// What the identifier `e` (`name`) refers to in `env`. The scopes a reference site sees
    /// are lexical, so where it was found once (which enclosing frame, which arc of that
    /// frame's vertex) is remembered per site and checked, not searched, the next times.
    fn lookup_ident(&mut self, e: &'a Expr, name: &str, env: &Env<'a>) -> Result<Target, Val> {
        let site = e as *const Expr as usize;
        let slot = site_slot(site);
        if let Some((k, Some(c))) = self.ref_sites.get(slot) {
            if *k == site {
                if let Some(r) = self.lookup_cached(c, env, name, e.span) {
                    return r;
                }
            }
        }
        let (r, found) = self.lookup_ident_walk(name, env, e.span);
        if let Some(c) = found {
            if self.ref_sites.is_empty() {
                self.ref_sites.resize_with(SITE_SLOTS, || (0, None));
            }
            self.ref_sites[slot] = (site, Some(c));
        }
        r
    }

    /// The cached resolution `c` of a reference site, when it still holds: the frame `c.depth`
    /// levels up is the one it was found in and (for a field) the arc is where it was.
    #[inline]
    fn lookup_cached(
        &self,
        c: &RefSite,
        env: &Env<'a>,
        name: &str,
        span: Span,
    ) -> Option<Result<Target, Val>> {
        let mut f = env.as_ref()?;
        for _ in 0..c.depth {
            f = f.parent.as_ref()?;
        }
        match (&f.kind, &c.at) {
            (FrameKind::Struct { vid, lit, .. }, SiteAt::Arc { lit: l, idx, key }) => {
                if std::ptr::from_ref::<StructLit>(*lit) as usize != *l {
                    return None;
                }
                let (k, a) = self.v(*vid).arcs.entries.get(*idx as usize)?;
                if !Rc::ptr_eq(k, key) {
                    return None;
                }
                if self.v(*vid).state == St::Done
                    && a.kind == FK::Regular
                    && !a.regular
                    && !a.required
                    && a.optional
                {
                    return Some(Err(Val::incomplete(
                        concat_msg("cannot reference optional field: ", name),
                        span,
                    )));
                }
                Some(Ok(Target::Vertex(a.vid)))
            }
            (
                FrameKind::Struct {
                    vid,
                    lit,
                    root: true,
                    ..
                },
                SiteAt::Outer { root, arcs, target },
            ) => {
                if std::ptr::from_ref::<StructLit>(*lit) as usize != *root
                    || f.parent.is_some()
                    || self.v(*vid).arcs.len() != *arcs
                {
                    return None;
                }
                Some(Ok(target.clone()))
            }
            (FrameKind::Bind { a, b }, SiteAt::Bind { second, name: n }) => {
                let slot = if *second { b.as_ref()? } else { a };
                if slot.0.as_ptr() as usize != *n || slot.0.len() != name.len() {
                    return None;
                }
                Some(Ok(target_of(&slot.1)))
            }
            _ => None,
        }
    }

    /// [`Ev::lookup_ident`] by walking the frames. Also gives what to remember about the site
    /// when its answer depends only on the lexical scopes (found in a field of an enclosing
    /// literal, or a comprehension variable, with no frame on the way declaring the name).
    fn lookup_ident_walk(
        &mut self,
        name: &str,
        env: &Env<'a>,
        span: Span,
    ) -> (Result<Target, Val>, Option<RefSite>) {
        let bit = label_bloom(name);
        // walk the frames by reference: no reference count traffic per frame
        let mut e = env.as_ref();
        let mut last_root: Option<VId> = None;
        // frames passed so far, and whether one of them declared the name without having it
        // (then the answer depends on more than the scopes: not cached)
        let mut depth = 0u32;
        let mut clean = true;
        let mut last_kind = None;
        while let Some(f) = e {
            last_kind = Some(&f.kind);
            match &f.kind {
                FrameKind::Struct {
                    vid,
                    lit,
                    lets,
                    root,
                } => {
                    if lit.declares(name, bit) {
                        let done = self.v(*vid).state == St::Done;
                        let key = self.hidden_key(name, span.file);
                        let arcs = &self.v(*vid).arcs;
                        if let Some(i) = arcs.get_index_of(&key) {
                            let (k, a) = &arcs.entries[i];
                            let site = clean.then(|| RefSite {
                                depth,
                                at: SiteAt::Arc {
                                    lit: std::ptr::from_ref::<StructLit>(*lit) as usize,
                                    idx: i as u32,
                                    key: k.clone(),
                                },
                            });
                            if done
                                && a.kind == FK::Regular
                                && !a.regular
                                && !a.required
                                && a.optional
                            {
                                return (
                                    Err(Val::incomplete(
                                        concat_msg("cannot reference optional field: ", name),
                                        span,
                                    )),
                                    site,
                                );
                            }
                            return (Ok(Target::Vertex(a.vid)), site);
                        }
                        clean = false;
                    }
                    let decls: &[Decl] = if lit.may_bind(bit) { &lit.decls } else { &[] };
                    for (i, d) in decls.iter().enumerate() {
                        match d {
                            Decl::Let(l) if l.name == name => {
                                let made = lets.borrow().iter().find(|x| x.0 == i).map(|x| x.1);
                                if let Some(nv) = made {
                                    return (Ok(Target::Vertex(nv)), None);
                                }
                                let nv = self.new_vertex();
                                self.vm(nv).conjs.push(Conj {
                                    x: CX::Expr(&l.value),
                                    env: Some(f.clone()),
                                    closed: Closed::No,
                                });
                                lets.borrow_mut().push((i, nv));
                                return (Ok(Target::Vertex(nv)), None);
                            }
                            Decl::Field(fd) if fd.alias() == Some(name) => {
                                if let Label::Ident(n, _) | Label::Str(n, _) = &fd.label {
                                    if let Some(a) = self.v(*vid).arcs.get(n.as_str()) {
                                        return (Ok(Target::Vertex(a.vid)), None);
                                    }
                                }
                                // `X=(expr): value`: the field the label computes to
                                if let Label::Dynamic(x) = &fd.label {
                                    let lx = match &x.kind {
                                        ExprKind::Alias(_, inner) => &**inner,
                                        _ => &**x,
                                    };
                                    let l = self.eval(lx, &Some(f.clone()));
                                    if let Val::Str(s) = self.concrete(l) {
                                        let key = regular_key(&s, FK::Regular);
                                        if let Some(a) = self.v(*vid).arcs.get(&key) {
                                            return (Ok(Target::Vertex(a.vid)), None);
                                        }
                                    }
                                }
                                clean = false;
                            }
                            Decl::Embed(Expr {
                                kind: ExprKind::Alias(an, _),
                                ..
                            }) if an == name => {
                                return (Ok(Target::Vertex(*vid)), None);
                            }
                            _ => {}
                        }
                    }
                    if *root {
                        last_root = Some(*vid);
                    }
                }
                FrameKind::Bind { a, b } => {
                    let site = |second: bool, n: &str| {
                        clean.then(|| RefSite {
                            depth,
                            at: SiteAt::Bind {
                                second,
                                name: n.as_ptr() as usize,
                            },
                        })
                    };
                    if a.0 == name {
                        return (Ok(target_of(&a.1)), site(false, a.0));
                    }
                    if let Some(b) = b {
                        if b.0 == name {
                            return (Ok(target_of(&b.1)), site(true, b.0));
                        }
                    }
                }
            }
            depth += 1;
            e = f.parent.as_ref();
        }
        // package scope (other files)
        let mut outer = None;
        if let Some(r) = last_root {
            if let Some(a) = self.v(r).arcs.get(name) {
                if a.kind != FK::Hidden {
                    return (Ok(Target::Vertex(a.vid)), None);
                }
            }
            // the last frame is the file's: what follows depends only on the file and name
            if let (true, Some(FrameKind::Struct { lit, .. })) = (clean, last_kind) {
                outer = Some((
                    depth - 1,
                    std::ptr::from_ref::<StructLit>(*lit) as usize,
                    self.v(r).arcs.len(),
                ));
            }
        }
        let site = |target: &Target| {
            outer.map(|(depth, root, arcs)| RefSite {
                depth,
                at: SiteAt::Outer {
                    root,
                    arcs,
                    target: target.clone(),
                },
            })
        };
        // imports of the file
        if let Some(file) = self.files.get(span.file as usize) {
            for imp in &file.imports {
                // an import's local name is its explicit name or a suffix of its path: skip
                // the path parsing for the predeclared names that come past here
                if imp.name.is_none() && !imp.path.ends_with(name) {
                    continue;
                }
                if imp.local_name_ref() == name {
                    let t = match self.package_root(&imp.path) {
                        Some(r) => Target::Vertex(r),
                        None => Target::Val(Val::Pkg(Rc::from(imp.path.as_str()))),
                    };
                    let site = site(&t);
                    return (Ok(t), site);
                }
            }
        }
        if let Some((_, v)) = self.predecl_cache.iter().find(|(n, _)| n == name) {
            let t = Target::Val(v.clone());
            let site = site(&t);
            return (Ok(t), site);
        }
        if let Some(v) = builtins::predeclared(name) {
            self.predecl_cache.push((name.to_string(), v.clone()));
            let t = Target::Val(v);
            let site = site(&t);
            return (Ok(t), site);
        }
        (
            Err(bot_val(format!("reference \"{name}\" not found"), span)),
            None,
        )
    }

    /// The arc key of a label written in file `file`: hidden fields are private to their
    /// package, so those of an imported package's files are qualified by its path.
    #[inline]
    pub fn hidden_key<'n>(&self, name: &'n str, file: u32) -> std::borrow::Cow<'n, str> {
        if (file as usize) < self.main_files || label_kind(name) != FK::Hidden {
            return std::borrow::Cow::Borrowed(name);
        }
        self.qualified_hidden_key(name, file)
    }

    /// [`Ev::hidden_key`] of a hidden label in an imported package's file.
    #[inline(never)]
    fn qualified_hidden_key<'n>(&self, name: &'n str, file: u32) -> std::borrow::Cow<'n, str> {
        match self
            .packages
            .iter()
            .find(|(_, idx)| idx.contains(&(file as usize)))
        {
            Some((p, _)) => std::borrow::Cow::Owned(format!("{name}\u{2}{p}")),
            None => std::borrow::Cow::Borrowed(name),
        }
    }

    /// Whether `e` (a field's value: references joined by `&`) refers to a declaration that
    /// encloses `e` itself (`#S: {s: #S}`, `env: [{key: env}]`).
    fn self_reference(&mut self, e: &'a Expr, env: &Env<'a>) -> bool {
        match &e.kind {
            ExprKind::Ident(n) => self.encloses_target(e, n, env),
            ExprKind::Paren(x) => self.self_reference(x, env),
            ExprKind::Binary(BinOp::And, a, b) => {
                self.self_reference(a, env) || self.self_reference(b, env)
            }
            _ => false,
        }
    }

    /// Whether the declaration the identifier `n` (at `span`) refers to encloses `span`.
    fn encloses_target(&mut self, e: &'a Expr, n: &str, env: &Env<'a>) -> bool {
        let span = e.span;
        let Ok(Target::Vertex(w)) = self.lookup_ident(e, n, env) else {
            return false;
        };
        let encloses = |d: Span| {
            d.file == span.file && d.start <= span.start && span.end <= d.end && d != span
        };
        self.v(w).conjs.iter().any(|c| match &c.x {
            CX::Expr(x) => encloses(x.span),
            CX::Lit(l) => encloses(l.span),
            _ => false,
        })
    }

    /// The root vertex of an imported CUE package (its files unified), made on first use.
    fn package_root(&mut self, path: &str) -> Option<VId> {
        if let Some(r) = self.package_roots.get(path) {
            return Some(*r);
        }
        let files = self.files;
        let (_, idx) = self.packages.iter().find(|(p, _)| p == path)?;
        let r = self.new_vertex();
        for &i in idx {
            if let Some(f) = files.get(i) {
                self.vm(r).conjs.push(Conj {
                    x: CX::Lit(&f.body),
                    env: None,
                    closed: Closed::No,
                });
            }
        }
        self.package_roots.insert(path.to_string(), r);
        Some(r)
    }

    /// The field `v` copies, when `v` is unevaluated and its only conjunct is an open reference
    /// to a field (`x: a.b.c`, no definition on the way): then `v`'s value is that field's value,
    /// and the exporter can share what it built for the field instead of evaluating `v` again.
    pub fn plain_ref_target(&mut self, v: VId) -> Option<VId> {
        let x = self.v(v);
        if x.state != St::New
            || x.forward.is_some()
            || x.conjs.len() != 1
            || x.anon
            || x.synthetic
            || x.open_all
        {
            return None;
        }
        let c = x.conjs.get(0)?;
        let (CX::Expr(e), Closed::No) = (&c.x, c.closed) else {
            return None;
        };
        let e: &'a Expr = e;
        if !is_plain_ref(e) {
            return None;
        }
        let env = c.env.clone();
        match self.resolve_ref(e, &env)? {
            Target::Vertex(w) => Some(self.deref(w)),
            Target::Val(_) => None,
        }
    }

    /// True when vertex `w` is not evaluated yet and evaluating it cannot reach another vertex:
    /// each conjunct is built from literals and predeclared types (`string`, `int`, …) with
    /// operators only. Evaluating it before or after anything else gives the same results (the
    /// exporter evaluates such a field before a field that refers to it).
    pub fn is_self_contained(&mut self, w: VId) -> bool {
        let x = self.v(w);
        if x.state != St::New || x.forward.is_some() || x.rare.is_some() {
            return false;
        }
        for i in 0..x.conjs.len() {
            let Some(c) = self.v(w).conjs.get(i) else {
                return false;
            };
            let CX::Expr(e) = c.x else {
                return false;
            };
            let env = c.env.clone();
            if !self.refers_to_nothing(e, &env) {
                return false;
            }
        }
        true
    }

    fn refers_to_nothing(&mut self, e: &'a Expr, env: &Env<'a>) -> bool {
        match &e.kind {
            ExprKind::Null
            | ExprKind::Bool(_)
            | ExprKind::Int(_)
            | ExprKind::Float(_)
            | ExprKind::Str(_)
            | ExprKind::Bytes(_)
            | ExprKind::Top => true,
            ExprKind::Ident(n) => {
                matches!(
                    n.as_str(),
                    "string" | "int" | "float" | "number" | "bool" | "bytes" | "uint"
                ) && matches!(
                    self.lookup_ident(e, n, env),
                    Ok(Target::Val(v)) if !matches!(v, Val::Vertex(_))
                )
            }
            ExprKind::Unary(_, x) | ExprKind::Paren(x) => self.refers_to_nothing(x, env),
            ExprKind::Binary(_, a, b) => {
                self.refers_to_nothing(a, env) && self.refers_to_nothing(b, env)
            }
            _ => false,
        }
    }

    /// Resolves a reference expression to a vertex (or bound value) without evaluating it.
    fn resolve_ref(&mut self, e: &'a Expr, env: &Env<'a>) -> Option<Target> {
        match &e.kind {
            ExprKind::Ident(n) => self.lookup_ident(e, n, env).ok(),
            ExprKind::Selector(x, name, _) => {
                let base = self.resolve_ref(x, env)?;
                let w = match base {
                    Target::Vertex(w) => w,
                    Target::Val(Val::Vertex(w)) => w,
                    _ => return None,
                };
                self.expand(w);
                let w = self.deref(w);
                if self.v(w).err.is_some() {
                    return None;
                }
                let key = self.hidden_key(name, e.span.file);
                let a = self.v(w).arcs.get(&key)?;
                if !a.regular && !a.required && a.kind == FK::Regular {
                    return None;
                }
                if !a.regular && a.optional {
                    return None;
                }
                Some(Target::Vertex(a.vid))
            }
            ExprKind::Paren(x) => self.resolve_ref(x, env),
            _ => None,
        }
    }

    pub fn value_of(&mut self, id: VId) -> Val {
        self.expand(id);
        let r = self.deref(id);
        let x = self.v(r);
        if let Some(e) = &x.err {
            return Val::Bottom(e.clone());
        }
        if x.state == St::Expanding
            && !x.is_struct
            && !x.is_list
            && matches!(x.atom, Val::Top)
            && x.arcs.is_empty()
        {
            return Val::incomplete(CYCLE, Span::default());
        }
        if let Some(dr) = x.disj_result().cloned() {
            if x.forward.is_none() {
                let alts: Vec<(Val, bool)> =
                    dr.iter().map(|(u, d)| (self.value_of(*u), *d)).collect();
                return Val::Disj(Rc::new(alts));
            }
        }
        let x = self.v(r);
        if x.is_struct || x.is_list {
            Val::Vertex(r)
        } else {
            x.atom.clone()
        }
    }

    /// Resolves defaults and disjunctions to a single value where possible.
    #[inline]
    pub fn concrete(&mut self, v: Val) -> Val {
        match v {
            Val::Disj(_) => self.concrete_disj(v),
            other => other,
        }
    }

    #[inline(never)]
    fn concrete_disj(&mut self, v: Val) -> Val {
        match v {
            Val::Disj(alts) => {
                let d: Vec<&(Val, bool)> = alts.iter().filter(|x| x.1).collect();
                if d.len() == 1 {
                    return self.concrete(d[0].0.clone());
                }
                if alts.len() == 1 {
                    return self.concrete(alts[0].0.clone());
                }
                Val::Disj(alts)
            }
            other => other,
        }
    }

    // ---------------------------------------------------------------- expressions

    pub fn eval(&mut self, e: &'a Expr, env: &Env<'a>) -> Val {
        if let Err(b) = self.enter(e.span) {
            return b;
        }
        let r = self.eval_inner(e, env);
        self.depth -= 1;
        r
    }

    /// `e` evaluated only to test whether it is an error (`e == _|_`, `e != _|_`): the common
    /// `x.y` and `x["y"]` on a missing or optional field give the shared `absent` error instead
    /// of one with a message (see [`Ev::missing`]).
    fn eval_probe(&mut self, e: &'a Expr, env: &Env<'a>) -> Val {
        if let Err(b) = self.enter(e.span) {
            return b;
        }
        let r = match &e.kind {
            ExprKind::Selector(x, name, nspan) => self.eval_selector(x, name, *nspan, env, true),
            ExprKind::Index(x, i) => self.eval_index(x, i, env, true),
            _ => self.eval_inner(e, env),
        };
        self.depth -= 1;
        r
    }

    fn anon(&mut self, e: &'a Expr, env: &Env<'a>) -> Val {
        let nv = self.new_vertex();
        self.vm(nv).anon = true;
        self.vm(nv).open_all = std::mem::take(&mut self.anon_open);
        self.vm(nv).conjs.push(Conj {
            x: CX::Expr(e),
            env: env.clone(),
            closed: Closed::No,
        });
        self.value_of_keep(nv)
    }

    /// Like value_of but keeps the original id for struct values (so conjuncts can be copied).
    fn value_of_keep(&mut self, id: VId) -> Val {
        match self.value_of(id) {
            Val::Vertex(_) => Val::Vertex(id),
            other => other,
        }
    }

    fn eval_inner(&mut self, e: &'a Expr, env: &Env<'a>) -> Val {
        match &e.kind {
            ExprKind::Null => Val::Null,
            ExprKind::Bool(b) => Val::Bool(*b),
            ExprKind::Int(i) => Val::Int(*i),
            ExprKind::Float(f) => Val::Float(*f),
            ExprKind::Str(s) => Val::Str(self.intern(s)),
            ExprKind::Bytes(b) => Val::Bytes(Rc::from(b.as_slice())),
            ExprKind::Top => Val::Top,
            ExprKind::Bottom => bot_val("explicit error (_|_ literal) in source", e.span),
            ExprKind::Paren(x) => self.eval(x, env),
            ExprKind::Alias(_, x) => self.eval(x, env),
            ExprKind::Ident(n) => match self.lookup_ident(e, n, env) {
                Ok(Target::Vertex(w)) => self.value_of_keep(w),
                Ok(Target::Val(v)) => v,
                Err(b) => b,
            },
            ExprKind::Selector(x, name, nspan) => self.eval_selector(x, name, *nspan, env, false),
            ExprKind::Index(x, i) => self.eval_index(x, i, env, false),
            ExprKind::Slice(x, lo, hi) => {
                let base = self.eval(x, env);
                let base = self.concrete(base);
                let lo = match lo {
                    Some(l) => {
                        let v = self.eval(l, env);
                        self.concrete(v)
                    }
                    None => Val::Int(0),
                };
                let hi = match hi {
                    Some(h) => {
                        let v = self.eval(h, env);
                        Some(self.concrete(v))
                    }
                    None => None,
                };
                self.slice(base, lo, hi, e.span)
            }
            ExprKind::Call(f, args) => {
                if let ExprKind::Ident(n) = &f.kind {
                    if matches!(n.as_str(), "close" | "and" | "or" | "matchN" | "matchIf")
                        && self.is_predeclared(n, env)
                    {
                        return self.anon(e, env);
                    }
                }
                let fv = self.eval(f, env);
                let mut vals = Vec::with_capacity(args.len());
                for a in args {
                    vals.push(self.eval(a, env));
                }
                match fv {
                    Val::Func(b) => builtins::call(self, b, vals, e.span),
                    Val::Bottom(b) => Val::Bottom(b),
                    other => bot_val(format!("cannot call non-function {other}"), e.span),
                }
            }
            ExprKind::Struct(_) | ExprKind::List(_) => self.anon(e, env),
            ExprKind::Binary(BinOp::And, _, _) | ExprKind::Binary(BinOp::Or, _, _) => {
                self.anon(e, env)
            }
            ExprKind::Unary(op, x) => {
                let v = self.eval(x, env);
                self.unary(*op, v, e.span)
            }
            ExprKind::Binary(op, a, b) => {
                if matches!(op, BinOp::Eq | BinOp::Ne) {
                    let bot_a = matches!(a.kind, ExprKind::Bottom);
                    let bot_b = matches!(b.kind, ExprKind::Bottom);
                    if bot_a || bot_b {
                        let other = if bot_a { b } else { a };
                        let v = self.eval_probe(other, env);
                        let isb = self.is_bottom(&v);
                        return Val::Bool(if *op == BinOp::Eq { isb } else { !isb });
                    }
                }
                if matches!(op, BinOp::LAnd | BinOp::LOr) {
                    let va = self.eval(a, env);
                    let va = self.concrete(va);
                    match va {
                        Val::Bool(x) => {
                            if (*op == BinOp::LAnd && !x) || (*op == BinOp::LOr && x) {
                                return Val::Bool(x);
                            }
                            let vb = self.eval(b, env);
                            let vb = self.concrete(vb);
                            return match vb {
                                Val::Bool(y) => Val::Bool(y),
                                Val::Bottom(bt) => Val::Bottom(bt),
                                other => self.non_bool(other, b.span),
                            };
                        }
                        Val::Bottom(bt) => return Val::Bottom(bt),
                        other => return self.non_bool(other, a.span),
                    }
                }
                let va = self.eval(a, env);
                let vb = self.eval(b, env);
                let f = match op {
                    BinOp::IntDiv => Some(Builtin::Div),
                    BinOp::IntMod => Some(Builtin::Mod),
                    BinOp::IntQuo => Some(Builtin::Quo),
                    BinOp::IntRem => Some(Builtin::Rem),
                    _ => None,
                };
                if let Some(f) = f {
                    return builtins::call(self, f, vec![va, vb], e.span);
                }
                self.binary(*op, va, vb, e.span)
            }
            ExprKind::Interp { parts, bytes } => {
                let mut s = String::new();
                for p in parts {
                    match p {
                        InterpPart::Lit(l) => s.push_str(l),
                        InterpPart::Expr(x) => {
                            let v = self.eval(x, env);
                            let v = self.concrete(v);
                            match v {
                                Val::Str(t) => s.push_str(&t),
                                Val::Int(i) => s.push_str(&i.to_string()),
                                Val::Float(f) => s.push_str(&crate::builtins::fmt_num(f)),
                                Val::Bool(b) => s.push_str(if b { "true" } else { "false" }),
                                Val::Bytes(b) => s.push_str(&String::from_utf8_lossy(&b)),
                                Val::Null => {
                                    return bot_val(
                                        "invalid interpolation: cannot use null",
                                        x.span,
                                    );
                                }
                                Val::Bottom(b) => return Val::Bottom(b),
                                Val::Vertex(_) => {
                                    return bot_val(
                                        "invalid interpolation: cannot use struct or list",
                                        x.span,
                                    );
                                }
                                other => {
                                    return Val::incomplete(
                                        format!(
                                            "invalid interpolation: non-concrete value {other}"
                                        ),
                                        x.span,
                                    );
                                }
                            }
                        }
                    }
                }
                if let Err(b) = self.check_bytes(s.len(), e.span) {
                    return b;
                }
                if *bytes {
                    Val::Bytes(Rc::from(s.into_bytes().as_slice()))
                } else {
                    Val::Str(Rc::from(s.as_str()))
                }
            }
        }
    }

    pub fn check_bytes(&mut self, n: usize, span: Span) -> Result<(), Val> {
        if n > self.limits.max_bytes {
            if self.fatal.is_none() {
                self.fatal = Some(crate::Error::new(format!(
                    "limit exceeded: value larger than {} bytes",
                    self.limits.max_bytes
                )));
            }
            return Err(bot_val("value too large", span));
        }
        Ok(())
    }

    fn non_bool(&self, v: Val, span: Span) -> Val {
        if v.is_concrete_scalar() || matches!(v, Val::Vertex(_)) {
            bot_val(format!("invalid operand {v} (expected bool)"), span)
        } else {
            Val::incomplete(format!("incomplete value {v} (expected bool)"), span)
        }
    }

    pub fn is_bottom(&mut self, v: &Val) -> bool {
        match v {
            Val::Bottom(_) => true,
            Val::Vertex(w) => {
                self.expand(*w);
                let w = self.deref(*w);
                if self.v(w).err.is_some() {
                    return true;
                }
                self.has_fatal_inner(w, 2).is_some()
            }
            Val::Disj(alts) => alts.is_empty(),
            _ => false,
        }
    }

    /// `x.name`. With `probe`, the value is only tested for being an error: a missing or
    /// optional field gives the shared `absent` error instead of one with a message.
    fn eval_selector(
        &mut self,
        x: &'a Expr,
        name: &str,
        nspan: Span,
        env: &Env<'a>,
        probe: bool,
    ) -> Val {
        let mut inner = x;
        while let ExprKind::Paren(y) = &inner.kind {
            inner = y;
        }
        self.anon_open = matches!(
            inner.kind,
            ExprKind::Binary(BinOp::And, _, _) | ExprKind::Struct(_)
        );
        let base = self.eval(x, env);
        self.anon_open = false;
        let key = self.hidden_key(name, nspan.file);
        self.select_in(base, &key, nspan, probe)
    }

    /// `x[i]`. `probe` as for [`Ev::eval_selector`].
    fn eval_index(&mut self, x: &'a Expr, i: &'a Expr, env: &Env<'a>, probe: bool) -> Val {
        let base = self.eval(x, env);
        let idx = self.eval(i, env);
        let idx = self.concrete(idx);
        match idx {
            Val::Str(s) => self.select_in(base, &regular_key(&s, FK::Regular), i.span, probe),
            Val::Int(n) => self.index(base, n, i.span),
            Val::Bottom(b) => Val::Bottom(b),
            other if other.is_concrete_scalar() => bot_val(
                format!("invalid index {other} (invalid type {})", type_name(&other)),
                i.span,
            ),
            // `_` as an index is a type error (CUE: "invalid type _"), not incomplete
            Val::Top => bot_val("invalid index _ (invalid type _)", i.span),
            other => Val::incomplete(format!("invalid index {other}"), i.span),
        }
    }

    /// The error of a missing field: its message, or (`probe`) the shared one of an existence
    /// test, which only looks at whether the value is an error.
    fn missing(&mut self, name: &str, span: Span, incomplete: bool, probe: bool) -> Val {
        if probe {
            let b = self.absent.get_or_insert_with(|| {
                Rc::new(Bot {
                    msg: "undefined field".into(),
                    incomplete: true,
                    spans: vec![],
                    path: None,
                })
            });
            return Val::Bottom(b.clone());
        }
        if incomplete {
            Val::incomplete(undefined_field(name), span)
        } else {
            bot_val(undefined_field(name), span)
        }
    }

    #[inline(always)]
    fn select_in(&mut self, base: Val, name: &str, span: Span, probe: bool) -> Val {
        let base = self.concrete(base);
        match base {
            Val::Vertex(w) => {
                self.expand(w);
                let w = self.deref(w);
                if let Some(e) = self.v(w).err.clone() {
                    return Val::Bottom(e);
                }
                if let Some(dr) = self.v(w).disj_result().cloned() {
                    if self.v(w).forward.is_none() {
                        let _ = dr;
                        return Val::incomplete(
                            concat_msg("unresolved disjunction: cannot select field ", name),
                            span,
                        );
                    }
                }
                if self.v(w).anon {
                    if let Some(b) = self.has_fatal_inner(w, 1) {
                        return Val::Bottom(b);
                    }
                }
                let x = self.v(w);
                match x.arcs.get(name) {
                    Some(a) => {
                        if !a.regular && !a.required {
                            if probe {
                                return self.missing(name, span, true, probe);
                            }
                            return Val::incomplete(
                                concat_msg("cannot reference optional field: ", name),
                                span,
                            );
                        }
                        let vid = a.vid;
                        self.value_of_keep(vid)
                    }
                    None => {
                        if !x.is_struct && !x.is_list && matches!(x.atom, Val::Top | Val::Atom(_)) {
                            return self.missing(name, span, true, probe);
                        }
                        if x.is_list {
                            return bot_val(format!("invalid selector {name} for list"), span);
                        }
                        if !x.is_struct {
                            return bot_val(
                                format!("invalid selector {name}: not a struct ({})", x.atom),
                                span,
                            );
                        }
                        if x.groups
                            .iter()
                            .any(|g| g.closed && !g.open && g.patterns().is_empty())
                        {
                            return self.missing(name, span, false, probe);
                        }
                        self.missing(name, span, true, probe)
                    }
                }
            }
            Val::Pkg(p) => {
                if let Some(i) = self
                    .hosts
                    .iter()
                    .position(|h| *h.path == *p && h.name == name)
                {
                    return Val::Func(Builtin::Host(i as u16));
                }
                match builtins::member(&p, name) {
                    Some(m) => m,
                    // An unexported name (`list.max`) is no member of a package: in CUE v0.14
                    // an undefined field, incomplete (cue-lang references/let).
                    None if !name.starts_with(|c: char| c.is_uppercase()) => {
                        self.missing(name, span, true, probe)
                    }
                    None => bot_val(format!("undefined: {p}.{name}"), span),
                }
            }
            Val::Bottom(b) => Val::Bottom(b),
            Val::Top | Val::Atom(_) | Val::Disj(_) => self.missing(name, span, true, probe),
            other => bot_val(format!("invalid selector {name} for value {other}"), span),
        }
    }

    pub fn index(&mut self, base: Val, n: i64, span: Span) -> Val {
        let base = self.concrete(base);
        match base {
            Val::Vertex(w) => {
                self.expand(w);
                let w = self.deref(w);
                if let Some(e) = self.v(w).err.clone() {
                    return Val::Bottom(e);
                }
                let x = self.v(w);
                if !x.is_list {
                    return bot_val(format!("invalid index {n} for struct"), span);
                }
                if n < 0 || n as usize >= x.elems.len() {
                    let inc = x.list_closed.is_none();
                    let m = format!("index out of range [{n}] with length {}", x.elems.len());
                    return if inc {
                        Val::incomplete(m, span)
                    } else {
                        bot_val(m, span)
                    };
                }
                let id = x.elems[n as usize];
                self.value_of_keep(id)
            }
            Val::Bottom(b) => Val::Bottom(b),
            other if other.is_concrete_scalar() => bot_val(
                format!(
                    "invalid operand {other} (found {}, want list or struct)",
                    type_name(&other)
                ),
                span,
            ),
            other => Val::incomplete(format!("cannot index {other}"), span),
        }
    }

    fn slice(&mut self, base: Val, lo: Val, hi: Option<Val>, span: Span) -> Val {
        let lo = match lo {
            Val::Int(i) => i,
            Val::Bottom(b) => return Val::Bottom(b),
            other if other.is_concrete_scalar() => {
                return bot_val(format!("invalid slice index {other}"), span);
            }
            _ => return Val::incomplete("non-concrete slice index", span),
        };
        match base {
            Val::Vertex(w) => {
                self.expand(w);
                let w = self.deref(w);
                if !self.v(w).is_list {
                    return bot_val("cannot slice struct", span);
                }
                let elems = self.v(w).elems.clone();
                let hi = match hi {
                    Some(Val::Int(h)) => h,
                    Some(other) if other.is_concrete_scalar() => {
                        return bot_val(format!("invalid slice index {other}"), span);
                    }
                    None => elems.len() as i64,
                    _ => return Val::incomplete("non-concrete slice index", span),
                };
                if lo < 0 || hi < lo || hi as usize > elems.len() {
                    return bot_val(
                        format!(
                            "invalid slice index [{lo}:{hi}] with length {}",
                            elems.len()
                        ),
                        span,
                    );
                }
                let vals: Vec<Val> = elems[lo as usize..hi as usize]
                    .iter()
                    .map(|e| Val::Vertex(*e))
                    .collect();
                self.make_list(vals)
            }
            Val::Bottom(b) => Val::Bottom(b),
            other if other.is_concrete_scalar() => bot_val(
                format!("cannot slice {other} (type {})", type_name(&other)),
                span,
            ),
            other => Val::incomplete(format!("cannot slice {other}"), span),
        }
    }

    pub fn make_list(&mut self, vals: Vec<Val>) -> Val {
        let nv = self.new_vertex();
        let mut elems = Vec::with_capacity(vals.len());
        for v in vals {
            elems.push(self.make_leaf(v));
        }
        let x = self.vm(nv);
        x.is_list = true;
        x.list_closed = Some(elems.len() as u32);
        x.elems = elems;
        x.synthetic = true;
        x.state = St::Done;
        Val::Vertex(nv)
    }

    pub fn make_struct(&mut self, fields: Vec<(String, Val)>) -> Val {
        let nv = self.new_vertex();
        let mut arcs = Arcs::default();
        for (k, v) in fields {
            let leaf = self.make_leaf(v);
            arcs.insert(
                Rc::from(k.as_str()),
                ArcInfo {
                    vid: leaf,
                    kind: FK::Regular,
                    regular: true,
                    optional: false,
                    required: false,
                    comments: Comments::default(),
                },
            );
        }
        let x = self.vm(nv);
        x.is_struct = true;
        x.saw_lit = true;
        x.arcs = arcs;
        x.synthetic = true;
        x.state = St::Done;
        Val::Vertex(nv)
    }

    fn make_leaf(&mut self, v: Val) -> VId {
        match v {
            Val::Vertex(w) => w,
            other => {
                let nv = self.new_vertex();
                let x = self.vm(nv);
                match other {
                    Val::Bottom(b) => x.err = Some(b),
                    Val::Disj(_) => {
                        x.conjs.push(Conj {
                            x: CX::Val(other),
                            env: None,
                            closed: Closed::No,
                        });
                        return nv;
                    }
                    o => x.atom = o,
                }
                x.synthetic = true;
                x.state = St::Done;
                nv
            }
        }
    }

    pub fn make_from_json(&mut self, j: &serde_json::Value) -> Val {
        use serde_json::Value as J;
        match j {
            J::Null => Val::Null,
            J::Bool(b) => Val::Bool(*b),
            J::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Val::Int(i)
                } else {
                    Val::Float(n.as_f64().unwrap_or(0.0))
                }
            }
            J::String(s) => Val::Str(Rc::from(s.as_str())),
            J::Array(a) => {
                let vals = a.iter().map(|x| self.make_from_json(x)).collect();
                self.make_list(vals)
            }
            J::Object(m) => {
                let f = m
                    .iter()
                    .map(|(k, x)| (k.clone(), self.make_from_json(x)))
                    .collect();
                self.make_struct(f)
            }
        }
    }

    /// Converts a value to concrete JSON (for builtins like json.Marshal).
    pub fn json_of(&mut self, v: &Val, depth: usize) -> Result<serde_json::Value, Rc<Bot>> {
        use serde_json::Value as J;
        if depth > self.limits.max_depth {
            return Err(Rc::new(Bot {
                msg: "value too deep".into(),
                incomplete: false,
                spans: vec![],
                path: None,
            }));
        }
        let v = self.concrete(v.clone());
        Ok(match v {
            Val::Null => J::Null,
            Val::Bool(b) => J::Bool(b),
            Val::Int(i) => J::from(i),
            Val::Float(f) => serde_json::Number::from_f64(f)
                .map(J::Number)
                .unwrap_or(J::Null),
            Val::Str(s) => J::String(String::from(&*s)),
            Val::Bytes(b) => J::String(base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                &b,
            )),
            Val::Bottom(b) => return Err(b),
            Val::Vertex(w) => {
                self.expand(w);
                let w = self.deref(w);
                if let Some(e) = self.v(w).err.clone() {
                    return Err(e);
                }
                if self.v(w).disj_result().is_some() && self.v(w).forward.is_none() {
                    return Err(Rc::new(Bot {
                        msg: "incomplete value: unresolved disjunction".into(),
                        incomplete: true,
                        spans: vec![],
                        path: None,
                    }));
                }
                if let Some(e) = self.v(w).comp_err().cloned() {
                    return Err(e);
                }
                if self.v(w).is_list {
                    let elems = self.v(w).elems.clone();
                    let mut out = Vec::new();
                    for e in elems {
                        let ev = self.value_of(e);
                        out.push(self.json_of(&ev, depth + 1)?);
                    }
                    J::Array(out)
                } else if self.v(w).is_struct {
                    let arcs: Vec<(Rc<str>, ArcInfo)> = self
                        .v(w)
                        .arcs
                        .iter()
                        .map(|(k, a)| (k.clone(), a.clone()))
                        .collect();
                    let mut m = serde_json::Map::new();
                    for (k, a) in arcs {
                        if a.kind != FK::Regular {
                            continue;
                        }
                        if !a.regular {
                            if a.required {
                                return Err(Rc::new(Bot {
                                    msg: format!("field is required but not present: {k}"),
                                    incomplete: true,
                                    spans: vec![],
                                    path: None,
                                }));
                            }
                            continue;
                        }
                        let ev = self.value_of(a.vid);
                        m.insert(display_label(&k).to_string(), self.json_of(&ev, depth + 1)?);
                    }
                    J::Object(m)
                } else {
                    let a = self.v(w).atom.clone();
                    return self.json_of(&a, depth + 1);
                }
            }
            other => {
                return Err(Rc::new(Bot {
                    msg: format!("incomplete value {other}"),
                    incomplete: true,
                    spans: vec![],
                    path: None,
                }));
            }
        })
    }

    fn unary(&mut self, op: UnaryOp, v: Val, span: Span) -> Val {
        let v = self.concrete(v);
        if let Val::Bottom(b) = v {
            return Val::Bottom(b);
        }
        match op {
            UnaryOp::Default | UnaryOp::Pos => match v {
                Val::Int(_) | Val::Float(_) => v,
                _ if op == UnaryOp::Default => v,
                other => self.incomplete_or(other, "invalid operation +", span),
            },
            UnaryOp::Neg => match v {
                Val::Int(i) => i
                    .checked_neg()
                    .map(Val::Int)
                    .unwrap_or_else(|| bot_val("integer overflow", span)),
                Val::Float(f) => Val::Float(-f),
                Val::Atom(a) if a.kinds & K_NUMBER == 0 => bot_val(
                    format!("invalid operation -{} (not a number)", Val::Atom(a.clone())),
                    span,
                ),
                other => self.incomplete_or(other, "invalid operation -", span),
            },
            UnaryOp::Not => match v {
                Val::Bool(b) => Val::Bool(!b),
                Val::Atom(a) if a.kinds & K_BOOL == 0 => bot_val(
                    format!("invalid operation !{} (not a bool)", Val::Atom(a.clone())),
                    span,
                ),
                other => self.incomplete_or(other, "invalid operation !", span),
            },
            UnaryOp::Eq => v,
            _ => {
                if let Some(r) = bound_of_bound(op, &v) {
                    return r;
                }
                if !v.is_concrete_scalar() {
                    return Val::incomplete(format!("non-concrete value {v} in bound"), span);
                }
                if matches!(op, UnaryOp::Lt | UnaryOp::Le | UnaryOp::Gt | UnaryOp::Ge)
                    && !matches!(v, Val::Int(_) | Val::Float(_) | Val::Str(_) | Val::Bytes(_))
                {
                    return bot_val(format!("invalid operand {v} for an ordering bound"), span);
                }
                let bop = match op {
                    UnaryOp::Lt => BoundOp::Lt,
                    UnaryOp::Le => BoundOp::Le,
                    UnaryOp::Gt => BoundOp::Gt,
                    UnaryOp::Ge => BoundOp::Ge,
                    UnaryOp::Ne => BoundOp::Ne,
                    UnaryOp::Match => BoundOp::Match,
                    _ => BoundOp::NotMatch,
                };
                let mut re = None;
                if matches!(bop, BoundOp::Match | BoundOp::NotMatch) {
                    let Val::Str(s) = &v else {
                        return bot_val("regular expression must be a string", span);
                    };
                    match regex::Regex::new(s) {
                        Ok(r) => re = Some(Rc::new(r)),
                        Err(e) => return bot_val(format!("invalid regular expression: {e}"), span),
                    }
                }
                let b = Bound {
                    op: bop,
                    val: v,
                    re,
                };
                let kinds = bound_kinds(&b);
                Val::Atom(Rc::new(Atom {
                    kinds,
                    bounds: vec![b],
                }))
            }
        }
    }

    fn incomplete_or(&self, v: Val, msg: &str, span: Span) -> Val {
        if v.is_concrete_scalar() || matches!(v, Val::Vertex(_)) {
            bot_val(format!("{msg} {v}"), span)
        } else {
            Val::incomplete(format!("{msg}: non-concrete value {v}"), span)
        }
    }

    pub fn binary(&mut self, op: BinOp, a: Val, b: Val, span: Span) -> Val {
        let a = self.concrete(a);
        let b = self.concrete(b);
        if let Val::Bottom(x) = a {
            return Val::Bottom(x);
        }
        if let Val::Bottom(x) = b {
            return Val::Bottom(x);
        }
        let conc = |v: &Val| v.is_concrete_scalar() || matches!(v, Val::Vertex(_));
        if !conc(&a) || !conc(&b) {
            let nc = if !conc(&a) { &a } else { &b };
            return Val::incomplete(
                format!("non-concrete value {nc} in operand to {}", op.as_str()),
                span,
            );
        }
        match op {
            BinOp::Eq | BinOp::Ne => {
                let eq = match self.values_equal(&a, &b) {
                    Ok(x) => x,
                    Err(m) => return bot_val(m, span),
                };
                Val::Bool(if op == BinOp::Eq { eq } else { !eq })
            }
            BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
                let ord = match (&a, &b) {
                    (Val::Str(x), Val::Str(y)) => x.cmp(y),
                    (Val::Bytes(x), Val::Bytes(y)) => x.cmp(y),
                    _ => match (a.as_f64(), b.as_f64()) {
                        (Some(x), Some(y)) => match x.partial_cmp(&y) {
                            Some(o) => o,
                            None => return bot_val("invalid comparison", span),
                        },
                        _ => {
                            return bot_val(
                                format!(
                                    "invalid operation {a} {} {b} (mismatched types {} and {})",
                                    op.as_str(),
                                    type_name(&a),
                                    type_name(&b)
                                ),
                                span,
                            );
                        }
                    },
                };
                use std::cmp::Ordering::*;
                Val::Bool(match op {
                    BinOp::Lt => ord == Less,
                    BinOp::Le => ord != Greater,
                    BinOp::Gt => ord == Greater,
                    _ => ord != Less,
                })
            }
            BinOp::Match | BinOp::NotMatch => {
                let (Val::Str(s), Val::Str(re)) = (&a, &b) else {
                    return bot_val(format!("invalid operation {a} {} {b}", op.as_str()), span);
                };
                match regex::Regex::new(re) {
                    Ok(r) => Val::Bool(r.is_match(s) == (op == BinOp::Match)),
                    Err(e) => bot_val(format!("invalid regular expression: {e}"), span),
                }
            }
            BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div => self.arith(op, a, b, span),
            _ => bot_val("unsupported operator", span),
        }
    }

    fn arith(&mut self, op: BinOp, a: Val, b: Val, span: Span) -> Val {
        match (&a, &b) {
            (Val::Int(x), Val::Int(y)) => {
                let r = match op {
                    BinOp::Add => x.checked_add(*y),
                    BinOp::Sub => x.checked_sub(*y),
                    BinOp::Mul => x.checked_mul(*y),
                    _ => {
                        if *y == 0 {
                            return bot_val("division by zero", span);
                        }
                        return Val::Float(*x as f64 / *y as f64);
                    }
                };
                r.map(Val::Int)
                    .unwrap_or_else(|| bot_val("integer overflow", span))
            }
            (Val::Int(_) | Val::Float(_), Val::Int(_) | Val::Float(_)) => {
                let (x, y) = (a.as_f64().unwrap_or(0.0), b.as_f64().unwrap_or(0.0));
                Val::Float(match op {
                    BinOp::Add => x + y,
                    BinOp::Sub => x - y,
                    BinOp::Mul => x * y,
                    _ => {
                        if y == 0.0 {
                            return bot_val("division by zero", span);
                        }
                        x / y
                    }
                })
            }
            (Val::Str(x), Val::Str(y)) if op == BinOp::Add => {
                if let Err(b) = self.check_bytes(x.len() + y.len(), span) {
                    return b;
                }
                let mut s = String::with_capacity(x.len() + y.len());
                s.push_str(x);
                s.push_str(y);
                Val::Str(Rc::from(s.as_str()))
            }
            (Val::Bytes(x), Val::Bytes(y)) if op == BinOp::Add => {
                let mut s = x.to_vec();
                s.extend_from_slice(y);
                Val::Bytes(Rc::from(s.as_slice()))
            }
            (Val::Str(x), Val::Int(n)) | (Val::Int(n), Val::Str(x)) if op == BinOp::Mul => {
                if *n < 0 {
                    return bot_val("negative repeat count", span);
                }
                if let Err(b) = self.check_bytes(x.len().saturating_mul(*n as usize), span) {
                    return b;
                }
                Val::Str(Rc::from(x.repeat(*n as usize).as_str()))
            }
            (Val::Vertex(x), Val::Vertex(y)) if op == BinOp::Add => {
                let (x, y) = (*x, *y);
                let ex = self.list_elems(x);
                let ey = self.list_elems(y);
                match (ex, ey) {
                    (Some(mut ex), Some(ey)) => {
                        ex.extend(ey);
                        let vals = ex.into_iter().map(Val::Vertex).collect();
                        self.make_list(vals)
                    }
                    _ => bot_val("invalid operation + on structs", span),
                }
            }
            (Val::Vertex(x), Val::Int(n)) | (Val::Int(n), Val::Vertex(x)) if op == BinOp::Mul => {
                let x = *x;
                let Some(ex) = self.list_elems(x) else {
                    return bot_val("invalid operation * on struct", span);
                };
                if *n < 0 {
                    return bot_val("negative repeat count", span);
                }
                let mut vals = Vec::new();
                for _ in 0..*n {
                    for e in &ex {
                        vals.push(Val::Vertex(*e));
                    }
                    if vals.len() > 1_000_000 {
                        return bot_val("list too large", span);
                    }
                }
                self.make_list(vals)
            }
            _ => bot_val(
                format!(
                    "invalid operation {a} {} {b} (mismatched types {} and {})",
                    op.as_str(),
                    type_name(&a),
                    type_name(&b)
                ),
                span,
            ),
        }
    }

    pub fn list_elems(&mut self, w: VId) -> Option<Vec<VId>> {
        self.expand(w);
        let w = self.deref(w);
        if self.v(w).is_list {
            Some(self.v(w).elems.clone())
        } else {
            None
        }
    }

    pub fn values_equal(&mut self, a: &Val, b: &Val) -> Result<bool, String> {
        Ok(match (a, b) {
            (Val::Null, Val::Null) => true,
            (Val::Bool(x), Val::Bool(y)) => x == y,
            (Val::Str(x), Val::Str(y)) => x == y,
            (Val::Bytes(x), Val::Bytes(y)) => x == y,
            (Val::Int(_) | Val::Float(_), Val::Int(_) | Val::Float(_)) => a.as_f64() == b.as_f64(),
            (Val::Vertex(x), Val::Vertex(y)) => {
                let (x, y) = (*x, *y);
                let ja = self
                    .json_of(&Val::Vertex(x), 0)
                    .map_err(|e| e.msg.clone())?;
                let jb = self
                    .json_of(&Val::Vertex(y), 0)
                    .map_err(|e| e.msg.clone())?;
                ja == jb
            }
            (Val::Null, _) | (_, Val::Null) => false,
            _ => {
                if a.kind_bits() & b.kind_bits() == 0 {
                    return Err(format!(
                        "invalid operation {a} == {b} (mismatched types {} and {})",
                        type_name(a),
                        type_name(b)
                    ));
                }
                false
            }
        })
    }
}

/// `a`, `a.b.c`: a reference by names, none of them a definition.
/// `undefined field: NAME`, built without the formatter: selecting a missing field is common
/// (every `x.y != _|_` test of an absent `y`) and its message is usually thrown away.
fn undefined_field(name: &str) -> String {
    concat_msg("undefined field: ", name)
}

/// `prefix` followed by `name`, without the formatter (messages of the incomplete values that
/// existence tests such as `x.y != _|_` make and discard).
fn concat_msg(prefix: &str, name: &str) -> String {
    let mut m = String::with_capacity(prefix.len() + name.len());
    m.push_str(prefix);
    m.push_str(name);
    m
}

/// A string, number, boolean or null literal: its value needs no environment and its
/// evaluation cannot fail ([`Ev::scalar_lit`]).
#[inline]
fn is_scalar_lit(e: &Expr) -> bool {
    matches!(
        e.kind,
        ExprKind::Str(_)
            | ExprKind::Int(_)
            | ExprKind::Float(_)
            | ExprKind::Bool(_)
            | ExprKind::Null
    )
}

fn is_plain_ref(e: &Expr) -> bool {
    match &e.kind {
        ExprKind::Ident(n) => label_kind(n) != FK::Def,
        ExprKind::Selector(x, n, _) => label_kind(n) != FK::Def && is_plain_ref(x),
        _ => false,
    }
}

fn target_of(v: &Val) -> Target {
    match v {
        Val::Vertex(w) => Target::Vertex(*w),
        other => Target::Val(other.clone()),
    }
}

fn flatten_disj<'a>(e: &'a Expr, out: &mut impl FnMut(&'a Expr, bool)) {
    match &e.kind {
        ExprKind::Binary(BinOp::Or, a, b) => {
            flatten_disj(a, out);
            flatten_disj(b, out);
        }
        ExprKind::Unary(UnaryOp::Default, x) => out(x, true),
        ExprKind::Paren(x) if matches!(x.kind, ExprKind::Unary(UnaryOp::Default, _)) => {
            flatten_disj(x, out)
        }
        _ => out(e, false),
    }
}

fn atoms_equal(a: &Val, b: &Val) -> bool {
    match (a, b) {
        (Val::Top, Val::Top) => true,
        (Val::Null, Val::Null) => true,
        (Val::Bool(x), Val::Bool(y)) => x == y,
        (Val::Int(x), Val::Int(y)) => x == y,
        (Val::Float(x), Val::Float(y)) => x == y,
        (Val::Str(x), Val::Str(y)) => x == y,
        (Val::Bytes(x), Val::Bytes(y)) => x == y,
        (Val::Atom(x), Val::Atom(y)) => {
            x.kinds == y.kinds && x.bounds.is_empty() && y.bounds.is_empty()
        }
        _ => false,
    }
}

fn check_bound(b: &Bound, v: &Val) -> Result<bool, ()> {
    use std::cmp::Ordering::*;
    let ord = |x: &Val, y: &Val| -> Option<std::cmp::Ordering> {
        match (x, y) {
            (Val::Str(a), Val::Str(b)) => Some(a.cmp(b)),
            (Val::Bytes(a), Val::Bytes(b)) => Some(a.cmp(b)),
            _ => x.as_f64()?.partial_cmp(&y.as_f64()?),
        }
    };
    Ok(match &b.op {
        BoundOp::Lt => ord(v, &b.val).ok_or(())? == Less,
        BoundOp::Le => ord(v, &b.val).ok_or(())? != Greater,
        BoundOp::Gt => ord(v, &b.val).ok_or(())? == Greater,
        BoundOp::Ge => ord(v, &b.val).ok_or(())? != Less,
        BoundOp::Ne => match (v, &b.val) {
            (Val::Int(_) | Val::Float(_), Val::Int(_) | Val::Float(_)) => {
                v.as_f64() != b.val.as_f64()
            }
            (Val::Str(x), Val::Str(y)) => x != y,
            (Val::Bool(x), Val::Bool(y)) => x != y,
            (Val::Null, Val::Null) => false,
            (Val::Bytes(x), Val::Bytes(y)) => x != y,
            _ => true,
        },
        BoundOp::Match | BoundOp::NotMatch => {
            let s = match v {
                Val::Str(s) => s.to_string(),
                Val::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
                _ => return Err(()),
            };
            let m = b.re.as_ref().map(|r| r.is_match(&s)).unwrap_or(false);
            m == matches!(b.op, BoundOp::Match)
        }
        BoundOp::Call(args) => crate::builtins::check_validator(&b.val, v, &args[..])?,
    })
}

fn conflict(a: &Val, b: &Val) -> Val {
    let (ta, tb) = (type_name(a), type_name(b));
    let msg = if ta != tb && (a.kind_bits() & b.kind_bits() == 0) {
        format!("conflicting values {a} and {b} (mismatched types {ta} and {tb})")
    } else {
        format!("conflicting values {a} and {b}")
    };
    Val::Bottom(Rc::new(Bot {
        msg,
        incomplete: false,
        spans: vec![],
        path: None,
    }))
}

/// Unifies two scalar-ish values (no vertices).
/// A bound applied to a single bound (`<(<3)`, `!=(!=3)`, `!=(<3)`): CUE simplifies these.
fn bound_of_bound(op: UnaryOp, v: &Val) -> Option<Val> {
    let Val::Atom(a) = v else { return None };
    let [inner] = a.bounds.as_slice() else {
        return None;
    };
    let k = inner.val.clone();
    if !matches!(k, Val::Int(_) | Val::Float(_)) {
        return None;
    }
    let mk = |op: BoundOp| {
        Val::Atom(Rc::new(Atom {
            kinds: a.kinds,
            bounds: vec![Bound {
                op,
                val: k.clone(),
                re: None,
            }],
        }))
    };
    let any = Val::Atom(Rc::new(Atom {
        kinds: a.kinds,
        bounds: vec![],
    }));
    use BoundOp as B;
    Some(match (op, &inner.op) {
        (UnaryOp::Ne, B::Ne) => k,
        (UnaryOp::Ne, B::Lt) => mk(B::Ge),
        (UnaryOp::Ne, B::Le) => mk(B::Gt),
        (UnaryOp::Ne, B::Gt) => mk(B::Le),
        (UnaryOp::Ne, B::Ge) => mk(B::Lt),
        (UnaryOp::Lt, B::Lt | B::Le) | (UnaryOp::Le, B::Lt) => mk(B::Lt),
        (UnaryOp::Le, B::Le) => mk(B::Le),
        (UnaryOp::Gt, B::Gt | B::Ge) | (UnaryOp::Ge, B::Gt) => mk(B::Gt),
        (UnaryOp::Ge, B::Ge) => mk(B::Ge),
        (UnaryOp::Lt | UnaryOp::Le | UnaryOp::Gt | UnaryOp::Ge, _) => any,
        _ => return None,
    })
}

/// `(expr).x` or `(expr)[i]` where the innermost base is not a reference: a selection out of
/// an inline value.
fn is_inline_selection(e: &Expr) -> bool {
    let mut x = e;
    let mut selected = false;
    loop {
        match &x.kind {
            ExprKind::Selector(b, _, _) | ExprKind::Index(b, _) => {
                selected = true;
                x = b;
            }
            ExprKind::Ident(_) => return false,
            _ => return selected,
        }
    }
}

pub fn unify_atoms(a: &Val, b: &Val) -> Val {
    match (a, b) {
        (Val::Top, x) | (x, Val::Top) => x.clone(),
        (Val::Bottom(x), _) | (_, Val::Bottom(x)) => Val::Bottom(x.clone()),
        (Val::Atom(x), Val::Atom(y)) => {
            let kinds = x.kinds & y.kinds;
            if kinds == 0 {
                return conflict(a, b);
            }
            let mut bounds = x.bounds.clone();
            bounds.extend(y.bounds.iter().cloned());
            // contradictory numeric ranges are an error
            let mut lo: Option<(f64, bool)> = None;
            let mut hi: Option<(f64, bool)> = None;
            for b in &bounds {
                let Some(n) = b.val.as_f64() else { continue };
                match b.op {
                    BoundOp::Ge | BoundOp::Gt => {
                        let strict = matches!(b.op, BoundOp::Gt);
                        if lo.is_none_or(|(l, _)| n > l) {
                            lo = Some((n, strict));
                        }
                    }
                    BoundOp::Le | BoundOp::Lt => {
                        let strict = matches!(b.op, BoundOp::Lt);
                        if hi.is_none_or(|(h, _)| n < h) {
                            hi = Some((n, strict));
                        }
                    }
                    _ => {}
                }
            }
            {
                // string and byte-string ranges (compared bytewise)
                let mut slo: Option<(&[u8], bool, bool)> = None;
                let mut shi: Option<(&[u8], bool, bool)> = None;
                for b in &bounds {
                    let (x, is_str): (&[u8], bool) = match &b.val {
                        Val::Str(x) => (x.as_bytes(), true),
                        Val::Bytes(x) => (x, false),
                        _ => continue,
                    };
                    match b.op {
                        BoundOp::Ge | BoundOp::Gt if slo.is_none_or(|(l, _, _)| x > l) => {
                            slo = Some((x, matches!(b.op, BoundOp::Gt), is_str));
                        }
                        BoundOp::Le | BoundOp::Lt if shi.is_none_or(|(h, _, _)| x < h) => {
                            shi = Some((x, matches!(b.op, BoundOp::Lt), is_str));
                        }
                        _ => {}
                    }
                }
                if let (Some((l, ls, lstr)), Some((h, hs, hstr))) = (slo, shi) {
                    if lstr == hstr && (l > h || (l == h && (ls || hs))) {
                        return conflict(a, b);
                    }
                    if l == h
                        && lstr
                        && hstr
                        && kinds & K_STRING != 0
                        && bounds.iter().all(|b| {
                            !matches!(
                                b.op,
                                BoundOp::Ne | BoundOp::Match | BoundOp::NotMatch | BoundOp::Call(_)
                            )
                        })
                    {
                        return Val::Str(Rc::from(String::from_utf8_lossy(l).as_ref()));
                    }
                }
            }
            if let (Some((l, ls)), Some((h, hs))) = (lo, hi) {
                if l > h || (l == h && (ls || hs)) {
                    return conflict(a, b);
                }
                if kinds == K_INT {
                    let first = if ls { l.floor() + 1.0 } else { l.ceil() };
                    let last = if hs { h.ceil() - 1.0 } else { h.floor() };
                    if first > last {
                        return conflict(a, b);
                    }
                    if first == last
                        && first.abs() < 9.0e15
                        && bounds.iter().all(|b| {
                            !matches!(
                                b.op,
                                BoundOp::Ne | BoundOp::Match | BoundOp::NotMatch | BoundOp::Call(_)
                            )
                        })
                    {
                        return Val::Int(first as i64);
                    }
                }
                if l == h
                    && kinds & K_NUMBER != 0
                    && bounds.iter().all(|b| {
                        !matches!(
                            b.op,
                            BoundOp::Ne | BoundOp::Match | BoundOp::NotMatch | BoundOp::Call(_)
                        )
                    })
                {
                    let v = bounds.iter().find_map(|b| {
                        if b.val.as_f64() == Some(l) {
                            Some(b.val.clone())
                        } else {
                            None
                        }
                    });
                    if let Some(v) = v {
                        if kinds & v.kind_bits() != 0 {
                            return v;
                        }
                    }
                }
            }
            Val::Atom(Rc::new(Atom { kinds, bounds }))
        }
        (Val::Atom(x), v) | (v, Val::Atom(x)) => {
            if v.is_concrete_scalar() {
                if x.kinds & v.kind_bits() == 0 {
                    return conflict(a, b);
                }
                for bd in &x.bounds {
                    match check_bound(bd, v) {
                        Ok(true) => {}
                        Ok(false) => {
                            let single = Val::Atom(Rc::new(Atom {
                                kinds: bound_kinds(bd),
                                bounds: vec![bd.clone()],
                            }));
                            let why = if matches!(bd.op, BoundOp::Call(_)) {
                                "does not satisfy"
                            } else {
                                "out of bound"
                            };
                            return Val::Bottom(Rc::new(Bot {
                                msg: format!("invalid value {v} ({why} {single})"),
                                incomplete: false,
                                spans: vec![],
                                path: None,
                            }));
                        }
                        Err(()) => return conflict(a, b),
                    }
                }
                v.clone()
            } else {
                conflict(a, b)
            }
        }
        (x, y) => {
            if atoms_equal(x, y) {
                x.clone()
            } else {
                conflict(a, b)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The arena's first run (sized up front) and the chunks after it: every vertex is found
    /// where it was made, across the run's end and the chunks' boundaries, and made in place.
    #[test]
    fn vertex_arena_across_run_and_chunks() {
        for head in [0, 5, CHUNK + 3] {
            let mut vs = Vertices::default();
            vs.reserve(head);
            let n = head + 2 * CHUNK + 7;
            for i in 0..n {
                vs.push_new();
                assert_eq!(vs.len(), i + 1);
                vs[i].list_closed = Some(i as u32);
            }
            for i in 0..n {
                assert_eq!(vs[i].list_closed, Some(i as u32), "head {head}, vertex {i}");
            }
            // the first run never grew: later vertices went to chunks
            assert_eq!(vs.head.len(), vs.head.capacity());
        }
    }

    #[test]
    fn unify_scalars() {
        let int = Val::Atom(Rc::new(Atom {
            kinds: K_INT,
            bounds: vec![],
        }));
        assert!(matches!(unify_atoms(&int, &Val::Int(3)), Val::Int(3)));
        assert!(matches!(
            unify_atoms(&int, &Val::Str(Rc::from("x"))),
            Val::Bottom(_)
        ));
        assert!(matches!(
            unify_atoms(&Val::Int(1), &Val::Int(2)),
            Val::Bottom(_)
        ));
    }
}
