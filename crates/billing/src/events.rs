//! The `billing_events` outbox: billing writes a domain event in the
//! transaction of the change that causes it, so a rolled-back change emits
//! nothing; the messaging domain later reads pending events and marks each
//! delivered exactly once.

use crate::cost_entity::billing_event;
use chrono::{DateTime, Utc};
use kernel::Error;
use kernel::id::new_id;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use uuid::Uuid;

/// Writes one event for `user_id`.
///
/// # Errors
/// Internal, when the database fails.
pub async fn emit(
    db: &impl ConnectionTrait,
    kind: &str,
    user_id: Uuid,
    payload: serde_json::Value,
    now: DateTime<Utc>,
) -> Result<billing_event::Model, Error> {
    Ok(billing_event::ActiveModel {
        id: Set(new_id()),
        kind: Set(kind.to_owned()),
        user_id: Set(user_id),
        payload: Set(payload),
        created_at: Set(now),
        delivered_at: Set(None),
    }
    .insert(db)
    .await?)
}

/// Up to `limit` undelivered events, oldest first.
///
/// # Errors
/// Internal, when the database fails.
pub async fn pending(
    db: &impl ConnectionTrait,
    limit: u64,
) -> Result<Vec<billing_event::Model>, Error> {
    Ok(billing_event::Entity::find()
        .filter(billing_event::Column::DeliveredAt.is_null())
        .order_by_asc(billing_event::Column::CreatedAt)
        .order_by_asc(billing_event::Column::Id)
        .limit(limit)
        .all(db)
        .await?)
}

/// Marks an event delivered; true only for the one caller that marked it, so
/// two deliverers racing for the same event deliver it once.
///
/// # Errors
/// Internal, when the database fails.
pub async fn mark_delivered(
    db: &impl ConnectionTrait,
    id: Uuid,
    at: DateTime<Utc>,
) -> Result<bool, Error> {
    let done = billing_event::Entity::update_many()
        .col_expr(billing_event::Column::DeliveredAt, Expr::value(at))
        .filter(billing_event::Column::Id.eq(id))
        .filter(billing_event::Column::DeliveredAt.is_null())
        .exec(db)
        .await?;
    Ok(done.rows_affected == 1)
}
