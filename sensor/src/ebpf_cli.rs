//! The `--ebpf` options of `shadowtap-sensor` and their entry point.

use std::process::ExitCode;
use std::time::Duration;

use shadowtap_sensor::capture::ebpf::EbpfConfig;
use shadowtap_sensor::ebpf_run::{self, EbpfOptions};

use crate::Cli;

/// Live capture with eBPF.
#[derive(Debug, clap::Args)]
pub(crate) struct EbpfArgs {
    /// Capture live with eBPF TC classifiers on the interfaces of -i and
    /// --follow instead of reading files (needs root, or CAP_BPF,
    /// CAP_PERFMON and CAP_NET_ADMIN). Stops at SIGINT, SIGTERM or --duration.
    #[arg(long, conflicts_with = "read")]
    pub(crate) ebpf: bool,

    /// Interface to capture on (repeat, or separate with commas).
    #[arg(
        short = 'i',
        long = "interface",
        value_name = "IFACE",
        value_delimiter = ','
    )]
    pub(crate) interfaces: Vec<String>,

    /// TCP ports to capture (e.g. 80,8080). Default: every port, keeping
    /// the connections whose first payload bytes look like HTTP/1.x.
    #[arg(long, value_name = "PORT,...", value_delimiter = ',')]
    pub(crate) ports: Vec<u16>,

    /// Also attach to interfaces whose name matches PATTERN (`*` and `?`
    /// wildcards, e.g. 'veth*'), now and as they appear. Repeatable.
    #[arg(long, value_name = "PATTERN")]
    pub(crate) follow: Vec<String>,

    /// Stop after this long (e.g. 30, 30s, 5m, 2h, 500ms).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub(crate) duration: Option<Duration>,
}

impl EbpfArgs {
    /// Exits with a usage error when live-capture options come without
    /// `--ebpf` (clap's `requires` is satisfied by a flag's default value).
    pub(crate) fn check(&self) {
        let live = !self.interfaces.is_empty()
            || !self.ports.is_empty()
            || !self.follow.is_empty()
            || self.duration.is_some();
        if live && !self.ebpf {
            <Cli as clap::CommandFactory>::command()
                .error(
                    clap::error::ErrorKind::MissingRequiredArgument,
                    "-i, --ports, --follow and --duration need --ebpf",
                )
                .exit();
        }
    }
}

pub(crate) fn run_ebpf(cli: Cli) -> ExitCode {
    let options = EbpfOptions {
        capture: EbpfConfig {
            interfaces: cli.live_ebpf.interfaces,
            follow: cli.live_ebpf.follow,
            ports: cli.live_ebpf.ports,
        },
        duration: cli.live_ebpf.duration,
        output: cli.write,
        stats_json: cli.stats_json,
        fingerprint_key_file: cli.fingerprint_key_file,
        quiet: cli.quiet,
    };
    match ebpf_run::run(&options) {
        Ok(_) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("shadowtap-sensor: {error:#}");
            ExitCode::from(1)
        }
    }
}

/// `30`, `30s`, `5m`, `2h`, `500ms`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = text
        .find(|c: char| !c.is_ascii_digit())
        .map_or((text, ""), |i| text.split_at(i));
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (e.g. 30s, 5m, 500ms)"))?;
    let d = match unit {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        _ => return Err(format!("{text:?}: unknown unit {unit:?} (ms, s, m, h)")),
    };
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert!(parse_duration("x").is_err());
        assert!(parse_duration("3d").is_err());
        assert!(parse_duration("").is_err());
    }
}
