//! The endpoint inventory: observations grouped into services and
//! endpoints by their templates.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::observe::{key_segments, KeySegment, ObservationKey, Stats};
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

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Inventory {
    pub services: Vec<Service>,
}

impl Inventory {
    /// Templates every service's observations (sorted by key, as
    /// [`crate::observe::Observations::into_sorted`] returns them) and
    /// merges their statistics per endpoint. `contracts` gives the contract
    /// paths of a service, if it has any.
    pub fn build(
        observations: &[(ObservationKey, Stats)],
        contracts: &dyn Fn(&str) -> Option<Box<dyn ContractPaths + '_>>,
    ) -> Inventory {
        let mut services = Vec::new();
        let mut start = 0;
        while start < observations.len() {
            let name = &observations[start].0.service;
            let end = start
                + observations[start..]
                    .iter()
                    .take_while(|(k, _)| &k.service == name)
                    .count();
            let group = &observations[start..end];
            let paths = contracts(name);
            services.push(build_service(name, group, paths.as_deref()));
            start = end;
        }
        Inventory { services }
    }

    pub fn endpoints(&self) -> impl Iterator<Item = &Endpoint> {
        self.services.iter().flat_map(|s| s.endpoints.iter())
    }
}

fn build_service(
    name: &str,
    group: &[(ObservationKey, Stats)],
    contract: Option<&dyn ContractPaths>,
) -> Service {
    let counted: Vec<(&ObservationKey, u64)> = group.iter().map(|(k, s)| (k, s.count)).collect();
    let templates = template::template_service(&counted, contract);
    let mut endpoints: BTreeMap<(String, String), Endpoint> = BTreeMap::new();
    for t in templates {
        let rendered = t.render();
        // Split the template's members by method.
        let mut by_method: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for &i in &t.members {
            by_method.entry(&group[i].0.method).or_default().push(i);
        }
        for (method, members) in by_method {
            let mut stats = Stats::default();
            let mut sketches: BTreeMap<usize, DistinctSketch> = BTreeMap::new();
            for &i in &members {
                let (key, s) = &group[i];
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
            endpoints.insert(
                (rendered.clone(), method.to_owned()),
                Endpoint {
                    service: name.to_owned(),
                    method: method.to_owned(),
                    template: rendered.clone(),
                    segments,
                    confidence,
                    path_keys: members.len(),
                    contract: t.contract,
                    stats,
                },
            );
        }
    }
    let endpoints: Vec<Endpoint> = endpoints.into_values().collect();
    Service {
        name: name.to_owned(),
        requests: endpoints.iter().map(|e| e.stats.count).sum(),
        endpoints,
    }
}
