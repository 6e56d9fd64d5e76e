//! A person's own data: export as JSON and CSV, deletion by the documented
//! rule, and a facilitator's export of their circle.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use shoulder::circles::settings::{Settings, SettingsForm};
use shoulder::circles::store;
use shoulder::db::DbError;
use shoulder::db::schema::{
    check_ins, circles, commitments, follow_throughs, memberships, people, sessions,
    support_messages,
};
use shoulder::people::export::{CIRCLE_CSV_COLUMNS, PERSON_CSV_COLUMNS};

use crate::on_both_backends;
use crate::support::{TestApp, link_path, open_week, utc, weekly_circle};

const CIRCLE: &str = "Night shift accomplices";
const ADA_REFLECTION: &str = "I talked more than I listened.";
const BEA_REFLECTION: &str = "I waited to be asked instead of offering.";
const FORMULA: &str = "=HYPERLINK(\"http://evil.example\",\"click\")";

/// Ada (facilitator) and Bea (member) in a weekly circle. Both check in to
/// round 1, round 2 opens, both report how round 1's commitments went, and
/// each writes a support message on the other's commitment.
struct Circle {
    id: i64,
    ada: String,
    bea: String,
}

async fn person_id(app: &TestApp, email: &'static str) -> i64 {
    app.state
        .db
        .run(move |conn| {
            Ok::<_, DbError>(
                people::table
                    .filter(people::email.eq(email))
                    .select(people::id)
                    .first(conn)?,
            )
        })
        .await
        .expect("person")
}

async fn membership_of(app: &TestApp, circle_id: i64, person: i64) -> i64 {
    app.state
        .db
        .run(move |conn| {
            Ok::<_, DbError>(
                memberships::table
                    .filter(memberships::circle_id.eq(circle_id))
                    .filter(memberships::person_id.eq(person))
                    .select(memberships::id)
                    .first(conn)?,
            )
        })
        .await
        .expect("membership")
}

/// (id, body, status) of a membership's commitments, oldest first.
async fn commitments_of(app: &TestApp, membership: i64) -> Vec<(i64, String, String)> {
    app.state
        .db
        .run(move |conn| {
            Ok::<_, DbError>(
                commitments::table
                    .filter(commitments::membership_id.eq(membership))
                    .order(commitments::id.asc())
                    .select((commitments::id, commitments::body, commitments::status))
                    .load(conn)?,
            )
        })
        .await
        .expect("commitments")
}

async fn check_in(app: &TestApp, cookie: &str, path: &str, fields: &[(&str, &str)]) {
    let response = app.post_form_as(cookie, path, fields).await;
    assert_eq!(response.status().as_u16(), 303, "checked in at {path}");
}

/// Offers support on a peer's commitment from the round page.
async fn write_support(app: &TestApp, cookie: &str, path: &str, commitment: i64, body: &str) {
    let commitment = commitment.to_string();
    let response = app
        .post_form_as(
            cookie,
            &format!("{path}/support"),
            &[("commitment", &commitment), ("body", body)],
        )
        .await;
    assert_eq!(response.status().as_u16(), 303, "support offered");
}

async fn circle_with_history(app: &TestApp) -> Circle {
    let people = [("ada@example.org", "Ada"), ("bea@example.org", "Bea")];
    let id = weekly_circle(app, CIRCLE, &people).await;
    assert_eq!(open_week(app, 1).await.rounds.opened, [(id, 1)]);

    let ada = app.sign_in("ada@example.org", "Ada").await;
    let bea = app.sign_in("bea@example.org", "Bea").await;
    let round1 = format!("/circles/{id}/rounds/1");
    check_in(
        app,
        &ada,
        &round1,
        &[
            ("reflection", ADA_REFLECTION),
            ("commitment-1", "Ask two questions before giving advice"),
            ("commitment-2", FORMULA),
        ],
    )
    .await;
    check_in(
        app,
        &bea,
        &round1,
        &[
            ("reflection", BEA_REFLECTION),
            ("commitment-1", "Offer to take notes at the meeting"),
        ],
    )
    .await;

    app.clock.set(utc("2027-03-08T09:00:00Z"));
    app.run_jobs().await;
    let round2 = format!("/circles/{id}/rounds/2");
    let ada_member = membership_of(app, id, person_id(app, "ada@example.org").await).await;
    let bea_member = membership_of(app, id, person_id(app, "bea@example.org").await).await;
    let adas = commitments_of(app, ada_member).await;
    let beas = commitments_of(app, bea_member).await;
    let (ada_first, bea_first) = (adas[0].0.to_string(), beas[0].0.to_string());
    check_in(
        app,
        &ada,
        &round2,
        &[
            (&format!("outcome-{ada_first}"), "done"),
            (
                &format!("note-{ada_first}"),
                "Twice, and it changed the conversation",
            ),
            ("commitment-1", "Read the piece Bea shared"),
        ],
    )
    .await;
    check_in(
        app,
        &bea,
        &round2,
        &[
            ("reflection", "Second week, still learning"),
            (&format!("outcome-{bea_first}"), "partly"),
            (&format!("note-{bea_first}"), "Bea's note: took notes once"),
            ("commitment-1", "Credit Sam's idea in the staff meeting"),
        ],
    )
    .await;
    write_support(app, &ada, &round2, beas[0].0, "Ada cheers Bea on").await;
    write_support(app, &bea, &round2, adas[0].0, "Bea cheers Ada on").await;
    Circle { id, ada, bea }
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// The rows of a CSV body, after checking its header is `columns`.
fn parse_csv(body: &str, columns: &[&str]) -> Vec<std::collections::HashMap<String, String>> {
    let mut reader = csv::Reader::from_reader(body.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .expect("a header row")
        .iter()
        .map(str::to_string)
        .collect();
    assert_eq!(header, columns);
    reader
        .records()
        .map(|record| {
            let record = record.expect("a well-formed row");
            header
                .iter()
                .cloned()
                .zip(record.iter().map(str::to_string))
                .collect()
        })
        .collect()
}

on_both_backends! {
    async fn a_member_downloads_their_own_data_as_json_and_csv(app) {
        let circle = circle_with_history(&app).await;

        let page = app.get_as(&circle.bea, "/me").await;
        assert_eq!(page.status().as_u16(), 200);
        let page = page.text().await.expect("page");
        assert!(page.contains("/me/export.json") && page.contains("/me/export.csv"));
        assert!(page.contains("A former member"), "the page tells the rule");

        let response = app.get_as(&circle.ada, "/me/export.json").await;
        assert_eq!(response.status().as_u16(), 200);
        assert_eq!(header(&response, "content-type"), "application/json");
        assert!(header(&response, "content-disposition").starts_with("attachment; filename=\"shoulder-my-data-"));
        assert_eq!(header(&response, "cache-control"), "no-store");
        let json: serde_json::Value = serde_json::from_str(&response.text().await.expect("body")).expect("JSON");
        assert_eq!(json["profile"]["email"], "ada@example.org");
        assert_eq!(json["profile"]["name"], "Ada");
        let mine = &json["circles"][0];
        assert_eq!(mine["circle"], CIRCLE);
        assert_eq!(mine["role"], "facilitator");
        assert_eq!(mine["check_ins"][0]["reflection"], ADA_REFLECTION);
        assert_eq!(mine["check_ins"][0]["round"], 1);
        assert!(mine["check_ins"][0]["prompt"].as_str().is_some_and(|p| !p.is_empty()));
        let bodies: Vec<&str> = mine["commitments"].as_array().expect("list").iter()
            .map(|c| c["body"].as_str().expect("text")).collect();
        assert_eq!(bodies, ["Ask two questions before giving advice", FORMULA, "Read the piece Bea shared"]);
        assert_eq!(mine["commitments"][0]["status"], "done");
        assert_eq!(mine["follow_throughs"][0]["note"], "Twice, and it changed the conversation");
        assert_eq!(mine["follow_throughs"][0]["round_reported"], 2);
        assert_eq!(mine["support_given"][0]["message"], "Ada cheers Bea on");
        assert_eq!(mine["support_given"][0]["to"], "Bea");
        assert_eq!(mine["support_given"][0]["commitment"], "Offer to take notes at the meeting");
        assert_eq!(mine["support_received"][0]["message"], "Bea cheers Ada on");
        assert_eq!(mine["support_received"][0]["from"], "Bea");
        let text = json.to_string();
        assert!(!text.contains(BEA_REFLECTION), "another member's reflection is not hers");
        assert!(!text.contains("bea@example.org"), "nor another member's address");

        let response = app.get_as(&circle.ada, "/me/export.csv").await;
        assert_eq!(response.status().as_u16(), 200);
        assert_eq!(header(&response, "content-type"), "text/csv; charset=utf-8");
        assert!(header(&response, "content-disposition").starts_with("attachment;"));
        assert!(header(&response, "content-disposition").ends_with(".csv\""));
        let body = response.text().await.expect("body");
        let rows = parse_csv(&body, PERSON_CSV_COLUMNS);
        let kinds: Vec<&str> = rows.iter().map(|r| r["record"].as_str()).collect();
        for kind in ["profile", "membership", "check_in", "commitment", "follow_through", "support_given", "support_received"] {
            assert!(kinds.contains(&kind), "a {kind} row in {kinds:?}");
        }
        assert_eq!(kinds[0], "profile");
        assert_eq!(rows[0]["text"], "ada@example.org");
        let reflection = rows.iter().find(|r| r["record"] == "check_in" && r["round"] == "1").expect("round 1 check-in");
        assert_eq!(reflection["text"], ADA_REFLECTION);
        assert_eq!(reflection["circle"], CIRCLE);
        assert_eq!(reflection["late"], "false");
        let risky = rows.iter().find(|r| r["record"] == "commitment" && r["text"].contains("HYPERLINK")).expect("the formula commitment");
        assert_eq!(risky["text"], format!("'{FORMULA}"), "a formula is shown, not run");
        let note = rows.iter().find(|r| r["record"] == "follow_through").expect("follow-through");
        assert_eq!(note["outcome"], "done");
        assert_eq!(note["note"], "Twice, and it changed the conversation");
        assert_eq!(note["round"], "2");
        assert!(!body.contains(BEA_REFLECTION));
    }
}

on_both_backends! {
    async fn deleting_without_the_typed_word_changes_nothing(app) {
        let circle = circle_with_history(&app).await;
        let page = app.get_as(&circle.bea, "/me/delete").await;
        assert_eq!(page.status().as_u16(), 200);
        assert!(page.text().await.expect("page").contains(r#"name="confirm""#));

        for typed in [None, Some(""), Some("yes"), Some("delete me")] {
            let fields: Vec<(&str, &str)> = typed.map(|t| vec![("confirm", t)]).unwrap_or_default();
            let response = app.post_form_as(&circle.bea, "/me/delete", &fields).await;
            assert_eq!(response.status().as_u16(), 422, "{typed:?}");
            assert!(response.headers().get("set-cookie").is_none());
            let page = response.text().await.expect("page");
            assert!(page.contains("type the word"), "{page}");
            assert!(page.contains("Nothing was deleted"));
        }
        let bea = person_id(&app, "bea@example.org").await;
        let (name, deleted_at): (String, Option<NaiveDateTime>) = app.state.db
            .run(move |conn| Ok::<_, DbError>(people::table.find(bea).select((people::display_name, people::deleted_at)).first(conn)?))
            .await
            .expect("Bea");
        assert_eq!((name.as_str(), deleted_at), ("Bea", None));
        let reflections: Vec<String> = app.state.db
            .run(|conn| Ok::<_, DbError>(check_ins::table.select(check_ins::reflection).load(conn)?))
            .await
            .expect("reflections");
        assert!(reflections.iter().any(|r| r == BEA_REFLECTION));
        assert_eq!(app.get_as(&circle.bea, "/me").await.status().as_u16(), 200, "still signed in");
    }
}

on_both_backends! {
    async fn deleting_removes_the_words_keeps_the_outcomes_and_signs_out(app) {
        let circle = circle_with_history(&app).await;
        let bea = person_id(&app, "bea@example.org").await;
        let bea_member = membership_of(&app, circle.id, bea).await;
        let ada_member = membership_of(&app, circle.id, person_id(&app, "ada@example.org").await).await;

        let response = app.post_form_as(&circle.bea, "/me/delete", &[("confirm", " Delete ")]).await;
        assert_eq!(response.status().as_u16(), 303);
        assert_eq!(header(&response, "location"), "/me/deleted");
        let cleared = header(&response, "set-cookie").to_string();
        assert!(cleared.starts_with("shoulder_session=;") && cleared.contains("Max-Age=0"), "{cleared}");
        // The page it leads to says so, and reloading it asks for nothing.
        for _ in 0..2 {
            let (status, page) = app.get_text("/me/deleted").await;
            assert_eq!(status, 200);
            assert!(page.contains("Your data is deleted"), "{page}");
        }

        // The person stays, anonymised.
        let (name, email, deleted_at): (String, String, Option<NaiveDateTime>) = app.state.db
            .run(move |conn| Ok::<_, DbError>(people::table.find(bea)
                .select((people::display_name, people::email, people::deleted_at)).first(conn)?))
            .await
            .expect("the row stays");
        assert_eq!(name, "A former member");
        assert_eq!(email, format!("deleted-{bea}@deleted.invalid"));
        assert!(deleted_at.is_some());

        // Their words are gone; the shape stays.
        let reflections: Vec<(i64, String)> = app.state.db
            .run(|conn| Ok::<_, DbError>(check_ins::table.order(check_ins::id.asc())
                .select((check_ins::membership_id, check_ins::reflection)).load(conn)?))
            .await
            .expect("check-ins");
        let beas: Vec<&str> = reflections.iter().filter(|(m, _)| *m == bea_member).map(|(_, r)| r.as_str()).collect();
        assert_eq!(beas, ["", ""], "both check-ins stay, empty");
        assert!(reflections.iter().any(|(m, r)| *m == ada_member && r == ADA_REFLECTION), "Ada's words stay");
        let made = commitments_of(&app, bea_member).await;
        assert_eq!(made.len(), 2);
        assert!(made.iter().all(|(_, body, _)| body.is_empty()), "{made:?}");
        assert_eq!(made[0].2, "partly", "the outcome stays");
        let first = made[0].0;
        let follow: Vec<(String, Option<String>)> = app.state.db
            .run(move |conn| Ok::<_, DbError>(follow_throughs::table
                .filter(follow_throughs::commitment_id.eq(first))
                .select((follow_throughs::outcome, follow_throughs::note)).load(conn)?))
            .await
            .expect("follow-through");
        assert_eq!(follow, [("partly".to_string(), None)]);
        assert_eq!(commitments_of(&app, ada_member).await[0].1, "Ask two questions before giving advice");
        let support: Vec<String> = app.state.db
            .run(|conn| Ok::<_, DbError>(support_messages::table.select(support_messages::body).load(conn)?))
            .await
            .expect("support");
        assert!(support.is_empty(), "written by Bea and written to Bea: {support:?}");
        let (status, left_at): (String, Option<NaiveDateTime>) = app.state.db
            .run(move |conn| Ok::<_, DbError>(memberships::table.find(bea_member)
                .select((memberships::status, memberships::left_at)).first(conn)?))
            .await
            .expect("membership");
        assert_eq!(status, "left");
        assert!(left_at.is_some());

        // Signed out everywhere: the old cookie opens nothing.
        let open_sessions: i64 = app.state.db
            .run(move |conn| Ok::<_, DbError>(sessions::table.filter(sessions::person_id.eq(bea)).count().get_result(conn)?))
            .await
            .expect("sessions");
        assert_eq!(open_sessions, 0);
        let old = app.get_as(&circle.bea, "/me").await;
        assert_eq!(old.status().as_u16(), 303);
        assert_eq!(header(&old, "location"), "/sign-in?next=%2Fme");
        assert_eq!(app.get_as(&circle.bea, "/me/export.json").await.status().as_u16(), 303);

        // The same address can sign up again, as someone new with nothing of before.
        let again = app.sign_in("bea@example.org", "Bea Anew").await;
        let fresh = person_id(&app, "bea@example.org").await;
        assert_ne!(fresh, bea);
        let json: serde_json::Value = serde_json::from_str(
            &app.get_as(&again, "/me/export.json").await.text().await.expect("body"),
        ).expect("JSON");
        assert_eq!(json["profile"]["name"], "Bea Anew");
        assert_eq!(json["circles"].as_array().map(Vec::len), Some(0));
        assert_eq!(app.get_as(&again, &format!("/circles/{}", circle.id)).await.status().as_u16(), 404);

        // Ada's copy still has her support for Bea's commitment? No: it was
        // written to someone who is gone, and is gone with them.
        let json: serde_json::Value = serde_json::from_str(
            &app.get_as(&circle.ada, "/me/export.json").await.text().await.expect("body"),
        ).expect("JSON");
        assert_eq!(json["circles"][0]["support_given"].as_array().map(Vec::len), Some(0));
        assert!(!json.to_string().contains("Bea's note"));
    }
}

on_both_backends! {
    async fn the_only_facilitator_is_asked_to_hand_over_first(app) {
        let circle = circle_with_history(&app).await;
        let response = app.post_form_as(&circle.ada, "/me/delete", &[("confirm", "delete")]).await;
        assert_eq!(response.status().as_u16(), 409);
        assert!(response.headers().get("set-cookie").is_none());
        let page = response.text().await.expect("page");
        assert!(page.contains(&format!("the only facilitator of {CIRCLE}")), "{page}");
        assert!(page.contains("Make someone else its facilitator first"));
        assert!(page.contains("Nothing was deleted"));
        let me = app.get_as(&circle.ada, "/me").await.text().await.expect("still signed in");
        assert!(me.contains("make someone else facilitator of"), "the page says so beforehand");
        assert!(
            me.contains(r#"<button class="danger" type="submit" disabled aria-describedby="handover-first">Delete my data</button>"#)
                && me.contains("Not yet: a circle above needs another facilitator first."),
            "the button is disabled, saying why: {me}"
        );
        let ada = person_id(&app, "ada@example.org").await;
        let reflections: Vec<String> = app.state.db
            .run(|conn| Ok::<_, DbError>(check_ins::table.select(check_ins::reflection).load(conn)?))
            .await
            .expect("reflections");
        assert!(reflections.iter().any(|r| r == ADA_REFLECTION), "nothing changed");

        // With Bea as a second facilitator, Ada may go; the circle goes on.
        let bea_member = membership_of(&app, circle.id, person_id(&app, "bea@example.org").await).await;
        let handed = app.post_form_as(&circle.ada, &format!("/circles/{}/members/{bea_member}/facilitator", circle.id), &[("confirm", "yes")]).await;
        assert_eq!(handed.status().as_u16(), 303);
        let me = app.get_as(&circle.ada, "/me").await.text().await.expect("page");
        assert!(me.contains(r#"<button class="danger" type="submit">Delete my data</button>"#), "{me}");
        let response = app.post_form_as(&circle.ada, "/me/delete", &[("confirm", "delete")]).await;
        assert_eq!(response.status().as_u16(), 303);
        let email: String = app.state.db
            .run(move |conn| Ok::<_, DbError>(people::table.find(ada).select(people::email).first(conn)?))
            .await
            .expect("Ada's row");
        let circle_id = circle.id;
        let status: String = app.state.db
            .run(move |conn| Ok::<_, DbError>(circles::table.find(circle_id).select(circles::status).first(conn)?))
            .await
            .expect("circle");
        assert!(email.ends_with("@deleted.invalid"));
        assert_eq!(status, "active", "Bea is still in it");

        // Bea's copy of the circle names Ada only as a former member.
        let response = app.get_as(&circle.bea, &format!("/circles/{}/export.json", circle.id)).await;
        assert_eq!(response.status().as_u16(), 200);
        let body = response.text().await.expect("body");
        let json: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        let names: Vec<&str> = json["members"].as_array().expect("members").iter()
            .map(|m| m["name"].as_str().expect("name")).collect();
        assert_eq!(names, ["A former member", "Bea"]);
        assert!(!body.contains("\"Ada\""), "{body}");
        assert!(!body.contains(ADA_REFLECTION));
        assert!(body.contains(BEA_REFLECTION));
    }
}

on_both_backends! {
    async fn a_facilitator_alone_in_their_circle_may_delete_and_the_circle_is_archived(app) {
        let eve = app.sign_in("eve@example.org", "Eve").await;
        let mut form = SettingsForm::new("UTC");
        form.name = "Just me for now".into();
        form.purpose = "Waiting for company.".into();
        form.agreements = "Be kind.".into();
        form.set_cadence_text("weekly mon 09:00");
        let now = app.clock.now();
        let settings = Settings::parse(&form, now.date_naive()).expect("valid");
        let person = person_id(&app, "eve@example.org").await;
        let circle_id = app.state.db
            .run(move |conn| store::create(conn, person, &settings, now))
            .await
            .expect("circle");
        let response = app.post_form_as(&eve, "/me/delete", &[("confirm", "delete")]).await;
        assert_eq!(response.status().as_u16(), 303);
        let (status, next): (String, Option<NaiveDateTime>) = app.state.db
            .run(move |conn| Ok::<_, DbError>(circles::table.find(circle_id)
                .select((circles::status, circles::next_round_at)).first(conn)?))
            .await
            .expect("circle");
        assert_eq!((status.as_str(), next), ("archived", None));
    }
}

on_both_backends! {
    async fn a_circle_export_is_for_its_facilitators_only(app) {
        let circle = circle_with_history(&app).await;
        let eve = app.sign_in("eve@example.org", "Eve").await;
        for ext in ["json", "csv"] {
            let path = format!("/circles/{}/export.{ext}", circle.id);
            assert_eq!(app.get_as(&circle.bea, &path).await.status().as_u16(), 404, "a member");
            assert_eq!(app.get_as(&eve, &path).await.status().as_u16(), 404, "a stranger");
            assert_eq!(app.get_as(&circle.ada, "/circles/999999/export.json").await.status().as_u16(), 404);
            let anonymous = app.get(&path).await;
            assert_eq!(anonymous.status().as_u16(), 303);
            assert!(header(&anonymous, "location").starts_with("/sign-in?next="));
        }

        let response = app.get_as(&circle.ada, &format!("/circles/{}/export.json", circle.id)).await;
        assert_eq!(response.status().as_u16(), 200);
        assert_eq!(header(&response, "content-type"), "application/json");
        assert!(header(&response, "content-disposition").contains(&format!("shoulder-circle-{}-", circle.id)));
        let body = response.text().await.expect("body");
        assert!(!body.contains("@example.org"), "no email addresses");
        let json: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!(json["circle"]["name"], CIRCLE);
        assert_eq!(json["circle"]["agreements"], "We listen first.");
        assert_eq!(json["members"].as_array().map(Vec::len), Some(2));
        assert_eq!(json["members"][0]["role"], "facilitator");
        assert_eq!(json["rounds"].as_array().map(Vec::len), Some(2));
        assert!(json["rounds"][0]["prompt"].as_str().is_some_and(|p| !p.is_empty()));
        assert_eq!(json["check_ins"].as_array().map(Vec::len), Some(4));
        assert!(body.contains(ADA_REFLECTION) && body.contains(BEA_REFLECTION));
        assert_eq!(json["commitments"].as_array().map(Vec::len), Some(5));
        assert_eq!(json["follow_throughs"].as_array().map(Vec::len), Some(2));
        assert_eq!(json["support_messages"].as_array().map(Vec::len), Some(2));

        let response = app.get_as(&circle.ada, &format!("/circles/{}/export.csv", circle.id)).await;
        assert_eq!(response.status().as_u16(), 200);
        assert_eq!(header(&response, "content-type"), "text/csv; charset=utf-8");
        let body = response.text().await.expect("body");
        assert!(!body.contains("@example.org"));
        let rows = parse_csv(&body, CIRCLE_CSV_COLUMNS);
        let name = rows.iter().find(|r| r["record"] == "setting" && r["setting"] == "name").expect("name");
        assert_eq!(name["text"], CIRCLE);
        assert_eq!(rows.iter().filter(|r| r["record"] == "member").count(), 2);
        assert_eq!(rows.iter().filter(|r| r["record"] == "round").count(), 2);
        let beas = rows.iter().find(|r| r["record"] == "check_in" && r["text"] == BEA_REFLECTION).expect("Bea's check-in");
        assert_eq!(beas["person"], "Bea");
        assert_eq!(beas["round"], "1");
        assert!(rows.iter().any(|r| r["record"] == "commitment" && r["text"] == format!("'{FORMULA}")));
        assert_eq!(rows.iter().filter(|r| r["record"] == "support").count(), 2);
    }
}

on_both_backends! {
    async fn your_data_pages_ask_to_sign_in_first(app) {
        for path in ["/me", "/me/export.json", "/me/export.csv", "/me/delete"] {
            let response = app.get(path).await;
            assert_eq!(response.status().as_u16(), 303, "{path}");
            let expected = format!("/sign-in?next={}", path.replace('/', "%2F"));
            assert_eq!(header(&response, "location"), expected);
        }
        let response = app.post_form("/me/delete", &[("confirm", "delete")]).await;
        assert_eq!(response.status().as_u16(), 303);
        assert!(header(&response, "location").starts_with("/sign-in"));

        let ada = app.sign_in("ada@example.org", "Ada").await;
        let home = app.get_as(&ada, "/").await.text().await.expect("page");
        assert!(home.contains(r#"href="/me""#), "the header links to Your data");
    }
}

on_both_backends! {
    async fn a_person_chooses_the_time_zone_they_read_times_in(app) {
        let ada = app.sign_in("ada@example.org", "Ada").await;
        let page = app.get_as(&ada, "/me").await.text().await.expect("page");
        assert!(page.contains("You have not chosen one yet"), "{page}");
        assert!(page.contains(r#"<option value="Europe/London">"#), "the list offers zones: {page}");

        // Unknown: refused with the text kept and nothing stored.
        let response = app.post_form_as(&ada, "/me/time-zone", &[("time_zone", "Mars/Olympus")]).await;
        assert_eq!(response.status().as_u16(), 422);
        let page = response.text().await.expect("page");
        assert!(page.contains(shoulder::people::zone::UNKNOWN_ZONE) && page.contains(r#"value="Mars/Olympus""#), "{page}");
        assert!(page.contains(r#"aria-describedby="time_zone-error""#), "{page}");
        let stored = crate::shoulder::query(&app, |conn| {
            shoulder::db::schema::people::table.select(shoulder::db::schema::people::time_zone).first::<Option<String>>(conn)
        })
        .await;
        assert_eq!(stored, None);

        // A legacy name is still a zone, kept as given; then a canonical one.
        for zone in ["Asia/Calcutta", "America/Toronto"] {
            let response = app.post_form_as(&ada, "/me/time-zone", &[("time_zone", zone)]).await;
            assert_eq!(response.status().as_u16(), 303);
            let page = app.get_as(&ada, "/me?saved=zone").await.text().await.expect("page");
            assert!(page.contains("Your time zone is saved.") && page.contains(&format!("Times are shown to you in <strong>{zone}</strong>")), "{page}");
        }
        let export = app.get_as(&ada, "/me/export.json").await.text().await.expect("json");
        let export: serde_json::Value = serde_json::from_str(&export).expect("json");
        assert_eq!(export["profile"]["time_zone"], "America/Toronto");
    }
}

on_both_backends! {
    async fn a_person_changes_the_name_others_see(app) {
        let circle = circle_with_history(&app).await;
        for (typed, says) in [("   ", "Please give the name"), ("Ada\r\nBcc: x@example.org", "one line"), ("Ada\u{202e}", "")] {
            let refused = app.post_form_as(&circle.ada, "/me/name", &[("display_name", typed)]).await;
            assert_eq!(refused.status().as_u16(), 422, "{typed:?}");
            let page = refused.text().await.expect("page");
            assert!(page.contains(says) && page.contains(r#"aria-describedby="display_name-error""#), "{page}");
        }
        let names = crate::shoulder::query(&app, |conn| {
            shoulder::db::schema::people::table
                .order(shoulder::db::schema::people::id.asc())
                .select(shoulder::db::schema::people::display_name)
                .load::<String>(conn)
        })
        .await;
        assert_eq!(names, ["Ada", "Bea"], "nothing written");

        let saved = app.post_form_as(&circle.ada, "/me/name", &[("display_name", " Ada Lovelace ")]).await;
        assert_eq!(saved.status().as_u16(), 303);
        assert_eq!(saved.headers()["location"], "/me?saved=name#your-name");
        let page = app.get_as(&circle.ada, "/me?saved=name").await.text().await.expect("page");
        assert!(page.contains("Your name is saved.") && page.contains(r#"value="Ada Lovelace""#), "{page}");
        let bea = app.sign_in("bea@example.org", "Bea").await;
        let page = app.get_as(&bea, &format!("/circles/{}", circle.id)).await.text().await.expect("page");
        assert!(page.contains("Ada Lovelace"), "the circle sees the new name: {page}");
    }
}

on_both_backends! {
    async fn a_new_address_takes_effect_only_once_it_confirms_itself(app) {
        let circle = circle_with_history(&app).await;
        let ada = &circle.ada;
        let address_of = |who: &'static str| {
            crate::shoulder::query(&app, move |conn| {
                people::table.filter(people::display_name.eq(who)).select(people::email).first::<String>(conn)
            })
        };
        for (typed, says) in [
            ("not an address", "@"),
            ("ada@example.org", "That is already your address."),
            ("BEA@example.org", "Another account uses that address."),
        ] {
            let refused = app.post_form_as(ada, "/me/email", &[("email", typed)]).await;
            assert_eq!(refused.status().as_u16(), 422, "{typed}");
            let page = refused.text().await.expect("page");
            assert!(page.contains(says) && page.contains(&format!(r#"value="{typed}""#)), "{page}");
            assert!(page.contains(r#"aria-describedby="new_email-error""#), "{page}");
        }

        // A link left a day unused has expired.
        let asked = app.post_form_as(ada, "/me/email", &[("email", "ada.try@example.org")]).await;
        assert_eq!(asked.status().as_u16(), 303);
        app.run_jobs().await;
        let stale = link_path(&last_to(&app, "ada.try@example.org").text_body(), app.public_base(), "/me/email/");
        app.clock.advance(chrono::Duration::hours(25));
        let expired = app.post_form(&stale, &[]).await;
        assert_eq!(expired.status().as_u16(), 410);
        assert!(expired.text().await.expect("page").contains("This link has expired"));
        assert_eq!(address_of("Ada").await, "ada@example.org");

        // The new address is asked, the old one told.
        let asked = app.post_form_as(ada, "/me/email", &[("email", "Ada.New@Example.org")]).await;
        assert_eq!(asked.status().as_u16(), 303);
        let page = app.get_as(ada, "/me?saved=email").await.text().await.expect("page");
        assert!(page.contains("A confirmation link is on its way"), "{page}");
        app.run_jobs().await;
        let confirm = last_to(&app, "ada.new@example.org");
        assert_eq!(confirm.subject().as_deref(), Some("Confirm your new address for Shoulder"));
        let told = last_to(&app, "ada@example.org");
        assert_eq!(told.subject().as_deref(), Some("Your Shoulder address may change"));
        assert!(told.text_body().contains("ada.new@example.org"), "{}", told.text_body());
        let link = link_path(&confirm.text_body(), app.public_base(), "/me/email/");
        let (status, page) = app.get_text(&link).await;
        assert_eq!(status, 200);
        assert!(page.contains("Use ada.new@example.org for Shoulder?"), "{page}");
        assert_eq!(address_of("Ada").await, "ada@example.org", "opening the link changes nothing");

        let changed = app.post_form(&link, &[]).await;
        assert_eq!(changed.status().as_u16(), 303);
        assert_eq!(changed.headers()["location"], "/me/email/changed");
        let (status, page) = app.get_text("/me/email/changed").await;
        assert_eq!(status, 200);
        assert!(page.contains("Your new address is confirmed"), "{page}");
        assert_eq!(address_of("Ada").await, "ada.new@example.org");
        assert_eq!(app.post_form(&link, &[]).await.status().as_u16(), 410, "a link works once");

        // Signing in works with the new address only.
        let again = app.sign_in("ada.new@example.org", "Ada").await;
        let page = app.get_as(&again, &format!("/circles/{}", circle.id)).await;
        assert_eq!(page.status().as_u16(), 200, "the same account, in its circle");
        let asked = app.post_form("/sign-in", &[("email", "ada@example.org")]).await;
        assert_eq!(asked.status().as_u16(), 303);
        app.run_jobs().await;
        assert_eq!(
            last_to(&app, "ada@example.org").subject().as_deref(),
            Some("Start a circle on Shoulder"),
            "the old address is nobody's now"
        );
    }
}

/// The newest email to `to`.
fn last_to(app: &TestApp, to: &str) -> crate::support::ReceivedEmail {
    app.emails()
        .into_iter()
        .rev()
        .find(|m| m.to == [to.to_string()])
        .unwrap_or_else(|| panic!("an email to {to}"))
}
