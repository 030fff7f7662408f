//! API keys: created with a secret shown once, listed without it, revoked by owner.

use crate::entity::api_key;
use crate::session::{API_KEY_PREFIX, RevocationReason};
use crate::types::optional_text;
use crate::{Auth, AuthError};
use chrono::{DateTime, Utc};
use kernel::actor::{Actor, Permission};
use kernel::crypto::{hash_token, random_token};
use kernel::id::new_id;
use kernel::page::{Page, Window};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};
use uuid::Uuid;

/// Characters of the secret kept visible, so users can tell keys apart.
const VISIBLE_PREFIX: usize = 12;

/// A parsed request to create a key.
#[derive(Debug, Clone)]
pub struct CreateApiKey {
    /// A label, 1 to 255 characters.
    pub name: String,
    /// When the key stops working, if ever; in the future.
    pub expires_at: Option<DateTime<Utc>>,
    /// What the key allows; never empty.
    pub permissions: Vec<Permission>,
}

impl CreateApiKey {
    /// Parses the raw input; `permissions` defaults to read and write.
    ///
    /// # Errors
    /// `BAD_USER_INPUT` naming the field at fault.
    pub fn parse(
        auth: &Auth,
        name: String,
        expires_at: Option<DateTime<Utc>>,
        permissions: Option<Vec<Permission>>,
    ) -> Result<Self, AuthError> {
        let name = optional_text("name", Some(name), 255)?
            .ok_or_else(|| AuthError::invalid("name", "must not be empty"))?;
        if expires_at.is_some_and(|at| at <= auth.clock.now()) {
            return Err(AuthError::invalid("expiresAt", "must be in the future"));
        }
        let mut permissions =
            permissions.unwrap_or_else(|| vec![Permission::Read, Permission::Write]);
        permissions.sort();
        permissions.dedup();
        if permissions.is_empty() {
            return Err(AuthError::invalid(
                "permissions",
                "must grant at least one permission",
            ));
        }
        Ok(Self {
            name,
            expires_at,
            permissions,
        })
    }
}

/// The permissions stored on a key; unknown entries grant nothing.
pub fn permissions_of(key: &api_key::Model) -> Vec<Permission> {
    key.permissions
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|p| p.as_str().and_then(Permission::parse))
                .collect()
        })
        .unwrap_or_default()
}

/// What the audit log records of a key: never its hash.
pub fn audit_view(key: &api_key::Model) -> serde_json::Value {
    serde_json::json!({
        "name": key.name,
        "prefix": key.key_prefix,
        "permissions": key.permissions,
        "expiresAt": key.expires_at,
    })
}

impl Auth {
    /// Creates a key for the caller; returns it with its secret, shown this once.
    ///
    /// # Errors
    /// `FORBIDDEN` when called with an API key: keys cannot mint keys.
    #[tracing::instrument(name = "auth.create_api_key", skip_all, err(level = "debug"))]
    pub async fn create_api_key(
        &self,
        db: &impl ConnectionTrait,
        actor: &Actor,
        req: CreateApiKey,
    ) -> Result<(api_key::Model, String), AuthError> {
        actor.session_id().ok_or(AuthError::SessionRequired)?;
        let secret = format!("{API_KEY_PREFIX}{}", random_token()?);
        let permissions: Vec<&str> = req.permissions.iter().map(|p| p.as_str()).collect();
        let key = api_key::ActiveModel {
            id: Set(new_id()),
            user_id: Set(actor.user_id),
            name: Set(req.name),
            key_hash: Set(hash_token(&secret)),
            key_prefix: Set(secret.chars().take(VISIBLE_PREFIX).collect()),
            permissions: Set(serde_json::json!(permissions)),
            last_used_at: Set(None),
            expires_at: Set(req.expires_at),
            is_active: Set(true),
            created_at: Set(self.clock.now()),
            revoked_at: Set(None),
            revoked_reason: Set(None),
        }
        .insert(db)
        .await?;
        Ok((key, secret))
    }

    /// The caller's active keys, newest first.
    ///
    /// # Errors
    /// Internal, when the database fails.
    #[tracing::instrument(name = "auth.list_api_keys", skip_all, err(level = "debug"))]
    pub async fn list_api_keys(
        &self,
        db: &impl ConnectionTrait,
        actor: &Actor,
        window: Window,
    ) -> Result<Page<api_key::Model>, kernel::Error> {
        let select = api_key::Entity::find()
            .filter(api_key::Column::UserId.eq(actor.user_id))
            .filter(api_key::Column::IsActive.eq(true));
        kernel::page::fetch(db, select, api_key::Column::Id, |k| k.id, window).await
    }

    /// Revokes one of the caller's keys.
    ///
    /// # Errors
    /// `NOT_FOUND` when the key is not the caller's or is already revoked;
    /// `FORBIDDEN` when called with an API key.
    #[tracing::instrument(name = "auth.revoke_api_key", skip_all, err(level = "debug"))]
    pub async fn revoke_api_key(
        &self,
        db: &impl ConnectionTrait,
        actor: &Actor,
        id: Uuid,
    ) -> Result<(), AuthError> {
        actor.session_id().ok_or(AuthError::SessionRequired)?;
        let done = api_key::Entity::update_many()
            .col_expr(api_key::Column::IsActive, Expr::value(false))
            .col_expr(api_key::Column::RevokedAt, Expr::value(self.clock.now()))
            .col_expr(
                api_key::Column::RevokedReason,
                Expr::value(RevocationReason::RevokedByOwner.as_str()),
            )
            .filter(api_key::Column::Id.eq(id))
            .filter(api_key::Column::UserId.eq(actor.user_id))
            .filter(api_key::Column::IsActive.eq(true))
            .exec(db)
            .await?;
        if done.rows_affected == 0 {
            return Err(AuthError::NotFound("API key"));
        }
        Ok(())
    }
}
