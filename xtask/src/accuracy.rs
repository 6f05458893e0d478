//! Accuracy against the benchmark generator's ground truth: every request
//! in `FILE.truth.json` must come out of the sensor as an exchange, with
//! counts matching per method and endpoint template.
//!
//! The sensor reports raw paths (templating is the analyzer's job); here
//! each raw path is matched to the generator's templates segment by segment
//! (`{id}` digits, `{uuid}` a UUID, `{slug}` a lower-case hyphenated word).

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use anyhow::{Context, Result};

/// Per-`"METHOD template"` counts from the truth file.
pub(crate) fn truth_counts(pcap: &Path) -> Result<BTreeMap<String, u64>> {
    let path = format!("{}.truth.json", pcap.display());
    let text = fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {path}"))?;
    let per = v["per_endpoint"]
        .as_object()
        .context("truth file has no per_endpoint")?;
    Ok(per
        .iter()
        .map(|(k, n)| (k.clone(), n.as_u64().unwrap_or(0)))
        .collect())
}

fn segment_matches(template: &str, raw: &str) -> bool {
    match template {
        "{id}" => !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit()),
        "{uuid}" => {
            raw.len() == 36
                && raw.bytes().enumerate().all(|(i, b)| match i {
                    8 | 13 | 18 | 23 => b == b'-',
                    _ => b.is_ascii_hexdigit(),
                })
        }
        "{slug}" => {
            raw.contains('-')
                && raw
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        }
        literal => literal == raw,
    }
}

/// The templates (`"METHOD /a/{id}"`) that `method` + `path` matches.
pub(crate) fn matching<'a>(templates: &'a [String], method: &str, path: &str) -> Vec<&'a str> {
    templates
        .iter()
        .filter(|t| {
            let Some((m, tpath)) = t.split_once(' ') else {
                return false;
            };
            if m != method {
                return false;
            }
            let (ts, ps): (Vec<&str>, Vec<&str>) =
                (tpath.split('/').collect(), path.split('/').collect());
            ts.len() == ps.len() && ts.iter().zip(&ps).all(|(t, p)| segment_matches(t, p))
        })
        .map(String::as_str)
        .collect()
}

/// The outcome of comparing the sensor's records with the truth.
#[derive(Debug, Default)]
pub(crate) struct Report {
    pub(crate) truth_total: u64,
    pub(crate) found_total: u64,
    /// `(template, truth, found)` where they differ.
    pub(crate) mismatches: Vec<(String, u64, u64)>,
    /// Records that match no template, or several.
    pub(crate) unmatched: u64,
    pub(crate) ambiguous: u64,
}

/// Compares JSON Lines records with the truth counts.
pub(crate) fn compare(records_jsonl: &str, truth: &BTreeMap<String, u64>) -> Result<Report> {
    let templates: Vec<String> = truth.keys().cloned().collect();
    let mut found: BTreeMap<&str, u64> = BTreeMap::new();
    let mut report = Report::default();
    for line in records_jsonl.lines().filter(|l| !l.is_empty()) {
        let r: serde_json::Value =
            serde_json::from_str(line).context("a record line is not JSON")?;
        let (Some(method), Some(path)) = (r["method"].as_str(), r["path"].as_str()) else {
            report.unmatched += 1;
            continue;
        };
        match matching(&templates, method, path).as_slice() {
            [one] => *found.entry(one).or_default() += 1,
            [] => report.unmatched += 1,
            _ => report.ambiguous += 1,
        }
    }
    for (t, &want) in truth {
        let got = found.get(t.as_str()).copied().unwrap_or(0);
        report.truth_total += want;
        report.found_total += got;
        if got != want {
            report.mismatches.push((t.clone(), want, got));
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_segments_by_kind() {
        let t: Vec<String> = [
            "GET /api/v1/users/{id}",
            "GET /api/v1/users/{uuid}/items",
            "GET /v1/plans/by-slug/{slug}",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            matching(&t, "GET", "/api/v1/users/42"),
            ["GET /api/v1/users/{id}"]
        );
        assert_eq!(
            matching(
                &t,
                "GET",
                "/api/v1/users/0e6f1c2a-1b2c-4d3e-8f90-a1b2c3d4e5f6/items"
            ),
            ["GET /api/v1/users/{uuid}/items"]
        );
        assert_eq!(
            matching(&t, "GET", "/v1/plans/by-slug/gold-annual-7"),
            ["GET /v1/plans/by-slug/{slug}"]
        );
        assert!(matching(&t, "POST", "/api/v1/users/42").is_empty());
        assert!(matching(&t, "GET", "/api/v1/users/abc").is_empty());
    }

    #[test]
    fn compare_counts_per_template() {
        let truth: BTreeMap<String, u64> =
            [("GET /a/{id}".to_string(), 2), ("POST /a".to_string(), 1)].into();
        let jsonl = "{\"method\":\"GET\",\"path\":\"/a/1\"}\n{\"method\":\"GET\",\"path\":\"/a/2\"}\n{\"method\":\"PUT\",\"path\":\"/b\"}\n";
        let r = compare(jsonl, &truth).expect("valid");
        assert_eq!((r.truth_total, r.found_total, r.unmatched), (3, 2, 1));
        assert_eq!(r.mismatches, [("POST /a".to_string(), 1, 0)]);
    }
}

/// The analyzer's inventory against the truth: per `"METHOD template"`
/// counts, with the generator's `{id}`, `{uuid}`, `{slug}` compared to the
/// inventory's parameter kinds (integer, uuid, string).
#[derive(Debug)]
pub(crate) struct InventoryAccuracy {
    pub(crate) truth_templates: usize,
    /// Truth templates whose count the inventory matches exactly.
    pub(crate) exact: usize,
    /// `(template, truth count, inventory count)` where they differ.
    pub(crate) mismatches: Vec<(String, u64, u64)>,
    /// Inventory templates the truth doesn't have.
    pub(crate) extra: usize,
}

/// Compares a JSON report of `shadowtap analyze` with the truth counts.
pub(crate) fn compare_inventory(
    report: &str,
    truth: &BTreeMap<String, u64>,
) -> Result<InventoryAccuracy> {
    let v: serde_json::Value = serde_json::from_str(report).context("parsing the report")?;
    let mut ours: BTreeMap<String, u64> = BTreeMap::new();
    for service in v["services"].as_array().context("report has no services")? {
        for e in service["endpoints"]
            .as_array()
            .context("service without endpoints")?
        {
            let mut path = String::new();
            for seg in e["segments"]
                .as_array()
                .context("endpoint without segments")?
            {
                path.push('/');
                match seg["kind"].as_str() {
                    Some(kind) => path.push_str(&format!("{{{kind}}}")),
                    None => path.push_str(seg["text"].as_str().unwrap_or("")),
                }
            }
            if path.is_empty() {
                path.push('/');
            }
            let key = format!("{} {path}", e["method"].as_str().unwrap_or(""));
            *ours.entry(key).or_insert(0) += e["requests"].as_u64().unwrap_or(0);
        }
    }
    let truth: BTreeMap<String, u64> = truth
        .iter()
        .map(|(k, n)| {
            let k = k.replace("{id}", "{integer}").replace("{slug}", "{string}");
            (k, *n)
        })
        .collect();
    let mut mismatches = Vec::new();
    let mut exact = 0;
    for (t, want) in &truth {
        let got = ours.get(t).copied().unwrap_or(0);
        if got == *want {
            exact += 1;
        } else {
            mismatches.push((t.clone(), *want, got));
        }
    }
    let extra = ours.keys().filter(|k| !truth.contains_key(*k)).count();
    Ok(InventoryAccuracy {
        truth_templates: truth.len(),
        exact,
        mismatches,
        extra,
    })
}

#[cfg(test)]
mod inventory_tests {
    use super::*;

    #[test]
    fn inventory_matches_truth_by_method_template_and_kind() {
        let report = r#"{"services":[
          {"name":"a","endpoints":[
            {"method":"GET","requests":3,"segments":[{"text":"v1"},{"text":"users"},{"text":"userId","kind":"integer"}]},
            {"method":"GET","requests":2,"segments":[{"text":"v1"},{"text":"plans"},{"text":"by-slug"},{"text":"slug","kind":"string"}]}]},
          {"name":"b","endpoints":[
            {"method":"GET","requests":1,"segments":[{"text":"v1"},{"text":"users"},{"text":"userId","kind":"integer"}]},
            {"method":"POST","requests":1,"segments":[{"text":"v1"},{"text":"users"}]}]}]}"#;
        let truth: BTreeMap<String, u64> = [
            ("GET /v1/users/{id}".to_owned(), 4),
            ("GET /v1/plans/by-slug/{slug}".to_owned(), 3),
        ]
        .into();
        let a = compare_inventory(report, &truth).unwrap();
        assert_eq!(a.truth_templates, 2);
        assert_eq!(a.exact, 1);
        assert_eq!(
            a.mismatches,
            [("GET /v1/plans/by-slug/{string}".to_owned(), 3, 2)]
        );
        assert_eq!(a.extra, 1);
    }
}
