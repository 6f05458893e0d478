//! Security schemes and security requirements.
//!
//! 3.x `components.securitySchemes` (each may be a `$ref`) and 2.0
//! `securityDefinitions` become [`SecurityScheme`]s; a `security` list
//! becomes alternatives of scheme names (scopes are not kept).

use std::collections::BTreeMap;

use super::refs::{Docs, Node};
use super::{ParamLocation, SecurityScheme, SpecDialect, SpecError};

/// The document's security schemes by name.
pub(crate) fn schemes(
    docs: &Docs,
    root: &Node<'_>,
    dialect: SpecDialect,
) -> Result<BTreeMap<String, SecurityScheme>, SpecError> {
    let list = match dialect {
        SpecDialect::Swagger2 => root.get("securityDefinitions"),
        SpecDialect::OpenApi30 | SpecDialect::OpenApi31 => root
            .get("components")
            .and_then(|c| c.get("securitySchemes")),
    };
    let mut out = BTreeMap::new();
    let Some(list) = list else {
        return Ok(out);
    };
    for (name, scheme) in docs.map(&list)? {
        let scheme = docs.deref(list.child(name, scheme))?;
        out.insert(name.clone(), one_scheme(docs, &scheme)?);
    }
    Ok(out)
}

fn one_scheme(docs: &Docs, node: &Node<'_>) -> Result<SecurityScheme, SpecError> {
    docs.map(node)?;
    let Some(kind) = docs.string(node, "type")? else {
        return Err(docs.invalid(node, "a security scheme needs a `type`"));
    };
    Ok(match kind {
        "basic" => SecurityScheme::Basic,
        "http" => {
            let scheme = docs
                .string(node, "scheme")?
                .unwrap_or("")
                .to_ascii_lowercase();
            match scheme.as_str() {
                "basic" => SecurityScheme::Basic,
                "bearer" => SecurityScheme::Bearer {
                    format: docs.string(node, "bearerFormat")?.map(str::to_owned),
                },
                _ => SecurityScheme::Http { scheme },
            }
        }
        "apiKey" => {
            let name = docs.string(node, "name")?.unwrap_or("").to_owned();
            let location = match docs.string(node, "in")? {
                Some("query") => ParamLocation::Query,
                Some("header") => ParamLocation::Header,
                Some("cookie") => ParamLocation::Cookie,
                other => {
                    return Err(docs.invalid(
                        node,
                        format!(
                            "an apiKey scheme needs `in` of query, header or cookie, found {}",
                            other.map_or("none".to_owned(), |o| format!("`{o}`"))
                        ),
                    ))
                }
            };
            SecurityScheme::ApiKey { name, location }
        }
        "oauth2" => SecurityScheme::OAuth2,
        "openIdConnect" => SecurityScheme::OpenIdConnect,
        other => SecurityScheme::Other {
            kind: other.to_owned(),
        },
    })
}

/// A `security` requirement list: alternatives of scheme names.
pub(crate) fn requirements(docs: &Docs, node: &Node<'_>) -> Result<Vec<Vec<String>>, SpecError> {
    let mut out = Vec::new();
    for (i, alternative) in docs.seq(node)?.iter().enumerate() {
        let alternative = node.child(&i.to_string(), alternative);
        let names = docs.map(&alternative)?.keys().cloned().collect();
        out.push(names);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn openapi_schemes() {
        let docs = Docs::new(
            "t.yaml",
            None,
            json!({"components": {"securitySchemes": {
                "basic": {"type": "http", "scheme": "Basic"},
                "jwt": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "digest": {"type": "http", "scheme": "Digest"},
                "key": {"type": "apiKey", "name": "X-Key", "in": "header"},
                "alias": {"$ref": "#/components/securitySchemes/key"},
                "oauth": {"type": "oauth2", "flows": {}},
                "oidc": {"type": "openIdConnect"},
                "mtls": {"type": "mutualTLS"}
            }}}),
        );
        let s = schemes(&docs, &docs.root(), SpecDialect::OpenApi30).unwrap();
        assert_eq!(s["basic"], SecurityScheme::Basic);
        assert_eq!(
            s["jwt"],
            SecurityScheme::Bearer {
                format: Some("JWT".into())
            }
        );
        assert_eq!(
            s["digest"],
            SecurityScheme::Http {
                scheme: "digest".into()
            }
        );
        let key = SecurityScheme::ApiKey {
            name: "X-Key".into(),
            location: ParamLocation::Header,
        };
        assert_eq!(s["key"], key);
        assert_eq!(s["alias"], key);
        assert_eq!(s["oauth"], SecurityScheme::OAuth2);
        assert_eq!(s["oidc"], SecurityScheme::OpenIdConnect);
        assert_eq!(
            s["mtls"],
            SecurityScheme::Other {
                kind: "mutualTLS".into()
            }
        );
    }

    #[test]
    fn swagger_schemes_and_errors() {
        let docs = Docs::new(
            "t.yaml",
            None,
            json!({"securityDefinitions": {"b": {"type": "basic"},
                                           "k": {"type": "apiKey", "name": "k", "in": "body"}}}),
        );
        let err = schemes(&docs, &docs.root(), SpecDialect::Swagger2).unwrap_err();
        assert_eq!(
            err.to_string(),
            "t.yaml: /securityDefinitions/k: an apiKey scheme needs `in` of query, header or \
             cookie, found `body`"
        );
    }

    #[test]
    fn requirement_alternatives() {
        let docs = Docs::new(
            "t.yaml",
            None,
            json!({"security": [{"a": [], "b": ["s"]}, {}]}),
        );
        let node = docs.root().get("security").unwrap();
        assert_eq!(
            requirements(&docs, &node).unwrap(),
            vec![vec!["a".to_owned(), "b".to_owned()], vec![]]
        );
    }
}
