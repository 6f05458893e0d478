//! The normalized contract: what the diff needs from an OpenAPI 3.0, 3.1 or
//! Swagger 2.0 document, with every `$ref` resolved and version differences
//! gone.

use std::collections::BTreeMap;

use serde::Serialize;

/// Which specification a contract was written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum SpecDialect {
    #[serde(rename = "swagger-2.0")]
    Swagger2,
    #[serde(rename = "openapi-3.0")]
    OpenApi30,
    #[serde(rename = "openapi-3.1")]
    OpenApi31,
}

/// One loaded contract file.
#[derive(Clone, Debug, Serialize)]
pub struct Contract {
    /// The file as the user named it (or as found in a directory).
    pub file: String,
    /// The exact `openapi` / `swagger` field, e.g. `3.0.3`.
    pub spec_version: String,
    pub dialect: SpecDialect,
    /// `info.title`.
    pub title: String,
    /// `info.version`: the contract's own version.
    pub version: String,
    /// Hex SHA-256 of the file's bytes, so findings name the exact text.
    pub sha256: String,
    /// Where the API is served: from 3.x `servers` or 2.0 `host` + `basePath`.
    /// Empty when the document declares none (then it covers any host that
    /// the user maps to it with `--spec host=FILE`).
    pub servers: Vec<Server>,
    pub operations: Vec<Operation>,
    /// Security schemes by name (`components.securitySchemes`,
    /// 2.0 `securityDefinitions`).
    pub security_schemes: BTreeMap<String, SecurityScheme>,
}

/// A base URL reduced to what traffic can be matched on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Server {
    /// Lower-cased host, with the port when it is not the scheme's default;
    /// `None` for a relative server URL such as `/api/v3`. Server variables
    /// are replaced by their defaults.
    pub host: Option<String>,
    /// Path prefix without a trailing slash (`""` for none), e.g. `/api/v3`.
    pub base_path: String,
}

/// One operation: a method on a path template.
#[derive(Clone, Debug, Serialize)]
pub struct Operation {
    /// Upper-case method: `GET`, `POST`, …
    pub method: String,
    /// The path template as declared, without the server's base path,
    /// e.g. `/users/{userId}`.
    pub path: String,
    /// JSON pointer to the operation object, e.g. `/paths/~1users~1{userId}/get`.
    pub pointer: String,
    pub operation_id: Option<String>,
    pub deprecated: bool,
    /// Path-level and operation-level parameters merged (operation wins),
    /// 2.0 `body`/`formData` parameters excluded (they become `request_body`).
    pub parameters: Vec<Parameter>,
    pub request_body: Option<RequestBody>,
    /// Responses by status key as declared: `200`, `2XX`, `default`.
    pub responses: BTreeMap<String, Response>,
    /// Effective security (operation's, else the document's). Each entry is
    /// one alternative; an alternative is a list of scheme names that must
    /// all be satisfied. An empty alternative (`{}`) means anonymous access
    /// is allowed.
    pub security: Vec<Vec<String>>,
}

impl Operation {
    /// True when every alternative needs at least one credential.
    pub fn requires_auth(&self) -> bool {
        !self.security.is_empty() && self.security.iter().all(|alt| !alt.is_empty())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamLocation {
    Path,
    Query,
    Header,
    Cookie,
}

#[derive(Clone, Debug, Serialize)]
pub struct Parameter {
    pub name: String,
    pub location: ParamLocation,
    pub required: bool,
    pub schema: Option<Schema>,
}

#[derive(Clone, Debug, Serialize)]
pub struct RequestBody {
    pub required: bool,
    /// Media types → schema (2.0: from `consumes`, default `application/json`).
    pub content: BTreeMap<String, Option<Schema>>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Response {
    /// Media types → schema (2.0: `produces` with the response `schema`).
    pub content: BTreeMap<String, Option<Schema>>,
}

/// A JSON Schema reduced to the structure the diff compares: types,
/// properties, required names, items. `allOf` is merged into one schema;
/// `oneOf`/`anyOf` keep their branches in `any_of`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Schema {
    /// JSON types allowed (`object`, `array`, `string`, `integer`, `number`,
    /// `boolean`, `null`); empty means any. 3.0 `nullable` adds `null`.
    pub types: Vec<String>,
    pub format: Option<String>,
    pub properties: BTreeMap<String, Schema>,
    pub required: Vec<String>,
    /// `additionalProperties`: `None` when absent or `true` (extra fields
    /// allowed by the schema), `Some(false)` when forbidden, `Some(true)`
    /// when a schema is given for them.
    pub additional_properties: Option<bool>,
    pub items: Option<Box<Schema>>,
    /// Branches of `oneOf`/`anyOf`; a value conforms if it fits one.
    pub any_of: Vec<Schema>,
    /// The schema is a cut-off of a recursive `$ref` (beyond the depth cap):
    /// compare nothing below it.
    pub recursive: bool,
}

/// A security scheme, reduced to what traffic can show.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SecurityScheme {
    /// HTTP `basic`.
    Basic,
    /// HTTP `bearer` (with `bearerFormat`, e.g. `JWT`).
    Bearer {
        format: Option<String>,
    },
    /// Another HTTP scheme (`digest`, …), lower-cased.
    Http {
        scheme: String,
    },
    ApiKey {
        name: String,
        location: ParamLocation,
    },
    /// OAuth 2.0 and OpenID Connect: bearer tokens on the wire.
    OAuth2,
    OpenIdConnect,
    /// `mutualTLS` or an unknown type: nothing visible in HTTP.
    Other {
        kind: String,
    },
}
