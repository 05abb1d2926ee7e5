//! The built-in definitions, written in CUE in the repository's `definitions/` folder and
//! embedded in the binary. The hub's definitions of the same name take precedence.

use crate::{Definition, Error};

macro_rules! builtin_files {
    ($($path:literal),* $(,)?) => {
        &[$(($path, include_str!(concat!("../../../", $path)))),*]
    };
}

/// `(file name, source)` of every built-in definition file.
pub const FILES: &[(&str, &str)] = builtin_files![
    "definitions/component/webservice.cue",
    "definitions/component/worker.cue",
    "definitions/component/task.cue",
    "definitions/component/cron-task.cue",
    "definitions/component/daemon.cue",
    "definitions/component/statefulset.cue",
    "definitions/component/k8s-objects.cue",
    "definitions/component/ref-objects.cue",
    "definitions/component/helm.cue",
    "definitions/component/kustomize.cue",
    "definitions/component/terraform.cue",
    "definitions/trait/scaler.cue",
    "definitions/trait/labels.cue",
    "definitions/trait/annotations.cue",
    "definitions/trait/expose.cue",
    "definitions/trait/env.cue",
    "definitions/trait/sidecar.cue",
    "definitions/trait/gateway.cue",
    "definitions/trait/storage.cue",
    "definitions/trait/resource.cue",
    "definitions/trait/hpa.cue",
    "definitions/trait/cpuscaler.cue",
    "definitions/trait/init-container.cue",
    "definitions/trait/hostalias.cue",
    "definitions/trait/json-patch.cue",
    "definitions/trait/json-merge-patch.cue",
    "definitions/trait/command.cue",
    "definitions/trait/container-image.cue",
    "definitions/trait/k8s-update-strategy.cue",
    "definitions/trait/lifecycle.cue",
    "definitions/trait/podsecuritycontext.cue",
    "definitions/trait/securitycontext.cue",
    "definitions/trait/service-account.cue",
    "definitions/trait/topologyspreadconstraints.cue",
    "definitions/trait/affinity.cue",
    "definitions/trait/startup-probe.cue",
    "definitions/trait/container-ports.cue",
    "definitions/trait/pure-ingress.cue",
    "definitions/trait/service-binding.cue",
    "definitions/trait/nocalhost.cue",
    "definitions/policy/topology.cue",
    "definitions/policy/override.cue",
    "definitions/policy/replication.cue",
    "definitions/policy/garbage-collect.cue",
    "definitions/policy/apply-once.cue",
    "definitions/policy/shared-resource.cue",
    "definitions/policy/take-over.cue",
    "definitions/policy/read-only.cue",
    "definitions/policy/resource-update.cue",
    "definitions/workflow-step/apply-object.cue",
    "definitions/workflow-step/read-object.cue",
    "definitions/workflow-step/print-message-in-status.cue",
    "definitions/workflow-step/webhook.cue",
    "definitions/workflow-step/request.cue",
    "definitions/workflow-step/notification.cue",
    "definitions/workflow-step/create-config.cue",
    "definitions/workflow-step/read-config.cue",
    "definitions/workflow-step/list-config.cue",
    "definitions/workflow-step/delete-config.cue",
    "definitions/workflow-step/collect-service-endpoints.cue",
    "definitions/workflow-step/check-metrics.cue",
    "definitions/workflow-step/export2config.cue",
    "definitions/workflow-step/export2secret.cue",
    "definitions/workflow-step/depends-on-app.cue",
    "definitions/workflow-step/apply-deployment.cue",
    "definitions/workflow-step/clean-jobs.cue",
    "definitions/workflow-step/vela-cli.cue",
    "definitions/workflow-step/build-push-image.cue",
    "definitions/workflow-step/apply-terraform-config.cue",
    "definitions/workflow-step/generate-jdbc-connection.cue",
    "definitions/workflow-step/export-data.cue",
    "definitions/workflow-step/export-service.cue",
    "definitions/workflow-step/restart-workflow.cue",
    "definitions/workflow-step/apply-terraform-provider.cue",
    "definitions/workflow-step/deploy-cloud-resource.cue",
    "definitions/workflow-step/share-cloud-resource.cue",
];

/// Parse every built-in definition.
pub fn definitions() -> Result<Vec<Definition>, Error> {
    FILES
        .iter()
        .map(|(file, src)| Definition::from_cue_file(file, src))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_builtin_parses_and_compiles() {
        let defs = super::definitions().expect("built-ins parse");
        assert_eq!(defs.len(), super::FILES.len());
        let cache = crate::catalog::CompileCache::default();
        for d in defs {
            let name = d.name.clone();
            cache
                .compile(d)
                .unwrap_or_else(|e| panic!("built-in {name} does not compile: {e}"));
        }
    }
}
