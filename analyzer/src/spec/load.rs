//! Entry points: load contracts from a file, a directory or a string.
//!
//! ```text
//! path ─► read (size cap) ─► parse YAML/JSON ─► dialect ─► read $ref'd files
//!      ─► servers, security schemes, operations (schemas, refs) ─► Contract
//! ```
//!
//! Dialects are told apart by the top-level `swagger` (`2.0`) or `openapi`
//! (`3.0.x`, `3.1.x`) key; any other version is an error. 3.1 `webhooks`
//! and 3.x `callbacks` are not read. See the sibling modules for what is
//! kept of servers, operations, schemas and security.

use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::document::{parse, read_file, utf8};
use super::limits::{MAX_DIR_DEPTH, MAX_DIR_FILES};
use super::operations::Operations;
use super::refs::{Docs, Node};
use super::{security, servers};
use super::{Contract, SpecDialect, SpecError};

/// Loads the contract in a file, or every contract in a directory.
///
/// A file is YAML or JSON, told apart by its content; it must be a
/// contract. A directory is walked recursively (symbolic links to
/// directories are not followed) for `*.yaml`, `*.yml` and `*.json`
/// files, in path order; files without a top-level `openapi` or `swagger`
/// key (shared schema files, other configuration) are skipped with a
/// warning, and any other error stops the load.
pub fn load_path(path: &Path) -> Result<Vec<Contract>, SpecError> {
    let name = path.display().to_string();
    let metadata = std::fs::metadata(path).map_err(|source| SpecError::Io {
        file: name.clone(),
        source,
    })?;
    if !metadata.is_dir() {
        return Ok(vec![load_file(path)?]);
    }
    let mut files = Vec::new();
    walk(path, 0, &mut files)?;
    files.sort();
    let mut contracts = Vec::new();
    for file in files {
        match load_file(&file) {
            Ok(contract) => contracts.push(contract),
            Err(SpecError::NotAContract { file }) => {
                tracing::warn!(%file, "Skipping a file that is not an API contract.");
            }
            Err(error) => return Err(error),
        }
    }
    Ok(contracts)
}

/// Loads a contract from text. `file` is the name errors and
/// [`Contract::file`] use. References to other files cannot be resolved
/// and are errors when followed.
pub fn load_str(file: &str, text: &str) -> Result<Contract, SpecError> {
    let root = parse(file, text)?;
    build(Docs::new(file, None, root), text.as_bytes())
}

fn load_file(path: &Path) -> Result<Contract, SpecError> {
    let name = path.display().to_string();
    let bytes = read_file(&name, path)?;
    let root = parse(&name, utf8(&name, &bytes)?)?;
    let dir = path.parent().map(Path::to_path_buf);
    let mut docs = Docs::new(&name, dir, root);
    docs.set_main_path(path);
    docs.load_referenced();
    build(docs, &bytes)
}

fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) -> Result<(), SpecError> {
    let io = |source| SpecError::Io {
        file: dir.display().to_string(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let path = entry.path();
        let kind = entry.file_type().map_err(io)?;
        if kind.is_dir() {
            if depth < MAX_DIR_DEPTH {
                walk(&path, depth + 1, out)?;
            }
            continue;
        }
        let wanted = path.extension().and_then(|e| e.to_str()).is_some_and(|e| {
            ["yaml", "yml", "json"]
                .iter()
                .any(|w| e.eq_ignore_ascii_case(w))
        });
        if wanted && path.is_file() {
            if out.len() >= MAX_DIR_FILES {
                return Err(SpecError::invalid(
                    &dir.display().to_string(),
                    "",
                    format!("more than {MAX_DIR_FILES} candidate files in the directory"),
                ));
            }
            out.push(path);
        }
    }
    Ok(())
}

fn build(docs: Docs, bytes: &[u8]) -> Result<Contract, SpecError> {
    let root = docs.root();
    let file = docs.name(0).to_owned();
    if !root.value.is_object() {
        return Err(SpecError::NotAContract { file });
    }
    let (spec_version, dialect) = dialect(&docs, &root)?;
    let (title, version) = info(&docs, &root)?;
    let servers = match dialect {
        SpecDialect::Swagger2 => servers::servers_2(&docs, &root)?,
        SpecDialect::OpenApi30 | SpecDialect::OpenApi31 => servers::servers_3x(&docs, &root)?,
    };
    let security_schemes = security::schemes(&docs, &root, dialect)?;
    let operations = Operations::new(&docs, dialect, &root)?.build(&root)?;
    Ok(Contract {
        file,
        spec_version,
        dialect,
        title,
        version,
        sha256: hex_sha256(bytes),
        servers,
        operations,
        security_schemes,
    })
}

/// The version field and the dialect it names.
fn dialect(docs: &Docs, root: &Node<'_>) -> Result<(String, SpecDialect), SpecError> {
    let (node, key) = match (root.get("openapi"), root.get("swagger")) {
        (Some(node), _) => (node, "openapi"),
        (None, Some(node)) => (node, "swagger"),
        (None, None) => {
            return Err(SpecError::NotAContract {
                file: docs.name(0).to_owned(),
            })
        }
    };
    // YAML reads an unquoted `3.1` or `2.0` as a number.
    let version = match node.value {
        Value::String(s) => s.trim().to_owned(),
        Value::Number(n) => n.to_string(),
        _ => return Err(docs.expected(&node, "a version string")),
    };
    let minor = |prefix: &str| {
        version == prefix
            || version
                .strip_prefix(prefix)
                .and_then(|rest| rest.strip_prefix('.'))
                .is_some_and(|patch| !patch.is_empty())
    };
    let dialect = match key {
        "swagger" if version == "2.0" => SpecDialect::Swagger2,
        "openapi" if minor("3.0") => SpecDialect::OpenApi30,
        "openapi" if minor("3.1") => SpecDialect::OpenApi31,
        "swagger" => {
            let message = format!("unsupported Swagger version `{version}` (supported: 2.0)");
            return Err(docs.invalid(&node, message));
        }
        _ => {
            let message =
                format!("unsupported OpenAPI version `{version}` (supported: 3.0.x, 3.1.x)");
            return Err(docs.invalid(&node, message));
        }
    };
    Ok((version, dialect))
}

/// `info.title` and `info.version`; empty when absent.
fn info(docs: &Docs, root: &Node<'_>) -> Result<(String, String), SpecError> {
    let Some(info) = root.get("info") else {
        return Ok((String::new(), String::new()));
    };
    docs.map(&info)?;
    let title = docs.string(&info, "title")?.unwrap_or("").to_owned();
    let version = match info.get("version") {
        None => String::new(),
        Some(node) => match node.value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => return Err(docs.expected(&node, "a string")),
        },
    };
    Ok((title, version))
}

fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
