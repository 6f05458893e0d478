//! Body decoding: `Content-Length`, chunked and close-delimited bodies.
//!
//! The decoder never buffers payload: it keeps the first
//! [`BODY_SAMPLE_MAX`] de-chunked bytes as a sample and skips the rest by
//! counting. Only chunk-size lines and trailers are walked byte by byte;
//! chunk data and length-delimited bodies are consumed in bulk.
//!
//! ```text
//! chunked:  Size ─(;)─► Ext ─┐
//!            │ (\r)          │(\n)
//!            ▼               ▼
//!           SizeLf ─(\n)─► size>0 ? Data ─► DataCr ─► DataLf ─► Size
//!                            size=0 ? TrailerLineStart ─(\r\n)─► Done
//!                                           └─(other)─► TrailerLine ─(\n)─┘
//! ```

use crate::http::events::HttpAnomaly;
use crate::http::limits::{BODY_SAMPLE_MAX, MAX_CHUNK_LINE_BYTES, MAX_TRAILER_BYTES};
use crate::http::message::{Body, Framing};

/// Which kind of body to decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BodyKind {
    Length(u64),
    Chunked,
    Close,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Chunk {
    Size { val: u64, digits: u8 },
    SizeWs { val: u64 },
    Ext { val: u64 },
    SizeLf { val: u64 },
    Data { rem: u64 },
    DataCr,
    DataLf,
    TrailerLineStart,
    TrailerLine,
    TrailerEndLf,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Length { rem: u64 },
    Close,
    Chunked(Chunk),
    Done,
}

/// Result of [`BodyDecoder::feed`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Feed {
    /// All input consumed; the body goes on.
    More,
    /// The body ended after the consumed bytes.
    Done,
    /// Framing error at the last consumed byte: the body cannot be delimited.
    Invalid(HttpAnomaly),
}

/// Result of [`BodyDecoder::gap`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum GapFit {
    /// The missing bytes fall inside a region of known length: framing is intact.
    Absorbed,
    /// The missing bytes end exactly at the end of the body.
    Done,
    /// The body ended inside the gap; the rest of the gap is unaccounted.
    Overflow,
    /// The gap hit framing bytes: the body cannot be delimited any more.
    Lost,
}

/// Incremental body decoder for one message.
#[derive(Debug)]
pub(crate) struct BodyDecoder {
    state: State,
    body: Body,
    /// Capacity given to the sample at the first payload byte: the whole
    /// sample, so that it is allocated once (never more than
    /// [`BODY_SAMPLE_MAX`]).
    sample_cap: usize,
    gapped: bool,
    line_len: usize,
    trailer_len: usize,
}

impl BodyDecoder {
    pub(crate) fn new(kind: BodyKind) -> Self {
        let (state, framing) = match kind {
            BodyKind::Length(0) => (State::Done, Framing::ContentLength),
            BodyKind::Length(rem) => (State::Length { rem }, Framing::ContentLength),
            BodyKind::Chunked => (
                State::Chunked(Chunk::Size { val: 0, digits: 0 }),
                Framing::Chunked,
            ),
            BodyKind::Close => (State::Close, Framing::CloseDelimited),
        };
        let body = Body {
            framing,
            wire_len: 0,
            len: 0,
            sample: Vec::new(),
            complete: true,
        };
        let sample_cap = match kind {
            BodyKind::Length(n) => {
                usize::try_from(n).map_or(BODY_SAMPLE_MAX, |n| n.min(BODY_SAMPLE_MAX))
            }
            BodyKind::Chunked | BodyKind::Close => BODY_SAMPLE_MAX,
        };
        BodyDecoder {
            state,
            body,
            sample_cap,
            gapped: false,
            line_len: 0,
            trailer_len: 0,
        }
    }

    pub(crate) fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Heap bytes held: the sample's allocation.
    pub(crate) fn held_bytes(&self) -> usize {
        self.body.sample.capacity()
    }

    pub(crate) fn is_close_delimited(&self) -> bool {
        self.state == State::Close
    }

    fn payload(&mut self, bytes: &[u8]) {
        self.body.len += bytes.len() as u64;
        if !self.gapped && self.body.sample.len() < BODY_SAMPLE_MAX {
            let n = bytes.len().min(BODY_SAMPLE_MAX - self.body.sample.len());
            if self.body.sample.capacity() == 0 {
                self.body.sample.reserve_exact(self.sample_cap.max(n));
            }
            self.body.sample.extend_from_slice(&bytes[..n]);
        }
    }

    /// Consumes body bytes from the front of `data`. Returns how many were
    /// consumed; with [`Feed::More`] that is all of `data`.
    pub(crate) fn feed(&mut self, data: &[u8]) -> (usize, Feed) {
        let (n, feed) = match self.state {
            State::Done => (0, Feed::Done),
            State::Close => {
                self.payload(data);
                (data.len(), Feed::More)
            }
            State::Length { rem } => {
                let n = usize::try_from(rem).unwrap_or(usize::MAX).min(data.len());
                self.payload(&data[..n]);
                let rem = rem - n as u64;
                if rem == 0 {
                    self.state = State::Done;
                    (n, Feed::Done)
                } else {
                    self.state = State::Length { rem };
                    (n, Feed::More)
                }
            }
            State::Chunked(_) => self.feed_chunked(data),
        };
        self.body.wire_len += n as u64;
        (n, feed)
    }

    fn feed_chunked(&mut self, data: &[u8]) -> (usize, Feed) {
        let mut i = 0;
        while i < data.len() {
            let State::Chunked(st) = self.state else {
                break;
            };
            match st {
                Chunk::Data { rem } => {
                    let n = usize::try_from(rem)
                        .unwrap_or(usize::MAX)
                        .min(data.len() - i);
                    self.payload(&data[i..i + n]);
                    i += n;
                    let rem = rem - n as u64;
                    self.state = State::Chunked(if rem == 0 {
                        Chunk::DataCr
                    } else {
                        Chunk::Data { rem }
                    });
                    continue;
                }
                Chunk::TrailerLine => {
                    let n = match memchr::memchr(b'\n', &data[i..]) {
                        Some(k) => {
                            self.state = State::Chunked(Chunk::TrailerLineStart);
                            k + 1
                        }
                        None => data.len() - i,
                    };
                    i += n;
                    self.trailer_len += n;
                    if self.trailer_len > MAX_TRAILER_BYTES {
                        return (i, Feed::Invalid(HttpAnomaly::HeaderSectionTooLarge));
                    }
                    continue;
                }
                _ => {}
            }
            let b = data[i];
            i += 1;
            let next = match self.step_byte(st, b) {
                Ok(Some(next)) => next,
                Ok(None) => {
                    self.state = State::Done;
                    return (i, Feed::Done);
                }
                Err(a) => return (i, Feed::Invalid(a)),
            };
            self.state = State::Chunked(next);
        }
        (i, Feed::More)
    }

    /// One byte of a chunk-size line, a CRLF after data, or a trailer line
    /// start. `Ok(None)` means the body is complete.
    fn step_byte(&mut self, st: Chunk, b: u8) -> Result<Option<Chunk>, HttpAnomaly> {
        let in_line = matches!(
            st,
            Chunk::Size { .. } | Chunk::SizeWs { .. } | Chunk::Ext { .. } | Chunk::SizeLf { .. }
        );
        if in_line {
            self.line_len += 1;
            if self.line_len > MAX_CHUNK_LINE_BYTES {
                return Err(if matches!(st, Chunk::Ext { .. }) {
                    HttpAnomaly::ChunkExtensionTooLong
                } else {
                    HttpAnomaly::InvalidChunk
                });
            }
        }
        let bad = HttpAnomaly::InvalidChunk;
        let next = match st {
            Chunk::Size { val, digits } => match (b, hex(b)) {
                (_, Some(d)) => {
                    if digits >= 16 {
                        return Err(bad);
                    }
                    Chunk::Size {
                        val: (val << 4) | u64::from(d),
                        digits: digits + 1,
                    }
                }
                _ if digits == 0 => return Err(bad),
                (b';', _) => Chunk::Ext { val },
                (b' ' | b'\t', _) => Chunk::SizeWs { val },
                (b'\r', _) => Chunk::SizeLf { val },
                (b'\n', _) => return Ok(self.end_size_line(val)),
                _ => return Err(bad),
            },
            Chunk::SizeWs { val } => match b {
                b' ' | b'\t' => st,
                b';' => Chunk::Ext { val },
                b'\r' => Chunk::SizeLf { val },
                b'\n' => return Ok(self.end_size_line(val)),
                _ => return Err(bad),
            },
            Chunk::Ext { val } => match b {
                b'\n' => return Ok(self.end_size_line(val)),
                _ => st,
            },
            Chunk::SizeLf { val } => match b {
                b'\n' => return Ok(self.end_size_line(val)),
                _ => return Err(bad),
            },
            Chunk::DataCr => match b {
                b'\r' => Chunk::DataLf,
                b'\n' => Chunk::Size { val: 0, digits: 0 },
                _ => return Err(bad),
            },
            Chunk::DataLf => match b {
                b'\n' => Chunk::Size { val: 0, digits: 0 },
                _ => return Err(bad),
            },
            Chunk::TrailerLineStart => {
                self.trailer_len += 1;
                match b {
                    b'\r' => Chunk::TrailerEndLf,
                    b'\n' => return Ok(None),
                    _ => Chunk::TrailerLine,
                }
            }
            Chunk::TrailerEndLf => match b {
                b'\n' => return Ok(None),
                _ => return Err(bad),
            },
            Chunk::Data { .. } | Chunk::TrailerLine => st,
        };
        Ok(Some(next))
    }

    fn end_size_line(&mut self, val: u64) -> Option<Chunk> {
        self.line_len = 0;
        Some(if val == 0 {
            Chunk::TrailerLineStart
        } else {
            Chunk::Data { rem: val }
        })
    }

    fn skip(&mut self, n: u64) {
        self.body.wire_len += n;
        self.body.len += n;
    }

    /// `len` bytes of this body are missing. Bytes that fit a region of
    /// known length are counted as skipped and framing stays in sync.
    pub(crate) fn gap(&mut self, len: u64) -> GapFit {
        self.gapped = true;
        match self.state {
            State::Length { rem } if len < rem => {
                self.skip(len);
                self.state = State::Length { rem: rem - len };
                GapFit::Absorbed
            }
            State::Length { rem } => {
                self.skip(rem);
                self.state = State::Done;
                if len == rem {
                    GapFit::Done
                } else {
                    GapFit::Overflow
                }
            }
            State::Close => {
                self.skip(len);
                GapFit::Absorbed
            }
            State::Chunked(Chunk::Data { rem }) if len <= rem => {
                self.skip(len);
                let rem = rem - len;
                self.state = State::Chunked(if rem == 0 {
                    Chunk::DataCr
                } else {
                    Chunk::Data { rem }
                });
                GapFit::Absorbed
            }
            State::Chunked(_) => GapFit::Lost,
            State::Done => GapFit::Overflow,
        }
    }

    /// The finished body. `complete` is false when the body was cut short;
    /// a body that had a gap is never complete.
    pub(crate) fn finish(mut self, complete: bool) -> Body {
        self.body.complete = complete && !self.gapped;
        self.body
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(kind: BodyKind, data: &[u8], step: usize) -> (usize, Feed, Body) {
        let mut d = BodyDecoder::new(kind);
        let mut used = 0;
        let mut last = Feed::More;
        while used < data.len() {
            let end = (used + step).min(data.len());
            let (n, f) = d.feed(&data[used..end]);
            used += n;
            last = f;
            if f != Feed::More {
                break;
            }
        }
        let complete = last == Feed::Done;
        (used, last, d.finish(complete))
    }

    #[test]
    fn length_body_with_trailing_data() {
        for step in [1, 3, 100] {
            let (used, f, b) = decode_all(BodyKind::Length(5), b"helloGET", step);
            assert_eq!((used, f), (5, Feed::Done));
            assert_eq!((b.len, b.wire_len, &b.sample[..]), (5, 5, &b"hello"[..]));
        }
    }

    #[test]
    fn chunked_with_extensions_and_trailers() {
        let wire = b"5;name=val\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\nNEXT";
        for step in [1, 2, 7, 1000] {
            let (used, f, b) = decode_all(BodyKind::Chunked, wire, step);
            assert_eq!(f, Feed::Done, "step {step}");
            assert_eq!(used, wire.len() - 4);
            assert_eq!(&b.sample[..], b"hello world");
            assert_eq!((b.len, b.wire_len, b.complete), (11, used as u64, true));
        }
    }

    #[test]
    fn chunked_lenient_lf_and_whitespace() {
        let (_, f, b) = decode_all(BodyKind::Chunked, b"3 \nabc\n0\n\n", 1);
        assert_eq!(f, Feed::Done);
        assert_eq!(&b.sample[..], b"abc");
    }

    #[test]
    fn chunked_errors() {
        let (_, f, _) = decode_all(BodyKind::Chunked, b"zz\r\n", 1);
        assert_eq!(f, Feed::Invalid(HttpAnomaly::InvalidChunk));
        let (_, f, _) = decode_all(BodyKind::Chunked, b"11111111111111111\r\n", 4);
        assert_eq!(f, Feed::Invalid(HttpAnomaly::InvalidChunk));
        let (_, f, _) = decode_all(BodyKind::Chunked, b"3\r\nabcX", 4);
        assert_eq!(f, Feed::Invalid(HttpAnomaly::InvalidChunk));
        let mut long = b"1;".to_vec();
        long.extend(std::iter::repeat_n(b'a', MAX_CHUNK_LINE_BYTES));
        let (_, f, _) = decode_all(BodyKind::Chunked, &long, 64);
        assert_eq!(f, Feed::Invalid(HttpAnomaly::ChunkExtensionTooLong));
        let mut trailers = b"0\r\n".to_vec();
        for _ in 0..MAX_TRAILER_BYTES / 8 + 1 {
            trailers.extend_from_slice(b"X-A: 1\r\n");
        }
        let (_, f, _) = decode_all(BodyKind::Chunked, &trailers, 100);
        assert_eq!(f, Feed::Invalid(HttpAnomaly::HeaderSectionTooLarge));
    }

    #[test]
    fn sample_is_capped_and_rest_skipped() {
        let data = vec![b'x'; BODY_SAMPLE_MAX * 3];
        let (_, f, b) = decode_all(BodyKind::Length(data.len() as u64), &data, 1000);
        assert_eq!(f, Feed::Done);
        assert_eq!(b.sample.len(), BODY_SAMPLE_MAX);
        assert_eq!(b.len, data.len() as u64);
    }

    #[test]
    fn gaps() {
        let mut d = BodyDecoder::new(BodyKind::Length(10));
        assert_eq!(d.feed(b"ab"), (2, Feed::More));
        assert_eq!(d.gap(3), GapFit::Absorbed);
        assert_eq!(d.feed(b"cdefgXY"), (5, Feed::Done));
        let b = d.finish(true);
        assert_eq!(
            (b.len, b.wire_len, b.complete, &b.sample[..]),
            (10, 10, false, &b"ab"[..])
        );

        let mut d = BodyDecoder::new(BodyKind::Length(4));
        assert_eq!(d.gap(9), GapFit::Overflow);
        let mut d = BodyDecoder::new(BodyKind::Chunked);
        assert_eq!(d.feed(b"a\r\n"), (3, Feed::More));
        assert_eq!(d.gap(10), GapFit::Absorbed);
        assert_eq!(d.feed(b"\r\n0\r\n\r\n"), (7, Feed::Done));
        assert_eq!(d.gap(1), GapFit::Overflow);
        let mut d = BodyDecoder::new(BodyKind::Chunked);
        assert_eq!(d.gap(1), GapFit::Lost);
        let mut d = BodyDecoder::new(BodyKind::Close);
        assert_eq!(d.gap(1000), GapFit::Absorbed);
        assert!(d.is_close_delimited());
    }
}
