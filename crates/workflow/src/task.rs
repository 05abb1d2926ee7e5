//! Running a WorkflowStepDefinition's CUE template.
//!
//! A step template is CUE in which some structs are *operations*: they carry `#do` (what to do)
//! and `#provider` (who does it), as `kube.#Apply & {$params: …}` does. The executor evaluates
//! the template with the step's `parameter` and `context`, finds the operations in field order,
//! runs each through a [`Providers`] implementation once its parameters are concrete, fills the
//! result back (`$returns`, or the operation's own fields for the legacy `vela/op` package) and
//! evaluates again, until every operation has run or one of them waits, suspends or fails.
//!
//! The executor does no I/O itself: providers do. Re-running a step re-runs its operations,
//! which is what KubeVela does too; operations are expected to be idempotent (apply, read), and
//! the controller guards the ones with side effects.

use futures::future::BoxFuture;
use serde_json::{Map, Value};
use std::collections::BTreeSet;

/// One operation found in a template.
#[derive(Clone, Debug, PartialEq)]
pub struct Operation {
    /// Dotted path of the operation in the template (`apply`, `webhook.req`).
    pub path: String,
    /// `#provider`: builtin, kube, http, util, …
    pub provider: String,
    /// `#do`: apply, read, wait, …
    pub action: String,
    /// The concrete parameters.
    pub params: Value,
}

/// What a provider made of an operation.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Done; the value goes to `$returns` (`Value::Null`: nothing to fill).
    Returns(Value),
    /// Not yet: the step stays running and runs again later.
    Wait { message: String },
    /// The workflow suspends until resumed (or the duration passes).
    Suspend {
        duration: Option<String>,
        message: String,
    },
    /// The step ends successfully here.
    Break { message: String },
    /// The step fails.
    Fail { message: String },
    /// A message for the step's status; the step goes on.
    Message(String),
}

/// A provider's error: the step fails with it (the engine decides about retries).
#[derive(Clone, Debug, PartialEq)]
pub struct ProviderError(pub String);

impl std::fmt::Display for ProviderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Serves operations. The controller implements `kube` with the fleet; [`Builtins`] serves
/// `builtin` and `util`, and can be chained in front of others.
pub trait Providers: Send + Sync {
    fn call<'a>(&'a self, op: &'a Operation) -> BoxFuture<'a, Result<Outcome, ProviderError>>;
}

impl<T: Providers + ?Sized> Providers for &T {
    fn call<'a>(&'a self, op: &'a Operation) -> BoxFuture<'a, Result<Outcome, ProviderError>> {
        (**self).call(op)
    }
}

/// `builtin` (wait, suspend, break, fail, message) and `util` (string, log); anything else goes
/// to `next`.
pub struct Builtins<P> {
    pub next: P,
    /// The step was resumed after it suspended ([`crate::PlannedStep::resumed`]): its
    /// `builtin.#Suspend` has been approved and passes, and the rest of the template runs.
    pub resumed: bool,
}

impl<P: Providers> Providers for Builtins<P> {
    fn call<'a>(&'a self, op: &'a Operation) -> BoxFuture<'a, Result<Outcome, ProviderError>> {
        let message = || {
            op.params
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let done = match (op.provider.as_str(), op.action.as_str()) {
            ("builtin", "wait") => {
                if op.params.get("continue").and_then(Value::as_bool) == Some(true) {
                    Ok(Outcome::Returns(Value::Null))
                } else {
                    let m = message();
                    Ok(Outcome::Wait {
                        message: if m.is_empty() {
                            format!("waiting at {}", op.path)
                        } else {
                            m
                        },
                    })
                }
            }
            ("builtin", "suspend") if self.resumed => Ok(Outcome::Returns(Value::Null)),
            ("builtin", "suspend") => Ok(Outcome::Suspend {
                duration: op
                    .params
                    .get("duration")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                message: message(),
            }),
            ("builtin", "break") => Ok(Outcome::Break { message: message() }),
            ("builtin", "fail") => Ok(Outcome::Fail { message: message() }),
            ("builtin", "message") => Ok(Outcome::Message(message())),
            ("util", "string") => {
                // CUE bytes arrive base64-encoded in JSON.
                let text = op.params.get("bt").and_then(Value::as_str).unwrap_or("");
                use base64::Engine;
                match base64::engine::general_purpose::STANDARD.decode(text) {
                    Ok(b) => Ok(Outcome::Returns(serde_json::json!({
                        "str": String::from_utf8_lossy(&b)
                    }))),
                    Err(_) => Ok(Outcome::Returns(serde_json::json!({"str": text}))),
                }
            }
            ("util", "log") => {
                tracing::info!(operation = %op.path, data = %op.params.get("data").cloned().unwrap_or_default(), "step log");
                Ok(Outcome::Returns(Value::Null))
            }
            _ => return self.next.call(op),
        };
        Box::pin(std::future::ready(done))
    }
}

/// No providers beyond the builtins: every other operation is an error naming it.
pub struct NoProviders;

impl Providers for NoProviders {
    fn call<'a>(&'a self, op: &'a Operation) -> BoxFuture<'a, Result<Outcome, ProviderError>> {
        Box::pin(std::future::ready(Err(ProviderError(format!(
            "no provider {:?} for #do {:?} (at {})",
            op.provider, op.action, op.path
        )))))
    }
}

/// How a step's template run ended.
#[derive(Clone, Debug, PartialEq)]
pub enum TaskResult {
    /// Every operation ran; `value` is the evaluated template, for outputs.
    Done {
        value: Value,
        messages: Vec<String>,
    },
    Wait {
        message: String,
    },
    Suspend {
        duration: Option<String>,
        message: String,
    },
    Fail {
        message: String,
    },
}

/// Why a template could not be run.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskError {
    pub message: String,
    /// A provider's error (something did not answer), worth trying again; otherwise the
    /// template itself is wrong.
    pub from_provider: bool,
}

impl std::fmt::Display for TaskError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Most operations one step may run, so a template that keeps producing new ones ends.
pub const MAX_OPERATIONS: usize = 256;

/// Run a compiled step template with its inputs (`parameter`, `context`, …).
pub async fn run(
    program: &cue::Program,
    inputs: &[(&str, &Value)],
    providers: &dyn Providers,
) -> Result<TaskResult, TaskError> {
    let mut fills: Vec<(String, Value)> = Vec::new();
    let mut done: BTreeSet<String> = BTreeSet::new();
    let mut messages = Vec::new();
    loop {
        let mut all: Vec<(&str, &Value)> = inputs.to_vec();
        all.extend(fills.iter().map(|(p, v)| (p.as_str(), v)));
        let value = program.eval_with(&all).map_err(|e| TaskError {
            message: e.to_string(),
            from_provider: false,
        })?;
        let mut found = Vec::new();
        collect(&value, "", &mut found);
        let pending: Vec<&Found> = found.iter().filter(|f| !done.contains(&f.path)).collect();
        let ready = pending.iter().find(|f| f.params.is_some());
        let Some(next) = ready else {
            if let Some(stuck) = pending.first() {
                // What it needs may come later (an object's status, a resource not there yet):
                // the step waits, saying what for, as KubeVela's pending tasks do.
                return Ok(TaskResult::Wait {
                    message: format!(
                        "operation {} ({}.{}) cannot run yet: {}",
                        stuck.path,
                        stuck.provider,
                        stuck.action,
                        stuck
                            .why
                            .as_deref()
                            .unwrap_or("its parameters are not concrete")
                    ),
                });
            }
            let json = value.to_json().unwrap_or_else(|_| partial_json(&value));
            return Ok(TaskResult::Done {
                value: json,
                messages,
            });
        };
        if done.len() >= MAX_OPERATIONS {
            return Err(TaskError {
                message: format!("more than {MAX_OPERATIONS} operations in one step"),
                from_provider: false,
            });
        }
        let op = Operation {
            path: next.path.clone(),
            provider: next.provider.clone(),
            action: next.action.clone(),
            params: next.params.clone().unwrap_or(Value::Null),
        };
        let outcome = providers.call(&op).await.map_err(|e| TaskError {
            message: format!("{} ({}.{}): {e}", op.path, op.provider, op.action),
            from_provider: true,
        })?;
        done.insert(op.path.clone());
        match outcome {
            Outcome::Returns(v) => {
                if !v.is_null() {
                    if next.legacy {
                        let v = if op.provider == "http" {
                            serde_json::json!({ "response": v })
                        } else {
                            v
                        };
                        fills.push((op.path.clone(), v));
                    } else {
                        fills.push((format!("{}.$returns", op.path), v));
                    }
                }
            }
            Outcome::Message(m) => messages.push(m),
            Outcome::Wait { message } => return Ok(TaskResult::Wait { message }),
            Outcome::Suspend { duration, message } => {
                return Ok(TaskResult::Suspend { duration, message });
            }
            Outcome::Fail { message } => return Ok(TaskResult::Fail { message }),
            Outcome::Break { message } => {
                if !message.is_empty() {
                    messages.push(message);
                }
                let json = value.to_json().unwrap_or_else(|_| partial_json(&value));
                return Ok(TaskResult::Done {
                    value: json,
                    messages,
                });
            }
        }
    }
}

struct Found {
    path: String,
    provider: String,
    action: String,
    legacy: bool,
    /// `Some` when concrete.
    params: Option<Value>,
    why: Option<String>,
}

/// Operations under `v`, in field order. `parameter` and `context` are inputs, not operations.
fn collect(v: &cue::Value, path: &str, out: &mut Vec<Found>) {
    for f in v.all_fields() {
        if f.name.starts_with('#') || f.value.kind() == cue::Kind::Bottom {
            continue;
        }
        if path.is_empty() && (f.name == "parameter" || f.name == "context") {
            continue;
        }
        let p = if path.is_empty() {
            f.name.clone()
        } else {
            format!("{path}.{}", f.name)
        };
        match operation(&f.value, p.clone()) {
            Some(found) => {
                let descend = found.action == "steps";
                if !descend {
                    out.push(found);
                } else {
                    collect(&f.value, &p, out);
                }
            }
            None => {
                if f.value.kind() == cue::Kind::Struct {
                    collect(&f.value, &p, out);
                }
            }
        }
    }
}

fn operation(v: &cue::Value, path: String) -> Option<Found> {
    if v.kind() != cue::Kind::Struct {
        return None;
    }
    let action = v.lookup("#do")?.as_str()?;
    let provider = v
        .lookup("#provider")
        .and_then(|p| p.as_str())
        .unwrap_or_else(|| "builtin".to_string());
    // Legacy `vela/op` named its provider "op" for kube operations.
    let provider = if provider == "op" {
        "kube".to_string()
    } else {
        provider
    };
    let (legacy, params) = match v.lookup("$params") {
        Some(p) => (false, p.to_json()),
        None => {
            // Legacy: the operation's own regular fields are its parameters.
            let mut m = Map::new();
            let mut err = None;
            for f in v.fields() {
                match f.value.to_json() {
                    Ok(j) => {
                        m.insert(f.name, j);
                    }
                    Err(e) => {
                        if !is_result_field(&action, &f.name) {
                            err = Some(e);
                        }
                    }
                }
            }
            (true, err.map_or(Ok(Value::Object(m)), Err))
        }
    };
    let (params, why) = match params {
        Ok(p) => (Some(p), None),
        Err(e) => (None, Some(e.to_string())),
    };
    Some(Found {
        path,
        provider,
        action,
        legacy,
        params,
        why,
    })
}

/// Fields of legacy operations that the result fills in: not needed to run.
fn is_result_field(action: &str, field: &str) -> bool {
    matches!(
        (action, field),
        (_, "err")
            | ("do", "response")
            | ("list", "list")
            | ("string", "str")
            | ("patch", "result")
    )
}

/// The concrete part of a value, for outputs of a template that has open ends.
fn partial_json(v: &cue::Value) -> Value {
    match v.kind() {
        cue::Kind::Struct => {
            let mut m = Map::new();
            for f in v.fields() {
                let j = f.value.to_json().unwrap_or_else(|_| partial_json(&f.value));
                if !j.is_null() || f.value.kind() == cue::Kind::Null {
                    m.insert(f.name, j);
                }
            }
            Value::Object(m)
        }
        _ => v.to_json().unwrap_or(Value::Null),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::Mutex;

    /// Records calls; `kube.read` returns a ConfigMap, `http.do` a 200.
    #[derive(Default)]
    struct Fake {
        calls: Mutex<Vec<Operation>>,
    }

    impl Providers for Fake {
        fn call<'a>(&'a self, op: &'a Operation) -> BoxFuture<'a, Result<Outcome, ProviderError>> {
            self.calls.lock().unwrap().push(op.clone());
            let out = match (op.provider.as_str(), op.action.as_str()) {
                ("kube", "read") => Ok(Outcome::Returns(json!({
                    "value": {"apiVersion": "v1", "kind": "ConfigMap", "data": {"url": "http://x/hook"}}
                }))),
                ("kube", "apply") => Ok(Outcome::Returns(json!({"value": op.params["value"]}))),
                ("http", "do") => Ok(Outcome::Returns(
                    json!({"body": "{\"ok\":true}", "statusCode": 200}),
                )),
                _ => Err(ProviderError(format!("unexpected {op:?}"))),
            };
            Box::pin(std::future::ready(out))
        }
    }

    fn compile(src: &str) -> cue::Program {
        render::stdlib::runtime()
            .compile("step.cue", src)
            .expect("compiles")
    }

    async fn go(src: &str, parameter: Value, fake: &Fake) -> Result<TaskResult, TaskError> {
        let ctx = json!({"name": "app", "namespace": "default", "stepName": "s"});
        run(
            &compile(src),
            &[("parameter", &parameter), ("context", &ctx)],
            &Builtins {
                next: fake,
                resumed: false,
            },
        )
        .await
    }

    #[tokio::test]
    async fn results_flow_from_one_operation_to_the_next() {
        let src = r#"
import ("vela/kube", "vela/http")
read: kube.#Read & {$params: value: {apiVersion: "v1", kind: "ConfigMap", metadata: name: parameter.cm}}
req: http.#HTTPDo & {$params: {method: "POST", url: read.$returns.value.data.url}}
status: req.$returns.statusCode
parameter: cm: string
"#;
        let fake = Fake::default();
        let r = go(src, json!({"cm": "hooks"}), &fake).await.unwrap();
        let calls = fake.calls.lock().unwrap().clone();
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].params["value"]["metadata"]["name"], "hooks");
        assert_eq!(calls[1].params["url"], "http://x/hook");
        match r {
            TaskResult::Done { value, .. } => assert_eq!(value["status"], 200),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn conditional_wait_suspend_fail_and_message() {
        let fake = Fake::default();
        let wait = r#"
import "vela/builtin"
w: builtin.#ConditionalWait & {$params: {continue: parameter.ready, message: "not ready"}}
parameter: ready: bool
"#;
        assert_eq!(
            go(wait, json!({"ready": false}), &fake).await.unwrap(),
            TaskResult::Wait {
                message: "not ready".into()
            }
        );
        assert!(matches!(
            go(wait, json!({"ready": true}), &fake).await.unwrap(),
            TaskResult::Done { .. }
        ));
        let suspend =
            "import \"vela/builtin\"\ns: builtin.#Suspend & {$params: duration: \"30s\"}\n";
        assert_eq!(
            go(suspend, json!({}), &fake).await.unwrap(),
            TaskResult::Suspend {
                duration: Some("30s".into()),
                message: String::new()
            }
        );
        let fail = "import \"vela/builtin\"\nm: builtin.#Message & {$params: message: \"hi\"}\nf: builtin.#Fail & {$params: message: \"no\"}\n";
        assert_eq!(
            go(fail, json!({}), &fake).await.unwrap(),
            TaskResult::Fail {
                message: "no".into()
            }
        );
    }

    #[tokio::test]
    async fn legacy_op_package_fills_the_operation_itself() {
        let src = r#"
import "vela/op"
read: op.#Read & {value: {apiVersion: "v1", kind: "ConfigMap", metadata: name: "x"}}
url: read.value.data.url
req: op.#HTTPPost & {url: read.value.data.url}
wait: op.#ConditionalWait & {continue: req.response.statusCode == 200}
"#;
        let fake = Fake::default();
        let r = go(src, json!({}), &fake).await.unwrap();
        match r {
            TaskResult::Done { value, .. } => assert_eq!(value["url"], "http://x/hook"),
            other => panic!("{other:?}"),
        }
        let calls = fake.calls.lock().unwrap().clone();
        assert_eq!(calls[1].params["method"], "POST");
    }

    #[tokio::test]
    async fn operations_under_comprehensions_and_steps_run_in_order() {
        let src = r#"
import ("vela/kube", "vela/builtin")
apply: {
	for n in parameter.names {
		(n): kube.#Apply & {$params: value: {apiVersion: "v1", kind: "ConfigMap", metadata: name: n}}
	}
}
group: builtin.#Steps & {
	if parameter.fail {
		stop: builtin.#Fail & {$params: message: "asked to fail"}
	}
}
parameter: {names: [...string], fail: bool}
"#;
        let fake = Fake::default();
        let r = go(src, json!({"names": ["a", "b"], "fail": true}), &fake)
            .await
            .unwrap();
        assert_eq!(
            r,
            TaskResult::Fail {
                message: "asked to fail".into()
            }
        );
        let names: Vec<String> = fake
            .calls
            .lock()
            .unwrap()
            .iter()
            .map(|c| c.path.clone())
            .collect();
        assert_eq!(names, ["apply.a", "apply.b"]);
    }

    #[tokio::test]
    async fn an_operation_that_cannot_run_yet_waits_saying_why() {
        let src = "import \"vela/kube\"\nr: kube.#Read & {$params: value: {apiVersion: \"v1\", kind: parameter.kind}}\nparameter: kind?: string\n";
        let fake = Fake::default();
        match go(src, json!({}), &fake).await.unwrap() {
            TaskResult::Wait { message } => {
                assert!(
                    message.contains("operation r (kube.read) cannot run yet"),
                    "{message}"
                );
                assert!(message.contains("kind"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        assert!(fake.calls.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn unknown_providers_are_errors() {
        let src = "x: {#do: \"send\", #provider: \"pigeon\", $params: to: \"a\"}\n";
        let ctx = json!({});
        let err = run(
            &compile(src),
            &[("context", &ctx)],
            &Builtins {
                next: NoProviders,
                resumed: false,
            },
        )
        .await
        .unwrap_err();
        assert!(err.message.contains("no provider \"pigeon\""), "{err}");
    }
}
