//! Server-side printing: meta.k8s.io/v1 Table responses (what `kubectl get` asks for).

use serde_json::{Value, json};

use crate::registry::{PrinterColumn, ResourceType};
use crate::util::json_path;

fn col(name: &str, type_: &str, path: &str) -> PrinterColumn {
    PrinterColumn {
        name: name.to_string(),
        type_: type_.to_string(),
        json_path: path.to_string(),
        description: String::new(),
        priority: 0,
        format: String::new(),
    }
}

/// Columns shown between Name and Age for built-in kinds. Paths starting with '!' are computed.
pub fn builtin_columns(kind: &str) -> Vec<PrinterColumn> {
    match kind {
        "Deployment" => vec![
            col("Ready", "string", "!ready"),
            col("Up-to-date", "integer", ".status.updatedReplicas"),
            col("Available", "integer", ".status.availableReplicas"),
        ],
        "StatefulSet" => vec![col("Ready", "string", "!ready")],
        "ReplicaSet" => vec![
            col("Desired", "integer", ".spec.replicas"),
            col("Current", "integer", ".status.replicas"),
            col("Ready", "integer", ".status.readyReplicas"),
        ],
        "DaemonSet" => vec![
            col("Desired", "integer", ".status.desiredNumberScheduled"),
            col("Current", "integer", ".status.currentNumberScheduled"),
            col("Ready", "integer", ".status.numberReady"),
        ],
        "Pod" => vec![
            col("Ready", "string", "!podready"),
            col("Status", "string", ".status.phase"),
            col("Restarts", "integer", "!restarts"),
        ],
        "Service" => vec![
            col("Type", "string", ".spec.type"),
            col("Cluster-IP", "string", ".spec.clusterIP"),
            col("Port(s)", "string", "!ports"),
        ],
        "Namespace" => vec![col("Status", "string", ".status.phase")],
        "Job" => vec![col("Status", "string", "!jobstatus")],
        "ConfigMap" => vec![col("Data", "integer", "!datacount")],
        "Secret" => vec![
            col("Type", "string", ".type"),
            col("Data", "integer", "!datacount"),
        ],
        "Node" => vec![col("Status", "string", "!nodestatus")],
        "Event" => vec![
            col("Type", "string", ".type"),
            col("Reason", "string", ".reason"),
            col("Object", "string", "!involved"),
            col("Message", "string", ".message"),
        ],
        "Endpoints" => vec![col("Endpoints", "string", "!endpoints")],
        _ => vec![],
    }
}

fn human_age(ts: &str) -> String {
    let Ok(t) = chrono::DateTime::parse_from_rfc3339(ts) else {
        return "<unknown>".into();
    };
    let secs = (chrono::Utc::now() - t.with_timezone(&chrono::Utc))
        .num_seconds()
        .max(0);
    if secs < 120 {
        format!("{secs}s")
    } else if secs < 600 {
        format!("{}m{}s", secs / 60, secs % 60)
    } else if secs < 3 * 3600 {
        format!("{}m", secs / 60)
    } else if secs < 2 * 86400 {
        format!("{}h", secs / 3600)
    } else {
        format!("{}d", secs / 86400)
    }
}

fn computed(obj: &Value, what: &str) -> Value {
    let i = |p: &str| obj.pointer(p).and_then(Value::as_i64).unwrap_or(0);
    match what {
        "!ready" => json!(format!(
            "{}/{}",
            i("/status/readyReplicas"),
            i("/spec/replicas")
        )),
        "!podready" => {
            let total = obj
                .pointer("/spec/containers")
                .and_then(Value::as_array)
                .map(|a| a.len())
                .unwrap_or(0);
            let ready = obj
                .pointer("/status/containerStatuses")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter(|c| c.get("ready") == Some(&json!(true)))
                        .count()
                })
                .unwrap_or(0);
            json!(format!("{ready}/{total}"))
        }
        "!restarts" => json!(
            obj.pointer("/status/containerStatuses")
                .and_then(Value::as_array)
                .map(|a| a
                    .iter()
                    .filter_map(|c| c.get("restartCount").and_then(Value::as_i64))
                    .sum::<i64>())
                .unwrap_or(0)
        ),
        "!ports" => {
            let ports: Vec<String> = obj
                .pointer("/spec/ports")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .map(|p| {
                            format!(
                                "{}/{}",
                                p.get("port").map(|x| x.to_string()).unwrap_or_default(),
                                p.get("protocol").and_then(Value::as_str).unwrap_or("TCP")
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            json!(if ports.is_empty() {
                "<none>".to_string()
            } else {
                ports.join(",")
            })
        }
        "!jobstatus" => {
            let conds = obj.pointer("/status/conditions").and_then(Value::as_array);
            let has = |t: &str| {
                conds.is_some_and(|c| {
                    c.iter().any(|x| {
                        x.get("type").and_then(Value::as_str) == Some(t)
                            && x.get("status").and_then(Value::as_str) == Some("True")
                    })
                })
            };
            json!(if has("Complete") {
                "Complete"
            } else if has("Failed") {
                "Failed"
            } else {
                "Running"
            })
        }
        "!datacount" => json!(
            obj.get("data")
                .and_then(Value::as_object)
                .map(|m| m.len())
                .unwrap_or(0)
                + obj
                    .get("binaryData")
                    .and_then(Value::as_object)
                    .map(|m| m.len())
                    .unwrap_or(0)
        ),
        "!nodestatus" => json!("Ready"),
        "!involved" => json!(format!(
            "{}/{}",
            obj.pointer("/involvedObject/kind")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_lowercase(),
            obj.pointer("/involvedObject/name")
                .and_then(Value::as_str)
                .unwrap_or("")
        )),
        "!endpoints" => {
            let mut eps = Vec::new();
            for s in obj
                .get("subsets")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let ports: Vec<String> = s
                    .get("ports")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|p| p.get("port").map(|x| x.to_string()))
                    .collect();
                for a in s
                    .get("addresses")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let ip = a.get("ip").and_then(Value::as_str).unwrap_or("");
                    if ports.is_empty() {
                        eps.push(ip.to_string())
                    } else {
                        for p in &ports {
                            eps.push(format!("{ip}:{p}"))
                        }
                    }
                }
            }
            json!(if eps.is_empty() {
                "<none>".to_string()
            } else {
                eps.join(",")
            })
        }
        _ => Value::Null,
    }
}

fn cell(obj: &Value, c: &PrinterColumn) -> Value {
    if c.json_path.starts_with('!') {
        return computed(obj, &c.json_path);
    }
    match json_path(obj, &c.json_path) {
        None => Value::Null,
        Some(v) => {
            if c.type_ == "date"
                && let Some(s) = v.as_str()
            {
                return json!(human_age(s));
            }
            match v {
                Value::Array(_) | Value::Object(_) => json!(v.to_string()),
                other => other.clone(),
            }
        }
    }
}

/// CRDs with additionalPrinterColumns list their own columns (usually including Age).
fn default_age(rt: &ResourceType) -> bool {
    !rt.custom || rt.printer_columns.is_empty()
}

pub fn column_definitions(rt: &ResourceType) -> Vec<Value> {
    let mut cols = vec![
        json!({"name": "Name", "type": "string", "format": "name", "description": "Name must be unique within a namespace.", "priority": 0}),
    ];
    for c in &rt.printer_columns {
        cols.push(json!({"name": c.name, "type": if c.type_ == "date" { "string" } else { c.type_.as_str() }, "format": c.format, "description": c.description, "priority": c.priority}));
    }
    if default_age(rt) {
        cols.push(json!({"name": "Age", "type": "string", "format": "", "description": "CreationTimestamp is a timestamp representing the server time when this object was created.", "priority": 0}));
    }
    cols
}

pub fn row(rt: &ResourceType, obj: &Value, include_object: &str) -> Value {
    let md = obj.get("metadata").cloned().unwrap_or(json!({}));
    let mut cells = vec![md.get("name").cloned().unwrap_or(json!(""))];
    for c in &rt.printer_columns {
        cells.push(cell(obj, c));
    }
    if default_age(rt) {
        cells.push(json!(human_age(
            md.get("creationTimestamp")
                .and_then(Value::as_str)
                .unwrap_or("")
        )));
    }
    let object = match include_object {
        "None" => Value::Null,
        "Object" => obj.clone(),
        _ => {
            let mut m = md.clone();
            if let Some(mm) = m.as_object_mut() {
                mm.remove("managedFields");
            }
            json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": m})
        }
    };
    let mut r = json!({"cells": cells});
    if !object.is_null() {
        r["object"] = object;
    }
    r
}

pub fn table(
    rt: &ResourceType,
    objs: &[&Value],
    rv: &str,
    cont: Option<&str>,
    include_object: &str,
) -> Value {
    let rows: Vec<Value> = objs.iter().map(|o| row(rt, o, include_object)).collect();
    let mut md = json!({"resourceVersion": rv});
    if let Some(c) = cont {
        md["continue"] = json!(c);
    }
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": md,
        "columnDefinitions": column_definitions(rt),
        "rows": rows
    })
}
