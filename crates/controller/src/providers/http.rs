//! The `http` provider: one request per operation, with a timeout and a cap on the answer,
//! over one pooled client (rustls, the system's roots).

use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use std::time::Duration;
use workflow::task::{Outcome, ProviderError};

/// How long one HTTP request of a step may take unless the step says otherwise.
const HTTP_TIMEOUT: Duration = Duration::from_secs(30);
/// The most of a response body a step reads.
const HTTP_MAX_BODY: usize = 4 * 1024 * 1024;

/// `http.#HTTPDo`: one request, with a timeout (`request.timeout`, default 30 s) and a cap on
/// the response body. TLS server certificates are checked against the system's roots.
pub(crate) async fn http_do(params: &Value) -> Result<Outcome, ProviderError> {
    let method = params
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or("GET");
    let url = params
        .get("url")
        .and_then(Value::as_str)
        .ok_or_else(|| ProviderError("http: url is missing".into()))?;
    let request = params.get("request");
    let timeout = request
        .and_then(|r| r.get("timeout"))
        .and_then(Value::as_str)
        .and_then(workflow::parse_duration)
        .unwrap_or(HTTP_TIMEOUT);
    let body = request
        .and_then(|r| r.get("body"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let mut builder = http::Request::builder()
        .method(method)
        .uri(url)
        .header(http::header::USER_AGENT, "sailplane");
    if let Some(headers) = request
        .and_then(|r| r.get("header"))
        .and_then(Value::as_object)
    {
        for (k, v) in headers {
            if let Some(v) = v.as_str() {
                builder = builder.header(k, v);
            }
        }
    }
    let req = builder
        .body(Full::new(bytes::Bytes::from(body)))
        .map_err(|e| ProviderError(format!("http: bad request to {url}: {e}")))?;
    let client = http_client()?;
    let exchange = async {
        let resp = client
            .request(req)
            .await
            .map_err(|e| ProviderError(format!("http: {method} {url}: {}", root_cause(&e))))?;
        let status = resp.status().as_u16();
        let mut headers = serde_json::Map::new();
        for (k, v) in resp.headers() {
            let entry = headers
                .entry(k.as_str().to_string())
                .or_insert_with(|| Value::Array(Vec::new()));
            if let (Value::Array(a), Ok(v)) = (entry, v.to_str()) {
                a.push(Value::String(v.to_string()));
            }
        }
        let body = http_body_util::Limited::new(resp.into_body(), HTTP_MAX_BODY)
            .collect()
            .await
            .map_err(|e| ProviderError(format!("http: reading the answer of {url}: {e}")))?
            .to_bytes();
        Ok::<_, ProviderError>(json!({
            "statusCode": status,
            "body": String::from_utf8_lossy(&body),
            "header": headers,
        }))
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(r) => r.map(Outcome::Returns),
        Err(_) => Err(ProviderError(format!(
            "http: {method} {url}: no answer within {}s",
            timeout.as_secs()
        ))),
    }
}

pub(crate) type HttpClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Full<bytes::Bytes>,
>;

/// One HTTP client for every step (connections are pooled), built at first use. The system's
/// TLS roots are read then; if they cannot be, every request says so until they can.
pub(crate) fn http_client() -> Result<&'static HttpClient, ProviderError> {
    static CLIENT: std::sync::OnceLock<HttpClient> = std::sync::OnceLock::new();
    if let Some(c) = CLIENT.get() {
        return Ok(c);
    }
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .map_err(|e| ProviderError(format!("http: no TLS roots: {e}")))?
        .https_or_http()
        .enable_http1()
        .build();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build(connector);
    Ok(CLIENT.get_or_init(|| client))
}

pub(crate) fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur: &dyn std::error::Error = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}
