//! The endpoint inventory: observations grouped into services and
//! endpoints by their templates.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::observe::{key_segments, FieldNames, KeySegment, ObservationKey, Stats};
use crate::sketch::DistinctSketch;
use crate::template::{self, ContractPaths, TemplateSegment};

/// One template segment with the evidence behind it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SegmentEvidence {
    #[serde(flatten)]
    pub segment: TemplateSegment,
    /// Distinct values seen at this position (parameters only; estimated
    /// above a few hundred).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distinct_values: Option<u64>,
    pub confidence: f64,
}

/// A method on a path template of a service.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Endpoint {
    pub service: String,
    pub method: String,
    pub template: String,
    pub segments: Vec<SegmentEvidence>,
    /// The least confident segment's confidence.
    pub confidence: f64,
    /// Distinct path keys merged into this endpoint.
    pub path_keys: usize,
    /// Index of the contract the template came from, if any.
    #[serde(skip)]
    pub contract: Option<usize>,
    pub stats: Stats,
}

/// A host and its endpoints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Service {
    pub name: String,
    pub requests: u64,
    pub endpoints: Vec<Endpoint>,
}

#[derive(Clone, Debug, Default)]
pub struct Inventory {
    pub services: Vec<Service>,
    /// Field paths of the endpoints' schemas.
    pub names: FieldNames,
    /// The template each observation key went into.
    pub templates_by_key: rustc_hash::FxHashMap<ObservationKey, String>,
}

impl Inventory {
    /// Templates the observations (sorted by key, as
    /// [`crate::observe::Observations::into_sorted`] returns them) and
    /// merges their statistics per endpoint. `contracts` gives the contract
    /// paths of a service, if it has any.
    pub fn build<'c>(
        mut observations: Vec<(ObservationKey, Stats)>,
        names: FieldNames,
        contracts: &dyn Fn(&str) -> Option<&'c dyn ContractPaths>,
    ) -> Inventory {
        // The keys are moved out, the statistics stay where they are: an
        // endpoint takes its first member's statistics over instead of
        // copying them (see `build_endpoint`).
        let keys: Vec<ObservationKey> = observations
            .iter_mut()
            .map(|(k, _)| std::mem::take(k))
            .collect();
        let counted: Vec<(&ObservationKey, u64)> = keys
            .iter()
            .zip(&observations)
            .map(|(k, (_, s))| (k, s.count))
            .collect();
        let templates = template::template_observations(&counted, contracts);
        let mut templates_by_key = rustc_hash::FxHashMap::default();
        // (service, template, method) → members.
        let mut groups: BTreeMap<(&str, String, &str), (usize, Vec<usize>)> = BTreeMap::new();
        for (ti, t) in templates.iter().enumerate() {
            let rendered = t.render();
            for &i in &t.members {
                let k = &keys[i];
                templates_by_key.insert(k.clone(), rendered.clone());
                groups
                    .entry((&k.service, rendered.clone(), &k.method))
                    .or_insert_with(|| (ti, Vec::new()))
                    .1
                    .push(i);
            }
        }
        let mut services: Vec<Service> = Vec::new();
        for ((service, rendered, method), (ti, members)) in groups {
            let endpoint = build_endpoint(
                service,
                method,
                rendered,
                &templates[ti],
                &members,
                &keys,
                &mut observations,
            );
            match services.last_mut() {
                Some(s) if s.name == service => s.endpoints.push(endpoint),
                _ => services.push(Service {
                    name: service.to_owned(),
                    requests: 0,
                    endpoints: vec![endpoint],
                }),
            }
        }
        for s in &mut services {
            s.requests = s.endpoints.iter().map(|e| e.stats.count).sum();
        }
        Inventory {
            services,
            names,
            templates_by_key,
        }
    }

    pub fn endpoints(&self) -> impl Iterator<Item = &Endpoint> {
        self.services.iter().flat_map(|s| s.endpoints.iter())
    }
}

fn build_endpoint(
    service: &str,
    method: &str,
    rendered: String,
    t: &template::Template,
    members: &[usize],
    keys: &[ObservationKey],
    observations: &mut [(ObservationKey, Stats)],
) -> Endpoint {
    // The first member's statistics are taken over (merging them into empty
    // statistics would copy them unchanged, schemas and all); the others
    // are merged in. Each observation belongs to one endpoint.
    let mut stats: Option<Stats> = None;
    let mut sketches: BTreeMap<usize, DistinctSketch> = BTreeMap::new();
    for &i in members {
        let (key, s) = (&keys[i], &mut observations[i].1);
        for (pos, seg) in key_segments(&key.path).iter().enumerate() {
            if !t.segments.get(pos).is_some_and(TemplateSegment::is_param) {
                continue;
            }
            let sketch = sketches.entry(pos).or_default();
            match seg {
                KeySegment::Literal(text) => sketch.insert_bytes(text.as_bytes()),
                KeySegment::Param(_) => {
                    if let Some(v) = s.param_values.get(&(pos as u8)) {
                        sketch.merge(v);
                    }
                }
            }
        }
        match &mut stats {
            Some(merged) => merged.merge(s),
            None => stats = Some(std::mem::take(s)),
        }
    }
    let stats = stats.unwrap_or_default();
    let segments: Vec<SegmentEvidence> = t
        .segments
        .iter()
        .enumerate()
        .map(|(pos, seg)| SegmentEvidence {
            segment: seg.clone(),
            distinct_values: sketches.get(&pos).map(DistinctSketch::estimate),
            confidence: seg.confidence(),
        })
        .collect();
    let confidence = segments.iter().map(|s| s.confidence).fold(1.0, f64::min);
    Endpoint {
        service: service.to_owned(),
        method: method.to_owned(),
        template: rendered,
        segments,
        confidence,
        path_keys: members.len(),
        contract: t.contract,
        stats,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::Observations;
    use shadowtap_proto::{ExchangeRecord, Timestamp};

    /// `GET path` at second `t` answered `status` with a JSON body whose
    /// shape has the fields `keys` (all strings).
    fn rec(t: u64, path: &str, status: u16, keys: &[&str]) -> ExchangeRecord {
        let fields: Vec<String> = keys
            .iter()
            .map(|k| format!(r#""{k}":{{"type":"string"}}"#))
            .collect();
        let shape = format!(r#"{{"type":"object","fields":{{{}}}}}"#, fields.join(","));
        let t = Timestamp(t * 1_000_000_000);
        let json = format!(
            r#"{{"schema":1,"ts":"{t}","client":"10.0.0.1:4000","server":"10.0.0.2:80",
            "host":"api","method":"GET","path":"{path}","version":"1.1","status":{status},
            "request":{{"headers":[],"body":{{"framing":"none","wire_bytes":0,"bytes":0,"decoded_bytes":0}}}},
            "response":{{"headers":[],"content_type":"application/json","body":{{"framing":"content_length",
            "wire_bytes":40,"bytes":40,"decoded_bytes":40,"shape":{shape}}}}},
            "auth":{{"scheme":"none"}},"principal":null,"flags":{{}}}}"#
        );
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"))
    }

    /// An endpoint takes its first member's statistics over instead of
    /// merging them into empty ones: the result must be the same as the
    /// merge of all its members, whether it has one member or many.
    #[test]
    fn endpoints_hold_the_merge_of_their_members() {
        let mut obs = Observations::default();
        for i in 0..12u64 {
            // Twelve rare slugs: one `{slug}` endpoint of twelve path keys.
            let keys: &[&str] = if i % 2 == 0 { &["a", "b"] } else { &["b", "c"] };
            obs.add(
                &rec(i, &format!("/plans/by-slug/plan-{i}"), 200, keys),
                None,
            );
        }
        for i in 0..5u64 {
            obs.add(
                &rec(20 + i, "/users/me", 200 + 200 * (i % 2) as u16, &["id"]),
                None,
            );
        }
        let (observations, names) = obs.into_sorted();
        let inventory = Inventory::build(observations.clone(), names, &|_| None);
        let endpoints: Vec<&Endpoint> = inventory.endpoints().collect();
        assert_eq!(endpoints.len(), 2, "{endpoints:#?}");
        for e in endpoints {
            let mut expected = Stats::default();
            for (key, stats) in &observations {
                if inventory.templates_by_key.get(key) == Some(&e.template) {
                    expected.merge(stats);
                }
            }
            assert!(expected.count > 0);
            assert_eq!(e.stats, expected, "{}", e.template);
        }
        let slug = inventory.endpoints().find(|e| e.path_keys == 12);
        assert!(slug.is_some_and(|e| e.stats.count == 12 && e.stats.response_schemas.len() == 1));
    }
}
