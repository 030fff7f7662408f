//! Where the kernel's audit hook writes: the `audit_logs` table.

use crate::entity::audit_log;
use chrono::{DateTime, Utc};
use kernel::audit::{AuditRecord, AuditSink};
use kernel::clock::SharedClock;
use kernel::id::new_id;
use sea_orm::{ActiveModelTrait, DatabaseTransaction, DbErr, Set};

/// Writes audit records to `audit_logs`, stamped by the platform clock.
#[derive(Debug, Clone)]
pub struct AuditLogSink {
    /// The time source.
    pub clock: SharedClock,
}

#[async_trait::async_trait]
impl AuditSink for AuditLogSink {
    async fn write(&self, txn: &DatabaseTransaction, record: AuditRecord) -> Result<(), DbErr> {
        let cut = |s: String| s.chars().take(100).collect::<String>();
        audit_log::ActiveModel {
            id: Set(new_id()),
            user_id: Set(record.user_id),
            action: Set(cut(record.action)),
            entity_type: Set(cut(record.entity_type)),
            entity_id: Set(record.entity_id.map(cut)),
            old_values: Set(record.old_values),
            new_values: Set(record.new_values),
            ip_address: Set(record.ip_address.map(|ip| ip.chars().take(45).collect())),
            user_agent: Set(record.user_agent),
            request_id: Set(record.request_id),
            created_at: Set(self.now()),
        }
        .insert(txn)
        .await?;
        Ok(())
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }
}
