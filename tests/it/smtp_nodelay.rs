//! The SMTP transport's own connection pool (sockets opened by us, with
//! `TCP_NODELAY`): many emails over few reused connections, connections the
//! server closed replaced without a failed send, and what `mail.smtp_url`
//! asks for (STARTTLS, AUTH, the EHLO name) reaching a real server.
//!
//! Most tests use the shared test server (`support::smtp`, mailin-embedded).
//! Counting connections, hanging up after a message, and offering AUTH need
//! a server that can do those, so this file also has `Sink`: a minimal SMTP
//! server on a real TCP socket (greeting, EHLO, AUTH, MAIL, RCPT, DATA with
//! the final ".", NOOP, QUIT) that records what it was told.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::NaiveDateTime;
use shoulder::clock::Clock;
use shoulder::config::MailTransportKind;
use shoulder::mail::outbox::{self, Enqueued, NewEmail};
use shoulder::mail::{EmailAddress, Mailer, OutgoingEmail, RenderedEmail, SendError};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use crate::support::{Backend, SmtpMode, TestApp, TestSmtp, default_start, test_config};

// ---- a minimal SMTP server that counts connections ---------------------------

#[derive(Clone, Copy, Default)]
struct SinkOptions {
    /// Hang up right after answering 250 to this many messages on one connection.
    close_after: Option<usize>,
    /// Offer `AUTH PLAIN LOGIN` in the EHLO answer and accept any credentials.
    offer_auth: bool,
    /// Answer AUTH with 535, as for a wrong password.
    refuse_auth: bool,
}

#[derive(Default)]
struct SinkState {
    /// Connections accepted so far.
    connections: AtomicUsize,
    /// Every command line received outside DATA, in order, CRLF removed.
    commands: Mutex<Vec<String>>,
    /// Every message accepted, as received.
    messages: Mutex<Vec<String>>,
}

struct Sink {
    port: u16,
    state: Arc<SinkState>,
    accept: tokio::task::JoinHandle<()>,
}

impl Sink {
    async fn start(options: SinkOptions) -> Sink {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let port = listener.local_addr().expect("bound address").port();
        let state = Arc::new(SinkState::default());
        let shared = Arc::clone(&state);
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                shared.connections.fetch_add(1, Ordering::SeqCst);
                let session = Arc::clone(&shared);
                tokio::spawn(async move {
                    // A client that hangs up mid-command just ends its session.
                    let _ = serve(stream, &session, options).await;
                });
            }
        });
        Sink {
            port,
            state,
            accept,
        }
    }

    fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }

    fn commands(&self) -> Vec<String> {
        lock(&self.state.commands).clone()
    }

    fn messages(&self) -> Vec<String> {
        lock(&self.state.messages).clone()
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn serve(stream: TcpStream, state: &SinkState, options: SinkOptions) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    write.write_all(b"220 sink.test ESMTP\r\n").await?;
    let mut accepted_here = 0;
    let mut line = Vec::new();
    loop {
        line.clear();
        if read.read_until(b'\n', &mut line).await? == 0 {
            return Ok(());
        }
        let command = String::from_utf8_lossy(&line).trim_end().to_string();
        lock(&state.commands).push(command.clone());
        let verb = command
            .split(' ')
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" if options.offer_auth => {
                b"250-sink.test\r\n250-8BITMIME\r\n250 AUTH PLAIN LOGIN\r\n"
            }
            "EHLO" => b"250-sink.test\r\n250 8BITMIME\r\n",
            "AUTH" if options.refuse_auth => b"535 5.7.8 Authentication credentials invalid\r\n",
            "AUTH" => b"235 2.7.0 Accepted\r\n",
            "HELO" | "MAIL" | "RCPT" | "NOOP" | "RSET" => b"250 2.0.0 OK\r\n",
            "QUIT" => {
                write.write_all(b"221 2.0.0 Bye\r\n").await?;
                return Ok(());
            }
            "DATA" => {
                write
                    .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                    .await?;
                let mut data = Vec::new();
                loop {
                    line.clear();
                    if read.read_until(b'\n', &mut line).await? == 0 {
                        return Ok(());
                    }
                    if line == b".\r\n" {
                        break;
                    }
                    data.extend_from_slice(&line);
                }
                lock(&state.messages).push(String::from_utf8_lossy(&data).into_owned());
                write.write_all(b"250 2.0.0 Queued\r\n").await?;
                accepted_here += 1;
                if options.close_after == Some(accepted_here) {
                    return Ok(());
                }
                continue;
            }
            _ => b"502 5.5.2 Not implemented\r\n",
        };
        write.write_all(reply).await?;
    }
}

// ---- helpers ----------------------------------------------------------------

fn mailer(smtp_url: &str, pool_size: u32, timeout_secs: u64) -> Mailer {
    let mut config = test_config();
    config.mail.transport = MailTransportKind::Smtp;
    config.mail.smtp_url = smtp_url.to_string();
    config.mail.smtp_pool_size = pool_size;
    config.mail.send_timeout_secs = timeout_secs;
    config.mail.from = "Shoulder <circles@example.org>".into();
    config.server.public_url = "https://circles.example.org".into();
    Mailer::from_config(&config, Clock::fixed(default_start())).expect("mailer")
}

fn email(n: usize) -> OutgoingEmail {
    OutgoingEmail {
        to: EmailAddress::parse(&format!("person{n}@example.org")).expect("valid address"),
        to_name: Some(format!("Person {n}")),
        content: RenderedEmail {
            subject: "This week's question".into(),
            text: "Who are we leaving behind?\nhttps://circles.example.org/r/1".into(),
            html: "<p>Who are we leaving behind?</p>".into(),
        },
        message_key: format!("delivery.{n}"),
        headers: vec![(
            "List-Unsubscribe".into(),
            "<https://circles.example.org/unsubscribe/abc>".into(),
        )],
    }
}

/// Sends emails `0..count` through `mailer` from `senders` tasks at once;
/// every send must succeed.
async fn send_all(mailer: Arc<Mailer>, count: usize, senders: usize) {
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = JoinSet::new();
    for _ in 0..senders {
        let (mailer, next) = (Arc::clone(&mailer), Arc::clone(&next));
        tasks.spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::SeqCst);
                if n >= count {
                    break;
                }
                mailer
                    .send(&email(n))
                    .await
                    .unwrap_or_else(|e| panic!("email {n}: {e}"));
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("a sender task");
    }
}

fn outbox_email(n: usize) -> NewEmail {
    NewEmail {
        send_at: None,
        kind: "test",
        to: EmailAddress::parse(&format!("person{n}@example.org")).expect("a valid address"),
        to_name: Some(format!("Person {n}")),
        round_id: None,
        membership_id: None,
        context: serde_json::json!({
            "public_url": "http://127.0.0.1:3000",
            "sent_at": "Who are we leaving behind?",
        })
        .into(),
        headers: Vec::new(),
    }
}

async fn enqueue_many(app: &TestApp, count: usize) {
    let now: NaiveDateTime = app.clock.now().naive_utc();
    app.state
        .db
        .run(move |conn| {
            for n in 0..count {
                let queued = outbox::enqueue(conn, now, &outbox_email(n))?;
                assert!(matches!(queued, Enqueued::Queued { .. }), "{queued:?}");
            }
            Ok::<_, shoulder::db::DbError>(())
        })
        .await
        .expect("enqueued");
}

fn message_ids<'a>(raw_messages: impl IntoIterator<Item = &'a str>) -> HashSet<String> {
    raw_messages
        .into_iter()
        .map(|raw| {
            shoulder::mail::mime::headers(raw)
                .get("Message-ID")
                .expect("a Message-ID")
                .to_string()
        })
        .collect()
}

// ---- through the outbox -----------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_emails_through_the_outbox_all_arrive() {
    let Some(app) = TestApp::start(Backend::Sqlite).await else {
        return;
    };
    enqueue_many(&app, 200).await;

    let report = app.run_jobs().await;

    assert_eq!(report.delivery.sent, 200, "{:?}", report.delivery);
    let received = app.smtp.wait_for_messages(200);
    assert_eq!(received.len(), 200);
    assert_eq!(
        message_ids(received.iter().map(|m| m.data.as_str())).len(),
        200,
        "200 different emails"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbox_sends_two_hundred_emails_over_no_more_connections_than_the_pool() {
    let sink = Sink::start(SinkOptions::default()).await;
    let url = sink.url();
    let Some(app) = TestApp::builder(Backend::Sqlite)
        .config(move |config| {
            config.mail.smtp_url = url;
            config.mail.smtp_pool_size = 4;
        })
        .start()
        .await
    else {
        return;
    };
    enqueue_many(&app, 200).await;

    let report = app.run_jobs().await;

    assert_eq!(report.delivery.sent, 200, "{:?}", report.delivery);
    let messages = sink.messages();
    assert_eq!(messages.len(), 200);
    assert_eq!(message_ids(messages.iter().map(String::as_str)).len(), 200);
    let connections = sink.connections();
    assert!(
        (1..=4).contains(&connections),
        "200 emails over {connections} connections; the pool holds 4"
    );
}

// ---- the pool ---------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_senders_than_the_pool_share_its_connections() {
    let sink = Sink::start(SinkOptions::default()).await;
    let mailer = Arc::new(mailer(&sink.url(), 2, 5));

    send_all(mailer, 200, 8).await;

    assert_eq!(sink.messages().len(), 200);
    let connections = sink.connections();
    assert!(
        (1..=2).contains(&connections),
        "8 senders, a pool of 2, {connections} connections"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pooled_connection_carries_the_next_email_without_a_noop_first() {
    // A NOOP before each email cost a round trip in five; the next email's
    // MAIL FROM shows just as well whether the connection still stands.
    let sink = Sink::start(SinkOptions::default()).await;
    let mailer = mailer(&sink.url(), 1, 5);

    for n in 0..5 {
        mailer
            .send(&email(n))
            .await
            .unwrap_or_else(|e| panic!("email {n}: {e}"));
    }

    assert_eq!(sink.messages().len(), 5);
    assert_eq!(sink.connections(), 1);
    let commands = sink.commands();
    assert!(!commands.iter().any(|c| c == "NOOP"), "{commands:?}");
    let mails = commands
        .iter()
        .filter(|c| c.starts_with("MAIL FROM"))
        .count();
    assert_eq!(mails, 5, "one MAIL FROM per email: {commands:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_the_server_closed_is_replaced_without_a_failed_send() {
    // The server hangs up after every fifth message, while the connection
    // sits in the pool: the next send finds it gone and opens another.
    let sink = Sink::start(SinkOptions {
        close_after: Some(5),
        ..SinkOptions::default()
    })
    .await;
    let mailer = mailer(&sink.url(), 1, 5);

    for n in 0..20 {
        mailer
            .send(&email(n))
            .await
            .unwrap_or_else(|e| panic!("email {n}: {e}"));
    }

    assert_eq!(sink.messages().len(), 20);
    assert_eq!(sink.connections(), 4, "five emails per connection");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_hangs_up_after_each_email_costs_a_connection_each_not_a_failure() {
    let sink = Sink::start(SinkOptions {
        close_after: Some(1),
        ..SinkOptions::default()
    })
    .await;
    let mailer = Arc::new(mailer(&sink.url(), 3, 5));

    send_all(mailer, 30, 3).await;

    assert_eq!(sink.messages().len(), 30);
    assert_eq!(sink.connections(), 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_timeout_the_next_send_uses_a_fresh_connection() {
    let smtp = TestSmtp::start();
    let mailer = mailer(&smtp.url(), 1, 1);
    smtp.set_mode(SmtpMode::Stall);
    let error = mailer.send(&email(1)).await.expect_err("stalled");
    assert_eq!(error, SendError::Timeout(Duration::from_secs(1)));

    // The server had it after all (the case the Message-ID is for); the
    // connection we gave up on must not carry the next email.
    smtp.set_mode(SmtpMode::Accept);
    mailer
        .send(&email(2))
        .await
        .expect("a fresh connection carries it");

    // The stalled email may be let through after the second one lands, so
    // the two are compared without their order.
    let mut recipients: Vec<Vec<String>> = smtp
        .wait_for_messages(2)
        .into_iter()
        .map(|message| message.to)
        .collect();
    recipients.sort();
    assert_eq!(
        recipients,
        [["person1@example.org"], ["person2@example.org"]]
    );
}

// ---- what mail.smtp_url asks for ----------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_starttls_with_a_server_that_offers_none_sends_nothing() {
    let sink = Sink::start(SinkOptions::default()).await;
    let mailer = mailer(&format!("{}?tls=required", sink.url()), 1, 5);

    let error = mailer.send(&email(1)).await.expect_err("no STARTTLS");

    assert!(error.is_retryable(), "{error:?}");
    assert!(sink.messages().is_empty());
    assert!(
        !sink.commands().iter().any(|c| c.starts_with("MAIL")),
        "nothing sent in plain text: {:?}",
        sink.commands()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opportunistic_starttls_with_a_server_that_offers_none_sends_in_plain_text() {
    let sink = Sink::start(SinkOptions::default()).await;
    let mailer = mailer(&format!("{}?tls=opportunistic", sink.url()), 1, 5);

    mailer.send(&email(1)).await.expect("sent");

    assert_eq!(sink.messages().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_and_the_ehlo_name_in_the_url_reach_the_server_once_per_connection() {
    let sink = Sink::start(SinkOptions {
        offer_auth: true,
        ..SinkOptions::default()
    })
    .await;
    let url = format!(
        "smtp://ada%40example.org:p%40ss%20w+rd@127.0.0.1:{}/client.example.org",
        sink.port
    );
    let mailer = mailer(&url, 1, 5);

    mailer.send(&email(1)).await.expect("first");
    mailer.send(&email(2)).await.expect("second");

    let commands = sink.commands();
    let ehlo: Vec<_> = commands.iter().filter(|c| c.starts_with("EHLO")).collect();
    assert_eq!(ehlo, ["EHLO client.example.org"]);
    let auth: Vec<_> = commands.iter().filter(|c| c.starts_with("AUTH")).collect();
    // base64 of "\0ada@example.org\0p@ss w+rd"
    assert_eq!(auth, ["AUTH PLAIN AGFkYUBleGFtcGxlLm9yZwBwQHNzIHcrcmQ="]);
    assert_eq!(sink.messages().len(), 2);
    assert_eq!(sink.connections(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_password_is_retried_later_not_blamed_on_the_recipient() {
    let sink = Sink::start(SinkOptions {
        offer_auth: true,
        refuse_auth: true,
        ..SinkOptions::default()
    })
    .await;
    let url = format!("smtp://ada:wrong@127.0.0.1:{}", sink.port);
    let mailer = mailer(&url, 1, 5);

    let error = mailer.send(&email(1)).await.expect_err("refused");

    assert!(error.is_retryable(), "{error}");
    assert!(error.to_string().contains("535"), "{error}");
    assert!(sink.messages().is_empty());
    assert!(!sink.commands().iter().any(|c| c.starts_with("MAIL")));
}
