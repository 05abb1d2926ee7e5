//! What goes where: the `topology`, `override` and `replication` policies of a `deploy` step,
//! as KubeVela applies them, as pure functions of the application and the known clusters.
//!
//! A `deploy` step names policies; they are applied in KubeVela's order, whatever order the step
//! lists them in:
//!
//! 1. `topology` picks the placements (cluster and namespace). Without a topology policy the
//!    components go to the hub (`local`) in the application's namespace.
//! 2. `override` policies, in the step's order, patch the components: properties are merged
//!    (objects merged key by key, everything else, lists included, replaced), traits are merged
//!    by type (`disable: true` removes one), `name` (with `*` wildcards) and `type` pick the
//!    components, a `type` different from the matched component's replaces that component,
//!    a name that matches nothing adds a component, and `selector` keeps only the components
//!    named.
//! 3. `replication` renders each selected component once per key (`context.replicaKey`); the
//!    components not selected stay as they are.
//!
//! Every component goes to every placement. Nothing here reads a cluster: the caller passes the
//! clusters it knows ([`ClusterInfo`]), the hub among them as `local`.

use std::collections::{BTreeMap, BTreeSet};

use oam::policy::{
    OverrideComponent, OverridePolicySpec, ReplicationPolicySpec, TopologyPolicySpec, types,
};
use oam::{AppPolicy, Application, ApplicationComponent, ApplicationTrait};
use serde_json::{Map, Value};

use crate::Error;
use crate::error::suggest;

/// The hub's cluster name.
pub const LOCAL_CLUSTER: &str = "local";

/// A cluster the caller knows: its name and labels (the labels of its cluster Secret).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterInfo {
    pub name: String,
    pub labels: BTreeMap<String, String>,
}

impl ClusterInfo {
    pub fn new(name: impl Into<String>) -> ClusterInfo {
        ClusterInfo {
            name: name.into(),
            labels: BTreeMap::new(),
        }
    }

    /// Adds a label.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> ClusterInfo {
        self.labels.insert(key.into(), value.into());
        self
    }
}

/// One place to deploy to: a cluster, and the namespace there (`None`: the application's).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Placement {
    pub cluster: String,
    pub namespace: Option<String>,
}

/// A component as it is to be rendered: overrides applied, and the replication key it is
/// rendered for (`context.replicaKey`), if replicated.
#[derive(Clone, Debug, PartialEq)]
pub struct PlannedComponent {
    pub component: ApplicationComponent,
    pub replica_key: Option<String>,
}

impl PlannedComponent {
    fn plain(component: ApplicationComponent) -> PlannedComponent {
        PlannedComponent {
            component,
            replica_key: None,
        }
    }
}

/// What one `deploy` step puts in one place.
#[derive(Clone, Debug, PartialEq)]
pub struct PlacementPlan {
    pub cluster: String,
    /// `None`: the application's namespace.
    pub namespace: Option<String>,
    pub components: Vec<PlannedComponent>,
}

/// A `deploy` step KubeVela generates for an application without a workflow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DefaultDeployStep {
    pub name: String,
    pub policies: Vec<String>,
}

/// The plan of one `deploy` step with `policies: policy_names`: topology, then overrides, then
/// replication. Errors name the policy: a name the application does not define, a policy of a
/// type a deploy step cannot use, properties that do not fit, a cluster that does not exist,
/// a label selector that selects nothing (unless `allowEmpty`).
pub fn deploy_plan(
    app: &Application,
    policy_names: &[String],
    clusters: &[ClusterInfo],
) -> Result<Vec<PlacementPlan>, Error> {
    deploy_plan_with_inline(app, policy_names, &[], clusters)
}

/// [`deploy_plan`] with the step's `inlinePolicies` as well (used after the named ones; an
/// inline policy without a name is called `inline-<type>-policy-<index>`, as in KubeVela).
pub fn deploy_plan_with_inline(
    app: &Application,
    policy_names: &[String],
    inline_policies: &[AppPolicy],
    clusters: &[ClusterInfo],
) -> Result<Vec<PlacementPlan>, Error> {
    deploy_plan_with_external(app, policy_names, inline_policies, &[], clusters)
}

/// [`deploy_plan_with_inline`] where a name the application does not define may also name one
/// of `external` policies: the stand-alone `Policy` objects of the application's namespace
/// (`oam::Policy`, as `AppPolicy { name, type, properties }`). As in KubeVela, the
/// application's own policies come first.
pub fn deploy_plan_with_external(
    app: &Application,
    policy_names: &[String],
    inline_policies: &[AppPolicy],
    external: &[AppPolicy],
    clusters: &[ClusterInfo],
) -> Result<Vec<PlacementPlan>, Error> {
    let mut policies = select_policies_with_external(app, policy_names, external)?;
    for (i, p) in inline_policies.iter().enumerate() {
        let mut p = p.clone();
        if p.name.is_empty() {
            p.name = format!("inline-{}-policy-{i}", p.type_);
        }
        check_deploy_type(&p)?;
        policies.push(p);
    }
    let placements = placements(&policies, clusters)?;
    let components = apply_overrides(&policies, &app.spec.components)?;
    let components = replicate(&policies, components)?;
    Ok(placements
        .into_iter()
        .map(|p| PlacementPlan {
            cluster: p.cluster,
            namespace: p.namespace,
            components: components.clone(),
        })
        .collect())
}

/// The plan when no policy shapes the deployment: every component, as written, to `local` in
/// the application's namespace.
pub fn default_plan(app: &Application) -> Vec<PlacementPlan> {
    vec![PlacementPlan {
        cluster: LOCAL_CLUSTER.into(),
        namespace: None,
        components: app
            .spec
            .components
            .iter()
            .cloned()
            .map(PlannedComponent::plain)
            .collect(),
    }]
}

/// The `deploy` steps KubeVela generates when the application has no workflow steps: one per
/// topology policy (`deploy-<topology>`, with that topology and every override policy), or,
/// without topology, one step `deploy` with the override policies when there are any or a
/// component is of type `ref-objects`. Empty when neither: the application then gets one
/// `apply-component` step per component, which is [`default_plan`].
pub fn default_deploy_steps(app: &Application) -> Vec<DefaultDeployStep> {
    let named = |t: &str| -> Vec<String> {
        app.spec
            .policies
            .iter()
            .filter(|p| p.type_ == t)
            .map(|p| p.name.clone())
            .collect()
    };
    let topologies = named(types::TOPOLOGY);
    let overrides = named(types::OVERRIDE);
    if !topologies.is_empty() {
        return topologies
            .into_iter()
            .map(|t| DefaultDeployStep {
                name: format!("deploy-{t}"),
                policies: std::iter::once(t)
                    .chain(overrides.iter().cloned())
                    .collect(),
            })
            .collect();
    }
    let has_ref_objects = app.spec.components.iter().any(|c| c.type_ == "ref-objects");
    if has_ref_objects || !overrides.is_empty() {
        return vec![DefaultDeployStep {
            name: "deploy".into(),
            policies: overrides,
        }];
    }
    Vec::new()
}

/// The application's policies of these names, in this order. A name the application does not
/// define, or a policy a `deploy` step cannot use (anything but topology, override and
/// replication), is an error naming it.
pub fn select_policies(app: &Application, names: &[String]) -> Result<Vec<AppPolicy>, Error> {
    select_policies_with_external(app, names, &[])
}

/// [`select_policies`], looking a name up in `external` (the namespace's `Policy` objects)
/// when the application does not define it.
pub fn select_policies_with_external(
    app: &Application,
    names: &[String],
    external: &[AppPolicy],
) -> Result<Vec<AppPolicy>, Error> {
    names
        .iter()
        .map(|name| {
            let policy = app
                .policy(name)
                .or_else(|| external.iter().find(|p| &p.name == name))
                .ok_or_else(|| Error::Policy {
                    policy: name.clone(),
                    message: format!(
                        "not found in the application's policies{}",
                        suggest(
                            name,
                            app.spec
                                .policies
                                .iter()
                                .chain(external)
                                .map(|p| p.name.as_str())
                        )
                    ),
                })?;
            check_deploy_type(policy)?;
            Ok(policy.clone())
        })
        .collect()
}

fn check_deploy_type(policy: &AppPolicy) -> Result<(), Error> {
    match policy.type_.as_str() {
        types::TOPOLOGY | types::OVERRIDE | types::REPLICATION => Ok(()),
        other => Err(Error::Policy {
            policy: policy.name.clone(),
            message: format!(
                "is of type {other:?}; a deploy step uses only topology, override and replication policies"
            ),
        }),
    }
}

fn perr(policy: &AppPolicy, message: impl Into<String>) -> Error {
    Error::Policy {
        policy: policy.name.clone(),
        message: message.into(),
    }
}

/// The properties as an object, with no field but `known` (KubeVela decodes them strictly).
fn properties_object<'a>(
    policy: &'a AppPolicy,
    known: &[&str],
) -> Result<Option<&'a Map<String, Value>>, Error> {
    match &policy.properties {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => {
            check_fields(policy, m, known, "")?;
            Ok(Some(m))
        }
        Some(other) => Err(perr(
            policy,
            format!("properties must be an object, found {}", json_kind(other)),
        )),
    }
}

fn check_fields(
    policy: &AppPolicy,
    m: &Map<String, Value>,
    known: &[&str],
    at: &str,
) -> Result<(), Error> {
    for k in m.keys() {
        if !known.contains(&k.as_str()) {
            return Err(perr(
                policy,
                format!(
                    "unknown field {at}{k:?}{}",
                    suggest(k, known.iter().copied())
                ),
            ));
        }
    }
    Ok(())
}

fn typed<T: serde::de::DeserializeOwned>(policy: &AppPolicy) -> Result<T, Error> {
    policy.typed_properties::<T>().map_err(|e| match e {
        oam::Error::Value { field, message, .. } => perr(
            policy,
            match field {
                Some(f) => format!("properties: {f}: {message}"),
                None => format!("properties: {message}"),
            },
        ),
        other => perr(policy, other.to_string()),
    })
}

/// The placements of the topology policies among `policies` (others are ignored), without
/// duplicates, in order. No topology policy: `local`, the application's namespace.
///
/// Per topology policy, as KubeVela: `clusters` (when given, even empty) lists the clusters,
/// each of which must exist; else `clusterLabelSelector` (or the deprecated `clusterSelector`)
/// selects every cluster carrying all its labels, sorted by name, and selecting none is an
/// error unless `allowEmpty`; else the hub. `namespace` applies to every cluster selected.
pub fn placements(
    policies: &[AppPolicy],
    clusters: &[ClusterInfo],
) -> Result<Vec<Placement>, Error> {
    let mut out: Vec<Placement> = Vec::new();
    let mut seen: BTreeSet<Placement> = BTreeSet::new();
    let mut add = |p: Placement| {
        if seen.insert(p.clone()) {
            out.push(p);
        }
    };
    let mut has_topology = false;
    for policy in policies.iter().filter(|p| p.type_ == types::TOPOLOGY) {
        has_topology = true;
        let Some(props) = properties_object(
            policy,
            &[
                "clusters",
                "clusterLabelSelector",
                "clusterSelector",
                "allowEmpty",
                "namespace",
            ],
        )?
        else {
            return Err(perr(
                policy,
                "a topology policy must not have empty properties",
            ));
        };
        let spec: TopologyPolicySpec = typed(policy)?;
        let namespace = spec.namespace.clone().filter(|n| !n.is_empty());
        let has = |k: &str| props.get(k).is_some_and(|v| !v.is_null());
        if has("clusters") {
            for name in &spec.clusters {
                let known = name == LOCAL_CLUSTER || clusters.iter().any(|c| &c.name == name);
                if !known {
                    return Err(perr(
                        policy,
                        format!(
                            "cluster {name:?} does not exist{}",
                            suggest(
                                name,
                                clusters
                                    .iter()
                                    .map(|c| c.name.as_str())
                                    .chain(std::iter::once(LOCAL_CLUSTER))
                                    .collect::<BTreeSet<_>>()
                                    .into_iter()
                            )
                        ),
                    ));
                }
                add(Placement {
                    cluster: name.clone(),
                    namespace: namespace.clone(),
                });
            }
        } else if let Some(selector) = spec
            .cluster_label_selector
            .as_ref()
            .or(spec.cluster_selector.as_ref())
        {
            let mut selected: Vec<&ClusterInfo> = clusters
                .iter()
                .filter(|c| selector.iter().all(|(k, v)| c.labels.get(k) == Some(v)))
                .collect();
            selected.sort_by(|a, b| a.name.cmp(&b.name));
            selected.dedup_by(|a, b| a.name == b.name);
            if selected.is_empty() && !spec.allow_empty.unwrap_or(false) {
                let labels: Vec<String> =
                    selector.iter().map(|(k, v)| format!("{k}={v}")).collect();
                return Err(perr(
                    policy,
                    format!(
                        "no cluster matches the labels {{{}}} (set allowEmpty: true to allow an empty selection)",
                        labels.join(", ")
                    ),
                ));
            }
            for c in selected {
                add(Placement {
                    cluster: c.name.clone(),
                    namespace: namespace.clone(),
                });
            }
        } else {
            add(Placement {
                cluster: LOCAL_CLUSTER.into(),
                namespace,
            });
        }
    }
    if !has_topology {
        return Ok(vec![Placement {
            cluster: LOCAL_CLUSTER.into(),
            namespace: None,
        }]);
    }
    Ok(out)
}

/// The components after the override policies among `policies`, applied in order (others are
/// ignored).
pub fn apply_overrides(
    policies: &[AppPolicy],
    components: &[ApplicationComponent],
) -> Result<Vec<ApplicationComponent>, Error> {
    let mut components = components.to_vec();
    for policy in policies.iter().filter(|p| p.type_ == types::OVERRIDE) {
        let Some(props) = properties_object(policy, &["components", "selector"])? else {
            return Err(perr(
                policy,
                "an override policy must not have empty properties",
            ));
        };
        if let Some(Value::Array(entries)) = props.get("components") {
            for (i, e) in entries.iter().enumerate() {
                if let Value::Object(m) = e {
                    check_fields(
                        policy,
                        m,
                        &["name", "type", "properties", "traits", "externalRevision"],
                        &format!("components[{i}]."),
                    )?;
                }
            }
        }
        let spec: OverridePolicySpec = typed(policy)?;
        // A selector given, even empty, filters: KubeVela tells `selector: []` from no selector.
        let selector = props
            .get("selector")
            .is_some_and(|v| !v.is_null())
            .then_some(spec.selector.as_slice());
        components = override_components(&components, &spec.components, selector)
            .map_err(|message| perr(policy, message))?;
    }
    Ok(components)
}

/// One override policy's patches and selector applied to components (KubeVela's
/// `PatchComponents`). For each patch in order:
///
/// - no `name`: every component (of `type`, when given) is merged with the patch;
/// - a `name` (a pattern: `*` matches anything, and the pattern matches anywhere in the
///   component's name, as KubeVela's unanchored regular expression does): each matching
///   component is merged with the patch, or replaced by it when the patch's `type` differs;
///   when nothing matches, the patch is added as a new component (disabled traits left out).
///
/// Then, with a selector, only the components it names are kept, in their order.
pub fn override_components(
    base: &[ApplicationComponent],
    patches: &[OverrideComponent],
    selector: Option<&[String]>,
) -> Result<Vec<ApplicationComponent>, String> {
    let mut comps: Vec<ApplicationComponent> = base.to_vec();
    for patch in patches {
        let name = patch.name.as_deref().unwrap_or("");
        let type_ = patch.type_.as_deref().unwrap_or("");
        if name.is_empty() {
            for c in comps.iter_mut() {
                if type_.is_empty() || type_ == c.type_ {
                    *c = merge_component(c, patch)
                        .map_err(|e| format!("component {:?}: {e}", c.name))?;
                }
            }
            continue;
        }
        let mut matched = false;
        for c in comps.iter_mut() {
            if !name_pattern_matches(name, &c.name) {
                continue;
            }
            matched = true;
            if !type_.is_empty() && type_ != c.type_ {
                let mut replaced = patch_to_component(patch);
                replaced.name = c.name.clone();
                *c = replaced;
            } else {
                *c = merge_component(c, patch)
                    .map_err(|e| format!("component {:?}: {e}", c.name))?;
            }
        }
        if !matched {
            if name.contains('*') {
                // KubeVela would add a component literally named after the pattern, which no
                // cluster accepts; a pattern that matches nothing is left alone here.
                continue;
            }
            if type_.is_empty() {
                return Err(format!(
                    "component {name:?} matches no component, and cannot be added without a type"
                ));
            }
            comps.push(patch_to_component(patch));
        }
    }
    if let Some(selector) = selector {
        comps.retain(|c| selector.iter().any(|s| s == &c.name));
    }
    Ok(comps)
}

/// KubeVela compiles the name with `*` turned into `.*` and matches it anywhere in the
/// component name. Component names are DNS names, so the only other regular-expression
/// character they hold is `.`, which matches any character.
fn name_pattern_matches(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    (0..=n.len()).any(|start| match_here(&p, &n[start..]))
}

/// Whether `p` matches a prefix of `n` (`*` any run, `.` any character).
fn match_here(p: &[char], n: &[char]) -> bool {
    match p.split_first() {
        None => true,
        Some(('*', rest)) => (0..=n.len()).any(|i| match_here(rest, &n[i..])),
        Some((c, rest)) => match n.split_first() {
            Some((d, nrest)) if *c == '.' || c == d => match_here(rest, nrest),
            _ => false,
        },
    }
}

fn patch_to_component(patch: &OverrideComponent) -> ApplicationComponent {
    ApplicationComponent {
        name: patch.name.clone().unwrap_or_default(),
        type_: patch.type_.clone().unwrap_or_default(),
        properties: patch.properties.clone(),
        traits: patch
            .traits
            .iter()
            .filter(|t| !t.disable.unwrap_or(false))
            .map(|t| ApplicationTrait {
                type_: t.type_.clone(),
                properties: t.properties.clone(),
            })
            .collect(),
        ..Default::default()
    }
}

/// A component merged with a patch: properties merged, traits merged by type, in the base's
/// order with new ones after; `disable: true` removes a trait.
fn merge_component(
    base: &ApplicationComponent,
    patch: &OverrideComponent,
) -> Result<ApplicationComponent, String> {
    let mut out = base.clone();
    out.properties = merge_properties(base.properties.as_ref(), patch.properties.as_ref())
        .map_err(|e| format!("properties: {e}"))?;
    for t in &patch.traits {
        let disable = t.disable.unwrap_or(false);
        match out.traits.iter().position(|b| b.type_ == t.type_) {
            Some(i) if disable => {
                out.traits.remove(i);
            }
            Some(i) => {
                let merged =
                    merge_properties(out.traits[i].properties.as_ref(), t.properties.as_ref())
                        .map_err(|e| format!("trait {:?}: {e}", t.type_))?;
                out.traits[i].properties = merged;
            }
            None if disable => {}
            None => out.traits.push(ApplicationTrait {
                type_: t.type_.clone(),
                properties: t.properties.clone(),
            }),
        }
    }
    Ok(out)
}

/// Properties merged as KubeVela merges them (mergo with override): objects key by key,
/// recursively; any other value of the patch, lists and `null` included, replaces the base's.
/// No patch leaves the base as it is; the result of a merge is always an object.
pub fn merge_properties(
    base: Option<&Value>,
    patch: Option<&Value>,
) -> Result<Option<Value>, String> {
    let patch = match patch {
        None | Some(Value::Null) => return Ok(base.cloned()),
        Some(Value::Object(p)) => p,
        Some(other) => return Err(format!("must be an object, found {}", json_kind(other))),
    };
    let mut out = match base {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(b)) => b.clone(),
        Some(other) => return Err(format!("must be an object, found {}", json_kind(other))),
    };
    merge_object(&mut out, patch);
    Ok(Some(Value::Object(out)))
}

fn merge_object(base: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (k, v) in patch {
        match (base.get_mut(k), v) {
            (Some(Value::Object(b)), Value::Object(p)) => merge_object(b, p),
            _ => {
                base.insert(k.clone(), v.clone());
            }
        }
    }
}

/// The components after the replication policies among `policies`: the components each
/// policy selects (by name; selecting none is an error) are replaced by one copy per key,
/// after the components no policy selects. Without a replication policy nothing changes.
pub fn replicate(
    policies: &[AppPolicy],
    components: Vec<ApplicationComponent>,
) -> Result<Vec<PlannedComponent>, Error> {
    let mut removed: BTreeSet<String> = BTreeSet::new();
    let mut added: Vec<PlannedComponent> = Vec::new();
    for policy in policies.iter().filter(|p| p.type_ == types::REPLICATION) {
        if properties_object(policy, &["keys", "selector"])?.is_none() {
            continue;
        }
        let spec: ReplicationPolicySpec = typed(policy)?;
        let selected: Vec<&ApplicationComponent> = components
            .iter()
            .filter(|c| spec.selector.contains(&c.name))
            .collect();
        if selected.is_empty() {
            return Err(perr(
                policy,
                format!(
                    "selects no component to replicate (selector {:?}; components {:?})",
                    spec.selector,
                    components
                        .iter()
                        .map(|c| c.name.as_str())
                        .collect::<Vec<_>>()
                ),
            ));
        }
        for c in selected {
            removed.insert(c.name.clone());
            for key in &spec.keys {
                added.push(PlannedComponent {
                    component: c.clone(),
                    replica_key: Some(key.clone()),
                });
            }
        }
    }
    let mut out: Vec<PlannedComponent> = components
        .into_iter()
        .filter(|c| !removed.contains(&c.name))
        .map(PlannedComponent::plain)
        .collect();
    out.extend(added);
    Ok(out)
}

/// A policy's properties checked against its PolicyDefinition (built-in or from the hub): the
/// template evaluated with `parameter` (the properties) and `context` (`name` the policy,
/// `appName`, `namespace`), every constraint enforced. Returns the parameters with the
/// definition's defaults filled in. An unknown policy type lists the closest names.
pub fn validate_policy(
    policy: &AppPolicy,
    app: &Application,
    catalog: &crate::Catalog,
) -> Result<Value, Error> {
    let def = catalog.require(crate::DefinitionKind::Policy, &policy.type_)?;
    let parameter = match &policy.properties {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(v @ Value::Object(_)) => v.clone(),
        Some(other) => {
            return Err(perr(
                policy,
                format!("properties must be an object, found {}", json_kind(other)),
            ));
        }
    };
    let context = serde_json::json!({
        "name": policy.name,
        "appName": app.name(),
        "namespace": app.namespace(),
        "parameter": parameter,
    });
    let cerr = |e: cue::Error| {
        perr(
            policy,
            format!("{} properties: {}", policy.type_, def.locate(e)),
        )
    };
    let value = def
        .template
        .eval_with(&[("parameter", &parameter), ("context", &context)])
        .map_err(cerr)?;
    value.validate().map_err(cerr)?;
    match value.lookup("parameter") {
        Some(p) => p.to_json().map_err(cerr),
        None => Ok(parameter),
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn app(spec: Value) -> Application {
        serde_json::from_value(json!({
            "apiVersion": "core.oam.dev/v1beta1",
            "kind": "Application",
            "metadata": {"name": "app", "namespace": "examples"},
            "spec": spec,
        }))
        .expect("test application decodes")
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn fleet() -> Vec<ClusterInfo> {
        vec![
            ClusterInfo::new("local"),
            ClusterInfo::new("hz-2").label("region", "hangzhou"),
            ClusterInfo::new("hz-1")
                .label("region", "hangzhou")
                .label("env", "prod"),
            ClusterInfo::new("bj-1").label("region", "beijing"),
        ]
    }

    fn placed(plans: &[PlacementPlan]) -> Vec<(String, Option<String>)> {
        plans
            .iter()
            .map(|p| (p.cluster.clone(), p.namespace.clone()))
            .collect()
    }

    fn nginx() -> Value {
        json!([{"name": "nginx", "type": "webservice", "properties": {"image": "nginx"}}])
    }

    #[test]
    fn no_policies_deploy_everything_to_local() {
        let a = app(json!({"components": nginx()}));
        let plans = deploy_plan(&a, &[], &fleet()).unwrap();
        assert_eq!(placed(&plans), vec![("local".into(), None)]);
        assert_eq!(plans, default_plan(&a));
        assert_eq!(plans[0].components[0].component.name, "nginx");
        assert_eq!(plans[0].components[0].replica_key, None);
    }

    #[test]
    fn topology_by_cluster_names_with_namespace() {
        let a = app(json!({"components": nginx(), "policies": [
            {"name": "topology-local", "type": "topology",
             "properties": {"clusters": ["local", "bj-1"], "namespace": "examples-alternative"}}
        ]}));
        let plans = deploy_plan(&a, &names(&["topology-local"]), &fleet()).unwrap();
        assert_eq!(
            placed(&plans),
            vec![
                ("local".into(), Some("examples-alternative".into())),
                ("bj-1".into(), Some("examples-alternative".into())),
            ]
        );
    }

    #[test]
    fn topology_unknown_cluster_is_an_error_naming_policy_and_cluster() {
        let a = app(json!({"components": nginx(), "policies": [
            {"name": "t", "type": "topology", "properties": {"clusters": ["hz-3"]}}
        ]}));
        let e = deploy_plan(&a, &names(&["t"]), &fleet())
            .unwrap_err()
            .to_string();
        assert!(e.contains("policy \"t\""), "{e}");
        assert!(e.contains("\"hz-3\" does not exist"), "{e}");
        assert!(e.contains("did you mean"), "{e}");
    }

    #[test]
    fn topology_by_labels_selects_sorted_and_deduplicates() {
        let a = app(json!({"components": nginx(), "policies": [
            {"name": "topology-hangzhou-clusters", "type": "topology",
             "properties": {"clusterLabelSelector": {"region": "hangzhou"}}},
            {"name": "prod", "type": "topology",
             "properties": {"clusterLabelSelector": {"region": "hangzhou", "env": "prod"}}},
        ]}));
        let plans = deploy_plan(
            &a,
            &names(&["topology-hangzhou-clusters", "prod"]),
            &fleet(),
        )
        .unwrap();
        assert_eq!(
            placed(&plans),
            vec![("hz-1".into(), None), ("hz-2".into(), None)]
        );
    }

    #[test]
    fn topology_legacy_cluster_selector_and_empty_selector() {
        let a = app(json!({"components": nginx(), "policies": [
            {"name": "legacy", "type": "topology", "properties": {"clusterSelector": {"region": "beijing"}}},
            {"name": "all", "type": "topology", "properties": {"clusterLabelSelector": {}}},
        ]}));
        let plans = deploy_plan(&a, &names(&["legacy"]), &fleet()).unwrap();
        assert_eq!(placed(&plans), vec![("bj-1".into(), None)]);
        let plans = deploy_plan(&a, &names(&["all"]), &fleet()).unwrap();
        assert_eq!(plans.len(), 4);
    }

    #[test]
    fn topology_empty_selection_fails_unless_allowed() {
        let a = app(json!({"components": nginx(), "policies": [
            {"name": "eu", "type": "topology", "properties": {"clusterLabelSelector": {"region": "eu"}}},
            {"name": "eu-ok", "type": "topology",
             "properties": {"clusterLabelSelector": {"region": "eu"}, "allowEmpty": true}},
        ]}));
        let e = deploy_plan(&a, &names(&["eu"]), &fleet())
            .unwrap_err()
            .to_string();
        assert!(e.contains("policy \"eu\""), "{e}");
        assert!(e.contains("region=eu"), "{e}");
        let plans = deploy_plan(&a, &names(&["eu-ok"]), &fleet()).unwrap();
        assert!(plans.is_empty());
    }

    #[test]
    fn topology_names_win_over_labels_and_empty_names_select_nothing() {
        let a = app(json!({"components": nginx(), "policies": [
            {"name": "both", "type": "topology",
             "properties": {"clusters": ["bj-1"], "clusterLabelSelector": {"region": "hangzhou"}}},
            {"name": "none", "type": "topology", "properties": {"clusters": []}},
            {"name": "ns-only", "type": "topology", "properties": {"namespace": "prod"}},
            {"name": "empty", "type": "topology"},
        ]}));
        let plans = deploy_plan(&a, &names(&["both"]), &fleet()).unwrap();
        assert_eq!(placed(&plans), vec![("bj-1".into(), None)]);
        assert!(
            deploy_plan(&a, &names(&["none"]), &fleet())
                .unwrap()
                .is_empty()
        );
        let plans = deploy_plan(&a, &names(&["ns-only"]), &fleet()).unwrap();
        assert_eq!(placed(&plans), vec![("local".into(), Some("prod".into()))]);
        let e = deploy_plan(&a, &names(&["empty"]), &fleet())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("policy \"empty\"") && e.contains("empty properties"),
            "{e}"
        );
    }

    #[test]
    fn unknown_or_wrong_policies_are_errors_naming_them() {
        let a = app(json!({"components": nginx(), "policies": [
            {"name": "topology-local", "type": "topology", "properties": {"clusters": ["local"]}},
            {"name": "gc", "type": "garbage-collect", "properties": {"keepLegacyResource": true}},
            {"name": "typo", "type": "topology", "properties": {"cluster": ["local"]}},
            {"name": "bad", "type": "topology", "properties": {"clusters": "local"}},
        ]}));
        let e = deploy_plan(&a, &names(&["topology-locl"]), &fleet())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("\"topology-locl\"") && e.contains("not found"),
            "{e}"
        );
        assert!(e.contains("did you mean \"topology-local\""), "{e}");
        let e = deploy_plan(&a, &names(&["gc"]), &fleet())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("policy \"gc\"") && e.contains("garbage-collect"),
            "{e}"
        );
        let e = deploy_plan(&a, &names(&["typo"]), &fleet())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("policy \"typo\"") && e.contains("unknown field \"cluster\""),
            "{e}"
        );
        let e = deploy_plan(&a, &names(&["bad"]), &fleet())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("policy \"bad\"") && e.contains("clusters"),
            "{e}"
        );
    }

    /// KubeVela's "deploy-with-override" example (multi-cluster case study).
    #[test]
    fn override_by_name_and_by_type_with_topology() {
        let a = app(json!({
            "components": [{"name": "nginx-with-override", "type": "webservice", "properties": {"image": "nginx"}}],
            "policies": [
                {"name": "topology-hangzhou-clusters", "type": "topology",
                 "properties": {"clusterLabelSelector": {"region": "hangzhou"}}},
                {"name": "override-nginx-legacy-image", "type": "override",
                 "properties": {"components": [{"name": "nginx-with-override", "properties": {"image": "nginx:1.20"}}]}},
                {"name": "override-high-availability", "type": "override",
                 "properties": {"components": [{"type": "webservice",
                     "traits": [{"type": "scaler", "properties": {"replicas": 3}}]}]}},
            ]
        }));
        let plans = deploy_plan(
            &a,
            &names(&[
                "topology-hangzhou-clusters",
                "override-nginx-legacy-image",
                "override-high-availability",
            ]),
            &fleet(),
        )
        .unwrap();
        assert_eq!(plans.len(), 2);
        for p in &plans {
            let c = &p.components[0].component;
            assert_eq!(c.properties, Some(json!({"image": "nginx:1.20"})));
            assert_eq!(c.traits.len(), 1);
            assert_eq!(c.traits[0].type_, "scaler");
            assert_eq!(c.traits[0].properties, Some(json!({"replicas": 3})));
        }
        // The application itself is untouched.
        assert_eq!(
            a.spec.components[0].properties,
            Some(json!({"image": "nginx"}))
        );
    }

    /// KubeVela's "advance-override" example: a selector, and a component added by name.
    #[test]
    fn override_selector_and_added_component() {
        let a = app(json!({
            "components": [
                {"name": "nginx-advance-override-legacy", "type": "webservice", "properties": {"image": "nginx:1.20"}},
                {"name": "nginx-advance-override-latest", "type": "webservice", "properties": {"image": "nginx"}},
            ],
            "policies": [
                {"name": "topology-local", "type": "topology",
                 "properties": {"clusters": ["local"], "namespace": "examples-alternative"}},
                {"name": "override-nginx-legacy", "type": "override",
                 "properties": {"selector": ["nginx-advance-override-legacy"]}},
                {"name": "override-nginx-latest", "type": "override",
                 "properties": {
                     "selector": ["nginx-advance-override-latest", "nginx-advance-override-stable"],
                     "components": [{"name": "nginx-advance-override-stable", "type": "webservice",
                                     "properties": {"image": "nginx:stable"}}]}},
            ]
        }));
        let plans = deploy_plan(
            &a,
            &names(&["topology-local", "override-nginx-legacy"]),
            &fleet(),
        )
        .unwrap();
        let got: Vec<&str> = plans[0]
            .components
            .iter()
            .map(|c| c.component.name.as_str())
            .collect();
        assert_eq!(got, vec!["nginx-advance-override-legacy"]);

        let plans = deploy_plan(&a, &names(&["override-nginx-latest"]), &fleet()).unwrap();
        let got: Vec<(&str, Option<&Value>)> = plans[0]
            .components
            .iter()
            .map(|c| (c.component.name.as_str(), c.component.properties.as_ref()))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "nginx-advance-override-latest",
                    Some(&json!({"image": "nginx"}))
                ),
                (
                    "nginx-advance-override-stable",
                    Some(&json!({"image": "nginx:stable"}))
                ),
            ]
        );
    }

    #[test]
    fn override_merges_properties_deeply_and_replaces_lists() {
        let merged = merge_properties(
            Some(
                &json!({"image": "nginx", "ports": [{"port": 80}], "env": {"A": "1", "B": "2"},
                         "cpu": "1", "limits": {"x": 1}}),
            ),
            Some(
                &json!({"ports": [{"port": 8080}], "env": {"B": "3"}, "replicas": 0,
                         "cpu": null, "limits": "none"}),
            ),
        )
        .unwrap();
        assert_eq!(
            merged,
            Some(
                json!({"image": "nginx", "ports": [{"port": 8080}], "env": {"A": "1", "B": "3"},
                        "replicas": 0, "cpu": null, "limits": "none"})
            )
        );
        assert_eq!(merge_properties(None, None).unwrap(), None);
        assert_eq!(
            merge_properties(None, Some(&json!({"a": 1}))).unwrap(),
            Some(json!({"a": 1}))
        );
        assert!(merge_properties(Some(&json!({})), Some(&json!([1]))).is_err());
    }

    #[test]
    fn override_traits_by_type_disable_and_order() {
        let base = vec![ApplicationComponent {
            name: "web".into(),
            type_: "webservice".into(),
            traits: vec![
                ApplicationTrait {
                    type_: "scaler".into(),
                    properties: Some(json!({"replicas": 1})),
                },
                ApplicationTrait {
                    type_: "labels".into(),
                    properties: Some(json!({"a": "1"})),
                },
                ApplicationTrait {
                    type_: "expose".into(),
                    properties: Some(json!({"port": [80]})),
                },
            ],
            ..Default::default()
        }];
        let patches: Vec<OverrideComponent> = serde_json::from_value(json!([{
            "traits": [
                {"type": "gateway", "properties": {"domain": "x.io"}},
                {"type": "labels", "disable": true},
                {"type": "scaler", "properties": {"replicas": 3}},
                {"type": "sidecar", "disable": true},
                {"type": "expose", "properties": {"port": [8080]}},
            ]
        }]))
        .unwrap();
        let out = override_components(&base, &patches, None).unwrap();
        let traits: Vec<(&str, Option<&Value>)> = out[0]
            .traits
            .iter()
            .map(|t| (t.type_.as_str(), t.properties.as_ref()))
            .collect();
        assert_eq!(
            traits,
            vec![
                ("scaler", Some(&json!({"replicas": 3}))),
                ("expose", Some(&json!({"port": [8080]}))),
                ("gateway", Some(&json!({"domain": "x.io"}))),
            ]
        );
    }

    #[test]
    fn override_selection_by_name_pattern_type_and_wildcard() {
        let base: Vec<ApplicationComponent> = serde_json::from_value(json!([
            {"name": "web-frontend", "type": "webservice", "properties": {"image": "a"}},
            {"name": "web-backend", "type": "webservice", "properties": {"image": "b"}},
            {"name": "job", "type": "task", "properties": {"image": "c"}},
        ]))
        .unwrap();
        let run = |patches: Value, selector: Option<Vec<String>>| {
            let p: Vec<OverrideComponent> = serde_json::from_value(patches).unwrap();
            override_components(&base, &p, selector.as_deref()).unwrap()
        };
        let image = |c: &ApplicationComponent| c.properties.as_ref().unwrap()["image"].clone();

        // "*" matches every component.
        let out = run(json!([{"name": "*", "properties": {"image": "x"}}]), None);
        assert!(out.iter().all(|c| image(c) == json!("x")));
        // "web-*" matches the two web components only.
        let out = run(
            json!([{"name": "web-*", "properties": {"image": "x"}}]),
            None,
        );
        assert_eq!(
            out.iter().map(image).collect::<Vec<_>>(),
            vec![json!("x"), json!("x"), json!("c")]
        );
        // A name matches anywhere in the component's name, as KubeVela's regexp does.
        let out = run(
            json!([{"name": "backend", "properties": {"image": "x"}}]),
            None,
        );
        assert_eq!(image(&out[1]), json!("x"));
        assert_eq!(image(&out[0]), json!("a"));
        // By type only.
        let out = run(
            json!([{"type": "task", "properties": {"image": "x"}}]),
            None,
        );
        assert_eq!(
            out.iter().map(image).collect::<Vec<_>>(),
            vec![json!("a"), json!("b"), json!("x")]
        );
        // A different type replaces the component (name kept, properties and traits from the patch).
        let out = run(
            json!([{"name": "job", "type": "cron-task", "properties": {"image": "y", "schedule": "* * * * *"}}]),
            None,
        );
        assert_eq!(out[2].type_, "cron-task");
        assert_eq!(out[2].name, "job");
        assert_eq!(
            out[2].properties,
            Some(json!({"image": "y", "schedule": "* * * * *"}))
        );
        // The same type merges.
        let out = run(
            json!([{"name": "job", "type": "task", "properties": {"count": 2}}]),
            None,
        );
        assert_eq!(out[2].properties, Some(json!({"image": "c", "count": 2})));
        // A selector keeps the named components, in their order; an empty one keeps none.
        let out = run(json!([]), Some(names(&["job", "web-frontend"])));
        assert_eq!(
            out.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
            vec!["web-frontend", "job"]
        );
        assert!(run(json!([]), Some(vec![])).is_empty());
        // A wildcard that matches nothing adds nothing.
        assert_eq!(
            run(json!([{"name": "db-*", "type": "worker"}]), None).len(),
            3
        );
    }

    #[test]
    fn override_unmatched_name_without_type_is_an_error() {
        let a = app(json!({"components": nginx(), "policies": [
            {"name": "o", "type": "override", "properties": {"components": [{"name": "ngnix", "properties": {"image": "x"}}]}},
            {"name": "strict", "type": "override", "properties": {"components": [{"name": "nginx", "trait": []}]}},
        ]}));
        let e = deploy_plan(&a, &names(&["o"]), &fleet())
            .unwrap_err()
            .to_string();
        assert!(e.contains("policy \"o\"") && e.contains("\"ngnix\""), "{e}");
        let e = deploy_plan(&a, &names(&["strict"]), &fleet())
            .unwrap_err()
            .to_string();
        assert!(e.contains("components[0].\"trait\""), "{e}");
    }

    /// KubeVela's replication example, with a component that is not replicated.
    #[test]
    fn replication_per_key_after_unselected_components() {
        let a = app(json!({
            "components": [
                {"name": "hello-rep", "type": "replica-webservice", "properties": {"image": "crccheck/hello-world"}},
                {"name": "hello-no-rep", "type": "webservice", "properties": {"image": "crccheck/hello-world"}},
            ],
            "policies": [
                {"name": "replication-default", "type": "replication",
                 "properties": {"keys": ["beijing", "hangzhou"], "selector": ["hello-rep"]}},
                {"name": "override-image", "type": "override",
                 "properties": {"components": [{"name": "hello-rep", "properties": {"image": "nginx"}}]}},
                {"name": "rep-nothing", "type": "replication",
                 "properties": {"keys": ["a"], "selector": ["nope"]}},
            ]
        }));
        // Listed replication first: overrides still apply before replication.
        let plans = deploy_plan(
            &a,
            &names(&["replication-default", "override-image"]),
            &fleet(),
        )
        .unwrap();
        let got: Vec<(&str, Option<&str>, Value)> = plans[0]
            .components
            .iter()
            .map(|c| {
                (
                    c.component.name.as_str(),
                    c.replica_key.as_deref(),
                    c.component.properties.clone().unwrap()["image"].clone(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("hello-no-rep", None, json!("crccheck/hello-world")),
                ("hello-rep", Some("beijing"), json!("nginx")),
                ("hello-rep", Some("hangzhou"), json!("nginx")),
            ]
        );
        let e = deploy_plan(&a, &names(&["rep-nothing"]), &fleet())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("policy \"rep-nothing\"") && e.contains("no component"),
            "{e}"
        );
    }

    #[test]
    fn inline_policies_get_kubevela_names() {
        let a = app(json!({"components": nginx()}));
        let inline: Vec<AppPolicy> = serde_json::from_value(json!([
            {"type": "topology", "properties": {"clusters": ["bj-1"]}},
            {"type": "apply-once", "properties": {"enable": true}},
        ]))
        .unwrap();
        let plans = deploy_plan_with_inline(&a, &[], &inline[..1], &fleet()).unwrap();
        assert_eq!(placed(&plans), vec![("bj-1".into(), None)]);
        let e = deploy_plan_with_inline(&a, &[], &inline, &fleet())
            .unwrap_err()
            .to_string();
        assert!(e.contains("inline-apply-once-policy-1"), "{e}");
    }

    #[test]
    fn external_policies_when_the_application_has_none_of_the_name() {
        let a = app(json!({"components": nginx(), "policies": [
            {"name": "where", "type": "topology", "properties": {"clusters": ["bj-1"]}},
        ]}));
        let external: Vec<AppPolicy> = serde_json::from_value(json!([
            {"name": "where", "type": "topology", "properties": {"clusters": ["hz-1"]}},
            {"name": "override-high-availability-webservice", "type": "override",
             "properties": {"components": [{"type": "webservice",
                 "traits": [{"type": "scaler", "properties": {"replicas": 3}}]}]}},
        ]))
        .unwrap();
        let plans = deploy_plan_with_external(
            &a,
            &names(&["override-high-availability-webservice", "where"]),
            &[],
            &external,
            &fleet(),
        )
        .unwrap();
        // The application's own `where` wins over the external one.
        assert_eq!(placed(&plans), vec![("bj-1".into(), None)]);
        assert_eq!(plans[0].components[0].component.traits[0].type_, "scaler");
        let e = deploy_plan_with_external(&a, &names(&["nowhere"]), &[], &external, &fleet())
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"nowhere\"") && e.contains("not found"), "{e}");
    }

    #[test]
    fn default_steps_as_kubevela_generates_them() {
        let a = app(json!({"components": nginx(), "policies": [
            {"name": "t1", "type": "topology", "properties": {"clusters": ["local"]}},
            {"name": "o1", "type": "override", "properties": {"components": []}},
            {"name": "t2", "type": "topology", "properties": {"clusters": ["bj-1"]}},
            {"name": "gc", "type": "garbage-collect", "properties": {}},
        ]}));
        assert_eq!(
            default_deploy_steps(&a),
            vec![
                DefaultDeployStep {
                    name: "deploy-t1".into(),
                    policies: names(&["t1", "o1"])
                },
                DefaultDeployStep {
                    name: "deploy-t2".into(),
                    policies: names(&["t2", "o1"])
                },
            ]
        );
        let a = app(json!({"components": nginx(), "policies": [
            {"name": "o1", "type": "override", "properties": {"components": []}},
        ]}));
        assert_eq!(
            default_deploy_steps(&a),
            vec![DefaultDeployStep {
                name: "deploy".into(),
                policies: names(&["o1"])
            }]
        );
        let a = app(json!({"components": nginx()}));
        assert!(default_deploy_steps(&a).is_empty());
        let a =
            app(json!({"components": [{"name": "r", "type": "ref-objects", "properties": {}}]}));
        assert_eq!(default_deploy_steps(&a).len(), 1);
    }

    #[test]
    fn name_patterns() {
        assert!(name_pattern_matches("*", ""));
        assert!(name_pattern_matches("web", "my-web-1"));
        assert!(name_pattern_matches("w.b", "wxb"));
        assert!(name_pattern_matches("a*c", "xxabbbcxx"));
        assert!(!name_pattern_matches("a*c", "cba"));
        assert!(!name_pattern_matches("web", "we"));
    }
}
