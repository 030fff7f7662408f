//! Where money is taken. Services charge through [`PaymentGateway`]; the
//! default [`LocalGateway`] is deterministic and needs no network, so the
//! embedded server and the tests run without a payment provider.

use async_trait::async_trait;
use uuid::Uuid;

/// One charge to make: an amount in cents for a user, made at most once per
/// `idempotency_key` (the provider deduplicates retries by it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    /// Who pays.
    pub user_id: Uuid,
    /// How much, in cents; always positive.
    pub amount_cents: i64,
    /// ISO 4217, lower case (`usd`).
    pub currency: String,
    /// What the charge is for, as the customer's statement shows it.
    pub description: String,
    /// The same key always names the same charge.
    pub idempotency_key: String,
}

/// A charge the provider accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    /// The provider's id of the payment.
    pub provider_id: String,
    /// The amount taken, in cents.
    pub amount_cents: i64,
}

/// Why a charge failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    /// The provider refused the charge (card declined, limit reached).
    #[error("payment declined: {0}")]
    Declined(String),
    /// The provider could not be reached or answered with an error.
    #[error("payment provider unavailable: {0}")]
    Unavailable(String),
}

/// A payment provider.
#[async_trait]
pub trait PaymentGateway: Send + Sync + 'static {
    /// Takes `charge.amount_cents` from the user, once per idempotency key.
    ///
    /// # Errors
    /// [`GatewayError`] when nothing was taken.
    async fn charge(&self, charge: &Charge) -> Result<Payment, GatewayError>;
}

/// The default gateway: accepts every charge and names the payment after its
/// idempotency key, so a retried charge gets the same payment id.
#[derive(Debug, Clone, Copy, Default)]
pub struct LocalGateway;

#[async_trait]
impl PaymentGateway for LocalGateway {
    async fn charge(&self, charge: &Charge) -> Result<Payment, GatewayError> {
        if charge.amount_cents <= 0 {
            return Err(GatewayError::Declined("amount must be positive".into()));
        }
        let digest = kernel::crypto::hash_token(&charge.idempotency_key);
        Ok(Payment {
            provider_id: format!("local_pay_{}", &digest[..24]),
            amount_cents: charge.amount_cents,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn charge(key: &str, cents: i64) -> Charge {
        Charge {
            user_id: Uuid::nil(),
            amount_cents: cents,
            currency: "usd".into(),
            description: "test".into(),
            idempotency_key: key.into(),
        }
    }

    #[tokio::test]
    async fn local_gateway_names_a_retried_charge_the_same_and_refuses_non_positive_amounts() {
        let g = LocalGateway;
        let a = g.charge(&charge("k1", 500)).await.unwrap();
        let b = g.charge(&charge("k1", 500)).await.unwrap();
        let c = g.charge(&charge("k2", 500)).await.unwrap();
        assert_eq!(a, b);
        assert_ne!(a.provider_id, c.provider_id);
        assert!(matches!(
            g.charge(&charge("k3", 0)).await,
            Err(GatewayError::Declined(_))
        ));
    }
}
