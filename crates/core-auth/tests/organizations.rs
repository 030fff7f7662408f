//! Organizations: ownership, slugs, invitations, roles, the last owner, the
//! member limit and tenancy.

mod common;

use chrono::Duration;
use common::*;
use core_auth::AuthSettings;
use core_auth::entity::{invitation, member, organization};
use core_auth::invitations::InvitationStatus;
use core_auth::organizations::{
    CreateOrganization, OrgRole, OrgSettings, Slug, UpdateOrganization,
};
use kernel::actor::Actor;
use kernel::clock::Clock;
use kernel::error::Code;
use kernel::page::PageArgs;
use kernel::testing::TestDb;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter};
use std::sync::Arc;
use tokio::sync::Barrier;
use uuid::Uuid;

use OrgRole::{Admin, Member, Owner};

fn all() -> kernel::page::Window {
    PageArgs {
        first: Some(100),
        ..Default::default()
    }
    .parse()
    .unwrap()
}

async fn role_of(db: &DatabaseConnection, org: Uuid, user: Uuid) -> Option<OrgRole> {
    member::Entity::find()
        .filter(member::Column::OrganizationId.eq(org))
        .filter(member::Column::UserId.eq(user))
        .one(db)
        .await
        .unwrap()
        .map(|m| OrgRole::of(&m))
}

async fn members_of(db: &DatabaseConnection, org: Uuid) -> u64 {
    member::Entity::find()
        .filter(member::Column::OrganizationId.eq(org))
        .count(db)
        .await
        .unwrap()
}

async fn owners_of(db: &DatabaseConnection, org: Uuid) -> u64 {
    member::Entity::find()
        .filter(member::Column::OrganizationId.eq(org))
        .filter(member::Column::Role.eq("owner"))
        .count(db)
        .await
        .unwrap()
}

async fn member_row(db: &DatabaseConnection, org: Uuid, user: Uuid) -> member::Model {
    member::Entity::find()
        .filter(member::Column::OrganizationId.eq(org))
        .filter(member::Column::UserId.eq(user))
        .one(db)
        .await
        .unwrap()
        .expect("membership")
}

async fn set_role(
    auth: &core_auth::Auth,
    db: &DatabaseConnection,
    actor: &Actor,
    member_id: Uuid,
    role: OrgRole,
) -> Result<(member::Model, member::Model), kernel::Error> {
    in_tx(db, async |tx| {
        auth.update_member_role(tx, actor, member_id, role).await
    })
    .await
}

/// Holds `n` open transactions until all have started, so their statements
/// interleave. SQLite has one connection and runs them one after another, so
/// nobody waits there.
fn start_line(t: &TestDb, n: usize) -> Arc<Barrier> {
    Arc::new(Barrier::new(if t.is_postgres() { n } else { 1 }))
}

#[tokio::test]
async fn creating_an_organization_makes_the_caller_its_owner() {
    let (t, auth, _clock) = setup().await;
    let ada = signed_in(&auth, &t.db, "ada@x.com").await;
    let org = organization(&auth, &t.db, &ada, "acme").await;

    assert_eq!(role_of(&t.db, org, ada.user_id).await, Some(Owner));
    assert_eq!(members_of(&t.db, org).await, 1);
    let mine = auth.my_organizations(&t.db, &ada, all()).await.unwrap();
    assert_eq!(mine.items.len(), 1);
    assert_eq!(mine.items[0].1.organization.slug, "acme");
    assert_eq!(mine.items[0].1.role, Owner);
}

#[tokio::test]
async fn slug_is_3_to_48_lowercase_letters_digits_and_inner_hyphens() {
    for good in [
        "abc",
        "acme-inc",
        "a1-b2-c3",
        &"x".repeat(48),
        "  trimmed  ",
    ] {
        assert!(Slug::parse(good).is_ok(), "{good}");
    }
    for bad in [
        "ab",
        &"x".repeat(49),
        "Acme",
        "acme inc",
        "acme_inc",
        "-acme",
        "acme-",
        "acmé",
        "",
    ] {
        let err = Slug::parse(bad).unwrap_err();
        assert_eq!(err.code(), Code::BadUserInput, "{bad}");
        assert_eq!(field(&err), Some("slug"), "{bad}");
    }
    let err = CreateOrganization::parse("  ".into(), "acme", None).unwrap_err();
    assert_eq!(field(&err), Some("name"));
    let err = CreateOrganization::parse("Acme".into(), "acme", Some("ftp://x".into())).unwrap_err();
    assert_eq!(field(&err), Some("logo"));
}

#[tokio::test]
async fn a_taken_slug_is_a_conflict_on_slug_and_creates_nothing() {
    let (t, auth, _clock) = setup().await;
    let ada = signed_in(&auth, &t.db, "ada@x.com").await;
    let bob = signed_in(&auth, &t.db, "bob@x.com").await;
    let first = organization(&auth, &t.db, &ada, "acme").await;

    let req = CreateOrganization::parse("Other".into(), "acme", None).unwrap();
    let err = in_tx(&t.db, async |tx| {
        auth.create_organization(tx, &bob, req).await
    })
    .await
    .refused();
    assert_eq!(err.code(), Code::Conflict);
    assert_eq!(field(&err), Some("slug"));
    assert_eq!(count::<organization::Entity>(&t.db).await, 1);
    assert_eq!(count::<member::Entity>(&t.db).await, 1);

    // Renaming another organization onto the slug is refused too.
    let second = organization(&auth, &t.db, &bob, "other").await;
    let req = UpdateOrganization::parse(None, Some("acme".into()), None).unwrap();
    let err = in_tx(&t.db, async |tx| {
        auth.update_organization(tx, &bob, second, req).await
    })
    .await
    .refused();
    assert_eq!(err.code(), Code::Conflict);
    assert_eq!(field(&err), Some("slug"));
    assert_ne!(first, second);
}

#[tokio::test]
async fn members_cannot_invite() {
    let (t, auth, _clock) = setup().await;
    let ada = signed_in(&auth, &t.db, "ada@x.com").await;
    let org = organization(&auth, &t.db, &ada, "acme").await;
    let (bob, _) = joined(&auth, &t.db, &ada, org, "bob@x.com", Member).await;

    let err = invite(&auth, &t.db, &bob, org, "eve@x.com", Member)
        .await
        .refused();
    assert_eq!(err.code(), Code::Forbidden);
    let pending = invitation::Entity::find()
        .filter(invitation::Column::Email.eq("eve@x.com"))
        .count(&t.db)
        .await
        .unwrap();
    assert_eq!(pending, 0);
}

#[tokio::test]
async fn an_invitation_mails_the_invited_address_a_public_url_link_and_a_refused_one_mails_nothing()
{
    let (t, auth, _clock) = setup().await;
    let ada = signed_in(&auth, &t.db, "ada@x.com").await;
    let org = organization(&auth, &t.db, &ada, "acme").await;
    let (bob, _) = joined(&auth, &t.db, &ada, org, "bob@x.com", Member).await;
    let before = invitation_mails(&t.db).await.len();

    let inv = invite(&auth, &t.db, &ada, org, "eve@x.com", Admin)
        .await
        .expect("owners invite");
    let mails = invitation_mails(&t.db).await;
    assert_eq!(mails.len(), before + 1);
    let mail = mails.last().unwrap();
    assert_eq!(mail.recipient, "eve@x.com");
    let link = auth
        .settings
        .recovery
        .public_url
        .page(&format!("invitations/{}", inv.id));
    assert!(mail.body.contains(&link), "{}", mail.body);
    assert!(mail.body.contains("admin"), "{}", mail.body);

    // A member's invitation is refused, and its transaction queues nothing.
    invite(&auth, &t.db, &bob, org, "zed@x.com", Member)
        .await
        .refused();
    assert_eq!(invitation_mails(&t.db).await.len(), before + 1);
}

async fn invitation_mails(db: &DatabaseConnection) -> Vec<kernel::mail::outbox::Model> {
    use sea_orm::QueryOrder;
    kernel::mail::outbox::Entity::find()
        .filter(kernel::mail::outbox::Column::Kind.eq(core_auth::invitations::INVITATION_MAIL))
        .order_by_asc(kernel::mail::outbox::Column::CreatedAt)
        .order_by_asc(kernel::mail::outbox::Column::Id)
        .all(db)
        .await
        .unwrap()
}

#[tokio::test]
async fn an_unverified_address_cannot_accept_reject_or_see_its_invitation() {
    let (t, auth, _clock) = setup().await;
    let ada = signed_in(&auth, &t.db, "ada@x.com").await;
    let org = organization(&auth, &t.db, &ada, "acme").await;
    let inv = invite(&auth, &t.db, &ada, org, "new@x.com", Admin)
        .await
        .expect("owners invite");
    // Someone registers the invited address first, without proving it.
    let squatter = actor(&auth, &t.db, &user(&auth, &t.db, "new@x.com").await).await;

    let listed = auth.my_invitations(&t.db, &squatter, all()).await.unwrap();
    assert!(listed.items.is_empty(), "unverified sees nothing");
    for answer in ["accept", "reject"] {
        let err = in_tx(&t.db, async |tx| match answer {
            "accept" => auth
                .accept_invitation(tx, &squatter, inv.id)
                .await
                .map(|_| ()),
            _ => auth
                .reject_invitation(tx, &squatter, inv.id)
                .await
                .map(|_| ()),
        })
        .await
        .expect_err("unverified address is refused");
        assert_eq!(err.code(), Code::Forbidden, "{answer}");
    }
    assert_eq!(members_of(&t.db, org).await, 1);

    // Once verified, the same user answers it.
    mark_verified(&t.db, squatter.user_id).await;
    let listed = auth.my_invitations(&t.db, &squatter, all()).await.unwrap();
    assert_eq!(listed.items.len(), 1);
    in_tx(&t.db, async |tx| {
        auth.accept_invitation(tx, &squatter, inv.id).await
    })
    .await
    .expect("verified address accepts");
    assert_eq!(role_of(&t.db, org, squatter.user_id).await, Some(Admin));
}

#[tokio::test]
async fn admins_invite_members_and_admins_but_not_owners() {
    let (t, auth, _clock) = setup().await;
    let ada = signed_in(&auth, &t.db, "ada@x.com").await;
    let org = organization(&auth, &t.db, &ada, "acme").await;
    let (bob, _) = joined(&auth, &t.db, &ada, org, "bob@x.com", Admin).await;

    invite(&auth, &t.db, &bob, org, "m@x.com", Member)
        .await
        .expect("admins invite members");
    invite(&auth, &t.db, &bob, org, "a@x.com", Admin)
        .await
        .expect("admins invite admins");
    let err = invite(&auth, &t.db, &bob, org, "o@x.com", Owner)
        .await
        .refused();
    assert_eq!(err.code(), Code::Forbidden);
    invite(&auth, &t.db, &ada, org, "o@x.com", Owner)
        .await
        .expect("owners invite owners");
}

#[tokio::test]
async fn inviting_a_member_or_an_address_with_a_pending_invitation_is_a_conflict() {
    let (t, auth, clock) = setup().await;
    let ada = signed_in(&auth, &t.db, "ada@x.com").await;
    let org = organization(&auth, &t.db, &ada, "acme").await;
    joined(&auth, &t.db, &ada, org, "bob@x.com", Member).await;

    let err = invite(&auth, &t.db, &ada, org, "BOB@x.com", Member)
        .await
        .refused();
    assert_eq!(err.code(), Code::Conflict);
    assert_eq!(field(&err), Some("email"));

    let first = invite(&auth, &t.db, &ada, org, "eve@x.com", Member)
        .await
        .unwrap();
    let err = invite(&auth, &t.db, &ada, org, "eve@x.com", Admin)
        .await
        .refused();
    assert_eq!(err.code(), Code::Conflict);
    assert_eq!(field(&err), Some("email"));

    // Once the first has expired, the address can be invited again.
    clock.advance(Duration::hours(48));
    invite(&auth, &t.db, &ada, org, "eve@x.com", Admin)
        .await
        .expect("an expired invitation does not block a new one");
    let old = invitation::Entity::find_by_id(first.id)
        .one(&t.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(old.status, "expired");
}

#[tokio::test]
async fn only_the_invited_emails_user_can_accept_others_get_not_found() {
    let (t, auth, _clock) = setup().await;
    let ada = signed_in(&auth, &t.db, "ada@x.com").await;
    let bob = signed_in(&auth, &t.db, "bob@x.com").await;
    let eve = signed_in(&auth, &t.db, "eve@x.com").await;
    let org = organization(&auth, &t.db, &ada, "acme").await;
    let inv = invite(&auth, &t.db, &ada, org, "bob@x.com", Member)
        .await
        .unwrap();

    for other in [&eve, &ada] {
        let err = in_tx(&t.db, async |tx| {
            auth.accept_invitation(tx, other, inv.id).await
        })
        .await
        .refused();
        assert_eq!(err.code(), Code::NotFound);
        let err = in_tx(&t.db, async |tx| {
            auth.reject_invitation(tx, other, inv.id).await
        })
        .await
        .refused();
        assert_eq!(err.code(), Code::NotFound);
    }
    assert_eq!(role_of(&t.db, org, eve.user_id).await, None);
    assert!(
        auth.my_invitations(&t.db, &eve, all())
            .await
            .unwrap()
            .items
            .is_empty()
    );

    in_tx(&t.db, async |tx| {
        auth.accept_invitation(tx, &bob, inv.id).await
    })
    .await
    .expect("the invitee accepts");
    assert_eq!(role_of(&t.db, org, bob.user_id).await, Some(Member));
}

#[tokio::test]
async fn accepting_applies_the_invited_role_and_marks_the_invitation_accepted() {
    let (t, auth, clock) = setup().await;
    let ada = signed_in(&auth, &t.db, "ada@x.com").await;
    let bob = signed_in(&auth, &t.db, "bob@x.com").await;
    let org = organization(&auth, &t.db, &ada, "acme").await;
    let inv = invite(&auth, &t.db, &ada, org, "bob@x.com", Admin)
        .await
        .unwrap();
    assert_eq!(inv.expires_at - inv.created_at, Duration::hours(48));

    let (accepted, member) = in_tx(&t.db, async |tx| {
        auth.accept_invitation(tx, &bob, inv.id).await
    })
    .await
    .unwrap();
    assert_eq!(OrgRole::of(&member), Admin);
    assert_eq!(role_of(&t.db, org, bob.user_id).await, Some(Admin));
    assert_eq!(
        InvitationStatus::of(&accepted, clock.now()),
        InvitationStatus::Accepted
    );
    let stored = invitation::Entity::find_by_id(inv.id)
        .one(&t.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, "accepted");

    // A second answer is a refused transition and changes nothing.
    let err = in_tx(&t.db, async |tx| {
        auth.accept_invitation(tx, &bob, inv.id).await
    })
    .await
    .refused();
    assert_eq!(err.code(), Code::InvalidTransition);
    assert_eq!(members_of(&t.db, org).await, 2);
}

#[tokio::test]
async fn expired_invitation_cannot_be_accepted() {
    let (t, auth, clock) = setup().await;
    let ada = signed_in(&auth, &t.db, "ada@x.com").await;
    let bob = signed_in(&auth, &t.db, "bob@x.com").await;
    let org = organization(&auth, &t.db, &ada, "acme").await;
    let inv = invite(&auth, &t.db, &ada, org, "bob@x.com", Member)
        .await
        .unwrap();

    clock.advance(Duration::hours(48) + Duration::seconds(1));
    let err = in_tx(&t.db, async |tx| {
        auth.accept_invitation(tx, &bob, inv.id).await
    })
    .await
    .refused();
    assert_eq!(err.code(), Code::InvalidTransition);
    assert_eq!(role_of(&t.db, org, bob.user_id).await, None);
    // The row still says pending; it reads as expired by time.
    let stored = invitation::Entity::find_by_id(inv.id)
        .one(&t.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, "pending");
    assert_eq!(
        InvitationStatus::of(&stored, clock.now()),
        InvitationStatus::Expired
    );
    assert!(
        auth.my_invitations(&t.db, &bob, all())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn rejected_or_cancelled_invitations_cannot_be_accepted() {
    let (t, auth, _clock) = setup().await;
    let ada = signed_in(&auth, &t.db, "ada@x.com").await;
    let bob = signed_in(&auth, &t.db, "bob@x.com").await;
    let org = organization(&auth, &t.db, &ada, "acme").await;

    let inv = invite(&auth, &t.db, &ada, org, "bob@x.com", Member)
        .await
        .unwrap();
    let rejected = in_tx(&t.db, async |tx| {
        auth.reject_invitation(tx, &bob, inv.id).await
    })
    .await
    .unwrap();
    assert_eq!(rejected.status, "rejected");
    let err = in_tx(&t.db, async |tx| {
        auth.accept_invitation(tx, &bob, inv.id).await
    })
    .await
    .refused();
    assert_eq!(err.code(), Code::InvalidTransition);

    let inv = invite(&auth, &t.db, &ada, org, "bob@x.com", Member)
        .await
        .unwrap();
    let cancelled = in_tx(&t.db, async |tx| {
        auth.cancel_invitation(tx, &ada, inv.id).await
    })
    .await
    .unwrap();
    assert_eq!(cancelled.status, "cancelled");
    let err = in_tx(&t.db, async |tx| {
        auth.accept_invitation(tx, &bob, inv.id).await
    })
    .await
    .refused();
    assert_eq!(err.code(), Code::InvalidTransition);
    assert_eq!(role_of(&t.db, org, bob.user_id).await, None);
}

#[tokio::test]
async fn members_cannot_cancel_invitations_or_list_them() {
    let (t, auth, _clock) = setup().await;
    let ada = signed_in(&auth, &t.db, "ada@x.com").await;
    let org = organization(&auth, &t.db, &ada, "acme").await;
    let (bob, _) = joined(&auth, &t.db, &ada, org, "bob@x.com", Member).await;
    let inv = invite(&auth, &t.db, &ada, org, "eve@x.com", Member)
        .await
        .unwrap();

    let err = in_tx(&t.db, async |tx| {
        auth.cancel_invitation(tx, &bob, inv.id).await
    })
    .await
    .refused();
    assert_eq!(err.code(), Code::Forbidden);
    let err = auth
        .list_invitations(&t.db, &bob, org, all())
        .await
        .refused();
    assert_eq!(err.code(), Code::Forbidden);
    let listed = auth
        .list_invitations(&t.db, &ada, org, all())
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 2, "bob's accepted one and eve's");
    let stored = invitation::Entity::find_by_id(inv.id)
        .one(&t.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, "pending");
}

#[tokio::test]
async fn members_cannot_change_roles_or_remove_members() {
    let (t, auth, _clock) = setup().await;
    let ada = signed_in(&auth, &t.db, "ada@x.com").await;
    let org = organization(&auth, &t.db, &ada, "acme").await;
    let (bob, _) = joined(&auth, &t.db, &ada, org, "bob@x.com", Member).await;
    let (_, carl) = joined(&auth, &t.db, &ada, org, "carl@x.com", Member).await;

    let err = set_role(&auth, &t.db, &bob, carl.id, Admin).await.refused();
    assert_eq!(err.code(), Code::Forbidden);
    let err = in_tx(&t.db, async |tx| {
        auth.remove_member(tx, &bob, carl.id).await
    })
    .await
    .refused();
    assert_eq!(err.code(), Code::Forbidden);
    assert_eq!(members_of(&t.db, org).await, 3);
    assert_eq!(role_of(&t.db, org, carl.user_id).await, Some(Member));
}

#[tokio::test]
async fn admins_cannot_touch_owners_or_make_owners() {
    let (t, auth, _clock) = setup().await;
    let ada = signed_in(&auth, &t.db, "ada@x.com").await;
    let org = organization(&auth, &t.db, &ada, "acme").await;
    let (bob, _) = joined(&auth, &t.db, &ada, org, "bob@x.com", Admin).await;
    let (_, carl) = joined(&auth, &t.db, &ada, org, "carl@x.com", Member).await;
    let owner = member_row(&t.db, org, ada.user_id).await;

    let err = set_role(&auth, &t.db, &bob, owner.id, Member)
        .await
        .refused();
    assert_eq!(err.code(), Code::Forbidden);
    let err = in_tx(&t.db, async |tx| {
        auth.remove_member(tx, &bob, owner.id).await
    })
    .await
    .refused();
    assert_eq!(err.code(), Code::Forbidden);
    let err = set_role(&auth, &t.db, &bob, carl.id, Owner).await.refused();
    assert_eq!(err.code(), Code::Forbidden);
    assert_eq!(role_of(&t.db, org, ada.user_id).await, Some(Owner));
    assert_eq!(role_of(&t.db, org, carl.user_id).await, Some(Member));

    // What admins may do: manage members.
    set_role(&auth, &t.db, &bob, carl.id, Admin)
        .await
        .expect("admins promote members to admin");
    in_tx(&t.db, async |tx| {
        auth.remove_member(tx, &bob, carl.id).await
    })
    .await
    .expect("admins remove admins and members");
    assert_eq!(role_of(&t.db, org, carl.user_id).await, None);
}

#[tokio::test]
async fn only_owners_make_owners() {
    let (t, auth, _clock) = setup().await;
    let ada = signed_in(&auth, &t.db, "ada@x.com").await;
    let org = organization(&auth, &t.db, &ada, "acme").await;
    let (_, carl) = joined(&auth, &t.db, &ada, org, "carl@x.com", Member).await;

    set_role(&auth, &t.db, &ada, carl.id, Owner)
        .await
        .expect("an owner makes an owner");
    assert_eq!(role_of(&t.db, org, carl.user_id).await, Some(Owner));
    assert_eq!(owners_of(&t.db, org).await, 2);
}

#[tokio::test]
async fn last_owner_cannot_leave_or_be_demoted() {
    let (t, auth, _clock) = setup().await;
    let ada = signed_in(&auth, &t.db, "ada@x.com").await;
    let org = organization(&auth, &t.db, &ada, "acme").await;
    let owner = member_row(&t.db, org, ada.user_id).await;

    let err = in_tx(&t.db, async |tx| {
        auth.leave_organization(tx, &ada, org).await
    })
    .await
    .refused();
    assert_eq!(err.code(), Code::Conflict);
    let err = set_role(&auth, &t.db, &ada, owner.id, Admin)
        .await
        .refused();
    assert_eq!(err.code(), Code::Conflict);
    assert_eq!(field(&err), Some("role"));
    let err = in_tx(&t.db, async |tx| {
        auth.remove_member(tx, &ada, owner.id).await
    })
    .await
    .refused();
    assert_eq!(err.code(), Code::Conflict);
    assert_eq!(role_of(&t.db, org, ada.user_id).await, Some(Owner));

    // With a second owner, the first may step down or leave.
    let (bob, bob_row) = joined(&auth, &t.db, &ada, org, "bob@x.com", Owner).await;
    set_role(&auth, &t.db, &ada, owner.id, Admin)
        .await
        .expect("demoted while another owner remains");
    in_tx(&t.db, async |tx| {
        auth.leave_organization(tx, &ada, org).await
    })
    .await
    .expect("a non-owner leaves");
    assert_eq!(role_of(&t.db, org, ada.user_id).await, None);
    let err = set_role(&auth, &t.db, &bob, bob_row.id, Member)
        .await
        .refused();
    assert_eq!(err.code(), Code::Conflict);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn last_owner_rule_holds_under_concurrent_leaves_and_demotions() {
    let (t, auth, _clock) = setup().await;
    let ada = signed_in(&auth, &t.db, "ada@x.com").await;
    let org = organization(&auth, &t.db, &ada, "acme").await;
    let (bob, bob_row) = joined(&auth, &t.db, &ada, org, "bob@x.com", Owner).await;
    let ada_row = member_row(&t.db, org, ada.user_id).await;

    // Both owners leave at once: exactly one may go.
    let start = start_line(&t, 2);
    let leave = |who: Actor| {
        let (auth, db, start) = (auth.clone(), t.db.clone(), start.clone());
        tokio::spawn(async move {
            in_tx(&db, async |tx| {
                start.wait().await;
                auth.leave_organization(tx, &who, org).await
            })
            .await
        })
    };
    let (a, b) = tokio::join!(leave(ada.clone()), leave(bob.clone()));
    let ok = [a.unwrap().is_ok(), b.unwrap().is_ok()];
    assert_eq!(ok.iter().filter(|x| **x).count(), 1, "{ok:?}");
    assert_eq!(owners_of(&t.db, org).await, 1);

    // With a second owner again, each demotes the other at once.
    let stayed = if ok[0] { &bob } else { &ada };
    let stayed_row = if ok[0] { &bob_row } else { &ada_row };
    let (carl, carl_row) = joined(&auth, &t.db, stayed, org, "carl@x.com", Owner).await;
    let start = start_line(&t, 2);
    let demote = |who: Actor, target: Uuid| {
        let (auth, db, start) = (auth.clone(), t.db.clone(), start.clone());
        tokio::spawn(async move {
            in_tx(&db, async |tx| {
                start.wait().await;
                auth.update_member_role(tx, &who, target, Member).await
            })
            .await
        })
    };
    let (a, b) = tokio::join!(
        demote(stayed.clone(), carl_row.id),
        demote(carl.clone(), stayed_row.id)
    );
    let ok = [a.unwrap().is_ok(), b.unwrap().is_ok()];
    assert_eq!(ok.iter().filter(|x| **x).count(), 1, "{ok:?}");
    assert_eq!(owners_of(&t.db, org).await, 1);
}

#[tokio::test]
async fn member_limit_refuses_an_accept_when_the_organization_is_full() {
    let settings = AuthSettings {
        organizations: OrgSettings {
            member_limit: 2,
            ..Default::default()
        },
        ..Default::default()
    };
    let (t, auth, _clock) = setup_with(settings).await;
    let ada = signed_in(&auth, &t.db, "ada@x.com").await;
    let carl = signed_in(&auth, &t.db, "carl@x.com").await;
    let org = organization(&auth, &t.db, &ada, "acme").await;
    let inv = invite(&auth, &t.db, &ada, org, "carl@x.com", Member)
        .await
        .unwrap();
    joined(&auth, &t.db, &ada, org, "bob@x.com", Member).await;

    let err = in_tx(&t.db, async |tx| {
        auth.accept_invitation(tx, &carl, inv.id).await
    })
    .await
    .refused();
    assert_eq!(err.code(), Code::LimitExceeded);
    assert_eq!(members_of(&t.db, org).await, 2);
    let stored = invitation::Entity::find_by_id(inv.id)
        .one(&t.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, "pending", "the refusal changed nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_accepts_never_exceed_the_member_limit() {
    let settings = AuthSettings {
        organizations: OrgSettings {
            member_limit: 3,
            ..Default::default()
        },
        ..Default::default()
    };
    let (t, auth, _clock) = setup_with(settings).await;
    let ada = signed_in(&auth, &t.db, "ada@x.com").await;
    let org = organization(&auth, &t.db, &ada, "acme").await;
    let mut invitees = Vec::new();
    for i in 0..6 {
        let email = format!("u{i}@x.com");
        let who = signed_in(&auth, &t.db, &email).await;
        let inv = invite(&auth, &t.db, &ada, org, &email, Member)
            .await
            .unwrap();
        invitees.push((who, inv.id));
    }

    let start = start_line(&t, invitees.len());
    let tasks: Vec<_> = invitees
        .into_iter()
        .map(|(who, id)| {
            let (auth, db) = (auth.clone(), t.db.clone());
            let start = start.clone();
            tokio::spawn(async move {
                in_tx(&db, async |tx| {
                    start.wait().await;
                    auth.accept_invitation(tx, &who, id).await
                })
                .await
            })
        })
        .collect();
    let mut accepted = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => accepted += 1,
            Err(e) => assert_eq!(e.code(), Code::LimitExceeded, "{e}"),
        }
    }
    assert_eq!(accepted, 2);
    assert_eq!(members_of(&t.db, org).await, 3);
}

#[tokio::test]
async fn outsiders_get_not_found_for_an_organization_its_members_and_invitations() {
    let (t, auth, _clock) = setup().await;
    let ada = signed_in(&auth, &t.db, "ada@x.com").await;
    let eve = signed_in(&auth, &t.db, "eve@x.com").await;
    let org = organization(&auth, &t.db, &ada, "acme").await;
    let (_, bob) = joined(&auth, &t.db, &ada, org, "bob@x.com", Member).await;
    let inv = invite(&auth, &t.db, &ada, org, "carl@x.com", Member)
        .await
        .unwrap();

    let not_found = |err: kernel::Error| assert_eq!(err.code(), Code::NotFound, "{err}");
    not_found(auth.organization(&t.db, &eve, org).await.refused());
    not_found(auth.list_members(&t.db, &eve, org, all()).await.refused());
    not_found(
        auth.list_invitations(&t.db, &eve, org, all())
            .await
            .refused(),
    );
    not_found(
        in_tx(&t.db, async |tx| {
            auth.cancel_invitation(tx, &eve, inv.id).await
        })
        .await
        .refused(),
    );
    not_found(
        in_tx(&t.db, async |tx| {
            auth.accept_invitation(tx, &eve, inv.id).await
        })
        .await
        .refused(),
    );
    not_found(
        invite(&auth, &t.db, &eve, org, "x@x.com", Member)
            .await
            .refused(),
    );
    not_found(set_role(&auth, &t.db, &eve, bob.id, Admin).await.refused());
    not_found(
        in_tx(&t.db, async |tx| auth.remove_member(tx, &eve, bob.id).await)
            .await
            .refused(),
    );
    not_found(
        in_tx(&t.db, async |tx| {
            auth.leave_organization(tx, &eve, org).await
        })
        .await
        .refused(),
    );
    let req = UpdateOrganization::parse(Some("Mine".into()), None, None).unwrap();
    not_found(
        in_tx(&t.db, async |tx| {
            auth.update_organization(tx, &eve, org, req).await
        })
        .await
        .refused(),
    );
    not_found(
        in_tx(&t.db, async |tx| {
            auth.delete_organization(tx, &eve, org).await
        })
        .await
        .refused(),
    );
    assert_eq!(members_of(&t.db, org).await, 2);
    assert!(
        auth.my_organizations(&t.db, &eve, all())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn my_invitations_lists_only_pending_unexpired_invitations_for_my_email() {
    let (t, auth, clock) = setup().await;
    let ada = signed_in(&auth, &t.db, "ada@x.com").await;
    let bob = signed_in(&auth, &t.db, "bob@x.com").await;
    let one = organization(&auth, &t.db, &ada, "one").await;
    let two = organization(&auth, &t.db, &ada, "two").await;
    let three = organization(&auth, &t.db, &ada, "three").await;
    let early = invite(&auth, &t.db, &ada, one, "bob@x.com", Member)
        .await
        .unwrap();
    clock.advance(Duration::hours(24));
    let live = invite(&auth, &t.db, &ada, two, "bob@x.com", Admin)
        .await
        .unwrap();
    let declined = invite(&auth, &t.db, &ada, three, "bob@x.com", Member)
        .await
        .unwrap();
    invite(&auth, &t.db, &ada, three, "carl@x.com", Member)
        .await
        .unwrap();
    in_tx(&t.db, async |tx| {
        auth.reject_invitation(tx, &bob, declined.id).await
    })
    .await
    .unwrap();

    let ids = |page: kernel::page::Page<invitation::Model>| {
        page.items.into_iter().map(|(id, _)| id).collect::<Vec<_>>()
    };
    let mine = auth.my_invitations(&t.db, &bob, all()).await.unwrap();
    assert_eq!(ids(mine), vec![live.id, early.id]);
    clock.advance(Duration::hours(24));
    let mine = auth.my_invitations(&t.db, &bob, all()).await.unwrap();
    assert_eq!(ids(mine), vec![live.id], "the first has expired");
}

#[tokio::test]
async fn only_owners_delete_an_organization_and_its_rows_go_with_it() {
    let (t, auth, _clock) = setup().await;
    let ada = signed_in(&auth, &t.db, "ada@x.com").await;
    let org = organization(&auth, &t.db, &ada, "acme").await;
    let (bob, _) = joined(&auth, &t.db, &ada, org, "bob@x.com", Admin).await;
    invite(&auth, &t.db, &ada, org, "carl@x.com", Member)
        .await
        .unwrap();

    let err = in_tx(&t.db, async |tx| {
        auth.delete_organization(tx, &bob, org).await
    })
    .await
    .refused();
    assert_eq!(err.code(), Code::Forbidden);
    assert_eq!(count::<organization::Entity>(&t.db).await, 1);

    in_tx(&t.db, async |tx| {
        auth.delete_organization(tx, &ada, org).await
    })
    .await
    .unwrap();
    assert_eq!(count::<organization::Entity>(&t.db).await, 0);
    assert_eq!(count::<member::Entity>(&t.db).await, 0);
    assert_eq!(count::<invitation::Entity>(&t.db).await, 0);
}

#[tokio::test]
async fn owners_and_admins_update_the_organization_members_cannot() {
    let (t, auth, _clock) = setup().await;
    let ada = signed_in(&auth, &t.db, "ada@x.com").await;
    let org = organization(&auth, &t.db, &ada, "acme").await;
    let (bob, _) = joined(&auth, &t.db, &ada, org, "bob@x.com", Admin).await;
    let (carl, _) = joined(&auth, &t.db, &ada, org, "carl@x.com", Member).await;

    let req = UpdateOrganization::parse(Some("Nope".into()), None, None).unwrap();
    let err = in_tx(&t.db, async |tx| {
        auth.update_organization(tx, &carl, org, req).await
    })
    .await
    .refused();
    assert_eq!(err.code(), Code::Forbidden);

    let req = UpdateOrganization::parse(
        Some("Acme Inc".into()),
        Some("acme-inc".into()),
        Some(Some("https://acme.test/logo.png".into())),
    )
    .unwrap();
    let (old, new, role) = in_tx(&t.db, async |tx| {
        auth.update_organization(tx, &bob, org, req).await
    })
    .await
    .unwrap();
    assert_eq!((old.slug.as_str(), new.slug.as_str()), ("acme", "acme-inc"));
    assert_eq!(role, Admin);
    let stored = auth.organization(&t.db, &carl, org).await.unwrap();
    assert_eq!(stored.organization.name, "Acme Inc");
    assert_eq!(stored.role, Member);
}
