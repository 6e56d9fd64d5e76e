//! Batch work measured end to end with the real `shoulder` binary:
//!
//! - opening rounds for 10,000 circles of 8 (80,000 check-in emails queued)
//!   with `shoulder tick --no-deliver`, on SQLite and on PostgreSQL, each
//!   beside the same rows written by the database alone (see [`floor`]);
//! - delivering 20,000 emails from the outbox with `shoulder tick` to a
//!   local SMTP sink, beside a bare lettre loop (TCP_NODELAY, as many
//!   connections as `mail.smtp_pool_size`) sending as many to the same sink
//!   from a process of its own: one of the outbox's check-ins, rendered by
//!   our templates, built into a message per send as ours are.
//!
//! Run with `cargo bench --bench batch`. PostgreSQL is reached at
//! `TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`);
//! when it cannot be reached its rows say so. Sizes can be lowered for a
//! quick look with `BENCH_CIRCLES` and `BENCH_EMAILS`; without cargo bench's
//! `--bench` argument (`cargo test --all-targets`) they are small.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::Text;
use lettre::Message;
use lettre::message::MultiPart;
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::extension::ClientId;
use shoulder::circles::settings::{Settings, SettingsForm};
use shoulder::db::{DatabaseUrl, Db, DbConnection};
use shoulder::mail::{EmailTemplates, RenderedEmail};
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
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let dir = tempfile::tempdir().expect("a temp folder");
    std::fs::create_dir_all(dir.path().join("data")).expect("a data folder");
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

/// Seeds `circles` circles of 8 due at [`DUE`], then times one tick that
/// opens all their rounds without delivering. Returns seconds and the
/// number of rows the tick wrote.
fn open_rounds(dir: &Path, database_url: &str, circles: usize) -> (f64, usize) {
    let mut migrate = shoulder(dir, database_url);
    migrate.arg("migrate");
    run(migrate, "migrate");
    seed(database_url, circles);
    let mut tick = shoulder(dir, database_url);
    tick.args(["tick", "--at", TICK_AT, "--no-deliver"]);
    let started = Instant::now();
    run(tick, "tick");
    let seconds = started.elapsed().as_secs_f64();
    let queued = count(database_url, "SELECT COUNT(*) AS n FROM deliveries");
    assert_eq!(queued, circles * 8, "one check-in per member");
    let written = OPENING_WRITES
        .iter()
        .map(|table| count(database_url, &format!("SELECT COUNT(*) AS n FROM {table}")))
        .sum();
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
    seed(database_url, circles);
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
    let written = OPENING_WRITES
        .iter()
        .map(|table| count(database_url, &format!("SELECT COUNT(*) AS n FROM {table}")))
        .sum();
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
    let mut conn = connection(database_url);
    let row: Count = match &mut **conn {
        DbConnection::Postgresql(conn) => diesel::sql_query(sql).get_result(conn),
        DbConnection::Sqlite(conn) => diesel::sql_query(sql).get_result(conn),
    }
    .expect("a count");
    usize::try_from(row.n).unwrap_or(0)
}

/// `circles` weekly circles of 8 people each, their first round due, in
/// three set-based statements that read the same on both backends.
fn seed(database_url: &str, circles: usize) {
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
             'active', '{DUE}', '{DUE}', '{DUE}' FROM n"
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
