//! Loading real public specs (`testdata/specs/`, see its README) and small
//! hand-written ones, including broken ones.

use std::path::PathBuf;

use super::*;

fn testdata(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/specs")
        .join(name)
}

fn load(name: &str) -> Contract {
    let mut contracts = load_path(&testdata(name)).unwrap();
    assert_eq!(contracts.len(), 1);
    contracts.remove(0)
}

/// The error of loading `name`, with the fixture directory cut from the
/// file names so the text can be compared exactly.
fn load_error(name: &str) -> String {
    let error = load_path(&testdata(name)).unwrap_err();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/specs");
    error
        .to_string()
        .replace(&format!("{}/", dir.display()), "")
}

fn op<'c>(contract: &'c Contract, method: &str, path: &str) -> &'c Operation {
    contract
        .operations
        .iter()
        .find(|o| o.method == method && o.path == path)
        .unwrap_or_else(|| panic!("no {method} {path}"))
}

fn json_schema(content: &std::collections::BTreeMap<String, Option<Schema>>) -> &Schema {
    content["application/json"].as_ref().unwrap()
}

/// `METHOD path` of every operation, in order.
fn listed(contract: &Contract) -> Vec<String> {
    contract
        .operations
        .iter()
        .map(|o| format!("{} {}", o.method, o.path))
        .collect()
}

fn server(host: Option<&str>, base_path: &str) -> Server {
    Server {
        host: host.map(str::to_owned),
        base_path: base_path.to_owned(),
    }
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn swagger_petstore_v3() {
    let c = load("swagger-petstore-v3-openapi.yaml");
    assert_eq!(c.dialect, SpecDialect::OpenApi30);
    assert_eq!(c.spec_version, "3.0.4");
    assert_eq!(c.title, "Swagger Petstore - OpenAPI 3.0");
    assert_eq!(c.servers, [server(Some("petstore3.swagger.io"), "/api/v3")]);
    assert_eq!(c.operations.len(), 19);
    let order: Vec<_> = c
        .operations
        .iter()
        .take(5)
        .map(|o| format!("{} {}", o.method, o.path))
        .collect();
    assert_eq!(
        order,
        [
            "PUT /pet",
            "POST /pet",
            "GET /pet/findByStatus",
            "GET /pet/findByTags",
            "GET /pet/{petId}"
        ]
    );
    assert_eq!(c.operations[0].pointer, "/paths/~1pet/put");

    let get_pet = op(&c, "GET", "/pet/{petId}");
    assert_eq!(get_pet.operation_id.as_deref(), Some("getPetById"));
    let id = &get_pet.parameters[0];
    assert_eq!(
        (id.name.as_str(), id.location, id.required),
        ("petId", ParamLocation::Path, true)
    );
    assert_eq!(id.schema.as_ref().unwrap().format.as_deref(), Some("int64"));
    assert_eq!(
        get_pet.security,
        [strings(&["api_key"]), strings(&["petstore_auth"])]
    );
    assert!(get_pet.requires_auth());

    let pet = json_schema(&get_pet.responses["200"].content);
    assert_eq!(pet.required, strings(&["name", "photoUrls"]));
    assert_eq!(
        pet.properties["category"].properties["name"].types,
        strings(&["string"])
    );
    assert_eq!(
        pet.properties["tags"].items.as_ref().unwrap().types,
        strings(&["object"])
    );

    let add = op(&c, "POST", "/pet");
    let body = add.request_body.as_ref().unwrap();
    assert!(body.required);
    let media: Vec<_> = body.content.keys().map(String::as_str).collect();
    assert_eq!(
        media,
        [
            "application/json",
            "application/x-www-form-urlencoded",
            "application/xml"
        ]
    );

    let login = op(&c, "GET", "/user/login");
    assert!(login.security.is_empty());
    assert!(!login.requires_auth());
    assert_eq!(c.security_schemes["petstore_auth"], SecurityScheme::OAuth2);
    assert_eq!(
        c.security_schemes["api_key"],
        SecurityScheme::ApiKey {
            name: "api_key".into(),
            location: ParamLocation::Header
        }
    );
}

#[test]
fn docker_engine_swagger_2() {
    let c = load("docker-engine-v1.41.yaml");
    assert_eq!(c.dialect, SpecDialect::Swagger2);
    assert_eq!(c.spec_version, "2.0");
    assert_eq!(c.version, "1.41");
    assert_eq!(c.servers, [server(None, "/v1.41")]);
    assert_eq!(c.operations.len(), 106);
    assert!(c.security_schemes.is_empty());
    assert_eq!(c.operations[0].path, "/_ping");
    assert_eq!(c.operations[0].method, "GET");
    assert_eq!(c.operations[1].method, "HEAD");

    let create = op(&c, "POST", "/containers/create");
    let names: Vec<_> = create.parameters.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["name", "platform"]);
    let body = create.request_body.as_ref().unwrap();
    assert!(body.required);
    let media: Vec<_> = body.content.keys().map(String::as_str).collect();
    assert_eq!(media, ["application/json", "application/octet-stream"]);
    // allOf [ContainerConfig, {HostConfig, NetworkingConfig}]
    let config = json_schema(&body.content);
    for field in ["Image", "Cmd", "Env", "HostConfig", "NetworkingConfig"] {
        assert!(config.properties.contains_key(field), "{field}");
    }
    let created = json_schema(&create.responses["201"].content);
    assert_eq!(created.required, strings(&["Id", "Warnings"]));

    let archive = op(&c, "PUT", "/containers/{id}/archive");
    let media: Vec<_> = archive
        .request_body
        .as_ref()
        .unwrap()
        .content
        .keys()
        .cloned()
        .collect();
    assert_eq!(
        media,
        strings(&["application/octet-stream", "application/x-tar"])
    );
    // Operation without `produces` falls back to the document's.
    let responses: Vec<_> = archive.responses.keys().map(String::as_str).collect();
    assert_eq!(responses, ["200", "400", "403", "404", "500"]);
    assert_eq!(archive.responses["400"].content.len(), 2);
    let ping = op(&c, "HEAD", "/_ping");
    assert!(ping.responses["200"].content.contains_key("text/plain"));
}

#[test]
fn oai_petstore_expanded_all_of() {
    let c = load("oai-v3.0-petstore-expanded.yaml");
    assert_eq!(c.operations.len(), 4);
    assert_eq!(c.servers, [server(Some("petstore.swagger.io"), "/v2")]);
    let find = op(&c, "GET", "/pets/{id}");
    let pet = json_schema(&find.responses["200"].content);
    assert_eq!(pet.required, strings(&["name", "id"]));
    let names: Vec<_> = pet.properties.keys().map(String::as_str).collect();
    assert_eq!(names, ["id", "name", "tag"]);
    assert_eq!(pet.properties["id"].types, strings(&["integer"]));
    let list = op(&c, "GET", "/pets");
    let tags = &list.parameters[0];
    assert_eq!((tags.name.as_str(), tags.required), ("tags", false));
    assert_eq!(
        tags.schema.as_ref().unwrap().items.as_ref().unwrap().types,
        strings(&["string"])
    );
    let error = json_schema(&list.responses["default"].content);
    assert_eq!(error.required, strings(&["code", "message"]));
}

#[test]
fn other_oai_examples_load() {
    for (name, operations) in [
        ("oai-v3.0-petstore.yaml", 3),
        ("oai-v3.0-api-with-examples.yaml", 2),
        ("oai-v3.0-callback-example.yaml", 1),
        ("oai-v3.0-link-example.yaml", 6),
    ] {
        assert_eq!(load(name).operations.len(), operations, "{name}");
    }
}

#[test]
fn own_openapi_3_1() {
    let c = load("own/openapi-3.1.yaml");
    assert_eq!(c.dialect, SpecDialect::OpenApi31);
    assert_eq!(
        c.servers,
        [
            server(Some("books.example.com"), "/v1"),
            server(Some("books.example.com:8080"), "/v1")
        ]
    );
    assert_eq!(
        listed(&c),
        [
            "GET /books",
            "POST /books",
            "GET /books/{bookId}",
            "DELETE /books/{bookId}",
            "GET /books/{bookId}/cover.{format}",
            "GET /categories/{id}",
            "GET /odd",
        ]
    );

    let list = op(&c, "GET", "/books");
    assert_eq!(list.security, [vec![], strings(&["apiKey"])]);
    assert!(!list.requires_auth());
    let limit = list.parameters[0].schema.as_ref().unwrap();
    assert_eq!(limit.types, strings(&["integer", "null"]));
    assert_eq!(list.parameters[1].name, "X-Trace");
    assert_eq!(list.parameters[1].location, ParamLocation::Header);

    let book = json_schema(&list.responses["200"].content)
        .items
        .as_deref()
        .unwrap();
    assert_eq!(book.additional_properties, Some(false));
    assert_eq!(
        book.properties["subtitle"].types,
        strings(&["string", "null"])
    );
    // `$ref` into another file, with a `required` sibling merged in.
    let author = &book.properties["author"];
    assert_eq!(author.required, strings(&["name"]));
    assert_eq!(
        author.properties["born"].types,
        strings(&["string", "null"])
    );
    assert_eq!(author.properties["country"].types, strings(&["string"]));
    // Sibling `type` intersected with the target's.
    assert_eq!(book.properties["rating"].types, strings(&["integer"]));
    assert_eq!(book.properties["rating"].format.as_deref(), Some("int32"));
    assert_eq!(book.properties["cover"].any_of.len(), 2);

    let add = op(&c, "POST", "/books");
    assert!(add.requires_auth());
    assert_eq!(add.security, [strings(&["bearer"])]);
    assert!(add.request_body.as_ref().unwrap().required);
    assert!(json_schema(&add.responses["201"].content)
        .properties
        .contains_key("title"));

    let get = op(&c, "GET", "/books/{bookId}");
    assert_eq!(get.pointer, "/paths/~1books~1{bookId}/get");
    assert_eq!(
        get.parameters[0].schema.as_ref().unwrap().format.as_deref(),
        Some("uuid")
    );
    let delete = op(&c, "DELETE", "/books/{bookId}");
    assert!(delete.deprecated);
    assert!(delete.security.is_empty());

    let cover = op(&c, "GET", "/books/{bookId}/cover.{format}");
    assert!(cover.parameters.iter().all(|p| p.required));
    assert_eq!(
        cover.responses["200"].content["image/png"]
            .as_ref()
            .map(|_| ()),
        None
    );

    let category = json_schema(&op(&c, "GET", "/categories/{id}").responses["200"].content);
    let children = category.properties["children"].items.as_deref().unwrap();
    assert!(children.recursive);

    let odd = json_schema(&op(&c, "GET", "/odd").responses["default"].content);
    assert_eq!(odd.types, strings(&["boolean"]));

    assert_eq!(
        c.security_schemes["bearer"],
        SecurityScheme::Bearer {
            format: Some("JWT".into())
        }
    );
}

#[test]
fn own_swagger_2_json() {
    let c = load("own/swagger-2.0.json");
    assert_eq!(c.dialect, SpecDialect::Swagger2);
    assert_eq!(c.servers, [server(Some("files.example.com"), "/api")]);
    assert_eq!(
        listed(&c),
        [
            "GET /files",
            "POST /files",
            "GET /files/{fileId}",
            "PUT /files/{fileId}",
            "DELETE /files/{fileId}"
        ]
    );

    let upload = op(&c, "POST", "/files");
    assert!(upload.parameters.is_empty());
    let body = upload.request_body.as_ref().unwrap();
    assert!(body.required);
    let form = body.content["multipart/form-data"].as_ref().unwrap();
    assert_eq!(form.types, strings(&["object"]));
    assert_eq!(form.required, strings(&["file"]));
    assert_eq!(form.properties["file"].types, strings(&["string"]));
    assert_eq!(upload.security, [strings(&["basic"])]);

    let list = op(&c, "GET", "/files");
    assert_eq!(list.security, [strings(&["key"])]);
    let tags = list.parameters[1].schema.as_ref().unwrap();
    assert_eq!(tags.types, strings(&["array"]));
    assert_eq!(tags.items.as_ref().unwrap().types, strings(&["string"]));

    let get = op(&c, "GET", "/files/{fileId}");
    assert_eq!(get.parameters[0].name, "fileId");
    assert_eq!(
        get.parameters[0].schema.as_ref().unwrap().types,
        strings(&["string"])
    );
    let media: Vec<_> = get.responses["200"]
        .content
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(media, ["application/json", "application/octet-stream"]);
    let file = json_schema(&get.responses["200"].content);
    assert_eq!(file.properties["meta"].additional_properties, Some(true));
    let error = json_schema(&get.responses["404"].content);
    assert_eq!(
        error.properties["code"].types,
        strings(&["integer", "null"])
    );

    let put = op(&c, "PUT", "/files/{fileId}");
    assert_eq!(put.parameters.len(), 1);
    assert_eq!(
        put.parameters[0].schema.as_ref().unwrap().types,
        strings(&["integer"])
    );
    let body = put.request_body.as_ref().unwrap();
    assert_eq!(
        body.content.keys().collect::<Vec<_>>(),
        ["application/json"]
    );
    assert!(put.responses["204"].content.is_empty());
}

#[test]
fn directory_skips_files_that_are_not_contracts() {
    let contracts = load_path(&testdata("own")).unwrap();
    let files: Vec<_> = contracts
        .iter()
        .map(|c| c.file.rsplit('/').next().unwrap())
        .collect();
    assert_eq!(files, ["openapi-3.1.yaml", "swagger-2.0.json"]);
}

#[test]
fn output_is_deterministic_and_hashed() {
    let a = serde_json::to_string(&load("docker-engine-v1.41.yaml")).unwrap();
    let b = serde_json::to_string(&load("docker-engine-v1.41.yaml")).unwrap();
    assert_eq!(a, b);
    let c = load("oai-v3.0-petstore.yaml");
    assert_eq!(
        c.sha256,
        "598136cb904e17e8eeead51ae33dd8d401fdff455d2d74f3869c4aa5f2742266"
    );
}

#[test]
fn broken_specs_name_file_and_pointer() {
    let cases = [
        (
            "broken/syntax.yaml",
            "broken/syntax.yaml:10:1: YAML syntax error: did not find expected ',' or '}' at line \
             10 column 1, while parsing a flow mapping at line 9 column 16",
        ),
        (
            "broken/paths-not-mapping.yaml",
            "broken/paths-not-mapping.yaml: /paths: expected a mapping, found a sequence",
        ),
        (
            "broken/unresolvable-ref.yaml",
            "broken/unresolvable-ref.yaml: \
             /paths/~1pets/get/responses/200/content/application~1json/schema/$ref: \
             cannot resolve `#/components/schemas/Pets`: no `Pets` in /components/schemas",
        ),
        (
            "broken/ref-cycle.yaml",
            "broken/ref-cycle.yaml: /components/schemas/B/$ref: `$ref` cycle: \
             /components/schemas/A → /components/schemas/B → /components/schemas/A",
        ),
        (
            "broken/unknown-version.yaml",
            "broken/unknown-version.yaml: /openapi: unsupported OpenAPI version `4.0.0` \
             (supported: 3.0.x, 3.1.x)",
        ),
        (
            "broken/response-string.yaml",
            "broken/response-string.yaml: /paths/~1pets/get/responses: expected a mapping, \
             found a string",
        ),
        (
            "broken/missing-file-ref.yaml",
            "broken/missing-file-ref.yaml: /paths/~1pets/$ref: cannot resolve \
             `missing.yaml#/paths/~1pets`: cannot read broken/missing.yaml: No such file or \
             directory (os error 2)",
        ),
        (
            "broken/not-a-contract.yaml",
            "broken/not-a-contract.yaml: not an API contract: no top-level `openapi` or \
             `swagger` key",
        ),
        (
            "broken/nothing-here.yaml",
            "broken/nothing-here.yaml: cannot read: No such file or directory (os error 2)",
        ),
    ];
    for (name, expected) in cases {
        assert_eq!(load_error(name), expected);
    }
}

fn str_error(text: &str) -> String {
    load_str("t.yaml", text).unwrap_err().to_string()
}

#[test]
fn in_memory_errors() {
    let head = "openapi: 3.0.0\ninfo: {title: t, version: '1'}\n";
    assert_eq!(
        str_error(&format!(
            "{head}paths:\n  /pets:\n    get:\n      responses:\n        '200': OK\n"
        )),
        "t.yaml: /paths/~1pets/get/responses/200: expected a mapping, found a string"
    );
    assert_eq!(
        str_error(head),
        "t.yaml: (document root): missing required `paths`"
    );
    assert_eq!(
        str_error("swagger: '1.2'\npaths: {}\n"),
        "t.yaml: /swagger: unsupported Swagger version `1.2` (supported: 2.0)"
    );
    assert_eq!(
        str_error("openapi: 3.2\npaths: {}\n"),
        "t.yaml: /openapi: unsupported OpenAPI version `3.2` (supported: 3.0.x, 3.1.x)"
    );
    assert_eq!(
        str_error("openapi: [3]\n"),
        "t.yaml: /openapi: expected a version string, found a sequence"
    );
    assert_eq!(
        str_error("- openapi: 3.0.0\n"),
        "t.yaml: not an API contract: no top-level `openapi` or `swagger` key"
    );
    assert_eq!(
        str_error(&format!("{head}paths:\n  pets: {{}}\n")),
        "t.yaml: /paths/pets: a path must start with `/`"
    );
    assert_eq!(
        str_error(&format!("{head}paths:\n  /pets/{{id: {{}}\n")),
        "t.yaml: /paths/~1pets~1{id: invalid path template: `{` in segment `{id` is not closed"
    );
    assert_eq!(
        str_error(&format!(
            "{head}paths:\n  /pets:\n    get:\n      parameters: [{{name: a, in: body}}]\n"
        )),
        "t.yaml: /paths/~1pets/get/parameters/0: unknown parameter location `body`"
    );
    assert_eq!(
        str_error(&format!(
            "{head}paths:\n  /pets:\n    $ref: 'other.yaml#/x'\n"
        )),
        "t.yaml: /paths/~1pets/$ref: cannot resolve `other.yaml#/x`: it names another file, \
         and this document was not loaded from a path"
    );
    assert_eq!(
        str_error(&format!(
            "{head}paths:\n  /pets:\n    $ref: 'https://example.com/x.yaml'\n"
        )),
        "t.yaml: /paths/~1pets/$ref: cannot resolve `https://example.com/x.yaml`: references \
         to remote documents are not supported"
    );
    assert_eq!(
        str_error("\u{0}"),
        "t.yaml:1:1: YAML syntax error: control characters are not allowed"
    );
}

#[test]
fn openapi_3_1_paths_are_optional() {
    let c = load_str(
        "t.yaml",
        "openapi: 3.1.0\ninfo: {title: t, version: '1'}\nwebhooks: {}\n",
    )
    .unwrap();
    assert!(c.operations.is_empty());
    assert_eq!(c.spec_version, "3.1.0");
    assert!(c.servers.is_empty());
    // YAML reads an unquoted 3.1 as a number.
    assert_eq!(
        load_str("t.yaml", "openapi: 3.1\n").unwrap().dialect,
        SpecDialect::OpenApi31
    );
    assert_eq!(
        load_str("t.yaml", "swagger: 2.0\npaths: {}\n")
            .unwrap()
            .dialect,
        SpecDialect::Swagger2
    );
}

#[test]
fn limits_are_errors() {
    let mut text = String::from("openapi: 3.0.0\npaths:\n");
    for i in 0..=MAX_OPERATIONS {
        text.push_str(&format!("  /p{i}: {{get: {{}}}}\n"));
    }
    assert_eq!(
        str_error(&text),
        "t.yaml: /paths: more than 10000 operations"
    );
    let big = " ".repeat(usize::try_from(MAX_FILE_BYTES).unwrap() + 1);
    assert_eq!(
        str_error(&big),
        "t.yaml: 33554433 bytes is more than the limit of 33554432 bytes"
    );
}

/// Deterministic pseudo-random bytes for damage: SHA-256 of a counter.
fn noise(counter: usize) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::digest(counter.to_le_bytes()).into()
}

/// Truncated prefixes and random byte flips of real specs never panic or
/// hang; the loader returns a contract or an error.
#[test]
fn damaged_specs_never_panic() {
    let sources = [
        std::fs::read(testdata("swagger-petstore-v3-openapi.yaml")).unwrap(),
        std::fs::read(testdata("own/openapi-3.1.yaml")).unwrap(),
        std::fs::read(testdata("own/swagger-2.0.json")).unwrap(),
    ];
    let mut loaded = 0;
    for (n, source) in sources.iter().enumerate() {
        for cut in (0..source.len()).step_by(source.len() / 60 + 1) {
            let text = String::from_utf8_lossy(&source[..cut]);
            loaded += usize::from(load_str("cut.yaml", &text).is_ok());
        }
        for round in 0..100 {
            let noise = noise(n * 1000 + round);
            let mut bytes = source.clone();
            // Up to four flips, each from three noise bytes: two for the
            // position, one for the new byte (biased toward YAML syntax).
            for flip in noise.chunks_exact(3).take(1 + usize::from(noise[31] % 4)) {
                let at = usize::from(u16::from_le_bytes([flip[0], flip[1]])) * bytes.len() / 65536;
                bytes[at] = match flip[2] % 8 {
                    0 => b'{',
                    1 => b'$',
                    2 => b'\n',
                    3 => b':',
                    _ => flip[2] & 0x7f,
                };
            }
            let text = String::from_utf8_lossy(&bytes);
            loaded += usize::from(load_str("flip.yaml", &text).is_ok());
        }
    }
    assert!(loaded > 0);
}
