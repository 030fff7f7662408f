//! The error codes of `API.md` and their mapping onto GraphQL errors.
//!
//! Domain crates keep their own `thiserror` enums and convert into [`Error`];
//! resolvers turn an [`Error`] into a GraphQL error with [`ResultExt::gql`],
//! which sets `extensions.code` and masks internal failures.

use async_graphql::ErrorExtensions;
use sea_orm::{DbErr, SqlErr};

/// A result whose error is an API error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The closed set of `extensions.code` values clients can rely on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// No valid credentials where they are needed.
    Unauthenticated,
    /// Authenticated, but not allowed.
    Forbidden,
    /// No such object for this caller.
    NotFound,
    /// Validation failed.
    BadUserInput,
    /// A unique value is taken or the state is stale.
    Conflict,
    /// Too many attempts.
    RateLimited,
    /// Billing refused: not enough credits.
    InsufficientCredits,
    /// Billing refused: a plan limit.
    LimitExceeded,
    /// A state machine refused the move.
    InvalidTransition,
    /// The document was refused before any SQL ran.
    QueryTooComplex,
    /// Anything else.
    InternalServerError,
}

impl Code {
    /// The wire form of the code.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::Forbidden => "FORBIDDEN",
            Self::NotFound => "NOT_FOUND",
            Self::BadUserInput => "BAD_USER_INPUT",
            Self::Conflict => "CONFLICT",
            Self::RateLimited => "RATE_LIMITED",
            Self::InsufficientCredits => "INSUFFICIENT_CREDITS",
            Self::LimitExceeded => "LIMIT_EXCEEDED",
            Self::InvalidTransition => "INVALID_TRANSITION",
            Self::QueryTooComplex => "QUERY_TOO_COMPLEX",
            Self::InternalServerError => "INTERNAL_SERVER_ERROR",
        }
    }
}

/// An error that can be shown to an API client.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No valid credentials.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// The caller may not do this.
    #[error("{0}")]
    Forbidden(&'static str),
    /// No such object for this caller; the argument names the kind of object.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// An input field failed to parse.
    #[error("{message}")]
    BadInput {
        /// The camelCase input field at fault.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// A unique value is taken or a stale state was acted on.
    #[error("{message}")]
    Conflict {
        /// The input field at fault, when there is one.
        field: Option<String>,
        /// What conflicts.
        message: String,
    },
    /// Too many attempts; the client may retry after this many seconds.
    #[error("too many attempts, retry later")]
    RateLimited {
        /// Seconds until a retry can succeed.
        retry_after: u64,
    },
    /// A state machine refused the move.
    #[error("{0}")]
    InvalidTransition(String),
    /// A plan or configured limit refused the work.
    #[error("{0}")]
    LimitExceeded(String),
    /// The document was refused before execution.
    #[error("{0}")]
    QueryTooComplex(String),
    /// Anything the client cannot act on; never shown, only logged.
    #[error("internal error: {0}")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl Error {
    /// A `BAD_USER_INPUT` error for one field.
    pub fn bad_input(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::BadInput {
            field: field.into(),
            message: message.into(),
        }
    }

    /// A `CONFLICT` error for one field.
    pub fn conflict(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Conflict {
            field: Some(field.into()),
            message: message.into(),
        }
    }

    /// Wraps any error as an internal one.
    pub fn internal(err: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Internal(Box::new(err))
    }

    /// The API code of this error.
    pub fn code(&self) -> Code {
        match self {
            Self::Unauthenticated(_) => Code::Unauthenticated,
            Self::Forbidden(_) => Code::Forbidden,
            Self::NotFound(_) => Code::NotFound,
            Self::BadInput { .. } => Code::BadUserInput,
            Self::Conflict { .. } => Code::Conflict,
            Self::RateLimited { .. } => Code::RateLimited,
            Self::InvalidTransition(_) => Code::InvalidTransition,
            Self::LimitExceeded(_) => Code::LimitExceeded,
            Self::QueryTooComplex(_) => Code::QueryTooComplex,
            Self::Internal(_) => Code::InternalServerError,
        }
    }
}

impl From<DbErr> for Error {
    fn from(err: DbErr) -> Self {
        Self::internal(err)
    }
}

/// True when the database refused a write because a unique index holds the value already.
pub fn is_unique_violation(err: &DbErr) -> bool {
    matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

/// The generic message every internal error is answered with.
pub const INTERNAL_MESSAGE: &str = "internal server error";

impl ErrorExtensions for Error {
    fn extend(&self) -> async_graphql::Error {
        let request_id = crate::request::current_request_id();
        let message = match self {
            Self::Internal(source) => {
                tracing::error!(request_id = %request_id, error = %source, "internal error");
                INTERNAL_MESSAGE.to_owned()
            }
            other => other.to_string(),
        };
        async_graphql::Error::new(message).extend_with(|_, ext| {
            ext.set("code", self.code().as_str());
            match self {
                Self::BadInput { field, .. } => ext.set("field", field.as_str()),
                Self::Conflict {
                    field: Some(field), ..
                } => ext.set("field", field.as_str()),
                Self::RateLimited { retry_after } => ext.set("retryAfter", *retry_after),
                Self::Internal(_) => ext.set("requestId", request_id.to_string()),
                _ => {}
            }
        })
    }
}

/// Turns a service result into a resolver result with the API error shape.
pub trait ResultExt<T> {
    /// Maps the error through [`ErrorExtensions::extend`].
    ///
    /// # Errors
    /// Returns the GraphQL form of the service error.
    fn gql(self) -> async_graphql::Result<T>;
}

impl<T, E: Into<Error>> ResultExt<T> for std::result::Result<T, E> {
    fn gql(self) -> async_graphql::Result<T> {
        self.map_err(|e| e.into().extend())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code_of(err: &async_graphql::Error) -> Option<String> {
        err.extensions
            .as_ref()
            .and_then(|e| e.get("code"))
            .map(|v| v.to_string())
    }

    #[test]
    fn every_variant_carries_its_api_code() {
        let cases = [
            (Error::Unauthenticated("x"), "UNAUTHENTICATED"),
            (Error::Forbidden("x"), "FORBIDDEN"),
            (Error::NotFound("thing"), "NOT_FOUND"),
            (Error::bad_input("email", "bad"), "BAD_USER_INPUT"),
            (Error::conflict("email", "taken"), "CONFLICT"),
            (Error::RateLimited { retry_after: 3 }, "RATE_LIMITED"),
            (Error::InvalidTransition("no".into()), "INVALID_TRANSITION"),
            (Error::LimitExceeded("full".into()), "LIMIT_EXCEEDED"),
            (Error::QueryTooComplex("deep".into()), "QUERY_TOO_COMPLEX"),
        ];
        for (err, code) in cases {
            assert_eq!(
                code_of(&err.extend()).as_deref(),
                Some(format!("\"{code}\"").as_str())
            );
        }
    }

    #[test]
    fn internal_errors_are_masked_and_carry_a_request_id() {
        let err = Error::from(DbErr::Custom("SELECT secret FROM users".into())).extend();
        assert_eq!(err.message, INTERNAL_MESSAGE);
        let ext = err.extensions.expect("extensions");
        assert!(ext.get("requestId").is_some());
        assert_eq!(
            ext.get("code").map(|v| v.to_string()).as_deref(),
            Some("\"INTERNAL_SERVER_ERROR\"")
        );
    }

    #[test]
    fn bad_input_names_the_field_and_rate_limit_the_wait() {
        let err = Error::bad_input("password", "too short").extend();
        let ext = err.extensions.expect("extensions");
        assert_eq!(
            ext.get("field").map(|v| v.to_string()).as_deref(),
            Some("\"password\"")
        );
        let err = Error::RateLimited { retry_after: 42 }.extend();
        let ext = err.extensions.expect("extensions");
        assert_eq!(
            ext.get("retryAfter").map(|v| v.to_string()).as_deref(),
            Some("42")
        );
    }
}
