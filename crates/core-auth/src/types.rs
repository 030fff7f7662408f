//! Values parsed at the edge: once one exists, it is valid.

use crate::AuthError;

/// A syntactically valid email address, trimmed and lower-cased so that
/// uniqueness and lockout counting ignore case.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    /// The longest address we store (RFC 5321 path limit, as in seed 004).
    pub const MAX_LEN: usize = 320;

    /// Parses user input into an email.
    ///
    /// # Errors
    /// `BAD_USER_INPUT` on `email` when malformed or too long.
    pub fn parse(text: &str) -> Result<Self, AuthError> {
        let normalised = text.trim().to_lowercase();
        if normalised.len() > Self::MAX_LEN || !email_address::EmailAddress::is_valid(&normalised) {
            return Err(AuthError::invalid("email", "not a valid email address"));
        }
        Ok(Self(normalised))
    }

    /// The normalised address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Checks an optional free-text field: trimmed, empty means absent, and at most `max` characters.
///
/// # Errors
/// `BAD_USER_INPUT` on `field` when too long.
pub fn optional_text(
    field: &'static str,
    value: Option<String>,
    max: usize,
) -> Result<Option<String>, AuthError> {
    let Some(value) = value else { return Ok(None) };
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    if value.chars().count() > max {
        return Err(AuthError::invalid(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    Ok(Some(value.to_owned()))
}

pub use kernel::request::ClientInfo;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_and_lower_cased() {
        assert_eq!(
            Email::parse("  Ada@Example.COM ").unwrap().as_str(),
            "ada@example.com"
        );
    }

    #[test]
    fn malformed_or_overlong_emails_are_refused() {
        for bad in ["", "no-at-sign", "a@", "@b.c", "a b@c.d"] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
        let long = format!("{}@example.com", "a".repeat(320));
        assert!(Email::parse(&long).is_err());
    }

    #[test]
    fn optional_text_trims_and_bounds_length() {
        assert_eq!(optional_text("name", Some("  ".into()), 5).unwrap(), None);
        assert_eq!(
            optional_text("name", Some(" Ada ".into()), 5)
                .unwrap()
                .as_deref(),
            Some("Ada")
        );
        assert!(optional_text("name", Some("toolong".into()), 5).is_err());
    }
}
