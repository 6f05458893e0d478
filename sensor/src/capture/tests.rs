//! Cross-format tests: robustness on random and mutated input, short reads,
//! I/O errors, opening paths, and the real captures in the shared data set.

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use shadowtap_proto::wire::LinkType;

use super::testutil::{open_with, pcap_file, read_all, Endian, NgWriter, Owned, Rec, XorShift};
use super::*;

fn sample_pcap(e: Endian) -> Vec<u8> {
    let recs: Vec<Rec> = (0..20u32)
        .map(|i| Rec {
            secs: 1_700_000_000 + i,
            frac: i * 7,
            data: vec![i as u8; (i as usize * 37) % 200],
            orig_len: 1000,
        })
        .collect();
    pcap_file(e, e == Endian::Big, 1, &recs)
}

fn sample_pcapng() -> Vec<u8> {
    let mut w = NgWriter::new(Endian::Little);
    w.shb(Endian::Little);
    w.idb(1, Some(9), None);
    w.idb(101, Some(0x80 | 10), Some(3));
    for i in 0..10u32 {
        w.epb(
            i % 2,
            u64::from(i) * 1000,
            &vec![i as u8; (i as usize * 13) % 90],
            90,
        );
    }
    w.block(5, &[0; 16]);
    w.spb(b"spb", 3);
    w.shb(Endian::Big);
    w.idb(113, None, None);
    w.opb(0, 5, b"opb", 3);
    w.epb(0, 6, b"epb", 3);
    w.out
}

/// A reader that returns at most `chunk` bytes per call, with an
/// `Interrupted` error every few calls, like a pipe under signals.
struct Trickle {
    data: Vec<u8>,
    at: usize,
    chunk: usize,
    calls: usize,
}

impl Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.calls += 1;
        if self.calls % 5 == 0 {
            return Err(io::ErrorKind::Interrupted.into());
        }
        let n = buf.len().min(self.chunk).min(self.data.len() - self.at);
        buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// A reader that fails after `ok` bytes.
struct FailAfter {
    data: Vec<u8>,
    at: usize,
    ok: usize,
}

impl Read for FailAfter {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.at >= self.ok {
            return Err(io::Error::other("disk on fire"));
        }
        let n = buf
            .len()
            .min(self.ok - self.at)
            .min(self.data.len() - self.at);
        buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

fn all(bytes: &[u8]) -> (Vec<Owned>, Option<CaptureError>) {
    read_all(&mut open_with(bytes, READ_BUFFER_BYTES).unwrap())
}

#[test]
fn short_reads_give_the_same_packets() {
    for file in [
        sample_pcap(Endian::Little),
        sample_pcap(Endian::Big),
        sample_pcapng(),
    ] {
        let (want, err) = all(&file);
        assert!(err.is_none());
        assert!(want.len() >= 13);
        for chunk in [1, 3, 64, 1000] {
            for buffer in [16, 4096, READ_BUFFER_BYTES] {
                let r = Trickle {
                    data: file.clone(),
                    at: 0,
                    chunk,
                    calls: 0,
                };
                let mut src = FileSource::with_buffer("pipe".into(), Box::new(r), None, buffer)
                    .expect("open");
                let (got, err) = read_all(&mut src);
                assert!(err.is_none(), "{err:?}");
                assert_eq!(got, want, "chunk {chunk} buffer {buffer}");
                assert_eq!(src.progress(), (file.len() as u64, None));
            }
        }
    }
}

#[test]
fn io_errors_are_reported_with_offset() {
    let file = sample_pcap(Endian::Little);
    let r = FailAfter {
        data: file.clone(),
        at: 0,
        ok: 500,
    };
    let mut src = FileSource::with_buffer("x.pcap".into(), Box::new(r), None, 64).unwrap();
    let (pkts, err) = read_all(&mut src);
    assert!(!pkts.is_empty());
    let e = err.unwrap();
    assert_eq!(e.kind(), ErrorKind::Io);
    assert_eq!(e.offset(), 500);
    assert_eq!(
        e.to_string(),
        "x.pcap: I/O error at byte offset 500: disk on fire"
    );
    assert!(std::error::Error::source(&e).is_some());
    // At open.
    let r = FailAfter {
        data: file,
        at: 0,
        ok: 0,
    };
    let e = FileSource::from_reader("x.pcap", Box::new(r), None)
        .err()
        .unwrap();
    assert_eq!(
        (e.kind(), e.offset(), e.path()),
        (ErrorKind::Io, 0, "x.pcap")
    );
}

#[test]
fn open_paths() {
    let dir = std::env::temp_dir().join(format!("shadowtap-capture-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("a.pcap");
    let file = sample_pcap(Endian::Big);
    std::fs::write(&path, &file).unwrap();
    let mut src = FileSource::open(&path).unwrap();
    assert_eq!(src.progress(), (24, Some(file.len() as u64)));
    let (pkts, err) = read_all(&mut src);
    assert_eq!((pkts.len(), err.is_none()), (20, true));
    assert_eq!(src.progress(), (file.len() as u64, Some(file.len() as u64)));
    // Boxed trait objects are sources too.
    let mut boxed: Box<dyn CaptureSource> = Box::new(FileSource::open(&path).unwrap());
    assert_eq!(read_all(&mut boxed).0.len(), 20);

    let missing = dir.join("missing.pcap");
    let e = FileSource::open(&missing).err().unwrap();
    assert_eq!(e.kind(), ErrorKind::Io);
    assert!(e
        .to_string()
        .starts_with(&format!("{}: I/O error", missing.display())));
    let empty = dir.join("empty.pcap");
    std::fs::write(&empty, b"").unwrap();
    let e = FileSource::open(&empty).err().unwrap();
    assert_eq!(
        e.to_string(),
        format!(
            "{}: empty file at byte offset 0: no pcap or pcapng header",
            empty.display()
        )
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn gzip_compressed_files_are_read_through() {
    use flate2::{write::GzEncoder, Compression};
    use std::io::Write;
    let dir = std::env::temp_dir().join(format!("shadowtap-capture-gz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for file in [sample_pcap(Endian::Little), sample_pcapng()] {
        let plain = all(&file).0;
        let mut gz = GzEncoder::new(Vec::new(), Compression::default());
        gz.write_all(&file).unwrap();
        let gz = gz.finish().unwrap();
        let path = dir.join("a.pcap.gz");
        std::fs::write(&path, &gz).unwrap();
        let mut src = FileSource::open(&path).unwrap();
        // The decompressed size is unknown up front.
        assert_eq!(src.progress().1, None);
        let (pkts, err) = read_all(&mut src);
        assert!(err.is_none(), "{err:?}");
        assert_eq!(pkts, plain);

        // Cut inside the deflate stream: the packets before the cut, then
        // one error naming the input as decompressed.
        let cut = dir.join("cut.pcap.gz");
        std::fs::write(&cut, &gz[..gz.len() * 2 / 3]).unwrap();
        let mut src = FileSource::open(&cut).unwrap();
        let (pkts, err) = read_all(&mut src);
        let err = err.expect("a truncated gzip stream is an error");
        assert_eq!(err.path(), format!("{} (gunzipped)", cut.display()));
        assert!(!pkts.is_empty() && pkts.len() < plain.len());
        assert_eq!(pkts[..], plain[..pkts.len()]);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Feeds random buffers, random buffers behind a valid magic, and random
/// mutations of valid files to the reader; returns the bytes fed.
fn fuzz_volume(seed: u64, random_iters: usize, mutated_iters: usize) -> usize {
    let mut rng = XorShift(seed);
    let mut total = 0usize;
    let prefixes: [&[u8]; 5] = [
        &[],
        &[0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0],
        &[0xa1, 0xb2, 0x3c, 0x4d, 0, 2, 0, 4],
        &[
            0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0,
        ],
        &[
            0x0a, 0x0d, 0x0d, 0x0a, 0, 0, 0, 28, 0x1a, 0x2b, 0x3c, 0x4d, 0, 1, 0, 0,
        ],
    ];
    for i in 0..random_iters {
        let mut data = prefixes[i % prefixes.len()].to_vec();
        let len = rng.below(600);
        data.extend((0..len).map(|_| rng.next() as u8));
        total += data.len();
        fuzz_file_reader(&data);
    }
    let valid = [
        sample_pcap(Endian::Little),
        sample_pcap(Endian::Big),
        sample_pcapng(),
    ];
    let interesting: [u32; 8] = [
        0,
        1,
        4,
        12,
        0x7fff_ffff,
        0xffff_fff0,
        MAX_RECORD_BYTES + 1,
        28,
    ];
    for i in 0..mutated_iters {
        let mut data = valid[i % valid.len()].clone();
        for _ in 0..=rng.below(8) {
            let at = rng.below(data.len());
            match rng.below(5) {
                0 => data[at] = rng.next() as u8,
                1 => data[at] ^= 1 << rng.below(8),
                2 => {
                    let v = interesting[rng.below(interesting.len())].to_le_bytes();
                    let end = (at + 4).min(data.len());
                    data[at..end].copy_from_slice(&v[..end - at]);
                }
                3 => {
                    // Duplicate a random span (repeats blocks and records).
                    let len = rng.below(data.len() - at).min(256);
                    let span = data[at..at + len].to_vec();
                    let to = rng.below(data.len());
                    data.splice(to..to, span);
                }
                _ => data.truncate(at.max(1)),
            }
        }
        total += data.len();
        fuzz_file_reader(&data);
    }
    total
}

/// Random and mutated input: never a panic, always an end (S2).
#[test]
fn random_and_mutated_input_never_panics() {
    assert!(fuzz_volume(0x5eed_cafe_f00d_0001, 3000, 6000) > 1_000_000);
}

/// The full S2 volume (at least 64 MiB of random and mutated bytes); run with
/// `cargo test --release -p shadowtap-sensor -- --ignored`.
#[test]
#[ignore = "slow in debug builds; run with --release -- --ignored"]
fn random_and_mutated_input_64_mib() {
    let mut total = 0;
    let mut seed = 1;
    while total < 64 << 20 {
        total += fuzz_volume(seed, 10_000, 30_000);
        seed += 1;
    }
}

/// Where the shared test captures live, if this checkout has them.
fn shared_data() -> Option<PathBuf> {
    let rel = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/pcapplusplus");
    [rel, PathBuf::from("/work/shared/data/pcapplusplus")]
        .into_iter()
        .find(|p| p.is_dir())
}

fn captures_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            captures_under(&p, out);
        } else if p.extension().is_some_and(|x| x == "pcap" || x == "pcapng") {
            out.push(p);
        }
    }
}

#[test]
fn real_captures_match_manifest_counts() {
    let Some(dir) = shared_data() else { return };
    let manifest = std::fs::read_to_string(dir.join("MANIFEST.md")).unwrap_or_default();
    let mut expected = std::collections::HashMap::new();
    for line in manifest.lines() {
        let cols: Vec<&str> = line.split('|').map(str::trim).collect();
        let (Some(file), Some(format)) = (cols.get(1), cols.get(4)) else {
            continue;
        };
        let Some(n) = format
            .strip_suffix(" pkts")
            .and_then(|f| f.rsplit(' ').next())
        else {
            continue;
        };
        if let Ok(n) = n.parse::<usize>() {
            expected.insert(file.to_string(), n);
        }
    }
    let mut files = Vec::new();
    captures_under(&dir, &mut files);
    let mut checked = 0;
    for path in files {
        let rel = path
            .strip_prefix(&dir)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let mut src = FileSource::open(&path).unwrap_or_else(|e| panic!("{e}"));
        let mut count = 0usize;
        let mut link_types = std::collections::BTreeSet::new();
        while let Some(p) = src.next_packet().unwrap_or_else(|e| panic!("{e}")) {
            count += 1;
            link_types.insert(p.link_type.0);
        }
        if let Some(&want) = expected.get(&rel) {
            assert_eq!(count, want, "{rel}");
            checked += 1;
        }
        if rel.ends_with("four_ipv6_http_streams.pcap") {
            let raw = [
                LinkType::RAW.0,
                LinkType::RAW_DLT12.0,
                LinkType::RAW_DLT14.0,
            ];
            assert!(link_types.iter().all(|l| raw.contains(l)), "{link_types:?}");
        }
        if rel.ends_with("HttpMalformedResponse.pcapng") {
            assert_eq!(src.format(), FileFormat::PcapNg);
        }
    }
    assert_eq!(
        checked,
        expected.len(),
        "every manifest capture was found and checked"
    );
}

#[test]
fn file_source_is_send() {
    fn assert_send<T: Send>() {}
    assert_send::<FileSource>();
    assert_send::<CaptureError>();
}
