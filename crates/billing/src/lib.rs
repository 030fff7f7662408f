//! Billing: plans and quotes, subscriptions and the usage gate, credits,
//! cost tracking and budgets. Every amount is integer cents (or an exact
//! decimal for per-token prices), computed on the server.

pub mod entity;
pub mod gate;
pub mod gateway;
pub mod graphql;
pub mod rollover;
pub mod settings;
pub mod usage;

pub use gateway::{Charge, LocalGateway, Payment, PaymentGateway};
pub use settings::{Billing, BillingSettings};
