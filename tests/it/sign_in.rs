//! Signing in by emailed link: the flow, and every way it refuses.

use chrono::Duration;
use diesel::prelude::*;
use shoulder::db::DbError;
use shoulder::db::schema::{deliveries, people, sessions};

use crate::on_both_backends;
use crate::support::{Backend, TestApp, cookie_from, link_path};

async fn add_person(app: &TestApp, email: &'static str, name: &'static str) {
    let now = app.clock.now().naive_utc();
    app.state
        .db
        .run(move |conn| {
            diesel::insert_into(people::table)
                .values((
                    people::email.eq(email),
                    people::display_name.eq(name),
                    people::created_at.eq(now),
                ))
                .execute(conn)?;
            Ok::<_, DbError>(())
        })
        .await
        .expect("person added");
}

async fn count(app: &TestApp, table: &'static str) -> i64 {
    app.state
        .db
        .run(move |conn| {
            let n = match table {
                "sessions" => sessions::table.count().get_result(conn)?,
                "deliveries" => deliveries::table.count().get_result(conn)?,
                "people" => people::table.count().get_result(conn)?,
                other => panic!("no counter for {other}"),
            };
            Ok::<i64, DbError>(n)
        })
        .await
        .expect("counted")
}

/// Asks for a link for `email`, delivers the outbox, and returns the link's path.
async fn emailed_link(app: &TestApp, email: &str) -> String {
    let before = app.emails().len();
    let response = app.post_form("/sign-in", &[("email", email)]).await;
    assert_eq!(response.status().as_u16(), 303);
    app.run_jobs().await;
    let emails = app.smtp.wait_for_messages(before + 1);
    let message = emails.last().expect("an email");
    assert_eq!(message.to, [email.to_lowercase()]);
    link_path(&message.text_body(), app.public_base(), "/sign-in/")
}

on_both_backends! {
    async fn a_known_person_signs_in_through_the_emailed_link(app) {
        add_person(&app, "ada@example.org", "Ada").await;
        let link = emailed_link(&app, "Ada@Example.org").await;
        let email = app.emails().pop().expect("the sign-in email");
        assert_eq!(email.subject().as_deref(), Some("Your link to sign in to Shoulder"));
        assert!(email.text_body().contains("Hello Ada"));

        // Opening the link only shows a button, however often it is opened.
        for _ in 0..2 {
            let (status, page) = app.get_text(&link).await;
            assert_eq!(status, 200);
            assert!(page.contains("ada@example.org"));
            assert!(page.contains(r#"method="post""#));
        }
        assert_eq!(count(&app, "sessions").await, 0, "a GET signs nobody in");

        let response = app.post_form(&link, &[]).await;
        assert_eq!(response.status().as_u16(), 303);
        assert_eq!(response.headers()["location"], "/");
        let set_cookie = response.headers()["set-cookie"].to_str().expect("ascii").to_string();
        assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
        assert!(set_cookie.contains("SameSite=Lax"), "{set_cookie}");
        assert!(!set_cookie.contains("Secure"), "not on plain http");
        let cookie = cookie_from(&response);

        let home = app.get_as(&cookie, "/").await.text().await.expect("page");
        assert!(home.contains("My circles"), "{home}");
        assert!(home.contains("Ada"));

        let again = app.post_form(&link, &[]).await;
        assert_eq!(again.status().as_u16(), 410);
        assert!(again.text().await.expect("page").contains("has been used"));
        assert_eq!(count(&app, "sessions").await, 1);
    }
}

on_both_backends! {
    async fn an_unknown_address_is_offered_a_circle_and_named_on_first_sign_in(app) {
        let link = emailed_link(&app, "bea@example.org").await;
        let email = app.emails().pop().expect("an email");
        assert_eq!(email.subject().as_deref(), Some("Start a circle on Shoulder"));
        assert_eq!(count(&app, "people").await, 0, "asking creates nobody");

        let (_, page) = app.get_text(&link).await;
        assert!(page.contains(r#"name="name""#), "a first sign-in asks for a name");

        let nameless = app.post_form(&link, &[("name", "  ")]).await;
        assert_eq!(nameless.status().as_u16(), 422);
        assert!(nameless.text().await.expect("page").contains("Please tell us your name"));

        let bad = app.post_form(&link, &[("name", "Bea\r\nBcc: x@example.org")]).await;
        assert_eq!(bad.status().as_u16(), 422);
        let page = bad.text().await.expect("page");
        assert!(page.contains("one line"), "{page}");
        assert_eq!(count(&app, "people").await, 0, "nothing half-written");

        let response = app.post_form(&link, &[("name", "Bea Q")]).await;
        assert_eq!(response.status().as_u16(), 303);
        assert_eq!(response.headers()["location"], "/circles/new", "on to start a circle");
        let home = app.get_as(&cookie_from(&response), "/").await.text().await.expect("page");
        assert!(home.contains("Bea Q"));
        assert_eq!(count(&app, "people").await, 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn known_and_unknown_addresses_get_the_same_answer() {
    let app = TestApp::start(Backend::Sqlite).await.expect("sqlite");
    add_person(&app, "ada@example.org", "Ada").await;
    let known = app
        .post_form("/sign-in", &[("email", "ada@example.org")])
        .await;
    let unknown = app
        .post_form("/sign-in", &[("email", "zed@example.org")])
        .await;
    assert_eq!(known.status(), unknown.status());
    let (_, known) = app.follow("", known).await;
    let (_, unknown) = app.follow("", unknown).await;
    assert!(
        known.contains("If <strong>ada@example.org</strong> can receive mail"),
        "{known}"
    );
    assert_eq!(
        known.replace("ada@example.org", "ADDRESS"),
        unknown.replace("zed@example.org", "ADDRESS")
    );
    assert_eq!(count(&app, "deliveries").await, 2, "each gets an email");
}

on_both_backends! {
    async fn an_expired_link_is_refused_and_says_so(app) {
        add_person(&app, "ada@example.org", "Ada").await;
        let link = emailed_link(&app, "ada@example.org").await;
        app.clock.advance(Duration::minutes(16));
        let (status, page) = app.get_text(&link).await;
        assert_eq!(status, 410);
        assert!(page.contains("expired"));
        assert_eq!(app.post_form(&link, &[]).await.status().as_u16(), 410);
        assert_eq!(count(&app, "sessions").await, 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_up_and_mangled_links_are_not_found() {
    let app = TestApp::start(Backend::Sqlite).await.expect("sqlite");
    for path in [
        "/sign-in/00112233445566778899aabbccddeeff",
        "/sign-in/not-a-token",
        "/sign-in/%00%0d%0a",
    ] {
        assert_eq!(app.get_text(path).await.0, 404, "{path}");
        assert_eq!(
            app.post_form(path, &[]).await.status().as_u16(),
            404,
            "{path}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_address_is_shown_back_with_the_reason() {
    let app = TestApp::start(Backend::Sqlite).await.expect("sqlite");
    let response = app
        .post_form("/sign-in", &[("email", "ada at example.org")])
        .await;
    assert_eq!(response.status().as_u16(), 422);
    let page = response.text().await.expect("page");
    assert!(
        page.contains(r#"value="ada at example.org""#),
        "the typed text is kept"
    );
    assert!(page.contains("cannot contain spaces"), "{page}");
    assert_eq!(count(&app, "deliveries").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_returns_to_where_the_person_was_heading_but_never_off_site() {
    let app = TestApp::start(Backend::Sqlite).await.expect("sqlite");
    add_person(&app, "ada@example.org", "Ada").await;
    let (_, form) = app.get_text("/sign-in?next=/circles/7").await;
    assert!(form.contains(r#"value="/circles/7""#));

    for (next, expected) in [("/circles/7", "/circles/7"), ("//evil.example/x", "/")] {
        let before = app.emails().len();
        app.post_form("/sign-in", &[("email", "ada@example.org"), ("next", next)])
            .await;
        app.run_jobs().await;
        let email = app.smtp.wait_for_messages(before + 1).pop().expect("email");
        let link = link_path(&email.text_body(), app.public_base(), "/sign-in/");
        let response = app.post_form(&link, &[]).await;
        assert_eq!(response.headers()["location"], expected, "next={next}");
    }
}

on_both_backends! {
    async fn two_simultaneous_uses_of_one_link_make_one_session(app) {
        add_person(&app, "ada@example.org", "Ada").await;
        let link = emailed_link(&app, "ada@example.org").await;
        let (first, second) = tokio::join!(app.post_form(&link, &[]), app.post_form(&link, &[]));
        let mut statuses = [first.status().as_u16(), second.status().as_u16()];
        statuses.sort_unstable();
        assert_eq!(statuses, [303, 410]);
        assert_eq!(count(&app, "sessions").await, 1);
    }
}

on_both_backends! {
    async fn signing_out_ends_the_session_on_the_server(app) {
        add_person(&app, "ada@example.org", "Ada").await;
        let link = emailed_link(&app, "ada@example.org").await;
        let cookie = cookie_from(&app.post_form(&link, &[]).await);

        let response = app.post_form_as(&cookie, "/sign-out", &[]).await;
        assert_eq!(response.status().as_u16(), 303);
        let cleared = response.headers()["set-cookie"].to_str().expect("ascii");
        assert!(cleared.contains("Max-Age=0"), "{cleared}");
        assert_eq!(count(&app, "sessions").await, 0);

        let home = app.get_as(&cookie, "/").await.text().await.expect("page");
        assert!(!home.contains("My circles"), "the old cookie opens nothing");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_posts_are_refused() {
    let app = TestApp::start(Backend::Sqlite).await.expect("sqlite");
    let post = |headers: Vec<(&'static str, String)>| {
        let mut request = app
            .client
            .post(app.url("/sign-in"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("email=ada%40example.org");
        for (name, value) in headers {
            request = request.header(name, value);
        }
        request.send()
    };
    let refused = post(vec![("sec-fetch-site", "cross-site".into())])
        .await
        .expect("answers");
    assert_eq!(refused.status().as_u16(), 403);
    assert!(refused.text().await.expect("page").contains("another site"));
    let refused = post(vec![("origin", "https://evil.example".into())])
        .await
        .expect("answers");
    assert_eq!(refused.status().as_u16(), 403);
    assert_eq!(count(&app, "deliveries").await, 0, "nothing was done");

    let allowed = post(vec![("origin", app.public_base().to_string())])
        .await
        .expect("answers");
    assert_eq!(allowed.status().as_u16(), 303);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asking_too_often_quietly_stops_sending() {
    let app = TestApp::start(Backend::Sqlite).await.expect("sqlite");
    add_person(&app, "ada@example.org", "Ada").await;
    let mut pages = Vec::new();
    for _ in 0..7 {
        let response = app
            .post_form("/sign-in", &[("email", "ada@example.org")])
            .await;
        let (status, page) = app.follow("", response).await;
        assert_eq!(status, 200);
        pages.push(page);
    }
    assert!(
        pages.windows(2).all(|w| w[0] == w[1]),
        "the page never changes"
    );
    assert_eq!(count(&app, "deliveries").await, 5);

    app.clock.advance(Duration::hours(1));
    app.post_form("/sign-in", &[("email", "ada@example.org")])
        .await;
    assert_eq!(
        count(&app, "deliveries").await,
        6,
        "a new hour, a new allowance"
    );
}

/// The one session's last use and expiry.
async fn session_times(app: &TestApp) -> (chrono::NaiveDateTime, chrono::NaiveDateTime) {
    app.state
        .db
        .run(|conn| {
            Ok::<_, DbError>(
                sessions::table
                    .select((sessions::last_seen_at, sessions::expires_at))
                    .first(conn)?,
            )
        })
        .await
        .expect("the session")
}

on_both_backends! {
    async fn a_session_in_use_moves_its_expiry_on_once_a_day(app) {
        let circle = crate::support::weekly_circle(&app, "Tuesday circle", &[("ada@example.org", "Ada")]).await;
        let cookie = app.sign_in("ada@example.org", "Ada").await;
        let signed_in = app.clock.now().naive_utc();
        let circle_page = format!("/circles/{circle}");
        assert_eq!(
            session_times(&app).await,
            (signed_in, signed_in + Duration::days(30))
        );

        // Within a day, pages only read.
        app.clock.advance(Duration::hours(20));
        for path in [circle_page.as_str(), "/"] {
            let response = app.get_as(&cookie, path).await;
            assert_eq!(response.status().as_u16(), 200, "{path}");
        }
        assert_eq!(
            session_times(&app).await,
            (signed_in, signed_in + Duration::days(30))
        );

        // The circle page reads without writing, then moves the expiry on.
        app.clock.advance(Duration::days(1));
        let seen = app.clock.now().naive_utc();
        let page = app.get_as(&cookie, &circle_page).await;
        assert_eq!(page.status().as_u16(), 200);
        assert!(page.text().await.expect("page").contains("Tuesday circle"));
        assert_eq!(session_times(&app).await, (seen, seen + Duration::days(30)));

        // So do pages that only ask who is signed in.
        app.clock.advance(Duration::days(2));
        let seen = app.clock.now().naive_utc();
        let home = app.get_as(&cookie, "/").await;
        assert_eq!(home.status().as_u16(), 200);
        assert!(home.text().await.expect("page").contains("Tuesday circle"));
        assert_eq!(session_times(&app).await, (seen, seen + Duration::days(30)));

        // Unused for 30 days, the session has ended.
        app.clock.advance(Duration::days(30) + Duration::minutes(1));
        let ended = app.get_as(&cookie, &circle_page).await;
        assert_eq!(ended.status().as_u16(), 303);
        assert_eq!(
            ended.headers()["location"],
            format!("/sign-in?next=%2Fcircles%2F{circle}").as_str()
        );
    }
}

on_both_backends! {
    async fn an_international_domain_is_one_person_in_either_form(app) {
        let unicode = app.sign_in("x@exämple.de", "Xenia").await;
        let ascii = app.sign_in("x@xn--exmple-cua.de", "Someone else").await;
        assert_ne!(unicode, ascii, "two sessions");
        assert_eq!(count(&app, "people").await, 1, "one person");
        // Both emails went out with the domain in ASCII, in the envelope
        // and in the To header.
        let emails = app.emails();
        assert_eq!(emails.len(), 2);
        for email in emails {
            assert_eq!(email.to, ["x@xn--exmple-cua.de"]);
            let to = email.header("To").expect("a To header");
            assert!(to.contains("x@xn--exmple-cua.de"), "{to}");
        }
    }
}

on_both_backends! {
    async fn a_person_stored_with_a_unicode_domain_is_found_by_its_ascii_form(app) {
        // As rows were written before domains were put in ASCII.
        add_person(&app, "x@exämple.de", "Xenia").await;
        app.sign_in("x@xn--exmple-cua.de", "Someone else").await;
        app.sign_in("X@EXÄMPLE.DE", "Someone else").await;
        assert_eq!(count(&app, "people").await, 1, "still one person");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_width_letters_before_the_at_are_refused_with_the_reason() {
    let app = TestApp::start(Backend::Sqlite).await.expect("sqlite");
    let response = app
        .post_form("/sign-in", &[("email", "ａｄａ@example.org")])
        .await;
    assert_eq!(response.status().as_u16(), 422);
    let page = response.text().await.expect("page");
    assert!(page.contains("full-width"), "{page}");
    assert_eq!(count(&app, "deliveries").await, 0);
}
