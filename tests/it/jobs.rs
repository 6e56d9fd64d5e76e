//! Background jobs read time from the app's clock, not the system's.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use shoulder::db::schema::{people, rate_limits, sessions, sign_in_tokens};

use crate::on_both_backends;

fn seed(conn: &mut shoulder::db::DbConnection, now: NaiveDateTime) {
    diesel::insert_into(people::table)
        .values((
            people::email.eq("ada@example.org"),
            people::display_name.eq("Ada"),
            people::created_at.eq(now),
        ))
        .execute(conn)
        .expect("person");
    let person: i64 = people::table
        .select(people::id)
        .filter(people::email.eq("ada@example.org"))
        .first(conn)
        .expect("person id");
    for (hash, expires) in [
        ("ended", now - Duration::minutes(1)),
        ("live", now + Duration::days(10)),
    ] {
        diesel::insert_into(sessions::table)
            .values((
                sessions::id_hash.eq(hash),
                sessions::person_id.eq(person),
                sessions::created_at.eq(now - Duration::days(20)),
                sessions::expires_at.eq(expires),
                sessions::last_seen_at.eq(now - Duration::days(1)),
            ))
            .execute(conn)
            .expect("session");
    }
    for (hash, expires) in [
        ("long-gone", now - Duration::days(2)),
        ("just-expired", now - Duration::minutes(5)),
        ("fresh", now + Duration::minutes(10)),
    ] {
        diesel::insert_into(sign_in_tokens::table)
            .values((
                sign_in_tokens::email.eq("ada@example.org"),
                sign_in_tokens::person_id.eq(Some(person)),
                sign_in_tokens::token_hash.eq(hash),
                sign_in_tokens::purpose.eq("sign_in"),
                sign_in_tokens::created_at.eq(expires - Duration::minutes(15)),
                sign_in_tokens::expires_at.eq(expires),
            ))
            .execute(conn)
            .expect("sign-in token");
    }
    for (bucket, start) in [
        ("old", now - Duration::days(3)),
        ("current", now - Duration::hours(1)),
    ] {
        diesel::insert_into(rate_limits::table)
            .values((
                rate_limits::bucket.eq(bucket),
                rate_limits::window_start.eq(start),
                rate_limits::count.eq(3),
            ))
            .execute(conn)
            .expect("rate limit");
    }
    // Messages that came in: one a month and a day ago, one yesterday.
    for (id, age) in [("old@mail.example", 31), ("recent@mail.example", 1)] {
        diesel::insert_into(shoulder::db::schema::inbound_messages::table)
            .values((
                shoulder::db::schema::inbound_messages::message_id.eq(id),
                shoulder::db::schema::inbound_messages::outcome.eq("recorded"),
                shoulder::db::schema::inbound_messages::received_at.eq(now - Duration::days(age)),
            ))
            .execute(conn)
            .expect("an inbound message");
    }
}

on_both_backends! {
    async fn cleanup_forgets_what_expired_by_the_app_clock(app) {
        // The fixed clock says 2027; by the system's clock nothing has expired.
        let now = app.clock.now().naive_utc();
        app.state.db.run(move |conn| {
            seed(conn, now);
            Ok::<_, shoulder::db::DbError>(())
        }).await.expect("seeded");

        let report = app.run_jobs().await;
        assert_eq!(report.cleanup.sessions, 1);
        assert_eq!(report.cleanup.sign_in_tokens, 1, "a just-expired link is kept a day");
        assert_eq!(report.cleanup.rate_limits, 1);
        assert_eq!(report.cleanup.inbound_messages, 1, "a month-old message is forgotten");

        let (left_sessions, left_tokens) = app.state.db.run(|conn| {
            let s: Vec<String> = sessions::table.select(sessions::id_hash).load(conn)?;
            let mut t: Vec<String> = sign_in_tokens::table.select(sign_in_tokens::token_hash).load(conn)?;
            t.sort();
            Ok::<_, shoulder::db::DbError>((s, t))
        }).await.expect("read back");
        assert_eq!(left_sessions, ["live"]);
        assert_eq!(left_tokens, ["fresh", "just-expired"]);

        assert_eq!(app.run_jobs().await, Default::default(), "a second pass finds nothing");

        app.clock.advance(Duration::days(2));
        assert_eq!(app.run_jobs().await.cleanup.sign_in_tokens, 2);
    }
}

/// Circles sharing one slot, more than a batch of them (`batch_size` is 5):
/// one pass opens them all, and none is skipped as missed for having
/// waited behind the others; one pass sends all their reminders, and one
/// closes them all. Before, a pass looked at one batch of each and left the
/// rest to later passes, which could find the openings past the catch-up
/// grace.
async fn one_pass_opens_every_circle_due_at_a_slot(backend: crate::support::Backend) {
    use crate::support::{TestApp, open_week, weekly_circle};
    const CIRCLES: usize = 23;
    let Some(app) = TestApp::builder(backend)
        .config(|config| config.scheduler.batch_size = 5)
        .start()
        .await
    else {
        return;
    };
    for n in 0..CIRCLES {
        let (ada, bea) = (format!("ada{n}@example.org"), format!("bea{n}@example.org"));
        weekly_circle(
            &app,
            &format!("Circle {n}"),
            &[(&ada, "Ada"), (&bea, "Bea")],
        )
        .await;
    }
    let report = open_week(&app, 1).await;
    assert_eq!(report.rounds.opened.len(), CIRCLES, "{:?}", report.rounds);
    assert_eq!(report.rounds.skipped, 0);
    let again = open_week(&app, 1).await;
    assert!(again.rounds.opened.is_empty(), "each opens once");
    // Rounds of 48 hours remind 24 hours before they close.
    app.clock.set(crate::support::utc("2027-03-02T09:00:00Z"));
    let reminding = app.run_jobs().await;
    assert_eq!(reminding.rounds.reminded, CIRCLES, "{:?}", reminding.rounds);
    app.clock.set(crate::support::utc("2027-03-03T09:00:00Z"));
    let closing = app.run_jobs().await;
    assert_eq!(closing.rounds.closed, CIRCLES, "{:?}", closing.rounds);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_pass_opens_every_circle_due_at_a_slot_on_sqlite() {
    one_pass_opens_every_circle_due_at_a_slot(crate::support::Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_pass_opens_every_circle_due_at_a_slot_on_postgres() {
    one_pass_opens_every_circle_due_at_a_slot(crate::support::Backend::Postgres).await;
}
