//! `user_preferences`: per-user defaults and UI settings (seed 004).

use sea_orm::entity::prelude::*;

/// At most one per user.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "user_preferences")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(unique)]
    pub user_id: Uuid,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub default_browser_config: Option<Json>,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub default_workflow_settings: Option<Json>,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub notifications: Option<Json>,
    pub theme: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
