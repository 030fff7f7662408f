//! Admin management of the catalogue: tiers, execution packs and agent
//! add-ons. Every service takes an [`AdminCap`]; inputs arrive parsed into
//! the `New*` types, so a service never sees an invalid price or percentage.
//! Nothing is hard-deleted: retiring an item sets `is_active = false`, which
//! hides it from sale and from `subscribe` while existing holders keep it.

use crate::Billing;
use crate::entity::{agent_add_on, execution_pack, subscription_tier as tier};
use core_auth::admin::AdminCap;
use kernel::Error;
use kernel::id::new_id;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ConnectionTrait, EntityTrait, IntoActiveModel};
use uuid::Uuid;

fn positive_i64(field: &str, v: i64) -> Result<i64, Error> {
    if v > 0 {
        Ok(v)
    } else {
        Err(Error::bad_input(field, "must be greater than 0"))
    }
}

fn positive(field: &str, v: i32) -> Result<i32, Error> {
    if v > 0 {
        Ok(v)
    } else {
        Err(Error::bad_input(field, "must be greater than 0"))
    }
}

fn percent(field: &str, v: i32) -> Result<i32, Error> {
    if (0..=100).contains(&v) {
        Ok(v)
    } else {
        Err(Error::bad_input(field, "must be between 0 and 100"))
    }
}

fn text(field: &str, v: String) -> Result<String, Error> {
    let v = v.trim().to_owned();
    if v.is_empty() || v.len() > 100 {
        Err(Error::bad_input(field, "must be 1 to 100 characters"))
    } else {
        Ok(v)
    }
}

fn slug(v: String) -> Result<String, Error> {
    let v = text("slug", v)?;
    if v.chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        Ok(v)
    } else {
        Err(Error::bad_input(
            "slug",
            "lower-case letters, digits and '-' only",
        ))
    }
}

fn slug_conflict(e: sea_orm::DbErr) -> Error {
    if kernel::error::is_unique_violation(&e) {
        Error::conflict("slug", "another item has this slug")
    } else {
        e.into()
    }
}

/// The raw tier fields, as the API receives them.
#[derive(Debug, Clone)]
pub struct TierFields {
    /// Stable identifier.
    pub slug: String,
    /// Display name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Monthly price, cents.
    pub monthly_price_cents: i64,
    /// Setup fee, cents.
    pub setup_fee_cents: i64,
    /// Weekly premium, whole percent.
    pub weekly_premium_percent: i32,
    /// Six-month discount, whole percent.
    pub six_month_discount_percent: i32,
    /// Annual discount, whole percent.
    pub annual_discount_percent: i32,
    /// Agents allowed.
    pub max_agents: i32,
    /// Agents at once.
    pub max_concurrent_agents: i32,
    /// Executions per month.
    pub monthly_execution_limit: i32,
    /// Longest execution, minutes.
    pub max_execution_duration_minutes: i32,
    /// Overage allowed.
    pub overage_enabled: bool,
    /// Overage price, cents.
    pub overage_price_cents: Option<i64>,
    /// Trial days.
    pub trial_days: i32,
    /// Display order and rank.
    pub sort_order: i32,
    /// On sale.
    pub is_active: bool,
}

/// A validated tier definition.
#[derive(Debug, Clone)]
pub struct NewTier(TierFields);

impl NewTier {
    /// Validates every field.
    ///
    /// # Errors
    /// `BAD_USER_INPUT` naming the first invalid field.
    pub fn parse(f: TierFields) -> Result<Self, Error> {
        let f = TierFields {
            slug: slug(f.slug)?,
            name: text("name", f.name)?,
            monthly_price_cents: positive_i64("monthlyPriceCents", f.monthly_price_cents)?,
            setup_fee_cents: if f.setup_fee_cents >= 0 {
                f.setup_fee_cents
            } else {
                return Err(Error::bad_input("setupFeeCents", "must not be negative"));
            },
            weekly_premium_percent: percent("weeklyPremiumPercent", f.weekly_premium_percent)?,
            six_month_discount_percent: percent(
                "sixMonthDiscountPercent",
                f.six_month_discount_percent,
            )?,
            annual_discount_percent: percent("annualDiscountPercent", f.annual_discount_percent)?,
            max_agents: positive("maxAgents", f.max_agents)?,
            max_concurrent_agents: positive("maxConcurrentAgents", f.max_concurrent_agents)?,
            monthly_execution_limit: positive("monthlyExecutionLimit", f.monthly_execution_limit)?,
            max_execution_duration_minutes: positive(
                "maxExecutionDurationMinutes",
                f.max_execution_duration_minutes,
            )?,
            overage_price_cents: match (f.overage_enabled, f.overage_price_cents) {
                (true, None) => {
                    return Err(Error::bad_input(
                        "overagePriceCents",
                        "is required when overage is enabled",
                    ));
                }
                (_, Some(p)) => Some(positive_i64("overagePriceCents", p)?),
                (false, None) => None,
            },
            trial_days: if (0..=90).contains(&f.trial_days) {
                f.trial_days
            } else {
                return Err(Error::bad_input("trialDays", "must be between 0 and 90"));
            },
            ..f
        };
        if f.max_concurrent_agents > f.max_agents {
            return Err(Error::bad_input(
                "maxConcurrentAgents",
                "must not exceed maxAgents",
            ));
        }
        Ok(Self(f))
    }
}

/// The raw execution pack fields.
#[derive(Debug, Clone)]
pub struct PackFields {
    /// Stable identifier.
    pub slug: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Executions; `None` = unlimited.
    pub execution_count: Option<i32>,
    /// Validity days; `None` = until the period ends.
    pub valid_for_days: Option<i32>,
    /// Price, cents.
    pub price_cents: i64,
    /// Lowest tier that may buy it.
    pub min_tier_id: Option<Uuid>,
    /// Purchases per user per month.
    pub max_per_month: Option<i32>,
    /// Display order.
    pub sort_order: i32,
    /// On sale.
    pub is_active: bool,
}

/// A validated execution pack.
#[derive(Debug, Clone)]
pub struct NewPack(PackFields);

impl NewPack {
    /// Validates every field.
    ///
    /// # Errors
    /// `BAD_USER_INPUT` naming the first invalid field.
    pub fn parse(f: PackFields) -> Result<Self, Error> {
        Ok(Self(PackFields {
            slug: slug(f.slug)?,
            name: text("name", f.name)?,
            execution_count: f
                .execution_count
                .map(|v| positive("executionCount", v))
                .transpose()?,
            valid_for_days: f
                .valid_for_days
                .map(|v| positive("validForDays", v))
                .transpose()?,
            price_cents: positive_i64("priceCents", f.price_cents)?,
            max_per_month: f
                .max_per_month
                .map(|v| positive("maxPerMonth", v))
                .transpose()?,
            ..f
        }))
    }
}

/// The raw agent add-on fields.
#[derive(Debug, Clone)]
pub struct AddOnFields {
    /// Stable identifier.
    pub slug: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Agent slots per unit.
    pub additional_agents: i32,
    /// Price per unit per month, cents.
    pub monthly_price_cents: i64,
    /// Lowest tier that may buy it.
    pub min_tier_id: Option<Uuid>,
    /// Units per user.
    pub max_per_user: Option<i32>,
    /// Display order.
    pub sort_order: i32,
    /// On sale.
    pub is_active: bool,
}

/// A validated agent add-on.
#[derive(Debug, Clone)]
pub struct NewAddOn(AddOnFields);

impl NewAddOn {
    /// Validates every field.
    ///
    /// # Errors
    /// `BAD_USER_INPUT` naming the first invalid field.
    pub fn parse(f: AddOnFields) -> Result<Self, Error> {
        Ok(Self(AddOnFields {
            slug: slug(f.slug)?,
            name: text("name", f.name)?,
            additional_agents: positive("additionalAgents", f.additional_agents)?,
            monthly_price_cents: positive_i64("monthlyPriceCents", f.monthly_price_cents)?,
            max_per_user: f
                .max_per_user
                .map(|v| positive("maxPerUser", v))
                .transpose()?,
            ..f
        }))
    }
}

/// What the audit log records of a tier.
pub fn tier_view(t: &tier::Model) -> serde_json::Value {
    serde_json::json!({
        "slug": t.slug, "name": t.name, "description": t.description,
        "monthlyPriceCents": t.monthly_price_cents, "setupFeeCents": t.setup_fee_cents,
        "weeklyPremiumPercent": t.weekly_premium_percent,
        "sixMonthDiscountPercent": t.six_month_discount_percent,
        "annualDiscountPercent": t.annual_discount_percent,
        "maxAgents": t.max_agents, "maxConcurrentAgents": t.max_concurrent_agents,
        "monthlyExecutionLimit": t.monthly_execution_limit,
        "maxExecutionDurationMinutes": t.max_execution_duration_minutes,
        "overageEnabled": t.overage_enabled, "overagePriceCents": t.overage_price_cents,
        "trialDays": t.trial_days, "sortOrder": t.sort_order, "isActive": t.is_active,
    })
}

/// What the audit log records of a pack.
pub fn pack_view(p: &execution_pack::Model) -> serde_json::Value {
    serde_json::json!({
        "slug": p.slug, "name": p.name, "description": p.description,
        "executionCount": p.execution_count, "validForDays": p.valid_for_days,
        "priceCents": p.price_cents, "minTierId": p.min_tier_id,
        "maxPerMonth": p.max_per_month, "sortOrder": p.sort_order, "isActive": p.is_active,
    })
}

/// What the audit log records of an add-on.
pub fn add_on_view(a: &agent_add_on::Model) -> serde_json::Value {
    serde_json::json!({
        "slug": a.slug, "name": a.name, "description": a.description,
        "additionalAgents": a.additional_agents, "monthlyPriceCents": a.monthly_price_cents,
        "minTierId": a.min_tier_id, "maxPerUser": a.max_per_user,
        "sortOrder": a.sort_order, "isActive": a.is_active,
    })
}

fn apply_tier(m: &mut tier::ActiveModel, f: TierFields) {
    m.slug = Set(f.slug);
    m.name = Set(f.name);
    m.description = Set(f.description);
    m.monthly_price_cents = Set(f.monthly_price_cents);
    m.setup_fee_cents = Set(f.setup_fee_cents);
    m.weekly_premium_percent = Set(f.weekly_premium_percent);
    m.six_month_discount_percent = Set(f.six_month_discount_percent);
    m.annual_discount_percent = Set(f.annual_discount_percent);
    m.max_agents = Set(f.max_agents);
    m.max_concurrent_agents = Set(f.max_concurrent_agents);
    m.monthly_execution_limit = Set(f.monthly_execution_limit);
    m.max_execution_duration_minutes = Set(f.max_execution_duration_minutes);
    m.overage_enabled = Set(f.overage_enabled);
    m.overage_price_cents = Set(f.overage_price_cents);
    m.trial_days = Set(f.trial_days);
    m.sort_order = Set(f.sort_order);
    m.is_active = Set(f.is_active);
}

fn apply_pack(m: &mut execution_pack::ActiveModel, f: PackFields) {
    m.slug = Set(f.slug);
    m.name = Set(f.name);
    m.description = Set(f.description);
    m.execution_count = Set(f.execution_count);
    m.valid_for_days = Set(f.valid_for_days);
    m.price_cents = Set(f.price_cents);
    m.min_tier_id = Set(f.min_tier_id);
    m.max_per_month = Set(f.max_per_month);
    m.sort_order = Set(f.sort_order);
    m.is_active = Set(f.is_active);
}

fn apply_add_on(m: &mut agent_add_on::ActiveModel, f: AddOnFields) {
    m.slug = Set(f.slug);
    m.name = Set(f.name);
    m.description = Set(f.description);
    m.additional_agents = Set(f.additional_agents);
    m.monthly_price_cents = Set(f.monthly_price_cents);
    m.min_tier_id = Set(f.min_tier_id);
    m.max_per_user = Set(f.max_per_user);
    m.sort_order = Set(f.sort_order);
    m.is_active = Set(f.is_active);
}

impl Billing {
    async fn require_min_tier(
        &self,
        db: &impl ConnectionTrait,
        id: Option<Uuid>,
    ) -> Result<(), Error> {
        if let Some(id) = id
            && tier::Entity::find_by_id(id).one(db).await?.is_none()
        {
            return Err(Error::bad_input("minTierId", "no such tier"));
        }
        Ok(())
    }

    /// Creates a tier.
    ///
    /// # Errors
    /// `CONFLICT` on `slug` when taken.
    #[tracing::instrument(name = "billing.create_tier", skip_all, err(level = "debug"))]
    pub async fn create_tier(
        &self,
        db: &impl ConnectionTrait,
        _cap: &AdminCap,
        req: NewTier,
    ) -> Result<tier::Model, Error> {
        let now = self.clock.now();
        let mut m = tier::ActiveModel {
            id: Set(new_id()),
            features: Set(serde_json::json!({})),
            allowed_strategies: Set(serde_json::json!([])),
            max_ghl_accounts: Set(None),
            is_popular: Set(false),
            metadata: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        };
        apply_tier(&mut m, req.0);
        m.insert(db).await.map_err(slug_conflict)
    }

    /// Replaces a tier's terms; returns `(old, new)`. Existing subscriptions
    /// are not re-priced: a new price applies to quotes, new subscriptions
    /// and tier changes. `isActive = false` retires the tier from sale.
    ///
    /// # Errors
    /// `NOT_FOUND` for an unknown tier; `CONFLICT` on `slug` when taken.
    #[tracing::instrument(name = "billing.update_tier", skip_all, err(level = "debug"))]
    pub async fn update_tier(
        &self,
        db: &impl ConnectionTrait,
        _cap: &AdminCap,
        id: Uuid,
        req: NewTier,
    ) -> Result<(tier::Model, tier::Model), Error> {
        let old = tier::Entity::find_by_id(id)
            .one(db)
            .await?
            .ok_or(Error::NotFound("tier"))?;
        let mut m = old.clone().into_active_model();
        apply_tier(&mut m, req.0);
        m.updated_at = Set(self.clock.now());
        let new = m.update(db).await.map_err(slug_conflict)?;
        Ok((old, new))
    }

    /// Creates an execution pack.
    ///
    /// # Errors
    /// `BAD_USER_INPUT` on `minTierId` for an unknown tier; `CONFLICT` on `slug`.
    #[tracing::instrument(name = "billing.create_execution_pack", skip_all, err(level = "debug"))]
    pub async fn create_execution_pack(
        &self,
        db: &impl ConnectionTrait,
        _cap: &AdminCap,
        req: NewPack,
    ) -> Result<execution_pack::Model, Error> {
        self.require_min_tier(db, req.0.min_tier_id).await?;
        let now = self.clock.now();
        let mut m = execution_pack::ActiveModel {
            id: Set(new_id()),
            metadata: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        };
        apply_pack(&mut m, req.0);
        m.insert(db).await.map_err(slug_conflict)
    }

    /// Replaces a pack's terms; returns `(old, new)`. Packs already bought keep
    /// what they were bought with.
    ///
    /// # Errors
    /// `NOT_FOUND` for an unknown pack; as [`Billing::create_execution_pack`].
    #[tracing::instrument(name = "billing.update_execution_pack", skip_all, err(level = "debug"))]
    pub async fn update_execution_pack(
        &self,
        db: &impl ConnectionTrait,
        _cap: &AdminCap,
        id: Uuid,
        req: NewPack,
    ) -> Result<(execution_pack::Model, execution_pack::Model), Error> {
        let old = execution_pack::Entity::find_by_id(id)
            .one(db)
            .await?
            .ok_or(Error::NotFound("execution pack"))?;
        self.require_min_tier(db, req.0.min_tier_id).await?;
        let mut m = old.clone().into_active_model();
        apply_pack(&mut m, req.0);
        m.updated_at = Set(self.clock.now());
        let new = m.update(db).await.map_err(slug_conflict)?;
        Ok((old, new))
    }

    /// Creates an agent add-on.
    ///
    /// # Errors
    /// `BAD_USER_INPUT` on `minTierId` for an unknown tier; `CONFLICT` on `slug`.
    #[tracing::instrument(name = "billing.create_agent_add_on", skip_all, err(level = "debug"))]
    pub async fn create_agent_add_on(
        &self,
        db: &impl ConnectionTrait,
        _cap: &AdminCap,
        req: NewAddOn,
    ) -> Result<agent_add_on::Model, Error> {
        self.require_min_tier(db, req.0.min_tier_id).await?;
        let now = self.clock.now();
        let mut m = agent_add_on::ActiveModel {
            id: Set(new_id()),
            metadata: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        };
        apply_add_on(&mut m, req.0);
        m.insert(db).await.map_err(slug_conflict)
    }

    /// Replaces an add-on's terms; returns `(old, new)`.
    ///
    /// # Errors
    /// `NOT_FOUND` for an unknown add-on; as [`Billing::create_agent_add_on`].
    #[tracing::instrument(name = "billing.update_agent_add_on", skip_all, err(level = "debug"))]
    pub async fn update_agent_add_on(
        &self,
        db: &impl ConnectionTrait,
        _cap: &AdminCap,
        id: Uuid,
        req: NewAddOn,
    ) -> Result<(agent_add_on::Model, agent_add_on::Model), Error> {
        let old = agent_add_on::Entity::find_by_id(id)
            .one(db)
            .await?
            .ok_or(Error::NotFound("agent add-on"))?;
        self.require_min_tier(db, req.0.min_tier_id).await?;
        let mut m = old.clone().into_active_model();
        apply_add_on(&mut m, req.0);
        m.updated_at = Set(self.clock.now());
        let new = m.update(db).await.map_err(slug_conflict)?;
        Ok((old, new))
    }
}
