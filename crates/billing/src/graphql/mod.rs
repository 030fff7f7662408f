//! The billing part of the GraphQL schema. Resolvers are thin: read the
//! actor, open the transaction, call the service, map the output.

pub mod credits;

pub use credits::{CreditMutation, CreditQuery};

use crate::Billing;
use async_graphql::Context;

fn billing<'a>(ctx: &Context<'a>) -> &'a Billing {
    ctx.data_unchecked::<Billing>()
}
