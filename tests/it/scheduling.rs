//! Every round opens on time however many circles share its slot, and the
//! catch-up rule skips only what was missed while no server was running.

use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Duration, Utc};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use shoulder::db::schema::{deliveries, rounds, skipped_rounds};
use shoulder::db::{DbConnection, DbError};

use crate::on_both_backends;
use crate::support::process::{TickTarget, spawn_tick, wait_for_exit};
use crate::support::{Backend, TestApp, open_week, utc, weekly_circle};

/// The instant the seeded circles' first round is due: a Monday.
const SLOT: &str = "2027-03-01T09:00:00Z";

/// Seeds `count` weekly circles of two, due at [`SLOT`], in a few
/// set-wise statements (one circle at a time would take longer than the
/// opening under test).
async fn seed_circles(app: &TestApp, count: usize) {
    use shoulder::circles::settings::{Settings, SettingsForm};
    let mut form = SettingsForm::new("UTC");
    form.name = "Circle".into();
    form.purpose = "Turning what we learn into what we do.".into();
    form.agreements = "We listen first.".into();
    form.set_cadence_text("weekly mon 09:00");
    form.round_hours = "48".into();
    let settings = Settings::parse(&form, utc(SLOT).date_naive()).expect("a valid weekly schedule");
    let cadence = settings.cadence.to_canonical();
    let due = utc(SLOT)
        .naive_utc()
        .format("%Y-%m-%d %H:%M:%S")
        .to_string();
    let people = count * 2;
    let statements = [
        format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {people}) \
             INSERT INTO people (email, display_name, created_at) \
             SELECT 'p' || i || '@example.org', 'Person ' || i, '{due}' FROM n"
        ),
        format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {count}) \
             INSERT INTO circles (name, purpose, agreements, cadence, time_zone, \
             round_length_minutes, size_cap, deck, status, next_round_at, created_at, updated_at) \
             SELECT 'Circle ' || i, 'Turning what we learn into what we do.', 'We listen first.', \
             '{cadence}', 'UTC', 2880, 8, 'shoulder', 'active', '{due}', '{due}', '{due}' FROM n"
        ),
        format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {people}) \
             INSERT INTO memberships (circle_id, person_id, role, status, muted, \
             unsubscribe_token_hash, joined_at) \
             SELECT (i - 1) / 2 + 1, i, CASE WHEN i % 2 = 1 THEN 'facilitator' ELSE 'member' END, \
             'active', FALSE, 'u' || i, '{due}' FROM n"
        ),
    ];
    app.state
        .db
        .run(move |conn| {
            for sql in statements {
                conn.batch_execute(&sql)?;
            }
            Ok::<_, DbError>(())
        })
        .await
        .expect("the circles are seeded");
}

async fn count(app: &TestApp, what: fn(&mut DbConnection) -> QueryResult<i64>) -> i64 {
    app.state
        .db
        .run(move |conn| what(conn).map_err(DbError::from))
        .await
        .expect("a count")
}

/// The scheduler settings `config/default.toml` ships with, which the test
/// configuration leaves alone.
fn assert_shipped_scheduler(app: &TestApp) {
    let shipped: toml::Table =
        toml::from_str(include_str!("../../config/default.toml")).expect("the shipped settings");
    let scheduler = &shipped["scheduler"];
    let ours = &app.state.config.scheduler;
    assert_eq!(
        (
            scheduler["interval_secs"].as_integer(),
            scheduler["batch_size"].as_integer(),
            scheduler["catch_up_grace_minutes"].as_integer(),
        ),
        (
            Some(i64::try_from(ours.interval_secs).expect("seconds")),
            Some(i64::from(ours.batch_size)),
            Some(i64::from(ours.catch_up_grace_minutes)),
        ),
        "the test runs with the shipped scheduler settings"
    );
}

/// 3,000 circles share a slot, six times the shipped batch: the server's
/// own scheduler opens every one of their rounds, late for none and
/// skipping none. Before, its passes opened 500 at a time, 30 seconds
/// apart, and those still waiting after the catch-up grace were skipped.
async fn three_thousand_circles_at_one_slot_all_open(backend: Backend) {
    const CIRCLES: i64 = 3_000;
    let Some(app) = TestApp::builder(backend)
        .at(utc(SLOT) - Duration::hours(1))
        .start()
        .await
    else {
        return;
    };
    assert_shipped_scheduler(&app);
    seed_circles(&app, usize::try_from(CIRCLES).expect("a count")).await;
    app.clock.set(utc(SLOT) + Duration::seconds(10));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let scheduler = tokio::spawn(shoulder::jobs::run_scheduler(app.state.clone(), stopped));
    // Not a measure of time: the benchmark reports how long it takes. The
    // app's clock runs 300 times as fast as the wall's, so that circles
    // left for a later pass would find their slot past the grace window.
    let deadline = Instant::now() + StdDuration::from_secs(300);
    let open = loop {
        let open = count(&app, |conn| rounds::table.count().get_result(conn)).await;
        if open == CIRCLES || Instant::now() > deadline {
            break open;
        }
        tokio::time::sleep(StdDuration::from_millis(200)).await;
        app.clock.advance(Duration::minutes(1));
    };
    stop.send(true).expect("the scheduler listens");
    scheduler.abort();
    assert_eq!(open, CIRCLES, "every circle's round opened");
    assert_eq!(
        count(&app, |conn| skipped_rounds::table.count().get_result(conn)).await,
        0,
        "none skipped"
    );
    assert_eq!(
        count(&app, |conn| rounds::table
            .filter(rounds::late_because.is_not_null())
            .count()
            .get_result(conn))
        .await,
        0,
        "none late"
    );
    assert_eq!(
        count(&app, |conn| deliveries::table
            .filter(deliveries::kind.eq("check_in"))
            .count()
            .get_result(conn))
        .await,
        CIRCLES * 2,
        "a check-in for every member"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_thousand_circles_at_one_slot_all_open_on_sqlite() {
    three_thousand_circles_at_one_slot_all_open(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_thousand_circles_at_one_slot_all_open_on_postgres() {
    three_thousand_circles_at_one_slot_all_open(Backend::Postgres).await;
}

/// Each of a circle's rounds: its slot, and why it opened late if it did.
async fn slots_and_lateness(app: &TestApp, circle_id: i64) -> Vec<(String, Option<String>)> {
    app.state
        .db
        .run(move |conn| {
            rounds::table
                .filter(rounds::circle_id.eq(circle_id))
                .order(rounds::number.asc())
                .select((rounds::slot, rounds::late_because))
                .load(conn)
                .map_err(DbError::from)
        })
        .await
        .expect("the circle's rounds")
}

/// A circle's runs of skipped slots: first, last, how many, and why.
async fn skips(app: &TestApp, circle_id: i64) -> Vec<(String, String, i32, String)> {
    app.state
        .db
        .run(move |conn| {
            skipped_rounds::table
                .filter(skipped_rounds::circle_id.eq(circle_id))
                .select((
                    skipped_rounds::first_slot,
                    skipped_rounds::last_slot,
                    skipped_rounds::count,
                    skipped_rounds::because,
                ))
                .load(conn)
                .map_err(DbError::from)
        })
        .await
        .expect("the circle's skipped slots")
}

/// A circle's page as `member` (address, name) sees it.
async fn circle_page(app: &TestApp, member: (&str, &str), circle_id: i64) -> String {
    let cookie = app.sign_in(member.0, member.1).await;
    app.get_as(&cookie, &format!("/circles/{circle_id}"))
        .await
        .text()
        .await
        .expect("the circle page")
}

/// Runs `shoulder tick --at <at>`, the first pass of a server started then,
/// and returns what it logged.
fn restart_at(app: &TestApp, at: DateTime<Utc>) -> String {
    let dir = tempfile::tempdir().expect("a folder");
    let target = TickTarget::of(app, dir.path()).with("SHOULDER_LOG__FILTER", "info");
    let (mut child, _, stderr) = spawn_tick(&target, at, "restart");
    let status = wait_for_exit(&mut child, "shoulder tick");
    let log = std::fs::read_to_string(stderr).expect("the tick's log");
    assert!(status.success(), "the tick failed: {log}");
    log
}

on_both_backends! {
    /// Down from just after one slot until after the next two: the older
    /// missed slot is skipped, logged and shown; the latest, within the
    /// grace window of the server's return, opens, late, and says why.
    async fn a_server_down_over_two_slots_skips_the_older_and_opens_the_latest(app) {
        let ada = ("ada@example.org", "Ada");
        let id = weekly_circle(&app, "Night shift", &[ada, ("bea@example.org", "Bea")]).await;
        assert_eq!(open_week(&app, 1).await.rounds.opened, [(id, 1)]);
        // Down from then until 20 minutes after week 3's slot.
        let log = restart_at(&app, utc("2027-03-15T09:20:00Z"));
        assert!(
            log.contains("missed rounds skipped: no scheduler was running at their time"),
            "{log}"
        );
        assert!(log.contains("2027-03-08T09:00"), "{log}");
        assert!(log.contains("round opened late: no scheduler was running at its time"), "{log}");
        assert_eq!(
            slots_and_lateness(&app, id).await,
            [
                ("2027-03-01T09:00".to_string(), None),
                ("2027-03-15T09:00".to_string(), Some("downtime".to_string())),
            ]
        );
        assert_eq!(
            skips(&app, id).await,
            [(
                "2027-03-08T09:00".to_string(),
                "2027-03-08T09:00".to_string(),
                1,
                "downtime".to_string()
            )]
        );
        let page = circle_page(&app, ada, id).await;
        assert!(
            page.contains(
                "Round 2 opened 20 minutes after its time (Monday 15 March 2027, 09:00): \
                 no server was running then, and it opened when one started."
            ),
            "{page}"
        );
        assert!(
            page.contains(
                "No round opened for Monday 8 March 2027, 09:00: no server was running then, \
                 and when one started it was too late to open it."
            ),
            "{page}"
        );
    }
}

/// On PostgreSQL a second instance holds a slot's circles for 90 minutes
/// (a slow opening, locks held), while this one's passes keep running and
/// pass them over. When they come free, their rounds open late and say
/// why; none is skipped, though each is now past the hour of grace.
/// Before, lateness counted from the slot, and all were skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rounds_that_waited_behind_another_instance_open_late_rather_than_skipped() {
    let Some(app) = TestApp::start(Backend::Postgres).await else {
        return;
    };
    let ada = ("ada@example.org", "Ada");
    let mut ids = Vec::new();
    for n in 0..3 {
        let bea = format!("bea{n}@example.org");
        ids.push(weekly_circle(&app, &format!("Circle {n}"), &[ada, (&bea, "Bea")]).await);
    }
    app.clock.set(utc("2027-03-01T08:59:00Z"));
    app.run_jobs().await;
    let mut other = diesel::PgConnection::establish(&app.state.config.database.url)
        .expect("a second connection");
    other
        .batch_execute("BEGIN; SELECT id FROM circles FOR UPDATE;")
        .expect("the circles are held");
    let mut at = utc(SLOT);
    while at < utc("2027-03-01T10:30:00Z") {
        app.clock.set(at);
        let report = app.run_jobs().await;
        assert!(
            report.rounds.opened.is_empty(),
            "held circles are passed over"
        );
        at += Duration::minutes(1);
    }
    other
        .batch_execute("ROLLBACK")
        .expect("the circles are let go");
    app.clock.set(utc("2027-03-01T10:31:00Z"));
    let report = app.run_jobs().await;
    assert_eq!(report.rounds.opened.len(), 3, "{:?}", report.rounds);
    assert_eq!(report.rounds.skipped, 0);
    for id in &ids {
        assert_eq!(
            slots_and_lateness(&app, *id).await,
            [("2027-03-01T09:00".to_string(), Some("busy".to_string()))]
        );
    }
    let page = circle_page(&app, ada, ids[0]).await;
    assert!(
        page.contains(
            "Round 1 opened 91 minutes after its time (Monday 1 March 2027, 09:00): \
             the server was still opening other circles' rounds due at the same time."
        ),
        "{page}"
    );
}

/// While rounds open on SQLite, one write transaction after another, a
/// check-in's write waits for the transaction under way, not for the whole
/// opening. Before, a writer that found the database locked slept and
/// retried, and slept through every gap between the opening's
/// transactions: it got in only after the last.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_waits_for_the_transaction_under_way_not_a_whole_opening() {
    let app = TestApp::start(Backend::Sqlite).await.expect("SQLite");
    let db = app.state.db.clone();
    db.run(|conn| {
        conn.batch_execute("CREATE TABLE turns (id INTEGER PRIMARY KEY, writer TEXT NOT NULL)")
            .map_err(DbError::from)
    })
    .await
    .expect("a table of turns");
    let write = |conn: &mut DbConnection, writer: &str, hold: StdDuration| {
        shoulder::db::write_transaction(conn, |conn| {
            diesel::sql_query("INSERT INTO turns (writer) VALUES (?)")
                .bind::<diesel::sql_types::Text, _>(writer)
                .execute(conn)?;
            std::thread::sleep(hold);
            Ok::<_, DbError>(())
        })
    };
    // A long opening: 40 transactions of 25 ms, one right after another.
    let opening = tokio::spawn({
        let db = db.clone();
        async move {
            db.run(move |conn| {
                for _ in 0..40 {
                    write(conn, "opening", StdDuration::from_millis(25))?;
                }
                Ok::<_, DbError>(())
            })
            .await
        }
    });
    loop {
        let started = count(&app, |conn| {
            diesel::sql_query("SELECT COUNT(*) AS n FROM turns")
                .get_result::<Count>(conn)
                .map(|row| row.n)
        })
        .await;
        if started > 0 {
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(5)).await;
    }
    db.run(move |conn| write(conn, "check-in", StdDuration::ZERO))
        .await
        .expect("the check-in is saved");
    opening
        .await
        .expect("the opening ran")
        .expect("the opening wrote");
    let order: Vec<String> = db
        .run(|conn| {
            diesel::sql_query("SELECT writer FROM turns ORDER BY id")
                .load::<Writer>(conn)
                .map(|rows| rows.into_iter().map(|row| row.writer).collect())
                .map_err(DbError::from)
        })
        .await
        .expect("the turns");
    let place = order
        .iter()
        .position(|writer| writer == "check-in")
        .expect("the check-in wrote");
    assert!(
        place <= 3,
        "the check-in waited for {place} of the opening's transactions"
    );
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct Writer {
    #[diesel(sql_type = diesel::sql_types::Text)]
    writer: String,
}

/// A server told to stop while its outbox holds thousands of emails stops
/// once the emails it had claimed are sent, rather than after sending the
/// whole backlog (a restart would wait minutes, past the unit's stop
/// timeout). What is left waits for the next start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_told_to_stop_leaves_a_large_backlog_for_its_next_start() {
    let app = TestApp::builder(Backend::Sqlite)
        .at(utc(SLOT) - Duration::hours(1))
        .start()
        .await
        .expect("SQLite");
    seed_circles(&app, 3_000).await;
    app.clock.set(utc(SLOT));
    let opened =
        shoulder::jobs::run_with(&app.state, shoulder::jobs::PassOptions { deliver: false })
            .await
            .expect("the rounds open");
    assert_eq!(opened.rounds.opened.len(), 3_000);
    let pending = |conn: &mut DbConnection| {
        deliveries::table
            .filter(deliveries::status.eq("pending"))
            .count()
            .get_result(conn)
    };
    assert_eq!(count(&app, pending).await, 6_000);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let scheduler = tokio::spawn(shoulder::jobs::run_scheduler(app.state.clone(), stopped));
    let deadline = Instant::now() + StdDuration::from_secs(120);
    while count(&app, pending).await == 6_000 && Instant::now() < deadline {
        tokio::time::sleep(StdDuration::from_millis(5)).await;
    }
    stop.send(true).expect("the scheduler listens");
    scheduler.await.expect("the scheduler stops");
    let left = count(&app, pending).await;
    assert!(
        left > 3_000,
        "the scheduler stopped with {left} of 6,000 emails still to send"
    );
}
