//! Output and input types of the admin API.

use crate::entity::{
    audit_log, feature_flag, security_audit_log, security_event, system_config, user,
};
use crate::flags::whitelist_of;
use crate::security::Severity;
use crate::system_config::ValueType;
use async_graphql::{Enum, ID, InputObject, Json, MaybeUndefined, SimpleObject};
use chrono::{DateTime, Utc};
use kernel::actor::Role;
use uuid::Uuid;

fn id(u: Uuid) -> ID {
    ID(u.to_string())
}

/// A platform role.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum UserRole {
    /// An ordinary customer.
    User,
    /// Operates the platform.
    Admin,
    /// May also make admins.
    Superadmin,
}

impl From<UserRole> for Role {
    fn from(r: UserRole) -> Self {
        match r {
            UserRole::User => Self::User,
            UserRole::Admin => Self::Admin,
            UserRole::Superadmin => Self::Superadmin,
        }
    }
}

/// A user account as admins see it, with its suspension state.
#[derive(SimpleObject, Clone)]
pub struct ManagedUser {
    /// Opaque id.
    pub id: ID,
    /// Email address, lower-cased.
    pub email: String,
    /// Display name.
    pub name: Option<String>,
    /// `user`, `admin` or `superadmin`.
    pub role: String,
    /// When the account was suspended; null when active.
    pub suspended_at: Option<DateTime<Utc>>,
    /// Why it was suspended.
    pub suspension_reason: Option<String>,
    /// Whether onboarding is finished.
    pub onboarding_completed: bool,
    /// When the account was created.
    pub created_at: DateTime<Utc>,
    /// Last successful sign-in.
    pub last_signed_in_at: DateTime<Utc>,
}

impl From<user::Model> for ManagedUser {
    fn from(m: user::Model) -> Self {
        Self {
            id: id(m.id),
            email: m.email,
            name: m.name,
            role: m.role,
            suspended_at: m.suspended_at,
            suspension_reason: m.suspension_reason,
            onboarding_completed: m.onboarding_completed,
            created_at: m.created_at,
            last_signed_in_at: m.last_signed_in,
        }
    }
}

/// One audited mutation (`audit_logs`), with secrets redacted.
#[derive(SimpleObject, Clone)]
pub struct AuditLogEntry {
    /// Opaque id.
    pub id: ID,
    /// Who acted; null for anonymous mutations.
    pub user_id: Option<ID>,
    /// The mutation, e.g. `createApiKey`.
    pub action: String,
    /// The kind of object changed.
    pub entity_type: String,
    /// The object changed.
    pub entity_id: Option<String>,
    /// State before.
    pub old_values: Option<Json<serde_json::Value>>,
    /// State after.
    pub new_values: Option<Json<serde_json::Value>>,
    /// Client address.
    pub ip_address: Option<String>,
    /// Client user agent.
    pub user_agent: Option<String>,
    /// The request, to find it in the logs.
    pub request_id: ID,
    /// When.
    pub created_at: DateTime<Utc>,
}

impl From<audit_log::Model> for AuditLogEntry {
    fn from(m: audit_log::Model) -> Self {
        Self {
            id: id(m.id),
            user_id: m.user_id.map(id),
            action: m.action,
            entity_type: m.entity_type,
            entity_id: m.entity_id,
            old_values: m.old_values.map(Json),
            new_values: m.new_values.map(Json),
            ip_address: m.ip_address,
            user_agent: m.user_agent,
            request_id: id(m.request_id),
            created_at: m.created_at,
        }
    }
}

/// One sensitive read or admin action (`security_audit_log`).
#[derive(SimpleObject, Clone)]
pub struct SecurityAuditEntry {
    /// Opaque id.
    pub id: ID,
    /// Who acted (for command-line actions, the user acted on).
    pub user_id: Option<ID>,
    /// What was done, e.g. `admin.users.read`.
    pub action: String,
    /// The kind of resource.
    pub resource_type: String,
    /// The resource.
    pub resource_id: Option<String>,
    /// Details, with secrets redacted.
    pub details: Option<Json<serde_json::Value>>,
    /// Whether the action succeeded.
    pub success: bool,
    /// The request, to join with `auditLogs` and the logs.
    pub request_id: ID,
    /// When.
    pub created_at: DateTime<Utc>,
}

impl From<security_audit_log::Model> for SecurityAuditEntry {
    fn from(m: security_audit_log::Model) -> Self {
        Self {
            id: id(m.id),
            user_id: m.user_id.map(id),
            action: m.action,
            resource_type: m.resource_type,
            resource_id: m.resource_id,
            details: m.details.map(Json),
            success: m.success,
            request_id: id(m.request_id),
            created_at: m.created_at,
        }
    }
}

/// How urgent a security event is.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum SecuritySeverity {
    /// Informational.
    Low,
    /// Worth a look.
    Medium,
    /// Needs attention soon.
    High,
    /// Needs attention now.
    Critical,
}

impl From<SecuritySeverity> for Severity {
    fn from(s: SecuritySeverity) -> Self {
        match s {
            SecuritySeverity::Low => Self::Low,
            SecuritySeverity::Medium => Self::Medium,
            SecuritySeverity::High => Self::High,
            SecuritySeverity::Critical => Self::Critical,
        }
    }
}

impl From<Severity> for SecuritySeverity {
    fn from(s: Severity) -> Self {
        match s {
            Severity::Low => Self::Low,
            Severity::Medium => Self::Medium,
            Severity::High => Self::High,
            Severity::Critical => Self::Critical,
        }
    }
}

/// Something an operator should look at: a lockout, a failed-login burst, a revoked token presented again.
#[derive(SimpleObject, Clone)]
pub struct SecurityEvent {
    /// Opaque id.
    pub id: ID,
    /// The user concerned, when known.
    pub user_id: Option<ID>,
    /// `lockout`, `failed_login_burst`, `suspicious_token_use`, or another part's kind.
    pub kind: String,
    /// How urgent.
    pub severity: SecuritySeverity,
    /// Client address, when known.
    pub ip_address: Option<String>,
    /// Details, with secrets redacted.
    pub details: Option<Json<serde_json::Value>>,
    /// Whether an admin resolved it.
    pub resolved: bool,
    /// When it was resolved.
    pub resolved_at: Option<DateTime<Utc>>,
    /// The admin who resolved it.
    pub resolved_by: Option<ID>,
    /// The admin's note.
    pub resolution_note: Option<String>,
    /// When it happened.
    pub created_at: DateTime<Utc>,
}

impl From<security_event::Model> for SecurityEvent {
    fn from(m: security_event::Model) -> Self {
        Self {
            id: id(m.id),
            user_id: m.user_id.map(id),
            kind: m.kind,
            severity: Severity::parse(&m.severity).into(),
            ip_address: m.ip_address,
            details: m.details.map(Json),
            resolved: m.resolved_at.is_some(),
            resolved_at: m.resolved_at,
            resolved_by: m.resolved_by.map(id),
            resolution_note: m.resolution_note,
            created_at: m.created_at,
        }
    }
}

/// A feature flag.
#[derive(SimpleObject, Clone)]
pub struct FeatureFlag {
    /// Opaque id.
    pub id: ID,
    /// Unique name: a-z, 0-9, `_`, `-`, `.`.
    pub name: String,
    /// What it controls.
    pub description: Option<String>,
    /// The global switch: off means off for everyone.
    pub enabled: bool,
    /// Percentage of users (0 to 100) it is on for, chosen by a stable hash of name and user id.
    pub rollout_percentage: i32,
    /// Users it is on for regardless of the percentage (while enabled).
    pub user_whitelist: Vec<ID>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl From<feature_flag::Model> for FeatureFlag {
    fn from(m: feature_flag::Model) -> Self {
        Self {
            id: id(m.id),
            user_whitelist: whitelist_of(&m).into_iter().map(id).collect(),
            name: m.name,
            description: m.description,
            enabled: m.enabled,
            rollout_percentage: m.rollout_percentage,
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

/// The type a setting's value has.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum ConfigValueType {
    /// A JSON string.
    String,
    /// A JSON number.
    Number,
    /// `true` or `false`.
    Boolean,
    /// A JSON object or array.
    Json,
}

impl From<ConfigValueType> for ValueType {
    fn from(t: ConfigValueType) -> Self {
        match t {
            ConfigValueType::String => Self::String,
            ConfigValueType::Number => Self::Number,
            ConfigValueType::Boolean => Self::Boolean,
            ConfigValueType::Json => Self::Json,
        }
    }
}

impl From<ValueType> for ConfigValueType {
    fn from(t: ValueType) -> Self {
        match t {
            ValueType::String => Self::String,
            ValueType::Number => Self::Number,
            ValueType::Boolean => Self::Boolean,
            ValueType::Json => Self::Json,
        }
    }
}

/// A runtime setting.
#[derive(SimpleObject, Clone)]
pub struct SystemConfigEntry {
    /// Opaque id.
    pub id: ID,
    /// Unique key: a-z, 0-9, `_`, `-`, `.`.
    pub key: String,
    /// The value, of `valueType`.
    pub value: Json<serde_json::Value>,
    /// The value's type.
    pub value_type: ConfigValueType,
    /// What it controls.
    pub description: Option<String>,
    /// The admin who last wrote it.
    pub updated_by: Option<ID>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl From<system_config::Model> for SystemConfigEntry {
    fn from(m: system_config::Model) -> Self {
        Self {
            id: id(m.id),
            key: m.key,
            value: Json(m.value),
            value_type: ValueType::parse(&m.value_type).into(),
            description: m.description,
            updated_by: m.updated_by.map(id),
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

/// Narrows `auditLogs`; every field given must match.
#[derive(InputObject, Default)]
pub struct AuditLogFilter {
    /// The acting user.
    pub user_id: Option<ID>,
    /// The mutation, e.g. `suspendUser`.
    pub action: Option<String>,
    /// The kind of object changed, e.g. `user`.
    pub entity_type: Option<String>,
    /// The object changed.
    pub entity_id: Option<String>,
    /// From this time on (inclusive).
    pub from: Option<DateTime<Utc>>,
    /// Before this time (exclusive).
    pub to: Option<DateTime<Utc>>,
}

/// Narrows `securityAuditLog`; every field given must match.
#[derive(InputObject, Default)]
pub struct SecurityAuditLogFilter {
    /// The acting user.
    pub user_id: Option<ID>,
    /// The action, e.g. `admin.users.read`.
    pub action: Option<String>,
    /// The kind of resource, e.g. `user`.
    pub resource_type: Option<String>,
    /// The resource.
    pub resource_id: Option<String>,
    /// From this time on (inclusive).
    pub from: Option<DateTime<Utc>>,
    /// Before this time (exclusive).
    pub to: Option<DateTime<Utc>>,
}

/// Narrows `securityEvents`.
#[derive(InputObject, Default)]
pub struct SecurityEventFilter {
    /// Only this severity.
    pub severity: Option<SecuritySeverity>,
    /// Only this kind.
    pub kind: Option<String>,
    /// `true`: only unresolved events; `false`: only resolved ones.
    pub unresolved: Option<bool>,
}

/// Suspending a user.
#[derive(InputObject)]
pub struct SuspendUserInput {
    /// The user.
    pub id: ID,
    /// Why, 1 to 1000 characters; kept with the account.
    pub reason: String,
}

/// Changing a user's role.
#[derive(InputObject)]
pub struct SetUserRoleInput {
    /// The user.
    pub id: ID,
    /// The new role; only a superadmin grants `ADMIN` or `SUPERADMIN`.
    pub role: UserRole,
}

/// Resolving a security event.
#[derive(InputObject)]
pub struct ResolveSecurityEventInput {
    /// The event.
    pub id: ID,
    /// What was found or done, 1 to 2000 characters.
    pub note: String,
}

/// A new feature flag.
#[derive(InputObject)]
pub struct CreateFeatureFlagInput {
    /// Unique name: 1 to 100 of a-z, 0-9, `_`, `-`, `.`.
    pub name: String,
    /// What it controls, at most 1000 characters.
    pub description: Option<String>,
    /// The global switch; off when omitted.
    #[graphql(default)]
    pub enabled: bool,
    /// 0 to 100; 0 when omitted.
    #[graphql(default)]
    pub rollout_percentage: i32,
    /// Users it is on for regardless of the percentage (at most 1000).
    #[graphql(default)]
    pub user_whitelist: Vec<ID>,
}

/// Changes to a feature flag, found by name. Omitted fields are kept.
#[derive(InputObject)]
pub struct UpdateFeatureFlagInput {
    /// The flag's name.
    pub name: String,
    /// New description; null clears it.
    pub description: MaybeUndefined<String>,
    /// New global switch.
    pub enabled: Option<bool>,
    /// New percentage, 0 to 100.
    pub rollout_percentage: Option<i32>,
    /// New whitelist, replacing the old one.
    pub user_whitelist: Option<Vec<ID>>,
}

/// Writing a setting (created or replaced).
#[derive(InputObject)]
pub struct SetSystemConfigInput {
    /// Unique key: 1 to 100 of a-z, 0-9, `_`, `-`, `.`.
    pub key: String,
    /// The value; must have `valueType` (at most 64 KiB).
    pub value: Json<serde_json::Value>,
    /// The value's type.
    pub value_type: ConfigValueType,
    /// What it controls, at most 1000 characters.
    pub description: Option<String>,
}
