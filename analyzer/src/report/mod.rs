//! Reports: one document ([`Report`]), several renderings.
//!
//! | format | module | for |
//! |---|---|---|
//! | `table` | [`table`] | a terminal |
//! | `json` | here | programs; the documented, versioned [`Report`] |
//! | `markdown` | [`markdown`] | pull requests, wikis, tickets |
//! | `html` | [`html`] | one self-contained page for a browser |
//! | `openapi` | [`openapi`] | an OpenAPI 3.1 document of the *observed* API |
//! | `sarif` | [`sarif`] | code-scanning tools (SARIF 2.1.0) |
//!
//! Every rendering holds names, types and counts only, never a value seen
//! in traffic: they all render the same [`Report`], which holds no values.

pub mod html;
pub mod markdown;
mod model;
pub mod openapi;
pub mod sarif;
pub mod table;

pub use model::*;

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use shadowtap_proto::Timestamp;

use crate::anomaly::{Anomaly, AnomalyKind, AnomalySeverity};
use crate::findings::Finding;

/// Output formats of `analyze` and `report`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    Markdown,
    Html,
    OpenApi,
    Sarif,
}

impl Format {
    pub const ALL: [Format; 6] = [
        Format::Table,
        Format::Json,
        Format::Markdown,
        Format::Html,
        Format::OpenApi,
        Format::Sarif,
    ];
    pub const NAMES: &'static [&'static str] =
        &["table", "json", "markdown", "html", "openapi", "sarif"];

    /// Whether this format renders the endpoints' body schemas.
    pub fn shows_schemas(self) -> bool {
        matches!(self, Format::Json | Format::OpenApi)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Table => "table",
            Format::Json => "json",
            Format::Markdown => "markdown",
            Format::Html => "html",
            Format::OpenApi => "openapi",
            Format::Sarif => "sarif",
        }
    }
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Format::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown format `{s}` (expected one of: {})",
                    Format::NAMES.join(", ")
                )
            })
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Renders `report` in `format`. `colour` applies to the table only.
pub fn render(report: &Report, format: Format, colour: bool) -> String {
    match format {
        Format::Table => table::render(report, colour),
        Format::Json => pretty_json(report),
        Format::Markdown => markdown::render(report),
        Format::Html => html::render(report),
        Format::OpenApi => pretty_json(&openapi::document(report)),
        Format::Sarif => pretty_json(&sarif::document(report)),
    }
}

/// Pretty JSON with a final newline.
fn pretty_json<T: serde::Serialize>(value: &T) -> String {
    let mut s = serde_json::to_string_pretty(value).unwrap_or_else(|e| {
        // Serializing plain data cannot fail; keep the output valid JSON anyway.
        serde_json::json!({ "error": e.to_string() }).to_string()
    });
    s.push('\n');
    s
}

/// A finding's rule: its kind, and for drift the sub-kind
/// (`drift/response_field`).
pub fn rule_id(f: &Finding) -> String {
    match f.drift {
        Some(d) => format!(
            "{}/{}",
            f.kind,
            serde_json::to_value(d)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        ),
        None => f.kind.to_string(),
    }
}

/// Status counts by class: `2xx`, `4xx`, …, and `unanswered`.
pub fn status_classes(statuses: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for (status, n) in statuses {
        let class = match status.as_bytes() {
            [d @ b'1'..=b'5', _, _] => format!("{}xx", char::from(*d)),
            _ if status == "unanswered" => "unanswered".to_owned(),
            _ => "other".to_owned(),
        };
        *out.entry(class).or_insert(0) += n;
    }
    out
}

/// Microseconds as milliseconds with one decimal, `-` when unknown.
fn millis(us: Option<u64>) -> String {
    us.map_or("-".to_owned(), |us| format!("{:.1}", us as f64 / 1000.0))
}

/// The number of findings of each endpoint.
struct EndpointFindings<'r>(BTreeMap<(&'r str, &'r str, &'r str), usize>);

impl<'r> EndpointFindings<'r> {
    fn of(report: &'r Report) -> Self {
        let mut out = BTreeMap::new();
        for f in &report.findings {
            if let (Some(m), Some(t)) = (&f.method, &f.template) {
                *out.entry((f.service.as_str(), m.as_str(), t.as_str()))
                    .or_insert(0) += 1;
            }
        }
        EndpointFindings(out)
    }

    fn count(&self, service: &str, e: &EndpointReport) -> usize {
        self.0
            .get(&(service, e.method.as_str(), e.template.as_str()))
            .copied()
            .unwrap_or(0)
    }
}

/// `2xx: 9, 4xx: 4`.
fn classes_text(e: &EndpointReport) -> String {
    status_classes(&e.statuses)
        .iter()
        .map(|(k, n)| format!("{k}: {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The auth schemes seen, comma-separated.
fn auth_text(e: &EndpointReport) -> String {
    e.auth_schemes
        .keys()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Anomaly severities, most severe first (the column order of the counts).
const ANOMALY_SEVERITIES: [AnomalySeverity; 3] = [
    AnomalySeverity::High,
    AnomalySeverity::Medium,
    AnomalySeverity::Low,
];

/// An anomaly's endpoint, `METHOD template` (the path key when the current
/// inventory has no template for it); `None` for a service-wide anomaly.
fn anomaly_endpoint(a: &Anomaly) -> Option<String> {
    let method = a.method.as_ref()?;
    let path = a.template.as_ref().or(a.path_key.as_ref())?;
    Some(format!("{method} {path}"))
}

/// A time in UTC to the second: `2026-11-23T04:15:00Z`.
fn utc_seconds(t: Timestamp) -> String {
    let full = Timestamp(t.as_nanos() / 1_000_000_000 * 1_000_000_000).to_string();
    match full.split_once('.') {
        Some((seconds, _)) => format!("{seconds}Z"),
        None => full,
    }
}

/// An anomaly's time span in UTC to the second, `start – end`, or one time
/// when both fall in the same second (per-response kinds).
fn anomaly_window(a: &Anomaly) -> String {
    let (start, end) = (utc_seconds(a.start), utc_seconds(a.end));
    if start == end {
        start
    } else {
        format!("{start} – {end}")
    }
}

/// A baseline or observed value in the unit of `measure`: shares as
/// percentages, whole numbers without decimals.
fn measure_value(measure: &str, v: f64) -> String {
    if measure.ends_with("share") {
        format!("{:.1}%", v * 100.0)
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// What a provisional anomaly's window says: judged while still open, so
/// the verdict may change with more traffic of that window.
const STILL_OPEN: &str = "window still open";

/// `0.4% → 45.0% 5xx share`.
fn anomaly_change(a: &Anomaly) -> String {
    format!(
        "{} → {} {}",
        measure_value(&a.measure, a.baseline),
        measure_value(&a.measure, a.observed),
        a.measure
    )
}

/// The report's anomalies, most severe first, then by start.
fn anomalies_by_severity(report: &Report) -> Vec<&Anomaly> {
    let mut sorted: Vec<&Anomaly> = report.anomalies.iter().collect();
    sorted.sort_by_key(|a| (std::cmp::Reverse(a.severity), a.start));
    sorted
}

/// Anomaly counts per kind present (in [`AnomalyKind::ALL`] order), by
/// severity in [`ANOMALY_SEVERITIES`] order.
fn anomaly_counts(report: &Report) -> Vec<(AnomalyKind, [usize; 3])> {
    AnomalyKind::ALL
        .into_iter()
        .filter_map(|kind| {
            let mut n = [0; 3];
            for a in report.anomalies.iter().filter(|a| a.kind == kind) {
                if let Some(i) = ANOMALY_SEVERITIES.iter().position(|s| *s == a.severity) {
                    n[i] += 1;
                }
            }
            (n.iter().sum::<usize>() > 0).then_some((kind, n))
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod testing;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_format_parses_from_its_name() {
        for f in Format::ALL {
            assert_eq!(f.as_str().parse::<Format>(), Ok(f));
            assert_eq!(f.to_string(), f.as_str());
        }
        assert_eq!(Format::NAMES.len(), Format::ALL.len());
        let err = "xml".parse::<Format>().unwrap_err();
        assert!(err.contains("markdown, html, openapi, sarif"), "{err}");
    }

    #[test]
    fn status_classes_group_codes() {
        let s: BTreeMap<String, u64> = [
            ("200", 3),
            ("201", 1),
            ("404", 2),
            ("unanswered", 1),
            ("99", 1),
        ]
        .map(|(k, v)| (k.to_owned(), v))
        .into();
        let c = status_classes(&s);
        assert_eq!(c["2xx"], 4);
        assert_eq!(c["4xx"], 2);
        assert_eq!(c["unanswered"], 1);
        assert_eq!(c["other"], 1);
    }

    #[test]
    fn anomaly_helpers_format_windows_values_and_endpoints() {
        let mut a = testing::anomaly(AnomalyKind::ErrorSpike5xx, AnomalySeverity::High);
        assert_eq!(
            anomaly_window(&a),
            "2023-11-14T22:15:00Z – 2023-11-14T22:25:00Z"
        );
        assert_eq!(anomaly_change(&a), "0.4% → 45.0% 5xx share");
        assert_eq!(anomaly_endpoint(&a).as_deref(), Some("GET /users/{userId}"));
        // A per-response anomaly: one time, truncated to the second.
        a.start = Timestamp(1_700_000_123_999_999_999);
        a.end = a.start;
        assert_eq!(anomaly_window(&a), "2023-11-14T22:15:23Z");
        a.template = None;
        assert_eq!(anomaly_endpoint(&a).as_deref(), Some("GET /users/{int}"));
        a.method = None;
        assert_eq!(anomaly_endpoint(&a), None);
        assert_eq!(measure_value("median response bytes", 1200.0), "1200");
        assert_eq!(measure_value("bytes", 2.5), "2.50");
    }

    #[test]
    fn anomaly_counts_by_kind_and_severity() {
        let mut r = testing::report(Vec::new(), Vec::new());
        r.anomalies = vec![
            testing::anomaly(AnomalyKind::BolaEnumeration, AnomalySeverity::High),
            testing::anomaly(AnomalyKind::ErrorSpike5xx, AnomalySeverity::High),
            testing::anomaly(AnomalyKind::BolaEnumeration, AnomalySeverity::Medium),
        ];
        assert_eq!(
            anomaly_counts(&r),
            vec![
                (AnomalyKind::ErrorSpike5xx, [1, 0, 0]),
                (AnomalyKind::BolaEnumeration, [1, 1, 0]),
            ]
        );
        let sorted = anomalies_by_severity(&r);
        assert_eq!(sorted[2].severity, AnomalySeverity::Medium);
    }
}
