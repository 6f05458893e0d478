//! Principal fingerprints: a keyed hash of the caller's credential identity.
//!
//! HMAC-SHA-256 with a per-deployment secret, so a fingerprint cannot be
//! reversed by hashing guessed credentials without the key, and two
//! deployments never produce linkable values. Identities are domain
//! separated (`"jwt\0…"`, `"basic\0…"`), so one secret used as two kinds of
//! credential yields two principals.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::hash::HashSeed;

type HmacSha256 = Hmac<Sha256>;

/// Bytes of the HMAC output kept in a principal (hex-encoded: twice this).
pub const PRINCIPAL_BYTES: usize = 16;
/// Shortest secret accepted by [`FingerprintKey::from_slice`].
pub const MIN_KEY_BYTES: usize = 16;

/// Per-deployment secret key for principal fingerprints (HMAC-SHA-256).
///
/// Holds the keyed MAC state, prepared once, so each fingerprint costs only
/// the hash of the identity. `Debug` never prints the key.
#[derive(Clone)]
pub struct FingerprintKey(HmacSha256);

impl FingerprintKey {
    /// A key from 32 secret bytes.
    pub fn new(bytes: [u8; 32]) -> Self {
        // HMAC accepts keys of any length: this cannot fail.
        FingerprintKey(
            <HmacSha256 as Mac>::new_from_slice(&bytes)
                .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length")),
        )
    }

    /// A key from at least [`MIN_KEY_BYTES`] secret bytes: 32 bytes are used
    /// as is, any other length is reduced to 32 with SHA-256.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        if bytes.len() < MIN_KEY_BYTES {
            return None;
        }
        let key: [u8; 32] = match bytes.try_into() {
            Ok(exact) => exact,
            Err(_) => Sha256::digest(bytes).into(),
        };
        Some(FingerprintKey::new(key))
    }

    /// A hash-table seed derived from the key (`HMAC(key, label)`), secret
    /// as long as the key is: the default of [`crate::engine::EngineConfig`].
    pub(crate) fn derive_hash_seed(&self) -> HashSeed {
        let mut mac = self.0.clone();
        mac.update(b"shadowtap hash-table seed\0");
        let tag = mac.finalize().into_bytes();
        let mut seed = [0u8; 16];
        seed.copy_from_slice(&tag[..16]);
        HashSeed::from_bytes(seed)
    }

    /// `hex(HMAC(key, parts joined by NUL))[..32]`.
    pub(crate) fn principal(&self, parts: &[&[u8]]) -> String {
        let mut mac = self.0.clone();
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                mac.update(b"\0");
            }
            mac.update(part);
        }
        let tag = mac.finalize().into_bytes();
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut hex = [0u8; PRINCIPAL_BYTES * 2];
        for (pair, b) in hex.chunks_exact_mut(2).zip(&tag[..PRINCIPAL_BYTES]) {
            pair[0] = HEX[usize::from(b >> 4)];
            pair[1] = HEX[usize::from(b & 0x0f)];
        }
        // Hex digits are ASCII: always UTF-8.
        String::from_utf8_lossy(&hex).into_owned()
    }
}

impl fmt::Debug for FingerprintKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FingerprintKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_principals() {
        assert!(FingerprintKey::from_slice(&[1; 15]).is_none());
        let a = FingerprintKey::new([7; 32]);
        let b = FingerprintKey::from_slice(&[7; 32]).unwrap();
        let c = FingerprintKey::from_slice(&[7; 40]).unwrap();
        let p = a.principal(&[b"basic", b"alice"]);
        assert_eq!(p.len(), 32);
        assert!(p
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_eq!(p, b.principal(&[b"basic", b"alice"]));
        assert_ne!(p, c.principal(&[b"basic", b"alice"]));
        assert_ne!(p, a.principal(&[b"bearer", b"alice"]));
        assert_eq!(format!("{a:?}"), "FingerprintKey(<redacted>)");
        // RFC 4231 test case 2 style check that this really is HMAC-SHA-256.
        let k = FingerprintKey::from_slice(&[0x0b; 32]).unwrap();
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&[0x0b; 32]).unwrap();
        mac.update(b"x\0y");
        let want = mac.finalize().into_bytes();
        let want_hex: String = want[..16].iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(k.principal(&[b"x", b"y"]), want_hex);
    }
}
