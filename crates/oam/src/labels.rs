//! Well-known label, annotation and finalizer keys: the same strings KubeVela uses
//! (`pkg/oam/labels.go` and the cluster gateway).

// ---- labels on rendered resources -------------------------------------------------------

/// Name of the Application that owns a resource.
pub const LABEL_APP_NAME: &str = "app.oam.dev/name";
/// Namespace of the Application that owns a resource.
pub const LABEL_APP_NAMESPACE: &str = "app.oam.dev/namespace";
/// Component a resource was rendered from.
pub const LABEL_APP_COMPONENT: &str = "app.oam.dev/component";
/// ApplicationRevision (name) a resource was rendered for.
pub const LABEL_APP_REVISION: &str = "app.oam.dev/appRevision";
/// Hash of the application revision.
pub const LABEL_APP_REVISION_HASH: &str = "app.oam.dev/app-revision-hash";
/// Replica key of a component rendered by a `replication` policy.
pub const LABEL_REPLICA_KEY: &str = "app.oam.dev/replicaKey";
/// Revision name of the component.
pub const LABEL_COMPONENT_REVISION: &str = "app.oam.dev/revision";
/// Cluster of the Application.
pub const LABEL_APP_CLUSTER: &str = "app.oam.dev/cluster";
/// UID of the owning Application.
pub const LABEL_APP_UID: &str = "app.oam.dev/uid";
/// Whether a resource is a workload or a trait output: [`RESOURCE_TYPE_WORKLOAD`] or
/// [`RESOURCE_TYPE_TRAIT`].
pub const LABEL_RESOURCE_TYPE: &str = "app.oam.dev/resourceType";
/// Value of [`LABEL_RESOURCE_TYPE`] for workloads.
pub const RESOURCE_TYPE_WORKLOAD: &str = "WORKLOAD";
/// Value of [`LABEL_RESOURCE_TYPE`] for trait outputs.
pub const RESOURCE_TYPE_TRAIT: &str = "TRAIT";
/// Type of the workload (component definition) a resource comes from.
pub const LABEL_WORKLOAD_TYPE: &str = "workload.oam.dev/type";
/// Type of the trait a resource was rendered from.
pub const LABEL_TRAIT_TYPE: &str = "trait.oam.dev/type";
/// Which output of a trait (`outputs.<name>`) a resource is.
pub const LABEL_TRAIT_RESOURCE: &str = "trait.oam.dev/resource";
/// The trait manages the lifecycle of the workload.
pub const LABEL_MANAGE_WORKLOAD_TRAIT: &str = "trait.oam.dev/manage-workload";
/// Component a ControllerRevision belongs to.
pub const LABEL_CONTROLLER_REVISION_COMPONENT: &str = "controller.oam.dev/component";
/// Cluster a resource lives in (Sailplane's label on objects it reads from member clusters).
pub const LABEL_CLUSTER: &str = "oam.dev/cluster";

// ---- labels on definitions and their revisions -------------------------------------------

/// Name of a ComponentDefinition (on DefinitionRevisions and schema ConfigMaps).
pub const LABEL_COMPONENT_DEFINITION_NAME: &str = "componentdefinition.oam.dev/name";
/// Name of a TraitDefinition.
pub const LABEL_TRAIT_DEFINITION_NAME: &str = "trait.oam.dev/name";
/// Name of a PolicyDefinition.
pub const LABEL_POLICY_DEFINITION_NAME: &str = "policydefinition.oam.dev/name";
/// Name of a WorkflowStepDefinition.
pub const LABEL_WORKFLOW_STEP_DEFINITION_NAME: &str = "workflowstepdefinition.oam.dev/name";
/// Addon that installed an object.
pub const LABEL_ADDON_NAME: &str = "addons.oam.dev/name";
/// Controller shard an Application is scheduled to.
pub const LABEL_CONTROLLER_SHARD: &str = "controller.core.oam.dev/scheduled-shard-id";

// ---- clusters ------------------------------------------------------------------------------

/// Label on Secrets in `vela-system` that marks them as cluster credentials; its value is the
/// credential type (`X509Certificate`, `ServiceAccountToken`, …).
pub const LABEL_CLUSTER_CREDENTIAL_TYPE: &str = "cluster.core.oam.dev/cluster-credential-type";
/// Cluster endpoint type label on cluster Secrets (e.g. `ClusterProxy`).
pub const LABEL_CLUSTER_ENDPOINT_TYPE: &str = "cluster.core.oam.dev/cluster-endpoint-type";

// ---- annotations on Applications -----------------------------------------------------------

/// Version published with the application; a change makes a new revision and reruns the workflow.
pub const ANNOTATION_PUBLISH_VERSION: &str = "app.oam.dev/publishVersion";
/// Per-application reconcile period, a Go duration (`30s`, `5m`); below 10s is ignored.
pub const ANNOTATION_RECONCILE_INTERVAL: &str = "app.oam.dev/reconcile-interval";
/// Update the application automatically when a definition it uses changes.
pub const ANNOTATION_AUTO_UPDATE: &str = "app.oam.dev/autoUpdate";
/// Workflow to run (name of a Workflow object).
pub const ANNOTATION_WORKFLOW_NAME: &str = "app.oam.dev/workflowName";
/// Restart the workflow: `true`, an RFC 3339 time, or a recurring duration.
pub const ANNOTATION_WORKFLOW_RESTART: &str = "app.oam.dev/restart-workflow";
/// Display alias of the application.
pub const ANNOTATION_APP_ALIAS: &str = "app.oam.dev/appAlias";
/// Bypass immutable-parameter checks when `true`.
pub const ANNOTATION_FORCE_PARAM_MUTATIONS: &str = "app.oam.dev/force-param-mutations";
/// ServiceAccount used to apply resources and run the workflow (local cluster only).
pub const ANNOTATION_SERVICE_ACCOUNT_NAME: &str = "app.oam.dev/service-account-name";
/// Skip global (vela-system) policies when `true`.
pub const ANNOTATION_SKIP_GLOBAL_POLICIES: &str = "policy.oam.dev/skip-global";
/// Controller version required to process the application or definition.
pub const ANNOTATION_CONTROLLER_REQUIREMENT: &str = "app.oam.dev/controller-version-require";

// ---- annotations on rendered resources -----------------------------------------------------

/// The configuration last applied (for three-way diffs).
pub const ANNOTATION_LAST_APPLIED_CONFIG: &str = "app.oam.dev/last-applied-configuration";
/// When the configuration was last applied.
pub const ANNOTATION_LAST_APPLIED_TIME: &str = "app.oam.dev/last-applied-time";
/// Marks an object as an application revision.
pub const ANNOTATION_APP_REVISION: &str = "app.oam.dev/app-revision";
/// Applications sharing a resource (`shared-resource` policy).
pub const ANNOTATION_APP_SHARED_BY: &str = "app.oam.dev/shared-by";
/// Skip garbage collection of a workload or trait output.
pub const ANNOTATION_SKIP_GC: &str = "app.oam.dev/skipGC";
/// Which KubeVela version wrote an object.
pub const ANNOTATION_KUBEVELA_VERSION: &str = "oam.dev/kubevela-version";
/// Annotation keys not passed to workloads and traits (comma separated).
pub const ANNOTATION_FILTER_ANNOTATION_KEYS: &str = "filter.oam.dev/annotation-keys";
/// Label keys not passed to workloads and traits (comma separated).
pub const ANNOTATION_FILTER_LABEL_KEYS: &str = "filter.oam.dev/label-keys";

// ---- annotations on definitions ------------------------------------------------------------

/// Description of a definition (the DESCRIPTION printer column).
pub const ANNOTATION_DEFINITION_DESCRIPTION: &str = "definition.oam.dev/description";
/// Alias of a definition.
pub const ANNOTATION_DEFINITION_ALIAS: &str = "definition.oam.dev/alias";
/// Prefix of user-defined definition annotations, e.g. `custom.definition.oam.dev/category`.
pub const ANNOTATION_DEFINITION_USER_PREFIX: &str = "custom.definition.oam.dev/";
/// DefinitionRevision to use for a definition.
pub const ANNOTATION_DEFINITION_REVISION_NAME: &str = "definitionrevision.oam.dev/name";

// ---- finalizers ----------------------------------------------------------------------------

/// Finalizer on Applications: resources are garbage-collected before deletion completes.
pub const FINALIZER_RESOURCE_TRACKER: &str = "app.oam.dev/resource-tracker-finalizer";
/// Finalizer on Applications: orphan the managed resources instead of deleting them.
pub const FINALIZER_ORPHAN_RESOURCE: &str = "app.oam.dev/orphan-resource";

// ---- well-known names ----------------------------------------------------------------------

/// The namespace holding system definitions and cluster Secrets.
pub const SYSTEM_NAMESPACE: &str = "vela-system";
/// The hub cluster's name.
pub const LOCAL_CLUSTER: &str = "local";
