//! `server`: serves the API, or prints the schema with `server schema`.

use actix_web::middleware::{Compress, from_fn};
use actix_web::{App, HttpServer};
use anyhow::Context;
use clap::Parser;
use migration::{Migrator, MigratorTrait};
use server::config::{Cli, Command};
use server::{AppState, build_schema_with_services, http, metrics::Metrics, routes, telemetry};
use std::sync::Arc;

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    dotenvy::dotenv().ok();
    let cli = Cli::parse();
    if matches!(cli.command, Some(Command::Schema)) {
        print!("{}", server::schema::sdl());
        return Ok(());
    }
    let config = cli.config;
    telemetry::init(config.log_format);
    match cli.command {
        Some(Command::Vault { command }) => return server::vault::run(&config, command).await,
        Some(Command::User { command }) => return server::user_cli::run(&config, command).await,
        _ => {}
    }
    let keys = server::vault::key_ring(&config).context("invalid configuration")?;
    config
        .check_production()
        .map_err(anyhow::Error::msg)
        .context("invalid configuration")?;
    let auth_settings = config
        .auth_settings()
        .map_err(anyhow::Error::msg)
        .context("invalid configuration")?;
    let mailer = config
        .mailer()
        .map_err(anyhow::Error::msg)
        .context("invalid mail configuration")?;
    let db = kernel::db::connect(&config.database_url, config.database_max_connections)
        .await
        .context("cannot connect to DATABASE_URL")?;
    if config.should_migrate() {
        Migrator::up(&db, None).await.context("migration failed")?;
        tracing::info!("database migrated");
    }
    let auth = core_auth::Auth::new(auth_settings, kernel::clock::system());
    // Retries mail whose delivery right after its commit failed or was cut short.
    kernel::mail::outbox::spawn_dispatcher(
        db.clone(),
        mailer.clone(),
        auth.clock.clone(),
        std::time::Duration::from_secs(30),
    );
    let billing = config
        .billing(auth.clock.clone())
        .map_err(anyhow::Error::msg)
        .context("invalid billing configuration")?;
    // Rolls billing periods over, expires packs and releases reservations that
    // crashed workers left; idempotent, so every instance may run it.
    let mut jobs = kernel::jobs::Jobs::new();
    jobs.every(
        std::time::Duration::from_secs(60),
        Arc::new(billing::rollover::PeriodJob {
            billing: billing.clone(),
            db: db.clone(),
        }),
    );
    let agents = config
        .agents(auth.clock.clone(), billing.clone())
        .map_err(anyhow::Error::msg)
        .context("invalid agents configuration")?;
    // Plays agent runs; runs are claimed with leases (SKIP LOCKED on
    // PostgreSQL), so every instance may run a worker.
    // The unique part first: `claimed_by` keeps 100 characters.
    let worker_id = format!(
        "{}@{}",
        kernel::id::new_id().simple(),
        std::env::var("HOSTNAME").unwrap_or_else(|_| "server".into())
    );
    jobs.every(
        std::time::Duration::from_millis(config.agent_worker_interval_ms),
        Arc::new(agents::AgentWorker::new(
            db.clone(),
            agents.clone(),
            worker_id,
        )),
    );
    // Fails runs paused longer than AGENT_PAUSE_TIMEOUT_SECS; conditional writes make it idempotent.
    jobs.every(
        std::time::Duration::from_secs(30),
        Arc::new(agents::PauseTimeoutJob {
            db: db.clone(),
            agents: agents.clone(),
        }),
    );
    // Applies the timeout action of approvals nobody answered in time; its
    // conditional writes settle each approval once across instances.
    jobs.every(
        std::time::Duration::from_secs(15),
        Arc::new(agents::expiry::ApprovalExpiryJob {
            db: db.clone(),
            agents: agents.clone(),
        }),
    );
    // Deletes the event logs of runs finished more than
    // AGENT_EVENTS_RETENTION_DAYS ago; a second instance finds nothing left.
    jobs.every(
        std::time::Duration::from_secs(3600),
        Arc::new(agents::events::RetentionJob::new(
            db.clone(),
            agents.clone(),
        )),
    );
    // Writes `expired` into browser sessions past their deadline (reads already
    // answer `expired`; this lets stored rows and indexes catch up).
    jobs.every(
        std::time::Duration::from_secs(60),
        Arc::new(agents::browser::ExpiryJob {
            db: db.clone(),
            clock: auth.clock.clone(),
        }),
    );
    // Keyed mutations' responses, sealed with the vault's keys.
    let idempotency = kernel::idempotency::Idempotency::new(auth.clock.clone(), keys.clone());
    // Deletes stored idempotent responses once their 24 h window has passed.
    idempotency
        .clone()
        .spawn_purger(db.clone(), std::time::Duration::from_secs(3600));
    let state = AppState {
        schema: build_schema_with_services(
            db.clone(),
            auth.clone(),
            keys,
            mailer,
            config.introspection,
            billing.clone(),
            agents,
        ),
        db,
        auth,
        metrics: Arc::new(Metrics::default()),
        max_body_bytes: config.max_body_bytes,
        billing,
        idempotency,
    };
    tracing::info!(addr = %config.bind_addr, "serving GraphiQL at http://{}/graphiql", config.bind_addr);
    let server = HttpServer::new(move || {
        App::new()
            .wrap(Compress::default())
            .wrap(from_fn(http::request_context))
            .configure(routes(state.clone()))
    })
    // actix stops at once on SIGINT; we want Ctrl-C to drain like SIGTERM.
    .disable_signals()
    .bind(config.bind_addr)
    .with_context(|| format!("cannot listen on {}", config.bind_addr))?
    .shutdown_timeout(30)
    .run();
    let handle = server.handle();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down: finishing in-flight requests");
        handle.stop(true).await;
    });
    let served = server.await.context("server stopped with an error");
    jobs.shutdown().await;
    served
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = interrupt => {},
                    _ = terminate.recv() => {},
                }
            }
            Err(_) => {
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
