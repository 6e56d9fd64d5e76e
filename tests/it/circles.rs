//! Starting and running a circle through its pages.

use diesel::prelude::*;
use shoulder::circles::store;
use shoulder::db::DbError;
use shoulder::db::schema::{circles, memberships, people, rounds};

use crate::on_both_backends;
use crate::shoulder::query;
use crate::support::{Backend, TestApp, utc};

/// A complete start-a-circle form; tests change one field at a time.
fn circle_form() -> Vec<(&'static str, String)> {
    vec![
        ("name", "Tuesday accomplices".into()),
        ("purpose", "Turning what we learn into what we do.".into()),
        ("agreements", "We listen first.\r\nWe give credit.".into()),
        ("cadence_kind", "weekly".into()),
        ("day", "tue".into()),
        ("day", "fri".into()),
        ("time", "09:00".into()),
        ("every_weeks", "1".into()),
        ("month_day", "1".into()),
        ("cron", String::new()),
        ("time_zone", "America/Toronto".into()),
        ("round_hours", "72".into()),
        ("size_cap", "8".into()),
        ("intent", "save".into()),
    ]
}

fn with(form: &[(&'static str, String)], name: &str, value: &str) -> Vec<(&'static str, String)> {
    form.iter()
        .map(|(k, v)| {
            (
                *k,
                if *k == name {
                    value.to_string()
                } else {
                    v.clone()
                },
            )
        })
        .collect()
}

async fn post(
    app: &TestApp,
    cookie: &str,
    path: &str,
    form: &[(&'static str, String)],
) -> reqwest::Response {
    let fields: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    app.post_form_as(cookie, path, &fields).await
}

/// Starts a circle as `cookie`'s person and returns its id.
async fn start_circle(app: &TestApp, cookie: &str) -> i64 {
    let response = post(app, cookie, "/circles", &circle_form()).await;
    assert_eq!(response.status().as_u16(), 303);
    let location = response.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_string();
    location
        .strip_prefix("/circles/")
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("redirected to the circle, not {location}"))
}

async fn circle_count(app: &TestApp) -> i64 {
    app.state
        .db
        .run(|conn| Ok::<i64, DbError>(circles::table.count().get_result(conn)?))
        .await
        .expect("counted")
}

/// Adds `name` to a circle directly, as the join flow would.
async fn add_member(app: &TestApp, circle_id: i64, email: &'static str, name: &'static str) -> i64 {
    let now = app.clock.now().naive_utc();
    app.state
        .db
        .run(move |conn| {
            let person: i64 = diesel::insert_into(people::table)
                .values((
                    people::email.eq(email),
                    people::display_name.eq(name),
                    people::created_at.eq(now),
                ))
                .returning(people::id)
                .get_result(conn)?;
            store::add_member(conn, circle_id, person, store::ROLE_MEMBER, now)
        })
        .await
        .expect("member added")
}

on_both_backends! {
    async fn a_facilitator_starts_a_circle_and_sees_it(app) {
        let ada = app.sign_in("ada@example.org", "Ada").await;
        let (status, form) = {
            let r = app.get_as(&ada, "/circles/new").await;
            (r.status().as_u16(), r.text().await.expect("page"))
        };
        assert_eq!(status, 200);
        assert!(form.contains("America/Toronto"), "zones are offered");

        let id = start_circle(&app, &ada).await;
        let page = app.get_as(&ada, &format!("/circles/{id}")).await.text().await.expect("page");
        assert!(page.contains("Tuesday accomplices"));
        assert!(page.contains("Turning what we learn into what we do."));
        assert!(page.contains("We give credit."));
        assert!(page.contains("facilitator"));
        assert!(page.contains("Members (1 of 8)"));
        // 2027-03-01 09:00 UTC is a Monday morning in Toronto: the next round
        // is Tuesday 09:00 local, 14:00 UTC.
        assert!(page.contains("Tuesday 2 March 2027, 09:00 EST"), "{page}");
        assert!(page.contains("Tuesday 2 March 2027, 14:00 UTC"), "{page}");

        let home = app.get_as(&ada, "/").await.text().await.expect("page");
        assert!(home.contains(&format!("/circles/{id}")));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_preview_shows_the_next_three_rounds_and_saves_nothing() {
    let app = TestApp::start(Backend::Sqlite).await.expect("sqlite");
    let ada = app.sign_in("ada@example.org", "Ada").await;
    let form = with(&circle_form(), "intent", "preview");
    let response = post(&app, &ada, "/circles", &form).await;
    assert_eq!(response.status().as_u16(), 200);
    let page = response.text().await.expect("page");
    for expected in [
        "Tuesday 2 March 2027, 09:00 EST",
        "Friday 5 March 2027, 09:00 EST",
        // Toronto moves its clocks on 14 March; the local time stays 09:00.
        "Tuesday 9 March 2027, 09:00 EST",
    ] {
        assert!(page.contains(expected), "{expected} in {page}");
    }
    assert_eq!(circle_count(&app).await, 0);
}

on_both_backends! {
    async fn each_bad_answer_is_shown_next_to_its_field_with_the_form_kept(app) {
        let ada = app.sign_in("ada@example.org", "Ada").await;
        let cases = [
            ("name", "x".repeat(81), "limited to 80 characters"),
            ("name", "Circle\r\nBcc: eve@example.org".to_string(), "one line"),
            ("name", "<script>alert(1)</script>\u{202E}".to_string(), "control character"),
            ("time_zone", "Mars/Olympus".to_string(), "Mars/Olympus"),
            ("size_cap", "13".to_string(), "3 to 12 people"),
            ("size_cap", "two".to_string(), "3 to 12 people"),
            ("cadence_kind", "cron".to_string(), "cron"),
        ];
        for (field, value, message) in cases {
            let mut form = with(&circle_form(), field, &value);
            if field == "cadence_kind" {
                form = with(&form, "cron", "*/10 * * * *");
            }
            let response = post(&app, &ada, "/circles", &form).await;
            assert_eq!(response.status().as_u16(), 422, "{field}={value:?}");
            let page = response.text().await.expect("page");
            assert!(page.contains(message), "{field}: expected {message:?} in the page");
            assert!(page.contains("Turning what we learn into what we do."), "the form is kept");
            assert!(!page.contains("<script>alert"), "escaped");
        }
        let never = with(&with(&circle_form(), "cadence_kind", "cron"), "cron", "0 9 31 2 *");
        let page = post(&app, &ada, "/circles", &never).await.text().await.expect("page");
        assert!(page.contains("never"), "{page}");
        let no_days: Vec<_> = circle_form().into_iter().filter(|(k, _)| *k != "day").collect();
        let response = post(&app, &ada, "/circles", &no_days).await;
        assert_eq!(response.status().as_u16(), 422);
        assert_eq!(circle_count(&app).await, 0, "nothing was saved");
    }
}

on_both_backends! {
    async fn a_circle_answers_only_to_its_members(app) {
        let ada = app.sign_in("ada@example.org", "Ada").await;
        let eve = app.sign_in("eve@example.org", "Eve").await;
        let id = start_circle(&app, &ada).await;
        for path in [
            format!("/circles/{id}"),
            format!("/circles/{id}/edit"),
            "/circles/999999".to_string(),
        ] {
            assert_eq!(app.get_as(&eve, &path).await.status().as_u16(), 404, "{path}");
        }
        let refused = post(&app, &eve, &format!("/circles/{id}/status"), &[("action", "archive".into())]).await;
        assert_eq!(refused.status().as_u16(), 404);
        let refused = post(&app, &eve, &format!("/circles/{id}/edit"), &circle_form()).await;
        assert_eq!(refused.status().as_u16(), 404);
        // Not signed in at all: sent to sign in, and brought back afterwards.
        let anonymous = app.get(&format!("/circles/{id}")).await;
        assert_eq!(anonymous.status().as_u16(), 303);
        assert_eq!(
            anonymous.headers()["location"],
            format!("/sign-in?next=%2Fcircles%2F{id}").as_str()
        );
        assert_eq!(app.get_as(&ada, "/circles/not-a-number").await.status().as_u16(), 400);
    }
}

on_both_backends! {
    async fn a_facilitator_edits_pauses_resumes_and_archives(app) {
        let ada = app.sign_in("ada@example.org", "Ada").await;
        let id = start_circle(&app, &ada).await;
        let edit = app.get_as(&ada, &format!("/circles/{id}/edit")).await.text().await.expect("page");
        assert!(edit.contains(r#"value="Tuesday accomplices""#));
        assert!(edit.contains("The next rounds"));

        let renamed = with(&circle_form(), "name", "Friday accomplices");
        let response = post(&app, &ada, &format!("/circles/{id}/edit"), &renamed).await;
        assert_eq!(response.status().as_u16(), 303);
        let page = app.get_as(&ada, &format!("/circles/{id}")).await.text().await.expect("page");
        assert!(page.contains("Friday accomplices"));

        post(&app, &ada, &format!("/circles/{id}/status"), &[("action", "pause".into()), ("confirm", "yes".into())]).await;
        let page = app.get_as(&ada, &format!("/circles/{id}")).await.text().await.expect("page");
        assert!(page.contains("This circle is paused."));
        assert!(page.contains("No round is scheduled."));

        post(&app, &ada, &format!("/circles/{id}/status"), &[("action", "resume".into()), ("confirm", "yes".into())]).await;
        let page = app.get_as(&ada, &format!("/circles/{id}")).await.text().await.expect("page");
        assert!(page.contains("Next round:"));

        let response = post(&app, &ada, &format!("/circles/{id}/status"), &[("action", "explode".into())]).await;
        assert_eq!(response.status().as_u16(), 422);

        post(&app, &ada, &format!("/circles/{id}/status"), &[("action", "archive".into()), ("confirm", "yes".into())]).await;
        let home = app.get_as(&ada, "/").await.text().await.expect("page");
        let (list, archived) = home.split_once("Archived circles").expect("an archived section");
        assert!(!list.contains(&format!("/circles/{id}\"")), "archived circles leave the list");
        assert!(archived.contains(&format!("/circles/{id}/status?action=resume")), "{archived}");
    }
}

on_both_backends! {
    async fn the_cap_cannot_drop_below_the_members_already_in(app) {
        let ada = app.sign_in("ada@example.org", "Ada").await;
        let id = start_circle(&app, &ada).await;
        add_member(&app, id, "bea@example.org", "Bea").await;
        add_member(&app, id, "cy@example.org", "Cy").await;
        add_member(&app, id, "dee@example.org", "Dee").await;
        let response = post(&app, &ada, &format!("/circles/{id}/edit"), &with(&circle_form(), "size_cap", "3")).await;
        assert_eq!(response.status().as_u16(), 422);
        assert!(response.text().await.expect("page").contains("already has 4 members"));
    }
}

on_both_backends! {
    async fn roles_leaving_and_removal(app) {
        let ada = app.sign_in("ada@example.org", "Ada").await;
        let id = start_circle(&app, &ada).await;
        let bea_membership = add_member(&app, id, "bea@example.org", "Bea").await;
        let bea = app.sign_in("bea@example.org", "Bea").await;

        // The only facilitator cannot leave without handing over.
        let response = app.post_form_as(&ada, &format!("/circles/{id}/leave"), &[("confirm", "yes")]).await;
        assert_eq!(response.status().as_u16(), 409);
        assert!(response.text().await.expect("page").contains("only facilitator"));

        // A member cannot manage others.
        let refused = app
            .post_form_as(&bea, &format!("/circles/{id}/members/{bea_membership}/facilitator"), &[])
            .await;
        assert_eq!(refused.status().as_u16(), 404);

        let handed = app
            .post_form_as(&ada, &format!("/circles/{id}/members/{bea_membership}/facilitator"), &[("confirm", "yes")])
            .await;
        assert_eq!(handed.status().as_u16(), 303);
        let left = app.post_form_as(&ada, &format!("/circles/{id}/leave"), &[("confirm", "yes")]).await;
        assert_eq!(left.status().as_u16(), 303);
        assert_eq!(app.get_as(&ada, &format!("/circles/{id}")).await.status().as_u16(), 404, "gone with leaving");

        let page = app.get_as(&bea, &format!("/circles/{id}")).await.text().await.expect("page");
        assert!(page.contains("Members (1 of 8)"));

        // Removal: Bea removes a newcomer, whose old session then opens nothing.
        let cy_membership = add_member(&app, id, "cy@example.org", "Cy").await;
        let cy = app.sign_in("cy@example.org", "Cy").await;
        assert_eq!(app.get_as(&cy, &format!("/circles/{id}")).await.status().as_u16(), 200);
        let removed = app
            .post_form_as(&bea, &format!("/circles/{id}/members/{cy_membership}/remove"), &[("confirm", "yes")])
            .await;
        assert_eq!(removed.status().as_u16(), 303);
        assert_eq!(app.get_as(&cy, &format!("/circles/{id}")).await.status().as_u16(), 404);
        let status: String = app
            .state
            .db
            .run(move |conn| {
                Ok::<String, DbError>(
                    memberships::table
                        .find(cy_membership)
                        .select(memberships::status)
                        .first(conn)?,
                )
            })
            .await
            .expect("read");
        assert_eq!(status, "removed");
    }
}

on_both_backends! {
    /// While a round is open the circle page leads with it: the way in for
    /// the viewer, and how many have checked in, skipped or are away; a
    /// facilitator also sees who, so they can reach out. Before, the page
    /// led with the next round and said nothing of this one.
    async fn the_circle_page_leads_with_the_open_round_and_where_it_stands(app) {
        use crate::support::{open_week, utc, weekly_circle};
        let people = [
            ("ada@example.org", "Ada"),
            ("bea@example.org", "Bea"),
            ("cy@example.org", "Cy"),
            ("dee@example.org", "Dee"),
        ];
        let id = weekly_circle(&app, "Night shift", &people).await;
        assert_eq!(open_week(&app, 1).await.rounds.opened, [(id, 1)]);
        let [ada, bea, cy, dee] = [
            app.sign_in(people[0].0, "Ada").await,
            app.sign_in(people[1].0, "Bea").await,
            app.sign_in(people[2].0, "Cy").await,
            app.sign_in(people[3].0, "Dee").await,
        ];
        let round = format!("/circles/{id}/rounds/1");
        let saved = app.post_form_as(&ada, &round, &[("reflection", "A good week.")]).await;
        assert_eq!(saved.status().as_u16(), 303);
        app.post_form_as(&bea, &format!("{round}/skip"), &[]).await;
        app.post_form_as(&cy, &format!("{round}/away"), &[("starts", "2027-03-01"), ("ends", "2027-03-05")]).await;
        let page = |cookie: String| {
            let app = &app;
            async move {
                app.get_as(&cookie, &format!("/circles/{id}")).await.text().await.expect("the circle page")
            }
        };
        let open = "Round 1 is open until Wednesday 3 March 2027, 09:00 UTC";
        let counts = "1 of 4 checked in, 1 skipped, 1 away.";

        let as_bea = page(bea).await;
        assert!(as_bea.contains(open), "{as_bea}");
        assert!(as_bea.contains("You skipped this round."), "{as_bea}");
        assert!(as_bea.contains(counts), "{as_bea}");
        assert!(!as_bea.contains("Not heard from yet"), "names are for facilitators");
        assert!(page(cy).await.contains("You are away for this round."));
        let as_dee = page(dee).await;
        assert!(as_dee.contains(&format!(r#"href="/circles/{id}/rounds/1">Check in for round 1</a>"#)), "{as_dee}");
        let as_ada = page(ada.clone()).await;
        assert!(as_ada.contains("You checked in."), "{as_ada}");
        for line in ["Checked in: Ada", "Skipped: Bea", "Away: Cy", "Not heard from yet: Dee"] {
            assert!(as_ada.contains(line), "{line} in {as_ada}");
        }
        assert!(as_ada.find(open) < as_ada.find("Rhythm"), "the open round leads");

        app.clock.set(utc("2027-03-03T09:00:00Z"));
        app.run_jobs().await;
        assert!(!page(ada).await.contains("is open until"), "a closed round no longer leads");
    }
}

/// The circle's status, each membership's (role, status), and its rounds.
async fn standing_of(app: &TestApp, circle_id: i64) -> (String, Vec<(String, String)>, i64) {
    query(app, move |conn| {
        let status = circles::table
            .find(circle_id)
            .select(circles::status)
            .first(conn)?;
        let members = memberships::table
            .filter(memberships::circle_id.eq(circle_id))
            .order(memberships::id.asc())
            .select((memberships::role, memberships::status))
            .load(conn)?;
        let rounds = rounds::table
            .filter(rounds::circle_id.eq(circle_id))
            .count()
            .get_result(conn)?;
        Ok((status, members, rounds))
    })
    .await
}

on_both_backends! {
    async fn every_disruptive_act_asks_first_and_answers_with_a_redirect(app) {
        let ada = app.sign_in("ada@example.org", "Ada").await;
        let id = start_circle(&app, &ada).await;
        let bea_membership = add_member(&app, id, "bea@example.org", "Bea").await;
        let cy_membership = add_member(&app, id, "cy@example.org", "Cy").await;
        let bea = app.sign_in("bea@example.org", "Bea").await;
        let before = standing_of(&app, id).await;

        let page = app.get_as(&ada, &format!("/circles/{id}")).await.text().await.expect("page");
        for link in [
            format!("/circles/{id}/status?action=pause"),
            format!("/circles/{id}/status?action=archive"),
            format!("/circles/{id}/members/{bea_membership}/facilitator"),
            format!("/circles/{id}/members/{cy_membership}/remove"),
            format!("/circles/{id}/leave"),
        ] {
            assert!(page.contains(&format!(r#"href="{link}""#)), "the circle page links to {link}: {page}");
        }
        assert!(page.contains(">Remove Cy<") && page.contains(">Make Cy a facilitator<"), "names of their own: {page}");

        // Opening a confirmation changes nothing; it says what will happen.
        for (who, path, asks) in [
            (&ada, format!("/circles/{id}/status?action=pause"), "Pause Tuesday accomplices?"),
            (&ada, format!("/circles/{id}/status?action=archive"), "Archive Tuesday accomplices?"),
            (&ada, format!("/circles/{id}/members/{bea_membership}/facilitator"), "Make Bea a facilitator of Tuesday accomplices?"),
            (&ada, format!("/circles/{id}/members/{cy_membership}/remove"), "Remove Cy from Tuesday accomplices?"),
            (&bea, format!("/circles/{id}/leave"), "Leave Tuesday accomplices?"),
        ] {
            let response = app.get_as(who, &path).await;
            assert_eq!(response.status().as_u16(), 200, "{path}");
            let page = response.text().await.expect("page");
            assert!(page.contains(asks) && page.contains(r#"name="confirm" value="yes""#) && page.contains("Cancel"), "{page}");
        }
        let refused = app.get_as(&bea, &format!("/circles/{id}/status?action=archive")).await;
        assert_eq!(refused.status().as_u16(), 404, "only facilitators are asked");
        // A POST without the confirmation only asks too.
        let asked = post(&app, &ada, &format!("/circles/{id}/status"), &[("action", "archive".into())]).await;
        assert_eq!(asked.status().as_u16(), 200);
        assert!(asked.text().await.expect("page").contains("Archive Tuesday accomplices?"));
        let asked = app.post_form_as(&ada, &format!("/circles/{id}/members/{cy_membership}/remove"), &[]).await;
        assert_eq!(asked.status().as_u16(), 200);
        assert_eq!(standing_of(&app, id).await, before, "nothing changed");

        // Confirmed, each is done once and answered with a redirect, so
        // loading the page it leads to, again and again, repeats nothing.
        for (who, path, fields, to, notice) in [
            (&ada, format!("/circles/{id}/status"), vec![("action", "pause")], format!("/circles/{id}?done=paused"), "The circle is paused"),
            (&ada, format!("/circles/{id}/members/{cy_membership}/remove"), vec![], format!("/circles/{id}?done=removed"), "They are no longer in the circle"),
            (&ada, format!("/circles/{id}/members/{bea_membership}/facilitator"), vec![], format!("/circles/{id}?done=facilitator"), "They are a facilitator of the circle now"),
        ] {
            let mut fields = fields;
            fields.push(("confirm", "yes"));
            let done = app.post_form_as(who, &path, &fields).await;
            assert_eq!(done.status().as_u16(), 303, "{path}");
            assert_eq!(done.headers()["location"], to.as_str());
            let after = standing_of(&app, id).await;
            for _ in 0..2 {
                let page = app.get_as(who, &to).await.text().await.expect("page");
                assert!(page.contains(notice), "{page}");
            }
            assert_eq!(standing_of(&app, id).await, after);
        }
        let left = app.post_form_as(&bea, &format!("/circles/{id}/leave"), &[("confirm", "yes")]).await;
        assert_eq!(left.status().as_u16(), 303);
        let (status, members, _) = standing_of(&app, id).await;
        assert_eq!(status, "paused");
        assert_eq!(
            members,
            [
                ("facilitator".to_string(), "active".to_string()),
                ("facilitator".to_string(), "left".to_string()),
                ("member".to_string(), "removed".to_string()),
            ]
        );
    }
}

on_both_backends! {
    async fn an_archived_circle_comes_back_without_making_up_missed_rounds(app) {
        let ada = app.sign_in("ada@example.org", "Ada").await;
        let id = start_circle(&app, &ada).await;
        let archived = post(&app, &ada, &format!("/circles/{id}/status"), &[("action", "archive".into()), ("confirm", "yes".into())]).await;
        assert_eq!(archived.status().as_u16(), 303);

        // Three weeks of Tuesdays and Fridays pass with nothing opened.
        app.clock.set(utc("2027-03-20T12:00:00Z"));
        app.run_jobs().await;
        assert_eq!(standing_of(&app, id).await.2, 0);

        let home = app.get_as(&ada, "/").await.text().await.expect("page");
        let unarchive = format!("/circles/{id}/status?action=resume");
        assert!(home.contains("Archived circles") && home.contains(&unarchive), "{home}");
        let page = app.get_as(&ada, &unarchive).await.text().await.expect("page");
        assert!(page.contains("Unarchive Tuesday accomplices?"), "{page}");
        let back = post(&app, &ada, &format!("/circles/{id}/status"), &[("action", "resume".into()), ("confirm", "yes".into())]).await;
        assert_eq!(back.status().as_u16(), 303);
        app.run_jobs().await;
        assert_eq!(standing_of(&app, id).await, ("active".to_string(), vec![("facilitator".to_string(), "active".to_string())], 0), "no missed round made up");
        let next: chrono::NaiveDateTime = query(&app, move |conn| {
            circles::table.find(id).select(circles::next_round_at.assume_not_null()).first(conn)
        })
        .await;
        // Tuesday 23 March, 09:00 in Toronto (on summer time by then).
        assert_eq!(next, utc("2027-03-23T13:00:00Z").naive_utc());
        app.clock.set(utc("2027-03-23T13:00:00Z"));
        app.run_jobs().await;
        let number: i32 = query(&app, move |conn| rounds::table.filter(rounds::circle_id.eq(id)).select(rounds::number).first(conn)).await;
        assert_eq!(number, 1, "the first round since, numbered as the first");
        let home = app.get_as(&ada, "/").await.text().await.expect("page");
        assert!(!home.contains("Archived circles") && home.contains(&format!(r#"href="/circles/{id}""#)), "{home}");
    }
}
