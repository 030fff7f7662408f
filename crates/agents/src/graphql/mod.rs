//! The agents GraphQL roots, one file per part, merged by the server.
//! Resolvers are thin: read the actor, open the transaction, call the
//! service, map the output.

pub mod executions;
pub mod types;

pub use executions::ExecutionMutation;

use crate::Agents;
use async_graphql::Context;

/// The agents services registered on the schema.
pub fn agents<'a>(ctx: &Context<'a>) -> &'a Agents {
    ctx.data_unchecked::<Agents>()
}
