//! A component and its traits rendered to Kubernetes objects.

use crate::catalog::{Catalog, Compiled};
use crate::definition::DefinitionKind;
use crate::patch::{self, FieldStrategy, Strategies};
use crate::{Error, RenderContext};
use oam::labels;
use serde_json::{Map, Value, json};

/// One object to apply.
#[derive(Clone, Debug, PartialEq)]
pub struct RenderedObject {
    pub object: Value,
    /// The trait that produced it; `None` for the component's own objects.
    pub trait_type: Option<String>,
    /// The key under `outputs`; `None` for the workload (`output`).
    pub output_name: Option<String>,
}

impl RenderedObject {
    pub fn api_version(&self) -> &str {
        self.object
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }
    pub fn kind(&self) -> &str {
        self.object
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }
    pub fn name(&self) -> &str {
        self.object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }
    pub fn namespace(&self) -> Option<&str> {
        self.object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
    }
}

/// What one component renders to.
#[derive(Clone, Debug, PartialEq)]
pub struct RenderedComponent {
    pub name: String,
    pub type_: String,
    /// The definition's revision hash, for the application revision.
    pub definition_revision: String,
    pub workload: Option<RenderedObject>,
    pub auxiliaries: Vec<RenderedObject>,
    /// The parameters after the definition's schema: defaults filled in.
    pub parameter: Value,
}

impl RenderedComponent {
    /// The workload first, then the auxiliary objects in order.
    pub fn objects(&self) -> impl Iterator<Item = &RenderedObject> {
        self.workload.iter().chain(self.auxiliaries.iter())
    }
}

/// Render one component of an application with its traits, in order: each trait sees the
/// workload as patched by the traits before it.
pub fn render_component(
    component: &oam::ApplicationComponent,
    catalog: &Catalog,
    ctx: &RenderContext,
) -> Result<RenderedComponent, Error> {
    let name = component.name.as_str();
    let def = catalog.require(DefinitionKind::Component, &component.type_)?;
    let parameter = component
        .properties
        .clone()
        .unwrap_or_else(|| Value::Object(Map::new()));
    if !parameter.is_object() {
        return Err(Error::Invalid {
            component: name.into(),
            message: format!(
                "properties must be an object, found {}",
                kind_of(&parameter)
            ),
        });
    }
    let cerr = |source: cue::Error| Error::Component {
        component: name.into(),
        definition: component.type_.clone(),
        source: Box::new(def.locate(source)),
    };
    let context = ctx.for_component(name, &parameter);
    let value = def
        .template
        .eval_with(&[("parameter", &parameter), ("context", &context)])
        .map_err(cerr)?;
    // A parameter of the wrong type fails wherever it is used; report it where it is declared.
    if let Some(p) = value.lookup("parameter") {
        p.validate().map_err(cerr)?;
    }
    value.validate().map_err(cerr)?;

    // An output that cannot be exported because a parameter is missing is reported as the
    // missing parameter: that is what the user has to fix.
    let missing_parameter = |e: cue::Error| match value.lookup("parameter").map(|p| p.to_json()) {
        Some(Err(pe)) if pe.is_incomplete() && e.is_incomplete() => cerr(pe),
        _ => cerr(e),
    };
    let mut workload = match value.lookup("output") {
        Some(v) if v.exists() => Some(v.to_json().map_err(missing_parameter)?),
        _ => None,
    };
    let mut auxiliaries: Vec<(String, Option<String>, Value)> = Vec::new();
    if let Some(outputs) = value.lookup("outputs") {
        for f in outputs.fields() {
            auxiliaries.push((f.name, None, f.value.to_json().map_err(missing_parameter)?));
        }
    }
    let parameter_out = match value.lookup("parameter") {
        Some(p) => p.to_json().unwrap_or(parameter.clone()),
        None => parameter.clone(),
    };

    for t in &component.traits {
        let tdef = catalog.require(DefinitionKind::Trait, &t.type_)?;
        check_applies(def, tdef, name, workload.as_ref())?;
        let terr = |source: cue::Error| Error::Trait {
            component: name.into(),
            trait_type: t.type_.clone(),
            source: Box::new(tdef.locate(source)),
        };
        let tparam = t
            .properties
            .clone()
            .unwrap_or_else(|| Value::Object(Map::new()));
        let mut tctx = ctx.for_component(name, &parameter);
        if let Some(obj) = tctx.as_object_mut() {
            obj.insert("componentType".into(), json!(component.type_));
            obj.insert(
                "output".into(),
                workload.clone().unwrap_or_else(|| json!({})),
            );
            let outs: Map<String, Value> = auxiliaries
                .iter()
                .map(|(k, _, v)| (k.clone(), v.clone()))
                .collect();
            obj.insert("outputs".into(), Value::Object(outs));
        }
        let tv = tdef
            .template
            .eval_with(&[("parameter", &tparam), ("context", &tctx)])
            .map_err(terr)?;
        if let Some(p) = tv.lookup("parameter") {
            p.validate().map_err(terr)?;
        }
        tv.validate().map_err(terr)?;

        if let Some(errs) = tv.lookup("errs") {
            let errs = errs.to_json().map_err(terr)?;
            let msgs: Vec<String> = errs
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|e| e.as_str().map_or(e.to_string(), str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            if !msgs.is_empty() {
                return Err(Error::Invalid {
                    component: name.into(),
                    message: format!("trait {:?}: {}", t.type_, msgs.join("; ")),
                });
            }
        }

        let perr = |e: patch::PatchError| Error::Patch {
            component: name.into(),
            trait_type: t.type_.clone(),
            path: e.path,
            message: e.message,
        };
        let root_strategy = |field: &str| {
            tv.fields()
                .into_iter()
                .find(|f| f.name == field)
                .map(|f| FieldStrategy::from_comments(&f.comments))
                .unwrap_or_default()
        };
        if let Some(p) = tv.lookup("patch").filter(cue::Value::exists) {
            let mut strategies = Strategies::collect(&p, root_strategy("patch"));
            let mut pj = p.to_json().map_err(terr)?;
            let target = workload.get_or_insert_with(|| json!({}));
            // `containers: [...{...}]` patches every element; as JSON the open list is empty.
            let open = open_list_candidates(&pj, target);
            if !open.is_empty()
                && let Some(expanded) =
                    expand_open_lists(&tdef.template, &tparam, &tctx, "patch", &open)
            {
                strategies = Strategies::collect(&expanded, root_strategy("patch"));
                pj = expanded.to_json().map_err(terr)?;
            }
            patch::apply(target, &pj, &strategies).map_err(perr)?;
        }
        if let Some(po) = tv.lookup("patchOutputs").filter(cue::Value::exists) {
            for f in po.fields() {
                let mut strategies =
                    Strategies::collect(&f.value, FieldStrategy::from_comments(&f.comments));
                let mut pj = f.value.to_json().map_err(terr)?;
                let target = auxiliaries
                    .iter_mut()
                    .find(|(k, _, _)| *k == f.name)
                    .ok_or_else(|| Error::Invalid {
                        component: name.into(),
                        message: format!(
                            "trait {:?} patches output {:?}, which the component does not have",
                            t.type_, f.name
                        ),
                    })?;
                let simple_name = f
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
                let open = open_list_candidates(&pj, &target.2);
                if simple_name
                    && !open.is_empty()
                    && let Some(expanded) = expand_open_lists(
                        &tdef.template,
                        &tparam,
                        &tctx,
                        &format!("patchOutputs.{}", f.name),
                        &open,
                    )
                {
                    strategies =
                        Strategies::collect(&expanded, FieldStrategy::from_comments(&f.comments));
                    pj = expanded.to_json().map_err(terr)?;
                }
                patch::apply(&mut target.2, &pj, &strategies).map_err(perr)?;
            }
        }
        if let Some(outs) = tv.lookup("outputs") {
            for f in outs.fields() {
                let obj = f.value.to_json().map_err(terr)?;
                auxiliaries.push((f.name, Some(t.type_.clone()), obj));
            }
        }
    }

    let finish = |mut object: Value,
                  trait_type: Option<String>,
                  output_name: Option<String>|
     -> Result<RenderedObject, Error> {
        let Some(obj) = object.as_object_mut() else {
            return Err(Error::Invalid {
                component: name.into(),
                message: format!(
                    "{} is not an object",
                    output_name
                        .as_deref()
                        .map_or("output".to_string(), |o| format!("outputs.{o}"))
                ),
            });
        };
        for key in ["apiVersion", "kind"] {
            if !obj.get(key).is_some_and(Value::is_string) {
                return Err(Error::Invalid {
                    component: name.into(),
                    message: format!(
                        "{}.{key} must be a string",
                        output_name
                            .as_deref()
                            .map_or("output".to_string(), |o| format!("outputs.{o}"))
                    ),
                });
            }
        }
        let meta = obj
            .entry("metadata")
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .ok_or_else(|| Error::Invalid {
                component: name.into(),
                message: "metadata must be an object".into(),
            })?;
        let has_name = meta
            .get("name")
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty());
        if !has_name {
            let default = match &output_name {
                None => name.to_string(),
                Some(o) => format!("{name}-{}", o.to_lowercase()),
            };
            meta.insert("name".into(), json!(default));
        }
        let labels = meta
            .entry("labels")
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .ok_or_else(|| Error::Invalid {
                component: name.into(),
                message: "metadata.labels must be an object".into(),
            })?;
        labels.insert(labels::LABEL_APP_NAME.into(), json!(ctx.app_name));
        let app_ns = if ctx.app_namespace.is_empty() {
            &ctx.namespace
        } else {
            &ctx.app_namespace
        };
        labels.insert(labels::LABEL_APP_NAMESPACE.into(), json!(app_ns));
        labels.insert(labels::LABEL_APP_COMPONENT.into(), json!(name));
        labels.insert(labels::LABEL_APP_REVISION.into(), json!(ctx.app_revision));
        match &trait_type {
            Some(t) => {
                labels.insert(
                    labels::LABEL_RESOURCE_TYPE.into(),
                    json!(labels::RESOURCE_TYPE_TRAIT),
                );
                labels.insert(labels::LABEL_TRAIT_TYPE.into(), json!(t));
                if let Some(o) = &output_name {
                    labels.insert(labels::LABEL_TRAIT_RESOURCE.into(), json!(o));
                }
            }
            None => {
                labels.insert(
                    labels::LABEL_RESOURCE_TYPE.into(),
                    json!(labels::RESOURCE_TYPE_WORKLOAD),
                );
                labels.insert(labels::LABEL_WORKLOAD_TYPE.into(), json!(component.type_));
            }
        }
        Ok(RenderedObject {
            object,
            trait_type,
            output_name,
        })
    };

    let workload = workload.map(|w| finish(w, None, None)).transpose()?;
    let auxiliaries = auxiliaries
        .into_iter()
        .map(|(k, t, v)| finish(v, t, Some(k)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RenderedComponent {
        name: name.into(),
        type_: component.type_.clone(),
        definition_revision: def.revision.clone(),
        workload,
        auxiliaries,
        parameter: parameter_out,
    })
}

/// A trait applies to a component when its `appliesToWorkloads` is empty or `*`, or names the
/// component type, the declared workload's resource type (`deployments.apps`), or the resource
/// type or kind of the workload the component actually rendered (so components whose workload is
/// `autodetects.core.oam.dev` are judged by what they make).
/// Where a patch has an empty list and the target a list that is not empty: `(dotted path,
/// target length)`. Such a list may be an open list in CUE (`[...{env: ...}]`), which constrains
/// every element of the list it is unified with but exports as `[]`. Only paths through structs
/// whose keys can be written dotted are considered.
fn open_list_candidates(patch: &Value, target: &Value) -> Vec<(String, usize)> {
    fn walk(
        patch: &Value,
        target: &Value,
        path: &str,
        depth: usize,
        out: &mut Vec<(String, usize)>,
    ) {
        if depth > 32 {
            return;
        }
        match (patch, target) {
            (Value::Array(p), Value::Array(t)) if p.is_empty() && !t.is_empty() => {
                out.push((path.to_string(), t.len()));
            }
            (Value::Object(p), Value::Object(t)) => {
                for (k, pv) in p {
                    let simple = !k.is_empty()
                        && k.chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
                    if let (true, Some(tv)) = (simple, t.get(k)) {
                        let child = if path.is_empty() {
                            k.clone()
                        } else {
                            format!("{path}.{k}")
                        };
                        walk(pv, tv, &child, depth + 1, out);
                    }
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(patch, target, "", 0, &mut out);
    out
}

/// The trait's `field` (`patch`, `patchOutputs.<name>`) evaluated again with each candidate list given as many empty
/// elements as the target has: an open list's element constraint then fills every element, as
/// CUE unification with the workload's list would in KubeVela. A candidate that is not an open
/// list (a closed `[]`, or elements that are not structs) fails to unify and is left empty.
/// `None` when no candidate is an open list.
fn expand_open_lists(
    template: &cue::Program,
    parameter: &Value,
    context: &Value,
    field: &str,
    candidates: &[(String, usize)],
) -> Option<cue::Value> {
    let elements: Vec<(String, Value)> = candidates
        .iter()
        .map(|(path, n)| (format!("{field}.{path}"), Value::Array(vec![json!({}); *n])))
        .collect();
    let eval = |chosen: &[&(String, Value)]| -> Option<cue::Value> {
        let mut inputs: Vec<(&str, &Value)> = vec![("parameter", parameter), ("context", context)];
        inputs.extend(chosen.iter().map(|(p, v)| (p.as_str(), v)));
        let v = template.eval_with(&inputs).ok()?;
        v.validate().ok()?;
        let f = v.lookup(field).filter(cue::Value::exists)?;
        f.to_json().ok()?;
        Some(f)
    };
    let all: Vec<&(String, Value)> = elements.iter().collect();
    if let Some(v) = eval(&all) {
        return Some(v);
    }
    // One of them is not an open list: keep those that are.
    let open: Vec<&(String, Value)> = elements.iter().filter(|e| eval(&[*e]).is_some()).collect();
    if open.is_empty() {
        return None;
    }
    eval(&open)
}

fn check_applies(
    component: &Compiled,
    tr: &Compiled,
    name: &str,
    rendered: Option<&Value>,
) -> Result<(), Error> {
    let applies = tr.definition.applies_to_workloads();
    if applies.is_empty() || applies.iter().any(|a| a == "*") {
        return Ok(());
    }
    let mut names = vec![component.definition.name.clone()];
    let mut add_kind = |api_version: &str, kind: &str| {
        let group = api_version.split_once('/').map_or("", |(g, _)| g);
        names.push(kind.to_string());
        names.push(format!("{}s.{group}", kind.to_lowercase()));
        names.push(format!("{api_version}.{kind}"));
    };
    let declared = component.definition.workload();
    if let Some(w) = &declared {
        add_kind(&w.api_version, &w.kind);
    }
    let actual = rendered.and_then(|o| {
        Some((
            o.get("apiVersion")?.as_str()?.to_string(),
            o.get("kind")?.as_str()?.to_string(),
        ))
    });
    if let Some((api_version, kind)) = &actual {
        add_kind(api_version, kind);
    }
    if let Some(t) = declared.as_ref().and_then(|w| w.type_name.clone()) {
        names.push(t);
    }
    if declared.is_none() && actual.is_none() {
        // A component without a workload (k8s-objects, raw) can carry anything.
        return Ok(());
    }
    if applies.iter().any(|a| names.contains(a)) {
        return Ok(());
    }
    let makes = actual
        .map(|(_, k)| k)
        .or_else(|| declared.map(|w| w.type_name.unwrap_or(w.kind)))
        .unwrap_or_else(|| "no workload".into());
    Err(Error::Invalid {
        component: name.into(),
        message: format!(
            "trait {:?} applies to {} but component type {:?} makes {makes}",
            tr.definition.name,
            applies.join(", "),
            component.definition.name,
        ),
    })
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}
