//! A real SMTP server for the integration tests: plain SMTP (no TLS) on 127.0.0.1,
//! a random free port per instance, answers chosen by the test (`SmtpMode`).
//!
//! Built on mailin-embedded 0.8. Every message is decided when its DATA ends (the
//! final "."): that is where it is accepted (250, recorded), refused (451 / 550) or
//! left unanswered (Stall). HELO, MAIL and RCPT are always accepted.

#![allow(dead_code, reason = "each test uses only part of this module")]

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use mailin_embedded::response::{NO_SERVICE, OK};
use mailin_embedded::{Action, Handler, Response, Server};

/// How long `wait_for_messages` waits before failing the test.
const WAIT_LIMIT: Duration = Duration::from_secs(10);
/// Most SMTP sessions served at once (mailin-embedded's thread pool size). An idle
/// pooled client connection and a stalled message each hold one until they end.
const MAX_SESSIONS: u32 = 16;

/// How the test server answers the next messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpMode {
    /// 250 at the end of DATA; the message is recorded.
    Accept,
    /// 451 at the end of DATA (transient: the sender should retry), then closes.
    TempFail,
    /// 550 at the end of DATA (permanent: the sender should give up), then closes.
    PermFail,
    /// No answer at the end of DATA until the mode changes (the message then gets
    /// that mode's answer, so switching to Accept records it even if the client has
    /// given up: the "server had it, client never saw the 250" case) or the server is
    /// dropped (421, not recorded).
    Stall,
}

/// A message the server accepted.
#[derive(Clone, Debug)]
pub struct ReceivedEmail {
    /// The MAIL FROM address, without angle brackets.
    pub from: String,
    /// The RCPT TO addresses, without angle brackets, in order.
    pub to: Vec<String>,
    /// The raw message as received (dot-stuffing removed, CRLF kept).
    pub data: String,
}

impl ReceivedEmail {
    /// The first header called `name` (case-insensitive), unfolded and trimmed, not
    /// decoded.
    pub fn header(&self, name: &str) -> Option<String> {
        header_value(split_head_body(&self.data).0, name)
    }

    /// The Subject, with RFC 2047 encoded words (how lettre writes non-ASCII) decoded.
    pub fn subject(&self) -> Option<String> {
        self.header("Subject").map(|s| decode_encoded_words(&s))
    }

    /// The first text/plain part, transfer encoding decoded, line ends as "\n".
    /// Panics when there is none, so that a test cannot pass on an empty body.
    pub fn text_body(&self) -> String {
        find_part(&self.data, "text/plain")
            .unwrap_or_else(|| panic!("the message has no text/plain part:\n{}", self.data))
    }

    /// The first text/html part, transfer encoding decoded, line ends as "\n".
    pub fn html_body(&self) -> Option<String> {
        find_part(&self.data, "text/html")
    }
}

/// A running test SMTP server. Dropping it stops it (see `Drop`).
pub struct TestSmtp {
    port: u16,
    shared: Arc<Shared>,
}

impl TestSmtp {
    /// Starts a server on 127.0.0.1 with a free port, in `SmtpMode::Accept`.
    pub fn start() -> TestSmtp {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .expect("bind a free port on 127.0.0.1 for the test SMTP server");
        let port = listener
            .local_addr()
            .expect("local address of a bound listener")
            .port();
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                mode: SmtpMode::Accept,
                messages: Vec::new(),
                dropped: false,
            }),
            changed: Condvar::new(),
        });
        let mut server = Server::new(Session::new(Arc::clone(&shared)));
        server
            .with_name("shoulder-test-smtp")
            .with_num_threads(MAX_SESSIONS)
            .with_tcp_listener(listener);
        std::thread::Builder::new()
            .name(format!("test-smtp-{port}"))
            .spawn(move || {
                // `serve` never returns on its own; after Drop this thread ends by
                // unwinding out of it (see `Session::clone`).
                if let Err(err) = server.serve() {
                    eprintln!("test SMTP server on port {port} failed: {err}");
                }
            })
            .expect("spawn the test SMTP server thread");
        TestSmtp { port, shared }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL for lettre's `from_url`: plain SMTP, no TLS.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Changes how the next message ends (and releases stalled ones).
    pub fn set_mode(&self, mode: SmtpMode) {
        self.shared.lock().mode = mode;
        self.shared.changed.notify_all();
    }

    /// The accepted messages so far, in the order they were accepted.
    pub fn messages(&self) -> Vec<ReceivedEmail> {
        self.shared.lock().messages.clone()
    }

    /// Waits until at least `n` messages have been accepted and returns them all.
    /// Panics after 10 s.
    pub fn wait_for_messages(&self, n: usize) -> Vec<ReceivedEmail> {
        let state = self.shared.lock();
        let (state, _) = self
            .shared
            .changed
            .wait_timeout_while(state, WAIT_LIMIT, |state| state.messages.len() < n)
            .unwrap_or_else(PoisonError::into_inner);
        if state.messages.len() < n {
            let (got, mode) = (state.messages.len(), state.mode);
            drop(state);
            panic!(
                "test SMTP server on port {}: expected at least {n} message(s) within {:?}, \
                 got {got} (mode {mode:?})",
                self.port, WAIT_LIMIT
            );
        }
        state.messages.clone()
    }
}

impl Drop for TestSmtp {
    /// Stalled and later messages get 421 and are not recorded. mailin-embedded has
    /// no shutdown, so the accept loop is woken by one last connection, on which it
    /// unwinds (see `Session::clone`); its thread then waits for the sessions still
    /// open, which end when their clients hang up, and releases the port. Drop
    /// itself never waits for any of that.
    fn drop(&mut self) {
        self.shared.lock().dropped = true;
        self.shared.changed.notify_all();
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        // Failing is fine: then nothing is accepting any more.
        let _ = TcpStream::connect_timeout(&addr, Duration::from_secs(1));
    }
}

struct State {
    mode: SmtpMode,
    messages: Vec<ReceivedEmail>,
    dropped: bool,
}

/// State shared by the test and the server's sessions. `changed` is notified on
/// every change: new message, new mode, dropped.
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A test that panicked must not turn every later call, and Drop, into panics.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// mailin's handler: one per connection, holding the message being received.
/// Nothing here may panic on a session thread: mailin-embedded's thread pool would
/// turn that into an abort of the whole test binary at shutdown.
struct Session {
    shared: Arc<Shared>,
    from: String,
    to: Vec<String>,
    data: Vec<u8>,
}

impl Session {
    fn new(shared: Arc<Shared>) -> Session {
        Session {
            shared,
            from: String::new(),
            to: Vec::new(),
            data: Vec::new(),
        }
    }

    fn refuse_if_dropped(&self) -> Response {
        if self.shared.lock().dropped {
            NO_SERVICE
        } else {
            OK
        }
    }
}

impl Clone for Session {
    /// mailin-embedded 0.8 clones the handler on its accept thread for each new
    /// connection, and that is the only place it runs our code there. Its accept loop
    /// never ends by itself, so once the server is dropped, this clone unwinds out of
    /// it: the thread pool joins its sessions, the listener closes, and the thread
    /// ends. `resume_unwind` unwinds without running the panic hook, so nothing is
    /// printed.
    fn clone(&self) -> Session {
        if self.shared.lock().dropped {
            std::panic::resume_unwind(Box::new("test SMTP server dropped"));
        }
        Session::new(Arc::clone(&self.shared))
    }
}

impl Handler for Session {
    fn helo(&mut self, _ip: IpAddr, _domain: &str) -> Response {
        self.refuse_if_dropped()
    }

    fn mail(&mut self, _ip: IpAddr, _domain: &str, _from: &str) -> Response {
        self.refuse_if_dropped()
    }

    fn data_start(&mut self, _domain: &str, from: &str, _is8bit: bool, to: &[String]) -> Response {
        from.clone_into(&mut self.from);
        to.clone_into(&mut self.to);
        self.data.clear();
        OK
    }

    /// One line at a time, CRLF included, dot-stuffing already removed.
    fn data(&mut self, buf: &[u8]) -> io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let data = String::from_utf8_lossy(&std::mem::take(&mut self.data)).into_owned();
        let mut state = self.shared.lock();
        loop {
            if state.dropped {
                return NO_SERVICE;
            }
            match state.mode {
                SmtpMode::Accept => {
                    state.messages.push(ReceivedEmail {
                        from: std::mem::take(&mut self.from),
                        to: std::mem::take(&mut self.to),
                        data,
                    });
                    self.shared.changed.notify_all();
                    return OK;
                }
                SmtpMode::TempFail => return refuse_and_close(451, "Try again later (test)"),
                SmtpMode::PermFail => return refuse_and_close(550, "Mailbox unavailable (test)"),
                SmtpMode::Stall => {
                    state = self
                        .shared
                        .changed
                        .wait(state)
                        .unwrap_or_else(PoisonError::into_inner);
                }
            }
        }
    }
}

/// A refusal that also ends the session. After an error reply to the final ".",
/// mailin 0.6 stays in its DATA state and would take the client's next command as
/// message text; lettre sends QUIT and waits for its reply, so without the close it
/// would hang until its own timeout.
fn refuse_and_close(code: u16, text: &str) -> Response {
    let mut response = Response::custom(code, text.to_owned());
    response.action = Action::Close;
    response
}

// ---- Just enough MIME to read what lettre sends -----------------------------------

/// Splits a message or MIME part at the first empty line: (header block, body).
fn split_head_body(part: &str) -> (&str, &str) {
    if let Some(body) = part.strip_prefix("\r\n") {
        return ("", body);
    }
    match part.find("\r\n\r\n") {
        Some(end) => (&part[..end], &part[end + 4..]),
        None => (part, ""),
    }
}

/// The first header `name` in a header block, unfolded (a line starting with
/// whitespace continues the previous one) and trimmed.
fn header_value(head: &str, name: &str) -> Option<String> {
    let mut value: Option<String> = None;
    for line in head.split("\r\n") {
        let continuation = line.starts_with([' ', '\t']);
        match value.as_mut() {
            Some(value) if continuation => value.push_str(line),
            Some(_) => break,
            None if continuation => {}
            None => {
                if let Some((key, rest)) = line.split_once(':')
                    && key.trim().eq_ignore_ascii_case(name)
                {
                    value = Some(rest.to_owned());
                }
            }
        }
    }
    value.map(|value| value.trim().to_owned())
}

/// A parameter of a header value such as `multipart/alternative; boundary="x"`.
fn header_param(value: &str, name: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|param| {
        let (key, val) = param.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then(|| val.trim().trim_matches('"').to_owned())
    })
}

/// Depth-first search for the first part of type `wanted`, decoded. A part without
/// Content-Type is text/plain; the charset is taken to be UTF-8 (lettre's).
fn find_part(part: &str, wanted: &str) -> Option<String> {
    let (head, body) = split_head_body(part);
    let content_type = header_value(head, "Content-Type").unwrap_or_else(|| "text/plain".into());
    let mime_type = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if mime_type.starts_with("multipart/") {
        let boundary = header_param(&content_type, "boundary")?;
        return multipart_parts(body, &boundary)
            .iter()
            .find_map(|p| find_part(p, wanted));
    }
    if mime_type != wanted {
        return None;
    }
    let encoding = header_value(head, "Content-Transfer-Encoding").unwrap_or_default();
    let bytes = match encoding.to_ascii_lowercase().as_str() {
        "base64" => decode_base64(body),
        "quoted-printable" => decode_quoted_printable(body),
        _ => body.as_bytes().to_vec(), // 7bit, 8bit, binary
    };
    Some(String::from_utf8_lossy(&bytes).replace("\r\n", "\n"))
}

/// The parts of a multipart body, without preamble and epilogue. The CRLF before a
/// delimiter line belongs to the delimiter, which joining the lines respects.
fn multipart_parts<'a>(body: &'a str, boundary: &str) -> Vec<String> {
    let delimiter = format!("--{boundary}");
    let mut parts = Vec::new();
    let mut current: Option<Vec<&'a str>> = None; // None until the first delimiter
    for line in body.split("\r\n") {
        let after = line.trim_end().strip_prefix(delimiter.as_str());
        if after == Some("") || after == Some("--") {
            parts.extend(current.take().map(|lines| lines.join("\r\n")));
            if after == Some("--") {
                break;
            }
            current = Some(Vec::new());
        } else if let Some(lines) = current.as_mut() {
            lines.push(line);
        }
    }
    parts
}

/// Base64, skipping line breaks and anything else outside the alphabet.
fn decode_base64(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut acc_bits) = (0u32, 0u32);
    for c in text.bytes() {
        let sextet = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => continue,
        };
        acc = (acc << 6) | u32::from(sextet);
        acc_bits += 6;
        if acc_bits >= 8 {
            acc_bits -= 8;
            out.push((acc >> acc_bits) as u8); // the 8 bits above the leftover ones
            acc &= (1 << acc_bits) - 1;
        }
    }
    out
}

/// Quoted-printable: `=XX` is a byte, `=` at a line end is a soft line break.
fn decode_quoted_printable(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' {
            if bytes[i + 1..].starts_with(b"\r\n") {
                i += 3;
                continue;
            }
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|hex| std::str::from_utf8(hex).ok());
            if let Some(byte) = hex.and_then(|hex| u8::from_str_radix(hex, 16).ok()) {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// Decodes RFC 2047 encoded words (`=?utf-8?b?...?=`, `=?utf-8?q?...?=`) in a header
/// value, dropping the whitespace between two adjacent ones as the RFC says.
fn decode_encoded_words(value: &str) -> String {
    let mut out = Vec::new();
    let mut rest = value;
    let mut after_word = false;
    while let Some(start) = rest.find("=?") {
        let (before, candidate) = rest.split_at(start);
        if let Some((decoded, len)) = decode_encoded_word(candidate) {
            if !(after_word && before.trim().is_empty()) {
                out.extend_from_slice(before.as_bytes());
            }
            out.extend(decoded);
            rest = &candidate[len..];
            after_word = true;
        } else {
            // Not an encoded word: keep the "=?" as text and look further on.
            let (text, after) = rest.split_at(start + 2);
            out.extend_from_slice(text.as_bytes());
            rest = after;
            after_word = false;
        }
    }
    out.extend_from_slice(rest.as_bytes());
    String::from_utf8_lossy(&out).into_owned()
}

/// The encoded word at the start of `s`: its decoded bytes and its length in `s`.
fn decode_encoded_word(s: &str) -> Option<(Vec<u8>, usize)> {
    let inner = s.strip_prefix("=?")?;
    let (_charset, inner) = inner.split_once('?')?;
    let (encoding, inner) = inner.split_once('?')?;
    let end = inner.find("?=")?;
    let text = &inner[..end];
    let decoded = match encoding {
        "B" | "b" => decode_base64(text),
        "Q" | "q" => decode_quoted_printable(&text.replace('_', " ")),
        _ => return None,
    };
    Some((decoded, s.len() - inner.len() + end + 2))
}
