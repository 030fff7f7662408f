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
    /// A mailer for `url` (`smtp://user:pass@host:587` requires STARTTLS
    /// unless the host is this machine or `?tls=` says otherwise; `smtps://`
    /// is TLS from the start), sending as `from` (`Name <addr>` or a bare address).
    ///
    /// # Errors
    /// `Config` when either value does not parse; the message never repeats
    /// the URL, which may hold a password.
    pub fn from_url(url: &str, from: &str) -> Result<Self, MailError> {
        let from: Mailbox = from
            .parse()
            .map_err(|_| MailError::Config("MAIL_FROM is not an email address"))?;
        let url = require_tls(url)?;
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&url)
            .map_err(|_| MailError::Config("SMTP_URL is not a valid smtp:// or smtps:// URL"))?
            .build();
        Ok(Self { transport, from })
    }
}

/// lettre reads a bare `smtp://` as plain text, which would send the relay
/// password in the clear. A bare `smtp://` to another host therefore requires
/// STARTTLS; only a relay on this machine (a development catcher) is spoken to
/// in plain text. An explicit `?tls=` is kept as the operator wrote it.
fn require_tls(text: &str) -> Result<String, MailError> {
    let mut url = url::Url::parse(text)
        .map_err(|_| MailError::Config("SMTP_URL is not a valid smtp:// or smtps:// URL"))?;
    let explicit = url.query_pairs().any(|(k, _)| k == "tls");
    let local = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    if url.scheme() == "smtp" && !explicit && !local {
        url.query_pairs_mut().append_pair("tls", "required");
    }
    Ok(url.into())
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
    fn bare_smtp_urls_require_starttls_except_on_this_machine() {
        assert_eq!(
            require_tls("smtp://u:p@mail.example.com:587").unwrap(),
            "smtp://u:p@mail.example.com:587?tls=required"
        );
        assert_eq!(
            require_tls("smtp://mail.example.com?tls=opportunistic").unwrap(),
            "smtp://mail.example.com?tls=opportunistic"
        );
        assert_eq!(
            require_tls("smtp://127.0.0.1:1025").unwrap(),
            "smtp://127.0.0.1:1025"
        );
        assert_eq!(
            require_tls("smtps://u:p@mail.example.com").unwrap(),
            "smtps://u:p@mail.example.com"
        );
    }

    /// A relay that accepts one message and hands back what it received.
    async fn fake_relay() -> (u16, tokio::task::JoinHandle<String>) {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let handle = tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            let (read, mut write) = socket.into_split();
            let mut lines = BufReader::new(read).lines();
            let mut received = String::new();
            let mut in_data = false;
            write.write_all(b"220 fake ready\r\n").await.unwrap();
            while let Some(line) = lines.next_line().await.unwrap() {
                received.push_str(&line);
                received.push('\n');
                let reply: &[u8] = if in_data {
                    if line != "." {
                        continue;
                    }
                    in_data = false;
                    b"250 queued\r\n"
                } else if line.starts_with("EHLO") {
                    b"250 fake\r\n"
                } else if line == "DATA" {
                    in_data = true;
                    b"354 go on\r\n"
                } else if line == "QUIT" {
                    write.write_all(b"221 bye\r\n").await.unwrap();
                    break;
                } else {
                    b"250 ok\r\n"
                };
                write.write_all(reply).await.unwrap();
            }
            received
        });
        (port, handle)
    }

    #[tokio::test]
    async fn smtp_mailer_hands_the_message_to_the_relay() {
        let (port, relay) = fake_relay().await;
        let mailer = SmtpMailer::from_url(
            &format!("smtp://127.0.0.1:{port}"),
            "App <no-reply@example.com>",
        )
        .unwrap();
        let mail = OutgoingMail {
            to: "ada@example.com".into(),
            subject: "Reset your password".into(),
            body: "open https://app.example.com/reset-password?token=abc".into(),
            kind: "password_reset".into(),
        };
        mailer.deliver(&mail).await.unwrap();
        let received = relay.await.unwrap();
        assert!(received.contains("RCPT TO:<ada@example.com>"), "{received}");
        assert!(
            received.contains("Subject: Reset your password"),
            "{received}"
        );
        assert!(received.contains("reset-password?token=abc"), "{received}");
    }

    #[test]
    fn debug_output_hides_the_relay_credentials() {
        let mailer =
            SmtpMailer::from_url("smtp://user:hunter2@mail.example.com", "a@example.com").unwrap();
        assert!(!format!("{mailer:?}").contains("hunter2"));
    }
}
