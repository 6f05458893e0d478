//! Server URLs reduced to [`Server`]s (host and base path).
//!
//! * 3.x: each `servers[].url`, with `{variables}` replaced by their
//!   `default`. Absolute URLs give a lower-cased host (userinfo dropped,
//!   port kept unless it is the scheme's default: 80 for `http`/`ws`, 443
//!   for `https`/`wss`); scheme-relative (`//host/x`) ones a host; other
//!   URLs (`/api/v3`, `v1`) only a base path. Query and fragment are
//!   dropped. Path-item and operation `servers` are not read.
//! * 2.0: `host` + `basePath`, one server per listed scheme (their
//!   default ports differ); no `host` gives a relative server with the
//!   base path; neither `host` nor `basePath` gives none.
//!
//! Duplicates (`http://x` and `https://x`) are listed once.

use serde_json::Value;

use super::refs::{Docs, Node};
use super::{Server, SpecError};

/// The servers of a 3.x document.
pub(crate) fn servers_3x(docs: &Docs, root: &Node<'_>) -> Result<Vec<Server>, SpecError> {
    let mut out = Vec::new();
    let Some(list) = root.get("servers") else {
        return Ok(out);
    };
    for (i, server) in docs.seq(&list)?.iter().enumerate() {
        let server = list.child(&i.to_string(), server);
        docs.map(&server)?;
        let Some(url) = docs.string(&server, "url")? else {
            return Err(docs.invalid(&server, "a server needs a `url`"));
        };
        let url = substitute(docs, &server, url)?;
        push_unique(&mut out, parse_url(&url));
    }
    Ok(out)
}

/// Replaces `{name}` with the default of server variable `name`.
fn substitute(docs: &Docs, server: &Node<'_>, url: &str) -> Result<String, SpecError> {
    let variables = server.get("variables");
    let mut out = String::with_capacity(url.len());
    let mut rest = url;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            return Err(docs.invalid(server, format!("unbalanced `{{` in url `{url}`")));
        };
        let name = &after[..close];
        let default = variables
            .as_ref()
            .and_then(|v| v.get(name))
            .and_then(|v| v.get("default"));
        let value = match default.as_ref().map(|d| d.value) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => {
                return Err(docs.invalid(
                    server,
                    format!("url `{url}` uses variable `{name}`, which has no string `default`"),
                ))
            }
        };
        out.push_str(&value);
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The servers of a 2.0 document.
pub(crate) fn servers_2(docs: &Docs, root: &Node<'_>) -> Result<Vec<Server>, SpecError> {
    let host = docs.string(root, "host")?;
    let base_path = docs.string(root, "basePath")?;
    let mut schemes = Vec::new();
    if let Some(list) = root.get("schemes") {
        for (i, scheme) in docs.seq(&list)?.iter().enumerate() {
            let scheme = scheme
                .as_str()
                .ok_or_else(|| docs.expected(&list.child(&i.to_string(), scheme), "a string"))?;
            schemes.push(scheme.to_ascii_lowercase());
        }
    }
    let mut out = Vec::new();
    match host {
        None if base_path.is_none() => {}
        None => out.push(Server {
            host: None,
            base_path: normalize_base(base_path.unwrap_or("")),
        }),
        Some(host) => {
            if schemes.is_empty() {
                schemes.push(String::new());
            }
            for scheme in &schemes {
                let server = Server {
                    host: Some(normalize_host(scheme, host)),
                    base_path: normalize_base(base_path.unwrap_or("")),
                };
                push_unique(&mut out, server);
            }
        }
    }
    Ok(out)
}

fn push_unique(list: &mut Vec<Server>, server: Server) {
    if !list.contains(&server) {
        list.push(server);
    }
}

/// Splits a URL with variables already substituted.
pub(crate) fn parse_url(url: &str) -> Server {
    let url = url.trim();
    let url = url.split(['?', '#']).next().unwrap_or("");
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (scheme.to_ascii_lowercase(), Some(rest)),
        None => (String::new(), url.strip_prefix("//")),
    };
    match rest {
        Some(rest) => {
            let (authority, path) = match rest.find('/') {
                Some(slash) => (&rest[..slash], &rest[slash..]),
                None => (rest, ""),
            };
            Server {
                host: Some(normalize_host(&scheme, authority)),
                base_path: normalize_base(path),
            }
        }
        None => Server {
            host: None,
            base_path: normalize_base(url),
        },
    }
}

/// Lower-cases a host, drops userinfo and the scheme's default port.
fn normalize_host(scheme: &str, authority: &str) -> String {
    let host = authority.rsplit('@').next().unwrap_or(authority);
    let host = host.to_ascii_lowercase();
    let default_port = match scheme {
        "http" | "ws" => Some("80"),
        "https" | "wss" => Some("443"),
        _ => None,
    };
    // The port follows the last `:` unless that is inside `[v6]` brackets.
    if let Some(colon) = host.rfind(':') {
        let port = &host[colon + 1..];
        if !host[colon..].contains(']') && Some(port) == default_port {
            return host[..colon].to_owned();
        }
    }
    host
}

/// A base path with a leading `/` and no trailing one (`""` for the root).
fn normalize_base(path: &str) -> String {
    let path = path.trim_end_matches('/');
    if path.is_empty() || path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn server(host: Option<&str>, base: &str) -> Server {
        Server {
            host: host.map(str::to_owned),
            base_path: base.to_owned(),
        }
    }

    #[test]
    fn urls() {
        let cases = [
            (
                "https://API.example.com:8443/v1/",
                server(Some("api.example.com:8443"), "/v1"),
            ),
            (
                "https://api.example.com:443",
                server(Some("api.example.com"), ""),
            ),
            (
                "http://api.example.com:80/x?y#z",
                server(Some("api.example.com"), "/x"),
            ),
            (
                "http://api.example.com:443/",
                server(Some("api.example.com:443"), ""),
            ),
            ("http://user:pw@[::1]:80/a", server(Some("[::1]"), "/a")),
            ("http://[::1]/a", server(Some("[::1]"), "/a")),
            ("//cdn.example.com/b", server(Some("cdn.example.com"), "/b")),
            ("/api/v3", server(None, "/api/v3")),
            ("v1", server(None, "/v1")),
            ("/", server(None, "")),
        ];
        for (url, expected) in cases {
            assert_eq!(parse_url(url), expected, "{url}");
        }
    }

    #[test]
    fn variables_take_their_defaults() {
        let docs = Docs::new(
            "t.yaml",
            None,
            json!({"servers": [{"url": "/{base}", "variables": {}}]}),
        );
        let root = docs.root();
        let err = servers_3x(&docs, &root).unwrap_err();
        assert_eq!(
            err.to_string(),
            "t.yaml: /servers/0: url `/{base}` uses variable `base`, which has no string `default`"
        );
        let docs = Docs::new(
            "t.yaml",
            None,
            json!({"servers": [
                {"url": "{scheme}://{host}:{port}/v1",
                 "variables": {"scheme": {"default": "https"}, "host": {"default": "Api.Example.com"},
                               "port": {"default": "443", "enum": ["443", "8443"]}}},
                {"url": "https://api.example.com/v1"}
            ]}),
        );
        let root = docs.root();
        assert_eq!(
            servers_3x(&docs, &root).unwrap(),
            [server(Some("api.example.com"), "/v1")]
        );
    }

    #[test]
    fn swagger_host_base_path_and_schemes() {
        let docs = Docs::new(
            "t.yaml",
            None,
            json!({"host": "petstore.io:443", "basePath": "/v2/", "schemes": ["https", "http"]}),
        );
        assert_eq!(
            servers_2(&docs, &docs.root()).unwrap(),
            [
                server(Some("petstore.io"), "/v2"),
                server(Some("petstore.io:443"), "/v2")
            ]
        );
        let docs = Docs::new("t.yaml", None, json!({"basePath": "/v1.41"}));
        assert_eq!(
            servers_2(&docs, &docs.root()).unwrap(),
            [server(None, "/v1.41")]
        );
        let docs = Docs::new("t.yaml", None, json!({}));
        assert!(servers_2(&docs, &docs.root()).unwrap().is_empty());
    }
}
