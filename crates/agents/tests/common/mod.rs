//! Shared fixtures of the agents tests: a fresh database, agents services on a
//! manual clock, users with a usable subscription, sessions.
//! Parts add their own fixtures in their own `tests/<part>_common` modules.
#![allow(dead_code)]

use agents::Agents;
use agents::entity::agent_session;
use agents::sessions::{self, NewSession};
use chrono::Duration;
use kernel::actor::{Actor, Credential, Role};
use kernel::clock::{Clock, ManualClock, SharedClock};
use kernel::db::raw;
use kernel::testing::TestDb;
use sea_orm::{ConnectionTrait, Value};
use std::sync::Arc;
use uuid::Uuid;

/// A fresh database and agents services (local runner, local billing) on a manual clock.
pub struct Fixture {
    pub t: TestDb,
    pub agents: Agents,
    pub clock: Arc<ManualClock>,
}

impl Fixture {
    pub async fn new() -> Self {
        let t = TestDb::new::<migration::Migrator>().await;
        let clock = ManualClock::new();
        let shared: SharedClock = clock.clone();
        Self {
            t,
            agents: Agents::local(shared),
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

    /// A user row and a session actor for it.
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

    /// A tier allowing `executions` per period and `concurrent` running agents.
    pub async fn tier(&self, executions: i32, concurrent: i32) -> Uuid {
        let id = Uuid::now_v7();
        let now = self.clock.now();
        self.exec(
            "INSERT INTO subscription_tiers (id, slug, name, monthly_price_cents, setup_fee_cents, \
             max_agents, max_concurrent_agents, monthly_execution_limit, features, \
             allowed_strategies, overage_enabled, overage_price_cents, created_at, updated_at) \
             VALUES (?, ?, 'Test tier', 10000, 0, 50, ?, ?, ?, ?, false, NULL, ?, ?)",
            vec![
                id.into(),
                format!("t-{}", id.simple()).into(),
                concurrent.into(),
                executions.into(),
                serde_json::json!({}).into(),
                serde_json::json!(["auto"]).into(),
                now.into(),
                now.into(),
            ],
        )
        .await;
        id
    }

    /// A user with an active monthly subscription to a tier of
    /// `executions` per period and `concurrent` running agents.
    pub async fn subscribed_user(&self, email: &str, executions: i32, concurrent: i32) -> Actor {
        let actor = self.user(email).await;
        let tier = self.tier(executions, concurrent).await;
        let start = self.clock.now() - Duration::hours(1);
        let end = billing::rollover::period_end(start, "monthly");
        let now = self.clock.now();
        self.exec(
            "INSERT INTO user_subscriptions (id, user_id, tier_id, status, payment_frequency, \
             current_period_start, current_period_end, created_at, updated_at) \
             VALUES (?, ?, ?, 'active', 'monthly', ?, ?, ?, ?)",
            vec![
                Uuid::now_v7().into(),
                actor.user_id.into(),
                tier.into(),
                start.into(),
                end.into(),
                now.into(),
                now.into(),
            ],
        )
        .await;
        actor
    }

    /// A session of `actor` with this iteration cap.
    pub async fn session(&self, actor: &Actor, max_iterations: i32) -> agent_session::Model {
        let req = NewSession::parse("Test session".into(), None, Some(max_iterations)).unwrap();
        sessions::create(&self.t.db, actor, req, self.clock.now())
            .await
            .unwrap()
    }

    /// `(status, running_agents)` of the subscription's usage, to check the gate was settled.
    pub async fn running_agents(&self, user_id: Uuid) -> i64 {
        let backend = self.t.db.get_database_backend();
        let row = self
            .t
            .db
            .query_one_raw(raw(
                backend,
                "SELECT running_agents FROM user_subscriptions WHERE user_id = ?",
                vec![user_id.into()],
            ))
            .await
            .unwrap()
            .expect("a subscription");
        row.try_get::<i32>("", "running_agents")
            .map(i64::from)
            .or_else(|_| row.try_get::<i64>("", "running_agents"))
            .unwrap()
    }
}
