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
