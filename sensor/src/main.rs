//! `shadowtap-sensor`: reads captures, writes privacy-safe HTTP exchange records.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, Parser};

use shadowtap_sensor::memory::MemoryLimit;
use shadowtap_sensor::runtime::live::{LiveOptions, DEFAULT_STATS_INTERVAL};
use shadowtap_sensor::runtime::output::{OutputLimits, OUTPUT_QUEUE_RECORDS};
use shadowtap_sensor::runtime::{self, Options, Outcome};

/// Many small, short-lived allocations per HTTP message (header names and
/// values): mimalloc serves them far faster than the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Reads packet captures, or captures live, and writes one JSON exchange
/// record per HTTP request/response pair (JSON Lines). Header values,
/// cookies, tokens, query values and body values never appear in the output.
///
/// Live capture comes in two kinds: libpcap (`-i`; needs a build with the
/// `libpcap` feature and CAP_NET_RAW) and eBPF (`--ebpf -i`; TC classifiers,
/// needs the programs built in by `cargo xtask build-ebpf` and CAP_BPF,
/// CAP_PERFMON, CAP_NET_ADMIN). Either runs until SIGINT/SIGTERM,
/// `--duration` or `--count`, then flushes every exchange and prints a summary.
///
/// Exit status: 0 when every capture was read to its end (or a live capture
/// stopped as asked); 1 on a usage error or when an input, an interface or
/// the output could not be opened, read or written; 3 when a capture was
/// not a capture, or truncated or corrupt (every packet before the damage
/// was still processed and written).
#[derive(Debug, Parser)]
#[command(name = "shadowtap-sensor", version, about, long_about)]
#[command(group(
    clap::ArgGroup::new("source")
        .required(true)
        .multiple(true)
        .args(["read", "interface", "ebpf"])
))]
struct Cli {
    /// Read packets from capture FILE (pcap or pcapng, also gzip-compressed;
    /// `-` is standard input). Repeat, or list several, to read files in order.
    #[arg(short = 'r', value_name = "FILE", num_args = 1.., action = clap::ArgAction::Append)]
    read: Vec<PathBuf>,

    /// Capture live on IFACE (libpcap: `any` is every interface, as Linux
    /// SLL2). Repeat to capture on several at once.
    #[arg(short = 'i', long = "interface", value_name = "IFACE", action = clap::ArgAction::Append, conflicts_with = "read")]
    interface: Vec<String>,

    /// Capture with eBPF TC classifiers on the interfaces of -i and
    /// --follow instead of libpcap.
    #[arg(long, conflicts_with = "read")]
    ebpf: bool,

    /// eBPF: TCP ports to capture (e.g. 80,8080). Default: every port,
    /// keeping the connections whose first payload bytes look like HTTP/1.x.
    #[arg(long, value_name = "PORT,...", value_delimiter = ',')]
    ports: Vec<u16>,

    /// eBPF, all ports: keep only the connections whose server is on the
    /// far side of the interface (a request seen going out through it, a
    /// response coming in). On pods' host-side veths that is the pods' own
    /// servers: each exchange between two pods is then recorded once, at
    /// the server's node, instead of at both ends.
    #[arg(long, conflicts_with = "ports")]
    server_side: bool,

    /// eBPF: also attach to interfaces whose name matches PATTERN (`*` and
    /// `?` wildcards, e.g. 'veth*'), now and as they appear. Repeatable.
    #[arg(long, value_name = "PATTERN")]
    follow: Vec<String>,

    /// Live: a tcpdump-style filter expression (pcap-filter(7)); the words
    /// are joined with spaces, as tcpdump does.
    #[arg(value_name = "FILTER", trailing_var_arg = true)]
    filter: Vec<String>,

    /// Live: bytes kept of each frame (tcpdump's -s; default 262144).
    #[arg(short = 's', value_name = "SNAPLEN")]
    snaplen: Option<u32>,

    /// Live: kernel capture buffer per interface in KiB (tcpdump's -B;
    /// default 32768).
    #[arg(short = 'B', value_name = "KIB")]
    buffer_kib: Option<u32>,

    /// Live: don't put the interfaces into promiscuous mode (tcpdump's -p).
    #[arg(short = 'p', long = "no-promiscuous-mode")]
    no_promiscuous: bool,

    /// Live: stop after this long: seconds (decimals allowed), or with a
    /// unit: 500ms, 30s, 5m, 2h.
    #[arg(long, value_name = "DURATION", value_parser = parse_secs)]
    duration: Option<Duration>,

    /// Live: stop once N exchange records have been written (exactly N are
    /// written, unless something else stops the capture first). Counts
    /// records, not packets: that is what this tool produces.
    #[arg(long, value_name = "N")]
    count: Option<u64>,

    /// Live: print a line of counters (with kernel drops) on standard error
    /// every SECS seconds (default 10); 0 turns it off.
    #[arg(long, value_name = "SECS", value_parser = parse_secs_or_zero)]
    stats_interval: Option<Duration>,

    /// Live: records waiting for the output at most (also at most 8 MiB of
    /// them). When the output does not take records as fast as they come
    /// (a full pipe, a stalled log shipper), the capture goes on and the
    /// newest records are dropped and counted (`output_queue_full`).
    #[arg(long, value_name = "RECORDS", value_parser = clap::value_parser!(u64).range(1..))]
    output_queue: Option<u64>,

    /// Write exchange records to OUT as JSON Lines (`-` is standard output, the default).
    #[arg(short = 'w', value_name = "OUT", default_value = "-")]
    write: PathBuf,

    /// Also write every counter, the run time and peak memory as JSON to PATH.
    #[arg(long, value_name = "PATH")]
    stats_json: Option<PathBuf>,

    /// Key for principal fingerprints (a file of at least 16 bytes). Use the
    /// same key across sensors of a deployment to count callers across them.
    /// Without it a random key is used and fingerprints only compare within
    /// one run.
    #[arg(long, value_name = "PATH", env = "SHADOWTAP_FINGERPRINT_KEY_FILE")]
    fingerprint_key_file: Option<PathBuf>,

    /// No progress bar, no counter lines and no summary on standard error.
    #[arg(short = 'q', long)]
    quiet: bool,

    /// Memory the sensor may use: the caps on flows, HTTP state,
    /// out-of-order segments and fragments are lowered to fit 50 % of it
    /// less 32 MiB.
    /// `auto` reads the cgroup's memory.max (a container's limit); `none`
    /// keeps the default caps; or a size such as 512Mi, 1Gi, 500M.
    #[arg(
        long,
        value_name = "SIZE|auto|none",
        default_value = "auto",
        env = "SHADOWTAP_MEMORY_LIMIT"
    )]
    memory_limit: MemoryLimit,
}

/// `30`, `2.5`, `500ms`, `30s`, `5m`, `2h`.
fn parse_secs_or_zero(s: &str) -> Result<Duration, String> {
    let split = s.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let scale = match unit {
        "" | "s" => 1.0,
        "ms" => 1e-3,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return Err(format!("`{s}`: unknown unit `{unit}` (ms, s, m, h)")),
    };
    let n: f64 = number
        .parse()
        .map_err(|_| format!("`{s}` is not a duration (e.g. 30, 2.5, 500ms, 5m)"))?;
    Duration::try_from_secs_f64(n * scale).map_err(|_| format!("`{s}` is not a usable duration"))
}

fn parse_secs(s: &str) -> Result<Duration, String> {
    match parse_secs_or_zero(s)? {
        d if d.is_zero() => Err("must be more than 0 seconds".to_owned()),
        d => Ok(d),
    }
}

impl Cli {
    fn is_live(&self) -> bool {
        self.ebpf || !self.interface.is_empty()
    }

    /// The eBPF-only options given without `--ebpf`, or the libpcap-only
    /// ones given with it.
    fn misplaced_source_options(&self) -> Option<String> {
        if self.ebpf {
            let pcap: Vec<&str> = [
                (!self.filter.is_empty(), "FILTER"),
                (self.snaplen.is_some(), "-s"),
                (self.buffer_kib.is_some(), "-B"),
                (self.no_promiscuous, "-p"),
            ]
            .into_iter()
            .filter_map(|(given, name)| given.then_some(name))
            .collect();
            (!pcap.is_empty()).then(|| {
                format!(
                    "{} only {} to libpcap capture (without --ebpf)",
                    pcap.join(", "),
                    verb(&pcap, "applies", "apply")
                )
            })
        } else {
            let ebpf: Vec<&str> = [
                (!self.ports.is_empty(), "--ports"),
                (!self.follow.is_empty(), "--follow"),
                (self.server_side, "--server-side"),
            ]
            .into_iter()
            .filter_map(|(given, name)| given.then_some(name))
            .collect();
            (!ebpf.is_empty()).then(|| {
                format!(
                    "{} {} --ebpf",
                    ebpf.join(", "),
                    verb(&ebpf, "needs", "need")
                )
            })
        }
    }

    /// The live-only options given without `-i` or `--ebpf` (clap's
    /// `requires` does not hold here, so this is checked by hand).
    fn live_only_options(&self) -> Vec<&'static str> {
        [
            (!self.filter.is_empty(), "FILTER"),
            (self.snaplen.is_some(), "-s"),
            (self.buffer_kib.is_some(), "-B"),
            (self.no_promiscuous, "-p"),
            (self.duration.is_some(), "--duration"),
            (self.count.is_some(), "--count"),
            (self.stats_interval.is_some(), "--stats-interval"),
            (self.output_queue.is_some(), "--output-queue"),
        ]
        .into_iter()
        .filter_map(|(given, name)| given.then_some(name))
        .collect()
    }
}

/// The verb's form for a list of `names`: `one` for a single name.
fn verb<'a>(names: &[&str], one: &'a str, several: &'a str) -> &'a str {
    if names.len() == 1 {
        one
    } else {
        several
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(message) = cli.misplaced_source_options() {
        Cli::command()
            .error(clap::error::ErrorKind::ArgumentConflict, message)
            .exit();
    }
    if !cli.is_live() {
        let given = cli.live_only_options();
        if !given.is_empty() {
            Cli::command()
                .error(
                    clap::error::ErrorKind::ArgumentConflict,
                    format!(
                        "{} only {} to live capture (-i or --ebpf)",
                        given.join(", "),
                        verb(&given, "applies", "apply")
                    ),
                )
                .exit();
        }
    }
    runtime::init_logging();
    let result = if cli.ebpf {
        live_ebpf(cli)
    } else if cli.interface.is_empty() {
        let options = Options {
            inputs: cli.read,
            output: cli.write,
            stats_json: cli.stats_json,
            fingerprint_key_file: cli.fingerprint_key_file,
            quiet: cli.quiet,
            memory_limit: cli.memory_limit,
        };
        runtime::run(&options)
    } else {
        live(cli)
    };
    match result {
        Ok(outcome) if outcome.unreadable_inputs > 0 => ExitCode::from(1),
        Ok(outcome) if outcome.damaged_inputs > 0 => ExitCode::from(3),
        Ok(_) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("shadowtap-sensor: {error:#}");
            ExitCode::from(1)
        }
    }
}

fn live_options(cli: &Cli) -> LiveOptions {
    LiveOptions {
        output: cli.write.clone(),
        stats_json: cli.stats_json.clone(),
        fingerprint_key_file: cli.fingerprint_key_file.clone(),
        quiet: cli.quiet,
        duration: cli.duration,
        count: cli.count,
        stats_interval: Some(cli.stats_interval.unwrap_or(DEFAULT_STATS_INTERVAL))
            .filter(|d| !d.is_zero()),
        memory_limit: cli.memory_limit,
        output_limits: OutputLimits {
            records: cli.output_queue.map_or(OUTPUT_QUEUE_RECORDS, |n| {
                usize::try_from(n).unwrap_or(usize::MAX)
            }),
            ..OutputLimits::default()
        },
    }
}

/// `--ebpf`: the TC classifiers' ring buffer through the live runtime.
fn live_ebpf(cli: Cli) -> anyhow::Result<Outcome> {
    use shadowtap_sensor::capture::ebpf::{EbpfConfig, EbpfSource};

    let options = live_options(&cli);
    let config = EbpfConfig {
        interfaces: cli.interface,
        follow: cli.follow,
        ports: cli.ports,
        server_side: cli.server_side,
    };
    let source = EbpfSource::open(&config)?;
    let mut on = source.interfaces();
    on.extend(config.follow.iter().map(|p| format!("{p} (followed)")));
    let what = format!(
        "{} with eBPF ({})",
        on.join(", "),
        if config.server_side {
            "all ports, HTTP detection, servers on the far side only".to_owned()
        } else if config.ports.is_empty() {
            "all ports, HTTP detection".to_owned()
        } else {
            format!("ports {:?}", config.ports)
        }
    );
    runtime::live::run_live(Box::new(source), &what, &options)
}

#[cfg(feature = "libpcap")]
fn live(cli: Cli) -> anyhow::Result<Outcome> {
    use shadowtap_sensor::capture::libpcap::{
        LiveConfig, PcapSource, DEFAULT_BUFFER_KIB, DEFAULT_SNAPLEN,
    };

    let options = live_options(&cli);
    let config = LiveConfig {
        filter: Some(cli.filter.join(" ")).filter(|f| !f.trim().is_empty()),
        snaplen: cli.snaplen.unwrap_or(DEFAULT_SNAPLEN),
        buffer_kib: cli.buffer_kib.unwrap_or(DEFAULT_BUFFER_KIB),
        promiscuous: !cli.no_promiscuous,
        interfaces: cli.interface,
    };
    let source = PcapSource::open(&config)?;
    let what = source.describe();
    runtime::live::run_live(Box::new(source), &what, &options)
}

#[cfg(not(feature = "libpcap"))]
fn live(cli: Cli) -> anyhow::Result<Outcome> {
    let _ = live_options(&cli);
    anyhow::bail!(
        "live capture (-i) is not in this build: build with the libpcap feature, e.g. \
         `cargo build --release -p shadowtap-sensor --features libpcap` (needs libpcap's \
         headers: apt-get install libpcap-dev)"
    )
}
