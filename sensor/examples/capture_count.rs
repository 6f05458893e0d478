//! Reader throughput check: counts packets and bytes in a capture file.
//!
//! `cargo run --release -p shadowtap-sensor --example capture_count -- FILE [RUNS]`
//! (`FILE` may be `-` for stdin; then use RUNS = 1).

use std::path::Path;
use std::time::Instant;

use shadowtap_sensor::capture::{CaptureSource, FileSource};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let path = args.next().unwrap_or_else(|| "-".into());
    let runs: usize = args.next().map(|r| r.parse()).transpose()?.unwrap_or(3);
    let mut rates = Vec::new();
    for run in 0..runs {
        let start = Instant::now();
        let mut src = FileSource::open(Path::new(&path))?;
        let (mut packets, mut bytes, mut checksum) = (0u64, 0u64, 0u64);
        while let Some(p) = src.next_packet()? {
            packets += 1;
            bytes += p.data.len() as u64;
            checksum = checksum.wrapping_add(p.ts.as_nanos() ^ u64::from(p.orig_len));
        }
        let secs = start.elapsed().as_secs_f64();
        let file_bytes = src.progress().0;
        let mbps = file_bytes as f64 / secs / 1e6;
        eprintln!(
            "run {run}: {packets} packets, {bytes} data bytes, {file_bytes} file bytes \
             in {secs:.3} s = {mbps:.0} MB/s (checksum {checksum:x})"
        );
        rates.push(mbps);
    }
    rates.sort_by(f64::total_cmp);
    if let Some(median) = rates.get(rates.len() / 2) {
        eprintln!("median: {median:.0} MB/s");
    }
    Ok(())
}
