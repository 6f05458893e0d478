//! The generator, checked through the sensor itself: every exchange it
//! writes comes out of the real reader and engine, every anomaly it
//! claims is really in the records, and the steady traffic has the
//! configured rates. Scenarios are small (minutes of packet time) so the
//! suite stays quick in debug builds.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use shadowtap_proto::engine::{Engine, EngineConfig};
use shadowtap_proto::record::{AuthScheme, FingerprintKey, KeyLocation};
use shadowtap_proto::ExchangeRecord;
use shadowtap_scenario::{
    generate, AnomalyKind, AnomalyPlan, Config, Diurnal, Expected, ExpectedAnomaly, Report,
};
use shadowtap_sensor::capture::{CaptureSource, FileSource};

const MIN_NS: u64 = 60_000_000_000;

/// A 20-minute scenario at `rate` req/s with every kind once after a 3-minute warm-up.
fn small(seed: u64, rate: f64) -> Config {
    let mut c = Config::new(seed, 1.0 / 3.0, rate);
    c.anomalies = AnomalyPlan {
        warmup_ns: Some(3 * MIN_NS),
        ..AnomalyPlan::all(1)
    };
    c
}

fn write(config: &Config) -> (Vec<u8>, Report) {
    let mut out = Vec::new();
    let report = generate(config, &mut out).expect("a valid scenario");
    (out, report)
}

/// Runs a capture through the sensor's file reader and engine.
fn records(pcap: Vec<u8>) -> Vec<ExchangeRecord> {
    let len = pcap.len() as u64;
    let mut source = FileSource::from_reader(
        "scenario.pcap",
        Box::new(std::io::Cursor::new(pcap)),
        Some(len),
    )
    .expect("a pcap header");
    let mut engine = Engine::new(EngineConfig::new(FingerprintKey::new([9; 32])));
    let mut out = Vec::new();
    while let Some(p) = source.next_packet().expect("a well-formed capture") {
        engine.on_packet(p.ts, p.link_type, p.data, &mut out);
    }
    engine.finish(&mut out);
    let counters = engine.counters();
    assert!(
        counters.dropped.is_empty() && counters.not_tcp == 0,
        "{counters:?}"
    );
    out
}

/// Whether `path` is an instance of `template` (`{name}` matches one segment).
fn matches(template: &str, path: &str) -> bool {
    let (t, p): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    t.len() == p.len()
        && t.iter()
            .zip(&p)
            .all(|(t, p)| t == p || (t.starts_with('{') && !p.is_empty()))
}

fn on_endpoint<'r>(records: &'r [ExchangeRecord], a: &ExpectedAnomaly) -> Vec<&'r ExchangeRecord> {
    records
        .iter()
        .filter(|r| r.host == a.service && r.method == a.method && matches(&a.template, &r.path))
        .collect()
}

fn in_window<'r>(records: &[&'r ExchangeRecord], a: &ExpectedAnomaly) -> Vec<&'r ExchangeRecord> {
    records
        .iter()
        .copied()
        .filter(|r| a.start <= r.ts && r.ts < a.end)
        .collect()
}

fn from_ip<'r>(records: &[&'r ExchangeRecord], a: &ExpectedAnomaly) -> Vec<&'r ExchangeRecord> {
    let ip: IpAddr = a.params["client_ip"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("client_ip param");
    records
        .iter()
        .copied()
        .filter(|r| r.client.ip() == ip)
        .collect()
}

fn param(a: &ExpectedAnomaly, name: &str) -> f64 {
    a.params[name]
        .as_f64()
        .unwrap_or_else(|| panic!("{} has no {name}", a.kind))
}

fn median(mut v: Vec<u64>) -> f64 {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0) as f64
}

fn body_bytes(r: &ExchangeRecord) -> u64 {
    r.response.as_ref().map_or(0, |m| m.body.bytes)
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let config = small(11, 3.0);
    let (a, ra) = write(&config);
    let (b, rb) = write(&config);
    assert!(a == b, "same seed, different captures");
    assert_eq!(ra, rb);
    let (c, _) = write(&small(12, 3.0));
    assert!(a != c);
}

#[test]
fn every_exchange_parses_and_every_anomaly_is_in_the_records() {
    let config = small(5, 8.0);
    let (pcap, report) = write(&config);
    let expected = &report.expected;
    assert_eq!(expected.requests, report.summary.requests);
    let records = records(pcap);
    assert_eq!(records.len() as u64, expected.requests);
    // Clean TCP and HTTP: no gaps, no truncation, nothing unanswered.
    for r in &records {
        assert!(
            r.anomalies.is_empty(),
            "{} {}: {:?}",
            r.method,
            r.path,
            r.anomalies
        );
        let f = r.flags;
        assert!(
            !(f.gap || f.truncated || f.mid_stream || f.unanswered),
            "{f:?}"
        );
    }
    // The file round-trips.
    assert_eq!(
        Expected::from_json(&expected.to_json()).ok().as_ref(),
        Some(expected)
    );

    let kinds: HashSet<AnomalyKind> = expected.anomalies.iter().map(|a| a.kind).collect();
    assert_eq!(
        kinds.len(),
        AnomalyKind::ALL.len(),
        "skipped: {:?}",
        expected.skipped
    );
    for a in &expected.anomalies {
        assert!(
            a.start >= expected.warmup_end && a.end <= expected.end,
            "{a:?}"
        );
        let endpoint = on_endpoint(&records, a);
        let window = in_window(&endpoint, a);
        assert_eq!(window.len() as u64, a.window_requests, "{} window", a.kind);
        assert!(a.requests > 0, "{} injected nothing", a.kind);
        check(a, &endpoint, &window);
    }
    // No two anomalies overlap on one endpoint.
    for (i, a) in expected.anomalies.iter().enumerate() {
        for b in &expected.anomalies[i + 1..] {
            let same = (&a.service, &a.method, &a.template) == (&b.service, &b.method, &b.template);
            assert!(
                !same || a.end <= b.start || b.end <= a.start,
                "{a:?} overlaps {b:?}"
            );
        }
    }
}

/// The kind-specific evidence of one anomaly.
fn check(a: &ExpectedAnomaly, endpoint: &[&ExchangeRecord], window: &[&ExchangeRecord]) {
    let status = |r: &ExchangeRecord| r.status.unwrap_or(0);
    let n = window.len() as f64;
    match a.kind {
        AnomalyKind::ErrorSpike5xx | AnomalyKind::ErrorSpike4xx => {
            let class = if a.kind == AnomalyKind::ErrorSpike5xx {
                5
            } else {
                4
            };
            let errors = window.iter().filter(|r| status(r) / 100 == class).count() as f64;
            let rate = param(a, "rate");
            let expected = rate + (1.0 - rate) * param(a, "baseline_rate");
            let tolerance = 4.0 * (expected * (1.0 - expected) / n).sqrt();
            assert!(
                (errors / n - expected).abs() <= tolerance,
                "{}: {errors}/{n} vs {expected}",
                a.kind
            );
            assert!(errors >= a.requests as f64);
        }
        AnomalyKind::ResponseSizeShift => {
            let ok = |r: &&&ExchangeRecord| (200..300).contains(&status(r));
            let inside = median(window.iter().filter(ok).map(|r| body_bytes(r)).collect());
            let outside: Vec<u64> = endpoint
                .iter()
                .filter(ok)
                .filter(|r| r.ts < a.start || r.ts >= a.end)
                .map(|r| body_bytes(r))
                .collect();
            let outside = median(outside);
            let ratio = inside / outside;
            let factor = param(a, "factor");
            assert!(
                (ratio / factor - 1.0).abs() < 0.35,
                "shift ×{ratio:.2}, expected ×{factor}"
            );
        }
        AnomalyKind::ResponseSizeOutlier => {
            let floor = param(a, "factor") * param(a, "baseline_median_bytes") * 0.2;
            let big = window
                .iter()
                .filter(|r| body_bytes(r) as f64 >= floor)
                .count();
            assert_eq!(big as f64, param(a, "count"));
            let before = endpoint
                .iter()
                .filter(|r| r.ts < a.start && body_bytes(r) as f64 >= floor);
            assert_eq!(before.count(), 0);
        }
        AnomalyKind::AnonymousSuccess => {
            let mine = from_ip(window, a);
            assert_eq!(mine.len() as f64, param(a, "count"));
            assert!(mine
                .iter()
                .all(|r| r.auth.scheme == AuthScheme::None && status(r) / 100 == 2));
            assert!(mine.iter().all(|r| r.principal.is_none()));
            // Before it, every request on the endpoint carried credentials.
            assert!(endpoint
                .iter()
                .filter(|r| r.ts < a.start)
                .all(|r| r.auth.scheme != AuthScheme::None));
        }
        AnomalyKind::NewAuthScheme => {
            let mine = from_ip(window, a);
            assert_eq!(mine.len() as f64, param(a, "count"));
            let new = match a.params["scheme"].as_str() {
                Some("basic") => AuthScheme::Basic,
                _ => AuthScheme::ApiKey,
            };
            assert!(mine
                .iter()
                .all(|r| r.auth.scheme == new && status(r) / 100 == 2));
            if new == AuthScheme::ApiKey {
                assert!(mine
                    .iter()
                    .all(|r| r.auth.key_in == Some(KeyLocation::Query)));
            }
            assert!(endpoint
                .iter()
                .filter(|r| r.ts < a.start)
                .all(|r| r.auth.scheme != new));
        }
        AnomalyKind::JwtAlgChange => {
            let mine = from_ip(window, a);
            assert_eq!(mine.len() as f64, param(a, "count"));
            let alg = a.params["alg"].as_str();
            assert!(mine
                .iter()
                .all(|r| r.auth.jwt.as_ref().and_then(|j| j.alg.as_deref()) == alg));
            let steady = endpoint
                .iter()
                .filter(|r| r.ts < a.start)
                .filter_map(|r| r.auth.jwt.as_ref());
            assert!(steady.clone().count() > 0);
            assert!(steady
                .clone()
                .all(|j| j.alg.as_deref() == Some("RS256") && j.has_exp));
        }
        AnomalyKind::JwtWithoutExp => {
            let no_exp = |r: &&&ExchangeRecord| r.auth.jwt.as_ref().is_some_and(|j| !j.has_exp);
            assert_eq!(
                window.iter().filter(no_exp).count() as f64,
                param(a, "count")
            );
            assert_eq!(
                endpoint.iter().filter(no_exp).count() as f64,
                param(a, "count")
            );
        }
        AnomalyKind::AuthFailureBurst => {
            let refused: Vec<_> = window
                .iter()
                .filter(|r| matches!(status(r), 401 | 403))
                .collect();
            assert!(refused.len() as f64 >= param(a, "count"));
            let principals: HashSet<_> = refused
                .iter()
                .filter_map(|r| r.principal.as_ref())
                .collect();
            match a.params["scope"].as_str() {
                Some("caller") => {
                    let mine = from_ip(window, a);
                    assert_eq!(mine.len() as f64, param(a, "count"));
                    let one: HashSet<_> = mine.iter().map(|r| &r.principal).collect();
                    assert_eq!(one.len(), 1, "one account");
                    assert!(mine.iter().all(|r| status(r) == 401));
                }
                _ => assert!(
                    principals.len() as f64 >= param(a, "callers").min(param(a, "count")) * 0.5
                ),
            }
        }
        AnomalyKind::BolaEnumeration => {
            let mine: Vec<_> = from_ip(window, a)
                .into_iter()
                .filter(|r| r.principal.is_some())
                .collect();
            let ids: HashSet<u64> = mine
                .iter()
                .filter_map(|r| r.path.rsplit('/').next()?.parse().ok())
                .collect();
            let (first, last) = (param(a, "first_id") as u64, param(a, "last_id") as u64);
            assert!(
                (first..=last).all(|id| ids.contains(&id)),
                "the walk is complete"
            );
            assert!(ids.len() as f64 >= param(a, "distinct_ids"));
            let walk: Vec<_> = mine
                .iter()
                .filter(|r| {
                    r.path
                        .rsplit('/')
                        .next()
                        .and_then(|s| s.parse().ok())
                        .is_some_and(|id: u64| (first..=last).contains(&id))
                })
                .collect();
            let denied = walk
                .iter()
                .filter(|r| matches!(status(r), 403 | 404))
                .count() as f64;
            let share = param(a, "denied_share");
            assert!(share > 0.6);
            assert!((denied / walk.len() as f64 - share).abs() < 0.02 + 2.0 / walk.len() as f64);
        }
    }
}

#[test]
fn steady_traffic_has_the_configured_rates() {
    let mut config = Config::new(21, 0.25, 12.0);
    config.anomalies = AnomalyPlan::clean();
    let (pcap, report) = write(&config);
    assert!(report.expected.anomalies.is_empty());
    assert_eq!(report.summary.anomalous_requests, 0);
    let records = records(pcap);
    let n = records.len() as f64;
    // Poisson count: 12 req/s over 15 minutes, within 5 sigma.
    let mean = 12.0 * 900.0;
    assert!((n - mean).abs() < 5.0 * f64::sqrt(mean), "{n} requests");

    // Per endpoint: request share and error rates as the catalogue says.
    let mut count_4xx = 0.0;
    let mut expect_4xx = 0.0;
    for s in &report.expected.services {
        for e in &s.endpoints {
            let mine: Vec<_> = records
                .iter()
                .filter(|r| {
                    r.host == s.host && r.method == e.method && matches(&e.template, &r.path)
                })
                .collect();
            let share = mine.len() as f64 / n;
            let sd = (e.share * (1.0 - e.share) / n).sqrt();
            assert!(
                (share - e.share).abs() < 5.0 * sd + 1e-3,
                "{} {}: share {share}",
                e.method,
                e.template
            );
            count_4xx += mine
                .iter()
                .filter(|r| r.status.unwrap_or(0) / 100 == 4)
                .count() as f64;
            expect_4xx += e.rate_4xx * mine.len() as f64;
            // Steady auth: what the catalogue says (public ones also see tokens and keys).
            let schemes: HashSet<AuthScheme> = mine.iter().map(|r| r.auth.scheme).collect();
            let want = match e.auth.as_str() {
                "bearer_jwt" => AuthScheme::BearerJwt,
                "api_key" => AuthScheme::ApiKey,
                "basic" => AuthScheme::Basic,
                _ => AuthScheme::None,
            };
            if !mine.is_empty() {
                assert!(
                    schemes.contains(&want),
                    "{} {}: {schemes:?}",
                    e.method,
                    e.template
                );
            }
            if want != AuthScheme::None {
                assert_eq!(schemes.len(), 1, "{} {}: {schemes:?}", e.method, e.template);
            }
        }
    }
    assert!(
        (count_4xx - expect_4xx).abs() < 5.0 * expect_4xx.sqrt(),
        "4xx {count_4xx} vs {expect_4xx}"
    );
    let total_4xx = records
        .iter()
        .filter(|r| r.status.unwrap_or(0) / 100 == 4)
        .count() as f64;
    assert!(
        (0.005..0.04).contains(&(total_4xx / n)),
        "4xx share {}",
        total_4xx / n
    );
    let total_5xx = records
        .iter()
        .filter(|r| r.status.unwrap_or(0) / 100 == 5)
        .count() as f64;
    assert!(total_5xx / n < 0.005, "5xx share {}", total_5xx / n);

    // JWTs: RS256 with exp, an hour's lifetime.
    for r in records.iter().filter_map(|r| r.auth.jwt.as_ref()) {
        assert_eq!(r.alg.as_deref(), Some("RS256"));
        assert!(r.has_exp);
        assert_eq!(r.lifetime_s, Some(3600));
    }

    // Connections: reused for several requests, and some used just once.
    let mut per_conn: HashMap<_, u32> = HashMap::new();
    for r in &records {
        *per_conn.entry((r.client, r.server)).or_default() += 1;
    }
    let singles = per_conn.values().filter(|&&c| c == 1).count();
    let reused = per_conn.values().filter(|&&c| c >= 5).count();
    assert!(
        singles > 50 && reused > 50,
        "singles {singles}, reused {reused}"
    );
    assert!(report.summary.connections as usize >= per_conn.len());
    assert!((n / per_conn.len() as f64) > 2.0);
}

#[test]
fn diurnal_load_swings_and_list_bodies_are_larger() {
    let mut config = Config::new(3, 0.5, 10.0);
    config.anomalies = AnomalyPlan::clean();
    config.diurnal = Some(Diurnal::compressed(30 * MIN_NS));
    let (pcap, report) = write(&config);
    let records = records(pcap);
    let start = report.expected.start;
    let minute = |r: &ExchangeRecord| r.ts.nanos_since(start) / MIN_NS;
    let in_minutes = |lo: u64, hi: u64| {
        records
            .iter()
            .filter(|r| (lo..hi).contains(&minute(r)))
            .count() as f64
    };
    // Trough at the start (×0.2), peak half a period in (×1.0).
    let trough = in_minutes(0, 2) + in_minutes(28, 30);
    let peak = in_minutes(14, 18);
    assert!(peak / trough > 3.5, "peak {peak} trough {trough}");
    assert!(peak / trough < 6.5, "peak {peak} trough {trough}");

    let lists = median(
        records
            .iter()
            .filter(|r| r.path == "/v1/products")
            .map(body_bytes)
            .collect(),
    );
    let items = median(
        records
            .iter()
            .filter(|r| r.path.starts_with("/v1/products/"))
            .map(body_bytes)
            .collect(),
    );
    assert!(lists > 2.0 * items, "lists {lists} items {items}");
}
