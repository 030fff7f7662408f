//! Invitation sending limits: per inviter per rolling hour, per organization
//! per rolling day, counted under row locks so that concurrent invitations
//! cannot together pass them; a refusal writes no invitation and queues no mail.

mod common;

use chrono::Duration;
use common::*;
use core_auth::entity::invitation;
use core_auth::organizations::{OrgRole, OrgSettings};
use core_auth::{Auth, AuthSettings};
use kernel::actor::Actor;
use kernel::error::Code;
use kernel::mail::outbox;
use kernel::testing::TestDb;
use sea_orm::DatabaseConnection;
use std::sync::Arc;
use tokio::sync::Barrier;
use uuid::Uuid;

use OrgRole::{Admin, Member};

/// Connections in a PostgreSQL test pool: the most transactions that can be open at once.
const POOL: usize = 8;

fn limits(per_inviter_per_hour: u64, per_organization_per_day: u64) -> AuthSettings {
    AuthSettings {
        organizations: OrgSettings {
            invitations_per_inviter_per_hour: per_inviter_per_hour,
            invitations_per_organization_per_day: per_organization_per_day,
            ..Default::default()
        },
        ..Default::default()
    }
}

/// Rows in `invitations` and in `mail_outbox`.
async fn written(db: &DatabaseConnection) -> (u64, u64) {
    (
        count::<invitation::Entity>(db).await,
        count::<outbox::Entity>(db).await,
    )
}

/// Invites `n` fresh addresses `{prefix}{i}@x.com`, each of which must be accepted.
async fn invite_many(
    auth: &Auth,
    db: &DatabaseConnection,
    inviter: &Actor,
    org: Uuid,
    prefix: &str,
    n: usize,
) {
    for i in 0..n {
        invite(
            auth,
            db,
            inviter,
            org,
            &format!("{prefix}{i}@x.com"),
            Member,
        )
        .await
        .unwrap_or_else(|e| panic!("invitation {i} of {prefix}: {e}"));
    }
}

/// Asserts that an invitation is refused with `RATE_LIMITED` and `retry_after`,
/// and that the refusal wrote nothing.
async fn assert_refused(
    auth: &Auth,
    db: &DatabaseConnection,
    inviter: &Actor,
    org: Uuid,
    email: &str,
    retry: u64,
) {
    let before = written(db).await;
    let err = invite(auth, db, inviter, org, email, Member)
        .await
        .refused();
    assert_eq!(err.code(), Code::RateLimited, "{err}");
    assert_eq!(retry_after(&err), Some(retry), "{err:?}");
    assert_eq!(written(db).await, before, "a refused invitation wrote rows");
}

#[tokio::test]
async fn an_inviter_gets_20_invitations_per_rolling_hour_and_the_21st_writes_nothing() {
    let (t, auth, clock) = setup().await;
    let ada = signed_in(&auth, &t.db, "ada@x.com").await;
    let org = organization(&auth, &t.db, &ada, "acme").await;
    let before = written(&t.db).await;

    invite_many(&auth, &t.db, &ada, org, "early", 1).await;
    clock.advance(Duration::minutes(10));
    invite_many(&auth, &t.db, &ada, org, "late", 19).await;
    assert_eq!(written(&t.db).await, (before.0 + 20, before.1 + 20));

    // The first invitation leaves the window 50 minutes from now.
    assert_refused(&auth, &t.db, &ada, org, "over@x.com", 50 * 60).await;
    clock.advance(Duration::minutes(50) - Duration::seconds(1));
    assert_refused(&auth, &t.db, &ada, org, "over@x.com", 1).await;

    clock.advance(Duration::seconds(1));
    invite(&auth, &t.db, &ada, org, "over@x.com", Member)
        .await
        .expect("the hour has rolled past the first invitation");
    // The 19 later ones are still in the window, with the one just sent.
    assert_refused(&auth, &t.db, &ada, org, "next@x.com", 10 * 60).await;
}

#[tokio::test]
async fn reinviting_the_same_address_counts_every_time() {
    let (t, auth, _clock) = setup_with(limits(2, 100)).await;
    let ada = signed_in(&auth, &t.db, "ada@x.com").await;
    let org = organization(&auth, &t.db, &ada, "acme").await;
    for _ in 0..2 {
        let inv = invite(&auth, &t.db, &ada, org, "eve@x.com", Member)
            .await
            .expect("within the limit");
        in_tx(&t.db, async |tx| {
            auth.cancel_invitation(tx, &ada, inv.id).await
        })
        .await
        .expect("cancelled, so the address can be invited again");
    }
    assert_refused(&auth, &t.db, &ada, org, "eve@x.com", 3600).await;
}

#[tokio::test]
async fn the_inviter_limit_spans_every_organization_of_the_inviter() {
    let (t, auth, _clock) = setup_with(limits(3, 100)).await;
    let ada = signed_in(&auth, &t.db, "ada@x.com").await;
    let one = organization(&auth, &t.db, &ada, "one").await;
    let two = organization(&auth, &t.db, &ada, "two").await;
    invite_many(&auth, &t.db, &ada, one, "a", 2).await;
    invite_many(&auth, &t.db, &ada, two, "b", 1).await;
    assert_refused(&auth, &t.db, &ada, one, "c@x.com", 3600).await;
    assert_refused(&auth, &t.db, &ada, two, "c@x.com", 3600).await;
}

#[tokio::test]
async fn an_organization_gets_its_daily_limit_across_all_its_admins() {
    let (t, auth, clock) = setup_with(limits(20, 6)).await;
    let ada = signed_in(&auth, &t.db, "ada@x.com").await;
    let org = organization(&auth, &t.db, &ada, "acme").await;
    // Bringing the admins in spends two of the six.
    let (bob, _) = joined(&auth, &t.db, &ada, org, "bob@x.com", Admin).await;
    let (carl, _) = joined(&auth, &t.db, &ada, org, "carl@x.com", Admin).await;
    clock.advance(Duration::hours(2));
    invite_many(&auth, &t.db, &ada, org, "a", 2).await;
    invite_many(&auth, &t.db, &bob, org, "b", 1).await;
    invite_many(&auth, &t.db, &carl, org, "c", 1).await;

    // Each admin is far below the hourly limit; the organization is at six.
    // Bob's invitation, the oldest, leaves the day in 22 hours.
    let day_left = 22 * 3600;
    for who in [&ada, &bob, &carl] {
        assert_refused(&auth, &t.db, who, org, "over@x.com", day_left).await;
    }
    // Another organization of the same admin is not held back.
    let other = organization(&auth, &t.db, &carl, "other").await;
    invite(&auth, &t.db, &carl, other, "over@x.com", Member)
        .await
        .expect("the limit is per organization");

    // A day after the admins' invitations, their two slots are free again.
    clock.advance(Duration::hours(22));
    invite(&auth, &t.db, &carl, org, "over@x.com", Member)
        .await
        .expect("the day has rolled past bob's invitation");
    invite(&auth, &t.db, &bob, org, "over2@x.com", Member)
        .await
        .expect("the day has rolled past carl's invitation");
    assert_refused(&auth, &t.db, &bob, org, "next@x.com", 2 * 3600).await;
}

/// Runs `jobs` each in its own transaction, as concurrent requests would: on
/// PostgreSQL they start in groups as large as the pool and wait for each
/// other inside their transactions, so their statements interleave. SQLite
/// has one connection and runs them one after another.
async fn concurrently(
    t: &TestDb,
    auth: &Auth,
    jobs: Vec<(Actor, Uuid, String)>,
) -> Vec<Result<invitation::Model, kernel::Error>> {
    let group = if t.is_postgres() { POOL } else { 1 };
    assert_eq!(
        jobs.len() % group,
        0,
        "whole groups, or the last one waits forever"
    );
    let start = Arc::new(Barrier::new(group));
    let tasks: Vec<_> = jobs
        .into_iter()
        .map(|(who, org, email)| {
            let (auth, db, start) = (auth.clone(), t.db.clone(), start.clone());
            tokio::spawn(async move {
                let req = core_auth::invitations::InviteMember {
                    organization_id: org,
                    email: core_auth::types::Email::parse(&email).expect("valid email"),
                    role: Member,
                };
                in_tx(&db, async |tx| {
                    start.wait().await;
                    auth.invite_member(tx, &who, req).await
                })
                .await
            })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.expect("task"));
    }
    results
}

fn sent_and_refused(results: &[Result<invitation::Model, kernel::Error>]) -> (usize, usize) {
    for err in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(err.code(), Code::RateLimited, "{err}");
    }
    let sent = results.iter().filter(|r| r.is_ok()).count();
    (sent, results.len() - sent)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_invitations_by_one_inviter_into_many_organizations_stop_at_the_hourly_limit() {
    let (t, auth, _clock) = setup_with(limits(20, 100)).await;
    let ada = signed_in(&auth, &t.db, "ada@x.com").await;
    let mut jobs = Vec::new();
    // One organization per invitation: only the inviter's lock stands between them.
    for i in 0..40 {
        let org = organization(&auth, &t.db, &ada, &format!("org-{i}")).await;
        jobs.push((ada.clone(), org, format!("u{i}@x.com")));
    }
    let before = written(&t.db).await;

    let results = concurrently(&t, &auth, jobs).await;

    assert_eq!(sent_and_refused(&results), (20, 20));
    assert_eq!(written(&t.db).await, (before.0 + 20, before.1 + 20));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_invitations_by_several_admins_stop_at_the_organization_limit() {
    let (t, auth, _clock) = setup_with(limits(20, 24)).await;
    let ada = signed_in(&auth, &t.db, "ada@x.com").await;
    let org = organization(&auth, &t.db, &ada, "acme").await;
    let mut admins = vec![ada.clone()];
    for name in ["bob", "carl", "dan"] {
        let (who, _) = joined(&auth, &t.db, &ada, org, &format!("{name}@x.com"), Admin).await;
        admins.push(who);
    }
    // Three of the 24 went to the admins; 21 are left for 40 attempts.
    let jobs = (0..40)
        .map(|i| (admins[i % 4].clone(), org, format!("u{i}@x.com")))
        .collect();
    let before = written(&t.db).await;

    let results = concurrently(&t, &auth, jobs).await;

    assert_eq!(sent_and_refused(&results), (21, 19));
    assert_eq!(written(&t.db).await, (before.0 + 21, before.1 + 21));
}

#[tokio::test]
async fn after_the_limit_is_lowered_the_retry_hint_waits_until_enough_invitations_have_left() {
    let (t, auth, clock) = setup_with(limits(3, 100)).await;
    let ada = signed_in(&auth, &t.db, "ada@x.com").await;
    let org = organization(&auth, &t.db, &ada, "acme").await;
    for i in 0..3 {
        invite_many(&auth, &t.db, &ada, org, &format!("m{i}-"), 1).await;
        clock.advance(Duration::minutes(10));
    }
    // Three in the window and room for two: the oldest two must leave first,
    // and the second one does 40 minutes from now.
    let lowered = Auth::new(limits(2, 100), auth.clock.clone());
    assert_refused(&lowered, &t.db, &ada, org, "over@x.com", 40 * 60).await;
}
