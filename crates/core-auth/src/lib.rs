//! Identity: accounts, sign-in, sessions, profiles, preferences and API keys.

pub mod admin;
pub mod api_keys;
pub mod audit;
pub mod entity;
pub mod error;
pub mod flags;
pub mod graphql;
pub mod invitations;
pub mod lockout;
pub mod organizations;
pub mod password;
pub mod profile;
pub mod recovery;
pub mod security;
pub mod session;
pub mod settings;
pub mod sign_in;
pub mod system_config;
pub mod types;
pub mod vault;

pub use error::AuthError;
pub use settings::{Auth, AuthSettings};
