//! Random tokens, token hashing, constant-time comparison and sealed secrets.
//!
//! Tokens (sessions, API keys, reset links) are shown to the client once and
//! stored only as their SHA-256, so a database leak yields nothing usable.
//! Secrets that must be read back (the credential vault) are sealed with
//! AES-256-GCM under a versioned key ring.

use aes_gcm::aead::{Aead, Generate, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use subtle::ConstantTimeEq;

/// Bytes of randomness in every token we issue (256 bits).
pub const TOKEN_BYTES: usize = 32;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// A URL-safe random token carrying `TOKEN_BYTES` of entropy.
///
/// # Errors
/// Fails only when the operating system has no randomness to give.
pub fn random_token() -> Result<String, CryptoError> {
    let mut bytes = [0u8; TOKEN_BYTES];
    getrandom::fill(&mut bytes).map_err(|_| CryptoError::NoRandomness)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// The hex SHA-256 of a token: what we store and look tokens up by.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// Why a cryptographic operation failed. Never carries secret material.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    /// The OS random source failed.
    #[error("no randomness available")]
    NoRandomness,
    /// A key ring entry is malformed.
    #[error("malformed key ring: {0}")]
    BadKeyRing(&'static str),
    /// The ciphertext names a key version the ring does not hold.
    #[error("unknown key version {0}")]
    UnknownKeyVersion(u32),
    /// Tampered ciphertext, wrong key, or wrong associated data.
    #[error("ciphertext does not open")]
    DoesNotOpen,
}

/// A secret sealed under one version of the key ring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// The key version that sealed it; stored beside the ciphertext.
    pub key_version: u32,
    /// Nonce followed by ciphertext and tag.
    pub ciphertext: Vec<u8>,
}

impl Sealed {
    /// The nonce, the encrypted body and the authentication tag, each base64:
    /// the three text columns (`iv`, `encrypted_data`, `auth_tag`) of seed-shaped tables.
    pub fn to_parts(&self) -> SealedParts {
        let (nonce, rest) = self
            .ciphertext
            .split_at(NONCE_LEN.min(self.ciphertext.len()));
        let (body, tag) = rest.split_at(rest.len().saturating_sub(TAG_LEN));
        SealedParts {
            iv: STANDARD.encode(nonce),
            ciphertext: STANDARD.encode(body),
            auth_tag: STANDARD.encode(tag),
        }
    }

    /// Reassembles a sealed secret from its stored parts.
    ///
    /// # Errors
    /// `DoesNotOpen` when a part is not base64 or has the wrong length.
    pub fn from_parts(key_version: u32, parts: &SealedParts) -> Result<Self, CryptoError> {
        let decode = |text: &str| STANDARD.decode(text).map_err(|_| CryptoError::DoesNotOpen);
        let nonce = decode(&parts.iv)?;
        let body = decode(&parts.ciphertext)?;
        let tag = decode(&parts.auth_tag)?;
        if nonce.len() != NONCE_LEN || tag.len() != TAG_LEN {
            return Err(CryptoError::DoesNotOpen);
        }
        let mut ciphertext = nonce;
        ciphertext.extend_from_slice(&body);
        ciphertext.extend_from_slice(&tag);
        Ok(Self {
            key_version,
            ciphertext,
        })
    }
}

/// A sealed secret as three base64 texts; see [`Sealed::to_parts`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedParts {
    /// The 96-bit nonce.
    pub iv: String,
    /// The encrypted body, as long as the plaintext.
    pub ciphertext: String,
    /// The 128-bit GCM tag.
    pub auth_tag: String,
}

/// Versioned AES-256 keys; the newest version seals, every version opens.
#[derive(Clone)]
pub struct KeyRing {
    keys: BTreeMap<u32, Aes256Gcm>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("KeyRing")
            .field("versions", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl KeyRing {
    /// Parses `VERSION:BASE64KEY` entries separated by commas, e.g. `1:abc...,2:def...`.
    ///
    /// # Errors
    /// `BadKeyRing` when empty, when a version repeats, or a key is not 32 bytes of base64.
    pub fn parse(text: &str) -> Result<Self, CryptoError> {
        let mut keys = BTreeMap::new();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (version, key) = entry
                .split_once(':')
                .ok_or(CryptoError::BadKeyRing("entry is not VERSION:KEY"))?;
            let version: u32 = version
                .parse()
                .map_err(|_| CryptoError::BadKeyRing("version is not a number"))?;
            let bytes = STANDARD
                .decode(key)
                .map_err(|_| CryptoError::BadKeyRing("key is not base64"))?;
            let cipher = Aes256Gcm::new_from_slice(&bytes)
                .map_err(|_| CryptoError::BadKeyRing("key is not 32 bytes"))?;
            if keys.insert(version, cipher).is_some() {
                return Err(CryptoError::BadKeyRing("version appears twice"));
            }
        }
        if keys.is_empty() {
            return Err(CryptoError::BadKeyRing("no keys"));
        }
        Ok(Self { keys })
    }

    /// A ring of one key, for callers that hold raw key bytes.
    pub fn single(version: u32, key: [u8; 32]) -> Self {
        let cipher = Aes256Gcm::new(&key.into());
        Self {
            keys: BTreeMap::from([(version, cipher)]),
        }
    }

    /// A fresh random key, formatted as one key ring entry with the given version.
    ///
    /// # Errors
    /// `NoRandomness` when the OS random source fails.
    pub fn generate_entry(version: u32) -> Result<String, CryptoError> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|_| CryptoError::NoRandomness)?;
        Ok(format!("{version}:{}", STANDARD.encode(key)))
    }

    /// The version new seals use.
    pub fn current_version(&self) -> u32 {
        self.keys.keys().next_back().copied().unwrap_or_default()
    }

    /// Seals `plaintext`, binding it to `aad` (e.g. owner and row id) so that it
    /// opens only where it was sealed.
    ///
    /// # Errors
    /// `NoRandomness` if no nonce can be drawn.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Sealed, CryptoError> {
        let (&key_version, cipher) = self
            .keys
            .iter()
            .next_back()
            .ok_or(CryptoError::BadKeyRing("no keys"))?;
        let nonce = Nonce::generate();
        let body = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| CryptoError::DoesNotOpen)?;
        let mut ciphertext = Vec::with_capacity(NONCE_LEN + body.len());
        ciphertext.extend_from_slice(nonce.as_slice());
        ciphertext.extend_from_slice(&body);
        Ok(Sealed {
            key_version,
            ciphertext,
        })
    }

    /// Opens a sealed secret with the same `aad` it was sealed with.
    ///
    /// # Errors
    /// `UnknownKeyVersion` or `DoesNotOpen`.
    pub fn open(&self, sealed: &Sealed, aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let cipher = self
            .keys
            .get(&sealed.key_version)
            .ok_or(CryptoError::UnknownKeyVersion(sealed.key_version))?;
        if sealed.ciphertext.len() < NONCE_LEN {
            return Err(CryptoError::DoesNotOpen);
        }
        let (nonce, body) = sealed.ciphertext.split_at(NONCE_LEN);
        let nonce = Nonce::try_from(nonce).map_err(|_| CryptoError::DoesNotOpen)?;
        cipher
            .decrypt(&nonce, Payload { msg: body, aad })
            .map_err(|_| CryptoError::DoesNotOpen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(versions: &[u32]) -> (KeyRing, String) {
        let text = versions
            .iter()
            .map(|v| KeyRing::generate_entry(*v).unwrap())
            .collect::<Vec<_>>()
            .join(",");
        (KeyRing::parse(&text).unwrap(), text)
    }

    #[test]
    fn tokens_carry_256_random_bits_and_never_repeat() {
        let a = random_token().unwrap();
        let b = random_token().unwrap();
        assert_ne!(a, b);
        assert_eq!(URL_SAFE_NO_PAD.decode(&a).unwrap().len(), TOKEN_BYTES);
    }

    #[test]
    fn token_hash_is_sha256_hex() {
        assert_eq!(
            hash_token("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn constant_time_eq_compares_contents() {
        assert!(constant_time_eq(b"same", b"same"));
        assert!(!constant_time_eq(b"same", b"diff"));
        assert!(!constant_time_eq(b"short", b"longer"));
    }

    #[test]
    fn sealed_secret_opens_with_same_associated_data_only() {
        let (ring, _) = ring(&[1]);
        let sealed = ring.seal(b"sk-live-123", b"user:1/row:9").unwrap();
        assert_eq!(ring.open(&sealed, b"user:1/row:9").unwrap(), b"sk-live-123");
        assert_eq!(
            ring.open(&sealed, b"user:2/row:9"),
            Err(CryptoError::DoesNotOpen)
        );
    }

    #[test]
    fn each_seal_uses_a_fresh_nonce() {
        let (ring, _) = ring(&[1]);
        let a = ring.seal(b"x", b"").unwrap();
        let b = ring.seal(b"x", b"").unwrap();
        assert_ne!(a.ciphertext[..NONCE_LEN], b.ciphertext[..NONCE_LEN]);
    }

    #[test]
    fn tampered_ciphertext_does_not_open() {
        let (ring, _) = ring(&[1]);
        let mut sealed = ring.seal(b"secret", b"").unwrap();
        let last = sealed.ciphertext.len() - 1;
        sealed.ciphertext[last] ^= 1;
        assert_eq!(ring.open(&sealed, b""), Err(CryptoError::DoesNotOpen));
    }

    #[test]
    fn newest_version_seals_and_old_versions_still_open() {
        let (old_ring, old_text) = ring(&[1]);
        let old = old_ring.seal(b"legacy", b"").unwrap();
        let rotated = KeyRing::parse(&format!(
            "{old_text},{}",
            KeyRing::generate_entry(2).unwrap()
        ))
        .unwrap();
        assert_eq!(rotated.current_version(), 2);
        assert_eq!(rotated.seal(b"new", b"").unwrap().key_version, 2);
        assert_eq!(rotated.open(&old, b"").unwrap(), b"legacy");
        let (other, _) = ring(&[3]);
        assert_eq!(
            other.open(&old, b""),
            Err(CryptoError::UnknownKeyVersion(1))
        );
    }

    #[test]
    fn sealed_parts_round_trip_and_reject_bad_lengths() {
        let (ring, _) = ring(&[1]);
        let sealed = ring.seal(b"sk-live-123", b"aad").unwrap();
        let parts = sealed.to_parts();
        assert_eq!(STANDARD.decode(&parts.iv).unwrap().len(), NONCE_LEN);
        assert_eq!(STANDARD.decode(&parts.auth_tag).unwrap().len(), TAG_LEN);
        let back = Sealed::from_parts(1, &parts).unwrap();
        assert_eq!(ring.open(&back, b"aad").unwrap(), b"sk-live-123");
        let short = SealedParts {
            iv: STANDARD.encode([0u8; 4]),
            ..parts
        };
        assert_eq!(Sealed::from_parts(1, &short), Err(CryptoError::DoesNotOpen));
    }

    #[test]
    fn single_key_ring_seals_under_its_version() {
        let ring = KeyRing::single(7, [9u8; 32]);
        let sealed = ring.seal(b"x", b"").unwrap();
        assert_eq!(sealed.key_version, 7);
        assert_eq!(ring.open(&sealed, b"").unwrap(), b"x");
    }

    #[test]
    fn malformed_key_rings_are_refused() {
        assert!(KeyRing::parse("").is_err());
        assert!(KeyRing::parse("1:not-base64!").is_err());
        assert!(KeyRing::parse(&format!("1:{}", STANDARD.encode([0u8; 16]))).is_err());
        let entry = KeyRing::generate_entry(1).unwrap();
        assert!(KeyRing::parse(&format!("{entry},{entry}")).is_err());
    }

    #[test]
    fn debug_output_hides_keys() {
        let (ring, text) = ring(&[1]);
        let shown = format!("{ring:?}");
        assert!(!shown.contains(text.split(':').nth(1).unwrap()));
    }
}
