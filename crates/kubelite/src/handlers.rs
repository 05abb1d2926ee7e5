//! Request routing and the REST verbs.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use http::{HeaderMap, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited, StreamBody, combinators::UnsyncBoxBody};
use hyper::body::{Bytes, Frame, Incoming};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::discovery;
use crate::openapi;
use crate::ops::{self, DeleteOpts, PatchType, Propagation, Sub, WriteOpts};
use crate::registry::ResourceType;
use crate::selector::{FieldSelector, LabelSelector};
use crate::server::App;
use crate::status::{ApiError, ApiResult};
use crate::store::{Event, EventType};
use crate::table;
use crate::util::*;

pub type Body = UnsyncBoxBody<Bytes, Infallible>;

fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).boxed_unsync()
}

pub fn json_response(code: u16, v: &Value, content_type: &str) -> Response<Body> {
    let body = serde_json::to_vec(v).unwrap_or_default();
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header(header::CONTENT_TYPE, content_type)
        .header("Cache-Control", "no-cache, private")
        .body(full(body))
        .unwrap_or_else(|_| Response::new(full("")))
}

pub fn error_response(e: &ApiError) -> Response<Body> {
    json_response(e.code, &e.to_status(), "application/json")
}

fn ok(v: &Value) -> Response<Body> {
    json_response(200, v, "application/json")
}

/// Parsed query string.
#[derive(Debug, Default)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

fn url_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let h = std::str::from_utf8(&b[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match h {
                    Some(x) => {
                        out.push(x);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Query {
    pub fn parse(q: Option<&str>) -> Query {
        let pairs = q
            .unwrap_or("")
            .split('&')
            .filter(|s| !s.is_empty())
            .map(|kv| match kv.split_once('=') {
                Some((k, v)) => (url_decode(k), url_decode(v)),
                None => (url_decode(kv), String::new()),
            })
            .collect();
        Query { pairs }
    }
    pub fn get(&self, k: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(kk, _)| kk == k)
            .map(|(_, v)| v.as_str())
    }
    fn flag(&self, k: &str) -> bool {
        matches!(self.get(k), Some("true") | Some("1") | Some(""))
    }
}

fn accepts(headers: &HeaderMap) -> String {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

/// `Accept: application/json;as=PartialObjectMetadata[List];g=meta.k8s.io;v=v1` (kube-rs metadata API).
fn wants_meta(accept: &str) -> bool {
    accept
        .split(',')
        .next()
        .is_some_and(|first| first.contains("as=PartialObjectMetadata"))
}

fn to_meta(obj: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata").cloned().unwrap_or(json!({}))
    })
}

const META_CT: &str = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1";

fn wants_table(accept: &str) -> bool {
    accept
        .split(',')
        .next()
        .is_some_and(|first| first.contains("as=Table"))
        || (accept.contains("as=Table") && !accept.starts_with("application/json,"))
}

fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

pub(crate) async fn read_body(app: &App, body: Incoming) -> ApiResult<Bytes> {
    match Limited::new(body, app.max_body).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) => {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                Err(ApiError::too_large())
            } else {
                Err(ApiError::bad_request(format!(
                    "error reading request body: {e}"
                )))
            }
        }
    }
}

pub fn parse_object(ct: &str, body: &[u8]) -> ApiResult<Value> {
    if body.is_empty() {
        return Err(ApiError::bad_request("the request body is empty"));
    }
    if ct == "application/vnd.kubernetes.protobuf" {
        return crate::protobuf::decode(body);
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::bad_request("request body is not valid UTF-8"))?;
    match ct {
        "application/json"
        | ""
        | "application/merge-patch+json"
        | "application/json-patch+json"
        | "application/strategic-merge-patch+json" => serde_json::from_str(text).map_err(|e| {
            ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
        }),
        "application/yaml" | "application/apply-patch+yaml" => {
            if let Ok(v) = serde_json::from_str::<Value>(text) {
                return Ok(v);
            }
            serde_saphyr::from_str::<Value>(text)
                .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))
        }
        other => Err(ApiError::unsupported_media(other)),
    }
}

fn user_agent_manager(headers: &HeaderMap) -> String {
    let ua = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("unknown");
    ua.split('/').next().unwrap_or("unknown").to_string()
}

/// Entry point after auth.
pub async fn route(app: Arc<App>, req: Request<Incoming>) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let query = Query::parse(parts.uri.query());
    let segs: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .map(url_decode)
        .collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let accept = accepts(&parts.headers);
    let method = parts.method.clone();

    if method == Method::GET {
        match segs.as_slice() {
            ["version"] => return ok(&discovery::version()),
            ["healthz"]
            | ["readyz"]
            | ["livez"]
            | ["healthz", ..]
            | ["readyz", ..]
            | ["livez", ..] => {
                return Response::builder()
                    .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
                    .body(full("ok"))
                    .unwrap_or_else(|_| Response::new(full("ok")));
            }
            ["openapi", "v2"] | ["swagger.json"] => {
                let reg = app.store.lock().registry.clone();
                return ok(&openapi::v2(&reg));
            }
            ["openapi", "v3"] => {
                let reg = app.store.lock().registry.clone();
                return ok(&openapi::v3_root(&reg));
            }
            ["openapi", "v3", "api", v] => {
                let reg = app.store.lock().registry.clone();
                return match openapi::v3_group_version(&reg, "", v) {
                    Some(d) => ok(&d),
                    None => error_response(&ApiError::page_not_found()),
                };
            }
            ["openapi", "v3", "apis", g, v] => {
                let reg = app.store.lock().registry.clone();
                return match openapi::v3_group_version(&reg, g, v) {
                    Some(d) => ok(&d),
                    None => error_response(&ApiError::page_not_found()),
                };
            }
            ["api"] => {
                if let Some((ct, av)) = aggregated_accept(&accept) {
                    let reg = app.store.lock().registry.clone();
                    return json_response(200, &discovery::aggregated(&reg, true, av), ct);
                }
                return ok(&discovery::api_versions(&app.addr));
            }
            ["apis"] => {
                let reg = app.store.lock().registry.clone();
                if let Some((ct, av)) = aggregated_accept(&accept) {
                    return json_response(200, &discovery::aggregated(&reg, false, av), ct);
                }
                return ok(&discovery::api_group_list(&reg));
            }
            ["api", v] => {
                let reg = app.store.lock().registry.clone();
                return match discovery::api_resource_list(&reg, "", v) {
                    Some(d) => ok(&d),
                    None => error_response(&ApiError::page_not_found()),
                };
            }
            ["apis", g] => {
                let reg = app.store.lock().registry.clone();
                return match discovery::api_group(&reg, g) {
                    Some(d) => ok(&d),
                    None => error_response(&ApiError::page_not_found()),
                };
            }
            ["apis", g, v] => {
                let reg = app.store.lock().registry.clone();
                return match discovery::api_resource_list(&reg, g, v) {
                    Some(d) => ok(&d),
                    None => error_response(&ApiError::page_not_found()),
                };
            }
            _ => {}
        }
    }

    let Some(rp) = parse_resource_path(&segs) else {
        return error_response(&ApiError::page_not_found());
    };
    let rt = {
        let st = app.store.lock();
        st.registry
            .lookup(&rp.group, &rp.version, &rp.resource)
            .cloned()
    };
    let Some(rt) = rt else {
        return error_response(&ApiError::page_not_found());
    };
    if rt.namespaced != rp.ns.is_some()
        && !(rp.ns.is_none()
            && rp.name.is_none()
            && (method == Method::GET || method == Method::DELETE))
    {
        return error_response(&ApiError::page_not_found());
    }
    let ns = rp.ns.clone().unwrap_or_default();
    let sub = match rp.sub.as_deref() {
        None => None,
        Some("status") if rt.has_status => Some("status"),
        Some("scale") if rt.scale.is_some() => Some("scale"),
        Some("finalize") if rt.kind == "Namespace" => Some("finalize"),
        Some("log") if rt.kind == "Pod" && method == Method::GET => {
            let st = app.store.lock();
            let name = rp.name.clone().unwrap_or_default();
            return match st.get(&rt.key(), &ns, &name) {
                None => error_response(&ApiError::not_found("", "pods", &name)),
                Some(p) => {
                    let text = format!(
                        "kubelite: simulated container log for pod {ns}/{name} (phase {})\n",
                        p.pointer("/status/phase")
                            .and_then(Value::as_str)
                            .unwrap_or("Unknown")
                    );
                    Response::builder()
                        .header(header::CONTENT_TYPE, "text/plain")
                        .body(full(text))
                        .unwrap_or_else(|_| Response::new(full("")))
                }
            };
        }
        Some(_) => return error_response(&ApiError::page_not_found()),
    };
    let headers = parts.headers.clone();
    let res: ApiResult<Response<Body>> = async {
        if let Some(d) = query.get("dryRun")
            && d != "All"
        {
            return Err(ApiError::bad_request(format!(
                "Invalid dry run value: {d:?}: supported values: \"All\""
            )));
        }
        if let Some(fv) = query.get("fieldValidation")
            && !matches!(fv, "" | "Ignore" | "Warn" | "Strict")
        {
            return Err(ApiError::bad_request(format!(
                "fieldValidation must be one of \"Ignore\", \"Warn\" or \"Strict\", got {fv:?}"
            )));
        }
        let opts = WriteOpts {
            dry_run: query.get("dryRun") == Some("All"),
            field_manager: query
                .get("fieldManager")
                .map(str::to_string)
                .unwrap_or_else(|| user_agent_manager(&headers)),
            version: rp.version.clone(),
            strict: query.get("fieldValidation") == Some("Strict"),
        };
        if let Some(fm) = query.get("fieldManager")
            && fm.len() > 128
        {
            return Err(ApiError::bad_request(
                "fieldManager: Too long: may not be more than 128 bytes",
            ));
        }
        match (method.clone(), rp.name.as_deref(), sub) {
            (Method::GET, None, None) => {
                if rp.watch || query.flag("watch") {
                    watch(&app, &rt, &rp.version, rp.ns.as_deref(), &query, &accept)
                } else {
                    list(&app, &rt, &rp.version, rp.ns.as_deref(), &query, &accept)
                }
            }
            (Method::GET, Some(name), sub) => {
                if rp.watch {
                    return Err(ApiError::page_not_found());
                }
                let st = app.store.lock();
                let obj = st
                    .get(&rt.key(), &ns, name)
                    .ok_or_else(|| ApiError::not_found(&rt.group, &rt.resource, name))?;
                if sub == Some("scale") {
                    return Ok(ok(&to_scale(&rt, obj)));
                }
                let obj = present(&rt, &rp.version, obj.clone());
                if wants_meta(&accept) {
                    return Ok(json_response(200, &to_meta(&obj), META_CT));
                }
                if wants_table(&accept) {
                    let rv = st.rv.to_string();
                    let t = table::table(
                        &rt,
                        &[&obj],
                        &rv,
                        None,
                        query.get("includeObject").unwrap_or("Metadata"),
                    );
                    return Ok(json_response(
                        200,
                        &t,
                        "application/json;as=Table;v=v1;g=meta.k8s.io",
                    ));
                }
                Ok(ok(&obj))
            }
            (Method::POST, None, None) => {
                let ct = content_type(&headers);
                let body = read_body(&app, body).await?;
                let obj = parse_object(&ct, &body)?;
                let mut st = app.store.lock();
                let out = ops::create(&mut st, &rt, &ns, obj, &opts)?;
                Ok(json_response(
                    201,
                    &present(&rt, &rp.version, out),
                    "application/json",
                ))
            }
            (Method::PUT, Some(name), sub) => {
                let ct = content_type(&headers);
                let body = read_body(&app, body).await?;
                let obj = parse_object(&ct, &body)?;
                let mut st = app.store.lock();
                if sub == Some("finalize") {
                    let o = st
                        .get(&rt.key(), "", name)
                        .cloned()
                        .ok_or_else(|| ApiError::not_found(&rt.group, &rt.resource, name))?;
                    return Ok(ok(&o));
                }
                if sub == Some("scale") {
                    let replicas = obj.pointer("/spec/replicas").cloned().unwrap_or(json!(0));
                    let out = set_scale(
                        &mut st,
                        &rt,
                        &ns,
                        name,
                        replicas,
                        &opts,
                        obj.pointer("/metadata/resourceVersion")
                            .and_then(Value::as_str),
                    )?;
                    return Ok(ok(&to_scale(&rt, &out)));
                }
                let s = if sub == Some("status") {
                    Sub::Status
                } else {
                    Sub::Main
                };
                let out = ops::update(&mut st, &rt, &ns, name, obj, s, &opts)?;
                Ok(ok(&present(&rt, &rp.version, out)))
            }
            (Method::PATCH, Some(name), sub) => {
                let ct = content_type(&headers);
                let ptype = match ct.as_str() {
                    "application/merge-patch+json" => PatchType::Merge,
                    "application/json-patch+json" => PatchType::Json,
                    "application/strategic-merge-patch+json" => PatchType::Strategic,
                    "application/apply-patch+yaml" => PatchType::Apply,
                    other => {
                        return Err(ApiError::unsupported_media(other));
                    }
                };
                if ptype == PatchType::Strategic && rt.custom {
                    return Err(ApiError::unsupported_media(&ct));
                }
                let body = read_body(&app, body).await?;
                let patch = parse_object(&ct, &body)?;
                let force = query.flag("force");
                let mut opts = opts;
                if ptype == PatchType::Apply && query.get("fieldManager").is_none() {
                    opts.field_manager.clear();
                }
                if force && ptype != PatchType::Apply {
                    return Err(ApiError::bad_request(
                        "force: Forbidden: may not be specified for non-apply patch",
                    ));
                }
                let mut st = app.store.lock();
                if sub == Some("scale") {
                    let cur = st
                        .get(&rt.key(), &ns, name)
                        .cloned()
                        .ok_or_else(|| ApiError::not_found(&rt.group, &rt.resource, name))?;
                    let mut scale = to_scale(&rt, &cur);
                    match ptype {
                        PatchType::Json => crate::patch::json_patch(&mut scale, &patch)?,
                        _ => crate::patch::merge_patch(&mut scale, &patch),
                    }
                    let replicas = scale.pointer("/spec/replicas").cloned().unwrap_or(json!(0));
                    let out = set_scale(&mut st, &rt, &ns, name, replicas, &opts, None)?;
                    return Ok(ok(&to_scale(&rt, &out)));
                }
                let s = if sub == Some("status") {
                    Sub::Status
                } else {
                    Sub::Main
                };
                let existed = st.get(&rt.key(), &ns, name).is_some();
                let out = ops::patch(&mut st, &rt, &ns, name, ptype, &patch, s, force, &opts)?;
                let code = if !existed && ptype == PatchType::Apply {
                    201
                } else {
                    200
                };
                Ok(json_response(
                    code,
                    &present(&rt, &rp.version, out),
                    "application/json",
                ))
            }
            (Method::DELETE, Some(name), None) => {
                let ct = content_type(&headers);
                let body = read_body(&app, body).await?;
                let dopts = delete_opts(&query, &ct, &body)?;
                let mut st = app.store.lock();
                let out = ops::delete(&mut st, &rt, &ns, name, &dopts)?;
                let code = if is_deleting(&out) && st.get(&rt.key(), &ns, name).is_some() {
                    202
                } else {
                    200
                };
                let code = if dopts.dry_run { 200 } else { code };
                Ok(json_response(
                    code,
                    &present(&rt, &rp.version, out),
                    "application/json",
                ))
            }
            (Method::DELETE, None, None) => {
                let ct = content_type(&headers);
                let body = read_body(&app, body).await?;
                let dopts = delete_opts(&query, &ct, &body)?;
                let ls = LabelSelector::parse(query.get("labelSelector").unwrap_or(""))?;
                let fs = FieldSelector::parse(query.get("fieldSelector").unwrap_or(""), &rt.kind)?;
                let mut st = app.store.lock();
                let targets: Vec<(String, String)> = st
                    .list(&rt.key(), rp.ns.as_deref())
                    .into_iter()
                    .filter(|o| ls.matches(o) && fs.matches(o))
                    .map(|o| (meta_str(o, "namespace").to_string(), name_of(o).to_string()))
                    .collect();
                let mut items = Vec::new();
                for (n, name) in targets {
                    match ops::delete(&mut st, &rt, &n, &name, &dopts) {
                        Ok(o) => items.push(present(&rt, &rp.version, o)),
                        Err(e) if e.code == 404 => {}
                        Err(e) => return Err(e),
                    }
                }
                let rv = st.rv.to_string();
                Ok(ok(&json!({
                    "kind": format!("{}List", rt.kind),
                    "apiVersion": rt.api_version(&rp.version),
                    "metadata": {"resourceVersion": rv},
                    "items": items
                })))
            }
            (Method::POST, Some(_), _)
            | (Method::DELETE, _, Some(_))
            | (Method::POST, None, Some(_)) => Err(ApiError::method_not_allowed(
                "the server does not allow this method on the requested resource",
            )),
            _ => Err(ApiError::method_not_allowed(
                "the server does not allow this method on the requested resource",
            )),
        }
    }
    .await;
    match res {
        Ok(r) => r,
        Err(e) => error_response(&e),
    }
}

fn aggregated_accept(accept: &str) -> Option<(&'static str, &'static str)> {
    for part in accept.split(',') {
        let p = part.replace(' ', "");
        if p.contains("as=APIGroupDiscoveryList") && p.contains("g=apidiscovery.k8s.io") {
            if p.contains("v=v2beta1") {
                return Some((
                    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList",
                    "apidiscovery.k8s.io/v2beta1",
                ));
            }
            if p.contains("v=v2") {
                return Some((
                    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
                    "apidiscovery.k8s.io/v2",
                ));
            }
        }
        if p.starts_with("application/json") && !p.contains("as=") {
            return None;
        }
    }
    None
}

#[derive(Debug)]
struct ResourcePath {
    group: String,
    version: String,
    ns: Option<String>,
    resource: String,
    name: Option<String>,
    sub: Option<String>,
    watch: bool,
}

fn parse_resource_path(segs: &[&str]) -> Option<ResourcePath> {
    let (group, version, mut rest) = match segs {
        ["api", v, rest @ ..] => (String::new(), v.to_string(), rest),
        ["apis", g, v, rest @ ..] => (g.to_string(), v.to_string(), rest),
        _ => return None,
    };
    let mut watch = false;
    if rest.first() == Some(&"watch") {
        watch = true;
        rest = &rest[1..];
    }
    let mut ns = None;
    if rest.len() >= 3
        && rest[0] == "namespaces"
        && !(rest.len() == 3 && (rest[2] == "status" || rest[2] == "finalize"))
    {
        ns = Some(rest[1].to_string());
        rest = &rest[2..];
    }
    match rest {
        [r] => Some(ResourcePath {
            group,
            version,
            ns,
            resource: r.to_string(),
            name: None,
            sub: None,
            watch,
        }),
        [r, n] => Some(ResourcePath {
            group,
            version,
            ns,
            resource: r.to_string(),
            name: Some(n.to_string()),
            sub: None,
            watch,
        }),
        [r, n, s] => Some(ResourcePath {
            group,
            version,
            ns,
            resource: r.to_string(),
            name: Some(n.to_string()),
            sub: Some(s.to_string()),
            watch,
        }),
        _ => None,
    }
}

/// Serve an object at the requested version (no schema conversion: same fields).
fn present(rt: &ResourceType, version: &str, mut obj: Value) -> Value {
    let av = rt.api_version(version);
    if obj.get("apiVersion").and_then(Value::as_str) != Some(av.as_str()) && obj.is_object() {
        obj["apiVersion"] = json!(av);
    }
    obj
}

fn to_scale(rt: &ResourceType, obj: &Value) -> Value {
    let (spec_path, status_path, sel_path) = rt.scale.clone().unwrap_or_default();
    let spec = json_path(obj, &spec_path).cloned().unwrap_or(json!(0));
    let status = json_path(obj, &status_path).cloned().unwrap_or(json!(0));
    let mut sel = sel_path.as_deref().and_then(|p| json_path(obj, p)).cloned();
    if !rt.custom {
        sel = obj
            .pointer("/spec/selector")
            .map(|s| json!(LabelSelector::from_object(s).to_string_form()));
    }
    let md = meta(obj).cloned().unwrap_or_default();
    let mut m = serde_json::Map::new();
    for k in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(v) = md.get(k) {
            m.insert(k.into(), v.clone());
        }
    }
    let mut st = json!({"replicas": status});
    if let Some(s) = sel {
        st["selector"] = s;
    }
    json!({"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": m, "spec": {"replicas": spec}, "status": st})
}

fn set_scale(
    st: &mut crate::store::State,
    rt: &ResourceType,
    ns: &str,
    name: &str,
    replicas: Value,
    opts: &WriteOpts,
    rv: Option<&str>,
) -> ApiResult<Value> {
    if !replicas.is_i64() || replicas.as_i64().is_some_and(|r| r < 0) {
        return Err(ApiError::invalid(
            "autoscaling",
            "Scale",
            name,
            vec![(
                "spec.replicas".into(),
                format!("Invalid value: {replicas}: must be greater than or equal to 0"),
            )],
        ));
    }
    let cur = st
        .get(&rt.key(), ns, name)
        .cloned()
        .ok_or_else(|| ApiError::not_found(&rt.group, &rt.resource, name))?;
    if let Some(rv) = rv
        && !rv.is_empty()
        && rv != meta_str(&cur, "resourceVersion")
    {
        return Err(ApiError::stale(&rt.group, &rt.resource, name));
    }
    let (spec_path, _, _) = rt.scale.clone().unwrap_or_default();
    // build a merge patch from the dotted path
    let mut patch = replicas;
    for seg in spec_path.trim_start_matches('.').split('.').rev() {
        patch = json!({ seg: patch });
    }
    ops::patch(
        st,
        rt,
        ns,
        name,
        PatchType::Merge,
        &patch,
        Sub::Main,
        false,
        opts,
    )
}

fn delete_opts(q: &Query, ct: &str, body: &[u8]) -> ApiResult<DeleteOpts> {
    let mut d = DeleteOpts {
        dry_run: q.get("dryRun") == Some("All"),
        ..Default::default()
    };
    let prop = |s: &str| -> ApiResult<Propagation> {
        match s {
            "Background" => Ok(Propagation::Background),
            "Foreground" => Ok(Propagation::Foreground),
            "Orphan" => Ok(Propagation::Orphan),
            other => Err(ApiError::bad_request(format!(
                "propagationPolicy: Unsupported value: {other:?}: supported values: \"Foreground\", \"Background\", \"Orphan\""
            ))),
        }
    };
    if let Some(p) = q.get("propagationPolicy") {
        d.propagation = Some(prop(p)?);
    }
    if q.get("orphanDependents") == Some("true") {
        d.propagation = Some(Propagation::Orphan);
    }
    if !body.is_empty() && body.iter().any(|b| !b.is_ascii_whitespace()) {
        let v = parse_object(
            if ct.is_empty() {
                "application/json"
            } else {
                ct
            },
            body,
        )?;
        if let Some(p) = v.get("propagationPolicy").and_then(Value::as_str) {
            d.propagation = Some(prop(p)?);
        }
        if v.get("orphanDependents").and_then(Value::as_bool) == Some(true) {
            d.propagation = Some(Propagation::Orphan);
        }
        if let Some(uid) = v.pointer("/preconditions/uid").and_then(Value::as_str) {
            d.precondition_uid = Some(uid.to_string());
        }
        if let Some(rv) = v
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
        {
            d.precondition_rv = Some(rv.to_string());
        }
        if let Some(dr) = v.get("dryRun").and_then(Value::as_array)
            && dr.iter().any(|x| x.as_str() == Some("All"))
        {
            d.dry_run = true;
        }
    }
    Ok(d)
}

#[derive(serde::Serialize, serde::Deserialize)]
struct ContinueToken {
    rv: u64,
    start: String,
}

fn list(
    app: &App,
    rt: &ResourceType,
    version: &str,
    ns: Option<&str>,
    q: &Query,
    accept: &str,
) -> ApiResult<Response<Body>> {
    let ls = LabelSelector::parse(q.get("labelSelector").unwrap_or(""))?;
    let fs = FieldSelector::parse(q.get("fieldSelector").unwrap_or(""), &rt.kind)?;
    let limit = match q.get("limit") {
        None | Some("") => 0usize,
        Some(l) => l
            .parse::<i64>()
            .map_err(|_| ApiError::bad_request(format!("invalid limit {l:?}")))?
            .max(0) as usize,
    };
    let st = app.store.lock();
    let (list_rv, start) = match q.get("continue").filter(|c| !c.is_empty()) {
        None => (st.rv, String::new()),
        Some(c) => {
            let tok: ContinueToken = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(c)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .ok_or_else(|| {
                    ApiError::bad_request("continue key is not valid: illegal base64 data")
                })?;
            if tok.rv < st.oldest_rv {
                return Err(ApiError::gone(
                    "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
                ));
            }
            (tok.rv, tok.start)
        }
    };
    let mut items: Vec<Value> = Vec::new();
    let mut cont = None;
    let mut remaining = 0usize;
    for o in st.list(&rt.key(), ns) {
        if !start.is_empty() {
            let key = format!("{}/{}", meta_str(o, "namespace"), name_of(o));
            if key.as_str() <= start.as_str() {
                continue;
            }
        }
        if !(ls.matches(o) && fs.matches(o)) {
            continue;
        }
        if limit > 0 && items.len() >= limit {
            remaining += 1;
            if cont.is_none() {
                let last = items
                    .last()
                    .map(|l| format!("{}/{}", meta_str(l, "namespace"), name_of(l)))
                    .unwrap_or_default();
                let tok = ContinueToken {
                    rv: list_rv,
                    start: last,
                };
                cont = Some(
                    base64::engine::general_purpose::URL_SAFE_NO_PAD
                        .encode(serde_json::to_vec(&tok).unwrap_or_default()),
                );
            }
            continue;
        }
        items.push(present(rt, version, o.clone()));
    }
    let rv = list_rv.to_string();
    drop(st);
    if wants_meta(accept) {
        let mut md = json!({"resourceVersion": rv});
        if let Some(c) = cont {
            md["continue"] = json!(c);
        }
        let items: Vec<Value> = items.iter().map(to_meta).collect();
        return Ok(json_response(
            200,
            &json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": md, "items": items}),
            "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1",
        ));
    }
    if wants_table(accept) {
        let refs: Vec<&Value> = items.iter().collect();
        let t = table::table(
            rt,
            &refs,
            &rv,
            cont.as_deref(),
            q.get("includeObject").unwrap_or("Metadata"),
        );
        return Ok(json_response(
            200,
            &t,
            "application/json;as=Table;v=v1;g=meta.k8s.io",
        ));
    }
    let mut md = json!({"resourceVersion": rv});
    if let Some(c) = cont {
        md["continue"] = json!(c);
        md["remainingItemCount"] = json!(remaining);
    }
    Ok(ok(&json!({
        "kind": format!("{}List", rt.kind),
        "apiVersion": rt.api_version(version),
        "metadata": md,
        "items": items
    })))
}

struct WatchFilter {
    key: String,
    ns: Option<String>,
    ls: LabelSelector,
    fs: FieldSelector,
}

impl WatchFilter {
    fn matches(&self, o: &Value) -> bool {
        self.ls.matches(o) && self.fs.matches(o)
    }
    /// Translate a store event into what this watcher sees.
    fn translate(&self, ev: &Event) -> Option<(EventType, Arc<Value>)> {
        if ev.key != self.key || self.ns.as_deref().is_some_and(|n| n != ev.ns) {
            return None;
        }
        let now = self.matches(&ev.object);
        let before = ev.old.as_deref().is_some_and(|o| self.matches(o));
        match ev.kind {
            EventType::Added => now.then(|| (EventType::Added, ev.object.clone())),
            EventType::Deleted => before.then(|| (EventType::Deleted, ev.object.clone())),
            EventType::Modified => match (before, now) {
                (true, true) => Some((EventType::Modified, ev.object.clone())),
                (false, true) => Some((EventType::Added, ev.object.clone())),
                (true, false) => Some((EventType::Deleted, ev.object.clone())),
                (false, false) => None,
            },
        }
    }
}

fn watch(
    app: &Arc<App>,
    rt: &ResourceType,
    version: &str,
    ns: Option<&str>,
    q: &Query,
    accept: &str,
) -> ApiResult<Response<Body>> {
    let filter = WatchFilter {
        key: rt.key(),
        ns: ns.map(str::to_string),
        ls: LabelSelector::parse(q.get("labelSelector").unwrap_or(""))?,
        fs: FieldSelector::parse(q.get("fieldSelector").unwrap_or(""), &rt.kind)?,
    };
    let bookmarks = q.flag("allowWatchBookmarks");
    let send_initial = q.get("sendInitialEvents") == Some("true");
    if send_initial && (!bookmarks || q.get("resourceVersionMatch") != Some("NotOlderThan")) {
        return Err(ApiError::invalid("meta.k8s.io", "ListOptions", "", vec![(
            "sendInitialEvents".into(),
            "Forbidden: sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled and allowWatchBookmarks is set and resourceVersionMatch is NotOlderThan".into(),
        )]));
    }
    let timeout = match q.get("timeoutSeconds") {
        None | Some("") => None,
        Some(t) => Some(Duration::from_secs(t.parse::<u64>().map_err(|_| {
            ApiError::bad_request(format!("invalid timeoutSeconds {t:?}"))
        })?)),
    };
    let table_mode =
        wants_table(accept).then(|| q.get("includeObject").unwrap_or("Metadata").to_string());
    let meta_mode = wants_meta(accept);
    let rv_param = q.get("resourceVersion").unwrap_or("").to_string();
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let st = app.store.lock();
    let mut initial: Vec<(EventType, Arc<Value>)> = Vec::new();
    let mut gone: Option<String> = None;
    let mut send_initial_bookmark = false;
    if send_initial || rv_param.is_empty() || rv_param == "0" {
        for o in st.list(&filter.key, ns) {
            if filter.matches(o) {
                initial.push((EventType::Added, Arc::new(o.clone())));
            }
        }
        send_initial_bookmark = send_initial;
    } else {
        let rv: u64 = rv_param.parse().map_err(|_| {
            ApiError::bad_request(format!("invalid resource version: {rv_param:?}"))
        })?;
        match st.events_since(rv) {
            None => gone = Some(format!("too old resource version: {rv} ({})", st.oldest_rv)),
            Some(evs) => {
                for e in evs {
                    if let Some(t) = filter.translate(&e) {
                        initial.push(t);
                    }
                }
            }
        }
    }
    let start_rv = st.rv;
    let mut sub = st.subscribe();
    drop(st);

    let rt = rt.clone();
    let version = version.to_string();
    let mut shutdown = app.shutdown_rx.clone();
    let drop_after = app.faults().drop_watches_after;
    let bookmark_every = app.bookmark_interval;
    tokio::spawn(async move {
        let line = |ty: &str, obj: &Value| -> Bytes {
            let mut b = serde_json::to_vec(&json!({"type": ty, "object": obj})).unwrap_or_default();
            b.push(b'\n');
            Bytes::from(b)
        };
        let render = |ty: EventType, obj: &Value| -> Bytes {
            let obj = present(&rt, &version, obj.clone());
            if meta_mode {
                return line(ty.as_str(), &to_meta(&obj));
            }
            match &table_mode {
                Some(inc) => {
                    let t =
                        table::table(&rt, &[&obj], meta_str(&obj, "resourceVersion"), None, inc);
                    line(ty.as_str(), &t)
                }
                None => line(ty.as_str(), &obj),
            }
        };
        let bookmark = |rv: u64, initial_end: bool| -> Bytes {
            let mut md = json!({"resourceVersion": rv.to_string()});
            if initial_end {
                md["annotations"] = json!({"k8s.io/initial-events-end": "true"});
            }
            line(
                "BOOKMARK",
                &json!({"kind": rt.kind, "apiVersion": rt.api_version(&version), "metadata": md}),
            )
        };
        if let Some(msg) = gone {
            let _ = tx
                .send(line("ERROR", &ApiError::gone(msg).to_status()))
                .await;
            return;
        }
        for (ty, obj) in &initial {
            if tx.send(render(*ty, obj)).await.is_err() {
                return;
            }
        }
        let mut last_rv = start_rv;
        if send_initial_bookmark && tx.send(bookmark(start_rv, true)).await.is_err() {
            return;
        }
        let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
        let drop_at = drop_after.map(|t| tokio::time::Instant::now() + t);
        let end = match (deadline, drop_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let sleep_end = async move {
            match end {
                Some(e) => tokio::time::sleep_until(e).await,
                None => std::future::pending::<()>().await,
            }
        };
        tokio::pin!(sleep_end);
        let mut ticker = tokio::time::interval(bookmark_every);
        ticker.tick().await;
        loop {
            tokio::select! {
                _ = &mut sleep_end => return,
                _ = shutdown.changed() => return,
                _ = ticker.tick(), if bookmarks => {
                    if tx.send(bookmark(last_rv, false)).await.is_err() { return; }
                }
                ev = sub.recv() => {
                    match ev {
                        Ok(ev) => {
                            if ev.rv <= start_rv { continue; }
                            last_rv = ev.rv;
                            if let Some((ty, obj)) = filter.translate(&ev) {
                                // the common case (same event type, stored version, plain JSON)
                                // is serialized once per event, not once per watcher
                                let shared = ty == ev.kind
                                    && !meta_mode
                                    && table_mode.is_none()
                                    && obj.get("apiVersion").and_then(Value::as_str)
                                        == Some(rt.api_version(&version).as_str());
                                let bytes = if shared {
                                    ev.line.get_or_init(|| line(ty.as_str(), &obj)).clone()
                                } else {
                                    render(ty, &obj)
                                };
                                if tx.send(bytes).await.is_err() {
                                    return;
                                }
                            }
                        }
                        // a slow watcher is closed; the client re-watches from its last resourceVersion
                        Err(_) => return,
                    }
                }
            }
        }
    });
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
    let body = StreamBody::new(futures::StreamExt::map(stream, |b| {
        Ok::<_, Infallible>(Frame::data(b))
    }));
    let ct = if meta_mode {
        META_CT
    } else if wants_table(accept) {
        "application/json;as=Table;v=v1;g=meta.k8s.io"
    } else {
        "application/json"
    };
    Response::builder()
        .status(200)
        .header(header::CONTENT_TYPE, ct)
        .header("Cache-Control", "no-cache, private")
        .body(BodyExt::boxed_unsync(body))
        .map_err(|e| ApiError::internal(e.to_string()))
}
