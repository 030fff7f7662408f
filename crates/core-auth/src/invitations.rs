//! Invitations into organizations: `pending` until accepted, rejected, cancelled
//! or expired (48 hours by default). Only the user whose email was invited sees
//! and answers an invitation; everyone else is told it does not exist.
//!
//! Every invitation mails an address its sender chose, so sending is limited
//! per inviter per rolling hour and per organization per rolling day
//! ([`OrgSettings`](crate::organizations::OrgSettings)). Each invitation row is
//! one mail, whatever became of it, so re-inviting an address counts again.
//! The counts run under the organization's and the inviter's row locks, so
//! concurrent invitations cannot together pass a limit.

use crate::Auth;
use crate::entity::{invitation, member, organization, user};
use crate::organizations::{
    OrgRole, count_members, find_membership, lock_organization, membership, not_found_as,
};
use crate::recovery::lock_user;
use crate::types::Email;
use chrono::{DateTime, Duration, Utc};
use kernel::Error;
use kernel::actor::Actor;
use kernel::id::new_id;
use kernel::mail::{OutgoingMail, outbox};
use kernel::page::{Page, Window};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};
use uuid::Uuid;

/// The outbox `kind` of invitation mail.
pub const INVITATION_MAIL: &str = "organization_invitation";

/// The rolling window of the per-inviter limit.
const INVITER_WINDOW: Duration = Duration::hours(1);
/// The rolling window of the per-organization limit.
const ORGANIZATION_WINDOW: Duration = Duration::days(1);

/// Where an invitation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvitationStatus {
    /// Waiting for an answer.
    Pending,
    /// The invitee joined.
    Accepted,
    /// The invitee declined.
    Rejected,
    /// An owner or admin withdrew it.
    Cancelled,
    /// Not answered in time.
    Expired,
}

impl InvitationStatus {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Accepted => "accepted",
            Self::Rejected => "rejected",
            Self::Cancelled => "cancelled",
            Self::Expired => "expired",
        }
    }

    /// The status an invitation has at `now`: a pending one past its expiry is expired,
    /// whatever the row says.
    pub fn of(inv: &invitation::Model, now: DateTime<Utc>) -> Self {
        match inv.status.as_str() {
            "pending" if now >= inv.expires_at => Self::Expired,
            "pending" => Self::Pending,
            "accepted" => Self::Accepted,
            "rejected" => Self::Rejected,
            "cancelled" => Self::Cancelled,
            _ => Self::Expired,
        }
    }
}

/// A parsed invitation request.
#[derive(Debug, Clone)]
pub struct InviteMember {
    /// The organization to join.
    pub organization_id: Uuid,
    /// Who is invited.
    pub email: Email,
    /// The role the invitee gets on accepting.
    pub role: OrgRole,
}

/// What the audit log records of an invitation.
pub fn audit_view(inv: &invitation::Model) -> serde_json::Value {
    serde_json::json!({
        "organizationId": inv.organization_id,
        "email": inv.email,
        "role": inv.role,
        "status": inv.status,
        "expiresAt": inv.expires_at,
    })
}

fn not_found() -> Error {
    Error::NotFound("invitation")
}

fn not_pending(status: InvitationStatus) -> Error {
    Error::InvalidTransition(format!(
        "the invitation is {}, not pending",
        status.as_str()
    ))
}

async fn email_of(db: &impl ConnectionTrait, actor: &Actor) -> Result<Option<String>, Error> {
    let found = user::Entity::find_by_id(actor.user_id)
        .one(db)
        .await?
        .ok_or(Error::Unauthenticated("authentication required"))?;
    // Registering does not prove the address: whoever signs up first with an
    // invited address must not inherit the invitation until they verify it.
    Ok(found.email_verified_at.map(|_| found.email))
}

/// An invitation addressed to the caller, who must have verified the address.
async fn addressed_to(
    db: &impl ConnectionTrait,
    actor: &Actor,
    id: Uuid,
) -> Result<invitation::Model, Error> {
    let email = email_of(db, actor).await?.ok_or(Error::Forbidden(
        "verify your email address before answering invitations",
    ))?;
    invitation::Entity::find_by_id(id)
        .filter(invitation::Column::Email.eq(email))
        .one(db)
        .await?
        .ok_or_else(not_found)
}

impl Auth {
    /// Invites an email address into an organization. Owners and admins invite;
    /// only owners invite owners.
    ///
    /// # Errors
    /// `NOT_FOUND` for non-members, `FORBIDDEN` for members (and for admins
    /// inviting an owner), `CONFLICT` on `email` when the address is a member
    /// already or has a pending invitation, `RATE_LIMITED` when the caller's
    /// hourly or the organization's daily invitation limit is used up.
    #[tracing::instrument(name = "auth.invite_member", skip_all, err(level = "debug"))]
    pub async fn invite_member(
        &self,
        db: &impl ConnectionTrait,
        actor: &Actor,
        req: InviteMember,
    ) -> Result<invitation::Model, Error> {
        let org = req.organization_id;
        lock_organization(db, org).await?;
        let me = membership(db, actor.user_id, org).await?;
        let mine = OrgRole::of(&me);
        if mine < OrgRole::Admin {
            return Err(Error::Forbidden("members cannot invite"));
        }
        if req.role == OrgRole::Owner && mine < OrgRole::Owner {
            return Err(Error::Forbidden("only owners can invite owners"));
        }
        let email = req.email.as_str();
        let already = member::Entity::find()
            .inner_join(user::Entity)
            .filter(member::Column::OrganizationId.eq(org))
            .filter(user::Column::Email.eq(email))
            .one(db)
            .await?;
        if already.is_some() {
            return Err(Error::conflict("email", "this address is a member already"));
        }
        let now = self.clock.now();
        let pending = invitation::Entity::find()
            .filter(invitation::Column::OrganizationId.eq(org))
            .filter(invitation::Column::Email.eq(email))
            .filter(invitation::Column::Status.eq(InvitationStatus::Pending.as_str()))
            .all(db)
            .await?;
        if pending
            .iter()
            .any(|inv| InvitationStatus::of(inv, now) == InvitationStatus::Pending)
        {
            return Err(Error::conflict(
                "email",
                "this address has a pending invitation",
            ));
        }
        self.within_sending_limits(db, actor.user_id, org, now)
            .await?;
        // Pending rows past their expiry are expired; say so in the table.
        invitation::Entity::update_many()
            .col_expr(
                invitation::Column::Status,
                Expr::value(InvitationStatus::Expired.as_str()),
            )
            .col_expr(invitation::Column::UpdatedAt, Expr::value(now))
            .filter(invitation::Column::Id.is_in(pending.iter().map(|inv| inv.id)))
            .exec(db)
            .await?;
        let invitation = invitation::ActiveModel {
            id: Set(new_id()),
            organization_id: Set(org),
            email: Set(email.to_owned()),
            role: Set(req.role.as_str().to_owned()),
            status: Set(InvitationStatus::Pending.as_str().to_owned()),
            inviter_id: Set(Some(actor.user_id)),
            expires_at: Set(now + self.settings.organizations.invitation_ttl),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(db)
        .await?;
        self.queue_invitation_mail(db, actor, &invitation).await?;
        Ok(invitation)
    }

    /// Refuses another invitation by `inviter` into `org` when either sending
    /// limit is used up, with the seconds until both allow one. The caller holds
    /// the organization's row lock; the inviter's is taken here, after it, so
    /// that invitations into other organizations are counted too.
    async fn within_sending_limits(
        &self,
        db: &impl ConnectionTrait,
        inviter: Uuid,
        org: Uuid,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        lock_user(db, inviter).await?;
        let limits = &self.settings.organizations;
        let by_inviter = full_until(
            db,
            (invitation::Column::InviterId, inviter),
            limits.invitations_per_inviter_per_hour,
            INVITER_WINDOW,
            now,
        )
        .await?;
        let by_organization = full_until(
            db,
            (invitation::Column::OrganizationId, org),
            limits.invitations_per_organization_per_day,
            ORGANIZATION_WINDOW,
            now,
        )
        .await?;
        match by_inviter.max(by_organization) {
            None => Ok(()),
            Some(until) => {
                let millis = (until - now).num_milliseconds().max(0).unsigned_abs();
                tracing::info!(
                    %inviter,
                    organization_id = %org,
                    "invitation over the sending limit; nothing sent"
                );
                Err(Error::RateLimited {
                    retry_after: millis.div_ceil(1000).max(1),
                })
            }
        }
    }

    /// Queues the invitation mail in the inviting transaction, so it goes out
    /// only if the invitation commits. The link carries no secret: only the
    /// signed-in user with the invited email can accept.
    async fn queue_invitation_mail(
        &self,
        db: &impl ConnectionTrait,
        actor: &Actor,
        inv: &invitation::Model,
    ) -> Result<(), Error> {
        let org = organization::Entity::find_by_id(inv.organization_id)
            .one(db)
            .await?
            .ok_or(Error::NotFound("organization"))?;
        let inviter = user::Entity::find_by_id(actor.user_id).one(db).await?;
        let by = inviter
            .map(|u| u.name.unwrap_or(u.email))
            .unwrap_or_else(|| "A member".into());
        let link = self
            .settings
            .recovery
            .public_url
            .page(&format!("invitations/{}", inv.id));
        let hours = self.settings.organizations.invitation_ttl.num_hours();
        let mail = OutgoingMail {
            to: inv.email.clone(),
            subject: format!("Join {} on the platform", org.name),
            body: format!(
                "{by} invited you to join {org} as {role}.\n\n\
                 Sign in with this address, verified, and open this link within {hours} hours \
                 to answer:\n\n{link}\n",
                org = org.name,
                role = inv.role,
            ),
            kind: INVITATION_MAIL.into(),
        };
        outbox::enqueue(db, &mail, self.clock.now()).await?;
        Ok(())
    }

    /// Moves a pending, unexpired invitation to `to`, in one conditional statement
    /// so that a concurrent answer cannot be overwritten.
    async fn answer(
        &self,
        db: &impl ConnectionTrait,
        inv: &invitation::Model,
        to: InvitationStatus,
    ) -> Result<invitation::Model, Error> {
        let now = self.clock.now();
        let done = invitation::Entity::update_many()
            .col_expr(invitation::Column::Status, Expr::value(to.as_str()))
            .col_expr(invitation::Column::UpdatedAt, Expr::value(now))
            .filter(invitation::Column::Id.eq(inv.id))
            .filter(invitation::Column::Status.eq(InvitationStatus::Pending.as_str()))
            .filter(invitation::Column::ExpiresAt.gt(now))
            .exec(db)
            .await?;
        if done.rows_affected == 0 {
            let current = invitation::Entity::find_by_id(inv.id)
                .one(db)
                .await?
                .ok_or_else(not_found)?;
            return Err(not_pending(InvitationStatus::of(&current, now)));
        }
        Ok(invitation::Model {
            status: to.as_str().to_owned(),
            updated_at: now,
            ..inv.clone()
        })
    }

    /// Accepts an invitation addressed to the caller's email: the caller joins
    /// with the invited role, if the organization is below its member limit.
    ///
    /// # Errors
    /// `NOT_FOUND` when the invitation is not addressed to the caller,
    /// `INVALID_TRANSITION` when it is not pending (or expired), `CONFLICT` when
    /// the caller is a member already, `LIMIT_EXCEEDED` when the organization is full.
    #[tracing::instrument(name = "auth.accept_invitation", skip_all, err(level = "debug"))]
    pub async fn accept_invitation(
        &self,
        db: &impl ConnectionTrait,
        actor: &Actor,
        id: Uuid,
    ) -> Result<(invitation::Model, member::Model), Error> {
        let inv = addressed_to(db, actor, id).await?;
        lock_organization(db, inv.organization_id)
            .await
            .map_err(|e| not_found_as(e, "invitation"))?;
        let inv = self.answer(db, &inv, InvitationStatus::Accepted).await?;
        if find_membership(db, actor.user_id, inv.organization_id)
            .await?
            .is_some()
        {
            return Err(Error::Conflict {
                field: None,
                message: "you are a member of this organization already".into(),
            });
        }
        let limit = self.settings.organizations.member_limit;
        if count_members(db, inv.organization_id).await? >= limit {
            return Err(Error::LimitExceeded(format!(
                "the organization has reached its limit of {limit} members"
            )));
        }
        let now = self.clock.now();
        let member = member::ActiveModel {
            id: Set(new_id()),
            organization_id: Set(inv.organization_id),
            user_id: Set(actor.user_id),
            role: Set(OrgRole::from_stored(&inv.role).as_str().to_owned()),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(db)
        .await?;
        Ok((inv, member))
    }

    /// Declines an invitation addressed to the caller's email.
    ///
    /// # Errors
    /// `NOT_FOUND` when the invitation is not addressed to the caller,
    /// `INVALID_TRANSITION` when it is not pending.
    #[tracing::instrument(name = "auth.reject_invitation", skip_all, err(level = "debug"))]
    pub async fn reject_invitation(
        &self,
        db: &impl ConnectionTrait,
        actor: &Actor,
        id: Uuid,
    ) -> Result<invitation::Model, Error> {
        let inv = addressed_to(db, actor, id).await?;
        self.answer(db, &inv, InvitationStatus::Rejected).await
    }

    /// Withdraws a pending invitation; owners and admins of its organization only.
    ///
    /// # Errors
    /// `NOT_FOUND` for non-members, `FORBIDDEN` for members,
    /// `INVALID_TRANSITION` when it is not pending.
    #[tracing::instrument(name = "auth.cancel_invitation", skip_all, err(level = "debug"))]
    pub async fn cancel_invitation(
        &self,
        db: &impl ConnectionTrait,
        actor: &Actor,
        id: Uuid,
    ) -> Result<invitation::Model, Error> {
        let inv = invitation::Entity::find_by_id(id)
            .one(db)
            .await?
            .ok_or_else(not_found)?;
        lock_organization(db, inv.organization_id)
            .await
            .map_err(|e| not_found_as(e, "invitation"))?;
        let me = membership(db, actor.user_id, inv.organization_id)
            .await
            .map_err(|e| not_found_as(e, "invitation"))?;
        if OrgRole::of(&me) < OrgRole::Admin {
            return Err(Error::Forbidden("members cannot cancel invitations"));
        }
        self.answer(db, &inv, InvitationStatus::Cancelled).await
    }

    /// An organization's invitations in every status, newest first; owners and admins only.
    ///
    /// # Errors
    /// `NOT_FOUND` for non-members, `FORBIDDEN` for members.
    #[tracing::instrument(name = "auth.list_invitations", skip_all, err(level = "debug"))]
    pub async fn list_invitations(
        &self,
        db: &impl ConnectionTrait,
        actor: &Actor,
        organization_id: Uuid,
        window: Window,
    ) -> Result<Page<invitation::Model>, Error> {
        let me = membership(db, actor.user_id, organization_id).await?;
        if OrgRole::of(&me) < OrgRole::Admin {
            return Err(Error::Forbidden(
                "only owners and admins can see invitations",
            ));
        }
        let select = invitation::Entity::find()
            .filter(invitation::Column::OrganizationId.eq(organization_id));
        kernel::page::fetch(db, select, invitation::Column::Id, |i| i.id, window).await
    }

    /// Pending, unexpired invitations addressed to the caller's email, newest first.
    ///
    /// # Errors
    /// Internal, when the database fails.
    #[tracing::instrument(name = "auth.my_invitations", skip_all, err(level = "debug"))]
    pub async fn my_invitations(
        &self,
        db: &impl ConnectionTrait,
        actor: &Actor,
        window: Window,
    ) -> Result<Page<invitation::Model>, Error> {
        // An unverified address sees no invitations (not even that there are some).
        let email = email_of(db, actor).await?;
        let verified = email.is_some();
        let select = invitation::Entity::find()
            .filter(invitation::Column::Email.eq(email.unwrap_or_default()))
            .filter(Expr::value(verified))
            .filter(invitation::Column::Status.eq(InvitationStatus::Pending.as_str()))
            .filter(invitation::Column::ExpiresAt.gt(self.clock.now()));
        kernel::page::fetch(db, select, invitation::Column::Id, |i| i.id, window).await
    }
}

/// When the invitations whose `scope` column equals the id fill `limit` within
/// `window` before `now`, the moment the next one fits: when all but
/// `limit - 1` of them have left the window. `None` when one fits now.
async fn full_until(
    db: &impl ConnectionTrait,
    scope: (invitation::Column, Uuid),
    limit: u64,
    window: Duration,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, Error> {
    let recent = invitation::Entity::find()
        .filter(scope.0.eq(scope.1))
        .filter(invitation::Column::CreatedAt.gt(now - window));
    let count = recent.clone().count(db).await?;
    if count < limit {
        return Ok(None);
    }
    let leaving = recent
        .order_by_asc(invitation::Column::CreatedAt)
        .order_by_asc(invitation::Column::Id)
        .offset(count - limit)
        .one(db)
        .await?;
    Ok(Some(leaving.map_or(now, |inv| inv.created_at + window)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn a_pending_invitation_past_its_expiry_reads_as_expired() {
        let now = Utc::now();
        let inv = invitation::Model {
            id: new_id(),
            organization_id: new_id(),
            email: "a@x.com".into(),
            role: "member".into(),
            status: "pending".into(),
            inviter_id: None,
            expires_at: now + Duration::hours(48),
            created_at: now,
            updated_at: now,
        };
        assert_eq!(InvitationStatus::of(&inv, now), InvitationStatus::Pending);
        let later = now + Duration::hours(48);
        assert_eq!(InvitationStatus::of(&inv, later), InvitationStatus::Expired);
        let rejected = invitation::Model {
            status: "rejected".into(),
            ..inv
        };
        assert_eq!(
            InvitationStatus::of(&rejected, later),
            InvitationStatus::Rejected
        );
    }
}
