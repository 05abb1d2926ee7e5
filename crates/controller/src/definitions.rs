//! The definitions an application may use: the hub's (in `vela-system` and the application's
//! namespace), over the built-ins embedded in the binary.

use crate::Error;
use kube::api::{Api, DynamicObject, ListParams};
use render::catalog::CompileCache;
use render::{Catalog, Definition, DefinitionKind};
use std::sync::Arc;

/// The namespace system definitions live in.
pub const SYSTEM_NAMESPACE: &str = "vela-system";

/// Read every definition visible from `namespace` and compile what is new.
/// Precedence: the application's namespace, then `vela-system`, then the built-ins.
pub async fn load(
    client: &kube::Client,
    cache: &CompileCache,
    builtins: &[Definition],
    namespace: &str,
) -> Result<(Catalog, Vec<String>), Error> {
    let mut catalog = Catalog::new();
    let mut problems = Vec::new();
    for d in builtins {
        catalog.insert(cache.compile(d.clone())?);
    }
    let mut namespaces = vec![SYSTEM_NAMESPACE];
    if namespace != SYSTEM_NAMESPACE {
        namespaces.push(namespace);
    }
    for kind in DefinitionKind::ALL {
        let ar = crate::install::api_resource(kind);
        for ns in &namespaces {
            let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &ar);
            let list = match api.list(&ListParams::default()).await {
                Ok(l) => l,
                // The hub does not serve this kind (yet): it has none of these definitions.
                Err(kube::Error::Api(s)) if s.code == 404 => continue,
                Err(e) => return Err(Error::hub("list", format!("{} in {ns}", kind.plural()))(e)),
            };
            for obj in list.items {
                let json = serde_json::to_value(&obj).unwrap_or_default();
                let compiled = Definition::from_object(&json).and_then(|d| cache.compile(d));
                match compiled {
                    Ok(c) => catalog.insert(c),
                    // A broken definition must not take every application down: the ones that
                    // use it fail with this message, the others go on.
                    Err(e) => problems.push(e.to_string()),
                }
            }
        }
    }
    Ok((catalog, problems))
}

/// The built-in definitions, parsed once.
pub fn builtins() -> Result<Arc<Vec<Definition>>, Error> {
    Ok(Arc::new(render::builtin::definitions()?))
}

/// The hub's definitions from watch caches (every namespace), so that a reconcile reads no
/// definition from the API server and compiles nothing it compiled before: the catalog of a
/// namespace is built again only when a definition visible from it changed.
pub(crate) struct DefinitionWatch {
    stores: Vec<kube::runtime::reflector::Store<DynamicObject>>,
    ready: Arc<std::sync::atomic::AtomicUsize>,
    /// Per namespace: the (kind, namespace, name, resourceVersion) the catalog was built from.
    memo: std::sync::Mutex<Catalogs>,
}

type Fingerprint = Vec<(usize, String, String, String)>;
type Catalogs = std::collections::HashMap<String, (Fingerprint, Arc<(Catalog, Vec<String>)>)>;

impl DefinitionWatch {
    /// Start watching ComponentDefinitions and TraitDefinitions in every namespace.
    pub fn start(client: &kube::Client) -> DefinitionWatch {
        use futures::StreamExt;
        use kube::runtime::{WatchStreamExt, reflector, watcher};
        let ready = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut stores = Vec::new();
        for kind in DefinitionKind::ALL {
            let ar = crate::install::api_resource(kind);
            let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
            let writer = reflector::store::Writer::new(ar.clone());
            let reader = writer.as_reader();
            let stream = watcher::watcher(api, watcher::Config::default())
                .default_backoff()
                .reflect(writer)
                .for_each(|_| futures::future::ready(()));
            tokio::spawn(stream);
            let r = reader.clone();
            let ready = ready.clone();
            tokio::spawn(async move {
                if r.wait_until_ready().await.is_ok() {
                    ready.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            });
            stores.push(reader);
        }
        DefinitionWatch {
            stores,
            ready,
            memo: std::sync::Mutex::default(),
        }
    }

    fn is_ready(&self) -> bool {
        self.ready.load(std::sync::atomic::Ordering::SeqCst) == self.stores.len()
    }

    /// The catalog visible from `namespace` (as [`load`] builds it), and the problems of broken
    /// definitions. Until the caches have synced, read from the API server.
    pub async fn catalog(
        &self,
        client: &kube::Client,
        cache: &CompileCache,
        builtins: &[Definition],
        namespace: &str,
    ) -> Result<Arc<(Catalog, Vec<String>)>, Error> {
        if !self.is_ready() {
            return Ok(Arc::new(load(client, cache, builtins, namespace).await?));
        }
        let mut namespaces = vec![SYSTEM_NAMESPACE];
        if namespace != SYSTEM_NAMESPACE {
            namespaces.push(namespace);
        }
        // In precedence order: kinds, then vela-system before the application's namespace.
        let mut objects = Vec::new();
        for (k, store) in self.stores.iter().enumerate() {
            for ns in &namespaces {
                let mut here: Vec<Arc<DynamicObject>> = store
                    .state()
                    .into_iter()
                    .filter(|o| o.metadata.namespace.as_deref() == Some(*ns))
                    .collect();
                here.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
                objects.extend(here.into_iter().map(|o| (k, o)));
            }
        }
        let fingerprint: Fingerprint = objects
            .iter()
            .map(|(k, o)| {
                (
                    *k,
                    o.metadata.namespace.clone().unwrap_or_default(),
                    o.metadata.name.clone().unwrap_or_default(),
                    o.metadata.resource_version.clone().unwrap_or_default(),
                )
            })
            .collect();
        {
            let memo = self.memo.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((fp, built)) = memo.get(namespace)
                && *fp == fingerprint
            {
                return Ok(built.clone());
            }
        }
        let mut catalog = Catalog::new();
        let mut problems = Vec::new();
        for d in builtins {
            catalog.insert(cache.compile(d.clone())?);
        }
        for (_, obj) in &objects {
            let json = serde_json::to_value(obj.as_ref()).unwrap_or_default();
            match Definition::from_object(&json).and_then(|d| cache.compile(d)) {
                Ok(c) => catalog.insert(c),
                Err(e) => problems.push(e.to_string()),
            }
        }
        let built = Arc::new((catalog, problems));
        self.memo
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(namespace.to_string(), (fingerprint, built.clone()));
        Ok(built)
    }
}
