//! The sensor's Kubernetes manifest (`deploy/kubernetes/shadowtap-sensor.yaml`),
//! read for the tests that check it: `deploy.rs` (its security settings and
//! the API's schemas) and `live_ebpf.rs` (the sensor runs with exactly the
//! capabilities and arguments it gives).

#![allow(
    dead_code,
    reason = "each test binary uses a different part of the helpers"
)]
#![allow(
    unreachable_pub,
    reason = "shared by test binaries; `pub` marks the helpers' interface"
)]

use std::path::PathBuf;

use serde::Deserialize;
use serde_json::Value;

/// The manifest's path.
pub fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/kubernetes/shadowtap-sensor.yaml")
}

/// Every document of the manifest, as JSON values.
pub fn documents() -> Vec<Value> {
    let text = std::fs::read_to_string(path()).expect("the manifest");
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).expect("a YAML document"))
        .collect()
}

/// The document of `kind`; panics unless there is exactly one.
pub fn one(kind: &str) -> Value {
    let mut found: Vec<Value> = documents()
        .into_iter()
        .filter(|d| d["kind"] == kind)
        .collect();
    assert_eq!(found.len(), 1, "one {kind} in the manifest");
    found.remove(0)
}

/// The DaemonSet's sensor container.
pub fn sensor_container() -> Value {
    let ds = one("DaemonSet");
    let containers = ds["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("containers")
        .clone();
    assert_eq!(containers.len(), 1, "one container");
    containers[0].clone()
}

/// The capabilities the sensor container adds, as the kernel spells them
/// for `setpriv` (`bpf`, `net_admin`, …).
pub fn added_capabilities() -> Vec<String> {
    sensor_container()["securityContext"]["capabilities"]["add"]
        .as_array()
        .expect("capabilities.add")
        .iter()
        .map(|c| c.as_str().expect("a capability name").to_lowercase())
        .collect()
}

/// The sensor container's arguments.
pub fn args() -> Vec<String> {
    sensor_container()["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|a| a.as_str().expect("a string argument").to_owned())
        .collect()
}
