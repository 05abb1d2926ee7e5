//! The `email` provider: `email.#SendEmail` (`send`) over SMTP with lettre. Port 465 is TLS
//! from the first byte; any other port upgrades with STARTTLS when the server offers it (the
//! server's certificate checked against the system's roots) and stays plain when it does not,
//! as KubeVela's mailer does: production servers should offer TLS. The sender's password is
//! used to log in and never written anywhere (not in messages, logs or the status). The
//! message carries its send key (`crate::intent::send_key`: the step's session and the
//! operation) as `X-Idempotency-Key` and a Message-ID derived from it, the same on every attempt, so a resend after a crash can be recognised as the same mail;
//! `crate::intent` records the intent before the mail goes out and the outcome after.

use super::{Answer, Problem, invalid};
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use serde_json::Value;
use sha2::Digest;
use std::time::Duration;
use workflow::task::Outcome;

/// How long one SMTP exchange may take.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) async fn call(key: &str, action: &str, params: &Value) -> Answer {
    if action != "send" {
        return invalid(format!("email has no operation {action:?} (send)"));
    }
    let from = params.get("from").unwrap_or(&Value::Null);
    let field = |v: &Value, k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .ok_or_else(|| Problem::Invalid(format!("email.send: from.{k} is missing or empty")))
    };
    let address = field(from, "address")?;
    let host = field(from, "host")?;
    // The password may be empty (a relay that does not ask for a login); it is never shown.
    let password = from
        .get("password")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let port = match from.get("port").and_then(Value::as_u64) {
        Some(p) => u16::try_from(p)
            .map_err(|_| Problem::Invalid(format!("email.send: from.port {p} is not a port")))?,
        None => return invalid("email.send: from.port must be a port number"),
    };
    let alias = from
        .get("alias")
        .and_then(Value::as_str)
        .filter(|a| !a.is_empty())
        .map(str::to_string);
    let sender = Mailbox::new(
        alias,
        address
            .parse()
            .map_err(|e| Problem::Invalid(format!("email.send: from.address {address:?}: {e}")))?,
    );
    let to: Vec<String> = params
        .get("to")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    if to.is_empty() {
        return invalid("email.send: to lists no address");
    }
    let content = params.get("content").unwrap_or(&Value::Null);
    let subject = content
        .get("subject")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let body = content
        .get("body")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();

    let mut message = Message::builder()
        .from(sender)
        .subject(subject)
        .header(ContentType::TEXT_HTML)
        .message_id(Some(message_id(key, &host)))
        // SMTP has no Idempotency-Key: the send's key (the same for every attempt of this
        // send in this run) goes in a header of its own, beside the Message-ID made from it.
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("X-Idempotency-Key"),
            key.to_string(),
        ));
    for t in &to {
        let mb: Mailbox = t
            .parse()
            .map_err(|e| Problem::Invalid(format!("email.send: to address {t:?}: {e}")))?;
        message = message.to(mb);
    }
    let message = message
        .body(body)
        .map_err(|e| Problem::Invalid(format!("email.send: {e}")))?;

    let tls = TlsParameters::new_rustls(host.clone())
        .map_err(|e| Problem::Retry(format!("email: TLS for {host}: {e}")))?;
    let mut transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.as_str())
        .port(port)
        .timeout(Some(SMTP_TIMEOUT))
        .tls(if port == 465 {
            Tls::Wrapper(tls)
        } else {
            Tls::Opportunistic(tls)
        });
    if !password.is_empty() {
        transport = transport.credentials(Credentials::new(address.clone(), password));
    }
    let transport = transport.build();
    match transport.send(message).await {
        Ok(_) => Ok(Outcome::Returns(Value::Null)),
        Err(e) => {
            let m = format!(
                "email: sending to {} through {host}:{port} as {address}: {e}",
                to.join(", ")
            );
            // A 5xx answer (bad login, refused recipient) stays refused; the rest may pass later.
            if e.is_permanent() {
                Err(Problem::Invalid(m))
            } else {
                Err(Problem::Retry(m))
            }
        }
    }
}

/// `<hash of the send key@host>`: the same for every attempt of the send.
fn message_id(key: &str, host: &str) -> String {
    let digest = sha2::Sha256::digest(key.as_bytes());
    format!("<{}@{host}>", hex::encode(&digest[..16]))
}
