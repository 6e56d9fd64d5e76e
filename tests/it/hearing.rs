//! The circle hears each other: reflections shared with the circle or kept
//! for their author alone, notes between members, and the one answer a
//! note or a word of support may get. Pages are read over HTTP, emails from
//! the real SMTP server, exports through their download links.

use diesel::prelude::*;
use shoulder::db::schema::{check_ins, memberships, peer_notes, people, support_messages};
use shoulder::db::{DbConnection, DbError};
use shoulder::rounds::check_in::WHICH_AUDIENCE;

use crate::on_both_backends;
use crate::shoulder::{body_of, circle_of, latest, query};
use crate::support::{TestApp, utc};

const PEOPLE: [(&str, &str); 3] = [
    ("ada@example.org", "Ada"),
    ("bea@example.org", "Bea"),
    ("cy@example.org", "Cy"),
];

const SHARED: &str = "I noticed how often I wait to be asked before helping.";
const PRIVATE: &str = "Something about my brother I am not ready to say aloud.";

/// The membership id of the person at `email`.
async fn membership_of(app: &TestApp, email: &'static str) -> i64 {
    query(app, move |conn| {
        memberships::table
            .inner_join(people::table)
            .filter(people::email.eq(email))
            .select(memberships::id)
            .first::<i64>(conn)
    })
    .await
}

/// The part of a round page under "What the circle said", up to the next
/// section.
fn said(page: &str) -> &str {
    let start = page
        .find("What the circle said")
        .unwrap_or_else(|| panic!("no shared reflections section in {page}"));
    let rest = &page[start..];
    &rest[..rest.find("</section>").expect("the section ends")]
}

/// Every email so far, headers and both parts, as one text.
fn every_email(app: &TestApp) -> String {
    app.emails()
        .iter()
        .map(|m| {
            format!(
                "{}\n{}\n{}",
                m.data,
                m.text_body(),
                m.html_body().unwrap_or_default()
            )
        })
        .collect()
}

on_both_backends! {
    async fn an_only_me_reflection_reaches_no_page_email_or_export_but_its_authors(app) {
        let id = circle_of(&app, &PEOPLE).await;
        let round1 = format!("/circles/{id}/rounds/1");
        let ada = app.sign_in("ada@example.org", "Ada").await;
        let bea = app.sign_in("bea@example.org", "Bea").await;
        let cy = app.sign_in("cy@example.org", "Cy").await;

        // The form says who reads it, and starts from the circle for someone
        // new to it.
        let page = app.get_as(&bea, &round1).await.text().await.expect("page");
        assert!(page.contains("Who reads your reflection"), "{page}");
        assert!(page.contains(r#"name="audience" value="circle" checked"#), "{page}");

        // An audience that is neither is refused, the words kept, nothing saved.
        let (status, page) = body_of(app.post_form_as(&bea, &round1, &[
            ("reflection", PRIVATE), ("audience", "everyone"),
        ]).await).await;
        assert_eq!(status, 422);
        assert!(page.contains(WHICH_AUDIENCE) && page.contains(PRIVATE), "{page}");
        let saved = query(&app, |conn| check_ins::table.count().get_result::<i64>(conn)).await;
        assert_eq!(saved, 0);

        for (who, reflection, audience) in [(&ada, SHARED, "circle"), (&bea, PRIVATE, "me")] {
            let response = app.post_form_as(who, &round1, &[
                ("reflection", reflection), ("audience", audience), ("commitment-1", "Call the housing office"),
            ]).await;
            assert_eq!(response.status().as_u16(), 303);
        }
        // Cy's form did not say: a new check-in takes the member's default.
        let response = app.post_form_as(&cy, &round1, &[("reflection", "Cy speaks up.")]).await;
        assert_eq!(response.status().as_u16(), 303);

        // On the round page: shared ones with their authors, for everyone;
        // Bea's only in her own form.
        for who in [&ada, &bea, &cy] {
            let page = app.get_as(who, &round1).await.text().await.expect("page");
            let said = said(&page);
            assert!(said.contains("<strong>Ada</strong>") && said.contains(SHARED), "{said}");
            assert!(said.contains("Cy speaks up."), "{said}");
            assert!(!said.contains(PRIVATE) && !said.contains("<strong>Bea</strong>"), "{said}");
            assert_eq!(page.contains(PRIVATE), who == &bea, "only Bea's own form holds it");
        }
        let page = app.get_as(&bea, &round1).await.text().await.expect("page");
        assert!(page.contains(r#"name="audience" value="me" checked"#), "{page}");

        // Editing without saying keeps the audience; the facilitator's
        // circle page and health view hold no trace either.
        let response = app.post_form_as(&bea, &round1, &[("reflection", PRIVATE), ("commitment-1", "Call the housing office")]).await;
        assert_eq!(response.status().as_u16(), 303);
        for path in [format!("/circles/{id}"), format!("/circles/{id}/health"), format!("/circles/{id}/history")] {
            let page = app.get_as(&ada, &path).await.text().await.expect("page");
            assert!(!page.contains(PRIVATE), "{path}: {page}");
        }

        // The digest says the shared reflections, and never Bea's.
        app.clock.set(utc("2027-03-03T09:00:00Z"));
        app.run_jobs().await;
        for to in ["ada@example.org", "bea@example.org", "cy@example.org"] {
            let digest = latest(&app, to, "how round 1 went");
            let text = digest.text_body();
            assert!(text.contains("What the circle said:") && text.contains(SHARED), "{text}");
            assert!(digest.html_body().expect("html").contains(SHARED));
        }
        assert!(!every_email(&app).contains("not ready to say"), "no email holds Bea's reflection");

        // The circle's export says each audience and leaves Bea's words out;
        // Bea's own export keeps them, saying who reads them.
        let export = app.get_as(&ada, &format!("/circles/{id}/export.json")).await.text().await.expect("json");
        let json: serde_json::Value = serde_json::from_str(&export).expect("json");
        let check_ins = json["check_ins"].as_array().expect("check-ins");
        let of = |name: &str| check_ins.iter().find(|c| c["member"] == name).unwrap_or_else(|| panic!("{name} in {export}"));
        assert_eq!((of("Ada")["reflection"].as_str(), of("Ada")["audience"].as_str()), (Some(SHARED), Some("the circle")));
        assert_eq!((of("Bea")["reflection"].as_str(), of("Bea")["audience"].as_str()), (Some(""), Some("only me")));
        let csv = app.get_as(&ada, &format!("/circles/{id}/export.csv")).await.text().await.expect("csv");
        assert!(!export.contains("not ready to say") && !csv.contains("not ready to say"), "{csv}");
        assert!(csv.lines().next().expect("header").split(',').any(|c| c == "audience"));
        let own = app.get_as(&bea, "/me/export.json").await.text().await.expect("json");
        let own: serde_json::Value = serde_json::from_str(&own).expect("json");
        let mine = &own["circles"][0]["check_ins"][0];
        assert_eq!((mine["reflection"].as_str(), mine["audience"].as_str()), (Some(PRIVATE), Some("only me")));
        let own_csv = app.get_as(&bea, "/me/export.csv").await.text().await.expect("csv");
        assert!(own_csv.contains(PRIVATE) && own_csv.contains("only me"), "{own_csv}");

        // The choice is remembered for the next round, and can change.
        app.clock.set(utc("2027-03-08T09:00:00Z"));
        app.run_jobs().await;
        let round2 = format!("/circles/{id}/rounds/2");
        let page = app.get_as(&bea, &round2).await.text().await.expect("page");
        assert!(page.contains(r#"name="audience" value="me" checked"#), "{page}");
        let response = app.post_form_as(&bea, &round2, &[("reflection", "This one is for all of you."), ("audience", "circle")]).await;
        assert_eq!(response.status().as_u16(), 303);
        let page = app.get_as(&cy, &round2).await.text().await.expect("page");
        assert!(said(&page).contains("This one is for all of you."), "{page}");
        let page = app.get_as(&cy, &round1).await.text().await.expect("page");
        assert!(!page.contains(PRIVATE), "round 1's stays with Bea");
    }
}

/// Reverts the migrations down to and including `version`, then runs them
/// all again, as an upgrade from before it would.
async fn upgrade_from_before(app: &TestApp, version: &'static str) {
    use diesel_migrations::MigrationHarness;
    app.state
        .db
        .run(move |conn| {
            loop {
                let reverted = match conn {
                    DbConnection::Sqlite(conn) => {
                        conn.revert_last_migration(shoulder::db::SQLITE_MIGRATIONS)
                    }
                    DbConnection::Postgresql(conn) => {
                        conn.revert_last_migration(shoulder::db::POSTGRES_MIGRATIONS)
                    }
                }
                .map_err(|e| DbError::Task(e.to_string()))?;
                if reverted.to_string() == version {
                    return Ok::<(), DbError>(());
                }
            }
        })
        .await
        .expect("revert");
    app.state.db.migrate().await.expect("migrate again");
}

on_both_backends! {
    async fn reflections_written_before_the_choice_stay_with_their_authors(app) {
        let id = circle_of(&app, &PEOPLE).await;
        let round1 = format!("/circles/{id}/rounds/1");
        let ada = app.sign_in("ada@example.org", "Ada").await;
        let bea = app.sign_in("bea@example.org", "Bea").await;
        let response = app.post_form_as(&ada, &round1, &[("reflection", SHARED), ("audience", "circle")]).await;
        assert_eq!(response.status().as_u16(), 303);
        let page = app.get_as(&bea, &round1).await.text().await.expect("page");
        assert!(said(&page).contains(SHARED));

        // As if Ada had written it before anyone was asked who reads it.
        upgrade_from_before(&app, "20261204000002").await;
        let shared = query(&app, |conn| check_ins::table.select(check_ins::shared).load::<bool>(conn)).await;
        assert_eq!(shared, [false]);
        let page = app.get_as(&bea, &round1).await.text().await.expect("page");
        assert!(!page.contains(SHARED), "{page}");
        let page = app.get_as(&ada, &round1).await.text().await.expect("page");
        assert!(page.contains(SHARED), "Ada still has her own words");
        assert!(page.contains(r#"name="audience" value="me" checked"#), "her choice starts from only me: {page}");

        app.clock.set(utc("2027-03-03T09:00:00Z"));
        app.run_jobs().await;
        assert!(!every_email(&app).contains(SHARED));
        let export = app.get_as(&ada, &format!("/circles/{id}/export.json")).await.text().await.expect("json");
        assert!(export.contains("\"only me\"") && !export.contains(SHARED), "{export}");
    }
}

on_both_backends! {
    async fn notes_and_answers_reach_the_right_people_once(app) {
        let id = circle_of(&app, &PEOPLE).await;
        let round1 = format!("/circles/{id}/rounds/1");
        let note = format!("{round1}/note");
        let answer = format!("{round1}/answer");
        let ada = app.sign_in("ada@example.org", "Ada").await;
        let bea = app.sign_in("bea@example.org", "Bea").await;
        let cy = app.sign_in("cy@example.org", "Cy").await;
        let (ada_id, bea_id) = (membership_of(&app, "ada@example.org").await, membership_of(&app, "bea@example.org").await);
        let bea_for = bea_id.to_string();

        // Refused, each with its reason and the words kept: empty, too long,
        // to oneself, to someone outside the circle.
        let (status, page) = body_of(app.post_form_as(&ada, &note, &[("for", &bea_for), ("body", "  ")]).await).await;
        assert_eq!(status, 422);
        assert!(page.contains("id=\"note-error\""), "{page}");
        let long = "y".repeat(501);
        let (status, page) = body_of(app.post_form_as(&ada, &note, &[("for", &bea_for), ("body", &long)]).await).await;
        assert_eq!(status, 422);
        assert!(page.contains("limited to 500 characters") && page.contains(&long), "{page}");
        let (status, page) = body_of(app.post_form_as(&ada, &note, &[("for", &ada_id.to_string()), ("body", "Hello me")]).await).await;
        assert_eq!(status, 422);
        assert!(page.contains("A note is for someone else") && page.contains("Hello me"), "{page}");
        let (status, page) = body_of(app.post_form_as(&ada, &note, &[("for", "999999"), ("body", "Hello you")]).await).await;
        assert_eq!(status, 422);
        assert!(page.contains("Choose someone in this circle"), "{page}");
        let stored = query(&app, |conn| peer_notes::table.count().get_result::<i64>(conn)).await;
        assert_eq!(stored, 0);

        // Round 1 has no commitments to support yet, but a note is welcome.
        let words = "I noticed you made room for the new people tonight.";
        let response = app.post_form_as(&ada, &note, &[("for", &bea_for), ("body", words)]).await;
        assert_eq!(response.status().as_u16(), 303);
        for who in [&ada, &bea, &cy] {
            let page = app.get_as(who, &round1).await.text().await.expect("page");
            assert!(page.contains(words), "the circle reads it: {page}");
            assert_eq!(page.contains("Send the answer"), who == &bea, "only Bea may answer it");
        }
        let note_id = query(&app, |conn| peer_notes::table.select(peer_notes::id).first::<i64>(conn)).await.to_string();

        // Only Bea answers, once, briefly.
        let (status, page) = body_of(app.post_form_as(&cy, &answer, &[("to", "note"), ("id", &note_id), ("answer", "Thanks")]).await).await;
        assert_eq!(status, 422);
        assert!(page.contains("Only the one it was written to"), "{page}");
        let (status, page) = body_of(app.post_form_as(&bea, &answer, &[("to", "note"), ("id", &note_id), ("answer", &"z".repeat(201))]).await).await;
        assert_eq!(status, 422);
        assert!(page.contains("limited to 200 characters"), "{page}");
        let response = app.post_form_as(&bea, &answer, &[("to", "note"), ("id", &note_id), ("answer", "Thank you, it mattered.")]).await;
        assert_eq!(response.status().as_u16(), 303);
        let (status, page) = body_of(app.post_form_as(&bea, &answer, &[("to", "note"), ("id", &note_id), ("answer", "And again")]).await).await;
        assert_eq!(status, 422);
        assert!(page.contains("It has your answer already"), "{page}");
        let page = app.get_as(&cy, &round1).await.text().await.expect("page");
        assert!(page.contains("answered: Thank you, it mattered."), "{page}");

        // Support and its answer, on round 1's commitments seen in round 2.
        app.post_form_as(&ada, &round1, &[("commitment-1", "Ask Sam what support looks like")]).await;
        let commitment = query(&app, |conn| shoulder::db::schema::commitments::table.select(shoulder::db::schema::commitments::id).first::<i64>(conn)).await.to_string();
        let response = app.post_form_as(&cy, &format!("{round1}/support"), &[("commitment", &commitment), ("body", "I can come along.")]).await;
        assert_eq!(response.status().as_u16(), 303);
        let support_id = query(&app, |conn| support_messages::table.select(support_messages::id).first::<i64>(conn)).await.to_string();
        let (status, _) = body_of(app.post_form_as(&bea, &answer, &[("to", "support"), ("id", &support_id), ("answer", "Not mine")]).await).await;
        assert_eq!(status, 422, "only the commitment's owner answers its support");
        let response = app.post_form_as(&ada, &answer, &[("to", "support"), ("id", &support_id), ("answer", "Yes, let's talk.")]).await;
        assert_eq!(response.status().as_u16(), 303);

        // No mail of their own: all waits for the digest and the next round.
        let before = app.emails().len();
        app.run_jobs().await;
        assert_eq!(app.emails().len(), before);

        app.clock.set(utc("2027-03-03T09:00:00Z"));
        app.run_jobs().await;
        let digest = latest(&app, "cy@example.org", "how round 1 went").text_body();
        assert!(digest.contains(&format!("Notes this round:\n  * Ada to Bea: {words}\n    Bea answered: Thank you, it mattered.")), "{digest}");
        assert!(digest.contains("Cy to Ada, on \"Ask Sam what support looks like\": I can come along.\n    Ada answered: Yes, let's talk."), "{digest}");

        // Round 2: Bea finds the note, Ada finds the answer, Cy finds the
        // answer to her support; nobody finds what is not theirs.
        app.clock.set(utc("2027-03-08T09:00:00Z"));
        app.run_jobs().await;
        let bea_mail = latest(&app, "bea@example.org", "round 2").text_body();
        assert!(bea_mail.contains("Notes for you since last round") && bea_mail.contains(&format!("Ada: {words}")), "{bea_mail}");
        assert!(!bea_mail.contains("Answers to what you wrote"), "{bea_mail}");
        let ada_mail = latest(&app, "ada@example.org", "round 2").text_body();
        assert!(ada_mail.contains(&format!("Answers to what you wrote:\n  * Bea, to \"{words}\": Thank you, it mattered.")), "{ada_mail}");
        assert!(!ada_mail.contains("Notes for you"), "{ada_mail}");
        let cy_mail = latest(&app, "cy@example.org", "round 2").text_body();
        assert!(cy_mail.contains("Answers to what you wrote:\n  * Ada, to \"I can come along.\": Yes, let's talk."), "{cy_mail}");
        assert!(!cy_mail.contains(words), "{cy_mail}");
        let bea_html = latest(&app, "bea@example.org", "round 2").html_body().expect("html");
        assert!(bea_html.contains(words), "{bea_html}");

        // Once: round 3's emails do not say them again.
        app.clock.set(utc("2027-03-15T09:00:00Z"));
        app.run_jobs().await;
        for to in ["ada@example.org", "bea@example.org", "cy@example.org"] {
            let mail = latest(&app, to, "round 3").text_body();
            assert!(!mail.contains(words) && !mail.contains("Answers to what you wrote"), "{mail}");
        }
    }
}
