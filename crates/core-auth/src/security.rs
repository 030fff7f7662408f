//! The security records other parts of the platform write:
//! [`record_access`] for sensitive reads and admin actions (`security_audit_log`)
//! and [`record_event`] for things an operator should look at (`security_events`).
//!
//! Both are plain inserts on the caller's connection, so they commit or roll
//! back with the caller's transaction. Rows are stamped with the wall clock and
//! the current request id; neither table has an update or delete API, except
//! that an admin resolves an event.

use crate::entity::{security_audit_log, security_event};
use chrono::{DateTime, Utc};
use kernel::actor::Actor;
use kernel::audit::redact;
use kernel::clock::{Clock, SystemClock};
use kernel::id::new_id;
use kernel::request::current_request_id;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set,
};
use serde_json::Value as Json;
use uuid::Uuid;

/// Event kinds written by core-auth. Other parts may use their own kinds (at most 50 characters).
pub mod kinds {
    /// An email reached the sign-in failure threshold and is locked out.
    pub const LOCKOUT: &str = "lockout";
    /// An email is one failure away from a lockout.
    pub const FAILED_LOGIN_BURST: &str = "failed_login_burst";
    /// A revoked session token or API key was presented.
    pub const SUSPICIOUS_TOKEN_USE: &str = "suspicious_token_use";
}

/// How urgent a security event is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Informational.
    Low,
    /// Worth a look.
    Medium,
    /// Needs attention soon.
    High,
    /// Needs attention now.
    Critical,
}

impl Severity {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }

    /// Parses the stored form; unknown text reads as `low`.
    pub fn parse(text: &str) -> Self {
        match text {
            "medium" => Self::Medium,
            "high" => Self::High,
            "critical" => Self::Critical,
            _ => Self::Low,
        }
    }
}

fn cut(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// Records a sensitive read or an admin action by `actor` in `security_audit_log`.
///
/// `details` is redacted like audit values: keys that look like secrets are replaced.
///
/// # Errors
/// Internal, when the insert fails.
#[tracing::instrument(name = "security.record_access", skip_all, err(level = "debug"))]
pub async fn record_access(
    conn: &impl ConnectionTrait,
    actor: &Actor,
    action: &str,
    resource_type: &str,
    resource_id: Option<&str>,
    details: Option<Json>,
) -> Result<(), kernel::Error> {
    write_access(
        conn,
        Some(actor.user_id),
        action,
        resource_type,
        resource_id,
        details,
    )
    .await
}

/// [`record_access`] without an authenticated actor (command-line tools); `user_id` is the user acted on.
///
/// # Errors
/// Internal, when the insert fails.
pub async fn write_access(
    conn: &impl ConnectionTrait,
    user_id: Option<Uuid>,
    action: &str,
    resource_type: &str,
    resource_id: Option<&str>,
    mut details: Option<Json>,
) -> Result<(), kernel::Error> {
    if let Some(d) = details.as_mut() {
        redact(d);
    }
    security_audit_log::ActiveModel {
        id: Set(new_id()),
        user_id: Set(user_id),
        action: Set(cut(action, 100)),
        resource_type: Set(cut(resource_type, 50)),
        resource_id: Set(resource_id.map(|r| cut(r, 100))),
        details: Set(details),
        ip_address: Set(None),
        user_agent: Set(None),
        success: Set(true),
        error_message: Set(None),
        request_id: Set(current_request_id()),
        created_at: Set(now()),
    }
    .insert(conn)
    .await?;
    Ok(())
}

/// Records a security event for operators; returns its id.
///
/// `details` is redacted like audit values.
///
/// # Errors
/// Internal, when the insert fails.
#[tracing::instrument(name = "security.record_event", skip_all, err(level = "debug"))]
pub async fn record_event(
    conn: &impl ConnectionTrait,
    kind: &str,
    severity: Severity,
    user_id: Option<Uuid>,
    ip: Option<&str>,
    details: Option<Json>,
) -> Result<Uuid, kernel::Error> {
    Ok(insert_event(conn, now(), kind, severity, user_id, ip, details).await?)
}

/// [`record_event`] stamped at `at`, for services that run on an injected clock.
pub(crate) async fn insert_event(
    conn: &impl ConnectionTrait,
    at: DateTime<Utc>,
    kind: &str,
    severity: Severity,
    user_id: Option<Uuid>,
    ip: Option<&str>,
    mut details: Option<Json>,
) -> Result<Uuid, DbErr> {
    if let Some(d) = details.as_mut() {
        redact(d);
    }
    let id = new_id();
    security_event::ActiveModel {
        id: Set(id),
        user_id: Set(user_id),
        kind: Set(cut(kind, 50)),
        severity: Set(severity.as_str().to_owned()),
        ip_address: Set(ip.map(|i| cut(i, 45))),
        details: Set(details),
        resolved_at: Set(None),
        resolved_by: Set(None),
        resolution_note: Set(None),
        created_at: Set(at),
    }
    .insert(conn)
    .await?;
    tracing::warn!(kind, severity = severity.as_str(), event_id = %id, "security event");
    Ok(id)
}

fn now() -> DateTime<Utc> {
    SystemClock.now()
}

/// A revoked token presented again is recorded at most once per user and hour
/// while unresolved, so a client retrying in a loop cannot flood the table.
const TOKEN_EVENT_QUIET: chrono::Duration = chrono::Duration::hours(1);

impl crate::Auth {
    /// Records a `failed_login_burst` when `email` is one failure short of the
    /// lockout threshold, and a `lockout` when this failure reached it.
    /// Each happens once per lockout window, because the count passes each value once.
    ///
    /// # Errors
    /// Internal, when the insert fails.
    pub(crate) async fn note_failed_sign_in(
        &self,
        db: &impl ConnectionTrait,
        email: &crate::types::Email,
        user_id: Option<Uuid>,
        client: &crate::types::ClientInfo,
        failures: i32,
    ) -> Result<(), crate::AuthError> {
        let threshold = self.settings.lockout_threshold;
        let (kind, severity) = if failures == threshold {
            (kinds::LOCKOUT, Severity::High)
        } else if threshold >= 2 && failures == threshold - 1 {
            (kinds::FAILED_LOGIN_BURST, Severity::Medium)
        } else {
            return Ok(());
        };
        let details = serde_json::json!({
            "email": email.as_str(),
            "failures": failures,
            "windowSeconds": self.settings.lockout_window.num_seconds(),
            "userAgent": client.user_agent,
        });
        insert_event(
            db,
            self.clock.now(),
            kind,
            severity,
            user_id,
            Some(&client.ip),
            Some(details),
        )
        .await?;
        Ok(())
    }

    /// Records `suspicious_token_use` for a revoked credential that was presented.
    /// Never fails the request: a failure to record is logged.
    pub(crate) async fn note_revoked_token(
        &self,
        db: &impl ConnectionTrait,
        user_id: Uuid,
        source: &str,
        source_id: Uuid,
    ) {
        let now = self.clock.now();
        let recent = security_event::Entity::find()
            .filter(security_event::Column::UserId.eq(user_id))
            .filter(security_event::Column::Kind.eq(kinds::SUSPICIOUS_TOKEN_USE))
            .filter(security_event::Column::ResolvedAt.is_null())
            .filter(security_event::Column::CreatedAt.gt(now - TOKEN_EVENT_QUIET))
            .one(db)
            .await;
        let result = match recent {
            Ok(Some(_)) => return,
            Ok(None) => {
                let details = serde_json::json!({
                    "source": source,
                    "sourceId": source_id.to_string(),
                });
                insert_event(
                    db,
                    now,
                    kinds::SUSPICIOUS_TOKEN_USE,
                    Severity::Medium,
                    Some(user_id),
                    None,
                    Some(details),
                )
                .await
                .map(|_| ())
            }
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            tracing::error!(error = %e, "cannot record suspicious token use");
        }
    }
}
