//! The OpenAPI rendering: an OpenAPI **3.1** document (JSON) of the API
//! as *observed*, for importing the inventory into API tooling or as a
//! first draft of a missing contract.
//!
//! # What goes where
//!
//! - `servers`: one `http://HOST` entry per service. All services go into
//!   one document, so when several services serve the same template their
//!   operations merge into one: counts add up, schemas merge, and the
//!   operation gets its own `servers` list when only some services serve
//!   it. `x-shadowtap-services` gives the requests per service.
//! - `paths`: one path item per template *shape*. OpenAPI forbids two
//!   paths that differ only in parameter names, which the inventory has
//!   when one position saw integers in some paths and UUIDs in others
//!   (`/files/{fileId}`, `/files/{fileUuid}`). Such templates merge: each
//!   parameter takes the name used by the busiest template, and its schema
//!   becomes a `oneOf` of the kinds seen (a plain string absorbs the
//!   formatted strings, so the branches never overlap);
//!   `x-shadowtap-templates` lists the merged templates.
//! - Path parameters: `required`, with `type`/`format` from
//!   [`ParamKind::openapi_type`] (`string` for parameters of a declared
//!   segment such as `{name}.json`).
//! - Query parameters: `required: false`, `schema: {type: string}`, and
//!   the share of requests that carried them in `x-shadowtap-frequency`.
//! - Bodies: the request body and one response per status seen, with a
//!   JSON Schema rebuilt from the flattened field paths (`/a/b`,
//!   `/items/*/id`) for the JSON media types seen (`application/json` if
//!   none was recorded); non-JSON request media types are listed without a
//!   schema. Which non-JSON media type came with which status is not
//!   recorded, so responses list JSON media types only and
//!   `x-shadowtap-response-content-types` counts them all.
//! - **The `required` rule:** an object member is required when it appeared
//!   in every body its parent object appeared in (its presence equals the
//!   parent's; for top-level members, presence 1.0 as rounded in the
//!   report). Members of array elements are never required: presence counts
//!   bodies, not elements. Each property carries its presence in
//!   `x-shadowtap-presence`.
//! - Security: `components.securitySchemes` for the schemes seen (`basic`
//!   → HTTP basic, `bearer_jwt` → HTTP bearer with `bearerFormat: JWT`,
//!   `bearer_opaque` → HTTP bearer, `digest` → HTTP digest, `api_key` →
//!   `apiKey` with the name and place from `api_key:header:x-api-key`,
//!   `cookie` → `apiKey` in a cookie whose name is not recorded, so it is a
//!   placeholder), and per operation one `security` alternative per scheme
//!   seen, plus `{}` when anonymous requests were seen.
//! - `x-shadowtap-*` extensions: requests, first and last seen, confidence,
//!   callers, auth scheme counts, unanswered requests.
//!
//! The document holds names, types and counts, never a value seen in
//! traffic.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Map, Value};

use super::{EndpointReport, FieldReport, Report};
use crate::template::{ParamKind, Rule};

/// The OpenAPI version written.
pub const OPENAPI_VERSION: &str = "3.1.0";

/// One endpoint of one service, as merged into an operation.
type Member<'a> = (&'a str, &'a EndpointReport);

/// The OpenAPI document of the observed inventory.
pub fn document(report: &Report) -> Value {
    // Template shape → method → members.
    let mut shapes: BTreeMap<String, BTreeMap<&str, Vec<Member<'_>>>> = BTreeMap::new();
    for s in &report.services {
        for e in &s.endpoints {
            shapes
                .entry(shape(&e.template))
                .or_default()
                .entry(e.method.as_str())
                .or_default()
                .push((s.name.as_str(), e));
        }
    }
    let all_services: Vec<&str> = report.services.iter().map(|s| s.name.as_str()).collect();
    let mut schemes = Schemes::default();
    let mut operation_ids = BTreeSet::new();
    let mut paths = Map::new();
    for methods in shapes.values() {
        let Some(busiest) = busiest(methods.values().flatten()) else {
            continue;
        };
        let names = param_names(&busiest.template);
        let path = rename(&busiest.template, &names);
        let mut item = Map::new();
        for (method, members) in methods {
            let op = operation(
                method,
                &path,
                &names,
                members,
                &all_services,
                &mut schemes,
                &mut operation_ids,
            );
            item.insert(method.to_ascii_lowercase(), op);
        }
        paths.insert(path, Value::Object(item));
    }
    let s = &report.summary;
    let mut info = json!({
        "title": "Observed API",
        "version": s.last_seen.map_or_else(|| "observed".to_owned(), |t| format!("observed {t}")),
        "description": format!(
            "The API as {} observed it in traffic: {} requests to {} endpoints of {} services. \
             Names, types and counts only; no values.",
            report.generator, s.requests, s.endpoints, s.services
        ),
        "x-shadowtap-generator": report.generator,
    });
    if let (Some(first), Some(last)) = (s.first_seen, s.last_seen) {
        info["x-shadowtap-first-seen"] = json!(first);
        info["x-shadowtap-last-seen"] = json!(last);
    }
    let servers: Vec<Value> = report
        .services
        .iter()
        .map(|s| json!({ "url": server_url(&s.name), "description": format!("{} ({} requests)", s.name, s.requests) }))
        .collect();
    let mut doc = json!({
        "openapi": OPENAPI_VERSION,
        "info": info,
        "servers": servers,
        "paths": paths,
    });
    if !schemes.defined.is_empty() {
        doc["components"] = json!({ "securitySchemes": schemes.defined });
    }
    doc
}

fn operation(
    method: &str,
    path: &str,
    names: &[String],
    members: &[Member<'_>],
    all_services: &[&str],
    schemes: &mut Schemes,
    operation_ids: &mut BTreeSet<String>,
) -> Value {
    let requests: u64 = members.iter().map(|(_, e)| e.requests).sum();
    let mut op = Map::new();
    op.insert(
        "operationId".into(),
        json!(operation_id(method, path, operation_ids)),
    );
    op.insert(
        "summary".into(),
        json!(format!("{method} {path}: {requests} requests observed")),
    );
    // Parameters: the path's, then the query's.
    let mut parameters = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let kinds: BTreeSet<(&str, Option<&str>)> = members
            .iter()
            .map(|(_, e)| {
                param_kinds(e)
                    .get(i)
                    .copied()
                    .flatten()
                    .map_or(("string", None), ParamKind::openapi_type)
            })
            .collect();
        parameters.push(json!({
            "name": name,
            "in": "path",
            "required": true,
            "schema": param_schema(&kinds),
        }));
    }
    let mut query: BTreeMap<&str, f64> = BTreeMap::new();
    for (_, e) in members {
        for (q, share) in &e.query_params {
            *query.entry(q).or_insert(0.0) += share * e.requests as f64;
        }
    }
    for (q, weighted) in query {
        parameters.push(json!({
            "name": q,
            "in": "query",
            "required": false,
            "schema": { "type": "string" },
            "x-shadowtap-frequency": super::round3(weighted / requests.max(1) as f64),
        }));
    }
    if !parameters.is_empty() {
        op.insert("parameters".into(), Value::Array(parameters));
    }
    if let Some(body) = request_body(members) {
        op.insert("requestBody".into(), body);
    }
    op.insert("responses".into(), responses(members));
    // Security: one alternative per scheme seen.
    let mut auth: BTreeMap<&str, u64> = BTreeMap::new();
    let mut variants: BTreeMap<&str, u64> = BTreeMap::new();
    for (_, e) in members {
        for (k, n) in &e.auth_schemes {
            *auth.entry(k).or_insert(0) += n;
        }
        for (k, n) in &e.auth_variants {
            *variants.entry(k).or_insert(0) += n;
        }
    }
    let security = schemes.requirements(&auth, &variants);
    if !security.is_empty() {
        op.insert("security".into(), Value::Array(security));
    }
    // Servers, when only some services serve the operation.
    let served: BTreeSet<&str> = members.iter().map(|(s, _)| *s).collect();
    if all_services.len() > 1 && served.len() < all_services.len() {
        op.insert(
            "servers".into(),
            served
                .iter()
                .map(|s| json!({ "url": server_url(s) }))
                .collect(),
        );
    }
    op.insert("x-shadowtap-requests".into(), json!(requests));
    let mut per_service: BTreeMap<&str, u64> = BTreeMap::new();
    for (s, e) in members {
        *per_service.entry(s).or_insert(0) += e.requests;
    }
    op.insert("x-shadowtap-services".into(), json!(per_service));
    let templates: BTreeSet<&str> = members.iter().map(|(_, e)| e.template.as_str()).collect();
    if templates.len() > 1 || !templates.contains(path) {
        op.insert("x-shadowtap-templates".into(), json!(templates));
    }
    if let Some(first) = members.iter().map(|(_, e)| e.first_seen).min() {
        op.insert("x-shadowtap-first-seen".into(), json!(first));
    }
    if let Some(last) = members.iter().map(|(_, e)| e.last_seen).max() {
        op.insert("x-shadowtap-last-seen".into(), json!(last));
    }
    let confidence = members
        .iter()
        .map(|(_, e)| e.confidence)
        .fold(1.0, f64::min);
    op.insert("x-shadowtap-confidence".into(), json!(confidence));
    let callers: u64 = members.iter().map(|(_, e)| e.callers).sum();
    op.insert("x-shadowtap-callers".into(), json!(callers));
    if !auth.is_empty() {
        op.insert("x-shadowtap-auth".into(), json!(auth));
    }
    let mut response_types: BTreeMap<&str, u64> = BTreeMap::new();
    let mut unanswered = 0;
    for (_, e) in members {
        for (ct, n) in &e.response_content_types {
            *response_types.entry(ct).or_insert(0) += n;
        }
        unanswered += e.statuses.get("unanswered").copied().unwrap_or(0);
    }
    if !response_types.is_empty() {
        op.insert(
            "x-shadowtap-response-content-types".into(),
            json!(response_types),
        );
    }
    if unanswered > 0 {
        op.insert("x-shadowtap-unanswered".into(), json!(unanswered));
    }
    Value::Object(op)
}

fn request_body(members: &[Member<'_>]) -> Option<Value> {
    let mut types: BTreeMap<&str, u64> = BTreeMap::new();
    for (_, e) in members {
        for (ct, n) in &e.request_content_types {
            *types.entry(ct).or_insert(0) += n;
        }
    }
    let fields = merge_fields(
        members
            .iter()
            .map(|(_, e)| (e.request_fields.as_slice(), e.requests)),
    );
    if types.is_empty() && fields.is_empty() {
        return None;
    }
    let schema = (!fields.is_empty()).then(|| body_schema(&fields));
    let mut content = Map::new();
    for ct in types.keys() {
        let mut media = Map::new();
        if let (true, Some(s)) = (is_json(ct), &schema) {
            media.insert("schema".into(), s.clone());
        }
        content.insert((*ct).to_owned(), Value::Object(media));
    }
    if let Some(s) = schema {
        if !types.keys().any(|ct| is_json(ct)) {
            content.insert("application/json".into(), json!({ "schema": s }));
        }
    }
    Some(json!({ "content": content, "x-shadowtap-content-types": types }))
}

fn responses(members: &[Member<'_>]) -> Value {
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    let mut json_types: BTreeSet<&str> = BTreeSet::new();
    for (_, e) in members {
        for (status, n) in &e.statuses {
            if is_status_code(status) {
                *counts.entry(status).or_insert(0) += n;
            }
        }
        json_types.extend(
            e.response_content_types
                .keys()
                .map(String::as_str)
                .filter(|ct| is_json(ct)),
        );
    }
    if json_types.is_empty() {
        json_types.insert("application/json");
    }
    let mut out = Map::new();
    for (status, n) in counts {
        let fields = merge_fields(members.iter().map(|(_, e)| {
            (
                e.response_fields.get(status).map_or(&[][..], Vec::as_slice),
                e.statuses.get(status).copied().unwrap_or(0),
            )
        }));
        let mut response = json!({
            "description": format!("Observed {n} times."),
            "x-shadowtap-count": n,
        });
        if !fields.is_empty() {
            let schema = body_schema(&fields);
            response["content"] = json_types
                .iter()
                .map(|ct| ((*ct).to_owned(), json!({ "schema": schema })))
                .collect::<Map<_, _>>()
                .into();
        }
        out.insert(status.to_owned(), response);
    }
    if out.is_empty() {
        out.insert(
            "default".into(),
            json!({ "description": "No response was observed." }),
        );
    }
    Value::Object(out)
}

/// Security schemes defined so far, and the name of each.
#[derive(Default)]
struct Schemes {
    defined: BTreeMap<String, Value>,
}

impl Schemes {
    /// The requirement alternatives for scheme counts and variants, defining
    /// the schemes they name.
    fn requirements(
        &mut self,
        auth: &BTreeMap<&str, u64>,
        variants: &BTreeMap<&str, u64>,
    ) -> Vec<Value> {
        let mut out = Vec::new();
        let mut anonymous = false;
        for scheme in auth.keys() {
            let defined: Vec<(String, Value)> = match *scheme {
                "none" => {
                    anonymous = true;
                    Vec::new()
                }
                "basic" => vec![("basic".into(), json!({ "type": "http", "scheme": "basic" }))],
                "bearer_jwt" => vec![(
                    "bearerJwt".into(),
                    json!({ "type": "http", "scheme": "bearer", "bearerFormat": "JWT" }),
                )],
                "bearer_opaque" => vec![(
                    "bearer".into(),
                    json!({ "type": "http", "scheme": "bearer" }),
                )],
                "digest" => vec![(
                    "digest".into(),
                    json!({ "type": "http", "scheme": "digest" }),
                )],
                "cookie" => vec![(
                    "cookie".into(),
                    json!({
                        "type": "apiKey",
                        "in": "cookie",
                        "name": "session",
                        "description": "A session cookie. shadowtap does not record cookie names, so `session` is a placeholder.",
                    }),
                )],
                "api_key" => variants
                    .keys()
                    .filter_map(|v| {
                        let rest = v.strip_prefix("api_key:")?;
                        let (place, name) = rest.split_once(':')?;
                        matches!(place, "header" | "query" | "cookie").then(|| {
                            (
                                sanitize(&format!("apiKey_{place}_{name}")),
                                json!({ "type": "apiKey", "in": place, "name": name }),
                            )
                        })
                    })
                    .collect(),
                // `other`: nothing visible to describe.
                _ => Vec::new(),
            };
            for (name, scheme) in defined {
                let name = self.define(name, scheme);
                out.push(json!({ name: [] }));
            }
        }
        if anonymous && !out.is_empty() {
            out.push(json!({}));
        }
        out
    }

    /// Defines `scheme` under `name` (or a suffixed name when `name` holds
    /// another scheme); returns the name used.
    fn define(&mut self, name: String, scheme: Value) -> String {
        let mut candidate = name.clone();
        for i in 2.. {
            match self.defined.get(&candidate) {
                Some(existing) if *existing == scheme => return candidate,
                None => break,
                Some(_) => candidate = format!("{name}_{i}"),
            }
        }
        self.defined.insert(candidate.clone(), scheme);
        candidate
    }
}

/// A schema name: the characters components keys allow, others as `_`.
fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".-_".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The template with every parameter written `{}`: templates of one shape
/// are one path to OpenAPI.
fn shape(template: &str) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        out.push_str(&rest[..=open]);
        out.push('}');
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    out
}

/// The parameter names of a template, in order.
fn template_params(template: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        out.push(&rest[open + 1..open + close]);
        rest = &rest[open + close + 1..];
    }
    out
}

/// The kind of each parameter of an endpoint's template, in order; `None`
/// for parameters inside a declared segment (`{name}.json`).
fn param_kinds(e: &EndpointReport) -> Vec<Option<ParamKind>> {
    let mut out = Vec::new();
    for s in &e.segments {
        match s.segment.kind {
            Some(kind) => out.push(Some(kind)),
            None if s.segment.rule == Rule::Contract => {
                out.extend(template_params(&s.segment.text).iter().map(|_| None));
            }
            None => {}
        }
    }
    out
}

/// The endpoint with the most requests (the first of those).
fn busiest<'a, 'b: 'a>(
    members: impl Iterator<Item = &'a Member<'b>>,
) -> Option<&'b EndpointReport> {
    let mut best: Option<&EndpointReport> = None;
    for (_, e) in members {
        if best.is_none_or(|b| e.requests > b.requests) {
            best = Some(e);
        }
    }
    best
}

/// Parameter names for a shape: its busiest template's, made unique.
fn param_names(template: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for (i, name) in template_params(template).into_iter().enumerate() {
        let base = if name.is_empty() {
            format!("param{}", i + 1)
        } else {
            name.to_owned()
        };
        let mut candidate = base.clone();
        let mut n = 2;
        while names.contains(&candidate) {
            candidate = format!("{base}{n}");
            n += 1;
        }
        names.push(candidate);
    }
    names
}

/// `template` with its parameters renamed to `names`, in order.
fn rename(template: &str, names: &[String]) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    let mut i = 0;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        out.push_str(&rest[..=open]);
        out.push_str(names.get(i).map_or("", String::as_str));
        out.push('}');
        rest = &rest[open + close + 1..];
        i += 1;
    }
    out.push_str(rest);
    out
}

fn param_schema(kinds: &BTreeSet<(&str, Option<&str>)>) -> Value {
    let one = |(ty, format): (&str, Option<&str>)| match format {
        Some(f) => json!({ "type": ty, "format": f }),
        None => json!({ "type": ty }),
    };
    // A plain string also matches every formatted string: keep it alone.
    let plain_string = kinds.contains(&("string", None));
    let branches: Vec<Value> = kinds
        .iter()
        .filter(|(ty, format)| !(plain_string && *ty == "string" && format.is_some()))
        .map(|k| one(*k))
        .collect();
    match <[Value; 1]>::try_from(branches) {
        Ok([only]) => only,
        Err(branches) if branches.is_empty() => json!({ "type": "string" }),
        Err(branches) => json!({ "oneOf": branches }),
    }
}

fn operation_id(method: &str, path: &str, taken: &mut BTreeSet<String>) -> String {
    let mut base = method.to_ascii_lowercase();
    for part in path
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|p| !p.is_empty())
    {
        base.push('_');
        base.push_str(part);
    }
    let mut id = base.clone();
    let mut n = 2;
    while !taken.insert(id.clone()) {
        id = format!("{base}_{n}");
        n += 1;
    }
    id
}

fn server_url(service: &str) -> String {
    let mut url = String::from("http://");
    for b in service.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:[]@!$&'()*+,;=".contains(&b) {
            url.push(char::from(b));
        } else {
            url.push_str(&format!("%{b:02X}"));
        }
    }
    url
}

fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json")
        || essence.to_ascii_lowercase().ends_with("+json")
}

fn is_status_code(s: &str) -> bool {
    matches!(s.as_bytes(), [b'1'..=b'5', b'0'..=b'9', b'0'..=b'9'])
}

/// Field lists of several endpoints (each with the number of bodies it
/// stands for) as one: types and formats unite, presence is the weighted
/// mean (a field missing from a list counts as absent there).
fn merge_fields<'a>(lists: impl Iterator<Item = (&'a [FieldReport], u64)>) -> Vec<FieldReport> {
    let lists: Vec<(&[FieldReport], u64)> = lists.filter(|(l, _)| !l.is_empty()).collect();
    if let [(only, _)] = lists.as_slice() {
        return only.to_vec();
    }
    let total: u64 = lists.iter().map(|(_, w)| *w).sum();
    let mut merged: BTreeMap<&str, (BTreeSet<&str>, BTreeSet<&str>, f64)> = BTreeMap::new();
    for (list, weight) in &lists {
        for f in *list {
            let m = merged.entry(&f.path).or_default();
            m.0.extend(f.types.iter().map(String::as_str));
            m.1.extend(f.formats.iter().map(String::as_str));
            m.2 += f.presence * *weight as f64;
        }
    }
    merged
        .into_iter()
        .map(|(path, (types, formats, weighted))| FieldReport {
            path: path.to_owned(),
            types: types.into_iter().map(str::to_owned).collect(),
            formats: formats.into_iter().map(str::to_owned).collect(),
            presence: if total == 0 {
                0.0
            } else {
                super::round3(weighted / total as f64)
            },
        })
        .collect()
}

/// A node of the rebuilt body schema.
#[derive(Default)]
struct Node<'a> {
    field: Option<&'a FieldReport>,
    properties: BTreeMap<String, Node<'a>>,
    items: Option<Box<Node<'a>>>,
}

/// The JSON Schema of a body from its flattened fields.
fn body_schema(fields: &[FieldReport]) -> Value {
    let mut root = Node::default();
    for f in fields {
        let mut node = &mut root;
        for key in f.keys() {
            node = if key == "*" {
                node.items.get_or_insert_with(Box::default)
            } else {
                node.properties.entry(key).or_default()
            };
        }
        node.field = Some(f);
    }
    node_schema(&root, 1.0, false)
}

/// `presence` is the node's own (for `required` of its members);
/// `in_items` is true inside array elements.
fn node_schema(node: &Node<'_>, presence: f64, in_items: bool) -> Value {
    let mut s = Map::new();
    let mut types: Vec<&str> = node
        .field
        .map(|f| f.types.iter().map(String::as_str).collect())
        .unwrap_or_default();
    if types.is_empty() {
        if !node.properties.is_empty() {
            types.push("object");
        } else if node.items.is_some() {
            types.push("array");
        }
    }
    match types.as_slice() {
        [] => {}
        [one] => {
            s.insert("type".into(), json!(one));
        }
        many => {
            s.insert("type".into(), json!(many));
        }
    }
    if let Some([format]) = node.field.map(|f| f.formats.as_slice()) {
        s.insert("format".into(), json!(format));
    }
    if !node.properties.is_empty() {
        let mut properties = Map::new();
        let mut required = Vec::new();
        for (key, child) in &node.properties {
            let p = child.field.map_or(presence, |f| f.presence);
            let mut schema = node_schema(child, p, in_items);
            if let Value::Object(o) = &mut schema {
                o.insert("x-shadowtap-presence".into(), json!(p));
            }
            if !in_items && p >= presence {
                required.push(key.clone());
            }
            properties.insert(key.clone(), schema);
        }
        s.insert("properties".into(), Value::Object(properties));
        if !required.is_empty() {
            s.insert("required".into(), json!(required));
        }
    }
    if let Some(items) = &node.items {
        let p = items.field.map_or(presence, |f| f.presence);
        s.insert("items".into(), node_schema(items, p, true));
    }
    Value::Object(s)
}

#[cfg(test)]
mod tests;
