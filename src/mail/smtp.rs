//! The SMTP transport: a small pool of connections whose sockets we open
//! ourselves, with `TCP_NODELAY`.
//!
//! Why not lettre's own pooled `AsyncSmtpTransport`: lettre 0.11.23 writes
//! the end-of-data marker (`\r\n.\r\n`) as a separate small packet on a
//! socket without `TCP_NODELAY`, so Nagle's algorithm holds it until the
//! server acknowledges the message body, which the server delays (it has
//! nothing to say until the marker comes): about 40 ms per message, about
//! 220 messages/s whatever the pool size (fixed upstream in lettre#1159, not
//! yet released). So we open the TCP stream, set `TCP_NODELAY`, and hand it
//! to `AsyncSmtpConnection::connect_with_transport`; lettre still speaks the
//! protocol (EHLO, STARTTLS, AUTH, MAIL/RCPT/DATA, dot-stuffing).
//!
//! What `mail.smtp_url` may ask for, as lettre's `from_url` read it before:
//! `smtp://host[:25]` plain; `smtp://host[:587]?tls=required` STARTTLS or
//! fail; `?tls=opportunistic` STARTTLS when the server offers it;
//! `smtps://host[:465]` TLS from the first byte; `user:password@` (percent
//! encoded) for AUTH PLAIN or LOGIN; a path (`smtp://host/name`) for the
//! EHLO name, the machine's host name otherwise. Plain and STARTTLS
//! connections run over our socket, so they have `TCP_NODELAY`: STARTTLS
//! wraps the very stream we opened. `smtps://` does not: lettre 0.11 can
//! start TLS on a stream of ours only after the server's greeting (there is
//! no public way to wrap it first), so for implicit TLS lettre opens the
//! socket itself and those messages still wait for the delayed ACK. Doing it
//! ourselves would need `tokio-rustls` as a direct dependency.
//!
//! The pool: at most `mail.smtp_pool_size` sends at once (a semaphore; lettre's
//! pool size capped only idle connections), so at most that many connections.
//! A send takes the most recently parked connection, or opens a new one.
//! After a 250 the connection is parked again; after any error, or when our
//! timeout drops the send midway, it is dropped, never reused in an unknown
//! state. Connections parked longer than [`IDLE_TIMEOUT`] are closed at the
//! next send instead of being reused.
//!
//! A parked connection may have been closed by the server since (many hang
//! up after some number of messages, or when idle). We used to ask with a
//! NOOP before every send, which cost one round trip in five. Instead the
//! message's own `MAIL FROM` is the check: if a parked connection fails
//! there, before anything of the message has left us, the server cannot
//! have taken it, so the same send moves on to the next connection (a new
//! one at the latest) rather than failing. That is why [`transfer`] speaks
//! the steps of lettre's `send` itself: lettre's one call cannot say how
//! far it got.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use lettre::transport::smtp::response::Response;
use tokio::sync::Semaphore;
use url::{Host, Url};

use super::SendError;

/// An idle connection older than this is closed rather than reused; lettre's
/// pool used the same default. Servers hang up on idle clients after a few
/// minutes (RFC 5321 suggests 5), so this stays below that.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

const SMTP_PORT: u16 = 25;
const SUBMISSION_PORT: u16 = 587;
const SUBMISSIONS_PORT: u16 = 465;

/// How the connection is protected, from the URL's scheme and `tls` parameter.
enum Security {
    Plain,
    /// STARTTLS after the greeting; `required: false` goes on in plain text
    /// when the server does not offer it.
    StartTls {
        tls: Box<TlsParameters>,
        required: bool,
    },
    /// TLS from the first byte (`smtps://`).
    Implicit(Box<TlsParameters>),
}

/// Where and how to connect, read once from `mail.smtp_url`.
struct Server {
    host: String,
    port: u16,
    security: Security,
    hello: ClientId,
    credentials: Option<Credentials>,
}

struct Idle {
    connection: AsyncSmtpConnection,
    since: Instant,
}

pub(crate) struct SmtpPool {
    server: Server,
    /// Held only to push or pop, never across an await.
    idle: Mutex<Vec<Idle>>,
    /// One permit per send in flight: never more connections than the pool size.
    sending: Semaphore,
}

/// How one attempt on one connection failed.
enum Failure {
    /// `MAIL FROM` failed without a refusal for good: the connection was
    /// closed, or the server answered 4xx (421 is "closing"). Nothing of the
    /// message reached the server, so when the connection was a parked one,
    /// another connection may carry the same message at once.
    BeforeMessage(SendError),
    /// Any other failure; after `MAIL FROM` the server may even hold the
    /// message, so it is never sent again within this send.
    Send(SendError),
}

impl SmtpPool {
    /// Reads the URL; opens nothing until the first send.
    pub(crate) fn new(smtp_url: &str, pool_size: u32) -> Result<SmtpPool, String> {
        Ok(SmtpPool {
            server: Server::from_url(smtp_url)?,
            idle: Mutex::new(Vec::new()),
            sending: Semaphore::new(usize::try_from(pool_size).unwrap_or(1).max(1)),
        })
    }

    /// Sends one message and classifies any failure. Waiting for a free
    /// connection is part of the send, so the caller's timeout covers it.
    pub(crate) async fn send(
        &self,
        envelope: &Envelope,
        raw: &[u8],
    ) -> Result<Response, SendError> {
        let _permit = self
            .sending
            .acquire()
            .await
            .map_err(|_| SendError::Transient("the SMTP pool is closed".into()))?;
        // Each turn either returns or drops one parked connection, so this
        // ends with a connection opened for this very send at the latest.
        loop {
            let (mut connection, parked) = match self.take_parked() {
                Some(connection) => (connection, true),
                None => (self.server.connect().await?, false),
            };
            let failure = match transfer(&mut connection, envelope, raw).await {
                Ok(response) => {
                    self.park(connection);
                    return Ok(response);
                }
                Err(failure) => failure,
            };
            // As lettre's own `send` does: QUIT if the server still listens,
            // then close; never reuse a connection in an unknown state.
            connection.abort().await;
            match failure {
                Failure::BeforeMessage(error) if parked => tracing::debug!(
                    smtp.host = %self.server.host,
                    error = %error,
                    "a pooled SMTP connection failed before the message; trying another"
                ),
                Failure::BeforeMessage(error) | Failure::Send(error) => return Err(error),
            }
        }
    }

    /// The most recently parked connection that has not idled too long.
    fn take_parked(&self) -> Option<AsyncSmtpConnection> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        idle.retain(|parked| parked.since.elapsed() < IDLE_TIMEOUT);
        idle.pop().map(|parked| parked.connection)
    }

    fn park(&self, connection: AsyncSmtpConnection) {
        if connection.has_broken() {
            return;
        }
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Idle {
                connection,
                since: Instant::now(),
            });
    }
}

/// One message over one connection: MAIL, RCPT for each recipient, DATA and
/// the content, as lettre's `AsyncSmtpConnection::send` does, but telling a
/// failure of the first command apart (see the module's doc).
async fn transfer(
    connection: &mut AsyncSmtpConnection,
    envelope: &Envelope,
    raw: &[u8],
) -> Result<Response, Failure> {
    let parameters = mail_parameters(connection, envelope, raw).map_err(Failure::Send)?;
    connection
        .command(Mail::new(envelope.from().cloned(), parameters))
        .await
        .map_err(|e| match classify(&e) {
            error @ SendError::Permanent(_) => Failure::Send(error),
            error => Failure::BeforeMessage(error),
        })?;
    for recipient in envelope.to() {
        connection
            .command(Rcpt::new(recipient.clone(), Vec::new()))
            .await
            .map_err(|e| Failure::Send(classify(&e)))?;
    }
    connection
        .command(Data)
        .await
        .map_err(|e| Failure::Send(classify(&e)))?;
    connection
        .message(raw)
        .await
        .map_err(|e| Failure::Send(classify(&e)))
}

/// `SMTPUTF8` for non-ASCII addresses and `8BITMIME` for a non-ASCII body,
/// when the server offers them; without them such a message cannot go to
/// this server (RFC 6531, RFC 6152), and no later try will change that, so
/// it fails for good rather than being retried until the cutoff. Domains are
/// stored in ASCII, so only a part before the `@` that is not ASCII needs
/// SMTPUTF8.
fn mail_parameters(
    connection: &AsyncSmtpConnection,
    envelope: &Envelope,
    raw: &[u8],
) -> Result<Vec<MailParameter>, SendError> {
    let server = connection.server_info();
    let mut parameters = Vec::new();
    let addresses_ascii = envelope
        .from()
        .into_iter()
        .chain(envelope.to())
        .all(|address| AsRef::<str>::as_ref(address).is_ascii());
    if !addresses_ascii {
        if !server.supports_feature(Extension::SmtpUtfEight) {
            return Err(SendError::Unsupported(
                "the envelope has non-ASCII addresses but the server does not offer SMTPUTF8"
                    .into(),
            ));
        }
        parameters.push(MailParameter::SmtpUtfEight);
    }
    if !raw.is_ascii() {
        if !server.supports_feature(Extension::EightBitMime) {
            return Err(SendError::Unsupported(
                "the message has non-ASCII bytes but the server does not offer 8BITMIME".into(),
            ));
        }
        parameters.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }
    Ok(parameters)
}

impl Server {
    fn from_url(raw: &str) -> Result<Server, String> {
        let url = Url::parse(raw).map_err(|e| format!("not a valid URL ({e})"))?;
        let host = match url.host() {
            Some(Host::Domain(name)) if !name.is_empty() => name.to_string(),
            Some(Host::Ipv4(ip)) => ip.to_string(),
            Some(Host::Ipv6(ip)) => ip.to_string(),
            _ => return Err("has no host".into()),
        };
        let tls_param = url
            .query_pairs()
            .find(|(key, _)| key == "tls")
            .map(|(_, value)| value.into_owned());
        let tls = || {
            TlsParameters::new(host.clone())
                .map(Box::new)
                .map_err(|e| format!("TLS for {host}: {e}"))
        };
        let (security, default_port) = match (url.scheme(), tls_param.as_deref()) {
            ("smtp", None) => (Security::Plain, SMTP_PORT),
            ("smtp", Some("required")) => (
                Security::StartTls {
                    tls: tls()?,
                    required: true,
                },
                SUBMISSION_PORT,
            ),
            ("smtp", Some("opportunistic")) => (
                Security::StartTls {
                    tls: tls()?,
                    required: false,
                },
                SUBMISSION_PORT,
            ),
            ("smtps", _) => (Security::Implicit(tls()?), SUBMISSIONS_PORT),
            (scheme, tls) => {
                return Err(format!(
                    "unknown scheme {scheme:?} or tls parameter {tls:?} \
                     (expected smtp://, smtp://...?tls=required|opportunistic, or smtps://)"
                ));
            }
        };
        // A path names us in EHLO; otherwise the machine's host name, looked
        // up once here rather than on every connection.
        let hello = match url.path().trim_matches('/') {
            "" => ClientId::default(),
            name => ClientId::Domain(name.to_string()),
        };
        let credentials = match url.password() {
            Some(password) => Some(Credentials::new(
                percent_decode(url.username()).map_err(|e| format!("user name: {e}"))?,
                percent_decode(password).map_err(|e| format!("password: {e}"))?,
            )),
            None => None,
        };
        Ok(Server {
            port: url.port().unwrap_or(default_port),
            host,
            security,
            hello,
            credentials,
        })
    }

    /// Opens, greets, secures and authenticates one connection.
    async fn connect(&self) -> Result<AsyncSmtpConnection, SendError> {
        tracing::debug!(smtp.host = %self.host, smtp.port = self.port, "opening an SMTP connection");
        let mut connection = match &self.security {
            Security::Implicit(tls) => AsyncSmtpConnection::connect_tokio1(
                (self.host.as_str(), self.port),
                None,
                &self.hello,
                Some((**tls).clone()),
                None,
            )
            .await
            .map_err(|e| setup_failed(&e))?,
            Security::Plain | Security::StartTls { .. } => {
                let stream = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
                    .await
                    .map_err(|e| {
                        SendError::Transient(format!(
                            "cannot connect to {}:{}: {e}",
                            self.host, self.port
                        ))
                    })?;
                // The point of this module: see its doc.
                stream
                    .set_nodelay(true)
                    .map_err(|e| SendError::Transient(format!("cannot set TCP_NODELAY: {e}")))?;
                AsyncSmtpConnection::connect_with_transport(Box::new(stream), &self.hello)
                    .await
                    .map_err(|e| setup_failed(&e))?
            }
        };
        match &self.security {
            Security::StartTls {
                tls,
                required: true,
            } => connection.starttls((**tls).clone(), &self.hello).await,
            Security::StartTls {
                tls,
                required: false,
            } if connection.can_starttls() => {
                connection.starttls((**tls).clone(), &self.hello).await
            }
            _ => Ok(()),
        }
        .map_err(|e| setup_failed(&e))?;
        if let Some(credentials) = &self.credentials {
            connection
                .auth(DEFAULT_MECHANISMS, credentials)
                .await
                .map_err(|e| setup_failed(&e))?;
        }
        Ok(connection)
    }
}

/// A refusal while setting the session up (greeting, STARTTLS, AUTH) is
/// about our server's settings, such as a wrong password, never about the
/// recipient: it is retried like any temporary failure, so that no address
/// is suppressed for it, and after `mail.retry_for_hours` marked failed.
fn setup_failed(error: &lettre::transport::smtp::Error) -> SendError {
    SendError::Transient(format!("the SMTP server refused the session: {error}"))
}

/// What trying again can do about a failure of one message, from lettre's
/// error.
fn classify(error: &lettre::transport::smtp::Error) -> SendError {
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

/// Decodes the `%XX` escapes of a URL's user name or password, as lettre's
/// `from_url` did; the result must be UTF-8.
fn percent_decode(raw: &str) -> Result<String, String> {
    let bytes = raw.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                decoded.push(byte);
                i += 3;
            }
            None => {
                decoded.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8(decoded).map_err(|_| "is not UTF-8 once decoded".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_escapes_are_decoded_and_the_rest_kept() {
        assert_eq!(percent_decode("p%40ss%2Fw+rd").as_deref(), Ok("p@ss/w+rd"));
        assert_eq!(percent_decode("50%").as_deref(), Ok("50%"));
        assert_eq!(percent_decode("%zz%4").as_deref(), Ok("%zz%4"));
        assert_eq!(percent_decode("%C3%A9").as_deref(), Ok("é"));
        assert!(percent_decode("%FF").is_err());
    }

    #[test]
    fn ports_and_security_follow_the_url() {
        let cases = [
            ("smtp://mail.example.org", SMTP_PORT, "plain"),
            ("smtp://mail.example.org:2525", 2525, "plain"),
            (
                "smtp://mail.example.org?tls=required",
                SUBMISSION_PORT,
                "starttls",
            ),
            (
                "smtp://mail.example.org?tls=opportunistic",
                SUBMISSION_PORT,
                "maybe",
            ),
            ("smtps://mail.example.org", SUBMISSIONS_PORT, "implicit"),
            ("smtps://[::1]:4650", 4650, "implicit"),
        ];
        for (url, port, security) in cases {
            let server = Server::from_url(url).unwrap_or_else(|e| panic!("{url}: {e}"));
            let found = match server.security {
                Security::Plain => "plain",
                Security::StartTls { required: true, .. } => "starttls",
                Security::StartTls {
                    required: false, ..
                } => "maybe",
                Security::Implicit(_) => "implicit",
            };
            assert_eq!((server.port, found), (port, security), "{url}");
        }
        assert_eq!(
            Server::from_url("smtps://[::1]:4650")
                .map(|s| s.host)
                .as_deref(),
            Ok("::1")
        );
    }

    #[test]
    fn credentials_and_the_ehlo_name_come_from_the_url() {
        let server =
            Server::from_url("smtp://ada%40example.org:p%40ss@mail.example.org/me.example")
                .expect("a valid URL");
        assert!(server.credentials.is_some());
        assert_eq!(server.hello, ClientId::Domain("me.example".into()));
        let server = Server::from_url("smtp://ada@mail.example.org").expect("a valid URL");
        assert!(server.credentials.is_none(), "no password, no AUTH");
    }

    #[test]
    fn other_schemes_and_tls_values_are_refused() {
        for url in [
            "http://mail.example.org",
            "smtp://mail.example.org?tls=maybe",
            "smtp:///nohost",
        ] {
            assert!(Server::from_url(url).is_err(), "{url}");
        }
    }
}
