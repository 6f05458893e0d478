//! Privileged tests of `shadowtap-sensor --ebpf`: real traffic between two
//! network namespaces joined by a veth pair, the sensor attached in the
//! server's namespace, records compared with what the client sent and got.
//!
//! They need root, `ip`, `bpftool`, `tc`, `python3` and a sensor built with
//! the eBPF object (`cargo xtask build-ebpf`). Without them each test says
//! why and returns — except under `cargo xtask test`
//! (`SHADOWTAP_UNDER_XTASK` set), where that is a failure.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant};

use serde_json::Value;

const SENSOR: &str = env!("CARGO_BIN_EXE_shadowtap-sensor");
const PORT: u16 = 8080;

/// Why these tests cannot run here, if they cannot.
fn missing_precondition() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2));
    if euid != Some("0") {
        return Some("not root".into());
    }
    if !shadowtap_sensor::capture::ebpf::object_embedded() {
        return Some(
            "the sensor was built without the eBPF object (run `cargo xtask build-ebpf`)".into(),
        );
    }
    for tool in ["ip", "bpftool", "tc", "python3", "setpriv"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            return Some(format!("`{tool}` is not installed"));
        }
    }
    None
}

/// True when the test should go on; otherwise prints why (or fails under xtask).
fn can_run(test: &str) -> bool {
    let Some(reason) = missing_precondition() else {
        return true;
    };
    if std::env::var_os("SHADOWTAP_UNDER_XTASK").is_some() {
        panic!("{test}: cannot run under cargo xtask test: {reason}");
    }
    eprintln!("SKIPPED {test}: {reason}");
    false
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn ip(args: &[&str]) {
    run(Command::new("ip").args(args));
}

fn in_ns(ns: &str, program: &str) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns, program]);
    c
}

/// Two namespaces, `<prefix>c` (client) and `<prefix>s` (server), deleted
/// on drop, also when a test panics. Deleting a namespace deletes its veth.
struct Namespaces {
    client: String,
    server: String,
    /// Veth ends: in the client's and the server's namespace.
    client_if: String,
    server_if: String,
    dir: PathBuf,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

impl Namespaces {
    fn new() -> Namespaces {
        let id = format!(
            "{}{}",
            std::process::id() % 100_000,
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let dir = std::env::temp_dir().join(format!("shadowtap-live-ebpf-{id}"));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let ns = Namespaces {
            client: format!("stc{id}"),
            server: format!("sts{id}"),
            client_if: format!("stvc{id}"),
            server_if: format!("stvs{id}"),
            dir,
        };
        ip(&["netns", "add", &ns.client]);
        ip(&["netns", "add", &ns.server]);
        for n in [&ns.client, &ns.server] {
            run(in_ns(n, "ip").args(["link", "set", "lo", "up"]));
        }
        ns
    }

    /// Creates the veth pair, addresses 10.99.0.1 and fd00:99::1 (client),
    /// .2 and ::2 (server).
    fn link(&self) {
        ip(&[
            "link",
            "add",
            &self.client_if,
            "netns",
            &self.client,
            "type",
            "veth",
            "peer",
            "name",
            &self.server_if,
            "netns",
            &self.server,
        ]);
        for (n, dev, addr) in [
            (&self.client, &self.client_if, "10.99.0.1/24"),
            (&self.server, &self.server_if, "10.99.0.2/24"),
        ] {
            run(in_ns(n, "ip").args(["addr", "add", addr, "dev", dev]));
        }
        for (n, dev, addr) in [
            (&self.client, &self.client_if, "fd00:99::1/64"),
            (&self.server, &self.server_if, "fd00:99::2/64"),
        ] {
            run(in_ns(n, "ip").args(["-6", "addr", "add", addr, "dev", dev, "nodad"]));
            run(in_ns(n, "ip").args(["link", "set", dev, "up"]));
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for n in [&self.client, &self.server] {
            let _ = Command::new("ip")
                .args(["netns", "del", n])
                .stderr(Stdio::null())
                .status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A child process killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The server: a keep-alive HTTP/1.1 handler with answers of known sizes.
const SERVER_PY: &str = r#"
import http.server, socket, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def reply(self, status, body):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        if self.path == "/api/items/7":
            self.reply(200, b'{"id":7,"name":"seven"}')
        elif self.path == "/api/big":
            self.reply(200, b'{"data":"' + b"x" * 300000 + b'"}')
        else:
            self.reply(404, b'{"error":"not found"}')
    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        self.reply(201, b'{"received":' + str(len(body)).encode() + b'}')
class S(http.server.HTTPServer):
    address_family = socket.AF_INET6 if ":" in sys.argv[2] else socket.AF_INET
s = S((sys.argv[2], int(sys.argv[1])), H)
print("ready", flush=True)
s.serve_forever()
"#;

/// The client: keep-alive requests on one connection, then what it saw as
/// JSON lines: method, path, status, request and response body sizes.
const CLIENT_PY: &str = r#"
import http.client, json, sys
c = http.client.HTTPConnection(sys.argv[2], int(sys.argv[1]), timeout=10)
plan = [("GET", "/api/items/7", None), ("POST", "/api/items", b'{"name":"eight","tags":["a","b"]}'),
        ("GET", "/api/missing", None), ("GET", "/api/big", None), ("GET", "/api/items/7", None)]
for method, path, body in plan:
    headers = {"Content-Type": "application/json"} if body else {}
    c.request(method, path, body=body, headers=headers)
    r = c.getresponse()
    data = r.read()
    print(json.dumps([method, path, r.status, len(body or b""), len(data)]))
c.close()
"#;

fn start_server(ns: &Namespaces, addr: &str) -> Proc {
    let mut child = in_ns(&ns.server, "python3")
        .args(["-c", SERVER_PY, &PORT.to_string(), addr])
        .stdout(Stdio::piped())
        .spawn()
        .expect("server starts");
    let mut line = String::new();
    let stdout = child.stdout.take().expect("piped stdout");
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)
        .expect("server says ready");
    assert_eq!(line.trim(), "ready");
    Proc(child)
}

fn run_client(ns: &Namespaces, addr: &str) -> Vec<Value> {
    let out = run(in_ns(&ns.client, "python3").args(["-c", CLIENT_PY, &PORT.to_string(), addr]));
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("client JSON"))
        .collect()
}

fn start_sensor(ns: &Namespaces, args: &[&str]) -> Proc {
    let out = ns.path("records.jsonl");
    let stats = ns.path("stats.json");
    let child = in_ns(&ns.server, SENSOR)
        .arg("--ebpf")
        .args(args)
        .args(["-w", out.to_str().expect("utf-8"), "--stats-json"])
        .arg(&stats)
        .stderr(Stdio::piped())
        .spawn()
        .expect("sensor starts");
    Proc(child)
}

/// A TCX link the sensor holds, from `/proc/<pid>/fdinfo` (Debian 12's
/// bpftool predates TCX and cannot list them per device).
#[derive(Clone, Debug, PartialEq, Eq)]
struct TcxLink {
    link_id: u32,
    ifindex: u32,
    attach_type: String,
}

fn tcx_links(pid: u32) -> Vec<TcxLink> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fdinfo")) else {
        return Vec::new();
    };
    let mut links = Vec::new();
    for entry in dir.flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().to_owned())
        };
        if field("link_type:").as_deref() != Some("tcx") {
            continue;
        }
        let number = |name: &str| field(name).and_then(|v| v.parse().ok()).unwrap_or(0);
        links.push(TcxLink {
            link_id: number("link_id:"),
            ifindex: number("ifindex:"),
            attach_type: field("attach_type:").unwrap_or_default(),
        });
    }
    links
}

fn ifindex(ns: &str, dev: &str) -> u32 {
    let out = run(in_ns(ns, "cat").arg(format!("/sys/class/net/{dev}/ifindex")));
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("ifindex")
}

/// Waits until the sensor holds an ingress and an egress TCX link on the
/// server's veth; returns them.
fn wait_attached(ns: &Namespaces, sensor: &mut Proc) -> Vec<TcxLink> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(Some(status)) = sensor.0.try_wait() {
            let mut err = String::new();
            if let Some(mut e) = sensor.0.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            panic!("sensor exited ({status}) before attaching: {err}");
        }
        // The veth may not exist yet (--follow).
        let index = Command::new("ip")
            .args(["netns", "exec", &ns.server, "cat"])
            .arg(format!("/sys/class/net/{}/ifindex", ns.server_if))
            .output()
            .ok()
            .and_then(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .trim()
                    .parse::<u32>()
                    .ok()
            });
        if let Some(index) = index {
            let links: Vec<TcxLink> = tcx_links(sensor.0.id())
                .into_iter()
                .filter(|l| l.ifindex == index)
                .collect();
            let has = |dir: &str| links.iter().any(|l| l.attach_type.contains(dir));
            if has("ingress") && has("egress") {
                assert_eq!(index, ifindex(&ns.server, &ns.server_if));
                return links;
            }
        }
        assert!(Instant::now() < deadline, "sensor did not attach in 30 s");
        sleep(Duration::from_millis(100));
    }
}

/// Whether the kernel still has the link (`bpftool link show id N`).
fn link_exists(id: u32) -> bool {
    Command::new("bpftool")
        .args(["link", "show", "id", &id.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn assert_gone(links: &[TcxLink], what: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    for link in links {
        while link_exists(link.link_id) {
            assert!(
                Instant::now() < deadline,
                "{what}: link {link:?} is still there"
            );
            sleep(Duration::from_millis(50));
        }
    }
}

fn signal(proc: &Proc, sig: &str) {
    run(Command::new("kill").args([sig, &proc.0.id().to_string()]));
}

fn wait_exit(proc: &mut Proc) -> (std::process::ExitStatus, String) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = proc.0.try_wait().expect("wait") {
            let mut err = String::new();
            if let Some(mut e) = proc.0.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            return (status, err);
        }
        assert!(Instant::now() < deadline, "sensor did not exit in 30 s");
        sleep(Duration::from_millis(50));
    }
}

/// The exchange records as [method, path, status, request bytes, response bytes].
fn records(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).expect("records file");
    let mut rows: Vec<(String, Value)> = text
        .lines()
        .map(|l| {
            let r: Value = serde_json::from_str(l).expect("record JSON");
            let row = serde_json::json!([
                r["method"],
                r["path"],
                r["status"],
                r["request"]["body"]["bytes"],
                r["response"]["body"]["bytes"],
            ]);
            (r["ts"].as_str().unwrap_or_default().to_owned(), row)
        })
        .collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    rows.into_iter().map(|(_, row)| row).collect()
}

fn stats(path: &Path) -> BTreeMap<String, Value> {
    let text = std::fs::read_to_string(path).expect("stats file");
    serde_json::from_str(&text).expect("stats JSON")
}

/// Runs the client against the server with the sensor attached, stops the
/// sensor with SIGTERM and checks its records against the client's view.
fn exchange_and_compare(ns: &Namespaces, mut sensor: Proc, links: &[TcxLink], addr: &str) {
    let _server = start_server(ns, addr);
    let sent = run_client(ns, addr);
    assert_eq!(sent.len(), 5);
    sleep(Duration::from_millis(500));
    signal(&sensor, "-TERM");
    let (status, stderr) = wait_exit(&mut sensor);
    assert!(status.success(), "sensor failed: {stderr}");
    assert_gone(links, "after SIGTERM");
    let seen = records(&ns.path("records.jsonl"));
    assert_eq!(seen, sent, "records vs client; sensor stderr:\n{stderr}");
    let stats = stats(&ns.path("stats.json"));
    let counters = &stats["capture_counters"];
    for counter in ["ebpf_ringbuf_full", "ebpf_truncated", "ebpf_load_failed"] {
        assert_eq!(counters[counter], 0, "{counter}");
    }
    assert!(counters["ebpf_events"].as_u64().unwrap_or(0) > 0);
}

#[test]
fn ports_mode_records_match_the_client() {
    if !can_run("ports_mode_records_match_the_client") {
        return;
    }
    let ns = Namespaces::new();
    ns.link();
    let mut sensor = start_sensor(&ns, &["-i", &ns.server_if, "--ports", "8080"]);
    let links = wait_attached(&ns, &mut sensor);
    exchange_and_compare(&ns, sensor, &links, "10.99.0.2");
}

#[test]
fn ipv6_records_match_the_client() {
    if !can_run("ipv6_records_match_the_client") {
        return;
    }
    let ns = Namespaces::new();
    ns.link();
    let mut sensor = start_sensor(&ns, &["-i", &ns.server_if]);
    let links = wait_attached(&ns, &mut sensor);
    exchange_and_compare(&ns, sensor, &links, "fd00:99::2");
}

/// All ports with in-kernel HTTP detection, on an interface that appears
/// after the sensor started (`--follow`).
#[test]
fn followed_interface_all_ports_records_match_the_client() {
    if !can_run("followed_interface_all_ports_records_match_the_client") {
        return;
    }
    let ns = Namespaces::new();
    let pattern = format!("{}*", &ns.server_if[..ns.server_if.len() - 1]);
    let mut sensor = start_sensor(&ns, &["--follow", &pattern]);
    sleep(Duration::from_millis(500));
    ns.link();
    let links = wait_attached(&ns, &mut sensor);
    exchange_and_compare(&ns, sensor, &links, "10.99.0.2");
    let stats = stats(&ns.path("stats.json"));
    assert_eq!(stats["capture_counters"]["ebpf_http_flows_detected"], 1);
}

/// A SIGKILLed sensor leaves no classifier or TC filter behind: TCX links
/// belong to the process's file descriptors.
#[test]
fn sigkill_leaves_nothing_attached() {
    if !can_run("sigkill_leaves_nothing_attached") {
        return;
    }
    let ns = Namespaces::new();
    ns.link();
    let mut sensor = start_sensor(&ns, &["-i", &ns.server_if]);
    let links = wait_attached(&ns, &mut sensor);
    signal(&sensor, "-KILL");
    let (status, _) = wait_exit(&mut sensor);
    assert!(!status.success());
    // The kernel closes the links with the process's files.
    assert_gone(&links, "after SIGKILL");
    for direction in ["ingress", "egress"] {
        let out =
            run(in_ns(&ns.server, "tc").args(["filter", "show", "dev", &ns.server_if, direction]));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "",
            "tc filter left on {direction}"
        );
    }
}

/// Usage errors need neither root nor the object.
#[test]
fn usage_errors_are_clear() {
    let out = Command::new(SENSOR)
        .args(["--ports", "80", "-r", "x.pcap"])
        .output()
        .expect("sensor runs");
    assert_eq!(out.status.code(), Some(2), "--ports without --ebpf");

    let out = Command::new(SENSOR)
        .args(["--ebpf", "-w", "/dev/null"])
        .output()
        .expect("sensor runs");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    if shadowtap_sensor::capture::ebpf::object_embedded() {
        assert!(err.contains("needs at least one interface"), "{err}");
    } else {
        assert!(err.contains("cargo xtask build-ebpf"), "{err}");
    }

    let out = Command::new(SENSOR)
        .args(["--ebpf", "-i", "no-such-if0", "-w", "/dev/null"])
        .output()
        .expect("sensor runs");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no-such-if0") || err.contains("CAP_") || err.contains("build-ebpf"),
        "{err}"
    );
}

/// Without CAP_NET_ADMIN, or without CAP_BPF and CAP_SYS_ADMIN, the sensor
/// stops with one error naming the capability (dropped with `setpriv`).
#[test]
fn a_missing_capability_is_named() {
    if !can_run("a_missing_capability_is_named") {
        return;
    }
    for (drop, named) in [
        ("-net_admin", "CAP_NET_ADMIN"),
        ("-bpf,-sys_admin", "CAP_BPF"),
    ] {
        let out = Command::new("setpriv")
            .args(["--inh-caps", drop, "--bounding-set", drop, SENSOR])
            .args(["--ebpf", "-i", "lo", "-w", "/dev/null"])
            .output()
            .expect("setpriv runs");
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&format!("needs {named}")), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}
