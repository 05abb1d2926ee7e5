//! What the workflow's built-in steps do: render components, record them in the tracker, apply
//! them through the fleet and wait for them to be healthy.

use crate::Error;
use crate::tracker::{TrackedObject, Tracker};
use fleet::{Fleet, ObjectRef};
use oam::{Application, ApplicationComponentStatus, WorkloadGvk};
use render::catalog::Compiled;
use render::{Catalog, DefinitionKind, LiveObjects, RenderContext, RenderedComponent};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::Mutex;
use workflow::{PlannedStep, StepOutcome, StepRunner};

/// Runs the steps of one application's workflow for one reconcile.
pub(crate) struct Runner<'a> {
    pub fleet: &'a Fleet,
    pub app: &'a Application,
    pub catalog: &'a Catalog,
    pub render_ctx: &'a RenderContext,
    pub tracker: &'a Tracker,
    pub revision_num: i64,
    /// Health of every component this round looked at, for `status.services`.
    pub services: Mutex<BTreeMap<String, ApplicationComponentStatus>>,
}

impl StepRunner for Runner<'_> {
    async fn run(&self, step: &PlannedStep) -> StepOutcome {
        match step.type_.as_str() {
            "apply-component" => {
                let Some(name) = step.properties.get("component").and_then(Value::as_str) else {
                    return StepOutcome::Failed {
                        reason: "InvalidStep".into(),
                        message: format!(
                            "step {}: apply-component needs properties.component",
                            step.name
                        ),
                    };
                };
                self.apply_components(&[name.to_string()]).await
            }
            "deploy" => {
                let names: Vec<String> = self
                    .app
                    .spec
                    .components
                    .iter()
                    .map(|c| c.name.clone())
                    .collect();
                self.apply_components(&names).await
            }
            "suspend" => StepOutcome::Suspended {
                message: step
                    .properties
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("waiting for approval: sail workflow resume")
                    .to_string(),
            },
            other => StepOutcome::Failed {
                reason: "UnsupportedStep".into(),
                message: format!(
                    "step {}: step type {other:?} is not supported yet (supported: apply-component, deploy, suspend)",
                    step.name
                ),
            },
        }
    }
}

impl Runner<'_> {
    async fn apply_components(&self, names: &[String]) -> StepOutcome {
        let mut waiting = Vec::new();
        for name in names {
            match self.apply_component(name).await {
                Ok(status) => {
                    if !status.healthy {
                        waiting.push(format!(
                            "{name}: {}",
                            status
                                .message
                                .clone()
                                .unwrap_or_else(|| "not healthy yet".into())
                        ));
                    }
                    self.lock().insert(name.clone(), status);
                }
                Err(StepError::Fatal(reason, message)) => {
                    return StepOutcome::Failed { reason, message };
                }
                Err(StepError::Retry(message)) => waiting.push(format!("{name}: {message}")),
            }
        }
        if waiting.is_empty() {
            StepOutcome::Succeeded {
                message: String::new(),
            }
        } else {
            StepOutcome::Running {
                message: format!("waiting for {}", waiting.join("; ")),
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, ApplicationComponentStatus>> {
        self.services.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn apply_component(&self, name: &str) -> Result<ApplicationComponentStatus, StepError> {
        let (def, rendered) = self.render(name)?;
        let cluster = self.fleet.local();
        let ns = &self.render_ctx.namespace;
        // Intent first: every object is in the tracker before it is applied, so a crash in
        // between never leaves an object nobody owns.
        let mut tracked = Vec::new();
        for o in rendered.objects() {
            let r = cluster
                .object_ref(&o.object, ns)
                .await
                .map_err(StepError::from_fleet)?;
            tracked.push(TrackedObject {
                cluster: String::new(),
                reference: r,
                component: name.to_string(),
                trait_type: o.trait_type.clone(),
            });
        }
        self.tracker
            .record(self.revision_num, &tracked)
            .await
            .map_err(|e| StepError::Retry(format!("recording resources: {e}")))?;
        for o in rendered.objects() {
            cluster
                .apply(&o.object, ns, true)
                .await
                .map_err(StepError::from_fleet)?;
        }
        health(self.fleet, self.app, &def, &rendered, &tracked)
            .await
            .map_err(|e| StepError::Retry(e.to_string()))
    }

    fn render(
        &self,
        name: &str,
    ) -> Result<(std::sync::Arc<Compiled>, RenderedComponent), StepError> {
        let Some(comp) = self.app.component(name) else {
            return Err(StepError::Fatal(
                "InvalidStep".into(),
                format!("component {name:?} is not part of the application"),
            ));
        };
        let def = self
            .catalog
            .require(DefinitionKind::Component, &comp.type_)
            .map_err(|e| StepError::Fatal("RenderFailed".into(), e.to_string()))?
            .clone();
        let rendered = render::render_component(comp, self.catalog, self.render_ctx)
            .map_err(|e| StepError::Fatal("RenderFailed".into(), e.to_string()))?;
        Ok((def, rendered))
    }

    /// Keep the live state what the revision wants: apply every component again (a no-op for
    /// the server when nothing drifted; what someone changed or deleted by hand comes back) and
    /// read its health. Runs on every reconcile after the revision's workflow succeeded.
    pub async fn keep_state(&self) {
        for c in &self.app.spec.components {
            let status = match self.apply_component(&c.name).await {
                Ok(s) => s,
                Err(StepError::Fatal(_, m) | StepError::Retry(m)) => {
                    unhealthy(&c.name, &self.render_ctx.namespace, m)
                }
            };
            self.lock().insert(c.name.clone(), status);
        }
    }
}

fn unhealthy(name: &str, namespace: &str, message: String) -> ApplicationComponentStatus {
    ApplicationComponentStatus {
        name: name.to_string(),
        namespace: Some(namespace.to_string()),
        healthy: false,
        message: Some(message),
        ..ApplicationComponentStatus::default()
    }
}

/// Read the live objects of a rendered component and evaluate its health policy on them.
async fn health(
    fleet: &Fleet,
    app: &Application,
    def: &Compiled,
    rendered: &RenderedComponent,
    tracked: &[TrackedObject],
) -> Result<ApplicationComponentStatus, Error> {
    let cluster = fleet.local();
    let mut live = LiveObjects::default();
    let mut refs = tracked.iter().map(|t| &t.reference);
    for o in rendered.objects() {
        let Some(r): Option<&ObjectRef> = refs.next() else {
            break;
        };
        let obj = cluster.get(r).await?;
        match (&o.output_name, obj) {
            (None, obj) => live.output = obj,
            (Some(n), Some(obj)) if o.trait_type.is_none() => {
                live.outputs.insert(n.clone(), obj);
            }
            _ => {}
        }
    }
    let app_name = app.metadata.name.as_deref().unwrap_or_default();
    let ns = app.metadata.namespace.as_deref().unwrap_or("default");
    let h = render::evaluate_health(
        def,
        &rendered.name,
        app_name,
        "",
        &rendered.parameter,
        &live,
    )?;
    let workload = def.definition.workload().map(|w| WorkloadGvk {
        api_version: w.api_version,
        kind: w.kind,
    });
    Ok(ApplicationComponentStatus {
        name: rendered.name.clone(),
        namespace: Some(ns.to_string()),
        workload_definition: workload,
        healthy: h.healthy,
        message: if h.message.is_empty() {
            None
        } else {
            Some(h.message)
        },
        details: to_string_map(h.details),
        ..ApplicationComponentStatus::default()
    })
}

fn to_string_map(m: Map<String, Value>) -> BTreeMap<String, String> {
    m.into_iter()
        .map(|(k, v)| {
            let s = match v {
                Value::String(s) => s,
                other => other.to_string(),
            };
            (k, s)
        })
        .collect()
}

enum StepError {
    /// The step cannot succeed as the application stands.
    Fatal(String, String),
    /// Something transient; the step runs again.
    Retry(String),
}

impl StepError {
    fn from_fleet(e: fleet::Error) -> StepError {
        match &e {
            fleet::Error::UnknownKind { .. } | fleet::Error::Invalid { .. } => {
                StepError::Fatal("ApplyFailed".into(), e.to_string())
            }
            fleet::Error::Api { source, .. } if matches!(source.as_ref(), kube::Error::Api(s) if matches!(s.code, 400 | 403 | 404 | 422)) => {
                StepError::Fatal("ApplyFailed".into(), e.to_string())
            }
            _ => StepError::Retry(e.to_string()),
        }
    }
}
