//! Reading the request context from resolvers, in one place.

use crate::actor::Actor;
use crate::audit::{AuditRecord, AuditSink};
use crate::error::{Error, ResultExt};
use crate::request::{ClientInfo, current_request_id};
use crate::tx::{Abandoned, Tx};
use async_graphql::Context;
use sea_orm::{DatabaseConnection, TransactionTrait};
use std::sync::Arc;

/// What every resolver needs from the GraphQL context.
pub trait ContextExt {
    /// The database pool.
    fn db(&self) -> &DatabaseConnection;
    /// The caller, if any.
    fn maybe_actor(&self) -> Option<&Actor>;
    /// The caller.
    ///
    /// # Errors
    /// `UNAUTHENTICATED` for anonymous requests.
    fn actor(&self) -> async_graphql::Result<&Actor>;
    /// The caller, who must be allowed to write.
    ///
    /// # Errors
    /// `UNAUTHENTICATED`, or `FORBIDDEN` for a read-only API key.
    fn writer(&self) -> async_graphql::Result<&Actor>;
    /// Opens the one transaction a mutation runs in; dropping it rolls back, and
    /// committing it writes one audit record for this mutation field.
    ///
    /// # Errors
    /// Internal, when the database cannot start a transaction.
    fn begin(&self) -> impl Future<Output = async_graphql::Result<Tx>> + Send;
}

impl ContextExt for Context<'_> {
    fn db(&self) -> &DatabaseConnection {
        // The server always registers the pool; a missing one is a wiring bug
        // caught by every test that runs a query.
        self.data_unchecked::<DatabaseConnection>()
    }

    fn maybe_actor(&self) -> Option<&Actor> {
        self.data_opt::<Actor>()
    }

    fn actor(&self) -> async_graphql::Result<&Actor> {
        self.maybe_actor()
            .ok_or(Error::Unauthenticated("authentication required"))
            .gql()
    }

    fn writer(&self) -> async_graphql::Result<&Actor> {
        let actor = self.actor()?;
        if actor.can_write() {
            Ok(actor)
        } else {
            Err(Error::Forbidden("this API key is read-only")).gql()
        }
    }

    async fn begin(&self) -> async_graphql::Result<Tx> {
        let txn = self.db().begin().await.gql()?;
        let audit = self.data_opt::<Arc<dyn AuditSink>>().map(|sink| {
            let action = self.field().name().to_owned();
            let client = self.data_opt::<ClientInfo>();
            let record = AuditRecord {
                user_id: self.maybe_actor().map(|a| a.user_id),
                entity_type: action.clone(),
                action,
                entity_id: None,
                old_values: None,
                new_values: None,
                ip_address: client.map(|c| c.ip.clone()),
                user_agent: client.and_then(|c| c.user_agent.clone()),
                request_id: current_request_id(),
            };
            (sink.clone(), record)
        });
        Ok(Tx::new(txn, audit).abandon_into(self.data_opt::<Abandoned>()))
    }
}
