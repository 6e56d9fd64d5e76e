//! Follow-through history: the member's page, the circle's page, their
//! chart, and who may see them.

use diesel::prelude::*;
use shoulder::db::DbError;
use shoulder::db::schema::{commitments, memberships, people};

use crate::on_both_backends;
use crate::support::{TestApp, open_week, weekly_circle};

pub async fn membership_of(app: &TestApp, circle_id: i64, email: &str) -> i64 {
    let email = email.to_string();
    app.state
        .db
        .run(move |conn| {
            Ok::<_, DbError>(
                memberships::table
                    .inner_join(people::table)
                    .filter(memberships::circle_id.eq(circle_id))
                    .filter(people::email.eq(email))
                    .select(memberships::id)
                    .first(conn)?,
            )
        })
        .await
        .expect("membership")
}

pub async fn commitment_id(app: &TestApp, body: &str) -> String {
    let body = body.to_string();
    let id: i64 = app
        .state
        .db
        .run(move |conn| {
            Ok::<_, DbError>(
                commitments::table
                    .filter(commitments::body.eq(body))
                    .select(commitments::id)
                    .first(conn)?,
            )
        })
        .await
        .expect("commitment");
    id.to_string()
}

/// Checks in for round `number`: one new commitment, and an outcome (and
/// note) for each earlier commitment named by its body.
pub async fn check_in(
    app: &TestApp,
    cookie: &str,
    circle_id: i64,
    number: i64,
    commitment: &str,
    follow: &[(&str, &str, &str)],
) {
    let mut fields: Vec<(String, String)> = vec![
        ("reflection".into(), "Listening more.".into()),
        ("commitment-1".into(), commitment.into()),
    ];
    for (body, outcome, note) in follow {
        let id = commitment_id(app, body).await;
        fields.push((format!("outcome-{id}"), outcome.to_string()));
        fields.push((format!("note-{id}"), note.to_string()));
    }
    let borrowed: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let path = format!("/circles/{circle_id}/rounds/{number}");
    let response = app.post_form_as(cookie, &path, &borrowed).await;
    assert_eq!(response.status().as_u16(), 303, "check-in for {path} saved");
}

async fn page(app: &TestApp, cookie: &str, path: &str) -> (u16, String) {
    let response = app.get_as(cookie, path).await;
    let status = response.status().as_u16();
    (status, response.text().await.expect("a page"))
}

/// The bar of round `number`, as its opening tag.
fn bar(round: i32, done: u32, partly: u32, not_yet: u32, released: u32) -> String {
    format!(
        r#"<g class="bar" data-round="{round}" data-done="{done}" data-partly="{partly}" data-not-yet="{not_yet}" data-released="{released}">"#
    )
}

on_both_backends! {
    async fn history_counts_each_rounds_reports_and_release_is_never_a_miss(app) {
        let id = weekly_circle(&app, "Night shift accomplices", &[("ada@example.org", "Ada"), ("bea@example.org", "Bea")]).await;
        let ada = app.sign_in("ada@example.org", "Ada").await;
        let bea = app.sign_in("bea@example.org", "Bea").await;
        let ada_membership = membership_of(&app, id, "ada@example.org").await;

        open_week(&app, 1).await;
        // Before anything is reported, the pages say so in words.
        let (status, circle_page) = page(&app, &ada, &format!("/circles/{id}/history")).await;
        assert_eq!(status, 200);
        assert!(circle_page.contains("No follow-through has been reported yet"), "{circle_page}");
        assert!(!circle_page.contains("<svg"));
        let three = app.post_form_as(&ada, &format!("/circles/{id}/rounds/1"), &[
            ("reflection", "Listening more."),
            ("commitment-1", "Ask before advising"),
            ("commitment-2", "Credit Sam's idea"),
            ("commitment-3", "Read the zine on mutual aid"),
        ]).await;
        assert_eq!(three.status().as_u16(), 303);
        check_in(&app, &bea, id, 1, "Show up to the tenants' meeting", &[]).await;

        open_week(&app, 2).await;
        check_in(&app, &ada, id, 2, "Offer a ride to the vigil", &[
            ("Ask before advising", "done", "Twice, & it changed the <conversation>"),
            ("Credit Sam's idea", "not_yet", ""),
            ("Read the zine on mutual aid", "released", "Not the right moment"),
        ]).await;
        check_in(&app, &bea, id, 2, "Call my representative", &[
            ("Show up to the tenants' meeting", "partly", ""),
        ]).await;

        open_week(&app, 3).await;
        check_in(&app, &ada, id, 3, "Listen at the next meeting", &[
            ("Credit Sam's idea", "done", ""),
            ("Offer a ride to the vigil", "partly", ""),
        ]).await;
        check_in(&app, &bea, id, 3, "Donate to the bail fund", &[
            ("Call my representative", "not_yet", ""),
        ]).await;

        // Ada's own page, as Ada sees it.
        let path = format!("/circles/{id}/members/{ada_membership}/history");
        let (status, mine) = page(&app, &ada, &path).await;
        assert_eq!(status, 200);
        assert!(mine.contains("Your follow-through"));
        assert!(!mine.contains(r#"data-round="1""#), "round 1 had nothing to report on: {mine}");
        assert!(mine.contains(&bar(2, 1, 0, 1, 1)), "{mine}");
        assert!(mine.contains(&bar(3, 1, 1, 0, 0)), "{mine}");
        // Each commitment once, by how it last stood: the one carried with
        // "not yet" and then done counts as done; the released one is left out.
        assert!(mine.contains("Followed through on 3 of 3 commitments reported (1 released, not counted)."), "{mine}");
        assert!(mine.contains(r#"role="img""#));
        assert!(mine.contains("<title>Round 2: 1 done, 0 partly, 1 not yet, 1 released</title>"));
        assert!(mine.contains(r#"<table class="sr-only">"#));
        assert!(mine.contains("Twice, &amp; it changed the &lt;conversation&gt;"), "notes are escaped");
        assert!(mine.contains("Made in round 1"));
        assert!(mine.contains("Listen at the next meeting"), "the newest, still waiting");

        // Bea sees Ada's page too, under Ada's name.
        let (status, hers) = page(&app, &bea, &path).await;
        assert_eq!(status, 200);
        assert!(hers.contains("Ada&#39;s follow-through") || hers.contains("Ada's follow-through"), "{hers}");

        // The circle's page: everyone's reports together, nobody ranked.
        let (status, circle_page) = page(&app, &bea, &format!("/circles/{id}/history")).await;
        assert_eq!(status, 200);
        assert!(circle_page.contains(&bar(2, 1, 1, 1, 1)), "{circle_page}");
        assert!(circle_page.contains(&bar(3, 1, 1, 1, 0)), "{circle_page}");
        assert!(circle_page.contains("Followed through on 4 of 5 commitments reported (1 released, not counted)."), "{circle_page}");
        assert!(!circle_page.contains("Ada"), "the circle's page names no member");

        // The circle page links to both.
        let (_, circle) = page(&app, &bea, &format!("/circles/{id}")).await;
        assert!(circle.contains(&format!(r#"href="/circles/{id}/history""#)));
        assert!(circle.contains(&format!(r#"href="{path}""#)), "a history link beside Ada");
        assert!(circle.contains("Your history"));
    }
}

on_both_backends! {
    async fn a_history_answers_only_to_members_of_its_circle(app) {
        let id = weekly_circle(&app, "Night shift accomplices", &[("ada@example.org", "Ada"), ("bea@example.org", "Bea")]).await;
        let other = weekly_circle(&app, "Day shift", &[("cy@example.org", "Cy")]).await;
        let ada = app.sign_in("ada@example.org", "Ada").await;
        let cy = app.sign_in("cy@example.org", "Cy").await;
        let eve = app.sign_in("eve@example.org", "Eve").await;
        let bea_membership = membership_of(&app, id, "bea@example.org").await;
        let cy_membership = membership_of(&app, other, "cy@example.org").await;
        open_week(&app, 1).await;

        let bea_page = format!("/circles/{id}/members/{bea_membership}/history");
        assert_eq!(page(&app, &ada, &bea_page).await.0, 200);
        for path in [format!("/circles/{id}/history"), bea_page.clone()] {
            assert_eq!(page(&app, &eve, &path).await.0, 404, "a stranger: {path}");
            assert_eq!(page(&app, &cy, &path).await.0, 404, "another circle's member: {path}");
        }
        // Another circle's membership, asked for under this circle, and
        // this circle's membership under the other one.
        assert_eq!(page(&app, &ada, &format!("/circles/{id}/members/{cy_membership}/history")).await.0, 404);
        assert_eq!(page(&app, &cy, &format!("/circles/{other}/members/{bea_membership}/history")).await.0, 404);
        assert_eq!(page(&app, &ada, &format!("/circles/{id}/members/nobody/history")).await.0, 404);
        assert_eq!(page(&app, &ada, "/circles/x/history").await.0, 404);

        // Signed out, the page asks to sign in first.
        let response = app.get(&format!("/circles/{id}/history")).await;
        assert_eq!(response.status().as_u16(), 303);
    }
}

on_both_backends! {
    async fn a_member_with_nothing_reported_sees_a_kind_sentence_not_an_empty_chart(app) {
        let id = weekly_circle(&app, "Night shift accomplices", &[("ada@example.org", "Ada"), ("bea@example.org", "Bea")]).await;
        let bea = app.sign_in("bea@example.org", "Bea").await;
        let bea_membership = membership_of(&app, id, "bea@example.org").await;
        open_week(&app, 1).await;
        check_in(&app, &bea, id, 1, "Show up to the tenants' meeting", &[]).await;
        let (status, mine) = page(&app, &bea, &format!("/circles/{id}/members/{bea_membership}/history")).await;
        assert_eq!(status, 200);
        assert!(mine.contains("Nothing reported yet."), "{mine}");
        assert!(!mine.contains("<svg"));
        assert!(mine.contains("Show up to the tenants"), "the commitment is listed, waiting");
        assert!(mine.contains("waiting for a report"));
    }
}
