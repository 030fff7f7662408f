//! The agents services' shared state and tunable rules.

use crate::runner::{AgentRunner, LocalRunner};
use billing::Billing;
use chrono::Duration;
use kernel::clock::SharedClock;
use std::sync::Arc;

/// Tunable control-plane rules.
#[derive(Debug, Clone)]
pub struct AgentSettings {
    /// A pause longer than this writes a checkpoint and fails the run (`AGENT_PAUSE_TIMEOUT_SECS`).
    pub pause_timeout: Duration,
    /// How long an approval waits before its timeout action applies (`AGENT_APPROVAL_TTL_SECS`).
    pub approval_ttl: Duration,
    /// How long a checkpoint can be resumed from.
    pub checkpoint_ttl: Duration,
    /// How long a worker's claim on a run lasts before another worker may take it over.
    pub claim_lease: Duration,
    /// How many runs one worker tick claims.
    pub worker_batch: u64,
    /// How often live subscriptions look for new events (`AGENT_EVENTS_POLL_MS`).
    pub events_poll: std::time::Duration,
    /// How long a finished run's event log is kept (`AGENT_EVENTS_RETENTION_DAYS`).
    pub events_retention: Duration,
}

impl Default for AgentSettings {
    fn default() -> Self {
        Self {
            pause_timeout: Duration::minutes(30),
            approval_ttl: Duration::minutes(5),
            checkpoint_ttl: Duration::days(7),
            claim_lease: Duration::seconds(60),
            worker_batch: 8,
            events_poll: std::time::Duration::from_millis(250),
            events_retention: Duration::days(30),
        }
    }
}

/// The handle agents services are called through.
#[derive(Clone)]
pub struct Agents {
    /// The rules.
    pub settings: AgentSettings,
    /// The time source.
    pub clock: SharedClock,
    /// Usage gate and cost tracking.
    pub billing: Billing,
    /// Who does the model or browser work.
    pub runner: Arc<dyn AgentRunner>,
}

impl std::fmt::Debug for Agents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agents")
            .field("settings", &self.settings)
            .field("runner", &self.runner.name())
            .finish_non_exhaustive()
    }
}

impl Agents {
    /// Services with these parts.
    pub fn new(
        settings: AgentSettings,
        clock: SharedClock,
        billing: Billing,
        runner: Arc<dyn AgentRunner>,
    ) -> Self {
        Self {
            settings,
            clock,
            billing,
            runner,
        }
    }

    /// Default settings, local billing and the local runner: what tests and the
    /// embedded server run.
    pub fn local(clock: SharedClock) -> Self {
        Self::new(
            AgentSettings::default(),
            clock.clone(),
            Billing::local(clock),
            Arc::new(LocalRunner),
        )
    }
}
