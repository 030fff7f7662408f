//! Feature flags: a flag is on for a user when it is enabled and the user is
//! whitelisted or falls inside the rollout percentage.
//!
//! The rollout bucket is `SHA-256("<name>:<user id>")`, first 8 bytes as a
//! big-endian `u64`, mod 100: the same user always gets the same answer in
//! every process and after restarts, and each flag slices users independently.

use crate::Auth;
use crate::admin::AdminCap;
use crate::entity::feature_flag;
use crate::profile::Patch;
use crate::security::record_access;
use crate::types::optional_text;
use kernel::Error;
use kernel::actor::Actor;
use kernel::crypto::hash_token;
use kernel::error::is_unique_violation;
use kernel::id::new_id;
use kernel::page::{Page, Window};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, ModelTrait,
    QueryFilter, QueryOrder, Set,
};
use serde_json::json;
use uuid::Uuid;

/// Most user ids a whitelist holds; larger audiences use the rollout percentage.
pub const MAX_WHITELIST: usize = 1000;

/// A flag or config name: 1 to 100 of `a-z`, `0-9`, `_`, `-`, `.`, starting with a letter or digit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct FlagName(String);

impl FlagName {
    /// Parses a name for input `field`.
    ///
    /// # Errors
    /// `BAD_USER_INPUT` on `field`.
    pub fn parse(field: &'static str, text: &str) -> Result<Self, Error> {
        let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "_-.".contains(c);
        let starts_ok = text
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        if text.len() > 100 || !starts_ok || !text.chars().all(ok_char) {
            return Err(Error::bad_input(
                field,
                "use 1 to 100 of a-z, 0-9, '_', '-', '.', starting with a letter or digit",
            ));
        }
        Ok(Self(text.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A rollout percentage, 0 to 100.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Rollout(u8);

impl Rollout {
    /// Parses a percentage.
    ///
    /// # Errors
    /// `BAD_USER_INPUT` on `rolloutPercentage` outside 0..=100.
    pub fn parse(value: i32) -> Result<Self, Error> {
        u8::try_from(value)
            .ok()
            .filter(|v| *v <= 100)
            .map(Self)
            .ok_or_else(|| Error::bad_input("rolloutPercentage", "must be between 0 and 100"))
    }

    /// The percentage.
    pub fn get(self) -> u8 {
        self.0
    }
}

/// The user's stable bucket for `flag`, in 0..100.
pub fn bucket(flag: &str, user_id: Uuid) -> u8 {
    let hex = hash_token(&format!("{flag}:{user_id}"));
    // The first 16 hex digits are the digest's first 8 bytes, big-endian.
    let head = u64::from_str_radix(&hex[..16], 16).unwrap_or_default();
    (head % 100) as u8
}

/// The user ids on a stored whitelist; malformed entries match nobody.
pub fn whitelist_of(flag: &feature_flag::Model) -> Vec<Uuid> {
    flag.user_whitelist
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|v| v.as_str().and_then(|s| Uuid::try_parse(s).ok()))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether `flag` is on for `user_id`.
pub fn is_on(flag: &feature_flag::Model, user_id: Uuid) -> bool {
    flag.enabled
        && (whitelist_of(flag).contains(&user_id)
            || i32::from(bucket(&flag.name, user_id)) < flag.rollout_percentage)
}

fn parse_whitelist(ids: Vec<Uuid>) -> Result<Vec<Uuid>, Error> {
    let mut ids = ids;
    ids.sort();
    ids.dedup();
    if ids.len() > MAX_WHITELIST {
        return Err(Error::bad_input(
            "userWhitelist",
            format!("at most {MAX_WHITELIST} users"),
        ));
    }
    Ok(ids)
}

fn whitelist_json(ids: &[Uuid]) -> serde_json::Value {
    json!(ids.iter().map(Uuid::to_string).collect::<Vec<_>>())
}

/// A parsed new flag.
#[derive(Debug, Clone)]
pub struct NewFlag {
    /// Unique name.
    pub name: FlagName,
    /// What it controls, at most 1000 characters.
    pub description: Option<String>,
    /// The global switch.
    pub enabled: bool,
    /// Percentage of users it is on for.
    pub rollout: Rollout,
    /// Users it is on for regardless of the percentage.
    pub whitelist: Vec<Uuid>,
}

impl NewFlag {
    /// Parses the raw input.
    ///
    /// # Errors
    /// `BAD_USER_INPUT` naming the field at fault.
    pub fn parse(
        name: &str,
        description: Option<String>,
        enabled: bool,
        rollout: i32,
        whitelist: Vec<Uuid>,
    ) -> Result<Self, Error> {
        Ok(Self {
            name: FlagName::parse("name", name)?,
            description: optional_text("description", description, 1000)?,
            enabled,
            rollout: Rollout::parse(rollout)?,
            whitelist: parse_whitelist(whitelist)?,
        })
    }
}

/// A parsed flag change; `None` keeps a field.
#[derive(Debug, Clone, Default)]
pub struct FlagUpdate {
    /// New description; `Some(None)` clears it.
    pub description: Patch<String>,
    /// New switch.
    pub enabled: Option<bool>,
    /// New percentage.
    pub rollout: Option<Rollout>,
    /// New whitelist, replacing the old one.
    pub whitelist: Option<Vec<Uuid>>,
}

impl FlagUpdate {
    /// Parses the raw input.
    ///
    /// # Errors
    /// `BAD_USER_INPUT` naming the field at fault.
    pub fn parse(
        description: Patch<String>,
        enabled: Option<bool>,
        rollout: Option<i32>,
        whitelist: Option<Vec<Uuid>>,
    ) -> Result<Self, Error> {
        Ok(Self {
            description: crate::profile::text_patch("description", description, 1000)?,
            enabled,
            rollout: rollout.map(Rollout::parse).transpose()?,
            whitelist: whitelist.map(parse_whitelist).transpose()?,
        })
    }
}

/// What the audit records keep of a flag.
pub fn audit_view(f: &feature_flag::Model) -> serde_json::Value {
    json!({
        "name": f.name,
        "description": f.description,
        "enabled": f.enabled,
        "rolloutPercentage": f.rollout_percentage,
        "userWhitelist": f.user_whitelist,
    })
}

async fn find_flag(
    db: &impl ConnectionTrait,
    name: &FlagName,
) -> Result<feature_flag::Model, Error> {
    feature_flag::Entity::find()
        .filter(feature_flag::Column::Name.eq(name.as_str()))
        .one(db)
        .await?
        .ok_or(Error::NotFound("feature flag"))
}

impl Auth {
    /// The names of the flags that are on for the caller, sorted.
    ///
    /// # Errors
    /// Internal, when the database fails.
    #[tracing::instrument(name = "flags.for_actor", skip_all, err(level = "debug"))]
    pub async fn flags_for(
        &self,
        db: &impl ConnectionTrait,
        actor: &Actor,
    ) -> Result<Vec<String>, Error> {
        let flags = feature_flag::Entity::find()
            .filter(feature_flag::Column::Enabled.eq(true))
            .order_by_asc(feature_flag::Column::Name)
            .all(db)
            .await?;
        Ok(flags
            .into_iter()
            .filter(|f| is_on(f, actor.user_id))
            .map(|f| f.name)
            .collect())
    }

    /// Every flag, newest first.
    ///
    /// # Errors
    /// Internal, when the database fails.
    #[tracing::instrument(name = "flags.list", skip_all, err(level = "debug"))]
    pub async fn list_flags(
        &self,
        db: &impl ConnectionTrait,
        _cap: &AdminCap,
        window: Window,
    ) -> Result<Page<feature_flag::Model>, Error> {
        let select = feature_flag::Entity::find();
        kernel::page::fetch(db, select, feature_flag::Column::Id, |f| f.id, window).await
    }

    /// Creates a flag.
    ///
    /// # Errors
    /// `CONFLICT` on `name` when taken.
    #[tracing::instrument(name = "flags.create", skip_all, err(level = "debug"))]
    pub async fn create_flag(
        &self,
        db: &impl ConnectionTrait,
        cap: &AdminCap,
        req: NewFlag,
    ) -> Result<feature_flag::Model, Error> {
        let now = self.clock.now();
        let flag = feature_flag::ActiveModel {
            id: Set(new_id()),
            name: Set(req.name.0),
            description: Set(req.description),
            enabled: Set(req.enabled),
            rollout_percentage: Set(i32::from(req.rollout.0)),
            user_whitelist: Set(whitelist_json(&req.whitelist)),
            metadata: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(db)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                Error::conflict("name", "a feature flag with this name exists")
            } else {
                e.into()
            }
        })?;
        record_access(
            db,
            cap.actor(),
            "admin.feature_flags.create",
            "feature_flag",
            Some(&flag.name),
            Some(audit_view(&flag)),
        )
        .await?;
        Ok(flag)
    }

    /// Changes a flag; returns (before, after).
    ///
    /// # Errors
    /// `NOT_FOUND` for an unknown name.
    #[tracing::instrument(name = "flags.update", skip_all, err(level = "debug"))]
    pub async fn update_flag(
        &self,
        db: &impl ConnectionTrait,
        cap: &AdminCap,
        name: &FlagName,
        update: FlagUpdate,
    ) -> Result<(feature_flag::Model, feature_flag::Model), Error> {
        let old = find_flag(db, name).await?;
        let mut active = old.clone().into_active_model();
        if let Some(d) = update.description {
            active.description = Set(d);
        }
        if let Some(e) = update.enabled {
            active.enabled = Set(e);
        }
        if let Some(r) = update.rollout {
            active.rollout_percentage = Set(i32::from(r.0));
        }
        if let Some(w) = &update.whitelist {
            active.user_whitelist = Set(whitelist_json(w));
        }
        active.updated_at = Set(self.clock.now());
        let new = active.update(db).await?;
        record_access(
            db,
            cap.actor(),
            "admin.feature_flags.update",
            "feature_flag",
            Some(&new.name),
            Some(json!({ "before": audit_view(&old), "after": audit_view(&new) })),
        )
        .await?;
        Ok((old, new))
    }

    /// Deletes a flag; it is off for everyone from then on.
    ///
    /// # Errors
    /// `NOT_FOUND` for an unknown name.
    #[tracing::instrument(name = "flags.delete", skip_all, err(level = "debug"))]
    pub async fn delete_flag(
        &self,
        db: &impl ConnectionTrait,
        cap: &AdminCap,
        name: &FlagName,
    ) -> Result<feature_flag::Model, Error> {
        let old = find_flag(db, name).await?;
        old.clone().delete(db).await?;
        record_access(
            db,
            cap.actor(),
            "admin.feature_flags.delete",
            "feature_flag",
            Some(&old.name),
            Some(audit_view(&old)),
        )
        .await?;
        Ok(old)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_names_are_lowercase_identifiers() {
        for good in ["beta", "new-ui", "v2.checkout", "a_b", "9lives"] {
            assert!(FlagName::parse("name", good).is_ok(), "{good}");
        }
        for bad in ["", "Beta", "-x", "has space", "ü", &"a".repeat(101)] {
            assert!(FlagName::parse("name", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rollout_is_bounded_to_percentages() {
        assert!(Rollout::parse(-1).is_err());
        assert!(Rollout::parse(101).is_err());
        assert_eq!(Rollout::parse(0).unwrap().get(), 0);
        assert_eq!(Rollout::parse(100).unwrap().get(), 100);
    }
}
