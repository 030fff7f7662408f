//! Organization output types, inputs and loaders.

use crate::Auth;
use crate::entity::{invitation, member, organization, user};
use crate::invitations::InvitationStatus as Status;
use crate::organizations::{MyOrganization, OrgRole, organizations_by_id, users_by_id};
use async_graphql::connection::Connection;
use async_graphql::dataloader::{DataLoader, Loader};
use async_graphql::{
    ComplexObject, Context, Enum, ErrorExtensions, ID, InputObject, MaybeUndefined, Request,
    Result, SimpleObject,
};
use chrono::{DateTime, Utc};
use kernel::error::ResultExt;
use kernel::gql::ContextExt;
use sea_orm::DatabaseConnection;
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;

/// A member's role: owner > admin > member.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum OrganizationRole {
    /// Manages everything, including owners; deletes the organization.
    Owner,
    /// Invites, manages members and admins, edits the organization.
    Admin,
    /// Sees the organization and its members.
    Member,
}

impl From<OrgRole> for OrganizationRole {
    fn from(r: OrgRole) -> Self {
        match r {
            OrgRole::Owner => Self::Owner,
            OrgRole::Admin => Self::Admin,
            OrgRole::Member => Self::Member,
        }
    }
}

impl From<OrganizationRole> for OrgRole {
    fn from(r: OrganizationRole) -> Self {
        match r {
            OrganizationRole::Owner => Self::Owner,
            OrganizationRole::Admin => Self::Admin,
            OrganizationRole::Member => Self::Member,
        }
    }
}

/// Where an invitation stands.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum InvitationStatus {
    /// Waiting for the invitee's answer.
    Pending,
    /// The invitee joined.
    Accepted,
    /// The invitee declined.
    Rejected,
    /// An owner or admin withdrew it.
    Cancelled,
    /// Not answered within 48 hours.
    Expired,
}

impl From<Status> for InvitationStatus {
    fn from(s: Status) -> Self {
        match s {
            Status::Pending => Self::Pending,
            Status::Accepted => Self::Accepted,
            Status::Rejected => Self::Rejected,
            Status::Cancelled => Self::Cancelled,
            Status::Expired => Self::Expired,
        }
    }
}

fn gql_id(id: Uuid) -> ID {
    ID(id.to_string())
}

/// An organization, as one of its members sees it.
#[derive(SimpleObject, Clone)]
#[graphql(complex)]
pub struct Organization {
    /// Opaque id.
    pub id: ID,
    /// Display name.
    pub name: String,
    /// Unique URL-safe handle.
    pub slug: String,
    /// Logo URL.
    pub logo: Option<String>,
    /// The caller's role in this organization.
    pub my_role: OrganizationRole,
    /// When the organization was created.
    pub created_at: DateTime<Utc>,
    #[graphql(skip)]
    pub uuid: Uuid,
}

impl From<MyOrganization> for Organization {
    fn from(m: MyOrganization) -> Self {
        let o = m.organization;
        Self {
            id: gql_id(o.id),
            name: o.name,
            slug: o.slug,
            logo: o.logo,
            my_role: m.role.into(),
            created_at: o.created_at,
            uuid: o.id,
        }
    }
}

#[ComplexObject]
impl Organization {
    /// The members, newest first.
    #[graphql(complexity = "kernel::page::list_complexity(first, last, child_complexity)")]
    async fn members(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Connection<String, Member>> {
        let actor = ctx.actor()?;
        let window = kernel::page::window(first, after, last, before).gql()?;
        let page = auth(ctx)
            .list_members(ctx.db(), actor, self.uuid, window)
            .await
            .gql()?;
        Ok(page.into_connection(Member::from))
    }

    /// Invitations in every status, newest first; owners and admins only (`FORBIDDEN` for members).
    #[graphql(complexity = "kernel::page::list_complexity(first, last, child_complexity)")]
    async fn invitations(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Connection<String, Invitation>> {
        let actor = ctx.actor()?;
        let window = kernel::page::window(first, after, last, before).gql()?;
        let auth = auth(ctx);
        let page = auth
            .list_invitations(ctx.db(), actor, self.uuid, window)
            .await
            .gql()?;
        let now = auth.clock.now();
        Ok(page.into_connection(|m| Invitation::new(m, now)))
    }
}

pub(super) fn auth<'a>(ctx: &Context<'a>) -> &'a Auth {
    ctx.data_unchecked::<Auth>()
}

/// A membership of a user in an organization.
#[derive(SimpleObject, Clone)]
#[graphql(complex)]
pub struct Member {
    /// Opaque id of the membership.
    pub id: ID,
    /// The organization.
    pub organization_id: ID,
    /// The member's role.
    pub role: OrganizationRole,
    /// When the user joined.
    pub created_at: DateTime<Utc>,
    #[graphql(skip)]
    pub user_uuid: Uuid,
}

impl From<member::Model> for Member {
    fn from(m: member::Model) -> Self {
        Self {
            id: gql_id(m.id),
            organization_id: gql_id(m.organization_id),
            role: OrgRole::of(&m).into(),
            created_at: m.created_at,
            user_uuid: m.user_id,
        }
    }
}

#[ComplexObject]
impl Member {
    /// The member's public identity.
    async fn user(&self, ctx: &Context<'_>) -> Result<Option<MemberUser>> {
        let loader = ctx.data_unchecked::<DataLoader<MemberUserLoader>>();
        let found = loader
            .load_one(self.user_uuid)
            .await
            .map_err(|e| e.to_gql())?;
        Ok(found.map(MemberUser::from))
    }
}

/// What fellow members see of a user: no role, profile or preferences.
#[derive(SimpleObject, Clone)]
pub struct MemberUser {
    /// Opaque id.
    pub id: ID,
    /// Email address, lower-cased.
    pub email: String,
    /// Display name.
    pub name: Option<String>,
}

impl From<user::Model> for MemberUser {
    fn from(m: user::Model) -> Self {
        Self {
            id: gql_id(m.id),
            email: m.email,
            name: m.name,
        }
    }
}

/// An invitation of an email address into an organization.
#[derive(SimpleObject, Clone)]
#[graphql(complex)]
pub struct Invitation {
    /// Opaque id.
    pub id: ID,
    /// The invited address, lower-cased.
    pub email: String,
    /// The role the invitee gets on accepting.
    pub role: OrganizationRole,
    /// Where it stands now; a pending invitation past `expiresAt` is `EXPIRED`.
    pub status: InvitationStatus,
    /// When it stops being acceptable.
    pub expires_at: DateTime<Utc>,
    /// When it was sent.
    pub created_at: DateTime<Utc>,
    #[graphql(skip)]
    pub organization_uuid: Uuid,
}

impl Invitation {
    /// The invitation as it stands at `now`.
    pub fn new(m: invitation::Model, now: DateTime<Utc>) -> Self {
        Self {
            id: gql_id(m.id),
            role: OrgRole::from_stored(&m.role).into(),
            status: Status::of(&m, now).into(),
            email: m.email,
            expires_at: m.expires_at,
            created_at: m.created_at,
            organization_uuid: m.organization_id,
        }
    }
}

#[ComplexObject]
impl Invitation {
    /// The organization the invitation is into.
    async fn organization(&self, ctx: &Context<'_>) -> Result<Option<InvitingOrganization>> {
        let loader = ctx.data_unchecked::<DataLoader<OrganizationLoader>>();
        let found = loader
            .load_one(self.organization_uuid)
            .await
            .map_err(|e| e.to_gql())?;
        Ok(found.map(InvitingOrganization::from))
    }
}

/// What an invitee sees of the organization inviting them.
#[derive(SimpleObject, Clone)]
pub struct InvitingOrganization {
    /// Opaque id.
    pub id: ID,
    /// Display name.
    pub name: String,
    /// Unique URL-safe handle.
    pub slug: String,
    /// Logo URL.
    pub logo: Option<String>,
}

impl From<organization::Model> for InvitingOrganization {
    fn from(o: organization::Model) -> Self {
        Self {
            id: gql_id(o.id),
            name: o.name,
            slug: o.slug,
            logo: o.logo,
        }
    }
}

/// A new organization.
#[derive(InputObject)]
pub struct CreateOrganizationInput {
    /// Display name, 1 to 255 characters.
    pub name: String,
    /// Unique handle: 3 to 48 lowercase letters, digits and hyphens, not starting or ending with a hyphen.
    pub slug: String,
    /// Logo, an http(s) URL.
    pub logo: Option<String>,
}

/// Changes to an organization. Omit a field to keep it; send a null logo to clear it.
#[derive(InputObject)]
pub struct UpdateOrganizationInput {
    /// The organization.
    pub id: ID,
    /// Display name, 1 to 255 characters.
    pub name: Option<String>,
    /// Unique handle, as for `createOrganization`.
    pub slug: Option<String>,
    /// Logo, an http(s) URL.
    pub logo: MaybeUndefined<String>,
}

/// An invitation to send.
#[derive(InputObject)]
pub struct InviteMemberInput {
    /// The organization to invite into.
    pub organization_id: ID,
    /// The address to invite.
    pub email: String,
    /// The role on accepting; only owners may invite owners.
    pub role: OrganizationRole,
}

/// A role change.
#[derive(InputObject)]
pub struct UpdateMemberRoleInput {
    /// The membership to change.
    pub member_id: ID,
    /// The new role.
    pub role: OrganizationRole,
}

/// A loader failure, shareable between the fields that waited on the batch.
#[derive(Clone, Debug)]
pub struct OrgLoadError(Arc<kernel::Error>);

impl OrgLoadError {
    fn to_gql(&self) -> async_graphql::Error {
        self.0.extend()
    }
}

impl From<kernel::Error> for OrgLoadError {
    fn from(e: kernel::Error) -> Self {
        Self(Arc::new(e))
    }
}

/// Loads members' users by id.
pub struct MemberUserLoader(pub DatabaseConnection);

impl Loader<Uuid> for MemberUserLoader {
    type Value = user::Model;
    type Error = OrgLoadError;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        Ok(users_by_id(&self.0, keys).await?)
    }
}

/// Loads organizations by id.
pub struct OrganizationLoader(pub DatabaseConnection);

impl Loader<Uuid> for OrganizationLoader {
    type Value = organization::Model;
    type Error = OrgLoadError;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        Ok(organizations_by_id(&self.0, keys).await?)
    }
}

/// Adds the organization loaders to one request.
pub fn register_org_loaders(request: Request, db: &DatabaseConnection) -> Request {
    request
        .data(DataLoader::new(MemberUserLoader(db.clone()), tokio::spawn))
        .data(DataLoader::new(
            OrganizationLoader(db.clone()),
            tokio::spawn,
        ))
}
