//! `model_prices`: one version of a model's token prices, per million tokens.

use sea_orm::entity::prelude::*;

/// One price version; the version in force at a time is the latest whose
/// `effective_from` is not after it.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "model_prices")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub provider: String,
    pub model: String,
    pub input_per_million_nanos: i64,
    pub output_per_million_nanos: i64,
    pub cache_write_per_million_nanos: i64,
    pub cache_read_per_million_nanos: i64,
    pub effective_from: DateTimeUtc,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
