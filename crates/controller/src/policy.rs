//! The one-cluster policies of an application, decoded once per reconcile: what may be applied,
//! how, and what garbage collection may delete.

use crate::Error;
use oam::policy::{
    ApplyOncePolicySpec, ApplyOnceStrategy, ResourceLabels, ResourcePolicyRuleSelector,
    ResourceRulesPolicySpec, ResourceUpdatePolicySpec, ResourceUpdateStrategy, types,
};
use oam::{Application, ManagedResource};
use serde::Deserialize;
use serde_json::Value;

/// How many unused ApplicationRevisions are kept, as KubeVela's `--application-revision-limit`.
pub const DEFAULT_REVISION_LIMIT: usize = 10;

/// What garbage collection does with a resource no revision wants any more.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GcStrategy {
    /// Deleted once an update that no longer wants it succeeded (the default).
    OnAppUpdate,
    /// Kept until the application is deleted.
    OnAppDelete,
    /// Never deleted by Sailplane.
    Never,
}

/// The `garbage-collect` policy, with the fields KubeVela added after the typed spec in `oam`
/// (`propagation` per rule and `applicationRevisionLimit`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GcPolicy {
    #[serde(default)]
    pub keep_legacy_resource: bool,
    #[serde(default)]
    pub rules: Vec<GcRule>,
    #[serde(default)]
    pub application_revision_limit: Option<usize>,
    /// `dependency`: delete in the reverse of the components' dependency order.
    #[serde(default)]
    pub order: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GcRule {
    #[serde(default)]
    pub selector: ResourcePolicyRuleSelector,
    #[serde(default)]
    pub strategy: Option<String>,
    /// `orphan` or `cascading`.
    #[serde(default)]
    pub propagation: Option<String>,
}

/// Every one-cluster policy of an application.
#[derive(Clone, Debug, Default)]
pub struct Policies {
    pub gc: GcPolicy,
    pub apply_once: Option<ApplyOncePolicySpec>,
    pub read_only: Vec<ResourcePolicyRuleSelector>,
    pub take_over: Vec<ResourcePolicyRuleSelector>,
    pub shared: Vec<ResourcePolicyRuleSelector>,
    pub update: ResourceUpdatePolicySpec,
}

impl Policies {
    /// Decode the application's policies; a malformed one is an error naming it and the field.
    pub fn of(app: &Application) -> Result<Policies, Error> {
        let mut p = Policies::default();
        for pol in &app.spec.policies {
            let what = || {
                if pol.name.is_empty() {
                    format!("policy of type {}", pol.type_)
                } else {
                    format!("policy {:?} ({})", pol.name, pol.type_)
                }
            };
            let rules = |p: &oam::AppPolicy| -> Result<Vec<ResourcePolicyRuleSelector>, Error> {
                let spec: ResourceRulesPolicySpec = p
                    .typed_properties()
                    .map_err(|e| Error::Invalid(format!("{}: {e}", what())))?;
                Ok(spec.rules.into_iter().map(|r| r.selector).collect())
            };
            match pol.type_.as_str() {
                types::GARBAGE_COLLECT => {
                    let v = pol
                        .properties
                        .clone()
                        .unwrap_or_else(|| Value::Object(Default::default()));
                    p.gc = serde_json::from_value(v)
                        .map_err(|e| Error::Invalid(format!("{} properties: {e}", what())))?;
                    if let Some(o) = &p.gc.order
                        && o != "dependency"
                    {
                        return Err(Error::Invalid(format!(
                            "{}: order {o:?} is not \"dependency\" (the only order garbage-collect knows)",
                            what()
                        )));
                    }
                    for r in &p.gc.rules {
                        if let Some(s) = &r.strategy
                            && !matches!(s.as_str(), "onAppUpdate" | "onAppDelete" | "never")
                        {
                            return Err(Error::Invalid(format!(
                                "{}: strategy {s:?} is not one of onAppUpdate, onAppDelete, never",
                                what()
                            )));
                        }
                        if let Some(s) = &r.propagation
                            && !matches!(s.as_str(), "orphan" | "cascading")
                        {
                            return Err(Error::Invalid(format!(
                                "{}: propagation {s:?} is not one of orphan, cascading",
                                what()
                            )));
                        }
                    }
                }
                types::APPLY_ONCE => {
                    p.apply_once = Some(
                        pol.typed_properties()
                            .map_err(|e| Error::Invalid(format!("{}: {e}", what())))?,
                    );
                }
                types::READ_ONLY => p.read_only.extend(rules(pol)?),
                types::TAKE_OVER => p.take_over.extend(rules(pol)?),
                types::SHARED_RESOURCE => p.shared.extend(rules(pol)?),
                types::RESOURCE_UPDATE => {
                    let spec: ResourceUpdatePolicySpec = pol
                        .typed_properties()
                        .map_err(|e| Error::Invalid(format!("{}: {e}", what())))?;
                    for r in &spec.rules {
                        if let Some(op) = &r.strategy.op
                            && !matches!(op.as_str(), "patch" | "replace")
                        {
                            return Err(Error::Invalid(format!(
                                "{}: strategy.op {op:?} is not one of patch, replace",
                                what()
                            )));
                        }
                    }
                    p.update.rules.extend(spec.rules);
                }
                _ => {}
            }
        }
        Ok(p)
    }

    pub fn revision_limit(&self) -> usize {
        self.gc
            .application_revision_limit
            .unwrap_or(DEFAULT_REVISION_LIMIT)
    }

    pub fn is_read_only(&self, r: &ResourceLabels<'_>) -> bool {
        self.read_only.iter().any(|s| s.matches(r))
    }

    pub fn is_take_over(&self, r: &ResourceLabels<'_>) -> bool {
        self.take_over.iter().any(|s| s.matches(r))
    }

    pub fn is_shared(&self, r: &ResourceLabels<'_>) -> bool {
        self.shared.iter().any(|s| s.matches(r))
    }

    /// Whether state keep leaves the application alone entirely (apply-once without rules).
    pub fn skips_state_keep(&self) -> bool {
        self.apply_once
            .as_ref()
            .is_some_and(|a| a.enable && a.rules.is_empty())
    }

    /// The apply-once strategy for a resource at `stage` (`onUpdate` during a workflow run,
    /// `onStateKeep` during state keep), as KubeVela picks it: the first rule whose selector
    /// matches (a rule without selector matches all); an empty affect means always.
    pub fn apply_once_paths(&self, r: &ResourceLabels<'_>, stage: &str) -> Option<Vec<String>> {
        let a = self.apply_once.as_ref().filter(|a| a.enable)?;
        let rule = a
            .rules
            .iter()
            .find(|rule| rule.selector.as_ref().is_none_or(|s| s.matches(r)))?;
        let ApplyOnceStrategy { path, affect } = rule.strategy.clone().unwrap_or_default();
        let affect = affect.unwrap_or_default();
        if affect.is_empty() || affect == "always" || affect == stage {
            Some(path)
        } else {
            None
        }
    }

    /// With `order: dependency`, for each component the components that depend on it (by
    /// `dependsOn`, or by taking one of its outputs as an input), as KubeVela finds them: they
    /// must be gone before it is deleted. `None` without that order.
    pub fn gc_dependents(
        &self,
        app: &Application,
    ) -> Option<std::collections::BTreeMap<String, Vec<String>>> {
        if self.gc.order.as_deref() != Some("dependency") {
            return None;
        }
        let mut out: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for c in &app.spec.components {
            let outputs: Vec<&str> = c.outputs.iter().map(|o| o.name.as_str()).collect();
            let mut dependents: Vec<String> = app
                .spec
                .components
                .iter()
                .filter(|d| d.name != c.name)
                .filter(|d| {
                    d.depends_on.contains(&c.name)
                        || d.inputs.iter().any(|i| outputs.contains(&i.from.as_str()))
                })
                .map(|d| d.name.clone())
                .collect();
            dependents.dedup();
            out.insert(c.name.clone(), dependents);
        }
        Some(out)
    }

    /// The resource-update strategy of a resource.
    pub fn update_strategy(&self, r: &ResourceLabels<'_>) -> Option<&ResourceUpdateStrategy> {
        self.update
            .rules
            .iter()
            .find(|rule| rule.selector.matches(r))
            .map(|rule| &rule.strategy)
    }

    /// The garbage-collect rule of a tracked resource: its strategy and whether its dependents
    /// are orphaned. PersistentVolumeClaims no rule names are never deleted.
    pub fn gc_for(&self, m: &ManagedResource, app: &Application) -> (GcStrategy, bool) {
        let kind = m.kind.as_deref().unwrap_or_default();
        let name = m.name.as_deref().unwrap_or_default();
        let component_type = m
            .component
            .as_deref()
            .and_then(|c| app.component(c))
            .map(|c| c.type_.as_str());
        let labels = ResourceLabels {
            kind,
            name,
            component: m.component.as_deref(),
            component_type,
            oam_type: Some(if m.trait_.is_some() {
                oam::labels::RESOURCE_TYPE_TRAIT
            } else {
                oam::labels::RESOURCE_TYPE_WORKLOAD
            }),
            trait_type: m.trait_.as_deref(),
        };
        let rule = self.gc.rules.iter().find(|r| r.selector.matches(&labels));
        let orphan = rule.and_then(|r| r.propagation.as_deref()) == Some("orphan");
        let strategy = match rule.and_then(|r| r.strategy.as_deref()) {
            Some("never") => GcStrategy::Never,
            Some("onAppDelete") => GcStrategy::OnAppDelete,
            Some(_) => GcStrategy::OnAppUpdate,
            None if m.skip_gc || kind == "PersistentVolumeClaim" => GcStrategy::Never,
            None => GcStrategy::OnAppUpdate,
        };
        let strategy = if m.skip_gc {
            GcStrategy::Never
        } else {
            strategy
        };
        (strategy, orphan)
    }
}

/// The value at a dotted field path (`spec.replicas`, `spec.template.spec.containers[0].image`).
pub fn get_path<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = v;
    for seg in segments(path)? {
        cur = match seg {
            Seg::Key(k) => cur.get(k)?,
            Seg::Index(i) => cur.get(i)?,
        };
    }
    Some(cur)
}

/// Set the value at a dotted field path, creating objects on the way. False when the path
/// cannot be made (an index past the end, a scalar in the way).
pub fn set_path(v: &mut Value, path: &str, value: Value) -> bool {
    let Some(segs) = segments(path) else {
        return false;
    };
    let mut cur = v;
    for (i, seg) in segs.iter().enumerate() {
        let last = i + 1 == segs.len();
        match seg {
            Seg::Key(k) => {
                let Some(obj) = cur.as_object_mut() else {
                    return false;
                };
                if last {
                    obj.insert(k.to_string(), value);
                    return true;
                }
                cur = obj
                    .entry(k.to_string())
                    .or_insert_with(|| Value::Object(Default::default()));
            }
            Seg::Index(n) => {
                let Some(slot) = cur.as_array_mut().and_then(|a| a.get_mut(*n)) else {
                    return false;
                };
                if last {
                    *slot = value;
                    return true;
                }
                cur = slot;
            }
        }
    }
    false
}

enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

fn segments(path: &str) -> Option<Vec<Seg<'_>>> {
    let mut out = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (key, rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            out.push(Seg::Key(key));
        }
        let mut rest = rest;
        while let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            out.push(Seg::Index(r[..end].parse().ok()?));
            rest = &r[end + 1..];
        }
        if !rest.is_empty() {
            return None;
        }
    }
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths() {
        let mut v = json!({"spec": {"replicas": 2, "c": [{"image": "a"}]}});
        assert_eq!(get_path(&v, "spec.replicas"), Some(&json!(2)));
        assert_eq!(get_path(&v, "spec.c[0].image"), Some(&json!("a")));
        assert_eq!(get_path(&v, "spec.c[1].image"), None);
        assert!(set_path(&mut v, "spec.c[0].image", json!("b")));
        assert!(set_path(&mut v, "metadata.labels.x", json!("y")));
        assert!(!set_path(&mut v, "spec.replicas.x", json!(1)));
        assert!(!set_path(&mut v, "spec.c[3]", json!(1)));
        assert_eq!(v["spec"]["c"][0]["image"], json!("b"));
        assert_eq!(v["metadata"]["labels"]["x"], json!("y"));
        assert!(get_path(&v, "a[x]").is_none());
    }

    #[test]
    fn policies_decode_and_reject_bad_strategies() {
        let app: Application = serde_json::from_value(json!({
            "apiVersion": "core.oam.dev/v1beta1", "kind": "Application",
            "metadata": {"name": "a", "namespace": "default"},
            "spec": {"components": [], "policies": [
                {"name": "gc", "type": "garbage-collect", "properties": {
                    "applicationRevisionLimit": 3,
                    "rules": [{"selector": {"resourceTypes": ["ConfigMap"]}, "strategy": "never", "propagation": "orphan"}]}},
                {"name": "once", "type": "apply-once", "properties": {"enable": true,
                    "rules": [{"selector": {"resourceTypes": ["Deployment"]}, "strategy": {"path": ["spec.replicas"]}}]}}
            ]}
        }))
        .expect("app");
        let p = Policies::of(&app).expect("policies");
        assert_eq!(p.revision_limit(), 3);
        let cm = ManagedResource {
            kind: Some("ConfigMap".into()),
            name: Some("x".into()),
            ..Default::default()
        };
        assert_eq!(p.gc_for(&cm, &app), (GcStrategy::Never, true));
        let d = json!({"kind": "Deployment", "metadata": {"name": "x"}});
        let labels = ResourceLabels::from_manifest(&d);
        assert_eq!(
            p.apply_once_paths(&labels, "onStateKeep"),
            Some(vec!["spec.replicas".to_string()])
        );
        assert!(!p.skips_state_keep());

        let mut bad = app.clone();
        bad.spec.policies[0].properties =
            Some(json!({"rules": [{"selector": {}, "strategy": "sometimes"}]}));
        let e = Policies::of(&bad).expect_err("bad strategy");
        assert!(e.to_string().contains("sometimes"), "{e}");
    }
}
