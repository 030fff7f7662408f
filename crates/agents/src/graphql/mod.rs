//! The agents GraphQL roots, one file per part, merged by the server.
//! Resolvers are thin: read the actor, open the transaction, call the
//! service, map the output.

pub mod approvals;
pub mod executions;
pub mod live;
pub mod loaders;
pub mod resource_types;
pub mod resources;
pub mod sessions;
pub mod types;

pub use approvals::{ApprovalMutation, ApprovalQuery};
pub use executions::ExecutionMutation;
pub use live::{AgentSubscription, ExecutionEventQuery};
pub use loaders::{insert_loaders, register_loaders};
pub use resources::{ResourceMutation, ResourceQuery};
pub use sessions::{SessionMutation, SessionQuery};

use crate::Agents;
use async_graphql::Context;

/// The agents services registered on the schema.
pub fn agents<'a>(ctx: &Context<'a>) -> &'a Agents {
    ctx.data_unchecked::<Agents>()
}
