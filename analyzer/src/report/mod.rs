//! Reports: one document ([`Report`]), several renderings.

mod model;
pub mod table;

pub use model::*;

use std::fmt;
use std::str::FromStr;

/// Output formats of `analyze` and `report`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
}

impl Format {
    pub const NAMES: &'static [&'static str] = &["table", "json"];

    /// Whether this format renders the endpoints' body schemas.
    pub fn shows_schemas(self) -> bool {
        !matches!(self, Format::Table)
    }
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "table" => Format::Table,
            "json" => Format::Json,
            _ => {
                return Err(format!(
                    "unknown format `{s}` (expected one of: {})",
                    Format::NAMES.join(", ")
                ))
            }
        })
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Table => "table",
            Format::Json => "json",
        })
    }
}

/// Renders `report` in `format`. `colour` applies to the table only.
pub fn render(report: &Report, format: Format, colour: bool) -> String {
    match format {
        Format::Table => table::render(report, colour),
        Format::Json => {
            let mut s = serde_json::to_string_pretty(report).unwrap_or_else(|e| {
                // Serializing plain data cannot fail; keep the output valid JSON anyway.
                format!("{{\"error\": \"{e}\"}}")
            });
            s.push('\n');
            s
        }
    }
}
