//! The refillable read buffer shared by both file formats.
//!
//! Bytes are read in large chunks into one `Vec<u8>`; parsers ask for "at
//! least `n` bytes" with [`Input::fill`] and then [`Input::take`] a record,
//! getting a slice that stays valid until the next `fill`. When the unread
//! tail is too short, it is moved to the front and the rest of the buffer is
//! refilled with one `read` call (more only if the reader returns short
//! reads, as pipes do). The buffer only grows when a single record is longer
//! than it, and never past [`MAX_PARSED_BLOCK_BYTES`].

use std::io::{self, Read};

use super::error::CaptureError;
use super::MAX_PARSED_BLOCK_BYTES;

pub(crate) struct Input {
    name: String,
    reader: Box<dyn Read + Send>,
    buf: Vec<u8>,
    /// First unread byte in `buf`.
    start: usize,
    /// One past the last valid byte in `buf`.
    end: usize,
    /// Absolute input offset of `buf[start]`.
    pos: u64,
    eof: bool,
}

impl Input {
    pub(crate) fn new(name: String, reader: Box<dyn Read + Send>, buffer_bytes: usize) -> Self {
        let size = buffer_bytes.clamp(16, MAX_PARSED_BLOCK_BYTES);
        Input {
            name,
            reader,
            buf: vec![0; size],
            start: 0,
            end: 0,
            pos: 0,
            eof: false,
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Absolute offset of the next unread byte.
    #[inline]
    pub(crate) fn pos(&self) -> u64 {
        self.pos
    }

    /// The unread bytes currently buffered.
    #[inline]
    pub(crate) fn bytes(&self) -> &[u8] {
        self.buf.get(self.start..self.end).unwrap_or(&[])
    }

    /// Makes at least `need` bytes available if the input has them, and
    /// returns how many are available (less than `need` only at end of input).
    /// `need` above [`MAX_PARSED_BLOCK_BYTES`] is never satisfied.
    #[inline]
    pub(crate) fn fill(&mut self, need: usize) -> Result<usize, CaptureError> {
        let have = self.end - self.start;
        if have >= need {
            return Ok(have);
        }
        self.fill_slow(need)
    }

    #[cold]
    fn fill_slow(&mut self, need: usize) -> Result<usize, CaptureError> {
        if self.eof {
            return Ok(self.end - self.start);
        }
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let need = need.min(MAX_PARSED_BLOCK_BYTES);
        if need > self.buf.len() {
            let grown = self
                .buf
                .len()
                .saturating_mul(2)
                .clamp(need, MAX_PARSED_BLOCK_BYTES);
            self.buf.resize(grown, 0);
        }
        while self.end < need {
            let Some(space) = self.buf.get_mut(self.end..) else {
                break;
            };
            match self.reader.read(space) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                // A misbehaving reader could claim more than it was given.
                Ok(n) => self.end = self.end.saturating_add(n).min(self.buf.len()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let at = self.pos + self.end as u64;
                    return Err(CaptureError::io(&self.name, at, e));
                }
            }
        }
        Ok(self.end)
    }

    /// Consumes `n` buffered bytes and returns them. The caller must have
    /// checked (with `fill`) that they are available; if not, returns what is.
    #[inline]
    pub(crate) fn take(&mut self, n: usize) -> &[u8] {
        let from = self.start;
        let to = from.saturating_add(n).min(self.end);
        self.start = to;
        self.pos += (to - from) as u64;
        self.buf.get(from..to).unwrap_or(&[])
    }

    /// Consumes up to `n` bytes, reading (and discarding) past the buffer as
    /// needed. Returns how many were skipped (less than `n` at end of input).
    pub(crate) fn skip(&mut self, n: u64) -> Result<u64, CaptureError> {
        let mut left = n;
        loop {
            let have = (self.end - self.start) as u64;
            let k = have.min(left);
            // k <= have, which fits in usize.
            self.take(k as usize);
            left -= k;
            if left == 0 {
                return Ok(n);
            }
            let chunk = usize::try_from(left)
                .unwrap_or(usize::MAX)
                .min(self.buf.len());
            if self.fill(chunk)? == 0 {
                return Ok(n - left);
            }
        }
    }
}
