//! Table models of the billing domain.

pub mod credit_ledger;
pub mod credit_package;
pub mod user_credit;
