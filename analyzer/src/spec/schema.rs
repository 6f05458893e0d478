//! JSON Schema objects reduced to a [`Schema`].
//!
//! * `$ref` is expanded in place. A reference to a schema that is already
//!   being expanded further up (a recursive type), or one more than
//!   [`MAX_REF_DEPTH`] references deep, becomes a cut-off: a default
//!   schema with [`Schema::recursive`] set. A chain of references that
//!   only lead to one another (`A: {$ref: B}`, `B: {$ref: A}`) is an error.
//! * Members beside a `$ref` are ignored in 2.0 and 3.0 (as those versions
//!   say); in 3.1 they are merged with the target as if both were in an
//!   `allOf`.
//! * `allOf` branches are merged into the schema that holds them
//!   ([`merge`]); `oneOf` and `anyOf` branches become [`Schema::any_of`].
//! * 3.0 `nullable: true` and 2.0 `x-nullable: true` add `null` to a
//!   schema that names its types. 2.0 `type: file` becomes `string`.
//! * Boolean schemas (3.1) are read as "any" — `false` included, which the
//!   model cannot express.
//! * `enum`, `const`, numeric and string bounds, `not`, `prefixItems`,
//!   `patternProperties`, `discriminator` and annotations are not kept.

use serde_json::Value;

use super::limits::{MAX_REF_DEPTH, MAX_SCHEMA_DEPTH, MAX_SCHEMA_NODES};
use super::refs::{Docs, Node};
use super::{Schema, SpecDialect, SpecError};

/// Keywords that give a schema structure; one of them beside a 3.1 `$ref`
/// makes the schema more than the reference.
const STRUCTURAL: [&str; 11] = [
    "type",
    "format",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "allOf",
    "oneOf",
    "anyOf",
    "nullable",
    "x-nullable",
];

/// Builds schemas for one contract, keeping count against the limits.
pub(crate) struct Schemas<'d> {
    docs: &'d Docs,
    dialect: SpecDialect,
    /// Targets of the references being expanded, outermost first.
    expanding: Vec<(usize, String)>,
    depth: usize,
    built: usize,
    /// [`MAX_SCHEMA_NODES`], lowered in tests.
    max_nodes: usize,
}

impl<'d> Schemas<'d> {
    pub(crate) fn new(docs: &'d Docs, dialect: SpecDialect) -> Self {
        Schemas {
            docs,
            dialect,
            expanding: Vec::new(),
            depth: 0,
            built: 0,
            max_nodes: MAX_SCHEMA_NODES,
        }
    }

    /// Converts the schema object at `node`.
    pub(crate) fn schema(&mut self, node: Node<'d>) -> Result<Schema, SpecError> {
        if self.depth >= MAX_SCHEMA_DEPTH {
            return Err(self.docs.invalid(
                &node,
                format!("schemas nested more than {MAX_SCHEMA_DEPTH} levels deep"),
            ));
        }
        self.built += 1;
        if self.built > self.max_nodes {
            let max = self.max_nodes;
            return Err(self.docs.invalid(
                &node,
                format!("the contract expands to more than {max} schema nodes"),
            ));
        }
        self.depth += 1;
        let schema = self.schema_at_depth(node);
        self.depth -= 1;
        schema
    }

    fn schema_at_depth(&mut self, node: Node<'d>) -> Result<Schema, SpecError> {
        match node.value {
            Value::Bool(_) => return Ok(Schema::default()),
            Value::Object(_) => {}
            _ => return Err(self.docs.expected(&node, "a schema (a mapping)")),
        }
        let Some(reference) = node.reference() else {
            return self.body(&node);
        };
        let referenced = self.referenced(&node, reference)?;
        let siblings = self.dialect == SpecDialect::OpenApi31
            && STRUCTURAL.iter().any(|key| node.get(key).is_some());
        if siblings {
            let own = self.body(&node)?;
            Ok(merge(referenced, own))
        } else {
            Ok(referenced)
        }
    }

    fn referenced(&mut self, node: &Node<'d>, reference: &str) -> Result<Schema, SpecError> {
        // Refuses unresolvable references and chains that never reach a schema.
        self.docs.deref(node.clone())?;
        let target = self.docs.follow(node, reference)?;
        let key = (target.doc, target.pointer.clone());
        if self.expanding.contains(&key) || self.expanding.len() >= MAX_REF_DEPTH {
            return Ok(Schema {
                recursive: true,
                ..Schema::default()
            });
        }
        self.expanding.push(key);
        let schema = self.schema(target);
        self.expanding.pop();
        schema
    }

    /// The schema's own keywords, ignoring any `$ref`.
    pub(crate) fn body(&mut self, node: &Node<'d>) -> Result<Schema, SpecError> {
        let docs = self.docs;
        let mut schema = Schema {
            types: self.types(node)?,
            format: docs.string(node, "format")?.map(str::to_owned),
            ..Schema::default()
        };
        if let Some(properties) = node.get("properties") {
            for (name, value) in docs.map(&properties)? {
                let property = self.schema(properties.child(name, value))?;
                schema.properties.insert(name.clone(), property);
            }
        }
        if let Some(required) = node.get("required") {
            // `required: true` on a property is a common 2.0/3.0 mistake
            // with no effect; anything else must be a list of names.
            if !required.value.is_boolean() {
                for (i, name) in docs.seq(&required)?.iter().enumerate() {
                    let name = name.as_str().ok_or_else(|| {
                        docs.expected(&required.child(&i.to_string(), name), "a string")
                    })?;
                    push_unique(&mut schema.required, name);
                }
            }
        }
        schema.additional_properties = match node.get("additionalProperties") {
            None => None,
            Some(node) => match node.value {
                Value::Bool(true) => None,
                Value::Bool(false) => Some(false),
                Value::Object(_) => Some(true),
                _ => return Err(docs.expected(&node, "a boolean or a schema")),
            },
        };
        if let Some(items) = node.get("items") {
            let items = match items.value {
                // Draft-4 tuple form: any listed schema.
                Value::Array(_) => Schema {
                    any_of: self.branches(&items)?,
                    ..Schema::default()
                },
                _ => self.schema(items)?,
            };
            schema.items = Some(Box::new(items));
        }
        for key in ["oneOf", "anyOf"] {
            if let Some(branches) = node.get(key) {
                let branches = self.branches(&branches)?;
                schema.any_of.extend(branches);
            }
        }
        if let Some(all_of) = node.get("allOf") {
            for branch in self.branches(&all_of)? {
                schema = merge(schema, branch);
            }
        }
        let nullable = match self.dialect {
            SpecDialect::Swagger2 => docs.flag(node, "x-nullable")?,
            SpecDialect::OpenApi30 => docs.flag(node, "nullable")?,
            SpecDialect::OpenApi31 => false,
        };
        if nullable && !schema.types.is_empty() {
            push_unique(&mut schema.types, "null");
        }
        Ok(schema)
    }

    fn types(&self, node: &Node<'d>) -> Result<Vec<String>, SpecError> {
        let Some(types) = node.get("type") else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        match types.value {
            Value::String(name) => out.push(one_type(name).to_owned()),
            Value::Array(names) => {
                for (i, name) in names.iter().enumerate() {
                    let name = name.as_str().ok_or_else(|| {
                        self.docs
                            .expected(&types.child(&i.to_string(), name), "a string")
                    })?;
                    push_unique(&mut out, one_type(name));
                }
            }
            _ => {
                return Err(self
                    .docs
                    .expected(&types, "a string or a sequence of strings"))
            }
        }
        Ok(out)
    }

    fn branches(&mut self, node: &Node<'d>) -> Result<Vec<Schema>, SpecError> {
        let items = self.docs.seq(node)?;
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            out.push(self.schema(node.child(&i.to_string(), item))?);
        }
        Ok(out)
    }
}

/// A type name; 2.0 `file` is a string on the wire.
fn one_type(name: &str) -> &str {
    if name == "file" {
        "string"
    } else {
        name
    }
}

fn push_unique(list: &mut Vec<String>, item: &str) {
    if !list.iter().any(|x| x == item) {
        list.push(item.to_owned());
    }
}

/// Most branch pairs two `oneOf`/`anyOf` lists in one `allOf` are crossed
/// into; past it the first list is kept (a looser schema).
const MAX_CROSSED_BRANCHES: usize = 64;

/// Merges two schemas that must both hold (`allOf`).
///
/// Types are intersected (`integer` fits `number`) when both name some,
/// else taken from the one that does; an empty intersection (an
/// unsatisfiable `allOf`) reads as "any". Properties and required names
/// are united, shared properties merged. `additionalProperties` keeps the
/// stricter (`false` over a schema over absent). Branch lists are crossed.
pub(crate) fn merge(a: Schema, b: Schema) -> Schema {
    let types = match (a.types.is_empty(), b.types.is_empty()) {
        (true, _) => b.types,
        (_, true) => a.types,
        _ => intersect(&a.types, &b.types),
    };
    let mut properties = a.properties;
    for (name, schema) in b.properties {
        let merged = match properties.remove(&name) {
            Some(existing) => merge(existing, schema),
            None => schema,
        };
        properties.insert(name, merged);
    }
    let mut required = a.required;
    for name in &b.required {
        push_unique(&mut required, name);
    }
    let additional_properties = match (a.additional_properties, b.additional_properties) {
        (Some(false), _) | (_, Some(false)) => Some(false),
        (Some(true), _) | (_, Some(true)) => Some(true),
        _ => None,
    };
    let items = match (a.items, b.items) {
        (Some(x), Some(y)) => Some(Box::new(merge(*x, *y))),
        (x, y) => x.or(y),
    };
    let any_of = if a.any_of.is_empty() {
        b.any_of
    } else if b.any_of.is_empty() || a.any_of.len() * b.any_of.len() > MAX_CROSSED_BRANCHES {
        a.any_of
    } else {
        let mut crossed = Vec::with_capacity(a.any_of.len() * b.any_of.len());
        for x in &a.any_of {
            for y in &b.any_of {
                crossed.push(merge(x.clone(), y.clone()));
            }
        }
        crossed
    };
    Schema {
        types,
        format: a.format.or(b.format),
        properties,
        required,
        additional_properties,
        items,
        any_of,
        recursive: a.recursive || b.recursive,
    }
}

fn intersect(a: &[String], b: &[String]) -> Vec<String> {
    let has = |list: &[String], t: &str| list.iter().any(|x| x == t);
    let mut out = Vec::new();
    for t in a {
        let fits = has(b, t)
            || (t == "integer" && has(b, "number"))
            || (t == "number" && has(b, "integer"));
        let t = if fits && t == "number" && !has(b, "number") {
            "integer"
        } else {
            t
        };
        if fits {
            push_unique(&mut out, t);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn build(dialect: SpecDialect, doc: Value, pointer: &str) -> Result<Schema, SpecError> {
        build_capped(dialect, doc, pointer, MAX_SCHEMA_NODES)
    }

    fn build_capped(
        dialect: SpecDialect,
        doc: Value,
        pointer: &str,
        max_nodes: usize,
    ) -> Result<Schema, SpecError> {
        let docs = Docs::new("t.yaml", None, doc);
        let mut node = docs.root();
        for token in pointer.split('/').skip(1) {
            node = node.get(token).unwrap();
        }
        let mut schemas = Schemas::new(&docs, dialect);
        schemas.max_nodes = max_nodes;
        schemas.schema(node)
    }

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn all_of_merges_properties_required_and_types() {
        let doc = json!({
            "Base": {"type": "object", "required": ["id"],
                     "properties": {"id": {"type": "integer", "format": "int64"}}},
            "S": {"allOf": [
                {"$ref": "#/Base"},
                {"type": "object", "required": ["name"], "additionalProperties": false,
                 "properties": {"name": {"type": "string"}, "id": {"type": "number"}}}
            ]}
        });
        let s = build(SpecDialect::OpenApi30, doc, "/S").unwrap();
        assert_eq!(s.types, strings(&["object"]));
        assert_eq!(s.required, strings(&["id", "name"]));
        assert_eq!(s.additional_properties, Some(false));
        assert_eq!(s.properties["id"].types, strings(&["integer"]));
        assert_eq!(s.properties["id"].format.as_deref(), Some("int64"));
        assert_eq!(s.properties["name"].types, strings(&["string"]));
    }

    #[test]
    fn nullable_and_type_arrays() {
        let doc = json!({"a": {"type": "string", "nullable": true}, "b": {"nullable": true},
                         "c": {"type": ["string", "null"]}, "d": {"type": "file"}});
        let a = build(SpecDialect::OpenApi30, doc.clone(), "/a").unwrap();
        assert_eq!(a.types, strings(&["string", "null"]));
        let b = build(SpecDialect::OpenApi30, doc.clone(), "/b").unwrap();
        assert!(b.types.is_empty());
        let a31 = build(SpecDialect::OpenApi31, doc.clone(), "/a").unwrap();
        assert_eq!(a31.types, strings(&["string"]));
        let c = build(SpecDialect::OpenApi31, doc.clone(), "/c").unwrap();
        assert_eq!(c.types, strings(&["string", "null"]));
        let d = build(SpecDialect::Swagger2, doc, "/d").unwrap();
        assert_eq!(d.types, strings(&["string"]));
    }

    #[test]
    fn one_of_and_any_of_become_branches() {
        let doc = json!({"s": {"oneOf": [{"type": "string"}, {"type": "integer"}],
                               "anyOf": [{"type": "null"}]}});
        let s = build(SpecDialect::OpenApi30, doc, "/s").unwrap();
        let types: Vec<_> = s.any_of.iter().map(|b| b.types[0].as_str()).collect();
        assert_eq!(types, ["string", "integer", "null"]);
    }

    #[test]
    fn additional_properties_forms() {
        let doc = json!({"a": {"additionalProperties": true}, "b": {"additionalProperties": false},
                         "c": {"additionalProperties": {"type": "string"}}, "d": {}});
        let get = |p| {
            build(SpecDialect::OpenApi30, doc.clone(), p)
                .unwrap()
                .additional_properties
        };
        assert_eq!(get("/a"), None);
        assert_eq!(get("/b"), Some(false));
        assert_eq!(get("/c"), Some(true));
        assert_eq!(get("/d"), None);
    }

    #[test]
    fn recursion_is_cut_off() {
        let doc = json!({"Node": {"type": "object", "properties": {
            "children": {"type": "array", "items": {"$ref": "#/Node"}}}}});
        let s = build(SpecDialect::OpenApi30, doc, "/Node").unwrap();
        // Entered directly, so the first reference is expanded once.
        let items = s.properties["children"].items.as_ref().unwrap();
        assert!(!items.recursive);
        let inner = items.properties["children"].items.as_ref().unwrap();
        assert!(inner.recursive);
        assert!(inner.properties.is_empty());
    }

    #[test]
    fn ref_siblings_merge_only_in_3_1() {
        let doc = json!({"Pet": {"type": "object", "properties": {"id": {"type": "integer"}}},
                         "s": {"$ref": "#/Pet", "required": ["id"], "description": "x"}});
        let s31 = build(SpecDialect::OpenApi31, doc.clone(), "/s").unwrap();
        assert_eq!(s31.required, strings(&["id"]));
        assert!(s31.properties.contains_key("id"));
        let s30 = build(SpecDialect::OpenApi30, doc, "/s").unwrap();
        assert!(s30.required.is_empty());
        assert!(s30.properties.contains_key("id"));
    }

    #[test]
    fn wrong_types_are_errors_with_pointers() {
        let doc = json!({"s": {"properties": {"a": {"type": 3}}}});
        let err = build(SpecDialect::OpenApi30, doc, "/s").unwrap_err();
        assert_eq!(
            err.to_string(),
            "t.yaml: /s/properties/a/type: expected a string or a sequence of strings, found a number"
        );
        let doc = json!({"s": {"required": ["a", 1]}});
        let err = build(SpecDialect::OpenApi30, doc, "/s").unwrap_err();
        assert_eq!(
            err.to_string(),
            "t.yaml: /s/required/1: expected a string, found a number"
        );
    }

    #[test]
    fn exponential_expansion_hits_the_node_limit() {
        // Each level references the next one 16 times: 16^8 copies.
        let mut doc = serde_json::Map::new();
        for level in 0..8 {
            let mut properties = serde_json::Map::new();
            for i in 0..16 {
                properties.insert(
                    format!("p{i}"),
                    json!({"$ref": format!("#/L{}", level + 1)}),
                );
            }
            doc.insert(
                format!("L{level}"),
                json!({"type": "object", "properties": properties}),
            );
        }
        doc.insert("L8".to_owned(), json!({"type": "string"}));
        let doc = Value::Object(doc);
        let err = build_capped(SpecDialect::OpenApi30, doc, "/L0", 10_000).unwrap_err();
        assert_eq!(
            err.to_string(),
            "t.yaml: /L8: the contract expands to more than 10000 schema nodes"
        );
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let mut schema = json!({"type": "string"});
        for _ in 0..MAX_SCHEMA_DEPTH + 10 {
            schema = json!({"type": "array", "items": schema});
        }
        let err = build(SpecDialect::OpenApi30, json!({ "s": schema }), "/s").unwrap_err();
        assert!(
            err.to_string()
                .ends_with(": schemas nested more than 64 levels deep"),
            "{err}"
        );
    }

    #[test]
    fn integer_fits_number() {
        assert_eq!(
            intersect(&strings(&["number"]), &strings(&["integer"])),
            strings(&["integer"])
        );
        assert_eq!(
            intersect(&strings(&["string", "null"]), &strings(&["string"])),
            strings(&["string"])
        );
    }
}
