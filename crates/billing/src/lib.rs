//! Billing: plans and quotes, subscriptions and the usage gate, credits,
//! cost tracking and budgets. Every amount is integer cents (or an exact
//! decimal for per-token prices), computed on the server.

pub mod budgets;
pub mod catalog;
pub mod cost_entity;
pub mod costs;
pub mod credits;
pub mod entity;
pub mod events;
pub mod gate;
pub mod gateway;
pub mod graphql;
pub mod nanos;
pub mod prices;
pub mod purchases;
pub mod quote;
pub mod rollover;
pub mod settings;
pub mod stripe;
pub mod subscriptions;
pub mod usage;
pub mod webhook;

pub use gateway::{Charge, LocalGateway, Payment, PaymentGateway};
pub use settings::{Billing, BillingSettings};
