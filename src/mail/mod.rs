//! Outgoing email: a thin wrapper over lettre's async transports. With an SMTP URL configured,
//! mail goes over SMTP; otherwise each message is written as an `.eml` file under `mail.file_dir`.

use lettre::message::Mailbox;
use lettre::transport::smtp::AsyncSmtpTransport;
use lettre::{AsyncFileTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;

use crate::config::MailConfig;

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
