//! Batch work measured end to end with the real `shoulder` binary:
//!
//! - opening rounds for 10,000 circles of 8 (80,000 check-in emails queued)
//!   with `shoulder tick --no-deliver`, on SQLite and on PostgreSQL, each
//!   beside the same rows written by the database alone (see [`floor`]);
//! - delivering 20,000 emails from the outbox with `shoulder tick` to a
//!   local SMTP sink, beside a bare lettre loop (TCP_NODELAY, as many
//!   connections as `mail.smtp_pool_size`) sending as many to the same sink
//!   from a process of its own: one of the outbox's check-ins, rendered by
//!   our templates, built into a message per send as ours are;
//! - opening rounds as shipped: 1,000, 10,000 and 40,000 circles of 8 whose
//!   slot comes a few seconds after `shoulder serve` starts, opened by the
//!   server's own scheduler with its shipped settings, while four clients
//!   edit check-ins in another circle; on SQLite and on PostgreSQL (see
//!   [`served_opening`]).
//!
//! Run with `cargo bench --bench batch`. PostgreSQL is reached at
//! `TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`);
//! when it cannot be reached its rows say so. Sizes can be lowered for a
//! quick look with `BENCH_CIRCLES`, `BENCH_EMAILS` and `BENCH_SERVE_CIRCLES`
//! (a list: `1000,10000`); without cargo bench's `--bench` argument
//! (`cargo test --all-targets`) they are small.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, DurationRound, Timelike, Utc};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::Text;
use lettre::Message;
use lettre::message::MultiPart;
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::extension::ClientId;
use shoulder::app::AppState;
use shoulder::auth::session;
use shoulder::circles::cadence::Cadence;
use shoulder::circles::settings::{Settings, SettingsForm};
use shoulder::circles::store;
use shoulder::clock::Clock;
use shoulder::config::{Config, ConfigSources, MailTransportKind};
use shoulder::db::{DatabaseUrl, Db, DbConnection, DbError};
use shoulder::mail::{EmailTemplates, RenderedEmail};
use shoulder::web::session::SESSION_COOKIE;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

const SHOULDER: &str = env!("CARGO_BIN_EXE_shoulder");
/// The instant the seeded circles' first round is due, and the tick's clock.
const DUE: &str = "2027-03-01 09:00:00";
const TICK_AT: &str = "2027-03-01T09:00:30Z";
const POOL_SIZE: usize = 4;

fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Set in the environment of the bare lettre loop's own process, which
/// the benchmark starts as it starts `shoulder tick`: "<sink port>
/// <emails> <folder>", where the folder holds the message's parts.
const BARE_LOOP: &str = "BENCH_BARE_LETTRE_LOOP";

fn main() {
    if let Ok(job) = std::env::var(BARE_LOOP) {
        let mut args = job.splitn(3, ' ');
        let (Some(port), Some(emails), Some(folder)) = (args.next(), args.next(), args.next())
        else {
            panic!("{BARE_LOOP} is \"<port> <emails> <folder>\", not {job:?}");
        };
        let (port, emails) = (
            port.parse().expect("a port"),
            emails.parse().expect("a count"),
        );
        let read = |part: &str| {
            std::fs::read_to_string(Path::new(folder).join(part)).expect("a message part")
        };
        let message = RenderedEmail {
            subject: read(SUBJECT),
            text: read(TEXT),
            html: read(HTML),
        };
        let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
        runtime.block_on(send_bare(port, emails, message));
        return;
    }
    // Without cargo bench's `--bench` (`cargo test --all-targets`), a small
    // run that only shows the benchmark still works.
    let measuring = std::env::args().any(|arg| arg == "--bench");
    let (circles, emails) = if measuring {
        (10_000, 20_000)
    } else {
        println!("Smoke test with small sizes, not a measurement: use cargo bench.");
        (50, 400)
    };
    let circles = env_count("BENCH_CIRCLES", circles);
    let emails = env_count("BENCH_EMAILS", emails);
    let replies = env_count("BENCH_REPLIES", if measuring { 10_000 } else { 80 });
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let dir = tempfile::tempdir().expect("a temp folder");
    std::fs::create_dir_all(dir.path().join("data")).expect("a data folder");
    if std::env::var("BENCH_ONLY").as_deref() == Ok("replies") {
        print_replies(&replies_taken(&runtime, dir.path(), replies));
        return;
    }
    let mut rows = Vec::new();

    let sqlite = format!("{}/open.db", dir.path().display());
    let (seconds, written) = open_rounds(dir.path(), &sqlite, circles);
    rows.push(format!(
        "| open rounds, {circles} circles of 8, SQLite | {seconds:.2} s ({}) |",
        per_row(seconds, written)
    ));
    let email = email_size(&sqlite);
    let bare = format!("{}/floor.db", dir.path().display());
    let (seconds, written) = floor(dir.path(), &bare, circles, email);
    rows.push(format!(
        "| the same rows by SQLite alone (INSERT ... SELECT) | {seconds:.2} s ({}) |",
        per_row(seconds, written)
    ));
    // The outbox runs before PostgreSQL's work, whose checkpoints and
    // vacuuming afterwards would share the two cores with it.
    let sink = runtime.block_on(Sink::start());
    let outbox_db = format!("{}/outbox.db", dir.path().display());
    let (outbox_rate, outbox_size) = deliver_outbox(dir.path(), &outbox_db, emails / 8, &sink);
    let (bare_rate, bare_size) = bare_lettre_loop(&sink, emails, dir.path());
    rows.push(format!(
        "| outbox to a local SMTP sink, {emails} emails | {outbox_rate:.0} messages/s ({outbox_size} bytes a message) |"
    ));
    rows.push(format!(
        "| bare lettre loop with TCP_NODELAY, {POOL_SIZE} connections | {bare_rate:.0} messages/s ({bare_size} bytes a message) |"
    ));
    rows.push(format!(
        "| outbox / bare lettre | {:.2} |",
        outbox_rate / bare_rate
    ));

    match postgres_database() {
        Some(url) => {
            // Each measurement starts with no earlier writes left to flush.
            on_postgres_server("CHECKPOINT");
            let (seconds, written) = open_rounds(dir.path(), &url, circles);
            rows.push(format!(
                "| open rounds, {circles} circles of 8, PostgreSQL | {seconds:.2} s ({}) |",
                per_row(seconds, written)
            ));
            on_postgres_server(&format!(
                "DROP DATABASE IF EXISTS {}",
                bench_database_name()
            ));
            let url = postgres_database().expect("PostgreSQL still answers");
            on_postgres_server("CHECKPOINT");
            let (seconds, written) = floor(dir.path(), &url, circles, email);
            rows.push(format!(
                "| the same rows by PostgreSQL alone (INSERT ... SELECT) | {seconds:.2} s ({}) |",
                per_row(seconds, written)
            ));
            on_postgres_server(&format!(
                "DROP DATABASE IF EXISTS {}",
                bench_database_name()
            ));
        }
        None => rows.push("| open rounds, PostgreSQL | not measured: unreachable |".into()),
    }

    println!("\n| measurement | result |\n|---|---|");
    for row in rows {
        println!("{row}");
    }
    if std::env::var("BENCH_ONLY").as_deref() == Ok("open") {
        return;
    }

    let plan = ServePlan::new(measuring);
    let served = served_openings(&runtime, dir.path(), &plan);
    print_served(&plan, &served);
    print_replies(&replies_taken(&runtime, dir.path(), replies));
}

/// How many rows an opening wrote, and the time each took on average.
fn per_row(seconds: f64, rows: usize) -> String {
    let micros = seconds * 1e6 / rows.max(1) as f64;
    format!("{rows} rows written, {micros:.1} µs a row")
}

/// A `shoulder` command in `dir` against `database_url`.
fn shoulder(dir: &Path, database_url: &str) -> Command {
    let mut command = Command::new(SHOULDER);
    command
        .current_dir(dir)
        .env("SHOULDER_DATABASE__URL", database_url)
        .env("SHOULDER_LOG__FILTER", "warn")
        .env("SHOULDER_SCHEDULER__BATCH_SIZE", "100000")
        .env("SHOULDER_MAIL__FILE_DIR", dir.join("data").join("mail"));
    command
}

fn run(mut command: Command, what: &str) {
    let output = command.output().expect("shoulder runs");
    assert!(
        output.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The tables a round opening writes to, or once did: one-click tokens now
/// hang on the round link, and `action_tokens` should stay empty.
const OPENING_WRITES: [&str; 6] = [
    "rounds",
    "prompt_usage",
    "pairings",
    "round_links",
    "action_tokens",
    "deliveries",
];

/// The rows in [`OPENING_WRITES`]' tables.
fn opening_rows(database_url: &str) -> usize {
    OPENING_WRITES
        .iter()
        .map(|table| count(database_url, &format!("SELECT COUNT(*) AS n FROM {table}")))
        .sum()
}

/// Seeds `circles` circles of 8 due at [`DUE`], then times one tick that
/// opens all their rounds without delivering. Returns seconds and the
/// number of rows the tick wrote.
fn open_rounds(dir: &Path, database_url: &str, circles: usize) -> (f64, usize) {
    let mut migrate = shoulder(dir, database_url);
    migrate.arg("migrate");
    run(migrate, "migrate");
    seed(database_url, circles, DUE);
    let mut tick = shoulder(dir, database_url);
    tick.args(["tick", "--at", TICK_AT, "--no-deliver"]);
    let started = Instant::now();
    run(tick, "tick");
    let seconds = started.elapsed().as_secs_f64();
    let queued = count(database_url, "SELECT COUNT(*) AS n FROM deliveries");
    assert_eq!(queued, circles * 8, "one check-in per member");
    let written = opening_rows(database_url);
    (seconds, written)
}

/// What an opening's rows cost the database alone: on a freshly seeded
/// database, the rows an opening of `circles` circles writes (per circle a
/// round and a prompt use; per member a pair, a round link and a check-in
/// email whose context and headers are `email` bytes long, as measured on
/// ours) are written by `INSERT ... SELECT` statements, 100 circles a
/// transaction, with no server code at all. What is left is the
/// indexes, foreign keys and log writes of those rows. Returns seconds and
/// rows written.
fn floor(dir: &Path, database_url: &str, circles: usize, email: (usize, usize)) -> (f64, usize) {
    let mut migrate = shoulder(dir, database_url);
    migrate.arg("migrate");
    run(migrate, "migrate");
    seed(database_url, circles, DUE);
    let mut conn = connection(database_url);
    let postgres = matches!(&**conn, DbConnection::Postgresql(_));
    // Like ours: an increasing prefix, so that new entries land at the end
    // of their unique index, then 128 random bits, in hex. `{n}` numbers
    // the token among its member's.
    let token = |n: usize| {
        if postgres {
            format!("lpad(to_hex(m.id * 8 + {n}), 16, '0') || md5(random()::text)")
        } else {
            format!("printf('%016x', m.id * 8 + {n}) || lower(hex(randomblob(16)))")
        }
    };
    if !postgres {
        // As the server does while rounds open.
        conn.batch_execute("PRAGMA cache_size = -65536")
            .expect("the page cache is set");
    }
    let context = "x".repeat(email.0);
    let headers = "h".repeat(email.1);
    let started = Instant::now();
    for first in (1..=circles).step_by(100) {
        let last = (first + 99).min(circles);
        let members = format!(
            "FROM memberships m JOIN rounds r ON r.circle_id = m.circle_id \
             WHERE m.circle_id BETWEEN {first} AND {last}"
        );
        let (link, message_id) = (token(0), token(1));
        let batch = format!(
            "BEGIN;
             INSERT INTO rounds (circle_id, number, slot, prompt_id, prompt_question, opened_at, \
             reminder_at, closes_at) SELECT id, 1, '2027-03-01T09:00', 'p1', 'What will you carry?', \
             '{DUE}', '{DUE}', '{DUE}' FROM circles WHERE id BETWEEN {first} AND {last};
             INSERT INTO prompt_usage (circle_id, prompt_id, round_id, used_at) \
             SELECT circle_id, 'p1', id, '{DUE}' FROM rounds WHERE circle_id BETWEEN {first} AND {last};
             INSERT INTO pairings (round_id, giver_membership_id, receiver_membership_id) \
             SELECT r.id, m.id, CASE WHEN m.id % 8 = 0 THEN m.id - 7 ELSE m.id + 1 END {members};
             INSERT INTO round_links (round_id, membership_id, token_hash) \
             SELECT r.id, m.id, {link} {members};
             INSERT INTO deliveries (round_id, membership_id, kind, to_address, context_json, \
             headers_json, status, attempts, next_attempt_at, message_id, created_at) \
             SELECT r.id, m.id, 'check_in', 'p' || m.id || '@bench.example', '{context}', \
             '{headers}', 'pending', 0, '{DUE}', 'd-' || {message_id}, '{DUE}' {members};
             UPDATE circles SET next_round_at = NULL WHERE id BETWEEN {first} AND {last};
             COMMIT;"
        );
        conn.batch_execute(&batch)
            .expect("the floor's batch is written");
    }
    let seconds = started.elapsed().as_secs_f64();
    let written = opening_rows(database_url);
    (seconds, written)
}

/// The average length of the queued check-ins' context and headers.
fn email_size(database_url: &str) -> (usize, usize) {
    let context = count(
        database_url,
        "SELECT CAST(AVG(LENGTH(context_json)) AS BIGINT) AS n FROM deliveries",
    );
    let headers = count(
        database_url,
        "SELECT CAST(AVG(LENGTH(headers_json)) AS BIGINT) AS n FROM deliveries",
    );
    (context, headers)
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

fn connection(database_url: &str) -> diesel::r2d2::PooledConnection<shoulder::db::DbManager> {
    let url = DatabaseUrl::parse(database_url).expect("a database URL");
    let db = Db::connect(&url, 1, 5_000).expect("the database opens");
    db.get().expect("a connection")
}

fn count(database_url: &str, sql: &str) -> usize {
    count_on(&mut connection(database_url), sql)
}

/// A count on a connection already open, for the benchmark's polling.
fn count_on(conn: &mut DbConnection, sql: &str) -> usize {
    let row: Count = match conn {
        DbConnection::Postgresql(conn) => diesel::sql_query(sql).get_result(conn),
        DbConnection::Sqlite(conn) => diesel::sql_query(sql).get_result(conn),
    }
    .expect("a count");
    usize::try_from(row.n).unwrap_or(0)
}

/// `circles` weekly circles of 8 people each, their first round due at
/// `due`, in three set-based statements that read the same on both
/// backends.
fn seed(database_url: &str, circles: usize, due: &str) {
    let mut form = SettingsForm::new("UTC");
    form.set_cadence_text("weekly mon 09:00");
    form.name = "Bench".into();
    form.purpose = "Measuring".into();
    form.agreements = "We listen first.".into();
    form.round_hours = "48".into();
    let anchor = chrono::NaiveDate::from_ymd_opt(2027, 3, 1).expect("a date");
    let settings = Settings::parse(&form, anchor).expect("valid settings");
    let cadence = settings.cadence.to_canonical();
    let people = circles * 8;
    let statements = [
        format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {people}) \
             INSERT INTO people (email, display_name, created_at) \
             SELECT 'p' || i || '@bench.example', 'Person ' || i, '{DUE}' FROM n"
        ),
        format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {circles}) \
             INSERT INTO circles (name, purpose, agreements, cadence, time_zone, round_length_minutes, \
             size_cap, deck, status, next_round_at, created_at, updated_at) \
             SELECT 'Circle ' || i, 'Measuring', 'We listen first.', $1, 'UTC', 2880, 8, 'shoulder', \
             'active', '{due}', '{DUE}', '{DUE}' FROM n"
        ),
        format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {people}) \
             INSERT INTO memberships (circle_id, person_id, role, status, muted, \
             unsubscribe_token_hash, joined_at) \
             SELECT (i - 1) / 8 + 1, i, CASE WHEN (i - 1) % 8 = 0 THEN 'facilitator' ELSE 'member' END, \
             'active', FALSE, 'u' || i, '{DUE}' FROM n"
        ),
    ];
    let mut conn = connection(database_url);
    for sql in statements {
        // Only the circles' statement has a parameter: the cadence.
        let result = if sql.contains("$1") {
            let query = diesel::sql_query(sql).bind::<Text, _>(&cadence);
            match &mut **conn {
                DbConnection::Postgresql(conn) => query.execute(conn),
                DbConnection::Sqlite(conn) => query.execute(conn),
            }
        } else {
            let query = diesel::sql_query(sql);
            match &mut **conn {
                DbConnection::Postgresql(conn) => query.execute(conn),
                DbConnection::Sqlite(conn) => query.execute(conn),
            }
        };
        result.expect("seeding");
    }
}

fn postgres_base() -> String {
    std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

fn bench_database_name() -> String {
    format!("shoulder_bench_{}", std::process::id())
}

/// Runs `sql` on the test PostgreSQL server's own database, if it answers.
fn on_postgres_server(sql: &str) -> Option<()> {
    let url = DatabaseUrl::parse(&postgres_base()).ok()?;
    let db = Db::connect(&url, 1, 5_000).ok()?;
    let mut conn = db.get().ok()?;
    match &mut **conn {
        DbConnection::Postgresql(conn) => diesel::sql_query(sql).execute(conn).ok().map(|_| ()),
        DbConnection::Sqlite(_) => None,
    }
}

/// A fresh database of our own on the test PostgreSQL server, if it answers.
fn postgres_database() -> Option<String> {
    let name = bench_database_name();
    on_postgres_server(&format!("DROP DATABASE IF EXISTS {name}"))?;
    on_postgres_server(&format!("CREATE DATABASE {name}"))?;
    let base = postgres_base();
    let (prefix, _) = base.rsplit_once('/')?;
    Some(format!("{prefix}/{name}"))
}

/// Queues a round of check-ins for `circles` circles of 8 and times the
/// tick that delivers them to the sink. Returns messages per second and
/// the messages' average size.
fn deliver_outbox(dir: &Path, database_url: &str, circles: usize, sink: &Sink) -> (f64, usize) {
    open_rounds(dir, database_url, circles);
    save_sample_check_in(database_url, dir);
    let (before, bytes_before) = sink.counts();
    let mut tick = shoulder(dir, database_url);
    tick.args(["tick", "--at", TICK_AT])
        .env("SHOULDER_MAIL__TRANSPORT", "smtp")
        .env(
            "SHOULDER_MAIL__SMTP_URL",
            format!("smtp://127.0.0.1:{}", sink.port),
        )
        .env("SHOULDER_MAIL__SMTP_POOL_SIZE", POOL_SIZE.to_string())
        .env("SHOULDER_MAIL__LEASE_SECS", "3600")
        .env("SHOULDER_MAIL__BATCH_SIZE", "1000");
    let started = Instant::now();
    run(tick, "delivering tick");
    let seconds = started.elapsed().as_secs_f64();
    let (after, bytes_after) = sink.counts();
    let delivered = after - before;
    assert_eq!(delivered, circles * 8, "every email reached the sink");
    (
        delivered as f64 / seconds,
        (bytes_after - bytes_before) / delivered.max(1),
    )
}

/// The files the bare loop reads its message from.
const SUBJECT: &str = "bare-subject.txt";
const TEXT: &str = "bare-body.txt";
const HTML: &str = "bare-body.html";

/// Writes the words of one of the outbox's check-ins to `folder`, rendered
/// with our templates, for the bare loop to send: the same message, not only
/// one of the same size, since the characters decide how lettre encodes it.
fn save_sample_check_in(database_url: &str, folder: &Path) {
    #[derive(QueryableByName)]
    struct Context {
        #[diesel(sql_type = Text)]
        context_json: String,
    }
    let sql = "SELECT context_json FROM deliveries WHERE kind = 'check_in' LIMIT 1";
    let mut conn = connection(database_url);
    let row: Context = match &mut **conn {
        DbConnection::Postgresql(conn) => diesel::sql_query(sql).get_result(conn),
        DbConnection::Sqlite(conn) => diesel::sql_query(sql).get_result(conn),
    }
    .expect("a queued check-in");
    let context: serde_json::Value =
        serde_json::from_str(&row.context_json).expect("a readable context");
    let templates = EmailTemplates::load(&Path::new("templates").join("email")).expect("templates");
    let words = templates
        .render("check_in", &context)
        .expect("a rendered check-in");
    for (part, text) in [
        (SUBJECT, words.subject),
        (TEXT, words.text),
        (HTML, words.html),
    ] {
        std::fs::write(folder.join(part), text).expect("a message part written");
    }
}

/// The same number of messages sent by lettre alone, from a process of its
/// own as the outbox's are, and timed the same way: from its start to its
/// exit. It sends the check-in [`deliver_outbox`] saved in `folder`.
/// Returns messages per second and their average size as the sink counted
/// it.
fn bare_lettre_loop(sink: &Sink, emails: usize, folder: &Path) -> (f64, usize) {
    let (before, bytes_before) = sink.counts();
    let mut bare = Command::new(std::env::current_exe().expect("this benchmark's path"));
    bare.env(
        BARE_LOOP,
        format!("{} {emails} {}", sink.port, folder.display()),
    );
    let started = Instant::now();
    let status = bare.status().expect("the bare loop runs");
    let rate = emails as f64 / started.elapsed().as_secs_f64();
    assert!(status.success(), "the bare loop failed");
    let (after, bytes_after) = sink.counts();
    assert_eq!(
        after - before,
        emails,
        "every bare message reached the sink"
    );
    (rate, (bytes_after - bytes_before) / emails.max(1))
}

/// The bare loop itself: `emails` messages over [`POOL_SIZE`] connections
/// with TCP_NODELAY, each built per send, as ours are, from `words`.
async fn send_bare(port: u16, emails: usize, words: RenderedEmail) {
    let words = Arc::new(words);
    let mut tasks = Vec::new();
    for worker in 0..POOL_SIZE {
        let words = Arc::clone(&words);
        let share = emails / POOL_SIZE + usize::from(worker < emails % POOL_SIZE);
        tasks.push(tokio::spawn(async move {
            let stream = TcpStream::connect(("127.0.0.1", port))
                .await
                .expect("the sink accepts");
            stream.set_nodelay(true).expect("TCP_NODELAY");
            let mut connection = AsyncSmtpConnection::connect_with_transport(
                Box::new(stream),
                &ClientId::Domain("bench.example".into()),
            )
            .await
            .expect("an SMTP session");
            for n in 0..share {
                let message = Message::builder()
                    .from("Shoulder <shoulder@bench.example>".parse().expect("from"))
                    .to(format!("p{n}@bench.example").parse().expect("to"))
                    .subject(words.subject.clone())
                    .multipart(MultiPart::alternative_plain_html(
                        words.text.clone(),
                        words.html.clone(),
                    ))
                    .expect("a message");
                connection
                    .send(message.envelope(), &message.formatted())
                    .await
                    .expect("sent");
            }
            let _ = connection.quit().await;
        }));
    }
    for task in tasks {
        task.await.expect("a sending task");
    }
}

/// A minimal SMTP server that accepts everything and counts messages and
/// their bytes.
struct Sink {
    port: u16,
    received: Arc<AtomicUsize>,
    bytes: Arc<AtomicUsize>,
}

impl Sink {
    async fn start() -> Sink {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("a free port");
        let port = listener.local_addr().expect("an address").port();
        let received = Arc::new(AtomicUsize::new(0));
        let bytes = Arc::new(AtomicUsize::new(0));
        let counters = (received.clone(), bytes.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (received, bytes) = counters.clone();
                tokio::spawn(async move {
                    let _ = serve_session(stream, received, bytes).await;
                });
            }
        });
        Sink {
            port,
            received,
            bytes,
        }
    }

    /// Messages and bytes received so far.
    fn counts(&self) -> (usize, usize) {
        (
            self.received.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed),
        )
    }
}

async fn serve_session(
    stream: TcpStream,
    received: Arc<AtomicUsize>,
    bytes: Arc<AtomicUsize>,
) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 sink ready\r\n").await?;
    let mut line = String::new();
    let mut in_data = false;
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        if in_data {
            bytes.fetch_add(line.len(), Ordering::Relaxed);
            if line == ".\r\n" {
                in_data = false;
                received.fetch_add(1, Ordering::Relaxed);
                write.write_all(b"250 queued\r\n").await?;
            }
            continue;
        }
        let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" => b"250-sink\r\n250 8BITMIME\r\n",
            "DATA" => {
                in_data = true;
                b"354 go on\r\n"
            }
            "QUIT" => {
                write.write_all(b"221 bye\r\n").await?;
                return Ok(());
            }
            _ => b"250 ok\r\n",
        };
        write.write_all(reply).await?;
    }
}

// ---------------------------------------------------------------------------
// Opening rounds through `shoulder serve`'s own scheduler, as shipped.

/// Circles opened through `shoulder serve` when measuring; the last is the
/// size the product's budget is set for.
const SERVE_SIZES: [usize; 3] = [1_000, 10_000, 40_000];
/// The smoke test's one size.
const SMOKE_SERVE_CIRCLES: usize = 20;
/// The product's budget for a check-in POST while the rounds of
/// [`BUDGET_CIRCLES`] circles open.
const CHECK_IN_P99_BUDGET_MS: f64 = 250.0;
const BUDGET_CIRCLES: usize = 40_000;
/// How often the benchmark counts the rounds open: the resolution of the
/// moments it sees.
const POLL_EVERY: Duration = Duration::from_millis(100);
/// Clients posting check-in edits at once, each sending its next POST as
/// soon as the last is answered.
const POSTING_CLIENTS: usize = 4;
/// Where the seeded circles' cursors wait, out of every pass's reach,
/// until their slot is set just before the server starts.
const PARKED: &str = "2999-01-01 00:00:00";
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// A server that is still delivering the opening's emails when it is asked
/// to stop finishes its pass first; past this it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// The members of the circle whose check-ins are edited meanwhile.
const CHECK_IN_MEMBERS: usize = 8;

/// How the openings through `shoulder serve` run.
struct ServePlan {
    measuring: bool,
    sizes: Vec<usize>,
    /// Seconds from setting the slot to the slot: the server starts, and the
    /// baseline POSTs are made, in between.
    lead_secs: i64,
    /// `scheduler.interval_secs` in a smoke test; when measuring the server
    /// keeps every shipped setting.
    interval_secs: Option<&'static str>,
    /// The longest wait, from the slot, for every round to be open.
    timeout: Duration,
}

impl ServePlan {
    fn new(measuring: bool) -> ServePlan {
        let sizes = match std::env::var("BENCH_SERVE_CIRCLES") {
            Ok(list) => list
                .split(',')
                .filter(|size| !size.trim().is_empty())
                .map(|size| {
                    size.trim().parse().unwrap_or_else(|_| {
                        panic!("BENCH_SERVE_CIRCLES is a list of numbers, not {list:?}")
                    })
                })
                .filter(|&size| size > 0)
                .collect(),
            Err(_) if measuring => SERVE_SIZES.to_vec(),
            Err(_) => vec![SMOKE_SERVE_CIRCLES],
        };
        if measuring {
            ServePlan {
                measuring,
                sizes,
                lead_secs: 5,
                interval_secs: None,
                timeout: Duration::from_secs(600),
            }
        } else {
            // The first pass runs at start-up, before the slot; at the
            // shipped 30 s the next would make the smoke test wait.
            ServePlan {
                measuring,
                sizes,
                lead_secs: 3,
                interval_secs: Some("1"),
                timeout: Duration::from_secs(60),
            }
        }
    }
}

/// One opening through `shoulder serve`, as measured. Times are seconds.
struct ServedOpening {
    backend: &'static str,
    circles: usize,
    /// From the slot to the pass that opened the rounds: the `opened_at`
    /// it wrote, which is the instant the pass started, on every round.
    pass_started: f64,
    /// From the slot to the moment the benchmark saw every round open.
    all_open: f64,
    /// From the pass's start to every round seen open: the opening's work.
    opening: f64,
    /// Rows the opening wrote in [`OPENING_WRITES`]' tables.
    rows: usize,
    peak_rss_kib: u64,
    /// Check-in POSTs in flight at any moment of the opening's work.
    during: Latencies,
    /// Check-in POSTs answered before the slot: the baseline.
    before: Latencies,
}

/// The openings of the plan's sizes, on SQLite, then on PostgreSQL when it
/// answers (the backend's name as an error when it does not).
fn served_openings(
    runtime: &tokio::runtime::Runtime,
    dir: &Path,
    plan: &ServePlan,
) -> Vec<Result<ServedOpening, &'static str>> {
    let mut served = Vec::new();
    for &circles in &plan.sizes {
        eprintln!("batch: opening {circles} circles through shoulder serve on SQLite");
        let sqlite = format!("{}/serve-{circles}.db", dir.display());
        served.push(Ok(served_opening(
            runtime, dir, &sqlite, "SQLite", circles, plan,
        )));
    }
    for &circles in &plan.sizes {
        let Some(url) = postgres_database() else {
            served.push(Err("PostgreSQL"));
            break;
        };
        eprintln!("batch: opening {circles} circles through shoulder serve on PostgreSQL");
        on_postgres_server("CHECKPOINT");
        served.push(Ok(served_opening(
            runtime,
            dir,
            &url,
            "PostgreSQL",
            circles,
            plan,
        )));
        // FORCE: a connection of the killed server may still be closing.
        on_postgres_server(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            bench_database_name()
        ));
    }
    served
}

/// Seeds `circles` circles of 8 and a circle with an open round whose
/// members are signed in; sets the circles' first round a few seconds
/// ahead and starts `shoulder serve`; has [`POSTING_CLIENTS`] clients edit
/// the open round's check-ins from before the slot until the benchmark,
/// counting rounds every [`POLL_EVERY`], sees all of them open.
///
/// The server's first pass runs as it starts, before the slot; the next
/// runs when the slot comes (a pass wakes when the next round is due, and
/// at least every `scheduler.interval_secs`). The outbox, woken once the
/// rounds are open, then delivers the check-ins they queued, to files (the
/// shipped transport); the clients stop as the last round is seen, so only
/// the last poll's tenth of a second of that overlaps the POSTs measured.
fn served_opening(
    runtime: &tokio::runtime::Runtime,
    dir: &Path,
    database_url: &str,
    backend: &'static str,
    circles: usize,
    plan: &ServePlan,
) -> ServedOpening {
    let mut migrate = shoulder(dir, database_url);
    migrate.arg("migrate");
    run(migrate, "migrate");
    seed(database_url, circles, PARKED);
    let check_ins = runtime.block_on(seed_check_in_circle(dir, database_url));
    let rows_before = opening_rows(database_url);
    let slot = schedule_slot(database_url, circles, plan.lead_secs);

    let mut server = ServeProcess::start(dir, database_url, plan.interval_secs, &[]);
    let (last_seen, posts) = runtime.block_on(async {
        server.ready().await;
        let url = server.url(&check_ins.round_path);
        expect_check_ins_saved(&url, &server.origin(), &check_ins.posters).await;
        let stop = Arc::new(AtomicBool::new(false));
        let posters = Arc::new(check_ins.posters);
        let clients: Vec<_> = (0..POSTING_CLIENTS)
            .map(|n| {
                tokio::spawn(keep_posting(
                    url.clone(),
                    server.origin(),
                    Arc::clone(&posters),
                    n * CHECK_IN_MEMBERS / POSTING_CLIENTS,
                    Arc::clone(&stop),
                ))
            })
            .collect();
        let deadline = slot + chrono::Duration::from_std(plan.timeout).expect("a timeout");
        let watched = database_url.to_string();
        let last_seen =
            tokio::task::spawn_blocking(move || watch_opening(&watched, circles, deadline))
                .await
                .expect("the watch over the opening ran");
        stop.store(true, Ordering::Relaxed);
        let mut posts = Vec::new();
        for client in clients {
            posts.extend(client.await.expect("a posting client"));
        }
        (last_seen, posts)
    });
    let last_seen = last_seen.unwrap_or_else(|problem| {
        panic!(
            "the rounds did not all open within {:?} of their slot: {problem}\n{}",
            plan.timeout,
            server.log_text()
        )
    });
    let peak_rss_kib = server.memory_kib("VmHWM");
    server.stop();

    let queued = count(
        database_url,
        &format!(
            "SELECT COUNT(*) AS n FROM deliveries d JOIN rounds r ON r.id = d.round_id \
             WHERE r.circle_id <= {circles} AND d.kind = 'check_in'"
        ),
    );
    assert_eq!(queued, circles * 8, "one check-in per member");
    let pass = pass_start(database_url, circles);
    let opening = seconds_between(pass, last_seen);
    ServedOpening {
        backend,
        circles,
        pass_started: seconds_between(slot, pass),
        all_open: seconds_between(slot, last_seen),
        opening,
        rows: opening_rows(database_url) - rows_before,
        peak_rss_kib,
        during: Latencies::of(
            posts
                .iter()
                .filter(|post| post.sent < last_seen && post.answered() > pass),
        ),
        before: Latencies::of(posts.iter().filter(|post| post.answered() <= slot)),
    }
}

/// `b - a` in seconds.
fn seconds_between(a: DateTime<Utc>, b: DateTime<Utc>) -> f64 {
    (b - a).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6
}

/// Gives the first `circles` circles a daily cadence whose next round is
/// due at a whole second `lead_secs` from now. The cadence is a cron
/// expression with seconds, which circles accept, so the slot need not
/// wait for the next whole minute.
fn schedule_slot(database_url: &str, circles: usize, lead_secs: i64) -> DateTime<Utc> {
    let slot = (Clock::system().now() + chrono::Duration::seconds(lead_secs))
        .duration_trunc(chrono::Duration::seconds(1))
        .expect("a whole second");
    let expression = format!("{} {} {} * * *", slot.second(), slot.minute(), slot.hour());
    let cadence = Cadence::cron(&expression)
        .expect("a daily cadence")
        .to_canonical();
    let sql = format!(
        "UPDATE circles SET cadence = $1, next_round_at = '{}' WHERE id <= {circles}",
        slot.format("%Y-%m-%d %H:%M:%S")
    );
    let mut conn = connection(database_url);
    let query = diesel::sql_query(sql).bind::<Text, _>(&cadence);
    let updated = match &mut **conn {
        DbConnection::Postgresql(conn) => query.execute(conn),
        DbConnection::Sqlite(conn) => query.execute(conn),
    }
    .expect("the slot is set");
    assert_eq!(updated, circles, "every seeded circle gets the slot");
    slot
}

/// The instant the pass that opened the first `circles` circles' rounds
/// started: it writes that instant as every round's `opened_at`.
fn pass_start(database_url: &str, circles: usize) -> DateTime<Utc> {
    #[derive(QueryableByName)]
    struct Opened {
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Timestamp>)]
        at: Option<chrono::NaiveDateTime>,
    }
    let sql = format!("SELECT MIN(opened_at) AS at FROM rounds WHERE circle_id <= {circles}");
    let mut conn = connection(database_url);
    let row: Opened = match &mut **conn {
        DbConnection::Postgresql(conn) => diesel::sql_query(sql).get_result(conn),
        DbConnection::Sqlite(conn) => diesel::sql_query(sql).get_result(conn),
    }
    .expect("the opening's start");
    row.at.expect("rounds opened").and_utc()
}

/// Counts the first `circles` circles' rounds every [`POLL_EVERY`] on a
/// connection of its own (on SQLite a reader, which in WAL mode never waits
/// for the writer) until all are open, or `deadline` passes. Returns when
/// the count that found them all was sent.
fn watch_opening(
    database_url: &str,
    circles: usize,
    deadline: DateTime<Utc>,
) -> Result<DateTime<Utc>, String> {
    let mut conn = connection(database_url);
    let sql = format!("SELECT COUNT(*) AS n FROM rounds WHERE circle_id <= {circles}");
    let clock = Clock::system();
    let mut next = Instant::now();
    loop {
        let asked = clock.now();
        let open = count_on(&mut conn, &sql);
        if open >= circles {
            return Ok(asked);
        }
        if asked > deadline {
            return Err(format!("{open} of {circles} open"));
        }
        next += POLL_EVERY;
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
}

/// The circle whose check-ins are edited during the opening.
struct CheckInCircle {
    round_path: String,
    posters: Vec<Poster>,
}

/// A member signed in to edit their own check-in.
struct Poster {
    /// `shoulder_session=<id>`.
    cookie: String,
    /// The commitment every POST of theirs keeps.
    commitment: String,
}

/// A circle of [`CHECK_IN_MEMBERS`] whose first round opened an hour ago,
/// by the library's own pass on a fixed clock, and stays open for two
/// days; each member has a session as of the real now. The seeded circles
/// are parked, so that pass opens this round alone.
async fn seed_check_in_circle(dir: &Path, database_url: &str) -> CheckInCircle {
    let now = Clock::system().now();
    let opens = (now - chrono::Duration::hours(1))
        .duration_trunc(chrono::Duration::minutes(1))
        .expect("a whole minute");
    let clock = Clock::fixed(opens - chrono::Duration::minutes(1));
    let state = AppState::build(library_config(dir, database_url), clock.clone(), false)
        .await
        .expect("the library opens the database");
    let mut form = SettingsForm::new("UTC");
    form.name = "Editing during the opening".into();
    form.purpose = "Checking in while thousands of rounds open.".into();
    form.agreements = "We listen first.".into();
    form.round_hours = "48".into();
    let weekday = opens.format("%a").to_string().to_lowercase();
    form.set_cadence_text(&format!("weekly {weekday} {}", opens.format("%H:%M")));
    let settings = Settings::parse(&form, opens.date_naive()).expect("valid settings");
    let created = clock.now();
    let circle_id = state
        .db
        .run(move |conn| create_check_in_circle(conn, &settings, created))
        .await
        .expect("the circle is created");
    clock.set(opens);
    let report = shoulder::jobs::run_once(&state)
        .await
        .expect("a pass of the jobs");
    assert_eq!(
        report.rounds.opened,
        [(circle_id, 1)],
        "the check-in circle's round opens, and no other"
    );
    let at = now.naive_utc();
    let posters = state
        .db
        .run(move |conn| sign_in_members(conn, circle_id, at))
        .await
        .expect("a session for each member");
    CheckInCircle {
        round_path: format!("/circles/{circle_id}/rounds/1"),
        posters,
    }
}

/// The compiled-in defaults, with mail kept in memory: the check-ins the
/// seeding's pass queues go nowhere.
fn library_config(dir: &Path, database_url: &str) -> Config {
    let mut config = Config::load(&ConfigSources {
        config_dir: dir.join("config"),
        environment: "bench".into(),
        extra_file: None,
        read_env_vars: false,
    })
    .expect("the compiled-in defaults are valid");
    config.database.url = database_url.into();
    config.mail.transport = MailTransportKind::Memory;
    // Folders that do not exist: the decks and wording built into the
    // binary, which the server started in `dir` uses too.
    config.rounds.prompts_dir = dir.join("templates/prompts").display().to_string();
    config.mail.templates_dir = dir.join("templates/email").display().to_string();
    config
        .validate()
        .expect("the seeding configuration is valid");
    config
}

/// The people and the circle; returns the circle's id.
fn create_check_in_circle(
    conn: &mut DbConnection,
    settings: &Settings,
    at: DateTime<Utc>,
) -> Result<i64, DbError> {
    let mut people = Vec::new();
    for n in 1..=CHECK_IN_MEMBERS {
        people.push(store::find_or_create_person(
            conn,
            &format!("member{n}@opening.example"),
            &format!("Member {n}"),
            at.naive_utc(),
        )?);
    }
    let circle_id = store::create(conn, people[0], settings, at)?;
    for person in &people[1..] {
        store::add_member(conn, circle_id, *person, store::ROLE_MEMBER, at.naive_utc())?;
    }
    Ok(circle_id)
}

fn sign_in_members(
    conn: &mut DbConnection,
    circle_id: i64,
    now: chrono::NaiveDateTime,
) -> Result<Vec<Poster>, DbError> {
    let mut posters = Vec::new();
    for (n, member) in store::list_members(conn, circle_id)?.iter().enumerate() {
        let session = session::start(conn, member.person_id, now)?;
        posters.push(Poster {
            cookie: format!("{SESSION_COOKIE}={}", session.as_str()),
            commitment: format!("Ask one question before giving advice, step {n}"),
        });
    }
    Ok(posters)
}

/// The round page's check-in form as a browser sends it: a first round has
/// no earlier commitments to report on.
fn check_in_form(commitment: &str, reflection: &str) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("reflection", reflection)
        .append_pair("commitment-1", commitment)
        .append_pair("commitment-2", "")
        .append_pair("commitment-3", "")
        .finish()
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60))
        .build()
        .expect("an HTTP client")
}

/// POSTs `poster`'s check-in with the headers a browser on our own page
/// sends, which the server's same-origin check looks at. The answer's
/// status, or `None` when none came.
async fn post_check_in(
    client: &reqwest::Client,
    url: &str,
    origin: &str,
    poster: &Poster,
    reflection: &str,
) -> Option<u16> {
    let response = client
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("origin", origin)
        .header("sec-fetch-site", "same-origin")
        .header("cookie", &poster.cookie)
        .body(check_in_form(&poster.commitment, reflection))
        .send()
        .await
        .ok()?;
    let status = response.status().as_u16();
    // The whole answer is read, as a browser would before its next request.
    response.bytes().await.ok()?;
    Some(status)
}

/// Each member's check-in is saved once (the 303 back to the round page),
/// and the last one shows on their round page: the load measures saves,
/// not refusals.
async fn expect_check_ins_saved(url: &str, origin: &str, posters: &[Poster]) {
    let client = http_client();
    let reflection = "Checked once before the opening.";
    for poster in posters {
        let status = post_check_in(&client, url, origin, poster, reflection).await;
        assert_eq!(status, Some(303), "POST {url} answered {status:?}");
    }
    let last = posters.last().expect("members");
    let page = client
        .get(url)
        .header("cookie", &last.cookie)
        .send()
        .await
        .expect("the round page answers");
    assert_eq!(page.status().as_u16(), 200, "GET {url}");
    let body = page.text().await.expect("the round page");
    assert!(body.contains(reflection), "the check-in shows on {url}");
}

/// One check-in POST: when it was sent, how long its answer took, and
/// whether that was the 303 of a saved check-in.
struct Post {
    sent: DateTime<Utc>,
    latency: Duration,
    saved: bool,
}

impl Post {
    fn answered(&self) -> DateTime<Utc> {
        self.sent + chrono::Duration::from_std(self.latency).unwrap_or(chrono::Duration::MAX)
    }
}

/// Edits the members' check-ins in turn, from the `first`th, one POST at a
/// time, each a new reflection so that each one writes, until `stop`.
async fn keep_posting(
    url: String,
    origin: String,
    posters: Arc<Vec<Poster>>,
    first: usize,
    stop: Arc<AtomicBool>,
) -> Vec<Post> {
    let client = http_client();
    let clock = Clock::system();
    let mut posts = Vec::new();
    let mut turn = first;
    while !stop.load(Ordering::Relaxed) {
        let poster = &posters[turn % posters.len()];
        let reflection = format!("Edit {turn}, written while the rounds open.");
        let sent = clock.now();
        let started = Instant::now();
        let status = post_check_in(&client, &url, &origin, poster, &reflection).await;
        posts.push(Post {
            sent,
            latency: started.elapsed(),
            saved: status == Some(303),
        });
        turn += 1;
    }
    posts
}

/// Check-in POST latencies in one stretch of time, sorted, in ms.
struct Latencies {
    ms: Vec<f64>,
    /// Answers other than 303, and POSTs that got none.
    errors: usize,
}

impl Latencies {
    fn of<'a>(posts: impl Iterator<Item = &'a Post>) -> Latencies {
        let mut ms = Vec::new();
        let mut errors = 0;
        for post in posts {
            ms.push(post.latency.as_secs_f64() * 1e3);
            errors += usize::from(!post.saved);
        }
        ms.sort_by(f64::total_cmp);
        Latencies { ms, errors }
    }

    /// The nearest-rank percentile, `share` from 0 to 1.
    fn percentile(&self, share: f64) -> Option<f64> {
        let rank = (share * self.ms.len() as f64).ceil() as usize;
        self.ms.get(rank.max(1) - 1).copied()
    }

    fn shown(&self, shares: &[f64]) -> String {
        let figures: Vec<String> = shares
            .iter()
            .map(|&share| match self.percentile(share) {
                Some(ms) => format!("{ms:.1}"),
                None => "–".into(),
            })
            .collect();
        format!("{} ({} POSTs)", figures.join(" / "), self.ms.len())
    }
}

fn print_served(plan: &ServePlan, served: &[Result<ServedOpening, &'static str>]) {
    if served.is_empty() {
        return;
    }
    if !plan.measuring {
        println!(
            "\nSmoke test, not a measurement: tiny openings, and the server's scheduler \
             runs every second (shipped: every 30 s)."
        );
    }
    let settings = if plan.measuring {
        "its scheduler as shipped: a pass when the next round is due, and every 30 s"
    } else {
        "its scheduler running a pass every second"
    };
    println!(
        "\nOpening rounds through `shoulder serve` ({settings}), while {POSTING_CLIENTS} \
         clients edit check-ins in another circle. \"Slot → pass\" is the rounds' opened_at, \
         the instant the opening pass started; \"opening\" runs from then to the last round \
         seen open (seen by counting every {} ms); POSTs \"during\" were in flight at some \
         moment of the opening, the baseline's were answered before the slot.\n",
        POLL_EVERY.as_millis()
    );
    println!(
        "| backend | circles of 8 | slot → last round seen (s) | slot → pass (s) | opening (s) \
         | rows written | rows/s | peak RSS (MiB) | check-in POST during: p50 / p99 / max ms \
         | baseline: p50 / p99 ms | non-303 during / before |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for opening in served {
        match opening {
            Ok(o) => println!(
                "| {} | {} | {:.2} | {:.2} | {:.2} | {} | {:.0} | {:.1} | {} | {} | {} / {} |",
                o.backend,
                o.circles,
                o.all_open,
                o.pass_started,
                o.opening,
                o.rows,
                o.rows as f64 / o.opening.max(f64::EPSILON),
                o.peak_rss_kib as f64 / 1024.0,
                o.during.shown(&[0.5, 0.99, 1.0]),
                o.before.shown(&[0.5, 0.99]),
                o.during.errors,
                o.before.errors,
            ),
            Err(backend) => println!("| {backend} | not measured: unreachable |"),
        }
    }
    let judged: Vec<String> = served
        .iter()
        .flatten()
        .filter(|o| o.circles == BUDGET_CIRCLES)
        .map(|o| {
            let p99 = o.during.percentile(0.99).unwrap_or(f64::INFINITY);
            let met = if p99 < CHECK_IN_P99_BUDGET_MS && o.during.errors == 0 {
                "met"
            } else {
                "NOT met"
            };
            format!("{} {met} ({p99:.1} ms)", o.backend)
        })
        .collect();
    let verdict = if judged.is_empty() {
        format!("not measured in this run (no opening of {BUDGET_CIRCLES} circles)")
    } else {
        judged.join(", ")
    };
    println!(
        "\nBudget: check-in POST p99 < {CHECK_IN_P99_BUDGET_MS:.0} ms during an opening of \
         {BUDGET_CIRCLES} circles: {verdict}."
    );
}

/// `shoulder serve` on a port of its own with the shipped settings but for
/// the database, the address and where mail files go (and, in a smoke
/// test, the scheduler's interval), stopped when dropped.
struct ServeProcess {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl ServeProcess {
    /// `settings` are more `SHOULDER_*` variables the run needs.
    fn start(
        dir: &Path,
        database_url: &str,
        interval_secs: Option<&str>,
        settings: &[(&str, &str)],
    ) -> ServeProcess {
        let port = std::net::TcpListener::bind(("127.0.0.1", 0))
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let log = dir.join(format!("serve-{port}.log"));
        let mut command = Command::new(SHOULDER);
        // No setting of this environment reaches the server: only the ones
        // given here differ from what ships.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("SHOULDER_") {
                command.env_remove(name);
            }
        }
        command
            .arg("serve")
            .current_dir(dir)
            .env_remove("RUST_LOG")
            .env("SHOULDER_DATABASE__URL", database_url)
            .env("SHOULDER_SERVER__BIND", format!("127.0.0.1:{port}"))
            .env(
                "SHOULDER_SERVER__PUBLIC_URL",
                format!("http://127.0.0.1:{port}"),
            )
            .env("SHOULDER_LOG__FILTER", "warn")
            .env("SHOULDER_MAIL__FILE_DIR", dir.join("data").join("mail"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log).expect("a log file for the server"));
        if let Some(secs) = interval_secs {
            command.env("SHOULDER_SCHEDULER__INTERVAL_SECS", secs);
        }
        command.envs(settings.iter().copied());
        let child = command.spawn().expect("shoulder serve starts");
        ServeProcess { child, port, log }
    }

    /// Waits for the first 200 from `/readyz`.
    async fn ready(&mut self) {
        let client = http_client();
        let url = self.url("/readyz");
        let started = Instant::now();
        loop {
            if let Ok(response) = client.get(&url).send().await
                && response.status().as_u16() == 200
            {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "shoulder serve exited ({status}) before it was ready:\n{}",
                    self.log_text()
                );
            }
            assert!(
                started.elapsed() < READY_TIMEOUT,
                "shoulder serve was not ready in {READY_TIMEOUT:?}:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.origin())
    }

    /// A figure from `/proc/<pid>/status` (`VmHWM`: the peak resident
    /// memory), in KiB.
    fn memory_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("the server's /proc status");
        status
            .lines()
            .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc/<pid>/status"))
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, so that it closes its database connections; SIGKILL if it
    /// is still at its pass after [`STOP_TIMEOUT`].
    fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        eprintln!("batch: shoulder serve still at its pass after {STOP_TIMEOUT:?}; killing it");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

// ---------------------------------------------------------------------------
// Replies by email taken through the inbound pipeline.

/// Clients posting replies to `POST /inbound/email` at once.
const REPLY_CLIENTS: usize = 4;
const REPLY_ADDRESS: &str = "reply+{key}@bench.example";
const INBOUND_SECRET: &str = "bench-inbound-secret-0123456789";
/// The product's budget for replies over HTTP on SQLite, per second.
const REPLIES_BUDGET: f64 = 500.0;

/// Replies per second on one backend: through the pipeline in process, as
/// `shoulder inbound` runs it, and over `POST /inbound/email`.
struct RepliesTaken {
    backend: &'static str,
    replies: usize,
    in_process: f64,
    over_http: f64,
}

fn replies_taken(
    runtime: &tokio::runtime::Runtime,
    dir: &Path,
    replies: usize,
) -> Vec<Result<RepliesTaken, &'static str>> {
    let sqlite = format!("{}/replies.db", dir.display());
    let mut taken = vec![Ok(take_replies(runtime, dir, &sqlite, "SQLite", replies))];
    match postgres_database() {
        Some(url) => {
            on_postgres_server("CHECKPOINT");
            taken.push(Ok(take_replies(runtime, dir, &url, "PostgreSQL", replies)));
            on_postgres_server(&format!(
                "DROP DATABASE IF EXISTS {}",
                bench_database_name()
            ));
        }
        None => taken.push(Err("PostgreSQL unreachable")),
    }
    taken
}

/// Opens a round for `replies` members (circles of 8) with replies on, then
/// takes one reply from each through the pipeline in process and another
/// over HTTP from a running `shoulder serve`; every one must be recorded.
fn take_replies(
    runtime: &tokio::runtime::Runtime,
    dir: &Path,
    database_url: &str,
    backend: &'static str,
    replies: usize,
) -> RepliesTaken {
    let mut migrate = shoulder(dir, database_url);
    migrate.arg("migrate");
    run(migrate, "migrate");
    let circles = replies.div_ceil(8);
    seed(database_url, circles, DUE);
    let mut tick = shoulder(dir, database_url);
    tick.args(["tick", "--at", TICK_AT, "--no-deliver"])
        .env("SHOULDER_INBOUND__REPLY_ADDRESS", REPLY_ADDRESS);
    run(tick, "tick");
    // The check-ins count as sent: the server below has only receipts to send.
    let mut conn = connection(database_url);
    let addressed: Vec<(String, String)> = {
        #[derive(QueryableByName)]
        struct Row {
            #[diesel(sql_type = Text)]
            to_address: String,
            #[diesel(sql_type = Text)]
            headers_json: String,
        }
        let query = diesel::sql_query(
            "SELECT to_address, headers_json FROM deliveries WHERE kind = 'check_in' ORDER BY id",
        );
        let rows: Vec<Row> = match &mut **conn {
            DbConnection::Postgresql(conn) => query.load(conn),
            DbConnection::Sqlite(conn) => query.load(conn),
        }
        .expect("the check-ins");
        rows.into_iter()
            .take(replies)
            .map(|row| {
                let headers: serde_json::Value =
                    serde_json::from_str(&row.headers_json).expect("headers as JSON");
                let reply_to = headers["headers"]
                    .as_array()
                    .and_then(|pairs| pairs.iter().find(|pair| pair[0] == "Reply-To"))
                    .and_then(|pair| pair[1].as_str())
                    .expect("a Reply-To")
                    .to_string();
                (row.to_address, reply_to)
            })
            .collect()
    };
    conn.batch_execute("UPDATE deliveries SET status = 'sent' WHERE kind = 'check_in'")
        .expect("the check-ins marked sent");
    drop(conn);
    let message = |n: usize, (from, to): &(String, String), words: &str| -> Vec<u8> {
        format!(
            "From: {from}\r\nTo: {to}\r\nSubject: Re: Circle, round 1\r\n\
             Message-ID: <bench-{n}@mail.example>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
             {words}\r\n\r\nOn Mon, 1 Mar 2027 at 09:00, Shoulder wrote:\r\n> Reply above this line\r\n"
        )
        .into_bytes()
    };

    // In process, one after another, as a mail server's pipe would hand
    // them over (without the process start of each `shoulder inbound`).
    let mut config = library_config(dir, database_url);
    config.inbound.reply_address = REPLY_ADDRESS.into();
    let settings = shoulder::inbound::receive::Settings::from_config(&config);
    let state = runtime
        .block_on(AppState::build(config, Clock::system(), false))
        .expect("the app state");
    let first: Vec<Vec<u8>> = addressed
        .iter()
        .enumerate()
        .map(|(n, member)| message(n, member, "+ Call the housing office\nA good week."))
        .collect();
    let started = Instant::now();
    for raw in first {
        let settings = settings.clone();
        let now = state.clock.now().naive_utc();
        let received =
            runtime
                .block_on(state.db.run(move |conn| {
                    shoulder::inbound::receive::receive(conn, &settings, &raw, now)
                }))
                .expect("the pipeline");
        assert_eq!(received.as_str(), "recorded");
    }
    let in_process = addressed.len() as f64 / started.elapsed().as_secs_f64();
    drop(state);

    // Over HTTP, to the server as shipped with the route turned on.
    let mut server = ServeProcess::start(
        dir,
        database_url,
        None,
        &[
            ("SHOULDER_INBOUND__REPLY_ADDRESS", REPLY_ADDRESS),
            ("SHOULDER_INBOUND__SECRET", INBOUND_SECRET),
        ],
    );
    let second: Vec<Vec<u8>> = addressed
        .iter()
        .enumerate()
        .map(|(n, member)| message(replies + n, member, "1 done: called\nA second thought."))
        .collect();
    let over_http = runtime.block_on(async {
        server.ready().await;
        let url = server.url("/inbound/email");
        let messages = Arc::new(second);
        let next = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let clients: Vec<_> = (0..REPLY_CLIENTS)
            .map(|_| {
                let (url, messages, next) = (url.clone(), Arc::clone(&messages), Arc::clone(&next));
                tokio::spawn(async move {
                    let client = http_client();
                    loop {
                        let n = next.fetch_add(1, Ordering::Relaxed);
                        let Some(raw) = messages.get(n) else { return };
                        let response = client
                            .post(&url)
                            .header("Authorization", format!("Bearer {INBOUND_SECRET}"))
                            .header("Content-Type", "message/rfc822")
                            .body(raw.clone())
                            .send()
                            .await
                            .expect("the server answers");
                        assert_eq!(response.status().as_u16(), 202, "reply {n}");
                    }
                })
            })
            .collect();
        for client in clients {
            client.await.expect("a posting client");
        }
        messages.len() as f64 / started.elapsed().as_secs_f64()
    });
    server.stop();
    let recorded = count(
        database_url,
        "SELECT COUNT(*) AS n FROM inbound_messages WHERE outcome = 'recorded'",
    );
    assert_eq!(recorded, 2 * addressed.len(), "every reply recorded");
    RepliesTaken {
        backend,
        replies: addressed.len(),
        in_process,
        over_http,
    }
}

fn print_replies(taken: &[Result<RepliesTaken, &'static str>]) {
    println!(
        "\n| replies by email | in process | over POST /inbound/email ({REPLY_CLIENTS} clients) | budget | met |\n|---|---|---|---|---|"
    );
    for result in taken {
        match result {
            Ok(t) => {
                let (budget, met) = if t.backend == "SQLite" {
                    (
                        format!("≥ {REPLIES_BUDGET:.0}/s over HTTP"),
                        if t.over_http >= REPLIES_BUDGET {
                            "yes"
                        } else {
                            "**no**"
                        },
                    )
                } else {
                    (String::new(), "")
                };
                println!(
                    "| {} replies, {} | {:.0}/s | {:.0}/s | {budget} | {met} |",
                    t.replies, t.backend, t.in_process, t.over_http
                );
            }
            Err(why) => println!("| replies | not measured: {why} | | | |"),
        }
    }
}
