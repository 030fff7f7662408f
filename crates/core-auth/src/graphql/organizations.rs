//! The organizations part of the schema: the caller's organizations, their
//! members and invitations, and the mutations that change them.

use super::org_types::{
    CreateOrganizationInput, Invitation, InviteMemberInput, Member, Organization,
    UpdateMemberRoleInput, UpdateOrganizationInput, auth,
};
use crate::invitations::InviteMember;
use crate::organizations::{
    CreateOrganization, MyOrganization, UpdateOrganization, audit_view, member_audit_view,
};
use crate::types::Email;
use async_graphql::connection::Connection;
use async_graphql::{Context, ID, MaybeUndefined, Object, Result};
use kernel::error::ResultExt;
use kernel::gql::ContextExt;
use kernel::id::parse_id;

/// Organization queries.
#[derive(Default)]
pub struct OrgQuery;

#[Object]
impl OrgQuery {
    /// The organizations the caller belongs to, most recently joined first, with the caller's role.
    #[graphql(complexity = "kernel::page::list_complexity(first, last, child_complexity)")]
    async fn my_organizations(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Connection<String, Organization>> {
        let actor = ctx.actor()?;
        let window = kernel::page::window(first, after, last, before).gql()?;
        let page = auth(ctx)
            .my_organizations(ctx.db(), actor, window)
            .await
            .gql()?;
        Ok(page.into_connection(Organization::from))
    }

    /// One organization the caller belongs to; `NOT_FOUND` for any other id.
    async fn organization(&self, ctx: &Context<'_>, id: ID) -> Result<Organization> {
        let actor = ctx.actor()?;
        let id = parse_id(&id, "id").gql()?;
        let found = auth(ctx).organization(ctx.db(), actor, id).await.gql()?;
        Ok(found.into())
    }

    /// Pending, unexpired invitations addressed to the caller's email, newest first.
    #[graphql(complexity = "kernel::page::list_complexity(first, last, child_complexity)")]
    async fn my_invitations(
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
        let page = auth.my_invitations(ctx.db(), actor, window).await.gql()?;
        let now = auth.clock.now();
        Ok(page.into_connection(|m| Invitation::new(m, now)))
    }
}

/// Organization mutations.
#[derive(Default)]
pub struct OrgMutation;

#[Object]
impl OrgMutation {
    /// Creates an organization; the caller becomes its owner. `CONFLICT` on `slug` when taken.
    async fn create_organization(
        &self,
        ctx: &Context<'_>,
        input: CreateOrganizationInput,
    ) -> Result<Organization> {
        let actor = ctx.writer()?;
        let req = CreateOrganization::parse(input.name, &input.slug, input.logo).gql()?;
        let mut txn = ctx.begin().await?;
        let created = auth(ctx)
            .create_organization(&txn, actor, req)
            .await
            .gql()?;
        txn.subject("organization", created.organization.id);
        txn.changes(None, Some(audit_view(&created.organization)));
        txn.commit().await.gql()?;
        Ok(created.into())
    }

    /// Renames an organization or changes its slug or logo; owners and admins only.
    async fn update_organization(
        &self,
        ctx: &Context<'_>,
        input: UpdateOrganizationInput,
    ) -> Result<Organization> {
        let actor = ctx.writer()?;
        let id = parse_id(&input.id, "id").gql()?;
        let logo = match input.logo {
            MaybeUndefined::Undefined => None,
            MaybeUndefined::Null => Some(None),
            MaybeUndefined::Value(v) => Some(Some(v)),
        };
        let req = UpdateOrganization::parse(input.name, input.slug, logo).gql()?;
        let mut txn = ctx.begin().await?;
        let (old, new, role) = auth(ctx)
            .update_organization(&txn, actor, id, req)
            .await
            .gql()?;
        txn.subject("organization", id);
        txn.changes(Some(audit_view(&old)), Some(audit_view(&new)));
        txn.commit().await.gql()?;
        Ok(MyOrganization {
            organization: new,
            role,
        }
        .into())
    }

    /// Deletes an organization with its members and invitations; owners only.
    async fn delete_organization(&self, ctx: &Context<'_>, id: ID) -> Result<bool> {
        let actor = ctx.writer()?;
        let id = parse_id(&id, "id").gql()?;
        let mut txn = ctx.begin().await?;
        let old = auth(ctx).delete_organization(&txn, actor, id).await.gql()?;
        txn.subject("organization", id);
        txn.changes(Some(audit_view(&old)), None);
        txn.commit().await.gql()?;
        Ok(true)
    }

    /// Invites an email address; owners and admins only, and only owners invite owners.
    /// `CONFLICT` on `email` when the address is a member or already invited;
    /// `RATE_LIMITED` (with `retryAfter`) past the caller's hourly or the
    /// organization's daily invitation limit.
    async fn invite_member(
        &self,
        ctx: &Context<'_>,
        input: InviteMemberInput,
    ) -> Result<Invitation> {
        let actor = ctx.writer()?;
        let req = InviteMember {
            organization_id: parse_id(&input.organization_id, "organizationId").gql()?,
            email: Email::parse(&input.email).gql()?,
            role: input.role.into(),
        };
        let mut txn = ctx.begin().await?;
        let auth = auth(ctx);
        let inv = auth.invite_member(&txn, actor, req).await.gql()?;
        txn.subject("invitation", inv.id);
        txn.changes(None, Some(crate::invitations::audit_view(&inv)));
        txn.commit().await.gql()?;
        super::recovery::deliver_committed_mail(ctx);
        Ok(Invitation::new(inv, auth.clock.now()))
    }

    /// Accepts an invitation addressed to the caller's email and joins with its role.
    /// `LIMIT_EXCEEDED` when the organization is full.
    async fn accept_invitation(&self, ctx: &Context<'_>, id: ID) -> Result<Member> {
        let actor = ctx.writer()?;
        let id = parse_id(&id, "id").gql()?;
        let mut txn = ctx.begin().await?;
        let (_, member) = auth(ctx).accept_invitation(&txn, actor, id).await.gql()?;
        txn.subject("invitation", id);
        txn.changes(None, Some(member_audit_view(&member)));
        txn.commit().await.gql()?;
        Ok(member.into())
    }

    /// Declines an invitation addressed to the caller's email.
    async fn reject_invitation(&self, ctx: &Context<'_>, id: ID) -> Result<Invitation> {
        self.close_invitation(ctx, id, false).await
    }

    /// Withdraws a pending invitation; owners and admins only.
    async fn cancel_invitation(&self, ctx: &Context<'_>, id: ID) -> Result<Invitation> {
        self.close_invitation(ctx, id, true).await
    }

    /// Changes a member's role. Admins cannot change owners or make owners; the
    /// last owner cannot be demoted (`CONFLICT`).
    async fn update_member_role(
        &self,
        ctx: &Context<'_>,
        input: UpdateMemberRoleInput,
    ) -> Result<Member> {
        let actor = ctx.writer()?;
        let id = parse_id(&input.member_id, "memberId").gql()?;
        let mut txn = ctx.begin().await?;
        let (old, new) = auth(ctx)
            .update_member_role(&txn, actor, id, input.role.into())
            .await
            .gql()?;
        txn.subject("member", id);
        txn.changes(Some(member_audit_view(&old)), Some(member_audit_view(&new)));
        txn.commit().await.gql()?;
        Ok(new.into())
    }

    /// Removes a member; admins cannot remove owners, and the last owner stays.
    async fn remove_member(&self, ctx: &Context<'_>, id: ID) -> Result<bool> {
        let actor = ctx.writer()?;
        let id = parse_id(&id, "id").gql()?;
        let mut txn = ctx.begin().await?;
        let old = auth(ctx).remove_member(&txn, actor, id).await.gql()?;
        txn.subject("member", id);
        txn.changes(Some(member_audit_view(&old)), None);
        txn.commit().await.gql()?;
        Ok(true)
    }

    /// Leaves an organization; the last owner cannot leave (`CONFLICT`).
    async fn leave_organization(&self, ctx: &Context<'_>, id: ID) -> Result<bool> {
        let actor = ctx.writer()?;
        let id = parse_id(&id, "id").gql()?;
        let mut txn = ctx.begin().await?;
        let old = auth(ctx).leave_organization(&txn, actor, id).await.gql()?;
        txn.subject("member", old.id);
        txn.changes(Some(member_audit_view(&old)), None);
        txn.commit().await.gql()?;
        Ok(true)
    }
}

impl OrgMutation {
    async fn close_invitation(
        &self,
        ctx: &Context<'_>,
        id: ID,
        cancel: bool,
    ) -> Result<Invitation> {
        let actor = ctx.writer()?;
        let id = parse_id(&id, "id").gql()?;
        let mut txn = ctx.begin().await?;
        let auth = auth(ctx);
        let inv = if cancel {
            auth.cancel_invitation(&txn, actor, id).await
        } else {
            auth.reject_invitation(&txn, actor, id).await
        }
        .gql()?;
        txn.subject("invitation", id);
        txn.changes(None, Some(crate::invitations::audit_view(&inv)));
        txn.commit().await.gql()?;
        Ok(Invitation::new(inv, auth.clock.now()))
    }
}
