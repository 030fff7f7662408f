//! One file per table; behaviour lives in the services beside this module.

pub mod api_key;
pub mod audit_log;
pub mod credential;
pub mod email_verification_token;
pub mod feature_flag;
pub mod invitation;
pub mod login_attempt;
pub mod member;
pub mod organization;
pub mod password_reset_token;
pub mod security_audit_log;
pub mod security_event;
pub mod session;
pub mod system_config;
pub mod user;
pub mod user_preference;
pub mod user_profile;
