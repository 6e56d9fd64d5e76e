//! The facilitator's circle health page: commitments carried a while,
//! members nobody has encouraged lately, and email that did not arrive.

use crate::history::{check_in, commitment_id, membership_of};
use crate::on_both_backends;
use crate::support::{TestApp, open_week, weekly_circle};

async fn page(app: &TestApp, cookie: &str, path: &str) -> (u16, String) {
    let response = app.get_as(cookie, path).await;
    let status = response.status().as_u16();
    (status, response.text().await.expect("a page"))
}

/// The `<section>` of the page with this class, so a name is looked for in
/// the right list.
fn section<'a>(page: &'a str, class: &str) -> &'a str {
    let start = page
        .find(&format!(r#"<section class="{class}">"#))
        .unwrap_or_else(|| panic!("a {class} section in {page}"));
    let rest = &page[start..];
    &rest[..rest.find("</section>").expect("the section ends")]
}

const PEOPLE: [(&str, &str); 3] = [
    ("ada@example.org", "Ada"),
    ("bea@example.org", "Bea"),
    ("cy@example.org", "Cy"),
];

on_both_backends! {
    async fn a_commitment_carried_three_rounds_shows_and_only_facilitators_see_it(app) {
        let id = weekly_circle(&app, "Night shift accomplices", &PEOPLE).await;
        let ada = app.sign_in("ada@example.org", "Ada").await;
        let bea = app.sign_in("bea@example.org", "Bea").await;
        let eve = app.sign_in("eve@example.org", "Eve").await;
        let health = format!("/circles/{id}/health");

        let (status, before) = page(&app, &ada, &health).await;
        assert_eq!(status, 200);
        assert!(before.contains("Once the first rounds have run"), "{before}");

        open_week(&app, 1).await;
        check_in(&app, &bea, id, 1, "Ask my manager about pay equity", &[]).await;
        check_in(&app, &ada, id, 1, "Share the reading list", &[]).await;
        for round in 2..=3 {
            open_week(&app, round).await;
            check_in(&app, &bea, id, round, &format!("Small step {round}"), &[
                ("Ask my manager about pay equity", "not_yet", "Waiting for the right moment"),
            ]).await;
        }
        let (_, at_three) = page(&app, &ada, &health).await;
        let carried = section(&at_three, "carried");
        assert!(!carried.contains("pay equity"), "two rounds carried is not yet three: {carried}");
        assert!(carried.contains("Nothing has been carried that long."));

        open_week(&app, 4).await;
        check_in(&app, &bea, id, 4, "Small step 4", &[
            ("Ask my manager about pay equity", "not_yet", ""),
        ]).await;
        let (status, at_four) = page(&app, &ada, &health).await;
        assert_eq!(status, 200);
        let carried = section(&at_four, "carried");
        assert!(carried.contains("Bea"), "{carried}");
        assert!(carried.contains("Ask my manager about pay equity"));
        assert!(carried.contains("Made in round 1, carried for 3 rounds."), "{carried}");
        // Ada's, never reported on, is open just as long.
        assert!(carried.contains("Share the reading list"), "{carried}");
        assert!(!carried.contains("Small step 2"), "made in round 2: carried two rounds");
        assert!(section(&at_four, "failures").contains("failed to arrive"), "no failures: {at_four}");

        // Not for members, not for strangers.
        assert_eq!(page(&app, &bea, &health).await.0, 404);
        assert_eq!(page(&app, &eve, &health).await.0, 404);
        assert_eq!(page(&app, &ada, "/circles/nope/health").await.0, 404);

        // The facilitator finds it from the circle page; members do not.
        let (_, circle) = page(&app, &ada, &format!("/circles/{id}")).await;
        assert!(circle.contains(&format!(r#"href="{health}""#)));
        let (_, circle) = page(&app, &bea, &format!("/circles/{id}")).await;
        assert!(!circle.contains(&format!(r#"href="{health}""#)));
    }
}

on_both_backends! {
    async fn a_member_who_receives_support_leaves_the_might_welcome_a_word_list(app) {
        let id = weekly_circle(&app, "Night shift accomplices", &PEOPLE).await;
        let ada = app.sign_in("ada@example.org", "Ada").await;
        let bea = app.sign_in("bea@example.org", "Bea").await;
        let cy = app.sign_in("cy@example.org", "Cy").await;
        let health = format!("/circles/{id}/health");
        open_week(&app, 1).await;
        check_in(&app, &bea, id, 1, "Ask my manager about pay equity", &[]).await;
        check_in(&app, &cy, id, 1, "Read the zine on mutual aid", &[]).await;
        open_week(&app, 2).await;

        let (_, before) = page(&app, &ada, &health).await;
        let quiet = section(&before, "quiet");
        for name in ["Ada", "Bea", "Cy"] {
            assert!(quiet.contains(name), "{name} has heard from nobody yet: {quiet}");
        }

        // Cy writes to Bea; Bea's note on her own commitment is not support.
        let bea_commitment = commitment_id(&app, "Ask my manager about pay equity").await;
        let response = app.post_form_as(&cy, &format!("/circles/{id}/rounds/2/support"), &[
            ("commitment", &bea_commitment),
            ("body", "You've got this, and I'm glad to rehearse it with you."),
        ]).await;
        assert_eq!(response.status().as_u16(), 303, "support offered");

        let (_, after) = page(&app, &ada, &health).await;
        let quiet = section(&after, "quiet");
        let bea_membership = membership_of(&app, id, "bea@example.org").await;
        let cy_membership = membership_of(&app, id, "cy@example.org").await;
        assert!(!quiet.contains(&format!(r#"data-membership="{bea_membership}""#)), "Bea was encouraged: {quiet}");
        assert!(quiet.contains(&format!(r#"data-membership="{cy_membership}""#)), "nobody has written to Cy: {quiet}");
        assert!(quiet.contains("might welcome a word"));

        // Three rounds on, that word is no longer recent.
        for round in 3..=5 {
            open_week(&app, round).await;
        }
        let (_, later) = page(&app, &ada, &health).await;
        assert!(section(&later, "quiet").contains(&format!(r#"data-membership="{bea_membership}""#)));
    }
}

on_both_backends! {
    /// "Not heard from" names the members with no check-in, no skip and no
    /// days away in the last two closed rounds, and nobody before two
    /// rounds have closed.
    async fn members_not_heard_from_in_two_rounds_are_named(app) {
        use crate::support::utc;
        let id = weekly_circle(&app, "Night shift", &PEOPLE).await;
        let ada = app.sign_in(PEOPLE[0].0, PEOPLE[0].1).await;
        let bea = app.sign_in(PEOPLE[1].0, PEOPLE[1].1).await;
        let cy = app.sign_in(PEOPLE[2].0, PEOPLE[2].1).await;
        let health = format!("/circles/{id}/health");
        open_week(&app, 1).await;
        let saved = app.post_form_as(&bea, &format!("/circles/{id}/rounds/1"), &[("reflection", "Busy but here.")]).await;
        assert_eq!(saved.status().as_u16(), 303);
        app.clock.set(utc("2027-03-03T09:00:00Z"));
        app.run_jobs().await;
        let (_, one_closed) = page(&app, &ada, &health).await;
        assert!(section(&one_closed, "unheard").contains("Everyone has been heard from lately."));

        open_week(&app, 2).await;
        let away = app.post_form_as(&cy, &format!("/circles/{id}/rounds/2/away"), &[("starts", "2027-03-08"), ("ends", "2027-03-09")]).await;
        assert!(away.status().as_u16() < 400, "away saved: {}", away.status());
        app.clock.set(utc("2027-03-10T09:00:00Z"));
        app.run_jobs().await;
        let (status, two_closed) = page(&app, &ada, &health).await;
        assert_eq!(status, 200);
        let unheard = section(&two_closed, "unheard");
        assert!(unheard.contains("<li>Ada</li>"), "{unheard}");
        assert!(!unheard.contains("Bea") && !unheard.contains("Cy"), "{unheard}");
    }
}
