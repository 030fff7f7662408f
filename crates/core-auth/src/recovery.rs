//! Account recovery and email verification: single-use links sent by mail.
//!
//! A link carries a random token of 256 bits; only its SHA-256 is stored, under
//! a unique index, so a token is found by one index lookup and a database leak
//! yields no usable link. Tokens are consumed by a conditional update (`... AND
//! used_at IS NULL`), so two concurrent uses cannot both succeed. Mail is
//! queued in the caller's transaction ([`kernel::mail::outbox`]), so a
//! refused or rolled-back request sends nothing.

use crate::entity::{
    email_verification_token as verification, password_reset_token as reset, user,
};
use crate::password::PasswordHash;
use crate::session::{RevocationReason, RevokeScope};
use crate::types::Email;
use crate::{Auth, AuthError};
use chrono::{DateTime, Duration, Utc};
use kernel::actor::Actor;
use kernel::crypto::{hash_token, random_token};
use kernel::id::new_id;
use kernel::mail::{OutgoingMail, outbox};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel,
    PaginatorTrait, QueryFilter, QueryOrder, Set,
};
use uuid::Uuid;

/// The `kind` of reset mail in the outbox.
pub const RESET_MAIL: &str = "password_reset";
/// The `kind` of verification mail in the outbox.
pub const VERIFICATION_MAIL: &str = "email_verification";
/// Longest token accepted; ours are 43 characters, anything much longer is refused unhashed.
const MAX_TOKEN_LEN: usize = 256;

/// The public base URL that links in mail point at, e.g. `https://app.example.com`.
/// Taken from configuration, never from a request's `Host` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl(String);

impl PublicUrl {
    /// The default for local development.
    pub const LOCAL: &str = "http://127.0.0.1:8080";

    /// Parses an absolute `http` or `https` URL without query or fragment.
    ///
    /// # Errors
    /// A message naming what is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let url = url::Url::parse(text).map_err(|e| format!("PUBLIC_URL is not a URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err("PUBLIC_URL must be an http or https URL with a host".into());
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err("PUBLIC_URL must not have a query or fragment".into());
        }
        Ok(Self(url.as_str().trim_end_matches('/').to_owned()))
    }

    /// `{base}/{path}`, for links that carry no secret.
    pub fn page(&self, path: &str) -> String {
        format!("{}/{path}", self.0)
    }

    /// `{base}/{path}?token={token}`; tokens are URL-safe base64, so need no escaping.
    pub fn link(&self, path: &str, token: &str) -> String {
        format!("{}/{path}?token={token}", self.0)
    }
}

impl Default for PublicUrl {
    fn default() -> Self {
        Self(Self::LOCAL.to_owned())
    }
}

/// Lifetimes and limits of recovery links.
#[derive(Debug, Clone)]
pub struct RecoverySettings {
    /// Where links point.
    pub public_url: PublicUrl,
    /// A reset link works this long (1 hour).
    pub reset_ttl: Duration,
    /// A verification link works this long (24 hours).
    pub verification_ttl: Duration,
    /// Reset (and verification) mails per account per hour (3).
    pub requests_per_hour: u64,
    /// `requestPasswordReset` answers no sooner than this after it starts, so
    /// its timing does not tell existing accounts from unknown ones.
    pub reset_answer_floor: std::time::Duration,
}

impl Default for RecoverySettings {
    fn default() -> Self {
        Self {
            public_url: PublicUrl::default(),
            reset_ttl: Duration::hours(1),
            verification_ttl: Duration::hours(24),
            requests_per_hour: 3,
            reset_answer_floor: std::time::Duration::from_millis(250),
        }
    }
}

/// A minimum response time: started before the work, awaited after the commit.
#[derive(Debug)]
pub struct AnswerFloor(tokio::time::Instant);

impl AnswerFloor {
    /// Starts the clock now, for an answer due `floor` later.
    pub fn start(floor: std::time::Duration) -> Self {
        Self(tokio::time::Instant::now() + floor)
    }

    /// Waits until the floor is reached (at once when already past).
    pub async fn wait(self) {
        tokio::time::sleep_until(self.0).await;
    }
}

const WINDOW: Duration = Duration::hours(1);

impl Auth {
    /// Sends a reset link to `email` when it belongs to an active account that
    /// has asked fewer than 3 times in the last hour. Always answers `true`:
    /// the answer must not reveal whether the account exists. The caller pads
    /// the response time with [`AnswerFloor`] after committing.
    ///
    /// # Errors
    /// Internal, when the database or randomness fails.
    #[tracing::instrument(name = "auth.request_password_reset", skip_all, err(level = "debug"))]
    pub async fn request_password_reset(
        &self,
        db: &impl ConnectionTrait,
        email: &Email,
    ) -> Result<bool, AuthError> {
        let found = user::Entity::find()
            .filter(user::Column::Email.eq(email.as_str()))
            .one(db)
            .await?;
        let Some(user) = found.filter(|u| u.suspended_at.is_none()) else {
            return Ok(true);
        };
        let now = self.clock.now();
        lock_user(db, user.id).await?;
        if self
            .recent_requests::<reset::Entity>(db, user.id, now)
            .await?
            .is_some()
        {
            tracing::info!(user_id = %user.id, "password reset over the hourly limit; nothing sent");
            return Ok(true);
        }
        let token = random_token()?;
        reset::ActiveModel {
            id: Set(new_id()),
            user_id: Set(user.id),
            token_hash: Set(hash_token(&token)),
            expires_at: Set(now + self.settings.recovery.reset_ttl),
            used_at: Set(None),
            created_at: Set(now),
        }
        .insert(db)
        .await?;
        let link = self
            .settings
            .recovery
            .public_url
            .link("reset-password", &token);
        let minutes = self.settings.recovery.reset_ttl.num_minutes();
        let mail = OutgoingMail {
            to: user.email.clone(),
            subject: "Reset your password".into(),
            body: format!(
                "Someone asked to reset the password of your account.\n\n\
                 To choose a new password, open this link within {minutes} minutes:\n\n{link}\n\n\
                 The link works once. If you did not ask for this, ignore this mail: \
                 your password stays as it is.\n"
            ),
            kind: RESET_MAIL.into(),
        };
        outbox::enqueue(db, &mail, now).await?;
        Ok(true)
    }

    /// Sets a new password with a reset token, consumes the token (and every
    /// other open reset token of the user), marks the email verified (the link
    /// proved the mailbox) and revokes every session of the user.
    ///
    /// # Errors
    /// `BAD_USER_INPUT` on `token` when it is unknown, used, of another kind, or expired.
    #[tracing::instrument(name = "auth.reset_password", skip_all, err(level = "debug"))]
    pub async fn reset_password(
        &self,
        db: &impl ConnectionTrait,
        token: &str,
        new: PasswordHash,
    ) -> Result<Uuid, AuthError> {
        let now = self.clock.now();
        let row = find_by_token::<reset::Entity>(db, token, reset::Column::TokenHash).await?;
        if row.used_at.is_some() {
            return Err(AuthError::RecoveryTokenInvalid);
        }
        if row.expires_at <= now {
            return Err(AuthError::RecoveryTokenExpired);
        }
        let consumed = reset::Entity::update_many()
            .col_expr(reset::Column::UsedAt, Expr::value(now))
            .filter(reset::Column::Id.eq(row.id))
            .filter(reset::Column::UsedAt.is_null())
            .exec(db)
            .await?;
        // Zero rows: a concurrent reset consumed this token first.
        if consumed.rows_affected != 1 {
            return Err(AuthError::RecoveryTokenInvalid);
        }
        // Older links mailed to the same account stop working too.
        reset::Entity::update_many()
            .col_expr(reset::Column::UsedAt, Expr::value(now))
            .filter(reset::Column::UserId.eq(row.user_id))
            .filter(reset::Column::UsedAt.is_null())
            .exec(db)
            .await?;
        let user = user::Entity::find_by_id(row.user_id)
            .one(db)
            .await?
            .filter(|u| u.suspended_at.is_none())
            .ok_or(AuthError::RecoveryTokenInvalid)?;
        let email = user.email.clone();
        let verified = user.email_verified_at.unwrap_or(now);
        let mut active = user.into_active_model();
        active.password_hash = Set(Some(new.into_string()));
        active.email_verified_at = Set(Some(verified));
        active.updated_at = Set(now);
        let user = active.update(db).await?;
        self.revoke_sessions(
            db,
            user.id,
            RevokeScope::All,
            RevocationReason::PasswordReset,
        )
        .await?;
        // Whoever reset the password holds the mailbox: lift a sign-in lockout.
        self.clear_attempts(db, &email).await?;
        Ok(user.id)
    }

    /// Sends the caller a link that verifies their email address.
    ///
    /// # Errors
    /// `CONFLICT` when already verified; `RATE_LIMITED` after 3 requests within an hour.
    #[tracing::instrument(
        name = "auth.request_email_verification",
        skip_all,
        err(level = "debug")
    )]
    pub async fn request_email_verification(
        &self,
        db: &impl ConnectionTrait,
        actor: &Actor,
    ) -> Result<(), AuthError> {
        let user = user::Entity::find_by_id(actor.user_id)
            .one(db)
            .await?
            .ok_or(AuthError::InvalidToken)?;
        if user.email_verified_at.is_some() {
            return Err(AuthError::AlreadyVerified);
        }
        let now = self.clock.now();
        lock_user(db, user.id).await?;
        if let Some(oldest) = self
            .recent_requests::<verification::Entity>(db, user.id, now)
            .await?
        {
            let retry_after = (oldest + WINDOW - now).num_seconds().max(1) as u64;
            return Err(AuthError::TooManyRequests { retry_after });
        }
        let token = random_token()?;
        verification::ActiveModel {
            id: Set(new_id()),
            user_id: Set(user.id),
            email: Set(user.email.clone()),
            token_hash: Set(hash_token(&token)),
            expires_at: Set(now + self.settings.recovery.verification_ttl),
            verified_at: Set(None),
            created_at: Set(now),
        }
        .insert(db)
        .await?;
        let link = self
            .settings
            .recovery
            .public_url
            .link("verify-email", &token);
        let hours = self.settings.recovery.verification_ttl.num_hours();
        let mail = OutgoingMail {
            to: user.email,
            subject: "Verify your email address".into(),
            body: format!(
                "To confirm that this address is yours, open this link within {hours} hours:\n\n\
                 {link}\n\nIf you did not ask for this, ignore this mail.\n"
            ),
            kind: VERIFICATION_MAIL.into(),
        };
        outbox::enqueue(db, &mail, now).await?;
        Ok(())
    }

    /// Marks an email address verified with a verification token. Works
    /// signed out (the link may be opened on another device); the token is
    /// the proof. A token verifies only the address it was sent to.
    ///
    /// # Errors
    /// `BAD_USER_INPUT` on `token` when it is unknown, used, of another kind,
    /// expired, or the account's address changed since.
    #[tracing::instrument(name = "auth.verify_email", skip_all, err(level = "debug"))]
    pub async fn verify_email(
        &self,
        db: &impl ConnectionTrait,
        token: &str,
    ) -> Result<Uuid, AuthError> {
        let now = self.clock.now();
        let row = find_by_token::<verification::Entity>(db, token, verification::Column::TokenHash)
            .await?;
        if row.verified_at.is_some() {
            return Err(AuthError::RecoveryTokenInvalid);
        }
        if row.expires_at <= now {
            return Err(AuthError::RecoveryTokenExpired);
        }
        let consumed = verification::Entity::update_many()
            .col_expr(verification::Column::VerifiedAt, Expr::value(now))
            .filter(verification::Column::Id.eq(row.id))
            .filter(verification::Column::VerifiedAt.is_null())
            .exec(db)
            .await?;
        if consumed.rows_affected != 1 {
            return Err(AuthError::RecoveryTokenInvalid);
        }
        let user = user::Entity::find_by_id(row.user_id)
            .one(db)
            .await?
            .filter(|u| u.email == row.email)
            .ok_or(AuthError::RecoveryTokenInvalid)?;
        if user.email_verified_at.is_none() {
            let mut active = user.clone().into_active_model();
            active.email_verified_at = Set(Some(now));
            active.updated_at = Set(now);
            active.update(db).await?;
        }
        Ok(user.id)
    }

    /// When the user has used up the hourly allowance of `E` tokens, the
    /// creation time of the oldest one in the window (which decides when the
    /// next request may succeed); `None` when another request is allowed.
    async fn recent_requests<E: TokenTable>(
        &self,
        db: &impl ConnectionTrait,
        user_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, AuthError>
    where
        E::Model: Sync,
    {
        let recent = E::find()
            .filter(E::user_id().eq(user_id))
            .filter(E::created_at().gt(now - WINDOW));
        let count = recent.clone().count(db).await?;
        if count < self.settings.recovery.requests_per_hour {
            return Ok(None);
        }
        let oldest = recent
            .order_by_asc(E::created_at())
            .one(db)
            .await?
            .map(|m| E::created_at_of(&m));
        Ok(Some(oldest.unwrap_or(now)))
    }
}

/// Serialises concurrent requests for one user until the transaction ends:
/// a write to the user's row takes its row lock on PostgreSQL and the write
/// lock on SQLite, so the count that follows sees every earlier request.
/// (sea-query drops `FOR UPDATE` on SQLite, hence a write rather than a locking read.)
/// On PostgreSQL the no-op update takes `FOR NO KEY UPDATE`, which does not
/// block other transactions inserting rows that reference the user.
///
/// # Errors
/// When the database fails.
pub(crate) async fn lock_user(db: &impl ConnectionTrait, user_id: Uuid) -> Result<(), DbErr> {
    user::Entity::update_many()
        .col_expr(user::Column::UpdatedAt, Expr::col(user::Column::UpdatedAt))
        .filter(user::Column::Id.eq(user_id))
        .exec(db)
        .await?;
    Ok(())
}

/// Looks a token up by its hash; unknown and over-long tokens are the same refusal.
async fn find_by_token<E: EntityTrait>(
    db: &impl ConnectionTrait,
    token: &str,
    hash_column: E::Column,
) -> Result<E::Model, AuthError> {
    if token.is_empty() || token.len() > MAX_TOKEN_LEN {
        return Err(AuthError::RecoveryTokenInvalid);
    }
    E::find()
        .filter(hash_column.eq(hash_token(token)))
        .one(db)
        .await?
        .ok_or(AuthError::RecoveryTokenInvalid)
}

/// The columns the hourly limit reads, shared by both token tables.
trait TokenTable: EntityTrait {
    fn user_id() -> Self::Column;
    fn created_at() -> Self::Column;
    fn created_at_of(model: &Self::Model) -> DateTime<Utc>;
}

impl TokenTable for reset::Entity {
    fn user_id() -> Self::Column {
        reset::Column::UserId
    }
    fn created_at() -> Self::Column {
        reset::Column::CreatedAt
    }
    fn created_at_of(model: &Self::Model) -> DateTime<Utc> {
        model.created_at
    }
}

impl TokenTable for verification::Entity {
    fn user_id() -> Self::Column {
        verification::Column::UserId
    }
    fn created_at() -> Self::Column {
        verification::Column::CreatedAt
    }
    fn created_at_of(model: &Self::Model) -> DateTime<Utc> {
        model.created_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_url_is_parsed_and_links_are_built_from_it() {
        let url = PublicUrl::parse("https://app.example.com/").unwrap();
        assert_eq!(
            url.link("reset-password", "abc"),
            "https://app.example.com/reset-password?token=abc"
        );
        for bad in [
            "app.example.com",
            "ftp://x.y",
            "https://x.y/?a=1",
            "https://x.y/#f",
        ] {
            assert!(PublicUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
