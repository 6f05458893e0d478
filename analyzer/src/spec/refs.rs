//! The set of documents one contract spans, nodes in them, and `$ref`
//! resolution.
//!
//! A reference is `[file]#[/json/pointer]`. The fragment is percent-decoded,
//! then split on `/`, and each token unescaped (`~1` → `/`, `~0` → `~`).
//! A file part is relative to the directory of the document the reference
//! is in. Every referenced file is found and read once, before conversion
//! starts ([`Docs::load_referenced`]), up to [`MAX_REF_FILES`]; a file that
//! cannot be read is only an error if a reference into it is followed, so
//! a stray `$ref` string in an `example` does not break a contract.
//! Remote (`http:`) references and plain-name fragments (`#foo`, 3.1
//! `$anchor`) are not supported and are errors when followed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::document::{parse, read_file, utf8};
use super::limits::{MAX_REF_CHAIN, MAX_REF_FILES};
use super::SpecError;

/// Appends one escaped reference token to a JSON pointer.
pub(crate) fn push_token(pointer: &mut String, token: &str) {
    pointer.push('/');
    for c in token.chars() {
        match c {
            '~' => pointer.push_str("~0"),
            '/' => pointer.push_str("~1"),
            c => pointer.push(c),
        }
    }
}

/// Decodes `%XX` escapes; malformed escapes stay as they are.
pub(crate) fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    if !bytes.contains(&b'%') {
        return text.to_owned();
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: Option<&u8>| b.and_then(|b| char::from(*b).to_digit(16));
        match (bytes[i], hex(bytes.get(i + 1)), hex(bytes.get(i + 2))) {
            (b'%', Some(hi), Some(lo)) => {
                // Two hex digits are at most 0xff.
                out.push(u8::try_from(hi * 16 + lo).unwrap_or(b'?'));
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One parsed document.
struct Doc {
    /// The name errors use: as given for the main file, the joined path for
    /// referenced ones.
    name: String,
    /// Directory that relative references are resolved against; `None` for
    /// text loaded from memory.
    dir: Option<PathBuf>,
    root: Value,
}

/// The main document (index 0) and the files it references.
pub(crate) struct Docs {
    docs: Vec<Doc>,
    by_path: HashMap<PathBuf, usize>,
    /// Referenced files that could not be loaded, and why.
    failed: HashMap<PathBuf, String>,
}

/// A node in one of the documents, with its JSON pointer.
#[derive(Clone, Debug)]
pub(crate) struct Node<'a> {
    pub(crate) doc: usize,
    pub(crate) pointer: String,
    pub(crate) value: &'a Value,
}

impl<'a> Node<'a> {
    /// The child named `key` of a mapping node, if present.
    pub(crate) fn get(&self, key: &str) -> Option<Node<'a>> {
        let value = self.value.as_object()?.get(key)?;
        Some(self.child(key, value))
    }

    pub(crate) fn child(&self, key: &str, value: &'a Value) -> Node<'a> {
        let mut pointer = self.pointer.clone();
        push_token(&mut pointer, key);
        Node {
            doc: self.doc,
            pointer,
            value,
        }
    }

    /// The `$ref` string of a node, if it is a reference object.
    pub(crate) fn reference(&self) -> Option<&'a str> {
        self.value.as_object()?.get("$ref")?.as_str()
    }
}

/// What a value is, for "expected …, found …" messages.
pub(crate) fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a sequence",
        Value::Object(_) => "a mapping",
    }
}

impl Docs {
    pub(crate) fn new(name: &str, dir: Option<PathBuf>, root: Value) -> Self {
        Docs {
            docs: vec![Doc {
                name: name.to_owned(),
                dir,
                root,
            }],
            by_path: HashMap::new(),
            failed: HashMap::new(),
        }
    }

    /// Registers the canonical path of the main document, so a reference
    /// back to it does not load it a second time.
    pub(crate) fn set_main_path(&mut self, path: &Path) {
        if let Ok(canonical) = path.canonicalize() {
            self.by_path.insert(canonical, 0);
        }
    }

    pub(crate) fn root(&self) -> Node<'_> {
        Node {
            doc: 0,
            pointer: String::new(),
            value: &self.docs[0].root,
        }
    }

    pub(crate) fn name(&self, doc: usize) -> &str {
        self.docs.get(doc).map_or("?", |d| d.name.as_str())
    }

    /// An error about `node`.
    pub(crate) fn invalid(&self, node: &Node<'_>, message: impl Into<String>) -> SpecError {
        SpecError::invalid(self.name(node.doc), &node.pointer, message)
    }

    /// An "expected …, found …" error about `node`.
    pub(crate) fn expected(&self, node: &Node<'_>, what: &str) -> SpecError {
        self.invalid(
            node,
            format!("expected {what}, found {}", kind_of(node.value)),
        )
    }

    /// The node as a mapping.
    pub(crate) fn map<'a>(&self, node: &Node<'a>) -> Result<&'a Map<String, Value>, SpecError> {
        node.value
            .as_object()
            .ok_or_else(|| self.expected(node, "a mapping"))
    }

    /// The node as a sequence.
    pub(crate) fn seq<'a>(&self, node: &Node<'a>) -> Result<&'a [Value], SpecError> {
        node.value
            .as_array()
            .map(Vec::as_slice)
            .ok_or_else(|| self.expected(node, "a sequence"))
    }

    /// An optional string member of a mapping node.
    pub(crate) fn string<'a>(
        &self,
        node: &Node<'a>,
        key: &str,
    ) -> Result<Option<&'a str>, SpecError> {
        match node.get(key) {
            None => Ok(None),
            Some(child) => child
                .value
                .as_str()
                .map(Some)
                .ok_or_else(|| self.expected(&child, "a string")),
        }
    }

    /// An optional boolean member of a mapping node; absent is `false`.
    pub(crate) fn flag(&self, node: &Node<'_>, key: &str) -> Result<bool, SpecError> {
        match node.get(key) {
            None => Ok(false),
            Some(child) => child
                .value
                .as_bool()
                .ok_or_else(|| self.expected(&child, "a boolean")),
        }
    }

    /// Follows a chain of reference objects to the node it ends at. Other
    /// members beside a `$ref` are ignored (as 2.0 and 3.0 require).
    pub(crate) fn deref<'a>(&'a self, node: Node<'a>) -> Result<Node<'a>, SpecError> {
        let mut node = node;
        let mut seen: Vec<(usize, String)> = vec![(node.doc, node.pointer.clone())];
        while let Some(reference) = node.reference() {
            let target = self.follow(&node, reference)?;
            let key = (target.doc, target.pointer.clone());
            if let Some(start) = seen.iter().position(|seen| *seen == key) {
                let mut cycle: Vec<&str> = seen[start..].iter().map(|(_, p)| p.as_str()).collect();
                cycle.push(&target.pointer);
                return Err(self.invalid(
                    &node.child("$ref", &Value::Null),
                    format!("`$ref` cycle: {}", cycle.join(" → ")),
                ));
            }
            if seen.len() > MAX_REF_CHAIN {
                return Err(self.invalid(
                    &node.child("$ref", &Value::Null),
                    format!("more than {MAX_REF_CHAIN} references in a chain"),
                ));
            }
            seen.push(key);
            node = target;
        }
        Ok(node)
    }

    /// Resolves one `$ref` found in `node` (one hop).
    pub(crate) fn follow<'a>(
        &'a self,
        node: &Node<'a>,
        reference: &str,
    ) -> Result<Node<'a>, SpecError> {
        self.resolve(node.doc, reference).map_err(|why| {
            self.invalid(
                &node.child("$ref", &Value::Null),
                format!("cannot resolve `{reference}`: {why}"),
            )
        })
    }

    fn resolve(&self, from: usize, reference: &str) -> Result<Node<'_>, String> {
        let (file, fragment) = match reference.split_once('#') {
            Some((file, fragment)) => (file, fragment),
            None => (reference, ""),
        };
        let doc = if file.is_empty() {
            from
        } else {
            self.doc_for(from, file)?
        };
        let fragment = percent_decode(fragment);
        let mut node = Node {
            doc,
            pointer: String::new(),
            value: &self.docs[doc].root,
        };
        if fragment.is_empty() {
            return Ok(node);
        }
        let Some(tokens) = fragment.strip_prefix('/') else {
            return Err("only JSON-pointer fragments (`#/…`) are supported".to_owned());
        };
        for token in tokens.split('/') {
            let token = token.replace("~1", "/").replace("~0", "~");
            let next = match node.value {
                Value::Object(map) => map.get(&token),
                Value::Array(items) => token.parse::<usize>().ok().and_then(|i| items.get(i)),
                _ => None,
            };
            let Some(value) = next else {
                let at = if node.pointer.is_empty() {
                    "the document root"
                } else {
                    &node.pointer
                };
                return Err(format!("no `{token}` in {at}"));
            };
            node = node.child(&token, value);
        }
        Ok(node)
    }

    fn doc_for(&self, from: usize, file: &str) -> Result<usize, String> {
        if file.contains("://") || file.starts_with("urn:") {
            return Err("references to remote documents are not supported".to_owned());
        }
        let Some(dir) = &self.docs[from].dir else {
            return Err(
                "it names another file, and this document was not loaded from a path".to_owned(),
            );
        };
        let path = dir.join(percent_decode(file));
        let canonical = path
            .canonicalize()
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        if let Some(&doc) = self.by_path.get(&canonical) {
            return Ok(doc);
        }
        Err(self
            .failed
            .get(&canonical)
            .cloned()
            .unwrap_or_else(|| format!("{} was not loaded", path.display())))
    }

    /// Reads every file that the loaded documents reference, transitively,
    /// each once and at most [`MAX_REF_FILES`] in all.
    pub(crate) fn load_referenced(&mut self) {
        let mut next = 0;
        while next < self.docs.len() {
            let Some(dir) = self.docs[next].dir.clone() else {
                next += 1;
                continue;
            };
            let mut files = Vec::new();
            collect_file_refs(&self.docs[next].root, &mut files);
            for file in files {
                self.load_one(&dir, &file);
            }
            next += 1;
        }
    }

    fn load_one(&mut self, dir: &Path, file: &str) {
        let path = dir.join(percent_decode(file));
        let Ok(canonical) = path.canonicalize() else {
            return; // reported with the reason when followed
        };
        if self.by_path.contains_key(&canonical) || self.failed.contains_key(&canonical) {
            return;
        }
        if self.docs.len() >= MAX_REF_FILES {
            let why = format!("a contract may span at most {MAX_REF_FILES} files");
            self.failed.insert(canonical, why);
            return;
        }
        let name = path.display().to_string();
        let loaded = read_file(&name, &canonical).and_then(|bytes| {
            let text = utf8(&name, &bytes)?;
            parse(&name, text)
        });
        match loaded {
            Ok(root) => {
                self.by_path.insert(canonical.clone(), self.docs.len());
                self.docs.push(Doc {
                    name,
                    dir: canonical.parent().map(Path::to_path_buf),
                    root,
                });
            }
            Err(error) => {
                self.failed.insert(canonical, error.to_string());
            }
        }
    }
}

/// File parts of the local-file `$ref`s anywhere in `value`.
fn collect_file_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(reference)) = map.get("$ref") {
                let file = reference.split('#').next().unwrap_or("");
                if !file.is_empty() && !file.contains("://") && !out.iter().any(|f| f == file) {
                    out.push(file.to_owned());
                }
            }
            map.values().for_each(|v| collect_file_refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_file_refs(v, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn tokens_are_escaped_and_unescaped() {
        let mut pointer = String::new();
        push_token(&mut pointer, "paths");
        push_token(&mut pointer, "/a/{b}~c");
        assert_eq!(pointer, "/paths/~1a~1{b}~0c");
        let docs = Docs::new("t", None, json!({"paths": {"/a/{b}~c": {"x": 1}}}));
        let node = docs.resolve(0, "#/paths/~1a~1%7Bb%7D~0c/x").unwrap();
        assert_eq!(node.value, &json!(1));
        assert_eq!(node.pointer, "/paths/~1a~1{b}~0c/x");
    }

    #[test]
    fn percent_decoding_leaves_bad_escapes() {
        assert_eq!(percent_decode("a%20b%zz%4"), "a b%zz%4");
    }

    #[test]
    fn sequences_are_indexed() {
        let docs = Docs::new("t", None, json!({"a": [{"b": 1}, {"b": 2}]}));
        assert_eq!(docs.resolve(0, "#/a/1/b").unwrap().value, &json!(2));
        assert_eq!(docs.resolve(0, "#/a/2/b").unwrap_err(), "no `2` in /a");
    }

    #[test]
    fn chains_are_followed_and_cycles_refused() {
        let docs = Docs::new(
            "t.yaml",
            None,
            json!({"a": {"$ref": "#/b"}, "b": {"$ref": "#/c"}, "c": {"type": "string"},
                   "x": {"$ref": "#/y"}, "y": {"$ref": "#/x"}}),
        );
        let a = docs.root().get("a").unwrap();
        assert_eq!(docs.deref(a).unwrap().pointer, "/c");
        let x = docs.root().get("x").unwrap();
        assert_eq!(
            docs.deref(x).unwrap_err().to_string(),
            "t.yaml: /y/$ref: `$ref` cycle: /x → /y → /x"
        );
    }

    #[test]
    fn other_files_need_a_path() {
        let docs = Docs::new("t.yaml", None, json!({"a": {"$ref": "other.yaml#/b"}}));
        let a = docs.root().get("a").unwrap();
        assert_eq!(
            docs.deref(a).unwrap_err().to_string(),
            "t.yaml: /a/$ref: cannot resolve `other.yaml#/b`: it names another file, \
             and this document was not loaded from a path"
        );
    }
}
