//! From observations and contracts to the inventory, the findings and the
//! report document: the pure middle of `analyze`.

use std::collections::BTreeMap;

use crate::contracts::{ContractPathsOf, ContractSet};
use crate::findings::{self, Finding, ServiceContracts};
use crate::inventory::Inventory;
use crate::observe::{key_segments, FieldNames, KeySegment, ObservationKey, Stats};
use crate::report::{
    ContractInfo, EndpointReport, InputInfo, Report, ServiceReport, Summary, REPORT_SCHEMA_VERSION,
};
use crate::template::ContractPaths;

/// The inventory and findings of a set of observations.
#[derive(Debug)]
pub struct Analysis {
    pub inventory: Inventory,
    pub covering: ServiceContracts,
    pub findings: Vec<Finding>,
}

/// Templates `observations` (sorted by key), maps services to contracts and
/// computes the findings.
pub fn analyze(
    observations: Vec<(ObservationKey, Stats)>,
    names: FieldNames,
    set: &ContractSet,
) -> Analysis {
    let mut covering = ServiceContracts::new();
    if !set.is_empty() {
        let mut paths: BTreeMap<&str, Vec<Vec<KeySegment>>> = BTreeMap::new();
        for (k, _) in &observations {
            paths
                .entry(&k.service)
                .or_default()
                .push(key_segments(&k.path));
        }
        for (service, p) in paths {
            if let Some(i) = set.for_service(service, &p) {
                covering.insert(service.to_owned(), i);
            }
        }
    }
    let paths: Vec<ContractPathsOf<'_>> = (0..set.contracts.len()).map(|i| set.paths(i)).collect();
    let inventory = Inventory::build(observations, names, &|service| {
        covering
            .get(service)
            .map(|&i| &paths[i] as &dyn ContractPaths)
    });
    let findings = findings::diff(&inventory, set, &covering);
    Analysis {
        inventory,
        covering,
        findings,
    }
}

/// How much of each endpoint a report carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Detail {
    /// Everything, body schemas included (JSON, HTML, OpenAPI, storage).
    Full,
    /// Without the per-field body schemas, which only some formats show.
    Summary,
}

/// The report document of an analysis.
pub fn report(
    analysis: &Analysis,
    set: &ContractSet,
    inputs: Vec<InputInfo>,
    mut anomalies: Vec<crate::anomaly::Anomaly>,
    detail: Detail,
) -> Report {
    for a in &mut anomalies {
        if let (Some(method), Some(path)) = (&a.method, &a.path_key) {
            let key = ObservationKey {
                service: a.service.clone(),
                method: method.clone(),
                path: path.clone(),
            };
            a.template = analysis.inventory.templates_by_key.get(&key).cloned();
        }
    }
    let services = analysis
        .inventory
        .services
        .iter()
        .map(|s| {
            let contract = analysis.covering.get(&s.name).copied();
            ServiceReport {
                name: s.name.clone(),
                requests: s.requests,
                contract: contract.map(|i| set.contracts[i].file.clone()),
                endpoints: s
                    .endpoints
                    .iter()
                    .map(|e| {
                        let op = e
                            .contract
                            .and_then(|c| set.operation(c, &e.method, &e.template))
                            .map(|op| op.pointer.clone());
                        EndpointReport::from_endpoint(
                            e,
                            op,
                            &analysis.inventory.names,
                            detail == Detail::Full,
                        )
                    })
                    .collect(),
            }
        })
        .collect();
    let contracts = set
        .contracts
        .iter()
        .enumerate()
        .map(|(i, c)| ContractInfo {
            file: c.file.clone(),
            title: c.title.clone(),
            version: c.version.clone(),
            spec_version: c.spec_version.clone(),
            sha256: c.sha256.clone(),
            services: analysis
                .covering
                .iter()
                .filter(|(_, &ci)| ci == i)
                .map(|(s, _)| s.clone())
                .collect(),
            operations: c.operations.len(),
        })
        .collect();
    Report {
        schema: REPORT_SCHEMA_VERSION,
        generator: format!("shadowtap {}", env!("CARGO_PKG_VERSION")),
        summary: Summary::of(&analysis.inventory, &analysis.findings, &anomalies),
        inputs,
        contracts,
        services,
        findings: analysis.findings.clone(),
        anomalies,
    }
}
