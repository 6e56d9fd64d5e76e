//! Keeping the promises when things go wrong: two `shoulder tick` processes
//! racing on one SQLite file, and an SMTP server that refuses for a while,
//! refuses for good, or stalls. The clock is fixed; time moves only when a
//! test moves it.

use std::path::Path;
use std::process::ExitStatus;
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use diesel::prelude::*;
use shoulder::circles::settings::{Settings, SettingsForm};
use shoulder::circles::store;
use shoulder::db::DbError;
use shoulder::db::schema::{deliveries, rounds, suppressed_addresses};
use shoulder::mail::outbox::{Delivery, status};

use crate::support::process::{TickTarget, spawn_tick};
use crate::support::{Backend, ReceivedEmail, SmtpMode, TestApp, utc};

// ---- helpers ----------------------------------------------------------------

async fn sqlite_app() -> TestApp {
    TestApp::start(Backend::Sqlite)
        .await
        .expect("SQLite is always available")
}

/// Starts a circle with `cadence` (the command line's form) in `zone`, its
/// facilitator and members given as (email, name), at the app clock's instant.
async fn circle(app: &TestApp, cadence: &str, zone: &str, people: &[(&str, &str)]) -> i64 {
    let mut form = SettingsForm::new(zone);
    form.name = "Night shift accomplices".into();
    form.purpose = "Turning what we learn into what we do.".into();
    form.agreements = "We listen first.".into();
    form.round_hours = "24".into();
    form.set_cadence_text(cadence);
    let now = app.clock.now();
    let settings = Settings::parse(&form, now.date_naive()).expect("valid settings");
    let people: Vec<(String, String)> = people
        .iter()
        .map(|(email, name)| (email.to_string(), name.to_string()))
        .collect();
    app.state
        .db
        .run(move |conn| {
            let at = now.naive_utc();
            let (email, name) = &people[0];
            let facilitator = store::find_or_create_person(conn, email, name, at)?;
            let id = store::create(conn, facilitator, &settings, now)?;
            for (email, name) in &people[1..] {
                let person = store::find_or_create_person(conn, email, name, at)?;
                store::add_member(conn, id, person, store::ROLE_MEMBER, at)?;
            }
            Ok::<_, DbError>(id)
        })
        .await
        .expect("circle created")
}

/// Adds a new person to a circle as a member, at the app clock's instant.
async fn join(app: &TestApp, circle_id: i64, email: &'static str, name: &'static str) {
    let at = app.clock.now().naive_utc();
    app.state
        .db
        .run(move |conn| {
            let person = store::find_or_create_person(conn, email, name, at)?;
            store::add_member(conn, circle_id, person, store::ROLE_MEMBER, at)
        })
        .await
        .expect("member added");
}

/// Every outbox row, oldest first.
async fn all_deliveries(app: &TestApp) -> Vec<Delivery> {
    app.state
        .db
        .run(|conn| {
            Ok::<_, DbError>(
                deliveries::table
                    .order(deliveries::id.asc())
                    .select(Delivery::as_select())
                    .load(conn)?,
            )
        })
        .await
        .expect("deliveries read")
}

/// The check-in rows of round `number` of a circle, oldest first.
async fn check_ins(app: &TestApp, circle_id: i64, number: i32) -> Vec<Delivery> {
    app.state
        .db
        .run(move |conn| {
            Ok::<_, DbError>(
                deliveries::table
                    .inner_join(rounds::table)
                    .filter(rounds::circle_id.eq(circle_id))
                    .filter(rounds::number.eq(number))
                    .filter(deliveries::kind.eq("check_in"))
                    .order(deliveries::id.asc())
                    .select(Delivery::as_select())
                    .load(conn)?,
            )
        })
        .await
        .expect("check-ins read")
}

/// The Message-ID header the app sends for an outbox row.
fn message_id_of(app: &TestApp, row: &Delivery) -> String {
    app.state.mailer.message_id_for(&row.message_id)
}

/// The received emails carrying `message_id`.
fn copies_of<'a>(emails: &'a [ReceivedEmail], message_id: &str) -> Vec<&'a ReceivedEmail> {
    emails
        .iter()
        .filter(|email| email.header("Message-ID").as_deref() == Some(message_id))
        .collect()
}

/// Recipients of the received emails, sorted.
fn recipients(emails: &[ReceivedEmail]) -> Vec<String> {
    let mut to: Vec<String> = emails.iter().flat_map(|email| email.to.clone()).collect();
    to.sort();
    to
}

// ---- the `shoulder tick` process ----------------------------------------------

/// How long one `shoulder tick` may take before the test gives up on it.
const TICK_DEADLINE: StdDuration = StdDuration::from_secs(60);

/// A finished `shoulder tick`.
struct TickOutput {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl TickOutput {
    /// The number printed on the stdout line starting with `prefix`
    /// ("opened 2 round(s)…", "sent 4 email(s)…").
    fn count(&self, prefix: &str) -> usize {
        self.stdout
            .lines()
            .find_map(|line| line.strip_prefix(prefix))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no {prefix:?} line in:\n{}", self.stdout))
    }
}

/// Runs two `shoulder tick --at <at>` processes at once and waits for both.
fn two_ticks_at_once(target: &TickTarget, at: DateTime<Utc>) -> [TickOutput; 2] {
    let mut running = [spawn_tick(target, at, "a"), spawn_tick(target, at, "b")];
    let mut statuses: [Option<ExitStatus>; 2] = [None, None];
    let started = Instant::now();
    while statuses.iter().any(Option::is_none) {
        for (process, status) in running.iter_mut().zip(statuses.iter_mut()) {
            if status.is_none() {
                *status = process.0.try_wait().expect("waitable");
            }
        }
        if started.elapsed() > TICK_DEADLINE {
            for (process, status) in running.iter_mut().zip(&statuses) {
                if status.is_none() {
                    let _ = process.0.kill();
                    let _ = process.0.wait();
                }
            }
            panic!("shoulder tick --at {at} did not exit within {TICK_DEADLINE:?}");
        }
        // Waiting for the processes to exit, not for time to pass.
        std::thread::sleep(StdDuration::from_millis(2));
    }
    let read = |path: &Path| std::fs::read_to_string(path).expect("process output");
    let [a, b] = running;
    let [status_a, status_b] = statuses.map(|status| status.expect("exited"));
    [(a, status_a), (b, status_b)].map(|((_, stdout, stderr), status)| TickOutput {
        status,
        stdout: read(&stdout),
        stderr: read(&stderr),
    })
}

// ---- two processes, one SQLite file -------------------------------------------

/// (cadence, zone, rounds expected between 00:00 and 19:30 UTC on 1 March
/// 2027, ticking every 30 minutes). Hourly slots opened late (at :15 or :45)
/// open at the next tick, within the grace hour.
const CIRCLES: [(&str, &str, usize); 10] = [
    ("0 * * * *", "UTC", 20),             // 00:00 … 19:00
    ("15 * * * *", "UTC", 20),            // 00:15 … 19:15, opened at :30
    ("45 * * * *", "UTC", 19),            // 00:45 … 18:45, opened on the hour
    ("0 * * * *", "Asia/Kolkata", 20),    // :30 UTC, 00:30 … 19:30
    ("30 * * * *", "UTC", 20),            // 00:30 … 19:30
    ("0 3 * * *", "UTC", 1),              // 03:00
    ("30 7 * * *", "UTC", 1),             // 07:30
    ("0 9 * * *", "Europe/Paris", 1),     // 08:00 UTC
    ("15 12 * * *", "UTC", 1),            // 12:15, opened at 12:30
    ("0 9 * * *", "America/New_York", 1), // 14:00 UTC
];

/// Ticks from 00:00 UTC, 30 minutes apart.
const TICKS: i32 = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tick_processes_at_once_on_one_sqlite_file_open_each_round_once() {
    let started = Instant::now();
    let app = sqlite_app().await;
    // Created just before the first tick, so 00:00 is every hourly circle's
    // first slot.
    app.clock.set(utc("2027-02-28T23:50:00Z"));
    let mut circles = Vec::new();
    for (i, (cadence, zone, expected)) in CIRCLES.iter().enumerate() {
        let facilitator = format!("facilitator{i}@example.org");
        let member = format!("member{i}@example.org");
        let people = [
            (facilitator.as_str(), "Facilitator"),
            (member.as_str(), "Member"),
        ];
        let id = circle(&app, cadence, zone, &people).await;
        circles.push((id, *cadence, *zone, *expected));
    }

    // Only the two processes run passes; this app runs none.
    let dir = tempfile::tempdir().expect("temp dir");
    let target = TickTarget::of(&app, dir.path());
    let first = utc("2027-03-01T00:00:00Z");
    let (opened, sent) = tokio::task::spawn_blocking(move || {
        let (mut opened, mut sent) = ([0; 2], [0; 2]);
        for tick in 0..TICKS {
            let at = first + Duration::minutes(30 * i64::from(tick));
            for (process, output) in two_ticks_at_once(&target, at).iter().enumerate() {
                assert!(
                    output.status.success(),
                    "tick at {at} exited with {}:\n{}\n{}",
                    output.status,
                    output.stdout,
                    output.stderr
                );
                assert!(
                    output.stdout.contains(", 0 to retry, 0 failed"),
                    "tick at {at}:\n{}\n{}",
                    output.stdout,
                    output.stderr
                );
                opened[process] += output.count("opened ");
                sent[process] += output.count("sent ");
            }
        }
        (opened, sent)
    })
    .await
    .expect("the ticks ran");

    // The database: one round per (circle, slot), one delivery per (round,
    // member, kind), every one sent.
    let round_keys: Vec<(i64, String)> = app
        .state
        .db
        .run(|conn| {
            Ok::<_, DbError>(
                rounds::table
                    .select((rounds::circle_id, rounds::slot))
                    .load(conn)?,
            )
        })
        .await
        .expect("rounds read");
    let mut distinct = round_keys.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), round_keys.len(), "one round per slot");
    for (id, cadence, zone, expected) in &circles {
        let count = round_keys.iter().filter(|(c, _)| c == id).count();
        assert_eq!(count, *expected, "rounds of {cadence:?} in {zone}");
    }
    assert!(
        opened.iter().all(|&n| n > 0),
        "both processes opened rounds: {opened:?}"
    );
    assert_eq!(
        opened[0] + opened[1],
        round_keys.len(),
        "each round opened by one process"
    );

    let rows = all_deliveries(&app).await;
    let mut keys: Vec<(Option<i64>, Option<i64>, &str)> = rows
        .iter()
        .map(|row| (row.round_id, row.membership_id, row.kind.as_str()))
        .collect();
    assert!(
        keys.iter()
            .all(|(round, member, _)| round.is_some() && member.is_some())
    );
    keys.sort();
    keys.dedup();
    assert_eq!(
        keys.len(),
        rows.len(),
        "one delivery per round, member and kind"
    );
    let unsent: Vec<&Delivery> = rows.iter().filter(|r| r.status != status::SENT).collect();
    assert!(unsent.is_empty(), "not sent: {unsent:#?}");
    assert_eq!(
        sent[0] + sent[1],
        rows.len(),
        "each delivery recorded sent by one process"
    );
    for kind in ["check_in", "reminder", "digest"] {
        assert!(rows.iter().any(|r| r.kind == kind), "some {kind} emails");
    }

    // The SMTP server: each email once, and nothing else.
    let emails = app.smtp.wait_for_messages(rows.len());
    assert_eq!(emails.len(), rows.len(), "as many emails as deliveries");
    for row in &rows {
        let id = message_id_of(&app, row);
        assert_eq!(copies_of(&emails, &id).len(), 1, "{id} received once");
    }
    eprintln!(
        "two tick processes: {TICKS} instants, {} rounds (opened {opened:?}), \
         {} emails (sent {sent:?}), {:?}",
        round_keys.len(),
        rows.len(),
        started.elapsed()
    );
}

// ---- the SMTP server refusing -------------------------------------------------

const ADA: (&str, &str) = ("ada@example.org", "Ada");
const BEA: (&str, &str) = ("bea@example.org", "Bea");
const CY: (&str, &str) = ("cy@example.org", "Cy");

/// Monday 1 March 2027, 09:00 UTC: the first slot of a `weekly mon 09:00` circle.
const FIRST_MONDAY: &str = "2027-03-01T09:00:00Z";

/// A weekly circle started the hour before its first round.
async fn weekly_circle(app: &TestApp, people: &[(&str, &str)]) -> i64 {
    app.clock.set(utc("2027-03-01T08:00:00Z"));
    circle(app, "weekly mon 09:00", "UTC", people).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_refused_for_a_while_is_all_delivered_when_the_server_returns() {
    let app = sqlite_app().await;
    let id = weekly_circle(&app, &[ADA, BEA, CY]).await;

    app.smtp.set_mode(SmtpMode::TempFail);
    app.clock.set(utc(FIRST_MONDAY));
    let report = app.run_jobs().await;
    assert_eq!(report.rounds.opened, [(id, 1)]);
    assert_eq!(report.delivery.retried, 3, "{report:?}");
    assert_eq!(report.delivery.sent, 0);
    assert!(app.emails().is_empty(), "nothing received");
    let now = app.clock.now().naive_utc();
    let refused = check_ins(&app, id, 1).await;
    assert_eq!(refused.len(), 3);
    for row in &refused {
        assert_eq!(row.status, status::PENDING, "{row:?}");
        assert!(row.next_attempt_at > now, "{row:?}");
        assert!(
            row.last_error.as_deref().is_some_and(|e| e.contains("451")),
            "{row:?}"
        );
    }

    // Still refusing at the first retry: the rows wait longer.
    let first_retry = refused
        .iter()
        .map(|r| r.next_attempt_at)
        .max()
        .expect("rows");
    app.clock
        .set((first_retry + Duration::seconds(1)).and_utc());
    assert_eq!(app.run_jobs().await.delivery.retried, 3);
    assert!(app.emails().is_empty());

    // The server is back: passes every two minutes until nothing is pending.
    app.smtp.set_mode(SmtpMode::Accept);
    let mut passes = 0;
    loop {
        app.clock.advance(Duration::minutes(2));
        app.run_jobs().await;
        passes += 1;
        let waiting = check_ins(&app, id, 1)
            .await
            .into_iter()
            .filter(|r| r.status != status::SENT)
            .count();
        if waiting == 0 {
            break;
        }
        assert!(
            passes < 20,
            "{waiting} still not sent after {passes} passes"
        );
    }

    let emails = app.emails();
    assert_eq!(
        recipients(&emails),
        ["ada@example.org", "bea@example.org", "cy@example.org"]
    );
    for row in check_ins(&app, id, 1).await {
        assert_eq!(row.attempts, 3, "{row:?}");
        assert_eq!(row.last_error, None);
        let copies = copies_of(&emails, &message_id_of(&app, &row));
        assert_eq!(copies.len(), 1, "{} received once", row.to_address);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_refused_for_good_is_suppressed_and_skipped_next_round() {
    let app = sqlite_app().await;
    let id = weekly_circle(&app, &[ADA, BEA]).await;

    // Round 1: the server refuses every address for good.
    app.smtp.set_mode(SmtpMode::PermFail);
    app.clock.set(utc(FIRST_MONDAY));
    let report = app.run_jobs().await;
    assert_eq!(report.rounds.opened, [(id, 1)]);
    assert_eq!(report.delivery.failed, 2, "{report:?}");
    for row in check_ins(&app, id, 1).await {
        assert_eq!(row.status, status::FAILED, "{row:?}");
        assert!(
            row.last_error.as_deref().is_some_and(|e| e.contains("550")),
            "{row:?}"
        );
    }
    let mut suppressed: Vec<String> = app
        .state
        .db
        .run(|conn| {
            Ok::<_, DbError>(
                suppressed_addresses::table
                    .select(suppressed_addresses::email)
                    .load(conn)?,
            )
        })
        .await
        .expect("suppression list read");
    suppressed.sort();
    assert_eq!(suppressed, [ADA.0, BEA.0]);

    // The server accepts again; Cy joins; the week goes by (reminder,
    // close and digest of round 1), and round 2 opens.
    app.smtp.set_mode(SmtpMode::Accept);
    app.clock.set(utc("2027-03-01T10:00:00Z"));
    join(&app, id, CY.0, CY.1).await;
    let mut at = utc("2027-03-01T12:00:00Z");
    while at <= utc("2027-03-08T09:00:00Z") {
        app.clock.set(at);
        app.run_jobs().await;
        at += Duration::hours(3);
    }

    let round_two = check_ins(&app, id, 2).await;
    let by_address = |address: &str| {
        round_two
            .iter()
            .find(|r| r.to_address == address)
            .unwrap_or_else(|| panic!("a round 2 check-in row for {address}: {round_two:#?}"))
    };
    assert_eq!(round_two.len(), 3, "one row per member: {round_two:#?}");
    let cy = by_address(CY.0);
    assert_eq!(cy.status, status::SENT, "{cy:?}");
    for address in [ADA.0, BEA.0] {
        let row = by_address(address);
        assert_eq!(row.status, status::SUPPRESSED, "{row:?}");
        assert_eq!(row.attempts, 0, "never tried: {row:?}");
    }

    // Nothing ever reached the suppressed addresses; Cy's check-in arrived
    // exactly once.
    let emails = app.emails();
    assert!(
        recipients(&emails).iter().all(|to| to == CY.0),
        "{:?}",
        recipients(&emails)
    );
    assert_eq!(copies_of(&emails, &message_id_of(&app, cy)).len(), 1);
    for row in all_deliveries(&app).await {
        if row.to_address != CY.0 {
            assert_ne!(row.status, status::SENT, "{row:?}");
            assert_ne!(row.status, status::PENDING, "{row:?}");
        }
    }
}

// ---- the SMTP server stalling -------------------------------------------------

/// (status, claim token, lease end) of one outbox row.
async fn claim_state(app: &TestApp, id: i64) -> (String, Option<String>, Option<NaiveDateTime>) {
    app.state
        .db
        .run(move |conn| {
            Ok::<_, DbError>(
                deliveries::table
                    .find(id)
                    .select((
                        deliveries::status,
                        deliveries::claim_token,
                        deliveries::lease_until,
                    ))
                    .first(conn)?,
            )
        })
        .await
        .expect("row read")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_server_hits_the_timeout_and_the_email_goes_out_later() {
    let app = TestApp::builder(Backend::Sqlite)
        .config(|config| {
            config.mail.send_timeout_secs = 1;
            config.mail.lease_secs = 30;
        })
        .start()
        .await
        .expect("SQLite is always available");
    let id = weekly_circle(&app, &[ADA]).await;

    // The server takes the message and never answers: our one-second limit
    // ends the send, and the row goes back to waiting.
    app.smtp.set_mode(SmtpMode::Stall);
    app.clock.set(utc(FIRST_MONDAY));
    let waited = Instant::now();
    let report = app.run_jobs().await;
    let waited = waited.elapsed();
    assert_eq!(report.rounds.opened, [(id, 1)]);
    assert_eq!(report.delivery.retried, 1, "{report:?}");
    assert!(
        waited < StdDuration::from_secs(10),
        "the pass ended by our timeout, took {waited:?}"
    );
    let [row] = <[Delivery; 1]>::try_from(check_ins(&app, id, 1).await).expect("one check-in");
    let now = app.clock.now().naive_utc();
    assert_eq!(row.status, status::PENDING, "{row:?}");
    assert!(row.next_attempt_at > now, "{row:?}");
    assert!(
        row.last_error
            .as_deref()
            .is_some_and(|e| e.contains("no answer within")),
        "{row:?}"
    );
    assert_eq!(
        claim_state(&app, row.id).await,
        (status::PENDING.to_string(), None, None),
        "the lease is released, not left to run out"
    );
    assert!(app.emails().is_empty());

    // Not due yet: the next pass leaves it alone.
    assert_eq!(app.run_jobs().await.delivery.retried, 0);

    // The server wakes up: it accepts the message it was holding (it had it
    // all along; we never saw its 250), and the retry sends it again.
    app.smtp.set_mode(SmtpMode::Accept);
    app.clock
        .set((row.next_attempt_at + Duration::seconds(1)).and_utc());
    let report = app.run_jobs().await;
    assert_eq!(report.delivery.sent, 1, "{report:?}");
    let row = check_ins(&app, id, 1).await.remove(0);
    assert_eq!(row.status, status::SENT, "{row:?}");
    assert_eq!(row.attempts, 2);
    assert_eq!(
        claim_state(&app, row.id).await,
        (status::SENT.to_string(), None, None)
    );

    // Two copies: the one the server held and let go when it woke, and the
    // retry. That is the one duplicate we allow, and it says what it is:
    // the same Message-ID.
    let emails = app.smtp.wait_for_messages(2);
    assert_eq!(emails.len(), 2);
    let id_header = message_id_of(&app, &row);
    assert_eq!(copies_of(&emails, &id_header).len(), 2);
    assert!(emails.iter().all(|email| email.to == [ADA.0]));
}
