//! Running the sensor (and tcpdump beside it) in the harness's namespaces,
//! and the fixture most live tests start from: a linked [`Pair`], a scratch
//! directory, a fingerprint key and the test HTTP server.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;

use super::{command_works, http, ready, Daemon, Netns, Pair, TempDir};

pub const SENSOR: &str = env!("CARGO_BIN_EXE_shadowtap-sensor");
/// What the sensor prints on stderr once every interface is open or attached.
pub const READY: &str = "capturing on";
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(30);
/// Port of the fixture's server.
pub const PORT: u16 = 8080;

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Starts the sensor inside `ns` with `args`; returns once it captures.
pub fn start_sensor(ns: &Netns, name: &str, args: &[&str]) -> Daemon {
    let mut cmd = ns.command(SENSOR);
    cmd.args(args);
    let mut sensor = Daemon::spawn(name, cmd);
    sensor.wait_for_stderr(READY, Duration::from_secs(20));
    sensor
}

/// True if tcpdump runs; otherwise says why the test is skipped (and fails
/// under xtask, where it is provisioned).
pub fn tcpdump_available(test: &str) -> bool {
    let installed = command_works("tcpdump", &["--version"]);
    ready(test, (!installed).then_some("tcpdump is not installed"))
}

/// tcpdump on `iface` inside `ns`, writing nanosecond timestamps to `out`.
pub fn start_tcpdump(ns: &Netns, iface: &str, out: &Path) -> Daemon {
    let mut cmd = ns.command("tcpdump");
    cmd.args([
        "-i",
        iface,
        "-w",
        path_str(out),
        "-U",
        "--immediate-mode",
        "--time-stamp-precision=nano",
        "-s",
        "262144",
        "-B",
        "16384",
        "-Z",
        "root",
    ]);
    let mut dump = Daemon::spawn("tcpdump", cmd);
    dump.wait_for_stderr("listening on", Duration::from_secs(20));
    dump
}

/// Stops tcpdump and asserts it exited cleanly without kernel drops.
pub fn stop_tcpdump(dump: Daemon) {
    let run = dump.terminate(EXIT_TIMEOUT);
    let stderr = assert_clean_exit(&run, "tcpdump");
    assert!(
        stderr.lines().any(|l| l == "0 packets dropped by kernel"),
        "{stderr}"
    );
}

pub fn read_records(path: &Path) -> Vec<Value> {
    http::parse_records(&std::fs::read(path).expect("records written"))
}

/// Asserts the process exited 0; returns its stderr.
pub fn assert_clean_exit(out: &Output, what: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{what}: {}: {stderr}", out.status);
    stderr
}

pub fn stats(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).expect("stats written")).expect("stats json")
}

/// Lets the capturers' last packets arrive before they are stopped.
pub fn settle() {
    std::thread::sleep(Duration::from_millis(500));
}

/// A linked [`Pair`], a scratch directory with a fingerprint key, and the
/// test HTTP server listening in the server namespace. Everything is
/// stopped and removed on drop (servers first, the namespaces last).
pub struct Fixture {
    servers: Vec<Daemon>,
    pub dir: TempDir,
    pub pair: Pair,
    /// The fingerprint key every sensor of the test uses, so that records
    /// of different sources can be compared whole.
    pub key: PathBuf,
}

impl Fixture {
    /// A linked pair with the server on the server's IPv4 address, [`PORT`].
    pub fn new(test: &str) -> Fixture {
        let mut fx = Fixture::unlinked(test);
        fx.pair.link();
        fx.serve(fx.addr());
        fx
    }

    /// A linked pair without a server.
    pub fn without_server(test: &str) -> Fixture {
        let fx = Fixture::unlinked(test);
        fx.pair.link();
        fx
    }

    /// The namespaces without the veth pair and without a server yet.
    pub fn unlinked(test: &str) -> Fixture {
        let dir = TempDir::new(test);
        let key = dir.path("fingerprint.key");
        std::fs::write(&key, b"shadowtap live test fingerprint key").expect("key");
        Fixture {
            servers: Vec::new(),
            dir,
            pair: Pair::unlinked(),
            key,
        }
    }

    /// The server's IPv4 address and [`PORT`].
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.pair.server_ip.into(), PORT)
    }

    /// The server's IPv6 address and [`PORT`].
    pub fn addr6(&self) -> SocketAddr {
        SocketAddr::new(self.pair.server_ip6.into(), PORT)
    }

    /// Starts another test server in the server namespace on `addr`.
    pub fn serve(&mut self, addr: SocketAddr) {
        let server = http::start_server(&self.pair.server, &self.dir.0, addr);
        self.servers.push(server);
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path(name)
    }

    /// `--fingerprint-key-file KEY`, for a sensor's arguments.
    pub fn key_args(&self) -> [&str; 2] {
        ["--fingerprint-key-file", path_str(&self.key)]
    }

    /// Starts a sensor in the server namespace with `args` and the key.
    pub fn sensor(&self, name: &str, args: &[&str]) -> Daemon {
        // The key first: trailing words may be a filter expression.
        start_sensor(&self.pair.server, name, &[&self.key_args(), args].concat())
    }

    /// The file source's records of `pcap` (`-r`), with the same key.
    pub fn file_records(&self, pcap: &Path) -> Vec<u8> {
        let out = self.path("file.jsonl");
        let run = Command::new(SENSOR)
            .args(["-q", "-r", path_str(pcap), "-w", path_str(&out)])
            .args(self.key_args())
            .output()
            .expect("sensor -r");
        assert_clean_exit(&run, "sensor -r");
        std::fs::read(&out).expect("file records")
    }
}
