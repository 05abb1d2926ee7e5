//! The `kube` provider: objects on any registered cluster through the fleet (`cluster: ""` is
//! the hub), in the application's namespace unless the object names another.

use crate::steps::Runner;
use serde_json::{Value, json};
use workflow::task::{Outcome, ProviderError};

/// `kube.#Apply`, `#Patch`, `#Read`, `#List`, `#Delete` (and legacy `op.#Apply` …).
pub(crate) async fn call(
    runner: &Runner<'_>,
    action: &str,
    params: &Value,
) -> Result<Outcome, ProviderError> {
    let fleet = runner.fleet;
    let cluster_name = params.get("cluster").and_then(Value::as_str).unwrap_or("");
    let cluster = fleet
        .cluster_synced(cluster_name)
        .await
        .map_err(|e| ProviderError(e.to_string()))?;
    let ns = runner.app.namespace().to_string();
    let err = |e: fleet::Error| ProviderError(e.to_string());
    let value = params.get("value").cloned().unwrap_or(Value::Null);
    match action {
        "apply" => {
            let mut object = value;
            if let Some(patch) = params.get("patch").filter(|p| !p.is_null()) {
                json_patch::merge(&mut object, patch);
            }
            let applied = cluster.apply(&object, &ns, true).await.map_err(err)?;
            Ok(Outcome::Returns(json!({ "value": applied })))
        }
        "read" => {
            let r = cluster.object_ref(&value, &ns).await.map_err(err)?;
            match cluster.get(&r).await.map_err(err)? {
                Some(live) => Ok(Outcome::Returns(json!({ "value": live }))),
                None => Ok(Outcome::Returns(
                    json!({ "err": format!("{r} not found"), "value": value }),
                )),
            }
        }
        "list" => {
            let resource = params.get("resource").cloned().unwrap_or(Value::Null);
            let api_version = resource
                .get("apiVersion")
                .and_then(Value::as_str)
                .unwrap_or("");
            let kind = resource.get("kind").and_then(Value::as_str).unwrap_or("");
            let filter = params.get("filter");
            let namespace = filter
                .and_then(|f| f.get("namespace"))
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty());
            let selector = filter
                .and_then(|f| f.get("matchingLabels"))
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default();
            let items = cluster
                .list(api_version, kind, namespace, &selector)
                .await
                .map_err(err)?;
            Ok(Outcome::Returns(json!({ "list": {"items": items} })))
        }
        "delete" => {
            let r = cluster.object_ref(&value, &ns).await.map_err(err)?;
            cluster.delete(&r).await.map_err(err)?;
            Ok(Outcome::Returns(Value::Null))
        }
        "patch" => {
            let r = cluster.object_ref(&value, &ns).await.map_err(err)?;
            let Some(mut live) = cluster.get(&r).await.map_err(err)? else {
                return Err(ProviderError(format!("{r} not found, nothing to patch")));
            };
            if let Some(patch) = params.get("patch") {
                json_patch::merge(&mut live, patch);
            }
            if let Some(m) = live.get_mut("metadata").and_then(Value::as_object_mut) {
                m.remove("managedFields");
                m.remove("resourceVersion");
            }
            let applied = cluster.apply(&live, &ns, true).await.map_err(err)?;
            Ok(Outcome::Returns(json!({ "result": applied })))
        }
        "apply-in-parallel" => {
            let Value::Array(objects) = value else {
                return Err(ProviderError(
                    "kube.apply-in-parallel: value must be a list of objects".into(),
                ));
            };
            let applied =
                futures::future::try_join_all(objects.iter().map(|o| cluster.apply(o, &ns, true)))
                    .await
                    .map_err(err)?;
            Ok(Outcome::Returns(json!({ "value": applied })))
        }
        other => Err(ProviderError(format!(
            "kube has no operation {other:?} (apply, apply-in-parallel, patch, read, list, delete)"
        ))),
    }
}
