//! The latency phase's client (`cargo xtask load-client`, run by the load
//! test inside the client namespace): one keep-alive connection, one
//! request at a time at a fixed rate far below the server's capacity, the
//! round trip of each measured, and a summary printed as one JSON line.
//!
//! At a fixed rate the server and the sensor are idle between requests, so
//! the round trip is the packet path's latency rather than queueing behind
//! other requests (wrk at full load measures mostly queueing). A request
//! sent later than its slot because the previous response came late is
//! counted in `late`; at a rate well below capacity there are none.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use serde_json::{json, Value};

#[derive(Debug, clap::Args)]
pub(crate) struct LoadClientArgs {
    /// Server address.
    #[arg(long)]
    pub(crate) addr: SocketAddr,
    /// Request target.
    #[arg(long, default_value = "/")]
    pub(crate) path: String,
    /// Requests per second.
    #[arg(long, default_value_t = 1000)]
    pub(crate) rate: u32,
    /// Requests measured (after the warm-up).
    #[arg(long, default_value_t = 10_000)]
    pub(crate) requests: u64,
    /// Requests sent first and not measured.
    #[arg(long, default_value_t = 200)]
    pub(crate) warmup: u64,
}

/// Latency percentiles of one run, µs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct LatencySummary {
    pub(crate) requests: u64,
    pub(crate) late: u64,
    pub(crate) median_us: f64,
    pub(crate) p99_us: f64,
    pub(crate) mean_us: f64,
}

impl LatencySummary {
    pub(crate) fn of(mut ns: Vec<u64>, late: u64) -> Option<LatencySummary> {
        if ns.is_empty() {
            return None;
        }
        ns.sort_unstable();
        let at = |q: f64| ns[((ns.len() - 1) as f64 * q).round() as usize] as f64 / 1000.0;
        Some(LatencySummary {
            requests: ns.len() as u64,
            late,
            median_us: at(0.5),
            p99_us: at(0.99),
            mean_us: ns.iter().sum::<u64>() as f64 / ns.len() as f64 / 1000.0,
        })
    }

    pub(crate) fn to_json(self) -> Value {
        json!({"requests": self.requests, "late": self.late, "median_us": self.median_us,
               "p99_us": self.p99_us, "mean_us": self.mean_us})
    }

    pub(crate) fn from_json(v: &Value) -> Result<LatencySummary> {
        let f = |k: &str| v[k].as_f64().with_context(|| format!("load-client: `{k}`"));
        Ok(LatencySummary {
            requests: f("requests")? as u64,
            late: f("late")? as u64,
            median_us: f("median_us")?,
            p99_us: f("p99_us")?,
            mean_us: f("mean_us")?,
        })
    }
}

/// Reads one response with a `Content-Length` body (what nginx sends here).
fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<()> {
    buf.clear();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = std::str::from_utf8(&buf[..end]).context("response head")?;
            ensure!(
                head.starts_with("HTTP/1.1 200"),
                "unexpected response: {head}"
            );
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .context("response without Content-Length")?;
            let total = end + 4 + len;
            while buf.len() < total {
                let n = stream.read(&mut chunk)?;
                ensure!(n > 0, "connection closed mid-body");
                buf.extend_from_slice(&chunk[..n]);
            }
            ensure!(buf.len() == total, "more bytes than one response");
            return Ok(());
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            bail!("connection closed before a response");
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

pub(crate) fn run(args: &LoadClientArgs) -> Result<ExitCode> {
    ensure!(args.rate > 0, "--rate must be positive");
    let mut stream = TcpStream::connect_timeout(&args.addr, Duration::from_secs(5))
        .with_context(|| format!("connecting to {}", args.addr))?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: shadowtap-load-client\r\n\r\n",
        args.path, args.addr
    );
    let period = Duration::from_secs_f64(1.0 / f64::from(args.rate));
    let mut buf = Vec::with_capacity(4096);
    let mut ns = Vec::with_capacity(args.requests as usize);
    let mut late = 0;
    let start = Instant::now();
    for i in 0..args.warmup + args.requests {
        let slot = start + period * i as u32;
        let now = Instant::now();
        if slot > now {
            sleep(slot - now);
        } else if now - slot > period && i >= args.warmup {
            late += 1;
        }
        let sent = Instant::now();
        stream.write_all(request.as_bytes())?;
        read_response(&mut stream, &mut buf)?;
        if i >= args.warmup {
            ns.push(sent.elapsed().as_nanos() as u64);
        }
    }
    let summary = LatencySummary::of(ns, late).context("no request measured")?;
    println!("{}", summary.to_json());
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_known_sample() {
        let ns: Vec<u64> = (1..=100).map(|i| i * 1000).collect();
        let s = LatencySummary::of(ns, 2).expect("summary");
        assert_eq!(s.requests, 100);
        assert_eq!(s.late, 2);
        assert_eq!(s.median_us, 51.0);
        assert_eq!(s.p99_us, 99.0);
        assert!((s.mean_us - 50.5).abs() < 1e-9);
        assert_eq!(LatencySummary::from_json(&s.to_json()).expect("json"), s);
        assert!(LatencySummary::of(Vec::new(), 0).is_none());
    }
}
