//! Provider events at `POST /webhooks/billing`: a Stripe-style signature
//! (`Billing-Signature: t=<unix>,v1=<hex>`, HMAC-SHA256 over `"<t>.<raw body>"`)
//! checked in constant time within a timestamp tolerance, and each event id
//! applied at most once, in the same transaction as its effect.

use crate::Billing;
use crate::entity::{
    billing_webhook_event as event, subscription_tier as tier, user_subscription as sub,
};
use crate::quote::Frequency;
use crate::subscriptions::{Status, end_add_ons, open_period};
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use kernel::error::{Error, Result};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use serde::Deserialize;
use sha2::Sha256;
use uuid::Uuid;

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "Billing-Signature";
/// How old (or how far in the future) a signed timestamp may be, in seconds.
pub const TOLERANCE_SECS: i64 = 300;

/// The shared secret events are signed with; its `Debug` never shows it.
#[derive(Clone)]
pub struct WebhookSecret(Vec<u8>);

impl WebhookSecret {
    /// A secret from its configured text.
    pub fn new(secret: &str) -> Self {
        Self(secret.as_bytes().to_vec())
    }

    /// The HMAC-SHA256 of `"<timestamp>.<body>"`, hex.
    pub fn sign(&self, timestamp: i64, body: &[u8]) -> String {
        hex::encode(self.mac(timestamp, body).finalize().into_bytes())
    }

    /// A complete header value for `body` signed at `timestamp`.
    pub fn header(&self, timestamp: i64, body: &[u8]) -> String {
        format!("t={timestamp},v1={}", self.sign(timestamp, body))
    }

    fn mac(&self, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
        // HMAC takes keys of any length; this cannot fail.
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }

    /// Checks `header` against `body` at `now`.
    ///
    /// # Errors
    /// [`SignatureError`] when the header is malformed, the timestamp is
    /// outside the tolerance, or no `v1` signature matches.
    pub fn verify(
        &self,
        header: &str,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<(), SignatureError> {
        let mut timestamp = None;
        let mut signatures = Vec::new();
        for part in header.split(',') {
            match part.trim().split_once('=') {
                Some(("t", v)) => timestamp = v.parse::<i64>().ok(),
                Some(("v1", v)) => signatures.extend(hex::decode(v).ok()),
                _ => {}
            }
        }
        let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
        if (now.timestamp() - timestamp).abs() > TOLERANCE_SECS {
            return Err(SignatureError::Stale);
        }
        // `verify_slice` compares in constant time.
        let ok = signatures
            .iter()
            .any(|sig| self.mac(timestamp, body).verify_slice(sig).is_ok());
        if ok {
            Ok(())
        } else {
            Err(SignatureError::Mismatch)
        }
    }
}

impl Default for WebhookSecret {
    /// A random per-process secret: development only; set `BILLING_WEBHOOK_SECRET`.
    fn default() -> Self {
        Self::new(&kernel::crypto::random_token().unwrap_or_else(|_| Uuid::now_v7().to_string()))
    }
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Why a signature was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No timestamp or no parsable header.
    #[error("malformed signature header")]
    Malformed,
    /// The timestamp is outside the tolerance: an old event or a replay.
    #[error("signature timestamp outside the tolerance")]
    Stale,
    /// No signature matches the body.
    #[error("signature does not match")]
    Mismatch,
}

/// What happened to a verified event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Applied now.
    Applied,
    /// Seen before: nothing done.
    Duplicate,
    /// Recorded, but of a type or for a subscription we do not act on.
    Ignored,
}

#[derive(Deserialize)]
struct Envelope {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    data: EventData,
}

#[derive(Deserialize)]
struct EventData {
    object: EventObject,
}

#[derive(Deserialize, Default)]
struct EventObject {
    id: Option<String>,
    subscription: Option<String>,
    period_start: Option<i64>,
    period_end: Option<i64>,
}

impl Billing {
    /// Applies one verified event body once; run it inside one transaction,
    /// so the event's record and its effect commit together.
    ///
    /// # Errors
    /// `BAD_USER_INPUT` on `body` when it is not an event; internal on
    /// database failure.
    #[tracing::instrument(skip_all)]
    pub async fn apply_webhook_event(
        &self,
        db: &impl ConnectionTrait,
        body: &[u8],
    ) -> Result<Outcome> {
        let env: Envelope = serde_json::from_slice(body)
            .map_err(|_| Error::bad_input("body", "not a billing event"))?;
        if env.id.is_empty() || env.id.len() > 255 || env.kind.len() > 100 {
            return Err(Error::bad_input("body", "bad event id or type"));
        }
        let now = self.clock.now();
        let inserted = event::Entity::insert(event::ActiveModel {
            id: Set(kernel::id::new_id()),
            event_id: Set(env.id.clone()),
            event_type: Set(env.kind.clone()),
            received_at: Set(now),
        })
        .on_conflict(
            OnConflict::column(event::Column::EventId)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
        if inserted == 0 {
            return Ok(Outcome::Duplicate);
        }
        let obj = env.data.object;
        let sub_ref = match env.kind.as_str() {
            "customer.subscription.deleted" => obj.id.clone().or(obj.subscription.clone()),
            _ => obj.subscription.clone(),
        };
        let Some(s) = find_subscription(db, sub_ref.as_deref()).await? else {
            return Ok(Outcome::Ignored);
        };
        match env.kind.as_str() {
            "invoice.paid" => self.invoice_paid(db, s, &obj, now).await,
            "invoice.payment_failed" => set_status(db, &s, Status::PastDue, now).await,
            "customer.subscription.deleted" => {
                sub::Entity::update_many()
                    .col_expr(sub::Column::Status, Expr::value(Status::Cancelled.as_str()))
                    .col_expr(sub::Column::CancelledAt, Expr::value(now))
                    .col_expr(
                        sub::Column::CancellationReason,
                        Expr::value("ended by the payment provider"),
                    )
                    .col_expr(sub::Column::UpdatedAt, Expr::value(now))
                    .filter(sub::Column::Id.eq(s.id))
                    .exec(db)
                    .await?;
                end_add_ons(db, s.user_id, now).await?;
                Ok(Outcome::Applied)
            }
            _ => Ok(Outcome::Ignored),
        }
    }

    /// Paid: the subscription is active; when the invoice covers a later
    /// period (its `period_end`, else one period after the current end once
    /// that has passed), that period starts: counters reset, usage record opened.
    async fn invoice_paid(
        &self,
        db: &impl ConnectionTrait,
        s: sub::Model,
        obj: &EventObject,
        now: DateTime<Utc>,
    ) -> Result<Outcome> {
        let frequency = Frequency::parse(&s.payment_frequency).unwrap_or(Frequency::Monthly);
        let given_end = obj.period_end.and_then(|t| DateTime::from_timestamp(t, 0));
        let next = match given_end {
            Some(end) if end > s.current_period_end => {
                let start = obj
                    .period_start
                    .and_then(|t| DateTime::from_timestamp(t, 0))
                    .filter(|start| *start < end)
                    .unwrap_or(s.current_period_end);
                Some((start, end))
            }
            Some(_) => None,
            None if now >= s.current_period_end => Some((
                s.current_period_end,
                frequency.period_end(s.current_period_end),
            )),
            None => None,
        };
        let mut update = sub::Entity::update_many()
            .col_expr(sub::Column::Status, Expr::value(Status::Active.as_str()))
            .col_expr(sub::Column::UpdatedAt, Expr::value(now))
            .filter(sub::Column::Id.eq(s.id));
        if let Some((start, end)) = next {
            update = update
                .col_expr(sub::Column::CurrentPeriodStart, Expr::value(start))
                .col_expr(sub::Column::CurrentPeriodEnd, Expr::value(end))
                .col_expr(sub::Column::ExecutionsUsedThisPeriod, Expr::value(0))
                .col_expr(sub::Column::AgentsSpawnedThisPeriod, Expr::value(0));
        }
        update.exec(db).await?;
        if next.is_some() {
            let s = sub::Entity::find_by_id(s.id)
                .one(db)
                .await?
                .ok_or(Error::NotFound("subscription"))?;
            let t = tier::Entity::find_by_id(s.tier_id)
                .one(db)
                .await?
                .ok_or(Error::NotFound("tier"))?;
            open_period(db, &s, &t, now).await?;
        }
        Ok(Outcome::Applied)
    }
}

async fn find_subscription(
    db: &impl ConnectionTrait,
    reference: Option<&str>,
) -> Result<Option<sub::Model>> {
    let Some(reference) = reference else {
        return Ok(None);
    };
    // The provider's id, or ours for subscriptions the local gateway made.
    let by_provider = sub::Entity::find()
        .filter(sub::Column::StripeSubscriptionId.eq(reference))
        .filter(sub::Column::Status.ne(Status::Cancelled.as_str()))
        .one(db)
        .await?;
    if by_provider.is_some() {
        return Ok(by_provider);
    }
    match Uuid::try_parse(reference) {
        Ok(id) => Ok(sub::Entity::find_by_id(id)
            .filter(sub::Column::Status.ne(Status::Cancelled.as_str()))
            .one(db)
            .await?),
        Err(_) => Ok(None),
    }
}

async fn set_status(
    db: &impl ConnectionTrait,
    s: &sub::Model,
    status: Status,
    now: DateTime<Utc>,
) -> Result<Outcome> {
    sub::Entity::update_many()
        .col_expr(sub::Column::Status, Expr::value(status.as_str()))
        .col_expr(sub::Column::UpdatedAt, Expr::value(now))
        .filter(sub::Column::Id.eq(s.id))
        .exec(db)
        .await?;
    Ok(Outcome::Applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_body_verifies_and_any_change_or_age_is_refused() {
        let secret = WebhookSecret::new("whsec_test");
        let now = Utc::now();
        let body = br#"{"id":"evt_1"}"#;
        let header = secret.header(now.timestamp(), body);
        assert_eq!(secret.verify(&header, body, now), Ok(()));
        assert_eq!(
            secret.verify(&header, br#"{"id":"evt_2"}"#, now),
            Err(SignatureError::Mismatch)
        );
        let old = secret.header(now.timestamp() - TOLERANCE_SECS - 1, body);
        assert_eq!(secret.verify(&old, body, now), Err(SignatureError::Stale));
        assert_eq!(
            secret.verify("v1=00", body, now),
            Err(SignatureError::Malformed)
        );
        let other = WebhookSecret::new("whsec_other").header(now.timestamp(), body);
        assert_eq!(
            secret.verify(&other, body, now),
            Err(SignatureError::Mismatch)
        );
    }
}
