//! Registration, sign-in and password changes.

use crate::entity::{login_attempt, user};
use crate::password::{self, NewPassword, PasswordHash};
use crate::session::{IssuedSession, RevocationReason, RevokeScope};
use crate::types::{ClientInfo, Email, optional_text};
use crate::{Auth, AuthError};
use kernel::actor::Actor;
use kernel::error::is_unique_violation;
use kernel::id::new_id;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    IntoActiveModel, QueryFilter, Set, TransactionTrait,
};

/// A parsed registration; the password is already hashed.
#[derive(Debug, Clone)]
pub struct Register {
    /// The new account's email.
    pub email: Email,
    /// The hashed password.
    pub password: PasswordHash,
    /// Display name, at most 100 characters.
    pub name: Option<String>,
}

impl Register {
    /// Parses and hashes the raw input. Hashing happens here, before any
    /// transaction is opened, so the database is not held during it.
    ///
    /// # Errors
    /// `BAD_USER_INPUT` naming the field at fault.
    #[tracing::instrument(name = "auth.parse", skip_all, err(level = "debug"))]
    pub async fn parse(
        email: &str,
        password: String,
        name: Option<String>,
    ) -> Result<Self, AuthError> {
        let email = Email::parse(email)?;
        let name = optional_text("name", name, 100)?;
        let password = NewPassword::parse("password", password)?.hash().await?;
        Ok(Self {
            email,
            password,
            name,
        })
    }
}

/// Why a sign-in failed, as recorded in `login_attempts`; never shown to clients.
#[derive(Debug, Clone, Copy)]
enum Failure {
    UnknownEmail,
    WrongPassword,
    Suspended,
    LockedOut,
}

impl Failure {
    fn as_str(self) -> &'static str {
        match self {
            Self::UnknownEmail => "unknown_email",
            Self::WrongPassword => "wrong_password",
            Self::Suspended => "suspended",
            Self::LockedOut => "locked_out",
        }
    }
}

impl Auth {
    /// Creates an account and signs it in.
    ///
    /// # Errors
    /// `CONFLICT` on `email` when the address is taken (in any letter case).
    #[tracing::instrument(name = "auth.register", skip_all, err(level = "debug"))]
    pub async fn register(
        &self,
        db: &impl ConnectionTrait,
        req: Register,
        client: &ClientInfo,
    ) -> Result<IssuedSession, AuthError> {
        let now = self.clock.now();
        let user = user::ActiveModel {
            id: Set(new_id()),
            email: Set(req.email.as_str().to_owned()),
            password_hash: Set(Some(req.password.into_string())),
            name: Set(req.name),
            open_id: Set(None),
            google_id: Set(None),
            login_method: Set("email".into()),
            role: Set("user".into()),
            onboarding_completed: Set(false),
            suspended_at: Set(None),
            suspension_reason: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            last_signed_in: Set(now),
            email_verified_at: Set(None),
        }
        .insert(db)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                AuthError::EmailTaken
            } else {
                e.into()
            }
        })?;
        self.issue_session(db, user, client).await
    }

    /// Signs in with email and password.
    ///
    /// Takes the pool rather than a transaction: the attempt counter and the
    /// `login_attempts` row of a refused sign-in must persist, while the
    /// success path (session, counter reset, record) commits as one transaction.
    ///
    /// # Errors
    /// `UNAUTHENTICATED` alike for unknown email, wrong password and suspended
    /// account; `RATE_LIMITED` when the email is locked out; `BAD_USER_INPUT`
    /// for a malformed email or an over-long password.
    #[tracing::instrument(name = "auth.login", skip_all, err(level = "debug"))]
    pub async fn login(
        &self,
        db: &DatabaseConnection,
        email: &str,
        password: String,
        client: &ClientInfo,
    ) -> Result<IssuedSession, AuthError> {
        let email = Email::parse(email)?;
        password::check_max("password", &password)?;
        let attempts = match self.reserve_attempt(db, email.as_str()).await {
            Ok(attempts) => attempts,
            Err(refusal) => {
                self.record_attempt(db, &email, client, Some(Failure::LockedOut))
                    .await?;
                return Err(refusal);
            }
        };
        let found = user::Entity::find()
            .filter(user::Column::Email.eq(email.as_str()))
            .one(db)
            .await?;
        let stored = found.as_ref().and_then(|u| u.password_hash.clone());
        let verified = password::verify(password, stored).await?;
        let failure = match &found {
            None => Some(Failure::UnknownEmail),
            Some(_) if !verified => Some(Failure::WrongPassword),
            Some(u) if u.suspended_at.is_some() => Some(Failure::Suspended),
            Some(_) => None,
        };
        let found_id = found.as_ref().map(|u| u.id);
        let (Some(user), None) = (found, failure) else {
            self.record_attempt(db, &email, client, failure).await?;
            self.note_failed_sign_in(db, &email, found_id, client, attempts)
                .await?;
            return Err(AuthError::InvalidCredentials);
        };
        let txn = db.begin().await?;
        self.clear_attempts(&txn, email.as_str()).await?;
        self.record_attempt(&txn, &email, client, None).await?;
        let mut active = user.into_active_model();
        active.last_signed_in = Set(self.clock.now());
        let user = active.update(&txn).await?;
        let issued = self.issue_session(&txn, user, client).await?;
        txn.commit().await?;
        Ok(issued)
    }

    async fn record_attempt(
        &self,
        db: &impl ConnectionTrait,
        email: &Email,
        client: &ClientInfo,
        failure: Option<Failure>,
    ) -> Result<(), AuthError> {
        login_attempt::ActiveModel {
            id: Set(new_id()),
            email: Set(email.as_str().to_owned()),
            ip_address: Set(client.ip.chars().take(45).collect()),
            user_agent: Set(client.user_agent.clone()),
            success: Set(failure.is_none()),
            failure_reason: Set(failure.map(|f| f.as_str().to_owned())),
            attempted_at: Set(self.clock.now()),
        }
        .insert(db)
        .await?;
        Ok(())
    }

    /// Changes the caller's password and signs out every other session.
    ///
    /// # Errors
    /// `FORBIDDEN` with an API key; `BAD_USER_INPUT` on `currentPassword` when wrong.
    #[tracing::instrument(name = "auth.change_password", skip_all, err(level = "debug"))]
    pub async fn change_password(
        &self,
        db: &impl ConnectionTrait,
        actor: &Actor,
        current: String,
        new: PasswordHash,
    ) -> Result<(), AuthError> {
        let session_id = actor.session_id().ok_or(AuthError::SessionRequired)?;
        password::check_max("currentPassword", &current)?;
        let user = user::Entity::find_by_id(actor.user_id)
            .one(db)
            .await?
            .ok_or(AuthError::InvalidToken)?;
        if !password::verify(current, user.password_hash.clone()).await? {
            return Err(AuthError::WrongCurrentPassword);
        }
        let mut active = user.into_active_model();
        active.password_hash = Set(Some(new.into_string()));
        active.updated_at = Set(self.clock.now());
        active.update(db).await?;
        self.revoke_sessions(
            db,
            actor.user_id,
            RevokeScope::AllBut(session_id),
            RevocationReason::PasswordChanged,
        )
        .await
    }

    /// The acting user's account.
    ///
    /// # Errors
    /// Internal, when the database fails.
    #[tracing::instrument(name = "auth.me", skip_all, err(level = "debug"))]
    pub async fn me(
        &self,
        db: &impl ConnectionTrait,
        actor: &Actor,
    ) -> Result<Option<user::Model>, AuthError> {
        Ok(user::Entity::find_by_id(actor.user_id).one(db).await?)
    }
}
