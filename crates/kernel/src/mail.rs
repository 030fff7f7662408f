//! Outgoing mail: what a domain wants sent, and the transports that send it.
//!
//! Mail is written to the `mail_outbox` table inside the transaction of the
//! work that causes it ([`outbox::enqueue`]), so a rolled-back mutation sends
//! nothing. Delivery happens after commit: [`outbox::deliver_pending`] claims
//! pending rows one at a time and hands them to a [`Mailer`]. The local mailer,
//! the default, delivers by leaving the row in the table for a developer or a
//! test to read; the SMTP mailer sends it and scrubs the body, which may hold a
//! live token.
//!
//! Bodies carry single-use secrets (reset links): they are never logged, and
//! `OutgoingMail`'s `Debug` leaves them out.

pub mod outbox;
mod smtp;

pub use smtp::SmtpMailer;

/// One message to send, as plain text.
#[derive(Clone, PartialEq, Eq)]
pub struct OutgoingMail {
    /// The recipient's address.
    pub to: String,
    /// The subject line.
    pub subject: String,
    /// The plain-text body; may contain secrets.
    pub body: String,
    /// What the mail is for, e.g. `password_reset`; for operators and tests.
    pub kind: String,
}

impl std::fmt::Debug for OutgoingMail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutgoingMail")
            .field("to", &self.to)
            .field("subject", &self.subject)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// Why mail could not be configured or sent. Never carries a body or a password.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// A setting is malformed.
    #[error("invalid mail setting: {0}")]
    Config(&'static str),
    /// The message could not be built (e.g. a malformed recipient).
    #[error("mail could not be built: {0}")]
    Message(String),
    /// The transport refused or failed.
    #[error("mail transport failed: {0}")]
    Transport(String),
}

/// A way to deliver committed mail.
#[async_trait::async_trait]
pub trait Mailer: Send + Sync {
    /// Delivers one message.
    ///
    /// # Errors
    /// When the message cannot be built or the transport fails; the outbox
    /// keeps the row and retries it.
    async fn deliver(&self, mail: &OutgoingMail) -> Result<(), MailError>;

    /// Whether the outbox row keeps its body after delivery. True only where
    /// the table is the destination itself.
    fn keeps_body(&self) -> bool {
        false
    }
}

/// The default mailer: the outbox table is the mailbox. Rows are marked sent
/// and keep their body, so developers and tests read mail from the table.
#[derive(Debug, Default, Clone, Copy)]
pub struct LocalMailer;

#[async_trait::async_trait]
impl Mailer for LocalMailer {
    async fn deliver(&self, mail: &OutgoingMail) -> Result<(), MailError> {
        tracing::info!(to = %mail.to, kind = %mail.kind, "mail kept in the local outbox");
        Ok(())
    }

    fn keeps_body(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_leaves_the_body_out() {
        let mail = OutgoingMail {
            to: "ada@example.com".into(),
            subject: "Reset".into(),
            body: "token=secret-value".into(),
            kind: "password_reset".into(),
        };
        assert!(!format!("{mail:?}").contains("secret-value"));
    }
}
