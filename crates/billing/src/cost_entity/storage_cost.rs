//! `storage_costs`: one object-storage operation and what it cost.

use sea_orm::entity::prelude::*;

/// One operation; rates and costs in nano-dollars.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "storage_costs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_id: Uuid,
    pub execution_id: Option<Uuid>,
    pub operation_id: Option<String>,
    pub provider: String,
    pub bucket: String,
    pub operation_type: String,
    pub object_key: Option<String>,
    pub size_bytes: i64,
    pub storage_cost_per_gb_nanos: i64,
    pub transfer_cost_per_gb_nanos: i64,
    pub request_cost_nanos: i64,
    pub total_cost_nanos: i64,
    pub content_type: Option<String>,
    pub status: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
