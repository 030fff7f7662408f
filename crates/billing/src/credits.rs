//! Credits: a balance per user and credit type, bought through the payment
//! gateway, debited atomically, refunded at most once. Every change of a
//! balance writes one append-only `credit_ledger` entry in the same
//! transaction, so the ledger always sums to the balance.
//!
//! Correctness never rests on row locks (SQLite has none): a debit is one
//! conditional `UPDATE ... WHERE balance >= amount`, and "at most once" rules
//! are unique indexes (`refund_of`, a purchase's payment reference).

use crate::Billing;
use crate::entity::{credit_ledger, credit_package, user_credit};
use crate::gateway::{Charge, GatewayError};
use async_graphql::ErrorExtensions;
use kernel::Error;
use kernel::actor::Actor;
use kernel::error::Code;
use kernel::id::new_id;
use kernel::page::{Page, Window};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, OnConflict, Query};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, Set};
use uuid::Uuid;

/// The most credits one call may buy, debit or adjust: larger numbers are a
/// client bug (or an overflow attempt), never a real order.
pub const MAX_CREDITS_PER_CALL: i64 = 1_000_000;
/// The longest reference or idempotency key accepted.
pub const MAX_REFERENCE_LEN: usize = 255;

/// What credits are spent on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, async_graphql::Enum)]
pub enum CreditType {
    /// Looking up contact data for a lead.
    Enrichment,
    /// Minutes of outbound calling.
    Calling,
    /// Pages scraped.
    Scraping,
}

impl CreditType {
    /// Every type, in display order.
    pub const ALL: [Self; 3] = [Self::Enrichment, Self::Calling, Self::Scraping];

    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enrichment => "enrichment",
            Self::Calling => "calling",
            Self::Scraping => "scraping",
        }
    }

    /// Parses the stored form.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == text)
    }
}

impl std::fmt::Display for CreditType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a ledger entry exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, async_graphql::Enum)]
pub enum CreditEntryReason {
    /// Credits bought through the payment gateway.
    Purchase,
    /// Credits spent.
    Debit,
    /// A debit given back.
    Refund,
    /// A correction by an administrator.
    Adjustment,
}

impl CreditEntryReason {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Purchase => "purchase",
            Self::Debit => "debit",
            Self::Refund => "refund",
            Self::Adjustment => "adjustment",
        }
    }

    /// Parses the stored form.
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Purchase, Self::Debit, Self::Refund, Self::Adjustment]
            .into_iter()
            .find(|r| r.as_str() == text)
    }
}

/// A number of credits for one call: 1 to [`MAX_CREDITS_PER_CALL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreditAmount(i64);

impl CreditAmount {
    /// Parses `value` received in `field`.
    ///
    /// # Errors
    /// `BAD_USER_INPUT` on `field` when the value is not positive or is absurdly large.
    pub fn parse(value: i64, field: &str) -> Result<Self, Error> {
        if value <= 0 {
            return Err(Error::bad_input(
                field,
                "must be a positive number of credits",
            ));
        }
        if value > MAX_CREDITS_PER_CALL {
            return Err(Error::bad_input(
                field,
                format!("must be at most {MAX_CREDITS_PER_CALL} credits per call"),
            ));
        }
        Ok(Self(value))
    }

    /// The number of credits.
    pub fn get(self) -> i64 {
        self.0
    }
}

/// Parses an optional free-text reference: trimmed, empty means none.
///
/// # Errors
/// `BAD_USER_INPUT` on `field` when longer than [`MAX_REFERENCE_LEN`] or holding control characters.
pub fn parse_reference(value: Option<String>, field: &str) -> Result<Option<String>, Error> {
    let Some(text) = value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if text.chars().count() > MAX_REFERENCE_LEN {
        return Err(Error::bad_input(
            field,
            format!("must be at most {MAX_REFERENCE_LEN} characters"),
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(Error::bad_input(
            field,
            "must not contain control characters",
        ));
    }
    Ok(Some(text))
}

/// A parsed request to spend credits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Debit {
    /// Which balance.
    pub credit_type: CreditType,
    /// How many credits.
    pub amount: CreditAmount,
    /// What the credits were spent on, in the caller's words (a job id).
    pub reference: Option<String>,
}

impl Debit {
    /// Parses the raw input.
    ///
    /// # Errors
    /// `BAD_USER_INPUT` naming `amount` or `reference`.
    pub fn parse(
        credit_type: CreditType,
        amount: i64,
        reference: Option<String>,
    ) -> Result<Self, Error> {
        Ok(Self {
            credit_type,
            amount: CreditAmount::parse(amount, "amount")?,
            reference: parse_reference(reference, "reference")?,
        })
    }
}

/// One balance of the caller, zero where nothing was ever bought.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Balance {
    /// Which credits.
    pub credit_type: CreditType,
    /// Credits available now.
    pub balance: i64,
    /// Credits bought (or granted) over the account's life.
    pub total_purchased: i64,
    /// Credits spent and not refunded.
    pub total_used: i64,
}

/// Why a debit failed.
#[derive(Debug, thiserror::Error)]
pub enum CreditError {
    /// The balance is smaller than the debit; nothing was taken.
    #[error("not enough {credit_type} credits: {available} available, {requested} requested")]
    Insufficient {
        /// Which balance.
        credit_type: CreditType,
        /// What the balance held when the debit was refused.
        available: i64,
        /// What was asked for.
        requested: i64,
    },
    /// Any other refusal.
    #[error(transparent)]
    Api(#[from] Error),
}

impl From<DbErr> for CreditError {
    fn from(err: DbErr) -> Self {
        Self::Api(err.into())
    }
}

impl CreditError {
    /// The API code of this error: `INSUFFICIENT_CREDITS` for a short balance.
    pub fn code(&self) -> Code {
        match self {
            Self::Insufficient { .. } => Code::InsufficientCredits,
            Self::Api(err) => err.code(),
        }
    }
}

impl ErrorExtensions for CreditError {
    fn extend(&self) -> async_graphql::Error {
        match self {
            Self::Api(err) => err.extend(),
            Self::Insufficient {
                available,
                requested,
                ..
            } => async_graphql::Error::new(self.to_string()).extend_with(|_, ext| {
                ext.set("code", Code::InsufficientCredits.as_str());
                ext.set("available", *available);
                ext.set("requested", *requested);
            }),
        }
    }
}

/// An entry about to be appended.
struct NewEntry {
    user_id: Uuid,
    credit_type: CreditType,
    amount: i64,
    balance_after: i64,
    reason: CreditEntryReason,
    reference: Option<String>,
    refund_of: Option<Uuid>,
}

impl Billing {
    /// The caller's balances, one per credit type.
    ///
    /// # Errors
    /// Internal, when the query fails.
    #[tracing::instrument(skip_all)]
    pub async fn credit_balances(
        &self,
        db: &impl ConnectionTrait,
        actor: &Actor,
    ) -> Result<Vec<Balance>, Error> {
        let rows = user_credit::Entity::find()
            .filter(user_credit::Column::UserId.eq(actor.user_id))
            .all(db)
            .await?;
        Ok(CreditType::ALL
            .into_iter()
            .map(|credit_type| {
                let row = rows.iter().find(|r| r.credit_type == credit_type.as_str());
                Balance {
                    credit_type,
                    balance: row.map_or(0, |r| r.balance),
                    total_purchased: row.map_or(0, |r| r.total_purchased),
                    total_used: row.map_or(0, |r| r.total_used),
                }
            })
            .collect())
    }

    /// The packages on sale, in display order.
    ///
    /// # Errors
    /// Internal, when the query fails.
    #[tracing::instrument(skip_all)]
    pub async fn credit_packages(
        &self,
        db: &impl ConnectionTrait,
    ) -> Result<Vec<credit_package::Model>, Error> {
        Ok(credit_package::Entity::find()
            .filter(credit_package::Column::IsActive.eq(true))
            .order_by_asc(credit_package::Column::SortOrder)
            .order_by_asc(credit_package::Column::Id)
            .all(db)
            .await?)
    }

    /// One page of the caller's ledger, newest first, optionally of one type.
    ///
    /// # Errors
    /// Internal, when the query fails.
    #[tracing::instrument(skip_all)]
    pub async fn credit_ledger(
        &self,
        db: &impl ConnectionTrait,
        actor: &Actor,
        credit_type: Option<CreditType>,
        window: Window,
    ) -> Result<Page<credit_ledger::Model>, Error> {
        let mut select =
            credit_ledger::Entity::find().filter(credit_ledger::Column::UserId.eq(actor.user_id));
        if let Some(t) = credit_type {
            select = select.filter(credit_ledger::Column::CreditType.eq(t.as_str()));
        }
        kernel::page::fetch(db, select, credit_ledger::Column::Id, |m| m.id, window).await
    }

    /// Buys `package_id` for the caller: charges the gateway, then credits the
    /// balance and appends a purchase entry. `idempotency_key` names the
    /// purchase: a retry with the same key is charged once by the gateway and
    /// credited once here (the original entry is returned).
    ///
    /// # Errors
    /// `NOT_FOUND` for an unknown or retired package, `BAD_USER_INPUT` for a
    /// malformed key, `CONFLICT` when the key was used for another purchase or
    /// the same purchase is being recorded concurrently, `LIMIT_EXCEEDED` when
    /// the payment is declined.
    #[tracing::instrument(skip_all)]
    pub async fn purchase_credits(
        &self,
        db: &impl ConnectionTrait,
        actor: &Actor,
        package_id: Uuid,
        idempotency_key: Option<String>,
    ) -> Result<credit_ledger::Model, Error> {
        let key = parse_reference(idempotency_key, "idempotencyKey")?
            .unwrap_or_else(|| new_id().to_string());
        let package = credit_package::Entity::find_by_id(package_id)
            .filter(credit_package::Column::IsActive.eq(true))
            .one(db)
            .await?
            .ok_or(Error::NotFound("credit package"))?;
        let credit_type = CreditType::parse(&package.credit_type)
            .ok_or_else(|| Error::internal(DbErr::Custom("unknown credit type".into())))?;
        // Scoped by user so that two users' keys can never name the same charge.
        let charge = Charge {
            user_id: actor.user_id,
            amount_cents: package.price,
            currency: "usd".into(),
            description: package.name.clone(),
            idempotency_key: format!("credits:{}:{key}", actor.user_id),
        };
        let payment = self.gateway.charge(&charge).await.map_err(|e| match e {
            GatewayError::Declined(reason) => {
                Error::LimitExceeded(format!("payment declined: {reason}"))
            }
            unavailable @ GatewayError::Unavailable(_) => Error::internal(unavailable),
        })?;
        let recorded = credit_ledger::Entity::find()
            .filter(credit_ledger::Column::Reason.eq(CreditEntryReason::Purchase.as_str()))
            .filter(credit_ledger::Column::Reference.eq(payment.provider_id.as_str()))
            .one(db)
            .await?;
        if let Some(entry) = recorded {
            // A retry: the payment is credited already.
            let same = entry.user_id == actor.user_id
                && entry.credit_type == credit_type.as_str()
                && entry.amount == package.credit_amount;
            return if same {
                Ok(entry)
            } else {
                Err(Error::conflict(
                    "idempotencyKey",
                    "this key was used for a different purchase",
                ))
            };
        }
        let amount = package.credit_amount;
        let balance_after = self
            .credit(db, actor.user_id, credit_type, amount, true)
            .await?;
        self.append(
            db,
            NewEntry {
                user_id: actor.user_id,
                credit_type,
                amount,
                balance_after,
                reason: CreditEntryReason::Purchase,
                reference: Some(payment.provider_id),
                refund_of: None,
            },
        )
        .await?
        .ok_or_else(|| {
            Error::conflict(
                "idempotencyKey",
                "this purchase is being recorded by a concurrent request",
            )
        })
    }

    /// Spends credits of the caller: one conditional update that never takes
    /// the balance below zero, and one debit entry with the balance after it.
    ///
    /// # Errors
    /// `INSUFFICIENT_CREDITS` when the balance is smaller than the amount;
    /// nothing is written then.
    #[tracing::instrument(skip_all)]
    pub async fn debit_credits(
        &self,
        db: &impl ConnectionTrait,
        actor: &Actor,
        debit: Debit,
    ) -> Result<credit_ledger::Model, CreditError> {
        let amount = debit.amount.get();
        let Some(balance_after) = self
            .take(db, actor.user_id, debit.credit_type, amount)
            .await?
        else {
            let available = self
                .balance_of(db, actor.user_id, debit.credit_type)
                .await?;
            return Err(CreditError::Insufficient {
                credit_type: debit.credit_type,
                available,
                requested: amount,
            });
        };
        let entry = self
            .append(
                db,
                NewEntry {
                    user_id: actor.user_id,
                    credit_type: debit.credit_type,
                    amount: -amount,
                    balance_after,
                    reason: CreditEntryReason::Debit,
                    reference: debit.reference,
                    refund_of: None,
                },
            )
            .await?
            .ok_or_else(|| Error::internal(DbErr::RecordNotInserted))?;
        Ok(entry)
    }

    /// Gives a debit of the caller back, at most once.
    ///
    /// # Errors
    /// `NOT_FOUND` for an entry that is not the caller's, `BAD_USER_INPUT`
    /// for an entry that is not a debit, `CONFLICT` when it was refunded
    /// already (also by a concurrent request).
    #[tracing::instrument(skip_all)]
    pub async fn refund_credit_entry(
        &self,
        db: &impl ConnectionTrait,
        actor: &Actor,
        entry_id: Uuid,
    ) -> Result<credit_ledger::Model, Error> {
        let entry = credit_ledger::Entity::find_by_id(entry_id)
            .filter(credit_ledger::Column::UserId.eq(actor.user_id))
            .one(db)
            .await?
            .ok_or(Error::NotFound("credit ledger entry"))?;
        if entry.reason != CreditEntryReason::Debit.as_str() {
            return Err(Error::bad_input("id", "only debits can be refunded"));
        }
        let refunded = credit_ledger::Entity::find()
            .filter(credit_ledger::Column::RefundOf.eq(entry.id))
            .one(db)
            .await?;
        if refunded.is_some() {
            return Err(Error::conflict("id", "this entry was refunded already"));
        }
        let credit_type = CreditType::parse(&entry.credit_type)
            .ok_or_else(|| Error::internal(DbErr::Custom("unknown credit type".into())))?;
        let amount = -entry.amount;
        let balance_after = self
            .credit(db, actor.user_id, credit_type, amount, false)
            .await?;
        // The unique `refund_of` decides between concurrent refunds; the loser
        // gets CONFLICT and its transaction rolls the balance change back.
        self.append(
            db,
            NewEntry {
                user_id: actor.user_id,
                credit_type,
                amount,
                balance_after,
                reason: CreditEntryReason::Refund,
                reference: entry.reference,
                refund_of: Some(entry.id),
            },
        )
        .await?
        .ok_or_else(|| Error::conflict("id", "this entry was refunded already"))
    }

    /// An administrator's correction of `user_id`'s balance: positive grants,
    /// negative takes (never below zero).
    ///
    /// # Errors
    /// `FORBIDDEN` for non-admins, `NOT_FOUND` for an unknown user,
    /// `BAD_USER_INPUT` on `amount` for zero or absurd amounts,
    /// `INSUFFICIENT_CREDITS` when taking more than the balance.
    #[tracing::instrument(skip_all)]
    pub async fn adjust_credits(
        &self,
        db: &impl ConnectionTrait,
        admin: &Actor,
        user_id: Uuid,
        credit_type: CreditType,
        amount: i64,
        reference: Option<String>,
    ) -> Result<credit_ledger::Model, CreditError> {
        if !admin.is_admin() {
            return Err(Error::Forbidden("only administrators adjust credits").into());
        }
        let size = CreditAmount::parse(amount.saturating_abs(), "amount")?.get();
        let reference = parse_reference(reference, "reference")?;
        let user_exists = Query::select()
            .expr(Expr::val(1))
            .from(Alias::new("users"))
            .and_where(Expr::col(Alias::new("id")).eq(user_id))
            .to_owned();
        if db.query_one(&user_exists).await?.is_none() {
            return Err(Error::NotFound("user").into());
        }
        let balance_after = if amount > 0 {
            self.credit(db, user_id, credit_type, size, true).await?
        } else {
            match self.take(db, user_id, credit_type, size).await? {
                Some(balance) => balance,
                None => {
                    return Err(CreditError::Insufficient {
                        credit_type,
                        available: self.balance_of(db, user_id, credit_type).await?,
                        requested: size,
                    });
                }
            }
        };
        let entry = self
            .append(
                db,
                NewEntry {
                    user_id,
                    credit_type,
                    amount,
                    balance_after,
                    reason: CreditEntryReason::Adjustment,
                    reference,
                    refund_of: None,
                },
            )
            .await?
            .ok_or_else(|| Error::internal(DbErr::RecordNotInserted))?;
        Ok(entry)
    }

    /// Takes `amount` if the balance holds it; the balance after, or `None`
    /// when it does not. The conditional update is atomic on every backend;
    /// on PostgreSQL it also row-locks the balance until commit, so the
    /// re-read in the same transaction is this debit's own result.
    async fn take(
        &self,
        db: &impl ConnectionTrait,
        user_id: Uuid,
        credit_type: CreditType,
        amount: i64,
    ) -> Result<Option<i64>, Error> {
        use user_credit::Column as C;
        let updated = user_credit::Entity::update_many()
            .col_expr(C::Balance, Expr::col(C::Balance).sub(amount))
            .col_expr(C::TotalUsed, Expr::col(C::TotalUsed).add(amount))
            .col_expr(C::UpdatedAt, Expr::value(self.clock.now()))
            .filter(C::UserId.eq(user_id))
            .filter(C::CreditType.eq(credit_type.as_str()))
            .filter(C::Balance.gte(amount))
            .exec(db)
            .await?;
        if updated.rows_affected == 0 {
            return Ok(None);
        }
        Ok(Some(self.balance_of(db, user_id, credit_type).await?))
    }

    /// Adds `amount` to the balance, creating it at zero first when needed;
    /// returns the balance after. `purchased` counts the credits as bought,
    /// otherwise as a debit given back.
    async fn credit(
        &self,
        db: &impl ConnectionTrait,
        user_id: Uuid,
        credit_type: CreditType,
        amount: i64,
        purchased: bool,
    ) -> Result<i64, Error> {
        use user_credit::Column as C;
        let now = self.clock.now();
        // Concurrent first purchases both try; the unique (user, type) keeps one row.
        user_credit::Entity::insert(user_credit::ActiveModel {
            id: Set(new_id()),
            user_id: Set(user_id),
            credit_type: Set(credit_type.as_str().to_owned()),
            balance: Set(0),
            total_purchased: Set(0),
            total_used: Set(0),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .on_conflict(OnConflict::new().do_nothing().to_owned())
        .exec_without_returning(db)
        .await?;
        let (counter, delta) = if purchased {
            (C::TotalPurchased, amount)
        } else {
            (C::TotalUsed, -amount)
        };
        user_credit::Entity::update_many()
            .col_expr(C::Balance, Expr::col(C::Balance).add(amount))
            .col_expr(counter, Expr::col(counter).add(delta))
            .col_expr(C::UpdatedAt, Expr::value(now))
            .filter(C::UserId.eq(user_id))
            .filter(C::CreditType.eq(credit_type.as_str()))
            .exec(db)
            .await?;
        self.balance_of(db, user_id, credit_type).await
    }

    async fn balance_of(
        &self,
        db: &impl ConnectionTrait,
        user_id: Uuid,
        credit_type: CreditType,
    ) -> Result<i64, Error> {
        Ok(user_credit::Entity::find()
            .filter(user_credit::Column::UserId.eq(user_id))
            .filter(user_credit::Column::CreditType.eq(credit_type.as_str()))
            .one(db)
            .await?
            .map_or(0, |row| row.balance))
    }

    /// Appends an entry; `None` when a unique rule (one refund per entry, one
    /// purchase per payment) already holds an entry for it.
    async fn append(
        &self,
        db: &impl ConnectionTrait,
        new: NewEntry,
    ) -> Result<Option<credit_ledger::Model>, Error> {
        let model = credit_ledger::Model {
            id: new_id(),
            user_id: new.user_id,
            credit_type: new.credit_type.as_str().to_owned(),
            amount: new.amount,
            balance_after: new.balance_after,
            reason: new.reason.as_str().to_owned(),
            reference: new.reference,
            refund_of: new.refund_of,
            created_at: self.clock.now(),
        };
        let active = credit_ledger::ActiveModel {
            id: Set(model.id),
            user_id: Set(model.user_id),
            credit_type: Set(model.credit_type.clone()),
            amount: Set(model.amount),
            balance_after: Set(model.balance_after),
            reason: Set(model.reason.clone()),
            reference: Set(model.reference.clone()),
            refund_of: Set(model.refund_of),
            created_at: Set(model.created_at),
        };
        // No conflict target: any unique index of the ledger turns the insert
        // into a no-op instead of an error that would abort a PostgreSQL transaction.
        let inserted = credit_ledger::Entity::insert(active)
            .on_conflict(OnConflict::new().do_nothing().to_owned())
            .exec_without_returning(db)
            .await?;
        Ok((inserted == 1).then_some(model))
    }
}

/// The entry as the audit log records it.
pub fn audit_view(entry: &credit_ledger::Model) -> serde_json::Value {
    serde_json::json!({
        "creditType": entry.credit_type,
        "amount": entry.amount,
        "balanceAfter": entry.balance_after,
        "reason": entry.reason,
        "reference": entry.reference,
        "refundOf": entry.refund_of,
    })
}
