//! Output types: their own structs, so the tables can change without breaking clients.

use super::loaders::{PreferencesLoader, ProfileLoader};
use crate::api_keys::permissions_of;
use crate::entity::{api_key, user, user_preference, user_profile};
use crate::session::IssuedSession;
use async_graphql::dataloader::DataLoader;
use async_graphql::{ComplexObject, Context, Enum, ID, Json, Result, SimpleObject};
use chrono::{DateTime, Utc};
use kernel::actor::Permission;
use uuid::Uuid;

/// A user account.
#[derive(SimpleObject, Clone)]
#[graphql(complex)]
pub struct User {
    /// Opaque id.
    pub id: ID,
    /// Email address, lower-cased.
    pub email: String,
    /// Display name.
    pub name: Option<String>,
    /// `user`, `admin` or `superadmin`.
    pub role: String,
    /// Whether onboarding is finished.
    pub onboarding_completed: bool,
    /// When the account was created.
    pub created_at: DateTime<Utc>,
    /// Last successful sign-in.
    pub last_signed_in_at: DateTime<Utc>,
    /// Whether the email address is verified (through a verification or reset link).
    pub email_verified: bool,
    #[graphql(skip)]
    pub uuid: Uuid,
}

impl From<user::Model> for User {
    fn from(m: user::Model) -> Self {
        Self {
            id: ID(m.id.to_string()),
            email: m.email,
            name: m.name,
            role: m.role,
            onboarding_completed: m.onboarding_completed,
            created_at: m.created_at,
            last_signed_in_at: m.last_signed_in,
            email_verified: m.email_verified_at.is_some(),
            uuid: m.id,
        }
    }
}

#[ComplexObject]
impl User {
    /// Business profile from onboarding; null until first saved.
    async fn profile(&self, ctx: &Context<'_>) -> Result<Option<UserProfile>> {
        let loader = ctx.data_unchecked::<DataLoader<ProfileLoader>>();
        let found = loader.load_one(self.uuid).await.map_err(|e| e.to_gql())?;
        Ok(found.map(UserProfile::from))
    }

    /// Preferences; defaults until first saved.
    async fn preferences(&self, ctx: &Context<'_>) -> Result<UserPreferences> {
        let loader = ctx.data_unchecked::<DataLoader<PreferencesLoader>>();
        let found = loader.load_one(self.uuid).await.map_err(|e| e.to_gql())?;
        Ok(found.map(UserPreferences::from).unwrap_or_default())
    }
}

/// Business details collected during onboarding.
#[derive(SimpleObject, Clone)]
pub struct UserProfile {
    /// Business name.
    pub company_name: Option<String>,
    /// Industry sector.
    pub industry: Option<String>,
    /// Revenue range, as chosen by the user.
    pub monthly_revenue: Option<String>,
    /// Employee count range.
    pub employee_count: Option<String>,
    /// Company website.
    pub website: Option<String>,
    /// Contact phone.
    pub phone: Option<String>,
    /// Goals and pain points.
    pub goals: Option<Json<serde_json::Value>>,
    /// Software the business uses today.
    pub current_tools: Option<Json<serde_json::Value>>,
    /// How they found us.
    pub referral_source: Option<String>,
    /// Free-form notes.
    pub notes: Option<String>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl From<user_profile::Model> for UserProfile {
    fn from(m: user_profile::Model) -> Self {
        Self {
            company_name: m.company_name,
            industry: m.industry,
            monthly_revenue: m.monthly_revenue,
            employee_count: m.employee_count,
            website: m.website,
            phone: m.phone,
            goals: m.goals.map(Json),
            current_tools: m.current_tools.map(Json),
            referral_source: m.referral_source,
            notes: m.notes,
            updated_at: m.updated_at,
        }
    }
}

/// UI theme.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Default)]
pub enum Theme {
    /// Light.
    #[default]
    Light,
    /// Dark.
    Dark,
    /// Follow the operating system.
    System,
}

impl From<crate::profile::Theme> for Theme {
    fn from(t: crate::profile::Theme) -> Self {
        match t {
            crate::profile::Theme::Light => Self::Light,
            crate::profile::Theme::Dark => Self::Dark,
            crate::profile::Theme::System => Self::System,
        }
    }
}

impl From<Theme> for crate::profile::Theme {
    fn from(t: Theme) -> Self {
        match t {
            Theme::Light => Self::Light,
            Theme::Dark => Self::Dark,
            Theme::System => Self::System,
        }
    }
}

/// Per-user defaults and UI settings.
#[derive(SimpleObject, Clone, Default)]
pub struct UserPreferences {
    /// UI theme.
    pub theme: Theme,
    /// Default browser-automation configuration.
    pub default_browser_config: Option<Json<serde_json::Value>>,
    /// Default workflow settings.
    pub default_workflow_settings: Option<Json<serde_json::Value>>,
    /// Notification settings.
    pub notifications: Option<Json<serde_json::Value>>,
}

impl From<user_preference::Model> for UserPreferences {
    fn from(m: user_preference::Model) -> Self {
        Self {
            theme: crate::profile::Theme::parse(&m.theme).into(),
            default_browser_config: m.default_browser_config.map(Json),
            default_workflow_settings: m.default_workflow_settings.map(Json),
            notifications: m.notifications.map(Json),
        }
    }
}

/// What an API key may be used for.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum ApiKeyPermission {
    /// Queries.
    Read,
    /// Mutations.
    Write,
}

impl From<ApiKeyPermission> for Permission {
    fn from(p: ApiKeyPermission) -> Self {
        match p {
            ApiKeyPermission::Read => Self::Read,
            ApiKeyPermission::Write => Self::Write,
        }
    }
}

impl From<Permission> for ApiKeyPermission {
    fn from(p: Permission) -> Self {
        match p {
            Permission::Read => Self::Read,
            Permission::Write => Self::Write,
        }
    }
}

/// An API key, without its secret.
#[derive(SimpleObject, Clone)]
pub struct ApiKey {
    /// Opaque id.
    pub id: ID,
    /// The label given at creation.
    pub name: String,
    /// The first characters of the secret, to tell keys apart.
    pub prefix: String,
    /// What the key allows.
    pub permissions: Vec<ApiKeyPermission>,
    /// Last time the key authenticated a request (to the minute).
    pub last_used_at: Option<DateTime<Utc>>,
    /// When the key stops working, if ever.
    pub expires_at: Option<DateTime<Utc>>,
    /// When the key was created.
    pub created_at: DateTime<Utc>,
}

impl From<api_key::Model> for ApiKey {
    fn from(m: api_key::Model) -> Self {
        Self {
            id: ID(m.id.to_string()),
            permissions: permissions_of(&m).into_iter().map(Into::into).collect(),
            name: m.name,
            prefix: m.key_prefix,
            last_used_at: m.last_used_at,
            expires_at: m.expires_at,
            created_at: m.created_at,
        }
    }
}

/// A new API key and its secret.
#[derive(SimpleObject)]
pub struct CreatedApiKey {
    /// The key.
    pub api_key: ApiKey,
    /// The secret to send as `Authorization: Bearer <secret>`. Shown once; store it now.
    pub secret: String,
}

/// A new session.
#[derive(SimpleObject)]
pub struct AuthPayload {
    /// The bearer token for `Authorization: Bearer <token>`. Shown once.
    pub token: String,
    /// When the session ends at the latest (it also ends after a week unused).
    pub expires_at: DateTime<Utc>,
    /// The signed-in user.
    pub user: User,
}

impl From<IssuedSession> for AuthPayload {
    fn from(s: IssuedSession) -> Self {
        Self {
            token: s.token,
            expires_at: s.expires_at,
            user: s.user.into(),
        }
    }
}
