//! The `idempotency_keys` table.

use sea_orm::entity::prelude::*;

/// One claimed or completed idempotency key.
#[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "idempotency_keys")]
pub struct Model {
    /// Primary key; a fresh one per claim, so only the claimant completes it.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Whose key this is: `user:<id>` or `anonymous`.
    pub scope: String,
    /// The user, for cascading deletion; `None` for anonymous requests.
    pub user_id: Option<Uuid>,
    /// The client's key.
    pub key: String,
    /// Hex SHA-256 of the canonical request.
    pub request_hash: String,
    /// `in_progress` or `completed`.
    pub status: String,
    /// The HTTP status of the stored response.
    pub status_code: Option<i32>,
    /// The stored response body, sealed for this row
    /// (`sealed:v1:<key version>:<iv>:<ciphertext>:<tag>`); rows completed
    /// before sealing hold the JSON body in plain text.
    #[sea_orm(column_type = "Text")]
    pub response_body: Option<String>,
    /// When the key was claimed.
    pub created_at: DateTimeUtc,
    /// When the claim's lease (in progress) or the replay window (completed) ends.
    pub expires_at: DateTimeUtc,
}

impl std::fmt::Debug for Model {
    // The body may hold a secret shown once (an API key, a session token).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("idempotency_keys::Model")
            .field("id", &self.id)
            .field("scope", &self.scope)
            .field("status", &self.status)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// No relations: the user foreign key exists only for cascading deletes.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
