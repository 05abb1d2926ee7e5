//! Minimal decoding of Kubernetes protobuf request bodies (`application/vnd.kubernetes.protobuf`)
//! for the kinds kubectl's generators create (`kubectl create configmap|secret|namespace|
//! serviceaccount`). Other kinds answer 415 as before.

use base64::Engine;
use serde_json::{Map, Value, json};

use crate::status::ApiError;

struct Reader<'a> {
    b: &'a [u8],
    i: usize,
}

enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Other,
}

fn bad(msg: &str) -> ApiError {
    ApiError::bad_request(format!("invalid protobuf body: {msg}"))
}

impl<'a> Reader<'a> {
    fn new(b: &'a [u8]) -> Self {
        Reader { b, i: 0 }
    }

    fn varint(&mut self) -> Result<u64, ApiError> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let byte = *self.b.get(self.i).ok_or_else(|| bad("truncated varint"))?;
            self.i += 1;
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(bad("varint too long"))
    }

    fn next(&mut self) -> Result<Option<(u64, Field<'a>)>, ApiError> {
        if self.i >= self.b.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let (num, wt) = (key >> 3, key & 7);
        let f = match wt {
            0 => Field::Varint(self.varint()?),
            2 => {
                let len = usize::try_from(self.varint()?).map_err(|_| bad("length"))?;
                let end = self
                    .i
                    .checked_add(len)
                    .filter(|e| *e <= self.b.len())
                    .ok_or_else(|| bad("truncated field"))?;
                let s = &self.b[self.i..end];
                self.i = end;
                Field::Bytes(s)
            }
            1 => {
                self.i += 8;
                Field::Other
            }
            5 => {
                self.i += 4;
                Field::Other
            }
            _ => return Err(bad("unsupported wire type")),
        };
        if self.i > self.b.len() {
            return Err(bad("truncated"));
        }
        Ok(Some((num, f)))
    }
}

fn string(b: &[u8]) -> Result<String, ApiError> {
    String::from_utf8(b.to_vec()).map_err(|_| bad("string is not UTF-8"))
}

fn map_entry(b: &[u8], bytes_value: bool) -> Result<(String, Value), ApiError> {
    let mut r = Reader::new(b);
    let (mut k, mut v) = (String::new(), Value::String(String::new()));
    while let Some((n, f)) = r.next()? {
        if let Field::Bytes(x) = f {
            match n {
                1 => k = string(x)?,
                2 => {
                    v = if bytes_value {
                        json!(base64::engine::general_purpose::STANDARD.encode(x))
                    } else {
                        json!(string(x)?)
                    }
                }
                _ => {}
            }
        }
    }
    Ok((k, v))
}

fn insert_map(
    m: &mut Map<String, Value>,
    field: &str,
    b: &[u8],
    bytes_value: bool,
) -> Result<(), ApiError> {
    let (k, v) = map_entry(b, bytes_value)?;
    let e = m.entry(field.to_string()).or_insert_with(|| json!({}));
    if let Some(o) = e.as_object_mut() {
        o.insert(k, v);
    }
    Ok(())
}

fn push(m: &mut Map<String, Value>, field: &str, v: Value) {
    let e = m.entry(field.to_string()).or_insert_with(|| json!([]));
    if let Some(a) = e.as_array_mut() {
        a.push(v);
    }
}

fn owner_ref(b: &[u8]) -> Result<Value, ApiError> {
    let mut r = Reader::new(b);
    let mut m = Map::new();
    while let Some((n, f)) = r.next()? {
        match (n, f) {
            (1, Field::Bytes(x)) => {
                m.insert("kind".into(), json!(string(x)?));
            }
            (3, Field::Bytes(x)) => {
                set_str(&mut m, "name", x)?;
            }
            (4, Field::Bytes(x)) => {
                m.insert("uid".into(), json!(string(x)?));
            }
            (5, Field::Bytes(x)) => {
                m.insert("apiVersion".into(), json!(string(x)?));
            }
            (6, Field::Varint(v)) => {
                m.insert("controller".into(), json!(v != 0));
            }
            (7, Field::Varint(v)) => {
                m.insert("blockOwnerDeletion".into(), json!(v != 0));
            }
            _ => {}
        }
    }
    Ok(Value::Object(m))
}

fn object_meta(b: &[u8]) -> Result<Value, ApiError> {
    let mut r = Reader::new(b);
    let mut m = Map::new();
    while let Some((n, f)) = r.next()? {
        match (n, f) {
            (1, Field::Bytes(x)) => {
                m.insert("name".into(), json!(string(x)?));
            }
            (2, Field::Bytes(x)) => {
                set_str(&mut m, "generateName", x)?;
            }
            (3, Field::Bytes(x)) => {
                set_str(&mut m, "namespace", x)?;
            }
            (6, Field::Bytes(x)) => {
                let s = string(x)?;
                if !s.is_empty() {
                    m.insert("resourceVersion".into(), json!(s));
                }
            }
            (11, Field::Bytes(x)) => insert_map(&mut m, "labels", x, false)?,
            (12, Field::Bytes(x)) => insert_map(&mut m, "annotations", x, false)?,
            (13, Field::Bytes(x)) => push(&mut m, "ownerReferences", owner_ref(x)?),
            (14, Field::Bytes(x)) => push(&mut m, "finalizers", json!(string(x)?)),
            _ => {}
        }
    }
    Ok(Value::Object(m))
}

fn name_ref(b: &[u8], field: u64) -> Result<Value, ApiError> {
    let mut r = Reader::new(b);
    let mut m = Map::new();
    while let Some((n, f)) = r.next()? {
        if let (true, Field::Bytes(x)) = (n == field, f) {
            m.insert("name".into(), json!(string(x)?));
        }
    }
    Ok(Value::Object(m))
}

fn msg<F>(b: &[u8], mut f: F) -> Result<Value, ApiError>
where
    F: FnMut(&mut Map<String, Value>, u64, Field<'_>) -> Result<(), ApiError>,
{
    let mut r = Reader::new(b);
    let mut m = Map::new();
    while let Some((n, fld)) = r.next()? {
        f(&mut m, n, fld)?;
    }
    Ok(Value::Object(m))
}

/// Go strings are not pointers: "" means unset (omitted in JSON).
fn set_str(m: &mut Map<String, Value>, k: &str, b: &[u8]) -> Result<(), ApiError> {
    let s = string(b)?;
    if !s.is_empty() {
        m.insert(k.into(), json!(s));
    }
    Ok(())
}

fn int_or_string(b: &[u8]) -> Result<Value, ApiError> {
    let v = msg(b, |m, n, f| {
        match (n, f) {
            (1, Field::Varint(t)) => {
                m.insert("t".into(), json!(t));
            }
            (2, Field::Varint(i)) => {
                m.insert("i".into(), json!(i as i32));
            }
            (3, Field::Bytes(s)) => set_str(m, "s", s)?,
            _ => {}
        }
        Ok(())
    })?;
    Ok(if v.get("t") == Some(&json!(1)) {
        v.get("s").cloned().unwrap_or(json!(""))
    } else {
        v.get("i").cloned().unwrap_or(json!(0))
    })
}

fn label_selector(b: &[u8]) -> Result<Value, ApiError> {
    msg(b, |m, n, f| {
        if let (1, Field::Bytes(x)) = (n, f) {
            insert_map(m, "matchLabels", x, false)?;
        }
        Ok(())
    })
}

fn container(b: &[u8]) -> Result<Value, ApiError> {
    msg(b, |m, n, f| {
        match (n, f) {
            (1, Field::Bytes(x)) => set_str(m, "name", x)?,
            (2, Field::Bytes(x)) => set_str(m, "image", x)?,
            (3, Field::Bytes(x)) => push(m, "command", json!(string(x)?)),
            (4, Field::Bytes(x)) => push(m, "args", json!(string(x)?)),
            (5, Field::Bytes(x)) => set_str(m, "workingDir", x)?,
            (6, Field::Bytes(x)) => {
                let p = msg(x, |pm, pn, pf| {
                    match (pn, pf) {
                        (1, Field::Bytes(y)) => set_str(pm, "name", y)?,
                        (2, Field::Varint(v)) if v != 0 => {
                            pm.insert("hostPort".into(), json!(v as i32));
                        }
                        (3, Field::Varint(v)) => {
                            pm.insert("containerPort".into(), json!(v as i32));
                        }
                        (4, Field::Bytes(y)) => set_str(pm, "protocol", y)?,
                        _ => {}
                    }
                    Ok(())
                })?;
                push(m, "ports", p);
            }
            (7, Field::Bytes(x)) => {
                let e = msg(x, |em, en, ef| {
                    match (en, ef) {
                        (1, Field::Bytes(y)) => set_str(em, "name", y)?,
                        (2, Field::Bytes(y)) => set_str(em, "value", y)?,
                        _ => {}
                    }
                    Ok(())
                })?;
                push(m, "env", e);
            }
            (8, Field::Bytes(_)) => {
                m.insert("resources".into(), json!({}));
            }
            (14, Field::Bytes(x)) => set_str(m, "imagePullPolicy", x)?,
            _ => {}
        }
        Ok(())
    })
}

fn pod_template(b: &[u8]) -> Result<Value, ApiError> {
    msg(b, |m, n, f| {
        match (n, f) {
            (1, Field::Bytes(x)) => {
                m.insert("metadata".into(), object_meta(x)?);
            }
            (2, Field::Bytes(x)) => {
                let spec = msg(x, |sm, sn, sf| {
                    match (sn, sf) {
                        (2, Field::Bytes(y)) => push(sm, "containers", container(y)?),
                        (3, Field::Bytes(y)) => set_str(sm, "restartPolicy", y)?,
                        (8, Field::Bytes(y)) => set_str(sm, "serviceAccountName", y)?,
                        (20, Field::Bytes(y)) => push(sm, "initContainers", container(y)?),
                        _ => {}
                    }
                    Ok(())
                })?;
                m.insert("spec".into(), spec);
            }
            _ => {}
        }
        Ok(())
    })
}

/// Decode a protobuf-encoded object into its JSON form.
pub fn decode(body: &[u8]) -> Result<Value, ApiError> {
    let rest = body
        .strip_prefix(b"k8s\x00")
        .ok_or_else(|| bad("missing k8s envelope"))?;
    let mut r = Reader::new(rest);
    let (mut api_version, mut kind, mut raw): (String, String, &[u8]) =
        (String::new(), String::new(), &[]);
    while let Some((n, f)) = r.next()? {
        match (n, f) {
            (1, Field::Bytes(tm)) => {
                let mut t = Reader::new(tm);
                while let Some((tn, tf)) = t.next()? {
                    match (tn, tf) {
                        (1, Field::Bytes(x)) => api_version = string(x)?,
                        (2, Field::Bytes(x)) => kind = string(x)?,
                        _ => {}
                    }
                }
            }
            (2, Field::Bytes(x)) => raw = x,
            _ => {}
        }
    }
    let mut obj = Map::new();
    obj.insert("apiVersion".into(), json!(api_version));
    obj.insert("kind".into(), json!(kind));
    let mut r = Reader::new(raw);
    match (api_version.as_str(), kind.as_str()) {
        ("v1", "ConfigMap") => {
            while let Some((n, f)) = r.next()? {
                match (n, f) {
                    (1, Field::Bytes(x)) => {
                        obj.insert("metadata".into(), object_meta(x)?);
                    }
                    (2, Field::Bytes(x)) => insert_map(&mut obj, "data", x, false)?,
                    (3, Field::Bytes(x)) => insert_map(&mut obj, "binaryData", x, true)?,
                    (4, Field::Varint(v)) => {
                        obj.insert("immutable".into(), json!(v != 0));
                    }
                    _ => {}
                }
            }
        }
        ("v1", "Secret") => {
            while let Some((n, f)) = r.next()? {
                match (n, f) {
                    (1, Field::Bytes(x)) => {
                        obj.insert("metadata".into(), object_meta(x)?);
                    }
                    (2, Field::Bytes(x)) => insert_map(&mut obj, "data", x, true)?,
                    (3, Field::Bytes(x)) => {
                        obj.insert("type".into(), json!(string(x)?));
                    }
                    (4, Field::Bytes(x)) => insert_map(&mut obj, "stringData", x, false)?,
                    (5, Field::Varint(v)) => {
                        obj.insert("immutable".into(), json!(v != 0));
                    }
                    _ => {}
                }
            }
        }
        ("v1", "Namespace") => {
            while let Some((n, f)) = r.next()? {
                if let (1, Field::Bytes(x)) = (n, f) {
                    obj.insert("metadata".into(), object_meta(x)?);
                }
            }
        }
        ("v1", "ServiceAccount") => {
            while let Some((n, f)) = r.next()? {
                match (n, f) {
                    (1, Field::Bytes(x)) => {
                        obj.insert("metadata".into(), object_meta(x)?);
                    }
                    (2, Field::Bytes(x)) => push(&mut obj, "secrets", name_ref(x, 3)?),
                    (3, Field::Bytes(x)) => push(&mut obj, "imagePullSecrets", name_ref(x, 1)?),
                    (4, Field::Varint(v)) => {
                        obj.insert("automountServiceAccountToken".into(), json!(v != 0));
                    }
                    _ => {}
                }
            }
        }
        ("apps/v1", "Deployment") => {
            while let Some((n, f)) = r.next()? {
                match (n, f) {
                    (1, Field::Bytes(x)) => {
                        obj.insert("metadata".into(), object_meta(x)?);
                    }
                    (2, Field::Bytes(x)) => {
                        let spec = msg(x, |m, sn, sf| {
                            match (sn, sf) {
                                (1, Field::Varint(v)) => {
                                    m.insert("replicas".into(), json!(v as i32));
                                }
                                (2, Field::Bytes(y)) => {
                                    m.insert("selector".into(), label_selector(y)?);
                                }
                                (3, Field::Bytes(y)) => {
                                    m.insert("template".into(), pod_template(y)?);
                                }
                                _ => {}
                            }
                            Ok(())
                        })?;
                        obj.insert("spec".into(), spec);
                    }
                    _ => {}
                }
            }
        }
        ("batch/v1", "Job") => {
            while let Some((n, f)) = r.next()? {
                match (n, f) {
                    (1, Field::Bytes(x)) => {
                        obj.insert("metadata".into(), object_meta(x)?);
                    }
                    (2, Field::Bytes(x)) => {
                        let spec = msg(x, |m, sn, sf| {
                            match (sn, sf) {
                                (1, Field::Varint(v)) => {
                                    m.insert("parallelism".into(), json!(v as i32));
                                }
                                (2, Field::Varint(v)) => {
                                    m.insert("completions".into(), json!(v as i32));
                                }
                                (6, Field::Bytes(y)) => {
                                    m.insert("template".into(), pod_template(y)?);
                                }
                                (7, Field::Varint(v)) => {
                                    m.insert("backoffLimit".into(), json!(v as i32));
                                }
                                _ => {}
                            }
                            Ok(())
                        })?;
                        obj.insert("spec".into(), spec);
                    }
                    _ => {}
                }
            }
        }
        ("v1", "Service") => {
            while let Some((n, f)) = r.next()? {
                match (n, f) {
                    (1, Field::Bytes(x)) => {
                        obj.insert("metadata".into(), object_meta(x)?);
                    }
                    (2, Field::Bytes(x)) => {
                        let spec = msg(x, |m, sn, sf| {
                            match (sn, sf) {
                                (1, Field::Bytes(y)) => {
                                    let p = msg(y, |pm, pn, pf| {
                                        match (pn, pf) {
                                            (1, Field::Bytes(z)) => set_str(pm, "name", z)?,
                                            (2, Field::Bytes(z)) => set_str(pm, "protocol", z)?,
                                            (3, Field::Varint(v)) => {
                                                pm.insert("port".into(), json!(v as i32));
                                            }
                                            (4, Field::Bytes(z)) => {
                                                pm.insert("targetPort".into(), int_or_string(z)?);
                                            }
                                            (5, Field::Varint(v)) if v != 0 => {
                                                pm.insert("nodePort".into(), json!(v as i32));
                                            }
                                            _ => {}
                                        }
                                        Ok(())
                                    })?;
                                    push(m, "ports", p);
                                }
                                (2, Field::Bytes(y)) => insert_map(m, "selector", y, false)?,
                                (3, Field::Bytes(y)) => set_str(m, "clusterIP", y)?,
                                (4, Field::Bytes(y)) => set_str(m, "type", y)?,
                                _ => {}
                            }
                            Ok(())
                        })?;
                        obj.insert("spec".into(), spec);
                    }
                    _ => {}
                }
            }
        }
        _ => {
            return Err(ApiError::unsupported_media(&format!(
                "application/vnd.kubernetes.protobuf ({api_version} {kind}; use JSON)"
            )));
        }
    }
    Ok(Value::Object(obj))
}
