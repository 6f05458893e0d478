//! TCP sequence numbers with wrapping arithmetic (RFC 9293 §3.4).

/// A 32-bit TCP sequence number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SeqNumber(pub u32);

impl SeqNumber {
    /// Signed distance `self - other`, valid while the two are within 2^31.
    pub const fn diff(self, other: SeqNumber) -> i64 {
        self.0.wrapping_sub(other.0) as i32 as i64
    }

    /// `self + n` modulo 2^32.
    pub const fn add(self, n: u64) -> SeqNumber {
        SeqNumber(self.0.wrapping_add(n as u32))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps() {
        let a = SeqNumber(0xFFFF_FFF0);
        let b = a.add(0x20);
        assert_eq!(b, SeqNumber(0x10));
        assert_eq!(b.diff(a), 0x20);
        assert_eq!(a.diff(b), -0x20);
        assert_eq!(SeqNumber(5).diff(SeqNumber(5)), 0);
    }
}
