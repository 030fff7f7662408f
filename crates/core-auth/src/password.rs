//! Passwords: parsed for length, hashed with argon2id off the async workers.
//!
//! `Argon2::default()` is argon2id with OWASP's parameters (m=19456 KiB, t=2, p=1).

use crate::AuthError;
use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use std::sync::OnceLock;

/// Shortest password accepted at registration.
pub const MIN_LEN: usize = 8;
/// Longest password accepted anywhere; longer ones are refused before hashing,
/// so a megabyte "password" costs nothing.
pub const MAX_LEN: usize = 128;

/// A password that satisfies the length policy.
#[derive(Clone)]
pub struct NewPassword(String);

impl std::fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NewPassword(..)")
    }
}

impl NewPassword {
    /// Parses a new password for `field`.
    ///
    /// # Errors
    /// `BAD_USER_INPUT` when shorter than 8 or longer than 128 characters.
    pub fn parse(field: &'static str, text: String) -> Result<Self, AuthError> {
        check_max(field, &text)?;
        if text.chars().count() < MIN_LEN {
            return Err(AuthError::invalid(
                field,
                format!("must be at least {MIN_LEN} characters"),
            ));
        }
        Ok(Self(text))
    }

    /// Hashes the password on a blocking thread.
    ///
    /// # Errors
    /// Internal, when hashing fails.
    pub async fn hash(self) -> Result<PasswordHash, AuthError> {
        let hash = tokio::task::spawn_blocking(move || {
            Argon2::default()
                .hash_password(self.0.as_bytes())
                .map(|h| h.to_string())
                .map_err(|e| AuthError::Hashing(e.to_string()))
        })
        .await
        .map_err(|e| AuthError::Hashing(e.to_string()))??;
        Ok(PasswordHash(hash))
    }
}

/// Refuses an over-long password before any hashing.
///
/// # Errors
/// `BAD_USER_INPUT` on `field` when longer than 128 characters.
pub fn check_max(field: &'static str, text: &str) -> Result<(), AuthError> {
    // Bytes bound the work even for multi-byte text; characters are the policy.
    if text.len() > MAX_LEN * 4 || text.chars().count() > MAX_LEN {
        return Err(AuthError::invalid(
            field,
            format!("must be at most {MAX_LEN} characters"),
        ));
    }
    Ok(())
}

/// A PHC-format argon2id hash, produced only by [`NewPassword::hash`].
#[derive(Debug, Clone)]
pub struct PasswordHash(String);

impl PasswordHash {
    /// The stored form.
    pub fn into_string(self) -> String {
        self.0
    }
}

/// A hash of a random password, verified against when the account does not
/// exist so that unknown emails cost the same time as known ones.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let random = kernel::crypto::random_token().unwrap_or_else(|_| "dummy".repeat(8));
        Argon2::default()
            .hash_password(random.as_bytes())
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

/// Verifies `candidate` against `stored`, or against a dummy hash when there is
/// none, taking the same time either way.
///
/// # Errors
/// Internal, when the hashing worker fails.
pub async fn verify(candidate: String, stored: Option<String>) -> Result<bool, AuthError> {
    tokio::task::spawn_blocking(move || {
        let real = stored.is_some();
        let hash = stored.unwrap_or_else(|| dummy_hash().to_owned());
        let matches = Argon2::default()
            .verify_password(candidate.as_bytes(), hash.as_str())
            .is_ok();
        real && matches
    })
    .await
    .map_err(|e| AuthError::Hashing(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_policy_is_eight_to_one_hundred_twenty_eight() {
        assert!(NewPassword::parse("password", "short".into()).is_err());
        assert!(NewPassword::parse("password", "a".repeat(8)).is_ok());
        assert!(NewPassword::parse("password", "a".repeat(128)).is_ok());
        assert!(NewPassword::parse("password", "a".repeat(129)).is_err());
        assert!(check_max("password", &"é".repeat(129)).is_err());
    }

    #[tokio::test]
    async fn hashes_are_argon2id_with_owasp_parameters_and_verify() {
        let hash = NewPassword::parse("password", "correct horse".into())
            .unwrap()
            .hash()
            .await
            .unwrap()
            .into_string();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(
            verify("correct horse".into(), Some(hash.clone()))
                .await
                .unwrap()
        );
        assert!(!verify("wrong horse".into(), Some(hash)).await.unwrap());
    }

    #[tokio::test]
    async fn missing_hash_never_verifies() {
        assert!(!verify("anything".into(), None).await.unwrap());
    }
}
