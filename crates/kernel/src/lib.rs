//! The shared model layer: what every domain crate needs and no domain owns.
//!
//! Nothing here knows about users, billing or agents; it holds the database
//! handle, ids, pagination, the API error codes, the caller's identity,
//! cryptography and time.

pub mod actor;
pub mod audit;
pub mod clock;
pub mod crypto;
pub mod db;
pub mod error;
pub mod gql;
pub mod id;
pub mod idempotency;
pub mod jobs;
pub mod mail;
pub mod page;
pub mod request;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tx;

pub use error::{Error, Result};
