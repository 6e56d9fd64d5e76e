//! Shouldering each other up: round links, one-click follow-through from
//! the email, pairs, help and support, skipping and away dates, and what
//! the emails say about all of it. Emails are read from the real SMTP
//! server; every link is followed over HTTP.

use std::collections::{BTreeMap, BTreeSet};

use diesel::prelude::*;
use shoulder::db::DbError;
use shoulder::db::schema::{
    action_tokens, check_ins, commitments, follow_throughs, memberships, pairings, people,
    round_skips, rounds, support_messages,
};

use crate::on_both_backends;
use crate::support::{ReceivedEmail, TestApp, open_week, utc, weekly_circle};

const PEOPLE: [(&str, &str); 3] = [
    ("ada@example.org", "Ada"),
    ("bea@example.org", "Bea"),
    ("cy@example.org", "Cy"),
];

/// A weekly circle of `people` (the first facilitates) with round 1 open
/// on 1 March 2027.
pub async fn circle_of(app: &TestApp, people: &[(&str, &str)]) -> i64 {
    let id = weekly_circle(app, "Night shift accomplices", people).await;
    assert_eq!(open_week(app, 1).await.rounds.opened, [(id, 1)]);
    id
}

/// The latest email to `to` whose subject contains `subject`.
pub fn latest(app: &TestApp, to: &str, subject: &str) -> ReceivedEmail {
    app.emails()
        .into_iter()
        .rev()
        .find(|m| m.to.iter().any(|t| t == to) && m.subject().is_some_and(|s| s.contains(subject)))
        .unwrap_or_else(|| panic!("no email to {to} about {subject:?}"))
}

fn count_to(app: &TestApp, to: &str, subject: &str) -> usize {
    app.emails()
        .iter()
        .filter(|m| {
            m.to.iter().any(|t| t == to) && m.subject().is_some_and(|s| s.contains(subject))
        })
        .count()
}

/// The path (and query) of the round link in an email's text.
pub fn round_link(app: &TestApp, body: &str, circle_id: i64, number: i32) -> String {
    crate::support::link_path(
        body,
        app.public_base(),
        &format!("/circles/{circle_id}/rounds/{number}?key="),
    )
}

/// The `key` in a round link's path.
fn key_of(link: &str) -> String {
    link.split("key=").nth(1).expect("a key").to_string()
}

/// The one-click link labelled `label` under the commitment `body` in a
/// check-in email's text.
pub fn choice_link(app: &TestApp, text: &str, commitment: &str, label: &str) -> String {
    let mut lines = text.lines().skip_while(|l| !l.contains(commitment));
    lines
        .next()
        .unwrap_or_else(|| panic!("{commitment:?} not in:\n{text}"));
    let line = lines
        .take(4)
        .find(|l| l.trim_start().starts_with(&format!("{label}:")))
        .unwrap_or_else(|| panic!("no {label} link under {commitment:?} in:\n{text}"));
    crate::support::link_path(line, app.public_base(), "/act/")
}

pub async fn query<T: Send + 'static>(
    app: &TestApp,
    read: impl FnOnce(&mut shoulder::db::DbConnection) -> QueryResult<T> + Send + 'static,
) -> T {
    app.state
        .db
        .run(move |conn| read(conn).map_err(DbError::from))
        .await
        .expect("query")
}

pub async fn body_of(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

/// Makes an emailed one-click choice as a browser does: the POST answers
/// with a redirect to the link itself, whose page then says what was
/// recorded. A refused choice comes back as the POST's own status and page.
pub async fn choose(app: &TestApp, path: &str, fields: &[(&str, &str)]) -> (u16, String) {
    let response = app.post_form(path, fields).await;
    if response.status().as_u16() != 303 {
        return body_of(response).await;
    }
    assert_eq!(
        response.headers()["location"],
        path,
        "back to the link itself"
    );
    body_of(app.get(path).await).await
}

on_both_backends! {
    async fn a_round_link_checks_in_without_signing_in_for_that_round_only(app) {
        let id = circle_of(&app, &PEOPLE).await;
        let ada_mail = latest(&app, "ada@example.org", "round 1").text_body();
        let ada_link = round_link(&app, &ada_mail, id, 1);
        let ada_key = key_of(&ada_link);

        // No cookie: the link alone opens Ada's round page.
        let (status, page) = body_of(app.get(&ada_link).await).await;
        assert_eq!(status, 200);
        assert!(page.contains("Checking in as <strong>Ada</strong>"), "{page}");
        let response = app.post_form(&format!("/circles/{id}/rounds/1"), &[
            ("key", &ada_key),
            ("reflection", "I waited to be asked."),
            ("commitment-1", "Ask Sam what support looks like for them"),
            ("commitment-2", "Read the statement before the meeting"),
        ]).await;
        assert_eq!(response.status().as_u16(), 303);
        let location = response.headers()["location"].to_str().expect("ascii").to_string();
        assert!(location.contains(&format!("key={ada_key}")), "stays on the link: {location}");
        let saved = query(&app, |conn| {
            commitments::table.order(commitments::id.asc()).select(commitments::body).load::<String>(conn)
        }).await;
        assert_eq!(saved, ["Ask Sam what support looks like for them", "Read the statement before the meeting"]);

        // The link is not a session: other pages still ask to sign in.
        let circle_page = app.get(&format!("/circles/{id}")).await;
        assert_eq!(circle_page.status().as_u16(), 303);
        assert!(circle_page.headers()["location"].to_str().expect("ascii").starts_with("/sign-in"));

        // Someone signed in as Bea who opens Ada's link is refused.
        let bea = app.sign_in("bea@example.org", "Bea").await;
        let (status, page) = body_of(app.get_as(&bea, &ada_link).await).await;
        assert_eq!(status, 403);
        assert!(page.contains("sent to another member"));
        let response = app.post_form_as(&bea, &format!("/circles/{id}/rounds/1"), &[
            ("key", &ada_key), ("commitment-1", "Speak for Ada"),
        ]).await;
        assert_eq!(response.status().as_u16(), 403);

        // A made-up key, and a real key on another round's page.
        let (status, page) = body_of(app.get(&format!("/circles/{id}/rounds/1?key={}", "0".repeat(32))).await).await;
        assert_eq!(status, 404);
        assert!(page.contains("round link does not work"));
        app.clock.set(utc("2027-03-08T09:00:00Z"));
        app.run_jobs().await;
        let (status, page) = body_of(app.get(&format!("/circles/{id}/rounds/2?key={ada_key}")).await).await;
        assert_eq!(status, 404);
        assert!(page.contains("for a different round"));

        // Round 1 closed on 3 March: its link now says so and saves nothing.
        let (status, page) = body_of(app.get(&ada_link).await).await;
        assert_eq!(status, 410);
        assert!(page.contains("This round has closed"));
        let response = app.post_form(&format!("/circles/{id}/rounds/1"), &[
            ("key", &ada_key), ("reflection", "Late"), ("commitment-1", "Something else"),
        ]).await;
        assert_eq!(response.status().as_u16(), 410);
        let reflections = query(&app, |conn| check_ins::table.select(check_ins::reflection).load::<String>(conn)).await;
        assert_eq!(reflections, ["I waited to be asked."]);

        // Signed in, the same old link still shows the round, for a late
        // check-in through the session.
        let ada = app.sign_in("ada@example.org", "Ada").await;
        let (status, page) = body_of(app.get_as(&ada, &ada_link).await).await;
        assert_eq!(status, 200);
        assert!(page.contains("The round has closed") && !page.contains("Checking in as"), "{page}");
    }
}

on_both_backends! {
    async fn follow_through_from_the_email_is_confirmed_on_a_page_and_works_once(app) {
        let id = circle_of(&app, &PEOPLE).await;
        let ada = app.sign_in("ada@example.org", "Ada").await;
        let response = app.post_form_as(&ada, &format!("/circles/{id}/rounds/1"), &[
            ("commitment-1", "Ask Sam what support looks like"),
            ("commitment-2", "Credit Lee in the newsletter"),
        ]).await;
        assert_eq!(response.status().as_u16(), 303);
        app.clock.set(utc("2027-03-08T09:00:00Z"));
        app.run_jobs().await;
        let mail = latest(&app, "ada@example.org", "round 2");
        let text = mail.text_body();
        assert!(text.contains("How did your earlier commitments go?"), "{text}");
        let done = choice_link(&app, &text, "Ask Sam what support looks like", "Done");
        let release = choice_link(&app, &text, "Credit Lee in the newsletter", "Release");
        let html = mail.html_body().expect("html");
        // The HTML writes the path's slashes as `&#x2f;`.
        let escaped = done.replace('/', "&#x2f;");
        assert!(html.contains(&escaped), "the HTML has the same links");

        // Opening the link (as a mail scanner would) changes nothing.
        let (status, page) = body_of(app.get(&done).await).await;
        assert_eq!(status, 200);
        assert!(page.contains("Mark as Done?") && page.contains("Ask Sam what support looks like"));
        let recorded = query(&app, |conn| follow_throughs::table.count().get_result::<i64>(conn)).await;
        assert_eq!(recorded, 0);

        let (status, page) = choose(&app, &done, &[]).await;
        assert_eq!(status, 200);
        assert!(page.contains("Marked Done"));
        // It says what is still open, and leads to the round page by the
        // email's own key.
        let round_page = round_link(&app, &text, id, 2);
        assert!(
            page.contains("Still open in this round")
                && page.contains("How it went: Credit Lee in the newsletter")
                && page.contains("Your reflection and what you will do next")
                && !page.contains("How it went: Ask Sam"),
            "{page}"
        );
        assert!(page.contains(&format!(r#"href="{}{round_page}""#, app.public_base())), "{page}");
        let (status, _) = body_of(app.get(&round_page).await).await;
        assert_eq!(status, 200, "the round page opens without signing in");
        // Reloading the page the choice led to records nothing more and
        // still says what it recorded; pressing again is refused.
        let (status, again) = body_of(app.get(&done).await).await;
        assert_eq!(status, 200);
        assert!(again.contains("Marked Done") && again.contains("Still open in this round"), "{again}");
        let (status, page) = body_of(app.post_form(&done, &[]).await).await;
        assert_eq!(status, 409, "a choice link works once");
        assert!(page.contains("already been used"));
        let (status, page) = choose(&app, &release, &[]).await;
        assert_eq!(status, 200);
        assert!(page.contains("Your reflection and what you will do next") && !page.contains("How it went:"), "{page}");

        let outcomes = query(&app, |conn| {
            commitments::table
                .order(commitments::id.asc())
                .select((commitments::body, commitments::status))
                .load::<(String, String)>(conn)
        }).await;
        assert_eq!(outcomes, [
            ("Ask Sam what support looks like".to_string(), "done".to_string()),
            ("Credit Lee in the newsletter".to_string(), "released".to_string()),
        ]);
        // The round page shows what the email recorded.
        let page = app.get_as(&ada, &format!("/circles/{id}/rounds/2")).await.text().await.expect("page");
        assert!(page.contains(r#"value="done" checked"#), "{page}");

        // After the round closes, unused choice links say so.
        let not_yet = choice_link(&app, &text, "Credit Lee in the newsletter", "Not yet");
        app.clock.set(utc("2027-03-10T09:00:00Z"));
        app.run_jobs().await;
        let (status, page) = body_of(app.post_form(&not_yet, &[]).await).await;
        assert_eq!(status, 410);
        assert!(page.contains("This round has closed"));
        let (status, _) = body_of(app.get(&format!("/act/{}", "a".repeat(32))).await).await;
        assert_eq!(status, 404);
    }
}

on_both_backends! {
    async fn pairs_rotate_and_leave_out_away_members(app) {
        let five: [(&'static str, &'static str); 5] = [
            ("ada@example.org", "Ada"), ("bea@example.org", "Bea"), ("cy@example.org", "Cy"),
            ("dee@example.org", "Dee"), ("eli@example.org", "Eli"),
        ];
        let id = circle_of(&app, &five).await;
        for week in 1..8 {
            app.clock.set(utc("2027-03-01T09:00:00Z") + chrono::Duration::weeks(week));
            app.run_jobs().await;
        }
        let pairs = query(&app, move |conn| {
            pairings::table
                .inner_join(rounds::table)
                .filter(rounds::circle_id.eq(id))
                .order((rounds::number.asc(), pairings::giver_membership_id.asc()))
                .select((rounds::number, pairings::giver_membership_id, pairings::receiver_membership_id))
                .load::<(i32, i64, i64)>(conn)
        }).await;
        let mut by_round: BTreeMap<i32, Vec<(i64, i64)>> = BTreeMap::new();
        let mut met: BTreeMap<i64, BTreeSet<i64>> = BTreeMap::new();
        for (number, giver, receiver) in pairs {
            assert_ne!(giver, receiver, "nobody is paired with themselves");
            by_round.entry(number).or_default().push((giver, receiver));
            met.entry(giver).or_default().insert(receiver);
        }
        assert_eq!(by_round.len(), 8);
        for (number, pairs) in &by_round {
            let givers: BTreeSet<i64> = pairs.iter().map(|p| p.0).collect();
            let receivers: BTreeSet<i64> = pairs.iter().map(|p| p.1).collect();
            assert_eq!((givers.len(), receivers.len()), (5, 5), "round {number}: everyone gives and receives");
        }
        assert!(met.values().all(|peers| peers.len() == 4), "over the rounds everyone encourages everyone: {met:?}");

        // The pair is in the email and on the page.
        let ada_mail = latest(&app, "ada@example.org", "round 8").text_body();
        let partner = ada_mail
            .lines()
            .find_map(|l| l.strip_prefix("Shoulder up ").and_then(|r| r.split(' ').next()))
            .expect("a partner line")
            .to_string();
        assert!(["Bea", "Cy", "Dee", "Eli"].contains(&partner.as_str()), "{partner}");
        let ada = app.sign_in("ada@example.org", "Ada").await;
        let page = app.get_as(&ada, &format!("/circles/{id}/rounds/8")).await.text().await.expect("page");
        assert!(page.contains(&format!("Shoulder up {partner}")));

        // Eli goes away over round 9: no check-in email, no pair, and the
        // digest says so.
        let eli = app.sign_in("eli@example.org", "Eli").await;
        let response = app.post_form_as(&eli, &format!("/circles/{id}/rounds/8/away"), &[
            ("starts", "2027-04-25"), ("ends", "2027-04-27"),
        ]).await;
        assert_eq!(response.status().as_u16(), 303);
        let before = count_to(&app, "eli@example.org", "round 9");
        app.clock.set(utc("2027-04-26T09:00:00Z"));
        app.run_jobs().await;
        assert_eq!(count_to(&app, "eli@example.org", "round 9"), before, "no check-in while away");
        let round9 = query(&app, move |conn| {
            pairings::table
                .inner_join(rounds::table)
                .filter(rounds::circle_id.eq(id))
                .filter(rounds::number.eq(9))
                .select((pairings::giver_membership_id, pairings::receiver_membership_id))
                .load::<(i64, i64)>(conn)
        }).await;
        assert_eq!(round9.len(), 4, "four in the rotation while Eli is away");
        app.clock.set(utc("2027-04-28T09:00:00Z"));
        app.run_jobs().await;
        let digest = latest(&app, "ada@example.org", "how round 9 went").text_body();
        assert!(digest.contains("Eli: away"), "{digest}");
        assert!(digest.contains("Away this round: Eli."), "{digest}");
    }
}

on_both_backends! {
    async fn help_and_support_show_in_the_next_email_and_the_digest(app) {
        let id = circle_of(&app, &PEOPLE).await;
        let round1 = format!("/circles/{id}/rounds/1");
        let ada = app.sign_in("ada@example.org", "Ada").await;
        let bea = app.sign_in("bea@example.org", "Bea").await;
        app.post_form_as(&ada, &round1, &[("commitment-1", "Ask Sam what support looks like")]).await;
        app.post_form_as(&bea, &round1, &[("commitment-1", "Bring the zine to the meeting")]).await;
        let ids = query(&app, |conn| commitments::table.order(commitments::id.asc()).select(commitments::id).load::<i64>(conn)).await;
        let adas = ids[0].to_string();

        // Ada asks for help on her own; Bea cannot flag Ada's.
        let response = app.post_form_as(&ada, &format!("{round1}/help"), &[("commitment", &adas), ("wanted", "yes")]).await;
        assert_eq!(response.status().as_u16(), 303);
        let (status, page) = body_of(app.post_form_as(&bea, &format!("{round1}/help"), &[("commitment", &adas), ("wanted", "no")]).await).await;
        assert_eq!(status, 422);
        assert!(page.contains("only on your own commitments"));

        // Support: on a peer's, yes; on one's own, empty, or too long, no,
        // and the typed words come back.
        let support = format!("{round1}/support");
        let (status, page) = body_of(app.post_form_as(&ada, &support, &[("commitment", &adas), ("body", "Go me")]).await).await;
        assert_eq!(status, 422);
        assert!(page.contains("Support is for a peer"));
        let long = "x".repeat(501);
        let (status, page) = body_of(app.post_form_as(&bea, &support, &[("commitment", &adas), ("body", &long)]).await).await;
        assert_eq!(status, 422);
        assert!(page.contains("limited to 500 characters") && page.contains(&long));
        let (status, _) = body_of(app.post_form_as(&bea, &support, &[("commitment", &adas), ("body", "  ")]).await).await;
        assert_eq!(status, 422);
        let (status, page) = body_of(app.post_form_as(&bea, &support, &[("commitment", "999999"), ("body", "Hi")]).await).await;
        assert_eq!(status, 422);
        assert!(page.contains("not one in this circle"));
        let response = app.post_form_as(&bea, &support, &[("commitment", &adas), ("body", "I can come with you to ask Sam.")]).await;
        assert_eq!(response.status().as_u16(), 303);
        let stored = query(&app, |conn| support_messages::table.select(support_messages::body).load::<String>(conn)).await;
        assert_eq!(stored, ["I can come with you to ask Sam."], "only the good one was kept");
        let page = app.get_as(&ada, &round1).await.text().await.expect("page");
        assert!(page.contains("I can come with you to ask Sam.") && page.contains(r#"<span class="help">Could use help</span>"#));
        assert!(!page.contains("Asking for help"), "one's own request is not gathered for oneself");
        // Peers find the request gathered near the top, before the check-in
        // form, with a way to the support form further down.
        let cy = app.sign_in("cy@example.org", "Cy").await;
        let page = app.get_as(&cy, &round1).await.text().await.expect("page");
        let asking = page.find("Asking for help").unwrap_or_else(|| panic!("gathered in {page}"));
        assert!(asking < page.find("Your check-in").expect("the form"), "{page}");
        assert!(page.contains(&format!(r##"href="#support-{adas}-body">Offer Ada a hand"##)), "{page}");

        // No extra emails: it all waits for the digest and the next check-in.
        let before = app.emails().len();
        app.run_jobs().await;
        assert_eq!(app.emails().len(), before);

        // Bea reports on nothing yet; Ada reports Partly with a note in round 2.
        app.clock.set(utc("2027-03-03T09:00:00Z"));
        app.run_jobs().await;
        let digest = latest(&app, "cy@example.org", "how round 1 went").text_body();
        assert!(digest.contains("Ada: checked in") && digest.contains("Will: Ask Sam what support looks like"), "{digest}");
        assert!(digest.contains("Could use help with: Ask Sam what support looks like"), "{digest}");
        let gathered = digest.find("Asking for help:\n  * Ada: Ask Sam what support looks like");
        assert!(gathered.is_some_and(|at| at < digest.find("Where each of us stands").expect("the list")), "{digest}");
        assert!(digest.contains("Bea to Ada, on \"Ask Sam what support looks like\": I can come with you to ask Sam."), "{digest}");
        assert!(digest.contains("Cy: no check-in this round"), "{digest}");

        app.clock.set(utc("2027-03-08T09:00:00Z"));
        app.run_jobs().await;
        let ada_mail = latest(&app, "ada@example.org", "round 2").text_body();
        assert!(ada_mail.contains("Support you received since last round:"), "{ada_mail}");
        assert!(ada_mail.contains("Bea on \"Ask Sam what support looks like\": I can come with you to ask Sam."));
        let cy_mail = latest(&app, "cy@example.org", "round 2").text_body();
        assert!(cy_mail.contains("Asking the circle for help:\n  * Ada: Ask Sam what support looks like"), "{cy_mail}");
        let response = app.post_form_as(&ada, &format!("/circles/{id}/rounds/2"), &[
            ("commitment-1", "Ask Sam again, with Bea"),
            (&format!("outcome-{adas}"), "partly"),
            (&format!("note-{adas}"), "We talked; not finished"),
        ]).await;
        assert_eq!(response.status().as_u16(), 303);
        app.clock.set(utc("2027-03-10T09:00:00Z"));
        app.run_jobs().await;
        let digest = latest(&app, "bea@example.org", "how round 2 went").text_body();
        assert!(digest.contains("Partly: Ask Sam what support looks like (We talked; not finished)"), "{digest}");
    }
}

on_both_backends! {
    async fn skipping_from_the_email_stops_the_reminder_and_away_dates_are_checked(app) {
        let id = circle_of(&app, &PEOPLE).await;
        let text = latest(&app, "cy@example.org", "round 1").text_body();
        let skip = crate::support::link_path(
            text.lines().find(|l| l.contains("Skip this round")).expect("a skip line"),
            app.public_base(),
            "/act/",
        );
        let (status, page) = body_of(app.get(&skip).await).await;
        assert_eq!(status, 200);
        assert!(page.contains("Skip this round?"));
        let skips = query(&app, |conn| round_skips::table.count().get_result::<i64>(conn)).await;
        assert_eq!(skips, 0, "opening the link changes nothing");
        let (status, page) = choose(&app, &skip, &[]).await;
        assert_eq!(status, 200);
        assert!(page.contains("You are skipping this round"), "{page}");
        assert_eq!(app.post_form(&skip, &[]).await.status().as_u16(), 409);

        // The reminder (24 hours before close) goes to Ada and Bea only.
        app.clock.set(utc("2027-03-02T09:00:00Z"));
        assert_eq!(app.run_jobs().await.rounds.reminded, 1);
        assert_eq!(count_to(&app, "cy@example.org", "closes"), 0);
        assert_eq!(count_to(&app, "ada@example.org", "closes"), 1);

        // Away dates from the email's link: bad dates are refused with the
        // dates kept, good ones saved once.
        let away = crate::support::link_path(
            text.lines().find(|l| l.contains("Set your away dates")).expect("an away line"),
            app.public_base(),
            "/act/",
        );
        let (status, page) = body_of(app.post_form(&away, &[("starts", "2027-03-20"), ("ends", "2027-03-12")]).await).await;
        assert_eq!(status, 422);
        assert!(page.contains("comes before the first") && page.contains(r#"value="2027-03-20""#));
        // Summed up at the top, which takes focus, and tied to its field.
        assert!(page.contains(r#"id="problems" tabindex="-1" autofocus"#), "{page}");
        assert!(page.contains(r##"<a href="#away-ends">"##), "{page}");
        assert!(page.contains(r#"aria-invalid="true" aria-describedby="away-ends-error""#), "{page}");
        let (status, page) = choose(&app, &away, &[("starts", "2027-03-14"), ("ends", "2027-03-20")]).await;
        assert_eq!(status, 200);
        assert!(page.contains("Away dates saved") && page.contains("From 14 March 2027 to 20 March 2027"), "{page}");

        app.clock.set(utc("2027-03-03T09:00:00Z"));
        app.run_jobs().await;
        let digest = latest(&app, "ada@example.org", "how round 1 went").text_body();
        assert!(digest.contains("Cy: away"), "{digest}");

        // Round 2 on 8 March reaches Cy; round 3 on 15 March does not.
        app.clock.set(utc("2027-03-08T09:00:00Z"));
        app.run_jobs().await;
        assert_eq!(count_to(&app, "cy@example.org", "round 2"), 1);
        app.clock.set(utc("2027-03-15T09:00:00Z"));
        app.run_jobs().await;
        assert_eq!(count_to(&app, "cy@example.org", "round 3"), 0);
        assert_eq!(count_to(&app, "bea@example.org", "round 3"), 1);

        // On the page: bad dates refused, an away period listed and removed.
        let cy = app.sign_in("cy@example.org", "Cy").await;
        let round3 = format!("/circles/{id}/rounds/3");
        let (status, page) = body_of(app.post_form_as(&cy, &format!("{round3}/away"), &[("starts", "soon"), ("ends", "2027-03-01")]).await).await;
        assert_eq!(status, 422);
        assert!(page.contains("Give the first day away as a date"));
        let page = app.get_as(&cy, &round3).await.text().await.expect("page");
        assert!(page.contains("14 March 2027 to 20 March 2027"), "{page}");
        let bea = app.sign_in("bea@example.org", "Bea").await;
        let away_id = query(&app, |conn| {
            shoulder::db::schema::away_periods::table
                .select(shoulder::db::schema::away_periods::id)
                .first::<i64>(conn)
        }).await;
        let (status, _) = body_of(app.post_form_as(&bea, &format!("{round3}/away"), &[("cancel", &away_id.to_string())]).await).await;
        assert_eq!(status, 422, "Bea cannot remove Cy's away dates");
        let response = app.post_form_as(&cy, &format!("{round3}/away"), &[("cancel", &away_id.to_string())]).await;
        assert_eq!(response.status().as_u16(), 303);
        let left = query(&app, |conn| shoulder::db::schema::away_periods::table.count().get_result::<i64>(conn)).await;
        assert_eq!(left, 0);
    }
}

on_both_backends! {
    async fn the_check_in_email_names_the_pair_and_the_reminder_what_is_open(app) {
        let id = circle_of(&app, &PEOPLE[..2]).await;
        let bea = app.sign_in("bea@example.org", "Bea").await;
        app.post_form_as(&bea, &format!("/circles/{id}/rounds/1"), &[("commitment-1", "Bring the zine to the meeting")]).await;
        app.clock.set(utc("2027-03-08T09:00:00Z"));
        app.run_jobs().await;
        let mail = latest(&app, "ada@example.org", "round 2");
        let text = mail.text_body();
        assert!(text.contains("Shoulder up Bea this round"), "{text}");
        assert!(text.contains("  * Bring the zine to the meeting"), "{text}");
        assert!(mail.html_body().expect("html").contains("Shoulder up Bea"));
        // Bea's reminder lists her commitment still to report on.
        app.clock.set(utc("2027-03-09T09:00:00Z"));
        app.run_jobs().await;
        let reminder = latest(&app, "bea@example.org", "closes").text_body();
        assert!(reminder.contains("Still open from earlier rounds:\n  1. Bring the zine to the meeting (round 1)"), "{reminder}");
        let link = round_link(&app, &reminder, id, 2);
        assert_eq!(app.get(&link).await.status().as_u16(), 200, "the reminder's own round link works");
    }
}

on_both_backends! {
    async fn a_fourth_commitment_is_refused_with_everything_kept_and_nothing_saved(app) {
        let id = circle_of(&app, &PEOPLE).await;
        let ada_mail = latest(&app, "ada@example.org", "round 1").text_body();
        let key = key_of(&round_link(&app, &ada_mail, id, 1));
        let (status, page) = body_of(app.post_form(&format!("/circles/{id}/rounds/1"), &[
            ("key", &key),
            ("reflection", "Too much at once."),
            ("commitment-1", "One"),
            ("commitment-2", "Two"),
            ("commitment-3", "Three"),
            ("commitment-4", "Four"),
        ]).await).await;
        assert_eq!(status, 422);
        assert!(page.contains("at most 3 commitments"), "{page}");
        assert!(page.contains(r#"value="Three""#) && page.contains("Too much at once."));
        let saved = query(&app, |conn| commitments::table.count().get_result::<i64>(conn)).await;
        let checked = query(&app, |conn| check_ins::table.count().get_result::<i64>(conn)).await;
        assert_eq!((saved, checked), (0, 0));
    }
}

on_both_backends! {
    async fn a_round_found_already_past_its_close_gets_a_digest_and_no_late_reminder(app) {
        circle_of(&app, &PEOPLE).await;
        // The scheduler was away from before the reminder until after the close.
        app.clock.set(utc("2027-03-03T10:00:00Z"));
        let report = app.run_jobs().await;
        assert_eq!((report.rounds.reminded, report.rounds.closed), (0, 1));
        assert_eq!(count_to(&app, "ada@example.org", "closes"), 0);
        assert_eq!(count_to(&app, "ada@example.org", "how round 1 went"), 1);
    }
}

on_both_backends! {
    async fn a_choice_link_for_a_commitment_settled_since_in_an_earlier_round_is_refused(app) {
        let id = circle_of(&app, &PEOPLE[..2]).await;
        let ada = app.sign_in("ada@example.org", "Ada").await;
        app.post_form_as(&ada, &format!("/circles/{id}/rounds/1"), &[("commitment-1", "Ask Sam what support looks like")]).await;
        open_week(&app, 2).await;
        open_week(&app, 3).await;
        let text = latest(&app, "ada@example.org", "round 3").text_body();
        let done = choice_link(&app, &text, "Ask Sam what support looks like", "Done");
        // A late check-in for the closed round 2 reports it there first.
        let commitment = query(&app, |conn| commitments::table.select(commitments::id).first::<i64>(conn)).await;
        let response = app.post_form_as(&ada, &format!("/circles/{id}/rounds/2"), &[
            ("commitment-1", "Ask again in a month"),
            (&format!("outcome-{commitment}"), "released"),
        ]).await;
        assert_eq!(response.status().as_u16(), 303);

        let (status, page) = body_of(app.get(&done).await).await;
        assert_eq!(status, 409);
        assert!(page.contains("already settled"), "{page}");
        let (status, _) = body_of(app.post_form(&done, &[]).await).await;
        assert_eq!(status, 409);
        let outcome = query(&app, |conn| commitments::table.order(commitments::id.asc()).select(commitments::status).first::<String>(conn)).await;
        assert_eq!(outcome, "released", "the link changed nothing");

        // Malformed links are refused the same way as unknown ones.
        assert_eq!(app.get("/act/not-a-token").await.status().as_u16(), 404);
        let (status, page) = body_of(app.get(&format!("/circles/{id}/rounds/3?key=not-a-token")).await).await;
        assert_eq!(status, 404);
        assert!(page.contains("round link does not work"));
    }
}

on_both_backends! {
    async fn a_skip_can_be_taken_back_on_the_page_and_then_the_reminder_comes(app) {
        let id = circle_of(&app, &PEOPLE[..2]).await;
        let bea = app.sign_in("bea@example.org", "Bea").await;
        let skip = format!("/circles/{id}/rounds/1/skip");
        assert_eq!(app.post_form_as(&bea, &skip, &[("skip", "yes")]).await.status().as_u16(), 303);
        let page = app.get_as(&bea, &format!("/circles/{id}/rounds/1")).await.text().await.expect("page");
        assert!(page.contains("You are skipping this round."));
        assert_eq!(app.post_form_as(&bea, &skip, &[("skip", "no")]).await.status().as_u16(), 303);
        let skips = query(&app, |conn| round_skips::table.count().get_result::<i64>(conn)).await;
        assert_eq!(skips, 0);
        app.clock.set(utc("2027-03-02T09:00:00Z"));
        app.run_jobs().await;
        assert_eq!(count_to(&app, "bea@example.org", "closes"), 1);
    }
}

on_both_backends! {
    async fn emptying_a_commitment_others_answered_is_refused_and_editing_keeps_slots(app) {
        let id = circle_of(&app, &PEOPLE[..2]).await;
        let round1 = format!("/circles/{id}/rounds/1");
        let ada = app.sign_in("ada@example.org", "Ada").await;
        let bea = app.sign_in("bea@example.org", "Bea").await;
        app.post_form_as(&ada, &round1, &[
            ("commitment-1", "Ask Sam what support looks like"),
            ("commitment-2", "Credit Lee in the newsletter"),
            ("commitment-3", "Read the statement"),
        ]).await;
        let ids = query(&app, |conn| commitments::table.order(commitments::position.asc()).select(commitments::id).load::<i64>(conn)).await;
        let response = app.post_form_as(&bea, &format!("{round1}/support"), &[
            ("commitment", &ids[1].to_string()), ("body", "I will remind you on Friday."),
        ]).await;
        assert_eq!(response.status().as_u16(), 303);

        // Emptying the supported one is refused, with the form kept.
        let (status, page) = body_of(app.post_form_as(&ada, &round1, &[
            ("commitment-1", "Ask Sam what support looks like"),
            ("commitment-2", ""),
            ("commitment-3", "Read the statement, twice"),
        ]).await).await;
        assert_eq!(status, 422);
        assert!(page.contains("Others have answered this commitment"), "{page}");
        assert!(page.contains(r#"value="Read the statement, twice""#));
        // Emptying the first keeps the others in their slots, and their support.
        let response = app.post_form_as(&ada, &round1, &[
            ("commitment-1", ""),
            ("commitment-2", "Credit Lee in the newsletter"),
            ("commitment-3", "Read the statement"),
        ]).await;
        assert_eq!(response.status().as_u16(), 303);
        let left = query(&app, |conn| {
            commitments::table
                .order(commitments::position.asc())
                .select((commitments::id, commitments::position, commitments::body))
                .load::<(i64, i32, String)>(conn)
        }).await;
        assert_eq!(left, [
            (ids[1], 2, "Credit Lee in the newsletter".to_string()),
            (ids[2], 3, "Read the statement".to_string()),
        ]);
        let support = query(&app, |conn| support_messages::table.select(support_messages::commitment_id).load::<i64>(conn)).await;
        assert_eq!(support, [ids[1]]);
    }
}

/// The path of the `List-Unsubscribe` header's address.
fn unsubscribe_path(app: &TestApp, mail: &ReceivedEmail) -> String {
    let header = mail.header("List-Unsubscribe").expect("List-Unsubscribe");
    let url = header.trim_start_matches('<').trim_end_matches('>');
    url.strip_prefix(app.public_base())
        .expect("our own address")
        .to_string()
}

on_both_backends! {
    async fn an_email_has_one_key_for_its_choices_and_unsubscribe_and_it_reaches_nothing_else(app) {
        let id = circle_of(&app, &PEOPLE).await;
        let ada = app.sign_in("ada@example.org", "Ada").await;
        let bea = app.sign_in("bea@example.org", "Bea").await;
        app.post_form_as(&ada, &format!("/circles/{id}/rounds/1"), &[("commitment-1", "Ask Sam what support looks like")]).await;
        app.post_form_as(&bea, &format!("/circles/{id}/rounds/1"), &[("commitment-1", "Credit Lee in the newsletter")]).await;
        open_week(&app, 2).await;

        // Every link in Ada's check-in names the same key, and opening the
        // round wrote no token of its own for any of them.
        let mail = latest(&app, "ada@example.org", "round 2");
        let text = mail.text_body();
        let key = key_of(&round_link(&app, &text, id, 2));
        let done = choice_link(&app, &text, "Ask Sam what support looks like", "Done");
        let skip = crate::support::link_path(
            text.lines().find(|l| l.contains("Skip this round")).expect("a skip line"),
            app.public_base(),
            "/act/",
        );
        assert!(done.starts_with(&format!("/act/{key}/done-")), "{done}");
        assert_eq!(skip, format!("/act/{key}/skip"));
        assert_eq!(unsubscribe_path(&app, &mail), format!("/unsubscribe/{key}"));
        let tokens = query(&app, |conn| {
            action_tokens::table.count().get_result::<i64>(conn)
        }).await;
        assert_eq!(tokens, 0);

        // The key reaches Ada's own commitments only: Bea's, or a choice
        // that is not one, is not found, and changes nothing.
        let beas = query(&app, |conn| {
            commitments::table
                .filter(commitments::body.eq("Credit Lee in the newsletter"))
                .select(commitments::id)
                .first::<i64>(conn)
        }).await;
        for choice in [format!("done-{beas}"), "done-0".into(), "done-x".into(), "maybe-1".into(), "done".into(), "".into()] {
            let path = format!("/act/{key}/{choice}");
            assert_eq!(app.get(&path).await.status().as_u16(), 404, "{path}");
            assert_eq!(app.post_form(&path, &[]).await.status().as_u16(), 404, "{path}");
        }
        let recorded = query(&app, |conn| follow_throughs::table.count().get_result::<i64>(conn)).await;
        assert_eq!(recorded, 0);

        // Each choice works once; another choice on the same key still works.
        assert_eq!(choose(&app, &done, &[]).await.0, 200);
        assert_eq!(app.post_form(&done, &[]).await.status().as_u16(), 409);
        let partly = choice_link(&app, &text, "Ask Sam what support looks like", "Partly");
        assert_eq!(choose(&app, &partly, &[]).await.0, 200);
        let outcome = query(&app, |conn| {
            follow_throughs::table.select(follow_throughs::outcome).load::<String>(conn)
        }).await;
        assert_eq!(outcome, ["partly"]);

        // Once the round has closed, its choices are gone, but the away
        // choice, which asks for dates, lasts 30 days more.
        let away = skip.replace("/skip", "/away");
        app.clock.set(utc("2027-03-11T09:00:00Z"));
        assert_eq!(app.post_form(&skip, &[]).await.status().as_u16(), 410);
        // A used choice no longer says what is open once its round has closed.
        let (status, page) = body_of(app.get(&done).await).await;
        assert_eq!(status, 409);
        assert!(page.contains("already been used") && !page.contains("Still open"), "{page}");
        assert_eq!(app.get(&away).await.status().as_u16(), 200);
        app.clock.set(utc("2027-04-10T09:00:00Z"));
        assert_eq!(app.get(&away).await.status().as_u16(), 410);

        // The digest's key unsubscribes after its round closed, for a year,
        // and opens no round page.
        let digest = latest(&app, "ada@example.org", "how round 1 went");
        let unsubscribe = unsubscribe_path(&app, &digest);
        let digest_key = unsubscribe.trim_start_matches("/unsubscribe/").to_string();
        for number in [1, 2] {
            let page = app.get(&format!("/circles/{id}/rounds/{number}?key={digest_key}")).await;
            assert_ne!(page.status().as_u16(), 200, "round {number}");
        }
        app.clock.set(utc("2028-03-01T09:00:00Z"));
        assert_eq!(app.get(&unsubscribe).await.status().as_u16(), 200);
        let response = app.client
            .post(app.url(&unsubscribe))
            .header("origin", "https://mail.example.net")
            .header("content-type", "application/x-www-form-urlencoded")
            .body("List-Unsubscribe=One-Click")
            .send()
            .await
            .expect("the server answers");
        assert_eq!(response.status().as_u16(), 200);
        let muted = query(&app, |conn| {
            memberships::table
                .inner_join(people::table)
                .filter(people::email.eq("ada@example.org"))
                .select(memberships::muted)
                .first::<bool>(conn)
        }).await;
        assert!(muted);
        app.clock.set(utc("2028-03-04T09:00:00Z"));
        assert_eq!(app.get(&unsubscribe).await.status().as_u16(), 404, "a year after the round closed");
    }
}

on_both_backends! {
    async fn choice_links_in_mail_from_before_keys_still_work_once(app) {
        circle_of(&app, &PEOPLE).await;
        let token = shoulder::auth::Token::generate();
        let hash = token.hash().as_str().to_string();
        query(&app, move |conn| {
            let (membership_id, round_id, closes_at) = memberships::table
                .inner_join(people::table)
                .inner_join(rounds::table.on(rounds::circle_id.eq(memberships::circle_id)))
                .filter(people::email.eq("cy@example.org"))
                .filter(rounds::number.eq(1))
                .select((memberships::id, rounds::id, rounds::closes_at))
                .first::<(i64, i64, chrono::NaiveDateTime)>(conn)?;
            diesel::insert_into(action_tokens::table)
                .values((
                    action_tokens::token_hash.eq(hash),
                    action_tokens::kind.eq(shoulder::rounds::actions::KIND_SKIP),
                    action_tokens::membership_id.eq(membership_id),
                    action_tokens::round_id.eq(round_id),
                    action_tokens::expires_at.eq(closes_at),
                ))
                .execute(conn)
        }).await;
        let path = format!("/act/{}", token.as_str());
        let (status, page) = body_of(app.get(&path).await).await;
        assert_eq!(status, 200);
        assert!(page.contains("Skip this round?"), "{page}");
        assert!(page.contains(&format!(r#"action="{path}""#)), "the button posts to the same link");
        let (status, page) = choose(&app, &path, &[]).await;
        assert_eq!(status, 200);
        assert!(page.contains("You are skipping this round") && page.contains("sign in and go to the round"), "{page}");
        assert_eq!(app.post_form(&path, &[]).await.status().as_u16(), 409);
        let skips = query(&app, |conn| round_skips::table.count().get_result::<i64>(conn)).await;
        assert_eq!(skips, 1);
    }
}

/// The text of every `<button>` on a page, its markup taken out: what a
/// screen reader names it.
fn button_names(page: &str) -> Vec<String> {
    page.split("<button")
        .skip(1)
        .map(|rest| {
            let inner =
                &rest[rest.find('>').expect("a tag") + 1..rest.find("</button>").expect("closed")];
            let mut text = String::new();
            let mut in_tag = false;
            for c in inner.chars() {
                match c {
                    '<' => in_tag = true,
                    '>' => in_tag = false,
                    c if !in_tag => text.push(c),
                    _ => {}
                }
            }
            text.split_whitespace().collect::<Vec<_>>().join(" ")
        })
        .collect()
}

on_both_backends! {
    async fn repeated_controls_on_the_round_page_have_names_of_their_own(app) {
        let id = circle_of(&app, &PEOPLE).await;
        let ada = app.sign_in("ada@example.org", "Ada").await;
        let response = app.post_form_as(&ada, &format!("/circles/{id}/rounds/1"), &[
            ("commitment-1", "Ask Sam what support looks like"),
            ("commitment-2", "Credit Lee in the newsletter"),
        ]).await;
        assert_eq!(response.status().as_u16(), 303);
        app.clock.set(utc("2027-03-08T09:00:00Z"));
        app.run_jobs().await;
        let bea = app.sign_in("bea@example.org", "Bea").await;
        for (who, cookie) in [("Ada", &ada), ("Bea", &bea)] {
            let page = app.get_as(cookie, &format!("/circles/{id}/rounds/2")).await.text().await.expect("page");
            let names = button_names(&page);
            let mut unique = names.clone();
            unique.sort();
            unique.dedup();
            assert_eq!(unique.len(), names.len(), "{who}'s buttons: {names:?}");
            assert!(names.iter().any(|n| n.contains(if who == "Ada" { "I could use help with: Credit Lee" } else { "Offer support to Ada on: Credit Lee" })), "{names:?}");
        }
        // In the email, each one-click choice names its commitment.
        let mail = latest(&app, "ada@example.org", "round 2");
        let html = mail.html_body().expect("html");
        assert!(html.contains(r#"aria-label="Done: Ask Sam what support looks like""#), "{html}");
        assert!(html.contains(r#"aria-label="Release: Credit Lee in the newsletter""#), "{html}");
    }
}
