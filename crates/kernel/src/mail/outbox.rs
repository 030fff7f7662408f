//! `mail_outbox`: mail written in the transaction that caused it, delivered
//! after commit by claiming rows one at a time.

use super::{Mailer, OutgoingMail};
use crate::clock::{Clock, SharedClock};
use crate::id::new_id;
use chrono::{DateTime, Utc};
use sea_orm::ExprTrait;
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, Condition, ConnectionTrait, DatabaseConnection, QueryOrder, QuerySelect,
};
use std::sync::Arc;

/// Waiting for delivery.
pub const PENDING: &str = "pending";
/// Claimed by a dispatcher; being delivered.
pub const SENDING: &str = "sending";
/// Delivered (for the local mailer: kept in this table).
pub const SENT: &str = "sent";
/// Given up on after [`MAX_ATTEMPTS`].
pub const FAILED: &str = "failed";
/// Deliveries tried before a row is marked failed.
pub const MAX_ATTEMPTS: i32 = 5;
/// A row claimed longer ago than this and still `sending` was abandoned by a
/// dispatcher that crashed or lost its database mid-delivery; it is claimed
/// again, so such mail is delivered at least once rather than lost.
pub const CLAIM_TIMEOUT: chrono::Duration = chrono::Duration::minutes(10);

/// One queued or delivered message.
#[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "mail_outbox")]
pub struct Model {
    /// Primary key.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The recipient's address.
    pub recipient: String,
    /// The subject line.
    pub subject: String,
    /// The body; emptied after SMTP delivery, since it may hold a live token.
    #[sea_orm(column_type = "Text")]
    pub body: String,
    /// What the mail is for, e.g. `password_reset`.
    pub kind: String,
    /// `pending`, `sending`, `sent` or `failed`.
    pub status: String,
    /// Deliveries tried.
    pub attempts: i32,
    /// The last transport error, without the body.
    pub last_error: Option<String>,
    /// When the mail was queued.
    pub created_at: DateTimeUtc,
    /// When a dispatcher last claimed it.
    pub claimed_at: Option<DateTimeUtc>,
    /// When it was delivered.
    pub sent_at: Option<DateTimeUtc>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("mail_outbox::Model")
            .field("id", &self.id)
            .field("recipient", &self.recipient)
            .field("kind", &self.kind)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

/// No relations: the outbox outlives whatever caused the mail.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl Model {
    /// The message this row holds.
    pub fn mail(&self) -> OutgoingMail {
        OutgoingMail {
            to: self.recipient.clone(),
            subject: self.subject.clone(),
            body: self.body.clone(),
            kind: self.kind.clone(),
        }
    }
}

/// Queues `mail` on `db`, normally the transaction of the work that causes it,
/// so it is delivered only if that work commits.
///
/// # Errors
/// The database error, which should fail the surrounding work.
pub async fn enqueue(
    db: &impl ConnectionTrait,
    mail: &OutgoingMail,
    now: DateTime<Utc>,
) -> Result<Uuid, DbErr> {
    let id = new_id();
    ActiveModel {
        id: Set(id),
        recipient: Set(mail.to.clone()),
        subject: Set(mail.subject.chars().take(255).collect()),
        body: Set(mail.body.clone()),
        kind: Set(mail.kind.clone()),
        status: Set(PENDING.into()),
        attempts: Set(0),
        last_error: Set(None),
        created_at: Set(now),
        claimed_at: Set(None),
        sent_at: Set(None),
    }
    .insert(db)
    .await?;
    Ok(id)
}

/// Delivers up to `limit` pending rows, oldest first, and returns how many were
/// delivered. Each row is claimed by a conditional update first, so concurrent
/// dispatchers never send the same row twice.
///
/// # Errors
/// Database errors; transport errors are recorded on the row instead.
pub async fn deliver_pending(
    db: &impl ConnectionTrait,
    mailer: &dyn Mailer,
    clock: &dyn Clock,
    limit: u64,
) -> Result<usize, DbErr> {
    let now = clock.now();
    // Pending rows, and rows whose claim was abandoned (see CLAIM_TIMEOUT).
    let claimable = || {
        Condition::any().add(Column::Status.eq(PENDING)).add(
            Condition::all()
                .add(Column::Status.eq(SENDING))
                .add(Column::ClaimedAt.lt(now - CLAIM_TIMEOUT)),
        )
    };
    let ids: Vec<Uuid> = Entity::find()
        .select_only()
        .column(Column::Id)
        .filter(claimable())
        .order_by_asc(Column::CreatedAt)
        .limit(limit)
        .into_tuple()
        .all(db)
        .await?;
    let mut delivered = 0;
    for id in ids {
        let claimed = Entity::update_many()
            .col_expr(Column::Status, Expr::value(SENDING))
            .col_expr(Column::Attempts, Expr::col(Column::Attempts).add(1))
            .col_expr(Column::ClaimedAt, Expr::value(Some(now)))
            .filter(Column::Id.eq(id))
            .filter(claimable())
            .exec(db)
            .await?;
        if claimed.rows_affected != 1 {
            continue;
        }
        let Some(row) = Entity::find_by_id(id).one(db).await? else {
            continue;
        };
        let mut update = Entity::update_many().filter(Column::Id.eq(id));
        match mailer.deliver(&row.mail()).await {
            Ok(()) => {
                delivered += 1;
                update = update
                    .col_expr(Column::Status, Expr::value(SENT))
                    .col_expr(Column::SentAt, Expr::value(clock.now()))
                    .col_expr(Column::LastError, Expr::value(Option::<String>::None));
                if !mailer.keeps_body() {
                    update = update.col_expr(Column::Body, Expr::value(""));
                }
            }
            Err(err) => {
                tracing::warn!(mail_id = %id, kind = %row.kind, attempts = row.attempts, error = %err, "mail delivery failed");
                let status = if row.attempts >= MAX_ATTEMPTS {
                    FAILED
                } else {
                    PENDING
                };
                update = update
                    .col_expr(Column::Status, Expr::value(status))
                    .col_expr(Column::LastError, Expr::value(err.to_string()));
            }
        }
        update.exec(db).await?;
    }
    Ok(delivered)
}

/// Delivers what is pending now, in the background: called after a commit
/// that queued mail, so the request does not wait on the transport.
pub fn deliver_soon(db: DatabaseConnection, mailer: Arc<dyn Mailer>, clock: SharedClock) {
    tokio::spawn(async move {
        if let Err(err) = deliver_pending(&db, mailer.as_ref(), clock.as_ref(), 50).await {
            tracing::warn!(error = %err, "mail dispatch failed");
        }
    });
}

/// Retries pending mail every `every`, for rows whose first delivery failed or
/// was cut short by a restart.
pub fn spawn_dispatcher(
    db: DatabaseConnection,
    mailer: Arc<dyn Mailer>,
    clock: SharedClock,
    every: std::time::Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            if let Err(err) = deliver_pending(&db, mailer.as_ref(), clock.as_ref(), 100).await {
                tracing::warn!(error = %err, "mail dispatch failed");
            }
        }
    })
}
