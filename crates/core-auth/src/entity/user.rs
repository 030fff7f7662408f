//! `users`: one row per account (seed 004).

use sea_orm::entity::prelude::*;

/// A user account. `email` is stored lower-cased.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(unique)]
    pub email: String,
    pub password_hash: Option<String>,
    pub name: Option<String>,
    pub open_id: Option<String>,
    pub google_id: Option<String>,
    pub login_method: String,
    pub role: String,
    pub onboarding_completed: bool,
    pub suspended_at: Option<DateTimeUtc>,
    pub suspension_reason: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub last_signed_in: DateTimeUtc,
    pub email_verified_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
