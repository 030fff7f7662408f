//! `user_subscriptions`: a user's plan and its current period (seed 004).
//! At most one row per user whose status is not `cancelled`.

use sea_orm::entity::prelude::*;

/// A subscription. `status` is active / past_due / cancelled / paused / trial;
/// `payment_frequency` is weekly / monthly / six_month / annual.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "user_subscriptions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_id: Uuid,
    pub tier_id: Uuid,
    pub status: String,
    pub payment_frequency: String,
    pub current_period_start: DateTimeUtc,
    pub current_period_end: DateTimeUtc,
    pub cancel_at_period_end: bool,
    pub stripe_customer_id: Option<String>,
    pub stripe_subscription_id: Option<String>,
    pub executions_used_this_period: i32,
    pub agents_spawned_this_period: i32,
    pub additional_agent_slots: i32,
    pub additional_executions: i32,
    pub trial_ends_at: Option<DateTimeUtc>,
    pub cancelled_at: Option<DateTimeUtc>,
    #[sea_orm(column_type = "Text", nullable)]
    pub cancellation_reason: Option<String>,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub metadata: Option<Json>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::subscription_tier::Entity",
        from = "Column::TierId",
        to = "super::subscription_tier::Column::Id"
    )]
    Tier,
}

impl Related<super::subscription_tier::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Tier.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
