//! Inviting and joining, through real HTTP with mail read from the real SMTP
//! server: the reusable link, email invites and their caps, revoking, and
//! every way a join is refused.

use chrono::{Duration, NaiveDate};
use diesel::prelude::*;
use shoulder::circles::settings::{Settings, SettingsForm};
use shoulder::circles::store::{self, CircleStatus};
use shoulder::db::DbError;
use shoulder::db::schema::{deliveries, invites, memberships, people, sessions, sign_in_tokens};

use crate::on_both_backends;
use crate::support::{Backend, ReceivedEmail, TestApp, cookie_from, link_path};

const FACILITATOR: &str = "fay@example.org";

async fn add_person(app: &TestApp, email: &'static str, name: &'static str) -> i64 {
    let now = app.clock.now().naive_utc();
    app.state
        .db
        .run(move |conn| {
            let id = diesel::insert_into(people::table)
                .values((
                    people::email.eq(email),
                    people::display_name.eq(name),
                    people::created_at.eq(now),
                ))
                .returning(people::id)
                .get_result(conn)?;
            Ok::<i64, DbError>(id)
        })
        .await
        .expect("person added")
}

/// Starts a circle facilitated by `facilitator`, with the given size cap.
async fn start_circle(app: &TestApp, facilitator: i64, name: &str, size_cap: i32) -> i64 {
    let mut form = SettingsForm::new("America/Toronto");
    form.name = name.into();
    form.purpose = "Turning what we learn into what we do.".into();
    form.agreements = "We listen first.\nWe give credit.".into();
    form.days = vec!["tue".into()];
    form.size_cap = size_cap.to_string();
    let anchor = NaiveDate::from_ymd_opt(2027, 3, 1).expect("a date");
    let settings = Settings::parse(&form, anchor).expect("valid settings");
    let now = app.clock.now();
    app.state
        .db
        .run(move |conn| store::create(conn, facilitator, &settings, now))
        .await
        .expect("circle created")
}

/// Adds someone to a circle directly, as a plain member.
async fn add_member(app: &TestApp, circle_id: i64, person_id: i64) {
    let now = app.clock.now().naive_utc();
    app.state
        .db
        .run(move |conn| store::add_member(conn, circle_id, person_id, store::ROLE_MEMBER, now))
        .await
        .expect("member added");
}

/// Waits for `count` more emails than `before` and returns the new ones.
async fn deliver(app: &TestApp, before: usize, count: usize) -> Vec<ReceivedEmail> {
    app.run_jobs().await;
    let all = app.smtp.wait_for_messages(before + count);
    assert_eq!(all.len(), before + count, "exactly {count} new email(s)");
    all[before..].to_vec()
}

fn to<'a>(emails: &'a [ReceivedEmail], address: &str) -> &'a ReceivedEmail {
    emails
        .iter()
        .find(|email| email.to == [address.to_string()])
        .unwrap_or_else(|| panic!("no email to {address}"))
}

/// Signs `email` (an existing person) in through the emailed link.
async fn sign_in_as(app: &TestApp, email: &str) -> String {
    let before = app.emails().len();
    let asked = app.post_form("/sign-in", &[("email", email)]).await;
    assert_eq!(asked.status().as_u16(), 303);
    let emails = deliver(app, before, 1).await;
    let link = link_path(&emails[0].text_body(), app.public_base(), "/sign-in/");
    let response = app.post_form(&link, &[]).await;
    assert_eq!(response.status().as_u16(), 303, "signed in");
    cookie_from(&response)
}

/// A facilitator, signed in, with a circle of the given size cap.
async fn facilitator_with_circle(app: &TestApp, size_cap: i32) -> (i64, i64, String) {
    let fay = add_person(app, FACILITATOR, "Fay").await;
    let circle = start_circle(app, fay, "Tuesday accomplices", size_cap).await;
    let cookie = sign_in_as(app, FACILITATOR).await;
    (fay, circle, cookie)
}

/// Makes a reusable link on the invite page and returns its path.
async fn make_link(app: &TestApp, cookie: &str, circle_id: i64) -> String {
    app.make_invite_link(cookie, circle_id).await
}

/// Sends email invites and returns the page that says what happened: a
/// batch with nothing to look at again redirects to the invite page.
async fn invite(app: &TestApp, cookie: &str, circle_id: i64, addresses: &str) -> (u16, String) {
    invite_with_note(app, cookie, circle_id, addresses, "").await
}

async fn invite_with_note(
    app: &TestApp,
    cookie: &str,
    circle_id: i64,
    addresses: &str,
    note: &str,
) -> (u16, String) {
    let response = app
        .post_form_as(
            cookie,
            &format!("/circles/{circle_id}/invites"),
            &[("addresses", addresses), ("note", note)],
        )
        .await;
    let status = response.status().as_u16();
    if status == 303 {
        let location = response.headers()["location"]
            .to_str()
            .expect("ascii")
            .to_string();
        assert!(
            location.starts_with(&format!("/circles/{circle_id}/invites?done=sent&")),
            "{location}"
        );
        let page = app.get_as(cookie, &location).await;
        assert_eq!(page.status().as_u16(), 200);
        return (303, page.text().await.expect("page"));
    }
    (status, response.text().await.expect("page"))
}

/// Fills in the join form; returns the answer's status and page, the
/// page a request sent redirects to with its status (200), that is.
async fn ask_to_join(app: &TestApp, join: &str, name: &str, email: &str) -> (u16, String) {
    let response = app
        .post_form(join, &[("name", name), ("email", email), ("accept", "yes")])
        .await;
    let status = response.status().as_u16();
    if status == 303 {
        assert_eq!(
            response.headers()["location"],
            format!("{join}/sent").as_str()
        );
        return app.follow("", response).await;
    }
    (status, response.text().await.expect("page"))
}

/// Asks to join and returns the path of the emailed confirmation link.
async fn confirmation_link(app: &TestApp, join: &str, name: &str, email: &str) -> String {
    let before = settled(app).await;
    let (status, page) = ask_to_join(app, join, name, email).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Check your email"), "{page}");
    let emails = deliver(app, before, 1).await;
    link_path(&emails[0].text_body(), app.public_base(), "/join/confirm/")
}

/// Sends whatever is queued (a facilitator told of an earlier join, say)
/// and waits until it has arrived: how many emails have, all told.
async fn settled(app: &TestApp) -> usize {
    app.run_jobs().await;
    let queued = app
        .state
        .db
        .run(|conn| {
            let n: i64 = deliveries::table.count().get_result(conn)?;
            Ok::<i64, DbError>(n)
        })
        .await
        .expect("counted");
    app.smtp
        .wait_for_messages(usize::try_from(queued).expect("a count"))
        .len()
}

/// Invites one address and returns the path of its emailed join link.
async fn emailed_invite(app: &TestApp, cookie: &str, circle_id: i64, address: &str) -> String {
    let before = app.emails().len();
    let (status, page) = invite(app, cookie, circle_id, address).await;
    assert_eq!(status, 303, "sent, and answered with a redirect: {page}");
    assert!(page.contains("1 invitation sent"), "{page}");
    let emails = deliver(app, before, 1).await;
    link_path(
        &to(&emails, address).text_body(),
        app.public_base(),
        "/join/",
    )
}

/// `(role, status)` of the person with `email` in the circle, if any row.
async fn membership(
    app: &TestApp,
    circle_id: i64,
    email: &'static str,
) -> Option<(String, String)> {
    app.state
        .db
        .run(move |conn| {
            let row = memberships::table
                .inner_join(people::table)
                .filter(memberships::circle_id.eq(circle_id))
                .filter(people::email.eq(email))
                .select((memberships::role, memberships::status))
                .first::<(String, String)>(conn)
                .optional()?;
            Ok::<_, DbError>(row)
        })
        .await
        .expect("queried")
}

async fn member_count(app: &TestApp, circle_id: i64) -> i64 {
    app.state
        .db
        .run(move |conn| {
            let n = memberships::table
                .filter(memberships::circle_id.eq(circle_id))
                .count()
                .get_result(conn)?;
            Ok::<i64, DbError>(n)
        })
        .await
        .expect("counted")
}

/// How many join confirmations have been used, and how many invites.
async fn used_tokens(app: &TestApp) -> (i64, i64) {
    app.state
        .db
        .run(|conn| {
            let joins = sign_in_tokens::table
                .filter(sign_in_tokens::purpose.eq("join"))
                .filter(sign_in_tokens::used_at.is_not_null())
                .count()
                .get_result(conn)?;
            let used_invites = invites::table
                .filter(invites::used_at.is_not_null())
                .count()
                .get_result(conn)?;
            Ok::<_, DbError>((joins, used_invites))
        })
        .await
        .expect("counted")
}

async fn count_deliveries(app: &TestApp, kind: &'static str) -> i64 {
    app.state
        .db
        .run(move |conn| {
            let n = deliveries::table
                .filter(deliveries::kind.eq(kind))
                .count()
                .get_result(conn)?;
            Ok::<i64, DbError>(n)
        })
        .await
        .expect("counted")
}

on_both_backends! {
    async fn someone_joins_through_the_shared_link_and_lands_on_the_circle(app) {
        let (_, circle, cookie) = facilitator_with_circle(&app, 8).await;
        let invites_page = format!("/circles/{circle}/invites");
        let page = app.get_as(&cookie, &invites_page).await.text().await.expect("page");
        assert!(page.contains("There is no invite link yet"), "{page}");

        let join = make_link(&app, &cookie, circle).await;
        let page = app.get_as(&cookie, &invites_page).await.text().await.expect("page");
        assert!(page.contains("An invite link exists (expires"), "{page}");
        assert!(page.contains("Make a new link"));
        assert!(!page.contains(&join), "the link is shown only when it is made");

        // Opening the invite shows the circle and changes nothing, however often.
        for _ in 0..2 {
            let (status, page) = app.get_text(&join).await;
            assert_eq!(status, 200);
            assert!(page.contains("Tuesday accomplices"), "{page}");
            assert!(page.contains("Turning what we learn into what we do."));
            assert!(page.contains("We give credit."));
            assert!(page.contains("Facilitated by Fay"));
            assert!(page.contains("I accept these agreements"));
        }

        // A form with problems comes back with each one named and the text kept.
        let response = app
            .post_form(&join, &[("name", "Bea\r\nBcc: x@example.org"), ("email", "bea at example.org")])
            .await;
        assert_eq!(response.status().as_u16(), 422);
        let page = response.text().await.expect("page");
        assert!(page.contains("one line"), "{page}");
        assert!(page.contains("cannot contain spaces"), "{page}");
        assert!(page.contains("tick the box"), "{page}");
        assert!(page.contains(r#"value="bea at example.org""#), "typed text kept");
        assert_eq!(count_deliveries(&app, "join_confirm").await, 0);

        let before = app.emails().len();
        let (status, page) = ask_to_join(&app, &join, "Bea", "Bea@Example.org").await;
        assert_eq!(status, 200);
        assert!(page.contains("bea@example.org"), "{page}");
        assert_eq!(membership(&app, circle, "bea@example.org").await, None, "nobody added yet");
        let emails = deliver(&app, before, 1).await;
        let email = to(&emails, "bea@example.org");
        assert_eq!(
            email.subject().as_deref(),
            Some("Confirm that you are joining Tuesday accomplices")
        );
        let confirm = link_path(&email.text_body(), app.public_base(), "/join/confirm/");

        for _ in 0..2 {
            let (status, page) = app.get_text(&confirm).await;
            assert_eq!(status, 200);
            assert!(page.contains("Join the circle"), "{page}");
            assert!(page.contains(r#"method="post""#));
        }
        assert_eq!(membership(&app, circle, "bea@example.org").await, None, "a GET adds nobody");
        assert_eq!(used_tokens(&app).await, (0, 0), "and uses nothing");

        let response = app.post_form(&confirm, &[]).await;
        assert_eq!(response.status().as_u16(), 303);
        assert_eq!(response.headers()["location"], format!("/circles/{circle}").as_str());
        let bea = cookie_from(&response);
        assert_eq!(
            membership(&app, circle, "bea@example.org").await,
            Some(("member".into(), "active".into()))
        );
        let circle_page = app.get_as(&bea, &format!("/circles/{circle}")).await;
        assert_eq!(circle_page.status().as_u16(), 200, "the new member sees the circle");

        // A member who is not a facilitator finds no invite page.
        assert_eq!(app.get_as(&bea, &invites_page).await.status().as_u16(), 404);

        let again = app.post_form(&confirm, &[]).await;
        assert_eq!(again.status().as_u16(), 410);
        assert!(again.text().await.expect("page").contains("has been used"));
        assert_eq!(member_count(&app, circle).await, 2);
    }
}

on_both_backends! {
    async fn email_invites_report_what_happened_to_each_address(app) {
        let (_, circle, cookie) = facilitator_with_circle(&app, 8).await;
        let before = app.emails().len();
        let (status, page) = invite(
            &app,
            &cookie,
            circle,
            "cy@example.org, Dee@Example.org\nnot an address\ndee@example.org\nfay@example.org",
        )
        .await;
        assert_eq!(status, 200, "some sent, one to put right: {page}");
        assert!(page.contains("2 of 5 sent"), "{page}");
        assert_eq!(page.matches("<td>Invited.</td>").count(), 2, "{page}");
        assert!(page.contains("Not sent: an email address cannot contain spaces"), "{page}");
        assert!(page.contains("Listed twice; invited once."), "{page}");
        assert!(page.contains("Already a member of this circle."), "{page}");
        // Only the address to put right stays in the box.
        assert!(page.contains(r#"aria-describedby="addresses-hint">not an address</textarea>"#), "{page}");

        let emails = deliver(&app, before, 2).await;
        for address in ["cy@example.org", "dee@example.org"] {
            let email = to(&emails, address);
            assert_eq!(
                email.subject().as_deref(),
                Some("Fay invites you to join Tuesday accomplices on Shoulder")
            );
            let text = email.text_body();
            assert!(text.contains("Turning what we learn into what we do."), "{text}");
            assert!(text.contains("stays open for 14 days"), "{text}");
            link_path(&text, app.public_base(), "/join/");
        }

        let page = app
            .get_as(&cookie, &format!("/circles/{circle}/invites"))
            .await
            .text()
            .await
            .expect("page");
        assert!(page.contains("cy@example.org") && page.contains("dee@example.org"), "{page}");
        assert_eq!(page.matches("Revoke").count(), 2, "{page}");

        // Within a day, the same address is not emailed again; nothing to
        // put right, so the answer is a redirect saying so in counts.
        let (status, page) = invite(&app, &cookie, circle, "cy@example.org\nfay@example.org\nFAY@example.org").await;
        assert_eq!(status, 303);
        assert!(page.contains("No invitation was sent."), "{page}");
        assert!(page.contains("1 address is already a member."), "{page}");
        assert!(page.contains("1 address was invited in the last day, so it was not emailed again."), "{page}");
        assert!(page.contains("1 address was listed twice and invited once."), "{page}");
        assert_eq!(count_deliveries(&app, "invite").await, 2);

        // After a day it is, with a fresh link; the old one stops working.
        let old = link_path(&to(&emails, "cy@example.org").text_body(), app.public_base(), "/join/");
        app.clock.advance(Duration::hours(25));
        let new = emailed_invite(&app, &cookie, circle, "cy@example.org").await;
        assert_ne!(old, new);
        assert_eq!(app.get_text(&old).await.0, 404);
        assert_eq!(app.get_text(&new).await.0, 200);
        assert_eq!(count_deliveries(&app, "invite").await, 3);
    }
}

on_both_backends! {
    async fn an_email_invite_joins_its_own_address_once(app) {
        let (_, circle, cookie) = facilitator_with_circle(&app, 8).await;
        let join = emailed_invite(&app, &cookie, circle, "cy@example.org").await;
        let (status, page) = app.get_text(&join).await;
        assert_eq!(status, 200);
        assert!(page.contains(r#"value="cy@example.org" readonly"#), "{page}");

        // Whatever the form says, the invited address is the one that joins.
        let confirm = confirmation_link(&app, &join, "Cy", "someone-else@example.org").await;
        let response = app.post_form(&confirm, &[]).await;
        assert_eq!(response.status().as_u16(), 303);
        assert!(membership(&app, circle, "cy@example.org").await.is_some());
        assert!(membership(&app, circle, "someone-else@example.org").await.is_none());
        assert_eq!(used_tokens(&app).await, (1, 1));

        let page = app
            .get_as(&cookie, &format!("/circles/{circle}/invites"))
            .await
            .text()
            .await
            .expect("page");
        assert!(page.contains("No email invitations are waiting"), "{page}");

        let (status, page) = app.get_text(&join).await;
        assert_eq!(status, 410);
        assert!(page.contains("This invitation has been used"), "{page}");
        assert_eq!(ask_to_join(&app, &join, "Cy", "cy@example.org").await.0, 410);
    }
}

on_both_backends! {
    async fn a_revoked_invite_refuses_even_a_pending_confirmation(app) {
        let (_, circle, cookie) = facilitator_with_circle(&app, 8).await;
        let join = emailed_invite(&app, &cookie, circle, "cy@example.org").await;
        let confirm = confirmation_link(&app, &join, "Cy", "cy@example.org").await;
        let invite_id: i64 = app
            .state
            .db
            .run(|conn| {
                let id = invites::table.select(invites::id).first(conn)?;
                Ok::<i64, DbError>(id)
            })
            .await
            .expect("the invite");

        let response = app
            .post_form_as(&cookie, &format!("/circles/{circle}/invites/{invite_id}/revoke"), &[])
            .await;
        assert_eq!(response.status().as_u16(), 303);
        let back = response.headers()["location"].to_str().expect("ascii").to_string();
        let page = app.get_as(&cookie, &back).await.text().await.expect("page");
        assert!(page.contains("The invitation was withdrawn"), "{page}");
        assert!(page.contains("No email invitations are waiting"), "{page}");

        let (status, page) = app.get_text(&join).await;
        assert_eq!(status, 410);
        assert!(page.contains("This invitation was withdrawn"), "{page}");
        assert_eq!(ask_to_join(&app, &join, "Cy", "cy@example.org").await.0, 410);

        let (status, page) = app.get_text(&confirm).await;
        assert_eq!(status, 410, "{page}");
        let response = app.post_form(&confirm, &[]).await;
        assert_eq!(response.status().as_u16(), 410);
        assert!(response.headers().get("set-cookie").is_none());
        assert!(membership(&app, circle, "cy@example.org").await.is_none());
        assert_eq!(used_tokens(&app).await, (0, 0), "nothing half-written");

        // Revoking again says it is no longer waiting.
        let response = app
            .post_form_as(&cookie, &format!("/circles/{circle}/invites/{invite_id}/revoke"), &[])
            .await;
        assert_eq!(response.headers()["location"], format!("/circles/{circle}/invites?done=closed").as_str());
    }
}

on_both_backends! {
    async fn expired_links_and_invites_say_so(app) {
        let (_, circle, cookie) = facilitator_with_circle(&app, 8).await;
        let shared = make_link(&app, &cookie, circle).await;
        let emailed = emailed_invite(&app, &cookie, circle, "cy@example.org").await;
        let confirm = confirmation_link(&app, &shared, "Dee", "dee@example.org").await;

        // The confirmation link lasts a day.
        app.clock.advance(Duration::hours(25));
        let (status, page) = app.get_text(&confirm).await;
        assert_eq!(status, 410);
        assert!(page.contains("This confirmation link has expired"), "{page}");
        assert_eq!(app.post_form(&confirm, &[]).await.status().as_u16(), 410);

        // Invites last the configured 14 days.
        app.clock.advance(Duration::days(14));
        for join in [&shared, &emailed] {
            let (status, page) = app.get_text(join).await;
            assert_eq!(status, 410, "{join}");
            assert!(page.contains("This invitation has expired"), "{page}");
            assert_eq!(ask_to_join(&app, join, "Dee", "dee@example.org").await.0, 410);
        }
        let page = app
            .get_as(&cookie, &format!("/circles/{circle}/invites"))
            .await
            .text()
            .await
            .expect("page");
        assert!(page.contains("The last invite link expired on"), "{page}");
        assert!(page.contains("No email invitations are waiting"), "{page}");
        assert_eq!(member_count(&app, circle).await, 1);
    }
}

on_both_backends! {
    async fn a_full_circle_refuses_at_confirmation_and_leaves_the_link_unused(app) {
        let (_, circle, cookie) = facilitator_with_circle(&app, 3).await;
        let gus = add_person(&app, "gus@example.org", "Gus").await;
        add_member(&app, circle, gus).await;
        let join = make_link(&app, &cookie, circle).await;
        // One place left, two people asking for it.
        let first = confirmation_link(&app, &join, "Bea", "bea@example.org").await;
        let second = confirmation_link(&app, &join, "Cy", "cy@example.org").await;
        assert_eq!(app.post_form(&first, &[]).await.status().as_u16(), 303);

        let response = app.post_form(&second, &[]).await;
        assert_eq!(response.status().as_u16(), 409);
        assert!(response.text().await.expect("page").contains("Tuesday accomplices is full"));
        assert!(membership(&app, circle, "cy@example.org").await.is_none());
        assert_eq!(used_tokens(&app).await, (1, 0), "the refused link stays unused");
        let (status, page) = app.get_text(&join).await;
        assert_eq!(status, 409);
        assert!(page.contains("is full"), "{page}");
    }
}

on_both_backends! {
    async fn a_member_is_told_they_are_in_already(app) {
        let (_, circle, cookie) = facilitator_with_circle(&app, 8).await;
        let gus = add_person(&app, "gus@example.org", "Gus").await;
        add_member(&app, circle, gus).await;
        let join = make_link(&app, &cookie, circle).await;

        // Signed in, the facilitator is told at once.
        let response = app.get_as(&cookie, &join).await;
        assert_eq!(response.status().as_u16(), 409);
        assert!(response.text().await.expect("page").contains("You are already in Tuesday accomplices"));

        // Anyone else learns it only by confirming from the address's inbox.
        let confirm = confirmation_link(&app, &join, "Gus again", "gus@example.org").await;
        let response = app.post_form(&confirm, &[]).await;
        assert_eq!(response.status().as_u16(), 409);
        assert!(response.text().await.expect("page").contains("You are already in"));
        assert_eq!(member_count(&app, circle).await, 2);
        assert_eq!(used_tokens(&app).await, (0, 0));
    }
}

on_both_backends! {
    async fn paused_and_archived_circles_take_nobody_new(app) {
        let (_, circle, cookie) = facilitator_with_circle(&app, 8).await;
        let join = make_link(&app, &cookie, circle).await;
        let confirm = confirmation_link(&app, &join, "Bea", "bea@example.org").await;
        for status in [CircleStatus::Paused, CircleStatus::Archived] {
            let now = app.clock.now();
            app.state
                .db
                .run(move |conn| store::set_status(conn, circle, status, now))
                .await
                .expect("status changed");
            let (code, page) = app.get_text(&join).await;
            assert_eq!(code, 409);
            assert!(page.contains("is not taking new members"), "{page}");
            assert_eq!(app.post_form(&confirm, &[]).await.status().as_u16(), 409);
            let (code, _) = invite(&app, &cookie, circle, "cy@example.org").await;
            assert_eq!(code, 409, "no invites into a {status:?} circle");
        }
        assert_eq!(member_count(&app, circle).await, 1);
        assert_eq!(count_deliveries(&app, "invite").await, 0);
    }
}

on_both_backends! {
    async fn only_a_facilitator_of_the_circle_reaches_its_invites(app) {
        let (_, circle, cookie) = facilitator_with_circle(&app, 8).await;
        emailed_invite(&app, &cookie, circle, "cy@example.org").await;
        let invite_id: i64 = app
            .state
            .db
            .run(|conn| {
                let id = invites::table.select(invites::id).first(conn)?;
                Ok::<i64, DbError>(id)
            })
            .await
            .expect("the invite");

        let gus = add_person(&app, "gus@example.org", "Gus").await;
        add_member(&app, circle, gus).await;
        let member = sign_in_as(&app, "gus@example.org").await;
        // Hal facilitates a circle of his own, not this one.
        let hal = add_person(&app, "hal@example.org", "Hal").await;
        let other = start_circle(&app, hal, "Hal's circle", 8).await;
        let stranger = sign_in_as(&app, "hal@example.org").await;

        for who in [&member, &stranger] {
            let get = app.get_as(who, &format!("/circles/{circle}/invites")).await;
            assert_eq!(get.status().as_u16(), 404);
            for (path, fields) in [
                (format!("/circles/{circle}/invites"), vec![("addresses", "x@example.org")]),
                (format!("/circles/{circle}/invites/link"), vec![]),
                (format!("/circles/{circle}/invites/{invite_id}/revoke"), vec![]),
            ] {
                let response = app.post_form_as(who, &path, &fields).await;
                assert_eq!(response.status().as_u16(), 404, "{path}");
            }
        }
        // Another circle's invite id, through Hal's own circle, is not found either.
        let response = app
            .post_form_as(&stranger, &format!("/circles/{other}/invites/{invite_id}/revoke"), &[])
            .await;
        assert_eq!(response.status().as_u16(), 404);
        assert_eq!(app.get_as(&stranger, "/circles/abc/invites").await.status().as_u16(), 404);

        // Nobody signed in is sent to sign in first.
        let response = app.get(&format!("/circles/{circle}/invites")).await;
        assert_eq!(response.status().as_u16(), 303);
        assert!(response.headers()["location"].to_str().expect("ascii").starts_with("/sign-in?next="));

        assert_eq!(count_deliveries(&app, "invite").await, 1, "nothing was sent");
        let page = app
            .get_as(&cookie, &format!("/circles/{circle}/invites"))
            .await
            .text()
            .await
            .expect("page");
        assert!(page.contains("cy@example.org"), "still waiting: {page}");
    }
}

on_both_backends! {
    async fn invite_and_join_tokens_never_work_as_sign_in_links_nor_the_reverse(app) {
        let (_, circle, cookie) = facilitator_with_circle(&app, 8).await;
        let join = make_link(&app, &cookie, circle).await;
        let emailed = emailed_invite(&app, &cookie, circle, "cy@example.org").await;
        let confirm = confirmation_link(&app, &join, "Bea", "bea@example.org").await;
        let token_of = |path: &str| path.rsplit('/').next().expect("a token").to_string();

        for token in [token_of(&join), token_of(&emailed), token_of(&confirm)] {
            let path = format!("/sign-in/{token}");
            assert_eq!(app.get_text(&path).await.0, 404, "{path}");
            let response = app.post_form(&path, &[("name", "Mallory")]).await;
            assert_eq!(response.status().as_u16(), 404, "{path}");
            assert!(response.headers().get("set-cookie").is_none());
        }
        assert_eq!(used_tokens(&app).await, (0, 0), "the join link is still unused");

        // And a sign-in link opens no join.
        let before = app.emails().len();
        app.post_form("/sign-in", &[("email", FACILITATOR)]).await;
        let emails = deliver(&app, before, 1).await;
        let sign_in = link_path(&emails[0].text_body(), app.public_base(), "/sign-in/");
        let token = token_of(&sign_in);
        for path in [format!("/join/confirm/{token}"), format!("/join/{token}")] {
            assert_eq!(app.get_text(&path).await.0, 404, "{path}");
            assert_eq!(app.post_form(&path, &[]).await.status().as_u16(), 404, "{path}");
        }
        assert_eq!(member_count(&app, circle).await, 1);

        // The confirmation still works for the one it was meant for.
        assert_eq!(app.post_form(&confirm, &[]).await.status().as_u16(), 303);
    }
}

on_both_backends! {
    async fn two_simultaneous_confirmations_make_one_membership(app) {
        let (_, circle, cookie) = facilitator_with_circle(&app, 8).await;
        let join = make_link(&app, &cookie, circle).await;
        let confirm = confirmation_link(&app, &join, "Bea", "bea@example.org").await;
        let (first, second) =
            tokio::join!(app.post_form(&confirm, &[]), app.post_form(&confirm, &[]));
        let mut statuses = [first.status().as_u16(), second.status().as_u16()];
        statuses.sort_unstable();
        assert_eq!(statuses, [303, 410]);
        assert_eq!(member_count(&app, circle).await, 2);
        let (people_named_bea, bea_sessions) = app
            .state
            .db
            .run(|conn| {
                let people_named_bea: i64 = people::table
                    .filter(people::email.eq("bea@example.org"))
                    .count()
                    .get_result(conn)?;
                let bea_sessions: i64 = sessions::table
                    .inner_join(people::table)
                    .filter(people::email.eq("bea@example.org"))
                    .count()
                    .get_result(conn)?;
                Ok::<_, DbError>((people_named_bea, bea_sessions))
            })
            .await
            .expect("counted");
        assert_eq!((people_named_bea, bea_sessions), (1, 1));
    }
}

on_both_backends! {
    async fn simultaneous_joins_for_the_last_place_admit_one(app) {
        let (_, circle, cookie) = facilitator_with_circle(&app, 3).await;
        let gus = add_person(&app, "gus@example.org", "Gus").await;
        add_member(&app, circle, gus).await;
        let join = make_link(&app, &cookie, circle).await;
        let bea = confirmation_link(&app, &join, "Bea", "bea@example.org").await;
        let cy = confirmation_link(&app, &join, "Cy", "cy@example.org").await;
        let (first, second) = tokio::join!(app.post_form(&bea, &[]), app.post_form(&cy, &[]));
        let mut statuses = [first.status().as_u16(), second.status().as_u16()];
        statuses.sort_unstable();
        assert_eq!(statuses, [303, 409]);
        assert_eq!(member_count(&app, circle).await, 3, "the size cap holds");
    }
}

on_both_backends! {
    async fn a_person_may_join_several_circles_and_come_back_after_leaving(app) {
        let (fay, first, cookie) = facilitator_with_circle(&app, 8).await;
        let second = start_circle(&app, fay, "Thursday listeners", 8).await;
        for circle in [first, second] {
            let join = make_link(&app, &cookie, circle).await;
            let confirm = confirmation_link(&app, &join, "Bea", "bea@example.org").await;
            assert_eq!(app.post_form(&confirm, &[]).await.status().as_u16(), 303);
        }
        assert!(membership(&app, first, "bea@example.org").await.is_some());
        assert!(membership(&app, second, "bea@example.org").await.is_some());

        // Bea leaves the first circle, then returns through its link.
        let now = app.clock.now().naive_utc();
        app.state
            .db
            .run(move |conn| {
                diesel::update(
                    memberships::table
                        .filter(memberships::circle_id.eq(first))
                        .filter(memberships::role.eq("member")),
                )
                .set((memberships::status.eq("left"), memberships::left_at.eq(now)))
                    .execute(conn)?;
                Ok::<_, DbError>(())
            })
            .await
            .expect("left");
        let join = make_link(&app, &cookie, first).await;
        let confirm = confirmation_link(&app, &join, "Bea", "bea@example.org").await;
        assert_eq!(app.post_form(&confirm, &[]).await.status().as_u16(), 303);
        assert_eq!(
            membership(&app, first, "bea@example.org").await,
            Some(("member".into(), "active".into()))
        );
        assert_eq!(member_count(&app, first).await, 2, "the same row, restarted");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn someone_removed_needs_a_personal_invite_to_return() {
    let app = TestApp::start(Backend::Sqlite).await.expect("sqlite");
    let (_, circle, cookie) = facilitator_with_circle(&app, 8).await;
    let gus = add_person(&app, "gus@example.org", "Gus").await;
    add_member(&app, circle, gus).await;
    app.state
        .db
        .run(move |conn| {
            diesel::update(memberships::table.filter(memberships::person_id.eq(gus)))
                .set(memberships::status.eq("removed"))
                .execute(conn)?;
            Ok::<_, DbError>(())
        })
        .await
        .expect("removed");
    let join = make_link(&app, &cookie, circle).await;
    let confirm = confirmation_link(&app, &join, "Gus", "gus@example.org").await;
    let response = app.post_form(&confirm, &[]).await;
    assert_eq!(response.status().as_u16(), 409);
    assert!(
        response
            .text()
            .await
            .expect("page")
            .contains("ask them to invite you by email")
    );

    let emailed = emailed_invite(&app, &cookie, circle, "gus@example.org").await;
    let confirm = confirmation_link(&app, &emailed, "Gus", "gus@example.org").await;
    assert_eq!(app.post_form(&confirm, &[]).await.status().as_u16(), 303);
    assert_eq!(
        membership(&app, circle, "gus@example.org").await,
        Some(("member".into(), "active".into()))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_or_overlong_address_list_is_refused_whole_and_kept() {
    let app = TestApp::start(Backend::Sqlite).await.expect("sqlite");
    let (_, circle, cookie) = facilitator_with_circle(&app, 8).await;
    let (status, page) = invite(&app, &cookie, circle, "  \n , ").await;
    assert_eq!(status, 422);
    assert!(page.contains("Add at least one email address."), "{page}");

    let many: Vec<String> = (0..21).map(|i| format!("p{i}@example.org")).collect();
    let typed = many.join("\n");
    let (status, page) = invite(&app, &cookie, circle, &typed).await;
    assert_eq!(status, 422);
    assert!(
        page.contains("At most 20 addresses at once (this list has 21)."),
        "{page}"
    );
    assert!(
        page.contains("p20@example.org"),
        "the list is kept as typed"
    );
    assert_eq!(count_deliveries(&app, "invite").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invite_caps_hold_per_circle_and_per_facilitator_per_day() {
    let app = TestApp::start(Backend::Sqlite).await.expect("sqlite");
    let (fay, circle, cookie) = facilitator_with_circle(&app, 8).await;
    let batch = |from: usize, to: usize| -> String {
        (from..to)
            .map(|i| format!("p{i}@example.org"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    invite(&app, &cookie, circle, &batch(0, 20)).await;
    let (_, page) = invite(&app, &cookie, circle, &batch(20, 32)).await;
    assert!(page.contains("10 of 12 sent"), "{page}");
    assert_eq!(
        page.matches("as many invitations waiting as it may")
            .count(),
        2
    );

    // Thirty more in a second circle make sixty today: the daily cap.
    let second = start_circle(&app, fay, "Thursday listeners", 8).await;
    invite(&app, &cookie, second, &batch(100, 120)).await;
    let (_, page) = invite(&app, &cookie, second, &batch(120, 130)).await;
    assert!(page.contains("10 invitations sent"), "{page}");
    assert_eq!(count_deliveries(&app, "invite").await, 60);

    // A third circle has room, but Fay has no invitations left today.
    let third = start_circle(&app, fay, "Friday neighbours", 8).await;
    let (_, page) = invite(&app, &cookie, third, "p999@example.org").await;
    assert!(page.contains("0 of 1 sent"), "{page}");
    assert!(
        page.contains("as many invitations today as one person may"),
        "{page}"
    );

    // A new day, a new allowance.
    app.clock.advance(Duration::days(1));
    let (_, page) = invite(&app, &cookie, third, "p999@example.org").await;
    assert!(page.contains("1 invitation sent"), "{page}");
    assert_eq!(count_deliveries(&app, "invite").await, 61);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asking_to_join_too_often_quietly_stops_sending() {
    let app = TestApp::start(Backend::Sqlite).await.expect("sqlite");
    let (_, circle, cookie) = facilitator_with_circle(&app, 8).await;
    let join = make_link(&app, &cookie, circle).await;
    let mut pages = Vec::new();
    for _ in 0..7 {
        let (status, page) = ask_to_join(&app, &join, "Bea", "bea@example.org").await;
        assert_eq!(status, 200);
        pages.push(page);
    }
    assert!(
        pages.windows(2).all(|w| w[0] == w[1]),
        "the page never changes"
    );
    assert_eq!(count_deliveries(&app, "join_confirm").await, 5);
}

/// The circle's stored link fingerprint, to show what a request changed.
async fn link_hash(app: &TestApp, circle_id: i64) -> Option<String> {
    app.state
        .db
        .run(move |conn| {
            shoulder::db::schema::circles::table
                .find(circle_id)
                .select(shoulder::db::schema::circles::invite_token_hash)
                .first::<Option<String>>(conn)
                .map_err(DbError::from)
        })
        .await
        .expect("the circle")
}

on_both_backends! {
    async fn a_working_link_is_replaced_only_when_confirmed_and_a_reload_repeats_nothing(app) {
        let (_, circle, cookie) = facilitator_with_circle(&app, 8).await;
        let invites_page = format!("/circles/{circle}/invites");
        let link_form = format!("/circles/{circle}/invites/link");

        // With no link yet nothing can be lost: the first one is made at once,
        // answered by a redirect that carries it to the invite page alone.
        let made = app.post_form_as(&cookie, &link_form, &[]).await;
        assert_eq!(made.status().as_u16(), 303);
        assert_eq!(
            made.headers().get("location").and_then(|l| l.to_str().ok()),
            Some(format!("{invites_page}?done=link#invite-link").as_str())
        );
        let set_cookie = made.headers().get("set-cookie").and_then(|c| c.to_str().ok()).expect("a cookie").to_string();
        assert!(set_cookie.contains(&format!("; Path={invites_page};")), "{set_cookie}");
        assert!(set_cookie.contains("HttpOnly; SameSite=Strict; Max-Age=600"), "{set_cookie}");
        let carried = cookie_from(&made);
        let first_hash = link_hash(&app, circle).await.expect("a link");

        // Reloading the page it lands on shows the same link again and changes nothing.
        let with_link = format!("{cookie}; {carried}");
        let mut shown = Vec::new();
        for _ in 0..2 {
            let page = app.get_as(&with_link, &format!("{invites_page}?done=link")).await.text().await.expect("page");
            assert!(page.contains("Here is the new invite link."), "{page}");
            assert!(page.contains(r#"data-copy-button="copy-invite-url""#), "{page}");
            assert!(page.contains(r#"id="copy-invite-url" type="button" hidden"#), "the copy button waits for the script: {page}");
            shown.push(link_path(&page, app.public_base(), "/join/"));
        }
        assert_eq!(shown[0], shown[1]);
        let first = shown[0].clone();
        assert_eq!(link_hash(&app, circle).await.as_deref(), Some(first_hash.as_str()));
        // Without the cookie (another browser, or later) only its existence shows.
        let page = app.get_as(&cookie, &invites_page).await.text().await.expect("page");
        assert!(!page.contains(&first), "{page}");
        assert!(page.contains("An invite link exists (expires"), "{page}");

        // Replacing a link that works asks first: the GET page and an
        // unconfirmed POST both say what happens, and neither changes it.
        let (status, asked) = {
            let response = app.get_as(&cookie, &link_form).await;
            (response.status().as_u16(), response.text().await.expect("page"))
        };
        assert_eq!(status, 200);
        assert!(asked.contains("Replace the invite link of Tuesday accomplices?"), "{asked}");
        assert!(asked.contains("stops working at once"), "{asked}");
        assert!(asked.contains(r#"name="confirm" value="yes""#), "{asked}");
        let unconfirmed = app.post_form_as(&cookie, &link_form, &[]).await;
        assert_eq!(unconfirmed.status().as_u16(), 200);
        assert!(unconfirmed.text().await.expect("page").contains("Replace the link"));
        assert_eq!(link_hash(&app, circle).await.as_deref(), Some(first_hash.as_str()));
        assert_eq!(app.get_text(&first).await.0, 200, "the shared link still works");

        // Confirmed, the old link stops working and the old cookie shows nothing stale.
        let second = app.make_invite_link(&cookie, circle).await;
        assert_ne!(second, first);
        assert_eq!(app.get_text(&first).await.0, 404, "a replaced link is no link at all");
        assert_eq!(app.get_text(&second).await.0, 200);
        // The page after asking to join knows no made-up or replaced link.
        assert_eq!(app.get_text("/join/not-a-token/sent").await.0, 404);
        assert_eq!(app.get_text(&format!("{first}/sent")).await.0, 404);
        let page = app.get_as(&with_link, &invites_page).await.text().await.expect("page");
        assert!(!page.contains(&first) && !page.contains(&second), "{page}");
    }
}

on_both_backends! {
    async fn an_email_invite_carries_the_facilitator_s_note_and_a_long_one_is_refused_whole(app) {
        let (_, circle, cookie) = facilitator_with_circle(&app, 8).await;
        let too_long = "I thought of you. ".repeat(40);
        let (status, page) = invite_with_note(&app, &cookie, circle, "cy@example.org\ndee@example.org", &too_long).await;
        assert_eq!(status, 422);
        assert!(page.contains("Your note: this is limited to 600 characters (you wrote 719)."), "{page}");
        // Both fields come back as typed, the note tied to its message and
        // the summary at the top linking to it.
        assert!(page.contains(">cy@example.org\ndee@example.org</textarea>"), "{page}");
        assert!(page.contains(&format!("{too_long}</textarea>")), "{page}");
        assert!(page.contains(r#"id="note" name="note" rows="3" aria-invalid="true" aria-describedby="note-error note-hint">"#), "{page}");
        assert!(page.contains(r##"<a href="#note">Your note: this is limited"##), "{page}");
        assert!(page.contains(r#"class="error-summary" id="problems" tabindex="-1" autofocus"#), "{page}");
        assert_eq!(count_deliveries(&app, "invite").await, 0, "nothing sent");

        let before = app.emails().len();
        let note = "Cy, you said you wanted company in this.\nThe first round is <gentle> & short.";
        let (status, page) = invite_with_note(&app, &cookie, circle, "cy@example.org", note).await;
        assert_eq!(status, 303, "{page}");
        let emails = deliver(&app, before, 1).await;
        let text = emails[0].text_body();
        assert!(text.contains(&format!("Fay adds:\n\n{note}")), "{text}");
        let html = emails[0].html_body().expect("html");
        assert!(html.contains("The first round is &lt;gentle&gt; &amp; short."), "{html}");

        // Without a note the email says nothing of one.
        let before = app.emails().len();
        invite(&app, &cookie, circle, "dee@example.org").await;
        let emails = deliver(&app, before, 1).await;
        assert!(!emails[0].text_body().contains("adds:"), "{}", emails[0].text_body());
    }
}

on_both_backends! {
    async fn the_join_page_says_when_the_circle_meets_in_the_reader_s_time(app) {
        let (_, circle, cookie) = facilitator_with_circle(&app, 8).await;
        let join = make_link(&app, &cookie, circle).await;
        let next: chrono::NaiveDateTime = app
            .state
            .db
            .run(move |conn| {
                shoulder::db::schema::circles::table
                    .find(circle)
                    .select(shoulder::db::schema::circles::next_round_at)
                    .first::<Option<chrono::NaiveDateTime>>(conn)
                    .map_err(DbError::from)
            })
            .await
            .expect("the circle")
            .expect("a next round");
        let toronto: chrono_tz::Tz = "America/Toronto".parse().expect("a zone");
        let there = next.and_utc().with_timezone(&toronto);

        // A visitor: the circle's rhythm and zone, and the next round there,
        // with the instant for the script to show in the browser's zone.
        let (_, page) = app.get_text(&join).await;
        assert!(page.contains("When it meets"), "{page}");
        assert!(page.contains(&format!("Every Tuesday at {} (Toronto time), each round open for", there.format("%H:%M"))), "{page}");
        assert!(page.contains(&there.format("%A %-d %B %Y, %H:%M").to_string()), "{page}");
        assert!(page.contains(&format!(r#"datetime="{}" data-local"#, next.and_utc().to_rfc3339_opts(chrono::SecondsFormat::Secs, true))), "{page}");

        // Someone signed in with a zone of their own reads it in theirs too.
        let hal = add_person(&app, "hal@example.org", "Hal").await;
        app.state
            .db
            .run(move |conn| shoulder::people::zone::set(conn, hal, "Europe/Berlin"))
            .await
            .expect("zone set");
        let hal_cookie = sign_in_as(&app, "hal@example.org").await;
        let page = app.get_as(&hal_cookie, &join).await.text().await.expect("page");
        let berlin: chrono_tz::Tz = "Europe/Berlin".parse().expect("a zone");
        let here = next.and_utc().with_timezone(&berlin);
        assert!(page.contains(&format!("{} your time", here.format("%H:%M"))), "{page}");
    }
}

on_both_backends! {
    async fn facilitators_hear_once_when_someone_joins_unless_they_turn_it_off(app) {
        let (_, circle, cookie) = facilitator_with_circle(&app, 8).await;
        let join = make_link(&app, &cookie, circle).await;
        let confirm = confirmation_link(&app, &join, "Bea", "bea@example.org").await;
        let before = app.emails().len();
        assert_eq!(app.post_form(&confirm, &[]).await.status().as_u16(), 303);
        let emails = deliver(&app, before, 1).await;
        let told = to(&emails, FACILITATOR);
        assert_eq!(told.subject().as_deref(), Some("Bea joined Tuesday accomplices"));
        let text = told.text_body();
        assert!(text.contains("which now has 2 of\n8 places taken") || text.contains("now has 2 of 8 places taken"), "{text}");
        assert!(text.contains(&format!("{}/circles/{circle}", app.public_base())), "{text}");

        // The setting sits under Email on the circle's page, for facilitators only.
        let page = app.get_as(&cookie, &format!("/circles/{circle}")).await.text().await.expect("page");
        assert!(page.contains("Stop emailing me when someone joins"), "{page}");
        let off = app.post_form_as(&cookie, &format!("/circles/{circle}/join-notices"), &[("notices", "off")]).await;
        assert_eq!(off.status().as_u16(), 303);
        assert_eq!(off.headers()["location"], format!("/circles/{circle}?done=join-notices-off#email").as_str());
        let refused = app.post_form_as(&cookie, &format!("/circles/{circle}/join-notices"), &[("notices", "maybe")]).await;
        assert_eq!(refused.status().as_u16(), 422);
        let page = app.get_as(&cookie, &format!("/circles/{circle}?done=join-notices-off")).await.text().await.expect("page");
        assert!(page.contains("You will no longer be emailed when someone joins."), "{page}");
        assert!(page.contains("Email me when someone joins"), "{page}");

        // Turned off, the next join tells nobody.
        let confirm = confirmation_link(&app, &join, "Cy", "cy@example.org").await;
        let before = app.emails().len();
        assert_eq!(app.post_form(&confirm, &[]).await.status().as_u16(), 303);
        app.run_jobs().await;
        assert_eq!(app.emails().len(), before, "no email when notices are off");
        assert_eq!(count_deliveries(&app, "joined").await, 1);

        // A member cannot reach the setting.
        let cy = sign_in_as(&app, "cy@example.org").await;
        let page = app.get_as(&cy, &format!("/circles/{circle}")).await.text().await.expect("page");
        assert!(!page.contains("when someone joins"), "{page}");
        let response = app.post_form_as(&cy, &format!("/circles/{circle}/join-notices"), &[("notices", "on")]).await;
        assert_eq!(response.status().as_u16(), 404);
    }
}
