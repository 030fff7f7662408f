//! Credits in GraphQL: the caller's balances and ledger, the packages on
//! sale, and buying, spending and refunding credits.

use super::billing;
use crate::credits::{Balance, CreditEntryReason, CreditType, Debit, audit_view};
use crate::entity::{credit_ledger, credit_package};
use async_graphql::connection::Connection;
use async_graphql::{Context, ErrorExtensions, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use kernel::error::ResultExt;
use kernel::gql::ContextExt;
use kernel::id::parse_id;

/// One balance of the caller.
#[derive(SimpleObject, Debug, Clone)]
pub struct CreditBalance {
    /// Which credits.
    pub credit_type: CreditType,
    /// Credits available now.
    pub balance: i64,
    /// Credits bought or granted over the account's life.
    pub total_purchased: i64,
    /// Credits spent and not refunded.
    pub total_used: i64,
}

impl From<Balance> for CreditBalance {
    fn from(b: Balance) -> Self {
        Self {
            credit_type: b.credit_type,
            balance: b.balance,
            total_purchased: b.total_purchased,
            total_used: b.total_used,
        }
    }
}

/// A package of credits on sale.
#[derive(SimpleObject, Debug, Clone)]
pub struct CreditPackage {
    /// The package id, for `purchaseCredits`.
    pub id: ID,
    /// The name shown to buyers.
    pub name: String,
    /// What the package is for.
    pub description: Option<String>,
    /// Which credits it adds.
    pub credit_type: CreditType,
    /// How many credits it adds.
    pub credit_amount: i64,
    /// Its price in integer US cents.
    pub price_cents: i64,
}

impl From<credit_package::Model> for CreditPackage {
    fn from(m: credit_package::Model) -> Self {
        Self {
            id: ID(m.id.to_string()),
            name: m.name,
            description: m.description,
            // The database refuses other types (CHECK constraint).
            credit_type: CreditType::parse(&m.credit_type).unwrap_or(CreditType::Enrichment),
            credit_amount: m.credit_amount,
            price_cents: m.price,
        }
    }
}

/// One change of a balance. The ledger is append-only: entries are never
/// edited, and the amounts of a type's entries sum to its balance.
#[derive(SimpleObject, Debug, Clone)]
pub struct CreditLedgerEntry {
    /// The entry id, for `refundCreditEntry`.
    pub id: ID,
    /// Which balance changed.
    pub credit_type: CreditType,
    /// Credits added (positive) or taken (negative).
    pub amount: i64,
    /// The balance right after this change.
    pub balance_after: i64,
    /// Why the balance changed.
    pub reason: CreditEntryReason,
    /// The payment id of a purchase, or the caller's reference of a debit.
    pub reference: Option<String>,
    /// For a refund, the debit it gave back.
    pub refund_of: Option<ID>,
    /// When the change was made.
    pub created_at: DateTime<Utc>,
}

impl From<credit_ledger::Model> for CreditLedgerEntry {
    fn from(m: credit_ledger::Model) -> Self {
        Self {
            id: ID(m.id.to_string()),
            // The database refuses other values (CHECK constraints).
            credit_type: CreditType::parse(&m.credit_type).unwrap_or(CreditType::Enrichment),
            amount: m.amount,
            balance_after: m.balance_after,
            reason: CreditEntryReason::parse(&m.reason).unwrap_or(CreditEntryReason::Adjustment),
            reference: m.reference,
            refund_of: m.refund_of.map(|id| ID(id.to_string())),
            created_at: m.created_at,
        }
    }
}

/// Credits to spend.
#[derive(InputObject, Debug)]
pub struct DebitCreditsInput {
    /// Which balance to take from.
    pub credit_type: CreditType,
    /// How many credits: 1 to 1,000,000.
    pub amount: i64,
    /// What the credits pay for (a job id), up to 255 characters.
    pub reference: Option<String>,
}

/// An administrator's correction of a user's credits.
#[derive(InputObject, Debug)]
pub struct AdjustCreditsInput {
    /// Whose credits.
    pub user_id: ID,
    /// Which balance.
    pub credit_type: CreditType,
    /// Credits to grant (positive) or take (negative), at most 1,000,000 either way.
    pub amount: i64,
    /// Why, for the ledger (a ticket id), up to 255 characters.
    pub reference: Option<String>,
}

/// Credit queries.
#[derive(Default)]
pub struct CreditQuery;

#[Object]
impl CreditQuery {
    /// The caller's credit balances, one per credit type.
    async fn credits(&self, ctx: &Context<'_>) -> Result<Vec<CreditBalance>> {
        let actor = ctx.actor()?;
        let balances = billing(ctx).credit_balances(ctx.db(), actor).await.gql()?;
        Ok(balances.into_iter().map(Into::into).collect())
    }

    /// The caller's credit ledger, newest first, optionally of one credit type.
    #[graphql(complexity = "kernel::page::list_complexity(first, last, child_complexity)")]
    async fn credit_ledger(
        &self,
        ctx: &Context<'_>,
        credit_type: Option<CreditType>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Connection<String, CreditLedgerEntry>> {
        let actor = ctx.actor()?;
        let window = kernel::page::window(first, after, last, before).gql()?;
        let page = billing(ctx)
            .credit_ledger(ctx.db(), actor, credit_type, window)
            .await
            .gql()?;
        Ok(page.into_connection(CreditLedgerEntry::from))
    }

    /// The credit packages on sale, in display order. Public.
    async fn credit_packages(&self, ctx: &Context<'_>) -> Result<Vec<CreditPackage>> {
        let packages = billing(ctx).credit_packages(ctx.db()).await.gql()?;
        Ok(packages.into_iter().map(Into::into).collect())
    }
}

/// Credit mutations.
#[derive(Default)]
pub struct CreditMutation;

#[Object]
impl CreditMutation {
    /// Buys a credit package: charges its price and adds its credits. Retrying
    /// with the same `idempotencyKey` charges and credits once and returns
    /// the original entry.
    async fn purchase_credits(
        &self,
        ctx: &Context<'_>,
        package_id: ID,
        idempotency_key: Option<String>,
    ) -> Result<CreditLedgerEntry> {
        let actor = ctx.writer()?;
        let package_id = parse_id(&package_id, "packageId").gql()?;
        let mut txn = ctx.begin().await?;
        let entry = billing(ctx)
            .purchase_credits(&txn, actor, package_id, idempotency_key)
            .await
            .gql()?;
        txn.subject("credit_ledger", entry.id);
        txn.changes(None, Some(audit_view(&entry)));
        txn.commit().await.gql()?;
        Ok(entry.into())
    }

    /// Spends credits of the caller, never below zero; refused with
    /// `INSUFFICIENT_CREDITS` when the balance is smaller than the amount.
    async fn debit_credits(
        &self,
        ctx: &Context<'_>,
        input: DebitCreditsInput,
    ) -> Result<CreditLedgerEntry> {
        let actor = ctx.writer()?;
        let debit = Debit::parse(input.credit_type, input.amount, input.reference).gql()?;
        let mut txn = ctx.begin().await?;
        let entry = billing(ctx)
            .debit_credits(&txn, actor, debit)
            .await
            .map_err(|e| e.extend())?;
        txn.subject("credit_ledger", entry.id);
        txn.changes(None, Some(audit_view(&entry)));
        txn.commit().await.gql()?;
        Ok(entry.into())
    }

    /// Gives one of the caller's debits back, at most once.
    async fn refund_credit_entry(&self, ctx: &Context<'_>, id: ID) -> Result<CreditLedgerEntry> {
        let actor = ctx.writer()?;
        let id = parse_id(&id, "id").gql()?;
        let mut txn = ctx.begin().await?;
        let entry = billing(ctx)
            .refund_credit_entry(&txn, actor, id)
            .await
            .gql()?;
        txn.subject("credit_ledger", entry.id);
        txn.changes(None, Some(audit_view(&entry)));
        txn.commit().await.gql()?;
        Ok(entry.into())
    }

    /// Administrators only: grants or takes a user's credits, never below zero.
    async fn adjust_credits(
        &self,
        ctx: &Context<'_>,
        input: AdjustCreditsInput,
    ) -> Result<CreditLedgerEntry> {
        let actor = ctx.writer()?;
        let user_id = parse_id(&input.user_id, "userId").gql()?;
        let mut txn = ctx.begin().await?;
        let entry = billing(ctx)
            .adjust_credits(
                &txn,
                actor,
                user_id,
                input.credit_type,
                input.amount,
                input.reference,
            )
            .await
            .map_err(|e| e.extend())?;
        txn.subject("credit_ledger", entry.id);
        txn.changes(None, Some(audit_view(&entry)));
        txn.commit().await.gql()?;
        Ok(entry.into())
    }
}
