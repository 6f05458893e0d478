//! The SARIF 2.1.0 rendering, for code-scanning tools.
//!
//! - `runs[0].tool.driver`: `shadowtap`, its version, and one rule per
//!   finding kind, drift split by sub-kind (`drift/status`,
//!   `drift/response_field`, …), then one rule per anomaly kind
//!   (`anomaly/error_spike_5xx`, …, tagged `anomaly` and `security` or
//!   `reliability`; the security ones carry a `security-severity` for
//!   GitHub code scanning). Every rule is always listed, in a fixed order,
//!   so a rule's index never changes between runs.
//! - One result per finding: `level` from the severity (high → `error`,
//!   medium → `warning`, low and info → `note`), the finding's message, a
//!   physical location on the contract file (its name as given, relative to
//!   the repository root, `%SRCROOT%`) when the finding was judged against
//!   one, a logical location for the `METHOD template` operation (or the
//!   service), and the evidence (names and counts only) in `properties`.
//! - One result per anomaly, after the findings: `level` from the severity
//!   (high → `error`, medium → `warning`, low → `note`), the explanation as
//!   the message, the service's contract file as physical location when it
//!   has one, a logical location for the endpoint (or the service, for
//!   service-wide anomalies), and in `properties` the window
//!   (`windowStart`, `windowEnd`, RFC 3339), `baseline`, `observed`,
//!   `measure`, `counts`, the `caller` fingerprint prefix of per-caller
//!   kinds, and `provisional: true` when it was judged on a window still
//!   open at the end of the run.
//! - `runs[0].logicalLocations`: every service (`module`) and endpoint
//!   (`function`, its service as parent) that a result names; results refer
//!   to them by `index`.
//! - `partialFingerprints.shadowtapFinding/v1`: SHA-256 over kind, service,
//!   method, template, drift sub-kind, the evidence's key names and the
//!   values of its identifying keys (`field`, `parameter`, `status`,
//!   `content_type`). Counts and messages are left out, so the same finding
//!   keeps its fingerprint from run to run and code scanning dedupes it.
//!   `partialFingerprints.shadowtapAnomaly/v1`: SHA-256 over kind, service,
//!   method, path key (stable when templates are recomputed), caller and
//!   start, so an anomaly re-reported from the store (whose end may have
//!   grown) keeps its identity while a new occurrence gets its own. (A
//!   caller's prefix is the same across runs only under the same
//!   fingerprint key: `--db` or `--fingerprint-key-file`.)
//! - `runs[0].artifacts`: the contracts, with their SHA-256.
//!
//! Results without a contract file (shadow services, anomalies of
//! services without a contract) have logical locations only; some
//! code-scanning services show such results only in the SARIF itself.

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use std::collections::BTreeMap;

use super::{anomaly_endpoint, rule_id, Report};
use crate::anomaly::{Anomaly, AnomalyKind, AnomalySeverity};
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

/// An anomaly kind's rule: its texts, the level of its usual severity and
/// whether it is about security (auth, access control) or reliability.
struct AnomalyRule {
    kind: AnomalyKind,
    rule: Rule,
    level: &'static str,
    security: bool,
}

/// One rule per anomaly kind, in [`AnomalyKind::ALL`] order; wording from
/// `docs/anomalies.md`. The thresholds named are `--anomaly-config`
/// settings.
const ANOMALY_RULES: [AnomalyRule; 10] = [
    AnomalyRule {
        kind: AnomalyKind::ErrorSpike5xx,
        rule: Rule {
            id: "anomaly/error_spike_5xx",
            short: "Spike in server errors (5xx)",
            full: "A window's 5xx share rose far above the endpoint's baseline share: at least min_window_requests answered requests and min_errors errors, a share at least min_rate_factor times and min_rate_increase above the baseline, and a binomial tail surprise of at least `surprise`. An endpoint with too little baseline is judged against its service's. Consecutive spiking windows are one anomaly.",
            help: "Look at the service's errors, logs and deployments in the window. If the endpoint's error rate is noisy by nature, raise `surprise` or `min_rate_factor` in --anomaly-config.",
        },
        level: "error",
        security: false,
    },
    AnomalyRule {
        kind: AnomalyKind::ErrorSpike4xx,
        rule: Rule {
            id: "anomaly/error_spike_4xx",
            short: "Spike in client errors (4xx)",
            full: "A window's 4xx share rose far above the endpoint's baseline share: at least min_window_requests answered requests and min_errors errors, a share at least min_rate_factor times and min_rate_increase above the baseline, and a binomial tail surprise of at least `surprise`. An endpoint with too little baseline is judged against its service's. Consecutive spiking windows are one anomaly.",
            help: "Check for a client release sending bad requests, a changed validation rule or someone probing the endpoint. If the endpoint's error rate is noisy by nature, raise `surprise` or `min_rate_factor`.",
        },
        level: "warning",
        security: false,
    },
    AnomalyRule {
        kind: AnomalyKind::ResponseSizeOutlier,
        rule: Rule {
            id: "anomaly/response_size_outlier",
            short: "Single response far larger than usual",
            full: "A 2xx response was at least size_outlier_ratio times the endpoint's median size and size_outlier_sigmas robust standard deviations above it on a log scale, once the baseline had min_size_baseline sizes. High severity from 100 times the median.",
            help: "Find out what the response carried: a missing page limit, an ignored filter or a bulk export can leak data. If large responses are normal here, raise `size_outlier_ratio`.",
        },
        level: "warning",
        security: false,
    },
    AnomalyRule {
        kind: AnomalyKind::ResponseSizeShift,
        rule: Rule {
            id: "anomaly/response_size_shift",
            short: "Response sizes shifted as a whole",
            full: "A window with at least min_shift_responses sized responses had a median size size_shift_ratio times the baseline median, or less than its inverse.",
            help: "A release may have changed what the endpoint returns (fields added or dropped, pagination changed); confirm the change is intended.",
        },
        level: "warning",
        security: false,
    },
    AnomalyRule {
        kind: AnomalyKind::AnonymousSuccess,
        rule: Rule {
            id: "anomaly/anonymous_success",
            short: "Request without credentials answered 2xx",
            full: "A request without credentials was answered 2xx on an endpoint whose trusted baseline never saw one.",
            help: "Check that the endpoint still enforces authentication (a changed route, middleware or gateway rule).",
        },
        level: "error",
        security: true,
    },
    AnomalyRule {
        kind: AnomalyKind::NewAuthScheme,
        rule: Rule {
            id: "anomaly/new_auth_scheme",
            short: "New authentication scheme on an endpoint",
            full: "A credential scheme the endpoint's trusted baseline never saw (basic, bearer_jwt, bearer_opaque, cookie, digest; API keys by location, api_key:header or api_key:query), carried by a credential new to the service with that scheme. High severity for basic and api_key:query.",
            help: "Confirm the new client and scheme are expected. Basic credentials and API keys in the query string end up in logs and caches; move such clients to a header-borne token.",
        },
        level: "warning",
        security: true,
    },
    AnomalyRule {
        kind: AnomalyKind::JwtAlgChange,
        rule: Rule {
            id: "anomaly/jwt_alg_change",
            short: "New JWT signing algorithm",
            full: "A JWT with an `alg` the endpoint's trusted baseline never saw, such as `none`, or HS256 where RS256 was used. High severity for `none` and HMAC algorithms (HS*), medium otherwise.",
            help: "Make sure token validation pins the expected algorithms and keys; an accepted `none` or HMAC token where RSA was used is an algorithm-confusion attack.",
        },
        level: "error",
        security: true,
    },
    AnomalyRule {
        kind: AnomalyKind::JwtWithoutExp,
        rule: Rule {
            id: "anomaly/jwt_without_exp",
            short: "JWT without an expiry",
            full: "A JWT without `exp` where every token of the endpoint's trusted baseline had one.",
            help: "Find the issuer of the never-expiring token, and make the service reject tokens without `exp`.",
        },
        level: "warning",
        security: true,
    },
    AnomalyRule {
        kind: AnomalyKind::AuthFailureBurst,
        rule: Rule {
            id: "anomaly/auth_failure_burst",
            short: "Burst of refused requests (401/403)",
            full: "One caller fingerprint was refused (401/403) at least caller_failure_burst times in a window, or an endpoint's or a service's 401/403 share spiked (the error-spike test on refusals).",
            help: "Look for credential stuffing, a revoked credential being retried or a broken client; block the caller if it is hostile.",
        },
        level: "error",
        security: true,
    },
    AnomalyRule {
        kind: AnomalyKind::BolaEnumeration,
        rule: Rule {
            id: "anomaly/bola_enumeration",
            short: "Object id enumeration by one caller",
            full: "One caller touched at least bola_min_ids distinct ids of an endpoint's last path parameter in a window and bola_factor times what callers usually touch (p99 of normal callers' per-window counts), or walked sequential integer ids with at least half of the answers 401/403/404.",
            help: "Check the endpoint's object-level authorization (OWASP API1, broken object level authorization) and what the caller received.",
        },
        level: "error",
        security: true,
    },
];

/// The SARIF log of `report`.
pub fn document(report: &Report) -> Value {
    let version = env!("CARGO_PKG_VERSION");
    let mut rules: Vec<Value> = RULES
        .iter()
        .map(|r| rule(r, default_level(r.id), Map::new()))
        .collect();
    rules.extend(ANOMALY_RULES.iter().map(|r| {
        let mut properties = Map::new();
        let tag = if r.security {
            "security"
        } else {
            "reliability"
        };
        properties.insert("tags".into(), json!(["anomaly", tag]));
        if r.security {
            // GitHub's scale: 7.0 and up is high, 4.0 to 6.9 medium.
            let score = if r.level == "error" { "8.0" } else { "5.0" };
            properties.insert("security-severity".into(), json!(score));
        }
        rule(&r.rule, r.level, properties)
    }));
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
    let mut logical = LogicalLocations::default();
    let mut results: Vec<Value> = report
        .findings
        .iter()
        .map(|f| result(report, f, &mut logical))
        .collect();
    results.extend(
        report
            .anomalies
            .iter()
            .map(|a| anomaly_result(report, a, &mut logical)),
    );
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
            "logicalLocations": logical.all,
            "results": results,
            "columnKind": "unicodeCodePoints",
        }]
    })
}

/// A rule (reporting descriptor) with its default level.
fn rule(r: &Rule, level: &str, properties: Map<String, Value>) -> Value {
    let mut v = json!({
        "id": r.id,
        "name": rule_name(r.id),
        "shortDescription": { "text": r.short },
        "fullDescription": { "text": r.full },
        "help": { "text": r.help },
        "defaultConfiguration": { "level": level },
    });
    if !properties.is_empty() {
        v["properties"] = Value::Object(properties);
    }
    v
}

/// `runs[0].logicalLocations`: services and endpoints, each once, in the
/// order results first name them.
#[derive(Default)]
struct LogicalLocations {
    all: Vec<Value>,
    index: BTreeMap<String, usize>,
}

impl LogicalLocations {
    /// The logical location of a result on `service` and, when given, its
    /// `METHOD template` endpoint: a reference to the most specific one.
    fn of(&mut self, service: &str, endpoint: Option<&str>) -> Value {
        let parent = self.add(
            service,
            json!({
                "name": service,
                "fullyQualifiedName": service,
                "kind": "module",
            }),
        );
        let Some(endpoint) = endpoint else {
            return json!({ "index": parent, "fullyQualifiedName": service, "kind": "module" });
        };
        let qualified = format!("{service} {endpoint}");
        let i = self.add(
            &qualified,
            json!({
                "name": endpoint,
                "fullyQualifiedName": qualified,
                "kind": "function",
                "parentIndex": parent,
            }),
        );
        json!({ "index": i, "fullyQualifiedName": qualified, "kind": "function" })
    }

    fn add(&mut self, qualified: &str, location: Value) -> usize {
        if let Some(&i) = self.index.get(qualified) {
            return i;
        }
        self.all.push(location);
        self.index.insert(qualified.to_owned(), self.all.len() - 1);
        self.all.len() - 1
    }
}

/// A result's location: the contract `file` (when there is one) and a
/// logical location.
fn location(
    report: &Report,
    file: Option<&str>,
    service: &str,
    endpoint: Option<&str>,
    logical: &mut LogicalLocations,
) -> Value {
    let mut location = Map::new();
    if let Some(file) = file {
        let mut physical = json!({
            "artifactLocation": { "uri": uri(file), "uriBaseId": "%SRCROOT%" }
        });
        if let Some(i) = report.contracts.iter().position(|c| c.file == file) {
            physical["artifactLocation"]["index"] = json!(i);
        }
        location.insert("physicalLocation".into(), physical);
    }
    location.insert(
        "logicalLocations".into(),
        json!([logical.of(service, endpoint)]),
    );
    Value::Object(location)
}

fn result(report: &Report, f: &Finding, logical: &mut LogicalLocations) -> Value {
    let id = rule_id(f);
    let mut r = Map::new();
    r.insert("ruleId".into(), json!(id));
    if let Some(i) = RULES.iter().position(|r| r.id == id) {
        r.insert("ruleIndex".into(), json!(i));
    }
    r.insert("level".into(), json!(level(f.severity)));
    r.insert("message".into(), json!({ "text": f.message }));
    let endpoint = match (&f.method, &f.template) {
        (Some(m), Some(t)) => Some(format!("{m} {t}")),
        _ => None,
    };
    r.insert(
        "locations".into(),
        json!([location(
            report,
            f.spec_file.as_deref(),
            &f.service,
            endpoint.as_deref(),
            logical
        )]),
    );
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

fn anomaly_result(report: &Report, a: &Anomaly, logical: &mut LogicalLocations) -> Value {
    let mut r = Map::new();
    let i = ANOMALY_RULES
        .iter()
        .position(|r| r.kind == a.kind)
        .unwrap_or(0);
    r.insert("ruleId".into(), json!(ANOMALY_RULES[i].rule.id));
    r.insert("ruleIndex".into(), json!(RULES.len() + i));
    r.insert("level".into(), json!(anomaly_level(a.severity)));
    r.insert("message".into(), json!({ "text": a.explanation }));
    let contract = report
        .services
        .iter()
        .find(|s| s.name == a.service)
        .and_then(|s| s.contract.as_deref());
    let endpoint = anomaly_endpoint(a);
    r.insert(
        "locations".into(),
        json!([location(
            report,
            contract,
            &a.service,
            endpoint.as_deref(),
            logical
        )]),
    );
    r.insert(
        "partialFingerprints".into(),
        json!({ "shadowtapAnomaly/v1": anomaly_fingerprint(a) }),
    );
    let mut properties = Map::new();
    properties.insert("kind".into(), json!(a.kind.as_str()));
    properties.insert("severity".into(), json!(a.severity.as_str()));
    properties.insert("service".into(), json!(a.service));
    for (key, value) in [
        ("method", &a.method),
        ("template", &a.template),
        ("pathKey", &a.path_key),
        ("caller", &a.caller),
    ] {
        if let Some(v) = value {
            properties.insert(key.into(), json!(v));
        }
    }
    properties.insert("windowStart".into(), json!(a.start.to_string()));
    properties.insert("windowEnd".into(), json!(a.end.to_string()));
    properties.insert("baseline".into(), json!(a.baseline));
    properties.insert("observed".into(), json!(a.observed));
    properties.insert("measure".into(), json!(a.measure));
    properties.insert("counts".into(), json!(a.counts));
    if a.provisional {
        properties.insert("provisional".into(), json!(true));
    }
    r.insert("properties".into(), Value::Object(properties));
    Value::Object(r)
}

/// The stable identity of an anomaly (see the module docs).
pub fn anomaly_fingerprint(a: &Anomaly) -> String {
    let mut h = Sha256::new();
    for part in [
        a.kind.as_str(),
        &a.service,
        a.method.as_deref().unwrap_or(""),
        a.path_key.as_deref().unwrap_or(""),
        a.caller.as_deref().unwrap_or(""),
        &a.start.as_nanos().to_string(),
    ] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    let digest = h.finalize();
    digest.iter().map(|b| format!("{b:02x}")).collect()
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

fn anomaly_level(s: AnomalySeverity) -> &'static str {
    match s {
        AnomalySeverity::High => "error",
        AnomalySeverity::Medium => "warning",
        AnomalySeverity::Low => "note",
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
    use crate::report::testing::{
        anomaly, anomaly_report, demo_report, drift_finding, endpoint, report, seg, service,
    };
    use shadowtap_proto::Timestamp;

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
        let mut ids: Vec<&str> = rules.iter().filter_map(|r| r["id"].as_str()).collect();
        assert_eq!(ids.len(), rules.len());
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), rules.len(), "rule ids are unique");
        for rule in rules {
            for d in ["shortDescription", "fullDescription", "help"] {
                assert!(!rule[d]["text"].as_str().unwrap_or("").is_empty(), "{rule}");
            }
        }
        let logical = runs[0]["logicalLocations"].as_array().expect("logical");
        for (i, l) in logical.iter().enumerate() {
            for key in l.as_object().expect("logical location").keys() {
                assert!(
                    ["name", "fullyQualifiedName", "kind", "parentIndex"].contains(&key.as_str()),
                    "{key}"
                );
            }
            if let Some(parent) = l.get("parentIndex") {
                let parent = parent.as_u64().expect("parentIndex") as usize;
                assert!(parent < i, "{l}");
                assert_eq!(logical[parent]["kind"], "module", "{l}");
            }
        }
        for r in runs[0]["results"].as_array().expect("results") {
            // Only properties SARIF 2.1.0 defines for a result (its schema
            // allows no others).
            for key in r.as_object().expect("result").keys() {
                assert!(
                    [
                        "ruleId",
                        "ruleIndex",
                        "level",
                        "message",
                        "locations",
                        "partialFingerprints",
                        "properties"
                    ]
                    .contains(&key.as_str()),
                    "{key}"
                );
            }
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
            let locations = r["locations"].as_array().expect("locations");
            assert_eq!(locations.len(), 1, "{r}");
            if let Some(physical) = locations[0].get("physicalLocation") {
                let uri = physical["artifactLocation"]["uri"].as_str().expect("uri");
                assert!(!uri.contains(' ') && !uri.starts_with('/'), "{uri}");
            }
            let refs = locations[0]["logicalLocations"]
                .as_array()
                .expect("logical");
            assert_eq!(refs.len(), 1, "{r}");
            // Again only properties the schema defines, for a location and
            // a logical location.
            let only = |v: &Value, allowed: &[&str]| {
                for key in v.as_object().expect("object").keys() {
                    assert!(allowed.contains(&key.as_str()), "{key} in {v}");
                }
            };
            only(&locations[0], &["physicalLocation", "logicalLocations"]);
            only(&refs[0], &["index", "name", "fullyQualifiedName", "kind"]);
            let index = refs[0]["index"].as_u64().expect("index") as usize;
            assert_eq!(
                logical[index]["fullyQualifiedName"],
                refs[0]["fullyQualifiedName"]
            );
            let fps = r["partialFingerprints"].as_object().expect("fps");
            assert_eq!(fps.len(), 1);
            let (name, fp) = fps.iter().next().expect("fp");
            let expected = if id.starts_with("anomaly/") {
                "shadowtapAnomaly/v1"
            } else {
                "shadowtapFinding/v1"
            };
            assert_eq!(name, expected);
            assert_eq!(fp.as_str().map(str::len), Some(64));
        }
    }

    /// The logical location a result refers to, and its parent's name.
    fn logical<'l>(log: &'l Value, result: &Value) -> (&'l Value, Option<&'l str>) {
        let all = &log["runs"][0]["logicalLocations"];
        let index = result["locations"][0]["logicalLocations"][0]["index"]
            .as_u64()
            .expect("index") as usize;
        let l = &all[index];
        let parent = l["parentIndex"]
            .as_u64()
            .and_then(|p| all[p as usize]["name"].as_str());
        (l, parent)
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
            .find(|r| logical(&log, r).0["name"] == "GET /api/v1/users/{userId}")
            .expect("the users finding");
        assert_eq!(users["ruleId"], "undocumented");
        assert_eq!(users["level"], "warning");
        assert_eq!(
            users["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            "analyzer/testdata/specs/oai-v3.0-petstore-expanded.yaml"
        );
        assert_eq!(users["properties"]["evidence"]["requests"], 13);
        assert_eq!(
            logical(&log, users),
            (
                &json!({
                    "name": "GET /api/v1/users/{userId}",
                    "fullyQualifiedName": "127.0.0.1:8080 GET /api/v1/users/{userId}",
                    "kind": "function",
                    "parentIndex": 0,
                }),
                Some("127.0.0.1:8080")
            )
        );
        // The service and each endpoint with findings, once.
        let endpoints: std::collections::BTreeSet<_> = demo_report()
            .findings
            .iter()
            .filter_map(|f| Some((f.method.as_ref()?, f.template.as_ref()?)))
            .collect();
        assert_eq!(
            run["logicalLocations"].as_array().map(Vec::len),
            Some(1 + endpoints.len())
        );
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
        assert_eq!(ids.len(), 4 + 6 + 10);
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
        assert!(shadow["locations"][0].get("physicalLocation").is_none());
        let (l, parent) = logical(&log, shadow);
        assert_eq!(
            (l["name"].as_str(), l["kind"].as_str()),
            (Some("other"), Some("module"))
        );
        assert_eq!(parent, None);
    }

    #[test]
    fn every_anomaly_kind_has_a_rule_in_kind_order() {
        for (r, kind) in ANOMALY_RULES.iter().zip(AnomalyKind::ALL) {
            assert_eq!(r.kind, kind);
            assert_eq!(r.rule.id, format!("anomaly/{}", kind.as_str()));
        }
        assert_eq!(ANOMALY_RULES.len(), AnomalyKind::ALL.len());
        assert_eq!(anomaly_level(AnomalySeverity::Low), "note");
    }

    #[test]
    fn anomalies_are_results_of_their_kinds_rules() {
        let mut r = anomaly_report();
        r.services[0].contract = Some("specs/api v1.yaml".to_owned());
        r.contracts = hand_made().contracts;
        let log = document(&r);
        assert_valid_sarif(&log);
        let rules = log["runs"][0]["tool"]["driver"]["rules"]
            .as_array()
            .expect("rules");
        let results = log["runs"][0]["results"].as_array().expect("results");
        assert_eq!(results.len(), 4);

        let spike = &results[0];
        assert_eq!(spike["ruleId"], "anomaly/error_spike_5xx");
        let rule = &rules[spike["ruleIndex"].as_u64().expect("index") as usize];
        assert_eq!(rule["name"], "AnomalyErrorSpike5xx");
        assert_eq!(rule["defaultConfiguration"]["level"], "error");
        assert_eq!(
            rule["properties"]["tags"],
            json!(["anomaly", "reliability"])
        );
        assert!(rule["properties"].get("security-severity").is_none());
        assert!(rule["fullDescription"]["text"]
            .as_str()
            .is_some_and(|t| t.contains("binomial tail surprise")));
        assert_eq!(spike["level"], "error");
        assert_eq!(
            spike["message"]["text"],
            "5xx rate 45.0% against a usual 0.4% (18 of 40 requests)"
        );
        assert_eq!(
            spike["locations"][0]["physicalLocation"]["artifactLocation"],
            json!({ "uri": "specs/api%20v1.yaml", "uriBaseId": "%SRCROOT%", "index": 0 })
        );
        assert_eq!(
            logical(&log, spike).0["fullyQualifiedName"],
            "api GET /users/{userId}"
        );
        assert_eq!(
            spike["properties"],
            json!({
                "kind": "error_spike_5xx",
                "severity": "high",
                "service": "api",
                "method": "GET",
                "template": "/users/{userId}",
                "pathKey": "/users/{int}",
                "windowStart": "2023-11-14T22:15:00.000000000Z",
                "windowEnd": "2023-11-14T22:25:00.000000000Z",
                "baseline": 0.004,
                "observed": 0.45,
                "measure": "5xx share",
                "counts": { "errors": 18, "requests": 40 },
            })
        );

        let bola = &results[1];
        assert_eq!(bola["ruleId"], "anomaly/bola_enumeration");
        assert_eq!(bola["properties"]["caller"], "0a1b2c3d4e5f");
        let rule = &rules[bola["ruleIndex"].as_u64().expect("index") as usize];
        assert_eq!(rule["properties"]["tags"], json!(["anomaly", "security"]));
        assert_eq!(rule["properties"]["security-severity"], "8.0");

        let outlier = &results[2];
        assert_eq!(outlier["ruleId"], "anomaly/response_size_outlier");
        assert_eq!(outlier["level"], "warning");

        // Service-wide: the service is the logical location.
        let burst = &results[3];
        assert_eq!(burst["ruleId"], "anomaly/auth_failure_burst");
        let (l, parent) = logical(&log, burst);
        assert_eq!(
            (l["name"].as_str(), l["kind"].as_str()),
            (Some("api"), Some("module"))
        );
        assert_eq!(parent, None);
        assert!(burst["properties"].get("method").is_none());
        assert_eq!(burst["properties"]["provisional"], true);
        // The endpoint both the spike and the enumeration hit is listed once.
        assert_eq!(
            log["runs"][0]["logicalLocations"].as_array().map(Vec::len),
            Some(3)
        );

        // Without a contract, logical locations only.
        let log = document(&anomaly_report());
        assert_valid_sarif(&log);
        assert!(log["runs"][0]["results"][0]["locations"][0]
            .get("physicalLocation")
            .is_none());
    }

    #[test]
    fn anomaly_fingerprints_keep_identity_as_the_window_grows() {
        let a = anomaly(AnomalyKind::BolaEnumeration, AnomalySeverity::High);
        let mut grown = a.clone();
        grown.end = Timestamp(a.end.as_nanos() + 300_000_000_000);
        grown.observed = 400.0;
        grown.counts.insert("requests".to_owned(), 999);
        grown.template = Some("/users/{id}".to_owned());
        grown.explanation = "other words".to_owned();
        assert_eq!(anomaly_fingerprint(&a), anomaly_fingerprint(&grown));
        let mut later = a.clone();
        later.start = Timestamp(a.start.as_nanos() + 3_600_000_000_000);
        let mut caller = a.clone();
        caller.caller = Some("0a1b2c3d4e5f".to_owned());
        let mut kind = a.clone();
        kind.kind = AnomalyKind::AuthFailureBurst;
        for other in [later, caller, kind] {
            assert_ne!(anomaly_fingerprint(&a), anomaly_fingerprint(&other));
        }
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
