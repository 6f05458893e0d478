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
}
