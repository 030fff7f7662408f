//! Platform administration. Every service here takes an [`AdminCap`], which
//! exists only for callers whose role is `admin` or `superadmin`: holding one
//! is the proof, so no admin service can be called without the check.

pub mod records;
pub mod users;

use kernel::Error;
use kernel::actor::{Actor, Role};
use uuid::Uuid;

/// Proof that the caller is an admin or superadmin.
///
/// Built only by [`AdminCap::check`] from an authenticated [`Actor`], whose role
/// is read from the database on every request, so a demotion takes effect at
/// once. Sessions and API keys both qualify: an admin's key is how operators
/// script; a read-only key still cannot run admin mutations.
#[derive(Debug, Clone)]
pub struct AdminCap {
    actor: Actor,
}

impl AdminCap {
    /// Grants the capability to admins and superadmins.
    ///
    /// # Errors
    /// `FORBIDDEN` for every other role.
    pub fn check(actor: &Actor) -> Result<Self, Error> {
        if actor.is_admin() {
            Ok(Self {
                actor: actor.clone(),
            })
        } else {
            Err(Error::Forbidden("this requires the admin role"))
        }
    }

    /// The admin acting.
    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    /// The admin's user id.
    pub fn user_id(&self) -> Uuid {
        self.actor.user_id
    }

    /// The admin's role: `Admin` or `Superadmin`.
    pub fn role(&self) -> Role {
        self.actor.role
    }

    /// True for superadmins, who may also make and change admins.
    pub fn is_superadmin(&self) -> bool {
        self.actor.role == Role::Superadmin
    }
}

/// A time range `[from, to)`; either end may be open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeRange {
    from: Option<chrono::DateTime<chrono::Utc>>,
    to: Option<chrono::DateTime<chrono::Utc>>,
}

impl TimeRange {
    /// Parses a range; `from` is inclusive, `to` exclusive.
    ///
    /// # Errors
    /// `BAD_USER_INPUT` on `to` when it is not after `from`.
    pub fn parse(
        from: Option<chrono::DateTime<chrono::Utc>>,
        to: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<Self, Error> {
        if let (Some(f), Some(t)) = (from, to)
            && t <= f
        {
            return Err(Error::bad_input("to", "must be after from"));
        }
        Ok(Self { from, to })
    }

    /// The inclusive start.
    pub fn from(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.from
    }

    /// The exclusive end.
    pub fn to(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.to
    }
}

/// Parses an optional exact-match text filter: trimmed, empty means none, at most `max` characters.
///
/// # Errors
/// `BAD_USER_INPUT` on `field` when too long.
pub fn text_filter(
    field: &'static str,
    value: Option<String>,
    max: usize,
) -> Result<Option<String>, Error> {
    crate::types::optional_text(field, value, max).map_err(Into::into)
}
