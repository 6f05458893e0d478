//! Faults raised while loading a contract.
//!
//! Every [`SpecError`] names the file. Errors about a node of the document
//! also name a JSON pointer to it; syntax errors name a line and column.
//! The `Display` text is meant for humans and is not a stable interface.
//!
//! ```text
//! petstore.yaml: /paths/~1pets/get/responses: expected a mapping, found a string
//! petstore.yaml:12:3: YAML syntax error: did not find expected key at line 12 column 3, …
//! api.json: /openapi: unsupported OpenAPI version `4.0.0` (supported: 3.0.x, 3.1.x)
//! ```

use std::io;

/// A fault while loading a contract.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// The file or directory could not be read.
    #[error("{file}: cannot read: {source}")]
    Io {
        file: String,
        #[source]
        source: io::Error,
    },
    /// The file is larger than [`MAX_FILE_BYTES`](super::MAX_FILE_BYTES).
    #[error("{file}: {size} bytes is more than the limit of {limit} bytes")]
    TooLarge { file: String, size: u64, limit: u64 },
    /// The file is not UTF-8 text.
    #[error("{file}: not UTF-8 text (invalid byte at offset {offset})")]
    NotUtf8 { file: String, offset: usize },
    /// The file is not well-formed YAML or JSON.
    #[error("{file}{}: {format} syntax error: {message}", show_line_column(*.line_column))]
    Syntax {
        file: String,
        /// `YAML` or `JSON`.
        format: &'static str,
        /// 1-based line and column, when the parser knows them.
        line_column: Option<(usize, usize)>,
        message: String,
    },
    /// The document has no top-level `openapi` or `swagger` key.
    #[error("{file}: not an API contract: no top-level `openapi` or `swagger` key")]
    NotAContract { file: String },
    /// A node of the document is not what the specification allows, a
    /// `$ref` cannot be resolved, or a limit was hit there.
    #[error("{file}: {}: {message}", show_pointer(.pointer))]
    Invalid {
        file: String,
        /// JSON pointer to the node, `""` for the document root.
        pointer: String,
        message: String,
    },
}

impl SpecError {
    /// The file the error is about, as the loader was given or found it.
    pub fn file(&self) -> &str {
        match self {
            SpecError::Io { file, .. }
            | SpecError::TooLarge { file, .. }
            | SpecError::NotUtf8 { file, .. }
            | SpecError::Syntax { file, .. }
            | SpecError::NotAContract { file }
            | SpecError::Invalid { file, .. } => file,
        }
    }

    /// The JSON pointer of the offending node, for errors about a node.
    pub fn pointer(&self) -> Option<&str> {
        match self {
            SpecError::Invalid { pointer, .. } => Some(pointer),
            _ => None,
        }
    }

    pub(crate) fn invalid(file: &str, pointer: &str, message: impl Into<String>) -> Self {
        SpecError::Invalid {
            file: file.to_owned(),
            pointer: pointer.to_owned(),
            message: message.into(),
        }
    }
}

fn show_line_column(at: Option<(usize, usize)>) -> String {
    match at {
        Some((line, column)) => format!(":{line}:{column}"),
        None => String::new(),
    }
}

fn show_pointer(pointer: &str) -> &str {
    if pointer.is_empty() {
        "(document root)"
    } else {
        pointer
    }
}
