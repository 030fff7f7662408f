//! Plans and subscriptions (seed 004, Billing & Subscriptions): tiers, user
//! subscriptions, execution packs, agent add-ons, usage records, plus the
//! provider-webhook ledger. Money is integer cents; percentages are whole
//! percent integers (the seed's `weeklyPremiumPercent` etc.). The four
//! default tiers and a small set of packs and add-ons are seeded here.

use crate::m20261122_000001_identity::{Users, index};
use sea_orm_migration::sea_orm::prelude::{ChronoDateTimeUtc, Json, Uuid};
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
pub enum SubscriptionTiers {
    Table,
    Id,
    Slug,
    Name,
    Description,
    MonthlyPriceCents,
    SetupFeeCents,
    WeeklyPremiumPercent,
    SixMonthDiscountPercent,
    AnnualDiscountPercent,
    MaxAgents,
    MaxConcurrentAgents,
    MonthlyExecutionLimit,
    MaxExecutionDurationMinutes,
    MaxGhlAccounts,
    Features,
    AllowedStrategies,
    SortOrder,
    IsActive,
    IsPopular,
    // Beyond the seed: overage and trial terms the rules need.
    OverageEnabled,
    OveragePriceCents,
    TrialDays,
    Metadata,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
pub enum UserSubscriptions {
    Table,
    Id,
    UserId,
    TierId,
    Status,
    PaymentFrequency,
    CurrentPeriodStart,
    CurrentPeriodEnd,
    CancelAtPeriodEnd,
    StripeCustomerId,
    StripeSubscriptionId,
    ExecutionsUsedThisPeriod,
    AgentsSpawnedThisPeriod,
    AdditionalAgentSlots,
    AdditionalExecutions,
    TrialEndsAt,
    CancelledAt,
    CancellationReason,
    Metadata,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
pub enum ExecutionPacks {
    Table,
    Id,
    Slug,
    Name,
    Description,
    ExecutionCount,
    ValidForDays,
    PriceCents,
    MinTierId,
    MaxPerMonth,
    SortOrder,
    IsActive,
    Metadata,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
pub enum UserExecutionPacks {
    Table,
    Id,
    UserId,
    PackId,
    ExecutionsIncluded,
    ExecutionsRemaining,
    PurchasedAt,
    ExpiresAt,
    PricePaidCents,
    StripePaymentIntentId,
    Status,
    // Beyond the seed: the UTC month of purchase and the purchase's number in
    // it; unique per (user, pack, month), so the monthly cap holds under races.
    PurchaseMonth,
    PurchaseSeq,
    Metadata,
}

#[derive(DeriveIden, Clone, Copy)]
pub enum AgentAddOns {
    Table,
    Id,
    Slug,
    Name,
    Description,
    AdditionalAgents,
    MonthlyPriceCents,
    MinTierId,
    MaxPerUser,
    SortOrder,
    IsActive,
    Metadata,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
pub enum UserAgentAddOns {
    Table,
    Id,
    UserId,
    AddOnId,
    Quantity,
    Status,
    StripeSubscriptionItemId,
    StartedAt,
    CancelledAt,
    Metadata,
}

#[derive(DeriveIden, Clone, Copy)]
pub enum SubscriptionUsageRecords {
    Table,
    Id,
    UserId,
    PeriodStart,
    PeriodEnd,
    TierId,
    ExecutionLimit,
    AgentLimit,
    ExecutionsUsed,
    PeakConcurrentAgents,
    AdditionalExecutionsPurchased,
    AdditionalExecutionsUsed,
    OverageExecutions,
    OverageChargedCents,
    Metadata,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
pub enum BillingWebhookEvents {
    Table,
    Id,
    EventId,
    EventType,
    ReceivedAt,
}

fn user_fk<T: IntoIden + Copy, C: IntoIden + Copy>(table: T, col: C) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(table, col)
        .to(Users::Table, Users::Id)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

fn tier_fk<T: IntoIden + Copy, C: IntoIden + Copy>(table: T, col: C) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(table, col)
        .to(SubscriptionTiers::Table, SubscriptionTiers::Id)
        .to_owned()
}

/// The seeded rows' fixed ids, so later migrations and docs can name them.
pub const STARTER_ID: Uuid = Uuid::from_u128(0x019ac8a0_0000_7000_8000_000000000001);
pub const GROWTH_ID: Uuid = Uuid::from_u128(0x019ac8a0_0000_7000_8000_000000000002);
pub const PROFESSIONAL_ID: Uuid = Uuid::from_u128(0x019ac8a0_0000_7000_8000_000000000003);
pub const ENTERPRISE_ID: Uuid = Uuid::from_u128(0x019ac8a0_0000_7000_8000_000000000004);

fn seeded_at() -> ChronoDateTimeUtc {
    ChronoDateTimeUtc::from_timestamp(1_795_824_000, 0).unwrap_or_default()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        create_tiers(m).await?;
        create_subscriptions(m).await?;
        create_packs(m).await?;
        create_add_ons(m).await?;
        create_usage_and_webhooks(m).await?;
        seed(m).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            BillingWebhookEvents::Table.into_iden(),
            SubscriptionUsageRecords::Table.into_iden(),
            UserAgentAddOns::Table.into_iden(),
            AgentAddOns::Table.into_iden(),
            UserExecutionPacks::Table.into_iden(),
            ExecutionPacks::Table.into_iden(),
            UserSubscriptions::Table.into_iden(),
            SubscriptionTiers::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}

async fn create_tiers(m: &SchemaManager<'_>) -> Result<(), DbErr> {
    use SubscriptionTiers as T;
    m.create_table(
        Table::create()
            .table(T::Table)
            .col(pk_uuid(T::Id))
            .col(string_len_uniq(T::Slug, 50))
            .col(string_len(T::Name, 100))
            .col(text_null(T::Description))
            .col(big_integer(T::MonthlyPriceCents).check(Expr::col(T::MonthlyPriceCents).gte(0)))
            .col(
                big_integer(T::SetupFeeCents)
                    .default(0)
                    .check(Expr::col(T::SetupFeeCents).gte(0)),
            )
            // Whole percent: 15 means +15 %.
            .col(
                integer(T::WeeklyPremiumPercent)
                    .default(15)
                    .check(Expr::col(T::WeeklyPremiumPercent).between(0, 1000)),
            )
            .col(
                integer(T::SixMonthDiscountPercent)
                    .default(5)
                    .check(Expr::col(T::SixMonthDiscountPercent).between(0, 100)),
            )
            .col(
                integer(T::AnnualDiscountPercent)
                    .default(10)
                    .check(Expr::col(T::AnnualDiscountPercent).between(0, 100)),
            )
            .col(integer(T::MaxAgents))
            .col(integer(T::MaxConcurrentAgents))
            .col(integer(T::MonthlyExecutionLimit))
            .col(integer(T::MaxExecutionDurationMinutes).default(60))
            .col(integer_null(T::MaxGhlAccounts))
            .col(json_binary(T::Features))
            .col(json_binary(T::AllowedStrategies))
            .col(integer(T::SortOrder).default(0))
            .col(boolean(T::IsActive).default(true))
            .col(boolean(T::IsPopular).default(false))
            .col(boolean(T::OverageEnabled).default(false))
            .col(big_integer_null(T::OveragePriceCents))
            .col(
                integer(T::TrialDays)
                    .default(0)
                    .check(Expr::col(T::TrialDays).gte(0)),
            )
            .col(json_binary_null(T::Metadata))
            .col(timestamp_with_time_zone(T::CreatedAt))
            .col(timestamp_with_time_zone(T::UpdatedAt))
            .to_owned(),
    )
    .await?;
    index(m, "subscription_tiers_sort_idx", T::Table, &[T::SortOrder]).await
}

async fn create_subscriptions(m: &SchemaManager<'_>) -> Result<(), DbErr> {
    use UserSubscriptions as S;
    m.create_table(
        Table::create()
            .table(S::Table)
            .col(pk_uuid(S::Id))
            .col(uuid(S::UserId))
            .col(uuid(S::TierId))
            // active / past_due / cancelled / paused / trial
            .col(string_len(S::Status, 50).default("active"))
            // weekly / monthly / six_month / annual
            .col(string_len(S::PaymentFrequency, 20).default("monthly"))
            .col(timestamp_with_time_zone(S::CurrentPeriodStart))
            .col(timestamp_with_time_zone(S::CurrentPeriodEnd))
            .col(boolean(S::CancelAtPeriodEnd).default(false))
            .col(string_len_null(S::StripeCustomerId, 255))
            .col(string_len_null(S::StripeSubscriptionId, 255))
            .col(
                integer(S::ExecutionsUsedThisPeriod)
                    .default(0)
                    .check(Expr::col(S::ExecutionsUsedThisPeriod).gte(0)),
            )
            .col(
                integer(S::AgentsSpawnedThisPeriod)
                    .default(0)
                    .check(Expr::col(S::AgentsSpawnedThisPeriod).gte(0)),
            )
            .col(
                integer(S::AdditionalAgentSlots)
                    .default(0)
                    .check(Expr::col(S::AdditionalAgentSlots).gte(0)),
            )
            .col(
                integer(S::AdditionalExecutions)
                    .default(0)
                    .check(Expr::col(S::AdditionalExecutions).gte(0)),
            )
            .col(timestamp_with_time_zone_null(S::TrialEndsAt))
            .col(timestamp_with_time_zone_null(S::CancelledAt))
            .col(text_null(S::CancellationReason))
            .col(json_binary_null(S::Metadata))
            .col(timestamp_with_time_zone(S::CreatedAt))
            .col(timestamp_with_time_zone(S::UpdatedAt))
            .foreign_key(&mut user_fk(S::Table, S::UserId))
            .foreign_key(&mut tier_fk(S::Table, S::TierId))
            .to_owned(),
    )
    .await?;
    // The seed's UNIQUE(userId), narrowed to live rows: one subscription per
    // user at a time, while cancelled ones stay as history. The database, not
    // a read-then-write, decides a race between two `subscribe` calls.
    m.create_index(
        Index::create()
            .name("user_subscriptions_user_live_key")
            .table(S::Table)
            .col(S::UserId)
            .unique()
            .and_where(Expr::col(S::Status).ne("cancelled"))
            .to_owned(),
    )
    .await?;
    index(
        m,
        "user_subscriptions_user_idx",
        S::Table,
        &[S::UserId, S::Id],
    )
    .await?;
    index(
        m,
        "user_subscriptions_stripe_sub_idx",
        S::Table,
        &[S::StripeSubscriptionId],
    )
    .await?;
    index(
        m,
        "user_subscriptions_period_end_idx",
        S::Table,
        &[S::Status, S::CurrentPeriodEnd],
    )
    .await
}

async fn create_packs(m: &SchemaManager<'_>) -> Result<(), DbErr> {
    use ExecutionPacks as P;
    m.create_table(
        Table::create()
            .table(P::Table)
            .col(pk_uuid(P::Id))
            .col(string_len_uniq(P::Slug, 50))
            .col(string_len(P::Name, 100))
            .col(text_null(P::Description))
            .col(integer_null(P::ExecutionCount))
            .col(integer_null(P::ValidForDays))
            .col(big_integer(P::PriceCents).check(Expr::col(P::PriceCents).gte(0)))
            .col(uuid_null(P::MinTierId))
            .col(integer_null(P::MaxPerMonth))
            .col(integer(P::SortOrder).default(0))
            .col(boolean(P::IsActive).default(true))
            .col(json_binary_null(P::Metadata))
            .col(timestamp_with_time_zone(P::CreatedAt))
            .col(timestamp_with_time_zone(P::UpdatedAt))
            .foreign_key(&mut tier_fk(P::Table, P::MinTierId))
            .to_owned(),
    )
    .await?;

    use UserExecutionPacks as U;
    m.create_table(
        Table::create()
            .table(U::Table)
            .col(pk_uuid(U::Id))
            .col(uuid(U::UserId))
            .col(uuid(U::PackId))
            .col(integer_null(U::ExecutionsIncluded))
            // NULL = unlimited; never below zero, so a racing debit fails instead.
            .col(
                integer_null(U::ExecutionsRemaining)
                    .check(Expr::col(U::ExecutionsRemaining).gte(0)),
            )
            .col(timestamp_with_time_zone(U::PurchasedAt))
            .col(timestamp_with_time_zone_null(U::ExpiresAt))
            .col(big_integer(U::PricePaidCents))
            .col(string_len_null(U::StripePaymentIntentId, 255))
            // active / depleted / expired
            .col(string_len(U::Status, 50).default("active"))
            .col(string_len(U::PurchaseMonth, 7))
            .col(integer(U::PurchaseSeq))
            .col(json_binary_null(U::Metadata))
            .foreign_key(&mut user_fk(U::Table, U::UserId))
            .foreign_key(
                ForeignKey::create()
                    .from(U::Table, U::PackId)
                    .to(P::Table, P::Id),
            )
            .to_owned(),
    )
    .await?;
    m.create_index(
        Index::create()
            .name("user_execution_packs_month_seq_key")
            .table(U::Table)
            .col(U::UserId)
            .col(U::PackId)
            .col(U::PurchaseMonth)
            .col(U::PurchaseSeq)
            .unique()
            .to_owned(),
    )
    .await?;
    // The gate spends the soonest-expiring active pack first.
    index(
        m,
        "user_execution_packs_user_active_idx",
        U::Table,
        &[U::UserId, U::Status, U::ExpiresAt],
    )
    .await
}

async fn create_add_ons(m: &SchemaManager<'_>) -> Result<(), DbErr> {
    use AgentAddOns as A;
    m.create_table(
        Table::create()
            .table(A::Table)
            .col(pk_uuid(A::Id))
            .col(string_len_uniq(A::Slug, 50))
            .col(string_len(A::Name, 100))
            .col(text_null(A::Description))
            .col(integer(A::AdditionalAgents).check(Expr::col(A::AdditionalAgents).gt(0)))
            .col(big_integer(A::MonthlyPriceCents).check(Expr::col(A::MonthlyPriceCents).gte(0)))
            .col(uuid_null(A::MinTierId))
            .col(integer_null(A::MaxPerUser))
            .col(integer(A::SortOrder).default(0))
            .col(boolean(A::IsActive).default(true))
            .col(json_binary_null(A::Metadata))
            .col(timestamp_with_time_zone(A::CreatedAt))
            .col(timestamp_with_time_zone(A::UpdatedAt))
            .foreign_key(&mut tier_fk(A::Table, A::MinTierId))
            .to_owned(),
    )
    .await?;

    use UserAgentAddOns as U;
    m.create_table(
        Table::create()
            .table(U::Table)
            .col(pk_uuid(U::Id))
            .col(uuid(U::UserId))
            .col(uuid(U::AddOnId))
            .col(
                integer(U::Quantity)
                    .default(1)
                    .check(Expr::col(U::Quantity).gt(0)),
            )
            // active / cancelled
            .col(string_len(U::Status, 50).default("active"))
            .col(string_len_null(U::StripeSubscriptionItemId, 255))
            .col(timestamp_with_time_zone(U::StartedAt))
            .col(timestamp_with_time_zone_null(U::CancelledAt))
            .col(json_binary_null(U::Metadata))
            .foreign_key(&mut user_fk(U::Table, U::UserId))
            .foreign_key(
                ForeignKey::create()
                    .from(U::Table, U::AddOnId)
                    .to(A::Table, A::Id),
            )
            .to_owned(),
    )
    .await?;
    // One live row per (user, add-on); buying more raises its quantity with a
    // conditional update that also enforces `max_per_user`.
    m.create_index(
        Index::create()
            .name("user_agent_add_ons_user_live_key")
            .table(U::Table)
            .col(U::UserId)
            .col(U::AddOnId)
            .unique()
            .and_where(Expr::col(U::Status).eq("active"))
            .to_owned(),
    )
    .await
}

async fn create_usage_and_webhooks(m: &SchemaManager<'_>) -> Result<(), DbErr> {
    use SubscriptionUsageRecords as R;
    m.create_table(
        Table::create()
            .table(R::Table)
            .col(pk_uuid(R::Id))
            .col(uuid(R::UserId))
            .col(timestamp_with_time_zone(R::PeriodStart))
            .col(timestamp_with_time_zone(R::PeriodEnd))
            .col(uuid(R::TierId))
            .col(integer(R::ExecutionLimit))
            .col(integer(R::AgentLimit))
            .col(integer(R::ExecutionsUsed).default(0))
            .col(integer(R::PeakConcurrentAgents).default(0))
            .col(integer(R::AdditionalExecutionsPurchased).default(0))
            .col(integer(R::AdditionalExecutionsUsed).default(0))
            .col(integer(R::OverageExecutions).default(0))
            .col(big_integer(R::OverageChargedCents).default(0))
            .col(json_binary_null(R::Metadata))
            .col(timestamp_with_time_zone(R::CreatedAt))
            .foreign_key(&mut user_fk(R::Table, R::UserId))
            .foreign_key(&mut tier_fk(R::Table, R::TierId))
            .to_owned(),
    )
    .await?;
    // One record per user and period: opening a period twice is a no-op.
    m.create_index(
        Index::create()
            .name("subscription_usage_records_user_period_key")
            .table(R::Table)
            .col(R::UserId)
            .col(R::PeriodStart)
            .unique()
            .to_owned(),
    )
    .await?;

    use BillingWebhookEvents as W;
    m.create_table(
        Table::create()
            .table(W::Table)
            .col(pk_uuid(W::Id))
            // The provider's event id; unique, so each event applies once.
            .col(string_len_uniq(W::EventId, 255))
            .col(string_len(W::EventType, 100))
            .col(timestamp_with_time_zone(W::ReceivedAt))
            .to_owned(),
    )
    .await
}

/// id suffix, slug, name, executions, valid days, price, minimum tier, monthly cap.
type PackSeed = (
    u128,
    &'static str,
    &'static str,
    i32,
    Option<i32>,
    i64,
    Option<Uuid>,
    Option<i32>,
);
/// id suffix, slug, name, agents, monthly price, minimum tier, cap per user.
type AddOnSeed = (
    u128,
    &'static str,
    &'static str,
    i32,
    i64,
    Option<Uuid>,
    Option<i32>,
);

struct TierSeed {
    id: Uuid,
    slug: &'static str,
    name: &'static str,
    monthly: i64,
    setup: i64,
    agents: i32,
    concurrent: i32,
    executions: i32,
    overage: Option<i64>,
    popular: bool,
}

const TIERS: [TierSeed; 4] = [
    TierSeed {
        id: STARTER_ID,
        slug: "starter",
        name: "Starter",
        monthly: 99_700,
        setup: 49_700,
        agents: 5,
        concurrent: 2,
        executions: 200,
        overage: None,
        popular: false,
    },
    TierSeed {
        id: GROWTH_ID,
        slug: "growth",
        name: "Growth",
        monthly: 169_700,
        setup: 99_700,
        agents: 10,
        concurrent: 5,
        executions: 500,
        overage: Some(500),
        popular: true,
    },
    TierSeed {
        id: PROFESSIONAL_ID,
        slug: "professional",
        name: "Professional",
        monthly: 319_700,
        setup: 149_700,
        agents: 25,
        concurrent: 10,
        executions: 1_250,
        overage: Some(400),
        popular: false,
    },
    TierSeed {
        id: ENTERPRISE_ID,
        slug: "enterprise",
        name: "Enterprise",
        monthly: 499_700,
        setup: 249_700,
        agents: 50,
        concurrent: 25,
        executions: 3_000,
        overage: Some(300),
        popular: false,
    },
];

async fn seed(m: &SchemaManager<'_>) -> Result<(), DbErr> {
    use SubscriptionTiers as T;
    let now = seeded_at();
    let mut tiers = Query::insert();
    tiers.into_table(T::Table).columns([
        T::Id,
        T::Slug,
        T::Name,
        T::MonthlyPriceCents,
        T::SetupFeeCents,
        T::WeeklyPremiumPercent,
        T::SixMonthDiscountPercent,
        T::AnnualDiscountPercent,
        T::MaxAgents,
        T::MaxConcurrentAgents,
        T::MonthlyExecutionLimit,
        T::MaxExecutionDurationMinutes,
        T::Features,
        T::AllowedStrategies,
        T::SortOrder,
        T::IsActive,
        T::IsPopular,
        T::OverageEnabled,
        T::OveragePriceCents,
        T::TrialDays,
        T::CreatedAt,
        T::UpdatedAt,
    ]);
    for (i, t) in TIERS.iter().enumerate() {
        let order = <i32 as TryFrom<usize>>::try_from(i).unwrap_or_default();
        tiers.values_panic([
            t.id.into(),
            t.slug.into(),
            t.name.into(),
            t.monthly.into(),
            t.setup.into(),
            15.into(),
            5.into(),
            10.into(),
            t.agents.into(),
            t.concurrent.into(),
            t.executions.into(),
            60.into(),
            Json::Object(Default::default()).into(),
            Json::Array(vec![Json::String("auto".into())]).into(),
            order.into(),
            true.into(),
            t.popular.into(),
            t.overage.is_some().into(),
            t.overage.into(),
            14.into(),
            now.into(),
            now.into(),
        ]);
    }
    m.exec_stmt(tiers).await?;

    use ExecutionPacks as P;
    let mut packs = Query::insert();
    packs.into_table(P::Table).columns([
        P::Id,
        P::Slug,
        P::Name,
        P::ExecutionCount,
        P::ValidForDays,
        P::PriceCents,
        P::MinTierId,
        P::MaxPerMonth,
        P::SortOrder,
        P::IsActive,
        P::CreatedAt,
        P::UpdatedAt,
    ]);
    let pack_rows: [PackSeed; 3] = [
        (0x11, "boost-50", "Boost 50", 50, None, 4_900, None, Some(5)),
        (
            0x12,
            "boost-200",
            "Boost 200",
            200,
            None,
            17_900,
            Some(GROWTH_ID),
            Some(3),
        ),
        (
            0x13,
            "surge-1000",
            "Surge 1000",
            1_000,
            Some(30),
            79_900,
            Some(PROFESSIONAL_ID),
            Some(2),
        ),
    ];
    for (i, (id, slug, name, count, days, price, min_tier, cap)) in
        pack_rows.into_iter().enumerate()
    {
        let order = <i32 as TryFrom<usize>>::try_from(i).unwrap_or_default();
        packs.values_panic([
            Uuid::from_u128(0x019ac8a0_0000_7000_8000_000000000000 | id).into(),
            slug.into(),
            name.into(),
            count.into(),
            days.into(),
            price.into(),
            min_tier.into(),
            cap.into(),
            order.into(),
            true.into(),
            now.into(),
            now.into(),
        ]);
    }
    m.exec_stmt(packs).await?;

    use AgentAddOns as A;
    let mut add_ons = Query::insert();
    add_ons.into_table(A::Table).columns([
        A::Id,
        A::Slug,
        A::Name,
        A::AdditionalAgents,
        A::MonthlyPriceCents,
        A::MinTierId,
        A::MaxPerUser,
        A::SortOrder,
        A::IsActive,
        A::CreatedAt,
        A::UpdatedAt,
    ]);
    let add_on_rows: [AddOnSeed; 2] = [
        (0x21, "agents-5", "5 extra agents", 5, 19_900, None, Some(4)),
        (
            0x22,
            "agents-10",
            "10 extra agents",
            10,
            34_900,
            Some(GROWTH_ID),
            Some(5),
        ),
    ];
    for (i, (id, slug, name, agents, price, min_tier, cap)) in add_on_rows.into_iter().enumerate() {
        let order = <i32 as TryFrom<usize>>::try_from(i).unwrap_or_default();
        add_ons.values_panic([
            Uuid::from_u128(0x019ac8a0_0000_7000_8000_000000000000 | id).into(),
            slug.into(),
            name.into(),
            agents.into(),
            price.into(),
            min_tier.into(),
            cap.into(),
            order.into(),
            true.into(),
            now.into(),
            now.into(),
        ]);
    }
    m.exec_stmt(add_ons).await
}
