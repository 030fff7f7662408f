//! `browser_sessions`: browser sessions a provider (Browserbase) ran for a user.

use sea_orm::entity::prelude::*;

/// One provider session. `status` only moves through
/// [`crate::browser::BrowserSessionStatus::transition`]; an `active` row past
/// `expires_at` reads as `expired` (see [`crate::browser`]).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "browser_sessions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_id: Uuid,
    /// The provider's session id, unique per user.
    pub session_id: String,
    /// `active`, `completed`, `failed` or `expired`.
    pub status: String,
    pub url: Option<String>,
    pub project_id: Option<String>,
    pub debug_url: Option<String>,
    pub recording_url: Option<String>,
    pub metadata: Option<Json>,
    /// Why it failed.
    pub error: Option<String>,
    pub expires_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// Set exactly when the session leaves `active`.
    pub completed_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
