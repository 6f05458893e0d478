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
