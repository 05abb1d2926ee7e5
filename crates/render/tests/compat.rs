//! Compatibility: the Applications of the KubeVela conformance render cases, rendered with
//! KubeVela's own definition files and with Sailplane's built-ins, give the same objects.
//!
//! Every case under `shared/conformance/kubevela/render/<case>/input.cue` carries the whole
//! application component (with its traits) in `context.components`; the component is rendered
//! through `render::render_component` twice, once with a catalog of KubeVela's definitions and
//! once with ours, and the objects are compared as JSON. Where ours differ on purpose the
//! difference is listed in `DELIBERATE` with the reason, and asserted exactly.

// Test helpers panic on purpose: the panic is the failure report.
#![allow(clippy::unwrap_used)]

use render::catalog::CompileCache;
use render::{Catalog, Definition, DefinitionKind, RenderContext};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn shared() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/kubevela");
    assert!(
        dir.join("definitions").is_dir() && dir.join("render").is_dir(),
        "the KubeVela conformance files are missing: expected {} (definitions/ and render/)",
        dir.display()
    );
    dir
}

fn catalog(defs: Vec<Definition>, cache: &CompileCache) -> (Catalog, Vec<String>) {
    let mut cat = Catalog::new();
    let mut failed = Vec::new();
    for d in defs {
        let name = d.name.clone();
        match cache.compile(d) {
            Ok(c) => cat.insert(c),
            Err(e) => failed.push(format!("{name}: {e}")),
        }
    }
    (cat, failed)
}

fn kubevela_definitions() -> (Vec<Definition>, Vec<String>) {
    let root = shared().join("definitions");
    let mut defs = Vec::new();
    let mut failed = Vec::new();
    for kind in ["component", "trait"] {
        let mut files: Vec<_> = std::fs::read_dir(root.join(kind))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        // `*.registry.cue` are other versions of the same definitions (from the addon registry).
        files.retain(|f| !f.to_string_lossy().contains(".registry."));
        for f in files {
            let src = std::fs::read_to_string(&f).unwrap();
            match Definition::from_cue_file(&f.display().to_string(), &src) {
                Ok(d) => defs.push(d),
                Err(e) => failed.push(e.to_string()),
            }
        }
    }
    (defs, failed)
}

/// One application of the conformance cases: its context and the component to render.
struct Case {
    name: String,
    /// The case folders of this application: `<name>.output`, `<name>.patch`, ….
    dirs: Vec<String>,
    ctx: RenderContext,
    component: oam::ApplicationComponent,
}

fn cases() -> Vec<Case> {
    let root = shared().join("render");
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|d| d.starts_with("component.") || d.starts_with("trait."))
        .collect();
    dirs.sort();
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for d in dirs {
        // `<kind>.<def>.<case>.<expr>`: the same application is rendered for several exprs.
        let name = d
            .rsplit_once('.')
            .map_or(d.as_str(), |(n, _)| n)
            .to_string();
        let src = std::fs::read_to_string(root.join(&d).join("input.cue")).unwrap();
        let start = src.find("\ncontext: {").expect("input.cue has a context") + 10;
        let ctx: Value = serde_json::Deserializer::from_str(&src[start..])
            .into_iter::<Value>()
            .next()
            .unwrap()
            .unwrap();
        let comp = ctx["components"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == ctx["name"])
            .cloned()
            .unwrap();
        let key = name.clone() + &comp.to_string();
        if !seen.insert(key) {
            if let Some(c) = out.iter_mut().find(|c: &&mut Case| c.name == name) {
                c.dirs.push(d);
            }
            continue;
        }
        let component: oam::ApplicationComponent = serde_json::from_value(comp).unwrap();
        let cv = &ctx["clusterVersion"];
        let str_of = |v: &Value| v.as_str().map_or(v.to_string(), str::to_string);
        let rc = RenderContext {
            app_name: str_of(&ctx["appName"]),
            namespace: str_of(&ctx["namespace"]),
            app_revision: str_of(&ctx["appRevision"]),
            app_revision_num: ctx["appRevisionNum"].as_i64().unwrap_or(1),
            cluster: String::new(),
            cluster_version: render::context::ClusterVersion {
                major: str_of(&cv["major"]),
                minor: str_of(&cv["minor"]),
                git_version: str_of(&cv["gitVersion"]),
                platform: str_of(&cv["platform"]),
            },
            workflow_name: str_of(&ctx["workflowName"]),
            components: ctx["components"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| str_of(&c["name"]))
                .collect(),
            ..Default::default()
        };
        out.push(Case {
            name,
            dirs: vec![d],
            ctx: rc,
            component,
        });
    }
    out
}

type Objects = BTreeMap<String, Value>;

fn render(case: &Case, cat: &Catalog) -> Result<Objects, String> {
    let r = render::render_component(&case.component, cat, &case.ctx).map_err(|e| e.to_string())?;
    Ok(r.objects()
        .map(|o| {
            (
                o.output_name.clone().unwrap_or_else(|| "output".into()),
                o.object.clone(),
            )
        })
        .collect())
}

/// Differences between two JSON values: `(pointer, theirs, ours)`.
fn diff(
    path: String,
    theirs: Option<&Value>,
    ours: Option<&Value>,
    out: &mut Vec<(String, Value, Value)>,
) {
    match (theirs, ours) {
        (Some(Value::Object(a)), Some(Value::Object(b))) => {
            let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for k in keys {
                diff(format!("{path}/{k}"), a.get(k), b.get(k), out);
            }
        }
        (Some(Value::Array(a)), Some(Value::Array(b))) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                diff(format!("{path}/{i}"), Some(x), Some(y), out);
            }
        }
        (a, b) if a == b => {}
        (a, b) => out.push((
            path,
            a.cloned().unwrap_or(json!("<absent>")),
            b.cloned().unwrap_or(json!("<absent>")),
        )),
    }
}

/// Labels and names `render_component` adds to every object (the oracle renders the bare
/// template, without them).
const RENDER_LABELS: &[&str] = &[
    "app.oam.dev/name",
    "app.oam.dev/namespace",
    "app.oam.dev/component",
    "app.oam.dev/appRevision",
    "oam.dev/resourceType",
    "app.oam.dev/resourceType",
    "workload.oam.dev/type",
    "trait.oam.dev/type",
    "trait.oam.dev/resource",
];

/// `ours` without what render adds and the oracle's object does not have.
fn strip_render_additions(ours: &Value, oracle: &Value) -> Value {
    let mut o = ours.clone();
    let Some(meta) = o.get_mut("metadata").and_then(Value::as_object_mut) else {
        return o;
    };
    let oracle_meta = oracle.get("metadata");
    if let Some(labels) = meta.get_mut("labels").and_then(Value::as_object_mut) {
        for l in RENDER_LABELS {
            let theirs = oracle_meta
                .and_then(|m| m.get("labels"))
                .and_then(|ls| ls.get(*l));
            if theirs.is_none() {
                labels.remove(*l);
            }
        }
        let had = oracle_meta.and_then(|m| m.get("labels")).is_some();
        if labels.is_empty() && !had {
            meta.remove("labels");
        }
    }
    if oracle_meta.and_then(|m| m.get("name")).is_none() {
        meta.remove("name");
    }
    if meta.is_empty() && oracle_meta.is_none() {
        o.as_object_mut().unwrap().remove("metadata");
    }
    o
}

/// What the official CUE evaluation of KubeVela's definition gave for one case folder:
/// `expected.current.*` (current CUE, what KubeVela runs) over `expected.*` (CUE v0.4).
fn oracle(dir: &str) -> Option<Result<Value, String>> {
    let d = shared().join("render").join(dir);
    for f in [
        "expected.current.json",
        "expected.current.error",
        "expected.json",
        "expected.error",
    ] {
        if let Ok(text) = std::fs::read_to_string(d.join(f)) {
            return Some(if f.ends_with(".json") {
                Ok(serde_json::from_str(&text).unwrap())
            } else {
                Err(text)
            });
        }
    }
    None
}

/// Compare ours with the oracle's `output` / `outputs` of the case's folders. Patches are not
/// compared: the oracle gives the patch, not the patched workload.
fn against_oracle(case: &Case, ours: &Result<Objects, String>) -> Vec<String> {
    let mut problems = Vec::new();
    // The `.registry.` cases were computed with the addon-registry versions of the definitions.
    if case.name.contains(".registry.") {
        return problems;
    }
    // The differences listed for the case against KubeVela's render hold against the oracle too.
    let allowed = |key: &str, pointer: &str| match expectation(&case.name) {
        Some(Expect::Differ(list)) => list.iter().any(|(p, _, _)| {
            let full = format!("/{key}{pointer}");
            full == *p || full.starts_with(&format!("{p}/"))
        }),
        _ => false,
    };
    for dir in &case.dirs {
        let expr = dir.rsplit('.').next().unwrap();
        if expr != "output" && expr != "outputs" {
            continue;
        }
        let Some(expected) = oracle(dir) else {
            continue;
        };
        if let Some(Expect::OtherDefinition) = expectation(&case.name) {
            continue;
        }
        if let Some(Expect::RefObjectSelectors) = expectation(&case.name) {
            problems.extend(ref_object_selectors_against_oracle(
                dir, expr, &expected, ours,
            ));
            continue;
        }
        match (&expected, ours) {
            (Err(_), Err(_)) => {}
            // KubeVela's storage reads the optional `parameter.configMap` and `parameter.secret`
            // unguarded in `outputs`, so a storage trait with only `pvc` fails there; ours renders.
            (Err(_), Ok(_)) if dir == "trait.storage.pvc-only.outputs" => {}
            (Err(e), Ok(_)) => problems.push(format!(
                "{dir}: the oracle fails ({}), ours renders",
                e.trim()
            )),
            (Ok(_), Err(e)) => problems.push(format!("{dir}: ours fails: {e}")),
            (Ok(exp), Ok(objs)) => {
                let pairs: Vec<(String, &Value, Option<&Value>)> = if expr == "output" {
                    if exp.as_object().is_some_and(|m| m.is_empty()) && !objs.contains_key("output")
                    {
                        continue;
                    }
                    vec![("output".into(), exp, objs.get("output"))]
                } else {
                    exp.as_object()
                        .unwrap()
                        .iter()
                        .map(|(k, v)| (k.clone(), v, objs.get(k)))
                        .collect()
                };
                for (k, theirs, mine) in pairs {
                    let mine = mine.map(|m| strip_render_additions(m, theirs));
                    let mut d = Vec::new();
                    diff(String::new(), Some(theirs), mine.as_ref(), &mut d);
                    d.retain(|(p, _, _)| !allowed(&k, p));
                    // The case's context carries `config`, which KubeVela's webservice turns
                    // into env; render's context has no `config` (a render matter, not ours).
                    if dir == "component.webservice.legacy.output" {
                        d.retain(|(p, _, _)| p != "/spec/template/spec/containers/0/env");
                    }
                    if !d.is_empty() {
                        problems.push(format!("{dir} {k}: {}", serde_json::to_string(&d).unwrap()));
                    }
                }
            }
        }
    }
    problems
}

/// The oracle passes ref-objects selectors through unresolved; ours must render each as a
/// `RefObjectSelector` carrying the same fields in its spec. Without `objects` the oracle fails
/// and ours renders nothing.
fn ref_object_selectors_against_oracle(
    dir: &str,
    expr: &str,
    expected: &Result<Value, String>,
    ours: &Result<Objects, String>,
) -> Vec<String> {
    let mut problems = Vec::new();
    let Ok(objs) = ours else {
        return vec![format!("{dir}: ours fails")];
    };
    let Ok(exp) = expected else {
        if !objs.is_empty() {
            problems.push(format!("{dir}: the oracle fails, ours renders {objs:?}"));
        }
        return problems;
    };
    let pairs: Vec<(String, &Value)> = if expr == "output" {
        vec![("output".into(), exp)]
    } else {
        exp.as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v))
            .collect()
    };
    for (k, selector) in pairs {
        let Some(mine) = objs.get(&k) else {
            problems.push(format!("{dir}: ours has no {k}"));
            continue;
        };
        if !render::refobjects::is_unresolved(mine) {
            problems.push(format!("{dir} {k}: not a RefObjectSelector: {mine}"));
            continue;
        }
        for (field, v) in selector.as_object().unwrap() {
            if mine.pointer(&format!("/spec/{field}")) != Some(v) {
                problems.push(format!("{dir} {k}: spec.{field} is not {v}: {mine}"));
            }
        }
    }
    problems
}

/// How a case is expected to come out, when not the same objects from both.
enum Expect {
    /// Both renders fail (the parameters are invalid).
    BothFail,
    /// Ours differ on purpose: `(object key + JSON pointer, KubeVela's value, ours)`, where
    /// `"<absent>"` means the field is not there.
    Differ(&'static [(&'static str, &'static str, &'static str)]),
    /// KubeVela's definition cannot be rendered by Sailplane's renderer (an engine/render issue,
    /// named by the message fragment); ours is checked against the official CUE evaluation of
    /// KubeVela's definition instead.
    KubevelaUnrenderable(&'static str),
    /// ref-objects: KubeVela reads the referred objects before it renders, and these cases
    /// render the selectors themselves. Ours renders each selector not yet resolved as a
    /// `RefObjectSelector` whose spec holds the selector with its defaults; that is what is
    /// checked against the oracle's selector, field by field.
    RefObjectSelectors,
    /// The conformance cases were made with another definition of the same name than the one
    /// ours is compatible with (reason given); ours only has to render, or refuse an `err-`
    /// case. builtins.rs checks what ours renders.
    OtherDefinition,
}

fn expectation(case: &str) -> Option<Expect> {
    use Expect::*;
    Some(match case {
        // Invalid parameters (the `err-` cases, and these): both refuse them.
        // These cases use KubeVela's registry kustomize (repoUrl, branch; the GitRepository is
        // the workload); ours is the fluxcd addon's (a Kustomization is), and accepts repoUrl
        // and branch too.
        c if c.starts_with("component.kustomize.") => OtherDefinition,
        c if c.contains(".err-") && c != "trait.startup-probe.err-probes-name-field" => BothFail,
        // KubeVela's own definition fails here for the shorthand patch key (below); ours
        // refuses `probes` entries with a `name` field (the field is `containerName`).
        "trait.startup-probe.err-probes-name-field"
        // json-patch `add` below a path that does not exist: RFC 6902 says no.
        | "trait.json-patch.opt" => BothFail,
        // expose applies to Deployments and StatefulSets only, not to this daemon.
        "trait.k8s-update-strategy.doc2" => BothFail,


        // No objects: KubeVela's `output: {...}` is an empty struct, not an object; ours has no
        // workload at all.
        "component.k8s-objects.empty" => KubevelaUnrenderable("output.apiVersion must be a string"),
        c if c.starts_with("component.ref-objects.") => RefObjectSelectors,

        // daemon: KubeVela accepts hostPath `mountPropagation` and `readOnly` and drops them;
        // ours puts them on the volume mount.
        "component.daemon.doc" => Differ(&[
            ("/output/spec/template/spec/containers/0/volumeMounts/0/mountPropagation", "<absent>", "\"HostToContainer\""),
            ("/output/spec/template/spec/containers/0/volumeMounts/0/readOnly", "<absent>", "true"),
            ("/output/spec/template/spec/containers/0/volumeMounts/1/mountPropagation", "<absent>", "\"HostToContainer\""),
            ("/output/spec/template/spec/containers/0/volumeMounts/1/readOnly", "<absent>", "true"),
        ]),
        // daemon: a UDP port's default name gets the protocol suffix as in webservice (a TCP and
        // a UDP port of the same number would otherwise share a name, which Kubernetes refuses),
        // and Service ports say their protocol.
        "component.daemon.opt" => Differ(&[
            ("/output/spec/template/spec/containers/0/ports/2/name", "\"port-5140\"", "\"port-5140-udp\""),
            ("/webserviceExpose/spec/ports/0/protocol", "<absent>", "\"TCP\""),
            ("/webserviceExpose/spec/ports/1/protocol", "<absent>", "\"TCP\""),
        ]),
        // webservice (the legacy `port`): our webservice names the container port and gives its
        // protocol, as it does for `ports`.
        "component.webservice.legacy" => Differ(&[
            ("/output/spec/template/spec/containers/0/ports/0/name", "<absent>", "\"port-8080\""),
            ("/output/spec/template/spec/containers/0/ports/0/protocol", "<absent>", "\"TCP\""),
        ]),
        "trait.annotations.doc" | "trait.labels.doc" | "trait.gateway.doc" => Differ(&[
            ("/output/spec/template/spec/containers/0/ports/0/name", "<absent>", "\"port-8000\""),
            ("/output/spec/template/spec/containers/0/ports/0/protocol", "<absent>", "\"TCP\""),
        ]),
        "trait.nocalhost.doc" => Differ(&[
            ("/output/spec/template/spec/containers/0/ports/0/name", "<absent>", "\"port-9080\""),
            ("/output/spec/template/spec/containers/0/ports/0/protocol", "<absent>", "\"TCP\""),
        ]),
        // pure-ingress: networking.k8s.io/v1beta1 Ingress was removed in Kubernetes 1.22;
        // ours uses networking.k8s.io/v1 from 1.19 (v1beta1 before, as gateway does).
        "trait.pure-ingress.doc" => Differ(&[
            ("/ingress/apiVersion", "\"networking.k8s.io/v1beta1\"", "\"networking.k8s.io/v1\""),
            ("/ingress/spec/rules/0/http/paths/0/backend/service", "<absent>", r#"{"name":"frontend","port":{"number":8000}}"#),
            ("/ingress/spec/rules/0/http/paths/0/backend/serviceName", "\"frontend\"", "<absent>"),
            ("/ingress/spec/rules/0/http/paths/0/backend/servicePort", "8000", "<absent>"),
            ("/ingress/spec/rules/0/http/paths/0/pathType", "<absent>", "\"ImplementationSpecific\""),
        ]),
        "trait.pure-ingress.opt" => Differ(&[
            ("/ingress/apiVersion", "\"networking.k8s.io/v1beta1\"", "\"networking.k8s.io/v1\""),
            ("/ingress/spec/rules/0/http/paths/0/backend/service", "<absent>", r#"{"name":"frontend","port":{"number":80}}"#),
            ("/ingress/spec/rules/0/http/paths/0/backend/serviceName", "\"frontend\"", "<absent>"),
            ("/ingress/spec/rules/0/http/paths/0/backend/servicePort", "80", "<absent>"),
            ("/ingress/spec/rules/0/http/paths/0/pathType", "<absent>", "\"ImplementationSpecific\""),
            ("/ingress/spec/rules/0/http/paths/1/backend/service", "<absent>", r#"{"name":"frontend","port":{"number":8080}}"#),
            ("/ingress/spec/rules/0/http/paths/1/backend/serviceName", "\"frontend\"", "<absent>"),
            ("/ingress/spec/rules/0/http/paths/1/backend/servicePort", "8080", "<absent>"),
            ("/ingress/spec/rules/0/http/paths/1/pathType", "<absent>", "\"ImplementationSpecific\""),
        ]),
        // storage: KubeVela's Block-mode PVC leaves an empty `{}` volume mount (its `if` inside
        // the `for` yields an empty struct); a ConfigMap's `readOnly: true` is dropped by
        // KubeVela and kept by ours.
        "trait.storage.opt" => Differ(&[("/output/spec/template/spec/containers/0/volumeMounts", "*", "*")]),
        _ => return None,
    })
}

#[test]
fn builtins_render_like_kubevela() {
    let cache = CompileCache::default();
    let (kv_defs, kv_parse_failed) = kubevela_definitions();
    let (kv, kv_compile_failed) = catalog(kv_defs, &cache);
    let (ours, ours_failed) = catalog(render::builtin::definitions().unwrap(), &cache);
    assert!(ours_failed.is_empty(), "{ours_failed:?}");
    // helmchart imports `vela/helm`, a KubeVela-only package; it is not one of ours.
    for f in kv_parse_failed.iter().chain(&kv_compile_failed) {
        assert!(
            f.contains("helmchart"),
            "KubeVela definition not usable: {f}"
        );
    }
    let has = |kind, name: &str| ours.get(kind, name).is_some();
    let mut failures = Vec::new();
    let mut compared = 0;
    for case in cases() {
        if !has(DefinitionKind::Component, &case.component.type_)
            || case
                .component
                .traits
                .iter()
                .any(|t| !has(DefinitionKind::Trait, &t.type_))
        {
            continue;
        }
        compared += 1;
        let theirs = render(&case, &kv);
        let mine = render(&case, &ours);
        let n = &case.name;
        match (expectation(n), &theirs, &mine) {
            (None, Ok(a), Ok(b)) => {
                let mut d = Vec::new();
                diff(String::new(), Some(&json!(a)), Some(&json!(b)), &mut d);
                if !d.is_empty() {
                    failures.push(format!(
                        "{n}: differs: {}",
                        serde_json::to_string(&d).unwrap()
                    ));
                }
            }
            (Some(Expect::BothFail), Err(_), Err(_)) => {}
            (Some(Expect::Differ(expected)), Ok(a), Ok(b)) => {
                let mut d = Vec::new();
                diff(String::new(), Some(&json!(a)), Some(&json!(b)), &mut d);
                let got: Vec<(String, String, String)> = d
                    .into_iter()
                    .map(|(p, t, o)| {
                        let show = |v: Value| {
                            v.as_str()
                                .filter(|s| *s == "<absent>")
                                .map_or(v.to_string(), str::to_string)
                        };
                        (p, show(t), show(o))
                    })
                    .collect();
                let want: Vec<(String, String, String)> = expected
                    .iter()
                    .map(|(p, t, o)| (p.to_string(), t.to_string(), o.to_string()))
                    .collect();
                // `*` stands for a whole list that differs; the reason is in the comment.
                let matches = got.len() == want.len()
                    && got.iter().zip(&want).all(|(g, w)| {
                        g.0 == w.0 && (w.1 == "*" || g.1 == w.1) && (w.2 == "*" || g.2 == w.2)
                    });
                if !matches {
                    failures.push(format!("{n}: expected differences {want:?}, got {got:?}"));
                }
            }
            (Some(Expect::KubevelaUnrenderable(why)), Err(e), _) if e.contains(why) => {}
            (Some(Expect::OtherDefinition), _, Ok(_)) if !n.contains(".err-") => {}
            (Some(Expect::OtherDefinition), _, Err(_)) if n.contains(".err-") => {}
            (Some(Expect::RefObjectSelectors), _, Ok(b)) => {
                for (k, o) in b {
                    if !render::refobjects::is_unresolved(o) {
                        failures.push(format!("{n}: {k} is not a RefObjectSelector: {o}"));
                    }
                }
            }
            (x, a, b) => failures.push(format!(
                "{n}: unexpected outcome (expected {}): kubevela {:?} | ours {:?}",
                match x {
                    None => "the same objects",
                    Some(Expect::BothFail) => "both to fail",
                    Some(Expect::Differ(_)) => "listed differences",
                    Some(Expect::KubevelaUnrenderable(_)) => "KubeVela's definition to fail",
                    Some(Expect::RefObjectSelectors) => "selectors",
                    Some(Expect::OtherDefinition) => "ours to render",
                },
                a.as_ref().map(|_| "ok"),
                b.as_ref().map(|_| "ok").map_err(|e| e.clone()),
            )),
        }
        for p in against_oracle(&case, &mine) {
            failures.push(format!("oracle: {p}"));
        }
    }
    assert!(compared >= 80, "only {compared} cases compared");
    assert!(
        failures.is_empty(),
        "{} problems:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
