//! The stored form of a response body: sealed with the vault key ring and
//! bound to its row, in the `response_body` text column as it is.
//!
//! A sealed body reads `sealed:v1:<key version>:<iv>:<ciphertext>:<tag>`, the
//! last three base64 as [`Sealed::to_parts`] gives them (base64 has no `:`).
//! Its associated data names the row (id, scope, request hash, status code,
//! key), so a body copied to another row, or a status code changed beside it,
//! does not open.
//!
//! Rows completed before bodies were sealed hold them in plain text. The only
//! writer of those was the server, and it stored a GraphQL response serialized
//! as a JSON object: a legacy body begins with `{`, a sealed one with `s`.
//! Any other text is refused like a body that does not open.
//!
//! The legacy form can be removed one replay window ([`super::Idempotency::ttl`],
//! 24 h) after every server runs a sealing build: by then every plaintext row
//! has expired, so no claim can replay one, and the hourly purge has deleted
//! it. `SELECT COUNT(*) FROM idempotency_keys WHERE response_body LIKE '{%'`
//! answers 0 from then on.

use crate::crypto::{CryptoError, KeyRing, Sealed, SealedParts};
use uuid::Uuid;

/// What every sealed body begins with; the format version is part of it.
pub const SEALED_PREFIX: &str = "sealed:v1:";

/// The columns a stored body is bound to.
#[derive(Debug, Clone, Copy)]
pub(super) struct Row<'a> {
    pub id: Uuid,
    pub scope: &'a str,
    pub request_hash: &'a str,
    pub status_code: i32,
    pub key: &'a str,
}

impl Row<'_> {
    /// The associated data. The key comes last: it is the only free text, and
    /// it is printable ASCII, so it cannot hold the separator either.
    fn aad(&self) -> Vec<u8> {
        format!(
            "idempotency_keys\n{}\n{}\n{}\n{}\n{}",
            self.id, self.scope, self.request_hash, self.status_code, self.key
        )
        .into_bytes()
    }
}

/// Seals `body` for `row` under the newest key of the ring.
///
/// # Errors
/// `NoRandomness` when no nonce can be drawn.
pub(super) fn seal(keys: &KeyRing, row: &Row<'_>, body: &str) -> Result<String, CryptoError> {
    let sealed = keys.seal(body.as_bytes(), &row.aad())?;
    let parts = sealed.to_parts();
    Ok(format!(
        "{SEALED_PREFIX}{}:{}:{}:{}",
        sealed.key_version, parts.iv, parts.ciphertext, parts.auth_tag
    ))
}

/// The body `stored` holds for `row`: opened when sealed, as is when it is a
/// legacy plaintext body.
///
/// # Errors
/// `UnknownKeyVersion` when the ring lacks the sealing key; `DoesNotOpen` when
/// the body was tampered with, belongs to another row, or is in no known form.
pub(super) fn open(keys: &KeyRing, row: &Row<'_>, stored: &str) -> Result<String, CryptoError> {
    if stored.starts_with('{') {
        return Ok(stored.to_owned());
    }
    let fields = stored
        .strip_prefix(SEALED_PREFIX)
        .ok_or(CryptoError::DoesNotOpen)?;
    let mut fields = fields.split(':');
    let (Some(version), Some(iv), Some(ciphertext), Some(auth_tag), None) = (
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
    ) else {
        return Err(CryptoError::DoesNotOpen);
    };
    let version = version.parse().map_err(|_| CryptoError::DoesNotOpen)?;
    let parts = SealedParts {
        iv: iv.to_owned(),
        ciphertext: ciphertext.to_owned(),
        auth_tag: auth_tag.to_owned(),
    };
    let plain = keys.open(&Sealed::from_parts(version, &parts)?, &row.aad())?;
    String::from_utf8(plain).map_err(|_| CryptoError::DoesNotOpen)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = r#"{"data":{"createApiKey":{"secret":"sk_live_abc"}}}"#;

    fn ring() -> KeyRing {
        KeyRing::single(1, [7; 32])
    }

    fn row(id: Uuid) -> Row<'static> {
        Row {
            id,
            scope: "user:0190a000-0000-7000-8000-000000000001",
            request_hash: "ab12",
            status_code: 200,
            key: "order-1",
        }
    }

    #[test]
    fn a_sealed_body_hides_the_response_and_opens_for_its_row() {
        let row = row(Uuid::now_v7());
        let stored = seal(&ring(), &row, BODY).unwrap();
        assert!(stored.starts_with(SEALED_PREFIX), "{stored}");
        assert!(!stored.contains("sk_live_abc"));
        assert!(!stored.starts_with('{'));
        assert_eq!(open(&ring(), &row, &stored).unwrap(), BODY);
    }

    #[test]
    fn a_sealed_body_does_not_open_for_any_other_row() {
        let original = row(Uuid::now_v7());
        let stored = seal(&ring(), &original, BODY).unwrap();
        let others = [
            Row {
                id: Uuid::now_v7(),
                ..original
            },
            Row {
                scope: "user:0190a000-0000-7000-8000-000000000002",
                ..original
            },
            Row {
                request_hash: "ab13",
                ..original
            },
            Row {
                status_code: 500,
                ..original
            },
            Row {
                key: "order-2",
                ..original
            },
        ];
        for other in others {
            assert_eq!(
                open(&ring(), &other, &stored),
                Err(CryptoError::DoesNotOpen),
                "{other:?}"
            );
        }
    }

    #[test]
    fn a_tampered_sealed_body_does_not_open() {
        let row = row(Uuid::now_v7());
        let stored = seal(&ring(), &row, BODY).unwrap();
        let (head, tag) = stored.rsplit_once(':').unwrap();
        let flipped = if tag.starts_with('A') { "B" } else { "A" };
        let tampered = format!("{head}:{flipped}{}", &tag[1..]);
        assert_eq!(
            open(&ring(), &row, &tampered),
            Err(CryptoError::DoesNotOpen)
        );
        let truncated = &stored[..stored.len() - 4];
        assert_eq!(
            open(&ring(), &row, truncated),
            Err(CryptoError::DoesNotOpen)
        );
    }

    #[test]
    fn a_body_sealed_under_a_key_the_ring_lacks_is_refused() {
        let row = row(Uuid::now_v7());
        let stored = seal(&ring(), &row, BODY).unwrap();
        let other = KeyRing::single(2, [8; 32]);
        assert_eq!(
            open(&other, &row, &stored),
            Err(CryptoError::UnknownKeyVersion(1))
        );
    }

    #[test]
    fn a_legacy_plaintext_json_body_is_replayed_as_stored() {
        let row = row(Uuid::now_v7());
        assert_eq!(open(&ring(), &row, BODY).unwrap(), BODY);
    }

    #[test]
    fn text_in_no_known_form_is_refused() {
        let row = row(Uuid::now_v7());
        let stored = seal(&ring(), &row, BODY).unwrap();
        let v2 = stored.replacen("sealed:v1:", "sealed:v2:", 1);
        for bad in [
            "",
            "done",
            "[1]",
            " {}",
            v2.as_str(),
            "sealed:v1:",
            "sealed:v1:1:AAAA",
            "sealed:v1:x:AAAA:AAAA:AAAA",
        ] {
            assert_eq!(
                open(&ring(), &row, bad),
                Err(CryptoError::DoesNotOpen),
                "{bad}"
            );
        }
        let extra = format!("{stored}:AAAA");
        assert_eq!(open(&ring(), &row, &extra), Err(CryptoError::DoesNotOpen));
    }
}
