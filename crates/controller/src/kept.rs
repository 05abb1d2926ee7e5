//! What an application's deletion left in place on purpose (PersistentVolumeClaims, what a
//! `never` rule keeps, what other applications share): recorded in an Event on the
//! Application, which outlives it, so that `sail delete` can say what it kept.

use crate::Error;
use crate::tracker::GcReport;
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use kube::ResourceExt;
use kube::api::{Api, ListParams, PostParams};

/// The reason of the Event that lists what a deletion kept.
pub const REASON_KEPT: &str = "ResourcesKept";
/// The annotation on that Event holding the kept resources as a JSON list of strings.
pub const ANNOTATION_KEPT: &str = "app.oam.dev/kept-resources";

/// What the deletion of an application kept, each entry `Kind namespace/name (cluster)`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Kept {
    /// Kept on purpose: PersistentVolumeClaims and what a garbage-collect `never` rule keeps.
    pub kept: Vec<String>,
    /// Left to other applications (shared resources handed on, resources taken over).
    pub released: Vec<String>,
}

pub(crate) async fn record(
    client: &kube::Client,
    app: &oam::Application,
    report: &GcReport,
) -> Result<(), Error> {
    if report.kept.is_empty() && report.released.is_empty() {
        return Ok(());
    }
    let ns = app.namespace().to_string();
    let name = app.name_any();
    let uid = app.uid().unwrap_or_default();
    let mut parts = Vec::new();
    if !report.kept.is_empty() {
        parts.push(format!("kept {}", report.kept.join(", ")));
    }
    if !report.released.is_empty() {
        parts.push(format!(
            "left to other applications {}",
            report.released.join(", ")
        ));
    }
    let now =
        k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now());
    let mut ev = Event {
        involved_object: ObjectReference {
            api_version: Some("core.oam.dev/v1beta1".into()),
            kind: Some("Application".into()),
            name: Some(name.clone()),
            namespace: Some(ns.clone()),
            uid: Some(uid.clone()),
            ..ObjectReference::default()
        },
        reason: Some(REASON_KEPT.into()),
        message: Some(format!("deleted; {}", parts.join("; "))),
        type_: Some("Normal".into()),
        count: Some(1),
        first_timestamp: Some(now.clone()),
        last_timestamp: Some(now),
        source: Some(EventSource {
            component: Some("sailplane".into()),
            ..EventSource::default()
        }),
        reporting_component: Some("sailplane".into()),
        ..Event::default()
    };
    let short: String = uid.chars().take(8).collect();
    ev.metadata.name = Some(format!("{name}.{short}.kept"));
    ev.metadata.namespace = Some(ns.clone());
    let payload = serde_json::json!({"kept": report.kept, "released": report.released});
    ev.metadata.annotations = Some(std::collections::BTreeMap::from([(
        ANNOTATION_KEPT.to_string(),
        payload.to_string(),
    )]));
    let api: Api<Event> = Api::namespaced(client.clone(), &ns);
    match api.create(&PostParams::default(), &ev).await {
        Ok(_) => Ok(()),
        // Recorded by an earlier attempt of the same deletion.
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(Error::hub(
            "record",
            format!("what deleting {ns}/{name} kept"),
        )(e)),
    }
}

/// What the deletion of application `namespace/name` kept, read from its Event; with `uid`,
/// only that incarnation of the application (its uid read before the delete). `None` when no
/// deletion of it kept anything.
pub async fn kept_on_delete(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    uid: Option<&str>,
) -> Result<Option<Kept>, Error> {
    let api: Api<Event> = Api::namespaced(client.clone(), namespace);
    let events = api
        .list(&ListParams::default())
        .await
        .map_err(Error::hub("list", format!("events in {namespace}")))?
        .items;
    let found = events
        .iter()
        .filter(|e| {
            e.reason.as_deref() == Some(REASON_KEPT)
                && e.involved_object.kind.as_deref() == Some("Application")
                && e.involved_object.name.as_deref() == Some(name)
                && uid.is_none_or(|u| e.involved_object.uid.as_deref() == Some(u))
        })
        .max_by_key(|e| e.last_timestamp.as_ref().map(|t| t.0));
    let Some(ev) = found else {
        return Ok(None);
    };
    let payload: serde_json::Value = ev
        .annotations()
        .get(ANNOTATION_KEPT)
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_default();
    let list = |k: &str| -> Vec<String> {
        payload
            .get(k)
            .and_then(serde_json::Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    Ok(Some(Kept {
        kept: list("kept"),
        released: list("released"),
    }))
}
