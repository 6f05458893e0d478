//! Computing findings from the inventory and the contracts.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;

use super::{DriftKind, Finding, FindingKind, Severity};
use crate::contracts::ContractSet;
use crate::inventory::{Endpoint, Inventory};
use crate::observe::{split_field_path, FieldNames, SchemaStats};
use crate::spec::{Contract, Operation, ParamLocation, Schema, SecurityScheme};

/// Service name → index of the contract covering it.
pub type ServiceContracts = BTreeMap<String, usize>;

/// Every finding, sorted.
pub fn diff(inventory: &Inventory, set: &ContractSet, covering: &ServiceContracts) -> Vec<Finding> {
    let mut out = Vec::new();
    if set.is_empty() {
        return out;
    }
    let mut seen_ops: BTreeMap<usize, BTreeSet<String>> = BTreeMap::new();
    let mut traffic: BTreeMap<usize, u64> = BTreeMap::new();
    for service in &inventory.services {
        let Some(&ci) = covering.get(&service.name) else {
            out.push(Finding {
                kind: FindingKind::Shadow,
                drift: None,
                severity: Severity::Medium,
                service: service.name.clone(),
                method: None,
                template: None,
                message: format!(
                    "{} requests to {} endpoints of a service no contract covers",
                    service.requests,
                    service.endpoints.len()
                ),
                evidence: [
                    ("requests".to_owned(), json!(service.requests)),
                    ("endpoints".to_owned(), json!(service.endpoints.len())),
                ]
                .into(),
                spec_file: None,
                spec_version: None,
                operation: None,
            });
            continue;
        };
        *traffic.entry(ci).or_insert(0) += service.requests;
        let contract = &set.contracts[ci];
        for e in &service.endpoints {
            let op = e
                .contract
                .and_then(|c| set.operation(c, &e.method, &e.template));
            let Some(op) = op else {
                if !route_exists(e) {
                    // Only "not found" answers: the server has no such
                    // route either (probes, typos, scanners).
                    continue;
                }
                let path_known = e.contract.is_some_and(|c| set.has_path(c, &e.template));
                out.push(finding(
                    FindingKind::Undocumented,
                    None,
                    Severity::Medium,
                    e,
                    contract,
                    None,
                    if path_known {
                        format!(
                            "{} {} is not in the contract: the path is documented, the method is not ({} requests)",
                            e.method, e.template, e.stats.count
                        )
                    } else {
                        format!(
                            "{} {} is not in the contract ({} requests)",
                            e.method, e.template, e.stats.count
                        )
                    },
                    [("requests", json!(e.stats.count)), ("path_documented", json!(path_known))],
                ));
                continue;
            };
            seen_ops.entry(ci).or_default().insert(op.pointer.clone());
            check_operation(e, op, contract, &inventory.names, &mut out);
        }
    }
    // Unused: documented operations of covering contracts never seen.
    for (&ci, &requests) in &traffic {
        let contract = &set.contracts[ci];
        let ops = contract.operations.len();
        let services: Vec<&String> = covering
            .iter()
            .filter(|(_, &c)| c == ci)
            .map(|(s, _)| s)
            .collect();
        for op in &contract.operations {
            if seen_ops.get(&ci).is_some_and(|s| s.contains(&op.pointer)) {
                continue;
            }
            let confidence = unused_confidence(requests, ops);
            out.push(Finding {
                kind: FindingKind::Unused,
                drift: None,
                severity: if confidence >= 0.9 {
                    Severity::Low
                } else {
                    Severity::Info
                },
                service: services
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                method: Some(op.method.clone()),
                template: Some(set.full_template(ci, op)),
                message: format!(
                    "{} {} is documented but was never called ({} requests to the service; confidence {:.2})",
                    op.method,
                    set.full_template(ci, op),
                    requests,
                    confidence
                ),
                evidence: [
                    ("service_requests".to_owned(), json!(requests)),
                    ("documented_operations".to_owned(), json!(ops)),
                    ("confidence".to_owned(), json!(crate::report::round3(confidence))),
                ]
                .into(),
                spec_file: Some(contract.file.clone()),
                spec_version: Some(contract.version.clone()),
                operation: Some(op.pointer.clone()),
            });
        }
    }
    out.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    out
}

/// Whether the server answered at least once with something other than
/// "no such route or method" (404, 405, 501), or never answered at all.
fn route_exists(e: &Endpoint) -> bool {
    let s = &e.stats;
    s.statuses.is_empty() || s.statuses.keys().any(|c| !matches!(c, 404 | 405 | 501))
}

/// How sure "never called" is: the chance that an operation getting an
/// equal share (1/`operations`) of `requests` would have been seen at least
/// once. Three requests to a ten-operation service give 0.27; a thousand
/// give 1.0.
pub fn unused_confidence(requests: u64, operations: usize) -> f64 {
    if operations == 0 {
        return 0.0;
    }
    let miss = 1.0 - 1.0 / operations as f64;
    1.0 - miss.powf(requests as f64)
}

#[allow(
    clippy::too_many_arguments,
    reason = "one constructor for every finding of an endpoint"
)]
fn finding<const N: usize>(
    kind: FindingKind,
    drift: Option<DriftKind>,
    severity: Severity,
    e: &Endpoint,
    contract: &Contract,
    op: Option<&Operation>,
    message: String,
    evidence: [(&str, serde_json::Value); N],
) -> Finding {
    Finding {
        kind,
        drift,
        severity,
        service: e.service.clone(),
        method: Some(e.method.clone()),
        template: Some(e.template.clone()),
        message,
        evidence: evidence
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
        spec_file: Some(contract.file.clone()),
        spec_version: Some(contract.version.clone()),
        operation: op.map(|o| o.pointer.clone()),
    }
}

fn check_operation(
    e: &Endpoint,
    op: &Operation,
    contract: &Contract,
    names: &FieldNames,
    out: &mut Vec<Finding>,
) {
    let s = &e.stats;
    let label = format!("{} {}", e.method, e.template);
    if op.deprecated {
        out.push(finding(
            FindingKind::Zombie,
            None,
            Severity::Medium,
            e,
            contract,
            Some(op),
            format!(
                "{label} is deprecated but was called {} times by {} callers",
                s.count,
                s.callers.estimate()
            ),
            [
                ("requests", json!(s.count)),
                ("callers", json!(s.callers.estimate())),
                ("last_seen_ns", json!(s.last_seen_ns)),
            ],
        ));
    }

    // Query parameters: declared ones, plus API keys carried in the query.
    let declared: BTreeSet<&str> = op
        .parameters
        .iter()
        .filter(|p| p.location == ParamLocation::Query)
        .map(|p| p.name.as_str())
        .chain(
            contract
                .security_schemes
                .values()
                .filter_map(|sc| match sc {
                    SecurityScheme::ApiKey {
                        name,
                        location: ParamLocation::Query,
                    } => Some(name.as_str()),
                    _ => None,
                }),
        )
        .collect();
    for (name, count) in &s.query_params {
        if !declared.contains(name.as_str()) {
            out.push(finding(
                FindingKind::Drift,
                Some(DriftKind::QueryParameter),
                Severity::Low,
                e,
                contract,
                Some(op),
                format!("{label}: query parameter `{name}` is not declared ({count} requests)"),
                [("parameter", json!(name)), ("requests", json!(count))],
            ));
        }
    }

    // Status codes.
    for (status, count) in &s.statuses {
        if !status_declared(op, *status) {
            out.push(finding(
                FindingKind::Drift,
                Some(DriftKind::Status),
                Severity::Low,
                e,
                contract,
                Some(op),
                format!("{label}: status {status} is not declared ({count} responses)"),
                [("status", json!(status)), ("responses", json!(count))],
            ));
        }
    }

    // Content types, both directions.
    let lower = |types: &mut dyn Iterator<Item = &String>| -> BTreeSet<String> {
        types.map(|t| t.to_ascii_lowercase()).collect()
    };
    let declared_responses = lower(&mut op.responses.values().flat_map(|r| r.content.keys()));
    let declared_requests = op
        .request_body
        .as_ref()
        .map(|body| lower(&mut body.content.keys()))
        .unwrap_or_default();
    for (direction, unit, declared, seen) in [
        (
            "response",
            "responses",
            &declared_responses,
            &s.response_content_types,
        ),
        (
            "request",
            "requests",
            &declared_requests,
            &s.request_content_types,
        ),
    ] {
        for (ct, count) in seen {
            if !declared.is_empty() && !media_declared(declared, ct) {
                out.push(finding(
                    FindingKind::Drift,
                    Some(DriftKind::ContentType),
                    Severity::Low,
                    e,
                    contract,
                    Some(op),
                    format!(
                        "{label}: {direction} content type `{ct}` is not declared ({count} {unit})"
                    ),
                    [("content_type", json!(ct)), (unit, json!(count))],
                ));
            }
        }
    }
    for (status, schema) in &s.response_schemas {
        let Some(declared) = response_schema(op, *status) else {
            continue;
        };
        check_fields(
            e, op, contract, names, &label, *status, schema, declared, out,
        );
    }

    // Auth drift: the contract requires credentials, anonymous calls succeeded.
    if op.requires_auth() && s.anonymous_2xx > 0 {
        out.push(finding(
            FindingKind::Drift,
            Some(DriftKind::Auth),
            Severity::High,
            e,
            contract,
            Some(op),
            format!(
                "{label}: the contract requires {} but {} requests without credentials got 2xx",
                op.security
                    .iter()
                    .map(|alt| alt.join("+"))
                    .collect::<Vec<_>>()
                    .join(" or "),
                s.anonymous_2xx
            ),
            [
                ("anonymous_2xx", json!(s.anonymous_2xx)),
                ("requests", json!(s.count)),
                ("security", json!(op.security)),
            ],
        ));
    }
}

fn status_declared(op: &Operation, status: u16) -> bool {
    let exact = status.to_string();
    let range = format!("{}XX", status / 100);
    op.responses
        .keys()
        .any(|k| k == &exact || k.eq_ignore_ascii_case(&range) || k == "default")
}

fn media_declared(declared: &BTreeSet<String>, observed: &str) -> bool {
    let observed = observed.to_ascii_lowercase();
    let top = observed.split('/').next().unwrap_or("");
    declared.iter().any(|d| {
        let d = d.split(';').next().unwrap_or("").trim();
        d == observed || d == "*/*" || d.strip_suffix("/*").is_some_and(|t| t == top)
    })
}

/// The declared JSON schema of the response to `status`: exact code, then
/// `NXX`, then `default`; a JSON media type's schema.
fn response_schema(op: &Operation, status: u16) -> Option<&Schema> {
    let exact = status.to_string();
    let range = format!("{}XX", status / 100);
    let response = op
        .responses
        .get(&exact)
        .or_else(|| {
            op.responses
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(&range))
                .map(|(_, v)| v)
        })
        .or_else(|| op.responses.get("default"))?;
    response
        .content
        .iter()
        .find(|(t, _)| t.contains("json"))
        .and_then(|(_, s)| s.as_ref())
}

#[allow(
    clippy::too_many_arguments,
    reason = "the context of one status's field check"
)]
fn check_fields(
    e: &Endpoint,
    op: &Operation,
    contract: &Contract,
    names: &FieldNames,
    label: &str,
    status: u16,
    observed: &SchemaStats,
    declared: &Schema,
    out: &mut Vec<Finding>,
) {
    // Extra fields: present in traffic, unknown to the schema. Report the
    // outermost unknown field only (its children are unknown too).
    let mut reported: Vec<&str> = Vec::new();
    for (path, stats) in observed.named(names) {
        if path.is_empty() || reported.iter().any(|r| path.starts_with(&format!("{r}/"))) {
            continue;
        }
        let keys = split_field_path(path);
        if let Lookup::Undeclared = lookup(declared, &keys) {
            reported.push(path);
            out.push(finding(
                FindingKind::Drift,
                Some(DriftKind::ResponseField),
                Severity::Medium,
                e,
                contract,
                Some(op),
                format!(
                    "{label}: response {status} has field `{path}` that the contract does not declare (in {} of {} bodies)",
                    stats.present, observed.bodies
                ),
                [
                    ("status", json!(status)),
                    ("field", json!(path)),
                    ("present", json!(stats.present)),
                    ("bodies", json!(observed.bodies)),
                ],
            ));
        }
    }
    // Required fields missing, judged on whole bodies only.
    if observed.sampled > 0 || observed.bodies == 0 {
        return;
    }
    let mut missing = Vec::new();
    required_paths(declared, "", &mut missing, 0);
    for path in missing {
        let present = observed.field(names, &path).map_or(0, |f| f.present);
        // A required field inside an optional object counts only where the
        // parent appeared.
        let parent = path.rsplit_once('/').map_or("", |(p, _)| p);
        let parent_present = if parent.is_empty() {
            observed.bodies
        } else {
            observed.field(names, parent).map_or(0, |f| f.present)
        };
        if parent_present > 0 && present < parent_present && !parent.contains('*') {
            out.push(finding(
                FindingKind::Drift,
                Some(DriftKind::MissingField),
                Severity::Low,
                e,
                contract,
                Some(op),
                format!(
                    "{label}: response {status} lacks required field `{path}` in {} of {} bodies",
                    parent_present - present,
                    parent_present
                ),
                [
                    ("status", json!(status)),
                    ("field", json!(path)),
                    ("missing", json!(parent_present - present)),
                    ("bodies", json!(parent_present)),
                ],
            ));
        }
    }
}

enum Lookup {
    Declared,
    Undeclared,
    /// The schema doesn't describe this deep (open object, recursion cut).
    Unknown,
}

fn lookup(schema: &Schema, keys: &[String]) -> Lookup {
    let Some((key, rest)) = keys.split_first() else {
        return Lookup::Declared;
    };
    if schema.recursive {
        return Lookup::Unknown;
    }
    if !schema.any_of.is_empty() {
        let mut unknown = false;
        for branch in &schema.any_of {
            match lookup(branch, keys) {
                Lookup::Declared => return Lookup::Declared,
                Lookup::Unknown => unknown = true,
                Lookup::Undeclared => {}
            }
        }
        if unknown || (schema.properties.is_empty() && schema.items.is_none()) {
            return if unknown {
                Lookup::Unknown
            } else {
                Lookup::Undeclared
            };
        }
    }
    if key == "*" {
        return match &schema.items {
            Some(items) => lookup(items, rest),
            None => Lookup::Unknown,
        };
    }
    match schema.properties.get(key) {
        Some(child) => lookup(child, rest),
        // No properties at all: a free-form object, nothing to compare.
        None if schema.properties.is_empty() => Lookup::Unknown,
        // `additionalProperties` given as a schema: extra keys are allowed.
        None if schema.additional_properties == Some(true) => Lookup::Unknown,
        None => Lookup::Undeclared,
    }
}

/// Paths of required fields, following objects (not arrays) down to a
/// bounded depth.
fn required_paths(schema: &Schema, prefix: &str, out: &mut Vec<String>, depth: usize) {
    if depth > 8 || schema.recursive {
        return;
    }
    for name in &schema.required {
        let mut p = prefix.to_owned();
        p.push('/');
        crate::observe::escape_key(name, &mut p);
        out.push(p.clone());
        if let Some(child) = schema.properties.get(name) {
            required_paths(child, &p, out, depth + 1);
        }
    }
}
