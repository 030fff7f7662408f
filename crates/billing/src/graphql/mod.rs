//! The billing GraphQL roots, one pair per part, merged by the server.

pub mod plans;
pub mod usage;

pub use plans::{PlansMutation, PlansQuery};
pub use usage::{UsageMutation, UsageQuery};
