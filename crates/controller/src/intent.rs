//! Intent and outcome of the requests steps send (webhooks, notifications, any `http` operation
//! that changes something), kept in the workflow's context ConfigMap
//! (`workflow-<app>-context`, one data key per step operation: `send.<step>.<operation>`), so
//! that they survive a controller restart and a user can read them (`sail workflow logs`).
//!
//! Before a request goes out its intent is written, with its `Idempotency-Key`; after, its
//! outcome. A send recorded done is never made again: running the step again gives the
//! recorded answer. A send whose intent is there without an outcome was cut off by a crash; it
//! is made once more, with the same key, and the step's message says so; a second cut-off send
//! is not made a third time: the step fails saying what to check.

use crate::Error;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The prefix of the context ConfigMap's data keys that hold send records.
pub const KEY_PREFIX: &str = "send.";

/// The most of an answer's body a record keeps (what running the step again gets back).
pub const MAX_RECORDED_BODY: usize = 64 * 1024;

/// What is known of one send.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SendRecord {
    /// `Idempotency-Key` the request carries ([`send_key`]: `<app uid>/<revision>/<run>/<step>/<operation>`).
    pub idempotency_key: String,
    /// The workflow run it belongs to (the run's start time): `sail workflow restart` starts
    /// a new run, whose sends are new.
    #[serde(default)]
    pub run: String,
    pub step: String,
    /// The operation's path in the step's template (`send`, `slack.send`).
    pub operation: String,
    pub method: String,
    /// Where it went: scheme, host and port only (paths and queries can hold tokens).
    pub to: String,
    /// `sending` (intent recorded, outcome not yet), `sent` (an answer came), `failed` (no
    /// answer: the error is recorded and the step retries).
    pub state: String,
    /// How many sends in a row were started without an outcome recorded (1, or 2 after a
    /// restart's resend).
    pub attempt: u32,
    /// When the last send started and when its outcome was recorded (RFC 3339).
    pub started_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    /// The answer's body (at most [`MAX_RECORDED_BODY`] bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub body_truncated: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Set when this send was made again after a restart cut the first one off.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub resent_after_restart: bool,
}

/// The data key of a step operation's record: `send.<step>.<operation>`, with what a ConfigMap
/// key cannot hold replaced by `-`.
pub fn record_key(step: &str, operation: &str) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                    c
                } else {
                    '-'
                }
            })
            .collect()
    };
    format!("{KEY_PREFIX}{}.{}", clean(step), clean(operation))
}

/// `scheme://host[:port]` of a URL, for records and messages.
pub fn destination(url: &str) -> String {
    match url.parse::<http::Uri>() {
        Ok(u) => match (u.scheme_str(), u.authority()) {
            (Some(s), Some(a)) => {
                // Credentials in the authority (`user:pass@host`) are not kept.
                let host = a.as_str().rsplit('@').next().unwrap_or_default();
                format!("{s}://{host}")
            }
            _ => "(invalid URL)".into(),
        },
        Err(_) => "(invalid URL)".into(),
    }
}

/// Whether a request of this method changes something (and is guarded): everything but GET,
/// HEAD and OPTIONS, which are sent every time a step runs (a step that polls needs them to).
pub fn guarded(method: &str) -> bool {
    !matches!(
        method.to_ascii_uppercase().as_str(),
        "GET" | "HEAD" | "OPTIONS"
    )
}

/// Every send record of an application's workflow, by data key.
pub fn records_of(cm: &ConfigMap) -> Vec<(String, SendRecord)> {
    cm.data
        .iter()
        .flatten()
        .filter(|(k, _)| k.starts_with(KEY_PREFIX))
        .filter_map(|(k, v)| {
            serde_json::from_str::<SendRecord>(v)
                .ok()
                .map(|r| (k.clone(), r))
        })
        .collect()
}

/// Reads and writes the send records of one application.
pub struct Journal {
    api: Api<ConfigMap>,
    app: oam::Application,
}

impl Journal {
    pub fn new(client: &kube::Client, app: &oam::Application) -> Journal {
        Journal {
            api: Api::namespaced(client.clone(), app.namespace()),
            app: app.clone(),
        }
    }

    fn name(&self) -> String {
        crate::cuestep::context_name(self.app.name())
    }

    /// The record under `key` for this idempotency key, or for `legacy` (a record of another
    /// revision or application does not count).
    pub async fn read(
        &self,
        key: &str,
        idempotency_key: &str,
        legacy: Option<&str>,
    ) -> Result<Option<SendRecord>, Error> {
        let name = self.name();
        let cm = self.api.get_opt(&name).await.map_err(Error::hub(
            "read",
            format!("workflow context {}/{name}", self.app.namespace()),
        ))?;
        Ok(cm
            .and_then(|c| c.data)
            .and_then(|d| d.get(key).cloned())
            .and_then(|v| serde_json::from_str::<SendRecord>(&v).ok())
            .filter(|r| is_for(r, idempotency_key, legacy)))
    }

    /// Write one record (a merge of one data key: other keys, the outputs and other steps'
    /// records, are left as they are). Creates the ConfigMap, owned by the application, if it
    /// is not there.
    pub async fn write(&self, key: &str, record: &SendRecord) -> Result<(), Error> {
        let name = self.name();
        let ns = self.app.namespace().to_string();
        let value = serde_json::to_string(record)
            .map_err(|e| Error::Invalid(format!("send record {key}: {e}")))?;
        let what = || format!("workflow context {ns}/{name}");
        let patch = json!({"data": {key: value}});
        for _ in 0..3 {
            match self
                .api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => return Ok(()),
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => return Err(Error::hub("write", what())(e)),
            }
            let cm: ConfigMap = serde_json::from_value(json!({
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": name,
                    "namespace": ns,
                    "labels": {oam::labels::LABEL_APP_NAME: self.app.name()},
                    "ownerReferences": [{
                        "apiVersion": "core.oam.dev/v1beta1",
                        "kind": "Application",
                        "name": self.app.name(),
                        "uid": self.app.metadata.uid.clone().unwrap_or_default(),
                        "controller": true,
                    }],
                },
                "data": {key: value},
            }))
            .map_err(|e| Error::Invalid(format!("workflow context: {e}")))?;
            match self.api.create(&PostParams::default(), &cm).await {
                Ok(_) => return Ok(()),
                // Created meanwhile (another step's record): patch it.
                Err(kube::Error::Api(e)) if e.code == 409 => {}
                Err(e) => return Err(Error::hub("create", what())(e)),
            }
        }
        Err(Error::Invalid(format!(
            "{}: neither patched nor created after 3 tries",
            what()
        )))
    }
}

/// The current time, RFC 3339.
pub fn now() -> String {
    k8s_openapi::jiff::Timestamp::now().to_string()
}

/// What to do about a guarded send, given its record.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// Never tried (or the last try failed with an error): send, attempt 1.
    Send,
    /// Cut off by a restart before its outcome was recorded: send once more, same key.
    Resend,
    /// Recorded done: do not send; this is its answer.
    Done { status_code: u16, body: String },
    /// Cut off twice: do not send again.
    GiveUp,
}

pub fn decide(record: Option<&SendRecord>) -> Decision {
    match record {
        None => Decision::Send,
        Some(r) if r.state == "sent" => Decision::Done {
            status_code: r.status_code.unwrap_or(0),
            body: r.body.clone().unwrap_or_default(),
        },
        Some(r) if r.state == "sending" && r.attempt >= 2 => Decision::GiveUp,
        Some(r) if r.state == "sending" => Decision::Resend,
        Some(_) => Decision::Send,
    }
}

/// The body a record keeps, and whether it was cut.
pub fn recorded_body(body: &str) -> (String, bool) {
    if body.len() <= MAX_RECORDED_BODY {
        return (body.to_string(), false);
    }
    let mut end = MAX_RECORDED_BODY;
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    (body[..end].to_string(), true)
}

/// A record's line for `sail workflow logs`.
pub fn describe(r: &SendRecord) -> String {
    let mut line = format!(
        "{} {} {} (Idempotency-Key {}): ",
        r.operation, r.method, r.to, r.idempotency_key
    );
    match r.state.as_str() {
        "sent" => match r.status_code {
            Some(code) => line.push_str(&format!(
                "answered {code} at {}",
                r.finished_at.as_deref().unwrap_or("?")
            )),
            // A mail: the server took it.
            None => line.push_str(&format!(
                "accepted at {}",
                r.finished_at.as_deref().unwrap_or("?")
            )),
        },
        "failed" => line.push_str(&format!(
            "no answer ({}) at {}",
            r.error.as_deref().unwrap_or("error"),
            r.finished_at.as_deref().unwrap_or("?")
        )),
        _ => line.push_str(&format!(
            "sending since {}, outcome not recorded",
            r.started_at
        )),
    }
    if r.resent_after_restart {
        line.push_str("; resent after a restart cut the first send off");
    }
    line
}

/// The idempotency key of the send at `operation` (its dotted path in the step's template) in
/// the step run `session` (`context.stepSessionID`): the same for every attempt of that send
/// in this run, and different for each send of the step, so that a receiver that remembers keys
/// does not take a step's second request for a repeat of its first.
pub(crate) fn send_key(session: &str, operation: &str) -> String {
    format!("{session}/{operation}")
}

/// Whether `r` records the send with `idempotency_key`, or with `legacy`: the key a send had
/// before sends got keys of their own (the step's session alone), so that a send recorded by an
/// older controller is still recognised after an upgrade instead of being made again.
fn is_for(r: &SendRecord, idempotency_key: &str, legacy: Option<&str>) -> bool {
    r.idempotency_key == idempotency_key || legacy.is_some_and(|l| r.idempotency_key == l)
}

/// Providers that guard the `http` sends of one step run: every request that changes
/// something gets an `Idempotency-Key` ([`send_key`] unless the template set one), and its
/// intent and outcome are recorded around the send by `inner`.
pub(crate) struct Guard<'a, P> {
    pub inner: P,
    pub journal: &'a Journal,
    pub step: &'a str,
    /// `context.stepSessionID`.
    pub session: &'a str,
    /// The workflow run (its start time): records of another run do not count.
    pub run: &'a str,
    /// Messages for the step's status ("resending after restart, …").
    pub notes: std::sync::Mutex<Vec<String>>,
}

impl<P: workflow::task::Providers> workflow::task::Providers for Guard<'_, P> {
    fn call<'a>(
        &'a self,
        op: &'a workflow::task::Operation,
    ) -> futures::future::BoxFuture<
        'a,
        Result<workflow::task::Outcome, workflow::task::ProviderError>,
    > {
        Box::pin(async move {
            match (op.provider.as_str(), op.action.as_str()) {
                ("http", "do") => self.send(op).await,
                ("email", "send") => self.send_email(op).await,
                _ => self.inner.call(op).await,
            }
        })
    }
}

impl<P: workflow::task::Providers> Guard<'_, P> {
    pub(crate) fn take_notes(&self) -> Vec<String> {
        std::mem::take(&mut *self.notes.lock().unwrap_or_else(|p| p.into_inner()))
    }

    async fn send(
        &self,
        op: &workflow::task::Operation,
    ) -> Result<workflow::task::Outcome, workflow::task::ProviderError> {
        let method = op
            .params
            .get("method")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("GET")
            .to_string();
        if !guarded(&method) {
            return self.inner.call(op).await;
        }
        let url = op
            .params
            .get("url")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default();
        // The key the request carries: the template's, or this send's own.
        let mut params = op.params.clone();
        let header = params
            .as_object_mut()
            .map(|p| p.entry("request").or_insert_with(|| json!({})))
            .and_then(|r| {
                if !r.is_object() {
                    *r = json!({});
                }
                r.as_object_mut()
            })
            .map(|r| r.entry("header").or_insert_with(|| json!({})));
        let mut idempotency_key = send_key(self.session, &op.path);
        if let Some(h) = header {
            if !h.is_object() {
                *h = json!({});
            }
            if let Some(h) = h.as_object_mut() {
                match h
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("idempotency-key"))
                    .and_then(|(_, v)| v.as_str())
                {
                    Some(k) => idempotency_key = k.to_string(),
                    None => {
                        h.insert("Idempotency-Key".into(), json!(idempotency_key));
                    }
                }
            }
        }
        let sent = workflow::task::Operation {
            params,
            ..op.clone()
        };
        self.guarded(
            op,
            &sent,
            &idempotency_key,
            &method,
            destination(url),
            |status_code, body| {
                json!({
                    "statusCode": status_code,
                    "body": body,
                    "header": {},
                })
            },
        )
        .await
    }

    /// `email.#SendEmail`, guarded like a request: the mail carries its [`send_key`] as
    /// `X-Idempotency-Key` (and a `Message-ID` derived from it), its intent is recorded before
    /// it goes to the SMTP server and its outcome after.
    async fn send_email(
        &self,
        op: &workflow::task::Operation,
    ) -> Result<workflow::task::Outcome, workflow::task::ProviderError> {
        let from = op.params.get("from");
        let part = |k: &str| {
            from.and_then(|f| f.get(k))
                .map(|v| match v {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .unwrap_or_default()
        };
        let to = format!("smtp://{}:{}", part("host"), part("port"));
        let idempotency_key = send_key(self.session, &op.path);
        self.guarded(op, op, &idempotency_key, "SMTP", to, |_, _| {
            serde_json::Value::Null
        })
        .await
    }

    /// Send `sent` (the operation `op` with what the guard added) once: the intent is recorded
    /// under `op`'s key before, the outcome after; a send recorded done is answered with
    /// `replay(status code, body)` of the record.
    async fn guarded(
        &self,
        op: &workflow::task::Operation,
        sent: &workflow::task::Operation,
        idempotency_key: &str,
        method: &str,
        to: String,
        replay: impl Fn(u16, String) -> serde_json::Value,
    ) -> Result<workflow::task::Outcome, workflow::task::ProviderError> {
        use workflow::task::{Outcome, ProviderError};
        let key = record_key(self.step, &op.path);
        let hub_error = |e: Error| ProviderError(format!("recording the send: {e}"));
        // A key of our making may have been recorded as the session alone by an older controller.
        let legacy = (idempotency_key == send_key(self.session, &op.path)).then_some(self.session);
        let prior = self
            .journal
            .read(&key, idempotency_key, legacy)
            .await
            .map_err(hub_error)?
            .filter(|r| r.run == self.run);
        let resend = match decide(prior.as_ref()) {
            Decision::Done { status_code, body } => {
                // Sent and answered before: never again; this is what it answered.
                return Ok(Outcome::Returns(replay(status_code, body)));
            }
            Decision::GiveUp => {
                return Ok(Outcome::Fail {
                    message: format!(
                        "{method} {to} not sent a third time: two sends with Idempotency-Key {idempotency_key} were cut off before their outcome was recorded; ask the receiver whether it got them, then `sail workflow restart --step {}` sends again",
                        self.step
                    ),
                });
            }
            Decision::Resend => true,
            Decision::Send => false,
        };
        let mut record = SendRecord {
            idempotency_key: idempotency_key.to_string(),
            run: self.run.to_string(),
            step: self.step.to_string(),
            operation: op.path.clone(),
            method: method.to_string(),
            to,
            state: "sending".into(),
            attempt: if resend { 2 } else { 1 },
            started_at: now(),
            resent_after_restart: resend,
            ..SendRecord::default()
        };
        // Intent first.
        self.journal.write(&key, &record).await.map_err(hub_error)?;
        if resend {
            self.notes
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(format!(
                    "resending after restart, Idempotency-Key {idempotency_key} (the first send's outcome was never recorded)"
                ));
        }
        let result = self.inner.call(sent).await;
        record.finished_at = Some(now());
        match &result {
            Ok(Outcome::Returns(v)) => {
                record.state = "sent".into();
                record.attempt = 0;
                record.status_code = v
                    .get("statusCode")
                    .and_then(serde_json::Value::as_u64)
                    .and_then(|c| u16::try_from(c).ok());
                let (body, cut) = recorded_body(
                    v.get("body")
                        .and_then(serde_json::Value::as_str)
                        .unwrap_or_default(),
                );
                record.body = Some(body);
                record.body_truncated = cut;
            }
            // Refused (a 5xx of an SMTP server, a bad input): nothing was delivered.
            Ok(Outcome::Fail { message }) => {
                record.state = "failed".into();
                record.attempt = 0;
                record.error = Some(message.clone());
            }
            Ok(_) => {
                record.state = "sent".into();
                record.attempt = 0;
            }
            Err(e) => {
                record.state = "failed".into();
                record.attempt = 0;
                record.error = Some(e.to_string());
            }
        }
        // Outcome after. If this write fails the send is on record as cut off, and the next
        // run resends it once with the same key: at most one extra send.
        if let Err(e) = self.journal.write(&key, &record).await {
            tracing::warn!(step = self.step, "send outcome not recorded: {e}");
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_send_has_its_own_key_and_older_records_are_still_recognised() {
        let session = "uid/app-v1/1795694957/notify";
        let slack = send_key(session, "slack.send");
        let lark = send_key(session, "lark.send");
        assert_eq!(slack, "uid/app-v1/1795694957/notify/slack.send");
        assert_ne!(slack, lark);
        let rec = |k: &str| SendRecord {
            idempotency_key: k.into(),
            ..SendRecord::default()
        };
        assert!(is_for(&rec(&slack), &slack, Some(session)));
        assert!(!is_for(&rec(&lark), &slack, Some(session)));
        // recorded by a controller that keyed every send of a step by its session
        assert!(is_for(&rec(session), &slack, Some(session)));
        // a key the template set has no older form
        assert!(!is_for(&rec(session), "template-key", None));
    }

    #[test]
    fn keys_destinations_and_decisions() {
        assert_eq!(record_key("tell ci", "send"), "send.tell-ci.send");
        assert_eq!(
            destination("https://user:pw@hooks.slack.com/services/T0/B0/secret?x=1"),
            "https://hooks.slack.com"
        );
        assert_eq!(
            destination("http://127.0.0.1:8080/x"),
            "http://127.0.0.1:8080"
        );
        assert!(guarded("POST") && guarded("delete") && !guarded("GET"));
        let mut r = SendRecord {
            state: "sending".into(),
            attempt: 1,
            ..SendRecord::default()
        };
        assert_eq!(decide(None), Decision::Send);
        assert_eq!(decide(Some(&r)), Decision::Resend);
        r.attempt = 2;
        assert_eq!(decide(Some(&r)), Decision::GiveUp);
        r.state = "failed".into();
        assert_eq!(decide(Some(&r)), Decision::Send);
        r.state = "sent".into();
        r.status_code = Some(204);
        assert_eq!(
            decide(Some(&r)),
            Decision::Done {
                status_code: 204,
                body: String::new()
            }
        );
        let big = "é".repeat(MAX_RECORDED_BODY);
        let (b, cut) = recorded_body(&big);
        assert!(cut && b.len() <= MAX_RECORDED_BODY);
    }
}
