//! The one schema: every domain's roots merged, built once at start.

use crate::guard::Limits;
use crate::protect::Protect;
use agents::graphql::ExecutionMutation;
use agents::graphql::{
    AgentSubscription, ApprovalMutation, ApprovalQuery, ExecutionEventQuery, ResourceMutation,
    ResourceQuery, SessionMutation, SessionQuery,
};
use async_graphql::{Context, MergedObject, MergedSubscription, Result, Schema, Subscription};
use billing::graphql::{
    CatalogMutation, CostMutation, CostQuery, CreditMutation, CreditQuery, PlansMutation,
    PlansQuery, UsageMutation, UsageQuery,
};
use chrono::{DateTime, Utc};
use core_auth::Auth;
use core_auth::audit::AuditLogSink;
use core_auth::graphql::{
    AdminMutation, AdminRootQuery, AuthMutation, AuthQuery, OrgMutation, OrgQuery,
    RecoveryMutation, VaultMutation, VaultQuery,
};
use futures_util::Stream;
use kernel::audit::AuditSink;
use kernel::crypto::KeyRing;
use kernel::error::{Error, ResultExt};
use kernel::mail::Mailer;
use sea_orm::DatabaseConnection;
use std::sync::Arc;
use std::time::Duration;

/// Every domain's queries, one group per domain (grouping keeps the derived
/// merge shallow enough for the compiler's recursion limit).
#[derive(MergedObject, Default)]
pub struct Query(AuthQueries, BillingQueries, AgentQueries);

/// Identity, organizations, the vault and admin reads.
#[derive(MergedObject, Default)]
pub struct AuthQueries(AuthQuery, OrgQuery, VaultQuery, AdminRootQuery);

/// Plans, usage, credits and costs.
#[derive(MergedObject, Default)]
pub struct BillingQueries(PlansQuery, UsageQuery, CreditQuery, CostQuery);

/// Agent sessions, executions, approvals, events and resources.
#[derive(MergedObject, Default)]
pub struct AgentQueries(
    SessionQuery,
    ApprovalQuery,
    ExecutionEventQuery,
    ResourceQuery,
);

/// Every domain's mutations, one group per domain.
#[derive(MergedObject, Default)]
pub struct Mutation(AuthMutations, BillingMutations, AgentMutations);

/// Identity, recovery, organizations, the vault and admin.
#[derive(MergedObject, Default)]
pub struct AuthMutations(
    AuthMutation,
    RecoveryMutation,
    OrgMutation,
    VaultMutation,
    AdminMutation,
);

/// Plans, usage, credits, costs and the catalogue.
#[derive(MergedObject, Default)]
pub struct BillingMutations(
    PlansMutation,
    UsageMutation,
    CreditMutation,
    CostMutation,
    CatalogMutation,
);

/// Agent sessions, executions and their controls, approvals and checkpoints, and resources.
#[derive(MergedObject, Default)]
pub struct AgentMutations(
    SessionMutation,
    ExecutionMutation,
    ApprovalMutation,
    ResourceMutation,
);

/// Every domain's subscriptions.
#[derive(MergedSubscription, Default)]
pub struct Subscription(SystemSubscription, AgentSubscription);

/// Server-level subscriptions.
#[derive(Default)]
pub struct SystemSubscription;

#[Subscription]
impl SystemSubscription {
    /// The server's clock every `intervalSeconds` (1 to 60, default 10): a
    /// keep-alive that proves the subscription transport works end to end.
    async fn heartbeat(
        &self,
        _ctx: &Context<'_>,
        interval_seconds: Option<i32>,
    ) -> Result<impl Stream<Item = DateTime<Utc>> + use<>> {
        let secs = interval_seconds.unwrap_or(10);
        if !(1..=60).contains(&secs) {
            return Err(Error::bad_input(
                "intervalSeconds",
                "must be between 1 and 60",
            ))
            .gql();
        }
        let period = Duration::from_secs(secs as u64);
        Ok(futures_util::stream::unfold((), move |()| async move {
            tokio::time::sleep(period).await;
            Some((Utc::now(), ()))
        }))
    }
}

/// The composed schema type.
pub type AppSchema = Schema<Query, Mutation, Subscription>;

/// Depth and complexity limits applied by the validator, after [`Limits`] has
/// already bounded the document's size and expansion.
pub const MAX_DEPTH: usize = 15;
/// See [`MAX_DEPTH`].
pub const MAX_COMPLEXITY: usize = 5_000;

/// Builds the schema with its shared data and protections; `keys` seal the
/// credential vault and `mailer` delivers committed mail.
pub fn build_schema(
    db: DatabaseConnection,
    auth: Auth,
    keys: KeyRing,
    mailer: Arc<dyn Mailer>,
    introspection: bool,
) -> AppSchema {
    let billing = billing::Billing::local(auth.clock.clone());
    build_schema_with_billing(db, auth, keys, mailer, introspection, billing)
}

/// [`build_schema`] with configured billing services (gateway, webhook secret).
pub fn build_schema_with_billing(
    db: DatabaseConnection,
    auth: Auth,
    keys: KeyRing,
    mailer: Arc<dyn Mailer>,
    introspection: bool,
    billing: billing::Billing,
) -> AppSchema {
    let agents = agents::Agents::new(
        agents::AgentSettings::default(),
        auth.clock.clone(),
        billing.clone(),
        Arc::new(agents::LocalRunner),
    );
    build_schema_with_services(db, auth, keys, mailer, introspection, billing, agents)
}

/// [`build_schema`] with configured billing and agents services (runner, timeouts).
pub fn build_schema_with_services(
    db: DatabaseConnection,
    auth: Auth,
    keys: KeyRing,
    mailer: Arc<dyn Mailer>,
    introspection: bool,
    billing: billing::Billing,
    agents: agents::Agents,
) -> AppSchema {
    let sink: Arc<dyn AuditSink> = Arc::new(AuditLogSink {
        clock: auth.clock.clone(),
    });
    let mut builder = Schema::build(
        Query::default(),
        Mutation::default(),
        Subscription::default(),
    )
    .data(db)
    .data(sink)
    .data(billing)
    .data(agents)
    .data(auth)
    .data(keys)
    .data(mailer)
    .extension(Protect(Limits::default()))
    .extension(kernel::tx::AwaitRollbacks)
    .limit_depth(MAX_DEPTH)
    .limit_complexity(MAX_COMPLEXITY)
    .limit_recursive_depth(32)
    .limit_directives(20)
    .disable_suggestions();
    if !introspection {
        builder = builder.disable_introspection();
    }
    builder.finish()
}

/// The SDL clients see, as committed in `docs/schema.graphql`.
pub fn sdl() -> String {
    // The schema's shape does not depend on its data; a disconnected handle suffices.
    let db = DatabaseConnection::default();
    let auth = Auth::new(Default::default(), kernel::clock::system());
    let keys = KeyRing::single(1, [0; 32]);
    build_schema(db, auth, keys, Arc::new(kernel::mail::LocalMailer), true).sdl()
}
