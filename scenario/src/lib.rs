//! # shadowtap-scenario: long API-traffic captures with known anomalies
//!
//! A deterministic generator of realistic, steady HTTP/1.1 API traffic —
//! hours of packet time, 1 to 500 requests per second, optionally with a
//! day's load swing — into which anomalies of every kind the analyzer's
//! detectors look for are injected at known times. Beside the capture it
//! returns the list of what was injected ([`Expected`]), so detector
//! tests can score recall and precision, and clean scenarios measure the
//! false-alarm rate.
//!
//! ```text
//!  Config ─► Catalog (services, endpoints, callers)   ── seed, stream 1
//!        └─► plan: anomalies, windows, attackers,      ── seed, stream 2
//!                  injected requests
//!  steady arrivals (Poisson, diurnal thinning)        ── seed, stream 3
//!        + injected arrivals ─► request/response bytes
//!        ─► tcp::Network (connections, packet queue)  ── seed, stream 4
//!        ─► PcapWriter ─► any `Write` (streamed)
//!  ─► Report { Expected (the JSON file), Summary }
//! ```
//!
//! The traffic model, the anomaly kinds with their exact injection, the
//! expected-file format and measured sizes are in `docs/scenarios.md`.
//!
//! ```no_run
//! use shadowtap_scenario::{generate, Config};
//! let config = Config::new(7, 2.0, 20.0); // seed 7, 2 hours, 20 req/s
//! let file = std::fs::File::create("scenario-7.pcap")?;
//! let report = generate(&config, file)?;
//! std::fs::write("scenario-7.expected.json", report.expected.to_json())?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

mod anomaly;
mod catalog;
mod config;
mod generate;
mod http;
pub mod pcap;
mod plan;
mod rng;
mod tcp;

// The public interface is:
pub use anomaly::{
    AnomalyKind, DiurnalInfo, EndpointInfo, Expected, ExpectedAnomaly, ServiceInfo, EXPECTED_FORMAT,
};
pub use config::{
    AnomalyPlan, Config, ConfigError, Diurnal, BODY_SCALE, DEFAULT_START, MAX_DURATION_NS,
    MAX_RATE, MIN_RATE,
};
pub use generate::{generate, Error, Report, Summary};
