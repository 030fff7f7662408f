//! Admin management of the versioned `model_prices` table. A price is never
//! edited in place: a new version with a later `effective_from` supersedes it,
//! so every recorded cost stays explained by the version that priced it.

use crate::Billing;
use crate::cost_entity::model_price;
use crate::costs::{Provider, model_name};
use crate::nanos::Nanos;
use chrono::{DateTime, Utc};
use core_auth::admin::AdminCap;
use kernel::Error;
use kernel::id::new_id;
use sea_orm::{ActiveModelTrait, ConnectionTrait, EntityTrait, QueryOrder, Set};

/// A parsed new price version; prices per million tokens.
#[derive(Debug, Clone)]
pub struct NewModelPrice {
    /// Whose model.
    pub provider: Provider,
    /// The model, lower-cased.
    pub model: String,
    /// Per million input tokens.
    pub input: Nanos,
    /// Per million output tokens.
    pub output: Nanos,
    /// Per million cache-write tokens.
    pub cache_write: Nanos,
    /// Per million cache-read tokens.
    pub cache_read: Nanos,
    /// When the version takes effect.
    pub effective_from: DateTime<Utc>,
}

impl NewModelPrice {
    /// Parses decimal dollar prices; cache prices default to 0.
    ///
    /// # Errors
    /// `BAD_USER_INPUT` naming the field.
    #[allow(clippy::too_many_arguments)]
    pub fn parse(
        provider: Provider,
        model: String,
        input: &str,
        output: &str,
        cache_write: Option<&str>,
        cache_read: Option<&str>,
        effective_from: DateTime<Utc>,
    ) -> Result<Self, Error> {
        Ok(Self {
            provider,
            model: model_name("model", model)?,
            input: Nanos::parse_usd("inputPerMillion", input)?,
            output: Nanos::parse_usd("outputPerMillion", output)?,
            cache_write: cache_write
                .map(|p| Nanos::parse_usd("cacheWritePerMillion", p))
                .transpose()?
                .unwrap_or_default(),
            cache_read: cache_read
                .map(|p| Nanos::parse_usd("cacheReadPerMillion", p))
                .transpose()?
                .unwrap_or_default(),
            effective_from,
        })
    }
}

/// What the audit log records of a price.
pub fn audit_view(p: &model_price::Model) -> serde_json::Value {
    serde_json::json!({
        "provider": p.provider,
        "model": p.model,
        "inputPerMillionUsd": Nanos(p.input_per_million_nanos).to_usd(),
        "outputPerMillionUsd": Nanos(p.output_per_million_nanos).to_usd(),
        "cacheWritePerMillionUsd": Nanos(p.cache_write_per_million_nanos).to_usd(),
        "cacheReadPerMillionUsd": Nanos(p.cache_read_per_million_nanos).to_usd(),
        "effectiveFrom": p.effective_from,
    })
}

impl Billing {
    /// Adds a price version.
    ///
    /// # Errors
    /// `CONFLICT` on `effectiveFrom` when the model has a version starting then;
    /// `BAD_USER_INPUT` on it when it lies in the past.
    #[tracing::instrument(name = "billing.create_model_price", skip_all, err(level = "debug"))]
    pub async fn create_model_price(
        &self,
        db: &impl ConnectionTrait,
        _cap: &AdminCap,
        req: NewModelPrice,
    ) -> Result<model_price::Model, Error> {
        let now = self.clock.now();
        // Past usage keeps the price it was recorded at; a version may not pretend otherwise.
        if req.effective_from < now {
            return Err(Error::bad_input("effectiveFrom", "must not be in the past"));
        }
        model_price::ActiveModel {
            id: Set(new_id()),
            provider: Set(req.provider.as_str().to_owned()),
            model: Set(req.model),
            input_per_million_nanos: Set(req.input.0),
            output_per_million_nanos: Set(req.output.0),
            cache_write_per_million_nanos: Set(req.cache_write.0),
            cache_read_per_million_nanos: Set(req.cache_read.0),
            effective_from: Set(req.effective_from),
            created_at: Set(now),
        }
        .insert(db)
        .await
        .map_err(|e| {
            if kernel::error::is_unique_violation(&e) {
                Error::conflict(
                    "effectiveFrom",
                    "this model has a price version starting then",
                )
            } else {
                e.into()
            }
        })
    }

    /// Every price version, by provider, model and start.
    ///
    /// # Errors
    /// Internal, when the database fails.
    #[tracing::instrument(name = "billing.model_prices", skip_all, err(level = "debug"))]
    pub async fn model_prices(
        &self,
        db: &impl ConnectionTrait,
    ) -> Result<Vec<model_price::Model>, Error> {
        Ok(model_price::Entity::find()
            .order_by_asc(model_price::Column::Provider)
            .order_by_asc(model_price::Column::Model)
            .order_by_asc(model_price::Column::EffectiveFrom)
            .all(db)
            .await?)
    }
}
