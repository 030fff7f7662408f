//! What identity operations refuse, each mapped to one API code.

use kernel::Error;
use kernel::crypto::CryptoError;
use sea_orm::DbErr;

/// Refusals and failures of the identity services.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Unknown email, wrong password and suspended account all answer this,
    /// so the answer reveals nothing about which accounts exist.
    #[error("invalid email or password")]
    InvalidCredentials,
    /// Too many failed sign-ins for this email.
    #[error("too many failed sign-in attempts")]
    LockedOut {
        /// Seconds until the lockout window ends.
        retry_after: u64,
    },
    /// A bearer token that is unknown, expired or revoked.
    #[error("invalid or expired token")]
    InvalidToken,
    /// An input field failed to parse.
    #[error("{message}")]
    Invalid {
        /// The input field.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The email belongs to another account already.
    #[error("an account with this email already exists")]
    EmailTaken,
    /// The current password given to `changePassword` is wrong.
    #[error("current password is incorrect")]
    WrongCurrentPassword,
    /// The operation needs a session, not an API key.
    #[error("this operation requires signing in with a session, not an API key")]
    SessionRequired,
    /// No such object for this caller.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A reset or verification token that is unknown, used, or of the other kind.
    #[error("invalid or already used token")]
    RecoveryTokenInvalid,
    /// A reset or verification token past its expiry.
    #[error("this link has expired; request a new one")]
    RecoveryTokenExpired,
    /// The caller's email address is verified already.
    #[error("email address is already verified")]
    AlreadyVerified,
    /// Too many mails of one kind requested for this account.
    #[error("too many requests")]
    TooManyRequests {
        /// Seconds until a request can succeed.
        retry_after: u64,
    },
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbErr),
    /// Randomness or sealing failed.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// Password hashing failed or its worker panicked.
    #[error("password hashing failed: {0}")]
    Hashing(String),
}

impl AuthError {
    /// A parse failure on one input field.
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            message: message.into(),
        }
    }
}

impl From<AuthError> for Error {
    fn from(err: AuthError) -> Self {
        match err {
            AuthError::InvalidCredentials => Error::Unauthenticated("invalid email or password"),
            AuthError::InvalidToken => Error::Unauthenticated("invalid or expired token"),
            AuthError::LockedOut { retry_after } => Error::RateLimited { retry_after },
            AuthError::Invalid { field, message } => Error::bad_input(field, message),
            AuthError::EmailTaken => Error::conflict("email", err_text(&AuthError::EmailTaken)),
            AuthError::WrongCurrentPassword => Error::bad_input(
                "currentPassword",
                err_text(&AuthError::WrongCurrentPassword),
            ),
            AuthError::SessionRequired => Error::Forbidden(
                "this operation requires signing in with a session, not an API key",
            ),
            AuthError::NotFound(what) => Error::NotFound(what),
            AuthError::RecoveryTokenInvalid | AuthError::RecoveryTokenExpired => {
                Error::bad_input("token", err.to_string())
            }
            AuthError::AlreadyVerified => Error::Conflict {
                field: None,
                message: err.to_string(),
            },
            AuthError::TooManyRequests { retry_after } => Error::RateLimited { retry_after },
            AuthError::Db(e) => Error::internal(e),
            AuthError::Crypto(e) => Error::internal(e),
            AuthError::Hashing(_) => Error::internal(err),
        }
    }
}

fn err_text(err: &AuthError) -> String {
    err.to_string()
}
