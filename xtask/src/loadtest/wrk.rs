//! Reading wrk's summary.

use anyhow::{Context, Result};

/// What one wrk run reported.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct WrkResult {
    pub(super) requests: u64,
    pub(super) seconds: f64,
    pub(super) latency_us: f64,
}

impl WrkResult {
    pub(super) fn rps(&self) -> f64 {
        self.requests as f64 / self.seconds
    }
}

/// Parses wrk's summary: `N requests in 10.04s, …` and the mean of the
/// `Latency` line (`2.30ms`, `705.00us`, `1.2s`).
pub(super) fn parse_wrk(text: &str) -> Result<WrkResult> {
    let line = text
        .lines()
        .find(|l| l.contains(" requests in "))
        .context("wrk printed no `requests in` line")?;
    let mut words = line.split_whitespace();
    let requests: u64 = words
        .next()
        .and_then(|w| w.parse().ok())
        .context("wrk request count")?;
    let seconds = words
        .nth(2)
        .map(|w| w.trim_end_matches(','))
        .and_then(parse_duration_s)
        .context("wrk duration")?;
    let latency = text
        .lines()
        .find(|l| l.trim_start().starts_with("Latency") && !l.contains("Distribution"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(parse_duration_s)
        .context("wrk latency line")?;
    Ok(WrkResult {
        requests,
        seconds,
        latency_us: latency * 1e6,
    })
}

/// `705.00us`, `2.30ms`, `10.04s`, `1.00m` as seconds.
fn parse_duration_s(w: &str) -> Option<f64> {
    let split = w.find(|c: char| c.is_ascii_alphabetic())?;
    let (n, unit) = w.split_at(split);
    let n: f64 = n.parse().ok()?;
    let scale = match unit {
        "us" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        "m" => 60.0,
        _ => return None,
    };
    Some(n * scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_output_is_read() {
        let text = "Running 10s test @ http://10.201.0.1:8080/api/items/1\n\
  1 threads and 32 connections\n\
  Thread Stats   Avg      Stdev     Max   +/- Stdev\n\
    Latency     2.30ms    2.90ms  20.69ms   85.42%\n\
    Req/Sec    13.50k     5.78k   34.58k    72.73%\n\
  Latency Distribution\n\
     50%  705.00us\n\
  134451 requests in 10.04s, 26.54MB read\n\
Requests/sec:  13384.93\n";
        let r = parse_wrk(text).expect("parsed");
        assert_eq!(r.requests, 134_451);
        assert!((r.seconds - 10.04).abs() < 1e-9);
        assert!((r.latency_us - 2300.0).abs() < 1e-6);
        assert!((r.rps() - 13_391.4).abs() < 1.0);
        assert!(parse_wrk("garbage").is_err());
    }

    #[test]
    fn durations_in_every_unit() {
        assert_eq!(parse_duration_s("705.00us"), Some(705e-6));
        assert_eq!(parse_duration_s("1.50m"), Some(90.0));
        assert_eq!(parse_duration_s("3s"), Some(3.0));
        assert_eq!(parse_duration_s("3h"), None);
        assert_eq!(parse_duration_s("ms"), None);
    }
}
