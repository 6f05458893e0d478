//! # shadowtap-analyzer
//!
//! Turns exchange records into an endpoint inventory, diffs it against
//! declared API contracts, stores it and reports on it.

pub mod input;
pub mod inventory;
pub mod observe;
pub mod sketch;
pub mod spec;
pub mod template;
