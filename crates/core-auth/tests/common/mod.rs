//! Fixtures shared by the integration tests: a fresh migrated database, an
//! `Auth` driven by a manual clock, registered users and error helpers.
//!
//! Every test file compiles this module on its own and uses a different part
//! of it, hence the `dead_code` allowance.
#![allow(dead_code)]

use chrono::{DateTime, Utc};
use core_auth::api_keys::CreateApiKey;
use core_auth::entity::{api_key, user};
use core_auth::session::IssuedSession;
use core_auth::sign_in::Register;
use core_auth::types::ClientInfo;
use core_auth::{Auth, AuthError, AuthSettings};
use kernel::actor::{Actor, Permission};
use kernel::clock::{ManualClock, SharedClock};
use kernel::error::Code;
use kernel::testing::TestDb;
use sea_orm::{
    ActiveModelTrait, ConnectionTrait, DatabaseConnection, EntityTrait, IntoActiveModel,
    PaginatorTrait, Set,
};
use std::sync::Arc;
use uuid::Uuid;

/// The password every fixture user registers with.
pub const PASSWORD: &str = "correct horse battery staple";
/// A password that is never anyone's.
pub const WRONG: &str = "not the password at all";

/// A fresh database and services with the default rules.
pub async fn setup() -> (TestDb, Auth, Arc<ManualClock>) {
    setup_with(AuthSettings::default()).await
}

/// A fresh database and services with these rules.
pub async fn setup_with(settings: AuthSettings) -> (TestDb, Auth, Arc<ManualClock>) {
    let db = TestDb::new::<migration::Migrator>().await;
    let clock = ManualClock::new();
    let shared: SharedClock = clock.clone();
    (db, Auth::new(settings, shared), clock)
}

/// Where the test requests come from.
pub fn client() -> ClientInfo {
    ClientInfo {
        ip: "203.0.113.7".into(),
        user_agent: Some("core-auth-tests/1.0".into()),
    }
}

/// Registers `email` with [`PASSWORD`] and returns its first session.
pub async fn user(auth: &Auth, db: &impl ConnectionTrait, email: &str) -> IssuedSession {
    let req = Register::parse(email, PASSWORD.into(), None)
        .await
        .expect("valid registration");
    auth.register(db, req, &client())
        .await
        .expect("registration succeeds")
}

/// Signs in from [`client`].
pub async fn login(
    auth: &Auth,
    db: &DatabaseConnection,
    email: &str,
    password: &str,
) -> Result<IssuedSession, AuthError> {
    auth.login(db, email, password.into(), &client()).await
}

/// The actor a session token resolves to.
pub async fn actor(auth: &Auth, db: &impl ConnectionTrait, session: &IssuedSession) -> Actor {
    auth.authenticate(db, &session.token)
        .await
        .expect("fresh session authenticates")
}

/// Creates a key for `actor` with these permissions (read and write when `None`).
pub async fn api_key(
    auth: &Auth,
    db: &impl ConnectionTrait,
    actor: &Actor,
    name: &str,
    expires_at: Option<DateTime<Utc>>,
    permissions: Option<Vec<Permission>>,
) -> (api_key::Model, String) {
    let req =
        CreateApiKey::parse(auth, name.into(), expires_at, permissions).expect("valid key request");
    auth.create_api_key(db, actor, req)
        .await
        .expect("key is created")
}

/// Suspends a user directly in the table, as an operator would.
pub async fn suspend(db: &impl ConnectionTrait, user_id: Uuid, at: DateTime<Utc>) {
    let found = user::Entity::find_by_id(user_id)
        .one(db)
        .await
        .expect("query user")
        .expect("user exists");
    let mut active = found.into_active_model();
    active.suspended_at = Set(Some(at));
    active.suspension_reason = Set(Some("abuse".into()));
    active.update(db).await.expect("suspend user");
}

/// Rows in `E`'s table.
pub async fn count<E>(db: &impl ConnectionTrait) -> u64
where
    E: EntityTrait,
    E::Model: Sync,
{
    E::find().count(db).await.expect("count rows")
}

/// The API error a refused call answers with; panics when the call succeeded.
pub trait Refused {
    /// The refusal as the API shows it.
    fn refused(self) -> kernel::Error;
}

impl<T: std::fmt::Debug> Refused for Result<T, AuthError> {
    #[track_caller]
    fn refused(self) -> kernel::Error {
        self.expect_err("the call should have been refused").into()
    }
}

impl<T: std::fmt::Debug> Refused for Result<T, kernel::Error> {
    #[track_caller]
    fn refused(self) -> kernel::Error {
        self.expect_err("the call should have been refused")
    }
}

/// The API code of a refusal.
pub fn code(err: AuthError) -> Code {
    kernel::Error::from(err).code()
}

/// The input field a `BAD_USER_INPUT` or `CONFLICT` names.
pub fn field(err: &kernel::Error) -> Option<&str> {
    match err {
        kernel::Error::BadInput { field, .. } => Some(field),
        kernel::Error::Conflict { field, .. } => field.as_deref(),
        _ => None,
    }
}

/// The `retry_after` of a `RATE_LIMITED` refusal.
pub fn retry_after(err: &kernel::Error) -> Option<u64> {
    match err {
        kernel::Error::RateLimited { retry_after } => Some(*retry_after),
        _ => None,
    }
}

/// Runs `f` in its own transaction, committed only when it succeeds, as a mutation runs.
pub async fn in_tx<T, E>(
    db: &DatabaseConnection,
    f: impl AsyncFnOnce(&sea_orm::DatabaseTransaction) -> Result<T, E>,
) -> Result<T, E> {
    use sea_orm::TransactionTrait;
    let txn = db.begin().await.expect("begin");
    let out = f(&txn).await;
    if out.is_ok() {
        txn.commit().await.expect("commit");
    }
    out
}

/// Registers `email`, marks the address verified and returns the actor of its session.
pub async fn signed_in(auth: &Auth, db: &DatabaseConnection, email: &str) -> Actor {
    let session = user(auth, db, email).await;
    let who = actor(auth, db, &session).await;
    mark_verified(db, who.user_id).await;
    who
}

/// Marks `user_id`'s address verified, as `verifyEmail` would.
pub async fn mark_verified(db: &impl ConnectionTrait, user_id: Uuid) {
    let mut row = user::Entity::find_by_id(user_id)
        .one(db)
        .await
        .expect("find user")
        .expect("user exists")
        .into_active_model();
    row.email_verified_at = Set(Some(Utc::now()));
    row.update(db).await.expect("mark verified");
}

/// Creates an organization owned by `owner` and returns its id.
pub async fn organization(auth: &Auth, db: &DatabaseConnection, owner: &Actor, slug: &str) -> Uuid {
    let req = core_auth::organizations::CreateOrganization::parse("Acme".into(), slug, None)
        .expect("valid organization");
    in_tx(db, async |tx| {
        auth.create_organization(tx, owner, req).await
    })
    .await
    .expect("organization is created")
    .organization
    .id
}

/// Invites `email` into `org` as `role`, on behalf of `inviter`.
pub async fn invite(
    auth: &Auth,
    db: &DatabaseConnection,
    inviter: &Actor,
    org: Uuid,
    email: &str,
    role: core_auth::organizations::OrgRole,
) -> Result<core_auth::entity::invitation::Model, kernel::Error> {
    let req = core_auth::invitations::InviteMember {
        organization_id: org,
        email: core_auth::types::Email::parse(email).expect("valid email"),
        role,
    };
    in_tx(db, async |tx| auth.invite_member(tx, inviter, req).await).await
}

/// Registers `email`, invites it into `org` as `role` and accepts; returns the
/// new member's actor and membership.
pub async fn joined(
    auth: &Auth,
    db: &DatabaseConnection,
    inviter: &Actor,
    org: Uuid,
    email: &str,
    role: core_auth::organizations::OrgRole,
) -> (Actor, core_auth::entity::member::Model) {
    let who = signed_in(auth, db, email).await;
    let inv = invite(auth, db, inviter, org, email, role)
        .await
        .expect("invitation is sent");
    let (_, member) = in_tx(db, async |tx| {
        auth.accept_invitation(tx, &who, inv.id).await
    })
    .await
    .expect("invitation is accepted");
    (who, member)
}

/// Gives `user_id` a role directly in the table, as `server user set-role` would.
pub async fn set_role(db: &impl ConnectionTrait, user_id: Uuid, role: &str) {
    let found = user::Entity::find_by_id(user_id)
        .one(db)
        .await
        .expect("query user")
        .expect("user exists");
    let mut active = found.into_active_model();
    active.role = Set(role.into());
    active.update(db).await.expect("set role");
}

/// Registers `email` with `role` (`user`, `admin`, `superadmin`); returns its session and actor.
pub async fn member(
    auth: &Auth,
    db: &impl ConnectionTrait,
    email: &str,
    role: &str,
) -> (IssuedSession, Actor) {
    let session = user(auth, db, email).await;
    set_role(db, session.user.id, role).await;
    let actor = actor(auth, db, &session).await;
    (session, actor)
}

/// The admin capability of an admin actor.
pub fn cap(actor: &Actor) -> core_auth::admin::AdminCap {
    core_auth::admin::AdminCap::check(actor).expect("actor is an admin")
}

/// A schema with the identity and admin roots, audited like the server's.
pub type TestSchema =
    async_graphql::Schema<TestQuery, TestMutation, async_graphql::EmptySubscription>;

/// The query roots under test.
#[derive(async_graphql::MergedObject, Default)]
pub struct TestQuery(
    core_auth::graphql::AuthQuery,
    core_auth::graphql::AdminRootQuery,
);

/// The mutation roots under test.
#[derive(async_graphql::MergedObject, Default)]
pub struct TestMutation(
    core_auth::graphql::AuthMutation,
    core_auth::graphql::AdminMutation,
);

/// Builds the schema over `db` with the audit hook writing to `audit_logs`.
pub fn schema(db: &DatabaseConnection, auth: &Auth) -> TestSchema {
    let sink: Arc<dyn kernel::audit::AuditSink> = Arc::new(core_auth::audit::AuditLogSink {
        clock: auth.clock.clone(),
    });
    async_graphql::Schema::build(
        TestQuery::default(),
        TestMutation::default(),
        async_graphql::EmptySubscription,
    )
    .data(db.clone())
    .data(auth.clone())
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
