//! Reports for the format tests: the demo capture's, and hand-made ones.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

use shadowtap_proto::Timestamp;

use super::{EndpointReport, FieldReport, Quantiles, Report, ServiceReport, Summary};
use crate::anomaly::{Anomaly, AnomalyKind, AnomalySeverity};
use crate::cli::{self, AnalyzeArgs};
use crate::findings::{DriftKind, Finding, FindingKind, Severity};
use crate::inventory::SegmentEvidence;
use crate::template::{ParamKind, Rule, TemplateSegment};

/// The contract the demo is judged against in the tests.
pub(crate) const DEMO_SPEC: &str = "analyzer/testdata/specs/oai-v3.0-petstore-expanded.yaml";

/// The report of `samples/demo-api.pcap` against [`DEMO_SPEC`] (mapped to
/// the demo's service), with paths relative to the repository root.
pub(crate) fn demo_report() -> &'static Report {
    static REPORT: OnceLock<Report> = OnceLock::new();
    REPORT.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("the analyzer crate lives in the workspace");
        let args = AnalyzeArgs {
            inputs: vec![root.join("samples/demo-api.pcap")],
            specs: vec![format!("127.0.0.1:8080={}", root.join(DEMO_SPEC).display())],
            format: super::Format::Json,
            db: None,
            fail_on: Vec::new(),
            fingerprint_key_file: None,
            no_anomalies: false,
            anomaly_config: None,
            quiet: true,
        };
        let mut report = cli::analyze(&args).expect("the demo analyses").report;
        // Repository-relative names, as a user running from the root sees them.
        let root = format!("{}/", root.display());
        let strip = |s: &mut String| *s = s.replace(&root, "");
        report.inputs.iter_mut().for_each(|i| strip(&mut i.path));
        report.contracts.iter_mut().for_each(|c| strip(&mut c.file));
        report
            .services
            .iter_mut()
            .filter_map(|s| s.contract.as_mut())
            .for_each(strip);
        report
            .findings
            .iter_mut()
            .filter_map(|f| f.spec_file.as_mut())
            .for_each(strip);
        report
    })
}

/// A path segment for [`endpoint`]: a literal, or a parameter of a kind.
pub(crate) fn seg(text: &str, kind: Option<ParamKind>) -> SegmentEvidence {
    let segment = TemplateSegment {
        text: text.to_owned(),
        kind,
        rule: if kind.is_some() {
            Rule::Form
        } else {
            Rule::Literal
        },
        collapsed_values: None,
    };
    SegmentEvidence {
        confidence: segment.confidence(),
        distinct_values: kind.map(|_| 5),
        segment,
    }
}

/// An endpoint with `requests` 200 answers and one JSON response field.
pub(crate) fn endpoint(
    method: &str,
    segments: Vec<SegmentEvidence>,
    requests: u64,
) -> EndpointReport {
    let template = crate::template::render(
        &segments
            .iter()
            .map(|s| s.segment.clone())
            .collect::<Vec<_>>(),
    );
    let confidence = segments.iter().map(|s| s.confidence).fold(1.0, f64::min);
    let field = |path: &str, ty: &str, presence: f64| FieldReport {
        path: path.to_owned(),
        types: vec![ty.to_owned()],
        formats: Vec::new(),
        presence,
    };
    EndpointReport {
        method: method.to_owned(),
        template,
        requests,
        first_seen: Timestamp(1_700_000_000_000_000_000),
        last_seen: Timestamp(1_700_000_060_000_000_000),
        confidence,
        segments,
        path_keys: 1,
        statuses: [("200".to_owned(), requests)].into(),
        latency_us: Quantiles {
            p50: Some(800),
            p90: Some(1200),
            p99: Some(4000),
            max: Some(9000),
        },
        response_bytes: Quantiles {
            p50: Some(100),
            p90: Some(150),
            p99: Some(300),
            max: Some(310),
        },
        request_content_types: BTreeMap::new(),
        response_content_types: [("application/json".to_owned(), requests)].into(),
        query_params: BTreeMap::new(),
        auth_schemes: [("none".to_owned(), requests)].into(),
        auth_variants: BTreeMap::new(),
        anonymous_2xx: requests,
        callers: 1,
        incomplete: 0,
        request_fields: Vec::new(),
        response_fields: [(
            "200".to_owned(),
            vec![field("", "object", 1.0), field("/id", "integer", 1.0)],
        )]
        .into(),
        operation: None,
    }
}

/// A report of the given services, with a summary to match.
pub(crate) fn report(services: Vec<ServiceReport>, findings: Vec<Finding>) -> Report {
    let mut summary = Summary {
        services: services.len(),
        ..Summary::default()
    };
    for e in services.iter().flat_map(|s| &s.endpoints) {
        summary.endpoints += 1;
        summary.requests += e.requests;
    }
    for f in &findings {
        *summary.findings.entry(f.kind.to_string()).or_insert(0) += 1;
    }
    Report {
        schema: super::REPORT_SCHEMA_VERSION,
        generator: "shadowtap test".to_owned(),
        summary,
        inputs: Vec::new(),
        contracts: Vec::new(),
        services,
        findings,
        anomalies: Vec::new(),
    }
}

pub(crate) fn service(name: &str, endpoints: Vec<EndpointReport>) -> ServiceReport {
    ServiceReport {
        name: name.to_owned(),
        requests: endpoints.iter().map(|e| e.requests).sum(),
        contract: None,
        endpoints,
    }
}

/// A drift finding on a response field of `GET template`.
pub(crate) fn drift_finding(service: &str, template: &str, field: &str) -> Finding {
    Finding {
        kind: FindingKind::Drift,
        drift: Some(DriftKind::ResponseField),
        severity: Severity::High,
        service: service.to_owned(),
        method: Some("GET".to_owned()),
        template: Some(template.to_owned()),
        message: format!("GET {template} answers with undeclared field {field}"),
        evidence: [
            ("field".to_owned(), serde_json::json!(field)),
            ("status".to_owned(), serde_json::json!("200")),
        ]
        .into(),
        spec_file: Some("specs/api v1.yaml".to_owned()),
        spec_version: Some("1.2.0".to_owned()),
        operation: Some("/paths/~1users~1{id}/get".to_owned()),
    }
}

/// An anomaly of `kind` on `GET /users/{userId}` of service `api`, from
/// 2023-11-14T22:15:00Z to 22:25:00Z: a 5xx share of 0.4% → 45%.
pub(crate) fn anomaly(kind: AnomalyKind, severity: AnomalySeverity) -> Anomaly {
    Anomaly {
        kind,
        severity,
        service: "api".to_owned(),
        method: Some("GET".to_owned()),
        path_key: Some("/users/{int}".to_owned()),
        template: Some("/users/{userId}".to_owned()),
        caller: None,
        start: Timestamp(1_700_000_100_000_000_000),
        end: Timestamp(1_700_000_700_000_000_000),
        baseline: 0.004,
        observed: 0.45,
        measure: "5xx share".to_owned(),
        counts: [("requests".to_owned(), 40), ("errors".to_owned(), 18)].into(),
        explanation: "5xx rate 45.0% against a usual 0.4% (18 of 40 requests)".to_owned(),
        provisional: false,
    }
}

/// A report of one hour of service `api` (`GET /users/{userId}`,
/// `GET /orders`) with anomalies of four kinds: an endpoint's 5xx spike, a
/// caller's enumeration, a single oversized response and a service-wide
/// burst of refusals in a window still open at the end of the run.
pub(crate) fn anomaly_report() -> Report {
    let users = endpoint(
        "GET",
        vec![seg("users", None), seg("userId", Some(ParamKind::Integer))],
        400,
    );
    let orders = endpoint("GET", vec![seg("orders", None)], 100);
    let mut r = report(vec![service("api", vec![users, orders])], Vec::new());
    r.summary.first_seen = Some(Timestamp(1_700_000_000_000_000_000));
    r.summary.last_seen = Some(Timestamp(1_700_003_600_000_000_000));

    let spike = anomaly(AnomalyKind::ErrorSpike5xx, AnomalySeverity::High);
    let mut bola = anomaly(AnomalyKind::BolaEnumeration, AnomalySeverity::High);
    bola.caller = Some("0a1b2c3d4e5f".to_owned());
    bola.start = Timestamp(1_700_001_800_000_000_000);
    bola.end = Timestamp(1_700_002_100_000_000_000);
    bola.baseline = 4.0;
    bola.observed = 180.0;
    bola.measure = "distinct object ids per caller and window".to_owned();
    bola.counts = [
        ("distinct_ids".to_owned(), 180),
        ("requests".to_owned(), 190),
    ]
    .into();
    bola.explanation = "caller 0a1b2c3d4e5f touched 180 distinct ids in one window (callers usually touch up to 4)".to_owned();
    let mut outlier = anomaly(AnomalyKind::ResponseSizeOutlier, AnomalySeverity::Medium);
    outlier.method = Some("GET".to_owned());
    outlier.path_key = Some("/orders".to_owned());
    outlier.template = Some("/orders".to_owned());
    outlier.start = Timestamp(1_700_002_500_123_000_000);
    outlier.end = outlier.start;
    outlier.baseline = 1200.0;
    outlier.observed = 480_000.0;
    outlier.measure = "response bytes (median vs response)".to_owned();
    outlier.counts = [("responses".to_owned(), 1)].into();
    outlier.explanation = "a 480000-byte response where 1200 bytes is usual".to_owned();
    let mut burst = anomaly(AnomalyKind::AuthFailureBurst, AnomalySeverity::High);
    burst.method = None;
    burst.path_key = None;
    burst.template = None;
    burst.start = Timestamp(1_700_003_000_000_000_000);
    burst.end = Timestamp(1_700_003_300_000_000_000);
    burst.baseline = 0.01;
    burst.observed = 0.6;
    burst.measure = "401/403 share".to_owned();
    burst.counts = [("requests".to_owned(), 200), ("denied".to_owned(), 120)].into();
    burst.explanation =
        "60.0% of the service's requests were refused (401/403) against a usual 1.0%".to_owned();
    burst.provisional = true;
    r.anomalies = vec![spike, bola, outlier, burst];
    for a in &r.anomalies {
        *r.summary
            .anomalies
            .entry(a.kind.as_str().to_owned())
            .or_insert(0) += 1;
    }
    r
}
