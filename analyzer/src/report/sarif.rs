//! The SARIF 2.1.0 rendering, for code-scanning tools.
//!
//! - `runs[0].tool.driver`: `shadowtap`, its version, and one rule per
//!   finding kind, drift split by sub-kind (`drift/status`,
//!   `drift/response_field`, …). Every rule is always listed, in a fixed
//!   order, so a rule's index never changes between runs.
//! - One result per finding: `level` from the severity (high → `error`,
//!   medium → `warning`, low and info → `note`), the finding's message, a
//!   physical location on the contract file (its name as given, relative to
//!   the repository root, `%SRCROOT%`) when the finding was judged against
//!   one, logical locations for the service and the `METHOD template`
//!   operation, and the evidence (names and counts only) in `properties`.
//! - `partialFingerprints.shadowtapFinding/v1`: SHA-256 over kind, service,
//!   method, template, drift sub-kind, the evidence's key names and the
//!   values of its identifying keys (`field`, `parameter`, `status`,
//!   `content_type`). Counts and messages are left out, so the same finding
//!   keeps its fingerprint from run to run and code scanning dedupes it.
//! - `runs[0].artifacts`: the contracts, with their SHA-256.
//!
//! Findings without a contract file (shadow services) have logical
//! locations only; some code-scanning services show such results only
//! in the SARIF itself.

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::{rule_id, Report};
use crate::findings::{Finding, Severity};

/// SARIF's JSON schema, named by `$schema`.
pub const SARIF_SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// Evidence keys whose values tell two findings of one endpoint apart.
const IDENTIFYING_EVIDENCE: [&str; 4] = ["field", "parameter", "status", "content_type"];

/// One rule: id, short and full description, help.
struct Rule {
    id: &'static str,
    short: &'static str,
    full: &'static str,
    help: &'static str,
}

const RULES: &[Rule] = &[
    Rule {
        id: "shadow",
        short: "Traffic to a service no contract covers",
        full: "The service answered requests, but no OpenAPI contract given to shadowtap covers its host.",
        help: "Write a contract for the service (or map an existing one with --spec HOST=FILE), or find out why the service exists.",
    },
    Rule {
        id: "undocumented",
        short: "Operation missing from the contract",
        full: "Traffic reached a method and path the service's contract does not declare (including a new method on a documented path).",
        help: "Document the operation in the contract, or remove the endpoint if it should not be reachable.",
    },
    Rule {
        id: "zombie",
        short: "Call to a deprecated operation",
        full: "Traffic reached an operation the contract marks deprecated.",
        help: "Move the callers to the replacement operation, then retire this one.",
    },
    Rule {
        id: "unused",
        short: "Documented operation never called",
        full: "The contract declares an operation that no captured request reached; the confidence grows with the service's traffic.",
        help: "Check whether the operation is still needed; remove it from the contract and the service if not.",
    },
    Rule {
        id: "drift/query_parameter",
        short: "Undeclared query parameter",
        full: "Requests carried a query parameter the operation does not declare.",
        help: "Declare the parameter in the contract, or stop clients from sending it.",
    },
    Rule {
        id: "drift/status",
        short: "Undeclared response status",
        full: "The operation answered with a status code its contract does not declare (and no default response covers).",
        help: "Declare the status in the contract's responses, or fix the service.",
    },
    Rule {
        id: "drift/response_field",
        short: "Undeclared response field",
        full: "Response bodies carried a field the declared response schema does not have.",
        help: "Add the field to the response schema, or stop the service from exposing it.",
    },
    Rule {
        id: "drift/missing_field",
        short: "Required response field missing",
        full: "Response bodies lacked a field the declared schema requires.",
        help: "Make the field optional in the contract, or fix the service to always send it.",
    },
    Rule {
        id: "drift/content_type",
        short: "Undeclared content type",
        full: "A request or response used a media type the operation does not declare.",
        help: "Declare the media type in the contract, or fix the client or service.",
    },
    Rule {
        id: "drift/auth",
        short: "Secured operation answered anonymous calls",
        full: "The contract requires credentials for the operation, but requests without credentials were answered 2xx.",
        help: "Enforce authentication on the operation, or declare anonymous access in the contract.",
    },
];

/// The SARIF log of `report`.
pub fn document(report: &Report) -> Value {
    let version = env!("CARGO_PKG_VERSION");
    let rules: Vec<Value> = RULES
        .iter()
        .map(|r| {
            let level = default_level(r.id);
            json!({
                "id": r.id,
                "name": rule_name(r.id),
                "shortDescription": { "text": r.short },
                "fullDescription": { "text": r.full },
                "help": { "text": r.help },
                "defaultConfiguration": { "level": level },
            })
        })
        .collect();
    let artifacts: Vec<Value> = report
        .contracts
        .iter()
        .map(|c| {
            json!({
                "location": { "uri": uri(&c.file), "uriBaseId": "%SRCROOT%" },
                "hashes": { "sha-256": c.sha256 },
                "description": { "text": format!("{} {} (OpenAPI {})", c.title, c.version, c.spec_version) },
            })
        })
        .collect();
    let results: Vec<Value> = report.findings.iter().map(|f| result(report, f)).collect();
    json!({
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "shadowtap",
                    "version": version,
                    "semanticVersion": version,
                    "rules": rules,
                }
            },
            "artifacts": artifacts,
            "results": results,
            "columnKind": "unicodeCodePoints",
        }]
    })
}

fn result(report: &Report, f: &Finding) -> Value {
    let id = rule_id(f);
    let mut r = Map::new();
    r.insert("ruleId".into(), json!(id));
    if let Some(i) = RULES.iter().position(|r| r.id == id) {
        r.insert("ruleIndex".into(), json!(i));
    }
    r.insert("level".into(), json!(level(f.severity)));
    r.insert("message".into(), json!({ "text": f.message }));
    if let Some(file) = &f.spec_file {
        let mut location = json!({
            "physicalLocation": {
                "artifactLocation": { "uri": uri(file), "uriBaseId": "%SRCROOT%" }
            }
        });
        if let Some(i) = report.contracts.iter().position(|c| &c.file == file) {
            location["physicalLocation"]["artifactLocation"]["index"] = json!(i);
        }
        r.insert("locations".into(), json!([location]));
    }
    let mut logical = vec![json!({
        "name": f.service,
        "fullyQualifiedName": f.service,
        "kind": "module",
    })];
    if let (Some(m), Some(t)) = (&f.method, &f.template) {
        logical.push(json!({
            "name": format!("{m} {t}"),
            "fullyQualifiedName": format!("{} {m} {t}", f.service),
            "kind": "function",
            "parentIndex": 0,
        }));
    }
    r.insert("logicalLocations".into(), json!(logical));
    r.insert(
        "partialFingerprints".into(),
        json!({ "shadowtapFinding/v1": fingerprint(f) }),
    );
    let mut properties = Map::new();
    properties.insert("severity".into(), json!(f.severity.as_str()));
    properties.insert("service".into(), json!(f.service));
    for (key, value) in [
        ("method", &f.method),
        ("template", &f.template),
        ("specVersion", &f.spec_version),
        ("operation", &f.operation),
    ] {
        if let Some(v) = value {
            properties.insert(key.into(), json!(v));
        }
    }
    properties.insert("evidence".into(), json!(f.evidence));
    r.insert("properties".into(), Value::Object(properties));
    Value::Object(r)
}

/// The stable identity of a finding (see the module docs).
pub fn fingerprint(f: &Finding) -> String {
    let mut h = Sha256::new();
    let mut part = |s: &str| {
        // Length-prefixed, so no two different tuples hash the same text.
        h.update((s.len() as u64).to_le_bytes());
        h.update(s.as_bytes());
    };
    part(&rule_id(f));
    part(&f.service);
    part(f.method.as_deref().unwrap_or(""));
    part(f.template.as_deref().unwrap_or(""));
    for key in f.evidence.keys() {
        part(key);
        if IDENTIFYING_EVIDENCE.contains(&key.as_str()) {
            let value = &f.evidence[key];
            part(
                &value
                    .as_str()
                    .map_or_else(|| value.to_string(), str::to_owned),
            );
        }
    }
    let digest = h.finalize();
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn level(s: Severity) -> &'static str {
    match s {
        Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

/// The level a rule's findings usually have (the diff's severities).
fn default_level(id: &str) -> &'static str {
    match id {
        "drift/auth" => "error",
        "unused" => "note",
        _ => "warning",
    }
}

/// `drift/response_field` → `DriftResponseField`.
fn rule_name(id: &str) -> String {
    id.split(['/', '_'])
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// A relative file name as a URI reference: `/` separators, anything but
/// unreserved characters and `/` percent-encoded.
fn uri(file: &str) -> String {
    let mut out = String::with_capacity(file.len());
    for b in file.replace('\\', "/").bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::findings::{DriftKind, FindingKind};
    use crate::report::testing::{demo_report, drift_finding, endpoint, report, seg, service};

    fn hand_made() -> Report {
        let e = endpoint("GET", vec![seg("users", None)], 4);
        let template = e.template.clone();
        let mut shadow = drift_finding("other", &template, "/x");
        shadow.kind = FindingKind::Shadow;
        shadow.drift = None;
        shadow.severity = Severity::Medium;
        shadow.method = None;
        shadow.template = None;
        shadow.spec_file = None;
        let mut r = report(
            vec![service("api", vec![e])],
            vec![drift_finding("api", &template, "/secret_field"), shadow],
        );
        r.contracts.push(crate::report::ContractInfo {
            file: "specs/api v1.yaml".to_owned(),
            title: "API".to_owned(),
            version: "1.2.0".to_owned(),
            spec_version: "3.1.0".to_owned(),
            sha256: "ab".repeat(32),
            services: vec!["api".to_owned()],
            operations: 3,
        });
        r
    }

    /// The properties SARIF 2.1.0 requires, checked on every object that
    /// has them.
    fn assert_valid_sarif(log: &Value) {
        assert_eq!(log["version"], "2.1.0");
        let runs = log["runs"].as_array().expect("runs");
        assert_eq!(runs.len(), 1);
        let driver = &runs[0]["tool"]["driver"];
        assert_eq!(driver["name"], "shadowtap");
        let rules = driver["rules"].as_array().expect("rules");
        for rule in rules {
            assert!(rule["id"].is_string());
            for d in ["shortDescription", "fullDescription", "help"] {
                assert!(!rule[d]["text"].as_str().unwrap_or("").is_empty(), "{rule}");
            }
        }
        for r in runs[0]["results"].as_array().expect("results") {
            assert!(
                !r["message"]["text"].as_str().unwrap_or("").is_empty(),
                "{r}"
            );
            let id = r["ruleId"].as_str().expect("ruleId");
            let index = r["ruleIndex"].as_u64().expect("ruleIndex") as usize;
            assert_eq!(rules[index]["id"], id);
            assert!(
                ["error", "warning", "note", "none"].contains(&r["level"].as_str().unwrap_or(""))
            );
            for loc in r["locations"].as_array().into_iter().flatten() {
                let uri = loc["physicalLocation"]["artifactLocation"]["uri"]
                    .as_str()
                    .expect("uri");
                assert!(!uri.contains(' ') && !uri.starts_with('/'), "{uri}");
            }
            assert!(!r["logicalLocations"]
                .as_array()
                .expect("logical")
                .is_empty());
            let fp = r["partialFingerprints"]["shadowtapFinding/v1"]
                .as_str()
                .expect("fp");
            assert_eq!(fp.len(), 64);
        }
    }

    #[test]
    fn demo_log_has_rules_results_and_locations() {
        let log = document(demo_report());
        assert_valid_sarif(&log);
        let run = &log["runs"][0];
        let results = run["results"].as_array().expect("results");
        assert_eq!(results.len(), 25);
        let users = results
            .iter()
            .find(|r| r["logicalLocations"][1]["name"] == "GET /api/v1/users/{userId}")
            .expect("the users finding");
        assert_eq!(users["ruleId"], "undocumented");
        assert_eq!(users["level"], "warning");
        assert_eq!(
            users["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            "analyzer/testdata/specs/oai-v3.0-petstore-expanded.yaml"
        );
        assert_eq!(users["properties"]["evidence"]["requests"], 13);
        assert_eq!(users["logicalLocations"][0]["name"], "127.0.0.1:8080");
        let unused = results
            .iter()
            .find(|r| r["ruleId"] == "unused")
            .expect("unused");
        assert_eq!(unused["level"], "note");
        assert_eq!(
            run["artifacts"][0]["hashes"]["sha-256"],
            "b1633b6309c065c43d56be7c659b0f2c4be03be5a4013b7c3f74b32bd33f62eb"
        );
        // Fingerprints are distinct across the demo's findings.
        let mut fps: Vec<&str> = results
            .iter()
            .filter_map(|r| r["partialFingerprints"]["shadowtapFinding/v1"].as_str())
            .collect();
        fps.sort_unstable();
        fps.dedup();
        assert_eq!(fps.len(), 25);
    }

    #[test]
    fn drift_has_its_own_rule_and_levels_follow_severity() {
        let log = document(&hand_made());
        assert_valid_sarif(&log);
        let rules = log["runs"][0]["tool"]["driver"]["rules"]
            .as_array()
            .expect("rules");
        let ids: Vec<&str> = rules.iter().filter_map(|r| r["id"].as_str()).collect();
        assert!(ids.contains(&"drift/response_field") && ids.contains(&"drift/auth"));
        assert_eq!(ids.len(), 4 + 6);
        let results = log["runs"][0]["results"].as_array().expect("results");
        let drift = &results[0];
        assert_eq!(drift["ruleId"], "drift/response_field");
        assert_eq!(drift["level"], "error");
        assert_eq!(
            drift["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            "specs/api%20v1.yaml"
        );
        assert_eq!(
            drift["locations"][0]["physicalLocation"]["artifactLocation"]["index"],
            0
        );
        assert_eq!(drift["properties"]["evidence"]["field"], "/secret_field");
        let shadow = &results[1];
        assert_eq!(shadow["ruleId"], "shadow");
        assert!(shadow.get("locations").is_none());
        assert_eq!(shadow["logicalLocations"].as_array().map(Vec::len), Some(1));
    }

    #[test]
    fn fingerprints_ignore_counts_but_not_identity() {
        let a = drift_finding("api", "/users", "/a");
        let mut counted = a.clone();
        counted.message = "other wording, 99 requests".to_owned();
        counted.evidence.insert("bodies".to_owned(), json!(99));
        let mut recounted = counted.clone();
        recounted.evidence.insert("bodies".to_owned(), json!(100));
        assert_eq!(fingerprint(&counted), fingerprint(&recounted));
        assert_ne!(
            fingerprint(&a),
            fingerprint(&drift_finding("api", "/users", "/b"))
        );
        let mut status = a.clone();
        status.drift = Some(DriftKind::MissingField);
        assert_ne!(fingerprint(&a), fingerprint(&status));
        assert_eq!(fingerprint(&a), fingerprint(&a.clone()));
    }

    #[test]
    fn rule_names_and_uris() {
        assert_eq!(rule_name("drift/response_field"), "DriftResponseField");
        assert_eq!(uri("a b\\c/ü.yaml"), "a%20b/c/%C3%BC.yaml");
    }
}
