//! Kubernetes `Status` error bodies with the standard reasons.

use serde_json::{Value, json};

/// An API error answered as a `Status` object.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    fn with_details(mut self, group: &str, kind: &str, name: &str) -> ApiError {
        let mut d = serde_json::Map::new();
        if !name.is_empty() {
            d.insert("name".into(), json!(name));
        }
        if !group.is_empty() {
            d.insert("group".into(), json!(group));
        }
        d.insert("kind".into(), json!(kind));
        self.details = Some(Value::Object(d));
        self
    }

    fn qualified(group: &str, resource: &str) -> String {
        if group.is_empty() {
            resource.to_string()
        } else {
            format!("{resource}.{group}")
        }
    }

    pub fn not_found(group: &str, resource: &str, name: &str) -> ApiError {
        ApiError::new(
            404,
            "NotFound",
            format!(
                "{} \"{}\" not found",
                Self::qualified(group, resource),
                name
            ),
        )
        .with_details(group, resource, name)
    }

    pub fn already_exists(group: &str, resource: &str, name: &str) -> ApiError {
        ApiError::new(
            409,
            "AlreadyExists",
            format!(
                "{} \"{}\" already exists",
                Self::qualified(group, resource),
                name
            ),
        )
        .with_details(group, resource, name)
    }

    pub fn conflict(group: &str, resource: &str, name: &str, msg: &str) -> ApiError {
        ApiError::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{}\": {}",
                Self::qualified(group, resource),
                name,
                msg
            ),
        )
        .with_details(group, resource, name)
    }

    pub fn stale(group: &str, resource: &str, name: &str) -> ApiError {
        Self::conflict(
            group,
            resource,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    pub fn invalid(group: &str, kind: &str, name: &str, causes: Vec<(String, String)>) -> ApiError {
        let msg = causes
            .iter()
            .map(|(f, m)| format!("{f}: {m}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut e = ApiError::new(
            422,
            "Invalid",
            format!(
                "{} \"{}\" is invalid: {}",
                Self::qualified(group, kind),
                name,
                msg
            ),
        )
        .with_details(group, kind, name);
        if let Some(Value::Object(d)) = e.details.as_mut() {
            d.insert(
                "causes".into(),
                Value::Array(
                    causes
                        .into_iter()
                        .map(|(f, m)| json!({"reason": "FieldValueInvalid", "message": m, "field": f}))
                        .collect(),
                ),
            );
        }
        e
    }

    pub fn bad_request(msg: impl Into<String>) -> ApiError {
        ApiError::new(400, "BadRequest", msg)
    }

    pub fn method_not_allowed(msg: impl Into<String>) -> ApiError {
        ApiError::new(405, "MethodNotAllowed", msg)
    }

    pub fn unsupported_media(ct: &str) -> ApiError {
        ApiError::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf (got {ct})"
            ),
        )
    }

    #[allow(dead_code)]
    pub fn not_acceptable(msg: impl Into<String>) -> ApiError {
        ApiError::new(406, "NotAcceptable", msg)
    }

    pub fn too_large() -> ApiError {
        ApiError::new(413, "RequestEntityTooLarge", "Request entity too large")
    }

    pub fn gone(msg: impl Into<String>) -> ApiError {
        ApiError::new(410, "Expired", msg)
    }

    pub fn forbidden(msg: impl Into<String>) -> ApiError {
        ApiError::new(403, "Forbidden", msg)
    }

    pub fn internal(msg: impl Into<String>) -> ApiError {
        ApiError::new(500, "InternalError", msg)
    }

    pub fn unauthorized() -> ApiError {
        ApiError::new(401, "Unauthorized", "Unauthorized")
    }

    pub fn page_not_found() -> ApiError {
        ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    }

    pub fn to_status(&self) -> Value {
        let mut v = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(d) = &self.details {
            v["details"] = d.clone();
        }
        v
    }
}

/// A success `Status` (used by deletecollection and some deletes).
#[allow(dead_code)]
pub fn success_status(details: Option<Value>) -> Value {
    let mut v = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
    });
    if let Some(d) = details {
        v["details"] = d;
    }
    v
}
