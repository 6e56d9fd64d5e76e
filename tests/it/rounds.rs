//! Rounds on schedule: opened once per slot across DST changes, reminded,
//! closed with a digest, and never doubled by a second scheduler.

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use diesel::prelude::*;
use shoulder::circles::settings::{Settings, SettingsForm};
use shoulder::circles::store;
use shoulder::db::DbError;
use shoulder::db::schema::{deliveries, rounds};

use crate::on_both_backends;
use crate::support::{Backend, TestApp, utc};

/// Starts a circle with `cadence` (the command line's form) in `zone`, its
/// facilitator and members given as (email, name).
async fn circle(
    app: &TestApp,
    cadence: &str,
    zone: &str,
    people: &[(&'static str, &'static str)],
) -> i64 {
    let mut form = SettingsForm::new(zone);
    form.name = "Night shift accomplices".into();
    form.purpose = "Turning what we learn into what we do.".into();
    form.agreements = "We listen first.".into();
    form.round_hours = "24".into();
    form.set_cadence_text(cadence);
    let now = app.clock.now();
    let settings = Settings::parse(&form, now.date_naive()).expect("valid settings");
    let people = people.to_vec();
    app.state
        .db
        .run(move |conn| {
            let at = now.naive_utc();
            let (email, name) = people[0];
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

/// Runs a pass at each instant from `from` to `to` (inclusive) every `step`.
async fn drive(app: &TestApp, from: DateTime<Utc>, to: DateTime<Utc>, step: Duration) {
    let mut at = from;
    while at <= to {
        app.clock.set(at);
        app.run_jobs().await;
        at += step;
    }
}

/// (slot, opened at) of each round of a circle, in order.
async fn rounds_of(app: &TestApp, circle_id: i64) -> Vec<(String, NaiveDateTime)> {
    app.state
        .db
        .run(move |conn| {
            Ok::<_, DbError>(
                rounds::table
                    .filter(rounds::circle_id.eq(circle_id))
                    .order(rounds::number.asc())
                    .select((rounds::slot, rounds::opened_at))
                    .load(conn)?,
            )
        })
        .await
        .expect("rounds read")
}

fn slots(rounds: &[(String, NaiveDateTime)]) -> Vec<&str> {
    rounds.iter().map(|(slot, _)| slot.as_str()).collect()
}

const ADA: (&str, &str) = ("ada@example.org", "Ada");
const BEA: (&str, &str) = ("bea@example.org", "Bea");

on_both_backends! {
    async fn spring_forward_opens_the_gap_slot_once_at_the_first_valid_instant(app) {
        app.clock.set(utc("2027-03-13T12:00:00Z"));
        let id = circle(&app, "weekly mon,tue,wed,thu,fri,sat,sun 02:30", "America/New_York", &[ADA]).await;
        drive(&app, utc("2027-03-13T12:00:00Z"), utc("2027-03-15T12:00:00Z"), Duration::minutes(15)).await;
        let rounds = rounds_of(&app, id).await;
        assert_eq!(slots(&rounds), ["2027-03-14T02:30", "2027-03-15T02:30"]);
        // 02:30 does not exist on the 14th; 03:00 EDT is 07:00 UTC.
        assert_eq!(rounds[0].1, utc("2027-03-14T07:00:00Z").naive_utc());
        assert_eq!(rounds[1].1, utc("2027-03-15T06:30:00Z").naive_utc());
    }
}

on_both_backends! {
    async fn fall_back_opens_the_fold_slot_exactly_once(app) {
        app.clock.set(utc("2027-11-06T12:00:00Z"));
        let id = circle(&app, "weekly mon,tue,wed,thu,fri,sat,sun 01:30", "America/New_York", &[ADA]).await;
        drive(&app, utc("2027-11-06T12:00:00Z"), utc("2027-11-08T12:00:00Z"), Duration::minutes(15)).await;
        let rounds = rounds_of(&app, id).await;
        assert_eq!(slots(&rounds), ["2027-11-07T01:30", "2027-11-08T01:30"]);
        assert_eq!(rounds[0].1, utc("2027-11-07T05:30:00Z").naive_utc(), "the first of the two 01:30s");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_hour_fold_in_lord_howe_opens_once() {
    let app = TestApp::start(Backend::Sqlite).await.expect("sqlite");
    // Lord Howe goes from +11 to +10:30 at 02:00 on 4 April 2027: 01:30 to
    // 02:00 happens twice.
    app.clock.set(utc("2027-04-02T12:00:00Z"));
    let id = circle(
        &app,
        "weekly mon,tue,wed,thu,fri,sat,sun 01:45",
        "Australia/Lord_Howe",
        &[ADA],
    )
    .await;
    drive(
        &app,
        utc("2027-04-02T12:00:00Z"),
        utc("2027-04-04T12:00:00Z"),
        Duration::minutes(15),
    )
    .await;
    let rounds = rounds_of(&app, id).await;
    assert_eq!(slots(&rounds), ["2027-04-03T01:45", "2027-04-04T01:45"]);
    assert_eq!(rounds[1].1, utc("2027-04-03T14:45:00Z").naive_utc());
}

on_both_backends! {
    async fn monthly_on_the_31st_uses_the_last_day_of_shorter_months(app) {
        app.clock.set(utc("2027-01-15T00:00:00Z"));
        let id = circle(&app, "monthly 31 09:00", "UTC", &[ADA]).await;
        drive(&app, utc("2027-01-15T00:00:00Z"), utc("2027-05-02T00:00:00Z"), Duration::minutes(30)).await;
        let rounds = rounds_of(&app, id).await;
        assert_eq!(
            slots(&rounds),
            ["2027-01-31T09:00", "2027-02-28T09:00", "2027-03-31T09:00", "2027-04-30T09:00"]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_two_weeks_and_both_cron_forms_open_on_their_days() {
    let app = TestApp::start(Backend::Sqlite).await.expect("sqlite");
    app.clock.set(utc("2027-03-01T00:00:00Z"));
    let fortnightly = circle(&app, "weekly mon 09:00 every 2", "UTC", &[ADA]).await;
    let five = circle(&app, "0 9 * * 3", "UTC", &[BEA]).await;
    let six = circle(&app, "0 30 9 * * Fri", "UTC", &[("cy@example.org", "Cy")]).await;
    drive(
        &app,
        utc("2027-03-01T00:00:00Z"),
        utc("2027-03-28T00:00:00Z"),
        Duration::minutes(30),
    )
    .await;
    assert_eq!(
        slots(&rounds_of(&app, fortnightly).await),
        ["2027-03-01T09:00", "2027-03-15T09:00"]
    );
    assert_eq!(
        slots(&rounds_of(&app, five).await),
        [
            "2027-03-03T09:00",
            "2027-03-10T09:00",
            "2027-03-17T09:00",
            "2027-03-24T09:00"
        ]
    );
    assert_eq!(
        slots(&rounds_of(&app, six).await),
        [
            "2027-03-05T09:30",
            "2027-03-12T09:30",
            "2027-03-19T09:30",
            "2027-03-26T09:30"
        ]
    );
}

on_both_backends! {
    async fn after_six_hours_down_at_most_one_catch_up_round_opens(app) {
        app.clock.set(utc("2027-02-28T23:30:00Z"));
        let id = circle(&app, "0 * * * *", "UTC", &[ADA]).await;
        app.clock.set(utc("2027-03-01T00:00:00Z"));
        assert_eq!(app.run_jobs().await.rounds.opened, [(id, 1)]);
        // Down from 00:00 to 06:20: six hourly slots were missed.
        app.clock.set(utc("2027-03-01T06:20:00Z"));
        let report = app.run_jobs().await;
        assert_eq!(report.rounds.opened.len(), 1);
        assert_eq!(report.rounds.skipped, 5);
        assert_eq!(slots(&rounds_of(&app, id).await), ["2027-03-01T00:00", "2027-03-01T06:00"]);

        // The clock stepping back an hour opens nothing again.
        app.clock.set(utc("2027-03-01T05:20:00Z"));
        assert!(app.run_jobs().await.rounds.opened.is_empty());
        app.clock.set(utc("2027-03-01T06:30:00Z"));
        assert!(app.run_jobs().await.rounds.opened.is_empty());
        assert_eq!(rounds_of(&app, id).await.len(), 2);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_late_to_catch_up_opens_nothing_and_moves_on() {
    let app = TestApp::start(Backend::Sqlite).await.expect("sqlite");
    app.clock.set(utc("2027-03-01T00:00:00Z"));
    let id = circle(&app, "weekly mon 09:00", "UTC", &[ADA]).await;
    // Back three hours after the slot: beyond the hour of grace.
    app.clock.set(utc("2027-03-01T12:00:00Z"));
    let report = app.run_jobs().await;
    assert!(report.rounds.opened.is_empty());
    assert_eq!(report.rounds.skipped, 1);
    drive(
        &app,
        utc("2027-03-08T08:00:00Z"),
        utc("2027-03-08T10:00:00Z"),
        Duration::minutes(30),
    )
    .await;
    assert_eq!(slots(&rounds_of(&app, id).await), ["2027-03-08T09:00"]);
}

on_both_backends! {
    async fn a_round_sends_check_ins_a_reminder_and_a_digest(app) {
        app.clock.set(utc("2027-03-01T07:00:00Z"));
        let id = circle(&app, "weekly mon 09:00", "Europe/Paris", &[ADA, BEA]).await;
        // Opens at 08:00 UTC (09:00 Paris), stays open 24 hours.
        app.clock.set(utc("2027-03-01T08:00:00Z"));
        let report = app.run_jobs().await;
        assert_eq!(report.rounds.opened, [(id, 1)]);
        let check_ins = app.smtp.wait_for_messages(2);
        let prompts: Vec<String> = check_ins.iter().map(|m| m.text_body()).collect();
        let question = |body: &str| body.lines().find(|l| l.starts_with("    ")).map(str::trim).map(str::to_string);
        assert_eq!(question(&prompts[0]), question(&prompts[1]), "the same prompt for everyone");
        for message in &check_ins {
            assert!(message.subject().expect("subject").starts_with("Night shift accomplices, round 1:"));
            let unsubscribe = message.header("List-Unsubscribe").expect("List-Unsubscribe");
            assert!(unsubscribe.starts_with(&format!("<{}/unsubscribe/", app.public_base())));
            assert_eq!(message.header("List-Unsubscribe-Post").as_deref(), Some("List-Unsubscribe=One-Click"));
            assert!(message.text_body().contains(&format!("{}/circles/{id}/rounds/1", app.public_base())));
        }

        // The reminder goes 24 hours before close; with a 24-hour round that
        // is halfway, to both (nobody has checked in).
        app.clock.set(utc("2027-03-01T20:00:00Z"));
        assert_eq!(app.run_jobs().await.rounds.reminded, 1);
        let reminders = app.smtp.wait_for_messages(4);
        assert!(reminders[2].subject().expect("subject").contains("closes"));

        app.clock.set(utc("2027-03-02T08:00:00Z"));
        assert_eq!(app.run_jobs().await.rounds.closed, 1);
        let all = app.smtp.wait_for_messages(6);
        let digest = &all[4];
        assert_eq!(digest.subject().as_deref(), Some("Night shift accomplices: how round 1 went"));
        let body = digest.text_body();
        assert!(body.contains("Ada: no check-in this round"), "{body}");
        assert!(!body.to_lowercase().contains("missed"), "never shown as failure");

        // Nothing more happens when nothing is due.
        let quiet = app.run_jobs().await;
        assert!(quiet.rounds.is_empty());
        assert_eq!(app.emails().len(), 6);

        // The round page shows the prompt to members.
        let ada = app.sign_in("ada@example.org", "Ada").await;
        let page = app.get_as(&ada, &format!("/circles/{id}/rounds/1")).await;
        assert_eq!(page.status().as_u16(), 200);
        assert!(page.text().await.expect("page").contains("Round 1"));
        let eve = app.sign_in("eve@example.org", "Eve").await;
        assert_eq!(app.get_as(&eve, &format!("/circles/{id}/rounds/1")).await.status().as_u16(), 404);
    }
}

on_both_backends! {
    async fn paused_circles_open_nothing(app) {
        app.clock.set(utc("2027-03-01T00:00:00Z"));
        let id = circle(&app, "0 * * * *", "UTC", &[ADA]).await;
        let now = app.clock.now();
        app.state
            .db
            .run(move |conn| store::set_status(conn, id, store::CircleStatus::Paused, now))
            .await
            .expect("paused");
        drive(&app, utc("2027-03-01T00:00:00Z"), utc("2027-03-01T05:00:00Z"), Duration::minutes(30)).await;
        assert!(rounds_of(&app, id).await.is_empty());
    }
}

/// Two schedulers and delivery workers (separate pools over one database)
/// racing through the same ticks.
async fn race(app: TestApp) {
    let second =
        shoulder::app::AppState::build((*app.state.config).clone(), app.clock.clone(), false)
            .await
            .expect("a second instance");
    app.clock.set(utc("2027-03-01T00:00:00Z"));
    let mut circles = Vec::new();
    let hours = ["00", "03", "06", "09", "12", "15", "18", "21"];
    for i in 0..50 {
        let cadence = format!(
            "weekly mon,tue,wed,thu,fri,sat,sun {}:{:02}",
            hours[i % hours.len()],
            (i * 7) % 60
        );
        circles.push(circle(&app, &cadence, "UTC", &[ADA, BEA]).await);
    }
    let start = utc("2027-03-01T00:00:00Z");
    for tick in 0..210 {
        app.clock.set(start + Duration::minutes(30 * tick));
        let (a, b) = tokio::join!(
            shoulder::jobs::run_once(&app.state),
            shoulder::jobs::run_once(&second)
        );
        a.expect("first instance's pass");
        b.expect("second instance's pass");
    }
    let (rounds_count, distinct_slots, deliveries_count, distinct_keys, unsent) = app
        .state
        .db
        .run(|conn| {
            let rows: Vec<(i64, String)> = rounds::table
                .select((rounds::circle_id, rounds::slot))
                .load(conn)?;
            let mut keys: Vec<(i64, String)> = rows.clone();
            keys.sort();
            keys.dedup();
            let d: Vec<(Option<i64>, Option<i64>, String)> = deliveries::table
                .select((
                    deliveries::round_id,
                    deliveries::membership_id,
                    deliveries::kind,
                ))
                .load(conn)?;
            let mut dk = d.clone();
            dk.sort();
            dk.dedup();
            let unsent: i64 = deliveries::table
                .filter(deliveries::status.ne("sent"))
                .count()
                .get_result(conn)?;
            Ok::<_, DbError>((rows.len(), keys.len(), d.len(), dk.len(), unsent))
        })
        .await
        .expect("counts");
    assert_eq!(rounds_count, distinct_slots, "one round per slot");
    // 105 hours: four or five daily slots per circle.
    assert!(rounds_count >= 200, "{rounds_count} rounds");
    assert_eq!(
        deliveries_count, distinct_keys,
        "one delivery per round, member and kind"
    );
    assert_eq!(unsent, 0, "everything was sent");
    let emails = app.emails();
    let mut ids: Vec<String> = emails
        .iter()
        .filter_map(|m| m.header("Message-ID"))
        .collect();
    let total = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), total, "each email sent once");
    assert_eq!(total, deliveries_count);
}

on_both_backends! {
    async fn two_schedulers_at_once_open_each_round_once_and_send_each_email_once(app) {
        race(app).await;
    }
}

on_both_backends! {
    async fn a_circle_whose_schedule_broke_pauses_with_a_reason_and_others_go_on(app) {
        app.clock.set(utc("2027-03-01T00:00:00Z"));
        let broken_zone = circle(&app, "0 * * * *", "UTC", &[ADA]).await;
        let broken_deck = circle(&app, "0 * * * *", "UTC", &[BEA]).await;
        let healthy = circle(&app, "0 * * * *", "UTC", &[("cy@example.org", "Cy")]).await;
        app.state
            .db
            .run(move |conn| {
                use shoulder::db::schema::circles;
                // A zone renamed away in a newer time zone database, and a
                // deck whose file was deleted.
                diesel::update(circles::table.find(broken_zone))
                    .set(circles::time_zone.eq("Asia/Old_Capital"))
                    .execute(conn)?;
                diesel::update(circles::table.find(broken_deck))
                    .set(circles::deck.eq("retired-deck"))
                    .execute(conn)?;
                Ok::<_, DbError>(())
            })
            .await
            .expect("broken");
        app.clock.set(utc("2027-03-01T01:00:00Z"));
        let report = app.run_jobs().await;
        let mut paused = report.rounds.paused.clone();
        paused.sort_unstable();
        assert_eq!(paused, [broken_zone, broken_deck]);
        assert_eq!(report.rounds.opened, [(healthy, 1)]);

        let ada = app.sign_in("ada@example.org", "Ada").await;
        let page = app.get_as(&ada, &format!("/circles/{broken_zone}")).await.text().await.expect("page");
        assert!(page.contains("This circle is paused."), "{page}");
        assert!(page.contains("Asia/Old_Capital"), "the reason names the problem");
        let bea = app.sign_in("bea@example.org", "Bea").await;
        let page = app.get_as(&bea, &format!("/circles/{broken_deck}")).await.text().await.expect("page");
        assert!(page.contains("retired-deck"), "{page}");
    }
}

on_both_backends! {
    async fn more_circles_than_one_batch_all_open_with_their_own_pairs_and_emails(app) {
        use shoulder::db::schema::{memberships, pairings};
        use shoulder::rounds::open::CIRCLES_PER_TRANSACTION;
        app.clock.set(utc("2027-03-01T00:00:00Z"));
        let count = usize::try_from(CIRCLES_PER_TRANSACTION).expect("small") + 10;
        let cy = ("cy@example.org", "Cy");
        let mut circles = Vec::new();
        for _ in 0..count {
            circles.push(circle(&app, "0 9 * * *", "UTC", &[ADA, BEA, cy]).await);
        }
        app.clock.set(utc("2027-03-01T09:00:00Z"));
        let report = app.run_jobs().await;
        let mut opened = report.rounds.opened.clone();
        opened.sort_unstable();
        let expected: Vec<(i64, i32)> = circles.iter().map(|&id| (id, 1)).collect();
        assert_eq!(opened, expected, "every circle opened its first round once");

        let (pairs, check_ins) = app
            .state
            .db
            .run(|conn| {
                let givers: Vec<(i64, i64, i64)> = pairings::table
                    .inner_join(rounds::table)
                    .inner_join(
                        memberships::table.on(memberships::id.eq(pairings::giver_membership_id)),
                    )
                    .select((
                        rounds::circle_id,
                        memberships::circle_id,
                        pairings::receiver_membership_id,
                    ))
                    .load(conn)?;
                let receivers: Vec<i64> = pairings::table
                    .inner_join(rounds::table)
                    .inner_join(
                        memberships::table
                            .on(memberships::id.eq(pairings::receiver_membership_id)),
                    )
                    .filter(memberships::circle_id.ne(rounds::circle_id))
                    .select(pairings::id)
                    .load(conn)?;
                assert!(receivers.is_empty(), "a pair crossed circles");
                let check_ins: i64 = deliveries::table
                    .filter(deliveries::kind.eq("check_in"))
                    .count()
                    .get_result(conn)?;
                Ok::<_, DbError>((givers, check_ins))
            })
            .await
            .expect("pairs");
        assert_eq!(pairs.len(), count * 3, "everyone encourages someone");
        assert!(pairs.iter().all(|(round_circle, giver_circle, _)| round_circle == giver_circle));
        assert_eq!(check_ins, i64::try_from(count * 3).expect("small"));
        let emails = app.emails();
        let to_cy = emails
            .iter()
            .filter(|m| m.to.iter().any(|to| to == "cy@example.org"))
            .count();
        assert_eq!(to_cy, count, "one check-in per circle for Cy");
        let one = emails
            .iter()
            .find(|m| m.to.iter().any(|to| to == "ada@example.org"))
            .expect("a check-in for Ada");
        let text = one.text_body();
        assert!(text.contains("Cy") || text.contains("Bea"), "names her partner: {text}");
        assert!(text.contains("?key="), "carries her round link: {text}");
    }
}

on_both_backends! {
    async fn facilitators_see_emails_that_did_not_arrive_and_members_do_not(app) {
        app.clock.set(utc("2027-03-01T07:00:00Z"));
        let id = circle(&app, "weekly mon 08:00", "UTC", &[ADA, BEA]).await;
        // Another circle's failures are not this one's business.
        circle(&app, "weekly mon 08:00", "UTC", &[("cy@example.org", "Cy")]).await;
        // Both sign in first: once their addresses are refused for good, no
        // more mail (sign-in links included) goes to them.
        let ada = app.sign_in("ada@example.org", "Ada").await;
        let bea = app.sign_in("bea@example.org", "Bea").await;
        let page_of = |cookie: String| {
            let app = &app;
            async move {
                let response = app.get_as(&cookie, &format!("/circles/{id}")).await;
                assert_eq!(response.status().as_u16(), 200);
                response.text().await.expect("page")
            }
        };
        assert!(!page_of(ada.clone()).await.contains("Emails that did not arrive"));

        app.smtp.set_mode(crate::support::SmtpMode::PermFail);
        app.clock.set(utc("2027-03-01T08:00:00Z"));
        let report = app.run_jobs().await;
        assert_eq!(report.delivery.failed, 3);
        // A week on, the refused addresses get nothing more: the new
        // round's emails are held back, and listed too. Dee, who joined
        // since, gets hers, which is not listed.
        app.smtp.set_mode(crate::support::SmtpMode::Accept);
        app.state
            .db
            .run(move |conn| {
                let at = utc("2027-03-02T08:00:00Z").naive_utc();
                let dee = store::find_or_create_person(conn, "dee@example.org", "Dee", at)?;
                store::add_member(conn, id, dee, store::ROLE_MEMBER, at)?;
                Ok::<_, DbError>(())
            })
            .await
            .expect("Dee joins");
        app.clock.set(utc("2027-03-08T08:00:00Z"));
        app.run_jobs().await;

        let page = page_of(ada).await;
        let listed = page
            .split_once("Emails that did not arrive")
            .and_then(|(_, rest)| rest.split_once("</section>"))
            .map(|(section, _)| section)
            .unwrap_or_else(|| panic!("no failures listed: {page}"));
        assert!(listed.contains("Bea · check-in · 1 Mar 2027 08:00 UTC: permanent failure"), "{listed}");
        assert!(
            listed.contains("Bea · check-in · 8 Mar 2027 08:00 UTC: not sent: the address refused earlier mail"),
            "{listed}"
        );
        assert!(!listed.contains("Cy"), "{listed}");
        assert!(!listed.contains("Dee"), "{listed}");
        assert!(app.emails().iter().any(|m| m.to == ["dee@example.org"]));
        let page = page_of(bea).await;
        assert!(!page.contains("Emails that did not arrive"));
        assert!(page.contains("Round 1"), "members see the round list");
    }
}

/// An opening on SQLite grows its connection's page cache; whichever pooled
/// connection it ran on, every one is back at SQLite's default for its next
/// user.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_opening_hands_every_sqlite_connection_back_with_the_default_page_cache() {
    use diesel::sql_types::BigInt;
    use shoulder::db::DbConnection;

    #[derive(QueryableByName)]
    struct CacheSize {
        #[diesel(sql_type = BigInt)]
        cache_size: i64,
    }

    let app = TestApp::start(Backend::Sqlite).await.expect("sqlite");
    crate::support::weekly_circle(
        &app,
        "Allotment keepers",
        &[("ana@example.com", "Ana"), ("bo@example.com", "Bo")],
    )
    .await;
    let report = crate::support::open_week(&app, 1).await;
    assert_eq!(report.rounds.opened.len(), 1, "the round opened");

    let pool_size = app.state.db.state().max_size;
    let mut connections: Vec<_> = (0..pool_size)
        .map(|_| app.state.db.get().expect("a pooled connection"))
        .collect();
    for conn in &mut connections {
        let DbConnection::Sqlite(conn) = &mut ***conn else {
            panic!("a SQLite app has SQLite connections");
        };
        let cache = diesel::sql_query("PRAGMA cache_size")
            .get_result::<CacheSize>(conn)
            .expect("cache size readable");
        assert_eq!(cache.cache_size, -2000, "SQLite's default page cache");
    }
}
