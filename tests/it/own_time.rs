//! Time that fits each person: times read in their own zone beside the
//! circle's, and the check-in email at their own hour.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use shoulder::db::schema::{deliveries, memberships, people};

use crate::on_both_backends;
use crate::shoulder::{query, round_link};
use crate::support::{ReceivedEmail, TestApp, circle_in, cookie_from, link_path, utc};

/// Gives `email`'s person the zone `zone`.
async fn set_zone(app: &TestApp, email: &'static str, zone: &'static str) {
    query(app, move |conn| {
        diesel::update(people::table.filter(people::email.eq(email)))
            .set(people::time_zone.eq(Some(zone)))
            .execute(conn)
    })
    .await;
}

/// Gives `email`'s membership of `circle` the check-in hour `hour`.
async fn set_hour(app: &TestApp, circle: i64, email: &'static str, hour: &'static str) {
    query(app, move |conn| {
        let person: i64 = people::table
            .filter(people::email.eq(email))
            .select(people::id)
            .first(conn)?;
        diesel::update(
            memberships::table
                .filter(memberships::circle_id.eq(circle))
                .filter(memberships::person_id.eq(person)),
        )
        .set(memberships::check_in_at.eq(Some(hour)))
        .execute(conn)
    })
    .await;
}

/// The check-in emails `email` has received so far, after a pass of the
/// jobs at the clock's instant.
async fn check_ins_to(app: &TestApp, email: &str) -> Vec<ReceivedEmail> {
    app.run_jobs().await;
    app.emails()
        .into_iter()
        .filter(|m| m.to == [email.to_string()])
        .filter(|m| m.subject().is_some_and(|s| s.contains(", round ")))
        .collect()
}

/// When `email`'s check-in for the circle's latest round may be sent.
async fn held_until(app: &TestApp, email: &'static str) -> NaiveDateTime {
    query(app, move |conn| {
        deliveries::table
            .filter(deliveries::to_address.eq(email))
            .filter(deliveries::kind.eq("check_in"))
            .order(deliveries::id.desc())
            .select(deliveries::next_attempt_at)
            .first(conn)
    })
    .await
}

on_both_backends! {
    /// A circle in London, Tuesdays 18:30, read from London, Toronto and
    /// Berlin over the March weeks when North America has moved its clocks
    /// and Europe has not yet.
    async fn times_read_in_each_person_s_zone_beside_the_circle_s(app) {
        app.clock.set(utc("2027-03-16T12:00:00Z"));
        let circle = circle_in(
            &app,
            "Tuesday accomplices",
            "Europe/London",
            "weekly tue 18:30",
            24,
            &[("ada@example.org", "Ada"), ("bea@example.org", "Bea"), ("chen@example.org", "Chen")],
        )
        .await;
        set_zone(&app, "bea@example.org", "America/Toronto").await;
        set_zone(&app, "chen@example.org", "Europe/Berlin").await;

        // 16 March: London still on GMT, Toronto already on EDT (four
        // hours apart, not five), Berlin an hour ahead.
        app.clock.set(utc("2027-03-16T18:30:00Z"));
        let ada = check_ins_to(&app, "ada@example.org").await;
        let bea = check_ins_to(&app, "bea@example.org").await;
        let chen = check_ins_to(&app, "chen@example.org").await;
        let (ada, bea, chen) = (ada[0].text_body(), bea[0].text_body(), chen[0].text_body());
        assert!(ada.contains("open until Wednesday 17 March, 18:30 GMT."), "{ada}");
        assert!(
            bea.contains("open until Wednesday 17 March, 18:30 in London, 14:30 your time."),
            "{bea}"
        );
        assert!(
            chen.contains("open until Wednesday 17 March, 18:30 in London, 19:30 your time."),
            "{chen}"
        );

        // Bea's round page, opened from her email, says it her way too.
        let link = round_link(&app, &bea, circle, 1);
        let (status, page) = app.get_text(&link).await;
        assert_eq!(status, 200);
        assert!(page.contains("Tuesday 16 March, 18:30 in London, 14:30 your time"), "{page}");

        // The circle page's next round: 23 March, still four hours apart.
        let bea_session = app.sign_in("bea@example.org", "Bea").await;
        let page = app.get_as(&bea_session, &format!("/circles/{circle}")).await.text().await.expect("page");
        assert!(
            page.contains("Next round: <strong>Tuesday 23 March, 18:30 in London, 14:30 your time</strong>."),
            "{page}"
        );
        assert!(!page.contains("data-local"), "no second guess by the browser: {page}");
        let ada_session = app.sign_in("ada@example.org", "Ada").await;
        let page = app.get_as(&ada_session, &format!("/circles/{circle}")).await.text().await.expect("page");
        assert!(page.contains("Tuesday 23 March 2027, 18:30 GMT"), "{page}");

        // 30 March: both sides have moved; five hours apart again, and the
        // round an hour earlier in UTC.
        app.clock.set(utc("2027-03-23T18:30:00Z"));
        app.run_jobs().await;
        app.clock.set(utc("2027-03-30T17:30:00Z"));
        let bea = check_ins_to(&app, "bea@example.org").await;
        assert_eq!(bea.len(), 3, "rounds 1, 2 and 3");
        let text = bea[2].text_body();
        assert!(
            text.contains("open until Wednesday 31 March, 18:30 in London, 13:30 your time."),
            "{text}"
        );
    }
}

on_both_backends! {
    /// A UTC circle opening Mondays 09:00 for twelve hours; members in
    /// Tokyo (nine hours ahead) and one without a zone of their own.
    async fn the_check_in_email_comes_at_each_member_s_hour_once(app) {
        app.clock.set(utc("2027-03-01T08:00:00Z"));
        let circle = circle_in(
            &app,
            "Monday accomplices",
            "UTC",
            "weekly mon 09:00",
            12,
            &[
                ("ada@example.org", "Ada"),
                ("bea@example.org", "Bea"),
                ("cal@example.org", "Cal"),
                ("dan@example.org", "Dan"),
                ("eve@example.org", "Eve"),
            ],
        )
        .await;
        for email in ["bea@example.org", "cal@example.org", "eve@example.org"] {
            set_zone(&app, email, "Asia/Tokyo").await;
        }
        // 20:00 in Tokyo is 11:00 UTC, while the round is open.
        set_hour(&app, circle, "bea@example.org", "20:00").await;
        // 07:30 in Tokyo has passed at the opening (18:00 there), and the
        // next one (22:30 UTC) comes after the round closes at 21:00.
        set_hour(&app, circle, "cal@example.org", "07:30").await;
        // No zone of his own: 15:00 in the circle's.
        set_hour(&app, circle, "dan@example.org", "15:00").await;
        set_hour(&app, circle, "eve@example.org", "21:00").await;

        app.clock.set(utc("2027-03-01T09:00:00Z"));
        assert_eq!(check_ins_to(&app, "ada@example.org").await.len(), 1, "at the opening");
        assert_eq!(check_ins_to(&app, "cal@example.org").await.len(), 1, "at the opening: no 07:30 while open");
        for email in ["bea@example.org", "dan@example.org", "eve@example.org"] {
            assert!(check_ins_to(&app, email).await.is_empty(), "{email} waits");
        }
        assert_eq!(held_until(&app, "bea@example.org").await, utc("2027-03-01T11:00:00Z").naive_utc());
        assert_eq!(held_until(&app, "dan@example.org").await, utc("2027-03-01T15:00:00Z").naive_utc());
        assert_eq!(held_until(&app, "eve@example.org").await, utc("2027-03-01T12:00:00Z").naive_utc());

        // Eve changes her hour while her email waits: it moves with her.
        let eve = app.sign_in("eve@example.org", "Eve").await;
        let path = format!("/circles/{circle}/check-in-hour");
        let refused = app.post_form_as(&eve, &path, &[("when", "hour"), ("check_in_at", "25:00")]).await;
        assert_eq!(refused.status().as_u16(), 422);
        let page = refused.text().await.expect("page");
        assert!(
            page.contains("Give the hour as HH:MM") && page.contains(r#"value="25:00""#) && page.contains(r#"aria-invalid="true""#),
            "{page}"
        );
        assert_eq!(held_until(&app, "eve@example.org").await, utc("2027-03-01T12:00:00Z").naive_utc(), "nothing moved");
        let saved = app.post_form_as(&eve, &path, &[("when", "hour"), ("check_in_at", "19:00")]).await;
        assert_eq!(saved.status().as_u16(), 303);
        assert_eq!(held_until(&app, "eve@example.org").await, utc("2027-03-01T10:00:00Z").naive_utc());
        let page = app.get_as(&eve, &format!("/circles/{circle}")).await.text().await.expect("page");
        assert!(
            page.contains(r#"value="hour" checked"#) && page.contains(r#"value="19:00""#) && page.contains("Your time (Asia/Tokyo)"),
            "{page}"
        );

        app.clock.set(utc("2027-03-01T10:00:00Z"));
        assert_eq!(check_ins_to(&app, "eve@example.org").await.len(), 1);
        app.clock.set(utc("2027-03-01T10:59:00Z"));
        assert!(check_ins_to(&app, "bea@example.org").await.is_empty(), "not before her hour");
        app.clock.set(utc("2027-03-01T11:00:00Z"));
        assert_eq!(check_ins_to(&app, "bea@example.org").await.len(), 1);
        app.clock.set(utc("2027-03-01T15:00:00Z"));
        assert_eq!(check_ins_to(&app, "dan@example.org").await.len(), 1);
        app.clock.set(utc("2027-03-01T20:00:00Z"));
        for email in ["ada@example.org", "bea@example.org", "cal@example.org", "dan@example.org", "eve@example.org"] {
            assert_eq!(check_ins_to(&app, email).await.len(), 1, "{email} got one");
        }

        // Back to "when the round opens": the next round comes at once.
        let saved = app.post_form_as(&eve, &path, &[("when", "opening"), ("check_in_at", "")]).await;
        assert_eq!(saved.status().as_u16(), 303);
        app.clock.set(utc("2027-03-08T09:00:00Z"));
        assert_eq!(check_ins_to(&app, "eve@example.org").await.len(), 2);
    }
}

on_both_backends! {
    /// London's clocks skip 01:00 to 02:00 on 28 March 2027 and pass it
    /// twice on 31 October; a member who asked for 01:30 gets the email
    /// at the jump, then at the first of the two.
    async fn an_hour_the_clocks_skip_or_repeat_still_comes_once(app) {
        app.clock.set(utc("2027-03-27T08:00:00Z"));
        let spring = circle_in(
            &app,
            "Spring accomplices",
            "Europe/London",
            "weekly sat 12:00",
            48,
            &[("ada@example.org", "Ada"), ("bea@example.org", "Bea")],
        )
        .await;
        set_zone(&app, "bea@example.org", "Europe/London").await;
        set_hour(&app, spring, "bea@example.org", "01:30").await;
        app.clock.set(utc("2027-03-27T12:00:00Z"));
        assert!(check_ins_to(&app, "bea@example.org").await.is_empty());
        assert_eq!(held_until(&app, "bea@example.org").await, utc("2027-03-28T01:00:00Z").naive_utc());
        app.clock.set(utc("2027-03-28T00:59:00Z"));
        assert!(check_ins_to(&app, "bea@example.org").await.is_empty());
        app.clock.set(utc("2027-03-28T01:00:00Z"));
        assert_eq!(check_ins_to(&app, "bea@example.org").await.len(), 1);

        app.clock.set(utc("2027-10-30T08:00:00Z"));
        let autumn = circle_in(
            &app,
            "Autumn accomplices",
            "Europe/London",
            "weekly sat 12:00",
            48,
            &[("cal@example.org", "Cal"), ("dan@example.org", "Dan")],
        )
        .await;
        set_zone(&app, "dan@example.org", "Europe/London").await;
        set_hour(&app, autumn, "dan@example.org", "01:30").await;
        app.clock.set(utc("2027-10-30T11:00:00Z"));
        assert!(check_ins_to(&app, "dan@example.org").await.is_empty());
        assert_eq!(held_until(&app, "dan@example.org").await, utc("2027-10-31T00:30:00Z").naive_utc());
        app.clock.set(utc("2027-10-31T00:30:00Z"));
        assert_eq!(check_ins_to(&app, "dan@example.org").await.len(), 1);
        app.clock.set(utc("2027-10-31T01:30:00Z"));
        assert_eq!(check_ins_to(&app, "dan@example.org").await.len(), 1, "not again at the second 01:30");
    }
}

on_both_backends! {
    /// Checking in, skipping, going away or muting before one's hour leaves
    /// the waiting email nothing to ask: it is withdrawn, and only those
    /// who did none of these get theirs.
    async fn a_waiting_email_is_withdrawn_when_it_has_nothing_left_to_ask(app) {
        app.clock.set(utc("2027-03-01T08:00:00Z"));
        let people = [
            ("ada@example.org", "Ada"),
            ("bea@example.org", "Bea"),
            ("cal@example.org", "Cal"),
            ("dan@example.org", "Dan"),
            ("eve@example.org", "Eve"),
            ("fay@example.org", "Fay"),
        ];
        let circle = circle_in(&app, "Monday accomplices", "UTC", "weekly mon 09:00", 12, &people).await;
        for (email, _) in &people[1..] {
            set_hour(&app, circle, email, "20:00").await;
        }
        app.clock.set(utc("2027-03-01T09:00:00Z"));
        assert_eq!(check_ins_to(&app, "ada@example.org").await.len(), 1);
        let round = format!("/circles/{circle}/rounds/1");
        let session = |email: &'static str, name: &'static str| app.sign_in(email, name);
        let bea = session("bea@example.org", "Bea").await;
        let saved = app.post_form_as(&bea, &round, &[("reflection", "Said early."), ("audience", "me")]).await;
        assert_eq!(saved.status().as_u16(), 303);
        let cal = session("cal@example.org", "Cal").await;
        let skipped = app.post_form_as(&cal, &format!("{round}/skip"), &[("skip", "yes")]).await;
        assert_eq!(skipped.status().as_u16(), 303);
        let dan = session("dan@example.org", "Dan").await;
        let muted = app.post_form_as(&dan, &format!("/circles/{circle}/mail"), &[("action", "mute")]).await;
        assert_eq!(muted.status().as_u16(), 303);
        let eve = session("eve@example.org", "Eve").await;
        let away = app.post_form_as(&eve, &format!("{round}/away"), &[("starts", "2027-03-01"), ("ends", "2027-03-02")]).await;
        assert_eq!(away.status().as_u16(), 303);

        app.clock.set(utc("2027-03-01T20:00:00Z"));
        assert_eq!(check_ins_to(&app, "fay@example.org").await.len(), 1);
        for email in ["bea@example.org", "cal@example.org", "dan@example.org", "eve@example.org"] {
            assert!(check_ins_to(&app, email).await.is_empty(), "{email} was not asked");
        }
        let waiting = query(&app, |conn| {
            deliveries::table
                .filter(deliveries::kind.eq("check_in"))
                .filter(deliveries::status.eq("pending"))
                .count()
                .get_result::<i64>(conn)
        })
        .await;
        assert_eq!(waiting, 0);
    }
}

/// The zone a person has chosen, if any.
async fn zone_of(app: &TestApp, email: &'static str) -> Option<String> {
    query(app, move |conn| {
        people::table
            .filter(people::email.eq(email))
            .select(people::time_zone)
            .first::<Option<String>>(conn)
    })
    .await
}

/// The newest link in an email to `to` under `prefix`.
async fn emailed_link(app: &TestApp, to: &str, prefix: &str) -> String {
    app.run_jobs().await;
    let email = app
        .emails()
        .into_iter()
        .rev()
        .find(|m| m.to == [to.to_string()])
        .unwrap_or_else(|| panic!("an email to {to}"));
    link_path(&email.text_body(), app.public_base(), prefix)
}

on_both_backends! {
    /// Someone new is asked for their zone when they first sign in or join;
    /// an unknown one is refused with what was sent kept, a known one kept.
    async fn a_first_sign_in_and_a_first_join_ask_for_a_zone(app) {
        assert_eq!(app.post_form("/sign-in", &[("email", "rui@example.org")]).await.status().as_u16(), 303);
        let link = emailed_link(&app, "rui@example.org", "/sign-in/").await;
        let (status, page) = app.get_text(&link).await;
        assert_eq!(status, 200);
        assert!(
            page.contains(r#"data-browser-zone="propose""#) && page.contains(r#"<option value="UTC" selected>UTC</option>"#),
            "UTC until the browser proposes its own: {page}"
        );
        let refused = app.post_form(&link, &[("name", "Rui"), ("time_zone", "Mars/Olympus")]).await;
        assert_eq!(refused.status().as_u16(), 422);
        let page = refused.text().await.expect("page");
        assert!(page.contains(shoulder::people::zone::UNKNOWN_ZONE), "{page}");
        assert!(page.contains(r#"<option value="Mars/Olympus" selected>"#) && page.contains(r#"value="Rui""#), "kept: {page}");
        assert!(page.contains(r#"aria-describedby="time_zone-error""#), "{page}");
        let nobody = query(&app, |conn| people::table.count().get_result::<i64>(conn)).await;
        assert_eq!(nobody, 0, "nothing written");
        let signed_in = app.post_form(&link, &[("name", "Rui"), ("time_zone", "America/Sao_Paulo")]).await;
        assert_eq!(signed_in.status().as_u16(), 303);
        assert_eq!(zone_of(&app, "rui@example.org").await.as_deref(), Some("America/Sao_Paulo"));

        // Signing in again asks nothing more.
        app.post_form("/sign-in", &[("email", "rui@example.org")]).await;
        let link = emailed_link(&app, "rui@example.org", "/sign-in/").await;
        let (_, page) = app.get_text(&link).await;
        assert!(!page.contains("time_zone"), "{page}");

        // Joining through a link: the same question, kept on joining.
        let rui = cookie_from(&signed_in);
        let circle = circle_in(&app, "Monday accomplices", "UTC", "weekly mon 09:00", 48, &[("rui@example.org", "Rui")]).await;
        let join = app.make_invite_link(&rui, circle).await;
        let asked = app.post_form(&join, &[("name", "Bea"), ("email", "bea@example.org"), ("accept", "yes")]).await;
        assert_eq!(asked.status().as_u16(), 303);
        let confirm = emailed_link(&app, "bea@example.org", "/join/confirm/").await;
        let (_, page) = app.get_text(&confirm).await;
        assert!(page.contains(r#"data-browser-zone="propose""#), "{page}");
        let refused = app.post_form(&confirm, &[("time_zone", "Atlantis/Central")]).await;
        assert_eq!(refused.status().as_u16(), 422);
        let page = refused.text().await.expect("page");
        assert!(page.contains(r#"<option value="Atlantis/Central" selected>"#), "{page}");
        let members = query(&app, move |conn| {
            memberships::table.filter(memberships::circle_id.eq(circle)).count().get_result::<i64>(conn)
        })
        .await;
        assert_eq!(members, 1, "nobody joined on a refused zone");
        let joined = app.post_form(&confirm, &[("time_zone", "Europe/Lisbon")]).await;
        assert_eq!(joined.status().as_u16(), 303);
        assert_eq!(zone_of(&app, "bea@example.org").await.as_deref(), Some("Europe/Lisbon"));
    }
}
