//! Content decoding of a body sample, with a hard output cap.
//!
//! A 4 KiB gzip sample can inflate to gigabytes (a decompression bomb), so
//! output is never read past [`MAX_DECODED_BYTES`]. A sample that is only a
//! prefix of the body decodes to a prefix of the content: still good for
//! shape inference.

use std::borrow::Cow;
use std::io::Read;

use flate2::bufread::{DeflateDecoder, MultiGzDecoder, ZlibDecoder};

/// Most decoded bytes produced from one body sample.
pub const MAX_DECODED_BYTES: usize = 64 * 1024;

/// A `Content-Encoding` as far as decoding is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Coding {
    /// No coding, or only `identity`.
    Identity,
    Gzip,
    Deflate,
    /// `br`, `zstd`, `compress`, stacked codings, anything else: not decoded.
    Unsupported,
}

impl Coding {
    /// From the lower-cased coding list (`"gzip"`, `"identity, gzip"`).
    pub(crate) fn from_list(list: Option<&str>) -> Coding {
        let mut coding = Coding::Identity;
        for c in list.unwrap_or("").split(',').map(str::trim) {
            let this = match c {
                "" | "identity" => continue,
                "gzip" | "x-gzip" => Coding::Gzip,
                "deflate" => Coding::Deflate,
                _ => return Coding::Unsupported,
            };
            if coding != Coding::Identity {
                return Coding::Unsupported; // stacked codings are not decoded
            }
            coding = this;
        }
        coding
    }
}

/// Decoded sample bytes.
#[derive(Debug)]
pub(crate) struct Decoded<'a> {
    pub(crate) data: Cow<'a, [u8]>,
    /// The encoded stream ended cleanly within the cap: `data` is everything
    /// the input encodes.
    pub(crate) finished: bool,
}

/// Decodes `sample` with `coding`; `None` for unsupported codings.
pub(crate) fn decode(sample: &[u8], coding: Coding) -> Option<Decoded<'_>> {
    match coding {
        Coding::Identity => Some(Decoded {
            data: Cow::Borrowed(sample),
            finished: true,
        }),
        Coding::Gzip => Some(read_capped(MultiGzDecoder::new(sample))),
        Coding::Deflate if has_zlib_header(sample) => {
            let z = read_capped(ZlibDecoder::new(sample));
            if z.finished || !z.data.is_empty() {
                Some(z)
            } else {
                Some(read_capped(DeflateDecoder::new(sample)))
            }
        }
        Coding::Deflate => Some(read_capped(DeflateDecoder::new(sample))),
        Coding::Unsupported => None,
    }
}

/// Decoded size of `sample` without keeping the output: `None` for
/// unsupported codings, errors, truncated streams, or more than
/// [`MAX_DECODED_BYTES`].
pub(crate) fn decoded_len(sample: &[u8], coding: Coding) -> Option<u64> {
    fn count<R: Read>(r: R) -> Option<u64> {
        let n = std::io::copy(
            &mut r.take(MAX_DECODED_BYTES as u64 + 1),
            &mut std::io::sink(),
        );
        n.ok().filter(|&n| n <= MAX_DECODED_BYTES as u64)
    }
    match coding {
        Coding::Identity => Some(sample.len() as u64),
        Coding::Gzip => count(MultiGzDecoder::new(sample)),
        Coding::Deflate if has_zlib_header(sample) => {
            count(ZlibDecoder::new(sample)).or_else(|| count(DeflateDecoder::new(sample)))
        }
        Coding::Deflate => count(DeflateDecoder::new(sample)),
        Coding::Unsupported => None,
    }
}

/// RFC 1950 header check: CM = 8 and the FCHECK checksum.
fn has_zlib_header(b: &[u8]) -> bool {
    match b {
        [cmf, flg, ..] => cmf & 0x0f == 8 && (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0,
        _ => false,
    }
}

/// Reads at most [`MAX_DECODED_BYTES`]; bytes decoded before an error (a
/// truncated stream) are kept.
fn read_capped<R: Read>(r: R) -> Decoded<'static> {
    let mut out = Vec::new();
    let mut limited = r.take(MAX_DECODED_BYTES as u64 + 1);
    let ok = limited.read_to_end(&mut out).is_ok();
    let finished = ok && out.len() <= MAX_DECODED_BYTES;
    out.truncate(MAX_DECODED_BYTES);
    Decoded {
        data: Cow::Owned(out),
        finished,
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::write::{DeflateEncoder, GzEncoder, ZlibEncoder};
    use flate2::Compression;

    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn codings() {
        let cases: &[(Option<&str>, Coding)] = &[
            (None, Coding::Identity),
            (Some("identity"), Coding::Identity),
            (Some("gzip"), Coding::Gzip),
            (Some("x-gzip"), Coding::Gzip),
            (Some("identity, gzip"), Coding::Gzip),
            (Some("deflate"), Coding::Deflate),
            (Some("br"), Coding::Unsupported),
            (Some("gzip, gzip"), Coding::Unsupported),
        ];
        for (list, want) in cases {
            assert_eq!(Coding::from_list(*list), *want, "{list:?}");
        }
    }

    #[test]
    fn decodes_gzip_zlib_and_raw_deflate() {
        let data = br#"{"a":1}"#;
        let gz = gzip(data);
        let d = decode(&gz, Coding::Gzip).unwrap();
        assert_eq!((&*d.data, d.finished), (&data[..], true));

        let mut z = ZlibEncoder::new(Vec::new(), Compression::default());
        z.write_all(data).unwrap();
        let z = z.finish().unwrap();
        let d = decode(&z, Coding::Deflate).unwrap();
        assert_eq!((&*d.data, d.finished), (&data[..], true));

        let mut r = DeflateEncoder::new(Vec::new(), Compression::default());
        r.write_all(data).unwrap();
        let r = r.finish().unwrap();
        let d = decode(&r, Coding::Deflate).unwrap();
        assert_eq!((&*d.data, d.finished), (&data[..], true));

        assert!(decode(b"xx", Coding::Unsupported).is_none());
    }

    #[test]
    fn truncated_stream_yields_prefix() {
        let data: Vec<u8> = (0..20_000u32)
            .flat_map(|i| format!("{{\"k{i}\":{i}}},").into_bytes())
            .collect();
        let gz = gzip(&data);
        let d = decode(&gz[..gz.len() / 2], Coding::Gzip).unwrap();
        assert!(!d.finished);
        assert!(!d.data.is_empty());
        assert_eq!(&*d.data, &data[..d.data.len()]);
    }

    #[test]
    fn bomb_is_capped() {
        let zeros = vec![0u8; 8 * 1024 * 1024];
        let gz = gzip(&zeros);
        assert!(gz.len() < 16 * 1024);
        let d = decode(&gz, Coding::Gzip).unwrap();
        assert_eq!(d.data.len(), MAX_DECODED_BYTES);
        assert!(!d.finished);
        let d = decode(b"\x1f\x8b garbage", Coding::Gzip).unwrap();
        assert!(!d.finished);
        assert_eq!(decoded_len(&gz, Coding::Gzip), None);
        assert_eq!(decoded_len(b"\x1f\x8b garbage", Coding::Gzip), None);
        assert_eq!(decoded_len(&gzip(b"hello"), Coding::Gzip), Some(5));
        assert_eq!(decoded_len(b"abc", Coding::Unsupported), None);
    }
}
