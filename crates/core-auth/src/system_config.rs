//! `system_config`: typed runtime settings. Only admins write them; every write
//! is audited by the transaction hook and recorded in `security_audit_log`.

use crate::Auth;
use crate::admin::AdminCap;
use crate::entity::system_config;
use crate::flags::FlagName;
use crate::security::record_access;
use crate::types::optional_text;
use kernel::Error;
use kernel::id::new_id;
use kernel::page::{Page, Window};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, ModelTrait,
    QueryFilter, Set,
};
use serde_json::{Value as Json, json};

/// Largest accepted value, serialised.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;

/// The type a setting's value must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    /// A JSON string.
    String,
    /// A JSON number.
    Number,
    /// `true` or `false`.
    Boolean,
    /// A JSON object or array.
    Json,
}

impl ValueType {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Number => "number",
            Self::Boolean => "boolean",
            Self::Json => "json",
        }
    }

    /// Parses the stored form; unknown text reads as `json`.
    pub fn parse(text: &str) -> Self {
        match text {
            "string" => Self::String,
            "number" => Self::Number,
            "boolean" => Self::Boolean,
            _ => Self::Json,
        }
    }

    fn admits(self, value: &Json) -> bool {
        match self {
            Self::String => value.is_string(),
            Self::Number => value.is_number(),
            Self::Boolean => value.is_boolean(),
            Self::Json => value.is_object() || value.is_array(),
        }
    }
}

/// A parsed write of one setting.
#[derive(Debug, Clone)]
pub struct SetConfig {
    /// The key: the same alphabet as flag names.
    pub key: FlagName,
    /// The value, of `value_type`.
    pub value: Json,
    /// Its declared type.
    pub value_type: ValueType,
    /// What it controls.
    pub description: Option<String>,
}

impl SetConfig {
    /// Parses the raw input; the value must have the declared type.
    ///
    /// # Errors
    /// `BAD_USER_INPUT` on `key`, `value` or `description`.
    pub fn parse(
        key: &str,
        value: Json,
        value_type: ValueType,
        description: Option<String>,
    ) -> Result<Self, Error> {
        let key = FlagName::parse("key", key)?;
        if !value_type.admits(&value) {
            return Err(Error::bad_input(
                "value",
                format!("must be a {} value", value_type.as_str()),
            ));
        }
        if serde_json::to_vec(&value).map_or(true, |v| v.len() > MAX_VALUE_BYTES) {
            return Err(Error::bad_input("value", "must be at most 64 KiB"));
        }
        Ok(Self {
            key,
            value,
            value_type,
            description: optional_text("description", description, 1000)?,
        })
    }
}

/// What the audit records keep of a setting: the value is redacted when the
/// setting's own name marks it secret (`smtp.password`), since `redact` only
/// sees the JSON field name `value`.
pub fn audit_view(c: &system_config::Model) -> Json {
    let value = if kernel::audit::is_secret_key(&c.key) {
        Json::String("[REDACTED]".into())
    } else {
        c.value.clone()
    };
    json!({
        "key": c.key,
        "value": value,
        "valueType": c.value_type,
        "description": c.description,
    })
}

impl Auth {
    /// Every setting, newest first.
    ///
    /// # Errors
    /// Internal, when the database fails.
    #[tracing::instrument(name = "config.list", skip_all, err(level = "debug"))]
    pub async fn list_config(
        &self,
        db: &impl ConnectionTrait,
        _cap: &AdminCap,
        window: Window,
    ) -> Result<Page<system_config::Model>, Error> {
        let select = system_config::Entity::find();
        kernel::page::fetch(db, select, system_config::Column::Id, |c| c.id, window).await
    }

    /// A setting's value, for server code (no capability: not a client read).
    ///
    /// # Errors
    /// Internal, when the database fails.
    pub async fn config_value(
        &self,
        db: &impl ConnectionTrait,
        key: &str,
    ) -> Result<Option<Json>, Error> {
        Ok(system_config::Entity::find()
            .filter(system_config::Column::Key.eq(key))
            .one(db)
            .await?
            .map(|c| c.value))
    }

    /// Creates or replaces a setting; returns (before, after).
    ///
    /// # Errors
    /// Internal, when the database fails.
    #[tracing::instrument(name = "config.set", skip_all, err(level = "debug"))]
    pub async fn set_config(
        &self,
        db: &impl ConnectionTrait,
        cap: &AdminCap,
        req: SetConfig,
    ) -> Result<(Option<system_config::Model>, system_config::Model), Error> {
        let now = self.clock.now();
        let old = system_config::Entity::find()
            .filter(system_config::Column::Key.eq(req.key.as_str()))
            .one(db)
            .await?;
        let new = match &old {
            Some(found) => {
                let mut active = found.clone().into_active_model();
                active.value = Set(req.value);
                active.value_type = Set(req.value_type.as_str().to_owned());
                active.description = Set(req.description);
                active.updated_by = Set(Some(cap.user_id()));
                active.updated_at = Set(now);
                active.update(db).await?
            }
            None => system_config::ActiveModel {
                id: Set(new_id()),
                key: Set(req.key.as_str().to_owned()),
                value: Set(req.value),
                value_type: Set(req.value_type.as_str().to_owned()),
                description: Set(req.description),
                updated_by: Set(Some(cap.user_id())),
                created_at: Set(now),
                updated_at: Set(now),
            }
            .insert(db)
            .await
            .map_err(|e| {
                if kernel::error::is_unique_violation(&e) {
                    Error::conflict("key", "this setting was created concurrently; retry")
                } else {
                    e.into()
                }
            })?,
        };
        record_access(
            db,
            cap.actor(),
            "admin.system_config.set",
            "system_config",
            Some(&new.key),
            None,
        )
        .await?;
        Ok((old, new))
    }

    /// Deletes a setting; returns what it was.
    ///
    /// # Errors
    /// `NOT_FOUND` for an unknown key.
    #[tracing::instrument(name = "config.delete", skip_all, err(level = "debug"))]
    pub async fn delete_config(
        &self,
        db: &impl ConnectionTrait,
        cap: &AdminCap,
        key: &FlagName,
    ) -> Result<system_config::Model, Error> {
        let old = system_config::Entity::find()
            .filter(system_config::Column::Key.eq(key.as_str()))
            .one(db)
            .await?
            .ok_or(Error::NotFound("system config"))?;
        old.clone().delete(db).await?;
        record_access(
            db,
            cap.actor(),
            "admin.system_config.delete",
            "system_config",
            Some(&old.key),
            None,
        )
        .await?;
        Ok(old)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_must_match_their_declared_type() {
        let ok = [
            (ValueType::String, json!("x")),
            (ValueType::Number, json!(1.5)),
            (ValueType::Boolean, json!(false)),
            (ValueType::Json, json!({"a": [1]})),
        ];
        for (t, v) in ok {
            assert!(SetConfig::parse("k", v, t, None).is_ok());
        }
        let bad = [
            (ValueType::String, json!(1)),
            (ValueType::Number, json!("1")),
            (ValueType::Boolean, json!("true")),
            (ValueType::Json, json!(3)),
        ];
        for (t, v) in bad {
            let err = SetConfig::parse("k", v, t, None).unwrap_err();
            assert!(matches!(err, Error::BadInput { ref field, .. } if field == "value"));
        }
    }
}
