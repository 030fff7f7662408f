//! The migration CLI for DBAs: `migration [--database-url URL] up|down|status|fresh|refresh|reset`.

use clap::{Parser, Subcommand};
use migration::{Migrator, MigratorTrait};
use std::process::ExitCode;

/// Applies and rolls back the platform's database migrations.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Database to act on; defaults to the embedded SQLite file.
    #[arg(long, short = 'u', env = "DATABASE_URL", default_value = kernel::db::DEFAULT_DATABASE_URL)]
    database_url: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Applies pending migrations (all, or the next N).
    Up {
        /// How many to apply.
        #[arg(short = 'n', long)]
        num: Option<u32>,
    },
    /// Rolls back the last N applied migrations (default 1). Drops their tables and data.
    Down {
        /// How many to roll back.
        #[arg(short = 'n', long, default_value_t = 1)]
        num: u32,
    },
    /// Lists every migration and whether it is applied.
    Status,
    /// Drops EVERY table in the database (ours or not), then applies all migrations.
    Fresh,
    /// Rolls back all applied migrations, then applies them all again.
    Refresh,
    /// Rolls back all applied migrations.
    Reset,
}

#[tokio::main]
async fn main() -> ExitCode {
    dotenvy::dotenv().ok();
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("migration failed: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), sea_orm_migration::DbErr> {
    let db = kernel::db::connect(&cli.database_url, Some(1)).await?;
    match cli.command {
        Command::Up { num } => Migrator::up(&db, num).await?,
        Command::Down { num } => Migrator::down(&db, Some(num)).await?,
        Command::Status => {}
        Command::Fresh => Migrator::fresh(&db).await?,
        Command::Refresh => Migrator::refresh(&db).await?,
        Command::Reset => Migrator::reset(&db).await?,
    }
    for m in Migrator::get_migration_with_status(&db).await? {
        println!("{:<10} {}", format!("{:?}", m.status()), m.name());
    }
    Ok(())
}
