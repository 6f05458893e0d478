//! Path templating: turns the path keys of a service's observations into
//! endpoint templates (`/users/123` → `/users/{userId}`), with the evidence
//! for every parameter.
//!
//! Three kinds of evidence, strongest first:
//!
//! 1. **The declared contract.** When the service has one, a path that
//!    matches one of its templates takes that template (the most specific
//!    match wins, so `/users/me` beats `/users/{id}` when both are declared).
//! 2. **The value's form** ([`form`]): integers, UUIDs, hex ids, dates,
//!    emails and tokens are parameters wherever they appear (already
//!    placeholders in the observation keys).
//! 3. **Statistics across siblings** (`trie::Node::collapse`): at one position of the
//!    path tree, many literal values that are each rare are one parameter
//!    (`/plans/by-slug/{slug}`), while a value that dominates its position
//!    stays a constant (`/users/me` beside `/users/{userId}`).
//!
//! Templating is a pure function of all observations, so it is simply run
//! again when more arrive: an early wrong split or merge is corrected.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::observe::{KeySegment, ObservationKey};

pub mod form;
mod name;
mod trie;

pub use form::ParamKind;
pub use trie::{DOMINANT_MIN_REQUESTS, DOMINANT_SHARE, MIN_DISTINCT_VALUES, RARE_MEDIAN_REQUESTS};

/// Why a segment of a template is what it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// A constant seen in traffic.
    Literal,
    /// A parameter by the value's form (integer, UUID, …).
    Form,
    /// A parameter because its values were many and each rare.
    Statistics,
    /// Taken from the declared contract.
    Contract,
}

/// One segment of a template, with its evidence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TemplateSegment {
    /// Literal text, or the parameter name for parameters.
    pub text: String,
    /// `None` for constants.
    pub kind: Option<ParamKind>,
    pub rule: Rule,
    /// For parameters made by statistics: how many distinct literal values
    /// were collapsed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collapsed_values: Option<u64>,
}

impl TemplateSegment {
    pub fn is_param(&self) -> bool {
        self.kind.is_some()
    }

    /// How sure the rule is, from 0 to 1.
    pub fn confidence(&self) -> f64 {
        match (self.rule, self.kind) {
            (Rule::Literal | Rule::Contract, _) => 1.0,
            (Rule::Form, Some(ParamKind::Hex)) => 0.95,
            (Rule::Form, Some(ParamKind::Token)) => 0.9,
            (Rule::Form, _) => 0.99,
            (Rule::Statistics, _) => {
                let n = self.collapsed_values.unwrap_or(0) as f64;
                (1.0 - 1.0 / n.max(1.0)).min(0.99)
            }
        }
    }
}

/// Renders segments as a template string (`/users/{userId}`).
pub fn render(segments: &[TemplateSegment]) -> String {
    if segments.is_empty() {
        return "/".to_owned();
    }
    let mut s = String::new();
    for seg in segments {
        s.push('/');
        if seg.rule == Rule::Contract && !seg.is_param() {
            // A declared segment mixing text and parameters (`{name}.json`).
            s.push_str(&seg.text);
        } else if seg.is_param() {
            s.push('{');
            s.push_str(&seg.text);
            s.push('}');
        } else {
            for c in seg.text.chars() {
                match c {
                    '{' => s.push_str("%7B"),
                    '}' => s.push_str("%7D"),
                    c => s.push(c),
                }
            }
        }
    }
    s
}

/// A contract template that matched a path key.
#[derive(Clone, Debug)]
pub struct ContractMatch {
    /// The full template, base path included, as segments.
    pub segments: Vec<TemplateSegment>,
    /// Index of the contract (in the caller's list).
    pub contract: usize,
}

/// Finds contract templates for path keys of one service.
pub trait ContractPaths {
    /// The most specific contract template matching `segments`, if any.
    fn match_path(&self, segments: &[KeySegment]) -> Option<ContractMatch>;
}

/// A template and the observations it covers.
#[derive(Clone, Debug)]
pub struct Template {
    pub segments: Vec<TemplateSegment>,
    /// Indices into the observation list given to [`template_observations`].
    pub members: Vec<usize>,
    /// The contract the template came from, when it did.
    pub contract: Option<usize>,
}

impl Template {
    pub fn render(&self) -> String {
        render(&self.segments)
    }
}

/// Templates observations (of any number of services). `observations` are
/// the keys with their request counts; `contract` gives the contract paths
/// of a service, if it has a contract. The result covers every index exactly
/// once, sorted by template.
///
/// Paths a contract explains take its templates, per service. All other
/// paths go into one path tree for all services: sibling statistics are
/// pooled, so the same API served under several hosts (replicas, shards,
/// regions) gathers evidence once, and every service gets the same
/// templates for the same paths. A template's members may therefore belong
/// to several services; the inventory splits them again.
pub fn template_observations<'c>(
    observations: &[(&ObservationKey, u64)],
    contract: &dyn Fn(&str) -> Option<&'c dyn ContractPaths>,
) -> Vec<Template> {
    let mut by_contract: BTreeMap<(&str, String), Template> = BTreeMap::new();
    let mut tree = trie::Node::default();
    for (i, (key, count)) in observations.iter().enumerate() {
        let segments = crate::observe::key_segments(&key.path);
        if let Some(m) = contract(&key.service).and_then(|c| c.match_path(&segments)) {
            let text = render(&m.segments);
            by_contract
                .entry((key.service.as_str(), text))
                .or_insert_with(|| Template {
                    segments: m.segments,
                    members: Vec::new(),
                    contract: Some(m.contract),
                })
                .members
                .push(i);
            continue;
        }
        tree.insert(&segments, *count, i);
    }
    tree.collapse();
    let mut out: Vec<Template> = by_contract.into_values().collect();
    for (segments, members) in tree.templates() {
        out.push(Template {
            segments,
            members,
            contract: None,
        });
    }
    out.sort_by_key(Template::render);
    out
}

#[cfg(test)]
mod tests;
