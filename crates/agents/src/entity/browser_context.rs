//! `browser_contexts`: persistent browser contexts (cookies, local storage)
//! kept per user and client, their storage sealed with the vault key ring.

use sea_orm::entity::prelude::*;

/// One provider context. The storage columns hold an AES-256-GCM seal bound
/// to `(user_id, id)`: base64 ciphertext, nonce and tag, and the key version;
/// all four are set together or all null.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "browser_contexts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_id: Uuid,
    /// The owner's reference for the client this context serves.
    pub client_id: Option<String>,
    /// The provider's context id, unique per user.
    pub context_id: String,
    /// `strict` or `shared`.
    pub isolation_level: String,
    pub encrypted_storage: Option<String>,
    pub storage_iv: Option<String>,
    pub storage_auth_tag: Option<String>,
    pub storage_key_version: Option<i32>,
    pub metadata: Option<Json>,
    /// The last time its storage was revealed.
    pub last_used_at: Option<DateTimeUtc>,
    pub is_active: bool,
    pub expires_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
