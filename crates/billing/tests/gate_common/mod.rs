//! Fixtures for the usage-gate tests and benchmark: a fresh database, billing
//! on a manual clock, users, tiers, subscriptions and packs written directly.
#![allow(dead_code)]

use async_graphql::{EmptySubscription, MergedObject, Schema};
use billing::Billing;
use billing::graphql::usage::{UsageMutation, UsageQuery};
use chrono::{DateTime, Duration, Utc};
use kernel::actor::{Actor, Credential, Role};
use kernel::clock::{Clock, ManualClock, SharedClock};
use kernel::db::raw;
use kernel::testing::TestDb;
use sea_orm::{ConnectionTrait, Value};
use std::sync::Arc;
use uuid::Uuid;

/// A fresh database and billing services on a manual clock.
pub struct Fixture {
    pub t: TestDb,
    pub billing: Billing,
    pub clock: Arc<ManualClock>,
}

/// The subscription columns the gate moves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sub {
    pub status: String,
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    pub used: i64,
    pub running_agents: i64,
}

/// One period's usage record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub executions_used: i64,
    pub additional_executions_used: i64,
    pub overage_executions: i64,
    pub overage_charged_cents: i64,
    pub peak_concurrent_agents: i64,
    pub closed: bool,
}

#[derive(MergedObject, Default)]
struct Q(UsageQuery);
#[derive(MergedObject, Default)]
struct M(UsageMutation);

impl Fixture {
    pub async fn new() -> Self {
        let t = TestDb::new::<migration::Migrator>().await;
        let clock = ManualClock::new();
        let shared: SharedClock = clock.clone();
        Self {
            t,
            billing: Billing::local(shared),
            clock,
        }
    }

    pub async fn exec(&self, sql: &str, values: Vec<Value>) {
        let backend = self.t.db.get_database_backend();
        self.t
            .db
            .execute_raw(raw(backend, sql, values))
            .await
            .expect(sql);
    }

    /// A user row and an actor for it (the gate never looks at sessions).
    pub async fn user(&self, email: &str) -> Actor {
        let id = Uuid::now_v7();
        let now = self.clock.now();
        self.exec(
            "INSERT INTO users (id, email, login_method, role, onboarding_completed, created_at, \
             updated_at, last_signed_in) VALUES (?, ?, 'email', 'user', false, ?, ?, ?)",
            vec![id.into(), email.into(), now.into(), now.into(), now.into()],
        )
        .await;
        Actor {
            user_id: id,
            role: Role::User,
            credential: Credential::Session {
                session_id: Uuid::now_v7(),
            },
        }
    }

    /// A user subscribed to `tier` monthly, in a period that started an hour ago.
    pub async fn subscribed_user(&self, email: &str, tier: Uuid) -> Actor {
        let actor = self.user(email).await;
        let start = self.clock.now() - Duration::hours(1);
        let end = billing::rollover::period_end(start, "monthly");
        self.insert_subscription(actor.user_id, tier, start, end)
            .await;
        actor
    }

    /// A tier with this many executions per period, this concurrent-agent cap,
    /// and overage at this price per execution when `Some`.
    pub async fn tier(&self, executions: i32, concurrent: i32, overage_cents: Option<i64>) -> Uuid {
        let id = Uuid::now_v7();
        let now = self.clock.now();
        self.exec(
            "INSERT INTO subscription_tiers (id, slug, name, monthly_price_cents, setup_fee_cents, \
             max_agents, max_concurrent_agents, monthly_execution_limit, features, \
             allowed_strategies, overage_enabled, overage_price_cents, created_at, updated_at) \
             VALUES (?, ?, 'Test tier', 10000, 0, 50, ?, ?, ?, ?, ?, ?, ?, ?)",
            vec![
                id.into(),
                format!("t-{}", id.simple()).into(),
                concurrent.into(),
                executions.into(),
                serde_json::json!({}).into(),
                serde_json::json!(["auto"]).into(),
                overage_cents.is_some().into(),
                overage_cents.into(),
                now.into(),
                now.into(),
            ],
        )
        .await;
        id
    }

    pub async fn insert_subscription(
        &self,
        user_id: Uuid,
        tier: Uuid,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Uuid {
        let id = Uuid::now_v7();
        let now = self.clock.now();
        self.exec(
            "INSERT INTO user_subscriptions (id, user_id, tier_id, status, payment_frequency, \
             current_period_start, current_period_end, created_at, updated_at) \
             VALUES (?, ?, ?, 'active', 'monthly', ?, ?, ?, ?)",
            vec![
                id.into(),
                user_id.into(),
                tier.into(),
                start.into(),
                end.into(),
                now.into(),
                now.into(),
            ],
        )
        .await;
        id
    }

    /// A purchased pack with `remaining` executions (`None`: unlimited).
    pub async fn pack(
        &self,
        user_id: Uuid,
        remaining: Option<i32>,
        expires_at: Option<DateTime<Utc>>,
    ) -> Uuid {
        // The seeded "boost-50" pack.
        let pack_id = Uuid::from_u128(0x019ac8a0_0000_7000_8000_000000000011);
        let id = Uuid::now_v7();
        let now = self.clock.now();
        let seq = (id.as_u128() & 0x7fff_ffff) as i32;
        self.exec(
            "INSERT INTO user_execution_packs (id, user_id, pack_id, executions_included, \
             executions_remaining, purchased_at, expires_at, price_paid_cents, status, \
             purchase_month, purchase_seq) VALUES (?, ?, ?, ?, ?, ?, ?, 4900, 'active', ?, ?)",
            vec![
                id.into(),
                user_id.into(),
                pack_id.into(),
                remaining.into(),
                remaining.into(),
                now.into(),
                expires_at.into(),
                now.format("%Y-%m").to_string().into(),
                seq.into(),
            ],
        )
        .await;
        id
    }

    pub async fn subscription(&self, user_id: Uuid) -> Sub {
        let backend = self.t.db.get_database_backend();
        let row = self
            .t
            .db
            .query_one_raw(raw(
                backend,
                "SELECT status, current_period_start, current_period_end, \
                 executions_used_this_period, running_agents FROM user_subscriptions \
                 WHERE user_id = ?",
                vec![user_id.into()],
            ))
            .await
            .unwrap()
            .expect("a subscription");
        Sub {
            status: row.try_get("", "status").unwrap(),
            period_start: row.try_get("", "current_period_start").unwrap(),
            period_end: row.try_get("", "current_period_end").unwrap(),
            used: i64::from(
                row.try_get::<i32>("", "executions_used_this_period")
                    .unwrap(),
            ),
            running_agents: i64::from(row.try_get::<i32>("", "running_agents").unwrap()),
        }
    }

    /// The usage record of the subscription's current period.
    pub async fn record(&self, user_id: Uuid) -> Record {
        let start = self.subscription(user_id).await.period_start;
        self.record_at(user_id, start).await
    }

    pub async fn record_at(&self, user_id: Uuid, period_start: DateTime<Utc>) -> Record {
        let backend = self.t.db.get_database_backend();
        let row = self
            .t
            .db
            .query_one_raw(raw(
                backend,
                "SELECT executions_used, additional_executions_used, overage_executions, \
                 overage_charged_cents, peak_concurrent_agents, closed_at \
                 FROM subscription_usage_records WHERE user_id = ? AND period_start = ?",
                vec![user_id.into(), period_start.into()],
            ))
            .await
            .unwrap()
            .expect("a usage record for the period");
        let int = |c: &str| i64::from(row.try_get::<i32>("", c).unwrap());
        Record {
            executions_used: int("executions_used"),
            additional_executions_used: int("additional_executions_used"),
            overage_executions: int("overage_executions"),
            overage_charged_cents: row.try_get("", "overage_charged_cents").unwrap(),
            peak_concurrent_agents: int("peak_concurrent_agents"),
            closed: row
                .try_get::<Option<DateTime<Utc>>>("", "closed_at")
                .unwrap()
                .is_some(),
        }
    }

    /// The renewal invoice the period job wrote on the period's usage record.
    pub async fn renewal(&self, user_id: Uuid, period_start: DateTime<Utc>) -> serde_json::Value {
        let backend = self.t.db.get_database_backend();
        let row = self
            .t
            .db
            .query_one_raw(raw(
                backend,
                "SELECT metadata FROM subscription_usage_records \
                 WHERE user_id = ? AND period_start = ?",
                vec![user_id.into(), period_start.into()],
            ))
            .await
            .unwrap()
            .expect("a usage record for the period");
        let metadata: Option<serde_json::Value> = row.try_get("", "metadata").unwrap();
        metadata.expect("renewal metadata")["renewal"].clone()
    }

    pub async fn count_reservations(&self, user_id: Uuid, status: &str) -> i64 {
        let backend = self.t.db.get_database_backend();
        let row = self
            .t
            .db
            .query_one_raw(raw(
                backend,
                "SELECT COUNT(*) AS n FROM usage_reservations WHERE user_id = ? AND status = ?",
                vec![user_id.into(), status.into()],
            ))
            .await
            .unwrap()
            .unwrap();
        row.try_get("", "n").unwrap()
    }

    pub async fn pack_state(&self, id: Uuid) -> (Option<i64>, String) {
        let backend = self.t.db.get_database_backend();
        let row = self
            .t
            .db
            .query_one_raw(raw(
                backend,
                "SELECT executions_remaining, status FROM user_execution_packs WHERE id = ?",
                vec![id.into()],
            ))
            .await
            .unwrap()
            .unwrap();
        (
            row.try_get::<Option<i32>>("", "executions_remaining")
                .unwrap()
                .map(i64::from),
            row.try_get("", "status").unwrap(),
        )
    }

    pub async fn set_status(&self, user_id: Uuid, status: &str) {
        self.exec(
            "UPDATE user_subscriptions SET status = ? WHERE user_id = ?",
            vec![status.into(), user_id.into()],
        )
        .await;
    }

    pub async fn set_add_on_executions(&self, user_id: Uuid, n: i32) {
        self.exec(
            "UPDATE user_subscriptions SET additional_executions = ? WHERE user_id = ?",
            vec![n.into(), user_id.into()],
        )
        .await;
    }

    pub async fn set_cancel_at_period_end(&self, user_id: Uuid) {
        self.exec(
            "UPDATE user_subscriptions SET cancel_at_period_end = true WHERE user_id = ?",
            vec![user_id.into()],
        )
        .await;
    }

    fn schema(&self) -> Schema<Q, M, EmptySubscription> {
        Schema::build(Q::default(), M::default(), EmptySubscription)
            .data(self.t.db.clone())
            .data(self.billing.clone())
            .finish()
    }

    /// Runs `query` as `actor` and returns its data; panics on errors.
    pub async fn graphql(&self, actor: &Actor, query: &str) -> serde_json::Value {
        let res = self
            .schema()
            .execute(async_graphql::Request::new(query).data(actor.clone()))
            .await;
        assert!(res.errors.is_empty(), "{:?}", res.errors);
        res.data.into_json().unwrap()
    }

    /// Runs `query` as `actor` and returns its error codes.
    pub async fn graphql_errors(&self, actor: &Actor, query: &str) -> Vec<String> {
        let res = self
            .schema()
            .execute(async_graphql::Request::new(query).data(actor.clone()))
            .await;
        res.errors
            .iter()
            .map(|e| {
                e.extensions
                    .as_ref()
                    .and_then(|x| x.get("code"))
                    .map(|v| v.to_string().trim_matches('"').to_owned())
                    .unwrap_or_default()
            })
            .collect()
    }
}
