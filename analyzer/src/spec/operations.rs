//! `paths` reduced to sorted [`Operation`]s.
//!
//! * Path items may be `$ref`s (also to other files); members beside the
//!   `$ref` are ignored. Path-item and operation `servers` are ignored:
//!   every operation is taken to be served by the document's servers.
//! * Parameters: path-level and operation-level lists merged by
//!   (`name`, `in`), the operation's winning and keeping the path-level
//!   position; `$ref`s followed. Path parameters are always required.
//!   A 3.x parameter's schema is its `schema`, or the schema of the first
//!   media type of its `content`; a 2.0 parameter is its own schema.
//! * Request bodies: 3.x `requestBody`; 2.0 `body` parameter (one entry
//!   per `consumes` media type, default `application/json`) or `formData`
//!   parameters (an object schema with one property per parameter, under
//!   the form media types in `consumes`, else `multipart/form-data` when a
//!   parameter is a file and `application/x-www-form-urlencoded`
//!   otherwise).
//! * Responses: 3.x `content`; 2.0 `schema` under each `produces` media
//!   type (default `application/json`). `responses` may be absent.
//! * `callbacks`, `links`, `examples` and headers are not read.

use std::collections::BTreeMap;

use serde_json::Value;

use super::limits::MAX_OPERATIONS;
use super::refs::{push_token, Docs, Node};
use super::schema::Schemas;
use super::security::requirements;
use super::template::PathTemplate;
use super::SpecError;
use super::{Operation, ParamLocation, Parameter, RequestBody, Response, Schema, SpecDialect};

/// HTTP methods an OpenAPI path item can hold, in output order.
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

const JSON: &str = "application/json";
const MULTIPART: &str = "multipart/form-data";
const URLENCODED: &str = "application/x-www-form-urlencoded";

/// Where a declared parameter goes.
enum Place {
    Param(ParamLocation),
    /// 2.0 `in: body`.
    Body,
    /// 2.0 `in: formData`.
    Form,
}

/// A parameter after `$ref`s, with its identity.
struct Declared<'d> {
    name: String,
    place: Place,
    node: Node<'d>,
}

/// Builds the operations of one document.
pub(crate) struct Operations<'d> {
    docs: &'d Docs,
    dialect: SpecDialect,
    schemas: Schemas<'d>,
    security: Vec<Vec<String>>,
    consumes: Vec<String>,
    produces: Vec<String>,
}

impl<'d> Operations<'d> {
    /// Reads the document-level defaults (security, 2.0 media types).
    pub(crate) fn new(
        docs: &'d Docs,
        dialect: SpecDialect,
        root: &Node<'d>,
    ) -> Result<Self, SpecError> {
        let security = match root.get("security") {
            Some(node) => requirements(docs, &node)?,
            None => Vec::new(),
        };
        Ok(Operations {
            docs,
            dialect,
            schemas: Schemas::new(docs, dialect),
            security,
            consumes: media_types(docs, root.get("consumes"))?,
            produces: media_types(docs, root.get("produces"))?,
        })
    }

    /// All operations under `paths`, sorted by path, then method order.
    pub(crate) fn build(&mut self, root: &Node<'d>) -> Result<Vec<Operation>, SpecError> {
        let docs = self.docs;
        let Some(paths) = root.get("paths") else {
            if self.dialect == SpecDialect::OpenApi31 {
                return Ok(Vec::new());
            }
            return Err(docs.invalid(root, "missing required `paths`"));
        };
        let mut out = Vec::new();
        for (path, item) in docs.map(&paths)? {
            if path.starts_with("x-") {
                continue;
            }
            let declared = paths.child(path, item);
            if !path.starts_with('/') {
                return Err(docs.invalid(&declared, "a path must start with `/`"));
            }
            if let Err(error) = PathTemplate::parse(path) {
                return Err(docs.invalid(&declared, format!("invalid path template: {error}")));
            }
            let item = docs.deref(declared.clone())?;
            docs.map(&item)?;
            let shared = item.get("parameters");
            for method in METHODS {
                let Some(node) = item.get(method) else {
                    continue;
                };
                if out.len() >= MAX_OPERATIONS {
                    return Err(
                        docs.invalid(&paths, format!("more than {MAX_OPERATIONS} operations"))
                    );
                }
                let mut pointer = declared.pointer.clone();
                push_token(&mut pointer, method);
                let mut operation = self.operation(&node, shared.as_ref())?;
                operation.method = method.to_ascii_uppercase();
                operation.path = path.clone();
                operation.pointer = pointer;
                out.push(operation);
            }
        }
        out.sort_by(|a, b| {
            a.path
                .cmp(&b.path)
                .then(rank(&a.method).cmp(&rank(&b.method)))
        });
        Ok(out)
    }

    /// One operation; the caller fills in method, path and pointer.
    fn operation(
        &mut self,
        op: &Node<'d>,
        shared: Option<&Node<'d>>,
    ) -> Result<Operation, SpecError> {
        let docs = self.docs;
        docs.map(op)?;
        let mut declared = self.declared(shared)?;
        for own in self.declared(op.get("parameters").as_ref())? {
            let same = |d: &Declared<'_>| d.name == own.name && same_place(&d.place, &own.place);
            match declared.iter().position(same) {
                Some(i) => declared[i] = own,
                None => declared.push(own),
            }
        }
        let mut parameters = Vec::new();
        let mut body = None;
        let mut form = Vec::new();
        for d in declared {
            match d.place {
                Place::Param(location) => {
                    parameters.push(self.parameter(d.name, location, &d.node)?)
                }
                Place::Body => body = Some(d.node),
                Place::Form => form.push((d.name, d.node)),
            }
        }
        let request_body = match self.dialect {
            SpecDialect::Swagger2 => {
                let consumes = media_types(docs, op.get("consumes"))?;
                let consumes = first_non_empty(consumes, &self.consumes);
                match body {
                    Some(body) => Some(self.body_parameter(&body, &consumes)?),
                    None if !form.is_empty() => Some(self.form(form, &consumes)?),
                    None => None,
                }
            }
            _ => match op.get("requestBody") {
                Some(node) => Some(self.request_body(node)?),
                None => None,
            },
        };
        let produces = media_types(docs, op.get("produces"))?;
        let produces = first_non_empty(produces, &self.produces);
        let responses = match op.get("responses") {
            Some(node) => self.responses(&node, &produces)?,
            None => BTreeMap::new(),
        };
        let security = match op.get("security") {
            Some(node) => requirements(docs, &node)?,
            None => self.security.clone(),
        };
        Ok(Operation {
            method: String::new(),
            path: String::new(),
            pointer: String::new(),
            operation_id: docs.string(op, "operationId")?.map(str::to_owned),
            deprecated: docs.flag(op, "deprecated")?,
            parameters,
            request_body,
            responses,
            security,
        })
    }

    /// The parameters of one `parameters` list, `$ref`s followed.
    fn declared(&self, list: Option<&Node<'d>>) -> Result<Vec<Declared<'d>>, SpecError> {
        let docs = self.docs;
        let Some(list) = list else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for (i, item) in docs.seq(list)?.iter().enumerate() {
            let node = docs.deref(list.child(&i.to_string(), item))?;
            docs.map(&node)?;
            let Some(name) = docs.string(&node, "name")? else {
                return Err(docs.invalid(&node, "a parameter needs a `name`"));
            };
            let place = match (docs.string(&node, "in")?, self.dialect) {
                (Some("path"), _) => Place::Param(ParamLocation::Path),
                (Some("query"), _) => Place::Param(ParamLocation::Query),
                (Some("header"), _) => Place::Param(ParamLocation::Header),
                (Some("cookie"), _) => Place::Param(ParamLocation::Cookie),
                (Some("body"), SpecDialect::Swagger2) => Place::Body,
                (Some("formData"), SpecDialect::Swagger2) => Place::Form,
                (Some(other), _) => {
                    return Err(docs.invalid(&node, format!("unknown parameter location `{other}`")))
                }
                (None, _) => return Err(docs.invalid(&node, "a parameter needs `in`")),
            };
            out.push(Declared {
                name: name.to_owned(),
                place,
                node,
            });
        }
        Ok(out)
    }

    fn parameter(
        &mut self,
        name: String,
        location: ParamLocation,
        node: &Node<'d>,
    ) -> Result<Parameter, SpecError> {
        let required = location == ParamLocation::Path || self.docs.flag(node, "required")?;
        let schema = match self.dialect {
            SpecDialect::Swagger2 => Some(self.schemas.body(node)?),
            _ => match (node.get("schema"), node.get("content")) {
                (Some(schema), _) => Some(self.schemas.schema(schema)?),
                (None, Some(content)) => self.content(&content)?.into_values().next().flatten(),
                (None, None) => None,
            },
        };
        Ok(Parameter {
            name,
            location,
            required,
            schema,
        })
    }

    /// A 3.x `requestBody`.
    fn request_body(&mut self, node: Node<'d>) -> Result<RequestBody, SpecError> {
        let node = self.docs.deref(node)?;
        self.docs.map(&node)?;
        let content = match node.get("content") {
            Some(content) => self.content(&content)?,
            None => BTreeMap::new(),
        };
        Ok(RequestBody {
            required: self.docs.flag(&node, "required")?,
            content,
        })
    }

    /// A 2.0 `in: body` parameter.
    fn body_parameter(
        &mut self,
        node: &Node<'d>,
        consumes: &[String],
    ) -> Result<RequestBody, SpecError> {
        let schema = match node.get("schema") {
            Some(schema) => Some(self.schemas.schema(schema)?),
            None => None,
        };
        Ok(RequestBody {
            required: self.docs.flag(node, "required")?,
            content: consumes
                .iter()
                .map(|m| (m.clone(), schema.clone()))
                .collect(),
        })
    }

    /// 2.0 `in: formData` parameters, as one object schema.
    fn form(
        &mut self,
        fields: Vec<(String, Node<'d>)>,
        consumes: &[String],
    ) -> Result<RequestBody, SpecError> {
        let mut schema = Schema {
            types: vec!["object".to_owned()],
            ..Schema::default()
        };
        let mut has_file = false;
        for (name, node) in fields {
            has_file |= node.get("type").is_some_and(|t| t.value == "file");
            if self.docs.flag(&node, "required")? {
                schema.required.push(name.clone());
            }
            schema.properties.insert(name, self.schemas.body(&node)?);
        }
        let mut types: Vec<&str> = consumes
            .iter()
            .map(String::as_str)
            .filter(|m| m.starts_with(MULTIPART) || m.starts_with(URLENCODED))
            .collect();
        if types.is_empty() {
            types.push(if has_file { MULTIPART } else { URLENCODED });
        }
        Ok(RequestBody {
            required: !schema.required.is_empty(),
            content: types
                .into_iter()
                .map(|m| (m.to_owned(), Some(schema.clone())))
                .collect(),
        })
    }

    fn responses(
        &mut self,
        node: &Node<'d>,
        produces: &[String],
    ) -> Result<BTreeMap<String, Response>, SpecError> {
        let docs = self.docs;
        let mut out = BTreeMap::new();
        for (status, response) in docs.map(node)? {
            if status.starts_with("x-") {
                continue;
            }
            let response = docs.deref(node.child(status, response))?;
            docs.map(&response)?;
            let content = match (
                self.dialect,
                response.get("schema"),
                response.get("content"),
            ) {
                (SpecDialect::Swagger2, Some(schema), _) => {
                    let schema = self.schemas.schema(schema)?;
                    produces
                        .iter()
                        .map(|m| (m.clone(), Some(schema.clone())))
                        .collect()
                }
                (SpecDialect::Swagger2, None, _) | (_, _, None) => BTreeMap::new(),
                (_, _, Some(content)) => self.content(&content)?,
            };
            out.insert(status.clone(), Response { content });
        }
        Ok(out)
    }

    /// A 3.x `content` map: media type → schema.
    fn content(&mut self, node: &Node<'d>) -> Result<BTreeMap<String, Option<Schema>>, SpecError> {
        let mut out = BTreeMap::new();
        for (media, object) in self.docs.map(node)? {
            let object = node.child(media, object);
            self.docs.map(&object)?;
            let schema = match object.get("schema") {
                Some(schema) => Some(self.schemas.schema(schema)?),
                None => None,
            };
            out.insert(media.clone(), schema);
        }
        Ok(out)
    }
}

fn same_place(a: &Place, b: &Place) -> bool {
    match (a, b) {
        (Place::Param(x), Place::Param(y)) => x == y,
        (Place::Body, Place::Body) | (Place::Form, Place::Form) => true,
        _ => false,
    }
}

/// Position of an upper-case method in the output order.
fn rank(method: &str) -> usize {
    METHODS
        .iter()
        .position(|m| m.eq_ignore_ascii_case(method))
        .unwrap_or(METHODS.len())
}

/// A 2.0 `consumes`/`produces` list.
fn media_types(docs: &Docs, node: Option<Node<'_>>) -> Result<Vec<String>, SpecError> {
    let Some(node) = node else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for (i, media) in docs.seq(&node)?.iter().enumerate() {
        match media {
            Value::String(media) => out.push(media.clone()),
            _ => return Err(docs.expected(&node.child(&i.to_string(), media), "a string")),
        }
    }
    Ok(out)
}

/// The operation's media types, else the document's, else JSON.
fn first_non_empty(own: Vec<String>, document: &[String]) -> Vec<String> {
    if !own.is_empty() {
        own
    } else if !document.is_empty() {
        document.to_vec()
    } else {
        vec![JSON.to_owned()]
    }
}
