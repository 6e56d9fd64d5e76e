//! Requests per second, latency, memory and start-up of the real
//! `shoulder serve`, beside a bare axum handler in this process that answers
//! a static 2 KB page. The bare handler is the machine's ceiling, measured in
//! the same run, so the ratios mean the same on a faster or busier machine.
//! The circle page's ratio, which has a budget, is the median of five pairs
//! of runs, the bare handler's and the page's one right after the other.
//!
//! - the circle page and the open round's page, signed in, on SQLite, over
//!   one circle of 8 whose 5 weekly rounds hold 40 commitments, 32 support
//!   messages and follow-through reports, seeded through the library just
//!   as the scheduler and the pages write them;
//! - the members editing their check-ins for the open round (POSTs
//!   answered 303), on SQLite and on PostgreSQL: each connection takes the
//!   8 members in turn, each signed in and editing their own check-in, so
//!   the writes spread over the circle rather than queue on one member's
//!   rows;
//! - the server's resident memory when idle after start-up, and its peak
//!   after the load;
//! - start-up: exec of `shoulder serve` to the first 200 from `/readyz`.
//!
//! Load comes from `wrk` at 64 connections; without it those rows are
//! skipped (`benches/run` installs it). Every URL is fetched once first and
//! must answer the page expected, and a run with any answer other than 2xx or
//! 3xx, or any socket error, fails the benchmark: it never measures an error
//! page.
//!
//! Run with `cargo bench --bench http`. PostgreSQL is reached at
//! `TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`) in
//! a database of its own; when it cannot be reached its row says so.
//! `BENCH_SECONDS` sets the length of each wrk run (default 10). Without
//! cargo bench's `--bench` argument (`cargo test --bench http`, `cargo test
//! --all-targets`) every run lasts a second: a smoke test, not a measurement.

use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::LazyLock;
use std::time::{Duration as StdDuration, Instant};

use axum::response::Html;
use axum::routing::get;
use chrono::{DateTime, Duration, DurationRound, NaiveDateTime, Utc};
use diesel::pg::PgConnection;
use diesel::{Connection, RunQueryDsl};
use shoulder::app::AppState;
use shoulder::auth::session;
use shoulder::circles::settings::{Settings, SettingsForm};
use shoulder::circles::store::{self, Member};
use shoulder::clock::Clock;
use shoulder::config::{Config, ConfigSources, MailTransportKind};
use shoulder::db::{DbConnection, DbError};
use shoulder::rounds::check_in::{self, CheckIn, CheckInForm, Outcome, Saved};
use shoulder::rounds::support::{self, Offered};
use shoulder::rounds::{self, Round, reflections};
use shoulder::web::session::SESSION_COOKIE;

const SHOULDER: &str = env!("CARGO_BIN_EXE_shoulder");
const CONNECTIONS: &str = "64";
const WRK_THREADS: &str = "2";
const DEFAULT_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Starts timed for the start-up median when measuring, and in a smoke test.
const STARTS: usize = 9;
const SMOKE_STARTS: usize = 3;
/// How often start-up polls `/readyz`: the resolution of that row.
const READY_POLL: StdDuration = StdDuration::from_millis(1);
const READY_TIMEOUT: StdDuration = StdDuration::from_secs(20);
const STOP_TIMEOUT: StdDuration = StdDuration::from_secs(10);
/// Time for the first scheduler pass to finish before "idle" is read.
const SETTLE: StdDuration = StdDuration::from_secs(1);

const BARE_PAGE_BYTES: usize = 2048;

const CIRCLE_NAME: &str = "Tuesday finishers";
const ROUNDS: i32 = 5;
const PEOPLE: [(&str, &str); 8] = [
    ("ada@bench.example", "Ada"),
    ("bea@bench.example", "Bea"),
    ("cal@bench.example", "Cal"),
    ("dev@bench.example", "Dev"),
    ("eli@bench.example", "Eli"),
    ("fay@bench.example", "Fay"),
    ("gus@bench.example", "Gus"),
    ("hal@bench.example", "Hal"),
];
const COMMITMENTS: [&str; 8] = [
    "Ask two questions before giving advice",
    "Walk for twenty minutes at lunch",
    "Send the grant draft to Sam by Thursday",
    "Put the phone in the drawer after nine",
    "Call my brother back about the move",
    "Finish the first chapter, rough is fine",
    "Book the dentist appointment I keep moving",
    "Say no to one new request this week",
];
const REFLECTIONS: [&str; 4] = [
    "I kept my promise on the days I planned it the night before, and lost it on the days I did not.",
    "Harder week than expected. I noticed I talk more than I listen when I am tired.",
    "Small steps worked: ten minutes a day added up to more than one big push on Sunday.",
    "I said yes to too much again. Writing it down here helped me see the pattern.",
];
const ENCOURAGEMENTS: [&str; 4] = [
    "you have done harder things than this. Tell us how it goes.",
    "what would make the first step smaller? Happy to be your check on Wednesday.",
    "I tried the same last month; doing it first thing in the morning was what worked.",
    "rooting for you. No need for it to be perfect, just done.",
];
const OUTCOMES: [Outcome; 3] = [Outcome::Done, Outcome::Partly, Outcome::NotYet];
/// The reflections posted by the check once, then by the load: finding
/// each on the round page afterwards shows the POSTs were saved.
const CHECKED_REFLECTION: &str = "Edited once before the load.";
const LOADED_REFLECTION: &str = "Edited again and again under load.";

fn main() {
    let plan = Plan::from_args();
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let dir = tempfile::tempdir().expect("a temp folder");
    let wrk = Wrk::find(plan.seconds);
    let mut table = Table::default();

    let bare = bare_handler(&runtime, wrk.as_ref(), &mut table);
    let sqlite = dir.path().join("shoulder.db").display().to_string();
    let memory = sqlite_server(
        &runtime,
        dir.path(),
        &sqlite,
        wrk.as_ref(),
        bare.as_ref(),
        &mut table,
    );
    postgres_check_in(&runtime, dir.path(), wrk.as_ref(), &mut table);
    memory.add_rows(&mut table);
    start_up(dir.path(), &sqlite, plan.starts, &mut table);

    if !plan.measuring {
        println!("\nSmoke test (run without --bench): 1-second runs, not a measurement.");
    }
    table.print();
    if !table.failures.is_empty() {
        eprintln!("\nThe benchmark failed:");
        for failure in &table.failures {
            eprintln!("- {failure}");
        }
        std::process::exit(1);
    }
}

/// How long and how often to measure.
struct Plan {
    /// False in a smoke test, whose numbers mean nothing.
    measuring: bool,
    /// Length of each wrk run.
    seconds: u64,
    /// Server starts timed for the start-up median.
    starts: usize,
}

impl Plan {
    /// cargo bench passes `--bench`; cargo test does not, and then this is a
    /// quick smoke test of a debug build.
    fn from_args() -> Plan {
        if std::env::args().any(|arg| arg == "--bench") {
            let seconds = std::env::var("BENCH_SECONDS")
                .ok()
                .and_then(|v| v.parse().ok())
                .filter(|&s: &u64| s > 0)
                .unwrap_or(10);
            Plan {
                measuring: true,
                seconds,
                starts: STARTS,
            }
        } else {
            Plan {
                measuring: false,
                seconds: 1,
                starts: SMOKE_STARTS,
            }
        }
    }
}

// ---------------------------------------------------------------------------
// The ceiling: a bare axum handler in this process.

static BARE_PAGE: LazyLock<String> = LazyLock::new(|| {
    let head = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
                <title>Bare</title></head><body><main><p>";
    let tail = "</p></main></body></html>";
    let mut text = "A static page, the same on every request. ".repeat(BARE_PAGE_BYTES / 40);
    text.truncate(BARE_PAGE_BYTES - head.len() - tail.len());
    format!("{head}{text}{tail}")
});

/// Serves [`BARE_PAGE`] on a free port of this process's runtime.
async fn start_bare_handler() -> u16 {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .expect("a free port for the bare handler");
    let port = listener.local_addr().expect("a bound address").port();
    let app = axum::Router::new().route("/", get(|| async { Html(BARE_PAGE.as_str()) }));
    tokio::spawn(async move {
        axum::serve(listener, app)
            .await
            .expect("the bare handler serves");
    });
    port
}

/// The bare handler, serving.
struct Bare {
    url: String,
}

/// Measures the bare handler, which goes on serving for the paired runs of
/// [`paired_ratios`].
fn bare_handler(
    runtime: &tokio::runtime::Runtime,
    wrk: Option<&Wrk>,
    table: &mut Table,
) -> Option<Bare> {
    let port = runtime.block_on(start_bare_handler());
    let url = format!("http://127.0.0.1:{port}/");
    let body = runtime.block_on(expect_page(&url, None, &[]));
    assert_eq!(body.len(), BARE_PAGE_BYTES, "the bare page is 2 KB");
    let what = "bare axum handler, static 2 KB page (ceiling)";
    let Some(wrk) = wrk else {
        table.not_measured(what);
        return None;
    };
    let load = wrk.run(&url, &[]);
    table.load(what, &load, "", |_| None);
    load.ok().then_some(Bare { url })
}

/// Runs of the bare handler and a page, one right after the other, whose
/// ratios the budget is judged on. This machine's speed drifts by a fifth
/// or more over a minute, so a ratio of two runs far apart says as much
/// about the drift as about the page.
const RATIO_PAIRS: usize = 5;

/// The page's rate over the bare handler's in [`RATIO_PAIRS`] pairs of
/// runs; `None` when a run failed (the table has it already).
fn paired_ratios(wrk: &Wrk, bare: &Bare, url: &str, extra: &[&str]) -> Option<Vec<f64>> {
    let mut ratios = Vec::with_capacity(RATIO_PAIRS);
    for _ in 0..RATIO_PAIRS {
        let ceiling = wrk.run(&bare.url, &[]);
        let page = wrk.run(url, extra);
        if !(ceiling.ok() && page.ok()) {
            return None;
        }
        ratios.push(page.per_second / ceiling.per_second);
    }
    Some(ratios)
}

// ---------------------------------------------------------------------------
// The real server on SQLite: pages, the check-in POST, memory.

/// Resident memory of the SQLite server, in KiB.
struct Memory {
    idle: u64,
    peak: u64,
}

impl Memory {
    fn add_rows(&self, table: &mut Table) {
        let mib = |kib: u64| kib as f64 / 1024.0;
        table.add(
            "memory idle after start-up (VmRSS), SQLite",
            format!("{:.1} MiB", mib(self.idle)),
            "< 20 MB",
            Some(mib(self.idle) < 20.0),
        );
        table.add(
            "memory peak after the SQLite loads (VmHWM)",
            format!("{:.1} MiB", mib(self.peak)),
            "< 64 MB",
            Some(mib(self.peak) < 64.0),
        );
    }
}

fn sqlite_server(
    runtime: &tokio::runtime::Runtime,
    dir: &Path,
    database_url: &str,
    wrk: Option<&Wrk>,
    bare: Option<&Bare>,
    table: &mut Table,
) -> Memory {
    eprintln!("http: seeding SQLite");
    let seeded = runtime.block_on(seed(dir, database_url));
    let mut server = Server::spawn(dir, database_url);
    server.ready();
    std::thread::sleep(SETTLE);
    let idle = server.memory_kib("VmRSS");

    let circle_url = server.url(&format!("/circles/{}", seeded.circle_id));
    let round_url = server.url(&seeded.round_path());
    let cookie = format!("Cookie: {}", seeded.cookie);
    runtime.block_on(async {
        let everyone: Vec<&str> = PEOPLE.iter().map(|(_, name)| *name).collect();
        let mut circle_page = vec![CIRCLE_NAME, "Round 5"];
        circle_page.extend(everyone);
        expect_page(&circle_url, Some(&seeded.cookie), &circle_page).await;
        let round_page = [
            "You have checked in this round.",
            seeded.commitment.as_str(),
            seeded.support_shown.as_str(),
        ];
        expect_page(&round_url, Some(&seeded.cookie), &round_page).await;
        expect_check_in_saved(&server, &seeded, CHECKED_REFLECTION).await;
    });

    if let Some(wrk) = wrk {
        eprintln!("http: loading the circle page");
        let circle = wrk.run(&circle_url, &["-H", &cookie]);
        table.load(
            "circle page, SQLite, signed in (8 members, 40 commitments)",
            &circle,
            "p99 < 25 ms",
            |load| Some(load.p99_ms < 25.0),
        );
        eprintln!("http: the circle page and the bare handler in {RATIO_PAIRS} pairs of runs");
        let ratios = bare.and_then(|bare| paired_ratios(wrk, bare, &circle_url, &["-H", &cookie]));
        table.ratios("circle page / bare handler", ratios, 0.08);
        eprintln!("http: loading the round page");
        let round = wrk.run(&round_url, &["-H", &cookie]);
        table.load(
            "round page, SQLite, signed in",
            &round,
            "p99 < 25 ms",
            |load| Some(load.p99_ms < 25.0),
        );
        eprintln!("http: the round page and the bare handler in {RATIO_PAIRS} pairs of runs");
        let ratios = bare.and_then(|bare| paired_ratios(wrk, bare, &round_url, &["-H", &cookie]));
        table.ratios("round page / bare handler", ratios, 0.04);
        eprintln!("http: loading the check-in POST on SQLite");
        let load = load_check_ins(runtime, wrk, dir, &server, &seeded);
        table.load("check-in POST (303), SQLite", &load, "≥ 3,000/s", |load| {
            Some(load.per_second >= 3_000.0)
        });
    } else {
        table.not_measured("circle page, SQLite");
        table.not_measured("round page, SQLite");
        table.not_measured("check-in POST, SQLite");
    }
    let peak = server.memory_kib("VmHWM");
    Memory { idle, peak }
}

/// Posts edits of the open round's check-ins, spread over the circle's 8
/// members' own check-ins, then checks on each member's round page that
/// theirs was saved.
fn load_check_ins(
    runtime: &tokio::runtime::Runtime,
    wrk: &Wrk,
    dir: &Path,
    server: &Server,
    seeded: &Seeded,
) -> Load {
    let script = check_in_script(dir, server, seeded);
    let script = script.display().to_string();
    let round_url = server.url(&seeded.round_path());
    let load = wrk.run(&round_url, &["-s", &script]);
    runtime.block_on(async {
        // Only the member themself sees their reflection on the round page.
        for poster in &seeded.posters {
            expect_page(&round_url, Some(&poster.cookie), &[LOADED_REFLECTION]).await;
        }
    });
    load
}

/// A wrk script that POSTs each member's check-in form with their session
/// cookie and the headers a browser on our own page sends, which the
/// server's same-origin check looks at; each connection takes the members in
/// turn.
fn check_in_script(dir: &Path, server: &Server, seeded: &Seeded) -> PathBuf {
    // The forms are URL-encoded and the cookies are hex: no quote or
    // backslash can end a Lua string.
    let posters: String = seeded
        .posters
        .iter()
        .map(|poster| {
            format!(
                "  {{ cookie = \"{}\", body = \"{}\" }},\n",
                poster.cookie,
                check_in_form(&poster.commitment, LOADED_REFLECTION),
            )
        })
        .collect();
    // The requests are built once, in init(): wrk sets the Host header only
    // after the script is loaded, just before it calls init().
    let script = format!(
        r#"local posters = {{
{posters}}}
local requests = {{}}
local turn = 0

init = function(args)
  for i, poster in ipairs(posters) do
    requests[i] = wrk.format("POST", nil, {{
      ["Content-Type"] = "application/x-www-form-urlencoded",
      ["Origin"] = "{origin}",
      ["Sec-Fetch-Site"] = "same-origin",
      ["Cookie"] = poster.cookie,
    }}, poster.body)
  end
end

request = function()
  turn = turn % #requests + 1
  return requests[turn]
end
"#,
        origin = server.origin(),
    );
    let path = dir.join(format!("check-in-{}.lua", server.port));
    std::fs::write(&path, script).expect("the wrk script is written");
    path
}

// ---------------------------------------------------------------------------
// The check-in POST on PostgreSQL.

fn postgres_check_in(
    runtime: &tokio::runtime::Runtime,
    dir: &Path,
    wrk: Option<&Wrk>,
    table: &mut Table,
) {
    let what = "check-in POST (303), PostgreSQL";
    let Some(database) = PgDatabase::create() else {
        table.add(what, "not measured: PostgreSQL unreachable", "", None);
        return;
    };
    eprintln!("http: seeding PostgreSQL");
    let seeded = runtime.block_on(seed(dir, &database.url()));
    // The load starts with no earlier writes left to flush: right after the
    // batch benchmark, PostgreSQL was still writing out its openings' rows,
    // and this load ran at half its rate.
    if database.on_server("CHECKPOINT").is_none() {
        eprintln!("http: CHECKPOINT refused; earlier writes may still be flushing");
    }
    let mut server = Server::spawn(dir, &database.url());
    server.ready();
    runtime.block_on(expect_check_in_saved(&server, &seeded, CHECKED_REFLECTION));
    match wrk {
        Some(wrk) => {
            eprintln!("http: loading the check-in POST on PostgreSQL");
            let load = load_check_ins(runtime, wrk, dir, &server, &seeded);
            table.load(what, &load, "≥ 1,000/s", |load| {
                Some(load.per_second >= 1_000.0)
            });
        }
        None => table.not_measured(what),
    }
    // The server's connections close before the database is dropped.
    drop(server);
    drop(database);
}

/// A database of our own on the test PostgreSQL server, dropped at the end.
struct PgDatabase {
    server: String,
    name: String,
}

impl PgDatabase {
    fn create() -> Option<PgDatabase> {
        let server = std::env::var("TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES.into());
        let database = PgDatabase {
            server,
            name: format!("shoulder_http_{}", std::process::id()),
        };
        database.on_server(&format!("DROP DATABASE IF EXISTS {}", database.name))?;
        database.on_server(&format!("CREATE DATABASE {}", database.name))?;
        Some(database)
    }

    fn url(&self) -> String {
        let mut url = url::Url::parse(&self.server).expect("TEST_POSTGRES_URL is a URL");
        url.set_path(&self.name);
        url.to_string()
    }

    /// Runs `sql` in the server's own database, if it answers.
    fn on_server(&self, sql: &str) -> Option<()> {
        let mut conn = PgConnection::establish(&self.server).ok()?;
        diesel::sql_query(sql).execute(&mut conn).ok().map(drop)
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        // FORCE: a pool connection still closing must not keep the database.
        let dropped = self.on_server(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ));
        if dropped.is_none() {
            eprintln!("http: could not drop the database {}", self.name);
        }
    }
}

// ---------------------------------------------------------------------------
// Start-up.

/// Starts the server on the already migrated SQLite database several times
/// and records the median time from exec to the first 200 from `/readyz`.
fn start_up(dir: &Path, database_url: &str, starts: usize, table: &mut Table) {
    eprintln!("http: timing {starts} starts");
    let mut times: Vec<f64> = (0..starts)
        .map(|_| {
            let mut server = Server::spawn(dir, database_url);
            server.ready().as_secs_f64() * 1000.0
        })
        .collect();
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let (fastest, slowest) = (times[0], times[times.len() - 1]);
    table.add(
        &format!("start-up, exec to first 200 from /readyz, SQLite (median of {starts})"),
        format!("{median:.1} ms (fastest {fastest:.1}, slowest {slowest:.1})"),
        "< 100 ms",
        Some(median < 100.0),
    );
}

// ---------------------------------------------------------------------------
// The `shoulder serve` process.

/// `shoulder serve` on a port of its own, stopped when dropped.
struct Server {
    child: Child,
    port: u16,
    /// Just before exec, for the start-up time.
    started: Instant,
    log: PathBuf,
}

impl Server {
    /// Starts `shoulder serve` in `dir` over `database_url`, with the
    /// compiled-in defaults and warnings-only logs, and returns at once.
    fn spawn(dir: &Path, database_url: &str) -> Server {
        let port = free_port();
        let log = dir.join(format!("serve-{port}.log"));
        let stderr = File::create(&log).expect("a log file for the server");
        let mut command = Command::new(SHOULDER);
        command
            .arg("serve")
            .current_dir(dir)
            .env_remove("RUST_LOG")
            .env_remove("SHOULDER_ENV")
            .env("SHOULDER_DATABASE__URL", database_url)
            .env("SHOULDER_SERVER__BIND", format!("127.0.0.1:{port}"))
            .env(
                "SHOULDER_SERVER__PUBLIC_URL",
                format!("http://127.0.0.1:{port}"),
            )
            .env("SHOULDER_LOG__FILTER", "warn")
            .env("SHOULDER_MAIL__FILE_DIR", dir.join("mail"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        let started = Instant::now();
        let child = command.spawn().expect("shoulder serve starts");
        Server {
            child,
            port,
            started,
            log,
        }
    }

    /// Polls `/readyz` until it answers 200; returns the time since exec.
    fn ready(&mut self) -> StdDuration {
        loop {
            if readyz_status(self.port) == Some(200) {
                return self.started.elapsed();
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "shoulder serve exited ({status}) before it was ready:\n{}",
                    self.log_text()
                );
            }
            assert!(
                self.started.elapsed() < READY_TIMEOUT,
                "shoulder serve was not ready in {READY_TIMEOUT:?}:\n{}",
                self.log_text()
            );
            std::thread::sleep(READY_POLL);
        }
    }

    fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.origin())
    }

    /// A figure from `/proc/<pid>/status` (`VmRSS`, `VmHWM`), in KiB.
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

    /// SIGTERM, so it closes its database connections; SIGKILL if it hangs.
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
            std::thread::sleep(StdDuration::from_millis(5));
        }
        eprintln!("http: shoulder serve ignored SIGTERM; killing it");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A port nobody listens on now; the server binds it a moment later.
fn free_port() -> u16 {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// The status of one `GET /readyz` over a fresh connection, or `None` while
/// nothing answers. Raw TCP: no client set-up inside the measured time.
fn readyz_status(port: u16) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(READY_TIMEOUT)).ok()?;
    let request =
        format!("GET /readyz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    // "HTTP/1.1 200"
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..]).ok()?.parse().ok()
}

// ---------------------------------------------------------------------------
// Checks, made once before each load with a plain HTTP client.

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("an HTTP client")
}

/// Fetches `url` and insists on a 200 whose body holds every one of
/// `expected`; returns the body.
async fn expect_page(url: &str, cookie: Option<&str>, expected: &[&str]) -> String {
    let mut request = client().get(url);
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    let response = request.send().await.expect("the server answers");
    let status = response.status();
    let body = response.text().await.expect("a text body");
    assert_eq!(status.as_u16(), 200, "GET {url} answered {status}:\n{body}");
    for text in expected {
        // Pages escape apostrophes; the texts checked have none.
        assert!(
            body.contains(text),
            "GET {url} does not show {text:?}:\n{body}"
        );
    }
    body
}

/// Posts the check-in form once as the load will, insists on the 303 back
/// to the round page, and finds `reflection` saved there.
async fn expect_check_in_saved(server: &Server, seeded: &Seeded, reflection: &str) {
    let url = server.url(&seeded.round_path());
    let response = client()
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("origin", server.origin())
        .header("sec-fetch-site", "same-origin")
        .header("cookie", &seeded.cookie)
        .body(check_in_form(&seeded.commitment, reflection))
        .send()
        .await
        .expect("the server answers");
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = response.text().await.unwrap_or_default();
    assert_eq!(status, 303, "POST {url} answered {status}:\n{body}");
    let back = format!("{}?done=", seeded.round_path());
    assert!(
        location.starts_with(&back),
        "POST {url} sent to {location:?}"
    );
    let round_url = server.url(&seeded.round_path());
    expect_page(&round_url, Some(&seeded.cookie), &[reflection]).await;
}

// ---------------------------------------------------------------------------
// The data: one circle of 8, five weekly rounds, the fifth open now.

/// How the benchmark reaches the seeded circle: as its facilitator, signed
/// in, who sees the most on the circle page, for the page loads; as each of
/// its members, for the check-in POSTs.
struct Seeded {
    circle_id: i64,
    /// `shoulder_session=<id>`, the facilitator's signed-in session.
    cookie: String,
    /// The facilitator's commitment in the open round, which the round page
    /// shows and the check before the load keeps.
    commitment: String,
    /// A support message on a commitment still open, which the round page shows.
    support_shown: String,
    /// Every member who checked in in the open round, in a session of their
    /// own (the facilitator's a second one): the load's POSTs.
    posters: Vec<Poster>,
}

/// A member signed in to edit their own check-in in the open round.
struct Poster {
    /// `shoulder_session=<id>`.
    cookie: String,
    /// Their commitment in the open round, which every POST of theirs keeps.
    commitment: String,
}

impl Seeded {
    fn round_path(&self) -> String {
        format!("/circles/{}/rounds/{ROUNDS}", self.circle_id)
    }
}

/// The round page's check-in form, as a browser sends it, keeping the
/// member's one `commitment`.
fn check_in_form(commitment: &str, reflection: &str) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("reflection", reflection)
        .append_pair("commitment-1", commitment)
        .append_pair("commitment-2", "")
        .append_pair("commitment-3", "")
        .finish()
}

/// Seeds the circle through the library, on a fixed clock walked through
/// the five weeks so that round 5 opened an hour before the real now and
/// stays open for the server, which reads the system clock.
async fn seed(dir: &Path, database_url: &str) -> Seeded {
    let now = Clock::system().now();
    let last_open = (now - Duration::hours(1))
        .duration_trunc(Duration::minutes(1))
        .expect("a whole minute");
    let first_open = last_open - Duration::weeks(i64::from(ROUNDS - 1));
    let clock = Clock::fixed(first_open - Duration::hours(1));
    let state = AppState::build(seed_config(dir, database_url), clock.clone(), true)
        .await
        .expect("the library opens and migrates the database");
    let settings = circle_settings(first_open);
    let created = clock.now();
    let (circle_id, facilitator) = state
        .db
        .run(move |conn| create_circle(conn, &settings, created))
        .await
        .expect("the circle is created");
    for number in 1..=ROUNDS {
        let opens = first_open + Duration::weeks(i64::from(number - 1));
        clock.set(opens);
        let report = shoulder::jobs::run_once(&state)
            .await
            .expect("a pass of the jobs");
        assert_eq!(
            report.rounds.opened,
            [(circle_id, number)],
            "round {number} opens"
        );
        let at = opens + Duration::hours(2);
        state
            .db
            .run(move |conn| take_part(conn, circle_id, number, at))
            .await
            .expect("the round's support and check-ins are saved");
    }
    let at = now.naive_utc();
    state
        .db
        .run(move |conn| facilitator_access(conn, circle_id, facilitator, at))
        .await
        .expect("a session for the facilitator")
}

/// The compiled-in defaults, as `shoulder serve` reads them from `dir`, with
/// mail kept in memory: the seeding's emails go nowhere.
fn seed_config(dir: &Path, database_url: &str) -> Config {
    let mut config = Config::load(&ConfigSources {
        config_dir: dir.join("config"),
        environment: "bench".into(),
        extra_file: None,
        read_env_vars: false,
    })
    .expect("the compiled-in defaults are valid");
    config.database.url = database_url.into();
    config.mail.transport = MailTransportKind::Memory;
    config.mail.file_dir = dir.join("mail").display().to_string();
    // The folders the server looks in from `dir`; neither exists, so both
    // use the built-in prompt decks and email wording.
    config.rounds.prompts_dir = dir.join("templates/prompts").display().to_string();
    config.mail.templates_dir = dir.join("templates/email").display().to_string();
    config
        .validate()
        .expect("the seeding configuration is valid");
    config
}

/// Weekly on the weekday and at the time of `first_open` (UTC), rounds open
/// for 48 hours.
fn circle_settings(first_open: DateTime<Utc>) -> Settings {
    let mut form = SettingsForm::new("UTC");
    form.name = CIRCLE_NAME.into();
    form.purpose = "Finishing the things we keep starting.".into();
    form.agreements =
        "We listen before we advise.\nWe keep what is shared here in the circle.".into();
    form.round_hours = "48".into();
    form.size_cap = PEOPLE.len().to_string();
    let day = first_open.format("%a").to_string().to_lowercase();
    form.set_cadence_text(&format!("weekly {day} {}", first_open.format("%H:%M")));
    Settings::parse(&form, first_open.date_naive()).expect("valid circle settings")
}

/// Creates the people and the circle; returns the circle's id and its
/// facilitator's person id.
fn create_circle(
    conn: &mut DbConnection,
    settings: &Settings,
    at: DateTime<Utc>,
) -> Result<(i64, i64), DbError> {
    let mut people = Vec::new();
    for (email, name) in PEOPLE {
        people.push(store::find_or_create_person(
            conn,
            email,
            name,
            at.naive_utc(),
        )?);
    }
    let facilitator = people[0];
    let circle_id = store::create(conn, facilitator, settings, at)?;
    for person in &people[1..] {
        store::add_member(conn, circle_id, *person, store::ROLE_MEMBER, at.naive_utc())?;
    }
    Ok((circle_id, facilitator))
}

/// Round `number` as the members live it: support on last round's
/// commitments, then everyone's check-in with one new commitment and a
/// report on each one still open.
fn take_part(
    conn: &mut DbConnection,
    circle_id: i64,
    number: i32,
    at: DateTime<Utc>,
) -> Result<(), DbError> {
    let round = rounds::find_by_number(conn, circle_id, number)?.expect("the round just opened");
    let members = store::list_members(conn, circle_id)?;
    offer_support(conn, circle_id, &round, &members, at.naive_utc())?;
    for (index, member) in members.iter().enumerate() {
        let check_in = member_check_in(conn, member, &round, index)?;
        let saved = check_in::save(
            conn,
            round.id,
            number,
            false,
            member.membership_id,
            &check_in,
            at,
        )?;
        assert_eq!(
            saved,
            Saved::Saved { late: false },
            "{}'s check-in",
            member.display_name
        );
    }
    Ok(())
}

/// Each member encourages the next member's commitment from the round
/// before, so the open round's commitments have no support and stay
/// editable.
fn offer_support(
    conn: &mut DbConnection,
    circle_id: i64,
    round: &Round,
    members: &[Member],
    at: NaiveDateTime,
) -> Result<(), DbError> {
    let earlier = support::open_in_circle(conn, circle_id, round.number - 1)?;
    for (index, author) in members.iter().enumerate() {
        let peer = &members[(index + 1) % members.len()];
        let Some(commitment) = earlier
            .iter()
            .find(|c| c.membership_id == peer.membership_id && c.made_in_round == round.number - 1)
        else {
            continue;
        };
        let body = format!(
            "{}, {}",
            peer.display_name,
            ENCOURAGEMENTS[index % ENCOURAGEMENTS.len()]
        );
        let offered = support::offer(
            conn,
            circle_id,
            round.id,
            author.membership_id,
            commitment.id,
            &body,
            at,
        )?;
        assert_eq!(
            offered,
            Offered::Saved,
            "support from {}",
            author.display_name
        );
    }
    Ok(())
}

/// The `index`th member's check-in: a reflection, one commitment, and an
/// outcome (done, partly or not yet, in turn) for each one still open.
fn member_check_in(
    conn: &mut DbConnection,
    member: &Member,
    round: &Round,
    index: usize,
) -> Result<CheckIn, DbError> {
    let number = usize::try_from(round.number).expect("a positive round number");
    let open = check_in::open_before(conn, member.membership_id, round.id, round.number)?;
    let follow = open
        .iter()
        .enumerate()
        .map(|(nth, commitment)| {
            let outcome = OUTCOMES[(index + nth + number) % OUTCOMES.len()];
            let note = (nth == 0).then(|| "It went better than I feared.".to_string());
            (commitment.id, outcome, note)
        })
        .collect();
    let commitment = COMMITMENTS[(index + number) % COMMITMENTS.len()];
    Ok(CheckIn {
        reflection: REFLECTIONS[(index + number) % REFLECTIONS.len()].into(),
        // Most share with the circle, as the form starts out; some keep it.
        shared: Some(index % 4 != 3),
        commitments: [Some(commitment.into()), None, None],
        follow,
    })
}

/// A session for the facilitator as of the real now, one for each member
/// to post their check-in with, and what the round page must show.
fn facilitator_access(
    conn: &mut DbConnection,
    circle_id: i64,
    person_id: i64,
    now: NaiveDateTime,
) -> Result<Seeded, DbError> {
    let (_, membership) =
        store::find_for_member(conn, circle_id, person_id)?.expect("the facilitator is a member");
    let round = rounds::find_by_number(conn, circle_id, ROUNDS)?.expect("the open round");
    let session = session::start(conn, person_id, now)?;
    let saved = saved_check_in(conn, round.id, membership.id)?;
    let commitment = saved
        .map(|form| form.commitments[0].clone())
        .expect("the facilitator has checked in");
    let support_shown = support::open_in_circle(conn, circle_id, ROUNDS)?
        .into_iter()
        .find_map(|commitment| commitment.support.into_iter().next())
        .map(|support| support.body)
        .expect("support on a commitment still open");
    let posters = posters(conn, circle_id, round.id, now)?;
    assert_eq!(
        posters.len(),
        PEOPLE.len(),
        "every member checked in in the open round"
    );
    Ok(Seeded {
        circle_id,
        cookie: format!("{SESSION_COOKIE}={}", session.as_str()),
        commitment,
        support_shown,
        posters,
    })
}

/// The member's saved check-in in the round, as its form.
fn saved_check_in(
    conn: &mut DbConnection,
    round_id: i64,
    membership_id: i64,
) -> Result<Option<CheckInForm>, DbError> {
    let (own, _) = reflections::in_round(conn, round_id, Some(membership_id))?;
    check_in::saved_form(conn, round_id, membership_id, own.as_ref())
}

/// A session as of `now` for each member who checked in in the open round,
/// with the commitment of their saved check-in: the load edits each one's
/// own check-in, so that its writes spread over the members' rows.
fn posters(
    conn: &mut DbConnection,
    circle_id: i64,
    round_id: i64,
    now: NaiveDateTime,
) -> Result<Vec<Poster>, DbError> {
    let mut posters = Vec::new();
    for member in store::list_members(conn, circle_id)? {
        let Some(saved) = saved_check_in(conn, round_id, member.membership_id)? else {
            continue;
        };
        let session = session::start(conn, member.person_id, now)?;
        posters.push(Poster {
            cookie: format!("{SESSION_COOKIE}={}", session.as_str()),
            commitment: saved.commitments[0].clone(),
        });
    }
    Ok(posters)
}

// ---------------------------------------------------------------------------
// wrk.

/// The load generator, with the plan's run length.
struct Wrk {
    seconds: u64,
}

impl Wrk {
    /// `None`, said clearly, when wrk is not installed.
    fn find(seconds: u64) -> Option<Wrk> {
        let installed = Command::new("wrk")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        if installed {
            Some(Wrk { seconds })
        } else {
            eprintln!(
                "\n*** wrk is not installed: the load rows are skipped.\n\
                 *** Install it (apt-get install -y wrk), or run benches/run, which does.\n"
            );
            None
        }
    }

    /// Loads `url` for the plan's seconds at 64 connections.
    fn run(&self, url: &str, extra: &[&str]) -> Load {
        let output = Command::new("wrk")
            .args(["-t", WRK_THREADS, "-c", CONNECTIONS, "--latency"])
            .args(["-d", &format!("{}s", self.seconds)])
            .args(extra)
            .arg(url)
            .output()
            .expect("wrk runs");
        let report = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "wrk failed on {url}:\n{report}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        Load::parse(&report)
    }
}

/// What one wrk run measured, and what went wrong in it.
#[derive(Debug, Default)]
struct Load {
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    problems: Vec<String>,
}

impl Load {
    fn parse(report: &str) -> Load {
        let mut load = Load::default();
        for line in report.lines().map(str::trim) {
            if let Some(rest) = line.strip_prefix("Requests/sec:") {
                load.per_second = rest.trim().parse().expect("a number of requests/s");
            } else if let Some(rest) = line.strip_prefix("50%") {
                load.p50_ms = milliseconds(rest.trim());
            } else if let Some(rest) = line.strip_prefix("99%") {
                load.p99_ms = milliseconds(rest.trim());
            } else if let Some(rest) = line.strip_prefix("Non-2xx or 3xx responses:") {
                load.problems
                    .push(format!("{} answers neither 2xx nor 3xx", rest.trim()));
            } else if let Some(rest) = line.strip_prefix("Socket errors:") {
                load.problems
                    .push(format!("socket errors: {}", rest.trim()));
            }
        }
        if load.per_second <= 0.0 {
            load.problems
                .push(format!("no requests completed:\n{report}"));
        }
        load
    }

    fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    fn summary(&self) -> String {
        format!(
            "{}/s, p50 {:.2} ms, p99 {:.2} ms",
            grouped(self.per_second),
            self.p50_ms,
            self.p99_ms
        )
    }
}

/// wrk's durations ("812.00us", "3.41ms", "1.02s", "1.50m") in milliseconds.
fn milliseconds(text: &str) -> f64 {
    let (number, scale) = if let Some(n) = text.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1_000.0)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60_000.0)
    } else {
        panic!("a wrk duration: {text:?}")
    };
    number.parse::<f64>().expect("a wrk duration") * scale
}

/// 12345.6 as "12,346".
fn grouped(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut text = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            text.push(',');
        }
        text.push(digit);
    }
    text
}

// ---------------------------------------------------------------------------
// The Markdown table.

#[derive(Default)]
struct Table {
    rows: Vec<[String; 4]>,
    failures: Vec<String>,
}

impl Table {
    fn add(&mut self, what: &str, result: impl Into<String>, budget: &str, met: Option<bool>) {
        let met = match met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "",
        };
        self.rows
            .push([what.into(), result.into(), budget.into(), met.into()]);
    }

    fn not_measured(&mut self, what: &str) {
        self.add(what, "not measured: wrk is not installed", "", None);
    }

    /// A load's row; a load with problems is a failure, not a number.
    fn load(&mut self, what: &str, load: &Load, budget: &str, met: impl Fn(&Load) -> Option<bool>) {
        if load.ok() {
            self.add(what, load.summary(), budget, met(load));
        } else {
            let problems = load.problems.join("; ");
            self.failures.push(format!("{what}: {problems}"));
            self.add(what, format!("FAILED: {problems}"), budget, None);
        }
    }

    /// The median of paired ratios, judged against `at_least`, with their
    /// range.
    fn ratios(&mut self, what: &str, ratios: Option<Vec<f64>>, at_least: f64) {
        let budget = format!("≥ {at_least:.2}");
        let Some(mut ratios) = ratios.filter(|r| !r.is_empty()) else {
            self.add(what, "not measured", &budget, None);
            return;
        };
        ratios.sort_by(f64::total_cmp);
        let median = ratios[ratios.len() / 2];
        let result = format!(
            "{median:.3}, the median of {} paired runs ({:.3} to {:.3})",
            ratios.len(),
            ratios[0],
            ratios[ratios.len() - 1]
        );
        self.add(what, result, &budget, Some(median >= at_least));
    }

    fn print(&self) {
        println!("\n| measurement | result | budget | met |\n|---|---|---|---|");
        for [what, result, budget, met] in &self.rows {
            println!("| {what} | {result} | {budget} | {met} |");
        }
    }
}
