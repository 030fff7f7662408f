//! The billing GraphQL roots, one module per part.

pub mod usage;
