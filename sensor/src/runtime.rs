//! The offline runtime: capture files → engine → JSON Lines.

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use shadowtap_proto::engine::{Counters, Engine, EngineConfig};
use shadowtap_proto::record::{BodyInfo, FingerprintKey, MessageInfo, Shape};
use shadowtap_proto::ExchangeRecord;

use crate::capture::{CaptureSource, ErrorKind, FileSource};
use crate::summary;

/// What the command line asked for.
#[derive(Clone, Debug)]
pub struct Options {
    pub inputs: Vec<PathBuf>,
    pub output: PathBuf,
    pub stats_json: Option<PathBuf>,
    pub fingerprint_key_file: Option<PathBuf>,
    pub quiet: bool,
}

/// How a run ended.
#[derive(Clone, Debug, Serialize)]
pub struct Outcome {
    /// Inputs that could not be opened or read at all.
    pub unreadable_inputs: usize,
    /// Inputs that were truncated or corrupt (read up to the damage).
    pub damaged_inputs: usize,
    /// One line per damaged or unreadable input.
    pub input_errors: Vec<String>,
    pub elapsed_s: f64,
    pub peak_rss_bytes: Option<u64>,
    /// False when no key was given and fingerprints use a per-run key.
    pub fingerprint_key_persistent: bool,
    #[serde(flatten)]
    pub counters: Counters,
}

/// Reads every input in order through one engine and writes the records.
pub fn run(options: &Options) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let (key, persistent) = load_key(options.fingerprint_key_file.as_deref())?;
    let mut engine = Engine::new(EngineConfig::new(key));
    let mut writer = RecordWriter::open(&options.output)?;
    let mut records = Vec::new();
    let mut damaged = 0;
    let mut unreadable = 0;
    let mut input_errors = Vec::new();

    for input in &options.inputs {
        let mut source = match FileSource::open(input) {
            Ok(s) => s,
            Err(error) => {
                // A file that can't be opened or isn't a capture: report it, go on.
                eprintln!("shadowtap-sensor: {error}");
                input_errors.push(error.to_string());
                match error.kind() {
                    ErrorKind::Io => unreadable += 1,
                    _ => damaged += 1,
                }
                continue;
            }
        };
        let bar = progress_bar(options.quiet, source.progress().1);
        let mut since_tick = 0u32;
        loop {
            match source.next_packet() {
                Ok(Some(pkt)) => {
                    engine.on_packet(pkt.ts, pkt.link_type, pkt.data, &mut records);
                    if !records.is_empty() {
                        writer.write_all(&records)?;
                        records.clear();
                    }
                    since_tick += 1;
                    if since_tick == 4096 {
                        since_tick = 0;
                        if let Some(bar) = &bar {
                            bar.set_position(source.progress().0);
                        }
                    }
                }
                Ok(None) => break,
                Err(error) => {
                    // Everything before the damage has been processed.
                    eprintln!("shadowtap-sensor: {error}");
                    input_errors.push(error.to_string());
                    damaged += 1;
                    break;
                }
            }
        }
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
    }
    engine.finish(&mut records);
    writer.write_all(&records)?;
    writer.finish()?;

    let outcome = Outcome {
        unreadable_inputs: unreadable,
        damaged_inputs: damaged,
        input_errors,
        elapsed_s: started.elapsed().as_secs_f64(),
        peak_rss_bytes: peak_rss_bytes(),
        fingerprint_key_persistent: persistent,
        counters: engine.counters(),
    };
    if let Some(path) = &options.stats_json {
        let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
        serde_json::to_writer_pretty(BufWriter::new(file), &outcome)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if !options.quiet {
        eprint!("{}", summary::render(&outcome));
    }
    Ok(outcome)
}

fn progress_bar(quiet: bool, total: Option<u64>) -> Option<ProgressBar> {
    if quiet || !io::stderr().is_terminal() {
        return None;
    }
    let bar = match total {
        Some(total) => ProgressBar::new(total).with_style(
            ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        ),
        None => ProgressBar::new_spinner(),
    };
    Some(bar)
}

/// Loads the fingerprint key, or makes a random one for this run.
fn load_key(path: Option<&Path>) -> anyhow::Result<(FingerprintKey, bool)> {
    if let Some(path) = path {
        let bytes = std::fs::read(path)
            .with_context(|| format!("reading fingerprint key {}", path.display()))?;
        let key = FingerprintKey::from_slice(&bytes).with_context(|| {
            format!(
                "fingerprint key {} is shorter than 16 bytes",
                path.display()
            )
        })?;
        return Ok((key, true));
    }
    let mut bytes = [0u8; 32];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("reading a random fingerprint key from /dev/urandom")?;
    Ok((FingerprintKey::new(bytes), false))
}

/// Peak resident set size of this process (`VmHWM`), where the OS tells it.
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// JSON Lines output: one record per line, nothing else in the stream.
struct RecordWriter {
    out: BufWriter<Box<dyn Write>>,
    name: String,
    /// One serialized line, reused.
    line: Vec<u8>,
}

impl RecordWriter {
    fn open(path: &Path) -> anyhow::Result<Self> {
        let (sink, name): (Box<dyn Write>, String) = if path == Path::new("-") {
            (Box::new(io::stdout().lock()), "standard output".into())
        } else {
            let f = File::create(path).with_context(|| format!("creating {}", path.display()))?;
            (Box::new(f), path.display().to_string())
        };
        Ok(RecordWriter {
            out: BufWriter::with_capacity(1 << 20, sink),
            name,
            line: Vec::with_capacity(1 << 16),
        })
    }

    fn write_all(&mut self, records: &[ExchangeRecord]) -> anyhow::Result<()> {
        for r in records {
            self.line.clear();
            write_record(&mut self.line, r).with_context(|| format!("writing {}", self.name))?;
            self.line.push(b'\n');
            self.out
                .write_all(&self.line)
                .with_context(|| format!("writing {}", self.name))?;
        }
        Ok(())
    }

    fn finish(mut self) -> anyhow::Result<()> {
        self.out
            .flush()
            .with_context(|| format!("writing {}", self.name))
    }
}

/// Appends the JSON of `r` to `out`, byte-identical to
/// `serde_json::to_writer(out, r)`: the record and its messages are written
/// field by field (small fields through serde_json), the body shape, which
/// is most of a line, by hand from static fragments.
fn write_record(out: &mut Vec<u8>, r: &ExchangeRecord) -> serde_json::Result<()> {
    out.extend_from_slice(b"{\"schema\":");
    serde_json::to_writer(&mut *out, &r.schema)?;
    field(out, "ts", &r.ts)?;
    opt_field(out, "latency_us", &r.latency_us)?;
    opt_field(out, "duration_us", &r.duration_us)?;
    field(out, "client", &r.client)?;
    field(out, "server", &r.server)?;
    field(out, "host", &r.host)?;
    field(out, "method", &r.method)?;
    field(out, "path", &r.path)?;
    if !r.query_params.is_empty() {
        field(out, "query_params", &r.query_params)?;
    }
    field(out, "version", &r.version)?;
    opt_field(out, "status", &r.status)?;
    out.extend_from_slice(b",\"request\":");
    write_message(out, &r.request)?;
    if let Some(response) = &r.response {
        out.extend_from_slice(b",\"response\":");
        write_message(out, response)?;
    }
    if !r.interim.is_empty() {
        field(out, "interim", &r.interim)?;
    }
    field(out, "auth", &r.auth)?;
    opt_field(out, "principal", &r.principal)?;
    opt_field(out, "tunnel", &r.tunnel)?;
    field(out, "flags", &r.flags)?;
    if !r.anomalies.is_empty() {
        field(out, "anomalies", &r.anomalies)?;
    }
    out.push(b'}');
    Ok(())
}

/// `,"name":value` (never the first field of an object).
fn field<T: Serialize + ?Sized>(
    out: &mut Vec<u8>,
    name: &str,
    value: &T,
) -> serde_json::Result<()> {
    out.push(b',');
    write_str(out, name)?;
    out.push(b':');
    serde_json::to_writer(&mut *out, value)
}

fn opt_field<T: Serialize>(
    out: &mut Vec<u8>,
    name: &str,
    value: &Option<T>,
) -> serde_json::Result<()> {
    match value {
        Some(v) => field(out, name, v),
        None => Ok(()),
    }
}

fn write_message(out: &mut Vec<u8>, m: &MessageInfo) -> serde_json::Result<()> {
    out.extend_from_slice(b"{\"headers\":");
    serde_json::to_writer(&mut *out, &m.headers)?;
    opt_field(out, "content_type", &m.content_type)?;
    opt_field(out, "content_encoding", &m.content_encoding)?;
    out.extend_from_slice(b",\"body\":");
    write_body(out, &m.body)?;
    out.push(b'}');
    Ok(())
}

fn write_body(out: &mut Vec<u8>, b: &BodyInfo) -> serde_json::Result<()> {
    out.extend_from_slice(b"{\"framing\":");
    serde_json::to_writer(&mut *out, &b.framing)?;
    field(out, "wire_bytes", &b.wire_bytes)?;
    field(out, "bytes", &b.bytes)?;
    opt_field(out, "decoded_bytes", &b.decoded_bytes)?;
    if let Some(shape) = &b.shape {
        out.extend_from_slice(b",\"shape\":");
        write_shape(out, shape)?;
    }
    opt_field(out, "form_keys", &b.form_keys)?;
    if b.sampled {
        out.extend_from_slice(b",\"sampled\":true");
    }
    out.push(b'}');
    Ok(())
}

/// A shape as serde's internally tagged form. Recursion is bounded by the
/// shape's depth (built shapes are at most `MAX_DEPTH` deep).
fn write_shape(out: &mut Vec<u8>, s: &Shape) -> serde_json::Result<()> {
    match s {
        Shape::Null => out.extend_from_slice(br#"{"type":"null"}"#),
        Shape::Boolean => out.extend_from_slice(br#"{"type":"boolean"}"#),
        Shape::Integer => out.extend_from_slice(br#"{"type":"integer"}"#),
        Shape::Number => out.extend_from_slice(br#"{"type":"number"}"#),
        Shape::Any => out.extend_from_slice(br#"{"type":"any"}"#),
        Shape::String { format: None } => out.extend_from_slice(br#"{"type":"string"}"#),
        Shape::String {
            format: Some(format),
        } => {
            out.extend_from_slice(br#"{"type":"string","format":"#);
            write_str(out, format)?;
            out.push(b'}');
        }
        Shape::Array { items } => {
            out.extend_from_slice(br#"{"type":"array""#);
            if let Some(items) = items {
                out.extend_from_slice(br#","items":"#);
                write_shape(out, items)?;
            }
            out.push(b'}');
        }
        Shape::Object { fields, truncated } => {
            out.extend_from_slice(br#"{"type":"object","fields":{"#);
            for (i, (key, value)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(out, key)?;
                out.push(b':');
                write_shape(out, value)?;
            }
            out.push(b'}');
            if *truncated {
                out.extend_from_slice(br#","truncated":true"#);
            }
            out.push(b'}');
        }
    }
    Ok(())
}

/// A JSON string: copied as is when serde_json would not escape anything.
fn write_str(out: &mut Vec<u8>, s: &str) -> serde_json::Result<()> {
    if s.bytes().all(|c| c >= 0x20 && c != b'"' && c != b'\\') {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
        Ok(())
    } else {
        serde_json::to_writer(&mut *out, s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_written_json_matches_serde() {
        let lines = [
            r#"{"schema":1,"ts":"2023-11-14T22:13:20.002417000Z","latency_us":1,"duration_us":1,"client":"10.1.65.131:46585","server":"[2001:db8::1]:80","host":"api11.internal.example.com","method":"GET","path":"/v1/p\"l\u0001ans/\u00e9","query_params":["a","{key}"],"version":"1.1","status":401,"request":{"headers":["host","authorization"],"body":{"framing":"none","wire_bytes":0,"bytes":0,"decoded_bytes":0}},"response":{"headers":["date","content-type"],"content_type":"application/json","content_encoding":"gzip","body":{"framing":"chunked","wire_bytes":35,"bytes":35,"shape":{"type":"object","fields":{"a\"b\n":{"type":"array","items":{"type":"object","fields":{"x":{"type":"any"},"y":{"type":"null"}},"truncated":true}},"code":{"type":"integer"},"e":{"type":"array"},"n":{"type":"number"},"ok":{"type":"boolean"},"id":{"type":"string","format":"uuid"},"\u00e9":{"type":"string"}},"truncated":true},"sampled":true}},"interim":[100],"auth":{"scheme":"bearer_jwt","jwt":{"alg":"RS256","iss":"x","aud":["a"],"has_exp":true,"lifetime_s":3600}},"principal":"fa05019f0cce060e15e4e26c5dc7016b","flags":{"gap":true,"truncated":true},"anomalies":["bare_lf"]}"#,
            r#"{"schema":1,"ts":"2023-11-14T22:13:20.001965000Z","client":"10.1.129.146:47824","server":"10.0.0.13:80","host":"h","method":"POST","path":"/","version":"1.0","request":{"headers":[],"content_type":"application/x-www-form-urlencoded","body":{"framing":"content_length","wire_bytes":9,"bytes":9,"decoded_bytes":9,"form_keys":["a","b"],"sampled":true}},"auth":{"scheme":"api_key","key_name":"x-api-key","key_in":"header","cookies":["sid"]},"flags":{"mid_stream":true,"unanswered":true}}"#,
        ];
        for line in lines {
            let r: ExchangeRecord = serde_json::from_str(line).unwrap();
            let want = serde_json::to_vec(&r).unwrap();
            let mut got = Vec::new();
            write_record(&mut got, &r).unwrap();
            assert_eq!(
                String::from_utf8(got).unwrap(),
                String::from_utf8(want).unwrap()
            );
        }
    }
}
