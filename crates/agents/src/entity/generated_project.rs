//! `generated_projects`: web projects an agent generated for a user.

use sea_orm::entity::prelude::*;

/// One project. `status` only moves through
/// [`crate::projects::ProjectStatus::transition`].
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "generated_projects")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_id: Uuid,
    /// The owner's execution that generated it; null once that run is deleted.
    pub execution_id: Option<Uuid>,
    pub name: String,
    pub description: Option<String>,
    /// A lowercase slug such as `react` or `nextjs`.
    pub tech_stack: String,
    /// A JSON object.
    pub features: Json,
    pub files_snapshot: Option<Json>,
    /// `active`, `archived` or `deleted`.
    pub status: String,
    pub dev_server_port: Option<i32>,
    pub preview_url: Option<String>,
    pub deployment_url: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
