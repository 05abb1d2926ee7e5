//! The definitions an application may use, each compiled once per revision.

use crate::Error;
use crate::definition::{Definition, DefinitionKind};
use crate::error::suggest;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// A definition with its CUE compiled: the template, and the health and status snippets.
pub struct Compiled {
    pub definition: Definition,
    pub revision: String,
    pub template: cue::Program,
    pub health_policy: Option<cue::Program>,
    pub custom_status: Option<cue::Program>,
    pub details: Option<cue::Program>,
}

impl Compiled {
    /// The name the template was compiled under; error positions name it.
    fn file_name(&self) -> String {
        format!("{}.cue", self.definition.name)
    }

    /// An error of this definition's template made to point at what the user has to fix:
    /// positions in the template become positions in the definition's file (for a definition
    /// read from a file), and an error on a parameter that carries no position (an empty
    /// disjunction, say) gets the line where the parameter is declared. Incomplete errors are
    /// returned as they are.
    pub fn locate(&self, e: cue::Error) -> cue::Error {
        if e.is_incomplete() {
            return e;
        }
        let file = self.file_name();
        let mut positions: Vec<cue::Pos> = e.positions().to_vec();
        if positions.is_empty()
            && let Some(line) = self.declaration_line(e.path())
        {
            positions.push(cue::Pos {
                file: file.clone(),
                line: u32::try_from(line).unwrap_or(u32::MAX),
                col: 1,
            });
        }
        let mapped: Vec<cue::Pos> = positions
            .into_iter()
            .map(|p| match &self.definition.source_lines {
                Some(lines) if p.file == file => match lines.file_line(p.line as usize) {
                    Some(l) => cue::Pos {
                        file: lines.file.clone(),
                        line: u32::try_from(l).unwrap_or(u32::MAX),
                        col: p.col,
                    },
                    None => p,
                },
                _ => p,
            })
            .collect();
        if mapped.as_slice() == e.positions() {
            return e;
        }
        mapped.into_iter().fold(
            cue::Error::new(e.message()).with_path(e.path()),
            |acc, p| acc.with_pos(p),
        )
    }

    /// The template's line (1-based) declaring `parameter.<a>.<b>…`: the declaration of each
    /// segment is looked for after the line of the one before it, starting at `parameter:`.
    fn declaration_line(&self, path: &str) -> Option<usize> {
        let rest = path.strip_prefix("parameter.")?;
        let lines: Vec<&str> = self.definition.template.lines().collect();
        let declares = |line: &str, name: &str| {
            let t = line.trim_start();
            [format!("{name}:"), format!("{name}?:"), format!("{name}!:")]
                .iter()
                .chain([format!("\"{name}\":"), format!("\"{name}\"?:")].iter())
                .any(|p| t.starts_with(p.as_str()))
        };
        let mut at = lines.iter().position(|l| declares(l, "parameter"))?;
        for seg in rest.split('.') {
            // List indexes (`ports.0.port`) are not declarations.
            if seg.parse::<usize>().is_ok() {
                continue;
            }
            at += lines[at..].iter().position(|l| declares(l, seg))?;
        }
        Some(at + 1)
    }
}

/// Compiled definitions by revision hash, shared by every render: an unchanged definition is
/// never compiled twice.
pub struct CompileCache {
    runtime: cue::Runtime,
    compiled: Mutex<HashMap<String, Arc<Compiled>>>,
}

impl Default for CompileCache {
    /// A cache whose runtime knows the `vela/*` packages ([`crate::stdlib`]).
    fn default() -> CompileCache {
        CompileCache::with_runtime(crate::stdlib::runtime())
    }
}

impl CompileCache {
    pub fn with_runtime(runtime: cue::Runtime) -> CompileCache {
        CompileCache {
            runtime,
            compiled: Mutex::default(),
        }
    }

    /// Compile a definition, or return the copy compiled earlier for the same revision.
    pub fn compile(&self, definition: Definition) -> Result<Arc<Compiled>, Error> {
        let revision = definition.revision_hash();
        if let Some(c) = self.lock().get(&revision) {
            return Ok(c.clone());
        }
        let kind = definition.kind.kind_name();
        let err = |source: cue::Error| Error::Compile {
            kind,
            name: definition.name.clone(),
            source: Box::new(source),
        };
        let file = format!("{}.cue", definition.name);
        let template = self
            .runtime
            .compile(&file, &definition.template)
            .map_err(err)?;
        let snippet = |text: Option<&str>, what: &str| -> Result<Option<cue::Program>, Error> {
            text.map(|t| {
                self.runtime
                    .compile(&format!("{}.{what}", definition.name), t)
                    .map_err(err)
            })
            .transpose()
        };
        let health_policy = snippet(definition.health_policy(), "healthPolicy")?;
        let custom_status = snippet(definition.custom_status(), "customStatus")?;
        let details = snippet(definition.details(), "details")?;
        let compiled = Arc::new(Compiled {
            definition,
            revision: revision.clone(),
            template,
            health_policy,
            custom_status,
            details,
        });
        self.lock().insert(revision, compiled.clone());
        Ok(compiled)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Compiled>>> {
        // A poisoned lock only means another render panicked; the map itself is still sound.
        self.compiled.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many distinct definition revisions are compiled.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The set of definitions visible to one application: hub definitions over built-ins.
#[derive(Clone, Default)]
pub struct Catalog {
    entries: BTreeMap<(DefinitionKind, String), Arc<Compiled>>,
}

impl Catalog {
    pub fn new() -> Catalog {
        Catalog::default()
    }

    /// Add a definition, replacing one of the same kind and name.
    pub fn insert(&mut self, compiled: Arc<Compiled>) {
        let key = (compiled.definition.kind, compiled.definition.name.clone());
        self.entries.insert(key, compiled);
    }

    pub fn get(&self, kind: DefinitionKind, name: &str) -> Option<&Arc<Compiled>> {
        self.entries.get(&(kind, name.to_string()))
    }

    /// Look a definition up, with an error that lists the closest names when it is unknown.
    pub fn require(&self, kind: DefinitionKind, name: &str) -> Result<&Arc<Compiled>, Error> {
        self.get(kind, name)
            .ok_or_else(|| Error::UnknownDefinition {
                what: match kind {
                    DefinitionKind::Component => "component type",
                    DefinitionKind::Trait => "trait type",
                    DefinitionKind::Policy => "policy type",
                    DefinitionKind::WorkflowStep => "workflow step type",
                },
                name: name.to_string(),
                hint: suggest(name, self.names(kind)),
            })
    }

    /// Names of the definitions of one kind, sorted.
    pub fn names(&self, kind: DefinitionKind) -> impl Iterator<Item = &str> {
        self.entries
            .keys()
            .filter(move |(k, _)| *k == kind)
            .map(|(_, n)| n.as_str())
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<Compiled>> {
        self.entries.values()
    }
}
