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
        observations: &[(ObservationKey, Stats)],
        names: FieldNames,
        contracts: &dyn Fn(&str) -> Option<&'c dyn ContractPaths>,
    ) -> Inventory {
        let counted: Vec<(&ObservationKey, u64)> =
            observations.iter().map(|(k, s)| (k, s.count)).collect();
        let templates = template::template_observations(&counted, contracts);
        let mut templates_by_key = rustc_hash::FxHashMap::default();
        // (service, template, method) → members.
        let mut groups: BTreeMap<(&str, String, &str), (usize, Vec<usize>)> = BTreeMap::new();
        for (ti, t) in templates.iter().enumerate() {
            let rendered = t.render();
            for &i in &t.members {
                let k = &observations[i].0;
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
                observations,
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
    observations: &[(ObservationKey, Stats)],
) -> Endpoint {
    let mut stats = Stats::default();
    let mut sketches: BTreeMap<usize, DistinctSketch> = BTreeMap::new();
    for &i in members {
        let (key, s) = &observations[i];
        stats.merge(s);
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
    }
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
