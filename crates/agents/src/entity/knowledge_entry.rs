//! `knowledge_entries`: what agents learned about a user's way of working.

use sea_orm::entity::prelude::*;

/// One learned fact. Confidence is exact: integer hundredths, 0..=100.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "knowledge_entries")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_id: Uuid,
    /// `workflow`, `brand_voice`, `preference`, `process` or `technical`.
    pub category: String,
    pub context: String,
    pub content: String,
    pub examples: Option<Json>,
    /// Confidence × 100 (the seed's `decimal(3,2)`, kept exact).
    pub confidence_hundredths: i32,
    /// Bumped by one atomic `UPDATE` per use.
    pub usage_count: i32,
    pub is_active: bool,
    pub last_used_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
