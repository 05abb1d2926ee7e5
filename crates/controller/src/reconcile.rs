//! The reconcile loop.

use crate::metrics::Metrics;
use crate::policy::Policies;
use crate::steps::Runner;
use crate::tracker::Tracker;
use crate::{Error, definitions, revision};
use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller as KubeController};
use kube::runtime::{PredicateConfig, WatchStreamExt, reflector, watcher};
use oam::{Application, ApplicationPhase, ApplicationStatus, Revision};
use render::catalog::CompileCache;
use render::{Definition, RenderContext};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use workflow::{Engine, Progress};

/// Finalizer that keeps an Application until what it applied is cleaned up.
pub const FINALIZER: &str = "app.oam.dev/resource-tracker-finalizer";

/// The annotation that sets how often a healthy application is checked again.
pub use oam::labels::ANNOTATION_RECONCILE_INTERVAL as RECONCILE_INTERVAL;

#[derive(Clone, Debug)]
pub struct ControllerConfig {
    /// How often a settled application is reconciled again when it does not say otherwise.
    pub resync: Duration,
    /// How often an application whose workflow is running is looked at.
    pub poll: Duration,
    /// How many applications are reconciled at once (KubeVela's `--concurrent-reconciles`).
    pub concurrency: u16,
    /// How a step's provider errors are retried (KubeVela's
    /// `--max-workflow-step-error-retry-times` and `--max-workflow-failed-backoff-time`).
    pub retries: workflow::Retries,
    /// How far the re-check of a waiting step backs off (KubeVela's
    /// `--max-workflow-wait-backoff-time`); see `workflow::wait_backoff`.
    pub max_wait_backoff: Duration,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig {
            resync: Duration::from_secs(300),
            poll: Duration::from_millis(500),
            concurrency: 16,
            retries: workflow::Retries::default(),
            max_wait_backoff: Duration::from_secs(60),
        }
    }
}

/// The Application controller.
pub struct Controller {
    shared: Arc<Shared>,
}

struct Shared {
    client: kube::Client,
    fleet: fleet::Fleet,
    cache: CompileCache,
    builtins: Arc<Vec<Definition>>,
    config: ControllerConfig,
    /// Last time each application was seen failing, to log a repeated error once.
    last_error: Mutex<BTreeMap<String, String>>,
    /// The revision each application's garbage was last fully collected for.
    gc_done: Mutex<BTreeMap<String, String>>,
    metrics: Arc<Metrics>,
    /// Watch caches of the hub's definitions, started by `run`.
    definitions: std::sync::OnceLock<definitions::DefinitionWatch>,
}

impl Shared {
    fn gc_done(&self, ns: &str, app: &str, revision: &str) -> bool {
        let done = self.gc_done.lock().unwrap_or_else(|p| p.into_inner());
        done.get(&format!("{ns}/{app}")).map(String::as_str) == Some(revision)
    }

    fn set_gc_done(&self, ns: &str, app: &str, revision: &str) {
        let mut done = self.gc_done.lock().unwrap_or_else(|p| p.into_inner());
        done.insert(format!("{ns}/{app}"), revision.to_string());
    }

    fn forget_gc(&self, ns: &str, app: &str) {
        let mut done = self.gc_done.lock().unwrap_or_else(|p| p.into_inner());
        done.remove(&format!("{ns}/{app}"));
    }
}

impl Controller {
    pub fn new(client: kube::Client, config: ControllerConfig) -> Result<Controller, Error> {
        Ok(Controller {
            shared: Arc::new(Shared {
                fleet: fleet::Fleet::new(client.clone()),
                client,
                cache: CompileCache::default(),
                builtins: definitions::builtins()?,
                config,
                last_error: Mutex::default(),
                gc_done: Mutex::default(),
                metrics: Arc::default(),
                definitions: std::sync::OnceLock::new(),
            }),
        })
    }

    /// The controller's reconcile counters and latencies (live while it runs).
    pub fn metrics(&self) -> Arc<Metrics> {
        self.shared.metrics.clone()
    }

    /// Watch Applications in every namespace and reconcile them until `shutdown` resolves.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
    ) {
        let _ = self
            .shared
            .definitions
            .set(definitions::DefinitionWatch::start(&self.shared.client));
        let apps: Api<Application> = Api::all(self.shared.client.clone());
        let (reader, writer) = reflector::store();
        // Only what the user or a control command changes triggers a reconcile; the
        // controller's own status writes do not (requeues pace running workflows).
        let triggers = watcher::watcher(apps, watcher::Config::default())
            .default_backoff()
            .reflect(writer)
            .applied_objects()
            .predicate_filter(trigger_hash, PredicateConfig::default());
        let config = kube::runtime::controller::Config::default()
            .concurrency(self.shared.config.concurrency);
        // A change the fleet's watch caches see on an object an application applied (a
        // Deployment became ready, someone edited or deleted it) reconciles that application,
        // so its status and the state keep follow without polling.
        let (tx, changed) = futures::channel::mpsc::unbounded();
        self.shared.fleet.on_change(Arc::new(
            move |_cluster: &str, obj: &kube::api::DynamicObject| {
                if let Some(app) = owning_application(obj) {
                    let _ = tx.unbounded_send(app);
                }
            },
        ));
        KubeController::for_stream(triggers, reader)
            .reconcile_on(changed)
            .with_config(config)
            .graceful_shutdown_on(shutdown)
            .run(timed_reconcile, error_policy, self.shared.clone())
            .for_each(|_| futures::future::ready(()))
            .await;
    }
}

/// The application an applied object belongs to, from its `app.oam.dev/name` and
/// `app.oam.dev/namespace` labels.
fn owning_application(
    obj: &kube::api::DynamicObject,
) -> Option<kube::runtime::reflector::ObjectRef<Application>> {
    let labels = obj.metadata.labels.as_ref()?;
    let name = labels.get(oam::labels::LABEL_APP_NAME)?;
    let ns = labels
        .get(oam::labels::LABEL_APP_NAMESPACE)
        .map(String::as_str)
        .unwrap_or("default");
    Some(kube::runtime::reflector::ObjectRef::new(name).within(ns))
}

/// What decides whether a change of an Application is worth a reconcile.
fn trigger_hash(app: &Application) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    app.metadata.uid.hash(&mut h);
    app.metadata.generation.hash(&mut h);
    app.metadata.annotations.hash(&mut h);
    app.metadata.labels.hash(&mut h);
    app.metadata.finalizers.hash(&mut h);
    app.metadata.deletion_timestamp.is_some().hash(&mut h);
    if let Some(wf) = app.status.as_ref().and_then(|s| s.workflow.as_ref()) {
        // The run's start time too: `sail workflow restart --step` starts a new run.
        (wf.suspend, wf.terminated).hash(&mut h);
        wf.start_time.as_ref().map(|t| t.0.to_string()).hash(&mut h);
    }
    Some(h.finish())
}

fn error_policy(app: Arc<Application>, err: &Error, shared: Arc<Shared>) -> Action {
    let key = format!("{}/{}", app.namespace(), app.name_any());
    let msg = err.to_string();
    let mut last = shared.last_error.lock().unwrap_or_else(|p| p.into_inner());
    if last.get(&key) != Some(&msg) {
        tracing::warn!(application = %key, error = %msg, "reconcile failed; retrying");
        last.insert(key, msg);
    }
    Action::requeue(Duration::from_secs(2))
}

fn now() -> Time {
    Time(k8s_openapi::jiff::Timestamp::now())
}

async fn timed_reconcile(app: Arc<Application>, shared: Arc<Shared>) -> Result<Action, Error> {
    let start = std::time::Instant::now();
    let result = reconcile(app, shared.clone()).await;
    shared.metrics.record(start.elapsed(), result.is_ok());
    result
}

async fn reconcile(app: Arc<Application>, shared: Arc<Shared>) -> Result<Action, Error> {
    let name = app.name_any();
    let ns = app.namespace().to_string();
    let api: Api<Application> = Api::namespaced(shared.client.clone(), &ns);
    let tracker = Tracker::new(shared.client.clone(), &name, &ns);

    if app.metadata.deletion_timestamp.is_some() {
        if app.finalizers().iter().any(|f| f == FINALIZER) {
            // A malformed policy must not keep an application from going: the defaults apply.
            let policies = Policies::of(&app).unwrap_or_default();
            let report = tracker.delete_all(&shared.fleet, &app, &policies).await?;
            if !report.waiting.is_empty() {
                // garbage-collect `order: dependency`: dependents first; come back for the rest.
                tracing::info!(application = %format!("{ns}/{name}"), waiting = ?report.waiting, "deleting in dependency order");
                return Ok(Action::requeue(Duration::from_secs(1)));
            }
            tracing::info!(application = %format!("{ns}/{name}"), deleted = report.deleted.len(), kept = report.kept.len(), "application deleted");
            crate::kept::record(&shared.client, &app, &report).await?;
            shared.forget_gc(&ns, &name);
            let rest: Vec<&String> = app
                .finalizers()
                .iter()
                .filter(|f| *f != FINALIZER)
                .collect();
            api.patch(&name, &PatchParams::default(), &Patch::Merge(json!({"metadata": {"finalizers": rest, "resourceVersion": app.resource_version()}})))
                .await
                .map_err(Error::hub("remove finalizer from", format!("application {ns}/{name}")))?;
        }
        return Ok(Action::await_change());
    }
    if !app.finalizers().iter().any(|f| f == FINALIZER) {
        let mut fins: Vec<String> = app.finalizers().to_vec();
        fins.push(FINALIZER.into());
        api.patch(&name, &PatchParams::default(), &Patch::Merge(json!({"metadata": {"finalizers": fins, "resourceVersion": app.resource_version()}})))
            .await
            .map_err(Error::hub("add finalizer to", format!("application {ns}/{name}")))?;
        // The update triggers the next reconcile.
        return Ok(Action::await_change());
    }

    let old_status = app.status.clone().unwrap_or_default();
    let mut status = old_status.clone();
    status.observed_generation = app.metadata.generation;

    // The Workflow and Policy objects it refers to, written into it (crate::effective).
    let app = match crate::effective::resolve(&shared.client, &app).await? {
        Ok(Some(resolved)) => Arc::new(resolved),
        Ok(None) => app,
        Err(problem) => {
            status.status = Some(ApplicationPhase::Rendering);
            set_condition(
                &mut status,
                "Parsed",
                false,
                problem.reason,
                &problem.message,
            );
            write_status(&api, &name, &old_status, &status).await?;
            return Ok(Action::requeue(Duration::from_secs(30)));
        }
    };

    let loaded = match shared.definitions.get() {
        Some(watch) => {
            watch
                .catalog(&shared.client, &shared.cache, &shared.builtins, &ns)
                .await?
        }
        None => {
            Arc::new(definitions::load(&shared.client, &shared.cache, &shared.builtins, &ns).await?)
        }
    };
    let (mut catalog, problems) = (&loaded.0, &loaded.1);
    // Rolled back to a revision: rendered with the definitions it snapshotted.
    let mut snapshot = revision::rolled_back(&shared.client, &shared.cache, &app, catalog).await?;
    // The publish version of the latest revision: run as that revision has it, whatever
    // changed since (KubeVela: only a new publish version makes a new revision).
    let mut app = app;
    if snapshot.is_none()
        && let Some(published) = revision::published(
            &shared.client,
            &shared.cache,
            &app,
            status.latest_revision.as_ref(),
            catalog,
        )
        .await?
    {
        if published.spec != app.spec {
            let mut pinned = (*app).clone();
            pinned.spec = published.spec;
            app = Arc::new(pinned);
        }
        snapshot = Some((published.catalog, published.hash));
    }
    if let Some((snap, _)) = &snapshot {
        catalog = snap;
    }
    let used = match revision::used_definitions(&app, catalog) {
        Ok(u) => u,
        Err(e) => {
            let mut message = e.to_string();
            if !problems.is_empty() {
                message.push_str(&format!(
                    " (broken definitions on the hub: {})",
                    problems.join("; ")
                ));
            }
            status.status = Some(ApplicationPhase::Rendering);
            set_condition(&mut status, "Parsed", false, "UnknownDefinition", &message);
            write_status(&api, &name, &old_status, &status).await?;
            return Ok(Action::requeue(Duration::from_secs(30)));
        }
    };

    let policies = match Policies::of(&app) {
        Ok(p) => p,
        Err(e) => {
            status.status = Some(ApplicationPhase::Rendering);
            set_condition(
                &mut status,
                "Parsed",
                false,
                "InvalidPolicy",
                &e.to_string(),
            );
            write_status(&api, &name, &old_status, &status).await?;
            return Ok(Action::requeue(Duration::from_secs(30)));
        }
    };
    set_condition(&mut status, "Parsed", true, "Parsed", "");

    let hash = match &snapshot {
        Some((_, h)) => h.clone(),
        None => revision::hash(&app, &used),
    };
    let latest = status.latest_revision.clone();
    let (revision_name, revision_num) = match &latest {
        Some(r) if r.revision_hash.as_deref() == Some(hash.as_str()) => {
            (r.name.clone(), r.revision)
        }
        _ => {
            let revisions = revision::list(&shared.client, &ns, &name).await?;
            let (rev_name, num) = match revision::find_identical(&revisions, &app, &hash) {
                // An identical application had this revision before: it is used again.
                Some(found) => (found.name.clone(), found.number),
                None => {
                    let num = revisions
                        .iter()
                        .map(|(i, _)| i.number)
                        .chain(latest.as_ref().map(|r| r.revision))
                        .max()
                        .unwrap_or(0)
                        + 1;
                    let rev_name = format!("{name}-v{num}");
                    revision::create(&shared.client, &app, &rev_name, num, &hash, &used).await?;
                    (rev_name, num)
                }
            };
            status.latest_revision = Some(Revision {
                name: rev_name.clone(),
                revision: num,
                revision_hash: Some(hash.clone()),
            });
            let plan = crate::placement::plan(&app);
            status.workflow = Some(Engine::start(&plan, &rev_name, now()));
            status.services.clear();
            shared.forget_gc(&ns, &name);
            // Keep at most the revision limit of unused revisions.
            let infos: Vec<revision::RevisionInfo> = revision::list(&shared.client, &ns, &name)
                .await?
                .into_iter()
                .map(|(i, _)| i)
                .collect();
            let in_use = tracker.revisions_in_use().await?;
            let pruned = revision::enforce_limit(
                &shared.client,
                &ns,
                &infos,
                &in_use,
                &rev_name,
                policies.revision_limit(),
            )
            .await?;
            if !pruned.is_empty() {
                tracing::info!(application = %format!("{ns}/{name}"), revisions = ?pruned, "old revisions deleted");
            }
            (rev_name, num)
        }
    };

    let render_ctx = render_context(&app, &revision_name, revision_num);
    let plan = crate::placement::plan(&app);
    // A scheduled restart (app.oam.dev/restart-workflow) whose time has come starts a new run.
    let restart_wait =
        crate::restart::apply(&api, &app, &mut status, &plan, &revision_name, now()).await?;
    let mut wf = status
        .workflow
        .clone()
        .unwrap_or_else(|| Engine::start(&plan, &revision_name, now()));
    let runner = Runner {
        fleet: &shared.fleet,
        app: &app,
        catalog,
        render_ctx: &render_ctx,
        tracker: &tracker,
        policies: &policies,
        revision_num,
        retries: shared.config.retries,
        services: Mutex::default(),
        variables: Mutex::new(if crate::cuestep::uses_variables(&app) {
            crate::cuestep::load_variables(&shared.client, &app).await?
        } else {
            serde_json::Map::new()
        }),
        workflow_run: wf
            .start_time
            .as_ref()
            .map(crate::cuestep::run_id)
            .unwrap_or_default(),
    };
    let was_finished = wf.finished;
    let before = wf.clone();
    let progress = Engine::advance(&plan, &mut wf, &runner, now).await;
    record_durations(&shared.metrics, &before, &wf);
    let mut gc_pending = false;
    if progress == Progress::Succeeded {
        if was_finished {
            runner.keep_state().await;
        } else {
            revision::mark_succeeded(&shared.client, &ns, &revision_name).await?;
        }
        // The revision's workflow succeeded: what other revisions applied and this one does
        // not is garbage. Swept once per revision; again while something could not be.
        if !shared.gc_done(&ns, &name, &revision_name) {
            let report = tracker
                .collect_garbage(revision_num, &shared.fleet, &app, &policies)
                .await?;
            if !report.deleted.is_empty() || !report.released.is_empty() {
                tracing::info!(application = %format!("{ns}/{name}"), deleted = report.deleted.len(), released = report.released.len(), "garbage collected");
            }
            if report.failed.is_empty() && report.waiting.is_empty() {
                shared.set_gc_done(&ns, &name, &revision_name);
                set_condition(&mut status, "GarbageCollected", true, "Collected", "");
            } else {
                gc_pending = true;
                set_condition(
                    &mut status,
                    "GarbageCollected",
                    false,
                    "Pending",
                    &format!(
                        "will retry: {}",
                        report
                            .failed
                            .iter()
                            .chain(&report.waiting)
                            .cloned()
                            .collect::<Vec<_>>()
                            .join("; ")
                    ),
                );
            }
        }
    }
    status.workflow = Some(wf);
    let services = runner
        .services
        .into_inner()
        .unwrap_or_else(|p| p.into_inner());
    // One entry per component, cluster and namespace it was deployed to.
    for (_, s) in services {
        match status
            .services
            .iter_mut()
            .find(|x| x.name == s.name && x.cluster == s.cluster && x.namespace == s.namespace)
        {
            Some(x) => *x = s,
            None => status.services.push(s),
        }
    }
    let order: Vec<&str> = app
        .spec
        .components
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    status.services.retain(|s| order.contains(&s.name.as_str()));
    status
        .services
        .sort_by_key(|s| order.iter().position(|n| *n == s.name));

    let all_healthy = app
        .spec
        .components
        .iter()
        .all(|c| status.services.iter().any(|s| s.name == c.name))
        && status.services.iter().all(|s| s.healthy);
    let (phase, after) = match progress {
        Progress::Running => (
            ApplicationPhase::RunningWorkflow,
            status.workflow.as_ref().map_or(shared.config.poll, |wf| {
                workflow::wait_backoff(
                    wf,
                    &now(),
                    shared.config.poll,
                    shared.config.max_wait_backoff,
                )
            }),
        ),
        Progress::Suspended => (
            ApplicationPhase::WorkflowSuspending,
            Duration::from_secs(30),
        ),
        Progress::Failed => (ApplicationPhase::WorkflowFailed, shared.config.resync),
        Progress::Terminated => (ApplicationPhase::WorkflowTerminated, shared.config.resync),
        Progress::Succeeded if all_healthy && gc_pending => {
            (ApplicationPhase::Running, Duration::from_secs(2))
        }
        Progress::Succeeded if all_healthy => (
            ApplicationPhase::Running,
            interval(&app, shared.config.resync),
        ),
        Progress::Succeeded => (ApplicationPhase::Unhealthy, Duration::from_secs(2)),
    };
    let after = restart_wait.map_or(after, |wait| after.min(wait));
    status.status = Some(phase);
    write_status(&api, &name, &old_status, &status).await?;
    Ok(Action::requeue(after))
}

/// The render context of an application revision on the hub.
pub(crate) fn render_context(
    app: &Application,
    revision_name: &str,
    revision_num: i64,
) -> RenderContext {
    RenderContext {
        app_name: app.name_any(),
        namespace: app.namespace().to_string(),
        app_revision: revision_name.to_string(),
        app_revision_num: revision_num,
        app_labels: to_json_map(app.metadata.labels.as_ref()),
        app_annotations: to_json_map(app.metadata.annotations.as_ref()),
        publish_version: app
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(revision::PUBLISH_VERSION))
            .cloned()
            .unwrap_or_default(),
        components: app.spec.components.iter().map(|c| c.name.clone()).collect(),
        ..RenderContext::default()
    }
}

/// Check an application before it is stored: every type it names exists and every component
/// renders with its parameters. The error names the component, trait and field.
pub async fn preflight(
    client: &kube::Client,
    app: &Application,
    namespace: &str,
) -> Result<(), Error> {
    let cache = CompileCache::default();
    let builtins = definitions::builtins()?;
    let (catalog, problems) = definitions::load(client, &cache, &builtins, namespace).await?;
    if let Err(e) = revision::used_definitions(app, &catalog) {
        let mut message = e.to_string();
        if !problems.is_empty() {
            message.push_str(&format!(
                " (broken definitions on the hub: {})",
                problems.join("; ")
            ));
        }
        return Err(Error::Invalid(message));
    }
    let mut app = app.clone();
    app.metadata.namespace = Some(namespace.to_string());
    let ctx = render_context(&app, &format!("{}-v1", app.name_any()), 1);
    for c in &app.spec.components {
        render::render_component(c, &catalog, &ctx)?;
    }
    Ok(())
}

/// `app.oam.dev/reconcile-interval`, a duration like `30s` or `5m`.
fn interval(app: &Application, default: Duration) -> Duration {
    app.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(RECONCILE_INTERVAL))
        .and_then(|v| parse_duration(v))
        .unwrap_or(default)
}

/// `90s`, `5m`, `1h`, `1h30m`.
pub(crate) fn parse_duration(s: &str) -> Option<Duration> {
    let mut total = 0u64;
    let mut num = String::new();
    for c in s.trim().chars() {
        if c.is_ascii_digit() {
            num.push(c);
        } else {
            let n: u64 = num.parse().ok()?;
            num.clear();
            total += n * match c {
                's' => 1,
                'm' => 60,
                'h' => 3600,
                _ => return None,
            };
        }
    }
    if !num.is_empty() {
        return None;
    }
    (total > 0).then(|| Duration::from_secs(total))
}

/// Set a condition; its transition time changes only when the condition does.
pub(crate) fn set_condition(
    status: &mut ApplicationStatus,
    type_: &str,
    ok: bool,
    reason: &str,
    message: &str,
) {
    let mut c = condition(type_, ok, reason, message);
    if let Some(old) = status.condition(type_)
        && old.status == c.status
        && old.reason == c.reason
        && old.message == c.message
    {
        c.last_transition_time = old.last_transition_time.clone();
    }
    status.set_condition(c);
}

fn condition(type_: &str, ok: bool, reason: &str, message: &str) -> oam::Condition {
    oam::Condition {
        type_: type_.into(),
        status: if ok { "True" } else { "False" }.into(),
        reason: reason.into(),
        message: if message.is_empty() {
            None
        } else {
            Some(message.into())
        },
        last_transition_time: now(),
    }
}

fn to_json_map(m: Option<&BTreeMap<String, String>>) -> serde_json::Map<String, Value> {
    m.map(|m| {
        m.iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect()
    })
    .unwrap_or_default()
}

/// Write the status when it changed: a merge patch from the old status to the new one.
async fn write_status(
    api: &Api<Application>,
    name: &str,
    old: &ApplicationStatus,
    new: &ApplicationStatus,
) -> Result<(), Error> {
    let old_v = serde_json::to_value(old).unwrap_or(Value::Null);
    let new_v = serde_json::to_value(new).unwrap_or(Value::Null);
    let patch = merge_diff(&old_v, &new_v);
    if patch.as_object().is_some_and(|o| o.is_empty()) {
        return Ok(());
    }
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": patch })),
    )
    .await
    .map_err(Error::hub("write status of", format!("application {name}")))?;
    Ok(())
}

/// The JSON merge patch (RFC 7386) that turns `old` into `new`.
pub(crate) fn merge_diff(old: &Value, new: &Value) -> Value {
    match (old, new) {
        (Value::Object(o), Value::Object(n)) => {
            let mut patch = serde_json::Map::new();
            for (k, nv) in n {
                match o.get(k) {
                    Some(ov) if ov == nv => {}
                    Some(ov) if ov.is_object() && nv.is_object() => {
                        patch.insert(k.clone(), merge_diff(ov, nv));
                    }
                    _ => {
                        patch.insert(k.clone(), nv.clone());
                    }
                }
            }
            for k in o.keys() {
                if !n.contains_key(k) {
                    patch.insert(k.clone(), Value::Null);
                }
            }
            Value::Object(patch)
        }
        (_, n) => n.clone(),
    }
}

/// Observe the durations of the steps and the workflow this round finished.
fn record_durations(metrics: &Metrics, before: &oam::WorkflowStatus, after: &oam::WorkflowStatus) {
    use oam::WorkflowStepPhase as P;
    let seconds =
        |from: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
         to: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>| {
            match (from, to) {
                (Some(a), Some(b)) => b.0.duration_since(a.0).as_secs_f64(),
                _ => 0.0,
            }
        };
    for st in &after.steps {
        let ended = matches!(st.phase, Some(P::Succeeded | P::Failed | P::Skipped));
        let was_ended = before
            .steps
            .iter()
            .find(|b| b.name == st.name)
            .is_some_and(|b| matches!(b.phase, Some(P::Succeeded | P::Failed | P::Skipped)));
        if ended && !was_ended {
            let phase = serde_json::to_value(&st.phase)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            metrics.step_finished(
                st.type_.as_deref().unwrap_or(""),
                &phase,
                seconds(
                    st.first_execute_time.as_ref(),
                    st.last_execute_time.as_ref(),
                ),
            );
        }
    }
    if after.finished && !before.finished {
        let phase = after
            .phase
            .as_ref()
            .and_then(|p| serde_json::to_value(p).ok())
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        metrics.workflow_finished(
            &phase,
            seconds(after.start_time.as_ref(), after.end_time.as_ref()),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_diff_round_trips() {
        let old = json!({"a": 1, "b": {"c": 2, "d": 3}, "e": [1]});
        let new = json!({"a": 1, "b": {"c": 5}, "f": true});
        let patch = merge_diff(&old, &new);
        assert_eq!(
            patch,
            json!({"b": {"c": 5, "d": null}, "f": true, "e": null})
        );
        let mut applied = old.clone();
        json_patch_merge(&mut applied, &patch);
        assert_eq!(applied, new);
    }

    fn json_patch_merge(target: &mut Value, patch: &Value) {
        if let (Some(t), Some(p)) = (target.as_object_mut(), patch.as_object()) {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else if v.is_object() && t.get(k).is_some_and(Value::is_object) {
                    if let Some(tv) = t.get_mut(k) {
                        json_patch_merge(tv, v);
                    }
                } else {
                    t.insert(k.clone(), v.clone());
                }
            }
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("5"), None);
        assert_eq!(parse_duration("x"), None);
        assert_eq!(parse_duration("0s"), None);
    }
}
