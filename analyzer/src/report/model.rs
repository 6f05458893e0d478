//! The report document: what every output format renders, what the store
//! keeps between runs, and (as JSON) a documented, versioned interface.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use shadowtap_proto::Timestamp;

use crate::anomaly::Anomaly;
use crate::findings::Finding;
use crate::inventory::{Endpoint, Inventory, SegmentEvidence};
use crate::observe::{split_field_path, FieldNames, SchemaStats, TypeSet, FORMATS};

/// Version of the JSON report schema (`docs/report.md`).
pub const REPORT_SCHEMA_VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub schema: u32,
    /// `shadowtap <version>`.
    pub generator: String,
    pub summary: Summary,
    /// Inputs of this run (empty for `shadowtap report`).
    #[serde(default)]
    pub inputs: Vec<InputInfo>,
    /// Contracts judged against.
    #[serde(default)]
    pub contracts: Vec<ContractInfo>,
    pub services: Vec<ServiceReport>,
    pub findings: Vec<Finding>,
    /// Anomalies found by the detectors, by start time.
    #[serde(default)]
    pub anomalies: Vec<Anomaly>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub services: usize,
    pub endpoints: usize,
    pub requests: u64,
    /// Findings by kind.
    pub findings: BTreeMap<String, usize>,
    /// Anomalies by kind.
    #[serde(default)]
    pub anomalies: BTreeMap<String, usize>,
    /// Earliest and latest request time over the inventory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_seen: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<Timestamp>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InputInfo {
    pub path: String,
    pub kind: Option<String>,
    pub bytes: Option<u64>,
    /// Skipped because the database already held it.
    pub already_ingested: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ContractInfo {
    pub file: String,
    pub title: String,
    pub version: String,
    pub spec_version: String,
    pub sha256: String,
    /// Services mapped to this contract.
    pub services: Vec<String>,
    pub operations: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServiceReport {
    pub name: String,
    pub requests: u64,
    /// Contract file covering this service, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contract: Option<String>,
    pub endpoints: Vec<EndpointReport>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EndpointReport {
    pub method: String,
    pub template: String,
    pub requests: u64,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    /// The least confident segment's confidence (0–1).
    pub confidence: f64,
    pub segments: Vec<SegmentEvidence>,
    /// Distinct raw path keys merged into the template.
    pub path_keys: usize,
    /// Status code → count (`"unanswered"` for requests without response).
    pub statuses: BTreeMap<String, u64>,
    pub latency_us: Quantiles,
    pub response_bytes: Quantiles,
    pub request_content_types: BTreeMap<String, u64>,
    pub response_content_types: BTreeMap<String, u64>,
    /// Query parameter → share of requests carrying it.
    pub query_params: BTreeMap<String, f64>,
    pub auth_schemes: BTreeMap<String, u64>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub auth_variants: BTreeMap<String, u64>,
    /// Requests without credentials answered 2xx.
    pub anonymous_2xx: u64,
    /// Distinct caller fingerprints (estimated above 256).
    pub callers: u64,
    /// Exchanges with capture gaps or truncated messages.
    pub incomplete: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub request_fields: Vec<FieldReport>,
    /// Response body fields by status.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub response_fields: BTreeMap<String, Vec<FieldReport>>,
    /// The contract operation this endpoint matched (`pointer`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Quantiles {
    pub p50: Option<u64>,
    pub p90: Option<u64>,
    pub p99: Option<u64>,
    pub max: Option<u64>,
}

/// One field of a merged JSON body schema.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FieldReport {
    /// JSON pointer with `*` for array elements; `""` is the body itself.
    pub path: String,
    pub types: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub formats: Vec<String>,
    /// Share of bodies in which the field appeared.
    pub presence: f64,
}

impl EndpointReport {
    pub fn from_endpoint(
        e: &Endpoint,
        operation: Option<String>,
        names: &FieldNames,
        with_fields: bool,
    ) -> EndpointReport {
        let s = &e.stats;
        let mut statuses: BTreeMap<String, u64> = s
            .statuses
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect();
        if s.unanswered > 0 {
            statuses.insert("unanswered".into(), s.unanswered);
        }
        let q = |sk: &crate::sketch::QuantileSketch| Quantiles {
            p50: sk.quantile(0.5),
            p90: sk.quantile(0.9),
            p99: sk.quantile(0.99),
            max: sk.max,
        };
        EndpointReport {
            method: e.method.clone(),
            template: e.template.clone(),
            requests: s.count,
            first_seen: Timestamp(s.first_seen_ns),
            last_seen: Timestamp(s.last_seen_ns),
            confidence: round3(e.confidence),
            segments: e.segments.clone(),
            path_keys: e.path_keys,
            statuses,
            latency_us: q(&s.latency_us),
            response_bytes: q(&s.response_bytes),
            request_content_types: s.request_content_types.clone(),
            response_content_types: s.response_content_types.clone(),
            query_params: s
                .query_params
                .iter()
                .map(|(k, v)| (k.clone(), round3(*v as f64 / s.count.max(1) as f64)))
                .collect(),
            auth_schemes: s.auth_schemes.clone(),
            auth_variants: s.auth_variants.clone(),
            anonymous_2xx: s.anonymous_2xx,
            callers: s.callers.estimate(),
            incomplete: s.incomplete,
            request_fields: if with_fields {
                fields(&s.request_schema, names)
            } else {
                Vec::new()
            },
            response_fields: if with_fields {
                s.response_schemas
                    .iter()
                    .map(|(status, schema)| (status.to_string(), fields(schema, names)))
                    .collect()
            } else {
                BTreeMap::new()
            },
            operation,
        }
    }
}

/// Rounds to three decimals, so reports are stable and readable.
pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn fields(schema: &SchemaStats, names: &FieldNames) -> Vec<FieldReport> {
    schema
        .named(names)
        .into_iter()
        .map(|(path, f)| FieldReport {
            path: path.to_owned(),
            types: TypeSet::names(f.types)
                .into_iter()
                .map(str::to_owned)
                .collect(),
            formats: FORMATS
                .iter()
                .enumerate()
                .filter(|(i, _)| f.formats & (1 << i) != 0)
                .map(|(_, n)| (*n).to_owned())
                .collect(),
            presence: round3(f.present as f64 / schema.bodies.max(1) as f64),
        })
        .collect()
}

impl FieldReport {
    /// The field's keys from the body root (`*` for array elements).
    pub fn keys(&self) -> Vec<String> {
        split_field_path(&self.path)
    }
}

impl Summary {
    pub fn of(inventory: &Inventory, findings: &[Finding], anomalies: &[Anomaly]) -> Summary {
        let mut s = Summary {
            services: inventory.services.len(),
            ..Summary::default()
        };
        for e in inventory.endpoints() {
            s.endpoints += 1;
            s.requests += e.stats.count;
            let (f, l) = (
                Timestamp(e.stats.first_seen_ns),
                Timestamp(e.stats.last_seen_ns),
            );
            s.first_seen = Some(s.first_seen.map_or(f, |x| x.min(f)));
            s.last_seen = Some(s.last_seen.map_or(l, |x| x.max(l)));
        }
        for f in findings {
            *s.findings.entry(f.kind.as_str().to_owned()).or_insert(0) += 1;
        }
        for a in anomalies {
            *s.anomalies.entry(a.kind.as_str().to_owned()).or_insert(0) += 1;
        }
        s
    }
}
