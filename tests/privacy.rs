//! Privacy canaries: captures full of known secrets produce records in which
//! none of them occurs, in any common encoding.

use std::io::Write as _;
use std::path::Path;

use crate::support::pcap::{pcap_of, Conn, Link};
use crate::support::run_capture;

/// The forms a secret could leak in: raw, base64, base64url, percent-encoded,
/// JSON-escaped.
fn encodings(secret: &str) -> Vec<String> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(secret);
    let b64url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
    let pct: String = secret
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let json = serde_json::to_string(secret).expect("string serializes");
    vec![
        secret.to_string(),
        b64,
        b64url,
        pct,
        json.trim_matches('"').to_string(),
    ]
}

fn assert_no_leak(output: &str, secrets: &[&str]) {
    for secret in secrets {
        for form in encodings(secret) {
            assert!(
                !output.contains(&form),
                "secret {secret:?} leaked as {form:?}"
            );
        }
    }
}

fn jsonl(records: &[shadowtap_proto::ExchangeRecord]) -> String {
    records
        .iter()
        .map(|r| serde_json::to_string(r).expect("record serializes") + "\n")
        .collect()
}

#[test]
fn shipped_sample_leaks_none_of_its_secrets() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let pcap = std::fs::read(root.join("samples/demo-api.pcap")).expect("sample capture");
    let secrets =
        std::fs::read_to_string(root.join("samples/demo-api.secrets.txt")).expect("secrets list");
    let secrets: Vec<&str> = secrets.lines().filter(|l| !l.is_empty()).collect();
    assert!(secrets.len() >= 10);
    // The capture really carries them (else the test proves nothing).
    let raw = String::from_utf8_lossy(&pcap);
    for s in &secrets {
        assert!(raw.contains(s), "sample no longer contains {s:?}");
    }
    let (records, _) = run_capture(pcap);
    assert_eq!(records.len(), 85);
    assert_no_leak(&jsonl(&records), &secrets);
    // And the descriptors are there: every auth style the sample uses.
    let out = jsonl(&records);
    for scheme in [
        "\"bearer_jwt\"",
        "\"basic\"",
        "\"api_key\"",
        "\"cookie\"",
        "\"none\"",
    ] {
        assert!(out.contains(scheme), "no {scheme} record");
    }
    assert!(out.contains("\"key_in\":\"query\"") && out.contains("\"key_in\":\"header\""));
}

const JWT: &str = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImNhbmFyeS1raWQifQ.eyJzdWIiOiJjYW5hcnktc3ViamVjdC04ODEyIiwiZW1haWwiOiJjYW5hcnkudXNlckBleGFtcGxlLm9yZyIsImlzcyI6Imh0dHBzOi8vaWRwLmV4YW1wbGUub3JnIiwiYXVkIjoiY2FuYXJ5LWFwaSIsImlhdCI6MTcwMDAwMDAwMCwiZXhwIjoxNzAwMDAzNjAwfQ.c2lnbmF0dXJlLWNhbmFyeS1ieXRlcw";

/// Each string is unique to one place in the canary capture.
const CANARIES: &[&str] = &[
    JWT,
    "c2lnbmF0dXJlLWNhbmFyeS1ieXRlcw",
    "canary-subject-8812",
    "canary.user@example.org",
    "canary-basic-user:canary-basic-pw-91",
    "canary-basic-pw-91",
    "canary-cookie-session-6b1f",
    "canary-csrf-77aa",
    "canary-api-key-header-3d9e",
    "canary-api-key-query-0c42",
    "canary-query-token-5512",
    "4000056655665556",
    "canary-json-password-x1",
    "canary-gzip-password-x2",
    "canary-chunked-secret-x3",
    "canary-form-password-x4",
    "canary-response-ssn-123-45-6789",
    "canary.key.email@example.net",
    "canary-setcookie-value-29",
    "cAnArY7pAtH9tOkEn2x",
    "canary.path@example.com",
];

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).expect("gzip");
    e.finish().expect("gzip")
}

fn canary_capture() -> Vec<u8> {
    use base64::Engine as _;
    let basic =
        base64::engine::general_purpose::STANDARD.encode("canary-basic-user:canary-basic-pw-91");
    let json_body = r#"{"user":"u1","password":"canary-json-password-x1","card":{"number":"4000056655665556","cvc":"123"}}"#;
    let gz_body = gzip(
        br#"{"password":"canary-gzip-password-x2","profile":{"email":"canary.user@example.org"}}"#,
    );
    let mut requests: Vec<Vec<u8>> = vec![
        format!("GET /v1/me?access_token=canary-query-token-5512&card=4000056655665556 HTTP/1.1\r\nHost: api.canary\r\nAuthorization: Bearer {JWT}\r\n\r\n").into_bytes(),
        format!("GET /v1/basic HTTP/1.1\r\nHost: api.canary\r\nAuthorization: Basic {basic}\r\n\r\n").into_bytes(),
        b"GET /v1/session HTTP/1.1\r\nHost: api.canary\r\nCookie: session=canary-cookie-session-6b1f; csrf=canary-csrf-77aa\r\n\r\n".to_vec(),
        b"GET /v1/keyed HTTP/1.1\r\nHost: api.canary\r\nX-API-Key: canary-api-key-header-3d9e\r\n\r\n".to_vec(),
        b"GET /v1/keyed?api_key=canary-api-key-query-0c42 HTTP/1.1\r\nHost: api.canary\r\n\r\n".to_vec(),
        b"GET /v1/reset/cAnArY7pAtH9tOkEn2x/canary.path@example.com HTTP/1.1\r\nHost: api.canary\r\n\r\n".to_vec(),
        format!("POST /v1/pay HTTP/1.1\r\nHost: api.canary\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{json_body}", json_body.len()).into_bytes(),
        b"POST /v1/login HTTP/1.1\r\nHost: api.canary\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 55\r\n\r\nuser=canary.user%40example.org&pw=canary-form-password-x4".to_vec(),
    ];
    let mut gz_req = format!("POST /v1/gz HTTP/1.1\r\nHost: api.canary\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n", gz_body.len()).into_bytes();
    gz_req.extend_from_slice(&gz_body);
    requests.push(gz_req);
    let chunk = r#"{"secret":"canary-chunked-secret-x3"}"#;
    requests.push(format!("POST /v1/chunked HTTP/1.1\r\nHost: api.canary\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n", chunk.len()).into_bytes());

    let resp_body = r#"{"ssn":"canary-response-ssn-123-45-6789","by_email":{"canary.key.email@example.net":{"id":1}}}"#;
    let response = format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nSet-Cookie: sid=canary-setcookie-value-29; HttpOnly\r\nContent-Length: {}\r\n\r\n{resp_body}", resp_body.len());

    let mut c = Conn::new("10.9.0.1:41000", "10.9.0.2:8080", 11, 22);
    let mut segs = c.handshake();
    for req in &requests {
        segs.extend(c.send(true, req));
        segs.extend(c.send(false, response.as_bytes()));
    }
    segs.extend(c.close());
    pcap_of(Link::Ethernet, &segs)
}

#[test]
fn canary_capture_leaks_no_secret_in_any_encoding() {
    let pcap = canary_capture();
    let raw = String::from_utf8_lossy(&pcap);
    // Canaries sent in the clear are on the wire as written (the others
    // travel inside the JWT, the Basic credentials or the gzip body).
    let hidden = [
        "canary-subject-8812",
        "canary.user@example.org",
        "canary-basic",
        "gzip",
    ];
    for c in CANARIES
        .iter()
        .filter(|c| !hidden.iter().any(|h| c.contains(h)))
    {
        assert!(raw.contains(c), "canary {c:?} not in capture");
    }
    let (records, counters) = run_capture(pcap);
    assert_eq!(records.len(), 10, "{counters:?}");
    let out = jsonl(&records);
    assert_no_leak(&out, CANARIES);
    // Names and shapes are kept.
    assert!(
        out.contains("\"access_token\"") && out.contains("\"password\"") && out.contains("\"pw\"")
    );
    assert!(out.contains("\"bearer_jwt\"") && out.contains("\"alg\":\"RS256\""));
    assert!(out.contains("\"cookies\":[\"session\",\"csrf\"]"));
    assert!(
        out.contains("\"{key}\""),
        "value-like JSON keys are redacted: {out}"
    );
    // A token and an address in the path leave as placeholders.
    assert!(records
        .iter()
        .any(|r| r.path == "/v1/reset/{token}/{email}"));
    // The decoded gzip body was seen (its shape has the nested email field).
    let gz = records
        .iter()
        .find(|r| r.path == "/v1/gz")
        .expect("gzip exchange");
    assert!(serde_json::to_string(&gz.request.body.shape)
        .expect("shape")
        .contains("\"profile\""));
    // Debug output of a record is just as clean.
    assert_no_leak(&format!("{records:?}"), CANARIES);
}
