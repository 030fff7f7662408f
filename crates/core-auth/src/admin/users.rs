//! Admin user management: search, suspension and roles. Reads are recorded in
//! `security_audit_log`; mutations are recorded there too, beside the
//! `audit_logs` row the transaction hook writes.

use super::AdminCap;
use crate::Auth;
use crate::entity::user;
use crate::security::record_access;
use crate::session::{RevocationReason, RevokeScope};
use crate::types::optional_text;
use kernel::Error;
use kernel::actor::Role;
use kernel::page::{Page, Window};
use sea_orm::sea_query::{Condition, Expr, ExprTrait, Func, LikeExpr};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter,
    QuerySelect, Select, Set,
};
use serde_json::json;
use uuid::Uuid;

/// Which users an admin lists.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct UserFilter {
    /// Case-insensitive substring of the email or name.
    search: Option<String>,
    /// Only users with this role.
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    /// Only suspended (`true`) or only active (`false`) users.
    suspended: Option<bool>,
}

impl UserFilter {
    /// Parses the filter; the search is trimmed and at most 320 characters.
    ///
    /// # Errors
    /// `BAD_USER_INPUT` on `search` when too long.
    pub fn parse(
        search: Option<String>,
        role: Option<Role>,
        suspended: Option<bool>,
    ) -> Result<Self, Error> {
        let search = optional_text("search", search, 320)?.map(|s| s.to_lowercase());
        Ok(Self {
            search,
            role: role.map(Role::as_str),
            suspended,
        })
    }

    fn apply(&self, mut select: Select<user::Entity>) -> Select<user::Entity> {
        if let Some(search) = &self.search {
            let escaped: String = search
                .chars()
                .flat_map(|c| match c {
                    '%' | '_' | '\\' => vec!['\\', c],
                    c => vec![c],
                })
                .collect();
            let pattern = format!("%{escaped}%");
            let like = |col: user::Column| {
                Expr::expr(Func::lower(Expr::col((user::Entity, col))))
                    .like(LikeExpr::new(pattern.clone()).escape('\\'))
            };
            select = select.filter(
                Condition::any()
                    .add(like(user::Column::Email))
                    .add(like(user::Column::Name)),
            );
        }
        if let Some(role) = self.role {
            select = select.filter(user::Column::Role.eq(role));
        }
        match self.suspended {
            Some(true) => select.filter(user::Column::SuspendedAt.is_not_null()),
            Some(false) => select.filter(user::Column::SuspendedAt.is_null()),
            None => select,
        }
    }
}

/// Why a user is suspended: 1 to 1000 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuspensionReason(String);

impl SuspensionReason {
    /// Parses the reason.
    ///
    /// # Errors
    /// `BAD_USER_INPUT` on `reason` when empty or too long.
    pub fn parse(text: String) -> Result<Self, Error> {
        optional_text("reason", Some(text), 1000)?
            .map(Self)
            .ok_or_else(|| Error::bad_input("reason", "must not be empty"))
    }
}

/// What the audit records keep of a user: never the password hash.
pub fn audit_view(u: &user::Model) -> serde_json::Value {
    json!({
        "email": u.email,
        "role": u.role,
        "suspendedAt": u.suspended_at,
        "suspensionReason": u.suspension_reason,
    })
}

async fn find_user(db: &impl ConnectionTrait, id: Uuid) -> Result<user::Model, Error> {
    user::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or(Error::NotFound("user"))
}

/// The target of an admin mutation, row-locked until the transaction ends, so
/// the role and suspension checks below hold when the write lands (PostgreSQL;
/// SQLite's one connection already serialises writers).
async fn lock_user(db: &impl ConnectionTrait, id: Uuid) -> Result<user::Model, Error> {
    user::Entity::find_by_id(id)
        .lock_exclusive()
        .one(db)
        .await?
        .ok_or(Error::NotFound("user"))
}

/// Admins manage plain users only; a superadmin manages everyone but themself.
fn may_manage(cap: &AdminCap, target: &user::Model) -> Result<(), Error> {
    if target.id == cap.user_id() {
        return Err(Error::Forbidden(
            "admins cannot change their own account here",
        ));
    }
    if Role::parse(&target.role) >= Role::Admin && !cap.is_superadmin() {
        return Err(Error::Forbidden("only a superadmin may change an admin"));
    }
    Ok(())
}

impl Auth {
    /// Lists users, newest first; the read is recorded.
    ///
    /// # Errors
    /// Internal, when the database fails.
    #[tracing::instrument(name = "admin.list_users", skip_all, err(level = "debug"))]
    pub async fn admin_list_users(
        &self,
        db: &impl ConnectionTrait,
        cap: &AdminCap,
        filter: UserFilter,
        window: Window,
    ) -> Result<Page<user::Model>, Error> {
        let select = filter.apply(user::Entity::find());
        let page = kernel::page::fetch(db, select, user::Column::Id, |u| u.id, window).await?;
        let details = json!({ "filter": filter, "returned": page.items.len() });
        record_access(
            db,
            cap.actor(),
            "admin.users.list",
            "user",
            None,
            Some(details),
        )
        .await?;
        Ok(page)
    }

    /// One user by id; the read is recorded.
    ///
    /// # Errors
    /// `NOT_FOUND` for an unknown id.
    #[tracing::instrument(name = "admin.get_user", skip_all, err(level = "debug"))]
    pub async fn admin_get_user(
        &self,
        db: &impl ConnectionTrait,
        cap: &AdminCap,
        id: Uuid,
    ) -> Result<user::Model, Error> {
        let found = find_user(db, id).await?;
        let rid = id.to_string();
        record_access(
            db,
            cap.actor(),
            "admin.users.read",
            "user",
            Some(&rid),
            None,
        )
        .await?;
        Ok(found)
    }

    /// Suspends a user and revokes every session; their API keys stop working
    /// because authentication refuses suspended users. Returns (before, after).
    ///
    /// # Errors
    /// `NOT_FOUND`; `FORBIDDEN` for oneself, or an admin target without superadmin;
    /// `INVALID_TRANSITION` when already suspended.
    #[tracing::instrument(name = "admin.suspend_user", skip_all, err(level = "debug"))]
    pub async fn suspend_user(
        &self,
        db: &impl ConnectionTrait,
        cap: &AdminCap,
        id: Uuid,
        reason: SuspensionReason,
    ) -> Result<(user::Model, user::Model), Error> {
        let target = lock_user(db, id).await?;
        may_manage(cap, &target)?;
        if target.suspended_at.is_some() {
            return Err(Error::InvalidTransition(
                "the user is already suspended".into(),
            ));
        }
        let now = self.clock.now();
        let mut active = target.clone().into_active_model();
        active.suspended_at = Set(Some(now));
        active.suspension_reason = Set(Some(reason.0));
        active.updated_at = Set(now);
        let updated = active.update(db).await?;
        self.revoke_sessions(db, id, RevokeScope::All, RevocationReason::Suspended)
            .await?;
        let rid = id.to_string();
        let details = json!({ "reason": updated.suspension_reason });
        record_access(
            db,
            cap.actor(),
            "admin.users.suspend",
            "user",
            Some(&rid),
            Some(details),
        )
        .await?;
        Ok((target, updated))
    }

    /// Lifts a suspension; the user may sign in again. Returns (before, after).
    ///
    /// # Errors
    /// As [`Auth::suspend_user`]; `INVALID_TRANSITION` when not suspended.
    #[tracing::instrument(name = "admin.unsuspend_user", skip_all, err(level = "debug"))]
    pub async fn unsuspend_user(
        &self,
        db: &impl ConnectionTrait,
        cap: &AdminCap,
        id: Uuid,
    ) -> Result<(user::Model, user::Model), Error> {
        let target = lock_user(db, id).await?;
        may_manage(cap, &target)?;
        if target.suspended_at.is_none() {
            return Err(Error::InvalidTransition("the user is not suspended".into()));
        }
        let mut active = target.clone().into_active_model();
        active.suspended_at = Set(None);
        active.suspension_reason = Set(None);
        active.updated_at = Set(self.clock.now());
        let updated = active.update(db).await?;
        let rid = id.to_string();
        record_access(
            db,
            cap.actor(),
            "admin.users.unsuspend",
            "user",
            Some(&rid),
            None,
        )
        .await?;
        Ok((target, updated))
    }

    /// Changes a user's role. Only a superadmin grants `admin`/`superadmin` or
    /// changes an admin; nobody changes their own role. Returns (before, after).
    ///
    /// # Errors
    /// `NOT_FOUND`; `FORBIDDEN` as above.
    #[tracing::instrument(name = "admin.set_user_role", skip_all, err(level = "debug"))]
    pub async fn set_user_role(
        &self,
        db: &impl ConnectionTrait,
        cap: &AdminCap,
        id: Uuid,
        role: Role,
    ) -> Result<(user::Model, user::Model), Error> {
        let target = lock_user(db, id).await?;
        may_manage(cap, &target)?;
        if role >= Role::Admin && !cap.is_superadmin() {
            return Err(Error::Forbidden(
                "only a superadmin may grant the admin role",
            ));
        }
        let mut active = target.clone().into_active_model();
        active.role = Set(role.as_str().to_owned());
        active.updated_at = Set(self.clock.now());
        let updated = active.update(db).await?;
        let rid = id.to_string();
        let details = json!({ "from": target.role, "to": updated.role });
        record_access(
            db,
            cap.actor(),
            "admin.users.set_role",
            "user",
            Some(&rid),
            Some(details),
        )
        .await?;
        Ok((target, updated))
    }
}

/// Sets a user's role without an acting admin: the bootstrap path for the
/// `server user set-role` command, so a DBA can make the first superadmin.
/// Recorded in `security_audit_log` as `cli.users.set_role`.
///
/// # Errors
/// `NOT_FOUND` for an unknown email.
pub async fn bootstrap_set_role(
    db: &impl ConnectionTrait,
    email: &crate::types::Email,
    role: Role,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<user::Model, Error> {
    let target = user::Entity::find()
        .filter(user::Column::Email.eq(email.as_str()))
        .one(db)
        .await?
        .ok_or(Error::NotFound("user"))?;
    let from = target.role.clone();
    let mut active = target.into_active_model();
    active.role = Set(role.as_str().to_owned());
    active.updated_at = Set(now);
    let updated = active.update(db).await?;
    let rid = updated.id.to_string();
    let details = json!({ "from": from, "to": updated.role, "via": "cli" });
    crate::security::write_access(
        db,
        Some(updated.id),
        "cli.users.set_role",
        "user",
        Some(&rid),
        Some(details),
    )
    .await?;
    Ok(updated)
}
