//! The API server: configuration, telemetry, HTTP endpoints and the one
//! GraphQL schema composed from every domain crate.

pub mod config;
pub mod guard;
pub mod http;
pub mod idempotency;
pub mod metrics;
pub mod protect;
pub mod schema;
pub mod telemetry;
pub mod user_cli;
pub mod vault;
pub mod webhooks;

pub use config::Config;
pub use http::{AppState, routes};
pub use schema::{AppSchema, build_schema, build_schema_with_billing, build_schema_with_services};
