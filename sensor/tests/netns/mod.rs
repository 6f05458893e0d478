//! Privileged test harness: two network namespaces joined by a veth pair,
//! processes run inside them, and threads moved into them.
//!
//! ```text
//!   netns <tag>-s                      netns <tag>-c
//!   [server, sensor, tcpdump]          [client thread]
//!   veth <tag>s  198.18.N.1/24 ◄──────► veth <tag>c  198.18.N.2/24
//! ```
//!
//! Addresses come from 198.18.0.0/15 (RFC 2544, benchmark testing); the
//! namespaces have no route anywhere else, so test traffic never leaves
//! them. Everything is removed on drop, also when a test panics.
//!
//! Shared by the live capture tests of every backend (libpcap, eBPF).

#![allow(
    dead_code,
    reason = "each test binary uses a different part of the harness"
)]
#![allow(
    unreachable_pub,
    reason = "shared by test binaries; `pub` marks the harness interface"
)]

pub mod http;
pub mod sensor;

use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Set by `cargo xtask test`: privileged tests fail instead of skipping.
pub const UNDER_XTASK_VAR: &str = "SHADOWTAP_UNDER_XTASK";

/// True when the test can create namespaces (root, `ip` present). Otherwise
/// see [`ready`].
pub fn privileged(test: &str) -> bool {
    let reason = if !rustix::process::geteuid().is_root() {
        Some("not root (needs root to create network namespaces)")
    } else if !command_works("ip", &["-V"]) {
        Some("`ip` (iproute2) is not installed")
    } else {
        None
    };
    ready(test, reason)
}

/// True when nothing keeps `test` from running (`missing` is `None`).
/// Otherwise prints why and returns false, or panics under xtask (where CI
/// runs as root with every tool provisioned, and a skip would hide a broken
/// set-up).
pub fn ready(test: &str, missing: Option<&str>) -> bool {
    let Some(reason) = missing else {
        return true;
    };
    assert!(
        std::env::var_os(UNDER_XTASK_VAR).is_none(),
        "{test}: cannot run under xtask: {reason}"
    );
    eprintln!("{test}: skipped: {reason}");
    false
}

/// True if `program args` runs and exits 0.
pub fn command_works(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("ip runs");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One network namespace, deleted on drop.
#[derive(Debug)]
pub struct Netns {
    pub name: String,
}

impl Netns {
    fn create(name: String) -> Netns {
        ip(&["netns", "add", &name]);
        let ns = Netns { name };
        ip(&["-n", &ns.name, "link", "set", "lo", "up"]);
        ns
    }

    /// `program` to be run inside the namespace (`ip netns exec`).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).arg(program);
        cmd
    }

    /// Moves the calling thread into the namespace: sockets it opens from
    /// then on live there. Use on a thread of its own.
    pub fn enter_current_thread(&self) {
        enter(&self.name);
    }

    /// Runs `f` on a new thread inside the namespace.
    pub fn spawn<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> JoinHandle<T> {
        let name = self.name.clone();
        std::thread::spawn(move || {
            enter(&name);
            f()
        })
    }
}

fn enter(name: &str) {
    let file = std::fs::File::open(Path::new("/run/netns").join(name)).expect("namespace file");
    rustix::thread::move_into_link_name_space(
        std::os::fd::AsFd::as_fd(&file),
        Some(rustix::thread::LinkNameSpaceType::Network),
    )
    .expect("setns");
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stderr(Stdio::null())
            .status();
    }
}

/// Two namespaces joined by a veth pair with addresses.
#[derive(Debug)]
pub struct Pair {
    pub server: Netns,
    pub client: Netns,
    /// The veth end in the server namespace (capture here).
    pub server_if: String,
    pub client_if: String,
    pub server_ip: Ipv4Addr,
    pub client_ip: Ipv4Addr,
    /// IPv6 addresses of the same ends, from 2001:2::/48 (RFC 5180,
    /// benchmarking), without duplicate address detection.
    pub server_ip6: Ipv6Addr,
    pub client_ip6: Ipv6Addr,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

impl Pair {
    /// A new linked pair with names unique to this process and call.
    pub fn new() -> Pair {
        let pair = Pair::unlinked();
        pair.link();
        pair
    }

    /// The two namespaces without the veth pair yet: [`Pair::link`]
    /// creates it (for tests of interfaces that appear later).
    pub fn unlinked() -> Pair {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let tag = format!("st{}x{n}", std::process::id() % 100_000);
        let subnet = (std::process::id() as u8).wrapping_add(n as u8);
        Pair {
            server: Netns::create(format!("{tag}-s")),
            client: Netns::create(format!("{tag}-c")),
            server_if: format!("{tag}s"),
            client_if: format!("{tag}c"),
            server_ip: Ipv4Addr::new(198, 18, subnet, 1),
            client_ip: Ipv4Addr::new(198, 18, subnet, 2),
            server_ip6: Ipv6Addr::new(0x2001, 2, 0, u16::from(subnet), 0, 0, 0, 1),
            client_ip6: Ipv6Addr::new(0x2001, 2, 0, u16::from(subnet), 0, 0, 0, 2),
        }
    }

    /// Creates the veth pair and gives both ends their addresses.
    pub fn link(&self) {
        ip(&[
            "link",
            "add",
            &self.server_if,
            "netns",
            &self.server.name,
            "type",
            "veth",
            "peer",
            "name",
            &self.client_if,
            "netns",
            &self.client.name,
        ]);
        for (ns, ifname, v4, v6) in [
            (
                &self.server,
                &self.server_if,
                self.server_ip,
                self.server_ip6,
            ),
            (
                &self.client,
                &self.client_if,
                self.client_ip,
                self.client_ip6,
            ),
        ] {
            let dev = ["dev", ifname.as_str()];
            ip(&[
                &["-n", &ns.name, "addr", "add", &format!("{v4}/24")][..],
                &dev,
            ]
            .concat());
            ip(&[
                &["-n", &ns.name, "-6", "addr", "add", &format!("{v6}/64")][..],
                &dev,
                &["nodad"],
            ]
            .concat());
            ip(&["-n", &ns.name, "link", "set", ifname, "up"]);
        }
    }
}

/// A background process whose stderr is collected line by line; killed on
/// drop if still running.
pub struct Daemon {
    pub name: String,
    child: Option<Child>,
    stderr: Arc<Mutex<String>>,
    stderr_reader: Option<JoinHandle<()>>,
    stdout_reader: Option<JoinHandle<Vec<u8>>>,
}

impl Daemon {
    /// Starts `cmd` with stdout and stderr captured.
    pub fn spawn(name: &str, mut cmd: Command) -> Daemon {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{name}: cannot start: {e}"));
        let stderr = Arc::new(Mutex::new(String::new()));
        let pipe = child.stderr.take().expect("stderr piped");
        let sink = Arc::clone(&stderr);
        let stderr_reader = std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                let mut s = sink.lock().expect("lock");
                s.push_str(&line);
                s.push('\n');
            }
        });
        let mut out = child.stdout.take().expect("stdout piped");
        let stdout_reader = std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = out.read_to_end(&mut buf);
            buf
        });
        Daemon {
            name: name.to_owned(),
            child: Some(child),
            stderr,
            stderr_reader: Some(stderr_reader),
            stdout_reader: Some(stdout_reader),
        }
    }

    /// The process id (of `ip netns exec`, which execs the program).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Standard error so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().expect("lock").clone()
    }

    /// Waits until standard error contains `needle`; panics after `timeout`
    /// or if the process exits first.
    pub fn wait_for_stderr(&mut self, needle: &str, timeout: Duration) {
        let start = Instant::now();
        loop {
            if self.stderr().contains(needle) {
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "{} exited ({status}) before printing {needle:?}: {}",
                    self.name,
                    self.stderr()
                );
            }
            assert!(
                start.elapsed() < timeout,
                "{} did not print {needle:?} within {timeout:?}: {}",
                self.name,
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `signal` to the process.
    pub fn signal(&self, signal: rustix::process::Signal) {
        let child = self.child.as_ref().expect("running");
        rustix::process::kill_process(rustix::process::Pid::from_child(child), signal)
            .expect("kill");
    }

    /// Waits for the exit (at most `timeout`, then kills) and returns the
    /// status, stdout and the whole stderr.
    pub fn wait(mut self, timeout: Duration) -> Output {
        let mut child = self.child.take().expect("running");
        let start = Instant::now();
        let status: ExitStatus = loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                break status;
            }
            if start.elapsed() > timeout {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{} did not exit within {timeout:?}: {}",
                    self.name,
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let stdout = self
            .stdout_reader
            .take()
            .map(|h| h.join().expect("stdout reader"))
            .unwrap_or_default();
        if let Some(h) = self.stderr_reader.take() {
            let _ = h.join();
        }
        Output {
            status,
            stdout,
            stderr: self.stderr().into_bytes(),
        }
    }

    /// SIGTERM, then [`Daemon::wait`].
    pub fn terminate(self, timeout: Duration) -> Output {
        self.signal(rustix::process::Signal::TERM);
        self.wait(timeout)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A per-test scratch directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(test: &str) -> TempDir {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("shadowtap-{test}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Three namespaces as on a Kubernetes node: two "pods", each with an
/// `eth0` whose veth peer is in a "node" namespace that routes between them
/// (forwarding on, the pods' default routes through it).
///
/// ```text
///  netns <tag>-c (client pod)       netns <tag>-n (node)                   netns <tag>-s (server pod)
///  eth0 198.19.N.2/30 ◄────► <tag>a 198.19.N.1/30  <tag>b 198.19.N.5/30 ◄────► eth0 198.19.N.6/30
/// ```
#[derive(Debug)]
pub struct Routed {
    pub client: Netns,
    pub node: Netns,
    pub server: Netns,
    /// The node's veth toward the client pod.
    pub client_side_if: String,
    /// The node's veth toward the server pod.
    pub server_side_if: String,
    pub client_ip: Ipv4Addr,
    pub server_ip: Ipv4Addr,
}

impl Routed {
    pub fn new() -> Routed {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let tag = format!("st{}x{n}", std::process::id() % 100_000);
        let subnet = (std::process::id() as u8).wrapping_add(n as u8);
        let at = |host: u8| Ipv4Addr::new(198, 19, subnet, host);
        let net = Routed {
            client: Netns::create(format!("{tag}-c")),
            node: Netns::create(format!("{tag}-n")),
            server: Netns::create(format!("{tag}-s")),
            client_side_if: format!("{tag}a"),
            server_side_if: format!("{tag}b"),
            client_ip: at(2),
            server_ip: at(6),
        };
        for (pod, node_if, node_ip, pod_ip) in [
            (&net.client, &net.client_side_if, at(1), at(2)),
            (&net.server, &net.server_side_if, at(5), at(6)),
        ] {
            ip(&[
                "link",
                "add",
                node_if,
                "netns",
                &net.node.name,
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                &pod.name,
            ]);
            ip(&[
                "-n",
                &net.node.name,
                "addr",
                "add",
                &format!("{node_ip}/30"),
                "dev",
                node_if,
            ]);
            ip(&["-n", &net.node.name, "link", "set", node_if, "up"]);
            ip(&[
                "-n",
                &pod.name,
                "addr",
                "add",
                &format!("{pod_ip}/30"),
                "dev",
                "eth0",
            ]);
            ip(&["-n", &pod.name, "link", "set", "eth0", "up"]);
            ip(&[
                "-n",
                &pod.name,
                "route",
                "add",
                "default",
                "via",
                &node_ip.to_string(),
            ]);
        }
        let forwarding = net
            .node
            .command("sh")
            .args(["-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"])
            .status()
            .expect("sh runs");
        assert!(forwarding.success(), "ip_forward in {}", net.node.name);
        net
    }

    /// A `--follow` pattern for both of the node's veths.
    pub fn node_ifs_pattern(&self) -> String {
        format!("{}?", &self.client_side_if[..self.client_side_if.len() - 1])
    }
}
