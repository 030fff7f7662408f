//! The billing GraphQL roots, one pair per part, merged by the server.

pub mod plans;

pub use plans::{PlansMutation, PlansQuery};
