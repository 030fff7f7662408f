//! Delivery over SMTP with lettre (rustls, tokio).

use super::{MailError, Mailer, OutgoingMail};
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// Sends mail through one SMTP relay, configured by URL.
#[derive(Clone)]
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl std::fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The transport holds the relay's credentials.
        f.debug_struct("SmtpMailer")
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

impl SmtpMailer {
    /// A mailer for `url` (`smtp://user:pass@host:587` uses STARTTLS when
    /// offered, `?tls=required` insists on it, `smtps://` is TLS from the
    /// start), sending as `from` (`Name <addr>` or a bare address).
    ///
    /// # Errors
    /// `Config` when either value does not parse; the message never repeats
    /// the URL, which may hold a password.
    pub fn from_url(url: &str, from: &str) -> Result<Self, MailError> {
        let from: Mailbox = from
            .parse()
            .map_err(|_| MailError::Config("MAIL_FROM is not an email address"))?;
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|_| MailError::Config("SMTP_URL is not a valid smtp:// or smtps:// URL"))?
            .build();
        Ok(Self { transport, from })
    }
}

#[async_trait::async_trait]
impl Mailer for SmtpMailer {
    async fn deliver(&self, mail: &OutgoingMail) -> Result<(), MailError> {
        let to: Mailbox = mail
            .to
            .parse()
            .map_err(|_| MailError::Message("recipient is not an email address".into()))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(mail.subject.clone())
            .header(ContentType::TEXT_PLAIN)
            .body(mail.body.clone())
            .map_err(|e| MailError::Message(e.to_string()))?;
        self.transport
            .send(message)
            .await
            .map_err(|e| MailError::Transport(e.to_string()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_urls_and_senders_are_parsed_at_start() {
        assert!(
            SmtpMailer::from_url(
                "smtp://user:pass@mail.example.com:587",
                "App <no-reply@example.com>"
            )
            .is_ok()
        );
        assert!(SmtpMailer::from_url("http://mail.example.com", "no-reply@example.com").is_err());
        assert!(SmtpMailer::from_url("smtp://mail.example.com", "not an address").is_err());
    }

    #[test]
    fn debug_output_hides_the_relay_credentials() {
        let mailer =
            SmtpMailer::from_url("smtp://user:hunter2@mail.example.com", "a@example.com").unwrap();
        assert!(!format!("{mailer:?}").contains("hunter2"));
    }
}
