//! The crate's single error type: a message, the field path it concerns, and source positions.

use std::fmt;

/// A source position (1-based line and column).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Pos {
    pub file: String,
    pub line: u32,
    pub col: u32,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.col)
    }
}

/// The error of every fallible operation in this crate.
#[derive(Debug, Clone, thiserror::Error)]
pub struct Error {
    message: String,
    path: String,
    positions: Vec<Pos>,
    incomplete: bool,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        write!(f, "{}", self.message)?;
        for (i, p) in self.positions.iter().enumerate() {
            if i == 0 {
                write!(f, " at {p}")?;
            } else {
                write!(f, " and {p}")?;
            }
        }
        Ok(())
    }
}

impl Error {
    pub fn new(message: impl Into<String>) -> Error {
        Error {
            message: message.into(),
            path: String::new(),
            positions: Vec::new(),
            incomplete: false,
        }
    }
    pub(crate) fn full(
        message: String,
        path: String,
        positions: Vec<Pos>,
        incomplete: bool,
    ) -> Error {
        Error {
            message,
            path,
            positions,
            incomplete,
        }
    }
    pub fn with_path(mut self, path: impl Into<String>) -> Error {
        self.path = path.into();
        self
    }
    pub fn with_pos(mut self, pos: Pos) -> Error {
        if !self.positions.contains(&pos) {
            self.positions.push(pos);
        }
        self
    }
    pub fn message(&self) -> &str {
        &self.message
    }
    pub fn path(&self) -> &str {
        &self.path
    }
    pub fn positions(&self) -> &[Pos] {
        &self.positions
    }
    /// True when the error only says a value is not (yet) concrete or a field is missing.
    pub fn is_incomplete(&self) -> bool {
        self.incomplete
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_has_path_and_positions() {
        let e = Error::new("conflicting values")
            .with_path("a.b")
            .with_pos(Pos {
                file: "x.cue".into(),
                line: 1,
                col: 2,
            })
            .with_pos(Pos {
                file: "y".into(),
                line: 3,
                col: 4,
            });
        assert_eq!(
            e.to_string(),
            "a.b: conflicting values at x.cue:1:2 and y:3:4"
        );
        assert!(!e.is_incomplete());
    }
}
