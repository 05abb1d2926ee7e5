//! The `oam` provider: the application's own components and policies (`#LoadComponets` — sic,
//! KubeVela's spelling —, `#LoadComponetsInOrder`, `#LoadPolicies`), and components rendered
//! (`#RenderComponent`) or applied (`#ApplyComponent`) by the controller's render and apply,
//! which record what they apply in the ResourceTracker first as the built-in steps do.

use super::{Answer, Problem, invalid};
use crate::steps::{Runner, StepError, Target};
use render::RenderedComponent;
use serde_json::{Map, Value, json};
use workflow::task::Outcome;

pub(crate) async fn call(runner: &Runner<'_>, action: &str, params: &Value) -> Answer {
    match action {
        "load" | "load-comps-in-order" => {
            let app = other_app(runner, params).await?;
            let comps = app
                .as_ref()
                .map(|a| a.spec.components.clone())
                .unwrap_or_else(|| runner.app.spec.components.clone());
            let mut value = Map::new();
            for mut c in comps {
                c.inputs.clear();
                c.outputs.clear();
                let name = c.name.clone();
                value.insert(
                    name,
                    serde_json::to_value(c).map_err(|e| Problem::Invalid(e.to_string()))?,
                );
            }
            Ok(Outcome::Returns(json!({ "value": value })))
        }
        "load-policies" => {
            let app = other_app(runner, params).await?;
            let policies = app
                .as_ref()
                .map(|a| a.spec.policies.clone())
                .unwrap_or_else(|| runner.app.spec.policies.clone());
            let mut value = Map::new();
            for p in policies {
                let name = p.name.clone();
                value.insert(
                    name,
                    serde_json::to_value(p).map_err(|e| Problem::Invalid(e.to_string()))?,
                );
            }
            Ok(Outcome::Returns(json!({ "value": value })))
        }
        "component-render" | "component-apply" => {
            let target = target(runner, params)?;
            if params.get("patch").is_some_and(|p| !p.is_null()) {
                return invalid(format!(
                    "oam.{action}: patch is not supported by Sailplane yet; put the change in the component's properties or a trait"
                ));
            }
            let rendered = runner.render_target(&target).await.map_err(step_error)?;
            let returns = rendered_returns(&rendered);
            if action == "component-render" {
                return Ok(Outcome::Returns(returns));
            }
            let wait = params
                .get("waitHealthy")
                .and_then(Value::as_bool)
                .unwrap_or(true);
            match super::multicluster::outcome(runner.apply_targets_with(&[target], 1, wait).await)?
            {
                Outcome::Returns(_) => Ok(Outcome::Returns(returns)),
                other => Ok(other),
            }
        }
        other => invalid(format!(
            "oam has no operation {other:?} (load, load-comps-in-order, load-policies, component-render, component-apply)"
        )),
    }
}

fn step_error(e: StepError) -> Problem {
    match e {
        StepError::Fatal(_, m) => Problem::Invalid(m),
        StepError::Retry(m) => Problem::Retry(m),
    }
}

/// `$params.app`: another application in the same namespace, read from the hub.
async fn other_app(
    runner: &Runner<'_>,
    params: &Value,
) -> Result<Option<oam::Application>, Problem> {
    let Some(name) = params
        .get("app")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty() && *n != runner.app.name())
    else {
        return Ok(None);
    };
    let ns = runner.app.namespace();
    let r = fleet::ObjectRef {
        api_version: "core.oam.dev/v1beta1".into(),
        kind: "Application".into(),
        namespace: Some(ns.to_string()),
        name: name.to_string(),
    };
    let Some(live) = runner.fleet.local().get(&r).await? else {
        return Err(Problem::Retry(format!(
            "oam.load: application {ns}/{name} does not exist"
        )));
    };
    serde_json::from_value(live)
        .map(Some)
        .map_err(|e| Problem::Invalid(format!("oam.load: application {ns}/{name}: {e}")))
}

/// Where `$params` puts the component: `cluster` (empty is the hub) and `namespace` (empty is
/// the application's).
fn target(runner: &Runner<'_>, params: &Value) -> Result<Target, Problem> {
    let component: oam::ApplicationComponent = match params.get("value") {
        Some(v) => serde_json::from_value(v.clone()).map_err(|e| {
            Problem::Invalid(format!(
                "value must be a component (name, type, properties, traits): {e}"
            ))
        })?,
        None => return invalid("value (the component) is missing"),
    };
    let s = |k: &str| {
        params
            .get(k)
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    Ok(Target {
        cluster: s("cluster").unwrap_or_else(|| fleet::LOCAL.to_string()),
        namespace: s("namespace").unwrap_or_else(|| runner.render_ctx.namespace.clone()),
        component,
        replica_key: None,
    })
}

/// `output` (the workload) and `outputs` (the traits' objects by name), as KubeVela fills them.
fn rendered_returns(r: &RenderedComponent) -> Value {
    let mut outputs = Map::new();
    for o in &r.auxiliaries {
        if let Some(name) = &o.output_name {
            outputs.insert(name.clone(), o.object.clone());
        }
    }
    let mut m = Map::new();
    if let Some(w) = &r.workload {
        m.insert("output".into(), w.object.clone());
    }
    m.insert("outputs".into(), Value::Object(outputs));
    Value::Object(m)
}
