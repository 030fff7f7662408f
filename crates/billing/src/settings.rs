//! The billing services' shared state.

use crate::gateway::{LocalGateway, PaymentGateway};
use kernel::clock::SharedClock;
use std::sync::Arc;

/// Tunable billing rules.
#[derive(Debug, Clone, Default)]
pub struct BillingSettings {
    /// The secret provider webhooks are signed with (`BILLING_WEBHOOK_SECRET`).
    pub webhook_secret: crate::webhook::WebhookSecret,
    /// How long a usage reservation may stay unsettled before the period job releases it.
    pub reservation_ttl: crate::gate::ReservationTtl,
    /// Rates of browser sessions and storage operations.
    pub cost_rates: crate::costs::CostRates,
}

/// The handle billing services are called through: settings, the clock and
/// the payment gateway.
#[derive(Clone)]
pub struct Billing {
    /// The rules.
    pub settings: BillingSettings,
    /// The time source.
    pub clock: SharedClock,
    /// Where money is taken.
    pub gateway: Arc<dyn PaymentGateway>,
}

impl std::fmt::Debug for Billing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Billing")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Billing {
    /// Services with these settings, this clock and this gateway.
    pub fn new(
        settings: BillingSettings,
        clock: SharedClock,
        gateway: Arc<dyn PaymentGateway>,
    ) -> Self {
        Self {
            settings,
            clock,
            gateway,
        }
    }

    /// Default settings and the local gateway: what the embedded server and tests run.
    pub fn local(clock: SharedClock) -> Self {
        Self::new(BillingSettings::default(), clock, Arc::new(LocalGateway))
    }
}
