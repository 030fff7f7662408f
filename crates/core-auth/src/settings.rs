//! Tunable identity rules and the handle services are called through.

use chrono::Duration;
use kernel::clock::SharedClock;

/// Session lifetimes and lockout thresholds.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// A session unused for this long is dead.
    pub session_idle_timeout: Duration,
    /// A session is dead this long after sign-in, however active.
    pub session_absolute_timeout: Duration,
    /// Failed sign-ins allowed per email within `lockout_window`.
    pub lockout_threshold: i32,
    /// The window over which failures are counted, and the lockout's length.
    pub lockout_window: Duration,
    /// Organization limits and invitation lifetime.
    pub organizations: crate::organizations::OrgSettings,
    /// Password reset and email verification.
    pub recovery: crate::recovery::RecoverySettings,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            session_idle_timeout: Duration::days(7),
            session_absolute_timeout: Duration::days(30),
            lockout_threshold: 5,
            lockout_window: Duration::minutes(15),
            organizations: Default::default(),
            recovery: Default::default(),
        }
    }
}

/// The identity services' shared state: settings and the clock.
#[derive(Debug, Clone)]
pub struct Auth {
    /// The rules.
    pub settings: AuthSettings,
    /// The time source.
    pub clock: SharedClock,
}

impl Auth {
    /// Services with these settings and this clock.
    pub fn new(settings: AuthSettings, clock: SharedClock) -> Self {
        Self { settings, clock }
    }
}
