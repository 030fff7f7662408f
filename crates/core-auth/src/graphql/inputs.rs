//! Input objects, parsed into service requests at the edge.

use super::types::{ApiKeyPermission, Theme};
use crate::AuthError;
use crate::profile::{PreferencesUpdate, ProfileUpdate, json_patch, text_patch, website_patch};
use async_graphql::{InputObject, Json, MaybeUndefined};
use chrono::{DateTime, Utc};

/// Registration details.
#[derive(InputObject)]
pub struct RegisterInput {
    /// Email address; unique regardless of letter case.
    pub email: String,
    /// 8 to 128 characters.
    pub password: String,
    /// Display name, at most 100 characters.
    pub name: Option<String>,
}

/// Sign-in details.
#[derive(InputObject)]
pub struct LoginInput {
    /// Email address.
    pub email: String,
    /// Password.
    pub password: String,
}

/// A password change.
#[derive(InputObject)]
pub struct ChangePasswordInput {
    /// The password in use now.
    pub current_password: String,
    /// The new password, 8 to 128 characters.
    pub new_password: String,
}

/// A new API key.
#[derive(InputObject)]
pub struct CreateApiKeyInput {
    /// A label, 1 to 255 characters.
    pub name: String,
    /// When the key stops working; in the future. Never, when omitted.
    pub expires_at: Option<DateTime<Utc>>,
    /// What the key allows; read and write when omitted.
    pub permissions: Option<Vec<ApiKeyPermission>>,
}

fn patch<T>(value: MaybeUndefined<T>) -> Option<Option<T>> {
    match value {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => Some(None),
        MaybeUndefined::Value(v) => Some(Some(v)),
    }
}

fn json(value: MaybeUndefined<Json<serde_json::Value>>) -> Option<Option<serde_json::Value>> {
    patch(value).map(|v| v.map(|j| j.0))
}

/// Changes to the caller's name and profile. Omit a field to keep it; send null to clear it.
#[derive(InputObject, Default)]
pub struct UpdateProfileInput {
    /// Display name, at most 100 characters.
    pub name: MaybeUndefined<String>,
    /// Business name, at most 255 characters.
    pub company_name: MaybeUndefined<String>,
    /// Industry, at most 100 characters.
    pub industry: MaybeUndefined<String>,
    /// Revenue range, at most 50 characters.
    pub monthly_revenue: MaybeUndefined<String>,
    /// Employee count range, at most 50 characters.
    pub employee_count: MaybeUndefined<String>,
    /// An http(s) URL.
    pub website: MaybeUndefined<String>,
    /// Phone, at most 30 characters.
    pub phone: MaybeUndefined<String>,
    /// Goals, as JSON (at most 16 KiB).
    pub goals: MaybeUndefined<Json<serde_json::Value>>,
    /// Current tools, as JSON (at most 16 KiB).
    pub current_tools: MaybeUndefined<Json<serde_json::Value>>,
    /// How they found us, at most 100 characters.
    pub referral_source: MaybeUndefined<String>,
    /// Notes, at most 5000 characters.
    pub notes: MaybeUndefined<String>,
}

impl UpdateProfileInput {
    /// Parses every field.
    ///
    /// # Errors
    /// `BAD_USER_INPUT` naming the first field at fault.
    pub fn parse(self) -> Result<ProfileUpdate, AuthError> {
        Ok(ProfileUpdate {
            name: text_patch("name", patch(self.name), 100)?,
            company_name: text_patch("companyName", patch(self.company_name), 255)?,
            industry: text_patch("industry", patch(self.industry), 100)?,
            monthly_revenue: text_patch("monthlyRevenue", patch(self.monthly_revenue), 50)?,
            employee_count: text_patch("employeeCount", patch(self.employee_count), 50)?,
            website: website_patch(patch(self.website))?,
            phone: text_patch("phone", patch(self.phone), 30)?,
            goals: json_patch("goals", json(self.goals))?,
            current_tools: json_patch("currentTools", json(self.current_tools))?,
            referral_source: text_patch("referralSource", patch(self.referral_source), 100)?,
            notes: text_patch("notes", patch(self.notes), 5000)?,
        })
    }
}

/// Changes to the caller's preferences. Omit a field to keep it; send null to clear it.
#[derive(InputObject, Default)]
pub struct UpdatePreferencesInput {
    /// UI theme.
    pub theme: Option<Theme>,
    /// Default browser-automation configuration (JSON, at most 16 KiB).
    pub default_browser_config: MaybeUndefined<Json<serde_json::Value>>,
    /// Default workflow settings (JSON, at most 16 KiB).
    pub default_workflow_settings: MaybeUndefined<Json<serde_json::Value>>,
    /// Notification settings (JSON, at most 16 KiB).
    pub notifications: MaybeUndefined<Json<serde_json::Value>>,
}

impl UpdatePreferencesInput {
    /// Parses every field.
    ///
    /// # Errors
    /// `BAD_USER_INPUT` naming the first field at fault.
    pub fn parse(self) -> Result<PreferencesUpdate, AuthError> {
        Ok(PreferencesUpdate {
            theme: self.theme.map(Into::into),
            default_browser_config: json_patch(
                "defaultBrowserConfig",
                json(self.default_browser_config),
            )?,
            default_workflow_settings: json_patch(
                "defaultWorkflowSettings",
                json(self.default_workflow_settings),
            )?,
            notifications: json_patch("notifications", json(self.notifications))?,
        })
    }
}
