//! One file per table; behaviour lives in the services beside this module.

pub mod agent_add_on;
pub mod billing_webhook_event;
pub mod credit_ledger;
pub mod credit_package;
pub mod execution_pack;
pub mod subscription_tier;
pub mod subscription_usage_record;
pub mod usage_reservation;
pub mod user_agent_add_on;
pub mod user_credit;
pub mod user_execution_pack;
pub mod user_subscription;
