//! Configuration from flags, environment variables and an optional `.env`,
//! typed and validated at start.

use clap::{Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;

/// The AI-agency automation platform's GraphQL server.
#[derive(Parser, Debug, Clone)]
#[command(version, about)]
pub struct Cli {
    /// Settings shared by every command.
    #[command(flatten)]
    pub config: Config,
    /// What to do; serves by default.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Server commands.
#[derive(Subcommand, Debug, Clone)]
pub enum Command {
    /// Serves the API (the default).
    Serve,
    /// Prints the GraphQL schema (SDL) and exits.
    Schema,
    /// Manages user accounts from the command line.
    User {
        /// What to do.
        #[command(subcommand)]
        command: UserCommand,
    },
}

/// `server user ...` commands.
#[derive(Subcommand, Debug, Clone)]
pub enum UserCommand {
    /// Sets a user's role, e.g. to make the first superadmin: `server user set-role ada@example.com superadmin`.
    SetRole {
        /// The account's email.
        email: String,
        /// The new role.
        #[arg(value_enum)]
        role: RoleArg,
    },
}

/// A role given on the command line.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleArg {
    /// An ordinary customer.
    User,
    /// Operates the platform.
    Admin,
    /// May also make admins.
    Superadmin,
}

impl From<RoleArg> for kernel::actor::Role {
    fn from(r: RoleArg) -> Self {
        match r {
            RoleArg::User => Self::User,
            RoleArg::Admin => Self::Admin,
            RoleArg::Superadmin => Self::Superadmin,
        }
    }
}

/// How logs are written.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Typed settings; every one has a flag and an environment variable.
#[derive(Parser, Debug, Clone)]
pub struct Config {
    /// Database URL; the default is an embedded SQLite file under `data/`.
    #[arg(long, env = "DATABASE_URL", default_value = kernel::db::DEFAULT_DATABASE_URL)]
    pub database_url: String,
    /// Pool size on PostgreSQL (SQLite always uses one connection).
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS")]
    pub database_max_connections: Option<u32>,
    /// Address to listen on.
    #[arg(long, env = "BIND_ADDR", default_value = "127.0.0.1:8080")]
    pub bind_addr: SocketAddr,
    /// Apply pending migrations at start (`--migrate`, or `--migrate false`):
    /// on by default for SQLite, off otherwise.
    #[arg(long, env = "MIGRATE", num_args = 0..=1, default_missing_value = "true")]
    pub migrate: Option<bool>,
    /// `text` or `json`.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Allow schema introspection (GraphiQL needs it).
    #[arg(long, env = "INTROSPECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub introspection: bool,
    /// Largest accepted request body, in bytes.
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = 256 * 1024)]
    pub max_body_bytes: usize,
    /// A session unused for this many seconds ends.
    #[arg(long, env = "SESSION_IDLE_TIMEOUT_SECS", default_value_t = 7 * 24 * 3600)]
    pub session_idle_timeout_secs: i64,
    /// A session ends this many seconds after sign-in.
    #[arg(long, env = "SESSION_ABSOLUTE_TIMEOUT_SECS", default_value_t = 30 * 24 * 3600)]
    pub session_absolute_timeout_secs: i64,
}

impl Config {
    /// Whether to migrate at start.
    pub fn should_migrate(&self) -> bool {
        self.migrate
            .unwrap_or_else(|| kernel::db::is_sqlite(&self.database_url))
    }

    /// The identity rules these settings describe.
    ///
    /// # Errors
    /// When a timeout is not positive or the idle timeout exceeds the absolute one.
    pub fn auth_settings(&self) -> Result<core_auth::AuthSettings, String> {
        let idle = self.session_idle_timeout_secs;
        let absolute = self.session_absolute_timeout_secs;
        if idle <= 0 || absolute <= 0 || idle > absolute {
            return Err(format!(
                "session timeouts must be positive with idle ({idle}s) <= absolute ({absolute}s)"
            ));
        }
        Ok(core_auth::AuthSettings {
            session_idle_timeout: chrono::Duration::seconds(idle),
            session_absolute_timeout: chrono::Duration::seconds(absolute),
            ..Default::default()
        })
    }

    /// Settings for tests: in-memory defaults, nothing read from the environment.
    pub fn for_tests() -> Self {
        Cli::parse_from(["server"]).config
    }
}
