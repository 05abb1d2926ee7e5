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
