//! Sending email: building the message, handing it to a transport, and
//! saying clearly what happened.
//!
//! Three transports: `smtp` for real delivery (pooled connections, our own
//! timeout around the whole send, since lettre's covers only the connect),
//! `file` for a laptop (one `.eml` per message), `memory` for tests. Callers
//! get a [`SendError`] that already says whether trying again can help.

mod address;
mod templates;

pub use address::{EmailAddress, EmailAddressError, MAX_EMAIL_LEN};
pub use templates::{EmailTemplates, KINDS, RenderedEmail, TemplateError};

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::clock::Clock;
use crate::config::{Config, MailTransportKind};

/// One email, addressed and worded, with the id that makes a resend recognisable.
#[derive(Debug, Clone)]
pub struct OutgoingEmail {
    pub to: EmailAddress,
    pub to_name: Option<String>,
    pub content: RenderedEmail,
    /// The part before `@` of the Message-ID; derived from the delivery id.
    pub message_key: String,
    /// Extra headers such as `List-Unsubscribe`; names are ASCII tokens.
    pub headers: Vec<(String, String)>,
}

/// What the transport said when it took the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendReceipt {
    pub message_id: String,
    pub response: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Worth trying again later: a 4xx answer, a dropped connection, a refused connect.
    #[error("temporary failure: {0}")]
    Transient(String),
    /// The server refused for good (5xx); sending again will not help.
    #[error("permanent failure: {0}")]
    Permanent(String),
    /// No answer within our own limit; treated like a temporary failure.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// We could not build the message (a bad address or header); a bug or bad data.
    #[error("cannot build the message: {0}")]
    Message(String),
}

impl SendError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, SendError::Transient(_) | SendError::Timeout(_))
    }
}

/// A message as the memory transport keeps it.
#[derive(Debug, Clone)]
pub struct SentEmail {
    pub to: Vec<String>,
    pub message_id: String,
    pub raw: String,
}

enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    File(PathBuf),
    Memory(Arc<Mutex<Vec<SentEmail>>>),
}

pub struct Mailer {
    transport: Transport,
    from: Mailbox,
    message_domain: String,
    timeout: Duration,
    templates: EmailTemplates,
    clock: Clock,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.transport {
            Transport::Smtp(_) => "smtp",
            Transport::File(_) => "file",
            Transport::Memory(_) => "memory",
        };
        f.debug_struct("Mailer").field("transport", &kind).finish()
    }
}

/// Parses `mail.from`: an address with an optional display name.
pub fn parse_from(raw: &str) -> Result<Mailbox, String> {
    if raw.chars().any(char::is_control) {
        return Err("must not contain line breaks or control characters".into());
    }
    let mailbox: Mailbox = raw
        .parse()
        .map_err(|_| "expected an address like \"Shoulder <circles@example.org>\"".to_string())?;
    EmailAddress::parse(mailbox.email.as_ref()).map_err(|e| e.to_string())?;
    Ok(mailbox)
}

impl Mailer {
    /// Builds the configured transport. Nothing is sent, and no connection is
    /// opened, until the first message.
    pub fn from_config(config: &Config, clock: Clock) -> Result<Mailer, String> {
        let templates = EmailTemplates::load(std::path::Path::new(&config.mail.templates_dir))
            .map_err(|e| e.to_string())?;
        let from = parse_from(&config.mail.from).map_err(|e| format!("mail.from: {e}"))?;
        let transport = match config.mail.transport {
            MailTransportKind::Smtp => {
                let builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(&config.mail.smtp_url)
                    .map_err(|e| format!("mail.smtp_url: {e}"))?;
                Transport::Smtp(
                    builder
                        .timeout(Some(Duration::from_secs(config.mail.send_timeout_secs)))
                        .pool_config(PoolConfig::new().max_size(config.mail.smtp_pool_size))
                        .build(),
                )
            }
            MailTransportKind::File => {
                let dir = config.mail_file_dir().to_path_buf();
                prepare_mail_dir(&dir)?;
                Transport::File(dir)
            }
            MailTransportKind::Memory => Transport::Memory(Arc::default()),
        };
        // Message-IDs carry the public host, so they are ours and stable.
        let message_domain = url::Url::parse(&config.server.public_url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_else(|| "shoulder.invalid".into());
        Ok(Mailer {
            transport,
            from,
            message_domain,
            timeout: Duration::from_secs(config.mail.send_timeout_secs),
            templates,
            clock,
        })
    }

    pub fn templates(&self) -> &EmailTemplates {
        &self.templates
    }

    pub fn transport_name(&self) -> &'static str {
        match self.transport {
            Transport::Smtp(_) => "smtp",
            Transport::File(_) => "file",
            Transport::Memory(_) => "memory",
        }
    }

    /// What the memory transport holds, oldest first; empty for the others.
    pub fn memory_messages(&self) -> Vec<SentEmail> {
        match &self.transport {
            Transport::Memory(sent) => sent.lock().map(|s| s.clone()).unwrap_or_default(),
            _ => Vec::new(),
        }
    }

    pub fn message_id_for(&self, message_key: &str) -> String {
        format!("<{message_key}@{}>", self.message_domain)
    }

    /// Sends one email within our own time limit and classifies any failure.
    pub async fn send(&self, email: &OutgoingEmail) -> Result<SendReceipt, SendError> {
        let message_id = self.message_id_for(&email.message_key);
        let message = self.build(email, &message_id)?;
        match tokio::time::timeout(self.timeout, self.deliver(message, &message_id)).await {
            Ok(outcome) => outcome.map(|response| SendReceipt {
                message_id,
                response,
            }),
            Err(_) => Err(SendError::Timeout(self.timeout)),
        }
    }

    fn build(&self, email: &OutgoingEmail, message_id: &str) -> Result<Message, SendError> {
        let to_address = email
            .to
            .as_str()
            .parse()
            .map_err(|e| SendError::Message(format!("recipient: {e}")))?;
        // A display name is people's text: drop control characters so a
        // CRLF in a name can never become a header of its own.
        let to_name = email
            .to_name
            .as_deref()
            .map(|name| name.chars().filter(|c| !c.is_control()).collect::<String>());
        let mut builder = Message::builder()
            .from(self.from.clone())
            .to(Mailbox::new(to_name, to_address))
            .subject(email.content.subject.clone())
            .message_id(Some(message_id.to_string()))
            .date(self.clock.now().into());
        for (name, value) in &email.headers {
            let name = HeaderName::new_from_ascii(name.clone())
                .map_err(|_| SendError::Message(format!("bad header name {name:?}")))?;
            if value.chars().any(char::is_control) {
                return Err(SendError::Message(format!(
                    "header {name} has a control character"
                )));
            }
            builder = builder.raw_header(HeaderValue::new(name, value.clone()));
        }
        builder
            .multipart(MultiPart::alternative_plain_html(
                email.content.text.clone(),
                email.content.html.clone(),
            ))
            .map_err(|e| SendError::Message(e.to_string()))
    }

    async fn deliver(&self, message: Message, message_id: &str) -> Result<String, SendError> {
        match &self.transport {
            Transport::Smtp(smtp) => match smtp.send(message).await {
                Ok(response) => Ok(format!(
                    "{} {}",
                    response.code(),
                    response.message().collect::<Vec<_>>().join(" ")
                )),
                Err(error) => Err(classify_smtp_error(&error)),
            },
            Transport::File(dir) => {
                let name = format!(
                    "{}-{}.eml",
                    self.clock.now().format("%Y%m%dT%H%M%S%.6fZ"),
                    file_safe(message_id)
                );
                let path = dir.join(name);
                tokio::fs::write(&path, message.formatted())
                    .await
                    .map_err(|e| {
                        SendError::Transient(format!("cannot write {}: {e}", path.display()))
                    })?;
                Ok(format!("written to {}", path.display()))
            }
            Transport::Memory(sent) => {
                let to = message
                    .envelope()
                    .to()
                    .iter()
                    .map(|a| a.to_string())
                    .collect();
                let raw = String::from_utf8_lossy(&message.formatted()).into_owned();
                let mut sent = sent
                    .lock()
                    .map_err(|_| SendError::Transient("memory transport poisoned".into()))?;
                sent.push(SentEmail {
                    to,
                    message_id: message_id.to_string(),
                    raw,
                });
                Ok("kept in memory".into())
            }
        }
    }
}

fn classify_smtp_error(error: &lettre::transport::smtp::Error) -> SendError {
    let text = error.to_string();
    if error.is_permanent() {
        SendError::Permanent(text)
    } else if error.is_timeout() {
        SendError::Transient(format!("timed out: {text}"))
    } else {
        // 4xx answers, refused or dropped connections, TLS hiccups: the
        // message may well go through on a later try.
        SendError::Transient(text)
    }
}

fn file_safe(message_id: &str) -> String {
    message_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
        .take(80)
        .collect()
}

/// The file transport's folder: created if missing, but its parent must exist,
/// so a typo in the path fails loudly instead of growing a tree somewhere.
fn prepare_mail_dir(dir: &std::path::Path) -> Result<(), String> {
    if dir.is_dir() {
        return Ok(());
    }
    if dir.exists() {
        return Err(format!("mail.file_dir: {} is not a folder", dir.display()));
    }
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => std::path::Path::new("."),
    };
    if !parent.is_dir() {
        return Err(format!(
            "mail.file_dir: the folder {} does not exist (create it, or set mail.file_dir)",
            parent.display()
        ));
    }
    std::fs::create_dir(dir)
        .map_err(|e| format!("mail.file_dir: cannot create {}: {e}", dir.display()))
}
