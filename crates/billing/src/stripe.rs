//! The shape of a Stripe gateway: configured with a secret key, it would
//! create PaymentIntents with the charge's idempotency key. The HTTP client is
//! not wired in this build, so every charge answers `Unavailable` and nothing
//! is ever taken; the local gateway stays the default.

use crate::gateway::{Charge, GatewayError, Payment, PaymentGateway};
use async_trait::async_trait;

/// A Stripe account's API access.
#[derive(Clone)]
pub struct StripeGateway {
    secret_key: String,
    api_base: String,
}

impl StripeGateway {
    /// A gateway for the account of `secret_key` (`STRIPE_SECRET_KEY`).
    pub fn new(secret_key: impl Into<String>) -> Self {
        Self {
            secret_key: secret_key.into(),
            api_base: "https://api.stripe.com/v1".into(),
        }
    }

    /// Whether a key is configured (it is never shown).
    pub fn has_key(&self) -> bool {
        !self.secret_key.is_empty()
    }

    /// The request a charge would make: `POST {api_base}/payment_intents` with
    /// these form fields and the `Idempotency-Key` header.
    pub fn payment_intent_form(&self, charge: &Charge) -> (String, Vec<(&'static str, String)>) {
        (
            format!("{}/payment_intents", self.api_base),
            vec![
                ("amount", charge.amount_cents.to_string()),
                ("currency", charge.currency.clone()),
                ("description", charge.description.clone()),
                ("confirm", "true".into()),
                ("metadata[user_id]", charge.user_id.to_string()),
            ],
        )
    }
}

impl std::fmt::Debug for StripeGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeGateway")
            .field("api_base", &self.api_base)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl PaymentGateway for StripeGateway {
    async fn charge(&self, charge: &Charge) -> Result<Payment, GatewayError> {
        if charge.amount_cents <= 0 {
            return Err(GatewayError::Declined("amount must be positive".into()));
        }
        let _request = self.payment_intent_form(charge);
        Err(GatewayError::Unavailable(
            "the Stripe gateway is not wired in this build".into(),
        ))
    }
}
