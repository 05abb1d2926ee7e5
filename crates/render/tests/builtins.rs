//! Every built-in definition rendered with a realistic example through `render_component`, and
//! the objects it makes checked.

// Test helpers panic on purpose: the panic is the failure report.
#![allow(clippy::unwrap_used)]

use render::catalog::CompileCache;
use render::{Catalog, DefinitionKind, LiveObjects, RenderContext, RenderedComponent};
use serde_json::{Value, json};
use std::sync::OnceLock;

fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(|| {
        let cache = CompileCache::default();
        let mut cat = Catalog::new();
        for d in render::builtin::definitions().expect("built-ins parse") {
            cat.insert(cache.compile(d).expect("built-in compiles"));
        }
        cat
    })
}

fn ctx() -> RenderContext {
    RenderContext {
        app_name: "shop".into(),
        namespace: "prod".into(),
        app_revision: "shop-v3".into(),
        app_revision_num: 3,
        components: vec!["api".into()],
        ..Default::default()
    }
}

/// A component of `type_` named `api`, with `traits` as `[(type, properties)]`.
fn try_render(
    type_: &str,
    props: Value,
    traits: &[(&str, Value)],
) -> Result<RenderedComponent, render::Error> {
    let component: oam::ApplicationComponent = serde_json::from_value(json!({
        "name": "api",
        "type": type_,
        "properties": props,
        "traits": traits.iter().map(|(t, p)| json!({"type": t, "properties": p})).collect::<Vec<_>>(),
    }))
    .unwrap();
    render::render_component(&component, catalog(), &ctx())
}

fn render(type_: &str, props: Value, traits: &[(&str, Value)]) -> RenderedComponent {
    try_render(type_, props, traits).unwrap_or_else(|e| panic!("{type_}: {e}"))
}

fn err(type_: &str, props: Value, traits: &[(&str, Value)]) -> String {
    match try_render(type_, props, traits) {
        Ok(r) => panic!("{type_} should fail, rendered {:#?}", r.workload),
        Err(e) => e.to_string(),
    }
}

fn workload(r: &RenderedComponent) -> &Value {
    &r.workload.as_ref().expect("a workload").object
}

fn aux<'a>(r: &'a RenderedComponent, name: &str) -> &'a Value {
    &r.auxiliaries
        .iter()
        .find(|o| o.output_name.as_deref() == Some(name))
        .unwrap_or_else(|| {
            panic!(
                "no output {name}: {:?}",
                r.auxiliaries
                    .iter()
                    .map(|o| &o.output_name)
                    .collect::<Vec<_>>()
            )
        })
        .object
}

fn at<'a>(v: &'a Value, pointer: &str) -> &'a Value {
    v.pointer(pointer).unwrap_or_else(|| {
        panic!(
            "no {pointer} in {}",
            serde_json::to_string_pretty(v).unwrap()
        )
    })
}

fn container(r: &RenderedComponent, name: &str) -> Value {
    at(workload(r), "/spec/template/spec/containers")
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no container {name}"))
}

fn health(type_: &str, params: Value, output: Value) -> render::HealthStatus {
    let def = catalog().get(DefinitionKind::Component, type_).unwrap();
    let live = LiveObjects {
        output: Some(output),
        outputs: Default::default(),
    };
    render::evaluate_health(def, "api", "shop", "shop-v3", &params, &live).unwrap()
}

// ---------------------------------------------------------------- components

#[test]
fn worker_is_a_deployment_without_service() {
    let r = render(
        "worker",
        json!({
            "image": "busybox",
            "cmd": ["sleep", "1000"],
            "cpu": "0.5",
            "memory": "256Mi",
            "env": [{"name": "MODE", "value": "batch"}],
            "volumeMounts": {"emptyDir": [{"name": "scratch", "mountPath": "/tmp"}]},
            "readinessProbe": {"exec": {"command": ["true"]}},
        }),
        &[],
    );
    let w = workload(&r);
    assert_eq!(w["kind"], "Deployment");
    assert_eq!(
        at(w, "/spec/selector/matchLabels"),
        &json!({"app.oam.dev/component": "api"})
    );
    let c = container(&r, "api");
    assert_eq!(c["image"], "busybox");
    assert_eq!(c["command"], json!(["sleep", "1000"]));
    assert_eq!(
        c["resources"],
        json!({"requests": {"cpu": "0.5", "memory": "256Mi"}, "limits": {"cpu": "0.5", "memory": "256Mi"}})
    );
    assert_eq!(
        c["volumeMounts"],
        json!([{"name": "scratch", "mountPath": "/tmp"}])
    );
    assert_eq!(c["readinessProbe"]["periodSeconds"], 10);
    assert_eq!(
        at(w, "/spec/template/spec/volumes"),
        &json!([{"name": "scratch", "emptyDir": {"medium": ""}}])
    );
    assert!(r.auxiliaries.is_empty());
    // A wrong type is an error, not a dropped field.
    assert!(err("worker", json!({"image": "busybox", "cmd": "sleep"}), &[]).contains("cmd"));

    let healthy = health(
        "worker",
        json!({}),
        json!({"metadata": {"generation": 2}, "spec": {"replicas": 2},
        "status": {"replicas": 2, "readyReplicas": 2, "updatedReplicas": 2, "observedGeneration": 2}}),
    );
    assert!(healthy.healthy);
    assert_eq!(healthy.message, "Ready:2/2");
    let starting = health(
        "worker",
        json!({}),
        json!({"metadata": {"generation": 1}, "spec": {"replicas": 2}, "status": {"replicas": 2, "readyReplicas": 1}}),
    );
    assert!(!starting.healthy);
}

#[test]
fn task_is_a_job() {
    let r = render(
        "task",
        json!({"image": "perl", "count": 3, "cmd": ["perl", "-e", "print 1"], "restart": "OnFailure", "backoffLimit": 2,
               "labels": {"team": "data"}}),
        &[],
    );
    let w = workload(&r);
    assert_eq!(w["apiVersion"], "batch/v1");
    assert_eq!(w["kind"], "Job");
    assert_eq!(at(w, "/metadata/name"), "shop-api");
    assert_eq!(at(w, "/spec/parallelism"), 3);
    assert_eq!(at(w, "/spec/completions"), 3);
    assert_eq!(at(w, "/spec/backoffLimit"), 2);
    assert_eq!(at(w, "/spec/template/spec/restartPolicy"), "OnFailure");
    assert_eq!(at(w, "/spec/template/metadata/labels/team"), "data");
    assert_eq!(
        container(&r, "api")["command"],
        json!(["perl", "-e", "print 1"])
    );
    // A wrong type is reported on the parameter, not where the template uses it.
    assert!(err("task", json!({"image": "perl", "count": "3"}), &[]).contains("parameter.count"));

    let done = health(
        "task",
        json!({}),
        json!({"spec": {"completions": 3, "parallelism": 3}, "status": {"succeeded": 3}}),
    );
    assert!(done.healthy);
    assert_eq!(done.message, "Active/Failed/Succeeded:0/0/3");
    assert!(
        !health(
            "task",
            json!({}),
            json!({"spec": {"completions": 3}, "status": {"active": 3}})
        )
        .healthy
    );
}

#[test]
fn cron_task_is_a_cronjob() {
    let r = render(
        "cron-task",
        json!({"image": "busybox", "schedule": "*/5 * * * *", "concurrencyPolicy": "Forbid",
               "hostAliases": [{"ip": "10.0.0.1", "hostnames": ["db"]}], "ttlSecondsAfterFinished": 60}),
        &[],
    );
    let w = workload(&r);
    assert_eq!(w["apiVersion"], "batch/v1");
    assert_eq!(w["kind"], "CronJob");
    assert_eq!(at(w, "/spec/schedule"), "*/5 * * * *");
    assert_eq!(at(w, "/spec/concurrencyPolicy"), "Forbid");
    assert_eq!(at(w, "/spec/suspend"), false);
    assert_eq!(at(w, "/spec/jobTemplate/spec/backoffLimit"), 6);
    assert_eq!(at(w, "/spec/jobTemplate/spec/ttlSecondsAfterFinished"), 60);
    let pod = at(w, "/spec/jobTemplate/spec/template/spec");
    assert_eq!(pod["restartPolicy"], "Never");
    assert_eq!(
        pod["hostAliases"],
        json!([{"ip": "10.0.0.1", "hostnames": ["db"]}])
    );
    assert_eq!(pod["containers"][0]["image"], "busybox");
    assert!(
        err(
            "cron-task",
            json!({"image": "busybox", "schedule": "* * * * *", "concurrencyPolicy": "Sometimes"}),
            &[]
        )
        .contains("concurrencyPolicy")
    );

    // Before Kubernetes 1.25 CronJobs are batch/v1beta1.
    let component: oam::ApplicationComponent =
        serde_json::from_value(json!({"name": "api", "type": "cron-task", "properties": {"image": "busybox", "schedule": "@daily"}})).unwrap();
    let mut old = ctx();
    old.cluster_version.minor = "24+".into();
    let r = render::render_component(&component, catalog(), &old).unwrap();
    assert_eq!(workload(&r)["apiVersion"], "batch/v1beta1");

    assert!(
        health(
            "cron-task",
            json!({}),
            json!({"spec": {}, "status": {"active": [{"name": "j"}]}})
        )
        .healthy
    );
}

#[test]
fn daemon_is_a_daemonset() {
    let r = render(
        "daemon",
        json!({"image": "prom/node-exporter", "ports": [{"port": 9100, "expose": true}],
               "volumeMounts": {"hostPath": [{"name": "proc", "mountPath": "/host/proc", "path": "/proc", "readOnly": true, "mountPropagation": "HostToContainer"}]}}),
        &[],
    );
    let w = workload(&r);
    assert_eq!(w["kind"], "DaemonSet");
    let c = container(&r, "api");
    assert_eq!(
        c["ports"],
        json!([{"containerPort": 9100, "protocol": "TCP", "name": "port-9100"}])
    );
    assert_eq!(
        c["volumeMounts"],
        json!([{"name": "proc", "mountPath": "/host/proc", "readOnly": true, "mountPropagation": "HostToContainer"}])
    );
    let svc = aux(&r, "webserviceExpose");
    assert_eq!(svc["kind"], "Service");
    assert_eq!(at(svc, "/spec/ports/0/port"), 9100);

    let ok = health(
        "daemon",
        json!({}),
        json!({"metadata": {"generation": 1}, "status": {"desiredNumberScheduled": 3, "numberReady": 3,
        "currentNumberScheduled": 3, "updatedNumberScheduled": 3, "observedGeneration": 1}}),
    );
    assert!(ok.healthy);
    assert_eq!(ok.message, "Ready:3/3");
    assert!(
        !health(
            "daemon",
            json!({}),
            json!({"status": {"desiredNumberScheduled": 3, "numberReady": 1}})
        )
        .healthy
    );
}

#[test]
fn statefulset_is_a_statefulset_with_service() {
    let r = render(
        "statefulset",
        json!({"image": "postgres:16", "ports": [{"port": 5432, "expose": true}], "cpu": "1", "limit": {"cpu": "2"}}),
        &[("scaler", json!({"replicas": 3}))],
    );
    let w = workload(&r);
    assert_eq!(w["kind"], "StatefulSet");
    assert_eq!(at(w, "/spec/replicas"), 3);
    assert_eq!(
        container(&r, "api")["resources"],
        json!({"requests": {"cpu": "1"}, "limits": {"cpu": "2"}})
    );
    let svc = aux(&r, "statefulsetsExpose");
    assert_eq!(
        at(svc, "/spec/selector"),
        &json!({"app.oam.dev/component": "api"})
    );
    let ok = health(
        "statefulset",
        json!({}),
        json!({"metadata": {"generation": 1}, "spec": {"replicas": 3},
        "status": {"replicas": 3, "readyReplicas": 3, "updatedReplicas": 3, "observedGeneration": 1}}),
    );
    assert!(ok.healthy);
}

#[test]
fn k8s_objects_first_is_the_workload() {
    let r = render(
        "k8s-objects",
        json!({"objects": [
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"a": "1"}},
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "sec"}, "stringData": {"b": "2"}},
        ]}),
        &[("labels", json!({"tier": "config"}))],
    );
    let w = workload(&r);
    assert_eq!(w["kind"], "ConfigMap");
    assert_eq!(at(w, "/metadata/labels/tier"), "config");
    assert_eq!(aux(&r, "objects-1")["kind"], "Secret");
    // No objects, no workload.
    let empty = render("k8s-objects", json!({"objects": []}), &[]);
    assert!(empty.workload.is_none() && empty.auxiliaries.is_empty());
    assert!(
        err(
            "k8s-objects",
            json!({"objects": [{"metadata": {"name": "x"}}]}),
            &[]
        )
        .contains("apiVersion")
    );
}

// ---------------------------------------------------------------- traits

fn web() -> Value {
    json!({"image": "nginx", "ports": [{"port": 80}], "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}], "args": ["--x"]})
}

#[test]
fn expose_makes_a_service() {
    let r = render(
        "webservice",
        web(),
        &[(
            "expose",
            json!({"ports": [{"port": 80}, {"port": 53, "protocol": "UDP", "nodePort": 30053}], "type": "NodePort", "annotations": {"lb": "internal"}}),
        )],
    );
    let svc = aux(&r, "service");
    assert_eq!(at(svc, "/metadata/name"), "api");
    assert_eq!(at(svc, "/metadata/annotations"), &json!({"lb": "internal"}));
    assert_eq!(at(svc, "/metadata/labels/trait.oam.dev~1type"), "expose");
    assert_eq!(at(svc, "/spec/type"), "NodePort");
    assert_eq!(
        at(svc, "/spec/selector"),
        &json!({"app.oam.dev/component": "api"})
    );
    assert_eq!(
        at(svc, "/spec/ports"),
        &json!([
            {"port": 80, "targetPort": 80, "name": "port-80", "protocol": "TCP"},
            {"port": 53, "targetPort": 53, "name": "port-53-udp", "protocol": "UDP", "nodePort": 30053},
        ])
    );
    // matchLabels replaces the selector; the legacy `port` list still works.
    let r = render(
        "webservice",
        web(),
        &[(
            "expose",
            json!({"port": [8080], "matchLabels": {"app": "x"}}),
        )],
    );
    let svc = aux(&r, "service");
    assert_eq!(at(svc, "/spec/selector"), &json!({"app": "x"}));
    assert_eq!(
        at(svc, "/spec/ports"),
        &json!([{"port": 8080, "targetPort": 8080, "name": "port-8080"}])
    );
    assert!(
        err(
            "worker",
            json!({"image": "x"}),
            &[("expose", json!({"ports": [{"port": "80"}]}))]
        )
        .contains("port")
    );
}

#[test]
fn env_sets_replaces_and_unsets() {
    let r = render(
        "webservice",
        web(),
        &[(
            "env",
            json!({"env": {"B": "two", "C": "3"}, "unset": ["A"]}),
        )],
    );
    assert_eq!(
        container(&r, "api")["env"],
        json!([{"name": "B", "value": "two"}, {"name": "C", "value": "3"}])
    );
    let r = render(
        "webservice",
        web(),
        &[("env", json!({"env": {"Z": "26"}, "replace": true}))],
    );
    assert_eq!(
        container(&r, "api")["env"],
        json!([{"name": "Z", "value": "26"}])
    );
    // Several containers, one of them a sidecar.
    let r = render(
        "webservice",
        web(),
        &[
            ("sidecar", json!({"name": "log", "image": "fluentbit"})),
            (
                "env",
                json!({"containers": [{"containerName": "log", "env": {"LEVEL": "debug"}}, {"containerName": "api", "env": {"A": "9"}}]}),
            ),
        ],
    );
    assert_eq!(
        container(&r, "log")["env"],
        json!([{"name": "LEVEL", "value": "debug"}])
    );
    assert_eq!(
        container(&r, "api")["env"][0],
        json!({"name": "A", "value": "9"})
    );
    assert!(
        err(
            "webservice",
            web(),
            &[("env", json!({"containerName": "nope", "env": {"X": "1"}}))]
        )
        .contains("container nope not found")
    );
    assert!(err("webservice", web(), &[("env", json!({"env": {"X": 1}}))]).contains("env"));
}

#[test]
fn annotations_reach_workload_and_pods() {
    let r = render(
        "webservice",
        web(),
        &[("annotations", json!({"owner": "team-a"}))],
    );
    let w = workload(&r);
    assert_eq!(at(w, "/metadata/annotations/owner"), "team-a");
    assert_eq!(at(w, "/spec/template/metadata/annotations/owner"), "team-a");
    let r = render(
        "cron-task",
        json!({"image": "x", "schedule": "@daily"}),
        &[("annotations", json!({"owner": "team-a"}))],
    );
    let w = workload(&r);
    assert_eq!(
        at(w, "/spec/jobTemplate/metadata/annotations/owner"),
        "team-a"
    );
    assert_eq!(
        at(
            w,
            "/spec/jobTemplate/spec/template/metadata/annotations/owner"
        ),
        "team-a"
    );
    // null removes an annotation.
    let r = render(
        "webservice",
        json!({"image": "nginx", "annotations": {"x": "1"}}),
        &[("annotations", json!({"x": null}))],
    );
    assert!(
        workload(&r)
            .pointer("/spec/template/metadata/annotations/x")
            .is_none()
    );
}

#[test]
fn sidecar_adds_a_container() {
    let r = render(
        "worker",
        json!({"image": "app"}),
        &[(
            "sidecar",
            json!({"name": "proxy", "image": "envoy", "args": ["-c", "/etc/envoy.yaml"], "volumes": [{"name": "cfg", "path": "/etc/envoy"}]}),
        )],
    );
    let cs = at(workload(&r), "/spec/template/spec/containers");
    assert_eq!(cs.as_array().unwrap().len(), 2);
    assert_eq!(
        cs[1],
        json!({"name": "proxy", "image": "envoy", "args": ["-c", "/etc/envoy.yaml"], "volumeMounts": [{"mountPath": "/etc/envoy", "name": "cfg"}]})
    );
    assert!(
        err(
            "worker",
            json!({"image": "app"}),
            &[("sidecar", json!({"name": "proxy"}))]
        )
        .contains("image")
    );
}

#[test]
fn gateway_makes_ingress_and_service() {
    let r = render(
        "webservice",
        web(),
        &[(
            "gateway",
            json!({"domain": "shop.example.com", "http": {"/": 80, "/api": 80, "/admin": 8080}, "secretName": "tls", "classInSpec": true}),
        )],
    );
    let svc = aux(&r, "service");
    assert_eq!(at(svc, "/metadata/name"), "api");
    // One Service port per port, however many paths lead to it.
    assert_eq!(
        at(svc, "/spec/ports"),
        &json!([{"name": "port-80", "port": 80, "targetPort": 80}, {"name": "port-8080", "port": 8080, "targetPort": 8080}])
    );
    let ing = aux(&r, "ingress");
    assert_eq!(ing["apiVersion"], "networking.k8s.io/v1");
    assert_eq!(at(ing, "/spec/ingressClassName"), "nginx");
    assert_eq!(
        at(ing, "/spec/tls"),
        &json!([{"hosts": ["shop.example.com"], "secretName": "tls"}])
    );
    assert_eq!(at(ing, "/spec/rules/0/host"), "shop.example.com");
    assert_eq!(
        at(ing, "/spec/rules/0/http/paths/1"),
        &json!({"path": "/api", "pathType": "ImplementationSpecific", "backend": {"service": {"name": "api", "port": {"number": 80}}}})
    );
    // A named gateway to an existing Service.
    let r = render(
        "webservice",
        web(),
        &[(
            "gateway",
            json!({"name": "internal", "http": {"/": 80}, "existingServiceName": "legacy"}),
        )],
    );
    assert_eq!(r.auxiliaries.len(), 1);
    let ing = aux(&r, "ingress-internal");
    assert_eq!(at(ing, "/metadata/name"), "api-internal");
    assert_eq!(
        at(ing, "/metadata/annotations/kubernetes.io~1ingress.class"),
        "nginx"
    );
    assert_eq!(
        at(ing, "/spec/rules/0/http/paths/0/backend/service/name"),
        "legacy"
    );
}

#[test]
fn storage_mounts_and_creates() {
    let r = render(
        "webservice",
        web(),
        &[(
            "storage",
            json!({
                "pvc": [{"name": "data", "mountPath": "/data", "storageClassName": "fast", "resources": {"requests": {"storage": "20Gi"}}}],
                "configMap": [{"name": "cfg", "mountPath": "/etc/cfg", "data": {"k": "v"}, "mountToEnv": {"envName": "K", "configMapKey": "k"}}],
                "secret": [{"name": "creds", "mountOnly": true, "mountPath": "/creds"}],
                "emptyDir": [{"name": "tmp", "mountPath": "/tmp", "medium": "Memory"}],
            }),
        )],
    );
    let c = container(&r, "api");
    assert_eq!(
        c["volumeMounts"],
        json!([
            {"name": "pvc-data", "mountPath": "/data"},
            {"name": "configmap-cfg", "mountPath": "/etc/cfg"},
            {"name": "secret-creds", "mountPath": "/creds"},
            {"name": "emptydir-tmp", "mountPath": "/tmp"},
        ])
    );
    assert_eq!(
        c["env"][2],
        json!({"name": "K", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "k"}}})
    );
    let vols = at(workload(&r), "/spec/template/spec/volumes");
    assert_eq!(
        vols[0],
        json!({"name": "pvc-data", "persistentVolumeClaim": {"claimName": "data"}})
    );
    assert_eq!(
        vols[3],
        json!({"name": "emptydir-tmp", "emptyDir": {"medium": "Memory"}})
    );
    let pvc = aux(&r, "pvc-data");
    assert_eq!(
        at(pvc, "/spec"),
        &json!({"accessModes": ["ReadWriteOnce"], "volumeMode": "Filesystem", "storageClassName": "fast", "resources": {"requests": {"storage": "20Gi"}}})
    );
    assert_eq!(aux(&r, "configmap-cfg")["data"], json!({"k": "v"}));
    assert!(
        r.auxiliaries
            .iter()
            .all(|o| o.output_name.as_deref() != Some("secret-creds"))
    );
    // A block-mode PVC is a device, not a mount.
    let r = render(
        "webservice",
        web(),
        &[(
            "storage",
            json!({"pvc": [{"name": "raw", "mountPath": "/dev/xvda", "volumeMode": "Block"}]}),
        )],
    );
    assert_eq!(
        container(&r, "api")["volumeDevices"],
        json!([{"name": "pvc-raw", "devicePath": "/dev/xvda"}])
    );
    assert!(err("webservice", web(), &[("storage", json!({"pvc": [{"name": "d", "mountPath": "/d", "resources": {"requests": {"storage": "10GB"}}}]}))]).contains("storage"));
}

#[test]
fn resource_sets_requests_and_limits() {
    let r = render(
        "webservice",
        web(),
        &[("resource", json!({"cpu": "500m", "memory": "1Gi"}))],
    );
    assert_eq!(
        container(&r, "api")["resources"],
        json!({"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "500m", "memory": "1Gi"}})
    );
    // Replaces what the component set.
    let r = render(
        "webservice",
        json!({"image": "nginx", "cpu": "1", "memory": "1Gi"}),
        &[(
            "resource",
            json!({"requests": {"cpu": 0.25, "memory": "128Mi"}, "limits": {"cpu": 1, "memory": "512Mi"}}),
        )],
    );
    assert_eq!(
        container(&r, "api")["resources"],
        json!({"requests": {"cpu": 0.25, "memory": "128Mi"}, "limits": {"cpu": 1, "memory": "512Mi"}})
    );
    let r = render(
        "cron-task",
        json!({"image": "x", "schedule": "@daily"}),
        &[("resource", json!({"cpu": 2, "memory": "2Gi"}))],
    );
    assert_eq!(
        at(
            workload(&r),
            "/spec/jobTemplate/spec/template/spec/containers/0/resources/limits/cpu"
        ),
        2
    );
    assert!(
        err(
            "webservice",
            web(),
            &[("resource", json!({"memory": "2GB"}))]
        )
        .contains("memory")
    );
}

#[test]
fn hpa_and_cpuscaler_make_autoscalers() {
    let r = render(
        "webservice",
        web(),
        &[(
            "hpa",
            json!({"min": 2, "max": 8, "cpu": {"value": 70}, "mem": {"type": "AverageValue", "value": 500}, "podCustomMetrics": [{"name": "rps", "value": "100"}]}),
        )],
    );
    let hpa = aux(&r, "hpa");
    assert_eq!(hpa["apiVersion"], "autoscaling/v2");
    assert_eq!(
        at(hpa, "/spec/scaleTargetRef"),
        &json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "api"})
    );
    assert_eq!(at(hpa, "/spec/minReplicas"), 2);
    assert_eq!(
        at(hpa, "/spec/metrics"),
        &json!([
            {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}},
            {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": 500}}},
            {"type": "Pods", "pods": {"metric": {"name": "rps"}, "target": {"type": "AverageValue", "averageValue": "100"}}},
        ])
    );
    // The scaled workload is the component's own unless named.
    let r = render(
        "statefulset",
        web(),
        &[("cpuscaler", json!({"min": 1, "max": 4, "cpuUtil": 80}))],
    );
    let s = aux(&r, "cpuscaler");
    assert_eq!(s["apiVersion"], "autoscaling/v1");
    assert_eq!(at(s, "/spec/targetCPUUtilizationPercentage"), 80);
    assert_eq!(at(s, "/spec/scaleTargetRef/kind"), "StatefulSet");
    assert!(err("webservice", web(), &[("hpa", json!({"max": "10"}))]).contains("max"));
}

#[test]
fn init_container_shares_a_volume() {
    let r = render(
        "webservice",
        web(),
        &[(
            "init-container",
            json!({"name": "fetch", "image": "busybox", "cmd": ["wget", "-O", "/work/index.html", "http://x"], "appMountPath": "/usr/share/nginx/html", "initMountPath": "/work"}),
        )],
    );
    let spec = at(workload(&r), "/spec/template/spec");
    assert_eq!(
        spec["initContainers"][0]["volumeMounts"],
        json!([{"name": "workdir", "mountPath": "/work"}])
    );
    assert_eq!(spec["initContainers"][0]["imagePullPolicy"], "IfNotPresent");
    assert_eq!(
        spec["volumes"],
        json!([{"name": "workdir", "emptyDir": {}}])
    );
    assert_eq!(
        container(&r, "api")["volumeMounts"],
        json!([{"name": "workdir", "mountPath": "/usr/share/nginx/html"}])
    );
    assert!(
        err(
            "webservice",
            web(),
            &[("init-container", json!({"name": "i", "image": "b"}))]
        )
        .contains("mountPath")
    );
}

#[test]
fn hostalias_adds_hosts() {
    let r = render(
        "worker",
        json!({"image": "x"}),
        &[(
            "hostalias",
            json!({"hostAliases": [{"ip": "127.0.0.1", "hostnames": ["foo.local"]}]}),
        )],
    );
    assert_eq!(
        at(workload(&r), "/spec/template/spec/hostAliases"),
        &json!([{"ip": "127.0.0.1", "hostnames": ["foo.local"]}])
    );
}

#[test]
fn json_patch_and_merge_patch() {
    let r = render(
        "webservice",
        web(),
        &[(
            "json-patch",
            json!({"operations": [
                {"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "nginx:1.27"},
                {"op": "add", "path": "/spec/replicas", "value": 4},
            ]}),
        )],
    );
    assert_eq!(container(&r, "api")["image"], "nginx:1.27");
    assert_eq!(at(workload(&r), "/spec/replicas"), 4);
    assert!(
        err(
            "webservice",
            web(),
            &[(
                "json-patch",
                json!({"operations": [{"op": "frobnicate", "path": "/x"}]})
            )]
        )
        .contains("op")
    );

    let r = render(
        "webservice",
        web(),
        &[(
            "json-merge-patch",
            json!({"spec": {"replicas": 2, "selector": null}}),
        )],
    );
    assert_eq!(at(workload(&r), "/spec/replicas"), 2);
    assert!(workload(&r).pointer("/spec/selector").is_none());
}

#[test]
fn command_sets_command_and_args() {
    let r = render(
        "webservice",
        web(),
        &[(
            "command",
            json!({"command": ["nginx"], "addArgs": ["-g", "--x"]}),
        )],
    );
    let c = container(&r, "api");
    assert_eq!(c["command"], json!(["nginx"]));
    assert_eq!(c["args"], json!(["--x", "-g"]));
    let r = render(
        "webservice",
        web(),
        &[("command", json!({"args": ["--a"]}))],
    );
    assert_eq!(container(&r, "api")["args"], json!(["--a"]));
    let r = render(
        "webservice",
        web(),
        &[("command", json!({"delArgs": ["--x"]}))],
    );
    assert_eq!(container(&r, "api")["args"], json!([]));
    assert!(
        err(
            "webservice",
            web(),
            &[("command", json!({"args": ["--a"], "addArgs": ["--b"]}))]
        )
        .contains("cannot set addArgs/delArgs and args")
    );
}

#[test]
fn container_image_replaces_the_image() {
    let r = render(
        "webservice",
        web(),
        &[
            ("sidecar", json!({"name": "log", "image": "fluentbit:1"})),
            (
                "container-image",
                json!({"containers": [{"containerName": "api", "image": "nginx:1.27", "imagePullPolicy": "Always"}, {"containerName": "log", "image": "fluentbit:2"}]}),
            ),
        ],
    );
    assert_eq!(container(&r, "api")["image"], "nginx:1.27");
    assert_eq!(container(&r, "api")["imagePullPolicy"], "Always");
    assert_eq!(container(&r, "log")["image"], "fluentbit:2");
    assert!(
        err(
            "webservice",
            web(),
            &[(
                "container-image",
                json!({"containerName": "nope", "image": "x"})
            )]
        )
        .contains("container nope not found")
    );
}

#[test]
fn k8s_update_strategy_by_kind() {
    let r = render(
        "webservice",
        web(),
        &[(
            "k8s-update-strategy",
            json!({"strategy": {"type": "RollingUpdate", "rollingStrategy": {"maxSurge": "50%"}}}),
        )],
    );
    assert_eq!(
        at(workload(&r), "/spec/strategy"),
        &json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "50%", "maxUnavailable": "25%"}})
    );
    // The kind comes from the workload when not given.
    let r = render(
        "statefulset",
        web(),
        &[(
            "k8s-update-strategy",
            json!({"strategy": {"type": "RollingUpdate", "rollingStrategy": {"partition": 2}}}),
        )],
    );
    assert_eq!(
        at(workload(&r), "/spec/updateStrategy"),
        &json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 2}})
    );
    let r = render(
        "daemon",
        web(),
        &[(
            "k8s-update-strategy",
            json!({"strategy": {"type": "OnDelete"}}),
        )],
    );
    assert_eq!(
        at(workload(&r), "/spec/updateStrategy"),
        &json!({"type": "OnDelete"})
    );
    assert!(
        err(
            "webservice",
            web(),
            &[(
                "k8s-update-strategy",
                json!({"strategy": {"type": "OnDelete"}})
            )]
        )
        .contains("no OnDelete strategy")
    );
}

#[test]
fn lifecycle_hooks_on_every_container() {
    let r = render(
        "webservice",
        web(),
        &[
            ("sidecar", json!({"name": "log", "image": "fluentbit"})),
            (
                "lifecycle",
                json!({"preStop": {"exec": {"command": ["sleep", "5"]}}}),
            ),
        ],
    );
    for c in ["api", "log"] {
        assert_eq!(
            container(&r, c)["lifecycle"],
            json!({"preStop": {"exec": {"command": ["sleep", "5"]}}})
        );
    }
    assert!(
        err(
            "webservice",
            web(),
            &[(
                "lifecycle",
                json!({"postStart": {"tcpSocket": {"port": 70000}}})
            )]
        )
        .contains("70000")
    );
}

#[test]
fn pod_and_container_security_contexts() {
    let r = render(
        "webservice",
        web(),
        &[(
            "podsecuritycontext",
            json!({"runAsUser": 1000, "fsGroup": 2000, "seccompProfile": {"type": "RuntimeDefault"}}),
        )],
    );
    assert_eq!(
        at(workload(&r), "/spec/template/spec/securityContext"),
        &json!({"runAsUser": 1000, "fsGroup": 2000, "seccompProfile": {"type": "RuntimeDefault"}, "runAsNonRoot": true})
    );
    let r = render(
        "webservice",
        web(),
        &[(
            "securitycontext",
            json!({"dropCapabilities": ["ALL"], "readOnlyRootFilesystem": true, "runAsUser": 1000}),
        )],
    );
    assert_eq!(
        container(&r, "api")["securityContext"],
        json!({"capabilities": {"drop": ["ALL"]}, "runAsUser": 1000, "allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true, "privileged": false, "runAsNonRoot": true})
    );
    assert!(
        err(
            "webservice",
            web(),
            &[("securitycontext", json!({"containerName": "nope"}))]
        )
        .contains("container nope not found")
    );
    assert!(
        err(
            "webservice",
            web(),
            &[(
                "podsecuritycontext",
                json!({"seccompProfile": {"type": "Strict"}})
            )]
        )
        .contains("type")
    );
}

#[test]
fn service_account_with_privileges() {
    let r = render(
        "webservice",
        web(),
        &[(
            "service-account",
            json!({"name": "reader", "create": true, "privileges": [
                {"verbs": ["get", "list"], "resources": ["pods"], "apiGroups": [""]},
                {"verbs": ["get"], "resources": ["nodes"], "apiGroups": [""], "scope": "cluster"},
            ]}),
        )],
    );
    assert_eq!(
        at(workload(&r), "/spec/template/spec/serviceAccountName"),
        "reader"
    );
    assert_eq!(aux(&r, "service-account")["kind"], "ServiceAccount");
    assert_eq!(
        aux(&r, "role")["rules"],
        json!([{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]}])
    );
    assert_eq!(at(aux(&r, "role-binding"), "/roleRef/name"), "reader");
    assert_eq!(at(aux(&r, "cluster-role"), "/metadata/name"), "prod:reader");
    assert_eq!(
        at(aux(&r, "cluster-role-binding"), "/subjects/0"),
        &json!({"kind": "ServiceAccount", "name": "reader", "namespace": "prod"})
    );
    let r = render(
        "webservice",
        web(),
        &[("service-account", json!({"name": "existing"}))],
    );
    assert!(r.auxiliaries.is_empty());
}

#[test]
fn topology_spread_constraints() {
    let r = render(
        "worker",
        json!({"image": "x"}),
        &[(
            "topologyspreadconstraints",
            json!({"constraints": [{"maxSkew": 1, "topologyKey": "zone", "labelSelector": {"matchLabels": {"app": "x"}}}]}),
        )],
    );
    assert_eq!(
        at(
            workload(&r),
            "/spec/template/spec/topologySpreadConstraints"
        ),
        &json!([{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": "x"}}}])
    );
}

#[test]
fn affinity_and_tolerations() {
    let r = render(
        "webservice",
        web(),
        &[(
            "affinity",
            json!({
                "podAntiAffinity": {"preferred": [{"weight": 50, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"app": "api"}}}}]},
                "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [{"key": "disk", "values": ["ssd"]}]}]}},
                "tolerations": [{"key": "gpu", "effect": "NoSchedule"}],
            }),
        )],
    );
    let spec = at(workload(&r), "/spec/template/spec");
    assert_eq!(
        spec["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]["weight"],
        50
    );
    assert_eq!(
        spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"],
        json!([{"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}])
    );
    assert_eq!(
        spec["tolerations"],
        json!([{"key": "gpu", "effect": "NoSchedule", "operator": "Equal"}])
    );
    assert!(err("webservice", web(), &[("affinity", json!({"podAffinity": {"preferred": [{"weight": 101, "podAffinityTerm": {"topologyKey": "z"}}]}}))]).contains("101"));
}

#[test]
fn startup_probe_per_container() {
    let r = render(
        "webservice",
        web(),
        &[(
            "startup-probe",
            json!({"httpGet": {"path": "/healthz", "port": 80}, "failureThreshold": 30}),
        )],
    );
    assert_eq!(
        container(&r, "api")["startupProbe"],
        json!({"httpGet": {"path": "/healthz", "port": 80}, "initialDelaySeconds": 0, "periodSeconds": 10, "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 30})
    );
    let r = render(
        "webservice",
        web(),
        &[
            ("sidecar", json!({"name": "log", "image": "f"})),
            (
                "startup-probe",
                json!({"probes": [{"containerName": "log", "exec": {"command": ["true"]}}]}),
            ),
        ],
    );
    assert_eq!(
        container(&r, "log")["startupProbe"]["exec"],
        json!({"command": ["true"]})
    );
    assert!(container(&r, "api").get("startupProbe").is_none());
    assert!(
        err(
            "webservice",
            web(),
            &[(
                "startup-probe",
                json!({"probes": [{"exec": {"command": ["true"]}}]})
            )]
        )
        .contains("containerName must be set")
    );
}

#[test]
fn container_ports_add_and_bind() {
    let r = render(
        "webservice",
        web(),
        &[(
            "container-ports",
            json!({"ports": [{"containerPort": 80, "hostPort": 8080}, {"containerPort": 9090, "protocol": "UDP"}]}),
        )],
    );
    assert_eq!(
        container(&r, "api")["ports"],
        json!([
            {"containerPort": 80, "protocol": "TCP", "name": "port-80", "hostPort": 8080},
            {"containerPort": 9090, "protocol": "UDP"},
        ])
    );
    let r = render(
        "worker",
        json!({"image": "x"}),
        &[(
            "container-ports",
            json!({"ports": [{"containerPort": 53, "protocol": "UDP"}]}),
        )],
    );
    assert_eq!(
        container(&r, "api")["ports"],
        json!([{"containerPort": 53, "protocol": "UDP"}])
    );
}

#[test]
fn pure_ingress_routes_to_the_component_service() {
    let r = render(
        "webservice",
        web(),
        &[(
            "pure-ingress",
            json!({"domain": "a.example.com", "http": {"/": 80}}),
        )],
    );
    let ing = aux(&r, "ingress");
    assert_eq!(ing["apiVersion"], "networking.k8s.io/v1");
    assert_eq!(
        at(ing, "/spec/rules/0"),
        &json!({"host": "a.example.com", "http": {"paths": [{"path": "/", "pathType": "ImplementationSpecific", "backend": {"service": {"name": "api", "port": {"number": 80}}}}]}})
    );
    assert!(
        err(
            "webservice",
            web(),
            &[("pure-ingress", json!({"http": {"/": 80}}))]
        )
        .contains("host")
    );
}

#[test]
fn service_binding_env_from_secrets() {
    let r = render(
        "webservice",
        web(),
        &[(
            "service-binding",
            json!({"envMappings": {"DB_PASSWORD": {"secret": "db", "key": "password"}, "DB_HOST": {"secret": "db"}}}),
        )],
    );
    let env = container(&r, "api")["env"].clone();
    assert_eq!(
        env[2],
        json!({"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}})
    );
    assert_eq!(
        env[3],
        json!({"name": "DB_HOST", "valueFrom": {"secretKeyRef": {"name": "db", "key": "DB_HOST"}}})
    );
}

#[test]
fn nocalhost_dev_config() {
    let r = render(
        "webservice",
        web(),
        &[(
            "nocalhost",
            json!({"port": 9080, "image": "go", "gitUrl": "https://example.com/app.git"}),
        )],
    );
    let w = workload(&r);
    assert_eq!(
        at(w, "/metadata/annotations/dev.nocalhost~1application-name"),
        "shop"
    );
    let cfg: Value = serde_json::from_str(
        at(w, "/metadata/annotations/dev.nocalhost")
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(cfg["name"], "api");
    assert_eq!(cfg["serviceType"], "deployment");
    let dev = &cfg["containers"][0]["dev"];
    assert_eq!(
        dev["image"],
        "nocalhost-docker.pkg.coding.net/nocalhost/dev-images/golang:latest"
    );
    assert_eq!(dev["gitUrl"], "https://example.com/app.git");
    assert_eq!(dev["portForward"], json!(["9080:9080"]));
    assert_eq!(
        dev["resources"]["limits"],
        json!({"memory": "2Gi", "cpu": "2"})
    );
    assert_eq!(
        at(aux(&r, "nocalhostService"), "/spec/ports"),
        &json!([{"port": 9080, "targetPort": 9080}])
    );
}

#[test]
fn labels_and_scaler() {
    let r = render(
        "webservice",
        web(),
        &[
            ("labels", json!({"tier": "web"})),
            ("scaler", json!({"replicas": 5})),
        ],
    );
    let w = workload(&r);
    assert_eq!(at(w, "/metadata/labels/tier"), "web");
    assert_eq!(at(w, "/spec/template/metadata/labels/tier"), "web");
    assert_eq!(at(w, "/spec/replicas"), 5);
}

/// Every built-in is exercised above: this list must name them all.
#[test]
fn every_builtin_has_a_test() {
    let tested = [
        "webservice",
        "worker",
        "task",
        "cron-task",
        "daemon",
        "statefulset",
        "k8s-objects",
        "scaler",
        "labels",
        "annotations",
        "expose",
        "env",
        "sidecar",
        "gateway",
        "storage",
        "resource",
        "hpa",
        "cpuscaler",
        "init-container",
        "hostalias",
        "json-patch",
        "json-merge-patch",
        "command",
        "container-image",
        "k8s-update-strategy",
        "lifecycle",
        "podsecuritycontext",
        "securitycontext",
        "service-account",
        "topologyspreadconstraints",
        "affinity",
        "startup-probe",
        "container-ports",
        "pure-ingress",
        "service-binding",
        "nocalhost",
        "ref-objects",
        "helm",
        "kustomize",
        "terraform",
        "topology",
        "override",
        "replication",
        "garbage-collect",
        "apply-once",
        "shared-resource",
        "take-over",
        "read-only",
        "resource-update",
    ];
    // Workflow steps run in the workflow engine; their tests are there (crates/workflow,
    // crates/sail/tests/steps.rs).
    for d in render::builtin::definitions()
        .unwrap()
        .into_iter()
        .filter(|d| d.kind != DefinitionKind::WorkflowStep)
    {
        assert!(
            tested.contains(&d.name.as_str()),
            "built-in {} has no test",
            d.name
        );
    }
}

fn trait_health(type_: &str, params: Value, outputs: Value) -> render::HealthStatus {
    let def = catalog().get(DefinitionKind::Trait, type_).unwrap();
    let live = LiveObjects {
        output: Some(json!({"apiVersion": "apps/v1", "kind": "Deployment"})),
        outputs: outputs.as_object().unwrap().clone(),
    };
    render::evaluate_health(def, "api", "shop", "shop-v3", &params, &live).unwrap()
}

#[test]
fn trait_health_policies() {
    let lb = |ingress: Value| json!({"service": {"spec": {"type": "LoadBalancer"}, "status": {"loadBalancer": {"ingress": ingress}}}});
    let pending = trait_health("expose", json!({"type": "LoadBalancer"}), lb(json!([])));
    assert!(!pending.healthy);
    assert_eq!(pending.message, "ExternalIP: Pending");
    let ready = trait_health(
        "expose",
        json!({"type": "LoadBalancer"}),
        lb(json!([{"ip": "1.2.3.4"}])),
    );
    assert!(ready.healthy);
    assert_eq!(ready.message, "ExternalIP: 1.2.3.4");
    let cluster_ip = trait_health(
        "expose",
        json!({}),
        json!({"service": {"spec": {"type": "ClusterIP", "clusterIP": "10.0.0.7"}}}),
    );
    assert!(cluster_ip.healthy);
    assert_eq!(cluster_ip.message, "ClusterIP: 10.0.0.7");

    let ing = json!({"ingress": {"spec": {"rules": [{"host": "shop.example.com"}]},
        "status": {"loadBalancer": {"ingress": [{"ip": "5.6.7.8"}]}}}});
    let gw = trait_health("gateway", json!({"http": {"/": 80}}), ing);
    assert!(gw.healthy);
    assert_eq!(gw.message, "Visiting URL: shop.example.com, IP: 5.6.7.8");
    assert!(!trait_health("gateway", json!({"http": {"/": 80}}), json!({})).healthy);

    let pure = trait_health(
        "pure-ingress",
        json!({"domain": "a.example.com", "http": {"/": 80}}),
        json!({"ingress": {"spec": {"rules": [{"host": "a.example.com"}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "9.9.9.9"}]}}}}),
    );
    assert!(pure.healthy);
    assert_eq!(pure.message, "Visiting URL: a.example.com, IP: 9.9.9.9");
}

/// The controller installs the built-ins as hub objects and reads them back from there.
#[test]
fn builtins_round_trip_as_hub_objects() {
    let cache = CompileCache::default();
    for d in render::builtin::definitions().unwrap() {
        let object = d.to_object("vela-system");
        let back =
            render::Definition::from_object(&object).unwrap_or_else(|e| panic!("{}: {e}", d.name));
        assert_eq!(back.name, d.name);
        assert_eq!(back.kind, d.kind);
        assert_eq!(back.template, d.template, "{}", d.name);
        assert_eq!(back.health_policy(), d.health_policy(), "{}", d.name);
        cache
            .compile(back)
            .unwrap_or_else(|e| panic!("{}: {e}", d.name));
    }
}

// ---------------------------------------------------------------- policies

fn policy_app(policies: Value) -> oam::Application {
    serde_json::from_value(json!({
        "apiVersion": "core.oam.dev/v1beta1",
        "kind": "Application",
        "metadata": {"name": "shop", "namespace": "prod"},
        "spec": {"components": [], "policies": policies},
    }))
    .unwrap()
}

/// Validate the application's only policy against its built-in definition.
fn try_policy(type_: &str, props: Value) -> Result<Value, render::Error> {
    let app = policy_app(json!([{"name": "p", "type": type_, "properties": props}]));
    render::policy::validate_policy(&app.spec.policies[0], &app, catalog())
}

fn policy(type_: &str, props: Value) -> Value {
    try_policy(type_, props).unwrap_or_else(|e| panic!("{type_}: {e}"))
}

fn policy_err(type_: &str, props: Value) -> String {
    match try_policy(type_, props) {
        Ok(v) => panic!("{type_} should fail, validated to {v}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn every_kubevela_policy_type_is_built_in() {
    let names: Vec<&str> = catalog().names(DefinitionKind::Policy).collect();
    assert_eq!(
        names,
        vec![
            "apply-once",
            "garbage-collect",
            "override",
            "read-only",
            "replication",
            "resource-update",
            "shared-resource",
            "take-over",
            "topology",
        ]
    );
    for name in names {
        let def = catalog().get(DefinitionKind::Policy, name).unwrap();
        assert!(!def.definition.description.is_empty(), "{name}");
    }
}

#[test]
fn topology_policy_parameters() {
    let p = policy(
        "topology",
        json!({"clusterLabelSelector": {"region": "hangzhou"}, "namespace": "examples"}),
    );
    assert_eq!(p["clusterLabelSelector"]["region"], "hangzhou");
    policy(
        "topology",
        json!({"clusters": ["local", "prod"], "allowEmpty": true}),
    );
    let e = policy_err("topology", json!({"clusters": "local"}));
    assert!(e.contains("policy \"p\"") && e.contains("clusters"), "{e}");
    let e = policy_err("topology", json!({"clusterLabelSelector": {"region": 1}}));
    assert!(e.contains("region"), "{e}");
}

#[test]
fn override_policy_parameters() {
    let p = policy(
        "override",
        json!({"components": [{"type": "webservice",
            "traits": [{"type": "scaler", "properties": {"replicas": 3}}, {"type": "labels"}]}],
            "selector": ["api"]}),
    );
    // `disable` defaults to false.
    assert_eq!(p["components"][0]["traits"][1]["disable"], false);
    assert_eq!(p["components"][0]["traits"][0]["disable"], false);
    let e = policy_err(
        "override",
        json!({"components": [{"traits": [{"disable": true}]}]}),
    );
    assert!(e.contains("type"), "{e}");
    let e = policy_err("override", json!({"components": [{"name": 3}]}));
    assert!(e.contains("name"), "{e}");
}

#[test]
fn replication_policy_parameters() {
    let p = policy(
        "replication",
        json!({"keys": ["beijing", "hangzhou"], "selector": ["hello-rep"]}),
    );
    assert_eq!(p["keys"], json!(["beijing", "hangzhou"]));
    let e = policy_err("replication", json!({"keys": "beijing"}));
    assert!(e.contains("keys"), "{e}");
}

#[test]
fn garbage_collect_policy_parameters() {
    let p = policy(
        "garbage-collect",
        json!({"rules": [{"selector": {"traitTypes": ["expose"]}, "strategy": "onAppDelete"},
                         {"selector": {"resourceTypes": ["PersistentVolumeClaim"]}}]}),
    );
    assert_eq!(p["keepLegacyResource"], false);
    assert_eq!(p["continueOnFailure"], false);
    assert_eq!(p["rules"][1]["strategy"], "onAppUpdate");
    let e = policy_err(
        "garbage-collect",
        json!({"rules": [{"selector": {}, "strategy": "sometimes"}]}),
    );
    assert!(e.contains("strategy"), "{e}");
}

#[test]
fn apply_once_policy_parameters() {
    let p = policy(
        "apply-once",
        json!({"enable": true, "rules": [{"selector": {"componentNames": ["api"], "resourceTypes": ["Deployment"]},
            "strategy": {"path": ["spec.replicas"], "affect": "onStateKeep"}}]}),
    );
    assert_eq!(p["enable"], true);
    assert_eq!(policy("apply-once", json!({}))["enable"], false);
    let e = policy_err(
        "apply-once",
        json!({"rules": [{"strategy": {"path": "spec.replicas"}}]}),
    );
    assert!(e.contains("path"), "{e}");
}

#[test]
fn resource_rule_policies_parameters() {
    for t in ["shared-resource", "take-over", "read-only"] {
        let p = policy(
            t,
            json!({"rules": [{"selector": {"resourceTypes": ["Namespace"], "componentNames": ["db"]}}]}),
        );
        assert_eq!(
            p["rules"][0]["selector"]["resourceTypes"],
            json!(["Namespace"])
        );
        let e = policy_err(
            t,
            json!({"rules": [{"selector": {"resourceTypes": "Namespace"}}]}),
        );
        assert!(e.contains("resourceTypes"), "{t}: {e}");
    }
}

#[test]
fn resource_update_policy_parameters() {
    let p = policy(
        "resource-update",
        json!({"rules": [{"selector": {"resourceTypes": ["ConfigMap"]}, "strategy": {"recreateFields": ["data"]}}]}),
    );
    assert_eq!(p["rules"][0]["strategy"]["op"], "patch");
    let e = policy_err(
        "resource-update",
        json!({"rules": [{"selector": {}, "strategy": {"op": "delete"}}]}),
    );
    assert!(e.contains("op"), "{e}");
}

#[test]
fn unknown_policy_type_lists_the_closest() {
    let e = policy_err("topolgy", json!({}));
    assert!(e.contains("did you mean \"topology\""), "{e}");
}

// ---------------------------------------------------------------- ref-objects

#[test]
fn ref_objects_unresolved_render_as_selectors() {
    let r = render(
        "ref-objects",
        json!({"objects": [
            {"resource": "deployment"},
            {"resource": "configmap", "labelSelector": {"app": "api"}, "cluster": "hz-1"},
            {"apiVersion": "v1", "kind": "Secret", "name": "db-creds", "namespace": "vault"},
        ]}),
        &[],
    );
    let w = workload(&r);
    assert!(render::refobjects::is_unresolved(w), "{w}");
    assert_eq!(
        at(w, "/spec"),
        &json!({"resource": "deployment", "name": "api", "namespace": "prod", "cluster": "local"})
    );
    assert_eq!(at(w, "/metadata/name"), "api-ref-0");
    let cm = aux(&r, "objects-1");
    assert_eq!(
        at(cm, "/spec"),
        &json!({"resource": "configmap", "labelSelector": {"app": "api"}, "namespace": "prod", "cluster": "hz-1"})
    );
    let secret = aux(&r, "objects-2");
    assert_eq!(at(secret, "/spec/kind"), "Secret");
    assert_eq!(at(secret, "/spec/namespace"), "vault");
    assert_eq!(at(secret, "/spec/name"), "db-creds");
}

#[test]
fn ref_objects_resolved_render_the_objects_with_traits() {
    let component: oam::ApplicationComponent = serde_json::from_value(json!({
        "name": "api", "type": "ref-objects",
        "properties": {"objects": [{"resource": "deployment"}, {"resource": "service"}]},
        "traits": [{"type": "scaler", "properties": {"replicas": 3}}],
    }))
    .unwrap();
    let read = vec![
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "api", "namespace": "prod", "uid": "1", "resourceVersion": "9"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "api"}},
                     "template": {"metadata": {"labels": {"app": "api"}},
                                  "spec": {"containers": [{"name": "api", "image": "shop/api:1"}]}}},
            "status": {"readyReplicas": 1}}),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "api", "namespace": "prod"},
            "spec": {"selector": {"app": "api"}, "ports": [{"port": 80}]}}),
    ];
    let resolved = render::refobjects::resolve(&component, read);
    let r = render::render_component(&resolved, catalog(), &ctx()).unwrap();
    let w = workload(&r);
    assert_eq!(at(w, "/kind"), "Deployment");
    assert_eq!(at(w, "/spec/replicas"), 3);
    assert!(w.get("status").is_none());
    assert!(w.pointer("/metadata/uid").is_none());
    assert_eq!(at(w, "/metadata/labels/app.oam.dev~1component"), "api");
    let svc = aux(&r, "objects-1");
    assert_eq!(at(svc, "/kind"), "Service");
    assert_eq!(at(svc, "/spec/ports/0/port"), 80);
}

#[test]
fn ref_objects_health() {
    let d = |ready: i64| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "api", "generation": 2},
        "spec": {"replicas": 2},
        "status": {"readyReplicas": ready, "updatedReplicas": 2, "replicas": 2, "observedGeneration": 2}})
    };
    let ok = health("ref-objects", json!({}), d(2));
    assert!(ok.healthy);
    assert_eq!(ok.message, "Ready:2/2");
    let progressing = health("ref-objects", json!({}), d(1));
    assert!(!progressing.healthy);
    assert_eq!(progressing.message, "Ready:1/2");
    let cm = health(
        "ref-objects",
        json!({}),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}),
    );
    assert!(cm.healthy);
    assert_eq!(cm.message, "");
}

// ---------------------------------------------------------------- FluxCD and Terraform

#[test]
fn helm_from_a_helm_repository() {
    let r = render(
        "helm",
        json!({
            "repoType": "helm",
            "url": "https://charts.bitnami.com/bitnami",
            "chart": "redis-cluster",
            "version": "6.2.7",
            "targetNamespace": "cache",
            "releaseName": "redis",
            "values": {"cluster": {"nodes": 6}, "password": "s3cret"},
            "valuesFrom": [{"kind": "ConfigMap", "name": "redis-values", "valuesKey": "prod.yaml"}],
            "upgradeCRD": true,
        }),
        &[],
    );
    let w = workload(&r);
    assert_eq!(at(w, "/apiVersion"), "helm.toolkit.fluxcd.io/v2beta1");
    assert_eq!(at(w, "/kind"), "HelmRelease");
    assert_eq!(at(w, "/metadata/name"), "api");
    assert_eq!(
        at(w, "/spec/chart/spec"),
        &json!({"chart": "redis-cluster", "version": "6.2.7", "interval": "30s",
                "sourceRef": {"kind": "HelmRepository", "name": "api"}})
    );
    assert_eq!(at(w, "/spec/interval"), "5m");
    assert_eq!(at(w, "/spec/timeout"), "10m");
    assert_eq!(at(w, "/spec/targetNamespace"), "cache");
    assert_eq!(at(w, "/spec/releaseName"), "redis");
    assert_eq!(at(w, "/spec/values/cluster/nodes"), 6);
    assert_eq!(
        at(w, "/spec/valuesFrom"),
        &json!([{"kind": "ConfigMap", "name": "redis-values", "valuesKey": "prod.yaml"}])
    );
    assert_eq!(at(w, "/spec/install/remediation/retries"), 3);
    assert_eq!(
        at(w, "/spec/upgrade"),
        &json!({"remediation": {"retries": 3}, "crds": "CreateReplace"})
    );
    let repo = aux(&r, "repo");
    assert_eq!(at(repo, "/apiVersion"), "source.toolkit.fluxcd.io/v1beta2");
    assert_eq!(at(repo, "/kind"), "HelmRepository");
    assert_eq!(
        at(repo, "/spec"),
        &json!({"url": "https://charts.bitnami.com/bitnami", "interval": "5m"})
    );
}

#[test]
fn helm_from_git_oci_oss_and_existing_sources() {
    let git = render(
        "helm",
        json!({"repoType": "git", "url": "https://github.com/stefanprodan/podinfo", "chart": "./charts/podinfo",
               "git": {"tag": "6.3.0"}, "secretRef": "git-creds", "timeout": "60s"}),
        &[],
    );
    let repo = aux(&git, "repo");
    assert_eq!(at(repo, "/apiVersion"), "source.toolkit.fluxcd.io/v1");
    assert_eq!(at(repo, "/kind"), "GitRepository");
    // `git.branch` is optional: its default `main` does not make it appear (as in KubeVela).
    assert_eq!(at(repo, "/spec/ref"), &json!({"tag": "6.3.0"}));
    assert_eq!(at(repo, "/spec/secretRef/name"), "git-creds");
    assert_eq!(at(repo, "/spec/timeout"), "60s");
    assert_eq!(
        at(workload(&git), "/spec/chart/spec/sourceRef/kind"),
        "GitRepository"
    );

    let oci = render(
        "helm",
        json!({"repoType": "oci", "url": "oci://ghcr.io/stefanprodan/charts", "chart": "podinfo",
               "helmrepository": {"provider": "aws"}}),
        &[],
    );
    assert_eq!(
        at(aux(&oci, "repo"), "/spec"),
        &json!({"url": "oci://ghcr.io/stefanprodan/charts", "type": "oci", "provider": "aws", "interval": "5m"})
    );

    let oss = render(
        "helm",
        json!({"repoType": "oss", "url": "oss-cn-beijing.aliyuncs.com", "chart": "./chart",
               "oss": {"bucketName": "charts", "region": "cn-beijing"}}),
        &[],
    );
    let b = aux(&oss, "repo");
    assert_eq!(at(b, "/kind"), "Bucket");
    assert_eq!(
        at(b, "/spec"),
        &json!({"endpoint": "oss-cn-beijing.aliyuncs.com", "bucketName": "charts", "provider": "generic",
                "region": "cn-beijing", "interval": "5m"})
    );

    let existing = render(
        "helm",
        json!({"url": "https://charts.example.com", "chart": "app", "sourceName": "shared-repo"}),
        &[],
    );
    assert!(existing.auxiliaries.is_empty());
    assert_eq!(
        at(workload(&existing), "/spec/chart/spec/sourceRef"),
        &json!({"kind": "HelmRepository", "name": "shared-repo"})
    );

    let e = err("helm", json!({"url": "https://charts.example.com"}), &[]);
    assert!(e.contains("chart"), "{e}");
    let e = err(
        "helm",
        json!({"url": "u", "chart": "c", "repoType": "svn"}),
        &[],
    );
    assert!(e.contains("repoType"), "{e}");
}

#[test]
fn helm_health_and_status() {
    let release = |conditions: Value| {
        json!({"apiVersion": "helm.toolkit.fluxcd.io/v2beta1", "kind": "HelmRelease",
               "metadata": {"name": "api"}, "status": {"conditions": conditions}})
    };
    let def = catalog().get(DefinitionKind::Component, "helm").unwrap();
    let live = |output: Value, repo: Option<Value>| LiveObjects {
        output: Some(output),
        outputs: repo.into_iter().map(|r| ("repo".to_string(), r)).collect(),
    };
    let ready_repo = json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}});
    let h = render::evaluate_health(
        def,
        "api",
        "shop",
        "shop-v3",
        &json!({}),
        &live(
            release(json!([{"type": "Ready", "status": "True", "message": "Release reconciliation succeeded"}])),
            Some(ready_repo.clone()),
        ),
    )
    .unwrap();
    assert!(h.healthy);
    assert_eq!(
        h.message,
        "Fetch repository successfully, Create helm release successfully"
    );
    let h = render::evaluate_health(
        def,
        "api",
        "shop",
        "shop-v3",
        &json!({}),
        &live(
            release(
                json!([{"type": "Ready", "status": "False", "message": "install retries exhausted"},
                           {"type": "Released", "status": "False", "message": "timed out"}]),
            ),
            Some(json!({"status": {"conditions": [{"type": "Stalled", "status": "True"}]}})),
        ),
    )
    .unwrap();
    assert!(!h.healthy);
    assert_eq!(
        h.message,
        "Fetch repository fail, Delivery helm release in progress, message: install retries exhausted, timed out"
    );
    let h = render::evaluate_health(
        def,
        "api",
        "shop",
        "shop-v3",
        &json!({}),
        &live(
            json!({"kind": "HelmRelease", "metadata": {"name": "api"}}),
            Some(json!({})),
        ),
    )
    .unwrap();
    assert!(!h.healthy);
    assert_eq!(h.message, "Fetching repository, Creating helm release");
    let h = render::evaluate_health(
        def,
        "api",
        "shop",
        "shop-v3",
        &json!({}),
        &live(release(json!([])), None),
    )
    .unwrap();
    assert!(!h.healthy);
    assert_eq!(h.message, "Use existed repository, Wating repository ready");
}

#[test]
fn kustomize_from_git_with_image_automation() {
    let r = render(
        "kustomize",
        json!({
            "repoType": "git",
            "url": "https://github.com/example/shop-config",
            "secretRef": "git-token",
            "git": {"branch": "main", "provider": "AzureDevOps"},
            "path": "./overlays/prod",
            "targetNamespace": "shop",
            "imageRepository": {
                "image": "ghcr.io/example/shop",
                "policy": {"semver": {"range": ">=1.0.0"}},
                "filterTags": {"pattern": "^v(?P<v>.*)$", "extract": "$v"},
                "commitMessage": "Image: {{range .Updated.Images}}{{println .}}{{end}}",
            },
        }),
        &[],
    );
    let w = workload(&r);
    assert_eq!(at(w, "/apiVersion"), "kustomize.toolkit.fluxcd.io/v1beta2");
    assert_eq!(at(w, "/kind"), "Kustomization");
    assert_eq!(
        at(w, "/spec"),
        &json!({"interval": "5m", "path": "./overlays/prod", "prune": true, "suspend": false, "force": false,
                "targetNamespace": "shop",
                "sourceRef": {"kind": "GitRepository", "name": "api", "namespace": "prod"}})
    );
    let repo = aux(&r, "repo");
    assert_eq!(at(repo, "/kind"), "GitRepository");
    assert_eq!(
        at(repo, "/spec"),
        &json!({"url": "https://github.com/example/shop-config", "ref": {"branch": "main"},
                "gitImplementation": "libgit2", "secretRef": {"name": "git-token"}, "interval": "5m"})
    );
    assert_eq!(
        at(aux(&r, "imageRepo"), "/spec/image"),
        "ghcr.io/example/shop"
    );
    assert_eq!(
        at(aux(&r, "imagePolicy"), "/spec/policy/semver/range"),
        ">=1.0.0"
    );
    assert_eq!(at(aux(&r, "imagePolicy"), "/spec/filterTags/extract"), "$v");
    let up = aux(&r, "imageUpdate");
    assert_eq!(at(up, "/spec/git/push/branch"), "main");
    assert_eq!(
        at(up, "/spec/git/commit/messageTemplate"),
        "Update image automatically.\nImage: {{range .Updated.Images}}{{println .}}{{end}}"
    );
    assert_eq!(
        at(up, "/spec/update"),
        &json!({"path": "./overlays/prod", "strategy": "Setters"})
    );
}

#[test]
fn kustomize_from_oss_and_legacy_parameters() {
    let r = render(
        "kustomize",
        json!({"repoType": "oss", "url": "oss-cn-hangzhou.aliyuncs.com", "path": "./",
               "oss": {"bucketName": "manifests", "provider": "aws"}, "prune": false}),
        &[],
    );
    assert_eq!(at(workload(&r), "/spec/sourceRef/kind"), "Bucket");
    assert_eq!(at(workload(&r), "/spec/prune"), false);
    assert_eq!(
        at(aux(&r, "repo"), "/spec"),
        &json!({"endpoint": "oss-cn-hangzhou.aliyuncs.com", "bucketName": "manifests", "provider": "aws",
                "interval": "5m"})
    );
    assert_eq!(r.auxiliaries.len(), 1);
    // The older registry parameters.
    let r = render(
        "kustomize",
        json!({"repoUrl": "https://github.com/example/app", "branch": "release-1.2", "path": "./deploy"}),
        &[],
    );
    assert_eq!(
        at(aux(&r, "repo"), "/spec"),
        &json!({"url": "https://github.com/example/app", "ref": {"branch": "release-1.2"},
                "interval": "5m"})
    );
    let e = err(
        "kustomize",
        json!({"url": "https://github.com/example/app"}),
        &[],
    );
    assert!(e.contains("path"), "{e}");
}

#[test]
fn kustomize_health() {
    let k = |conditions: Value| {
        json!({"apiVersion": "kustomize.toolkit.fluxcd.io/v1beta2", "kind": "Kustomization",
               "metadata": {"name": "api"}, "status": {"conditions": conditions}})
    };
    let ok = health(
        "kustomize",
        json!({}),
        k(json!([{"type": "Ready", "status": "True", "message": "Applied revision: main/abc"}])),
    );
    assert!(ok.healthy);
    assert_eq!(ok.message, "Applied revision: main/abc");
    let failed = health(
        "kustomize",
        json!({}),
        k(json!([{"type": "Ready", "status": "False", "message": "kustomization path not found"}])),
    );
    assert!(!failed.healthy);
    assert_eq!(failed.message, "kustomization path not found");
    let new = health(
        "kustomize",
        json!({}),
        json!({"kind": "Kustomization", "metadata": {"name": "api"}}),
    );
    assert!(!new.healthy);
    assert_eq!(new.message, "Kustomization is being reconciled");
}

#[test]
fn terraform_module_as_configuration() {
    let r = render(
        "terraform",
        json!({
            "remote": "https://github.com/kubevela-contrib/terraform-modules.git",
            "path": "alibaba/oss",
            "bucket": "shop-assets",
            "acl": "private",
            "tags": {"team": "shop"},
            "writeConnectionSecretToRef": {"name": "oss-conn"},
            "providerRef": {"name": "alibaba", "namespace": "vela-system"},
            "region": "cn-hangzhou",
        }),
        &[],
    );
    let w = workload(&r);
    assert_eq!(at(w, "/apiVersion"), "terraform.core.oam.dev/v1beta2");
    assert_eq!(at(w, "/kind"), "Configuration");
    assert_eq!(at(w, "/metadata/namespace"), "prod");
    assert_eq!(
        at(w, "/spec"),
        &json!({
            "remote": "https://github.com/kubevela-contrib/terraform-modules.git",
            "path": "alibaba/oss",
            "variable": {"bucket": "shop-assets", "acl": "private", "tags": {"team": "shop"}},
            "writeConnectionSecretToRef": {"name": "oss-conn", "namespace": "prod"},
            "providerRef": {"name": "alibaba", "namespace": "vela-system"},
            "region": "cn-hangzhou",
            "deleteResource": true,
        })
    );
    let hcl = render(
        "terraform",
        json!({"hcl": "variable \"name\" {}\nresource \"null_resource\" \"x\" {}", "name": "x", "deleteResource": false}),
        &[],
    );
    assert_eq!(at(workload(&hcl), "/spec/variable"), &json!({"name": "x"}));
    assert_eq!(at(workload(&hcl), "/spec/deleteResource"), false);
    assert!(workload(&hcl).pointer("/spec/remote").is_none());

    let e = err("terraform", json!({"bucket": "b"}), &[]);
    assert!(
        e.contains("neither parameter.hcl nor parameter.remote"),
        "{e}"
    );
    let e = err("terraform", json!({"hcl": "x", "remote": "y"}), &[]);
    assert!(e.contains("both set"), "{e}");
    let e = err(
        "terraform",
        json!({"hcl": "x", "providerRef": {"namespace": "a"}}),
        &[],
    );
    assert!(e.contains("providerRef"), "{e}");
}

#[test]
fn terraform_health() {
    let c = |state: &str, message: &str| {
        json!({"apiVersion": "terraform.core.oam.dev/v1beta2", "kind": "Configuration",
               "metadata": {"name": "api"}, "status": {"apply": {"state": state, "message": message}}})
    };
    let ok = health(
        "terraform",
        json!({}),
        c("Available", "Cloud resources are deployed and ready to use"),
    );
    assert!(ok.healthy);
    assert_eq!(ok.message, "Cloud resources are deployed and ready to use");
    let busy = health(
        "terraform",
        json!({}),
        c(
            "ProvisioningAndChecking",
            "Cloud resources are being provisioned",
        ),
    );
    assert!(!busy.healthy);
    let new = health(
        "terraform",
        json!({}),
        json!({"kind": "Configuration", "metadata": {"name": "api"}}),
    );
    assert!(!new.healthy);
    assert_eq!(new.message, "Provisioning");
}
