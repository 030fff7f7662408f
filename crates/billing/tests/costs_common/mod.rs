//! Fixtures of the cost-tracking tests: a fresh migrated database, billing and
//! auth services on one manual clock, signed-in users and recording helpers.
#![allow(dead_code)]

use billing::Billing;
use billing::costs::{Provider, Recorded, TokenUsage};
use billing::nanos::Nanos;
use chrono::{DateTime, Utc};
use core_auth::Auth;
use core_auth::entity::user;
use core_auth::sign_in::Register;
use core_auth::types::ClientInfo;
use kernel::actor::Actor;
use kernel::clock::{Clock, ManualClock, SharedClock};
use kernel::testing::TestDb;
use sea_orm::{
    ActiveModelTrait, DatabaseConnection, EntityTrait, IntoActiveModel, PaginatorTrait, Set,
    TransactionTrait,
};
use std::sync::Arc;

/// Everything a test needs.
pub struct World {
    pub db: TestDb,
    pub billing: Billing,
    pub auth: Auth,
    pub clock: Arc<ManualClock>,
}

/// A fresh database with the clock standing at `at`.
pub async fn world_at(at: DateTime<Utc>) -> World {
    let db = TestDb::new::<migration::Migrator>().await;
    let clock = ManualClock::new();
    clock.advance(at - clock.now());
    let shared: SharedClock = clock.clone();
    World {
        db,
        billing: Billing::local(shared.clone()),
        auth: Auth::new(Default::default(), shared),
        clock,
    }
}

/// A UTC instant from RFC 3339 text.
pub fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("valid time")
        .with_timezone(&Utc)
}

impl World {
    /// The pool.
    pub fn conn(&self) -> &DatabaseConnection {
        &self.db.db
    }

    /// Moves the clock to `t`.
    pub fn set_time(&self, t: DateTime<Utc>) {
        self.clock.advance(t - self.clock.now());
    }

    /// Registers `email` and returns the actor of its session.
    pub async fn user(&self, email: &str) -> Actor {
        let req = Register::parse(email, "correct horse battery staple".into(), None)
            .await
            .expect("valid registration");
        let client = ClientInfo {
            ip: "203.0.113.9".into(),
            user_agent: None,
        };
        let session = self
            .auth
            .register(self.conn(), req, &client)
            .await
            .expect("registration succeeds");
        self.auth
            .authenticate(self.conn(), &session.token)
            .await
            .expect("session authenticates")
    }

    /// Registers an admin and returns its actor.
    pub async fn admin(&self, email: &str) -> Actor {
        let actor = self.user(email).await;
        let found = user::Entity::find_by_id(actor.user_id)
            .one(self.conn())
            .await
            .expect("query user")
            .expect("user exists");
        let mut am = found.into_active_model();
        am.role = Set("admin".into());
        am.update(self.conn()).await.expect("promote");
        Actor {
            role: kernel::actor::Role::Admin,
            ..actor
        }
    }

    /// Records an Anthropic call in its own committed transaction.
    pub async fn tokens(
        &self,
        actor: &Actor,
        model: &str,
        input: i64,
        output: i64,
    ) -> Result<Recorded, kernel::Error> {
        let usage = anthropic(model, input, output, 0, 0);
        let txn = self.conn().begin().await.expect("begin");
        let out = self.billing.record_token_usage(&txn, actor, usage).await;
        if out.is_ok() {
            txn.commit().await.expect("commit");
        }
        out
    }

    /// Records a call costing exactly `usd` dollars: input tokens of
    /// claude-sonnet-4 at $3/M, so 1,000,000 tokens cost $3.
    pub async fn spend_cents(&self, actor: &Actor, cents: i64) -> Recorded {
        // $3 per million tokens = 3,000 nano-dollars per 1,000 tokens; a cent is
        // 10,000,000 nano-dollars = 3,333.33 tokens, so price by thirds.
        assert_eq!(cents % 3, 0, "spend multiples of 3 cents");
        let tokens = cents / 3 * 10_000;
        let r = self
            .tokens(actor, "claude-sonnet-4", tokens, 0)
            .await
            .expect("recorded");
        assert_eq!(r.cost, Nanos(cents * 10_000_000));
        r
    }

    /// Rows in `E`'s table.
    pub async fn count<E>(&self) -> u64
    where
        E: EntityTrait,
        E::Model: Sync,
    {
        E::find().count(self.conn()).await.expect("count")
    }
}

/// An Anthropic usage report.
pub fn anthropic(model: &str, input: i64, output: i64, write: i64, read: i64) -> TokenUsage {
    TokenUsage::parse(
        Provider::Anthropic,
        model.into(),
        input,
        output,
        write,
        read,
        None,
        Some("req_1".into()),
        Some("task".into()),
        Some("end_turn".into()),
        Some(1200),
    )
    .expect("valid usage")
}
