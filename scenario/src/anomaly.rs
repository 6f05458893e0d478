//! Anomaly kinds and the expected-anomaly file.
//!
//! The file (`scenario-<seed>.expected.json`) is an [`Expected`]
//! serialised with serde; its format is documented in `docs/scenarios.md`.

use serde::{Deserialize, Serialize};
use shadowtap_proto::Timestamp;

/// Identifier of the expected-file format.
pub const EXPECTED_FORMAT: &str = "shadowtap-scenario-expected/1";

/// What was injected. Names are the serialised `kind` strings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum AnomalyKind {
    /// An endpoint's 5xx rate jumps for a window.
    #[serde(rename = "error_spike_5xx")]
    ErrorSpike5xx,
    /// An endpoint's 4xx rate (400/404/409/422/429, never 401/403) jumps for a window.
    #[serde(rename = "error_spike_4xx")]
    ErrorSpike4xx,
    /// A few single responses far larger than the endpoint's distribution.
    #[serde(rename = "response_size_outlier")]
    ResponseSizeOutlier,
    /// All of an endpoint's success responses grow by a factor for a window.
    #[serde(rename = "response_size_shift")]
    ResponseSizeShift,
    /// Requests without credentials answered 2xx where credentials were always sent.
    #[serde(rename = "anonymous_success")]
    AnonymousSuccess,
    /// Basic auth, or an API key in the query, where only another scheme was seen.
    #[serde(rename = "new_auth_scheme")]
    NewAuthScheme,
    /// JWTs with `alg: none` or `HS256` where only RS256 was seen.
    #[serde(rename = "jwt_alg_change")]
    JwtAlgChange,
    /// JWTs without `exp` where every token had one.
    #[serde(rename = "jwt_without_exp")]
    JwtWithoutExp,
    /// A burst of 401/403, from one caller or from many.
    #[serde(rename = "auth_failure_burst")]
    AuthFailureBurst,
    /// One caller walking sequential object ids, mostly refused.
    #[serde(rename = "bola_enumeration")]
    BolaEnumeration,
}

impl AnomalyKind {
    /// Every kind, in documentation order.
    pub const ALL: [AnomalyKind; 10] = [
        AnomalyKind::ErrorSpike5xx,
        AnomalyKind::ErrorSpike4xx,
        AnomalyKind::ResponseSizeOutlier,
        AnomalyKind::ResponseSizeShift,
        AnomalyKind::AnonymousSuccess,
        AnomalyKind::NewAuthScheme,
        AnomalyKind::JwtAlgChange,
        AnomalyKind::JwtWithoutExp,
        AnomalyKind::AuthFailureBurst,
        AnomalyKind::BolaEnumeration,
    ];

    /// The serialised name.
    pub fn name(self) -> &'static str {
        match self {
            AnomalyKind::ErrorSpike5xx => "error_spike_5xx",
            AnomalyKind::ErrorSpike4xx => "error_spike_4xx",
            AnomalyKind::ResponseSizeOutlier => "response_size_outlier",
            AnomalyKind::ResponseSizeShift => "response_size_shift",
            AnomalyKind::AnonymousSuccess => "anonymous_success",
            AnomalyKind::NewAuthScheme => "new_auth_scheme",
            AnomalyKind::JwtAlgChange => "jwt_alg_change",
            AnomalyKind::JwtWithoutExp => "jwt_without_exp",
            AnomalyKind::AuthFailureBurst => "auth_failure_burst",
            AnomalyKind::BolaEnumeration => "bola_enumeration",
        }
    }

    /// Parses a serialised name.
    pub fn from_name(name: &str) -> Option<Self> {
        AnomalyKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Kinds a correct detector may also report for the same endpoint and
    /// window, because the injection really causes them (a BOLA walk is
    /// also a burst of 403s). Scoring should count such a report neither
    /// as a hit nor as a false alarm.
    pub fn side_effects(self) -> &'static [AnomalyKind] {
        match self {
            AnomalyKind::AuthFailureBurst => &[AnomalyKind::ErrorSpike4xx],
            AnomalyKind::BolaEnumeration => {
                &[AnomalyKind::ErrorSpike4xx, AnomalyKind::AuthFailureBurst]
            }
            AnomalyKind::ResponseSizeShift => &[AnomalyKind::ResponseSizeOutlier],
            AnomalyKind::AnonymousSuccess => &[AnomalyKind::NewAuthScheme],
            _ => &[],
        }
    }
}

impl std::fmt::Display for AnomalyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The expected-anomaly file: the scenario, its endpoints and what was injected.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Expected {
    /// Always [`EXPECTED_FORMAT`].
    pub format: String,
    pub seed: u64,
    /// First and last instant of the scenario (packet time).
    pub start: Timestamp,
    pub end: Timestamp,
    /// Base rate, requests per second.
    pub rate: f64,
    /// Load modulation, when on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diurnal: Option<DiurnalInfo>,
    /// Nothing is injected before this instant.
    pub warmup_end: Timestamp,
    /// Exchanges in the capture (each is one request with its response).
    pub requests: u64,
    /// The simulated services and their endpoints.
    pub services: Vec<ServiceInfo>,
    /// What was injected, in start order.
    pub anomalies: Vec<ExpectedAnomaly>,
    /// Kinds that were asked for but did not fit into the scenario.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<AnomalyKind>,
}

/// [`crate::Diurnal`] as written to the file.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct DiurnalInfo {
    pub period_s: u64,
    pub low: f64,
    pub high: f64,
}

/// A service: its host name, server address and endpoints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServiceInfo {
    pub host: String,
    pub server: String,
    pub endpoints: Vec<EndpointInfo>,
}

/// An endpoint's steady behaviour.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EndpointInfo {
    pub method: String,
    pub template: String,
    /// Scheme steady callers use: `none`, `bearer_jwt`, `api_key`, `basic`
    /// (public endpoints also see signed-in callers' tokens).
    pub auth: String,
    /// Share of all steady requests.
    pub share: f64,
    /// Steady 4xx and 5xx probabilities.
    pub rate_4xx: f64,
    pub rate_5xx: f64,
    /// Median success-response body, bytes (0 without a body).
    pub size_median_bytes: u64,
}

/// One injected anomaly.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExpectedAnomaly {
    /// Position in start order, from 1.
    pub id: u32,
    pub kind: AnomalyKind,
    /// Host of the service.
    pub service: String,
    pub method: String,
    /// The generator's template, e.g. `/v1/orders/{orderId}`.
    pub template: String,
    /// The window: every anomalous request has `start <= ts < end`.
    pub start: Timestamp,
    pub end: Timestamp,
    /// Anomalous requests written (injected, or steady ones altered).
    pub requests: u64,
    /// All requests to the endpoint inside the window, anomalous or not.
    pub window_requests: u64,
    /// Kind-specific parameters of the injection (see `docs/scenarios.md`).
    pub params: serde_json::Map<String, serde_json::Value>,
    /// [`AnomalyKind::side_effects`] of this kind.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub side_effects: Vec<AnomalyKind>,
}

impl Expected {
    /// The JSON text of the file (pretty-printed, trailing newline).
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }

    /// Parses a file's text.
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for k in AnomalyKind::ALL {
            assert_eq!(AnomalyKind::from_name(k.name()), Some(k));
            let json = serde_json::to_string(&k).expect("serialise");
            assert_eq!(json, format!("\"{}\"", k.name()));
            assert_eq!(serde_json::from_str::<AnomalyKind>(&json).ok(), Some(k));
        }
        assert_eq!(AnomalyKind::from_name("error_spike"), None);
    }
}
