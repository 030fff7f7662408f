//! Admin reads of the audit trail and security records, and resolving events.
//! There is deliberately no way to change or delete an audit row.

use super::{AdminCap, TimeRange};
use crate::Auth;
use crate::entity::{audit_log, security_audit_log, security_event};
use crate::security::{Severity, record_access};
use crate::types::optional_text;
use kernel::Error;
use kernel::page::{Page, Window};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Select};
use serde_json::json;
use uuid::Uuid;

/// Filters on `audit_logs`; every field narrows, none means all.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct AuditFilter {
    /// The acting user.
    pub user_id: Option<Uuid>,
    /// The mutation, e.g. `createApiKey`.
    pub action: Option<String>,
    /// The kind of object changed.
    pub entity_type: Option<String>,
    /// The object changed.
    pub entity_id: Option<String>,
    /// When.
    #[serde(skip)]
    pub range: TimeRange,
}

/// Filters on `security_audit_log`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct AccessFilter {
    /// The acting user.
    pub user_id: Option<Uuid>,
    /// The action, e.g. `admin.users.read`.
    pub action: Option<String>,
    /// The kind of resource.
    pub resource_type: Option<String>,
    /// The resource.
    pub resource_id: Option<String>,
    /// When.
    #[serde(skip)]
    pub range: TimeRange,
}

/// Filters on `security_events`.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Only this severity.
    pub severity: Option<Severity>,
    /// Only this kind.
    pub kind: Option<String>,
    /// Only unresolved (`true`) or only resolved (`false`) events.
    pub unresolved: Option<bool>,
}

fn in_range<E: EntityTrait>(select: Select<E>, col: E::Column, range: TimeRange) -> Select<E> {
    let select = match range.from() {
        Some(f) => select.filter(col.gte(f)),
        None => select,
    };
    match range.to() {
        Some(t) => select.filter(col.lt(t)),
        None => select,
    }
}

/// A resolution note: 1 to 2000 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolutionNote(String);

impl ResolutionNote {
    /// Parses the note.
    ///
    /// # Errors
    /// `BAD_USER_INPUT` on `note` when empty or too long.
    pub fn parse(text: String) -> Result<Self, Error> {
        optional_text("note", Some(text), 2000)?
            .map(Self)
            .ok_or_else(|| Error::bad_input("note", "must not be empty"))
    }
}

impl Auth {
    /// `audit_logs`, newest first; the read is recorded.
    ///
    /// # Errors
    /// Internal, when the database fails.
    #[tracing::instrument(name = "admin.list_audit_logs", skip_all, err(level = "debug"))]
    pub async fn admin_audit_logs(
        &self,
        db: &impl ConnectionTrait,
        cap: &AdminCap,
        filter: AuditFilter,
        window: Window,
    ) -> Result<Page<audit_log::Model>, Error> {
        use audit_log::Column as C;
        let mut select = audit_log::Entity::find();
        if let Some(u) = filter.user_id {
            select = select.filter(C::UserId.eq(u));
        }
        if let Some(a) = &filter.action {
            select = select.filter(C::Action.eq(a.as_str()));
        }
        if let Some(t) = &filter.entity_type {
            select = select.filter(C::EntityType.eq(t.as_str()));
        }
        if let Some(i) = &filter.entity_id {
            select = select.filter(C::EntityId.eq(i.as_str()));
        }
        let select = in_range(select, C::CreatedAt, filter.range);
        let page = kernel::page::fetch(db, select, C::Id, |r| r.id, window).await?;
        let details = json!({ "filter": filter, "returned": page.items.len() });
        record_access(
            db,
            cap.actor(),
            "admin.audit_logs.list",
            "audit_log",
            None,
            Some(details),
        )
        .await?;
        Ok(page)
    }

    /// `security_audit_log`, newest first.
    ///
    /// # Errors
    /// Internal, when the database fails.
    #[tracing::instrument(name = "admin.list_security_audit_log", skip_all, err(level = "debug"))]
    pub async fn admin_security_audit_log(
        &self,
        db: &impl ConnectionTrait,
        cap: &AdminCap,
        filter: AccessFilter,
        window: Window,
    ) -> Result<Page<security_audit_log::Model>, Error> {
        use security_audit_log::Column as C;
        let mut select = security_audit_log::Entity::find();
        if let Some(u) = filter.user_id {
            select = select.filter(C::UserId.eq(u));
        }
        if let Some(a) = &filter.action {
            select = select.filter(C::Action.eq(a.as_str()));
        }
        if let Some(t) = &filter.resource_type {
            select = select.filter(C::ResourceType.eq(t.as_str()));
        }
        if let Some(i) = &filter.resource_id {
            select = select.filter(C::ResourceId.eq(i.as_str()));
        }
        let select = in_range(select, C::CreatedAt, filter.range);
        let page = kernel::page::fetch(db, select, C::Id, |r| r.id, window).await?;
        let details = json!({ "filter": filter, "returned": page.items.len() });
        record_access(
            db,
            cap.actor(),
            "admin.security_audit_log.list",
            "security_audit_log",
            None,
            Some(details),
        )
        .await?;
        Ok(page)
    }

    /// `security_events`, newest first.
    ///
    /// # Errors
    /// Internal, when the database fails.
    #[tracing::instrument(name = "admin.list_security_events", skip_all, err(level = "debug"))]
    pub async fn admin_security_events(
        &self,
        db: &impl ConnectionTrait,
        cap: &AdminCap,
        filter: EventFilter,
        window: Window,
    ) -> Result<Page<security_event::Model>, Error> {
        use security_event::Column as C;
        let mut select = security_event::Entity::find();
        if let Some(s) = filter.severity {
            select = select.filter(C::Severity.eq(s.as_str()));
        }
        if let Some(k) = &filter.kind {
            select = select.filter(C::Kind.eq(k.as_str()));
        }
        select = match filter.unresolved {
            Some(true) => select.filter(C::ResolvedAt.is_null()),
            Some(false) => select.filter(C::ResolvedAt.is_not_null()),
            None => select,
        };
        let page = kernel::page::fetch(db, select, C::Id, |r| r.id, window).await?;
        // Events carry other users' emails and addresses: reading them is itself recorded.
        let details = json!({
            "filter": {
                "severity": filter.severity.map(|s| s.as_str()),
                "kind": filter.kind,
                "unresolved": filter.unresolved,
            },
            "returned": page.items.len(),
        });
        record_access(
            db,
            cap.actor(),
            "admin.security_events.list",
            "security_event",
            None,
            Some(details),
        )
        .await?;
        Ok(page)
    }

    /// Marks an event resolved with a note; recorded in `security_audit_log`.
    ///
    /// # Errors
    /// `NOT_FOUND`; `INVALID_TRANSITION` when already resolved.
    #[tracing::instrument(name = "admin.resolve_security_event", skip_all, err(level = "debug"))]
    pub async fn resolve_security_event(
        &self,
        db: &impl ConnectionTrait,
        cap: &AdminCap,
        id: Uuid,
        note: ResolutionNote,
    ) -> Result<security_event::Model, Error> {
        use sea_orm::sea_query::Expr;
        use security_event::Column as C;
        // Conditional on still being unresolved, so two admins cannot both resolve it.
        let done = security_event::Entity::update_many()
            .col_expr(C::ResolvedAt, Expr::value(self.clock.now()))
            .col_expr(C::ResolvedBy, Expr::value(cap.user_id()))
            .col_expr(C::ResolutionNote, Expr::value(note.0))
            .filter(C::Id.eq(id))
            .filter(C::ResolvedAt.is_null())
            .exec(db)
            .await?;
        let resolved = security_event::Entity::find_by_id(id)
            .one(db)
            .await?
            .ok_or(Error::NotFound("security event"))?;
        if done.rows_affected == 0 {
            return Err(Error::InvalidTransition(
                "the event is already resolved".into(),
            ));
        }
        let rid = id.to_string();
        let details = json!({ "kind": resolved.kind, "note": resolved.resolution_note });
        record_access(
            db,
            cap.actor(),
            "admin.security_events.resolve",
            "security_event",
            Some(&rid),
            Some(details),
        )
        .await?;
        Ok(resolved)
    }
}
