//! What the workflow's built-in steps do: render components, record them in the tracker, apply
//! them through the fleet and wait for them to be healthy.

use crate::Error;
use crate::policy::{Policies, get_path, set_path};
use crate::tracker::{TrackedObject, Tracker};
use fleet::{Fleet, ObjectRef};
use oam::policy::ResourceLabels;
use oam::{Application, ApplicationComponentStatus, WorkloadGvk};
use render::catalog::Compiled;
use render::{
    Catalog, DefinitionKind, LiveObjects, RenderContext, RenderedComponent, RenderedObject,
};
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
    pub policies: &'a Policies,
    pub revision_num: i64,
    /// How provider errors are retried (the controller's settings).
    pub retries: workflow::Retries,
    /// Health of every component this round looked at, for `status.services`.
    pub services: Mutex<BTreeMap<String, ApplicationComponentStatus>>,
    /// The workflow's outputs so far (its context ConfigMap), read once per reconcile.
    pub variables: Mutex<Map<String, Value>>,
    /// The workflow run (its start time), for the send records of steps (`intent`).
    pub workflow_run: String,
}

impl StepRunner for Runner<'_> {
    fn variables(&self) -> Map<String, Value> {
        self.variables_snapshot()
    }

    fn retries(&self) -> workflow::Retries {
        self.retries
    }

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
                match self.apply_component_targets(step, name) {
                    Ok(targets) => {
                        let (outcome, live) =
                            self.apply_targets_live(&targets, PARALLELISM, true).await;
                        self.with_outputs(step, &targets, outcome, &live).await
                    }
                    Err(e) => e.into_outcome(),
                }
            }
            "deploy" => {
                let properties = match self.deploy_properties(step) {
                    Ok(p) => p,
                    Err(e) => return e.into_outcome(),
                };
                // KubeVela's `auto: false`: the step suspends before it deploys, and deploys
                // once the user resumes the workflow (the engine runs it again, `resumed`).
                match properties.get("auto") {
                    None | Some(Value::Null) | Some(Value::Bool(true)) => {}
                    Some(Value::Bool(false)) if !step.resumed => {
                        return StepOutcome::Suspended {
                            message: format!(
                                "waiting for approval before deploying: sail workflow resume {}",
                                self.app.name()
                            ),
                        };
                    }
                    Some(Value::Bool(false)) => {}
                    Some(v) => {
                        return StepOutcome::Failed {
                            reason: "InvalidStep".into(),
                            message: format!(
                                "step {}: properties.auto must be true or false, found {v}",
                                step.name
                            ),
                        };
                    }
                }
                // KubeVela's `parallelism`: how many clusters are worked on at once.
                let parallelism = match properties.get("parallelism") {
                    None | Some(Value::Null) => PARALLELISM,
                    Some(v) => match v.as_u64() {
                        Some(n) if n >= 1 => usize::try_from(n).unwrap_or(PARALLELISM),
                        _ => {
                            return StepOutcome::Failed {
                                reason: "InvalidStep".into(),
                                message: format!(
                                    "step {}: properties.parallelism must be a whole number of at least 1, found {v}",
                                    step.name
                                ),
                            };
                        }
                    },
                };
                match self.deploy_targets(&properties).await {
                    Ok(targets) => {
                        let (outcome, live) =
                            self.apply_targets_live(&targets, parallelism, true).await;
                        self.with_outputs(step, &targets, outcome, &live).await
                    }
                    Err(e) => e.into_outcome(),
                }
            }
            "suspend" => StepOutcome::Suspended {
                message: step
                    .properties
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("waiting for approval: sail workflow resume")
                    .to_string(),
            },
            // Every other type is a WorkflowStepDefinition in CUE.
            _ => crate::cuestep::run(self, step).await,
        }
    }
}

/// When an apply happens: in a workflow run, or in the periodic state keep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stage {
    Update,
    StateKeep,
}

impl Stage {
    /// The apply-once `affect` value of this stage.
    fn affect(self) -> &'static str {
        match self {
            Stage::Update => "onUpdate",
            Stage::StateKeep => "onStateKeep",
        }
    }
}

/// One component to put in one place: a cluster (`local` is the hub) and a namespace, with
/// the overrides of the deploy step's policies applied.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    pub cluster: String,
    pub namespace: String,
    pub component: oam::ApplicationComponent,
    pub replica_key: Option<String>,
}

impl Target {
    /// The key of its entry in `status.services`.
    fn key(&self) -> String {
        let mut k = format!(
            "{}/{}/{}",
            self.component.name, self.cluster, self.namespace
        );
        if let Some(r) = &self.replica_key {
            k.push('/');
            k.push_str(r);
        }
        k
    }

    /// Where it goes, without the component. Components in one placement wait for each other's
    /// `dependsOn` and pass each other their `outputs`, as KubeVela's deploy does.
    fn placement(&self) -> Placement {
        Placement {
            cluster: self.cluster.clone(),
            namespace: self.namespace.clone(),
            replica_key: self.replica_key.clone(),
        }
    }

    /// The name steps and messages use: the component, and where when that is not the hub.
    fn label(&self) -> String {
        if self.cluster == fleet::LOCAL {
            self.component.name.clone()
        } else {
            format!("{} on {}", self.component.name, self.cluster)
        }
    }
}

/// A cluster, namespace and replica: one place a step puts components.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Placement {
    cluster: String,
    namespace: String,
    replica_key: Option<String>,
}

/// What one run of a step's targets gives: each target's health (or why it is not applied),
/// and the components' `outputs` per placement.
struct RunResult {
    statuses: Vec<(Target, Result<ApplicationComponentStatus, StepError>)>,
    outputs: BTreeMap<(Placement, String), Value>,
    /// Per placement and component applied this round: its live objects as they came back
    /// from the apply (`output`, `outputs.<name>`), for the step's own `outputs`.
    live: Live,
}

/// A component's live objects per placement and component name (`{output, outputs}`).
type Live = BTreeMap<(Placement, String), Value>;

/// A rendered component with where each of its objects lives.
struct Prepared {
    target: Target,
    cluster: std::sync::Arc<fleet::Cluster>,
    def: std::sync::Arc<Compiled>,
    rendered: RenderedComponent,
    /// One per rendered object, in order.
    tracked: Vec<TrackedObject>,
    read_only: Vec<bool>,
}

impl Runner<'_> {
    /// Evaluate a step's `outputs` over its result and add them to the workflow context. What
    /// stops the step instead: a `valueFrom` that does not evaluate (it fails), or a context
    /// that cannot be stored yet (it runs again).
    pub(crate) async fn export_step_outputs(
        &self,
        step: &PlannedStep,
        value: &Value,
    ) -> Option<StepOutcome> {
        let mut exported = Map::new();
        for out in &step.outputs {
            match crate::cuestep::value_from(value, &out.value_from) {
                Ok(v) => {
                    exported.insert(out.name.clone(), v);
                }
                Err(e) => {
                    return Some(StepOutcome::Failed {
                        reason: "Output".into(),
                        message: format!(
                            "step {}: output {:?} (valueFrom {:?}): {e}",
                            step.name, out.name, out.value_from
                        ),
                    });
                }
            }
        }
        if !exported.is_empty()
            && let Err(e) = self.export(exported).await
        {
            return Some(StepOutcome::Running {
                message: format!("step {}: outputs not stored yet: {e}", step.name),
            });
        }
        None
    }

    pub(crate) fn variables_snapshot(&self) -> Map<String, Value> {
        self.variables
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Add a step's outputs to the workflow context and store it (one write).
    pub(crate) async fn export(&self, outputs: Map<String, Value>) -> Result<(), Error> {
        let all = {
            let mut vars = self.variables.lock().unwrap_or_else(|p| p.into_inner());
            vars.extend(outputs);
            vars.clone()
        };
        crate::cuestep::store_variables(self.fleet.local().client(), self.app, &all).await
    }

    /// Every component of the application, as written, to the hub.
    pub(crate) fn local_targets(&self, names: &[String]) -> Result<Vec<Target>, StepError> {
        names
            .iter()
            .map(|name| {
                let Some(comp) = self.app.component(name) else {
                    return Err(StepError::Fatal(
                        "InvalidStep".into(),
                        format!("component {name:?} is not part of the application"),
                    ));
                };
                Ok(Target {
                    cluster: fleet::LOCAL.to_string(),
                    namespace: self.render_ctx.namespace.clone(),
                    component: comp.clone(),
                    replica_key: None,
                })
            })
            .collect()
    }

    /// What a `deploy` step puts where: its policies (topology, override, replication) over
    /// the clusters the fleet knows, or every component to the hub without policies.
    pub(crate) async fn deploy_targets(&self, props: &Value) -> Result<Vec<Target>, StepError> {
        let (policies, inline) = crate::placement::deploy_policies(props)
            .map_err(|e| StepError::Fatal("InvalidStep".into(), format!("deploy: {e}")))?;
        let plans = if policies.is_empty() && inline.is_empty() {
            render::policy::default_plan(self.app)
        } else {
            // The registry may have changed since the last round (a cluster joined).
            if let Err(e) = self.fleet.sync().await {
                tracing::warn!("cluster registry not read: {e}");
            }
            let clusters: Vec<render::policy::ClusterInfo> = self
                .fleet
                .members()
                .into_iter()
                .map(|m| render::policy::ClusterInfo {
                    name: m.name,
                    labels: m.labels,
                })
                .collect();
            render::policy::deploy_plan_with_inline(self.app, &policies, &inline, &clusters)
                .map_err(|e| StepError::Fatal("InvalidPolicy".into(), e.to_string()))?
        };
        let mut targets = Vec::new();
        for plan in plans {
            for pc in plan.components {
                targets.push(Target {
                    cluster: plan.cluster.clone(),
                    namespace: plan
                        .namespace
                        .clone()
                        .unwrap_or_else(|| self.render_ctx.namespace.clone()),
                    component: pc.component,
                    replica_key: pc.replica_key,
                });
            }
        }
        Ok(targets)
    }

    /// Everything the workflow deploys, for the state keep: every deploy step's targets, and
    /// the components apply-component steps (or the default workflow) put on the hub.
    pub(crate) async fn all_targets(&self) -> Result<Vec<Target>, StepError> {
        let plan = crate::placement::plan(self.app);
        let mut targets = Vec::new();
        for step in &plan.steps {
            match step.type_.as_str() {
                "deploy" => {
                    let properties = self.deploy_properties(step)?;
                    targets.extend(self.deploy_targets(&properties).await?)
                }
                "apply-component" => {
                    if let Some(name) = step.properties.get("component").and_then(Value::as_str) {
                        targets.extend(self.apply_component_targets(step, name)?);
                    }
                }
                _ => {}
            }
        }
        Ok(targets)
    }

    /// The component an apply-component step applies, with the step's `inputs` joined to the
    /// component's own, as KubeVela joins them: a `parameterKey` addresses the component (a
    /// path in its properties, or one starting with `properties` or `traits[`), and the value
    /// comes from the workflow context (or a component's output in the same placement).
    fn apply_component_targets(
        &self,
        step: &PlannedStep,
        component: &str,
    ) -> Result<Vec<Target>, StepError> {
        let mut targets = self.local_targets(&[component.to_string()])?;
        for t in targets.iter_mut() {
            t.component.inputs.extend(step.inputs.iter().cloned());
        }
        Ok(targets)
    }

    /// A deploy step's properties with its `inputs` put in, as for a CUE step (KubeVela's
    /// deploy is one): `parameterKey` is a path in the step's properties (`policies`,
    /// `parallelism`). An input no earlier step has output yet makes the step wait.
    fn deploy_properties(&self, step: &PlannedStep) -> Result<Value, StepError> {
        if step.inputs.is_empty() {
            return Ok(step.properties.clone());
        }
        let vars = self.variables_snapshot();
        let mut properties = match &step.properties {
            Value::Null => Value::Object(Map::new()),
            p => p.clone(),
        };
        for input in &step.inputs {
            let Some(value) = vars.get(&input.from) else {
                return Err(StepError::Retry(format!(
                    "input {:?}: no earlier step has output it yet",
                    input.from
                )));
            };
            let Some(key) = input
                .parameter_key
                .as_deref()
                .map(str::trim)
                .filter(|k| !k.is_empty())
            else {
                continue;
            };
            if !set_path(&mut properties, key, value.clone()) {
                return Err(StepError::Fatal(
                    "InvalidInput".into(),
                    format!(
                        "step {}: input {:?} has parameterKey {key:?}, which is not a field path that can be set in its properties",
                        step.name, input.from
                    ),
                ));
            }
        }
        Ok(properties)
    }

    pub(crate) async fn apply_targets(
        &self,
        targets: &[Target],
        parallelism: usize,
    ) -> StepOutcome {
        self.apply_targets_with(targets, parallelism, true).await
    }

    /// [`Runner::apply_targets`], waiting for health only when `wait_healthy`
    /// (`oam.#ApplyComponent` with `waitHealthy: false` does not).
    pub(crate) async fn apply_targets_with(
        &self,
        targets: &[Target],
        parallelism: usize,
        wait_healthy: bool,
    ) -> StepOutcome {
        self.apply_targets_live(targets, parallelism, wait_healthy)
            .await
            .0
    }

    /// [`Runner::apply_targets_with`], also giving the live objects of what it applied, as the
    /// apply returned them (for the step's `outputs`: no second render or read).
    async fn apply_targets_live(
        &self,
        targets: &[Target],
        parallelism: usize,
        wait_healthy: bool,
    ) -> (StepOutcome, Live) {
        let mut run = match self.run_targets(targets, Stage::Update, parallelism).await {
            Ok(r) => r,
            Err(StepError::Fatal(reason, message)) => {
                return (StepOutcome::Failed { reason, message }, Live::new());
            }
            Err(StepError::Retry(message)) => {
                return (
                    StepOutcome::Running {
                        message: format!("waiting: {message}"),
                    },
                    Live::new(),
                );
            }
        };
        let live = std::mem::take(&mut run.live);
        (self.settle_run(targets, run, wait_healthy).await, live)
    }

    /// What a run of targets means for the step: component outputs into the workflow context,
    /// statuses recorded, and done, waiting (for health when `wait_healthy`) or failed.
    async fn settle_run(
        &self,
        targets: &[Target],
        run: RunResult,
        wait_healthy: bool,
    ) -> StepOutcome {
        // A component put in one place only has one value per output: it joins the workflow
        // context, for later steps and components (KubeVela's apply-component does the same).
        // Outputs of a component in many places stay with their placement.
        let places: std::collections::BTreeSet<Placement> =
            targets.iter().map(Target::placement).collect();
        if places.len() == 1 && !run.outputs.is_empty() {
            let known = self.variables_snapshot();
            let fresh: Map<String, Value> = run
                .outputs
                .into_iter()
                .map(|((_, name), v)| (name, v))
                .filter(|(name, v)| known.get(name) != Some(v))
                .collect();
            if !fresh.is_empty()
                && let Err(e) = self.export(fresh).await
            {
                return StepOutcome::Running {
                    message: format!("waiting: component outputs not stored yet: {e}"),
                };
            }
        }
        let mut waiting = Vec::new();
        for (target, result) in run.statuses {
            let name = target.label();
            match result {
                Ok(status) => {
                    if wait_healthy && !status.healthy {
                        waiting.push(format!(
                            "{name}: {}",
                            status
                                .message
                                .clone()
                                .unwrap_or_else(|| "not healthy yet".into())
                        ));
                    }
                    self.lock().insert(target.key(), status);
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

    /// Apply the targets in waves, as KubeVela's deploy does within each placement: a component
    /// goes out once the components it `dependsOn` there are healthy (in the state keep: once
    /// they are applied) and its `inputs` are there, filled from the `outputs` of the components
    /// applied before it in the same placement or from the workflow context. What cannot go
    /// out this round says what it waits for.
    async fn run_targets(
        &self,
        targets: &[Target],
        stage: Stage,
        parallelism: usize,
    ) -> Result<RunResult, StepError> {
        let placed: std::collections::BTreeSet<(Placement, &str)> = targets
            .iter()
            .map(|t| (t.placement(), t.component.name.as_str()))
            .collect();
        let context = self.variables_snapshot();
        let mut run = RunResult {
            statuses: Vec::new(),
            outputs: BTreeMap::new(),
            live: BTreeMap::new(),
        };
        // Per placement and component: whether its dependents may go (healthy, or applied in
        // the state keep), and why not.
        let mut ready_for_dependents: BTreeMap<(Placement, String), Result<(), String>> =
            BTreeMap::new();
        // Why an output could not be read, for the inputs that wait for it.
        let mut output_errors: BTreeMap<(Placement, String), String> = BTreeMap::new();
        let mut pending: Vec<Target> = targets.to_vec();
        loop {
            let mut wave = Vec::new();
            let mut blocked = Vec::new();
            for target in pending {
                let place = target.placement();
                let waits = wait_reason(&target, &place, &placed, targets, &ready_for_dependents);
                let filled = match waits {
                    Some(why) => Err(StepError::Retry(why)),
                    None => fill_inputs(&target, &run.outputs, &output_errors, &context),
                };
                match filled {
                    Ok(t) => wave.push(t),
                    Err(StepError::Retry(why)) => blocked.push((target, why)),
                    Err(fatal) => return Err(fatal),
                }
            }
            if wave.is_empty() {
                for (target, why) in blocked {
                    run.statuses.push((target, Err(StepError::Retry(why))));
                }
                return Ok(run);
            }
            for (target, result) in self.run_wave(&wave, stage, parallelism).await? {
                let place = target.placement();
                let key = (place.clone(), target.component.name.clone());
                let result = match result {
                    Ok((status, live)) => {
                        for out in &target.component.outputs {
                            let k = (place.clone(), out.name.clone());
                            match crate::cuestep::value_from(&live, &out.value_from) {
                                Ok(v) => {
                                    output_errors.remove(&k);
                                    run.outputs.insert(k, v);
                                }
                                Err(e) => {
                                    output_errors.insert(
                                        k,
                                        format!(
                                            "output {} of {} ({}): {e}",
                                            out.name,
                                            target.label(),
                                            out.value_from
                                        ),
                                    );
                                }
                            }
                        }
                        let go = if status.healthy || stage == Stage::StateKeep {
                            Ok(())
                        } else {
                            Err(status
                                .message
                                .clone()
                                .unwrap_or_else(|| "not healthy yet".into()))
                        };
                        ready_for_dependents.insert(key.clone(), go);
                        run.live.insert(key, live);
                        Ok(status)
                    }
                    Err(e) => {
                        let why = match &e {
                            StepError::Fatal(_, m) | StepError::Retry(m) => m.clone(),
                        };
                        ready_for_dependents.insert(key, Err(why));
                        Err(e)
                    }
                };
                run.statuses.push((target, result));
            }
            pending = blocked.into_iter().map(|(t, _)| t).collect();
        }
    }

    /// Render the targets, record every object they make in the tracker (one write for all of
    /// them), then apply them, in parallel, and read their health and their live
    /// objects (`output` and `outputs`, for the components' outputs). A cluster that does not
    /// answer makes its targets wait; the others go on.
    #[allow(clippy::type_complexity)]
    async fn run_wave(
        &self,
        targets: &[Target],
        stage: Stage,
        parallelism: usize,
    ) -> Result<
        Vec<(
            Target,
            Result<(ApplicationComponentStatus, Value), StepError>,
        )>,
        StepError,
    > {
        let mut prepared = Vec::new();
        let mut unreachable = Vec::new();
        for target in targets {
            match self.prepare(target).await {
                Ok(p) => prepared.push(p),
                Err(StepError::Retry(m)) => {
                    unreachable.push((target.clone(), Err(StepError::Retry(m))))
                }
                Err(e) => return Err(e),
            }
        }
        // Intent first: every object is in the tracker before it is applied, so a crash in
        // between never leaves an object nobody owns. Read-only objects are never ours.
        let tracked: Vec<TrackedObject> = prepared
            .iter()
            .flat_map(|p| {
                p.tracked
                    .iter()
                    .zip(&p.read_only)
                    .filter(|(_, ro)| !**ro)
                    .map(|(t, _)| t.clone())
            })
            .collect();
        self.tracker
            .record(self.revision_num, &tracked)
            .await
            .map_err(|e| StepError::Retry(format!("recording resources: {e}")))?;
        // Every component × placement of the wave at once, up to `parallelism` (KubeVela's
        // deploy); the order that matters (dependsOn, inputs) is between waves.
        let runs = prepared.into_iter().map(|p| async move {
            let result = self.apply_prepared(&p, stage).await;
            (p.target, result)
        });
        use futures::StreamExt;
        let mut out: Vec<_> = futures::stream::iter(runs)
            .buffer_unordered(parallelism.max(1))
            .collect::<Vec<_>>()
            .await;
        out.extend(unreachable);
        Ok(out)
    }

    async fn prepare(&self, target: &Target) -> Result<Prepared, StepError> {
        let name = target.component.name.as_str();
        let target = &self.resolve_ref_objects(target).await?;
        let (def, rendered) = self.render(target)?;
        let cluster = self
            .fleet
            .cluster_synced(&target.cluster)
            .await
            .map_err(|e| StepError::Retry(e.to_string()))?;
        let ns = &target.namespace;
        let mut tracked = Vec::new();
        let mut read_only = Vec::new();
        for o in rendered.objects() {
            let r = cluster
                .object_ref(&o.object, ns)
                .await
                .map_err(StepError::from_fleet)?;
            tracked.push(TrackedObject {
                cluster: if target.cluster == fleet::LOCAL {
                    String::new()
                } else {
                    target.cluster.clone()
                },
                reference: r,
                component: name.to_string(),
                trait_type: o.trait_type.clone(),
                skip_gc: o
                    .object
                    .pointer("/metadata/annotations")
                    .and_then(|a| a.get(oam::labels::ANNOTATION_SKIP_GC))
                    .and_then(Value::as_str)
                    == Some("true"),
            });
            read_only.push(
                self.policies
                    .is_read_only(&ResourceLabels::from_manifest(&o.object)),
            );
        }
        Ok(Prepared {
            target: target.clone(),
            cluster,
            def,
            rendered,
            tracked,
            read_only,
        })
    }

    /// Apply one rendered target; its health, and its live objects as a component's outputs
    /// see them (`output`, `outputs.<name>`).
    async fn apply_prepared(
        &self,
        p: &Prepared,
        stage: Stage,
    ) -> Result<(ApplicationComponentStatus, Value), StepError> {
        if p.target.cluster != fleet::LOCAL || p.target.namespace != self.render_ctx.namespace {
            ensure_namespace(&p.cluster, &p.target.namespace).await?;
        }
        let mut live = Vec::new();
        for ((o, t), ro) in p.rendered.objects().zip(&p.tracked).zip(&p.read_only) {
            live.push(
                self.apply_object(&p.cluster, &p.target.namespace, o, &t.reference, *ro, stage)
                    .await?,
            );
        }
        // What the component's outputs read: the workload as `output`, every other object it
        // made (its traits' too, as in KubeVela: `outputs.service` of `expose`) by its name.
        let mut seen = Map::new();
        let mut named = Map::new();
        for (o, obj) in p.rendered.objects().zip(&live) {
            match (&o.output_name, obj) {
                (None, Some(obj)) if o.trait_type.is_none() => {
                    seen.insert("output".into(), obj.clone());
                }
                (Some(n), Some(obj)) => {
                    named.insert(n.clone(), obj.clone());
                }
                _ => {}
            }
        }
        seen.insert("outputs".into(), Value::Object(named));
        let live = live_objects(&p.rendered, live);
        let mut status = health(self.app, &p.def, &p.rendered, &live)
            .map_err(|e| StepError::Retry(e.to_string()))?;
        status.namespace = Some(p.target.namespace.clone());
        if p.target.cluster != fleet::LOCAL {
            status.cluster = Some(p.target.cluster.clone());
        }
        Ok((status, Value::Object(seen)))
    }

    /// Apply one object under the application's policies and return it as it is now.
    async fn apply_object(
        &self,
        cluster: &fleet::Cluster,
        ns: &str,
        o: &RenderedObject,
        r: &ObjectRef,
        read_only: bool,
        stage: Stage,
    ) -> Result<Option<Value>, StepError> {
        let labels = ResourceLabels::from_manifest(&o.object);
        // From the cluster's watch cache when it can say for sure, else from the server.
        let live = cluster.get_cached(r).await.map_err(StepError::from_fleet)?;
        if read_only {
            return match live {
                Some(l) => Ok(Some(l)),
                None => Err(StepError::Retry(format!(
                    "{r} does not exist; a read-only policy selects it, so it is read, never created"
                ))),
            };
        }
        let me = app_key(self.app);
        let shared = self.policies.is_shared(&labels);
        let mut body = o.object.clone();
        if let Some(live) = &live {
            let owner = owner_of(live);
            let sharers = shared_by(live);
            if owner.as_deref() != Some(me.as_str()) {
                if shared && !sharers.is_empty() {
                    // Another application created it and shares it: join the sharers and leave
                    // the content to the owner.
                    if sharers.contains(&me) {
                        return Ok(Some(live.clone()));
                    }
                    let mut all = sharers.clone();
                    all.push(me);
                    let patch = serde_json::json!({"metadata": {"annotations": {
                        oam::labels::ANNOTATION_APP_SHARED_BY: all.join(",")}}});
                    return cluster
                        .merge_patch(r, &patch)
                        .await
                        .map(Some)
                        .map_err(StepError::from_fleet);
                }
                if !self.policies.is_take_over(&labels) {
                    let by = match owner {
                        Some(o) => format!("it belongs to application {o}"),
                        None => "it was not created by an application".to_string(),
                    };
                    let hint = if sharers.is_empty() {
                        "add a take-over policy selecting it to adopt it"
                    } else {
                        "add a shared-resource policy selecting it to share it, or take-over to adopt it"
                    };
                    return Err(StepError::Fatal(
                        "ResourceConflict".into(),
                        format!("{r} exists and application {me} does not own it: {by}; {hint}"),
                    ));
                }
            }
            if stage == Stage::StateKeep && self.policies.skips_state_keep() {
                return Ok(Some(live.clone()));
            }
            if let Some(paths) = self.policies.apply_once_paths(&labels, stage.affect()) {
                if paths.iter().any(|p| p == "*") {
                    return Ok(Some(live.clone()));
                }
                for p in &paths {
                    if let Some(v) = get_path(live, p) {
                        set_path(&mut body, p, v.clone());
                    }
                }
            }
            if shared {
                // Keep the other sharers on record: the owner's apply carries the whole list.
                let mut all = sharers;
                if !all.contains(&me) {
                    all.push(me.clone());
                }
                set_annotation(
                    &mut body,
                    oam::labels::ANNOTATION_APP_SHARED_BY,
                    &all.join(","),
                );
            }
            if let Some(strategy) = self.policies.update_strategy(&labels) {
                let recreate = strategy
                    .recreate_fields
                    .iter()
                    .any(|f| get_path(&body, f) != get_path(live, f));
                if recreate {
                    cluster.delete(r).await.map_err(StepError::from_fleet)?;
                    return cluster
                        .apply(&body, ns, true)
                        .await
                        .map(Some)
                        .map_err(StepError::from_fleet);
                } else if strategy.op.as_deref() == Some("replace") {
                    return cluster
                        .replace(&body, ns)
                        .await
                        .map(Some)
                        .map_err(StepError::from_fleet);
                }
            }
            // Nothing of ours drifted: no write (the drift check of the state keep, and the
            // rounds of a workflow waiting for health).
            if in_sync(&body, live) {
                return Ok(Some(live.clone()));
            }
        } else if shared {
            set_annotation(&mut body, oam::labels::ANNOTATION_APP_SHARED_BY, &me);
        }
        cluster
            .apply(&body, ns, true)
            .await
            .map(Some)
            .map_err(StepError::from_fleet)
    }

    /// A `ref-objects` component with the objects it refers to read from their clusters, so
    /// that it renders them. A selected object that is missing makes the step wait.
    async fn resolve_ref_objects(&self, target: &Target) -> Result<Target, StepError> {
        use render::refobjects;
        if target.component.type_ != refobjects::COMPONENT_TYPE {
            return Ok(target.clone());
        }
        let wanted = refobjects::selectors(&target.component, &self.render_ctx.namespace)
            .map_err(|e| StepError::Fatal("RenderFailed".into(), e.to_string()))?;
        if !wanted.urls.is_empty() {
            return Err(StepError::Fatal(
                "RenderFailed".into(),
                format!(
                    "component {}: ref-objects urls are not loaded by Sailplane yet; list the objects instead",
                    target.component.name
                ),
            ));
        }
        // Objects written inline stay as they are; selectors are replaced by what they select.
        let mut objects: Vec<Value> = target
            .component
            .properties
            .as_ref()
            .and_then(|p| p.get("objects"))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter(|o| o.get("metadata").is_some())
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        for sel in &wanted.selectors {
            let cluster = self
                .fleet
                .cluster_synced(&sel.cluster)
                .await
                .map_err(|e| StepError::Retry(e.to_string()))?;
            let (api_version, kind) = match (&sel.api_version, &sel.kind, &sel.resource) {
                (Some(a), Some(k), _) => (a.clone(), k.clone()),
                (_, _, Some(resource)) => cluster
                    .kind_of_resource(sel.group.as_deref().unwrap_or(""), resource)
                    .await
                    .map_err(StepError::from_fleet)?,
                _ => {
                    return Err(StepError::Fatal(
                        "RenderFailed".into(),
                        format!(
                            "component {}: a ref-objects entry needs resource or apiVersion and kind",
                            target.component.name
                        ),
                    ));
                }
            };
            let namespaced = cluster
                .is_namespaced(&api_version, &kind)
                .await
                .map_err(StepError::from_fleet)?;
            let ns = namespaced.then_some(sel.namespace.as_str());
            match &sel.name {
                Some(n) => {
                    let r = ObjectRef {
                        api_version: api_version.clone(),
                        kind: kind.clone(),
                        namespace: ns.map(str::to_string),
                        name: n.clone(),
                    };
                    match cluster.get(&r).await.map_err(StepError::from_fleet)? {
                        Some(o) => objects.push(o),
                        None => {
                            return Err(StepError::Retry(format!(
                                "component {} refers to {r} on {}, which does not exist",
                                target.component.name, sel.cluster
                            )));
                        }
                    }
                }
                None => {
                    let selector = sel
                        .label_selector
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(",");
                    objects.extend(
                        cluster
                            .list(&api_version, &kind, ns, &selector)
                            .await
                            .map_err(StepError::from_fleet)?,
                    );
                }
            }
        }
        let mut out = target.clone();
        out.component = refobjects::resolve(&target.component, objects);
        Ok(out)
    }

    /// What a target renders to (its `ref-objects` read first), without applying anything.
    pub(crate) async fn render_target(
        &self,
        target: &Target,
    ) -> Result<RenderedComponent, StepError> {
        let target = self.resolve_ref_objects(target).await?;
        self.render(&target).map(|(_, r)| r)
    }

    fn render(
        &self,
        target: &Target,
    ) -> Result<(std::sync::Arc<Compiled>, RenderedComponent), StepError> {
        let comp = &target.component;
        let mut ctx = self.render_ctx.clone();
        ctx.app_namespace = self.render_ctx.namespace.clone();
        ctx.namespace = target.namespace.clone();
        ctx.cluster = if target.cluster == fleet::LOCAL {
            String::new()
        } else {
            target.cluster.clone()
        };
        ctx.replica_key = target.replica_key.clone().unwrap_or_default();
        let def = self
            .catalog
            .require(DefinitionKind::Component, &comp.type_)
            .map_err(|e| StepError::Fatal("RenderFailed".into(), e.to_string()))?
            .clone();
        let rendered = render::render_component(comp, self.catalog, &ctx)
            .map_err(|e| StepError::Fatal("RenderFailed".into(), e.to_string()))?;
        Ok((def, rendered))
    }

    /// Keep the live state what the revision wants: apply every component again (a no-op for
    /// the server when nothing drifted; what someone changed or deleted by hand comes back,
    /// except what apply-once and read-only leave alone) and read its health. Runs on every
    /// reconcile after the revision's workflow succeeded.
    pub async fn keep_state(&self) {
        let targets = match self.all_targets().await {
            Ok(t) => t,
            Err(StepError::Fatal(_, m) | StepError::Retry(m)) => {
                tracing::warn!(app = %app_key(self.app), "state keep: {m}");
                return;
            }
        };
        let results = match self
            .run_targets(&targets, Stage::StateKeep, PARALLELISM)
            .await
        {
            Ok(r) => r.statuses,
            Err(StepError::Fatal(_, m) | StepError::Retry(m)) => targets
                .iter()
                .map(|t| (t.clone(), Err(StepError::Retry(m.clone()))))
                .collect(),
        };
        for (target, result) in results {
            let status = match result {
                Ok(s) => s,
                Err(StepError::Fatal(_, m) | StepError::Retry(m)) => {
                    let mut s = unhealthy(&target.component.name, &target.namespace, m);
                    if target.cluster != fleet::LOCAL {
                        s.cluster = Some(target.cluster.clone());
                    }
                    s
                }
            };
            self.lock().insert(target.key(), status);
        }
    }
}

/// A component in a placement, as messages name it.
fn placed_label(component: &str, place: &Placement) -> String {
    if place.cluster == fleet::LOCAL {
        component.to_string()
    } else {
        format!("{component} on {}", place.cluster)
    }
}

/// Why a target cannot go out yet because of its `dependsOn`, or `None` when it can. A
/// dependency the step puts in the same placement must be ready there; one it puts only
/// elsewhere must be ready everywhere it puts it; one the step does not put at all is another
/// step's business (the workflow orders the steps).
fn wait_reason(
    target: &Target,
    place: &Placement,
    placed: &std::collections::BTreeSet<(Placement, &str)>,
    targets: &[Target],
    ready: &BTreeMap<(Placement, String), Result<(), String>>,
) -> Option<String> {
    let mut waits = Vec::new();
    for dep in &target.component.depends_on {
        let places: Vec<Placement> = if placed.contains(&(place.clone(), dep.as_str())) {
            vec![place.clone()]
        } else {
            targets
                .iter()
                .filter(|t| &t.component.name == dep)
                .map(Target::placement)
                .collect()
        };
        for p in places {
            match ready.get(&(p.clone(), dep.clone())) {
                Some(Ok(())) => {}
                Some(Err(why)) => waits.push(format!("{} ({why})", placed_label(dep, &p))),
                None => waits.push(format!("{} (not applied yet)", placed_label(dep, &p))),
            }
        }
    }
    if waits.is_empty() {
        None
    } else {
        Some(format!("depends on {}", waits.join(", ")))
    }
}

/// The target with its component's `inputs` filled in: each from the output of that name of a
/// component in the same placement, else from the workflow context. A `parameterKey` is a path
/// in the component's properties (`image`, `env[0].value`); one that starts with `properties`
/// or `traits[` is a path in the whole component, as KubeVela reads it. An input with no
/// `parameterKey` only waits for its value. An input not there yet makes the target wait.
fn fill_inputs(
    target: &Target,
    outputs: &BTreeMap<(Placement, String), Value>,
    output_errors: &BTreeMap<(Placement, String), String>,
    context: &Map<String, Value>,
) -> Result<Target, StepError> {
    let comp = &target.component;
    if comp.inputs.is_empty() {
        return Ok(target.clone());
    }
    let place = target.placement();
    let fatal = |m: String| StepError::Fatal("InvalidInput".into(), m);
    let mut whole =
        serde_json::to_value(comp).map_err(|e| fatal(format!("component {}: {e}", comp.name)))?;
    for input in &comp.inputs {
        let key = (place.clone(), input.from.clone());
        let Some(value) = outputs.get(&key).or_else(|| context.get(&input.from)) else {
            return Err(StepError::Retry(match output_errors.get(&key) {
                Some(e) => format!("input {:?}: {e}", input.from),
                None => format!(
                    "input {:?}: no component or step has output it yet",
                    input.from
                ),
            }));
        };
        let Some(pk) = input
            .parameter_key
            .as_deref()
            .map(str::trim)
            .filter(|k| !k.is_empty())
        else {
            continue;
        };
        let path =
            if pk == "properties" || pk.starts_with("properties.") || pk.starts_with("traits[") {
                pk.to_string()
            } else {
                format!("properties.{pk}")
            };
        if !set_path(&mut whole, &path, value.clone()) {
            return Err(fatal(format!(
                "component {}: input {:?} has parameterKey {pk:?}, which is not a field path that can be set in the component (expected a path like `image` or `env[0].value`)",
                comp.name, input.from
            )));
        }
    }
    let mut out = target.clone();
    out.component = serde_json::from_value(whole).map_err(|e| {
        fatal(format!(
            "component {}: its inputs made it invalid: {e}",
            comp.name
        ))
    })?;
    Ok(out)
}

impl Runner<'_> {
    /// The `outputs` of a built-in apply-component or deploy step that succeeded, exported to
    /// the workflow context. `valueFrom` reads the step's result: `output` (the component's
    /// workload as it is live, status included) and `outputs.<name>` (its other objects), as
    /// KubeVela's apply-component gives them; for `deploy`, `placements` lists them per
    /// component and cluster (`[{component, cluster, namespace, output, outputs}]`), and
    /// `output`/`outputs` are there too when it placed one component in one place.
    async fn with_outputs(
        &self,
        step: &PlannedStep,
        targets: &[Target],
        outcome: StepOutcome,
        live: &Live,
    ) -> StepOutcome {
        if step.outputs.is_empty() || !matches!(outcome, StepOutcome::Succeeded { .. }) {
            return outcome;
        }
        let mut placements = Vec::new();
        for target in targets {
            // As the apply of this round returned it (status included).
            let Some(seen) = live.get(&(target.placement(), target.component.name.clone())) else {
                return StepOutcome::Failed {
                    reason: "Output".into(),
                    message: format!(
                        "step {}: outputs: component {} was not applied this round",
                        step.name,
                        target.label()
                    ),
                };
            };
            placements.push(serde_json::json!({
                "component": target.component.name,
                "cluster": target.cluster,
                "namespace": target.namespace,
                "output": seen.get("output").cloned().unwrap_or(Value::Null),
                "outputs": seen.get("outputs").cloned().unwrap_or_else(|| Value::Object(Map::new())),
            }));
        }
        let mut value = Map::new();
        if let [only] = placements.as_slice() {
            value.insert("output".into(), only["output"].clone());
            value.insert("outputs".into(), only["outputs"].clone());
        }
        value.insert("placements".into(), Value::Array(placements));
        value.insert("parameter".into(), step.properties.clone());
        let value = Value::Object(value);
        if let Some(stop) = self.export_step_outputs(step, &value).await {
            return stop;
        }
        outcome
    }
}

/// Create the namespace a placement deploys to when the cluster does not have it, as KubeVela
/// does. It is not tracked: namespaces outlive the applications in them.
async fn ensure_namespace(cluster: &fleet::Cluster, ns: &str) -> Result<(), StepError> {
    let r = ObjectRef {
        api_version: "v1".into(),
        kind: "Namespace".into(),
        namespace: None,
        name: ns.to_string(),
    };
    if cluster
        .get(&r)
        .await
        .map_err(StepError::from_fleet)?
        .is_some()
    {
        return Ok(());
    }
    let body =
        serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
    cluster
        .apply(&body, "", false)
        .await
        .map(|_| ())
        .map_err(StepError::from_fleet)
}

/// How many component placements a step applies at once unless the deploy step says
/// (`parallelism`).
const PARALLELISM: usize = 8;

/// `namespace/name` of an application, as `app.oam.dev/shared-by` lists them.
pub(crate) fn app_key(app: &Application) -> String {
    format!(
        "{}/{}",
        app.metadata.namespace.as_deref().unwrap_or("default"),
        app.metadata.name.as_deref().unwrap_or_default()
    )
}

/// The application (`namespace/name`) a live object's owner labels name, if any.
pub(crate) fn owner_of(live: &Value) -> Option<String> {
    let labels = live.pointer("/metadata/labels")?;
    let name = labels.get(oam::labels::LABEL_APP_NAME)?.as_str()?;
    let ns = labels
        .get(oam::labels::LABEL_APP_NAMESPACE)
        .and_then(Value::as_str)
        .unwrap_or("default");
    Some(format!("{ns}/{name}"))
}

/// The applications sharing a live object (`app.oam.dev/shared-by`, comma separated).
pub(crate) fn shared_by(live: &Value) -> Vec<String> {
    live.pointer("/metadata/annotations")
        .and_then(|a| a.get(oam::labels::ANNOTATION_APP_SHARED_BY))
        .and_then(Value::as_str)
        .map(|s| {
            s.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn set_annotation(obj: &mut Value, key: &str, value: &str) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        let ann = meta
            .entry("annotations")
            .or_insert_with(|| Value::Object(Map::new()));
        if !ann.is_object() {
            *ann = Value::Object(Map::new());
        }
        if let Some(a) = ann.as_object_mut() {
            a.insert(key.to_string(), Value::String(value.to_string()));
        }
    }
}

/// Whether the live object already is what an apply of `desired` would make it: `sailplane`
/// applies it, and every field `desired` sets has that value live (lists item by item, so that
/// what the server defaults inside list items does not count as drift). Fields others set are
/// not ours to compare.
pub(crate) fn in_sync(desired: &Value, live: &Value) -> bool {
    let ours = live
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .is_some_and(|m| {
            m.iter().any(|e| {
                e.get("manager").and_then(Value::as_str) == Some(fleet::FIELD_MANAGER)
                    && e.get("operation").and_then(Value::as_str) == Some("Apply")
            })
        });
    if !ours {
        return false;
    }
    let Some(d) = desired.as_object() else {
        return false;
    };
    d.iter().all(|(k, v)| match k.as_str() {
        // Not part of an apply (status), or settled by the fleet (metadata.namespace).
        "status" => true,
        "metadata" => v.as_object().is_some_and(|m| {
            m.iter()
                .filter(|(k, _)| !matches!(k.as_str(), "namespace" | "resourceVersion"))
                .all(|(k, v)| contains(v, live.pointer(&format!("/metadata/{k}"))))
        }),
        _ => contains(v, live.get(k)),
    })
}

fn contains(desired: &Value, live: Option<&Value>) -> bool {
    match (desired, live) {
        (Value::Null, None | Some(Value::Null)) => true,
        (Value::Object(d), Some(Value::Object(l))) => d.iter().all(|(k, v)| contains(v, l.get(k))),
        (Value::Array(d), Some(Value::Array(l))) => {
            d.len() == l.len() && d.iter().zip(l).all(|(a, b)| contains(a, Some(b)))
        }
        (Value::Number(a), Some(Value::Number(b))) => a.as_f64() == b.as_f64(),
        (d, Some(l)) => d == l,
        (_, None) => false,
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

/// A rendered component's live objects (in render order) by the names its template gives
/// them: the workload is `output`, the component's other objects `outputs.<name>`.
fn live_objects(rendered: &RenderedComponent, objects: Vec<Option<Value>>) -> LiveObjects {
    let mut live = LiveObjects::default();
    for (o, obj) in rendered.objects().zip(objects) {
        match (&o.output_name, obj) {
            (None, obj) => live.output = obj,
            (Some(n), Some(obj)) if o.trait_type.is_none() => {
                live.outputs.insert(n.clone(), obj);
            }
            _ => {}
        }
    }
    live
}

/// Evaluate a rendered component's health policy on its live objects.
fn health(
    app: &Application,
    def: &Compiled,
    rendered: &RenderedComponent,
    live: &LiveObjects,
) -> Result<ApplicationComponentStatus, Error> {
    let app_name = app.metadata.name.as_deref().unwrap_or_default();
    let ns = app.metadata.namespace.as_deref().unwrap_or("default");
    let h = render::evaluate_health(def, &rendered.name, app_name, "", &rendered.parameter, live)?;
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

pub(crate) enum StepError {
    /// The step cannot succeed as the application stands.
    Fatal(String, String),
    /// Something transient; the step runs again.
    Retry(String),
}

impl StepError {
    fn into_outcome(self) -> StepOutcome {
        match self {
            StepError::Fatal(reason, message) => StepOutcome::Failed { reason, message },
            StepError::Retry(message) => StepOutcome::Running {
                message: format!("waiting: {message}"),
            },
        }
    }

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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn target(cluster: &str, component: Value) -> Target {
        Target {
            cluster: cluster.into(),
            namespace: "demo".into(),
            component: serde_json::from_value(component).unwrap(),
            replica_key: None,
        }
    }

    fn outputs(cluster: &str, pairs: &[(&str, Value)]) -> BTreeMap<(Placement, String), Value> {
        let place = Placement {
            cluster: cluster.into(),
            namespace: "demo".into(),
            replica_key: None,
        };
        pairs
            .iter()
            .map(|(k, v)| ((place.clone(), k.to_string()), v.clone()))
            .collect()
    }

    #[test]
    fn inputs_land_in_properties_or_where_the_key_says() {
        let t = target(
            "east",
            json!({"name": "cm", "type": "k8s-objects",
                   "properties": {"objects": [{"data": {}}]},
                   "traits": [{"type": "scaler", "properties": {"replicas": 1}}],
                   "inputs": [
                       {"from": "ip", "parameterKey": "objects[0].data.ip"},
                       {"from": "host", "parameterKey": "properties.host"},
                       {"from": "n", "parameterKey": "traits[0].properties.replicas"},
                       {"from": "gate"}]}),
        );
        let outs = outputs(
            "east",
            &[("ip", json!("10.0.0.7")), ("host", json!("db.demo"))],
        );
        let mut context = Map::new();
        context.insert("n".into(), json!(3));
        context.insert("gate".into(), json!(true));
        // A value of the same name on another cluster is not this placement's.
        context.insert("ip".into(), json!("not this one"));
        let filled = fill_inputs(&t, &outs, &BTreeMap::new(), &context)
            .ok()
            .unwrap();
        let props = filled.component.properties.unwrap();
        assert_eq!(props["objects"][0]["data"]["ip"], "10.0.0.7");
        assert_eq!(props["host"], "db.demo");
        assert_eq!(
            filled.component.traits[0].properties.as_ref().unwrap()["replicas"],
            3
        );
    }

    #[test]
    fn a_missing_input_waits_and_a_bad_key_fails() {
        let t = target(
            "west",
            json!({"name": "cm", "type": "k8s-objects", "properties": {"objects": []},
                   "inputs": [{"from": "ip", "parameterKey": "objects[0].data.ip"}]}),
        );
        // Only east has produced `ip`.
        let outs = outputs("east", &[("ip", json!("10.0.0.7"))]);
        match fill_inputs(&t, &outs, &BTreeMap::new(), &Map::new()) {
            Err(StepError::Retry(m)) => assert!(m.contains("input \"ip\""), "{m}"),
            _ => panic!("expected a wait"),
        }
        // On west it is there, but objects[0] does not exist: the key cannot be set.
        let outs = outputs("west", &[("ip", json!("10.0.0.8"))]);
        match fill_inputs(&t, &outs, &BTreeMap::new(), &Map::new()) {
            Err(StepError::Fatal(reason, m)) => {
                assert_eq!(reason, "InvalidInput");
                assert!(m.contains("objects[0].data.ip"), "{m}");
            }
            _ => panic!("expected a failure"),
        }
    }

    #[test]
    fn dependencies_are_waited_for_in_the_same_placement_first() {
        let db_east = target("east", json!({"name": "db", "type": "worker"}));
        let db_west = target("west", json!({"name": "db", "type": "worker"}));
        let api_east = target(
            "east",
            json!({"name": "api", "type": "worker", "dependsOn": ["db", "cache"]}),
        );
        let all = vec![db_east.clone(), db_west.clone(), api_east.clone()];
        let placed = all
            .iter()
            .map(|t| (t.placement(), t.component.name.as_str()))
            .collect();
        let mut ready = BTreeMap::new();
        // `cache` is not placed by this step: another step's business.
        let why = wait_reason(&api_east, &api_east.placement(), &placed, &all, &ready);
        assert_eq!(
            why.as_deref(),
            Some("depends on db on east (not applied yet)")
        );
        // db on west does not matter to api on east.
        ready.insert(
            (db_west.placement(), "db".to_string()),
            Err("crashing".to_string()),
        );
        ready.insert((db_east.placement(), "db".to_string()), Ok(()));
        assert_eq!(
            wait_reason(&api_east, &api_east.placement(), &placed, &all, &ready),
            None
        );
    }
}
