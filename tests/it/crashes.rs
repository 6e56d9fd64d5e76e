//! The real `shoulder` binary under the worst that happens to a process:
//!
//! - killed with SIGKILL, again and again, while it opens a large round and
//!   delivers its emails, and restarted each time. Afterwards the database
//!   and the SMTP server's log are reconciled: one round per slot, one
//!   delivery record per member and round, every delivery sent, no email
//!   lost. An email the process had sent but not yet recorded when it died
//!   goes out again under the same Message-ID, so each kill can add at most
//!   one copy of any email;
//! - killed the moment a check-in has its 303: the check-in is there;
//! - paused with SIGSTOP past its lease beside two other instances: its
//!   late writes are refused;
//! - serving while its PostgreSQL database goes away and comes back.
//!
//! `cargo test` runs a short version. `SHOULDER_FULL_RELIABILITY=1` runs
//! the full one (500 circles of 8 and 20 kills per backend, 24 check-ins
//! killed), whose figures RELIABILITY.md keeps; run it with `--nocapture`
//! to see them.

use std::collections::HashMap;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use diesel::prelude::*;
use rand::{Rng, SeedableRng};
use shoulder::circles::settings::{Settings, SettingsForm};
use shoulder::circles::store;
use shoulder::db::DbError;
use shoulder::db::schema::{check_ins, deliveries, rounds};
use shoulder::mail::outbox::{RECORD_BATCH, status};

use crate::on_both_backends;
use crate::support::process::{Running, TickTarget, shoulder, signal, spawn_tick, wait_for_exit};
use crate::support::{Backend, SmtpMode, TestApp, link_path, utc};

/// Members in each circle.
const MEMBERS: usize = 8;

/// How long a worker holds what it claimed; each restart runs this much
/// (and a second) later, so that the claims of the killed one have lapsed.
const LEASE_SECS: i64 = 60;

/// The SMTP connections each process keeps (`mail.smtp_pool_size`).
const SMTP_POOL: usize = 4;

/// Most emails one kill can leave sent but not recorded, each sent once
/// more: what the recorder is writing, what waits for it, and one per
/// sender (`mail::outbox::deliver_due`).
const RESEND_WINDOW: usize = 2 * RECORD_BATCH + SMTP_POOL;

struct Scale {
    circles: usize,
    kills: usize,
}

fn full_run() -> bool {
    std::env::var("SHOULDER_FULL_RELIABILITY").is_ok_and(|v| v == "1")
}

fn scale() -> Scale {
    if full_run() {
        Scale {
            circles: 500,
            kills: 20,
        }
    } else {
        Scale {
            circles: 40,
            kills: 4,
        }
    }
}

/// `count` circles of [`MEMBERS`] with `cadence` (the command line's
/// form) in UTC, started at `created`; none has a round yet.
async fn seed(app: &TestApp, count: usize, cadence: &str, created: DateTime<Utc>) {
    let mut form = SettingsForm::new("UTC");
    form.name = "Night shift accomplices".into();
    form.purpose = "Turning what we learn into what we do.".into();
    form.agreements = "We listen first.".into();
    form.round_hours = "48".into();
    form.set_cadence_text(cadence);
    let settings = Settings::parse(&form, created.date_naive()).expect("valid settings");
    for circle in 0..count {
        let settings = settings.clone();
        app.state
            .db
            .run(move |conn| {
                let at = created.naive_utc();
                let mut people = Vec::with_capacity(MEMBERS);
                for member in 0..MEMBERS {
                    let email = format!("m{member}.c{circle}@example.org");
                    let name = format!("Member {member}");
                    people.push(store::find_or_create_person(conn, &email, &name, at)?);
                }
                let id = store::create(conn, people[0], &settings, created)?;
                for person in &people[1..] {
                    store::add_member(conn, id, *person, store::ROLE_MEMBER, at)?;
                }
                Ok::<_, DbError>(())
            })
            .await
            .expect("circle created");
    }
}

/// `count` circles meeting on Mondays at 09:00 UTC, started an hour before
/// the first, on 1 March 2027.
async fn seed_weekly(app: &TestApp, count: usize) {
    seed(app, count, "weekly mon 09:00", utc("2027-03-01T08:00:00Z")).await;
}

/// `count` circles whose first round opened two hours ago by the system
/// clock, which `shoulder serve` reads; their emails are queued, not sent.
async fn opened_two_hours_ago(app: &TestApp, count: usize) {
    let slot = shoulder::clock::Clock::system().now() - Duration::hours(2);
    let cadence = slot.format("%M %H * * *").to_string();
    seed(app, count, &cadence, slot - Duration::hours(1)).await;
    app.clock.set(slot);
    let report =
        shoulder::jobs::run_with(&app.state, shoulder::jobs::PassOptions { deliver: false })
            .await
            .expect("rounds opened");
    assert_eq!(report.rounds.opened.len(), count);
}

/// How far the work has come.
#[derive(Debug, Clone, Copy)]
struct Progress {
    rounds: usize,
    deliveries: usize,
    sent: usize,
}

/// Read through the app's pool; a read on a connection the database has
/// ended fails once, and the pool then opens a fresh one.
async fn progress(app: &TestApp) -> Progress {
    let mut tries = 0;
    loop {
        tries += 1;
        match read_progress(app).await {
            Ok(progress) => return progress,
            Err(error) if tries < 5 => eprintln!("progress not read ({error}); again"),
            Err(error) => panic!("progress read: {error}"),
        }
    }
}

async fn read_progress(app: &TestApp) -> Result<Progress, DbError> {
    app.state
        .db
        .run(|conn| {
            let rounds: i64 = rounds::table.count().get_result(conn)?;
            let deliveries: i64 = deliveries::table.count().get_result(conn)?;
            let sent: i64 = deliveries::table
                .filter(deliveries::status.eq(status::SENT))
                .count()
                .get_result(conn)?;
            Ok::<_, DbError>(Progress {
                rounds: rounds as usize,
                deliveries: deliveries as usize,
                sent: sent as usize,
            })
        })
        .await
}

/// Kills that landed in each part of the work.
#[derive(Debug, Default)]
struct Kills {
    /// Before every round had opened (start-up included).
    opening: usize,
    /// While emails were being delivered.
    delivery: usize,
    /// Runs that finished their pass before the kill came.
    missed: usize,
}

/// Where the next kill should land.
enum Aim {
    /// After a random delay of up to this many milliseconds, or as soon as
    /// every round is open: somewhere in start-up or opening.
    Opening(u64),
    /// Once every round is open and a random number of emails more has
    /// been recorded sent, at most an even share of what is left among
    /// this many kills still to come.
    Delivery(usize),
}

/// One run of `shoulder tick --at <at>`, killed with SIGKILL where `aim`
/// says. Returns whether the kill came before the process had finished by
/// itself.
async fn run_and_kill(
    app: &TestApp,
    target: &TickTarget,
    at: DateTime<Utc>,
    name: &str,
    circles: usize,
    aim: Aim,
    rng: &mut rand::rngs::StdRng,
) -> bool {
    let before = progress(app).await;
    let (mut child, _, stderr) = spawn_tick(target, at, name);
    match aim {
        Aim::Opening(window) => {
            // At the latest once the last round is open, so that the run
            // cannot go on to send everything before the kill.
            let delay = StdDuration::from_millis(rng.random_range(0..=window));
            let started = std::time::Instant::now();
            while started.elapsed() < delay && progress(app).await.rounds < circles {
                if child.try_wait().expect("waitable").is_some() {
                    break;
                }
                tokio::time::sleep(StdDuration::from_millis(1)).await;
            }
        }
        Aim::Delivery(kills_left) => {
            let left = circles * MEMBERS - before.sent;
            let goal = before.sent + rng.random_range(1..=(left / kills_left.max(1)).max(1));
            // Watching the work, not waiting for time: the kill comes as
            // soon as the goal is seen.
            loop {
                let now = progress(app).await;
                if now.rounds == circles && now.sent >= goal {
                    break;
                }
                if child.try_wait().expect("waitable").is_some() {
                    break;
                }
                tokio::time::sleep(StdDuration::from_millis(1)).await;
            }
        }
    }
    let killed = child.try_wait().expect("waitable").is_none();
    if killed {
        child.kill().expect("SIGKILL sent");
    }
    let status = wait_for_exit(&mut child, "shoulder tick after SIGKILL");
    if !killed {
        let errors = std::fs::read_to_string(stderr).unwrap_or_default();
        assert!(
            status.success(),
            "{name} failed by itself: {status}\n{errors}"
        );
    }
    killed
}

/// Runs uninterrupted passes until every email has been sent.
async fn finish(app: &TestApp, target: &TickTarget, mut at: DateTime<Utc>, circles: usize) {
    for pass in 0..10 {
        let (mut child, _, stderr) = spawn_tick(target, at, &format!("finish{pass}"));
        let status = wait_for_exit(&mut child, "shoulder tick");
        let errors = std::fs::read_to_string(stderr).unwrap_or_default();
        assert!(
            status.success(),
            "the finishing pass failed: {status}\n{errors}"
        );
        let now = progress(app).await;
        if now.rounds == circles && now.sent == now.deliveries {
            return;
        }
        at += Duration::seconds(LEASE_SECS + 1);
    }
    panic!(
        "ten passes after the kills did not send everything: {:?}",
        progress(app).await
    );
}

async fn crash_again_and_again(app: TestApp) {
    let backend = app.state.db.backend();
    let Scale { circles, kills } = scale();
    seed_weekly(&app, circles).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let target = TickTarget::of(&app, dir.path())
        .with("SHOULDER_MAIL__LEASE_SECS", LEASE_SECS)
        .with("SHOULDER_MAIL__SEND_TIMEOUT_SECS", 10)
        .with("SHOULDER_MAIL__SMTP_POOL_SIZE", SMTP_POOL);
    let seed_value: u64 = rand::rng().random();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed_value);
    let mut at = utc("2027-03-01T09:00:00Z");
    let mut seen = Kills::default();
    let mut run = 0;
    while seen.opening + seen.delivery < kills {
        run += 1;
        // Up to half the kills while rounds open, each a little later than
        // the last; the rest while emails go out.
        let opening = progress(&app).await.rounds < circles && seen.opening < kills / 2;
        let aim = if opening {
            Aim::Opening(200 * (1 + seen.opening as u64))
        } else {
            Aim::Delivery(kills - seen.opening - seen.delivery)
        };
        let name = format!("run{run}");
        if run_and_kill(&app, &target, at, &name, circles, aim, &mut rng).await {
            let after = progress(&app).await;
            if opening && after.rounds < circles {
                seen.opening += 1;
            } else {
                seen.delivery += 1;
            }
        } else {
            seen.missed += 1;
            assert!(
                seen.missed <= kills,
                "too many runs finished before their kill: {seen:?}"
            );
        }
        at += Duration::seconds(LEASE_SECS + 1);
    }
    finish(&app, &target, at, circles).await;

    // One round per circle and slot.
    let opened: Vec<(i64, String)> = read(&app, |conn| {
        rounds::table
            .select((rounds::circle_id, rounds::slot))
            .load(conn)
    })
    .await;
    let repeated = repeats(opened.iter());
    assert!(repeated.is_empty(), "rounds opened twice: {repeated:?}");
    assert_eq!(opened.len(), circles, "every circle's round opened");

    // One delivery record per member and round, each sent.
    let rows: Vec<DeliveryRow> = read(&app, |conn| {
        deliveries::table
            .select((
                deliveries::round_id,
                deliveries::membership_id,
                deliveries::kind,
                deliveries::status,
                deliveries::message_id,
            ))
            .load(conn)
    })
    .await;
    let repeated = repeats(
        rows.iter()
            .map(|(round, member, kind, ..)| (round, member, kind)),
    );
    assert!(
        repeated.is_empty(),
        "delivery records repeated: {repeated:?}"
    );
    assert_eq!(
        rows.len(),
        circles * MEMBERS,
        "one check-in email per member"
    );
    let unfinished: Vec<_> = rows.iter().filter(|row| row.3 != status::SENT).collect();
    assert!(unfinished.is_empty(), "not sent: {unfinished:?}");

    // Every email arrived; a copy more only where a kill came between the
    // server's 250 and our record of it.
    let mut copies = copies_received(&app);
    let mut lost = 0;
    let mut duplicates = 0;
    let mut most = 0;
    for (.., message_key) in &rows {
        let received = copies
            .remove(&app.state.mailer.message_id_for(message_key))
            .unwrap_or(0);
        lost += usize::from(received == 0);
        duplicates += received.saturating_sub(1);
        most = most.max(received);
    }
    assert!(
        copies.is_empty(),
        "emails that match no delivery: {copies:?}"
    );
    assert_eq!(lost, 0, "emails never received");
    assert!(
        most <= 1 + seen.delivery,
        "an email arrived {most} times over {} kills during delivery",
        seen.delivery
    );
    assert!(
        duplicates <= seen.delivery * RESEND_WINDOW,
        "{duplicates} copies more than sent over {} kills",
        seen.delivery
    );
    eprintln!(
        "crash run on {backend:?} (seed {seed_value}): {circles} circles, {} emails; \
         {} kills ({} while opening, {} while delivering), {} runs done before their kill; \
         0 rounds or delivery records repeated, 0 emails lost, {duplicates} sent twice \
         (at most {most} copies of one)",
        rows.len(),
        seen.opening + seen.delivery,
        seen.opening,
        seen.delivery,
        seen.missed,
    );
}

/// Round, membership, kind, status and message key of a delivery.
type DeliveryRow = (Option<i64>, Option<i64>, String, String, String);

/// Reads with a query of the app's pool.
async fn read<T, F>(app: &TestApp, query: F) -> T
where
    F: FnOnce(&mut shoulder::db::DbConnection) -> QueryResult<T> + Send + 'static,
    T: Send + 'static,
{
    app.state
        .db
        .run(move |conn| query(conn).map_err(DbError::from))
        .await
        .expect("read back")
}

/// How many copies of each Message-ID the SMTP server received.
fn copies_received(app: &TestApp) -> HashMap<String, usize> {
    let mut copies = HashMap::new();
    for email in app.smtp.messages() {
        let id = email.header("Message-ID").expect("a Message-ID");
        *copies.entry(id).or_default() += 1;
    }
    copies
}

/// The keys that occur more than once.
fn repeats<K: std::hash::Hash + Eq + std::fmt::Debug>(keys: impl Iterator<Item = K>) -> Vec<K> {
    let mut counts: HashMap<K, usize> = HashMap::new();
    for key in keys {
        *counts.entry(key).or_default() += 1;
    }
    counts
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|(key, _)| key)
        .collect()
}

on_both_backends! {
    async fn survives_being_killed_while_opening_and_delivering(app) {
        crash_again_and_again(app).await;
    }
}

// ---- check-ins and SIGKILL -------------------------------------------------------

/// Each member's round link (path and key), from their check-in email.
async fn round_links(app: &TestApp) -> Vec<(String, String)> {
    app.run_jobs().await;
    app.emails()
        .iter()
        .map(|email| {
            let path = link_path(&email.text_body(), app.public_base(), "/circles/");
            let key = path.split("key=").nth(1).expect("a key").to_string();
            (path, key)
        })
        .collect()
}

/// The reflections saved, oldest first.
async fn reflections(app: &TestApp) -> Vec<String> {
    read(app, move |conn| {
        check_ins::table
            .select(check_ins::reflection)
            .order(check_ins::id)
            .load(conn)
    })
    .await
}

async fn check_in_and_kill(app: TestApp) {
    let backend = app.state.db.backend();
    let circles = if full_run() { 3 } else { 1 };
    opened_two_hours_ago(&app, circles).await;
    let links = round_links(&app).await;
    assert_eq!(links.len(), circles * MEMBERS);
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(dir.path().join("data")).expect("data folder");
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client");
    let mut saved = Vec::new();
    for (n, (path, key)) in links.iter().enumerate() {
        let mut command = shoulder(dir.path());
        command
            .env("SHOULDER_DATABASE__URL", &app.state.config.database.url)
            .env("SHOULDER_SCHEDULER__ENABLED", "false");
        let mut server = Running::start(command, &[]);
        let reflection = format!("Check-in {n}, saved before the kill.");
        let response = client
            .post(format!("{}{path}", server.base))
            .header("sec-fetch-site", "same-origin")
            .form(&[
                ("key", key.as_str()),
                ("reflection", &reflection),
                ("commitment-1", "Keep the promise"),
            ])
            .send()
            .await
            .expect("the server answers");
        assert_eq!(response.status().as_u16(), 303, "{path}");
        // At once: no graceful shutdown, nothing flushed afterwards.
        server.child.kill().expect("SIGKILL sent");
        wait_for_exit(&mut server.child, "shoulder serve after SIGKILL");
        saved.push(reflection);
        assert_eq!(reflections(&app).await, saved, "after kill {}", n + 1);
    }
    eprintln!(
        "check-ins on {backend:?}: {} answered 303 and killed at once, {} found afterwards",
        saved.len(),
        reflections(&app).await.len()
    );
}

on_both_backends! {
    async fn a_check_in_answered_303_survives_an_immediate_kill(app) {
        check_in_and_kill(app).await;
    }
}

// ---- three instances, one paused past its lease ------------------------------------

/// Every delivery row as (id, status, claim token, sent at): what a late
/// write would change.
async fn outbox_rows(app: &TestApp) -> Vec<(i64, String, Option<String>, Option<NaiveDateTime>)> {
    read(app, |conn| {
        deliveries::table
            .order(deliveries::id)
            .select((
                deliveries::id,
                deliveries::status,
                deliveries::claim_token,
                deliveries::sent_at,
            ))
            .load(conn)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_paused_past_its_lease_has_its_late_writes_refused() {
    let Some(app) = TestApp::start(Backend::Postgres).await else {
        return;
    };
    let circles = 60;
    seed_weekly(&app, circles).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let lease = 6;
    let target = TickTarget::of(&app, dir.path())
        .with("SHOULDER_MAIL__LEASE_SECS", lease)
        .with("SHOULDER_MAIL__SEND_TIMEOUT_SECS", 3)
        .with("SHOULDER_MAIL__SMTP_POOL_SIZE", SMTP_POOL);
    let at = utc("2027-03-01T09:00:00Z");
    app.clock.set(at);
    let opened =
        shoulder::jobs::run_with(&app.state, shoulder::jobs::PassOptions { deliver: false })
            .await
            .expect("rounds opened");
    assert_eq!(opened.rounds.opened.len(), circles);
    let total = circles * MEMBERS;
    app.smtp.set_mode(SmtpMode::Stall);

    // Instance one claims and starts sending; the server stalls its sends.
    let (mut first, _, first_err) = spawn_tick(&target, at, "first");
    let started = std::time::Instant::now();
    while app.smtp.stalled() < SMTP_POOL {
        assert!(
            first.try_wait().expect("waitable").is_none(),
            "the first instance stopped early"
        );
        tokio::time::sleep(StdDuration::from_millis(5)).await;
    }
    signal(&first, "-STOP");
    // The server now answers 250 to the stalled sends; the paused instance
    // will read that only when it runs again.
    app.smtp.set_mode(SmtpMode::Accept);

    // Instances two and three, past the first one's lease, share the rest.
    let later = at + Duration::seconds(lease + 1);
    let (mut second, ..) = spawn_tick(&target, later, "second");
    let (mut third, ..) = spawn_tick(&target, later, "third");
    assert!(wait_for_exit(&mut second, "the second instance").success());
    assert!(wait_for_exit(&mut third, "the third instance").success());
    let settled = outbox_rows(&app).await;
    assert!(
        settled.iter().all(|row| row.1 == status::SENT),
        "the two running instances sent everything"
    );

    // The first instance wakes up past its lease and its time to start
    // sends, with 250s waiting for it.
    while started.elapsed() < StdDuration::from_secs(4) {
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
    signal(&first, "-CONT");
    let status = wait_for_exit(&mut first, "the paused instance");
    let log = std::fs::read_to_string(first_err).expect("its log");
    assert!(status.success(), "{log}");
    assert_eq!(
        outbox_rows(&app).await,
        settled,
        "a late write got through:\n{log}"
    );
    let refused = log.matches("delivery lease lost").count();
    assert!(
        refused >= 1,
        "the late outcomes were written and refused:\n{log}"
    );

    // Each email arrived; the only copies more are of those the paused
    // instance had sent or was sending and had not recorded, one each: the
    // stalled ones, and any sent just before the pause and not yet written.
    let copies = copies_received(&app);
    assert_eq!(copies.len(), total, "every email arrived");
    let twice = copies.values().filter(|n| **n == 2).count();
    assert!(copies.values().all(|n| *n <= 2), "{copies:?}");
    assert!(
        (SMTP_POOL..=RESEND_WINDOW).contains(&twice),
        "{twice} sent twice"
    );
    eprintln!(
        "three instances: {total} emails, one paused {:.1} s past a {lease} s lease; \
         {refused} late outcomes refused, {twice} emails sent twice (its sends not recorded)",
        started.elapsed().as_secs_f64()
    );
}

// ---- the database goes away and comes back ---------------------------------------

/// Opens or closes the test database to new connections, and ends the
/// ones it has, as a database that stops and restarts would.
fn database_reachable(database_url: &str, reachable: bool) {
    use diesel::Connection;
    let name = database_url.rsplit('/').next().expect("a database name");
    let mut admin = diesel::pg::PgConnection::establish(&crate::support::postgres::server_url())
        .expect("the PostgreSQL server");
    diesel::sql_query(format!(
        "ALTER DATABASE {name} ALLOW_CONNECTIONS {reachable}"
    ))
    .execute(&mut admin)
    .expect("altered");
    if !reachable {
        diesel::sql_query(format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = '{name}' AND pid <> pg_backend_pid()"
        ))
        .execute(&mut admin)
        .expect("connections ended");
    }
}

/// The status a GET of `url` answers, or 0 when nothing answers.
async fn status_of(client: &reqwest::Client, url: &str) -> u16 {
    client
        .get(url)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_rides_out_a_database_outage_during_delivery() {
    let Some(app) = TestApp::start(Backend::Postgres).await else {
        return;
    };
    let circles = 50;
    opened_two_hours_ago(&app, circles).await;
    let total = circles * MEMBERS;
    let database_url = app.state.config.database.url.clone();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut command = shoulder(dir.path());
    command
        .env("SHOULDER_DATABASE__URL", &database_url)
        .env("SHOULDER_MAIL__TRANSPORT", "smtp")
        .env("SHOULDER_MAIL__SMTP_URL", app.smtp.url())
        .env("SHOULDER_MAIL__LEASE_SECS", "3")
        .env("SHOULDER_MAIL__SEND_TIMEOUT_SECS", "2")
        .env("SHOULDER_MAIL__SMTP_POOL_SIZE", SMTP_POOL.to_string())
        .env("SHOULDER_SCHEDULER__INTERVAL_SECS", "1");
    let mut server = Running::start(command, &[]);
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client");
    let readyz = format!("{}/readyz", server.base);
    assert_eq!(status_of(&client, &readyz).await, 200);
    // A page that reads the database outside any transaction.
    let page = format!("{}/circles/1/rounds/1?key={}", server.base, "0".repeat(32));
    let usual = status_of(&client, &page).await;
    assert!(usual < 500, "{usual}");

    // Cut the database once delivery is under way.
    while progress(&app).await.sent < total / 10 {
        tokio::time::sleep(StdDuration::from_millis(2)).await;
    }
    let url = database_url.clone();
    tokio::task::spawn_blocking(move || database_reachable(&url, false))
        .await
        .expect("cut");
    let down_at = std::time::Instant::now();
    let mut answers = Vec::new();
    loop {
        let status = status_of(&client, &readyz).await;
        answers.push(status);
        if status == 503 {
            break;
        }
        assert!(
            down_at.elapsed() < StdDuration::from_secs(15),
            "/readyz never said 503: {answers:?}"
        );
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
    let health = status_of(&client, &format!("{}/healthz", server.base)).await;
    assert_eq!(health, 200, "the process still answers");
    assert_eq!(
        status_of(&client, &page).await,
        503,
        "a page while the database is away"
    );
    // Down for a few scheduler passes.
    while down_at.elapsed() < StdDuration::from_secs(3) {
        assert_eq!(
            status_of(&client, &readyz).await,
            503,
            "ready while the database is away"
        );
        tokio::time::sleep(StdDuration::from_millis(200)).await;
    }

    let url = database_url.clone();
    tokio::task::spawn_blocking(move || database_reachable(&url, true))
        .await
        .expect("restored");
    let back_at = std::time::Instant::now();
    while status_of(&client, &readyz).await != 200 {
        assert!(
            back_at.elapsed() < StdDuration::from_secs(30),
            "/readyz did not recover"
        );
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
    let recovered = back_at.elapsed();
    // More requests than the pool has connections: none is handed a
    // connection the database ended.
    for n in 0..20 {
        assert_eq!(
            status_of(&client, &page).await,
            usual,
            "request {n} after the outage"
        );
    }
    loop {
        let now = progress(&app).await;
        if now.sent == total {
            break;
        }
        assert!(
            back_at.elapsed() < StdDuration::from_secs(60),
            "delivery did not resume: {now:?}"
        );
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    server.child.kill().expect("stopped");
    wait_for_exit(&mut server.child, "shoulder serve");

    let copies = copies_received(&app);
    assert_eq!(copies.len(), total, "every email arrived, none lost");
    let twice: usize = copies.values().map(|n| n - 1).sum();
    assert!(twice <= RESEND_WINDOW, "{twice} sent twice");
    eprintln!(
        "database outage: {total} emails, {answers:?} from /readyz as it went, ready again {:.1} s \
         after it came back; 0 lost, {twice} sent twice",
        recovered.as_secs_f64()
    );
}
