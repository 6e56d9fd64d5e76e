//! One-click unsubscribe (RFC 8058) and muting a circle's mail from its
//! page: what a mail scanner's GET leaves alone, what a mail provider's
//! cookie-less cross-site POST does, and who may change whose setting.

use chrono::Duration;
use diesel::prelude::*;
use shoulder::auth::Token;
use shoulder::circles::settings::{Settings, SettingsForm};
use shoulder::circles::store;
use shoulder::circles::unsubscribe::{self, LINK_LIFETIME};
use shoulder::db::DbError;
use shoulder::db::schema::{action_tokens, memberships, people};
use shoulder::mail::EmailAddress;
use shoulder::mail::outbox::{self, NewEmail};

use crate::on_both_backends;
use crate::support::{Backend, TestApp};

const CIRCLE_NAME: &str = "Tuesday accomplices";

/// A circle started by Fay, with Bea as a plain member; both signed in.
struct Circle {
    id: i64,
    bea_membership: i64,
    bea: String,
    fay: String,
}

async fn person_id(app: &TestApp, email: &'static str) -> i64 {
    app.state
        .db
        .run(move |conn| {
            Ok::<i64, DbError>(
                people::table
                    .filter(people::email.eq(email))
                    .select(people::id)
                    .first(conn)?,
            )
        })
        .await
        .expect("the person exists")
}

async fn start_circle(app: &TestApp, facilitator: i64, name: &str) -> i64 {
    let mut form = SettingsForm::new("America/Toronto");
    form.name = name.into();
    form.purpose = "Turning what we learn into what we do.".into();
    form.agreements = "We listen first.".into();
    let anchor = app.clock.now().date_naive();
    let settings = Settings::parse(&form, anchor).expect("valid settings");
    let now = app.clock.now();
    app.state
        .db
        .run(move |conn| store::create(conn, facilitator, &settings, now))
        .await
        .expect("circle created")
}

async fn add_member(app: &TestApp, circle_id: i64, person: i64) -> i64 {
    let now = app.clock.now().naive_utc();
    app.state
        .db
        .run(move |conn| store::add_member(conn, circle_id, person, store::ROLE_MEMBER, now))
        .await
        .expect("member added")
}

async fn circle(app: &TestApp) -> Circle {
    let fay = app.sign_in("fay@example.org", "Fay").await;
    let bea = app.sign_in("bea@example.org", "Bea").await;
    let fay_id = person_id(app, "fay@example.org").await;
    let bea_id = person_id(app, "bea@example.org").await;
    let id = start_circle(app, fay_id, CIRCLE_NAME).await;
    let bea_membership = add_member(app, id, bea_id).await;
    Circle {
        id,
        bea_membership,
        bea,
        fay,
    }
}

/// The path of a fresh unsubscribe link for a membership, as an email carries it.
async fn issue_link(app: &TestApp, membership_id: i64) -> String {
    let now = app.clock.now().naive_utc();
    let token = app
        .state
        .db
        .run(move |conn| unsubscribe::issue_link(conn, membership_id, now))
        .await
        .expect("link issued");
    format!("/unsubscribe/{}", token.as_str())
}

async fn muted(app: &TestApp, membership_id: i64) -> bool {
    app.state
        .db
        .run(move |conn| {
            Ok::<bool, DbError>(
                memberships::table
                    .find(membership_id)
                    .select(memberships::muted)
                    .first(conn)?,
            )
        })
        .await
        .expect("read")
}

/// When each of the membership's unsubscribe links was first used.
async fn uses(app: &TestApp, membership_id: i64) -> Vec<Option<chrono::NaiveDateTime>> {
    app.state
        .db
        .run(move |conn| {
            Ok::<_, DbError>(
                action_tokens::table
                    .filter(action_tokens::membership_id.eq(membership_id))
                    .filter(action_tokens::kind.eq(unsubscribe::KIND))
                    .order(action_tokens::id)
                    .select(action_tokens::used_at)
                    .load(conn)?,
            )
        })
        .await
        .expect("read")
}

/// A POST the way a mail provider makes it (RFC 8058): from its own site,
/// with no cookie, and `List-Unsubscribe=One-Click` as the body.
async fn one_click(app: &TestApp, path: &str, site_header: (&str, &str)) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .header(site_header.0, site_header.1)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .expect("the server answers")
}

const FROM_A_MAIL_PROVIDER: (&str, &str) = ("origin", "https://mail.example.net");

async fn page(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    (status, response.text().await.expect("a page"))
}

async fn circle_page_as(app: &TestApp, cookie: &str, circle_id: i64) -> String {
    let (status, body) = page(app.get_as(cookie, &format!("/circles/{circle_id}")).await).await;
    assert_eq!(status, 200, "{body}");
    body
}

on_both_backends! {
    async fn opening_the_link_names_the_circle_and_changes_nothing(app) {
        let circle = circle(&app).await;
        let link = issue_link(&app, circle.bea_membership).await;

        for _ in 0..2 {
            let (status, body) = page(app.get(&link).await).await;
            assert_eq!(status, 200);
            assert!(body.contains(CIRCLE_NAME), "{body}");
            assert!(body.contains(&format!("action=\"{link}\"")), "the button posts back: {body}");
        }
        assert!(!muted(&app, circle.bea_membership).await, "a GET mutes nothing");
        assert_eq!(uses(&app, circle.bea_membership).await, vec![None], "nor spends the link");
    }
}

on_both_backends! {
    async fn a_cookieless_cross_site_one_click_post_mutes_and_can_be_repeated(app) {
        let circle = circle(&app).await;
        let link = issue_link(&app, circle.bea_membership).await;

        let (status, body) = page(one_click(&app, &link, FROM_A_MAIL_PROVIDER).await).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.contains(&format!("No more emails from {CIRCLE_NAME}")), "{body}");
        assert!(body.contains(&format!("/sign-in?next=/circles/{}", circle.id)), "the way back: {body}");
        assert!(muted(&app, circle.bea_membership).await);
        let first_use = Some(app.clock.now().naive_utc());
        assert_eq!(uses(&app, circle.bea_membership).await, vec![first_use]);

        // Providers retry, and people press twice: the same answer, and the
        // first use stays on record.
        app.clock.advance(Duration::hours(1));
        for site in [FROM_A_MAIL_PROVIDER, ("sec-fetch-site", "cross-site")] {
            let (status, body) = page(one_click(&app, &link, site).await).await;
            assert_eq!(status, 200, "{body}");
            assert!(body.contains("No more emails"), "{body}");
        }
        assert!(muted(&app, circle.bea_membership).await);
        assert_eq!(uses(&app, circle.bea_membership).await, vec![first_use]);

        // Once muted, the link's page says so instead of offering the button.
        let (status, body) = page(app.get(&link).await).await;
        assert_eq!(status, 200);
        assert!(body.contains("already turned these emails off"), "{body}");
    }
}

on_both_backends! {
    async fn malformed_unknown_and_expired_links_are_404_and_change_nothing(app) {
        let circle = circle(&app).await;
        let link = issue_link(&app, circle.bea_membership).await;
        let unknown = format!("/unsubscribe/{}", Token::generate().as_str());
        let shouted = link.to_uppercase().replace("/UNSUBSCRIBE/", "/unsubscribe/");

        for path in [
            "/unsubscribe/not-a-token".to_string(),
            "/unsubscribe/%0d%0a".to_string(),
            shouted,
            unknown,
        ] {
            let (status, body) = page(app.get(&path).await).await;
            assert_eq!(status, 404, "GET {path}");
            assert!(body.contains("This unsubscribe link does not work"), "{body}");
            let (status, _) = page(one_click(&app, &path, FROM_A_MAIL_PROVIDER).await).await;
            assert_eq!(status, 404, "POST {path}");
        }

        app.clock.advance(LINK_LIFETIME + Duration::minutes(1));
        assert_eq!(page(app.get(&link).await).await.0, 404, "expired");
        assert_eq!(page(one_click(&app, &link, FROM_A_MAIL_PROVIDER).await).await.0, 404);

        assert!(!muted(&app, circle.bea_membership).await);
        assert_eq!(uses(&app, circle.bea_membership).await, vec![None]);
    }
}

on_both_backends! {
    async fn a_member_turns_mail_back_on_from_the_circle_page_and_off_again(app) {
        let circle = circle(&app).await;
        let circle_page = format!("/circles/{}", circle.id);
        let mail = format!("/circles/{}/mail", circle.id);

        let before = circle_page_as(&app, &circle.bea, circle.id).await;
        assert!(before.contains("You get this circle's emails."), "{before}");
        assert!(before.contains(&format!("action=\"{mail}\"")), "{before}");

        let link = issue_link(&app, circle.bea_membership).await;
        assert_eq!(page(one_click(&app, &link, FROM_A_MAIL_PROVIDER).await).await.0, 200);
        let after = circle_page_as(&app, &circle.bea, circle.id).await;
        assert!(after.contains("You have muted this circle"), "{after}");

        let response = app.post_form_as(&circle.bea, &mail, &[("action", "unmute")]).await;
        assert_eq!(response.status().as_u16(), 303);
        assert_eq!(response.headers()["location"], circle_page.as_str());
        assert!(!muted(&app, circle.bea_membership).await);
        assert!(circle_page_as(&app, &circle.bea, circle.id).await.contains("You get this circle"));

        let response = app.post_form_as(&circle.bea, &mail, &[("action", "mute")]).await;
        assert_eq!(response.status().as_u16(), 303);
        assert!(muted(&app, circle.bea_membership).await);
        assert!(circle_page_as(&app, &circle.bea, circle.id).await.contains("You have muted this circle"));

        let response = app.post_form_as(&circle.bea, &mail, &[("action", "shout")]).await;
        assert_eq!(response.status().as_u16(), 422, "neither mute nor unmute");
        assert!(muted(&app, circle.bea_membership).await);
    }
}

on_both_backends! {
    async fn nobody_can_change_another_persons_mail_setting(app) {
        let circle = circle(&app).await;
        let mail = format!("/circles/{}/mail", circle.id);
        let carl = app.sign_in("carl@example.org", "Carl").await;

        for action in ["mute", "unmute", "shout"] {
            let response = app.post_form_as(&carl, &mail, &[("action", action)]).await;
            assert_eq!(response.status().as_u16(), 404, "a stranger, {action}");
        }
        let response = app
            .post_form_as(&carl, "/circles/999999/mail", &[("action", "mute")])
            .await;
        assert_eq!(response.status().as_u16(), 404, "no such circle");

        // Signed out: sent to sign in, nothing changed.
        let response = app.post_form(&mail, &[("action", "mute")]).await;
        assert_eq!(response.status().as_u16(), 303);
        let location = response.headers()["location"].to_str().expect("ascii").to_string();
        assert!(location.starts_with("/sign-in?next="), "{location}");

        // The facilitator's button changes the facilitator's own mail only.
        let response = app.post_form_as(&circle.fay, &mail, &[("action", "mute")]).await;
        assert_eq!(response.status().as_u16(), 303);
        assert!(!muted(&app, circle.bea_membership).await, "Bea still gets mail");
        let fay_page = circle_page_as(&app, &circle.fay, circle.id).await;
        assert!(fay_page.contains("You have muted this circle"), "{fay_page}");
    }
}

/// The whole path: the headers go out on a real email, and the address in
/// `List-Unsubscribe`, posted as a provider would, mutes that circle only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emailed_header_unsubscribes_from_that_circle_only() {
    let app = TestApp::start(Backend::Sqlite).await.expect("sqlite");
    let circle = circle(&app).await;
    let fay_id = person_id(&app, "fay@example.org").await;
    let bea_id = person_id(&app, "bea@example.org").await;
    let other = start_circle(&app, fay_id, "Thursday neighbours").await;
    let other_membership = add_member(&app, other, bea_id).await;

    let now = app.clock.now().naive_utc();
    let base = app.public_base().to_string();
    let membership_id = circle.bea_membership;
    app.state
        .db
        .run(move |conn| {
            let token = unsubscribe::issue_link(conn, membership_id, now)?;
            outbox::enqueue(
                conn,
                now,
                &NewEmail {
                    send_at: None,
                    kind: "test",
                    to: EmailAddress::parse("bea@example.org").expect("valid"),
                    to_name: Some("Bea".into()),
                    round_id: None,
                    membership_id: Some(membership_id),
                    context: serde_json::json!({
                        "public_url": "http://127.0.0.1:3000",
                        "sent_at": "Who are we leaving behind?",
                    })
                    .into(),
                    headers: unsubscribe::headers(&unsubscribe::link(&base, &token)),
                },
            )?;
            Ok::<(), DbError>(())
        })
        .await
        .expect("queued");
    let before = app.emails().len();
    app.run_jobs().await;
    let emails = app.smtp.wait_for_messages(before + 1);
    let email = emails.last().expect("the email arrived");

    assert_eq!(
        email.header("List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click")
    );
    let header = email.header("List-Unsubscribe").expect("List-Unsubscribe");
    let url = header
        .strip_prefix('<')
        .and_then(|rest| rest.strip_suffix('>'))
        .unwrap_or_else(|| panic!("one URL in angle brackets: {header}"));
    let path = url
        .strip_prefix(app.public_base())
        .expect("our own address");

    assert_eq!(
        page(one_click(&app, path, FROM_A_MAIL_PROVIDER).await)
            .await
            .0,
        200
    );
    assert!(muted(&app, circle.bea_membership).await);
    assert!(
        !muted(&app, other_membership).await,
        "the other circle still mails Bea"
    );
}

#[test]
fn the_headers_are_exactly_the_two_rfc_8058_asks_for() {
    assert_eq!(
        unsubscribe::headers("https://shoulder.example/unsubscribe/0123"),
        vec![
            (
                "List-Unsubscribe".to_string(),
                "<https://shoulder.example/unsubscribe/0123>".to_string(),
            ),
            (
                "List-Unsubscribe-Post".to_string(),
                "List-Unsubscribe=One-Click".to_string(),
            ),
        ]
    );
}
