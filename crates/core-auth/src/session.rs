//! Sessions and API keys as bearer tokens: issuing, resolving, revoking.

use crate::entity::{api_key, session, user};
use crate::types::ClientInfo;
use crate::{Auth, AuthError};
use chrono::{DateTime, Duration, Utc};
use kernel::actor::{Actor, Credential, Role};
use kernel::crypto::{constant_time_eq, hash_token, random_token};
use kernel::id::new_id;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};
use uuid::Uuid;

/// Prefix of every session token.
pub const SESSION_PREFIX: &str = "sess_";
/// Prefix of every API key secret; tells the two kinds of token apart.
pub const API_KEY_PREFIX: &str = "ak_";
/// Last-used timestamps are written at most this often, so that reads stay reads.
const TOUCH_EVERY: Duration = Duration::seconds(60);

/// A session just issued; `token` is shown once and never stored.
#[derive(Debug, Clone)]
pub struct IssuedSession {
    /// The bearer token.
    pub token: String,
    /// When the session ends at the latest.
    pub expires_at: DateTime<Utc>,
    /// The signed-in user.
    pub user: user::Model,
}

impl Auth {
    /// Starts a session for `user`.
    ///
    /// # Errors
    /// Internal, when randomness or the database fails.
    #[tracing::instrument(name = "auth.issue_session", skip_all, err(level = "debug"))]
    pub async fn issue_session(
        &self,
        db: &impl ConnectionTrait,
        user: user::Model,
        client: &ClientInfo,
    ) -> Result<IssuedSession, AuthError> {
        let now = self.clock.now();
        let token = format!("{SESSION_PREFIX}{}", random_token()?);
        let expires_at = now + self.settings.session_absolute_timeout;
        session::ActiveModel {
            id: Set(new_id()),
            user_id: Set(user.id),
            token_hash: Set(hash_token(&token)),
            ip_address: Set(Some(client.ip.chars().take(45).collect())),
            user_agent: Set(client.user_agent.clone()),
            created_at: Set(now),
            last_seen_at: Set(now),
            expires_at: Set(expires_at),
            revoked_at: Set(None),
            revoked_reason: Set(None),
        }
        .insert(db)
        .await?;
        Ok(IssuedSession {
            token,
            expires_at,
            user,
        })
    }

    /// Resolves a bearer token (session or API key) to the acting user.
    ///
    /// # Errors
    /// `UNAUTHENTICATED` for unknown, expired, revoked or suspended credentials.
    #[tracing::instrument(name = "auth.authenticate", skip_all, err(level = "debug"))]
    pub async fn authenticate(
        &self,
        db: &impl ConnectionTrait,
        token: &str,
    ) -> Result<Actor, AuthError> {
        if token.len() > 256 {
            return Err(AuthError::InvalidToken);
        }
        if token.starts_with(API_KEY_PREFIX) {
            self.authenticate_api_key(db, token).await
        } else {
            self.authenticate_session(db, token).await
        }
    }

    async fn authenticate_session(
        &self,
        db: &impl ConnectionTrait,
        token: &str,
    ) -> Result<Actor, AuthError> {
        let now = self.clock.now();
        let hash = hash_token(token);
        let (found, user) = session::Entity::find()
            .filter(session::Column::TokenHash.eq(hash.as_str()))
            .find_also_related(user::Entity)
            .one(db)
            .await?
            .ok_or(AuthError::InvalidToken)?;
        let user = user.ok_or(AuthError::InvalidToken)?;
        if found.revoked_at.is_some()
            && RevocationReason::is_suspicious_reuse(&found.revoked_reason)
        {
            self.note_revoked_token(db, user.id, "session", found.id)
                .await;
        }
        let alive = found.revoked_at.is_none()
            && found.expires_at > now
            && found.last_seen_at + self.settings.session_idle_timeout > now
            && user.suspended_at.is_none()
            && constant_time_eq(found.token_hash.as_bytes(), hash.as_bytes());
        if !alive {
            return Err(AuthError::InvalidToken);
        }
        if now - found.last_seen_at >= TOUCH_EVERY {
            touch::<session::Entity>(
                db,
                session::Column::LastSeenAt,
                session::Column::Id,
                found.id,
                now,
            )
            .await?;
        }
        Ok(Actor {
            user_id: user.id,
            role: Role::parse(&user.role),
            credential: Credential::Session {
                session_id: found.id,
            },
        })
    }

    async fn authenticate_api_key(
        &self,
        db: &impl ConnectionTrait,
        token: &str,
    ) -> Result<Actor, AuthError> {
        let now = self.clock.now();
        let hash = hash_token(token);
        let (key, user) = api_key::Entity::find()
            .filter(api_key::Column::KeyHash.eq(hash.as_str()))
            .find_also_related(user::Entity)
            .one(db)
            .await?
            .ok_or(AuthError::InvalidToken)?;
        let user = user.ok_or(AuthError::InvalidToken)?;
        if key.revoked_at.is_some() && RevocationReason::is_suspicious_reuse(&key.revoked_reason) {
            self.note_revoked_token(db, user.id, "api_key", key.id)
                .await;
        }
        let alive = key.is_active
            && key.expires_at.is_none_or(|at| at > now)
            && user.suspended_at.is_none()
            && constant_time_eq(key.key_hash.as_bytes(), hash.as_bytes());
        if !alive {
            return Err(AuthError::InvalidToken);
        }
        if key.last_used_at.is_none_or(|at| now - at >= TOUCH_EVERY) {
            touch::<api_key::Entity>(
                db,
                api_key::Column::LastUsedAt,
                api_key::Column::Id,
                key.id,
                now,
            )
            .await?;
        }
        Ok(Actor {
            user_id: user.id,
            role: Role::parse(&user.role),
            credential: Credential::ApiKey {
                key_id: key.id,
                permissions: crate::api_keys::permissions_of(&key),
            },
        })
    }

    /// Revokes the calling session.
    ///
    /// # Errors
    /// `FORBIDDEN` when called with an API key.
    #[tracing::instrument(name = "auth.logout", skip_all, err(level = "debug"))]
    pub async fn logout(&self, db: &impl ConnectionTrait, actor: &Actor) -> Result<(), AuthError> {
        let session_id = actor.session_id().ok_or(AuthError::SessionRequired)?;
        self.revoke_sessions(
            db,
            actor.user_id,
            RevokeScope::Only(session_id),
            RevocationReason::Logout,
        )
        .await
    }

    /// Revokes sessions of `user_id` that are still live, for `reason`.
    ///
    /// # Errors
    /// Internal, when the database fails.
    #[tracing::instrument(name = "auth.revoke_sessions", skip_all, err(level = "debug"))]
    pub async fn revoke_sessions(
        &self,
        db: &impl ConnectionTrait,
        user_id: Uuid,
        scope: RevokeScope,
        reason: RevocationReason,
    ) -> Result<(), AuthError> {
        let mut update = session::Entity::update_many()
            .col_expr(session::Column::RevokedAt, Expr::value(self.clock.now()))
            .col_expr(session::Column::RevokedReason, Expr::value(reason.as_str()))
            .filter(session::Column::UserId.eq(user_id))
            .filter(session::Column::RevokedAt.is_null());
        update = match scope {
            RevokeScope::Only(id) => update.filter(session::Column::Id.eq(id)),
            RevokeScope::AllBut(id) => update.filter(session::Column::Id.ne(id)),
            RevokeScope::All => update,
        };
        update.exec(db).await?;
        Ok(())
    }
}

/// Records that a credential was used: one update by primary key.
async fn touch<E: EntityTrait>(
    db: &impl ConnectionTrait,
    column: E::Column,
    id_column: E::Column,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<(), AuthError> {
    E::update_many()
        .col_expr(column, Expr::value(now))
        .filter(id_column.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Why a credential was revoked; stored in `revoked_reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevocationReason {
    /// The owner signed out of this session.
    Logout,
    /// The owner changed the password; the other sessions end.
    PasswordChanged,
    /// The password was reset through the mailbox; every session ends.
    PasswordReset,
    /// An admin suspended the account.
    Suspended,
    /// The owner revoked the API key.
    RevokedByOwner,
}

impl RevocationReason {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Logout => "logout",
            Self::PasswordChanged => "password_changed",
            Self::PasswordReset => "password_reset",
            Self::Suspended => "suspended",
            Self::RevokedByOwner => "revoked_by_owner",
        }
    }

    /// Whether presenting a credential revoked for `stored` is worth a
    /// `suspicious_token_use` event. A session its owner signed out of is
    /// not: a stale tab or an old client sends it back all the time, and
    /// every such report buried the real ones. Every other reason ends a
    /// credential because it may be in the wrong hands (a password changed
    /// or reset, a suspension, a key its owner withdrew), and so does a row
    /// revoked before reasons were kept (`None`).
    pub fn is_suspicious_reuse(stored: &Option<String>) -> bool {
        stored.as_deref() != Some(Self::Logout.as_str())
    }
}

/// Which of a user's sessions to revoke.
#[derive(Debug, Clone, Copy)]
pub enum RevokeScope {
    /// Just this one.
    Only(Uuid),
    /// Every one except this one.
    AllBut(Uuid),
    /// Every one.
    All,
}
