//! Fixtures for the plans tests: a migrated database, a manual clock, a
//! gateway that records (or declines) charges, and users inserted directly.
#![allow(dead_code)]

use billing::gateway::{Charge, GatewayError, Payment, PaymentGateway};
use billing::{Billing, BillingSettings};
use core_auth::entity::user;
use kernel::actor::{Actor, Credential, Role};
use kernel::clock::{Clock, ManualClock, SharedClock};
use kernel::error::Error;
use kernel::testing::TestDb;
use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use uuid::Uuid;

pub use migration::m20261128_000008_billing_plans::{
    ENTERPRISE_ID, GROWTH_ID, PROFESSIONAL_ID, STARTER_ID,
};

/// The seeded pack and add-on ids.
pub const BOOST_50: Uuid = Uuid::from_u128(0x019ac8a0_0000_7000_8000_000000000011);
pub const BOOST_200: Uuid = Uuid::from_u128(0x019ac8a0_0000_7000_8000_000000000012);
pub const AGENTS_5: Uuid = Uuid::from_u128(0x019ac8a0_0000_7000_8000_000000000021);
pub const AGENTS_10: Uuid = Uuid::from_u128(0x019ac8a0_0000_7000_8000_000000000022);

/// A gateway that records every charge and declines while told to.
#[derive(Debug, Default)]
pub struct RecordingGateway {
    pub charges: Mutex<Vec<Charge>>,
    pub decline: AtomicBool,
}

impl RecordingGateway {
    pub fn amounts(&self) -> Vec<i64> {
        self.charges
            .lock()
            .unwrap()
            .iter()
            .map(|c| c.amount_cents)
            .collect()
    }
}

#[async_trait::async_trait]
impl PaymentGateway for RecordingGateway {
    async fn charge(&self, charge: &Charge) -> Result<Payment, GatewayError> {
        if self.decline.load(Ordering::SeqCst) {
            return Err(GatewayError::Declined("card declined".into()));
        }
        self.charges.lock().unwrap().push(charge.clone());
        Ok(Payment {
            provider_id: format!("rec_{}", charge.idempotency_key),
            amount_cents: charge.amount_cents,
        })
    }
}

pub struct Fx {
    pub t: TestDb,
    pub billing: Billing,
    pub clock: Arc<ManualClock>,
    pub gateway: Arc<RecordingGateway>,
}

pub async fn setup() -> Fx {
    let t = TestDb::new::<migration::Migrator>().await;
    let clock = ManualClock::new();
    let shared: SharedClock = clock.clone();
    let gateway = Arc::new(RecordingGateway::default());
    let billing = Billing::new(BillingSettings::default(), shared, gateway.clone());
    Fx {
        t,
        billing,
        clock,
        gateway,
    }
}

/// Inserts a user and returns its actor (a session credential).
pub async fn user(db: &impl ConnectionTrait, clock: &ManualClock, email: &str) -> Actor {
    let id = kernel::id::new_id();
    let now = clock.now();
    user::Entity::insert(user::ActiveModel {
        id: Set(id),
        email: Set(email.into()),
        password_hash: Set(None),
        name: Set(None),
        open_id: Set(None),
        google_id: Set(None),
        login_method: Set("email".into()),
        role: Set("user".into()),
        onboarding_completed: Set(false),
        suspended_at: Set(None),
        suspension_reason: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        last_signed_in: Set(now),
        email_verified_at: Set(None),
    })
    .exec_without_returning(db)
    .await
    .expect("insert user");
    Actor {
        user_id: id,
        role: Role::User,
        credential: Credential::Session {
            session_id: kernel::id::new_id(),
        },
    }
}

/// The API code of a refusal.
pub fn code(err: &Error) -> &'static str {
    err.code().as_str()
}
