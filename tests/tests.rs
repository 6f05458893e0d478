//! One integration-test binary, built from the modules below.
//!
//! - `fuzz_regressions`: the committed fuzz corpora, replayed on stable.
//! - `support`: capture builders and a runner over the real reader + engine.
//! - `privacy`: canary captures; no secret survives in any encoding.
//! - `reassembly`: byte-exact TCP reassembly against PcapPlusPlus outputs.
//! - `tcp`: TCP edge cases with generated captures, exact exchanges asserted.

#![allow(
    unreachable_pub,
    reason = "support items are shared between test modules of this one binary"
)]

mod fuzz_regressions;
mod golden;
mod privacy;
mod reassembly;
mod support;
mod tcp;
mod tshark_parity;
