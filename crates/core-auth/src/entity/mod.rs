//! One file per table; behaviour lives in the services beside this module.

pub mod api_key;
pub mod audit_log;
pub mod email_verification_token;
pub mod login_attempt;
pub mod password_reset_token;
pub mod session;
pub mod user;
pub mod user_preference;
pub mod user_profile;
