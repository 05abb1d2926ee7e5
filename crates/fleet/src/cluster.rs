//! One cluster: a kube client and what discovery told us about its kinds.

use crate::Error;
use crate::cache::{ChangeSink, KindCache};
use kube::api::{
    Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PropagationPolicy,
};
use kube::core::GroupVersionKind;
use kube::discovery::{ApiCapabilities, ApiResource, Scope};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The hub's name as a cluster.
pub const LOCAL: &str = "local";

/// The field manager of everything Sailplane applies.
pub const FIELD_MANAGER: &str = "sailplane";

/// Identifies one object in one cluster.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {}/{}", self.kind, ns, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// An object as Sailplane writes it: its namespace settled (the resolved one for namespaced
/// kinds, none for cluster-scoped ones) and the fields only the server sets removed.
fn write_body(object: &Value, r: &ObjectRef, namespaced: bool) -> Value {
    let mut body = object.clone();
    if let Some(meta) = body.get_mut("metadata").and_then(Value::as_object_mut) {
        if namespaced {
            meta.insert(
                "namespace".into(),
                Value::String(r.namespace.clone().unwrap_or_default()),
            );
        } else {
            meta.remove("namespace");
        }
        for k in ["uid", "creationTimestamp", "managedFields", "generation"] {
            meta.remove(k);
        }
    }
    body
}

/// What a delete did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeleteOutcome {
    Deleted,
    AlreadyGone,
}

pub struct Cluster {
    name: String,
    client: kube::Client,
    kinds: Mutex<HashMap<(String, String), (ApiResource, ApiCapabilities)>>,
    /// Watch caches by (apiVersion, kind), started on first use.
    caches: Mutex<HashMap<(String, String), Arc<KindCache>>>,
    /// The resourceVersion of each object as this process last wrote or read it.
    seen: Mutex<HashMap<ObjectRef, String>>,
    sink: ChangeSink,
}

impl Cluster {
    pub fn new(name: &str, client: kube::Client) -> Cluster {
        Cluster::with_sink(name, client, ChangeSink::default())
    }

    pub(crate) fn with_sink(name: &str, client: kube::Client, sink: ChangeSink) -> Cluster {
        Cluster {
            name: name.to_string(),
            client,
            kinds: Mutex::default(),
            caches: Mutex::default(),
            seen: Mutex::default(),
            sink,
        }
    }

    /// Remember the version of an object as this process last saw it (`None`: it is gone).
    fn saw(&self, r: &ObjectRef, object: Option<&Value>) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        match object
            .and_then(|o| o.pointer("/metadata/resourceVersion"))
            .and_then(Value::as_str)
        {
            Some(rv) => {
                seen.insert(r.clone(), rv.to_string());
            }
            None => {
                seen.remove(r);
            }
        }
    }

    /// Read an object from this cluster's watch cache of its kind (started now if it is not
    /// running yet), or from the API server when the cache cannot say for sure (see
    /// [`Cluster::cached`]). `Ok(None)` only when the server says it does not exist.
    pub async fn get_cached(&self, r: &ObjectRef) -> Result<Option<Value>, Error> {
        match self.cached(r).await? {
            Some(v) => Ok(Some(v)),
            None => self.get(r).await,
        }
    }

    /// The object as this cluster's watch cache of its kind holds it, starting the cache if it
    /// is not running yet. `None` whenever the cache cannot say for sure: it has not listed the
    /// kind yet, its watch failed and has not delivered since, it does not hold the object (one
    /// without the `app.oam.dev/name` label, or one it has not seen yet), or it holds another
    /// version than the one this process last wrote or read (the cache is behind). `None` never
    /// means the object is gone.
    pub async fn cached(&self, r: &ObjectRef) -> Result<Option<Value>, Error> {
        let (ar, _) = self.resolve(&r.api_version, &r.kind).await?;
        let cache = {
            let mut caches = self.caches.lock().unwrap_or_else(|p| p.into_inner());
            caches
                .entry((r.api_version.clone(), r.kind.clone()))
                .or_insert_with(|| {
                    Arc::new(KindCache::start(&self.name, &self.client, &ar, &self.sink))
                })
                .clone()
        };
        let Some(v) = cache.get(r.namespace.as_deref(), &r.name) else {
            return Ok(None);
        };
        let rv = v
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str);
        let seen = self
            .seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(r)
            .cloned();
        Ok((seen.is_none() || seen.as_deref() == rv).then_some(v))
    }

    /// How many watch caches this cluster runs.
    pub fn cached_kinds(&self) -> usize {
        self.caches.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn client(&self) -> &kube::Client {
        &self.client
    }

    async fn resolve(
        &self,
        api_version: &str,
        kind: &str,
    ) -> Result<(ApiResource, ApiCapabilities), Error> {
        let key = (api_version.to_string(), kind.to_string());
        if let Some(found) = self
            .kinds
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return Ok(found.clone());
        }
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", api_version),
        };
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let found = kube::discovery::pinned_kind(&self.client, &gvk)
            .await
            .map_err(|e| self.discovery_error(e, api_version, kind))?;
        self.kinds
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, found.clone());
        Ok(found)
    }

    /// The apiVersion and kind of a resource type as people write it (`deployment`,
    /// `deployments`, `deploy`, `configmap`) in an API group (`""` is the core group), from the
    /// cluster's discovery.
    pub async fn kind_of_resource(
        &self,
        group: &str,
        resource: &str,
    ) -> Result<(String, String), Error> {
        let want = resource.to_ascii_lowercase();
        let found = kube::discovery::oneshot::group(&self.client, group)
            .await
            .map_err(|e| self.discovery_error(e, group, resource))?;
        for (ar, _caps) in found.recommended_resources() {
            let names = [ar.plural.to_ascii_lowercase(), ar.kind.to_ascii_lowercase()];
            if names.contains(&want) {
                return Ok((ar.api_version.clone(), ar.kind.clone()));
            }
        }
        Err(Error::UnknownKind {
            cluster: self.name.clone(),
            api_version: if group.is_empty() {
                "v1".into()
            } else {
                group.into()
            },
            kind: resource.into(),
        })
    }

    /// A discovery failure: "not served" when the cluster does not know the kind or group, the
    /// API error otherwise.
    fn discovery_error(&self, e: kube::Error, api_version: &str, kind: &str) -> Error {
        match e {
            kube::Error::Api(s) if s.code == 404 => Error::UnknownKind {
                cluster: self.name.clone(),
                api_version: api_version.into(),
                kind: kind.into(),
            },
            kube::Error::Discovery(_) => Error::UnknownKind {
                cluster: self.name.clone(),
                api_version: api_version.into(),
                kind: kind.into(),
            },
            source => Error::Api {
                cluster: self.name.clone(),
                verb: "discover",
                what: format!("{api_version} {kind}"),
                source: Box::new(source),
            },
        }
    }

    /// Forget discovery results, after a CRD was installed or removed.
    pub fn forget_kinds(&self) {
        self.kinds.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    async fn api(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
    ) -> Result<(Api<DynamicObject>, bool), Error> {
        let (ar, caps) = self.resolve(api_version, kind).await?;
        let namespaced = caps.scope == Scope::Namespaced;
        let api = match (namespaced, namespace) {
            (true, Some(ns)) => Api::namespaced_with(self.client.clone(), ns, &ar),
            (true, None) => Api::default_namespaced_with(self.client.clone(), &ar),
            (false, _) => Api::all_with(self.client.clone(), &ar),
        };
        Ok((api, namespaced))
    }

    /// Whether objects of this kind live in a namespace.
    pub async fn is_namespaced(&self, api_version: &str, kind: &str) -> Result<bool, Error> {
        let (_, caps) = self.resolve(api_version, kind).await?;
        Ok(caps.scope == Scope::Namespaced)
    }

    /// Server-side apply `object` as the `sailplane` field manager. Namespaced objects without a
    /// namespace go to `default_namespace`; cluster-scoped objects lose any namespace. With
    /// `force`, fields owned by other managers are taken over.
    pub async fn apply(
        &self,
        object: &Value,
        default_namespace: &str,
        force: bool,
    ) -> Result<Value, Error> {
        let r = self.object_ref(object, default_namespace).await?;
        let (api, namespaced) = self
            .api(&r.api_version, &r.kind, r.namespace.as_deref())
            .await?;
        let mut body = write_body(object, &r, namespaced);
        if let Some(obj) = body.as_object_mut() {
            // Neither the version nor the status goes into an apply configuration.
            if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.remove("resourceVersion");
            }
            obj.remove("status");
        }
        let mut params = PatchParams::apply(FIELD_MANAGER);
        params.force = force;
        let applied = api
            .patch(&r.name, &params, &Patch::Apply(&body))
            .await
            .map_err(|source| Error::Api {
                cluster: self.name.clone(),
                verb: "apply",
                what: r.to_string(),
                source: Box::new(source),
            })?;
        let applied = serde_json::to_value(applied).map_err(|_| Error::Invalid {
            cluster: self.name.clone(),
            field: "serialisable body",
        })?;
        self.saw(&r, Some(&applied));
        Ok(applied)
    }

    /// Where `object` lives, with the namespace defaulted for namespaced kinds.
    pub async fn object_ref(
        &self,
        object: &Value,
        default_namespace: &str,
    ) -> Result<ObjectRef, Error> {
        let field = |f: &'static str| Error::Invalid {
            cluster: self.name.clone(),
            field: f,
        };
        let api_version = object
            .get("apiVersion")
            .and_then(Value::as_str)
            .ok_or_else(|| field("apiVersion"))?;
        let kind = object
            .get("kind")
            .and_then(Value::as_str)
            .ok_or_else(|| field("kind"))?;
        let name = object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| field("metadata.name"))?;
        let namespaced = self.is_namespaced(api_version, kind).await?;
        let namespace = if namespaced {
            Some(
                object
                    .pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    .filter(|n| !n.is_empty())
                    .unwrap_or(default_namespace)
                    .to_string(),
            )
        } else {
            None
        };
        Ok(ObjectRef {
            api_version: api_version.into(),
            kind: kind.into(),
            namespace,
            name: name.into(),
        })
    }

    /// Read an object. `Ok(None)` only when the server says it does not exist.
    pub async fn get(&self, r: &ObjectRef) -> Result<Option<Value>, Error> {
        let (api, _) = self
            .api(&r.api_version, &r.kind, r.namespace.as_deref())
            .await?;
        match api.get_opt(&r.name).await {
            Ok(Some(o)) => {
                let v = serde_json::to_value(o).ok();
                self.saw(r, v.as_ref());
                Ok(v)
            }
            Ok(None) => {
                self.saw(r, None);
                Ok(None)
            }
            Err(source) => Err(Error::Api {
                cluster: self.name.clone(),
                verb: "get",
                what: r.to_string(),
                source: Box::new(source),
            }),
        }
    }

    /// List objects of a kind by label selector, in one namespace or all.
    pub async fn list(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        selector: &str,
    ) -> Result<Vec<Value>, Error> {
        let (ar, caps) = self.resolve(api_version, kind).await?;
        let api: Api<DynamicObject> = match (caps.scope == Scope::Namespaced, namespace) {
            (true, Some(ns)) => Api::namespaced_with(self.client.clone(), ns, &ar),
            _ => Api::all_with(self.client.clone(), &ar),
        };
        let list = api
            .list(&ListParams::default().labels(selector))
            .await
            .map_err(|source| Error::Api {
                cluster: self.name.clone(),
                verb: "list",
                what: format!("{api_version} {kind}"),
                source: Box::new(source),
            })?;
        // List items come without apiVersion and kind; put them back so each item stands alone.
        Ok(list
            .items
            .into_iter()
            .filter_map(|o| serde_json::to_value(o).ok())
            .map(|mut v| {
                if let Some(m) = v.as_object_mut() {
                    m.insert("apiVersion".into(), Value::String(ar.api_version.clone()));
                    m.insert("kind".into(), Value::String(ar.kind.clone()));
                }
                v
            })
            .collect())
    }

    /// Delete an object; its dependents go in the background.
    pub async fn delete(&self, r: &ObjectRef) -> Result<DeleteOutcome, Error> {
        self.delete_with(r, PropagationPolicy::Background).await
    }

    /// Replace an object as a whole (PUT, as the `sailplane` field manager): fields that the
    /// object does not list are cleared, whoever set them. Creates it when it does not exist.
    pub async fn replace(&self, object: &Value, default_namespace: &str) -> Result<Value, Error> {
        let r = self.object_ref(object, default_namespace).await?;
        let (api, namespaced) = self
            .api(&r.api_version, &r.kind, r.namespace.as_deref())
            .await?;
        let err = |verb: &'static str| {
            let cluster = self.name.clone();
            let what = r.to_string();
            move |source: kube::Error| Error::Api {
                cluster,
                verb,
                what,
                source: Box::new(source),
            }
        };
        let mut body = write_body(object, &r, namespaced);
        let params = kube::api::PostParams {
            field_manager: Some(FIELD_MANAGER.to_string()),
            ..Default::default()
        };
        let live = api.get_opt(&r.name).await.map_err(err("get"))?;
        let written = match live {
            None => {
                let obj: DynamicObject =
                    serde_json::from_value(body).map_err(|_| Error::Invalid {
                        cluster: self.name.clone(),
                        field: "object",
                    })?;
                api.create(&params, &obj).await.map_err(err("create"))?
            }
            Some(live) => {
                if let Some(meta) = body.get_mut("metadata").and_then(Value::as_object_mut) {
                    meta.insert(
                        "resourceVersion".into(),
                        Value::String(live.metadata.resource_version.clone().unwrap_or_default()),
                    );
                }
                if let (Some(status), Some(obj)) = (live.data.get("status"), body.as_object_mut()) {
                    obj.insert("status".into(), status.clone());
                }
                let obj: DynamicObject =
                    serde_json::from_value(body).map_err(|_| Error::Invalid {
                        cluster: self.name.clone(),
                        field: "object",
                    })?;
                api.replace(&r.name, &params, &obj)
                    .await
                    .map_err(err("replace"))?
            }
        };
        let written = serde_json::to_value(written).map_err(|_| Error::Invalid {
            cluster: self.name.clone(),
            field: "serialisable body",
        })?;
        self.saw(&r, Some(&written));
        Ok(written)
    }

    /// A JSON merge patch (RFC 7386) on an object, as the `sailplane` field manager.
    pub async fn merge_patch(&self, r: &ObjectRef, patch: &Value) -> Result<Value, Error> {
        let (api, _) = self
            .api(&r.api_version, &r.kind, r.namespace.as_deref())
            .await?;
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.to_string()),
            ..PatchParams::default()
        };
        let patched = api
            .patch(&r.name, &params, &Patch::Merge(patch))
            .await
            .map_err(|source| Error::Api {
                cluster: self.name.clone(),
                verb: "patch",
                what: r.to_string(),
                source: Box::new(source),
            })?;
        let patched = serde_json::to_value(patched).map_err(|_| Error::Invalid {
            cluster: self.name.clone(),
            field: "serialisable body",
        })?;
        self.saw(r, Some(&patched));
        Ok(patched)
    }

    /// Delete an object with the given propagation of its dependents (`Orphan` leaves them).
    pub async fn delete_with(
        &self,
        r: &ObjectRef,
        propagation: PropagationPolicy,
    ) -> Result<DeleteOutcome, Error> {
        let (api, _) = match self
            .api(&r.api_version, &r.kind, r.namespace.as_deref())
            .await
        {
            Ok(a) => a,
            // The kind is gone with its CRD, and so is every object of it.
            Err(Error::UnknownKind { .. }) => return Ok(DeleteOutcome::AlreadyGone),
            Err(e) => return Err(e),
        };
        let params = DeleteParams {
            propagation_policy: Some(propagation),
            ..DeleteParams::default()
        };
        // Whatever happens, the version seen before is no longer the one to trust.
        self.saw(r, None);
        match api.delete(&r.name, &params).await {
            Ok(_) => Ok(DeleteOutcome::Deleted),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(DeleteOutcome::AlreadyGone),
            Err(source) => Err(Error::Api {
                cluster: self.name.clone(),
                verb: "delete",
                what: r.to_string(),
                source: Box::new(source),
            }),
        }
    }
}
