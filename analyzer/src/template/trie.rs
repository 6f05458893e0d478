//! The path tree of a service and the statistical collapse of sibling
//! values.

use std::collections::BTreeMap;

use super::{name, ParamKind, Rule, TemplateSegment};
use crate::observe::KeySegment;

/// Fewest non-dominant literal siblings that can make a parameter.
pub const MIN_DISTINCT_VALUES: usize = 10;
/// The median number of requests per value must be at most this for the
/// values to count as rare.
pub const RARE_MEDIAN_REQUESTS: u64 = 3;
/// A literal value with at least this share of its position's requests…
pub const DOMINANT_SHARE: f64 = 0.1;
/// …and at least this many requests stays a constant even when its
/// siblings become a parameter (`/users/me` beside `/users/{userId}`).
pub const DOMINANT_MIN_REQUESTS: u64 = 3;

#[derive(Debug, Default)]
pub(super) struct Node {
    /// Requests to this node's subtree.
    count: u64,
    children: BTreeMap<KeySegment, Node>,
    /// Observations whose path ends here.
    members: Vec<usize>,
    /// For a parameter made by statistics: distinct values collapsed.
    collapsed: u64,
}

impl Node {
    pub(super) fn insert(&mut self, segments: &[KeySegment], count: u64, member: usize) {
        self.count += count;
        match segments.split_first() {
            None => self.members.push(member),
            Some((first, rest)) => self
                .children
                .entry(first.clone())
                .or_default()
                .insert(rest, count, member),
        }
    }

    fn merge(&mut self, other: Node) {
        self.count += other.count;
        self.members.extend(other.members);
        self.collapsed += other.collapsed;
        for (seg, child) in other.children {
            self.children.entry(seg).or_default().merge(child);
        }
    }

    /// Collapses rare sibling values into parameters, top-down.
    pub(super) fn collapse(&mut self) {
        let total: u64 = self.children.values().map(|c| c.count).sum();
        let mut rare: Vec<(&KeySegment, u64)> = self
            .children
            .iter()
            .filter(|(seg, c)| {
                matches!(seg, KeySegment::Literal(_))
                    && !(c.count >= DOMINANT_MIN_REQUESTS
                        && c.count as f64 >= DOMINANT_SHARE * total as f64)
            })
            .map(|(seg, c)| (seg, c.count))
            .collect();
        if rare.len() >= MIN_DISTINCT_VALUES {
            rare.sort_by_key(|(_, c)| *c);
            let median = rare[rare.len() / 2].1;
            if median <= RARE_MEDIAN_REQUESTS {
                let keys: Vec<KeySegment> = rare.into_iter().map(|(s, _)| s.clone()).collect();
                let mut param = Node {
                    collapsed: keys.len() as u64,
                    ..Node::default()
                };
                for k in keys {
                    if let Some(child) = self.children.remove(&k) {
                        let mut child = child;
                        child.collapsed = 0;
                        param.merge(child);
                    }
                }
                param.collapsed = param.collapsed.max(1);
                self.children
                    .entry(KeySegment::Param(ParamKind::String))
                    .or_default()
                    .merge(param);
            }
        }
        for child in self.children.values_mut() {
            child.collapse();
        }
    }

    /// Every template (segments and members), depth first.
    pub(super) fn templates(&self) -> Vec<(Vec<TemplateSegment>, Vec<usize>)> {
        let mut out = Vec::new();
        let mut path = Vec::new();
        self.walk(&mut path, &mut out);
        out
    }

    fn walk(
        &self,
        path: &mut Vec<TemplateSegment>,
        out: &mut Vec<(Vec<TemplateSegment>, Vec<usize>)>,
    ) {
        if !self.members.is_empty() {
            let mut members = self.members.clone();
            members.sort_unstable();
            out.push((path.clone(), members));
        }
        let params = self
            .children
            .keys()
            .filter(|k| matches!(k, KeySegment::Param(_)))
            .count();
        let parent = match path.last() {
            Some(seg) if !seg.is_param() => Some(seg.text.clone()),
            _ => None,
        };
        for (seg, child) in &self.children {
            let segment = match seg {
                KeySegment::Literal(text) => TemplateSegment {
                    text: text.clone(),
                    kind: None,
                    rule: Rule::Literal,
                    collapsed_values: None,
                },
                KeySegment::Param(kind) => {
                    let mut text = name::param_name(parent.as_deref(), *kind, params > 1);
                    let taken = |t: &str| path.iter().any(|s| s.is_param() && s.text == t);
                    if taken(&text) {
                        let mut n = 2;
                        while taken(&format!("{text}{n}")) {
                            n += 1;
                        }
                        text = format!("{text}{n}");
                    }
                    let statistical = *kind == ParamKind::String;
                    TemplateSegment {
                        text,
                        kind: Some(*kind),
                        rule: if statistical {
                            Rule::Statistics
                        } else {
                            Rule::Form
                        },
                        collapsed_values: statistical.then_some(child.collapsed),
                    }
                }
            };
            path.push(segment);
            child.walk(path, out);
            path.pop();
        }
    }
}
