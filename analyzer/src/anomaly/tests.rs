use super::*;
use crate::observe::path_key;

/// A record of `GET path` at second `t` with `status`, response `bytes`,
/// and auth described by `auth` (a JSON `auth` object) and `principal`.
fn rec(
    t: f64,
    path: &str,
    status: u16,
    bytes: u64,
    auth: &str,
    principal: Option<&str>,
) -> ExchangeRecord {
    let secs = t.floor() as u64;
    let nanos = ((t - t.floor()) * 1e9) as u64;
    let ts = Timestamp(secs * 1_000_000_000 + nanos);
    let principal = principal.map_or("null".to_owned(), |p| format!("\"{p}\""));
    let json = format!(
        r#"{{"schema":1,"ts":"{ts}","client":"10.0.0.1:4000","server":"10.0.0.2:80","host":"api","method":"GET",
        "path":"{path}","version":"1.1","status":{status},
        "request":{{"headers":[],"body":{{"framing":"none","wire_bytes":0,"bytes":0,"decoded_bytes":0}}}},
        "response":{{"headers":[],"body":{{"framing":"content_length","wire_bytes":{bytes},"bytes":{bytes},"decoded_bytes":{bytes}}}}},
        "auth":{auth},"principal":{principal},"flags":{{}}}}"#
    );
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"))
}

const JWT: &str = r#"{"scheme":"bearer_jwt","jwt":{"alg":"RS256","has_exp":true}}"#;

struct Feed {
    d: Detectors,
}

impl Feed {
    fn new() -> Feed {
        Feed {
            d: Detectors::new(DetectorConfig::default()),
        }
    }

    fn push(&mut self, r: &ExchangeRecord) {
        let (path, params) = path_key(&r.path);
        let key = ObservationKey {
            service: r.host.clone(),
            method: r.method.clone(),
            path,
        };
        self.d.observe(r, &key, &params);
    }

    /// `n` requests per 300 s window for `windows` windows from window
    /// `from`, every `k`-th answered `bad`, sizes around 1000 bytes.
    fn steady(&mut self, from: u64, windows: u64, n: u64, k: u64, bad: u16) {
        for w in from..from + windows {
            for i in 0..n {
                let t = w as f64 * 300.0 + i as f64 * 300.0 / n as f64;
                let status = if k > 0 && i % k == k - 1 { bad } else { 200 };
                let size = 800 + (i * 37 % 400);
                let caller = format!("c{:030}", i % 50);
                self.push(&rec(
                    t,
                    &format!("/v1/items/{}", i % 7 + 1),
                    status,
                    size,
                    JWT,
                    Some(&caller),
                ));
            }
        }
    }

    fn kinds(self) -> Vec<AnomalyKind> {
        self.d.finish().into_iter().map(|a| a.kind).collect()
    }
}

#[test]
fn steady_traffic_is_quiet_even_when_volume_swings() {
    let mut f = Feed::new();
    // Day and night: 400, then 40, then 400 requests a window, 2 % 404.
    f.steady(5_666_000, 20, 400, 50, 404);
    f.steady(5_666_020, 20, 40, 50, 404);
    f.steady(5_666_040, 20, 400, 50, 404);
    assert_eq!(f.kinds(), []);
}

#[test]
fn a_5xx_spike_is_found_with_its_window() {
    let mut f = Feed::new();
    f.steady(5_666_000, 20, 200, 100, 500);
    // One window with 30 % 5xx.
    f.steady(5_666_020, 1, 200, 3, 503);
    f.steady(5_666_021, 5, 200, 100, 500);
    let anomalies = f.d.finish();
    assert_eq!(anomalies.len(), 1, "{anomalies:#?}");
    let a = &anomalies[0];
    assert_eq!(a.kind, AnomalyKind::ErrorSpike5xx);
    assert_eq!(a.path_key.as_deref(), Some("/v1/items/{integer}"));
    assert_eq!(a.start, Timestamp(5_666_020 * 300 * 1_000_000_000));
    assert_eq!(a.end, Timestamp(5_666_021 * 300 * 1_000_000_000));
    assert!(a.observed > 0.3 && a.baseline < 0.02, "{a:?}");
}

#[test]
fn one_error_among_three_requests_is_not_a_spike() {
    let mut f = Feed::new();
    f.steady(5_666_000, 20, 200, 0, 200);
    f.steady(5_666_020, 1, 3, 3, 500);
    f.steady(5_666_021, 2, 200, 0, 200);
    assert_eq!(f.kinds(), []);
}

#[test]
fn a_new_endpoint_is_judged_against_its_service() {
    let mut f = Feed::new();
    f.steady(5_666_000, 20, 200, 100, 500);
    // A new endpoint, failing half the time from its first window.
    for i in 0..60 {
        let t = 5_666_020.0 * 300.0 + i as f64;
        f.push(&rec(
            t,
            "/v1/fresh",
            if i % 2 == 0 { 500 } else { 200 },
            100,
            JWT,
            None,
        ));
    }
    f.steady(5_666_021, 1, 200, 100, 500);
    let anomalies = f.d.finish();
    assert_eq!(anomalies.len(), 1, "{anomalies:#?}");
    assert_eq!(anomalies[0].path_key.as_deref(), Some("/v1/fresh"));
    assert!(anomalies[0]
        .explanation
        .contains("judged against the service"));
}

#[test]
fn huge_responses_and_size_shifts() {
    let mut f = Feed::new();
    f.steady(5_666_000, 10, 200, 0, 200);
    let t = 5_666_010.0 * 300.0;
    f.push(&rec(t, "/v1/items/3", 200, 120_000, JWT, None));
    f.steady(5_666_011, 2, 200, 0, 200);
    // A window where every response is five times bigger.
    for i in 0..100 {
        f.push(&rec(
            5_666_013.0 * 300.0 + i as f64,
            "/v1/items/2",
            200,
            5_000 + i,
            JWT,
            None,
        ));
    }
    f.steady(5_666_014, 1, 200, 0, 200);
    let anomalies = f.d.finish();
    let kinds: Vec<_> = anomalies.iter().map(|a| a.kind).collect();
    assert_eq!(
        kinds,
        [
            AnomalyKind::ResponseSizeOutlier,
            AnomalyKind::ResponseSizeShift
        ],
        "{anomalies:#?}"
    );
}

#[test]
fn auth_pattern_changes_alarm_at_their_onset_once() {
    let mut f = Feed::new();
    f.steady(5_666_000, 8, 200, 0, 200);
    let t = 5_666_008.0 * 300.0;
    // Anonymous 2xx twice in one window: one anomaly.
    f.push(&rec(
        t,
        "/v1/items/1",
        200,
        900,
        r#"{"scheme":"none"}"#,
        None,
    ));
    f.push(&rec(
        t + 1.0,
        "/v1/items/1",
        200,
        900,
        r#"{"scheme":"none"}"#,
        None,
    ));
    // Basic appears; an alg never seen; a token without exp.
    f.push(&rec(
        t + 2.0,
        "/v1/items/1",
        200,
        900,
        r#"{"scheme":"basic"}"#,
        Some("b0000000000000000000000000000000"),
    ));
    f.push(&rec(
        t + 3.0,
        "/v1/items/1",
        200,
        900,
        r#"{"scheme":"bearer_jwt","jwt":{"alg":"none","has_exp":true}}"#,
        None,
    ));
    f.push(&rec(
        t + 4.0,
        "/v1/items/1",
        200,
        900,
        r#"{"scheme":"bearer_jwt","jwt":{"alg":"RS256","has_exp":false}}"#,
        None,
    ));
    // Learned when the window closes: the same again later is quiet.
    f.steady(5_666_009, 1, 200, 0, 200);
    f.push(&rec(
        5_666_007.0 * 300.0,
        "/v1/items/1",
        200,
        900,
        r#"{"scheme":"basic"}"#,
        None,
    ));
    f.steady(5_666_010, 1, 200, 0, 200);
    let kinds = f.kinds();
    assert_eq!(
        kinds,
        [
            AnomalyKind::AnonymousSuccess,
            AnomalyKind::NewAuthScheme,
            AnomalyKind::JwtAlgChange,
            AnomalyKind::JwtWithoutExp
        ]
    );
}

/// A scheme the service already uses elsewhere, new on a quiet endpoint
/// (trusted but not strong baseline), alarms only once it carries volume:
/// `new_scheme_min_requests` requests within one window length.
#[test]
fn a_known_scheme_new_on_a_quiet_endpoint_alarms_on_volume() {
    let basic = r#"{"scheme":"basic"}"#;
    let quiet = |f: &mut Feed| {
        // Eight windows: 6 JWT requests a window on /v1/items/1, Basic on /admin.
        for w in 0..8u64 {
            for i in 0..6u64 {
                let t = (1_000 + w) as f64 * 300.0 + i as f64 * 50.0;
                let caller = format!("c{:030}", i % 3);
                f.push(&rec(t, "/v1/items/1", 200, 900, JWT, Some(&caller)));
                let admin = format!("a{:030}", i % 2);
                f.push(&rec(t + 1.0, "/admin/users", 200, 500, basic, Some(&admin)));
            }
        }
    };
    let t0 = 1_008.0 * 300.0;
    let newcomer = Some("n0000000000000000000000000000000");

    // Four requests in a window length, then a fifth after it: quiet.
    let mut f = Feed::new();
    quiet(&mut f);
    for i in 0..4 {
        f.push(&rec(
            t0 + i as f64 * 10.0,
            "/v1/items/1",
            200,
            900,
            basic,
            newcomer,
        ));
    }
    f.push(&rec(t0 + 400.0, "/v1/items/1", 200, 900, basic, newcomer));
    assert!(f.kinds().is_empty());

    // Five within a window length (across a window boundary): one anomaly,
    // starting at the first.
    let mut f = Feed::new();
    quiet(&mut f);
    for i in 0..7 {
        f.push(&rec(
            t0 + 250.0 + i as f64 * 20.0,
            "/v1/items/1",
            200,
            900,
            basic,
            newcomer,
        ));
    }
    let found = f.d.finish();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].kind, AnomalyKind::NewAuthScheme);
    assert_eq!(found[0].severity, AnomalySeverity::High);
    assert_eq!(
        found[0].start,
        Timestamp(((t0 + 250.0) as u64) * 1_000_000_000)
    );
}

#[test]
fn one_caller_refused_again_and_again_is_a_burst() {
    let mut f = Feed::new();
    f.steady(5_666_000, 20, 200, 100, 403);
    for i in 0..30 {
        let t = 5_666_020.0 * 300.0 + i as f64;
        f.push(&rec(
            t,
            "/v1/login",
            401,
            50,
            JWT,
            Some("deadbeef00000000000000000000000f"),
        ));
    }
    f.steady(5_666_021, 1, 200, 100, 403);
    let anomalies = f.d.finish();
    let bursts: Vec<_> = anomalies
        .iter()
        .filter(|a| a.kind == AnomalyKind::AuthFailureBurst)
        .collect();
    assert!(!bursts.is_empty(), "{anomalies:#?}");
    assert!(bursts
        .iter()
        .any(|a| a.caller.as_deref() == Some("deadbeef0000")));
}

#[test]
fn a_caller_walking_ids_is_an_enumeration() {
    let mut f = Feed::new();
    f.steady(5_666_000, 20, 200, 0, 200);
    for i in 0..80 {
        let t = 5_666_020.0 * 300.0 + i as f64;
        let status = if i % 4 == 0 { 200 } else { 403 };
        f.push(&rec(
            t,
            &format!("/v1/items/{}", 1000 + i),
            status,
            900,
            JWT,
            Some("e0000000000000000000000000000000"),
        ));
    }
    f.steady(5_666_021, 1, 200, 0, 200);
    let anomalies = f.d.finish();
    let bola: Vec<_> = anomalies
        .iter()
        .filter(|a| a.kind == AnomalyKind::BolaEnumeration)
        .collect();
    assert_eq!(bola.len(), 1, "{anomalies:#?}");
    assert_eq!(bola[0].caller.as_deref(), Some("e00000000000"));
    assert_eq!(bola[0].observed, 80.0);
}

/// Exports the state, as a store would keep it, and restores it into fresh
/// detectors, merging with what an earlier export stored.
fn reload(d: &Detectors, stored: &mut DetectorState) -> Detectors {
    let state = d.export_state().unwrap();
    let mut merged = DetectorState {
        window_s: state.window_s,
        late_records: state.late_records,
        replaces_all: false,
        endpoints: state.endpoints,
        services: state.services,
        anomalies: state.anomalies,
    };
    // Untouched states stay as stored.
    for (k, json) in &stored.endpoints {
        if !merged.endpoints.iter().any(|(m, _)| m == k) {
            merged.endpoints.push((k.clone(), json.clone()));
        }
    }
    for (k, json) in &stored.services {
        if !merged.services.iter().any(|(m, _)| m == k) {
            merged.services.push((k.clone(), json.clone()));
        }
    }
    *stored = merged.clone();
    let (d, note) = Detectors::restore(d.config().clone(), merged).unwrap();
    assert_eq!(note, None);
    d
}

#[test]
fn a_stream_cut_anywhere_and_restored_gives_the_anomalies_of_the_whole() {
    // A baseline, a 5xx spike, a size outlier, a BOLA walk, a JWT alg change.
    let mut records = Vec::new();
    let mut f = Feed::new();
    for w in 5_666_000..5_666_030u64 {
        for i in 0..100u64 {
            let t = w as f64 * 300.0 + i as f64 * 3.0;
            let spike = w == 5_666_020 && i % 3 == 0;
            let size = if w == 5_666_025 && i == 50 {
                900_000
            } else {
                800 + (i * 37 % 400)
            };
            let auth = if w >= 5_666_027 && i % 10 == 0 {
                r#"{"scheme":"bearer_jwt","jwt":{"alg":"none","has_exp":true}}"#
            } else {
                JWT
            };
            records.push(rec(
                t,
                &format!("/v1/items/{}", i % 7 + 1),
                if spike { 503 } else { 200 },
                size,
                auth,
                Some(&format!("c{:030}", i % 50)),
            ));
        }
        if w == 5_666_022 {
            for id in 0..60u64 {
                records.push(rec(
                    w as f64 * 300.0 + 100.0 + id as f64,
                    &format!("/v1/items/{}", 1000 + id),
                    403,
                    100,
                    JWT,
                    Some("walker000000000000000000000000"),
                ));
            }
        }
    }
    records.sort_by_key(|r| r.ts);
    for r in &records {
        f.push(r);
    }
    let whole = f.d.finish();
    let kinds: std::collections::BTreeSet<_> = whole.iter().map(|a| a.kind).collect();
    assert!(kinds.len() >= 4, "{whole:#?}");
    // Cut in the middle of windows and between them, once and twice.
    let n = records.len();
    for cuts in [
        vec![n / 2],
        vec![n / 3, 2 * n / 3],
        vec![1, n - 1],
        vec![2001],
    ] {
        let mut stored = DetectorState::default();
        let mut f = Feed::new();
        let mut from = 0;
        for &cut in &cuts {
            for r in &records[from..cut] {
                f.push(r);
            }
            f.d = reload(&f.d, &mut stored);
            from = cut;
        }
        for r in &records[from..] {
            f.push(r);
        }
        assert_eq!(f.d.finish(), whole, "cut at {cuts:?}");
    }
}

#[test]
fn a_state_with_another_window_length_starts_over_but_keeps_history() {
    let mut f = Feed::new();
    f.steady(5_666_000, 20, 200, 100, 500);
    f.steady(5_666_020, 1, 200, 3, 503);
    f.steady(5_666_021, 2, 200, 100, 500);
    let state = f.d.export_state().unwrap();
    assert!(!state.anomalies.is_empty());
    let config = DetectorConfig {
        window_s: 60,
        ..DetectorConfig::default()
    };
    let (d, note) = Detectors::restore(config, state.clone()).unwrap();
    assert!(note.unwrap().contains("300 s windows"));
    let again = d.export_state().unwrap();
    assert!(again.replaces_all);
    assert!(again.endpoints.is_empty() && again.services.is_empty());
    assert_eq!(again.anomalies, state.anomalies);
}

#[test]
fn a_damaged_state_is_an_error_not_a_panic() {
    let mut f = Feed::new();
    f.steady(5_666_000, 3, 50, 0, 200);
    let mut state = f.d.export_state().unwrap();
    state.endpoints[0].1 = "{\"baseline\": 12".into();
    let err = Detectors::restore(DetectorConfig::default(), state).unwrap_err();
    assert!(err.to_string().contains("api GET /v1/items"), "{err}");
}

#[test]
fn a_walk_survives_interleaved_traffic() {
    let mut w = Walks::default();
    // Noise, then a walk 100, 101, (103: one skipped), 104 with the
    // caller's other requests in between.
    for (id, denied) in [
        (7, false),
        (42, false),
        (100, true),
        (101, true),
        (5, false),
        (77, false),
        (103, true),
        (9000, false),
        (104, false),
        (13, false),
    ] {
        w.step(id, denied);
    }
    let l = w.longest();
    assert_eq!((l.len, l.denied), (4, 3));
    assert_eq!(l.continues, [id_hash(105), id_hash(106)]);
}
