//! Sending email: building the message, handing it to a transport, and
//! saying clearly what happened.
//!
//! Three transports: `smtp` for real delivery (a pool of connections with
//! `TCP_NODELAY`, see the `smtp` module; our own timeout around the whole
//! send, waiting for a free connection included, since lettre's covers only
//! the connect), `file` for a laptop (one `.eml` per message), `memory` for
//! tests. Callers get a [`SendError`] that already says whether trying
//! again can help.
//! What the file and memory transports kept can be read back
//! ([`Mailer::mailbox`]) for the dev mailbox page; [`mime`] parses it.
//! Every message is built in one place, [`Mailer::send`], which is where it
//! gets its `Auto-Submitted` header ([`headers`]) and, when configured, its
//! DKIM signature ([`dkim`]).

mod address;
pub mod dkim;
pub mod headers;
pub mod mime;
pub mod outbox;
mod smtp;
mod templates;

pub use address::{EmailAddress, EmailAddressError, MAX_EMAIL_LEN};
pub use templates::{EmailTemplates, KINDS, RenderedEmail, TemplateError};

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use lettre::address::Envelope;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::{Address, Message};

use crate::clock::Clock;
use crate::config::{Config, MailTransportKind};
use smtp::SmtpPool;

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
    /// The server lacks an extension the message needs (SMTPUTF8 for an
    /// address that is not ASCII, 8BITMIME for a body that is not). Trying
    /// again cannot help, but the address is not at fault, so it is failed
    /// without being suppressed: another server may carry it.
    #[error("the mail server cannot carry this message: {0}")]
    Unsupported(String),
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

/// A message the file or memory transport kept, exactly as written, under
/// the id the dev mailbox links to: the file name, or the memory index.
#[derive(Debug, Clone)]
pub struct StoredEmail {
    pub id: String,
    pub raw: String,
}

impl StoredEmail {
    pub fn parse(&self) -> mime::ParsedEmail {
        mime::parse(&self.raw)
    }

    /// The header `name`, unfolded, when the message has one.
    pub fn parse_header(&self, name: &str) -> Option<String> {
        mime::headers(&self.raw).get(name).map(str::to_owned)
    }
}

/// Most messages the dev mailbox lists; older files stay on disk, unlisted.
pub const MAILBOX_LIMIT: usize = 200;
/// Most bytes read of one kept message; ours are a few kilobytes.
pub const MAX_STORED_EMAIL_BYTES: u64 = 1024 * 1024;

enum Transport {
    Smtp(SmtpPool),
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
    /// Signs every message when `mail.dkim_*` are set.
    dkim: Option<dkim::DkimSigner>,
    /// `inbound.bounce_address`: the envelope sender, with each email's
    /// own key in place of `{key}`; `None` sends from the From address.
    bounce_address: Option<String>,
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
            MailTransportKind::Smtp => Transport::Smtp(
                SmtpPool::new(&config.mail.smtp_url, config.mail.smtp_pool_size)
                    .map_err(|e| format!("mail.smtp_url: {e}"))?,
            ),
            MailTransportKind::File => {
                let dir = config.mail_file_dir().to_path_buf();
                prepare_mail_dir(&dir)?;
                Transport::File(dir)
            }
            MailTransportKind::Memory => Transport::Memory(Arc::default()),
        };
        let dkim = dkim::DkimSigner::from_config(&config.mail)?;
        if let Some(signer) = &dkim {
            tracing::info!(
                dkim.domain = %config.mail.dkim_domain,
                dkim.selector = %config.mail.dkim_selector,
                dkim.algorithm = %signer.kind(),
                "outgoing mail is DKIM-signed"
            );
            // DMARC counts a signature only for the From's own domain.
            if !dkim::aligns_with_from(&config.mail.dkim_domain, from.email.as_ref()) {
                tracing::warn!(
                    dkim.domain = %config.mail.dkim_domain,
                    "mail.from is not in mail.dkim_domain: DMARC will not count the signature"
                );
            }
        }
        // Message-IDs carry the public host, so they are ours and stable.
        let message_domain = url::Url::parse(&config.server.public_url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_else(|| "shoulder.invalid".into());
        Ok(Mailer {
            bounce_address: Some(config.inbound.bounce_address.clone()).filter(|a| !a.is_empty()),
            transport,
            from,
            message_domain,
            timeout: Duration::from_secs(config.mail.send_timeout_secs),
            templates,
            clock,
            dkim,
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

    /// What the file or memory transport has kept, newest first, at most
    /// [`MAILBOX_LIMIT`] of them; `None` for SMTP, which keeps nothing.
    pub async fn mailbox(&self) -> Result<Option<Vec<StoredEmail>>, String> {
        match &self.transport {
            Transport::Smtp(_) => Ok(None),
            Transport::Memory(sent) => {
                let sent = sent.lock().unwrap_or_else(PoisonError::into_inner);
                let newest_first = sent.iter().enumerate().rev().take(MAILBOX_LIMIT);
                Ok(Some(
                    newest_first
                        .map(|(index, email)| StoredEmail {
                            id: index.to_string(),
                            raw: email.raw.clone(),
                        })
                        .collect(),
                ))
            }
            Transport::File(dir) => {
                let dir = dir.clone();
                tokio::task::spawn_blocking(move || read_mail_dir(&dir))
                    .await
                    .map_err(|e| format!("reading the mail folder: {e}"))?
                    .map(Some)
            }
        }
    }

    /// One kept message by its id; `None` when the id names none (for the
    /// file transport, anything but a plain file name it could have written)
    /// and for SMTP.
    pub async fn mailbox_message(&self, id: &str) -> Result<Option<StoredEmail>, String> {
        match &self.transport {
            Transport::Smtp(_) => Ok(None),
            Transport::Memory(sent) => {
                // Only the form `mailbox` writes: "+1" or "01" name nothing.
                let Some(index) = id.parse::<usize>().ok().filter(|i| i.to_string() == id) else {
                    return Ok(None);
                };
                let sent = sent.lock().unwrap_or_else(PoisonError::into_inner);
                Ok(sent.get(index).map(|email| StoredEmail {
                    id: id.to_string(),
                    raw: email.raw.clone(),
                }))
            }
            Transport::File(dir) => {
                if !is_mail_file_name(id) {
                    return Ok(None);
                }
                let path = dir.join(id);
                let raw = tokio::task::spawn_blocking(move || read_mail_file(&path))
                    .await
                    .map_err(|e| format!("reading a kept message: {e}"))??;
                Ok(raw.map(|raw| StoredEmail {
                    id: id.to_string(),
                    raw,
                }))
            }
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
        let to_address: Address = email
            .to
            .as_str()
            .parse()
            .map_err(|e| SendError::Message(format!("recipient: {e}")))?;
        // Given the envelope, lettre need not parse back the To and From
        // headers it has just written: about a tenth of building a message.
        // With a bounce address, a bounce names the email it is about in
        // the address it comes back to.
        let sender = match &self.bounce_address {
            Some(template) => template
                .replace("{key}", &email.message_key)
                .parse()
                .map_err(|e| SendError::Message(format!("bounce address: {e}")))?,
            None => self.from.email.clone(),
        };
        let envelope = Envelope::new(Some(sender), vec![to_address.clone()])
            .map_err(|e| SendError::Message(format!("envelope: {e}")))?;
        // A display name is people's text: drop control characters so a
        // CRLF in a name can never become a header of its own.
        let to_name = email
            .to_name
            .as_deref()
            .map(|name| name.chars().filter(|c| !c.is_control()).collect::<String>());
        let mut builder = Message::builder()
            .envelope(envelope)
            .from(self.from.clone())
            .to(Mailbox::new(to_name, to_address))
            .subject(email.content.subject.clone())
            .message_id(Some(message_id.to_string()))
            .date(self.clock.now().into());
        // Everything we send is written by a program. A kind of mail that
        // says otherwise (a receipt is `auto-replied`) brings its own.
        if !email
            .headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case(headers::AUTO_SUBMITTED))
        {
            builder = builder.raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str(headers::AUTO_SUBMITTED),
                headers::AUTO_GENERATED.to_string(),
            ));
        }
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
        let mut message = builder
            .multipart(MultiPart::alternative_plain_html(
                email.content.text.clone(),
                email.content.html.clone(),
            ))
            .map_err(|e| SendError::Message(e.to_string()))?;
        // Last, once the message is whole; each attempt is signed afresh,
        // as its Date is new.
        if let Some(signer) = &self.dkim {
            signer.sign(&mut message);
        }
        Ok(message)
    }

    async fn deliver(&self, message: Message, message_id: &str) -> Result<String, SendError> {
        match &self.transport {
            Transport::Smtp(smtp) => {
                let response = smtp.send(message.envelope(), &message.formatted()).await?;
                Ok(format!(
                    "{} {}",
                    response.code(),
                    response.message().collect::<Vec<_>>().join(" ")
                ))
            }
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

fn file_safe(message_id: &str) -> String {
    message_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
        .take(80)
        .collect()
}

/// Whether `name` could be a file the file transport wrote: a time stamp
/// and `file_safe` characters, ending in `.eml`. Such a name has no
/// separator and does not start with a dot, so joined to the mail folder it
/// stays inside it, whatever a request asked for.
fn is_mail_file_name(name: &str) -> bool {
    name.len() <= 128
        && name.ends_with(".eml")
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
}

/// The kept messages in the mail folder, newest first, at most
/// [`MAILBOX_LIMIT`]. A folder removed since start-up holds nothing.
fn read_mail_dir(dir: &std::path::Path) -> Result<Vec<StoredEmail>, String> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("cannot list {}: {e}", dir.display())),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        // `DirEntry::metadata` does not follow links: only plain files count.
        let Ok(metadata) = entry.metadata() else {
            continue;
        };
        if !is_mail_file_name(&name) || !metadata.is_file() {
            continue;
        }
        let stamp = name.split('-').next().unwrap_or_default().to_string();
        let modified = metadata.modified().unwrap_or(std::time::UNIX_EPOCH);
        found.push((stamp, modified, name));
    }
    // Names start with the UTC time of writing, so they sort by age; the
    // file's own time orders two written within one microsecond (which a
    // fixed test clock makes common).
    found.sort_by(|a, b| b.cmp(a));
    if found.len() > MAILBOX_LIMIT {
        tracing::warn!(
            messages = found.len(),
            limit = MAILBOX_LIMIT,
            "dev mailbox lists only the newest messages"
        );
        found.truncate(MAILBOX_LIMIT);
    }
    let mut kept = Vec::with_capacity(found.len());
    for (_, _, name) in found {
        if let Some(raw) = read_mail_file(&dir.join(&name))? {
            kept.push(StoredEmail { id: name, raw });
        }
    }
    Ok(kept)
}

/// One kept message, at most [`MAX_STORED_EMAIL_BYTES`] of it; `None` when
/// there is no plain file at `path` (links are not followed).
fn read_mail_file(path: &std::path::Path) -> Result<Option<String>, String> {
    use std::io::Read;
    let cannot = |e: std::io::Error| format!("cannot read {}: {e}", path.display());
    match std::fs::symlink_metadata(path) {
        Ok(metadata) if metadata.is_file() => {}
        Ok(_) => return Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(cannot(e)),
    }
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(cannot(e)),
    };
    let mut bytes = Vec::new();
    file.take(MAX_STORED_EMAIL_BYTES)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
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
