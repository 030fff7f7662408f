//! The one transaction a mutation runs in. Dropping it rolls back; committing
//! it first writes the mutation's audit record, in the same transaction.
//!
//! A dropped transaction is only *queued* for rollback by the driver: the
//! `ROLLBACK` goes out when the pooled connection is next used or returned,
//! from a spawned task. Until then the refused mutation's row locks stay held,
//! after its answer is already on the way: a client's retry waits on them and
//! a worker's `SKIP LOCKED` claim passes the row over. Schemas that install
//! [`AwaitRollbacks`] hand a dropped transaction to the request instead, and
//! the extension awaits its rollback before the mutation field answers.
//!
//! Two limits. A `COMMIT` that fails is not handed over (the transaction is
//! already out of the `Tx`); the database ends a transaction whose commit
//! failed, so no lock survives it. And a handed-over transaction keeps its
//! pooled connection until the root field ends: on SQLite's one-connection
//! pool, a resolver must not drop its `Tx` and then query the pool in the
//! same root field, or it waits for the acquire timeout.

use crate::Error;
use crate::audit::{AuditRecord, AuditSink, redact};
use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextPrepareRequest, NextResolve, ResolveInfo,
};
use async_graphql::{Request, ServerResult, Value};
use sea_orm::{
    ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, ExecResult, QueryResult, Statement,
};
use serde_json::Value as Json;
use std::sync::{Arc, Mutex};
use uuid::Uuid;

/// A mutation's transaction with its pending audit record.
pub struct Tx {
    /// `None` only once committed or handed over for rollback.
    txn: Option<DatabaseTransaction>,
    audit: Option<(Arc<dyn AuditSink>, AuditRecord)>,
    abandoned: Option<Abandoned>,
}

impl Tx {
    /// Wraps `txn`; `audit` is `None` where no sink is configured.
    pub fn new(txn: DatabaseTransaction, audit: Option<(Arc<dyn AuditSink>, AuditRecord)>) -> Self {
        Self {
            txn: Some(txn),
            audit,
            abandoned: None,
        }
    }

    /// Hands the transaction to `abandoned` if it is dropped uncommitted, so
    /// that [`AwaitRollbacks`] rolls it back before the field answers.
    #[must_use]
    pub fn abandon_into(mut self, abandoned: Option<&Abandoned>) -> Self {
        self.abandoned = abandoned.cloned();
        self
    }

    fn txn(&self) -> &DatabaseTransaction {
        // Taken only by `commit` (which consumes `self`) and by `drop`.
        self.txn.as_ref().expect("a live transaction")
    }

    fn record(&mut self) -> Option<&mut AuditRecord> {
        self.audit.as_mut().map(|(_, r)| r)
    }

    /// Names the object the mutation changed.
    pub fn subject(&mut self, entity_type: &str, entity_id: impl ToString) {
        if let Some(r) = self.record() {
            r.entity_type = entity_type.to_owned();
            r.entity_id = Some(entity_id.to_string());
        }
    }

    /// The object's state before and after; secrets are redacted when written.
    pub fn changes(&mut self, old: Option<Json>, new: Option<Json>) {
        if let Some(r) = self.record() {
            r.old_values = old;
            r.new_values = new;
        }
    }

    /// The acting user, for mutations that create their actor (registration).
    pub fn acting_user(&mut self, user_id: Uuid) {
        if let Some(r) = self.record() {
            r.user_id = Some(user_id);
        }
    }

    /// Writes the audit record and commits.
    ///
    /// # Errors
    /// Internal, when either fails; nothing is committed then.
    pub async fn commit(mut self) -> Result<(), Error> {
        if let Some((sink, mut record)) = self.audit.take() {
            for values in [&mut record.old_values, &mut record.new_values]
                .into_iter()
                .flatten()
            {
                redact(values);
            }
            sink.write(self.txn(), record).await?;
        }
        let txn = self.txn.take().expect("a live transaction");
        txn.commit().await?;
        Ok(())
    }
}

impl Drop for Tx {
    fn drop(&mut self) {
        if let (Some(txn), Some(abandoned)) = (self.txn.take(), &self.abandoned) {
            abandoned.push(txn);
        }
        // Otherwise an uncommitted `txn` drops here and the driver queues its rollback.
    }
}

/// Transactions that one request's resolvers dropped without committing.
#[derive(Clone, Default)]
pub struct Abandoned(Arc<Mutex<Vec<DatabaseTransaction>>>);

impl Abandoned {
    fn push(&self, txn: DatabaseTransaction) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(txn);
    }

    fn take(&self) -> Vec<DatabaseTransaction> {
        std::mem::take(
            &mut *self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// Rolls back every transaction handed over so far, waiting for each.
    pub async fn roll_back(&self) {
        for txn in self.take() {
            if let Err(err) = txn.rollback().await {
                // The connection is broken; the pool discards it, and the
                // database ends the transaction with the session.
                tracing::warn!(error = %err, "rolling back a refused mutation failed");
            }
        }
    }
}

/// Extension: gives each request an [`Abandoned`] and, after each root field
/// resolves, awaits the rollback of the transactions its resolver dropped, so
/// no refused mutation holds a row lock once its answer is sent.
pub struct AwaitRollbacks;

impl ExtensionFactory for AwaitRollbacks {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(AwaitRollbacksExtension)
    }
}

struct AwaitRollbacksExtension;

#[async_trait::async_trait]
impl Extension for AwaitRollbacksExtension {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        next.run(ctx, request.data(Abandoned::default())).await
    }

    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        // A root field ends after all of its nested fields, so rolling back
        // there covers any transaction begun below it too.
        let root = info.path_node.parent.is_none();
        let answer = next.run(ctx, info).await;
        if root && let Some(abandoned) = ctx.data_opt::<Abandoned>() {
            abandoned.roll_back().await;
        }
        answer
    }
}

#[async_trait::async_trait]
impl ConnectionTrait for Tx {
    fn get_database_backend(&self) -> DbBackend {
        self.txn().get_database_backend()
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        self.txn().execute_raw(stmt).await
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        self.txn().execute_unprepared(sql).await
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        self.txn().query_one_raw(stmt).await
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        self.txn().query_all_raw(stmt).await
    }

    fn support_returning(&self) -> bool {
        self.txn().support_returning()
    }
}
