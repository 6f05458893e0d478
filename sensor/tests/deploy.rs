//! The Kubernetes manifest (`deploy/kubernetes/shadowtap-sensor.yaml`):
//! valid for the Kubernetes API, and holding the sensor to reliability
//! target S22 (least privilege). That its capabilities and arguments are
//! enough to capture is checked by `live_ebpf.rs`
//! (`the_daemonset_capabilities_and_arguments_capture`).

mod manifest;

use std::collections::BTreeSet;
use std::process::Command;

use serde_json::Value;

/// Capabilities a node sensor may add (S22): the eBPF source needs BPF,
/// PERFMON and NET_ADMIN; NET_RAW is for libpcap.
const ALLOWED_CAPABILITIES: [&str; 4] = ["BPF", "PERFMON", "NET_ADMIN", "NET_RAW"];

/// Kubernetes versions the manifest is checked against: the oldest and the
/// newest the pinned validator knows.
const KUBERNETES_VERSIONS: [&str; 2] = ["1.25.0", "1.37.0"];

/// The variable `cargo xtask test` sets to the `kubernetes-validate`
/// executable (`xtask/src/pip_tools.rs`).
const VALIDATOR_VAR: &str = "SHADOWTAP_KUBERNETES_VALIDATOR";

#[test]
fn the_daemonset_runs_with_least_privilege() {
    let ds = manifest::one("DaemonSet");
    let pod = &ds["spec"]["template"]["spec"];
    assert_eq!(pod["hostNetwork"], true, "the node's interfaces");
    for shared in ["hostPID", "hostIPC"] {
        assert_ne!(pod[shared], true, "{shared}");
    }
    assert_eq!(pod["automountServiceAccountToken"], false);
    let sa = manifest::one("ServiceAccount");
    assert_eq!(sa["automountServiceAccountToken"], false);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    for volume in pod["volumes"].as_array().into_iter().flatten() {
        assert!(volume.get("hostPath").is_none(), "no host path: {volume}");
    }

    let c = manifest::sensor_container();
    let sc = &c["securityContext"];
    assert_eq!(sc["privileged"], false);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
    assert_eq!(sc["capabilities"]["drop"], serde_json::json!(["ALL"]));
    let added: BTreeSet<&str> = sc["capabilities"]["add"]
        .as_array()
        .expect("capabilities.add")
        .iter()
        .map(|v| v.as_str().expect("a name"))
        .collect();
    let allowed = BTreeSet::from(ALLOWED_CAPABILITIES);
    assert!(added.is_subset(&allowed), "{added:?} beyond {allowed:?}");
    for needed in ["BPF", "PERFMON", "NET_ADMIN"] {
        assert!(added.contains(needed), "the eBPF source needs {needed}");
    }

    for kind in ["requests", "limits"] {
        for resource in ["cpu", "memory"] {
            assert!(
                c["resources"][kind][resource].is_string(),
                "resources.{kind}.{resource}"
            );
        }
    }
}

#[test]
fn the_daemonset_runs_the_ebpf_sensor_with_a_key_and_flushes_before_it_is_killed() {
    let args = manifest::args();
    assert!(args.iter().any(|a| a == "--ebpf"), "{args:?}");
    // Each exchange once in a cluster: at the server pod's veth.
    assert!(args.iter().any(|a| a == "--server-side"), "{args:?}");
    assert!(
        args.windows(2).any(|w| w == ["-w", "-"]),
        "records on stdout: {args:?}"
    );
    let c = manifest::sensor_container();
    let env: Vec<&Value> = c["env"].as_array().expect("env").iter().collect();
    let key_file = env
        .iter()
        .find(|e| e["name"] == "SHADOWTAP_FINGERPRINT_KEY_FILE")
        .and_then(|e| e["value"].as_str())
        .expect("a fingerprint key file");
    // The key comes from the secret mounted there.
    let mounts = c["volumeMounts"].as_array().expect("volumeMounts");
    let mount = mounts
        .iter()
        .find(|m| key_file.starts_with(m["mountPath"].as_str().expect("mountPath")))
        .expect("the key's volume is mounted");
    assert_eq!(mount["readOnly"], true);
    let ds = manifest::one("DaemonSet");
    let pod = &ds["spec"]["template"]["spec"];
    let volume = pod["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .find(|v| v["name"] == mount["name"])
        .expect("the key's volume");
    assert!(volume["secret"]["secretName"].is_string(), "{volume}");
    // SIGTERM: the stop drain (2 s) and the output's (10 s) fit in the
    // grace period.
    let grace = pod["terminationGracePeriodSeconds"]
        .as_u64()
        .expect("terminationGracePeriodSeconds");
    assert!(grace >= 15, "{grace}");
}

#[test]
fn the_manifest_is_valid_for_the_kubernetes_api() {
    let Some(validator) = std::env::var_os(VALIDATOR_VAR) else {
        assert!(
            std::env::var_os("SHADOWTAP_UNDER_XTASK").is_none(),
            "{VALIDATOR_VAR} is not set: cargo xtask test installs kubernetes-validate"
        );
        eprintln!(
            "SKIPPED the_manifest_is_valid_for_the_kubernetes_api: set {VALIDATOR_VAR} to a \
             kubernetes-validate executable (cargo xtask test installs one)"
        );
        return;
    };
    let manifest = manifest::path();
    let documents = manifest::documents().len();
    assert_eq!(documents, 3);
    for version in KUBERNETES_VERSIONS {
        let out = Command::new(&validator)
            .args(["--strict", "-k", version])
            .arg(&manifest)
            .output()
            .expect("kubernetes-validate runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "against {version}: {stdout}{stderr}");
        let passed = format!("{stdout}{stderr}")
            .matches(" passed for resource ")
            .count();
        assert_eq!(passed, documents, "against {version}: {stdout}{stderr}");
    }
    assert_a_misspelt_field_is_refused(&validator);
}

/// The validator is strict: a misspelt field fails.
fn assert_a_misspelt_field_is_refused(validator: &std::ffi::OsStr) {
    let text = std::fs::read_to_string(manifest::path()).expect("the manifest");
    let bad = text.replace("readOnlyRootFilesystem", "readOnlyRootFilesytem");
    assert_ne!(bad, text);
    let dir = std::env::temp_dir().join(format!("shadowtap-deploy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("misspelt.yaml");
    std::fs::write(&file, bad).expect("write");
    let out = Command::new(validator)
        .args(["--strict", "-k", KUBERNETES_VERSIONS[1]])
        .arg(&file)
        .output()
        .expect("kubernetes-validate runs");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!out.status.success());
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("readOnlyRootFilesytem"), "{text}");
}
