//! Path templates (`/users/{userId}`, `/files/{name}.json`) and matching
//! concrete request paths against them.
//!
//! A template is split on `/` into segments. A segment is literal text,
//! one parameter, or a mix of both (`{name}.json`, `{x}-{y}`).
//!
//! Matching rules:
//! * The concrete path is split on `/` first; each segment is then
//!   percent-decoded, so `%2F` inside a segment never splits it. Query
//!   (`?…`) and fragment (`#…`) are ignored.
//! * One trailing `/` is ignored on both sides: `/users/` matches
//!   `/users` and the other way round. Empty segments elsewhere count
//!   (`/a//b` does not match `/a/b`).
//! * A parameter matches one or more characters within a segment, never
//!   none and never a `/`. In a mixed segment each parameter takes the
//!   shortest text that lets the rest of the segment match
//!   (`{x}-{y}` against `1-2-3` gives `x = 1`, `y = 2-3`).
//! * Literal text is compared case-sensitively.
//!
//! Among several templates matching one path, the most specific wins
//! ([`PathTemplate::cmp_specificity`]): segments are compared from the
//! left, and a literal segment beats a mixed one, which beats a lone
//! parameter; between two mixed segments, the one with more literal
//! characters wins.

use std::cmp::Ordering;
use std::fmt;

use super::refs::percent_decode;

/// Most parameters one segment may hold.
pub const MAX_SEGMENT_PARAMS: usize = 8;

/// A parsed path template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathTemplate {
    raw: String,
    segments: Vec<Segment>,
}

/// One `/`-separated segment of a template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Segment {
    /// Fixed text, e.g. `users`.
    Literal(String),
    /// A whole-segment parameter, e.g. `{userId}` (the name without braces).
    Param(String),
    /// Literal text and parameters mixed, e.g. `{name}.json`; at least one
    /// parameter and at least one other part.
    Mixed(Vec<Part>),
}

/// A piece of a mixed segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Part {
    Literal(String),
    Param(String),
}

/// Why a path template could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TemplateError {
    #[error("`{{` in segment `{0}` is not closed")]
    Unclosed(String),
    #[error("`}}` in segment `{0}` has no matching `{{`")]
    Unopened(String),
    #[error("empty parameter name in segment `{0}`")]
    EmptyName(String),
    #[error("more than {MAX_SEGMENT_PARAMS} parameters in segment `{0}`")]
    TooManyParams(String),
}

impl Segment {
    /// The parameter name of a whole-segment parameter.
    pub fn param(&self) -> Option<&str> {
        match self {
            Segment::Param(name) => Some(name),
            _ => None,
        }
    }

    /// True for fixed text.
    pub fn is_literal(&self) -> bool {
        matches!(self, Segment::Literal(_))
    }

    /// 0 for literal, 1 for mixed, 2 for parameter: lower is more specific.
    fn rank(&self) -> u8 {
        match self {
            Segment::Literal(_) => 0,
            Segment::Mixed(_) => 1,
            Segment::Param(_) => 2,
        }
    }

    fn literal_len(&self) -> usize {
        match self {
            Segment::Literal(text) => text.len(),
            Segment::Param(_) => 0,
            Segment::Mixed(parts) => parts
                .iter()
                .map(|p| match p {
                    Part::Literal(text) => text.len(),
                    Part::Param(_) => 0,
                })
                .sum(),
        }
    }

    fn parse(text: &str) -> Result<Segment, TemplateError> {
        let mut parts = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            let open = rest.find('{');
            let close = rest.find('}');
            match (open, close) {
                (None, None) => {
                    parts.push(Part::Literal(rest.to_owned()));
                    rest = "";
                }
                (Some(_), None) => return Err(TemplateError::Unclosed(text.to_owned())),
                (None, Some(_)) => return Err(TemplateError::Unopened(text.to_owned())),
                (Some(o), Some(c)) if c < o => {
                    return Err(TemplateError::Unopened(text.to_owned()))
                }
                (Some(o), Some(c)) => {
                    let name = &rest[o + 1..c];
                    if name.contains('{') {
                        return Err(TemplateError::Unclosed(text.to_owned()));
                    }
                    if name.is_empty() {
                        return Err(TemplateError::EmptyName(text.to_owned()));
                    }
                    if o > 0 {
                        parts.push(Part::Literal(rest[..o].to_owned()));
                    }
                    parts.push(Part::Param(name.to_owned()));
                    rest = &rest[c + 1..];
                }
            }
        }
        let params = parts.iter().filter(|p| matches!(p, Part::Param(_))).count();
        if params > MAX_SEGMENT_PARAMS {
            return Err(TemplateError::TooManyParams(text.to_owned()));
        }
        Ok(match parts.as_slice() {
            [] => Segment::Literal(String::new()),
            [Part::Literal(text)] => Segment::Literal(text.clone()),
            [Part::Param(name)] => Segment::Param(name.clone()),
            _ => Segment::Mixed(parts),
        })
    }
}

/// Splits a path on `/`, without the leading `/` and one trailing `/`.
fn split(path: &str) -> impl Iterator<Item = &str> {
    let path = path.strip_prefix('/').unwrap_or(path);
    let path = path.strip_suffix('/').unwrap_or(path);
    // The root path has no segments at all.
    path.split('/').filter(move |_| !path.is_empty())
}

impl PathTemplate {
    /// Parses a template as declared under `paths`. The leading `/` is
    /// optional.
    pub fn parse(template: &str) -> Result<PathTemplate, TemplateError> {
        let segments = split(template)
            .map(Segment::parse)
            .collect::<Result<_, _>>()?;
        Ok(PathTemplate {
            raw: template.to_owned(),
            segments,
        })
    }

    /// The template as declared.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The segments, left to right (none for `/`).
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Matches a concrete request path, returning each parameter's name
    /// and percent-decoded text in template order, or `None`.
    pub fn matches(&self, path: &str) -> Option<Vec<(String, String)>> {
        let path = path.split(['?', '#']).next().unwrap_or("");
        let mut concrete = split(path);
        let mut out = Vec::new();
        for segment in &self.segments {
            let text = percent_decode(concrete.next()?);
            match segment {
                Segment::Literal(literal) => {
                    if text != *literal {
                        return None;
                    }
                }
                Segment::Param(name) => {
                    if text.is_empty() {
                        return None;
                    }
                    out.push((name.clone(), text));
                }
                Segment::Mixed(parts) => {
                    let values = match_mixed(parts, &text)?;
                    let names = parts.iter().filter_map(|p| match p {
                        Part::Param(name) => Some(name.clone()),
                        Part::Literal(_) => None,
                    });
                    out.extend(names.zip(values.into_iter().map(str::to_owned)));
                }
            }
        }
        if concrete.next().is_some() {
            return None;
        }
        Some(out)
    }

    /// Orders templates most specific first: `Less` when `self` is more
    /// specific than `other`. Ties are broken by segment count (more
    /// first), then by the declared text, so the order is total.
    pub fn cmp_specificity(&self, other: &PathTemplate) -> Ordering {
        for (a, b) in self.segments.iter().zip(&other.segments) {
            let by_kind = a
                .rank()
                .cmp(&b.rank())
                .then_with(|| b.literal_len().cmp(&a.literal_len()));
            if by_kind != Ordering::Equal {
                return by_kind;
            }
        }
        other
            .segments
            .len()
            .cmp(&self.segments.len())
            .then_with(|| self.raw.cmp(&other.raw))
    }

    /// The most specific of `templates` that matches `path`, with its
    /// parameters.
    pub fn most_specific<'a, I>(
        templates: I,
        path: &str,
    ) -> Option<(&'a PathTemplate, Vec<(String, String)>)>
    where
        I: IntoIterator<Item = &'a PathTemplate>,
    {
        templates
            .into_iter()
            .filter_map(|t| t.matches(path).map(|params| (t, params)))
            .min_by(|(a, _), (b, _)| a.cmp_specificity(b))
    }
}

impl fmt::Display for PathTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

/// Matches the parts of a mixed segment against its text, returning each
/// parameter's text in order.
///
/// Runs of parameters are anchored by the literal after them: the last
/// literal of the segment must end it, any other is found leftmost after
/// the run's minimum length (one character per parameter). In a run of
/// several parameters all but the last take one character. This is the
/// shortest-first assignment, found in linear time.
fn match_mixed<'t>(parts: &[Part], text: &'t str) -> Option<Vec<&'t str>> {
    let mut values = Vec::new();
    let mut pos = 0;
    let mut i = 0;
    while let Some(part) = parts.get(i) {
        if let Part::Literal(literal) = part {
            if !text.get(pos..)?.starts_with(literal.as_str()) {
                return None;
            }
            pos += literal.len();
            i += 1;
            continue;
        }
        let run = parts[i..]
            .iter()
            .take_while(|p| matches!(p, Part::Param(_)))
            .count();
        let min_end = advance(text, pos, run)?;
        let end = match parts.get(i + run) {
            None => text.len(),
            Some(Part::Literal(last)) if i + run + 1 == parts.len() => {
                let end = text.len().checked_sub(last.len())?;
                if !text.ends_with(last.as_str()) || end < min_end {
                    return None;
                }
                end
            }
            Some(Part::Literal(next)) => min_end + text.get(min_end..)?.find(next.as_str())?,
            Some(Part::Param(_)) => return None,
        };
        let mut start = pos;
        for _ in 1..run {
            let next = advance(text, start, 1)?;
            values.push(text.get(start..next)?);
            start = next;
        }
        values.push(text.get(start..end)?);
        pos = end;
        i += run;
    }
    (pos == text.len()).then_some(values)
}

/// The byte offset `chars` characters after `pos`, if the text has them.
fn advance(text: &str, pos: usize, chars: usize) -> Option<usize> {
    let rest = text.get(pos..)?;
    match rest.char_indices().nth(chars) {
        Some((offset, _)) => Some(pos + offset),
        None if rest.chars().count() == chars => Some(text.len()),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(template: &str) -> PathTemplate {
        PathTemplate::parse(template).unwrap()
    }

    fn params(pairs: &[(&str, &str)]) -> Option<Vec<(String, String)>> {
        Some(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn parses_segments() {
        assert_eq!(
            t("/users/{userId}/files/{name}.json").segments(),
            [
                Segment::Literal("users".into()),
                Segment::Param("userId".into()),
                Segment::Literal("files".into()),
                Segment::Mixed(vec![
                    Part::Param("name".into()),
                    Part::Literal(".json".into())
                ]),
            ]
        );
        assert_eq!(t("/").segments(), []);
        assert_eq!(t("/a/").segments(), [Segment::Literal("a".into())]);
        assert_eq!(t("/a//b").segments().len(), 3);
        assert_eq!(t("/users/{id}").segments()[1].param(), Some("id"));
        assert!(t("/users").segments()[0].is_literal());
    }

    #[test]
    fn refuses_bad_templates() {
        let err = |s| PathTemplate::parse(s).unwrap_err().to_string();
        assert_eq!(err("/a/{b"), "`{` in segment `{b` is not closed");
        assert_eq!(err("/a/b}"), "`}` in segment `b}` has no matching `{`");
        assert_eq!(err("/a/{}"), "empty parameter name in segment `{}`");
        assert_eq!(err("/a/{{b}}"), "`{` in segment `{{b}}` is not closed");
        assert_eq!(err("/{a/b}"), "`{` in segment `{a` is not closed");
        assert!(PathTemplate::parse("/{a}{b}{c}{d}{e}{f}{g}{h}{i}").is_err());
    }

    #[test]
    fn matches_literal_and_params() {
        let users = t("/users/{userId}");
        assert_eq!(users.matches("/users/42"), params(&[("userId", "42")]));
        assert_eq!(users.matches("/users/42/"), params(&[("userId", "42")]));
        assert_eq!(users.matches("/users/42?x=1"), params(&[("userId", "42")]));
        assert_eq!(users.matches("/users/a%20b"), params(&[("userId", "a b")]));
        assert_eq!(users.matches("/users/a%2Fb"), params(&[("userId", "a/b")]));
        assert_eq!(users.matches("/users/"), None);
        assert_eq!(users.matches("/users"), None);
        assert_eq!(users.matches("/users/42/x"), None);
        assert_eq!(users.matches("/Users/42"), None);
        assert_eq!(t("/").matches("/"), params(&[]));
        assert_eq!(t("/").matches("/x"), None);
        assert_eq!(t("/a/").matches("/a"), params(&[]));
        assert_eq!(t("/a/b").matches("/a//b"), None);
    }

    #[test]
    fn matches_mixed_segments() {
        let json = t("/files/{name}.json");
        assert_eq!(
            json.matches("/files/report.json"),
            params(&[("name", "report")])
        );
        assert_eq!(json.matches("/files/a.b.json"), params(&[("name", "a.b")]));
        assert_eq!(json.matches("/files/.json"), None);
        assert_eq!(json.matches("/files/report.xml"), None);
        let pair = t("/a/{x}-{y}");
        assert_eq!(pair.matches("/a/1-2"), params(&[("x", "1"), ("y", "2")]));
        assert_eq!(
            pair.matches("/a/1-2-3"),
            params(&[("x", "1"), ("y", "2-3")])
        );
        assert_eq!(pair.matches("/a/-2"), None);
        assert_eq!(pair.matches("/a/12"), None);
        let ext = t("/v{version}/x");
        assert_eq!(ext.matches("/v2/x"), params(&[("version", "2")]));
        let run = t("/{a}{b}{c}.x");
        assert_eq!(
            run.matches("/abcd.x"),
            params(&[("a", "a"), ("b", "b"), ("c", "cd")])
        );
        assert_eq!(run.matches("/ab.x"), None);
        assert_eq!(t("/v{n}").matches("/v"), None);
        assert_eq!(
            t("/{n}.json").matches("/a.json.json"),
            params(&[("n", "a.json")])
        );
        let unicode = t("/{a}é{b}");
        assert_eq!(unicode.matches("/ééé"), params(&[("a", "é"), ("b", "é")]));
    }

    #[test]
    fn matching_long_segments_stays_fast() {
        let many = t("/{a}-{b}-{c}-{d}-{e}x");
        let text = format!("/{}", "-".repeat(100_000));
        assert_eq!(many.matches(&text), None);
        let many = t("/{a}-{b}x{c}-{d}");
        assert_eq!(many.matches(&text), None);
    }

    #[test]
    fn most_specific_wins() {
        let templates: Vec<_> = [
            "/users/{id}",
            "/users/me",
            "/files/{name}",
            "/files/{name}.json",
            "/{any}/me",
            "/files/{n}.tar.gz",
            "/files/{n}.gz",
        ]
        .into_iter()
        .map(t)
        .collect();
        let best = |path| PathTemplate::most_specific(&templates, path).map(|(t, _)| t.as_str());
        assert_eq!(best("/users/me"), Some("/users/me"));
        assert_eq!(best("/users/42"), Some("/users/{id}"));
        assert_eq!(best("/files/x.json"), Some("/files/{name}.json"));
        assert_eq!(best("/files/x.txt"), Some("/files/{name}"));
        assert_eq!(best("/files/x.tar.gz"), Some("/files/{n}.tar.gz"));
        assert_eq!(best("/other/me"), Some("/{any}/me"));
        assert_eq!(best("/nothing"), None);
    }

    #[test]
    fn specificity_is_a_total_order() {
        let a = t("/users/{id}");
        let b = t("/users/{userId}");
        assert_eq!(a.cmp_specificity(&b), Ordering::Less);
        assert_eq!(b.cmp_specificity(&a), Ordering::Greater);
        assert_eq!(a.cmp_specificity(&a), Ordering::Equal);
        assert_eq!(t("/users/me").cmp_specificity(&a), Ordering::Less);
    }
}
