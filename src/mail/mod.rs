//! Outgoing email: a thin wrapper over lettre's async transports. With an SMTP URL configured,
//! mail goes over SMTP; otherwise each message is written as an `.eml` file under `mail.file_dir`.

use lettre::message::Mailbox;
use lettre::transport::smtp::AsyncSmtpTransport;
use lettre::{AsyncFileTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;

use crate::config::MailConfig;

pub mod ics;

enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    File(AsyncFileTransport<Tokio1Executor>),
}

/// Sends email.
pub struct Mailer {
    transport: Transport,
    from: Mailbox,
}

impl Mailer {
    /// Builds the transport from configuration (creates the mail folder for the file transport).
    pub fn new(cfg: &MailConfig) -> anyhow::Result<Self> {
        let from: Mailbox = cfg
            .from
            .parse()
            .map_err(|e| anyhow::anyhow!("mail.from is not a valid mailbox: {e}"))?;
        let url = cfg.smtp_url.expose_secret();
        let transport = if url.is_empty() {
            std::fs::create_dir_all(&cfg.file_dir)
                .map_err(|e| anyhow::anyhow!("mail.file_dir {}: {e}", cfg.file_dir.display()))?;
            Transport::File(AsyncFileTransport::new(&cfg.file_dir))
        } else {
            let builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                .map_err(|_| anyhow::anyhow!("mail.smtp_url is not a valid SMTP URL"))?;
            Transport::Smtp(builder.build())
        };
        Ok(Self { transport, from })
    }

    /// Sends a plain-text message.
    pub async fn send_text(&self, to: &str, subject: &str, body: String) -> anyhow::Result<()> {
        let to: Mailbox = to
            .parse()
            .map_err(|e| anyhow::anyhow!("invalid recipient: {e}"))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .body(body)?;
        match &self.transport {
            Transport::Smtp(t) => t.send(message).await.map(|_| ())?,
            Transport::File(t) => t.send(message).await.map(|_| ())?,
        }
        Ok(())
    }
}

/// Sends the account emails domain events ask for, in the background: the request that asked
/// does not wait for SMTP. (A durable outbox replaces this when reminders arrive.)
pub struct MailSender {
    mailer: std::sync::Arc<Mailer>,
}

impl MailSender {
    pub fn new(mailer: std::sync::Arc<Mailer>) -> Self {
        Self { mailer }
    }
}

impl crate::events::Subscriber for MailSender {
    fn handle<'a>(&'a self, event: &'a crate::events::Event) -> futures_util::future::BoxFuture<'a, ()> {
        Box::pin(async move {
            let crate::events::Event::Email(email) = event else {
                return;
            };
            let mailer = self.mailer.clone();
            let email = email.clone();
            tokio::spawn(async move {
                if let Err(e) = mailer.send_text(&email.to, &email.subject, email.body).await {
                    tracing::error!(
                        error = format!("{e:#}"),
                        email = email.kind.as_str(),
                        "email failed"
                    );
                }
            });
        })
    }
}
