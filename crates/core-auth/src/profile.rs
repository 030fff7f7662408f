//! Profile and preferences: partial updates, and batched reads for DataLoaders.

use crate::entity::{user, user_preference, user_profile};
use crate::types::optional_text;
use crate::{Auth, AuthError};
use kernel::actor::Actor;
use kernel::id::new_id;
use sea_orm::{
    ActiveModelTrait, ActiveValue, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel,
    QueryFilter, Set,
};
use serde_json::Value as Json;
use std::collections::HashMap;
use uuid::Uuid;

/// A field of a partial update: `None` keeps the value, `Some(None)` clears it.
pub type Patch<T> = Option<Option<T>>;

/// Largest JSON document accepted in a profile or preference field.
const MAX_JSON_BYTES: usize = 16 * 1024;

/// A parsed profile update. Text fields are trimmed and bounded by their column sizes.
/// Serialises as the fields it changes (`null` for a cleared one), for the audit log.
#[derive(Debug, Clone, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProfileUpdate {
    /// `users.name`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Patch<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub company_name: Patch<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub industry: Patch<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monthly_revenue: Patch<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub employee_count: Patch<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub website: Patch<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Patch<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub goals: Patch<Json>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_tools: Patch<Json>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub referral_source: Patch<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notes: Patch<String>,
}

/// Parses a text patch for `field` with at most `max` characters.
///
/// # Errors
/// `BAD_USER_INPUT` on `field`.
pub fn text_patch(
    field: &'static str,
    patch: Patch<String>,
    max: usize,
) -> Result<Patch<String>, AuthError> {
    patch.map(|v| optional_text(field, v, max)).transpose()
}

/// Parses a website patch: an absolute http(s) URL.
///
/// # Errors
/// `BAD_USER_INPUT` on `website`.
pub fn website_patch(patch: Patch<String>) -> Result<Patch<String>, AuthError> {
    let patch = text_patch("website", patch, 2048)?;
    if let Some(Some(url)) = &patch {
        let lower = url.to_ascii_lowercase();
        let rest = lower
            .strip_prefix("https://")
            .or_else(|| lower.strip_prefix("http://"));
        if rest.is_none_or(|host| host.is_empty() || host.contains(char::is_whitespace)) {
            return Err(AuthError::invalid(
                "website",
                "must be an http or https URL",
            ));
        }
    }
    Ok(patch)
}

/// Parses a JSON patch for `field`: bounded in size.
///
/// # Errors
/// `BAD_USER_INPUT` on `field`.
pub fn json_patch(field: &'static str, patch: Patch<Json>) -> Result<Patch<Json>, AuthError> {
    if let Some(Some(value)) = &patch
        && value.to_string().len() > MAX_JSON_BYTES
    {
        return Err(AuthError::invalid(field, "must be at most 16 KiB of JSON"));
    }
    Ok(patch)
}

fn apply<T: Into<sea_orm::Value>>(slot: &mut ActiveValue<Option<T>>, patch: Patch<T>)
where
    Option<T>: Into<sea_orm::Value>,
{
    if let Some(value) = patch {
        *slot = Set(value);
    }
}

/// UI theme choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Theme {
    Light,
    Dark,
    System,
}

impl Theme {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Light => "light",
            Self::Dark => "dark",
            Self::System => "system",
        }
    }

    /// Parses the stored form; unknown text reads as the default.
    pub fn parse(text: &str) -> Self {
        match text {
            "dark" => Self::Dark,
            "system" => Self::System,
            _ => Self::Light,
        }
    }
}

/// A parsed preferences update; serialises as the fields it changes.
#[derive(Debug, Clone, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PreferencesUpdate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub theme: Option<Theme>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_browser_config: Patch<Json>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_workflow_settings: Patch<Json>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notifications: Patch<Json>,
}

impl Auth {
    /// Updates the caller's name and profile, creating the profile on first use.
    ///
    /// # Errors
    /// Internal, when the database fails.
    #[tracing::instrument(name = "auth.update_profile", skip_all, err(level = "debug"))]
    pub async fn update_profile(
        &self,
        db: &impl ConnectionTrait,
        actor: &Actor,
        update: ProfileUpdate,
    ) -> Result<user::Model, AuthError> {
        let now = self.clock.now();
        let user = user::Entity::find_by_id(actor.user_id)
            .one(db)
            .await?
            .ok_or(AuthError::InvalidToken)?;
        let user = match update.name {
            Some(name) => {
                let mut active = user.into_active_model();
                active.name = Set(name);
                active.updated_at = Set(now);
                active.update(db).await?
            }
            None => user,
        };
        let existing = user_profile::Entity::find()
            .filter(user_profile::Column::UserId.eq(actor.user_id))
            .one(db)
            .await?;
        let is_new = existing.is_none();
        let mut p = match existing {
            Some(found) => found.into_active_model(),
            None => user_profile::ActiveModel {
                id: Set(new_id()),
                user_id: Set(actor.user_id),
                created_at: Set(now),
                ..Default::default()
            },
        };
        apply(&mut p.company_name, update.company_name);
        apply(&mut p.industry, update.industry);
        apply(&mut p.monthly_revenue, update.monthly_revenue);
        apply(&mut p.employee_count, update.employee_count);
        apply(&mut p.website, update.website);
        apply(&mut p.phone, update.phone);
        apply(&mut p.goals, update.goals);
        apply(&mut p.current_tools, update.current_tools);
        apply(&mut p.referral_source, update.referral_source);
        apply(&mut p.notes, update.notes);
        p.updated_at = Set(now);
        // `save` decides insert-or-update by whether the key is set, and ours always is.
        if is_new {
            p.insert(db).await?;
        } else {
            p.update(db).await?;
        }
        Ok(user)
    }

    /// Updates the caller's preferences, creating them on first use.
    ///
    /// # Errors
    /// Internal, when the database fails.
    #[tracing::instrument(name = "auth.update_preferences", skip_all, err(level = "debug"))]
    pub async fn update_preferences(
        &self,
        db: &impl ConnectionTrait,
        actor: &Actor,
        update: PreferencesUpdate,
    ) -> Result<user_preference::Model, AuthError> {
        let now = self.clock.now();
        let existing = user_preference::Entity::find()
            .filter(user_preference::Column::UserId.eq(actor.user_id))
            .one(db)
            .await?;
        let is_new = existing.is_none();
        let mut p = match existing {
            Some(found) => found.into_active_model(),
            None => user_preference::ActiveModel {
                id: Set(new_id()),
                user_id: Set(actor.user_id),
                theme: Set(Theme::Light.as_str().into()),
                created_at: Set(now),
                ..Default::default()
            },
        };
        if let Some(theme) = update.theme {
            p.theme = Set(theme.as_str().into());
        }
        apply(&mut p.default_browser_config, update.default_browser_config);
        apply(
            &mut p.default_workflow_settings,
            update.default_workflow_settings,
        );
        apply(&mut p.notifications, update.notifications);
        p.updated_at = Set(now);
        let saved = if is_new {
            p.insert(db).await?
        } else {
            p.update(db).await?
        };
        Ok(saved)
    }
}

/// Profiles of many users in one statement, keyed by user id.
///
/// # Errors
/// Internal, when the database fails.
pub async fn profiles_of(
    db: &impl ConnectionTrait,
    user_ids: &[Uuid],
) -> Result<HashMap<Uuid, user_profile::Model>, AuthError> {
    let rows = user_profile::Entity::find()
        .filter(user_profile::Column::UserId.is_in(user_ids.iter().copied()))
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|r| (r.user_id, r)).collect())
}

/// Preferences of many users in one statement, keyed by user id.
///
/// # Errors
/// Internal, when the database fails.
pub async fn preferences_of(
    db: &impl ConnectionTrait,
    user_ids: &[Uuid],
) -> Result<HashMap<Uuid, user_preference::Model>, AuthError> {
    let rows = user_preference::Entity::find()
        .filter(user_preference::Column::UserId.is_in(user_ids.iter().copied()))
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|r| (r.user_id, r)).collect())
}
