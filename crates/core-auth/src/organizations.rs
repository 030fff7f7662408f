//! Organizations and their members, with Better Auth's roles: owner > admin > member.
//!
//! Whoever is not a member of an organization is told it does not exist. Every
//! rule that counts members or owners runs after locking the organization row
//! (`SELECT ... FOR UPDATE` on PostgreSQL; SQLite has a single connection, so
//! its transactions are serial already), so concurrent demotions, departures
//! and acceptances cannot together break it.

use crate::Auth;
use crate::entity::{member, organization, user};
use crate::types::optional_text;
use chrono::Duration;
use kernel::Error;
use kernel::actor::Actor;
use kernel::error::is_unique_violation;
use kernel::id::new_id;
use kernel::page::{Page, Window};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, PaginatorTrait,
    QueryFilter, QuerySelect, Set,
};
use std::collections::HashMap;
use uuid::Uuid;

/// Organization limits, invitation lifetime and how much invitation mail may be sent.
#[derive(Debug, Clone)]
pub struct OrgSettings {
    /// Members an organization may have at most; enforced when an invitation is accepted.
    pub member_limit: u64,
    /// How long an invitation stays acceptable after it is sent.
    pub invitation_ttl: Duration,
    /// Invitations one user may send per rolling hour, across all their organizations (20).
    pub invitations_per_inviter_per_hour: u64,
    /// Invitations one organization may send per rolling day, by all its admins (100).
    pub invitations_per_organization_per_day: u64,
}

impl Default for OrgSettings {
    fn default() -> Self {
        Self {
            member_limit: 100,
            invitation_ttl: Duration::hours(48),
            invitations_per_inviter_per_hour: 20,
            invitations_per_organization_per_day: 100,
        }
    }
}

/// A member's role; the order is the privilege order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OrgRole {
    /// Reads the organization and its members.
    Member,
    /// Also invites, cancels invitations, manages members and admins.
    Admin,
    /// Also manages owners and deletes the organization.
    Owner,
}

impl OrgRole {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Member => "member",
            Self::Admin => "admin",
            Self::Owner => "owner",
        }
    }

    /// Reads the stored form; unknown text is the least privileged role.
    pub fn from_stored(text: &str) -> Self {
        match text {
            "owner" => Self::Owner,
            "admin" => Self::Admin,
            _ => Self::Member,
        }
    }

    /// The role of a membership row.
    pub fn of(member: &member::Model) -> Self {
        Self::from_stored(&member.role)
    }
}

/// A URL-safe organization handle: 3 to 48 lowercase letters, digits and
/// hyphens, not starting or ending with a hyphen.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Slug(String);

impl Slug {
    /// Parses user input (surrounding whitespace is ignored).
    ///
    /// # Errors
    /// `BAD_USER_INPUT` on `slug`.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let slug = text.trim();
        let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
        if !(3..=48).contains(&slug.len()) {
            return Err(Error::bad_input("slug", "must be 3 to 48 characters"));
        }
        if !slug.chars().all(allowed) {
            return Err(Error::bad_input(
                "slug",
                "may contain only lowercase letters, digits and hyphens",
            ));
        }
        if slug.starts_with('-') || slug.ends_with('-') {
            return Err(Error::bad_input(
                "slug",
                "must not start or end with a hyphen",
            ));
        }
        Ok(Self(slug.to_owned()))
    }

    /// The slug text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn parse_name(name: String) -> Result<String, Error> {
    optional_text("name", Some(name), 255)?
        .ok_or_else(|| Error::bad_input("name", "must not be empty"))
}

fn parse_logo(logo: Option<String>) -> Result<Option<String>, Error> {
    let logo = optional_text("logo", logo, 2048)?;
    if let Some(url) = &logo {
        let lower = url.to_ascii_lowercase();
        let rest = lower
            .strip_prefix("https://")
            .or_else(|| lower.strip_prefix("http://"));
        if rest.is_none_or(|host| host.is_empty() || host.contains(char::is_whitespace)) {
            return Err(Error::bad_input("logo", "must be an http or https URL"));
        }
    }
    Ok(logo)
}

/// A parsed request to create an organization.
#[derive(Debug, Clone)]
pub struct CreateOrganization {
    /// 1 to 255 characters.
    pub name: String,
    /// Unique across organizations.
    pub slug: Slug,
    /// An http(s) URL.
    pub logo: Option<String>,
}

impl CreateOrganization {
    /// Parses the raw input.
    ///
    /// # Errors
    /// `BAD_USER_INPUT` naming the field at fault.
    pub fn parse(name: String, slug: &str, logo: Option<String>) -> Result<Self, Error> {
        Ok(Self {
            name: parse_name(name)?,
            slug: Slug::parse(slug)?,
            logo: parse_logo(logo)?,
        })
    }
}

/// A parsed partial update of an organization; `None` keeps a field.
#[derive(Debug, Clone, Default)]
pub struct UpdateOrganization {
    /// New name.
    pub name: Option<String>,
    /// New slug.
    pub slug: Option<Slug>,
    /// `Some(None)` clears the logo.
    pub logo: Option<Option<String>>,
}

impl UpdateOrganization {
    /// Parses the raw input.
    ///
    /// # Errors
    /// `BAD_USER_INPUT` naming the field at fault.
    pub fn parse(
        name: Option<String>,
        slug: Option<String>,
        logo: Option<Option<String>>,
    ) -> Result<Self, Error> {
        Ok(Self {
            name: name.map(parse_name).transpose()?,
            slug: slug.map(|s| Slug::parse(&s)).transpose()?,
            logo: logo.map(parse_logo).transpose()?,
        })
    }
}

/// What the audit log records of an organization.
pub fn audit_view(org: &organization::Model) -> serde_json::Value {
    serde_json::json!({ "name": org.name, "slug": org.slug, "logo": org.logo })
}

/// What the audit log records of a membership.
pub fn member_audit_view(m: &member::Model) -> serde_json::Value {
    serde_json::json!({
        "organizationId": m.organization_id,
        "userId": m.user_id,
        "role": m.role,
    })
}

fn not_found() -> Error {
    Error::NotFound("organization")
}

fn slug_taken() -> Error {
    Error::conflict("slug", "this slug is taken")
}

/// Locks the organization row for the rest of the transaction.
///
/// # Errors
/// `NOT_FOUND` when there is no such organization.
pub(crate) async fn lock_organization(
    db: &impl ConnectionTrait,
    id: Uuid,
) -> Result<organization::Model, Error> {
    organization::Entity::find_by_id(id)
        .lock_exclusive()
        .one(db)
        .await?
        .ok_or_else(not_found)
}

/// A user's membership of an organization, if any.
///
/// # Errors
/// Internal, when the database fails.
pub(crate) async fn find_membership(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    organization_id: Uuid,
) -> Result<Option<member::Model>, Error> {
    Ok(member::Entity::find()
        .filter(member::Column::OrganizationId.eq(organization_id))
        .filter(member::Column::UserId.eq(user_id))
        .one(db)
        .await?)
}

/// The caller's membership of an organization.
///
/// # Errors
/// `NOT_FOUND` (for the organization) when the caller is not a member.
pub(crate) async fn membership(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    organization_id: Uuid,
) -> Result<member::Model, Error> {
    find_membership(db, user_id, organization_id)
        .await?
        .ok_or_else(not_found)
}

/// Names a `NOT_FOUND` after the object the caller asked for; other errors pass.
pub(crate) fn not_found_as(err: Error, what: &'static str) -> Error {
    match err {
        Error::NotFound(_) => Error::NotFound(what),
        other => other,
    }
}

async fn count_owners(db: &impl ConnectionTrait, organization_id: Uuid) -> Result<u64, Error> {
    Ok(member::Entity::find()
        .filter(member::Column::OrganizationId.eq(organization_id))
        .filter(member::Column::Role.eq(OrgRole::Owner.as_str()))
        .count(db)
        .await?)
}

/// Members of an organization, counted under its lock.
pub(crate) async fn count_members(
    db: &impl ConnectionTrait,
    organization_id: Uuid,
) -> Result<u64, Error> {
    Ok(member::Entity::find()
        .filter(member::Column::OrganizationId.eq(organization_id))
        .count(db)
        .await?)
}

/// Refuses to leave an organization without an owner.
async fn keep_an_owner(
    db: &impl ConnectionTrait,
    target: &member::Model,
    field: Option<&str>,
) -> Result<(), Error> {
    if OrgRole::of(target) == OrgRole::Owner && count_owners(db, target.organization_id).await? <= 1
    {
        return Err(Error::Conflict {
            field: field.map(str::to_owned),
            message: "the last owner cannot leave or be demoted; make another member owner first"
                .into(),
        });
    }
    Ok(())
}

async fn slug_is_free(
    db: &impl ConnectionTrait,
    slug: &Slug,
    except: Option<Uuid>,
) -> Result<bool, Error> {
    let mut select =
        organization::Entity::find().filter(organization::Column::Slug.eq(slug.as_str()));
    if let Some(id) = except {
        select = select.filter(organization::Column::Id.ne(id));
    }
    Ok(select.count(db).await? == 0)
}

/// An organization as one member sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MyOrganization {
    /// The organization.
    pub organization: organization::Model,
    /// The caller's role in it.
    pub role: OrgRole,
}

/// The membership being managed and the caller's own, read under the organization's lock.
struct Managed {
    target: member::Model,
    me: member::Model,
}

impl Auth {
    /// Creates an organization with the caller as its owner.
    ///
    /// # Errors
    /// `CONFLICT` on `slug` when it is taken.
    #[tracing::instrument(name = "auth.create_organization", skip_all, err(level = "debug"))]
    pub async fn create_organization(
        &self,
        db: &impl ConnectionTrait,
        actor: &Actor,
        req: CreateOrganization,
    ) -> Result<MyOrganization, Error> {
        if !slug_is_free(db, &req.slug, None).await? {
            return Err(slug_taken());
        }
        let now = self.clock.now();
        let organization = organization::ActiveModel {
            id: Set(new_id()),
            name: Set(req.name),
            slug: Set(req.slug.0),
            logo: Set(req.logo),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(db)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                slug_taken()
            } else {
                e.into()
            }
        })?;
        member::ActiveModel {
            id: Set(new_id()),
            organization_id: Set(organization.id),
            user_id: Set(actor.user_id),
            role: Set(OrgRole::Owner.as_str().to_owned()),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(db)
        .await?;
        Ok(MyOrganization {
            organization,
            role: OrgRole::Owner,
        })
    }

    /// One organization the caller belongs to.
    ///
    /// # Errors
    /// `NOT_FOUND` when it does not exist or the caller is not a member.
    #[tracing::instrument(name = "auth.organization", skip_all, err(level = "debug"))]
    pub async fn organization(
        &self,
        db: &impl ConnectionTrait,
        actor: &Actor,
        id: Uuid,
    ) -> Result<MyOrganization, Error> {
        let found = member::Entity::find()
            .filter(member::Column::OrganizationId.eq(id))
            .filter(member::Column::UserId.eq(actor.user_id))
            .find_also_related(organization::Entity)
            .one(db)
            .await?;
        match found {
            Some((m, Some(organization))) => Ok(MyOrganization {
                organization,
                role: OrgRole::of(&m),
            }),
            _ => Err(not_found()),
        }
    }

    /// The organizations the caller belongs to, most recently joined first.
    ///
    /// # Errors
    /// Internal, when the database fails.
    #[tracing::instrument(name = "auth.my_organizations", skip_all, err(level = "debug"))]
    pub async fn my_organizations(
        &self,
        db: &impl ConnectionTrait,
        actor: &Actor,
        window: Window,
    ) -> Result<Page<MyOrganization>, Error> {
        let select = member::Entity::find().filter(member::Column::UserId.eq(actor.user_id));
        let page = kernel::page::fetch(db, select, member::Column::Id, |m| m.id, window).await?;
        let ids: Vec<Uuid> = page.items.iter().map(|(_, m)| m.organization_id).collect();
        let mut orgs = organizations_by_id(db, &ids).await?;
        let items = page
            .items
            .into_iter()
            .filter_map(|(cursor, m)| {
                let organization = orgs.remove(&m.organization_id)?;
                let role = OrgRole::of(&m);
                Some((cursor, MyOrganization { organization, role }))
            })
            .collect();
        Ok(Page {
            items,
            has_next_page: page.has_next_page,
            has_previous_page: page.has_previous_page,
        })
    }

    /// Renames an organization or changes its slug or logo; owners and admins only.
    ///
    /// # Errors
    /// `NOT_FOUND` for non-members, `FORBIDDEN` for members, `CONFLICT` on a taken slug.
    #[tracing::instrument(name = "auth.update_organization", skip_all, err(level = "debug"))]
    pub async fn update_organization(
        &self,
        db: &impl ConnectionTrait,
        actor: &Actor,
        id: Uuid,
        req: UpdateOrganization,
    ) -> Result<(organization::Model, organization::Model, OrgRole), Error> {
        let old = lock_organization(db, id).await?;
        let me = membership(db, actor.user_id, id).await?;
        let role = OrgRole::of(&me);
        if role < OrgRole::Admin {
            return Err(Error::Forbidden(
                "only owners and admins can change the organization",
            ));
        }
        if let Some(slug) = &req.slug
            && !slug_is_free(db, slug, Some(id)).await?
        {
            return Err(slug_taken());
        }
        let mut active = old.clone().into_active_model();
        if let Some(name) = req.name {
            active.name = Set(name);
        }
        if let Some(slug) = req.slug {
            active.slug = Set(slug.0);
        }
        if let Some(logo) = req.logo {
            active.logo = Set(logo);
        }
        active.updated_at = Set(self.clock.now());
        let new = active.update(db).await.map_err(|e| {
            if is_unique_violation(&e) {
                slug_taken()
            } else {
                e.into()
            }
        })?;
        Ok((old, new, role))
    }

    /// Deletes an organization with its memberships and invitations; owners only.
    ///
    /// # Errors
    /// `NOT_FOUND` for non-members, `FORBIDDEN` for admins and members.
    #[tracing::instrument(name = "auth.delete_organization", skip_all, err(level = "debug"))]
    pub async fn delete_organization(
        &self,
        db: &impl ConnectionTrait,
        actor: &Actor,
        id: Uuid,
    ) -> Result<organization::Model, Error> {
        let org = lock_organization(db, id).await?;
        let me = membership(db, actor.user_id, id).await?;
        if OrgRole::of(&me) != OrgRole::Owner {
            return Err(Error::Forbidden("only owners can delete the organization"));
        }
        // Explicit deletes rather than relying on ON DELETE CASCADE, which a
        // SQLite connection enforces only with the foreign_keys pragma on.
        crate::entity::invitation::Entity::delete_many()
            .filter(crate::entity::invitation::Column::OrganizationId.eq(id))
            .exec(db)
            .await?;
        member::Entity::delete_many()
            .filter(member::Column::OrganizationId.eq(id))
            .exec(db)
            .await?;
        organization::Entity::delete_by_id(id).exec(db).await?;
        Ok(org)
    }

    /// Members of an organization the caller belongs to, newest first.
    ///
    /// # Errors
    /// `NOT_FOUND` when the caller is not a member.
    #[tracing::instrument(name = "auth.list_members", skip_all, err(level = "debug"))]
    pub async fn list_members(
        &self,
        db: &impl ConnectionTrait,
        actor: &Actor,
        organization_id: Uuid,
        window: Window,
    ) -> Result<Page<member::Model>, Error> {
        membership(db, actor.user_id, organization_id).await?;
        let select =
            member::Entity::find().filter(member::Column::OrganizationId.eq(organization_id));
        kernel::page::fetch(db, select, member::Column::Id, |m| m.id, window).await
    }

    /// Loads a membership to manage and the caller's own, under the organization's lock.
    async fn managed(
        &self,
        db: &impl ConnectionTrait,
        actor: &Actor,
        member_id: Uuid,
    ) -> Result<Managed, Error> {
        let gone = || Error::NotFound("member");
        let target = member::Entity::find_by_id(member_id)
            .one(db)
            .await?
            .ok_or_else(gone)?;
        lock_organization(db, target.organization_id)
            .await
            .map_err(|e| not_found_as(e, "member"))?;
        let me = membership(db, actor.user_id, target.organization_id)
            .await
            .map_err(|e| not_found_as(e, "member"))?;
        // Re-read under the lock: a concurrent change may have committed meanwhile.
        let target = member::Entity::find_by_id(member_id)
            .one(db)
            .await?
            .ok_or_else(gone)?;
        Ok(Managed { target, me })
    }

    /// Changes a member's role. Admins cannot change owners or make owners; only
    /// owners make owners; the last owner cannot be demoted.
    ///
    /// # Errors
    /// `NOT_FOUND` for another organization's member, `FORBIDDEN` for a role
    /// too low, `CONFLICT` when the last owner would be demoted.
    #[tracing::instrument(name = "auth.update_member_role", skip_all, err(level = "debug"))]
    pub async fn update_member_role(
        &self,
        db: &impl ConnectionTrait,
        actor: &Actor,
        member_id: Uuid,
        role: OrgRole,
    ) -> Result<(member::Model, member::Model), Error> {
        let Managed { target, me } = self.managed(db, actor, member_id).await?;
        let mine = OrgRole::of(&me);
        if mine < OrgRole::Admin {
            return Err(Error::Forbidden("members cannot change roles"));
        }
        if mine < OrgRole::Owner
            && (OrgRole::of(&target) == OrgRole::Owner || role == OrgRole::Owner)
        {
            return Err(Error::Forbidden(
                "only owners can change or grant the owner role",
            ));
        }
        if role != OrgRole::Owner {
            keep_an_owner(db, &target, Some("role")).await?;
        }
        let mut active = target.clone().into_active_model();
        active.role = Set(role.as_str().to_owned());
        active.updated_at = Set(self.clock.now());
        let updated = active.update(db).await?;
        Ok((target, updated))
    }

    /// Removes a member. Admins cannot remove owners; the last owner cannot be removed.
    ///
    /// # Errors
    /// `NOT_FOUND` for another organization's member, `FORBIDDEN` for a role
    /// too low, `CONFLICT` for the last owner.
    #[tracing::instrument(name = "auth.remove_member", skip_all, err(level = "debug"))]
    pub async fn remove_member(
        &self,
        db: &impl ConnectionTrait,
        actor: &Actor,
        member_id: Uuid,
    ) -> Result<member::Model, Error> {
        let Managed { target, me } = self.managed(db, actor, member_id).await?;
        let mine = OrgRole::of(&me);
        let leaving = target.id == me.id;
        if !leaving && mine < OrgRole::Admin {
            return Err(Error::Forbidden("members cannot remove members"));
        }
        if !leaving && mine < OrgRole::Owner && OrgRole::of(&target) == OrgRole::Owner {
            return Err(Error::Forbidden("only owners can remove owners"));
        }
        keep_an_owner(db, &target, None).await?;
        member::Entity::delete_by_id(target.id).exec(db).await?;
        Ok(target)
    }

    /// Leaves an organization. The last owner cannot leave.
    ///
    /// # Errors
    /// `NOT_FOUND` for non-members, `CONFLICT` for the last owner.
    #[tracing::instrument(name = "auth.leave_organization", skip_all, err(level = "debug"))]
    pub async fn leave_organization(
        &self,
        db: &impl ConnectionTrait,
        actor: &Actor,
        organization_id: Uuid,
    ) -> Result<member::Model, Error> {
        lock_organization(db, organization_id).await?;
        let me = membership(db, actor.user_id, organization_id).await?;
        keep_an_owner(db, &me, None).await?;
        member::Entity::delete_by_id(me.id).exec(db).await?;
        Ok(me)
    }
}

/// Organizations by id in one statement, for loaders and pages.
///
/// # Errors
/// Internal, when the database fails.
pub async fn organizations_by_id(
    db: &impl ConnectionTrait,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, organization::Model>, Error> {
    let rows = organization::Entity::find()
        .filter(organization::Column::Id.is_in(ids.iter().copied()))
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|o| (o.id, o)).collect())
}

/// Users by id in one statement, for the member loader.
///
/// # Errors
/// Internal, when the database fails.
pub async fn users_by_id(
    db: &impl ConnectionTrait,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, user::Model>, Error> {
    let rows = user::Entity::find()
        .filter(user::Column::Id.is_in(ids.iter().copied()))
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|u| (u.id, u)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_order_by_privilege_and_round_trip() {
        assert!(OrgRole::Owner > OrgRole::Admin && OrgRole::Admin > OrgRole::Member);
        for role in [OrgRole::Owner, OrgRole::Admin, OrgRole::Member] {
            assert_eq!(OrgRole::from_stored(role.as_str()), role);
        }
        assert_eq!(OrgRole::from_stored("root"), OrgRole::Member);
    }
}
