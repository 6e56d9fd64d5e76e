//! Nobody can use the server to mail strangers: limits per client address
//! on the doors strangers knock at, a limit per person on circles started,
//! and an hourly cap across the instance on mail to addresses of nobody
//! with an account. Each refusal is a 429 with Retry-After and the form as
//! typed, or, where telling would say whether an address has an account,
//! the usual answer with nothing sent.

use crate::support::{Backend, TestApp, utc, weekly_circle};

async fn sign_in_from(
    app: &TestApp,
    email: &str,
    forwarded_for: Option<&str>,
) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url("/sign-in"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("sec-fetch-site", "same-origin")
        .body(format!(
            "email={}",
            url::form_urlencoded::byte_serialize(email.as_bytes()).collect::<String>()
        ));
    if let Some(forwarded_for) = forwarded_for {
        request = request.header("x-forwarded-for", forwarded_for);
    }
    request.send().await.expect("the server answers")
}

/// The value of `name{limit="…"}` in the metrics text, 0 when absent.
async fn limit_count(app: &TestApp, limit: &str) -> u64 {
    let (_, text) = app.get_text("/metrics").await;
    let prefix = format!("shoulder_limits_reached_total{{limit=\"{limit}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .map_or(0, |count| count.trim().parse().expect("a count"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_asking_for_many_sign_in_links_is_told_to_wait() {
    let app = TestApp::builder(Backend::Sqlite)
        .config(|config| config.limits.sign_in_per_client_per_hour = 3)
        .start()
        .await
        .expect("sqlite");
    for n in 0..3 {
        let answer = sign_in_from(&app, &format!("p{n}@example.org"), None).await;
        assert_eq!(answer.status().as_u16(), 303, "request {n}");
    }
    let refused = sign_in_from(&app, "p3@example.org", None).await;
    assert_eq!(refused.status().as_u16(), 429);
    let retry_after: u64 = refused
        .headers()
        .get("retry-after")
        .expect("Retry-After")
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=3600).contains(&retry_after), "{retry_after}");
    let page = refused.text().await.expect("page");
    assert!(
        page.contains("value=\"p3@example.org\""),
        "the address typed is kept: {page}"
    );
    assert!(page.contains("try again in"), "{page}");
    // Someone else's header changes nothing: the server is not told to
    // believe it.
    let spoofed = sign_in_from(&app, "p4@example.org", Some("198.51.100.7")).await;
    assert_eq!(spoofed.status().as_u16(), 429);
    app.run_jobs().await;
    assert_eq!(app.emails().len(), 3, "nothing went out for the refused");
    assert_eq!(limit_count(&app, "sign_in_per_client").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_limit() {
    let app = TestApp::builder(Backend::Sqlite)
        .config(|config| {
            config.limits.sign_in_per_client_per_hour = 1;
            config.server.trusted_proxies = vec!["127.0.0.1".into()];
        })
        .start()
        .await
        .expect("sqlite");
    let first = sign_in_from(&app, "a@example.org", Some("198.51.100.7")).await;
    assert_eq!(first.status().as_u16(), 303);
    let second = sign_in_from(&app, "b@example.org", Some("198.51.100.8")).await;
    assert_eq!(
        second.status().as_u16(),
        303,
        "another client behind the proxy"
    );
    // What a client writes at the start of the list is not who it is.
    let posing = sign_in_from(&app, "c@example.org", Some("203.0.113.1, 198.51.100.7")).await;
    assert_eq!(posing.status().as_u16(), 429);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joining_and_one_click_links_are_limited_per_client_too() {
    let app = TestApp::builder(Backend::Sqlite)
        .config(|config| {
            config.limits.join_per_client_per_hour = 1;
            config.limits.links_per_client_per_minute = 1;
        })
        .start()
        .await
        .expect("sqlite");
    let id = weekly_circle(
        &app,
        "Night shift",
        &[("ada@example.org", "Ada"), ("bea@example.org", "Bea")],
    )
    .await;
    let ada = app.sign_in("ada@example.org", "Ada").await;
    let join = app.make_invite_link(&ada, id).await;
    let fields = |email: &'static str| [("name", "Cy"), ("email", email), ("accept", "yes")];
    let asked = app.post_form(&join, &fields("cy@example.org")).await;
    assert_eq!(asked.status().as_u16(), 303);
    let refused = app.post_form(&join, &fields("dee@example.org")).await;
    assert_eq!(refused.status().as_u16(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    let page = refused.text().await.expect("page");
    assert!(
        page.contains("dee@example.org") && page.contains("value=\"Cy\""),
        "kept: {page}"
    );

    for (n, path) in ["/unsubscribe/0000", "/unsubscribe/1111"]
        .iter()
        .enumerate()
    {
        let answer = app.post_form(path, &[]).await;
        assert_eq!(answer.status().as_u16() == 429, n == 1, "{path}");
    }
    assert_eq!(limit_count(&app, "join_per_client").await, 1);
    assert_eq!(limit_count(&app, "links_per_client").await, 1);
}

async fn start_with(
    backend: Backend,
    change: impl FnOnce(&mut shoulder::config::Config) + Send + 'static,
) -> Option<TestApp> {
    TestApp::builder(backend).config(change).start().await
}

async fn a_person_starts_only_so_many_circles_a_day(backend: Backend) {
    let Some(app) = start_with(backend, |config| {
        config.limits.circles_per_person_per_day = 2
    })
    .await
    else {
        return;
    };
    let cookie = app.sign_in("ada@example.org", "Ada").await;
    let form = |name: &'static str| {
        vec![
            ("name", name),
            ("purpose", "Turning what we learn into what we do."),
            ("agreements", "We listen first."),
            ("cadence_kind", "weekly"),
            ("day", "mon"),
            ("time", "09:00"),
            ("every_weeks", "1"),
            ("month_day", "1"),
            ("cron", ""),
            ("time_zone", "UTC"),
            ("round_hours", "48"),
            ("size_cap", "8"),
            ("intent", "save"),
        ]
    };
    for _ in 0..2 {
        let made = app
            .post_form_as(&cookie, "/circles", &form("Night shift"))
            .await;
        assert_eq!(made.status().as_u16(), 303);
    }
    let refused = app
        .post_form_as(&cookie, "/circles", &form("One more circle"))
        .await;
    assert_eq!(refused.status().as_u16(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    let page = refused.text().await.expect("page");
    assert!(
        page.contains("value=\"One more circle\""),
        "the form is kept: {page}"
    );
    assert!(page.contains("as many as one person may"), "{page}");
    let circles = || async {
        app.state
            .db
            .run(|conn| {
                use diesel::prelude::*;
                Ok::<i64, shoulder::db::DbError>(
                    shoulder::db::schema::circles::table
                        .count()
                        .get_result(conn)?,
                )
            })
            .await
            .expect("circles counted")
    };
    assert_eq!(circles().await, 2, "nothing written");
    assert_eq!(limit_count(&app, "circles_per_person").await, 1);

    app.clock.set(app.clock.now() + chrono::Duration::days(1));
    let next_day = app
        .post_form_as(&cookie, "/circles", &form("One more circle"))
        .await;
    assert_eq!(next_day.status().as_u16(), 303, "a new day");
    assert_eq!(circles().await, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_starts_only_so_many_circles_a_day_on_sqlite() {
    a_person_starts_only_so_many_circles_a_day(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_starts_only_so_many_circles_a_day_on_postgres() {
    a_person_starts_only_so_many_circles_a_day(Backend::Postgres).await;
}

/// Sign-in links, join confirmations and invitations to addresses of
/// nobody with an account stop at the hourly cap; people with an account
/// still get theirs, and the answer never tells the two apart.
async fn mail_to_new_addresses_is_capped_across_the_instance(backend: Backend) {
    let Some(app) = start_with(backend, |config| config.limits.new_addresses_per_hour = 3).await
    else {
        return;
    };
    let id = weekly_circle(
        &app,
        "Night shift",
        &[("ada@example.org", "Ada"), ("bea@example.org", "Bea")],
    )
    .await;
    app.clock.set(utc("2027-03-01T10:00:00Z"));
    // The round's own emails first, so what follows is only sign-in mail.
    app.run_jobs().await;
    let before = app.emails().len();
    let mut answers = Vec::new();
    for email in [
        "s1@example.org",
        "s2@example.org",
        "s3@example.org",
        "s4@example.org",
        "bea@example.org",
    ] {
        let answer = app.post_form("/sign-in", &[("email", email)]).await;
        let (status, page) = app.follow("", answer).await;
        assert_eq!(status, 200, "{email}");
        answers.push(page.replace(email, "X"));
    }
    assert!(
        answers.windows(2).all(|pair| pair[0] == pair[1]),
        "one answer for all"
    );
    app.run_jobs().await;
    let sent: Vec<String> = app.emails()[before..]
        .iter()
        .map(|m| m.to.join(","))
        .collect();
    assert!(
        !sent.contains(&"s4@example.org".to_string()),
        "over the cap: {sent:?}"
    );
    assert!(
        sent.contains(&"bea@example.org".to_string()),
        "Bea has an account: {sent:?}"
    );
    assert_eq!(sent.len(), 4, "{sent:?}");
    assert_eq!(limit_count(&app, "new_addresses").await, 1);

    // A facilitator's invitation to a new address waits too, and says why.
    let ada = app.sign_in("ada@example.org", "Ada").await;
    let invited = app
        .post_form_as(
            &ada,
            &format!("/circles/{id}/invites"),
            &[("addresses", "s5@example.org")],
        )
        .await;
    let page = invited.text().await.expect("page");
    assert!(
        page.contains("sent as much email to new addresses this hour"),
        "{page}"
    );

    // New addresses all, in a new hour: three under the cap.
    app.clock.set(utc("2027-03-01T11:00:00Z"));
    let before = app.emails().len();
    for n in 0..7 {
        let email = format!("bea+{n}@example.org");
        app.post_form("/sign-in", &[("email", email.as_str())])
            .await;
    }
    app.run_jobs().await;
    assert_eq!(
        app.emails().len() - before,
        3,
        "the new-address cap, in a new hour"
    );
    // Seven tags of one mailbox: five within its hourly links, two over.
    assert_eq!(limit_count(&app, "per_address").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_to_new_addresses_is_capped_on_sqlite() {
    mail_to_new_addresses_is_capped_across_the_instance(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_to_new_addresses_is_capped_on_postgres() {
    mail_to_new_addresses_is_capped_across_the_instance(Backend::Postgres).await;
}

/// `ada+1@`, `ada+2@`, … are one mailbox for the limit of sign-in links
/// per address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_after_a_plus_count_as_one_address() {
    let app = TestApp::start(Backend::Sqlite).await.expect("sqlite");
    for n in 0..8 {
        let email = format!("target+{n}@example.org");
        let answer = app
            .post_form("/sign-in", &[("email", email.as_str())])
            .await;
        assert_eq!(answer.status().as_u16(), 303);
    }
    app.run_jobs().await;
    assert_eq!(
        app.emails().len(),
        shoulder::auth::sign_in::SIGN_IN_LIMIT.max as usize,
        "one mailbox's hourly links"
    );
    assert_eq!(limit_count(&app, "per_address").await, 3);
}
