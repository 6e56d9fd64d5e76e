//! Checking in on the round page: reflection, commitments, follow-through.

use diesel::prelude::*;
use shoulder::db::DbError;
use shoulder::db::schema::{check_ins, commitments};

use crate::on_both_backends;
use crate::support::{Backend, TestApp, open_week, utc, weekly_circle};

/// A weekly Monday 09:00 UTC circle of Ada and Bea, with round 1 open.
async fn circle_with_a_round(app: &TestApp) -> i64 {
    let people = [("ada@example.org", "Ada"), ("bea@example.org", "Bea")];
    let id = weekly_circle(app, "Night shift accomplices", &people).await;
    assert_eq!(open_week(app, 1).await.rounds.opened, [(id, 1)]);
    id
}

async fn check_in(
    app: &TestApp,
    cookie: &str,
    path: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    app.post_form_as(cookie, path, fields).await
}

async fn commitment_ids(app: &TestApp) -> Vec<(i64, String, String)> {
    app.state
        .db
        .run(|conn| {
            Ok::<_, DbError>(
                commitments::table
                    .order(commitments::id.asc())
                    .select((commitments::id, commitments::body, commitments::status))
                    .load(conn)?,
            )
        })
        .await
        .expect("commitments")
}

on_both_backends! {
    async fn a_member_checks_in_and_reports_follow_through_next_round(app) {
        let id = circle_with_a_round(&app).await;
        let ada = app.sign_in("ada@example.org", "Ada").await;
        let round1 = format!("/circles/{id}/rounds/1");
        let response = check_in(&app, &ada, &round1, &[
            ("reflection", "I talked more than I listened."),
            ("commitment-1", "Ask two questions before giving advice"),
            ("commitment-2", ""),
            ("commitment-3", "Credit Sam's idea in the staff meeting"),
        ]).await;
        assert_eq!(response.status().as_u16(), 303);
        let page = app.get_as(&ada, &round1).await.text().await.expect("page");
        assert!(page.contains("You have checked in this round."));
        assert!(page.contains(r#"value="Ask two questions before giving advice""#));

        // Editing replaces, it does not add.
        check_in(&app, &ada, &round1, &[
            ("commitment-1", "Ask two questions before giving advice"),
            ("commitment-2", "Credit Sam's idea in the staff meeting"),
        ]).await;
        let made = commitment_ids(&app).await;
        assert_eq!(made.len(), 2, "{made:?}");

        // The round closes: Ada checked in, Bea did not.
        app.clock.set(utc("2027-03-03T09:00:00Z"));
        app.run_jobs().await;
        let digest = app
            .emails()
            .into_iter()
            .find(|m| m.to == ["bea@example.org"] && m.subject().is_some_and(|s| s.contains("how round 1 went")))
            .expect("Bea's digest");
        assert!(digest.text_body().contains("Ada: checked in"), "{}", digest.text_body());
        assert!(digest.text_body().contains("Bea: no check-in this round"));

        // Next round: both commitments come back for follow-through.
        app.clock.set(utc("2027-03-08T09:00:00Z"));
        app.run_jobs().await;
        let round2 = format!("/circles/{id}/rounds/2");
        let page = app.get_as(&ada, &round2).await.text().await.expect("page");
        assert!(page.contains("How did your earlier commitments go?"));
        let (first, second) = (made[0].0.to_string(), made[1].0.to_string());
        let response = check_in(&app, &ada, &round2, &[
            (&format!("outcome-{first}"), "done"),
            (&format!("note-{first}"), "Twice, and it changed the conversation"),
            (&format!("outcome-{second}"), "not_yet"),
            ("commitment-1", "Read the piece Bea shared"),
        ]).await;
        assert_eq!(response.status().as_u16(), 303);
        let statuses: Vec<String> = commitment_ids(&app).await.into_iter().map(|(_, _, s)| s).collect();
        assert_eq!(statuses, ["done", "not_yet", "open"]);

        // Round 3 asks again only about what is still open.
        app.clock.set(utc("2027-03-15T09:00:00Z"));
        app.run_jobs().await;
        let page = app.get_as(&ada, &format!("/circles/{id}/rounds/3")).await.text().await.expect("page");
        assert!(page.contains("Credit Sam&#39;s idea") || page.contains("Credit Sam's idea"), "not yet carries it");
        assert!(!page.contains("Ask two questions before giving advice"), "done is settled");
    }
}

on_both_backends! {
    async fn bad_check_ins_are_refused_with_the_text_kept_and_nothing_saved(app) {
        let id = circle_with_a_round(&app).await;
        let ada = app.sign_in("ada@example.org", "Ada").await;
        let round1 = format!("/circles/{id}/rounds/1");

        let empty = check_in(&app, &ada, &round1, &[("reflection", "  "), ("commitment-1", "")]).await;
        assert_eq!(empty.status().as_u16(), 422);
        let page = empty.text().await.expect("page");
        assert!(page.contains("a check-in needs one of them"), "{page}");

        let long = "x".repeat(281);
        let too_long = check_in(&app, &ada, &round1, &[("commitment-1", &long)]).await;
        assert_eq!(too_long.status().as_u16(), 422);
        assert!(too_long.text().await.expect("page").contains("limited to 280 characters"));

        // Bea makes a commitment; Ada cannot report on it.
        let bea = app.sign_in("bea@example.org", "Bea").await;
        check_in(&app, &bea, &round1, &[("commitment-1", "Bea's own")]).await;
        let beas = commitment_ids(&app).await[0].0;
        app.clock.set(utc("2027-03-08T09:00:00Z"));
        app.run_jobs().await;
        let round2 = format!("/circles/{id}/rounds/2");
        let outcome_field = format!("outcome-{beas}");
        let meddling = check_in(&app, &ada, &round2, &[(&outcome_field, "released"), ("commitment-1", "Mine")]).await;
        assert_eq!(meddling.status().as_u16(), 422);
        assert!(meddling.text().await.expect("page").contains("not one of your open ones"));
        assert_eq!(commitment_ids(&app).await[0].2, "open", "Bea's commitment untouched");

        let ada_check_ins: i64 = app
            .state
            .db
            .run(|conn| Ok::<_, DbError>(check_ins::table.count().get_result(conn)?))
            .await
            .expect("count");
        assert_eq!(ada_check_ins, 1, "only Bea's check-in exists");

        let eve = app.sign_in("eve@example.org", "Eve").await;
        let stranger = check_in(&app, &eve, &round1, &[("commitment-1", "Sneak in")]).await;
        assert_eq!(stranger.status().as_u16(), 404);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_in_after_the_close_is_accepted_and_marked_late() {
    let app = TestApp::start(Backend::Sqlite).await.expect("sqlite");
    let id = circle_with_a_round(&app).await;
    let ada = app.sign_in("ada@example.org", "Ada").await;
    app.clock.set(utc("2027-03-04T09:00:00Z"));
    app.run_jobs().await;
    let round1 = format!("/circles/{id}/rounds/1");
    let page = app.get_as(&ada, &round1).await.text().await.expect("page");
    assert!(page.contains("a late check-in is welcome"));
    let response = check_in(&app, &ada, &round1, &[("commitment-1", "Better late")]).await;
    assert_eq!(response.status().as_u16(), 303);
    let late: bool = app
        .state
        .db
        .run(|conn| Ok::<_, DbError>(check_ins::table.select(check_ins::late).first(conn)?))
        .await
        .expect("late flag");
    assert!(late);
}

on_both_backends! {
    /// A round without new promises is still a check-in: a reflection alone
    /// saves, and so does follow-through alone. Before, both were refused
    /// for want of a commitment.
    async fn a_check_in_without_new_commitments_saves(app) {
        let id = circle_with_a_round(&app).await;
        let ada = app.sign_in("ada@example.org", "Ada").await;
        let bea = app.sign_in("bea@example.org", "Bea").await;
        let round1 = format!("/circles/{id}/rounds/1");
        let page = app.get_as(&ada, &round1).await.text().await.expect("page");
        assert!(page.contains("a round without new promises is still a check-in"), "{page}");
        let reflection = check_in(&app, &ada, &round1, &[("reflection", "A week to rest.")]).await;
        assert_eq!(reflection.status().as_u16(), 303);
        let response = check_in(&app, &bea, &round1, &[("commitment-1", "Call the landlord")]).await;
        assert_eq!(response.status().as_u16(), 303);
        let page = app.get_as(&ada, &round1).await.text().await.expect("page");
        assert!(page.contains("You have checked in this round."));
        assert!(page.contains("A week to rest."));

        app.clock.set(utc("2027-03-08T09:00:00Z"));
        app.run_jobs().await;
        let round2 = format!("/circles/{id}/rounds/2");
        let page = app.get_as(&bea, &round2).await.text().await.expect("page");
        assert!(page.contains("honest credit"), "Partly is explained");
        let landlord = commitment_ids(&app).await[0].0.to_string();
        let follow_only = check_in(&app, &bea, &round2, &[
            (&format!("outcome-{landlord}"), "partly"),
            (&format!("note-{landlord}"), "Left a message"),
        ]).await;
        assert_eq!(follow_only.status().as_u16(), 303);
        let made = commitment_ids(&app).await;
        assert_eq!(made.len(), 1, "no new commitment: {made:?}");
        assert_eq!(made[0].2, "partly");
        let saved: i64 = app
            .state
            .db
            .run(|conn| Ok::<_, DbError>(check_ins::table.count().get_result(conn)?))
            .await
            .expect("check-ins");
        assert_eq!(saved, 3);
    }
}
