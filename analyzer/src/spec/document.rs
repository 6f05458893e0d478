//! Reading a file and parsing it into one JSON value tree, whether it was
//! written in YAML or JSON.
//!
//! The format is detected from the content: text whose first non-blank
//! character is `{` or `[` is parsed as JSON (falling back to YAML, which
//! accepts flow-style mappings JSON does not); anything else as YAML.
//! YAML mapping keys that are numbers or booleans (`200:` under
//! `responses`) become strings; merge keys (`<<`) are applied; tags are
//! dropped; aliases are expanded within serde_yaml_ng's repetition limit.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use serde_json::{Map, Number, Value};
use serde_yaml_ng::Value as Yaml;

use super::limits::MAX_FILE_BYTES;
use super::refs::push_token;
use super::SpecError;

/// Reads a whole file, refusing one over [`MAX_FILE_BYTES`].
pub(crate) fn read_file(name: &str, path: &Path) -> Result<Vec<u8>, SpecError> {
    let io = |source| SpecError::Io {
        file: name.to_owned(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    check_size(name, bytes.len())?;
    Ok(bytes)
}

pub(crate) fn check_size(name: &str, len: usize) -> Result<(), SpecError> {
    let size = u64::try_from(len).unwrap_or(u64::MAX);
    if size > MAX_FILE_BYTES {
        return Err(SpecError::TooLarge {
            file: name.to_owned(),
            size,
            limit: MAX_FILE_BYTES,
        });
    }
    Ok(())
}

/// Decodes bytes as UTF-8 text.
pub(crate) fn utf8<'a>(name: &str, bytes: &'a [u8]) -> Result<&'a str, SpecError> {
    std::str::from_utf8(bytes).map_err(|e| SpecError::NotUtf8 {
        file: name.to_owned(),
        offset: e.valid_up_to(),
    })
}

/// Parses YAML or JSON text into a value tree.
pub(crate) fn parse(name: &str, text: &str) -> Result<Value, SpecError> {
    check_size(name, text.len())?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let looks_like_json = matches!(text.trim_start().chars().next(), Some('{' | '['));
    if looks_like_json {
        match serde_json::from_str::<Value>(text) {
            Ok(value) => Ok(value),
            Err(json) => parse_yaml(name, text).map_err(|_| SpecError::Syntax {
                file: name.to_owned(),
                format: "JSON",
                line_column: (json.line() > 0).then(|| (json.line(), json.column())),
                message: json.to_string(),
            }),
        }
    } else {
        parse_yaml(name, text)
    }
}

fn parse_yaml(name: &str, text: &str) -> Result<Value, SpecError> {
    let syntax = |error: serde_yaml_ng::Error| SpecError::Syntax {
        file: name.to_owned(),
        format: "YAML",
        line_column: error.location().map(|at| (at.line(), at.column())),
        message: error.to_string(),
    };
    let mut yaml: Yaml = serde_yaml_ng::from_str(text).map_err(syntax)?;
    yaml.apply_merge().map_err(syntax)?;
    let mut pointer = String::new();
    to_json(name, yaml, &mut pointer)
}

/// Converts a YAML value to JSON. Recursion is bounded by the YAML
/// parser's own nesting limit.
fn to_json(name: &str, yaml: Yaml, pointer: &mut String) -> Result<Value, SpecError> {
    Ok(match yaml {
        Yaml::Null => Value::Null,
        Yaml::Bool(b) => Value::Bool(b),
        Yaml::Number(n) => number(&n),
        Yaml::String(s) => Value::String(s),
        Yaml::Sequence(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.into_iter().enumerate() {
                let len = pointer.len();
                push_token(pointer, &i.to_string());
                out.push(to_json(name, item, pointer)?);
                pointer.truncate(len);
            }
            Value::Array(out)
        }
        Yaml::Mapping(mapping) => {
            let mut out = Map::new();
            for (key, value) in mapping {
                let key = match key {
                    Yaml::String(s) => s,
                    Yaml::Number(n) => n.to_string(),
                    Yaml::Bool(b) => b.to_string(),
                    Yaml::Null => "null".to_owned(),
                    Yaml::Tagged(t) => match t.value {
                        Yaml::String(s) => s,
                        _ => return Err(complex_key(name, pointer)),
                    },
                    Yaml::Sequence(_) | Yaml::Mapping(_) => return Err(complex_key(name, pointer)),
                };
                let len = pointer.len();
                push_token(pointer, &key);
                let value = to_json(name, value, pointer)?;
                pointer.truncate(len);
                out.insert(key, value);
            }
            Value::Object(out)
        }
        Yaml::Tagged(tagged) => to_json(name, tagged.value, pointer)?,
    })
}

fn number(n: &serde_yaml_ng::Number) -> Value {
    if let Some(u) = n.as_u64() {
        Value::Number(u.into())
    } else if let Some(i) = n.as_i64() {
        Value::Number(i.into())
    } else {
        n.as_f64()
            .and_then(Number::from_f64)
            .map_or(Value::Null, Value::Number)
    }
}

fn complex_key(name: &str, pointer: &str) -> SpecError {
    SpecError::invalid(
        name,
        pointer,
        "a mapping key is a sequence or a mapping; only scalar keys are supported",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_numeric_keys_become_strings() {
        let value = parse("t.yaml", "responses:\n  200: ok\n  2XX: fine\n").unwrap();
        assert_eq!(value["responses"]["200"], "ok");
        assert_eq!(value["responses"]["2XX"], "fine");
    }

    #[test]
    fn json_is_detected_by_content() {
        let value = parse("t.yaml", "  {\"openapi\": \"3.0.0\"}").unwrap();
        assert_eq!(value["openapi"], "3.0.0");
    }

    #[test]
    fn yaml_flow_mapping_that_is_not_json_still_parses() {
        let value = parse("t", "{openapi: 3.0.0, paths: {}}").unwrap();
        assert_eq!(value["openapi"], "3.0.0");
    }

    #[test]
    fn merge_keys_are_applied() {
        let text = "base: &b {type: string}\nother:\n  <<: *b\n  format: uuid\n";
        let value = parse("t.yaml", text).unwrap();
        assert_eq!(value["other"]["type"], "string");
        assert_eq!(value["other"]["format"], "uuid");
    }

    #[test]
    fn syntax_errors_name_line_and_column() {
        let err = parse("bad.json", "{\n  \"a\": [1,\n}").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("bad.json:3:1: JSON syntax error: "),
            "{err}"
        );
        let err = parse("bad.yaml", "a: b\n  c: d\n").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("bad.yaml:2:4: YAML syntax error: "),
            "{err}"
        );
    }

    #[test]
    fn complex_keys_are_an_error_with_a_pointer() {
        let err = parse("k.yaml", "paths:\n  ? [a, b]\n  : x\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "k.yaml: /paths: a mapping key is a sequence or a mapping; only scalar keys are supported"
        );
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        assert!(matches!(
            parse("bomb.yaml", &text),
            Err(SpecError::Syntax { .. })
        ));
    }
}
