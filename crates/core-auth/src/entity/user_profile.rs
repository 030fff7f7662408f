//! `user_profiles`: business details collected during onboarding (seed 004).

use sea_orm::entity::prelude::*;

/// At most one per user.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "user_profiles")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(unique)]
    pub user_id: Uuid,
    pub company_name: Option<String>,
    pub industry: Option<String>,
    pub monthly_revenue: Option<String>,
    pub employee_count: Option<String>,
    pub website: Option<String>,
    pub phone: Option<String>,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub goals: Option<Json>,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub current_tools: Option<Json>,
    pub referral_source: Option<String>,
    pub notes: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
