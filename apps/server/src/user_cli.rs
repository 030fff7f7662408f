//! `server user ...`: account changes a DBA makes from a shell, such as
//! making the first superadmin before anyone can do it through the API.

use crate::config::{Config, UserCommand};
use anyhow::Context;
use kernel::actor::Role;
use kernel::clock::{Clock, SystemClock};
use migration::{Migrator, MigratorTrait};
use sea_orm::{DatabaseConnection, TransactionTrait};

/// Runs one user command against the configured database.
///
/// # Errors
/// When the database is unreachable, the email is malformed or unknown.
pub async fn run(config: &Config, command: UserCommand) -> anyhow::Result<()> {
    let db = kernel::db::connect(&config.database_url, config.database_max_connections)
        .await
        .context("cannot connect to DATABASE_URL")?;
    if config.should_migrate() {
        Migrator::up(&db, None).await.context("migration failed")?;
    }
    match command {
        UserCommand::SetRole { email, role } => {
            let message = set_role(&db, &email, role.into()).await?;
            println!("{message}");
        }
    }
    Ok(())
}

/// Sets the role of the account with `email`, in one transaction with its
/// `security_audit_log` record; returns a line for the operator.
///
/// # Errors
/// When the email is malformed or has no account, or the database fails.
pub async fn set_role(db: &DatabaseConnection, email: &str, role: Role) -> anyhow::Result<String> {
    let email = core_auth::types::Email::parse(email)
        .map_err(|e| anyhow::anyhow!("{}", kernel::Error::from(e)))?;
    let txn = db.begin().await?;
    let user = core_auth::admin::users::bootstrap_set_role(&txn, &email, role, SystemClock.now())
        .await
        .map_err(|e| match e {
            kernel::Error::NotFound(_) => {
                anyhow::anyhow!("no account with email {}", email.as_str())
            }
            other => anyhow::Error::new(other),
        })?;
    txn.commit().await?;
    Ok(format!("{} is now {}", user.email, user.role))
}
