//! Entry points of the cargo-fuzz targets in `fuzz/` (`records`, `openapi`):
//! hostile input through the analyzer's readers, then through the whole
//! analysis and every report format. The unit tests below run them on the
//! repository's own files, so the harness is built and exercised by the
//! ordinary test suite too.

use std::io::Cursor;

use shadowtap_proto::record::FingerprintKey;
use shadowtap_proto::ExchangeRecord;

use crate::analysis::{self, Detail};
use crate::anomaly::{DetectorConfig, Detectors};
use crate::contracts::ContractSet;
use crate::input;
use crate::observe::Observations;
use crate::report::{self, Format};

/// Most records one input may turn into; more are not analysed (the
/// readers' own limits are what is being fuzzed, not the analysis' speed).
const MAX_RECORDS: usize = 256;

/// `data` as records: a HAR file when its first byte is odd, else JSON
/// Lines (the rest of `data` is the file). Whatever records come out are
/// analysed without a contract and rendered in every format.
pub fn records(data: &[u8]) {
    let Some((&selector, file)) = data.split_first() else {
        return;
    };
    let mut records = Vec::new();
    let mut sink = |r: ExchangeRecord| {
        if records.len() < MAX_RECORDS {
            records.push(r);
        }
    };
    // A reader's error (not a HAR file, say) is a clear error to the user,
    // not a failure here; the records read before it are analysed.
    let _ = if selector & 1 == 1 {
        input::har_records(file, &FingerprintKey::new([7; 32]), &mut sink).map(drop)
    } else {
        input::records_from(Cursor::new(file), &mut sink).map(drop)
    };
    analyze(&records, &ContractSet::new(Vec::new(), Vec::new()));
}

/// `data` as an OpenAPI or Swagger contract (JSON or YAML). When it loads,
/// a fixed set of records is analysed against it and rendered in every
/// format; returns whether it loaded.
pub fn openapi(data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else {
        return false;
    };
    let Ok(contract) = crate::spec::load_str("fuzz.yaml", text) else {
        return false;
    };
    let set = ContractSet::new(vec![contract], Vec::new());
    analyze(&canned_records(), &set);
    true
}

fn analyze(records: &[ExchangeRecord], set: &ContractSet) {
    let mut observations = Observations::default();
    let mut detectors = Detectors::new(DetectorConfig::default());
    for r in records {
        observations.add(r, Some(&mut detectors));
    }
    let anomalies = detectors.finish();
    let (observations, names) = observations.into_sorted();
    let analysis = analysis::analyze(observations, names, set);
    let report = analysis::report(&analysis, set, Vec::new(), anomalies, Detail::Full);
    for format in Format::ALL {
        let _ = report::render(&report, format, false);
    }
}

/// Records of the paths contracts tend to have: parameters, literal
/// siblings of parameters, nested resources, a trailing slash, the root.
fn canned_records() -> Vec<ExchangeRecord> {
    let requests: &[(&str, &str, u16)] = &[
        ("GET", "/", 200),
        ("GET", "/pets", 200),
        ("POST", "/pets", 201),
        ("GET", "/pets/1", 200),
        ("GET", "/pets/2", 404),
        ("DELETE", "/pets/3", 204),
        ("GET", "/pets/findByStatus", 200),
        ("GET", "/users/me", 200),
        (
            "PUT",
            "/users/42/orders/d9a1e25f-ca7c-48d4-83db-9009935bab90",
            500,
        ),
        ("GET", "/api/v1/health", 200),
        ("GET", "/v2/store/inventory/", 401),
        ("PATCH", "/containers/abc/json", 200),
    ];
    requests
        .iter()
        .enumerate()
        .filter_map(|(i, &(method, path, status))| {
            let json = format!(
                r#"{{"schema":1,"ts":"2026-11-24T10:00:{i:02}Z","latency_us":1000,"client":"10.0.0.1:4000",
                "server":"10.0.0.2:80","host":"api.example","method":"{method}","path":"{path}",
                "version":"1.1","status":{status},"query_params":["limit"],
                "request":{{"headers":["host"],"content_type":"application/json","body":{{"framing":"content_length",
                "wire_bytes":9,"bytes":9,"decoded_bytes":9,"shape":{{"type":"object","fields":{{"name":{{"type":"string"}}}}}}}}}},
                "response":{{"headers":["content-type"],"content_type":"application/json","body":{{"framing":"content_length",
                "wire_bytes":20,"bytes":20,"decoded_bytes":20,"shape":{{"type":"object","fields":{{"id":{{"type":"integer"}},
                "tags":{{"type":"array","items":{{"type":"string"}}}}}}}}}}}},
                "auth":{{"scheme":"bearer_opaque"}},"principal":"p{}","flags":{{}}}}"#,
                i % 3
            );
            serde_json::from_str(&json).ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::Path;

    use super::*;

    #[test]
    fn the_canned_records_all_parse() {
        assert_eq!(canned_records().len(), 12);
    }

    #[test]
    fn the_repositorys_contracts_and_records_go_through() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut specs = vec![root.join("samples/demo-api.openapi.yaml")];
        let dir = root.join("analyzer/testdata/specs");
        let mut stack = vec![dir];
        while let Some(d) = stack.pop() {
            for entry in fs::read_dir(&d).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|x| x == "yaml" || x == "json") {
                    specs.push(path);
                }
            }
        }
        assert!(specs.len() > 5);
        let loaded = specs
            .iter()
            .filter(|spec| openapi(&fs::read(spec).unwrap()))
            .count();
        assert!(loaded >= 5, "{loaded} of {} specs loaded", specs.len());

        let jsonl = fs::read(root.join("tests/fixtures/golden/demo-api/expected.jsonl")).unwrap();
        let mut data = vec![0u8];
        data.extend_from_slice(&jsonl);
        records(&data);
        // The same bytes as a HAR file: an error, nothing analysed.
        data[0] = 1;
        records(&data);
        records(b"");
        records(b"\x00{\"schema\":1}\n\xff\xfe garbage\n");
    }

    #[test]
    fn a_har_file_goes_through() {
        let har = include_bytes!("../testdata/har/two-entries.har");
        let mut n = 0;
        let report =
            input::har_records(har, &FingerprintKey::new([7; 32]), &mut |_| n += 1).unwrap();
        assert_eq!((report.records, report.bad_entries, n), (2, 0, 2));
        let mut data = vec![1u8];
        data.extend_from_slice(har);
        records(&data);
    }
}
