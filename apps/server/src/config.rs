//! Configuration from flags, environment variables and an optional `.env`,
//! typed and validated at start.

use clap::{Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;

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
    /// Credential vault maintenance.
    Vault {
        /// The vault task.
        #[command(subcommand)]
        command: VaultCommand,
    },
    /// Manages user accounts from the command line.
    User {
        /// What to do.
        #[command(subcommand)]
        command: UserCommand,
    },
}

/// Credential vault tasks.
#[derive(Subcommand, Debug, Clone)]
pub enum VaultCommand {
    /// Re-seals every credential and every browser context's storage under
    /// the newest key of `VAULT_KEYS`; resumable, and safe to run twice or
    /// concurrently.
    Rotate {
        /// Rows re-sealed per transaction.
        #[arg(long, default_value_t = 500)]
        batch_size: u64,
    },
    /// Prints a fresh random key as one `VAULT_KEYS` entry.
    NewKey {
        /// The entry's version: higher than every version in use.
        #[arg(long, default_value_t = 1)]
        version: u32,
    },
}

/// The deployment kind: production refuses the development conveniences.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppEnv {
    /// A developer machine: missing keys are generated into the data folder.
    Development,
    /// A deployment: every secret setting must be given.
    Production,
}

/// A setting holding key material; its `Debug` never shows the value.
#[derive(Clone)]
pub struct Sensitive(String);

impl Sensitive {
    /// The value, for the one place that parses it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Sensitive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl std::str::FromStr for Sensitive {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
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
    /// `development` or `production`.
    #[arg(long, env = "APP_ENV", value_enum, default_value_t = AppEnv::Development)]
    pub app_env: AppEnv,
    /// The credential vault's keys: `VERSION:BASE64KEY` entries separated by
    /// commas; the highest version seals. Required in production.
    #[arg(long, env = "VAULT_KEYS", hide_env_values = true)]
    pub vault_keys: Option<Sensitive>,
    /// Where development keys are generated when `VAULT_KEYS` is unset
    /// (default: `vault.keys` beside the SQLite file, or under `data/`).
    #[arg(long, env = "VAULT_KEYS_FILE")]
    pub vault_keys_file: Option<PathBuf>,
    /// Members an organization may have at most (checked when an invitation is accepted).
    #[arg(long, env = "ORG_MEMBER_LIMIT", default_value_t = 100)]
    pub org_member_limit: u64,
    /// Invitations one user may send per rolling hour, across all their organizations.
    #[arg(long, env = "INVITATIONS_PER_INVITER_PER_HOUR", default_value_t = 20)]
    pub invitations_per_inviter_per_hour: u64,
    /// Invitations one organization may send per rolling day, by all its owners and admins.
    #[arg(long, env = "INVITATIONS_PER_ORG_PER_DAY", default_value_t = 100)]
    pub invitations_per_org_per_day: u64,
    /// The public base URL of the app; links in mail point here (never at the request's Host).
    #[arg(long, env = "PUBLIC_URL", default_value = core_auth::recovery::PublicUrl::LOCAL)]
    pub public_url: String,
    /// SMTP relay, e.g. `smtp://user:pass@host:587`; without it mail stays in the `mail_outbox` table.
    #[arg(long, env = "SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,
    /// The sender of every mail, e.g. `App <no-reply@example.com>`.
    #[arg(long, env = "MAIL_FROM", default_value = "no-reply@localhost")]
    pub mail_from: String,
    /// A password reset link works this many seconds.
    #[arg(long, env = "PASSWORD_RESET_TTL_SECS", default_value_t = 3600)]
    pub password_reset_ttl_secs: i64,
    /// An email verification link works this many seconds.
    #[arg(long, env = "EMAIL_VERIFICATION_TTL_SECS", default_value_t = 24 * 3600)]
    pub email_verification_ttl_secs: i64,
    /// The secret billing webhooks are signed with. Required in production; in
    /// development a random one is made per process (signed test events only).
    #[arg(long, env = "BILLING_WEBHOOK_SECRET", hide_env_values = true)]
    pub billing_webhook_secret: Option<Sensitive>,
    /// Where charges go: `local` (default, deterministic, no network) or `stripe`.
    #[arg(long, env = "BILLING_GATEWAY", value_enum, default_value_t = GatewayKind::Local)]
    pub billing_gateway: GatewayKind,
    /// The Stripe secret key, for `BILLING_GATEWAY=stripe`.
    #[arg(long, env = "STRIPE_SECRET_KEY", hide_env_values = true)]
    pub stripe_secret_key: Option<Sensitive>,
    /// Who plays agent runs: `local` (default: the plan given with the task,
    /// offline and deterministic) or `http` (an OpenAI-compatible chat endpoint).
    #[arg(long, env = "AGENT_RUNNER", value_enum, default_value_t = RunnerKind::Local)]
    pub agent_runner: RunnerKind,
    /// The chat endpoint's base URL for `AGENT_RUNNER=http`; `/v1/chat/completions` is appended.
    #[arg(long, env = "AGENT_HTTP_BASE_URL")]
    pub agent_http_base_url: Option<String>,
    /// The model asked for `AGENT_RUNNER=http`; it needs a price in billing's price table.
    #[arg(long, env = "AGENT_HTTP_MODEL")]
    pub agent_http_model: Option<String>,
    /// The chat endpoint's API key, sent as a bearer token.
    #[arg(long, env = "AGENT_HTTP_API_KEY", hide_env_values = true)]
    pub agent_http_api_key: Option<Sensitive>,
    /// The billing provider the HTTP runner's token usage is recorded under: `anthropic` or `google`.
    #[arg(long, env = "AGENT_HTTP_PROVIDER", default_value = "anthropic")]
    pub agent_http_provider: String,
    /// Seconds one model request may take; below the worker's 60 s claim lease.
    #[arg(long, env = "AGENT_HTTP_TIMEOUT_SECS", default_value_t = 30)]
    pub agent_http_timeout_secs: u64,
    /// How often the agent worker looks for runs to play, in milliseconds.
    #[arg(long, env = "AGENT_WORKER_INTERVAL_MS", default_value_t = 500)]
    pub agent_worker_interval_ms: u64,
    /// A run paused longer than this many seconds fails, with a checkpoint.
    #[arg(long, env = "AGENT_PAUSE_TIMEOUT_SECS", default_value_t = 30 * 60)]
    pub agent_pause_timeout_secs: i64,
    /// Seconds an approval waits for an answer before its timeout action applies.
    #[arg(long, env = "AGENT_APPROVAL_TTL_SECS", default_value_t = 5 * 60)]
    pub agent_approval_ttl_secs: i64,
    /// How often a live subscription polls for new events, in milliseconds (50 to 10 000).
    #[arg(long, env = "AGENT_EVENTS_POLL_MS", default_value_t = 250)]
    pub agent_events_poll_ms: u64,
    /// Days a finished run's event log is kept; the run and its steps stay.
    #[arg(long, env = "AGENT_EVENTS_RETENTION_DAYS", default_value_t = 30)]
    pub agent_events_retention_days: i64,
}

/// The longest pause or approval wait accepted: 30 days. A held run keeps
/// its billing reservation (and its concurrent-agent slot) that long.
const MAX_WAIT_SECS: i64 = 30 * 24 * 3600;

/// Who plays agent runs.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunnerKind {
    /// Plays the plan given with the task; no network.
    Local,
    /// Asks an OpenAI-compatible chat endpoint (`AGENT_HTTP_*`).
    Http,
}

/// The payment gateway billing charges through.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatewayKind {
    /// Deterministic and local: every charge succeeds.
    Local,
    /// Stripe (its HTTP client is not wired in this build: charges fail).
    Stripe,
}

impl Config {
    /// The billing services these settings describe.
    ///
    /// # Errors
    /// In production without `BILLING_WEBHOOK_SECRET`; `stripe` without `STRIPE_SECRET_KEY`.
    pub fn billing(&self, clock: kernel::clock::SharedClock) -> Result<billing::Billing, String> {
        let webhook_secret = match (&self.billing_webhook_secret, self.app_env) {
            (Some(s), _) if !s.expose().is_empty() => {
                billing::webhook::WebhookSecret::new(s.expose())
            }
            (_, AppEnv::Production) => {
                return Err("BILLING_WEBHOOK_SECRET is required in production".into());
            }
            _ => billing::webhook::WebhookSecret::default(),
        };
        // The other billing parts add settings that keep their defaults here.
        #[allow(clippy::needless_update)]
        let settings = billing::BillingSettings {
            webhook_secret,
            ..Default::default()
        };
        let gateway: std::sync::Arc<dyn billing::PaymentGateway> = match self.billing_gateway {
            GatewayKind::Local => std::sync::Arc::new(billing::LocalGateway),
            GatewayKind::Stripe => match &self.stripe_secret_key {
                Some(key) if !key.expose().is_empty() => {
                    std::sync::Arc::new(billing::stripe::StripeGateway::new(key.expose()))
                }
                _ => return Err("BILLING_GATEWAY=stripe needs STRIPE_SECRET_KEY".into()),
            },
        };
        Ok(billing::Billing::new(settings, clock, gateway))
    }

    /// The agents services these settings describe, sharing `billing`.
    ///
    /// # Errors
    /// A message naming each missing or invalid `AGENT_*` setting.
    pub fn agents(
        &self,
        clock: kernel::clock::SharedClock,
        billing: billing::Billing,
    ) -> Result<agents::Agents, String> {
        let defaults = agents::AgentSettings::default();
        let mut problems = Vec::new();
        if !(1..=MAX_WAIT_SECS).contains(&self.agent_pause_timeout_secs) {
            problems.push(format!(
                "AGENT_PAUSE_TIMEOUT_SECS must be between 1 and {MAX_WAIT_SECS}"
            ));
        }
        if self.agent_worker_interval_ms == 0 {
            problems.push("AGENT_WORKER_INTERVAL_MS must be positive".to_owned());
        }
        if !(1..=MAX_WAIT_SECS).contains(&self.agent_approval_ttl_secs) {
            problems.push(format!(
                "AGENT_APPROVAL_TTL_SECS must be between 1 and {MAX_WAIT_SECS}"
            ));
        }
        if !(50..=10_000).contains(&self.agent_events_poll_ms) {
            problems.push("AGENT_EVENTS_POLL_MS must be between 50 and 10000".to_owned());
        }
        if !(1..=3650).contains(&self.agent_events_retention_days) {
            problems.push("AGENT_EVENTS_RETENTION_DAYS must be between 1 and 3650".to_owned());
        }
        let runner: std::sync::Arc<dyn agents::AgentRunner> = match self.agent_runner {
            RunnerKind::Local => std::sync::Arc::new(agents::LocalRunner),
            RunnerKind::Http => {
                let lease = defaults.claim_lease.num_seconds().unsigned_abs();
                if !(1..lease).contains(&self.agent_http_timeout_secs) {
                    problems.push(format!(
                        "AGENT_HTTP_TIMEOUT_SECS must be between 1 and {} (under the claim lease)",
                        lease - 1
                    ));
                }
                match (&self.agent_http_base_url, &self.agent_http_model) {
                    (Some(base_url), Some(model)) => {
                        let config = agents::HttpRunnerConfig {
                            base_url: base_url.clone(),
                            model: model.clone(),
                            api_key: self
                                .agent_http_api_key
                                .as_ref()
                                .map(|k| k.expose().to_owned()),
                            provider: self.agent_http_provider.clone(),
                            timeout: std::time::Duration::from_secs(self.agent_http_timeout_secs),
                        };
                        match agents::HttpRunner::new(config) {
                            Ok(runner) => std::sync::Arc::new(runner),
                            Err(err) => {
                                problems.push(err.to_string());
                                std::sync::Arc::new(agents::LocalRunner)
                            }
                        }
                    }
                    _ => {
                        problems.push(
                            "AGENT_RUNNER=http needs AGENT_HTTP_BASE_URL and AGENT_HTTP_MODEL"
                                .to_owned(),
                        );
                        std::sync::Arc::new(agents::LocalRunner)
                    }
                }
            }
        };
        if !problems.is_empty() {
            return Err(problems.join("; "));
        }
        let settings = agents::AgentSettings {
            pause_timeout: chrono::Duration::seconds(self.agent_pause_timeout_secs),
            approval_ttl: chrono::Duration::seconds(self.agent_approval_ttl_secs),
            events_poll: std::time::Duration::from_millis(self.agent_events_poll_ms),
            events_retention: chrono::Duration::days(self.agent_events_retention_days),
            ..defaults
        };
        Ok(agents::Agents::new(settings, clock, billing, runner))
    }

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
        if self.org_member_limit == 0 {
            return Err("ORG_MEMBER_LIMIT must be at least 1".into());
        }
        if self.invitations_per_inviter_per_hour == 0 || self.invitations_per_org_per_day == 0 {
            return Err(
                "INVITATIONS_PER_INVITER_PER_HOUR and INVITATIONS_PER_ORG_PER_DAY must be at least 1"
                    .into(),
            );
        }
        Ok(core_auth::AuthSettings {
            session_idle_timeout: chrono::Duration::seconds(idle),
            session_absolute_timeout: chrono::Duration::seconds(absolute),
            organizations: core_auth::organizations::OrgSettings {
                member_limit: self.org_member_limit,
                invitations_per_inviter_per_hour: self.invitations_per_inviter_per_hour,
                invitations_per_organization_per_day: self.invitations_per_org_per_day,
                ..Default::default()
            },
            recovery: self.recovery_settings()?,
            ..Default::default()
        })
    }

    /// Link lifetimes and the public URL links point at.
    ///
    /// # Errors
    /// When `PUBLIC_URL` is not an http(s) URL or a lifetime is not positive.
    pub fn recovery_settings(&self) -> Result<core_auth::recovery::RecoverySettings, String> {
        let public_url = core_auth::recovery::PublicUrl::parse(&self.public_url)?;
        let (reset, verify) = (
            self.password_reset_ttl_secs,
            self.email_verification_ttl_secs,
        );
        if reset <= 0 || verify <= 0 {
            return Err(format!(
                "link lifetimes must be positive (reset {reset}s, verification {verify}s)"
            ));
        }
        Ok(core_auth::recovery::RecoverySettings {
            public_url,
            reset_ttl: chrono::Duration::seconds(reset),
            verification_ttl: chrono::Duration::seconds(verify),
            ..Default::default()
        })
    }

    /// The mailer: SMTP when `SMTP_URL` is set, else the local outbox.
    ///
    /// # Errors
    /// When `SMTP_URL` or `MAIL_FROM` does not parse.
    pub fn mailer(&self) -> Result<std::sync::Arc<dyn kernel::mail::Mailer>, String> {
        match &self.smtp_url {
            Some(url) => kernel::mail::SmtpMailer::from_url(url, &self.mail_from)
                .map(|m| std::sync::Arc::new(m) as std::sync::Arc<dyn kernel::mail::Mailer>)
                .map_err(|e| e.to_string()),
            None => Ok(std::sync::Arc::new(kernel::mail::LocalMailer)),
        }
    }

    /// What production lacks: mail that would never leave the outbox (and keep
    /// live reset links in it) and links that point at a developer's machine.
    ///
    /// # Errors
    /// A message naming each missing setting, when `APP_ENV=production`.
    pub fn check_production(&self) -> Result<(), String> {
        if self.app_env != AppEnv::Production {
            return Ok(());
        }
        let mut missing = Vec::new();
        if self.smtp_url.is_none() {
            missing.push("SMTP_URL (mail would stay in the outbox, undelivered)");
        }
        if self.public_url == core_auth::recovery::PublicUrl::LOCAL {
            missing.push("PUBLIC_URL (links in mail would point at 127.0.0.1)");
        }
        if missing.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "APP_ENV=production requires {}",
                missing.join(" and ")
            ))
        }
    }

    /// Settings for tests: in-memory defaults, nothing read from the environment.
    pub fn for_tests() -> Self {
        Cli::parse_from(["server"]).config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(args: &[&str]) -> Config {
        let mut argv = vec!["server"];
        argv.extend_from_slice(args);
        Cli::parse_from(argv).config
    }

    #[test]
    fn recovery_settings_are_validated_at_start() {
        let ok = config(&["--public-url", "https://app.example.com"]);
        let settings = ok.recovery_settings().unwrap();
        assert_eq!(
            settings.public_url.link("reset-password", "t"),
            "https://app.example.com/reset-password?token=t"
        );
        assert_eq!(settings.reset_ttl, chrono::Duration::hours(1));
        assert!(
            config(&["--public-url", "not a url"])
                .auth_settings()
                .is_err()
        );
        assert!(
            config(&["--password-reset-ttl-secs", "0"])
                .auth_settings()
                .is_err()
        );
    }

    #[test]
    fn invitation_sending_limits_are_configured_and_at_least_one() {
        let defaults = config(&[]).auth_settings().unwrap().organizations;
        assert_eq!(defaults.invitations_per_inviter_per_hour, 20);
        assert_eq!(defaults.invitations_per_organization_per_day, 100);
        let set = config(&[
            "--invitations-per-inviter-per-hour",
            "5",
            "--invitations-per-org-per-day",
            "30",
        ])
        .auth_settings()
        .unwrap()
        .organizations;
        assert_eq!(set.invitations_per_inviter_per_hour, 5);
        assert_eq!(set.invitations_per_organization_per_day, 30);
        for args in [
            ["--invitations-per-inviter-per-hour", "0"],
            ["--invitations-per-org-per-day", "0"],
        ] {
            let err = config(&args).auth_settings().unwrap_err();
            assert!(err.contains("INVITATIONS_PER_"), "{err}");
        }
    }

    #[test]
    fn production_requires_smtp_and_a_public_url() {
        assert!(config(&[]).check_production().is_ok(), "development");
        let err = config(&["--app-env", "production"])
            .check_production()
            .unwrap_err();
        assert!(
            err.contains("SMTP_URL") && err.contains("PUBLIC_URL"),
            "{err}"
        );
        assert!(
            config(&[
                "--app-env",
                "production",
                "--smtp-url",
                "smtp://u:p@mail.example.com:587",
                "--public-url",
                "https://app.example.com",
            ])
            .check_production()
            .is_ok()
        );
    }

    #[test]
    fn the_agent_runner_is_local_by_default_and_http_needs_its_settings() {
        let clock = kernel::clock::system();
        let billing = || billing::Billing::local(kernel::clock::system());
        let local = config(&[]).agents(clock.clone(), billing()).unwrap();
        assert_eq!(local.runner.name(), "local");
        assert_eq!(local.settings.pause_timeout, chrono::Duration::minutes(30));
        let err = config(&["--agent-runner", "http"])
            .agents(clock.clone(), billing())
            .unwrap_err();
        assert!(
            err.contains("AGENT_HTTP_BASE_URL") && err.contains("AGENT_HTTP_MODEL"),
            "{err}"
        );
        let http = config(&[
            "--agent-runner",
            "http",
            "--agent-http-base-url",
            "https://models.example.com",
            "--agent-http-model",
            "claude-haiku-3.5",
            "--agent-http-api-key",
            "sk-secret",
            "--agent-pause-timeout-secs",
            "600",
        ]);
        assert!(!format!("{http:?}").contains("sk-secret"));
        let agents = http.agents(clock.clone(), billing()).unwrap();
        assert_eq!(agents.runner.name(), "http");
        assert_eq!(agents.settings.pause_timeout, chrono::Duration::minutes(10));
        let err = config(&[
            "--agent-runner",
            "http",
            "--agent-http-base-url",
            "ftp://x",
            "--agent-http-model",
            "m",
            "--agent-http-timeout-secs",
            "600",
            "--agent-pause-timeout-secs",
            "0",
        ])
        .agents(clock, billing())
        .unwrap_err();
        assert!(
            err.contains("AGENT_HTTP_BASE_URL")
                && err.contains("AGENT_HTTP_TIMEOUT_SECS")
                && err.contains("AGENT_PAUSE_TIMEOUT_SECS"),
            "{err}"
        );
    }

    #[test]
    fn agent_waits_polling_and_retention_are_configured_and_bounded() {
        let clock = kernel::clock::system();
        let billing = || billing::Billing::local(clock.clone());
        let defaults = config(&[]).agents(clock.clone(), billing()).unwrap();
        assert_eq!(defaults.settings.approval_ttl, chrono::Duration::minutes(5));
        assert_eq!(defaults.settings.events_poll.as_millis(), 250);
        assert_eq!(
            defaults.settings.events_retention,
            chrono::Duration::days(30)
        );
        let set = config(&[
            "--agent-approval-ttl-secs",
            "7200",
            "--agent-events-poll-ms",
            "1000",
            "--agent-events-retention-days",
            "7",
        ])
        .agents(clock.clone(), billing())
        .unwrap();
        assert_eq!(set.settings.approval_ttl, chrono::Duration::hours(2));
        assert_eq!(set.settings.events_poll.as_millis(), 1000);
        assert_eq!(set.settings.events_retention, chrono::Duration::days(7));
        let err = config(&[
            "--agent-approval-ttl-secs",
            "0",
            "--agent-events-poll-ms",
            "10",
            "--agent-events-retention-days",
            "0",
            "--agent-pause-timeout-secs",
            "99999999",
        ])
        .agents(clock.clone(), billing())
        .unwrap_err();
        for name in [
            "AGENT_APPROVAL_TTL_SECS",
            "AGENT_EVENTS_POLL_MS",
            "AGENT_EVENTS_RETENTION_DAYS",
            "AGENT_PAUSE_TIMEOUT_SECS",
        ] {
            assert!(err.contains(name), "{name} in {err}");
        }
    }

    #[test]
    fn mailer_is_local_by_default_and_smtp_urls_are_checked() {
        assert!(config(&[]).mailer().is_ok());
        assert!(
            config(&["--smtp-url", "smtp://u:p@mail.example.com:587"])
                .mailer()
                .is_ok()
        );
        let err = config(&["--smtp-url", "http://u:hunter2@x"])
            .mailer()
            .err()
            .unwrap();
        assert!(!err.contains("hunter2"));
    }
}
