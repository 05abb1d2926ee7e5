//! The `context` value that templates see, as KubeVela defines it.

use serde_json::{Map, Value, json};

/// What a render knows about the application and the placement it renders for. One per
/// application revision and placement; [`RenderContext::for_component`] adds the per-component
/// keys.
#[derive(Clone, Debug, Default)]
pub struct RenderContext {
    pub app_name: String,
    /// `context.namespace`: where the objects go (a topology policy may choose another).
    pub namespace: String,
    /// The application's own namespace, for the `app.oam.dev/namespace` label; empty means the
    /// same as `namespace`.
    pub app_namespace: String,
    /// Name of the application revision, `<app>-v<N>`.
    pub app_revision: String,
    pub app_revision_num: i64,
    pub app_labels: Map<String, Value>,
    pub app_annotations: Map<String, Value>,
    /// The cluster rendered for; empty for the hub (`local`).
    pub cluster: String,
    pub cluster_version: ClusterVersion,
    pub publish_version: String,
    /// `context.replicaKey`: set only for a component a replication policy replicated; empty
    /// leaves the key out of the context, as KubeVela does.
    pub replica_key: String,
    pub workflow_name: String,
    /// Names of all components of the application.
    pub components: Vec<String>,
}

/// `context.clusterVersion`.
#[derive(Clone, Debug)]
pub struct ClusterVersion {
    pub major: String,
    pub minor: String,
    pub git_version: String,
    pub platform: String,
}

impl Default for ClusterVersion {
    fn default() -> Self {
        ClusterVersion {
            major: "1".into(),
            minor: "31".into(),
            git_version: "v1.31.0".into(),
            platform: "linux/amd64".into(),
        }
    }
}

impl ClusterVersion {
    /// `minor` as KubeVela puts it in the context: a number, without the `+` some providers
    /// append (`"24+"`); the string itself when it is not a number.
    pub fn minor_number(&self) -> Value {
        match self.minor.trim_end_matches('+').parse::<i64>() {
            Ok(n) => json!(n),
            Err(_) => json!(self.minor),
        }
    }
}

impl RenderContext {
    /// The context of one component: KubeVela's keys, with `name` the component name and
    /// `revision` the component revision.
    pub fn for_component(&self, component: &str, parameter: &Value) -> Value {
        let components: Vec<Value> = self.components.iter().map(|c| json!({"name": c})).collect();
        let mut context = json!({
            "name": component,
            "namespace": self.namespace,
            "appName": self.app_name,
            "appRevision": self.app_revision,
            "appRevisionNum": self.app_revision_num,
            "revision": format!("{component}-v{}", self.app_revision_num.max(1)),
            "components": components,
            "appLabels": self.app_labels,
            "appAnnotations": self.app_annotations,
            "cluster": self.cluster,
            "clusterVersion": {
                "major": self.cluster_version.major,
                "minor": self.cluster_version.minor_number(),
                "gitVersion": self.cluster_version.git_version,
                "platform": self.cluster_version.platform,
            },
            "publishVersion": self.publish_version,
            "replicaKey": self.replica_key,
            "workflowName": self.workflow_name,
            "parameter": parameter,
        });
        if self.replica_key.is_empty()
            && let Some(m) = context.as_object_mut()
        {
            m.remove("replicaKey");
        }
        context
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replica_key_only_when_replicated() {
        let mut ctx = RenderContext::default();
        let c = ctx.for_component("web", &json!({}));
        assert!(c.get("replicaKey").is_none());
        ctx.replica_key = "beijing".into();
        let c = ctx.for_component("web", &json!({}));
        assert_eq!(c["replicaKey"], json!("beijing"));
    }
}
