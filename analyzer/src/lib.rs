//! # shadowtap-analyzer
//!
//! Turns exchange records into an endpoint inventory, diffs it against
//! declared API contracts, stores it and reports on it.

pub mod analysis;
pub mod anomaly;
pub mod cli;
pub mod contracts;
pub mod findings;
#[doc(hidden)]
pub mod fuzzing;
pub mod ingest;
pub mod input;
pub mod inventory;
pub mod observe;
pub mod report;
pub mod sketch;
pub mod spec;
pub mod store;
pub mod template;
