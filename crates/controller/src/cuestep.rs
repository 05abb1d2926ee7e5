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
    let mut parameter = match &step.properties {
        Value::Null => json!({}),
        p => p.clone(),
    };
    // Inputs: outputs of earlier steps, put where the step asks for them.
    let vars = runner.variables_snapshot();
    let mut inputs = serde_json::Map::new();
    for input in &step.inputs {
        let Some(v) = vars.get(&input.from) else {
            return StepOutcome::Running {
                message: format!(
                    "waiting for input {:?}: no earlier step has output it yet",
                    input.from
                ),
            };
        };
        inputs.insert(input.from.clone(), v.clone());
        if let Some(key) = input.parameter_key.as_deref().filter(|k| !k.is_empty()) {
            set_dotted(&mut parameter, key, v.clone());
        }
    }
    let inputs = Value::Object(inputs);
    let context = json!({
        "name": app.name(),
        "appName": app.name(),
        "namespace": app.namespace(),
        "stepName": step.name,
        // The same for every attempt of this step in this revision, and only for it: the
        // idempotency key of what the step sends.
        "stepSessionID": format!(
            "{}/{}/{}",
            app.metadata.uid.as_deref().unwrap_or_default(),
            runner.render_ctx.app_revision,
            step.name
        ),
        "appRevision": runner.render_ctx.app_revision,
        "appRevisionNum": runner.revision_num,
        "workflowName": app.name(),
    });
    let providers = Builtins {
        next: Remote { runner },
    };
    let mut bindings: Vec<(&str, &Value)> = vec![("parameter", &parameter), ("context", &context)];
    if !step.inputs.is_empty() {
        bindings.push(("inputs", &inputs));
    }
    let result = task::run(&def.template, &bindings, &providers).await;
    match result {
        Ok(TaskResult::Done { messages, value }) => {
            let mut exported = serde_json::Map::new();
            for out in &step.outputs {
                match value_from(&value, &out.value_from) {
                    Ok(v) => {
                        exported.insert(out.name.clone(), v);
                    }
                    Err(e) => {
                        return StepOutcome::Failed {
                            reason: "Output".into(),
                            message: format!(
                                "step {}: output {:?} (valueFrom {:?}): {e}",
                                step.name, out.name, out.value_from
                            ),
                        };
                    }
                }
            }
            if !exported.is_empty()
                && let Err(e) = runner.export(exported).await
            {
                return StepOutcome::Running {
                    message: format!("step {}: outputs not stored yet: {e}", step.name),
                };
            }
            StepOutcome::Succeeded {
                message: messages.join("; "),
            }
        }
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
            // Provider errors are retried with backoff by the engine; a template error is not.
            reason: if e.from_provider {
                workflow::RETRYABLE.into()
            } else {
                "Evaluate".into()
            },
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
        .and_then(workflow::parse_duration)
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
    let client = http_client()?;
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

type HttpClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Full<bytes::Bytes>,
>;

/// One HTTP client for every step (connections are pooled), built at first use. The system's
/// TLS roots are read then; if they cannot be, every request says so until they can.
fn http_client() -> Result<&'static HttpClient, ProviderError> {
    static CLIENT: std::sync::OnceLock<HttpClient> = std::sync::OnceLock::new();
    if let Some(c) = CLIENT.get() {
        return Ok(c);
    }
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .map_err(|e| ProviderError(format!("http: no TLS roots: {e}")))?
        .https_or_http()
        .enable_http1()
        .build();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build(connector);
    Ok(CLIENT.get_or_init(|| client))
}

/// Set `a.b.c` in a JSON object, creating the objects on the way.
fn set_dotted(target: &mut Value, key: &str, v: Value) {
    let mut cur = target;
    let parts: Vec<&str> = key.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        if !cur.is_object() {
            *cur = json!({});
        }
        let Some(map) = cur.as_object_mut() else {
            return;
        };
        if i + 1 == parts.len() {
            map.insert((*part).to_string(), v);
            return;
        }
        cur = map.entry((*part).to_string()).or_insert_with(|| json!({}));
    }
}

/// An output's `valueFrom`: a path into the step's evaluated template (`output.value.status`),
/// or any CUE expression over its fields (`"\(output.value.spec.host):80"`).
pub(crate) fn value_from(value: &Value, expr: &str) -> Result<Value, String> {
    let is_path = !expr.is_empty()
        && expr.split('.').all(|seg| {
            !seg.is_empty()
                && seg
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$' || c == '-')
        });
    if is_path {
        let mut cur = value;
        for seg in expr.split('.') {
            cur = match cur {
                Value::Object(m) => m.get(seg),
                Value::Array(a) => seg.parse::<usize>().ok().and_then(|i| a.get(i)),
                _ => None,
            }
            .ok_or_else(|| format!("{seg:?} is not in the step's result"))?;
        }
        return Ok(cur.clone());
    }
    let Value::Object(fields) = value else {
        return Err("the step's result is not a struct".into());
    };
    let mut src = String::from("{\n");
    for (k, v) in fields {
        src.push_str(&format!(
            "{}: {v}\n",
            serde_json::to_string(k).unwrap_or_default()
        ));
    }
    src.push_str(&format!("__sailplane_output: {expr}\n}}\n"));
    let program = cue::Runtime::new()
        .compile("valueFrom", &src)
        .map_err(|e| e.to_string())?;
    program
        .eval()
        .and_then(|v| {
            v.lookup("__sailplane_output")
                .ok_or_else(|| cue::Error::new("no value"))?
                .to_json()
        })
        .map_err(|e| e.to_string())
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur: &dyn std::error::Error = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// The ConfigMap that keeps a workflow's outputs (KubeVela's workflow context).
pub(crate) fn context_name(app: &str) -> String {
    format!("workflow-{app}-context")
}

/// Whether the workflow passes values between steps (so the context is worth reading).
pub(crate) fn uses_variables(app: &oam::Application) -> bool {
    app.spec.workflow.as_ref().is_some_and(|w| {
        w.steps.iter().any(|s| {
            !s.inputs.is_empty()
                || !s.outputs.is_empty()
                || s.if_.as_deref().is_some_and(|c| c.contains("inputs"))
                || s.sub_steps
                    .iter()
                    .any(|x| !x.inputs.is_empty() || !x.outputs.is_empty())
        })
    })
}

/// The outputs earlier steps of the application's workflow exported.
pub(crate) async fn load_variables(
    client: &kube::Client,
    app: &oam::Application,
) -> Result<serde_json::Map<String, Value>, crate::Error> {
    use k8s_openapi::api::core::v1::ConfigMap;
    let ns = app.namespace();
    let api: kube::Api<ConfigMap> = kube::Api::namespaced(client.clone(), ns);
    let name = context_name(app.name());
    let cm = api.get_opt(&name).await.map_err(crate::Error::hub(
        "read",
        format!("workflow context {ns}/{name}"),
    ))?;
    Ok(cm
        .and_then(|c| c.data)
        .and_then(|d| d.get("vars").cloned())
        .and_then(|v| serde_json::from_str::<Value>(&v).ok())
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default())
}

/// Store the workflow's outputs (all of them, one write), owned by the application.
pub(crate) async fn store_variables(
    client: &kube::Client,
    app: &oam::Application,
    vars: &serde_json::Map<String, Value>,
) -> Result<(), crate::Error> {
    use kube::ResourceExt;
    let ns = app.namespace();
    let name = context_name(app.name());
    let body = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": ns,
            "labels": {oam::labels::LABEL_APP_NAME: app.name()},
            "ownerReferences": [{
                "apiVersion": "core.oam.dev/v1beta1",
                "kind": "Application",
                "name": app.name(),
                "uid": app.uid().unwrap_or_default(),
                "controller": true,
            }],
        },
        "data": {"vars": Value::Object(vars.clone()).to_string()},
    });
    let api: kube::Api<kube::api::DynamicObject> = kube::Api::namespaced_with(
        client.clone(),
        ns,
        &kube::api::ApiResource::erase::<k8s_openapi::api::core::v1::ConfigMap>(&()),
    );
    let obj: kube::api::DynamicObject = serde_json::from_value(body)
        .map_err(|e| crate::Error::Invalid(format!("workflow context: {e}")))?;
    api.patch(
        &name,
        &kube::api::PatchParams::apply(fleet::FIELD_MANAGER).force(),
        &kube::api::Patch::Apply(&obj),
    )
    .await
    .map_err(crate::Error::hub(
        "write",
        format!("workflow context {ns}/{name}"),
    ))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{set_dotted, value_from};
    use serde_json::json;

    #[test]
    fn outputs_by_path_or_expression() {
        let v = json!({"output": {"value": {"spec": {"host": "a.example", "port": 80}}, "list": [1, 2]}});
        assert_eq!(
            value_from(&v, "output.value.spec.host").unwrap(),
            "a.example"
        );
        assert_eq!(value_from(&v, "output.list.1").unwrap(), 2);
        assert_eq!(
            value_from(
                &v,
                "\"\\(output.value.spec.host):\\(output.value.spec.port)\""
            )
            .unwrap(),
            "a.example:80"
        );
        assert!(
            value_from(&v, "output.value.nope")
                .unwrap_err()
                .contains("nope")
        );
    }

    #[test]
    fn inputs_land_at_their_parameter_key() {
        let mut p = json!({"a": 1});
        set_dotted(&mut p, "b.c", json!("x"));
        set_dotted(&mut p, "a", json!(2));
        assert_eq!(p, json!({"a": 2, "b": {"c": "x"}}));
    }
}
