//! The one transaction a mutation runs in. Dropping it rolls back; committing
//! it first writes the mutation's audit record, in the same transaction.

use crate::Error;
use crate::audit::{AuditRecord, AuditSink, redact};
use sea_orm::{
    ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, ExecResult, QueryResult, Statement,
};
use serde_json::Value as Json;
use std::sync::Arc;
use uuid::Uuid;

/// A mutation's transaction with its pending audit record.
pub struct Tx {
    txn: DatabaseTransaction,
    audit: Option<(Arc<dyn AuditSink>, AuditRecord)>,
}

impl Tx {
    /// Wraps `txn`; `audit` is `None` where no sink is configured.
    pub fn new(txn: DatabaseTransaction, audit: Option<(Arc<dyn AuditSink>, AuditRecord)>) -> Self {
        Self { txn, audit }
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
    pub async fn commit(self) -> Result<(), Error> {
        if let Some((sink, mut record)) = self.audit {
            for values in [&mut record.old_values, &mut record.new_values]
                .into_iter()
                .flatten()
            {
                redact(values);
            }
            sink.write(&self.txn, record).await?;
        }
        self.txn.commit().await?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl ConnectionTrait for Tx {
    fn get_database_backend(&self) -> DbBackend {
        self.txn.get_database_backend()
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        self.txn.execute_raw(stmt).await
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        self.txn.execute_unprepared(sql).await
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        self.txn.query_one_raw(stmt).await
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        self.txn.query_all_raw(stmt).await
    }

    fn support_returning(&self) -> bool {
        self.txn.support_returning()
    }
}
