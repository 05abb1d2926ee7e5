//! Steps defined in CUE (WorkflowStepDefinitions): the template runs in `workflow::task` and its
//! operations are served here: `kube` through the fleet (any registered cluster), `http` with a
//! client that has timeouts, `builtin` and `util` by the workflow crate.

use crate::steps::Runner;
use futures::future::BoxFuture;
use http_body_util::{BodyExt, Full};
use render::DefinitionKind;
use serde_json::{Value, json};
use std::time::Duration;
use workflow::task::{self, Builtins, Operation, Outcome, ProviderError, TaskResult};
use workflow::{PlannedStep, StepOutcome};

/// How long one HTTP request of a step may take unless the step says otherwise.
const HTTP_TIMEOUT: Duration = Duration::from_secs(30);
/// The most of a response body a step reads.
const HTTP_MAX_BODY: usize = 4 * 1024 * 1024;

/// Run a step whose type is a WorkflowStepDefinition.
pub(crate) async fn run(runner: &Runner<'_>, step: &PlannedStep) -> StepOutcome {
    let Some(def) = runner.catalog.iter().find(|c| {
        c.definition.kind == DefinitionKind::WorkflowStep && c.definition.name == step.type_
    }) else {
        let known: Vec<&str> = runner
            .catalog
            .iter()
            .filter(|c| c.definition.kind == DefinitionKind::WorkflowStep)
            .map(|c| c.definition.name.as_str())
            .collect();
        return StepOutcome::Failed {
            reason: "UnknownStepType".into(),
            message: format!(
                "step {}: no WorkflowStepDefinition {:?} (built in: apply-component, deploy, suspend; defined: {})",
                step.name,
                step.type_,
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ),
        };
    };
    let app = runner.app;
    let parameter = match &step.properties {
        Value::Null => json!({}),
        p => p.clone(),
    };
    let context = json!({
        "name": app.name(),
        "appName": app.name(),
        "namespace": app.namespace(),
        "stepName": step.name,
        "stepSessionID": step.name,
        "appRevision": runner.render_ctx.app_revision,
        "appRevisionNum": runner.revision_num,
        "workflowName": app.name(),
    });
    let providers = Builtins {
        next: Remote { runner },
    };
    let result = task::run(
        &def.template,
        &[("parameter", &parameter), ("context", &context)],
        &providers,
    )
    .await;
    match result {
        Ok(TaskResult::Done { messages, .. }) => StepOutcome::Succeeded {
            message: messages.join("; "),
        },
        Ok(TaskResult::Wait { message }) => StepOutcome::Running { message },
        Ok(TaskResult::Suspend { message, .. }) => StepOutcome::Suspended {
            message: if message.is_empty() {
                "waiting for approval: sail workflow resume".into()
            } else {
                message
            },
        },
        Ok(TaskResult::Fail { message }) => StepOutcome::Failed {
            reason: "Failed".into(),
            message: format!("step {} ({}): {message}", step.name, step.type_),
        },
        Err(e) => StepOutcome::Failed {
            reason: "Execute".into(),
            message: format!("step {} ({}): {e}", step.name, step.type_),
        },
    }
}

/// `kube` and `http` operations.
struct Remote<'r, 'a> {
    runner: &'r Runner<'a>,
}

impl task::Providers for Remote<'_, '_> {
    fn call<'a>(&'a self, op: &'a Operation) -> BoxFuture<'a, Result<Outcome, ProviderError>> {
        Box::pin(async move {
            match (op.provider.as_str(), op.action.as_str()) {
                ("kube", action) => self.kube(action, &op.params).await,
                ("http", "do") => http_do(&op.params).await,
                (p, a) => Err(ProviderError(format!(
                    "provider {p:?} has no operation {a:?} in Sailplane yet"
                ))),
            }
        })
    }
}

impl Remote<'_, '_> {
    async fn kube(&self, action: &str, params: &Value) -> Result<Outcome, ProviderError> {
        let fleet = self.runner.fleet;
        let cluster_name = params.get("cluster").and_then(Value::as_str).unwrap_or("");
        let cluster = fleet
            .cluster_synced(cluster_name)
            .await
            .map_err(|e| ProviderError(e.to_string()))?;
        let ns = self.runner.app.namespace().to_string();
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
            other => Err(ProviderError(format!("kube has no operation {other:?}"))),
        }
    }
}

/// `http.#HTTPDo`: one request, with a timeout (`request.timeout`, default 30 s) and a cap on
/// the response body. TLS server certificates are checked against the system's roots.
async fn http_do(params: &Value) -> Result<Outcome, ProviderError> {
    let method = params
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or("GET");
    let url = params
        .get("url")
        .and_then(Value::as_str)
        .ok_or_else(|| ProviderError("http: url is missing".into()))?;
    let request = params.get("request");
    let timeout = request
        .and_then(|r| r.get("timeout"))
        .and_then(Value::as_str)
        .and_then(humantime_duration)
        .unwrap_or(HTTP_TIMEOUT);
    let body = request
        .and_then(|r| r.get("body"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let mut builder = http::Request::builder()
        .method(method)
        .uri(url)
        .header(http::header::USER_AGENT, "sailplane");
    if let Some(headers) = request
        .and_then(|r| r.get("header"))
        .and_then(Value::as_object)
    {
        for (k, v) in headers {
            if let Some(v) = v.as_str() {
                builder = builder.header(k, v);
            }
        }
    }
    let req = builder
        .body(Full::new(bytes::Bytes::from(body)))
        .map_err(|e| ProviderError(format!("http: bad request to {url}: {e}")))?;
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .map_err(|e| ProviderError(format!("http: no TLS roots: {e}")))?
        .https_or_http()
        .enable_http1()
        .build();
    let client: hyper_util::client::legacy::Client<_, Full<bytes::Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build(connector);
    let exchange = async {
        let resp = client
            .request(req)
            .await
            .map_err(|e| ProviderError(format!("http: {method} {url}: {}", root_cause(&e))))?;
        let status = resp.status().as_u16();
        let mut headers = serde_json::Map::new();
        for (k, v) in resp.headers() {
            let entry = headers
                .entry(k.as_str().to_string())
                .or_insert_with(|| Value::Array(Vec::new()));
            if let (Value::Array(a), Ok(v)) = (entry, v.to_str()) {
                a.push(Value::String(v.to_string()));
            }
        }
        let body = http_body_util::Limited::new(resp.into_body(), HTTP_MAX_BODY)
            .collect()
            .await
            .map_err(|e| ProviderError(format!("http: reading the answer of {url}: {e}")))?
            .to_bytes();
        Ok::<_, ProviderError>(json!({
            "statusCode": status,
            "body": String::from_utf8_lossy(&body),
            "header": headers,
        }))
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(r) => r.map(Outcome::Returns),
        Err(_) => Err(ProviderError(format!(
            "http: {method} {url}: no answer within {}s",
            timeout.as_secs()
        ))),
    }
}

fn humantime_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit())?);
    let n: u64 = num.parse().ok()?;
    match unit {
        "ms" => Some(Duration::from_millis(n)),
        "s" => Some(Duration::from_secs(n)),
        "m" => Some(Duration::from_secs(n * 60)),
        "h" => Some(Duration::from_secs(n * 3600)),
        _ => None,
    }
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur: &dyn std::error::Error = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations() {
        use super::humantime_duration as d;
        assert_eq!(d("30s"), Some(std::time::Duration::from_secs(30)));
        assert_eq!(d("2m"), Some(std::time::Duration::from_secs(120)));
        assert_eq!(d("500ms"), Some(std::time::Duration::from_millis(500)));
        assert_eq!(d("soon"), None);
    }
}
