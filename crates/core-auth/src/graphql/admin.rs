//! The admin part of the schema: `admin { ... }` for reads, flat mutations for
//! changes, and `featureFlags` for every signed-in caller. The `AdminQuery`
//! object can only be built from an [`AdminCap`], so none of its fields can be
//! reached without the role check.

use super::admin_types::*;
use super::auth;
use crate::admin::records::{AccessFilter, AuditFilter, EventFilter, ResolutionNote};
use crate::admin::users::{SuspensionReason, UserFilter, audit_view as user_view};
use crate::admin::{AdminCap, TimeRange, text_filter};
use crate::flags::{FlagName, FlagUpdate, NewFlag, audit_view as flag_view};
use crate::system_config::{SetConfig, audit_view as config_view};
use async_graphql::connection::Connection;
use async_graphql::{Context, ID, Object, Result};
use kernel::error::ResultExt;
use kernel::gql::ContextExt;
use kernel::id::parse_id;
use uuid::Uuid;

/// The capability for a mutation: an admin whose credential may write.
fn admin_writer(ctx: &Context<'_>) -> Result<AdminCap> {
    AdminCap::check(ctx.writer()?).gql()
}

fn ids(field: &str, ids: Vec<ID>) -> Result<Vec<Uuid>> {
    ids.iter()
        .map(|i| parse_id(i, field))
        .collect::<Result<_, _>>()
        .gql()
}

fn opt_id(field: &str, id: Option<ID>) -> Result<Option<Uuid>> {
    id.map(|i| parse_id(&i, field)).transpose().gql()
}

/// Root fields of the admin part: `admin` and the caller's `featureFlags`.
#[derive(Default)]
pub struct AdminRootQuery;

#[Object]
impl AdminRootQuery {
    /// Platform administration; `FORBIDDEN` unless the caller is an admin or superadmin.
    async fn admin(&self, ctx: &Context<'_>) -> Result<AdminQuery> {
        let cap = AdminCap::check(ctx.actor()?).gql()?;
        Ok(AdminQuery { cap })
    }

    /// Names of the feature flags that are on for the caller, sorted.
    async fn feature_flags(&self, ctx: &Context<'_>) -> Result<Vec<String>> {
        let actor = ctx.actor()?;
        auth(ctx).flags_for(ctx.db(), actor).await.gql()
    }
}

/// Admin reads. Reads of user data and of the audit trail are recorded in the security audit log.
pub struct AdminQuery {
    cap: AdminCap,
}

/// Admin reads, for admins and superadmins only. Reads of user data and of the
/// audit trail are recorded in the security audit log.
#[Object]
impl AdminQuery {
    /// Users, newest first, optionally searched (email or name, case-insensitive) and filtered.
    #[graphql(complexity = "kernel::page::list_complexity(first, last, child_complexity)")]
    #[allow(clippy::too_many_arguments)]
    async fn users(
        &self,
        ctx: &Context<'_>,
        search: Option<String>,
        role: Option<UserRole>,
        suspended: Option<bool>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Connection<String, ManagedUser>> {
        let filter = UserFilter::parse(search, role.map(Into::into), suspended).gql()?;
        let window = kernel::page::window(first, after, last, before).gql()?;
        let page = auth(ctx)
            .admin_list_users(ctx.db(), &self.cap, filter, window)
            .await
            .gql()?;
        Ok(page.into_connection(ManagedUser::from))
    }

    /// One user; `NOT_FOUND` for an unknown id.
    async fn user(&self, ctx: &Context<'_>, id: ID) -> Result<ManagedUser> {
        let id = parse_id(&id, "id").gql()?;
        let found = auth(ctx)
            .admin_get_user(ctx.db(), &self.cap, id)
            .await
            .gql()?;
        Ok(found.into())
    }

    /// Audited mutations, newest first. Rows cannot be changed or deleted through the API.
    #[graphql(complexity = "kernel::page::list_complexity(first, last, child_complexity)")]
    async fn audit_logs(
        &self,
        ctx: &Context<'_>,
        filter: Option<AuditLogFilter>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Connection<String, AuditLogEntry>> {
        let f = filter.unwrap_or_default();
        let filter = AuditFilter {
            user_id: opt_id("userId", f.user_id)?,
            action: text_filter("action", f.action, 100).gql()?,
            entity_type: text_filter("entityType", f.entity_type, 100).gql()?,
            entity_id: text_filter("entityId", f.entity_id, 100).gql()?,
            range: TimeRange::parse(f.from, f.to).gql()?,
        };
        let window = kernel::page::window(first, after, last, before).gql()?;
        let page = auth(ctx)
            .admin_audit_logs(ctx.db(), &self.cap, filter, window)
            .await
            .gql()?;
        Ok(page.into_connection(AuditLogEntry::from))
    }

    /// Sensitive reads and admin actions, newest first.
    #[graphql(complexity = "kernel::page::list_complexity(first, last, child_complexity)")]
    async fn security_audit_log(
        &self,
        ctx: &Context<'_>,
        filter: Option<SecurityAuditLogFilter>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Connection<String, SecurityAuditEntry>> {
        let f = filter.unwrap_or_default();
        let filter = AccessFilter {
            user_id: opt_id("userId", f.user_id)?,
            action: text_filter("action", f.action, 100).gql()?,
            resource_type: text_filter("resourceType", f.resource_type, 50).gql()?,
            resource_id: text_filter("resourceId", f.resource_id, 100).gql()?,
            range: TimeRange::parse(f.from, f.to).gql()?,
        };
        let window = kernel::page::window(first, after, last, before).gql()?;
        let page = auth(ctx)
            .admin_security_audit_log(ctx.db(), &self.cap, filter, window)
            .await
            .gql()?;
        Ok(page.into_connection(SecurityAuditEntry::from))
    }

    /// Security events, newest first.
    #[graphql(complexity = "kernel::page::list_complexity(first, last, child_complexity)")]
    async fn security_events(
        &self,
        ctx: &Context<'_>,
        filter: Option<SecurityEventFilter>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Connection<String, SecurityEvent>> {
        let f = filter.unwrap_or_default();
        let filter = EventFilter {
            severity: f.severity.map(Into::into),
            kind: text_filter("kind", f.kind, 50).gql()?,
            unresolved: f.unresolved,
        };
        let window = kernel::page::window(first, after, last, before).gql()?;
        let page = auth(ctx)
            .admin_security_events(ctx.db(), &self.cap, filter, window)
            .await
            .gql()?;
        Ok(page.into_connection(SecurityEvent::from))
    }

    /// Every feature flag, newest first.
    #[graphql(complexity = "kernel::page::list_complexity(first, last, child_complexity)")]
    async fn feature_flags(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Connection<String, FeatureFlag>> {
        let window = kernel::page::window(first, after, last, before).gql()?;
        let page = auth(ctx)
            .list_flags(ctx.db(), &self.cap, window)
            .await
            .gql()?;
        Ok(page.into_connection(FeatureFlag::from))
    }

    /// Every runtime setting, newest first.
    #[graphql(complexity = "kernel::page::list_complexity(first, last, child_complexity)")]
    async fn system_config(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Connection<String, SystemConfigEntry>> {
        let window = kernel::page::window(first, after, last, before).gql()?;
        let page = auth(ctx)
            .list_config(ctx.db(), &self.cap, window)
            .await
            .gql()?;
        Ok(page.into_connection(SystemConfigEntry::from))
    }
}

/// Admin mutations; each is `FORBIDDEN` unless the caller is an admin with a writing credential.
#[derive(Default)]
pub struct AdminMutation;

#[Object]
impl AdminMutation {
    /// Suspends a user: every session is revoked at once and API keys stop working.
    /// Only a superadmin suspends an admin; nobody suspends themself.
    async fn suspend_user(
        &self,
        ctx: &Context<'_>,
        input: SuspendUserInput,
    ) -> Result<ManagedUser> {
        let cap = admin_writer(ctx)?;
        let id = parse_id(&input.id, "id").gql()?;
        let reason = SuspensionReason::parse(input.reason).gql()?;
        let mut txn = ctx.begin().await?;
        let (old, new) = auth(ctx).suspend_user(&txn, &cap, id, reason).await.gql()?;
        txn.subject("user", id);
        txn.changes(Some(user_view(&old)), Some(user_view(&new)));
        txn.commit().await.gql()?;
        Ok(new.into())
    }

    /// Lifts a suspension; the user can sign in again and their API keys work again.
    async fn unsuspend_user(&self, ctx: &Context<'_>, id: ID) -> Result<ManagedUser> {
        let cap = admin_writer(ctx)?;
        let id = parse_id(&id, "id").gql()?;
        let mut txn = ctx.begin().await?;
        let (old, new) = auth(ctx).unsuspend_user(&txn, &cap, id).await.gql()?;
        txn.subject("user", id);
        txn.changes(Some(user_view(&old)), Some(user_view(&new)));
        txn.commit().await.gql()?;
        Ok(new.into())
    }

    /// Changes a user's role. Only a superadmin grants admin roles or changes an
    /// admin; nobody changes their own role.
    async fn set_user_role(
        &self,
        ctx: &Context<'_>,
        input: SetUserRoleInput,
    ) -> Result<ManagedUser> {
        let cap = admin_writer(ctx)?;
        let id = parse_id(&input.id, "id").gql()?;
        let mut txn = ctx.begin().await?;
        let (old, new) = auth(ctx)
            .set_user_role(&txn, &cap, id, input.role.into())
            .await
            .gql()?;
        txn.subject("user", id);
        txn.changes(Some(user_view(&old)), Some(user_view(&new)));
        txn.commit().await.gql()?;
        Ok(new.into())
    }

    /// Marks a security event resolved with a note.
    async fn resolve_security_event(
        &self,
        ctx: &Context<'_>,
        input: ResolveSecurityEventInput,
    ) -> Result<SecurityEvent> {
        let cap = admin_writer(ctx)?;
        let id = parse_id(&input.id, "id").gql()?;
        let note = ResolutionNote::parse(input.note).gql()?;
        let mut txn = ctx.begin().await?;
        let event = auth(ctx)
            .resolve_security_event(&txn, &cap, id, note)
            .await
            .gql()?;
        txn.subject("security_event", id);
        txn.commit().await.gql()?;
        Ok(event.into())
    }

    /// Creates a feature flag.
    async fn create_feature_flag(
        &self,
        ctx: &Context<'_>,
        input: CreateFeatureFlagInput,
    ) -> Result<FeatureFlag> {
        let cap = admin_writer(ctx)?;
        let whitelist = ids("userWhitelist", input.user_whitelist)?;
        let req = NewFlag::parse(
            &input.name,
            input.description,
            input.enabled,
            input.rollout_percentage,
            whitelist,
        )
        .gql()?;
        let mut txn = ctx.begin().await?;
        let flag = auth(ctx).create_flag(&txn, &cap, req).await.gql()?;
        txn.subject("feature_flag", &flag.name);
        txn.changes(None, Some(flag_view(&flag)));
        txn.commit().await.gql()?;
        Ok(flag.into())
    }

    /// Changes a feature flag; omitted fields are kept.
    async fn update_feature_flag(
        &self,
        ctx: &Context<'_>,
        input: UpdateFeatureFlagInput,
    ) -> Result<FeatureFlag> {
        let cap = admin_writer(ctx)?;
        let name = FlagName::parse("name", &input.name).gql()?;
        let whitelist = input
            .user_whitelist
            .map(|w| ids("userWhitelist", w))
            .transpose()?;
        let description = match input.description {
            async_graphql::MaybeUndefined::Undefined => None,
            async_graphql::MaybeUndefined::Null => Some(None),
            async_graphql::MaybeUndefined::Value(v) => Some(Some(v)),
        };
        let update = FlagUpdate::parse(
            description,
            input.enabled,
            input.rollout_percentage,
            whitelist,
        )
        .gql()?;
        let mut txn = ctx.begin().await?;
        let (old, new) = auth(ctx)
            .update_flag(&txn, &cap, &name, update)
            .await
            .gql()?;
        txn.subject("feature_flag", &new.name);
        txn.changes(Some(flag_view(&old)), Some(flag_view(&new)));
        txn.commit().await.gql()?;
        Ok(new.into())
    }

    /// Deletes a feature flag; it is off for everyone from then on.
    async fn delete_feature_flag(&self, ctx: &Context<'_>, name: String) -> Result<bool> {
        let cap = admin_writer(ctx)?;
        let name = FlagName::parse("name", &name).gql()?;
        let mut txn = ctx.begin().await?;
        let old = auth(ctx).delete_flag(&txn, &cap, &name).await.gql()?;
        txn.subject("feature_flag", &old.name);
        txn.changes(Some(flag_view(&old)), None);
        txn.commit().await.gql()?;
        Ok(true)
    }

    /// Creates or replaces a runtime setting; the value must have the declared type.
    async fn set_system_config(
        &self,
        ctx: &Context<'_>,
        input: SetSystemConfigInput,
    ) -> Result<SystemConfigEntry> {
        let cap = admin_writer(ctx)?;
        let req = SetConfig::parse(
            &input.key,
            input.value.0,
            input.value_type.into(),
            input.description,
        )
        .gql()?;
        let mut txn = ctx.begin().await?;
        let (old, new) = auth(ctx).set_config(&txn, &cap, req).await.gql()?;
        txn.subject("system_config", &new.key);
        txn.changes(old.as_ref().map(config_view), Some(config_view(&new)));
        txn.commit().await.gql()?;
        Ok(new.into())
    }

    /// Deletes a runtime setting.
    async fn delete_system_config(&self, ctx: &Context<'_>, key: String) -> Result<bool> {
        let cap = admin_writer(ctx)?;
        let key = FlagName::parse("key", &key).gql()?;
        let mut txn = ctx.begin().await?;
        let old = auth(ctx).delete_config(&txn, &cap, &key).await.gql()?;
        txn.subject("system_config", &old.key);
        txn.changes(Some(config_view(&old)), None);
        txn.commit().await.gql()?;
        Ok(true)
    }
}
