//! Findings: what the inventory says about the declared contracts.
//!
//! - **shadow**: traffic to a service no contract covers;
//! - **undocumented**: an operation the service's contract lacks (including
//!   a new method on a documented path);
//! - **zombie**: a call to an operation marked `deprecated`, even when the
//!   call conforms;
//! - **unused**: a documented operation never seen, with a confidence that
//!   accounts for how much traffic the service had;
//! - **drift**: the traffic disagrees with the operation (undeclared query
//!   parameters, status codes, response fields or content types, missing
//!   required fields, and secured operations answering anonymous calls).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

mod diff;

pub use diff::{diff, unused_confidence, ServiceContracts};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    Shadow,
    Undocumented,
    Zombie,
    Unused,
    Drift,
}

impl FindingKind {
    pub const ALL: [FindingKind; 5] = [
        FindingKind::Shadow,
        FindingKind::Undocumented,
        FindingKind::Zombie,
        FindingKind::Unused,
        FindingKind::Drift,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::Shadow => "shadow",
            FindingKind::Undocumented => "undocumented",
            FindingKind::Zombie => "zombie",
            FindingKind::Unused => "unused",
            FindingKind::Drift => "drift",
        }
    }
}

impl fmt::Display for FindingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FindingKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        FindingKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown finding kind `{s}` (expected one of: shadow, undocumented, zombie, unused, drift)"
                )
            })
    }
}

/// The sub-kind of a drift finding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftKind {
    QueryParameter,
    Status,
    ResponseField,
    MissingField,
    ContentType,
    Auth,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
        }
    }
}

/// One finding, with the evidence and the contract it was judged against.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub kind: FindingKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift: Option<DriftKind>,
    pub severity: Severity,
    pub service: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// One line a person can act on.
    pub message: String,
    /// Counts and names behind the finding.
    pub evidence: BTreeMap<String, serde_json::Value>,
    /// Contract file, its `info.version` and the operation's JSON pointer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
}

impl Finding {
    /// Sort key: kind, service, template, method, drift kind, message.
    pub fn sort_key(&self) -> impl Ord + '_ {
        (
            self.kind,
            &self.service,
            &self.template,
            &self.method,
            self.drift,
            &self.message,
        )
    }
}

/// What `--fail-on` can name: a finding kind, `anomaly` (any anomaly) or an
/// anomaly kind (`error_spike_5xx`, …).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailOn {
    Finding(FindingKind),
    AnyAnomaly,
    Anomaly(crate::anomaly::AnomalyKind),
}

impl FromStr for FailOn {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "anomaly" {
            return Ok(FailOn::AnyAnomaly);
        }
        if let Some(k) = crate::anomaly::AnomalyKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
        {
            return Ok(FailOn::Anomaly(k));
        }
        FindingKind::from_str(s).map(FailOn::Finding).map_err(|_| {
            format!(
                "unknown finding kind `{s}` (expected one of: shadow, undocumented, zombie, unused, drift, anomaly, or an anomaly kind such as error_spike_5xx)"
            )
        })
    }
}
