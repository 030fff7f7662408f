//! The billing part of the GraphQL schema: one root pair per part, merged by
//! the server. Resolvers are thin: actor, transaction, service, map.

pub mod costs;

pub use costs::{CostMutation, CostQuery};
