//! The authenticated principal. Every service call takes one; there is no ambient identity.

use uuid::Uuid;

/// What a user may do across the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// An ordinary customer.
    User,
    /// Operates the platform: reads across tenants, suspends users.
    Admin,
    /// May also make admins.
    Superadmin,
}

impl Role {
    /// The stored and wire form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Admin => "admin",
            Self::Superadmin => "superadmin",
        }
    }

    /// Parses the stored form; unknown text is the least privileged role.
    pub fn parse(text: &str) -> Self {
        match text {
            "admin" => Self::Admin,
            "superadmin" => Self::Superadmin,
            _ => Self::User,
        }
    }
}

/// What an API key may be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Permission {
    /// Queries.
    Read,
    /// Mutations.
    Write,
}

impl Permission {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
        }
    }

    /// Parses the stored form.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "read" => Some(Self::Read),
            "write" => Some(Self::Write),
            _ => None,
        }
    }
}

/// How the caller proved who they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A session from `login` or `register`.
    Session {
        /// The session row.
        session_id: Uuid,
    },
    /// An API key, limited to its permissions.
    ApiKey {
        /// The key row.
        key_id: Uuid,
        /// What the key allows.
        permissions: Vec<Permission>,
    },
}

/// The caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The user acting.
    pub user_id: Uuid,
    /// The user's role at the time the request was authenticated.
    pub role: Role,
    /// The credential used.
    pub credential: Credential,
}

impl Actor {
    /// True when this caller may run mutations.
    pub fn can_write(&self) -> bool {
        match &self.credential {
            Credential::Session { .. } => true,
            Credential::ApiKey { permissions, .. } => permissions.contains(&Permission::Write),
        }
    }

    /// The session behind this request, when it came with a session token.
    pub fn session_id(&self) -> Option<Uuid> {
        match self.credential {
            Credential::Session { session_id } => Some(session_id),
            Credential::ApiKey { .. } => None,
        }
    }

    /// True for admins and superadmins.
    pub fn is_admin(&self) -> bool {
        self.role >= Role::Admin
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_actor(permissions: Vec<Permission>) -> Actor {
        Actor {
            user_id: Uuid::now_v7(),
            role: Role::User,
            credential: Credential::ApiKey {
                key_id: Uuid::now_v7(),
                permissions,
            },
        }
    }

    #[test]
    fn read_only_keys_cannot_write() {
        assert!(!key_actor(vec![Permission::Read]).can_write());
        assert!(key_actor(vec![Permission::Read, Permission::Write]).can_write());
        assert_eq!(key_actor(vec![]).session_id(), None);
    }

    #[test]
    fn roles_round_trip_and_order_by_privilege() {
        for role in [Role::User, Role::Admin, Role::Superadmin] {
            assert_eq!(Role::parse(role.as_str()), role);
        }
        assert_eq!(Role::parse("root"), Role::User);
        assert!(Role::Superadmin > Role::Admin && Role::Admin > Role::User);
    }
}
