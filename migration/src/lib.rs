//! The database's shape: one migrator for every table of every domain.
//!
//! Migrations use the schema builder, never entity types, so an entity can
//! change without rewriting history. Each migration has a `down` that undoes
//! exactly what its `up` did.

pub use sea_orm_migration::prelude::*;

mod m20261122_000001_identity;
mod m20261122_000002_account;
mod m20261122_000003_audit;
mod m20261122_000004_recovery;
mod m20261122_000005_organizations;
mod m20261122_000006_credentials;
mod m20261122_000007_admin;
pub mod m20261128_000008_billing_plans;
mod m20261128_000009_credits;
mod m20261128_000010_costs;
mod m20261128_000011_idempotency;
mod m20261128_000012_usage_gate;
pub mod m20261128_000013_agents;
mod m20261128_000014_agent_resources;
mod m20261128_000016_agent_events_retention;
pub mod m20261128_000017_revocation_reasons;
mod m20261128_000018_invitation_limits;

/// Runs every migration of the platform in order.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_identity::Migration),
            Box::new(m20261122_000002_account::Migration),
            Box::new(m20261122_000003_audit::Migration),
            Box::new(m20261122_000004_recovery::Migration),
            Box::new(m20261122_000005_organizations::Migration),
            Box::new(m20261122_000006_credentials::Migration),
            Box::new(m20261122_000007_admin::Migration),
            Box::new(m20261128_000008_billing_plans::Migration),
            Box::new(m20261128_000009_credits::Migration),
            Box::new(m20261128_000010_costs::Migration),
            Box::new(m20261128_000011_idempotency::Migration),
            Box::new(m20261128_000012_usage_gate::Migration),
            Box::new(m20261128_000013_agents::Migration),
            Box::new(m20261128_000014_agent_resources::Migration),
            Box::new(m20261128_000016_agent_events_retention::Migration),
            Box::new(m20261128_000017_revocation_reasons::Migration),
            Box::new(m20261128_000018_invitation_limits::Migration),
        ]
    }
}
