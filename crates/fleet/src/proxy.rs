//! `/clusters/{name}/proxy/...`: a member cluster's API through the hub.
//!
//! The hub authenticates the caller (its own token) before a request gets here; this module
//! forwards it to the member with the member's credentials from the registry. The caller's
//! `Authorization` header is never passed on, so the hub's token does not leak to a member.
//! Responses, watches included, stream back as they arrive.

use crate::Fleet;
use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, StreamBody, combinators::UnsyncBoxBody};
use std::convert::Infallible;

/// The body the hub's server speaks.
pub type Body = UnsyncBoxBody<Bytes, Infallible>;

/// The path prefix this module serves.
pub const PREFIX: &str = "/clusters/";

/// Headers that describe one hop, not the request, and never go on to the member.
const HOP_HEADERS: &[&str] = &[
    "authorization",
    "connection",
    "host",
    "keep-alive",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
];

/// Split `/clusters/{name}/proxy/rest` into the cluster name and `/rest`.
pub fn split_path(path: &str) -> Option<(&str, String)> {
    let rest = path.strip_prefix(PREFIX)?;
    let (name, tail) = rest.split_once('/')?;
    let tail = tail.strip_prefix("proxy")?;
    if name.is_empty() || !(tail.is_empty() || tail.starts_with('/')) {
        return None;
    }
    let tail = if tail.is_empty() { "/" } else { tail };
    Some((name, tail.to_string()))
}

fn status_body(code: u16, reason: &str, message: &str) -> http::Response<Body> {
    let body = serde_json::json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    });
    let mut resp = http::Response::new(
        http_body_util::Full::new(Bytes::from(body.to_string()))
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *resp.status_mut() = http::StatusCode::from_u16(code).unwrap_or(http::StatusCode::BAD_GATEWAY);
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    resp
}

/// Forward an authenticated request for `/clusters/{name}/proxy/...` to that member.
pub async fn forward(fleet: &Fleet, req: http::Request<Bytes>) -> http::Response<Body> {
    let (parts, body) = req.into_parts();
    let Some((name, tail)) = split_path(parts.uri.path()) else {
        return status_body(404, "NotFound", "expected /clusters/{name}/proxy/{path}");
    };
    let cluster = match fleet.cluster_current(name).await {
        Ok(c) => c,
        Err(e) => return status_body(404, "NotFound", &e.to_string()),
    };
    let path_and_query = match parts.uri.query() {
        Some(q) => format!("{tail}?{q}"),
        None => tail,
    };
    let mut builder = http::Request::builder()
        .method(parts.method.clone())
        .uri(path_and_query);
    for (k, v) in &parts.headers {
        if !HOP_HEADERS.contains(&k.as_str()) {
            builder = builder.header(k, v);
        }
    }
    let request = match builder.body(kube::client::Body::from(body)) {
        Ok(r) => r,
        Err(e) => return status_body(400, "BadRequest", &format!("bad request: {e}")),
    };
    let response = match cluster.client().send(request).await {
        Ok(r) => r,
        Err(e) => {
            return status_body(
                502,
                "ServiceUnavailable",
                &format!("cluster {name} did not answer: {e}"),
            );
        }
    };
    let (parts, body) = response.into_parts();
    // A stream that ends where the member's body fails: the caller sees a truncated body (a watch
    // that ended), which it already handles, rather than an error type the server cannot send.
    let frames = body
        .into_data_stream()
        .take_while(|r| std::future::ready(r.is_ok()))
        .filter_map(|r| std::future::ready(r.ok()))
        .map(|bytes| Ok::<_, Infallible>(http_body::Frame::data(bytes)));
    let mut out = http::Response::new(StreamBody::new(frames).boxed_unsync());
    *out.status_mut() = parts.status;
    for (k, v) in &parts.headers {
        if !HOP_HEADERS.contains(&k.as_str()) {
            out.headers_mut().insert(k, v.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::split_path;

    #[test]
    fn paths() {
        assert_eq!(
            split_path("/clusters/prod/proxy/api/v1/pods"),
            Some(("prod", "/api/v1/pods".to_string()))
        );
        assert_eq!(
            split_path("/clusters/prod/proxy"),
            Some(("prod", "/".to_string()))
        );
        assert_eq!(split_path("/clusters/prod/proxyx/api"), None);
        assert_eq!(split_path("/clusters//proxy/api"), None);
        assert_eq!(split_path("/api/v1/pods"), None);
    }
}
