//! Outgoing email: a thin wrapper over lettre's async transports. With an SMTP URL configured,
//! mail goes over SMTP (`Mailer::new` says which URL means which TLS); otherwise each message is
//! written as an `.eml` file under `mail.file_dir`. What to send, when, and exactly
//! once is the outbox's business (`emails`); this module only speaks SMTP.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart};
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
    /// `SMTP_URL` follows lettre: `smtps://` is TLS from the first byte, `smtp://...?tls=required`
    /// STARTTLS, plain `smtp://` no TLS (loopback relays); credentials go in the URL.
    pub fn new(cfg: &MailConfig, timeout: Duration) -> anyhow::Result<Self> {
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
            Transport::Smtp(builder.timeout(Some(timeout)).build())
        };
        Ok(Self { transport, from })
    }

    /// The domain of the sender address (used to build Message-IDs).
    pub fn domain(&self) -> &str {
        self.from.email.domain()
    }

    /// Sends `email` (text and HTML alternatives, and its calendar file when it has one).
    /// Ok means the SMTP server accepted it (or the file was written).
    pub async fn send(&self, email: &Outgoing) -> Result<(), SendError> {
        let message = self.build(email).map_err(SendError::Invalid)?;
        match &self.transport {
            Transport::Smtp(t) => t.send(message).await.map(|_| ()).map_err(|e| {
                if e.is_permanent() {
                    SendError::Refused(format!("{e}"))
                } else {
                    SendError::Failed(format!("{e}"))
                }
            }),
            Transport::File(t) => t
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| SendError::Failed(format!("{e}"))),
        }
    }

    fn build(&self, email: &Outgoing) -> Result<Message, String> {
        let to: Mailbox = email.to.parse().map_err(|e| format!("invalid recipient: {e}"))?;
        let alternatives = MultiPart::alternative_plain_html(email.text.clone(), email.html.clone());
        let body = match &email.calendar {
            None => alternatives,
            Some(ics) => {
                let kind = format!("text/calendar; charset=utf-8; method={}", ics.method);
                let kind = ContentType::parse(&kind).map_err(|e| format!("calendar type: {e}"))?;
                let file = Attachment::new("invite.ics".into()).body(ics.body.clone(), kind);
                MultiPart::mixed().multipart(alternatives).singlepart(file)
            }
        };
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(email.subject.clone())
            .message_id(Some(email.message_id.clone()))
            .multipart(body)
            .map_err(|e| format!("{e}"))
    }
}

/// One email ready to go.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    /// The full header value, angle brackets included: `<job-id@domain>`.
    pub message_id: String,
    pub calendar: Option<CalendarFile>,
}

/// An iCalendar attachment and its method (`REQUEST`, `CANCEL`).
#[derive(Debug, Clone)]
pub struct CalendarFile {
    pub method: &'static str,
    pub body: String,
}

/// Why a message was not sent.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SendError {
    /// The message cannot be built (e.g. a malformed recipient): sending again will not help.
    #[error("{0}")]
    Invalid(String),
    /// The server refused it with a permanent (5xx) reply.
    #[error("refused: {0}")]
    Refused(String),
    /// A transient failure: connection, timeout, 4xx.
    #[error("{0}")]
    Failed(String),
}
