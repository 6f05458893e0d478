//! Which contract covers which service, and matching observed paths to a
//! contract's templates.
//!
//! A service (a `Host`) is covered by, in order:
//! 1. a contract named for it explicitly (`--spec host=FILE`);
//! 2. a contract whose `servers` (2.0: `host`) name that host;
//! 3. a contract without any host in its servers (relative `servers` or
//!    none), when at least one of the service's paths matches one of its
//!    templates.

use crate::observe::KeySegment;
use crate::spec::{Contract, Operation};
use crate::template::{ContractMatch, ContractPaths, ParamKind, Rule, TemplateSegment};

/// Loaded contracts and the explicit host mappings.
#[derive(Clone, Debug, Default)]
pub struct ContractSet {
    pub contracts: Vec<Contract>,
    /// `(host, contract index)` from `--spec host=FILE`.
    pub explicit: Vec<(String, usize)>,
    /// Parsed templates per contract: (base path segments + operation path
    /// segments, operation index).
    templates: Vec<Vec<(Vec<Pattern>, usize)>>,
}

/// One segment of a declared template.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Pattern {
    Literal(String),
    /// A whole-segment parameter `{name}`.
    Param(String),
    /// Literal text mixed with parameters (`{name}.json`): literal parts in
    /// order, a parameter between each pair.
    Mixed(Vec<String>, Vec<String>),
}

impl Pattern {
    /// 2 for a literal, 1 for mixed, 0 for a parameter.
    fn rank(&self) -> u8 {
        match self {
            Pattern::Literal(_) => 2,
            Pattern::Mixed(..) => 1,
            Pattern::Param(_) => 0,
        }
    }

    fn matches(&self, seg: &KeySegment) -> bool {
        match (self, seg) {
            (Pattern::Literal(a), KeySegment::Literal(b)) => a == b,
            (Pattern::Literal(_), KeySegment::Param(_)) => false,
            (Pattern::Param(_), _) => true,
            (Pattern::Mixed(parts, _), KeySegment::Literal(text)) => glob(parts, text),
            (Pattern::Mixed(..), KeySegment::Param(_)) => false,
        }
    }
}

/// True when `text` is `parts[0] X parts[1] X … parts[n]` with non-empty X.
fn glob(parts: &[String], text: &str) -> bool {
    let Some((first, rest)) = parts.split_first() else {
        return false;
    };
    let Some(mut tail) = text.strip_prefix(first.as_str()) else {
        return false;
    };
    for (i, part) in rest.iter().enumerate() {
        let last = i == rest.len() - 1;
        if last {
            return tail.len() > part.len() && tail.ends_with(part.as_str());
        }
        // The parameter takes at least one character.
        let Some(at) = tail.get(1..).and_then(|t| t.find(part.as_str())) else {
            return false;
        };
        tail = &tail[1 + at + part.len()..];
    }
    !tail.is_empty()
}

fn parse_template(path: &str) -> Vec<Pattern> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(|seg| {
            if seg.starts_with('{') && seg.ends_with('}') && seg[1..].find('{').is_none() {
                return Pattern::Param(seg[1..seg.len() - 1].to_owned());
            }
            if !seg.contains('{') {
                return Pattern::Literal(seg.to_owned());
            }
            let mut parts = Vec::new();
            let mut names = Vec::new();
            let mut rest = seg;
            while let Some(open) = rest.find('{') {
                parts.push(rest[..open].to_owned());
                let Some(close) = rest[open..].find('}') else {
                    break;
                };
                names.push(rest[open + 1..open + close].to_owned());
                rest = &rest[open + close + 1..];
            }
            parts.push(rest.to_owned());
            Pattern::Mixed(parts, names)
        })
        .collect()
}

impl ContractSet {
    pub fn new(contracts: Vec<Contract>, explicit: Vec<(String, usize)>) -> ContractSet {
        let templates = contracts
            .iter()
            .map(|c| {
                let bases: Vec<&str> = if c.servers.is_empty() {
                    vec![""]
                } else {
                    c.servers.iter().map(|s| s.base_path.as_str()).collect()
                };
                let mut t = Vec::new();
                for (i, op) in c.operations.iter().enumerate() {
                    for base in &bases {
                        let mut p = parse_template(base);
                        p.extend(parse_template(&op.path));
                        t.push((p, i));
                    }
                }
                t
            })
            .collect();
        ContractSet {
            contracts,
            explicit,
            templates,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.contracts.is_empty()
    }

    /// The contract covering `service`, given a sample of its path keys'
    /// segments (for hostless contracts).
    pub fn for_service(&self, service: &str, paths: &[Vec<KeySegment>]) -> Option<usize> {
        if let Some((_, i)) = self
            .explicit
            .iter()
            .find(|(h, _)| h.eq_ignore_ascii_case(service))
        {
            return Some(*i);
        }
        let by_host = self.contracts.iter().position(|c| {
            c.servers.iter().any(|s| {
                s.host
                    .as_deref()
                    .is_some_and(|h| h.eq_ignore_ascii_case(service))
            })
        });
        if by_host.is_some() {
            return by_host;
        }
        let explicit_files: Vec<usize> = self.explicit.iter().map(|(_, i)| *i).collect();
        (0..self.contracts.len()).find(|&i| {
            let c = &self.contracts[i];
            !explicit_files.contains(&i)
                && c.servers.iter().all(|s| s.host.is_none())
                && paths.iter().any(|p| self.best_match(i, p).is_some())
        })
    }

    /// The most specific template of contract `contract` matching the path.
    fn best_match(&self, contract: usize, path: &[KeySegment]) -> Option<&(Vec<Pattern>, usize)> {
        self.templates[contract]
            .iter()
            .filter(|(p, _)| p.len() == path.len() && p.iter().zip(path).all(|(a, b)| a.matches(b)))
            .max_by(|a, b| {
                let ra: Vec<u8> = a.0.iter().map(Pattern::rank).collect();
                let rb: Vec<u8> = b.0.iter().map(Pattern::rank).collect();
                // Most specific first; on a tie, the first declared.
                ra.cmp(&rb).then(b.1.cmp(&a.1))
            })
    }

    /// Path matching for one contract, for templating.
    pub fn paths(&self, contract: usize) -> ContractPathsOf<'_> {
        ContractPathsOf {
            set: self,
            contract,
        }
    }

    /// The operation of `contract` for `method` on the template `template`
    /// (as rendered from a contract match), if declared.
    pub fn operation(&self, contract: usize, method: &str, template: &str) -> Option<&Operation> {
        let c = &self.contracts[contract];
        let wanted = parse_template(template);
        self.templates[contract]
            .iter()
            .filter(|(p, _)| same_shape(p, &wanted))
            .map(|(_, i)| &c.operations[*i])
            .find(|op| op.method.eq_ignore_ascii_case(method))
    }

    /// Whether any operation of `contract` has this template (any method).
    pub fn has_path(&self, contract: usize, template: &str) -> bool {
        let wanted = parse_template(template);
        self.templates[contract]
            .iter()
            .any(|(p, _)| same_shape(p, &wanted))
    }

    /// The full template (base path included) of an operation.
    pub fn full_template(&self, contract: usize, op: &Operation) -> String {
        let c = &self.contracts[contract];
        let base = c.servers.first().map_or("", |s| s.base_path.as_str());
        let joined = format!(
            "{}/{}",
            base.trim_end_matches('/'),
            op.path.trim_start_matches('/')
        );
        if joined.is_empty() {
            "/".to_owned()
        } else {
            joined
        }
    }
}

/// Templates compare equal when literals are equal and parameters sit at
/// the same places (names may differ).
fn same_shape(a: &[Pattern], b: &[Pattern]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| match (x, y) {
            (Pattern::Literal(p), Pattern::Literal(q)) => p == q,
            (Pattern::Param(_), Pattern::Param(_)) => true,
            (Pattern::Mixed(p, _), Pattern::Mixed(q, _)) => p == q,
            _ => false,
        })
}

/// [`ContractPaths`] for one contract of a [`ContractSet`].
pub struct ContractPathsOf<'a> {
    set: &'a ContractSet,
    contract: usize,
}

impl ContractPaths for ContractPathsOf<'_> {
    fn match_path(&self, segments: &[KeySegment]) -> Option<ContractMatch> {
        let (patterns, _) = self.set.best_match(self.contract, segments)?;
        let segments = patterns
            .iter()
            .zip(segments)
            .map(|(p, seg)| match p {
                Pattern::Literal(text) => TemplateSegment {
                    text: text.clone(),
                    kind: None,
                    rule: Rule::Literal,
                    collapsed_values: None,
                },
                Pattern::Param(name) => TemplateSegment {
                    text: name.clone(),
                    kind: Some(match seg {
                        KeySegment::Param(k) => *k,
                        KeySegment::Literal(_) => ParamKind::String,
                    }),
                    rule: Rule::Contract,
                    collapsed_values: None,
                },
                Pattern::Mixed(parts, names) => {
                    // Rendered back as declared, e.g. `{name}.json`.
                    let mut text = String::new();
                    for (i, part) in parts.iter().enumerate() {
                        text.push_str(part);
                        if let Some(n) = names.get(i) {
                            text.push('{');
                            text.push_str(n);
                            text.push('}');
                        }
                    }
                    TemplateSegment {
                        text,
                        kind: None,
                        rule: Rule::Contract,
                        collapsed_values: None,
                    }
                }
            })
            .collect();
        Some(ContractMatch {
            segments,
            contract: self.contract,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        let p = |s: &str| parse_template(s);
        assert_eq!(p("/users/{id}")[1], Pattern::Param("id".into()));
        let Pattern::Mixed(parts, names) = &p("/files/{name}.json")[1] else {
            panic!()
        };
        assert_eq!(
            (parts.as_slice(), names.as_slice()),
            (
                &["".to_owned(), ".json".to_owned()][..],
                &["name".to_owned()][..]
            )
        );
        assert!(glob(parts, "report.json"));
        assert!(!glob(parts, ".json"));
        assert!(!glob(parts, "report.xml"));
        let Pattern::Mixed(parts, _) = &p("/a/{x}-{y}")[1] else {
            panic!()
        };
        assert!(glob(parts, "1-2"));
        assert!(!glob(parts, "1-"));
        assert!(!glob(parts, "12"));
    }
}
