//! Fixtures of the credit tests: a fresh migrated database, `Billing` and
//! `Auth` on a manual clock, signed-in users, and a schema with the credit roots.
#![allow(dead_code)]

use billing::credits::{CreditError, CreditType, Debit};
use billing::entity::{credit_ledger, user_credit};
use billing::{Billing, BillingSettings, PaymentGateway};
use core_auth::Auth;
use core_auth::sign_in::Register;
use core_auth::types::ClientInfo;
use kernel::actor::{Actor, Credential, Permission, Role};
use kernel::clock::{ManualClock, SharedClock};
use kernel::testing::TestDb;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, TransactionTrait,
};
use std::sync::Arc;
use uuid::Uuid;

/// The seeded "Enrichment 100" package: 100 enrichment credits for $10.00.
pub const ENRICHMENT_100: &str = "01930000-0000-7000-8000-000000000901";
/// The seeded "Calling 100" package: 100 calling credits for $15.00.
pub const CALLING_100: &str = "01930000-0000-7000-8000-000000000903";

/// Everything a credit test needs.
pub struct Env {
    /// The database.
    pub db: TestDb,
    /// Identity services, to sign users in.
    pub auth: Auth,
    /// The services under test, on the local gateway.
    pub billing: Billing,
    /// The clock both run on.
    pub clock: Arc<ManualClock>,
}

/// A fresh database with the local gateway.
pub async fn setup() -> Env {
    let db = TestDb::new::<migration::Migrator>().await;
    let clock = ManualClock::new();
    let shared: SharedClock = clock.clone();
    Env {
        db,
        auth: Auth::new(Default::default(), shared.clone()),
        billing: Billing::local(shared),
        clock,
    }
}

impl Env {
    /// The pool.
    pub fn pool(&self) -> &DatabaseConnection {
        &self.db.db
    }

    /// The same services charging through `gateway`.
    pub fn with_gateway(&self, gateway: Arc<dyn PaymentGateway>) -> Billing {
        Billing::new(
            BillingSettings::default(),
            self.billing.clock.clone(),
            gateway,
        )
    }

    /// Registers `email` and returns the actor of its session.
    pub async fn user(&self, email: &str) -> Actor {
        let req = Register::parse(email, "correct horse battery staple".into(), None)
            .await
            .expect("valid registration");
        let session = self
            .auth
            .register(self.pool(), req, &client())
            .await
            .expect("registration succeeds");
        self.auth
            .authenticate(self.pool(), &session.token)
            .await
            .expect("fresh session authenticates")
    }

    /// Buys `package` for `actor` with `key`, committed.
    pub async fn purchase(&self, actor: &Actor, package: &str, key: &str) -> credit_ledger::Model {
        let package = Uuid::parse_str(package).expect("package id");
        let txn = self.pool().begin().await.expect("begin");
        let entry = self
            .billing
            .purchase_credits(&txn, actor, package, Some(key.into()))
            .await
            .expect("purchase succeeds");
        txn.commit().await.expect("commit");
        entry
    }

    /// Debits `amount` of `credit_type` in its own transaction, committed on success.
    pub async fn debit(
        &self,
        actor: &Actor,
        credit_type: CreditType,
        amount: i64,
    ) -> Result<credit_ledger::Model, CreditError> {
        debit_on(&self.billing, self.pool(), actor, credit_type, amount).await
    }

    /// The stored balance of `credit_type`, `None` when there is no row.
    pub async fn balance(&self, user_id: Uuid, credit_type: CreditType) -> Option<i64> {
        user_credit::Entity::find()
            .filter(user_credit::Column::UserId.eq(user_id))
            .filter(user_credit::Column::CreditType.eq(credit_type.as_str()))
            .one(self.pool())
            .await
            .expect("read balance")
            .map(|r| r.balance)
    }

    /// The user's ledger entries of `credit_type`, oldest first.
    pub async fn ledger(
        &self,
        user_id: Uuid,
        credit_type: CreditType,
    ) -> Vec<credit_ledger::Model> {
        use sea_orm::QueryOrder;
        credit_ledger::Entity::find()
            .filter(credit_ledger::Column::UserId.eq(user_id))
            .filter(credit_ledger::Column::CreditType.eq(credit_type.as_str()))
            .order_by_asc(credit_ledger::Column::Id)
            .all(self.pool())
            .await
            .expect("read ledger")
    }
}

/// One debit as a mutation runs it: its own transaction, committed only on success.
pub async fn debit_on(
    billing: &Billing,
    db: &DatabaseConnection,
    actor: &Actor,
    credit_type: CreditType,
    amount: i64,
) -> Result<credit_ledger::Model, CreditError> {
    let debit = Debit::parse(credit_type, amount, Some("job".into()))?;
    let txn = db.begin().await.expect("begin");
    let out = billing.debit_credits(&txn, actor, debit).await;
    if out.is_ok() {
        txn.commit().await.expect("commit");
    }
    out
}

/// Runs `f` in its own transaction, committed only when it succeeds.
pub async fn in_tx<T, E>(
    db: &DatabaseConnection,
    f: impl AsyncFnOnce(&sea_orm::DatabaseTransaction) -> Result<T, E>,
) -> Result<T, E> {
    let txn = db.begin().await.expect("begin");
    let out = f(&txn).await;
    if out.is_ok() {
        txn.commit().await.expect("commit");
    }
    out
}

/// Where the test requests come from.
pub fn client() -> ClientInfo {
    ClientInfo {
        ip: "203.0.113.9".into(),
        user_agent: Some("billing-tests/1.0".into()),
    }
}

/// An administrator acting through a session (no user row is needed for adjustments).
pub fn admin() -> Actor {
    Actor {
        user_id: Uuid::now_v7(),
        role: Role::Admin,
        credential: Credential::Session {
            session_id: Uuid::now_v7(),
        },
    }
}

/// `actor` as seen through a read-only API key.
pub fn read_only(actor: &Actor) -> Actor {
    Actor {
        credential: Credential::ApiKey {
            key_id: Uuid::now_v7(),
            permissions: vec![Permission::Read],
        },
        ..actor.clone()
    }
}

/// Rows in `E`'s table.
pub async fn count<E>(db: &impl ConnectionTrait) -> u64
where
    E: EntityTrait,
    E::Model: Sync,
{
    use sea_orm::PaginatorTrait;
    E::find().count(db).await.expect("count rows")
}

/// A schema with the credit roots, audited like the server's.
pub type TestSchema = async_graphql::Schema<
    billing::graphql::CreditQuery,
    billing::graphql::CreditMutation,
    async_graphql::EmptySubscription,
>;

/// Builds the schema over the environment's database and services.
pub fn schema(env: &Env) -> TestSchema {
    let sink: Arc<dyn kernel::audit::AuditSink> = Arc::new(core_auth::audit::AuditLogSink {
        clock: env.billing.clock.clone(),
    });
    async_graphql::Schema::build(
        billing::graphql::CreditQuery,
        billing::graphql::CreditMutation,
        async_graphql::EmptySubscription,
    )
    .data(env.pool().clone())
    .data(env.billing.clone())
    .data(sink)
    .finish()
}

/// Runs `query` as `actor` (anonymous when `None`); returns the response as JSON.
pub async fn run_gql(schema: &TestSchema, actor: Option<&Actor>, query: &str) -> serde_json::Value {
    let mut request = async_graphql::Request::new(query).data(client());
    if let Some(actor) = actor {
        request = request.data(actor.clone());
    }
    let response = schema.execute(request).await;
    serde_json::to_value(&response).expect("response serialises")
}

/// The `extensions.code` of the first GraphQL error, or `<none>`.
pub fn gql_code(body: &serde_json::Value) -> String {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("<none>")
        .to_owned()
}

/// `actor` with the admin role.
pub fn as_admin(actor: &Actor) -> Actor {
    Actor {
        role: Role::Admin,
        ..actor.clone()
    }
}
