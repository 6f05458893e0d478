use serde_json::json;

use super::*;
use crate::report::testing::{demo_report, endpoint, report, seg, service};
use crate::spec::{self, Contract, ParamLocation, SecurityScheme};

fn load(doc: &Value) -> Contract {
    let text = serde_json::to_string_pretty(doc).expect("serializes");
    spec::load_str("observed.json", &text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn op<'c>(c: &'c Contract, method: &str, path: &str) -> &'c spec::Operation {
    c.operations
        .iter()
        .find(|o| o.method == method && o.path == path)
        .unwrap_or_else(|| {
            panic!(
                "{method} {path} not in {:?}",
                c.operations
                    .iter()
                    .map(|o| (&o.method, &o.path))
                    .collect::<Vec<_>>()
            )
        })
}

#[test]
fn demo_export_loads_back_with_every_operation() {
    let r = demo_report();
    let doc = document(r);
    assert_eq!(doc["openapi"], "3.1.0");
    let c = load(&doc);
    assert_eq!(c.dialect, spec::SpecDialect::OpenApi31);
    assert_eq!(c.servers.len(), 1);
    assert_eq!(c.servers[0].host.as_deref(), Some("127.0.0.1:8080"));
    // No template shape repeats in the demo: one operation per endpoint.
    assert_eq!(c.operations.len(), 25);
    for e in &r.services[0].endpoints {
        let o = op(&c, &e.method, &e.template);
        let declared: Vec<&str> = o
            .parameters
            .iter()
            .filter(|p| p.location == ParamLocation::Query)
            .map(|p| p.name.as_str())
            .collect();
        let seen: Vec<&str> = e.query_params.keys().map(String::as_str).collect();
        assert_eq!(declared, seen, "{} {}", e.method, e.template);
    }
    let user = op(&c, "GET", "/api/v1/users/{userId}");
    let p = &user.parameters[0];
    assert_eq!(
        (p.name.as_str(), p.location, p.required),
        ("userId", ParamLocation::Path, true)
    );
    assert_eq!(
        p.schema.as_ref().map(|s| s.types.clone()),
        Some(vec!["integer".to_owned()])
    );
    // Response schemas: required only for fields in every body.
    let body = user.responses["200"].content["application/json"]
        .as_ref()
        .expect("schema");
    assert_eq!(body.types, ["object"]);
    assert!(body.required.contains(&"id".to_owned()));
    assert!(!body.required.contains(&"phone".to_owned()));
    assert_eq!(body.properties["email"].format.as_deref(), Some("email"));
    assert!(user.responses.contains_key("404"));
    // Security: the API key header and the JWT bearer.
    let mut alternatives = user.security.clone();
    alternatives.sort();
    assert_eq!(
        alternatives,
        [
            vec!["apiKey_header_x-api-key".to_owned()],
            vec!["bearerJwt".to_owned()]
        ]
    );
    assert_eq!(
        c.security_schemes["apiKey_header_x-api-key"],
        SecurityScheme::ApiKey {
            name: "x-api-key".to_owned(),
            location: ParamLocation::Header
        }
    );
    assert_eq!(
        c.security_schemes["bearerJwt"],
        SecurityScheme::Bearer {
            format: Some("JWT".to_owned())
        }
    );
    // Anonymous callers add the empty alternative.
    assert!(op(&c, "GET", "/api/v1/orders")
        .security
        .iter()
        .any(Vec::is_empty));
    // Query frequency and the extensions.
    let orders = &doc["paths"]["/api/v1/orders"]["get"];
    let page = orders["parameters"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["name"] == "page"))
        .expect("page");
    assert_eq!(page["required"], false);
    assert_eq!(page["x-shadowtap-frequency"], 0.929);
    assert_eq!(orders["x-shadowtap-requests"], 14);
    assert_eq!(orders["x-shadowtap-services"]["127.0.0.1:8080"], 14);
    // A form body without a schema, a JSON body with one.
    let login = op(&c, "POST", "/api/v1/login");
    let form = login.request_body.as_ref().expect("body");
    assert!(form.content["application/x-www-form-urlencoded"].is_none());
    let create = op(&c, "POST", "/api/v1/orders");
    let order = create
        .request_body
        .as_ref()
        .and_then(|b| b.content["application/json"].as_ref())
        .expect("schema");
    let items = order.properties["items"].items.as_ref().expect("items");
    assert_eq!(items.properties["sku"].types, ["string"]);
    assert!(
        items.required.is_empty(),
        "array members are never required"
    );
}

#[test]
fn templates_differing_in_names_merge_with_one_of() {
    let mut by_id = endpoint(
        "GET",
        vec![seg("files", None), seg("fileId", Some(ParamKind::Integer))],
        10,
    );
    by_id.query_params = [("v".to_owned(), 1.0)].into();
    let by_uuid = endpoint(
        "GET",
        vec![seg("files", None), seg("fileUuid", Some(ParamKind::Uuid))],
        5,
    );
    let delete = endpoint(
        "DELETE",
        vec![seg("files", None), seg("fileUuid", Some(ParamKind::Uuid))],
        2,
    );
    let r = report(
        vec![service("api", vec![by_id, by_uuid, delete])],
        Vec::new(),
    );
    let doc = document(&r);
    let paths = doc["paths"].as_object().expect("paths");
    assert_eq!(paths.keys().collect::<Vec<_>>(), ["/files/{fileId}"]);
    let get = &paths["/files/{fileId}"]["get"];
    assert_eq!(
        get["parameters"][0]["schema"],
        json!({ "oneOf": [{ "type": "integer" }, { "type": "string", "format": "uuid" }] })
    );
    assert_eq!(get["x-shadowtap-requests"], 15);
    assert_eq!(
        get["x-shadowtap-templates"],
        json!(["/files/{fileId}", "/files/{fileUuid}"])
    );
    // Present in 10 of 15 requests.
    assert_eq!(get["parameters"][1]["x-shadowtap-frequency"], 0.667);
    let delete = &paths["/files/{fileId}"]["delete"];
    assert_eq!(
        delete["parameters"][0]["schema"],
        json!({ "type": "string", "format": "uuid" })
    );
    let c = load(&doc);
    let get = op(&c, "GET", "/files/{fileId}");
    assert_eq!(
        get.parameters[0].schema.as_ref().map(|s| s.any_of.len()),
        Some(2)
    );
    op(&c, "DELETE", "/files/{fileId}");
}

#[test]
fn plain_strings_absorb_formatted_ones() {
    let kinds: BTreeSet<(&str, Option<&str>)> = [("string", None), ("string", Some("uuid"))].into();
    assert_eq!(param_schema(&kinds), json!({ "type": "string" }));
    let kinds: BTreeSet<(&str, Option<&str>)> =
        [("string", Some("date")), ("string", Some("uuid"))].into();
    assert_eq!(
        param_schema(&kinds)["oneOf"].as_array().map(Vec::len),
        Some(2)
    );
}

#[test]
fn services_sharing_a_template_share_the_operation() {
    let users = || endpoint("GET", vec![seg("users", None)], 3);
    let health = endpoint("GET", vec![seg("health", None)], 1);
    let r = report(
        vec![
            service("a.example:8080", vec![users(), health]),
            service("b.example", vec![users()]),
        ],
        Vec::new(),
    );
    let doc = document(&r);
    assert_eq!(
        doc["servers"]
            .as_array()
            .map(|s| s.iter().map(|s| s["url"].clone()).collect::<Vec<_>>()),
        Some(vec![
            json!("http://a.example:8080"),
            json!("http://b.example")
        ])
    );
    let get = &doc["paths"]["/users"]["get"];
    assert_eq!(get["x-shadowtap-requests"], 6);
    assert_eq!(
        get["x-shadowtap-services"],
        json!({ "a.example:8080": 3, "b.example": 3 })
    );
    assert!(get.get("servers").is_none(), "served by every service");
    let health = &doc["paths"]["/health"]["get"];
    assert_eq!(
        health["servers"],
        json!([{ "url": "http://a.example:8080" }])
    );
    let c = load(&doc);
    assert_eq!(c.servers.len(), 2);
    assert_eq!(c.operations.len(), 2);
}

#[test]
fn schema_rebuilds_nesting_arrays_and_the_required_rule() {
    let f = |path: &str, ty: &str, presence: f64| FieldReport {
        path: path.to_owned(),
        types: ty.split(',').map(str::to_owned).collect(),
        formats: if path.ends_with("at") {
            vec!["date-time".to_owned()]
        } else {
            Vec::new()
        },
        presence,
    };
    let fields = [
        f("", "object", 1.0),
        f("/a", "object", 0.5),
        f("/a/b", "integer", 0.5),
        f("/a/c", "string,null", 0.25),
        f("/items", "array", 1.0),
        f("/items/*", "object", 1.0),
        f("/items/*/id", "integer", 1.0),
        f("/created_at", "string", 1.0),
        f("/we~1ird~0key", "boolean", 1.0),
    ];
    let s = body_schema(&fields);
    assert_eq!(s["type"], "object");
    assert_eq!(s["required"], json!(["created_at", "items", "we/ird~key"]));
    assert_eq!(s["properties"]["created_at"]["format"], "date-time");
    // `b` is in every body that has `a`; `c` is not.
    assert_eq!(s["properties"]["a"]["required"], json!(["b"]));
    assert_eq!(
        s["properties"]["a"]["properties"]["c"]["type"],
        json!(["string", "null"])
    );
    assert_eq!(s["properties"]["a"]["x-shadowtap-presence"], 0.5);
    let items = &s["properties"]["items"]["items"];
    assert_eq!(items["type"], "object");
    assert_eq!(items["properties"]["id"]["type"], "integer");
    assert!(items.get("required").is_none());
    // Implicit parents get their type from their children.
    let implicit = body_schema(&[f("/x/*/y", "string", 1.0)]);
    assert_eq!(implicit["properties"]["x"]["type"], "array");
    assert_eq!(implicit["properties"]["x"]["items"]["type"], "object");
}

#[test]
fn shapes_names_and_odd_input() {
    assert_eq!(shape("/a/{x}/b/{y}.json"), "/a/{}/b/{}.json");
    assert_eq!(shape("/a/{unclosed"), "/a/{unclosed");
    assert_eq!(template_params("/a/{x}/{y}"), ["x", "y"]);
    assert_eq!(param_names("/a/{id}/b/{id}/{}"), ["id", "id2", "param3"]);
    assert_eq!(
        rename("/a/{x}/b/{y}", &["p".to_owned(), "q".to_owned()]),
        "/a/{p}/b/{q}"
    );
    assert_eq!(server_url("h{x} y"), "http://h%7Bx%7D%20y");
    assert_eq!(sanitize("apiKey_header_x!key"), "apiKey_header_x_key");
    assert!(is_json("application/problem+json; charset=utf-8"));
    assert!(!is_json("text/csv"));
    assert!(is_status_code("204") && !is_status_code("unanswered") && !is_status_code("999"));
}

#[test]
fn unanswered_and_odd_statuses_keep_the_document_valid() {
    let mut e = endpoint("POST", vec![seg("x", None)], 2);
    e.statuses = [("unanswered".to_owned(), 2)].into();
    e.auth_schemes = [("cookie".to_owned(), 1), ("other".to_owned(), 1)].into();
    let doc = document(&report(vec![service("h", vec![e])], Vec::new()));
    let post = &doc["paths"]["/x"]["post"];
    assert_eq!(
        post["responses"],
        json!({ "default": { "description": "No response was observed." } })
    );
    assert_eq!(post["x-shadowtap-unanswered"], 2);
    assert_eq!(post["security"], json!([{ "cookie": [] }]));
    assert_eq!(
        doc["components"]["securitySchemes"]["cookie"]["in"],
        "cookie"
    );
    load(&doc);
}
