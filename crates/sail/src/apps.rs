//! `sail up`, `status`, `ls`, `delete`: applications on the hub.

use crate::Error;
use crate::hub::Hub;
use comfy_table::{Table, presets::NOTHING};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use oam::{Application, ApplicationPhase};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

/// What `sail up -f FILE` applies: Applications, and the Workflow and Policy objects they may
/// refer to (`spec.workflow.ref`, a deploy step's external policies).
pub struct AppFile {
    pub apps: Vec<Application>,
    pub workflows: Vec<oam::Workflow>,
    pub policies: Vec<oam::Policy>,
}

/// Read and validate the objects of a file, without touching any hub.
pub fn read_file(path: &Path) -> Result<AppFile, Error> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| Error::File {
        path: file.clone(),
        message: format!("cannot read: {e}"),
    })?;
    let mut out = AppFile {
        apps: Vec::new(),
        workflows: Vec::new(),
        policies: Vec::new(),
    };
    for (i, obj) in oam::parse_objects_yaml(&file, &text)?
        .into_iter()
        .enumerate()
    {
        match obj {
            oam::OamObject::Application(a) => out.apps.push(a),
            oam::OamObject::Workflow(w) => out.workflows.push(w),
            oam::OamObject::Policy(p) => out.policies.push(p),
            other => {
                return Err(Error::File {
                    path: file,
                    message: format!(
                        "document {} is a {}; this command takes Applications, and the Workflow and Policy objects they refer to (definitions go in with `sail def apply`)",
                        i + 1,
                        other.kind()
                    ),
                });
            }
        }
    }
    if out.apps.is_empty() {
        return Err(Error::File {
            path: file,
            message: "no Application in the file".into(),
        });
    }
    Ok(out)
}

/// Read and validate the applications in a file, without touching any hub.
pub fn read_apps(path: &Path) -> Result<Vec<Application>, Error> {
    read_file(path).map(|f| f.apps)
}

/// `sail up -f FILE`: check every application against the hub's definitions (a full render,
/// so that a wrong type or parameter is reported before anything is written), then apply them.
pub async fn up(hub: &Hub, path: &Path, wait: bool, timeout: Duration) -> Result<(), Error> {
    let AppFile {
        apps,
        workflows,
        policies,
    } = read_file(path)?;
    for app in &apps {
        let ns = namespace_of(app, hub);
        controller::preflight(&hub.client, app, &ns)
            .await
            .map_err(|e| Error::File {
                path: path.display().to_string(),
                message: format!("application {:?}: {e}", app.name_any()),
            })?;
    }
    // What the applications refer to goes first, so that their first reconcile finds it.
    for w in &workflows {
        put_referenced(hub, w, "workflow").await?;
    }
    for p in &policies {
        put_referenced(hub, p, "policy").await?;
    }
    let mut applied = Vec::new();
    for app in &apps {
        let ns = namespace_of(app, hub);
        let api: Api<Application> = Api::namespaced(hub.client.clone(), &ns);
        let mut body = app.clone();
        body.metadata.namespace = Some(ns.clone());
        body.status = None;
        body.metadata.managed_fields = None;
        body.metadata.resource_version = None;
        let out = api
            .patch(
                &app.name_any(),
                &PatchParams::apply("sail").force(),
                &Patch::Apply(&body),
            )
            .await
            .map_err(Error::api(format!(
                "apply application {ns}/{}",
                app.name_any()
            )))?;
        println!(
            "application {ns}/{} applied (generation {})",
            out.name_any(),
            out.metadata.generation.unwrap_or(0)
        );
        applied.push((ns, out));
    }
    if wait {
        for (ns, app) in applied {
            wait_running(
                hub,
                &ns,
                &app.name_any(),
                app.metadata.generation.unwrap_or(0),
                timeout,
            )
            .await?;
        }
    }
    Ok(())
}

/// Server-side apply a Workflow or Policy object (its namespace defaulting as an
/// application's does).
async fn put_referenced<K>(hub: &Hub, obj: &K, what: &str) -> Result<(), Error>
where
    K: kube::Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
        + Clone
        + serde::Serialize
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let ns = obj
        .meta()
        .namespace
        .clone()
        .unwrap_or_else(|| hub.default_namespace.clone());
    let mut body = obj.clone();
    body.meta_mut().namespace = Some(ns.clone());
    body.meta_mut().managed_fields = None;
    body.meta_mut().resource_version = None;
    let name = obj.name_any();
    let api: Api<K> = Api::namespaced(hub.client.clone(), &ns);
    api.patch(
        &name,
        &PatchParams::apply("sail").force(),
        &Patch::Apply(&body),
    )
    .await
    .map_err(Error::api(format!("apply {what} {ns}/{name}")))?;
    println!("{what} {ns}/{name} applied");
    Ok(())
}

fn namespace_of(app: &Application, hub: &Hub) -> String {
    app.metadata
        .namespace
        .clone()
        .unwrap_or_else(|| hub.default_namespace.clone())
}

/// Follow an application until its workflow for `generation` finished and it is healthy,
/// printing each step as it changes.
pub async fn wait_running(
    hub: &Hub,
    ns: &str,
    name: &str,
    generation: i64,
    timeout: Duration,
) -> Result<(), Error> {
    let api: Api<Application> = Api::namespaced(hub.client.clone(), ns);
    let start = Instant::now();
    let mut shown: Vec<String> = Vec::new();
    let mut last_phase = String::new();
    loop {
        let app = api
            .get_opt(name)
            .await
            .map_err(Error::api(format!("read application {ns}/{name}")))?
            .ok_or_else(|| {
                Error::Failed(format!("application {ns}/{name} was deleted while waiting"))
            })?;
        let status = app.status.clone().unwrap_or_default();
        let current = status.observed_generation.unwrap_or(0) >= generation;
        if current {
            if let Some(wf) = &status.workflow {
                for s in &wf.steps {
                    let line = format!(
                        "  step {:<24} {:<16} {}",
                        s.name.as_deref().unwrap_or(&s.id),
                        s.phase.as_ref().map(|p| p.to_string()).unwrap_or_default(),
                        s.message.as_deref().unwrap_or("")
                    );
                    if !shown.contains(&line) {
                        println!("{line}");
                        shown.push(line);
                    }
                }
            }
            let phase = status
                .status
                .as_ref()
                .map(|p| p.to_string())
                .unwrap_or_default();
            if phase != last_phase {
                println!("  phase {phase}");
                last_phase = phase;
            }
            match status.status {
                Some(ApplicationPhase::Running) => {
                    println!("application {ns}/{name} is running");
                    return Ok(());
                }
                Some(ApplicationPhase::WorkflowFailed | ApplicationPhase::WorkflowTerminated) => {
                    let msg = status
                        .workflow
                        .as_ref()
                        .and_then(|w| w.message.clone())
                        .unwrap_or_else(|| "the workflow failed".into());
                    return Err(Error::Failed(format!("application {ns}/{name}: {msg}")));
                }
                Some(ApplicationPhase::WorkflowSuspending) => {
                    println!(
                        "application {ns}/{name} waits for approval: `sail workflow resume {name} -n {ns}` continues it"
                    );
                    return Ok(());
                }
                Some(ApplicationPhase::Rendering) => {
                    let msg = status
                        .condition("Parsed")
                        .and_then(|c| c.message.clone())
                        .unwrap_or_else(|| "cannot be rendered".into());
                    return Err(Error::Failed(format!("application {ns}/{name}: {msg}")));
                }
                _ => {}
            }
        }
        if start.elapsed() > timeout {
            return Err(Error::Failed(format!(
                "application {ns}/{name} is not running after {}: phase {last_phase}; see `sail status {name} -n {ns}`",
                humantime::format_duration(timeout)
            )));
        }
        let _ = std::io::stdout().flush();
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Table,
    Json,
    Yaml,
}

/// The application, or an error that says it does not exist.
pub async fn get_app(hub: &Hub, ns: &str, name: &str) -> Result<Application, Error> {
    let api: Api<Application> = Api::namespaced(hub.client.clone(), ns);
    api.get_opt(name)
        .await
        .map_err(Error::api(format!("read application {ns}/{name}")))?
        .ok_or_else(|| Error::Failed(format!("application {name:?} not found in namespace {ns}")))
}

/// `sail status NAME`.
pub async fn status(hub: &Hub, ns: &str, name: &str, output: Output) -> Result<(), Error> {
    let app = get_app(hub, ns, name).await?;
    match output {
        Output::Json => {
            let text =
                serde_json::to_string_pretty(&app).map_err(|e| Error::Failed(e.to_string()))?;
            println!("{text}");
        }
        Output::Yaml => {
            let text = serde_saphyr::to_string(&app).map_err(|e| Error::Failed(e.to_string()))?;
            print!("{text}");
        }
        Output::Table => print_status(&app),
    }
    Ok(())
}

fn print_status(app: &Application) {
    let status = app.status.clone().unwrap_or_default();
    let phase = status
        .status
        .as_ref()
        .map(|p| p.to_string())
        .unwrap_or_else(|| "pending".into());
    let rev = status
        .latest_revision
        .as_ref()
        .map(|r| r.name.clone())
        .unwrap_or_default();
    println!(
        "Application {}/{}: {phase}{}",
        app.namespace(),
        app.name_any(),
        if rev.is_empty() {
            String::new()
        } else {
            format!(" (revision {rev})")
        }
    );
    if let Some(c) = status.conditions.iter().find(|c| c.status == "False") {
        println!(
            "  {}: {}",
            c.type_,
            c.message.as_deref().unwrap_or(&c.reason)
        );
    }
    let mut t = Table::new();
    t.load_preset(NOTHING);
    t.set_header([
        "COMPONENT",
        "TYPE",
        "CLUSTER",
        "NAMESPACE",
        "HEALTHY",
        "MESSAGE",
    ]);
    for c in &app.spec.components {
        let s = status.services.iter().find(|s| s.name == c.name);
        t.add_row([
            c.name.clone(),
            c.type_.clone(),
            s.and_then(|s| s.cluster.clone())
                .filter(|c| !c.is_empty())
                .unwrap_or_else(|| "local".into()),
            s.and_then(|s| s.namespace.clone()).unwrap_or_default(),
            s.map_or("-".into(), |s| {
                if s.healthy { "yes".into() } else { "no".into() }
            }),
            s.and_then(|s| s.message.clone()).unwrap_or_default(),
        ]);
    }
    println!("{t}");
    if let Some(wf) = &status.workflow {
        println!(
            "Workflow ({}): {}{}",
            wf.mode,
            wf.phase.as_ref().map(|p| p.to_string()).unwrap_or_default(),
            wf.message
                .as_deref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default()
        );
        let mut t = Table::new();
        t.load_preset(NOTHING);
        t.set_header(["STEP", "TYPE", "PHASE", "MESSAGE"]);
        for s in &wf.steps {
            t.add_row([
                s.name.clone().unwrap_or_else(|| s.id.clone()),
                s.type_.clone().unwrap_or_default(),
                s.phase.as_ref().map(|p| p.to_string()).unwrap_or_default(),
                s.message.clone().unwrap_or_default(),
            ]);
        }
        println!("{t}");
    }
}

/// `sail ls`.
pub async fn list(hub: &Hub, ns: Option<&str>) -> Result<(), Error> {
    let api: Api<Application> = match ns {
        Some(ns) => Api::namespaced(hub.client.clone(), ns),
        None => Api::all(hub.client.clone()),
    };
    let apps = api
        .list(&ListParams::default())
        .await
        .map_err(Error::api("list applications"))?;
    let mut t = Table::new();
    t.load_preset(NOTHING);
    t.set_header([
        "NAMESPACE",
        "NAME",
        "COMPONENTS",
        "PHASE",
        "HEALTHY",
        "REVISION",
    ]);
    for app in apps.items {
        let st = app.status.clone().unwrap_or_default();
        let healthy = st.services.iter().filter(|s| s.healthy).count();
        t.add_row([
            app.namespace().to_string(),
            app.name_any(),
            app.spec
                .components
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(","),
            st.status
                .as_ref()
                .map(|p| p.to_string())
                .unwrap_or_else(|| "pending".into()),
            format!("{healthy}/{}", app.spec.components.len()),
            st.latest_revision.map(|r| r.name).unwrap_or_default(),
        ]);
    }
    println!("{t}");
    Ok(())
}

/// `sail delete NAME`.
pub async fn delete(
    hub: &Hub,
    ns: &str,
    name: &str,
    wait: bool,
    timeout: Duration,
) -> Result<(), Error> {
    let api: Api<Application> = Api::namespaced(hub.client.clone(), ns);
    // The uid tells this deletion's record of what it kept from an earlier one's.
    let uid = api
        .get_opt(name)
        .await
        .map_err(Error::api(format!("read application {ns}/{name}")))?
        .and_then(|a| a.metadata.uid);
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 => {
            return Err(Error::Failed(format!(
                "application {name:?} not found in namespace {ns}"
            )));
        }
        Err(e) => return Err(Error::api(format!("delete application {ns}/{name}"))(e)),
    }
    println!("application {ns}/{name} deleting");
    if wait {
        let start = Instant::now();
        loop {
            let present = api
                .get_opt(name)
                .await
                .map_err(Error::api(format!("read application {ns}/{name}")))?;
            if present.is_none() {
                break;
            }
            if start.elapsed() > timeout {
                return Err(Error::Failed(format!(
                    "application {ns}/{name} still exists after {}: its resources are being removed; see `sail status {name} -n {ns}`",
                    humantime::format_duration(timeout)
                )));
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let kept = controller::kept_on_delete(&hub.client, ns, name, uid.as_deref()).await?;
        match kept {
            Some(k) if !k.kept.is_empty() || !k.released.is_empty() => {
                println!("application {ns}/{name} deleted");
                if !k.kept.is_empty() {
                    println!("kept (delete them yourself when their data is no longer needed):");
                    for r in &k.kept {
                        println!("  {r}");
                    }
                }
                if !k.released.is_empty() {
                    println!("left to the other applications that share them:");
                    for r in &k.released {
                        println!("  {r}");
                    }
                }
            }
            _ => println!("application {ns}/{name} deleted with every resource it created"),
        }
    } else {
        println!(
            "(what the deletion keeps, such as PersistentVolumeClaims, is listed with --wait, and as a {} event on the application)",
            controller::REASON_KEPT
        );
    }
    Ok(())
}
