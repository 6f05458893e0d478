//! Cheap start-line probes: deciding which side of a mid-stream flow is the
//! client, and finding the next message start when resynchronising.
//!
//! Probes look at a handful of bytes and answer [`Probe::Yes`], [`Probe::No`]
//! or [`Probe::NeedMore`] (the prefix is too short to tell). They never
//! allocate and never look further than [`PROBE_MAX`] bytes.

/// Most bytes a probe ever looks at.
pub(crate) const PROBE_MAX: usize = 24;

/// Longest method token the probes accept.
const MAX_METHOD_LEN: usize = 20;

/// Answer of a start-line probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Probe {
    Yes,
    No,
    NeedMore,
}

/// RFC 9110 `tchar`.
pub(crate) const fn is_tchar(b: u8) -> bool {
    matches!(
        b,
        b'!' | b'#'
            | b'$'
            | b'%'
            | b'&'
            | b'\''
            | b'*'
            | b'+'
            | b'-'
            | b'.'
            | b'^'
            | b'_'
            | b'`'
            | b'|'
            | b'~'
    ) || b.is_ascii_alphanumeric()
}

const fn is_upper_method_byte(b: u8) -> bool {
    b.is_ascii_uppercase() || b == b'-' || b == b'_'
}

/// A method token of `min..=MAX_METHOD_LEN` bytes accepted by `ok`, then SP,
/// then (if `need_target`) a byte that is not whitespace.
fn probe_method(b: &[u8], ok: fn(u8) -> bool, min: usize, need_target: bool) -> Probe {
    for (i, &c) in b.iter().enumerate().take(MAX_METHOD_LEN + 1) {
        if c == b' ' {
            if i < min {
                return Probe::No;
            }
            if !need_target {
                return Probe::Yes;
            }
            return match b.get(i + 1) {
                None => Probe::NeedMore,
                Some(b' ' | b'\t' | b'\r' | b'\n') => Probe::No,
                Some(_) => Probe::Yes,
            };
        }
        if !ok(c) {
            return Probe::No;
        }
    }
    if b.len() > MAX_METHOD_LEN {
        Probe::No
    } else {
        Probe::NeedMore
    }
}

/// Loose request probe used where a request line is expected (keep-alive):
/// any token then SP, so odd methods reach the parser and get flagged.
pub(crate) fn probe_request_loose(b: &[u8]) -> Probe {
    probe_method(b, is_tchar, 1, false)
}

/// Strict request probe used for resync and mid-stream pickup: an
/// upper-case method token of 3 to 20 bytes, SP, and a target byte.
pub(crate) fn probe_request_strict(b: &[u8]) -> Probe {
    probe_method(b, is_upper_method_byte, 3, true)
}

fn probe_prefix(b: &[u8], prefix: &[u8]) -> Probe {
    let n = b.len().min(prefix.len());
    if b[..n] != prefix[..n] {
        Probe::No
    } else if n < prefix.len() {
        Probe::NeedMore
    } else {
        Probe::Yes
    }
}

/// Loose status-line probe (`HTTP/`), where a response is expected; the
/// parser then judges the version.
pub(crate) fn probe_response_loose(b: &[u8]) -> Probe {
    probe_prefix(b, b"HTTP/")
}

/// Strict status-line probe (`HTTP/1.`) for resync and mid-stream pickup.
pub(crate) fn probe_response_strict(b: &[u8]) -> Probe {
    probe_prefix(b, b"HTTP/1.")
}

/// Finds a message start in the middle of `line` (one line of resync data,
/// up to and including its `\n`): the tail of a lost body is often
/// followed directly by the next start line, with no line break between.
/// A request needs its whole request line (`METHOD SP target SP HTTP/1.x`);
/// a response needs `HTTP/1.x NNN`. Returns the offset of the start.
pub(crate) fn find_start_in_line(line: &[u8], request: bool) -> Option<usize> {
    let needle: &[u8] = if request { b" HTTP/1." } else { b"HTTP/1." };
    let finder = memchr::memmem::Finder::new(needle);
    for hit in finder.find_iter(line) {
        if request {
            // Back over the target, its SP, then the method token.
            let target_start = line[..hit].iter().rposition(|&b| b == b' ')? + 1;
            if target_start == hit {
                continue;
            }
            let sp = target_start - 1;
            let method_len = line[..sp]
                .iter()
                .rev()
                .take_while(|&&b| b.is_ascii_uppercase())
                .count();
            if (3..=MAX_METHOD_LEN).contains(&method_len) {
                return Some(sp - method_len);
            }
        } else {
            let rest = &line[hit + 7..];
            let ok = rest.len() >= 5
                && matches!(rest[0], b'0' | b'1')
                && rest[1] == b' '
                && rest[2..5].iter().all(u8::is_ascii_digit);
            if ok {
                return Some(hit);
            }
        }
    }
    None
}

/// True if `start` begins like an HTTP/1 request line: an upper-case method
/// token, SP and a target byte. Cheap; meant for deciding which side of a
/// flow picked up mid-stream is the client.
pub fn looks_like_request(start: &[u8]) -> bool {
    probe_request_strict(start) == Probe::Yes
}

/// True if `start` begins like an HTTP/1 status line (`HTTP/1.`).
pub fn looks_like_response(start: &[u8]) -> bool {
    probe_response_strict(start) == Probe::Yes
}

/// Copies the first bytes of `a ++ b` into `win`, returning how many.
pub(crate) fn window(a: &[u8], b: &[u8], win: &mut [u8; PROBE_MAX]) -> usize {
    let na = a.len().min(PROBE_MAX);
    win[..na].copy_from_slice(&a[..na]);
    let nb = b.len().min(PROBE_MAX - na);
    win[na..na + nb].copy_from_slice(&b[..nb]);
    na + nb
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_probes() {
        assert!(looks_like_request(b"GET / HTTP/1.1\r\n"));
        assert!(looks_like_request(b"PROPFIND /x"));
        assert!(!looks_like_request(b"get / HTTP/1.1"));
        assert!(!looks_like_request(b"GE"));
        assert!(!looks_like_request(b"\x16\x03\x01"));
        assert_eq!(probe_request_strict(b"GE"), Probe::NeedMore);
        assert_eq!(probe_request_strict(b"GET "), Probe::NeedMore);
        assert_eq!(probe_request_strict(b"GET  /"), Probe::No);
        assert_eq!(probe_request_loose(b"get "), Probe::Yes);
        assert_eq!(probe_request_loose(b"{\"a\""), Probe::No);
        assert_eq!(
            probe_request_loose(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
            Probe::No
        );
    }

    #[test]
    fn response_probes() {
        assert!(looks_like_response(b"HTTP/1.1 200 OK"));
        assert!(!looks_like_response(b"HTTP/2 200"));
        assert!(!looks_like_response(b"HTT"));
        assert_eq!(probe_response_strict(b"HTT"), Probe::NeedMore);
        assert_eq!(probe_response_loose(b"HTTP/2"), Probe::Yes);
        assert_eq!(probe_response_loose(b"xTTP/"), Probe::No);
    }

    #[test]
    fn finds_starts_in_the_middle_of_a_line() {
        assert_eq!(
            find_start_in_line(b"\"tail\"}GET /after HTTP/1.1\r\n", true),
            Some(7)
        );
        assert_eq!(
            find_start_in_line(b"xxPOST /a?b=c HTTP/1.0\n", true),
            Some(2)
        );
        assert_eq!(
            find_start_in_line(b"no request here HTTP/1.1 is text\n", true),
            None
        );
        assert_eq!(find_start_in_line(b"GE /x HTTP/1.1\r\n", true), None);
        assert_eq!(
            find_start_in_line(b"</html>HTTP/1.1 200 OK\r\n", false),
            Some(7)
        );
        assert_eq!(
            find_start_in_line(b"about HTTP/1.1 and more\n", false),
            None
        );
    }

    #[test]
    fn window_concatenates() {
        let mut w = [0u8; PROBE_MAX];
        let n = window(b"GE", b"T / HTTP/1.1\r\nHost: example\r\n", &mut w);
        assert_eq!(n, PROBE_MAX);
        assert_eq!(&w[..5], b"GET /");
    }
}
