//! Reading OAM objects from YAML with errors that name the file, the document, the line and
//! the field, and say what was expected.

use kube::Resource;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{DecodeError, Error};
use crate::{
    Application, ApplicationRevision, ComponentDefinition, DefinitionRevision, Policy,
    PolicyDefinition, ResourceTracker, TraitDefinition, Workflow, WorkflowStepDefinition,
};

/// One document of a multi-document YAML text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlDocument {
    /// 1-based index among the non-empty documents of the file.
    pub index: usize,
    /// 1-based line of the file where the document's text starts.
    pub first_line: usize,
    /// The document's text; line `n` of it is line `first_line + n - 1` of the file.
    pub text: String,
}

/// Splits a YAML stream into its non-empty documents (`---` / `...` markers at column 0),
/// keeping line numbers. Documents holding only comments or blank lines are dropped.
pub fn split_documents(text: &str) -> Vec<YamlDocument> {
    let mut docs = Vec::new();
    let mut current = String::new();
    let mut first_line = 1;
    let flush = |current: &mut String, first_line: usize, docs: &mut Vec<YamlDocument>| {
        let has_content = current.lines().any(|l| {
            let t = l.trim();
            !t.is_empty() && !t.starts_with('#')
        });
        if has_content {
            docs.push(YamlDocument {
                index: docs.len() + 1,
                first_line,
                text: std::mem::take(current),
            });
        } else {
            current.clear();
        }
    };
    for (i, raw) in text.split_inclusive('\n').enumerate() {
        let line_no = i + 1;
        let line = raw.trim_end_matches(['\n', '\r']);
        let marker = |m: &str| {
            line == m
                || line
                    .strip_prefix(m)
                    .is_some_and(|rest| rest.starts_with([' ', '\t']))
        };
        if marker("---") {
            flush(&mut current, first_line, &mut docs);
            first_line = line_no;
            // keep what follows the marker (`--- |`, `--- !tag`) at the same columns
            current.push_str("   ");
            current.push_str(&raw[3..]);
        } else if marker("...") {
            flush(&mut current, first_line, &mut docs);
            first_line = line_no + 1;
        } else if line.starts_with('%') && current.trim().is_empty() {
            // a directive (`%YAML 1.2`) before a document: keep the line count, drop the text
            current.push('\n');
        } else {
            if current.is_empty() {
                first_line = line_no;
            }
            current.push_str(raw);
        }
    }
    flush(&mut current, first_line, &mut docs);
    docs
}

/// `apiVersion` and `kind` of a decoded document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeMeta {
    pub api_version: String,
    pub kind: String,
}

/// Reads one document into a JSON value; syntax errors name the file, document and line.
pub fn document_value(file: &str, doc: &YamlDocument) -> Result<Value, Error> {
    serde_saphyr::from_str::<Value>(&doc.text).map_err(|e| saphyr_error(file, doc, None, &e))
}

/// The `apiVersion` and `kind` of a document (both required).
pub fn type_meta(file: &str, doc: &YamlDocument, value: &Value) -> Result<TypeMeta, Error> {
    let Some(obj) = value.as_object() else {
        return Err(decode_error(
            file,
            doc,
            None,
            format!(
                "expected a Kubernetes object (a YAML mapping with apiVersion, kind, metadata), found {}",
                describe(value)
            ),
        ));
    };
    let field = |name: &str| -> Result<String, Error> {
        match obj.get(name) {
            Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            Some(Value::String(_)) | None | Some(Value::Null) => Err(decode_error(
                file,
                doc,
                Some(name.to_string()),
                format!("missing `{name}`: every object needs apiVersion and kind"),
            )),
            Some(other) => Err(decode_error(
                file,
                doc,
                Some(name.to_string()),
                format!("expected a string, found {}", describe(other)),
            )),
        }
    };
    Ok(TypeMeta {
        api_version: field("apiVersion")?,
        kind: field("kind")?,
    })
}

/// Decodes every document of `text` as a `T`, checking `apiVersion` and `kind`, rejecting
/// fields `T` does not have (like `kubectl --validate=strict`).
pub fn parse_yaml<T>(file: &str, text: &str) -> Result<Vec<T>, Error>
where
    T: Resource<DynamicType = ()> + DeserializeOwned + serde::Serialize + schemars::JsonSchema,
{
    let mut out = Vec::new();
    for doc in split_documents(text) {
        let value = document_value(file, &doc)?;
        let tm = type_meta(file, &doc, &value)?;
        check_type::<T>(file, &doc, &tm)?;
        out.push(decode_document::<T>(file, &doc, &value)?);
    }
    Ok(out)
}

/// Decodes the Applications of a (multi-document) YAML file. Every document must be an
/// `core.oam.dev/v1beta1` Application.
pub fn parse_application_yaml(file: &str, text: &str) -> Result<Vec<Application>, Error> {
    parse_yaml::<Application>(file, text)
}

/// Decodes one Application from YAML (the text must hold exactly one document).
pub fn parse_application(file: &str, text: &str) -> Result<Application, Error> {
    let mut apps = parse_application_yaml(file, text)?;
    match apps.len() {
        1 => Ok(apps.remove(0)),
        n => Err(Error::from(DecodeError {
            file: file.to_string(),
            document: n.min(2),
            line: None,
            column: None,
            field: None,
            message: format!("expected exactly one Application document, found {n}"),
            snippet: None,
        })),
    }
}

/// Any object a Sailplane YAML file may hold.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)]
pub enum OamObject {
    Application(Application),
    ComponentDefinition(ComponentDefinition),
    TraitDefinition(TraitDefinition),
    PolicyDefinition(PolicyDefinition),
    WorkflowStepDefinition(WorkflowStepDefinition),
    Workflow(Workflow),
    Policy(Policy),
    ApplicationRevision(ApplicationRevision),
    DefinitionRevision(DefinitionRevision),
    ResourceTracker(ResourceTracker),
    /// Any other Kubernetes object, kept as it is.
    Other {
        type_meta: TypeMeta,
        value: Value,
    },
}

impl OamObject {
    /// The object's kind.
    pub fn kind(&self) -> &str {
        match self {
            OamObject::Application(_) => "Application",
            OamObject::ComponentDefinition(_) => "ComponentDefinition",
            OamObject::TraitDefinition(_) => "TraitDefinition",
            OamObject::PolicyDefinition(_) => "PolicyDefinition",
            OamObject::WorkflowStepDefinition(_) => "WorkflowStepDefinition",
            OamObject::Workflow(_) => "Workflow",
            OamObject::Policy(_) => "Policy",
            OamObject::ApplicationRevision(_) => "ApplicationRevision",
            OamObject::DefinitionRevision(_) => "DefinitionRevision",
            OamObject::ResourceTracker(_) => "ResourceTracker",
            OamObject::Other { type_meta, .. } => &type_meta.kind,
        }
    }
}

/// Decodes a (multi-document) YAML file of mixed objects: OAM kinds become typed values,
/// anything else is kept as [`OamObject::Other`].
pub fn parse_objects_yaml(file: &str, text: &str) -> Result<Vec<OamObject>, Error> {
    let mut out = Vec::new();
    for doc in split_documents(text) {
        let value = document_value(file, &doc)?;
        let tm = type_meta(file, &doc, &value)?;
        let group = tm.api_version.split_once('/').map(|(g, _)| g);
        let obj = if group != Some(crate::GROUP) {
            OamObject::Other {
                type_meta: tm,
                value,
            }
        } else {
            macro_rules! typed {
                ($($t:ident),*) => {
                    match tm.kind.as_str() {
                        $(stringify!($t) => {
                            check_type::<$t>(file, &doc, &tm)?;
                            OamObject::$t(decode_document::<$t>(file, &doc, &value)?)
                        })*
                        _ => OamObject::Other { type_meta: tm, value },
                    }
                };
            }
            typed!(
                Application,
                ComponentDefinition,
                TraitDefinition,
                PolicyDefinition,
                WorkflowStepDefinition,
                Workflow,
                Policy,
                ApplicationRevision,
                DefinitionRevision,
                ResourceTracker
            )
        };
        out.push(obj);
    }
    Ok(out)
}

fn check_type<T: Resource<DynamicType = ()>>(
    file: &str,
    doc: &YamlDocument,
    tm: &TypeMeta,
) -> Result<(), Error> {
    let kind = T::kind(&());
    let api_version = T::api_version(&());
    if tm.kind != kind || tm.api_version != api_version {
        return Err(Error::UnexpectedKind {
            file: file.to_string(),
            document: doc.index,
            line: Some(doc.first_line),
            expected: format!("kind {kind} (apiVersion {api_version})"),
            found: format!("kind {} (apiVersion {})", tm.kind, tm.api_version),
        });
    }
    Ok(())
}

/// Decodes one document as `T`: type errors carry line, column and field path; fields `T`
/// does not know are rejected.
fn decode_document<T>(file: &str, doc: &YamlDocument, value: &Value) -> Result<T, Error>
where
    T: DeserializeOwned + serde::Serialize + schemars::JsonSchema,
{
    let mut path = None;
    let decoded: Result<T, serde_saphyr::Error> =
        serde_saphyr::with_deserializer_from_str(&doc.text, |de| {
            serde_path_to_error::deserialize(de).map_err(|e| {
                path = Some(e.path().to_string());
                e.into_inner()
            })
        });
    let obj = decoded.map_err(|e| saphyr_error(file, doc, path.as_deref(), &e))?;
    // Anything the type dropped is a field it does not have.
    let round = serde_json::to_value(&obj).map_err(|e| Error::Serialize {
        what: "decoded object".into(),
        message: e.to_string(),
    })?;
    // `status` is what a controller wrote, maybe a newer one: only the intent is checked.
    let intent = |v: &Value| match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| k.as_str() != "status")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        other => other.clone(),
    };
    if let Some((field, key)) = first_unknown_field(&intent(value), &intent(&round), String::new())
    {
        let known = known_fields::<T>(&field);
        let mut message = format!("unknown field `{key}`");
        if !known.is_empty() {
            message.push_str(&format!(", expected one of: {}", known.join(", ")));
        }
        let full = join_path(&field, &key);
        let line = find_key_line(&doc.text, &key).map(|l| l + doc.first_line - 1);
        return Err(Error::from(DecodeError {
            file: file.to_string(),
            document: doc.index,
            line,
            column: None,
            field: Some(full),
            message,
            snippet: None,
        }));
    }
    Ok(obj)
}

fn join_path(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

fn is_empty_value(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::Number(n) => n.as_f64() == Some(0.0),
    }
}

/// The first key present (with a non-empty value) in `input` but not in `output`.
fn first_unknown_field(input: &Value, output: &Value, path: String) -> Option<(String, String)> {
    match (input, output) {
        (Value::Object(i), Value::Object(o)) => {
            for (k, iv) in i {
                match o.get(k) {
                    None if !is_empty_value(iv) => return Some((path, k.clone())),
                    None => {}
                    Some(ov) => {
                        if let Some(found) = first_unknown_field(iv, ov, join_path(&path, k)) {
                            return Some(found);
                        }
                    }
                }
            }
            None
        }
        (Value::Array(i), Value::Array(o)) if i.len() == o.len() => i
            .iter()
            .zip(o)
            .enumerate()
            .find_map(|(n, (iv, ov))| first_unknown_field(iv, ov, format!("{path}[{n}]"))),
        _ => None,
    }
}

/// Field names the schema of `T` allows at `path` (dotted, with `[n]` indexes).
fn known_fields<T: schemars::JsonSchema>(path: &str) -> Vec<String> {
    let generator = schemars::generate::SchemaSettings::openapi3()
        .with(|s| s.inline_subschemas = true)
        .into_generator();
    let schema = generator.into_root_schema_for::<T>();
    let mut node: &Value = schema.as_value();
    for seg in path_segments(path) {
        let next = match seg {
            Seg::Key(k) => node
                .get("properties")
                .and_then(|p| p.get(k))
                .or_else(|| node.get("additionalProperties")),
            Seg::Index => node.get("items"),
        };
        match next {
            Some(n) => node = unwrap_nullable(n),
            None => return Vec::new(),
        }
    }
    let mut names: Vec<String> = node
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default();
    if path.is_empty() {
        for k in ["apiVersion", "kind", "metadata"] {
            names.insert(0, k.to_string());
        }
        names.dedup();
    }
    names
}

/// `anyOf: [T, null]` as schemars writes options: the `T`.
fn unwrap_nullable(v: &Value) -> &Value {
    v.get("anyOf")
        .and_then(Value::as_array)
        .and_then(|a| {
            a.iter()
                .find(|s| s.get("type") != Some(&Value::from("null")))
        })
        .unwrap_or(v)
}

enum Seg<'a> {
    Key(&'a str),
    Index,
}

fn path_segments(path: &str) -> Vec<Seg<'_>> {
    let mut out = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (key, rest) = part.split_once('[').map_or((part, ""), |(k, r)| (k, r));
        if !key.is_empty() {
            out.push(Seg::Key(key));
        }
        for _ in rest.matches(']') {
            out.push(Seg::Index);
        }
    }
    out
}

/// Line (1-based, within `text`) of the first `key:` (or `- key:`).
fn find_key_line(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            let t = l.trim_start().trim_start_matches("- ").trim_start();
            t.strip_prefix(key)
                .or_else(|| t.strip_prefix(&format!("\"{key}\"")))
                .or_else(|| t.strip_prefix(&format!("'{key}'")))
                .is_some_and(|r| r.trim_start().starts_with(':'))
        })
        .map(|i| i + 1)
}

fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) => format!("string {s:?}"),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a map".into(),
    }
}

fn decode_error(file: &str, doc: &YamlDocument, field: Option<String>, message: String) -> Error {
    Error::from(DecodeError {
        file: file.to_string(),
        document: doc.index,
        line: Some(doc.first_line),
        column: None,
        field,
        message,
        snippet: None,
    })
}

/// Turns a serde-saphyr error into [`Error::Decode`] with file-relative positions.
fn saphyr_error(
    file: &str,
    doc: &YamlDocument,
    path: Option<&str>,
    e: &serde_saphyr::Error,
) -> Error {
    let location = e.location();
    let offset = doc.first_line.saturating_sub(1);
    let line = location.map(|l| l.line() as usize + offset);
    let column = location.map(|l| l.column() as usize);
    let raw = e.without_snippet().to_string();
    let mut message = clean_message(&raw);
    if message.starts_with("expected ")
        && !message.contains("YAML")
        && let Some(found) =
            location.and_then(|l| scalar_at(&doc.text, l.line() as usize, l.column() as usize))
    {
        message.push_str(&format!(", found `{found}`"));
    }
    let mut field = path
        .filter(|p| !p.is_empty() && *p != ".")
        .map(str::to_string);
    // "missing field `type`" is reported at the containing map: name the field itself.
    if let Some(missing) = message
        .strip_prefix("missing field `")
        .and_then(|r| r.split_once('`'))
        .map(|(m, _)| m)
    {
        field = Some(match field {
            Some(p) => format!("{p}.{missing}"),
            None => missing.to_string(),
        });
    }
    let mut options = serde_saphyr::RenderOptions::default();
    options.source_name = Some(file);
    options.line_offset = offset as u64;
    let snippet = Some(e.render_with_options(options));
    Error::from(DecodeError {
        file: file.to_string(),
        document: doc.index,
        line,
        column,
        field,
        message,
        snippet,
    })
}

/// Strips serde-saphyr's `error: line N column M:` prefix and words its common messages.
fn clean_message(raw: &str) -> String {
    let first = raw.lines().next().unwrap_or(raw).trim();
    let mut msg = first.strip_prefix("error:").unwrap_or(first).trim();
    if let Some(rest) = msg.strip_prefix("line ")
        && let Some((_, after)) = rest.split_once(": ")
        && rest.split(':').next().is_some_and(|p| p.contains("column"))
    {
        msg = after.trim();
    }
    // "... at line 8, column 7" repeats the position we report separately
    if let Some(pos) = msg.rfind(" at line ")
        && msg[pos + 9..].contains(", column ")
    {
        msg = msg[..pos].trim_end();
    }
    match msg {
        "invalid i8" | "invalid i16" | "invalid i32" | "invalid i64" | "invalid i128" => {
            "expected an integer".to_string()
        }
        "invalid u8" | "invalid u16" | "invalid u32" | "invalid u64" | "invalid u128" => {
            "expected a non-negative integer".to_string()
        }
        "invalid f32" | "invalid f64" => "expected a number".to_string(),
        "invalid bool" => "expected a boolean (true or false)".to_string(),
        "expected string scalar" => "expected a string".to_string(),
        "expected sequence start" => "expected a list (YAML sequence)".to_string(),
        "expected mapping start" => "expected a map (YAML mapping)".to_string(),
        other => other.to_string(),
    }
}

/// The text of the scalar starting at `line`/`column` (1-based) of `text`, if it is one.
fn scalar_at(text: &str, line: usize, column: usize) -> Option<String> {
    let l = text.lines().nth(line.checked_sub(1)?)?;
    let rest: String = l.chars().skip(column.checked_sub(1)?).collect();
    let rest = rest.trim();
    if rest.is_empty() || rest.starts_with(['[', '{', '#', '|', '>', '&', '*', '!']) {
        return None;
    }
    let end = rest.find([',', ']', '}', '#']).unwrap_or(rest.len());
    let token = rest[..end].trim();
    (!token.is_empty() && !token.starts_with(':') && token.len() <= 80).then(|| token.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_documents_keeping_lines() {
        let text = "# c\n---\na: 1\n---\n# only a comment\n---\nb: 2\n...\n%YAML 1.2\n---\nc: 3\n";
        let docs = split_documents(text);
        assert_eq!(docs.len(), 3);
        assert_eq!(docs[0].index, 1);
        assert_eq!(docs[0].first_line, 2);
        assert_eq!(docs[1].first_line, 6);
        assert_eq!(docs[2].first_line, 10);
        assert!(docs[2].text.contains("c: 3"));
    }

    #[test]
    fn cleans_messages() {
        assert_eq!(
            clean_message("error: line 8 column 7: missing field `type`"),
            "missing field `type`"
        );
        assert_eq!(clean_message("expected string scalar"), "expected a string");
        assert_eq!(
            clean_message("expected sequence start at line 13, column 11"),
            "expected a list (YAML sequence)"
        );
    }
}
