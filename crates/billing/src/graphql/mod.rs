//! The billing GraphQL roots, one pair per part, merged by the server.
//! Resolvers are thin: read the actor, open the transaction, call the
//! service, map the output.

pub mod catalog;
pub mod costs;
pub mod credits;
pub mod plans;
pub mod usage;

pub use catalog::CatalogMutation;
pub use costs::{CostMutation, CostQuery};
pub use credits::{CreditMutation, CreditQuery};
pub use plans::{PlansMutation, PlansQuery};
pub use usage::{UsageMutation, UsageQuery};

use crate::Billing;
use async_graphql::Context;

fn billing<'a>(ctx: &Context<'a>) -> &'a Billing {
    ctx.data_unchecked::<Billing>()
}
