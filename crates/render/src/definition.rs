//! X-Definitions as data.
//!
//! A definition reaches Sailplane in one of two forms, both KubeVela's:
//! - a definition *file*: CUE with a header `name: { type: "component", attributes: {...} }` and a
//!   `template: { ... }` block (what `vela def` and our `definitions/` use);
//! - a definition *object*: `ComponentDefinition` / `TraitDefinition` / … whose
//!   `spec.schematic.cue.template` holds the template text (what the hub stores).
//!
//! [`Definition`] is the common form; it converts from both and back to the object.

use crate::Error;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

pub use oam::DefinitionKind;

/// The workload a component definition produces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkloadType {
    pub api_version: String,
    pub kind: String,
    /// The resource type, `deployments.apps`, that traits' `appliesToWorkloads` name.
    pub type_name: Option<String>,
}

/// One X-Definition of any kind.
#[derive(Clone, Debug, PartialEq)]
pub struct Definition {
    pub kind: DefinitionKind,
    pub name: String,
    pub description: String,
    /// CUE source of the template: the imports, then the fields of the template block.
    pub template: String,
    /// `spec` of the definition object without `schematic`: workload, status, appliesToWorkloads…
    pub attributes: Map<String, Value>,
    pub labels: Map<String, Value>,
    pub annotations: Map<String, Value>,
    /// Where it came from, for error messages: a file name or `namespace/name` on the hub.
    pub origin: String,
    /// For a definition read from a file: where the template's lines are in that file, so that
    /// errors point at the file's lines. `None` for hub objects, whose template text is what
    /// the user wrote.
    pub source_lines: Option<SourceLines>,
}

/// How the lines of [`Definition::template`] map to the definition file `file`: the first
/// `import_lines` lines are the imports, then line `import_lines + 1` of the template is line
/// `first_line` of the file, and so on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceLines {
    pub file: String,
    pub import_lines: usize,
    pub first_line: usize,
}

/// The annotation a definition object made from a file keeps [`SourceLines`] in
/// (`<file>;imports=<n>;line=<n>;template=<digest>`); it is used again only while the template
/// is the one it was made for.
pub const SOURCE_ANNOTATION: &str = "definition.sailplane.dev/source";

fn template_digest(template: &str) -> String {
    hex::encode(&Sha256::digest(template.as_bytes())[..8])
}

impl SourceLines {
    fn annotation(&self, template: &str) -> String {
        format!(
            "{};imports={};line={};template={}",
            self.file,
            self.import_lines,
            self.first_line,
            template_digest(template)
        )
    }

    fn from_annotation(value: &str, template: &str) -> Option<SourceLines> {
        let mut parts = value.rsplitn(4, ';');
        let digest = parts.next()?.strip_prefix("template=")?;
        let first_line = parts.next()?.strip_prefix("line=")?.parse().ok()?;
        let import_lines = parts.next()?.strip_prefix("imports=")?.parse().ok()?;
        let file = parts.next()?.to_string();
        (digest == template_digest(template) && !file.is_empty()).then_some(SourceLines {
            file,
            import_lines,
            first_line,
        })
    }
}

impl SourceLines {
    /// The file's line of the template's line `line` (1-based); imports keep theirs unknown.
    pub fn file_line(&self, line: usize) -> Option<usize> {
        (line > self.import_lines).then(|| self.first_line + (line - self.import_lines - 1))
    }
}

/// The annotation KubeVela keeps a definition's description in.
pub const DESCRIPTION_ANNOTATION: &str = "definition.oam.dev/description";

impl Definition {
    /// Parse a KubeVela-style definition file.
    pub fn from_cue_file(file: &str, source: &str) -> Result<Definition, Error> {
        let bad = |message: String| Error::DefinitionFile {
            file: file.to_string(),
            message,
        };
        let parts = split_definition_file(file, source)?;
        // The header is plain CUE: evaluate it alone (the template refers to `context`, which
        // only exists at render time).
        let header_src = format!("{}\n{}", parts.imports, parts.header);
        let runtime = crate::stdlib::runtime();
        let header = runtime
            .compile(file, &header_src)
            .and_then(|p| p.eval())
            .and_then(|v| {
                v.lookup(&parts.name)
                    .ok_or_else(|| cue::Error::new("definition header is missing"))?
                    .to_json()
            })
            .map_err(|e| bad(format!("header {:?}: {e}", parts.name)))?;
        let header = header
            .as_object()
            .ok_or_else(|| bad(format!("header {:?} must be a struct", parts.name)))?;
        let type_ = header
            .get("type")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                bad(format!(
                    "header {:?} needs `type: \"component\" | \"trait\" | \"policy\" | \"workflow-step\"`",
                    parts.name
                ))
            })?;
        let kind = DefinitionKind::ALL.into_iter().find(|k| k.short_name() == type_).ok_or_else(|| {
            bad(format!(
                "{}.type: {type_:?} is not one of \"component\", \"trait\", \"policy\", \"workflow-step\"",
                parts.name
            ))
        })?;
        let object_map = |key: &str| -> Map<String, Value> {
            header
                .get(key)
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default()
        };
        let template = if parts.imports.is_empty() {
            dedent(&parts.template)
        } else {
            format!("{}\n{}", parts.imports.trim_end(), dedent(&parts.template))
        };
        let import_lines = if parts.imports.is_empty() {
            0
        } else {
            parts.imports.trim_end().lines().count()
        };
        Ok(Definition {
            kind,
            name: parts.name,
            description: header
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            template,
            attributes: object_map("attributes"),
            labels: object_map("labels"),
            annotations: object_map("annotations"),
            origin: file.to_string(),
            source_lines: Some(SourceLines {
                file: file.to_string(),
                import_lines,
                first_line: parts.template_first_line,
            }),
        })
    }

    /// Read a definition object (`ComponentDefinition`, … as JSON).
    pub fn from_object(object: &Value) -> Result<Definition, Error> {
        let name = object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let namespace = object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let origin = if namespace.is_empty() {
            name.clone()
        } else {
            format!("{namespace}/{name}")
        };
        let bad = |message: String| Error::DefinitionFile {
            file: origin.clone(),
            message,
        };
        let kind_name = object.get("kind").and_then(Value::as_str).unwrap_or("");
        let kind = DefinitionKind::from_kind_name(kind_name)
            .ok_or_else(|| bad(format!("kind {kind_name:?} is not a definition kind")))?;
        if name.is_empty() {
            return Err(bad("metadata.name is empty".into()));
        }
        let mut attributes = object
            .get("spec")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let template = attributes
            .remove("schematic")
            .and_then(|s| s.pointer("/cue/template").cloned())
            .and_then(|t| t.as_str().map(str::to_string))
            .ok_or_else(|| {
                bad(format!(
                    "{kind_name} {name:?} has no spec.schematic.cue.template (only CUE schematics are supported)"
                ))
            })?;
        let meta_map = |key: &str| -> Map<String, Value> {
            object
                .pointer(&format!("/metadata/{key}"))
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default()
        };
        let annotations = meta_map("annotations");
        let source_lines = annotations
            .get(SOURCE_ANNOTATION)
            .and_then(Value::as_str)
            .and_then(|a| SourceLines::from_annotation(a, &template));
        Ok(Definition {
            kind,
            description: annotations
                .get(DESCRIPTION_ANNOTATION)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            name,
            template,
            attributes,
            labels: meta_map("labels"),
            annotations,
            origin,
            source_lines,
        })
    }

    /// The definition object as KubeVela stores it.
    pub fn to_object(&self, namespace: &str) -> Value {
        let mut annotations = self.annotations.clone();
        annotations.remove(SOURCE_ANNOTATION);
        if let Some(lines) = &self.source_lines {
            annotations.insert(
                SOURCE_ANNOTATION.into(),
                json!(lines.annotation(&self.template)),
            );
        }
        if !self.description.is_empty() {
            annotations.insert(DESCRIPTION_ANNOTATION.into(), json!(self.description));
        }
        let mut spec = self.attributes.clone();
        spec.insert(
            "schematic".into(),
            json!({ "cue": { "template": self.template } }),
        );
        let mut metadata = Map::new();
        metadata.insert("name".into(), json!(self.name));
        metadata.insert("namespace".into(), json!(namespace));
        if !annotations.is_empty() {
            metadata.insert("annotations".into(), Value::Object(annotations));
        }
        if !self.labels.is_empty() {
            metadata.insert("labels".into(), Value::Object(self.labels.clone()));
        }
        json!({
            "apiVersion": "core.oam.dev/v1beta1",
            "kind": self.kind.kind_name(),
            "metadata": metadata,
            "spec": spec,
        })
    }

    /// A digest of everything that changes what the definition renders: two definitions with the
    /// same revision hash render the same objects.
    pub fn revision_hash(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.kind.short_name());
        h.update([0]);
        h.update(&self.name);
        h.update([0]);
        h.update(&self.template);
        h.update([0]);
        h.update(Value::Object(self.attributes.clone()).to_string());
        hex::encode(&h.finalize()[..8])
    }

    /// The workload a component definition declares.
    pub fn workload(&self) -> Option<WorkloadType> {
        let w = self.attributes.get("workload")?;
        let def = w.get("definition");
        let api_version = def
            .and_then(|d| d.get("apiVersion"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        let kind = def
            .and_then(|d| d.get("kind"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        let type_name = w.get("type").and_then(Value::as_str).map(str::to_string);
        if api_version.is_empty() && kind.is_empty() && type_name.is_none() {
            return None;
        }
        Some(WorkloadType {
            api_version: api_version.to_string(),
            kind: kind.to_string(),
            type_name,
        })
    }

    fn status_text(&self, key: &str) -> Option<&str> {
        self.attributes
            .get("status")?
            .get(key)?
            .as_str()
            .filter(|s| !s.trim().is_empty())
    }

    /// `status.healthPolicy`: CUE that sets `isHealth`.
    pub fn health_policy(&self) -> Option<&str> {
        self.status_text("healthPolicy")
    }

    /// `status.customStatus`: CUE that sets `message`.
    pub fn custom_status(&self) -> Option<&str> {
        self.status_text("customStatus")
    }

    /// `status.details`: CUE whose fields become the status details.
    pub fn details(&self) -> Option<&str> {
        self.status_text("details")
    }

    /// `appliesToWorkloads` of a trait; empty means any.
    pub fn applies_to_workloads(&self) -> Vec<String> {
        self.string_list("appliesToWorkloads")
    }

    /// `conflictsWith` of a trait.
    pub fn conflicts_with(&self) -> Vec<String> {
        self.string_list("conflictsWith")
    }

    fn string_list(&self, key: &str) -> Vec<String> {
        self.attributes
            .get(key)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The pieces of a definition file, as source text.
struct FileParts {
    imports: String,
    name: String,
    header: String,
    template: String,
    /// Line (1-based) of the template's first line with content, in the file.
    template_first_line: usize,
}

/// Find the header field and the `template` block of a definition file by its syntax tree, and
/// cut their source text out.
fn split_definition_file(file: &str, source: &str) -> Result<FileParts, Error> {
    use cue::ast::{Decl, Label, Span};
    let bad = |message: String| Error::DefinitionFile {
        file: file.to_string(),
        message,
    };
    let ast = cue::parse(file, source).map_err(|e| bad(e.to_string()))?;
    let slice = |span: Span| -> Result<&str, Error> {
        source
            .get(span.start as usize..span.end as usize)
            .ok_or_else(|| bad("internal: span outside the source".into()))
    };
    let mut imports = String::new();
    for imp in &ast.imports {
        match &imp.name {
            Some(n) => imports.push_str(&format!("import {n} {:?}\n", imp.path)),
            None => imports.push_str(&format!("import {:?}\n", imp.path)),
        }
    }
    let mut header: Option<(String, String)> = None;
    let mut template = None;
    let mut template_first_line = 1;
    for decl in &ast.body.decls {
        let Decl::Field(f) = decl else {
            return Err(bad(
                "expected only `<name>: {...}` and `template: {...}` at the top level".into(),
            ));
        };
        let label = match &f.label {
            Label::Ident(n, _) | Label::Str(n, _) => n.clone(),
            _ => return Err(bad("top-level labels must be plain names".into())),
        };
        if label == "template" {
            if template.is_some() {
                return Err(bad("more than one `template` block".into()));
            }
            let body = slice(f.value.span)?.trim();
            let inner = body
                .strip_prefix('{')
                .and_then(|b| b.strip_suffix('}'))
                .ok_or_else(|| bad("`template` must be a struct `{ ... }`".into()))?;
            template = Some(inner.to_string());
            // The first character with content after the opening brace.
            let open = f.value.span.start as usize
                + source[f.value.span.start as usize..].find('{').unwrap_or(0);
            let content = source
                .get(open + 1..)
                .and_then(|rest| rest.find(|c: char| !c.is_whitespace()))
                .map_or(open, |i| open + 1 + i);
            template_first_line = source
                .get(..content)
                .map_or(1, |b| b.matches('\n').count() + 1);
        } else {
            if let Some((other, _)) = &header {
                return Err(bad(format!(
                    "expected one definition header and a `template`, found {other:?} and {label:?}"
                )));
            }
            header = Some((label, slice(f.span)?.to_string()));
        }
    }
    let (name, header) = header.ok_or_else(|| {
        bad("no definition header: expected `<name>: { type: \"component\", ... }`".into())
    })?;
    let template = template.ok_or_else(|| bad(format!("{name:?} has no `template: {{ ... }}`")))?;
    Ok(FileParts {
        imports,
        name,
        header,
        template,
        template_first_line,
    })
}

/// Remove the common leading indentation of a block cut out of a file.
fn dedent(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let indent = lines
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    let mut out = String::with_capacity(text.len());
    for l in lines {
        if l.trim().is_empty() {
            out.push('\n');
        } else {
            out.push_str(l.get(indent..).unwrap_or(l));
            out.push('\n');
        }
    }
    out.trim_matches('\n').to_string() + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCALER: &str = r#"
import "strings"

scaler: {
	type: "trait"
	description: "Scales"
	attributes: {
		podDisruptive: false
		appliesToWorkloads: ["deployments.apps"]
	}
}
template: {
	parameter: replicas: *1 | int
	// +patchStrategy=retainKeys
	patch: spec: replicas: parameter.replicas
}
"#;

    #[test]
    fn parses_a_definition_file() {
        let d = Definition::from_cue_file("scaler.cue", SCALER).expect("parse");
        assert_eq!(d.kind, DefinitionKind::Trait);
        assert_eq!(d.name, "scaler");
        assert_eq!(d.description, "Scales");
        assert_eq!(d.applies_to_workloads(), vec!["deployments.apps"]);
        assert!(
            d.template.starts_with("import \"strings\"\n"),
            "{}",
            d.template
        );
        assert!(
            d.template
                .contains("patch: spec: replicas: parameter.replicas")
        );
        // round trip through the object form
        let back = Definition::from_object(&d.to_object("vela-system")).expect("object");
        assert_eq!(back.template, d.template);
        assert_eq!(back.revision_hash(), d.revision_hash());
    }

    #[test]
    fn source_lines_survive_the_object_form_while_the_template_is_the_same() {
        let d = Definition::from_cue_file("defs/scaler.cue", SCALER).expect("parse");
        let lines = d.source_lines.clone().expect("lines");
        assert_eq!((lines.import_lines, lines.first_line), (1, 13));
        // Template line 2 (after the import) is `parameter: replicas: ...`, line 13 of the file.
        assert_eq!(lines.file_line(2), Some(13));
        assert_eq!(lines.file_line(1), None);
        let object = d.to_object("vela-system");
        let back = Definition::from_object(&object).expect("object");
        assert_eq!(back.source_lines, d.source_lines);
        // An edited template on the hub no longer matches the file.
        let mut edited = object.clone();
        edited["spec"]["schematic"]["cue"]["template"] = json!("parameter: replicas: int\n");
        let back = Definition::from_object(&edited).expect("object");
        assert_eq!(back.source_lines, None);
        assert!(
            back.to_object("vela-system")
                .pointer("/metadata/annotations/definition.sailplane.dev~1source")
                .is_none()
        );
    }

    #[test]
    fn reports_a_missing_template() {
        let err = Definition::from_cue_file("x.cue", "x: {type: \"trait\"}\n").unwrap_err();
        assert!(err.to_string().contains("x.cue"), "{err}");
        assert!(err.to_string().contains("template"), "{err}");
    }

    #[test]
    fn reports_an_unknown_type() {
        let err = Definition::from_cue_file("x.cue", "x: {type: \"widget\"}\ntemplate: {}\n")
            .unwrap_err();
        assert!(err.to_string().contains("\"widget\""), "{err}");
    }
}
