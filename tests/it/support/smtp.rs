//! A real SMTP server for the integration tests: plain SMTP (no TLS) on 127.0.0.1,
//! a random free port per instance, answers chosen by the test (`SmtpMode`).
//!
//! Built on mailin-embedded 0.8. Every message is decided when its DATA ends (the
//! final "."): that is where it is accepted (250, recorded), refused (451 / 550) or
//! left unanswered (Stall). HELO, MAIL and RCPT are always accepted. Messages are
//! read back with the server's own MIME reader, `shoulder::mail::mime`.

#![allow(dead_code, reason = "each test uses only part of this module")]

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use mailin_embedded::response::{NO_SERVICE, OK};
use mailin_embedded::{Action, Handler, Response, Server};
use shoulder::mail::mime;

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
        mime::headers(&self.data).get(name).map(str::to_owned)
    }

    /// The Subject, with RFC 2047 encoded words (how lettre writes non-ASCII) decoded.
    pub fn subject(&self) -> Option<String> {
        self.header("Subject")
            .map(|s| mime::decode_encoded_words(&s))
    }

    /// The first text/plain part, transfer encoding decoded, line ends as "\n".
    /// Panics when there is none, so that a test cannot pass on an empty body.
    pub fn text_body(&self) -> String {
        mime::find_part(&self.data, "text/plain")
            .unwrap_or_else(|| panic!("the message has no text/plain part:\n{}", self.data))
    }

    /// The first text/html part, transfer encoding decoded, line ends as "\n".
    pub fn html_body(&self) -> Option<String> {
        mime::find_part(&self.data, "text/html")
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
                stalled: 0,
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

    /// How many messages are waiting, stalled, for their answer.
    pub fn stalled(&self) -> usize {
        self.shared.lock().stalled
    }

    /// Waits until at least `n` messages are stalled, waiting for their
    /// answer. Panics after 10 s.
    pub fn wait_for_stalled(&self, n: usize) {
        let state = self.shared.lock();
        let (state, _) = self
            .shared
            .changed
            .wait_timeout_while(state, WAIT_LIMIT, |state| state.stalled < n)
            .unwrap_or_else(PoisonError::into_inner);
        let stalled = state.stalled;
        drop(state);
        assert!(
            stalled >= n,
            "test SMTP server on port {}: expected {n} stalled message(s) within {:?}, got {stalled}",
            self.port,
            WAIT_LIMIT
        );
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
    /// Messages waiting at the end of DATA for the mode to change.
    stalled: usize,
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
        let mut stalled = false;
        loop {
            if state.dropped {
                state.stalled -= usize::from(stalled);
                return NO_SERVICE;
            }
            if state.mode != SmtpMode::Stall && stalled {
                state.stalled -= 1;
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
                    if !stalled {
                        stalled = true;
                        state.stalled += 1;
                        // For `wait_for_stalled`; the other stalled sessions
                        // wake, see the mode unchanged, and wait again.
                        self.shared.changed.notify_all();
                    }
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
