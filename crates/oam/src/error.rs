//! The one error type of this crate.

use std::fmt;

/// Everything that can go wrong reading, validating or writing OAM objects.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// A YAML document could not be read, or does not fit the type.
    #[error("{0}")]
    Decode(Box<DecodeError>),
    /// A document is of another kind than the one asked for.
    #[error(
        "{file}: document {document}{}: expected {expected}, found {found}",
        format_line(*.line)
    )]
    UnexpectedKind {
        file: String,
        document: usize,
        line: Option<usize>,
        /// e.g. `kind Application (apiVersion core.oam.dev/v1beta1)`.
        expected: String,
        /// What the document says.
        found: String,
    },
    /// An object that decoded but breaks the rules (names, references, …).
    #[error("{}", format_invalid(.kind, .name, .issues))]
    Invalid {
        /// Kind of the object, e.g. `Application`.
        kind: String,
        /// Name of the object (may be empty when that is the problem).
        name: String,
        /// Every problem found.
        issues: Vec<Issue>,
    },
    /// A value (e.g. policy properties) does not fit the expected type.
    #[error("{what}: {}{message}", .field.as_ref().map(|f| format!("{f}: ")).unwrap_or_default())]
    Value {
        /// What was being converted, e.g. `policy "topo" (topology) properties`.
        what: String,
        field: Option<String>,
        message: String,
    },
    /// Serialising failed.
    #[error("cannot serialise {what}: {message}")]
    Serialize { what: String, message: String },
}

/// Where a document could not be decoded, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// Name of the file (as given by the caller).
    pub file: String,
    /// 1-based index of the document in the file (empty documents are not counted).
    pub document: usize,
    /// 1-based line in the file, when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub column: Option<usize>,
    /// Dotted path of the offending field, e.g. `spec.components[0].type`.
    pub field: Option<String>,
    /// What is wrong and what was expected.
    pub message: String,
    /// The source lines around the error, rendered for a terminal, when available.
    pub snippet: Option<String>,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_decode(
            &self.file,
            self.document,
            self.line,
            self.column,
            self.field.as_deref(),
            &self.message,
        ))
    }
}

impl From<DecodeError> for Error {
    fn from(e: DecodeError) -> Self {
        Error::Decode(Box::new(e))
    }
}

/// One validation problem: where and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// Dotted path, e.g. `spec.components[1].dependsOn[0]`.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl Error {
    /// The decode details, if this is [`Error::Decode`].
    pub fn decode(&self) -> Option<&DecodeError> {
        match self {
            Error::Decode(d) => Some(d),
            _ => None,
        }
    }

    /// The validation issues, if this is [`Error::Invalid`].
    pub fn issues(&self) -> &[Issue] {
        match self {
            Error::Invalid { issues, .. } => issues,
            _ => &[],
        }
    }

    /// The field path the error is about, when there is one.
    pub fn field(&self) -> Option<&str> {
        match self {
            Error::Decode(d) => d.field.as_deref(),
            Error::Value { field, .. } => field.as_deref(),
            Error::Invalid { issues, .. } => issues.first().map(|i| i.field.as_str()),
            _ => None,
        }
    }
}

fn format_line(line: Option<usize>) -> String {
    line.map(|l| format!(", line {l}")).unwrap_or_default()
}

fn format_decode(
    file: &str,
    document: usize,
    line: Option<usize>,
    column: Option<usize>,
    field: Option<&str>,
    message: &str,
) -> String {
    let mut out = format!("{file}: document {document}");
    match (line, column) {
        (Some(l), Some(c)) => out.push_str(&format!(", line {l} column {c}")),
        (Some(l), None) => out.push_str(&format!(", line {l}")),
        _ => {}
    }
    out.push_str(": ");
    if let Some(f) = field.filter(|f| !f.is_empty() && *f != ".") {
        out.push_str(&format!("field `{f}`: "));
    }
    out.push_str(message);
    out
}

fn format_invalid(kind: &str, name: &str, issues: &[Issue]) -> String {
    let who = if name.is_empty() {
        format!("{kind} (unnamed)")
    } else {
        format!("{kind} {name:?}")
    };
    match issues {
        [] => format!("{who} is invalid"),
        [one] => format!("{who} is invalid: {one}"),
        many => {
            let mut out = format!("{who} is invalid ({} problems):", many.len());
            for i in many {
                out.push_str(&format!("\n  - {i}"));
            }
            out
        }
    }
}
