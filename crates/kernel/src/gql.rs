//! Reading the request context from resolvers, in one place.

use crate::actor::Actor;
use crate::error::{Error, ResultExt};
use async_graphql::Context;
use sea_orm::{DatabaseConnection, DatabaseTransaction, TransactionTrait};

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
    /// Opens the one transaction a mutation runs in; dropping it rolls back.
    ///
    /// # Errors
    /// Internal, when the database cannot start a transaction.
    fn begin(&self) -> impl Future<Output = async_graphql::Result<DatabaseTransaction>> + Send;
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

    async fn begin(&self) -> async_graphql::Result<DatabaseTransaction> {
        self.db().begin().await.gql()
    }
}
