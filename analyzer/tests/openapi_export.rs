//! The OpenAPI export validated by an external validator, Python's
//! `openapi-spec-validator` (`cargo xtask test` installs it in a venv under
//! the target directory and names it in `SHADOWTAP_OPENAPI_VALIDATOR`), and
//! loaded back by shadowtap's own contract loader. Skips the external check
//! (loudly) without the validator, except under `cargo xtask test`.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use shadowtap_analyzer::report::{self, Format, Report};
use shadowtap_analyzer::spec;
use support::{analyze_demo, external_tool, output_within, scratch};

fn validator(test: &str) -> Option<PathBuf> {
    let found = std::env::var_os("SHADOWTAP_OPENAPI_VALIDATOR")
        .map(PathBuf::from)
        .or_else(|| {
            // Where `cargo xtask test` provisions it, for runs after one.
            let target = Path::new(env!("CARGO_TARGET_TMPDIR")).parent()?;
            Some(target.join("tools/openapi-validator/bin/openapi-spec-validator"))
        })
        .filter(|p| p.is_file());
    external_tool(test, "openapi-spec-validator", found)
}

/// Validates `text` with the external validator (when there is one) and
/// loads it with shadowtap's loader.
fn check(test: &str, name: &str, text: &str) -> spec::Contract {
    let contract = spec::load_str(name, text).unwrap_or_else(|e| panic!("{e}"));
    if let Some(validator) = validator(test) {
        let file = scratch(name);
        std::fs::write(&file, text).expect("export written");
        let out = output_within(
            Command::new(&validator)
                .args(["--schema", "3.1"])
                .arg(&file),
            Duration::from_secs(120),
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains(": OK"),
            "{} rejects the export:\n{stdout}{}",
            validator.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let _ = std::fs::remove_file(&file);
    }
    contract
}

fn get_user(c: &spec::Contract) -> &spec::Operation {
    c.operations
        .iter()
        .find(|o| o.method == "GET" && o.path == "/api/v1/users/{userId}")
        .expect("GET /api/v1/users/{userId}")
}

#[test]
fn demo_export_is_a_valid_openapi_3_1_document() {
    let text = analyze_demo("openapi");
    let c = check(
        "demo_export_is_a_valid_openapi_3_1_document",
        "demo-openapi.json",
        &text,
    );
    assert_eq!(c.spec_version, "3.1.0");
    assert_eq!(c.operations.len(), 25);
    let user = get_user(&c);
    assert!(user
        .parameters
        .iter()
        .any(|p| p.name == "userId" && p.required));
    assert!(c.security_schemes.contains_key("bearerJwt"));
}

/// The demo's report with a second service serving the same API, and a
/// UUID-keyed twin of `GET /api/v1/users/{userId}`: the export must merge
/// both (one path, a `oneOf` parameter, operations shared by two servers)
/// and still validate.
#[test]
fn merged_templates_and_services_stay_valid() {
    let mut r: Value = serde_json::from_str(&analyze_demo("json")).expect("JSON report");
    let endpoints = r["services"][0]["endpoints"]
        .as_array_mut()
        .expect("endpoints");
    let mut twin = endpoints
        .iter()
        .find(|e| e["template"] == "/api/v1/users/{userId}" && e["method"] == "GET")
        .expect("users endpoint")
        .clone();
    twin["template"] = json!("/api/v1/users/{userUuid}");
    twin["segments"][3]["text"] = json!("userUuid");
    twin["segments"][3]["kind"] = json!("uuid");
    twin["requests"] = json!(2);
    endpoints.push(twin);
    let mut replica = r["services"][0].clone();
    replica["name"] = json!("replica.internal:8080");
    r["services"]
        .as_array_mut()
        .expect("services")
        .push(replica);
    let report: Report = serde_json::from_value(r).expect("a report");
    let text = report::render(&report, Format::OpenApi, false);
    let c = check(
        "merged_templates_and_services_stay_valid",
        "merged-openapi.json",
        &text,
    );
    assert_eq!(c.operations.len(), 25, "the twin merged into its path");
    assert_eq!(c.servers.len(), 2);
    let user = get_user(&c);
    let schema = user.parameters[0].schema.as_ref().expect("schema");
    assert_eq!(schema.any_of.len(), 2, "integer or uuid");
    let doc: Value = serde_json::from_str(&text).expect("JSON");
    let op = &doc["paths"]["/api/v1/users/{userId}"]["get"];
    assert_eq!(op["x-shadowtap-requests"], 2 * (13 + 2));
    assert_eq!(op["x-shadowtap-services"]["replica.internal:8080"], 15);
}
