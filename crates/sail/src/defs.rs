//! `sail dry-run` and `sail def render | vet | list`: definitions and rendering without touching
//! a cluster.

use crate::Error;
use comfy_table::{Table, presets::NOTHING};
use kube::Api;
use render::catalog::CompileCache;
use render::{Catalog, Definition, DefinitionKind};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Read definition files: a `.cue` file (KubeVela's definition format) or every `.cue` file of a
/// folder.
pub fn read_definitions(paths: &[PathBuf]) -> Result<Vec<Definition>, Error> {
    let mut defs = Vec::new();
    for p in paths {
        let files: Vec<PathBuf> = if p.is_dir() {
            let mut v: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| Error::File {
                    path: p.display().to_string(),
                    message: format!("cannot read the folder: {e}"),
                })?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|x| x == "cue"))
                .collect();
            v.sort();
            v
        } else {
            vec![p.clone()]
        };
        for f in files {
            defs.push(read_definition(&f)?);
        }
    }
    Ok(defs)
}

fn read_definition(path: &Path) -> Result<Definition, Error> {
    let src = std::fs::read_to_string(path).map_err(|e| Error::File {
        path: path.display().to_string(),
        message: format!("cannot read: {e}"),
    })?;
    Ok(Definition::from_cue_file(
        &path.display().to_string(),
        &src,
    )?)
}

/// One deploy step of an application: its name, the policies it names and its inline ones.
struct DeployStep {
    name: String,
    policies: Vec<String>,
    inline: Vec<oam::AppPolicy>,
}

/// The deploy steps the workflow runs, as the controller plans them (explicit `deploy` steps,
/// including those in step groups, or KubeVela's generated ones). Empty: components go to the
/// hub as written.
fn deploy_steps(app: &oam::Application) -> Result<Vec<DeployStep>, Error> {
    let plan = controller::placement::plan(app);
    let mut out = Vec::new();
    let steps = plan
        .steps
        .iter()
        .flat_map(|s| std::iter::once(s).chain(s.sub_steps.iter()));
    for step in steps.filter(|s| s.type_ == "deploy") {
        let (policies, inline) = controller::placement::deploy_policies(&step.properties)
            .map_err(|e| Error::Failed(format!("step {}: {e}", step.name)))?;
        out.push(DeployStep {
            name: step.name.clone(),
            policies,
            inline,
        });
    }
    Ok(out)
}

/// `sail dry-run`: render every component of the applications in FILE, per deploy step and
/// placement (topology, override and replication policies applied), and print the objects.
pub async fn dry_run(
    file: &Path,
    dirs: &[PathBuf],
    offline: bool,
    kubeconfig: Option<&Path>,
) -> Result<(), Error> {
    let objects = crate::apps::read_file(file)?;
    let extra = read_definitions(dirs)?;
    let cache = CompileCache::default();
    let hub = if offline {
        None
    } else {
        Some(crate::hub::connect(kubeconfig).await.map_err(|e| {
            Error::Failed(format!(
                "{e} (or render with the built-in definitions only: --offline)"
            ))
        })?)
    };
    let in_file = |e: String| Error::File {
        path: file.display().to_string(),
        message: e,
    };
    let mut apps = Vec::new();
    for app in &objects.apps {
        let resolved = referenced(app, &objects, hub.as_ref())
            .await?
            .map_err(|p| in_file(format!("application {:?}: {}", app.name(), p.message)))?;
        apps.push(resolved);
    }
    let clusters = known_clusters(hub.as_ref(), &apps).await?;
    let mut out = String::new();
    for app in &apps {
        let ns = app.namespace().to_string();
        let mut catalog = match &hub {
            None => {
                let mut c = Catalog::new();
                for d in render::builtin::definitions()? {
                    c.insert(cache.compile(d)?);
                }
                c
            }
            Some(hub) => {
                let builtins = controller::definitions::builtins()?;
                controller::definitions::load(&hub.client, &cache, &builtins, &ns)
                    .await?
                    .0
            }
        };
        for d in &extra {
            catalog.insert(cache.compile(d.clone())?);
        }
        let steps = deploy_steps(app)?;
        let plans: Vec<(String, Vec<render::policy::PlacementPlan>)> = if steps.is_empty() {
            vec![(String::new(), render::policy::default_plan(app))]
        } else {
            steps
                .iter()
                .map(|s| {
                    render::policy::deploy_plan_with_inline(app, &s.policies, &s.inline, &clusters)
                        .map(|p| (s.name.clone(), p))
                        .map_err(|e| {
                            in_file(format!(
                                "application {:?}, step {}: {e}",
                                app.name(),
                                s.name
                            ))
                        })
                })
                .collect::<Result<_, _>>()?
        };
        for (step, placements) in &plans {
            for placement in placements {
                let target_ns = placement.namespace.clone().unwrap_or_else(|| ns.clone());
                for planned in &placement.components {
                    let c = &planned.component;
                    let ctx = render::RenderContext {
                        app_name: app.name().to_string(),
                        namespace: target_ns.clone(),
                        app_namespace: ns.clone(),
                        app_revision: format!("{}-v1", app.name()),
                        app_revision_num: 1,
                        cluster: if placement.cluster == fleet::LOCAL {
                            String::new()
                        } else {
                            placement.cluster.clone()
                        },
                        replica_key: planned.replica_key.clone().unwrap_or_default(),
                        components: app.spec.components.iter().map(|c| c.name.clone()).collect(),
                        ..render::RenderContext::default()
                    };
                    let rendered = render::render_component(c, &catalog, &ctx)
                        .map_err(|e| in_file(format!("application {:?}: {e}", app.name())))?;
                    for o in rendered.objects() {
                        out.push_str("---\n");
                        let mut header = format!("# application {}/{}", ns, app.name());
                        if !step.is_empty() {
                            header.push_str(&format!(", step {step}"));
                        }
                        header.push_str(&format!(
                            ", cluster {}, namespace {target_ns}",
                            placement.cluster
                        ));
                        if let Some(k) = &planned.replica_key {
                            header.push_str(&format!(", replica {k}"));
                        }
                        header.push_str(&format!(", component {} ({})", c.name, c.type_));
                        if let Some(t) = &o.trait_type {
                            header.push_str(&format!(", trait {t}"));
                        }
                        out.push_str(&header);
                        out.push('\n');
                        out.push_str(
                            &serde_saphyr::to_string(&o.object)
                                .map_err(|e| Error::Failed(e.to_string()))?,
                        );
                    }
                }
            }
        }
    }
    print!("{out}");
    Ok(())
}

/// The application with the Workflow and Policy objects it refers to written in, as the
/// controller runs it: from the same file first, else from the hub when there is one.
async fn referenced(
    app: &oam::Application,
    objects: &crate::apps::AppFile,
    hub: Option<&crate::hub::Hub>,
) -> Result<Result<oam::Application, controller::effective::Problem>, Error> {
    use controller::effective;
    let ns = app.namespace().to_string();
    let same = |meta: &kube::api::ObjectMeta, name: &str| {
        meta.name.as_deref() == Some(name) && meta.namespace.as_deref().is_none_or(|n| n == ns)
    };
    let mut workflow = None;
    if let Some(name) = effective::workflow_ref(app) {
        workflow = objects
            .workflows
            .iter()
            .find(|w| same(&w.metadata, name))
            .map(|w| w.spec.clone());
        if workflow.is_none()
            && let Some(hub) = hub
        {
            workflow = Api::<oam::Workflow>::namespaced(hub.client.clone(), &ns)
                .get_opt(name)
                .await
                .map_err(Error::api(format!("read workflow {ns}/{name}")))?
                .map(|w| w.spec);
        }
    }
    let with_steps = match effective::with_workflow(app, workflow.as_ref()) {
        Ok(w) => w.unwrap_or_else(|| app.clone()),
        Err(p) => return Ok(Err(p)),
    };
    let mut found = BTreeMap::new();
    for name in effective::external_policy_names(&with_steps) {
        let mut p = objects
            .policies
            .iter()
            .find(|p| same(&p.metadata, &name))
            .map(|p| p.spec.clone());
        if p.is_none()
            && let Some(hub) = hub
        {
            p = Api::<oam::Policy>::namespaced(hub.client.clone(), &ns)
                .get_opt(&name)
                .await
                .map_err(Error::api(format!("read policy {ns}/{name}")))?
                .map(|p| p.spec);
        }
        if let Some(p) = p {
            found.insert(name, p);
        }
    }
    Ok(
        effective::with_policies(&with_steps, |n| found.get(n).cloned())
            .map(|p| p.unwrap_or(with_steps.clone())),
    )
}

/// The clusters placements may use: the hub's registry when there is a hub; offline, `local`
/// and every cluster a topology policy names (labels are unknown offline, so a label selector
/// selects nothing there).
async fn known_clusters(
    hub: Option<&crate::hub::Hub>,
    apps: &[oam::Application],
) -> Result<Vec<render::policy::ClusterInfo>, Error> {
    let mut clusters = vec![render::policy::ClusterInfo::new(fleet::LOCAL)];
    match hub {
        Some(hub) => {
            let (records, _) = fleet::registry::list(&hub.client).await?;
            for r in records {
                clusters.push(render::policy::ClusterInfo {
                    name: r.name,
                    labels: r.labels,
                });
            }
        }
        None => {
            for app in apps {
                for p in app.spec.policies.iter().filter(|p| p.type_ == "topology") {
                    let names = p
                        .properties
                        .as_ref()
                        .and_then(|v| v.get("clusters"))
                        .and_then(|v| v.as_array())
                        .into_iter()
                        .flatten()
                        .filter_map(|v| v.as_str());
                    for n in names {
                        if !clusters.iter().any(|c| c.name == n) {
                            clusters.push(render::policy::ClusterInfo::new(n));
                        }
                    }
                }
            }
        }
    }
    Ok(clusters)
}

/// `sail def render FILE`: the definition object (YAML) a definition file stands for.
pub fn render_file(file: &Path, namespace: &str) -> Result<(), Error> {
    let def = read_definition(file)?;
    CompileCache::default().compile(def.clone())?;
    let text = serde_saphyr::to_string(&def.to_object(namespace))
        .map_err(|e| Error::Failed(e.to_string()))?;
    print!("{text}");
    Ok(())
}

/// Definitions from a file: a KubeVela-style CUE definition file, or YAML with one or more
/// definition objects (ComponentDefinition, TraitDefinition, PolicyDefinition,
/// WorkflowStepDefinition).
fn definitions_in(file: &Path) -> Result<Vec<Definition>, Error> {
    let is_yaml = file
        .extension()
        .is_some_and(|x| x == "yaml" || x == "yml" || x == "json");
    if !is_yaml {
        return Ok(vec![read_definition(file)?]);
    }
    let name = file.display().to_string();
    let text = std::fs::read_to_string(file).map_err(|e| Error::File {
        path: name.clone(),
        message: format!("cannot read: {e}"),
    })?;
    let mut defs = Vec::new();
    for doc in oam::parse::split_documents(&text) {
        let value = oam::parse::document_value(&name, &doc)?;
        if value.is_null() {
            continue;
        }
        let kind = value.get("kind").and_then(|k| k.as_str()).unwrap_or("");
        if DefinitionKind::from_kind_name(kind).is_none() {
            return Err(Error::File {
                path: name.clone(),
                message: format!(
                    "document at line {}: kind {kind:?} is not a definition (expected ComponentDefinition, TraitDefinition, PolicyDefinition or WorkflowStepDefinition)",
                    doc.first_line
                ),
            });
        }
        defs.push(Definition::from_object(&value).map_err(|e| Error::File {
            path: name.clone(),
            message: format!("document at line {}: {e}", doc.first_line),
        })?);
    }
    if defs.is_empty() {
        return Err(Error::File {
            path: name,
            message: "no definition in the file".to_string(),
        });
    }
    Ok(defs)
}

/// `sail def apply FILE [-n NAMESPACE] [--dry-run]`: check that every definition in the file
/// compiles, then apply them to the hub (server-side apply). Nothing is written unless all of
/// them compile.
pub async fn apply(
    hub: &crate::hub::Hub,
    file: &Path,
    namespace: &str,
    dry_run: bool,
) -> Result<(), Error> {
    let defs = definitions_in(file)?;
    let cache = CompileCache::default();
    for d in &defs {
        cache.compile(d.clone()).map_err(|e| Error::File {
            path: file.display().to_string(),
            message: e.to_string(),
        })?;
    }
    let cluster = fleet::Cluster::new(fleet::LOCAL, hub.client.clone());
    for d in &defs {
        let object = d.to_object(namespace);
        if dry_run {
            print!(
                "---\n{}",
                serde_saphyr::to_string(&object).map_err(|e| Error::Failed(e.to_string()))?
            );
            continue;
        }
        cluster.apply(&object, namespace, true).await?;
        println!(
            "{} {} applied in {namespace} (revision {})",
            d.kind.short_name(),
            d.name,
            d.revision_hash()
        );
    }
    Ok(())
}

/// `sail def get NAME [--kind K] [-n NAMESPACE] [--template]`: the definition an application in
/// the namespace gets under that name (the hub's over the built-in), as an object or its CUE
/// template.
pub async fn get(
    hub: &crate::hub::Hub,
    name: &str,
    kind: Option<DefinitionKind>,
    namespace: &str,
    template: bool,
) -> Result<(), Error> {
    let cache = CompileCache::default();
    let builtins = controller::definitions::builtins()?;
    let (catalog, _) =
        controller::definitions::load(&hub.client, &cache, &builtins, namespace).await?;
    let found: Vec<_> = catalog
        .iter()
        .filter(|c| c.definition.name == name && kind.is_none_or(|k| c.definition.kind == k))
        .collect();
    let def = match found.as_slice() {
        [one] => &one.definition,
        [] => {
            let names: Vec<&str> = catalog.iter().map(|c| c.definition.name.as_str()).collect();
            let hint = closest(name, &names)
                .map(|n| format!("; did you mean {n:?}?"))
                .unwrap_or_default();
            return Err(Error::Failed(format!(
                "no definition {name:?} for namespace {namespace}{hint} (see `sail def list`)"
            )));
        }
        many => {
            let kinds: Vec<&str> = many
                .iter()
                .map(|c| c.definition.kind.short_name())
                .collect();
            return Err(Error::Usage(format!(
                "{name:?} names a {}; say which with --kind",
                kinds.join(" and a ")
            )));
        }
    };
    if template {
        println!("{}", def.template.trim_end());
    } else {
        let mut object = def.to_object(namespace);
        if def.origin.starts_with("definitions/") {
            object["metadata"]["namespace"] = serde_json::Value::String("vela-system".into());
        }
        print!(
            "# source: {}\n{}",
            def.origin,
            serde_saphyr::to_string(&object).map_err(|e| Error::Failed(e.to_string()))?
        );
    }
    Ok(())
}

/// The closest name by edit distance, if it is close enough to be a likely typo.
fn closest<'a>(want: &str, names: &[&'a str]) -> Option<&'a str> {
    fn distance(a: &str, b: &str) -> usize {
        let b: Vec<char> = b.chars().collect();
        let mut prev: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.chars().enumerate() {
            let mut cur = vec![i + 1];
            for (j, cb) in b.iter().enumerate() {
                let cost = usize::from(ca != *cb);
                cur.push((prev[j + 1] + 1).min(cur[j] + 1).min(prev[j] + cost));
            }
            prev = cur;
        }
        prev[b.len()]
    }
    names
        .iter()
        .map(|n| (distance(want, n), *n))
        .filter(|(d, n)| *d <= 2.max(n.len() / 3))
        .min()
        .map(|(_, n)| n)
}

/// `sail def vet FILE...`: every file parses and its template and status snippets compile.
pub fn vet(files: &[PathBuf]) -> Result<(), Error> {
    let cache = CompileCache::default();
    for d in read_definitions(files)? {
        let what = format!("{} {}", d.kind.short_name(), d.name);
        cache.compile(d)?;
        println!("{what}: ok");
    }
    Ok(())
}

/// `sail def list`: the definitions an application in `namespace` can use.
pub async fn list(
    hub: &crate::hub::Hub,
    namespace: &str,
    kind: Option<DefinitionKind>,
) -> Result<(), Error> {
    let cache = CompileCache::default();
    let builtins = controller::definitions::builtins()?;
    let (catalog, problems) =
        controller::definitions::load(&hub.client, &cache, &builtins, namespace).await?;
    let mut t = Table::new();
    t.load_preset(NOTHING);
    t.set_header(["NAME", "KIND", "SOURCE", "DESCRIPTION"]);
    for c in catalog
        .iter()
        .filter(|c| kind.is_none_or(|k| c.definition.kind == k))
    {
        let d = &c.definition;
        let mut description = d.description.clone();
        if description.len() > 70 {
            let cut = description
                .char_indices()
                .nth(67)
                .map_or(description.len(), |(i, _)| i);
            description.truncate(cut);
            description.push('…');
        }
        t.add_row([
            d.name.clone(),
            d.kind.short_name().to_string(),
            d.origin.clone(),
            description,
        ]);
    }
    println!("{t}");
    for p in problems {
        eprintln!("broken definition on the hub: {p}");
    }
    Ok(())
}
