//! Every page state a member or a facilitator reaches, checked in Chromium
//! with axe-core against WCAG 2.2 A and AA at 1280 px and at a 390 px phone
//! (which must not scroll sideways).

use fantoccini::{Client, Locator};

use crate::shoulder::{choice_link, latest, round_link};
use crate::support::browser::{Browser, click, wait_for};
use crate::support::{Backend, TestApp, axe, link_path, open_week, weekly_circle};

/// Signs `client` in with the session `cookie` ("name=value") of `app`,
/// set from a page of the app (WebDriver refuses a cookie for an IP
/// address; the page itself may set one).
async fn use_session(client: &Client, app: &TestApp, cookie: &str) {
    client
        .goto(&app.url("/healthz"))
        .await
        .expect("the app answers");
    client
        .execute(
            "document.cookie = arguments[0] + '; path=/'; return true;",
            vec![serde_json::json!(cookie)],
        )
        .await
        .expect("the session cookie is set");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_passes_wcag_2_2_aa_at_desktop_and_phone_widths() {
    let app = TestApp::start(Backend::Sqlite).await.expect("SQLite");
    let Some(browser) = Browser::start().await else {
        return;
    };
    let Some(axe) = axe::script() else {
        return;
    };
    let client = browser.client();
    let id = weekly_circle(
        &app,
        "Night shift accomplices",
        &[
            ("ada@example.org", "Ada"),
            ("bea@example.org", "Bea"),
            ("cy@example.org", "Cy"),
        ],
    )
    .await;
    open_week(&app, 1).await;
    let ada = app.sign_in("ada@example.org", "Ada").await;
    let bea = app.sign_in("bea@example.org", "Bea").await;
    // Round 1: Bea commits, so round 2 has something to report on.
    let saved = app
        .post_form_as(
            &bea,
            &format!("/circles/{id}/rounds/1"),
            &[
                ("reflection", "Listening went better."),
                ("commitment-1", "Ask Sam what support looks like"),
                ("commitment-2", "Credit Lee in the newsletter: example.org/notes/shoulderingeachotherupthroughthelongwinterseason"),
            ],
        )
        .await;
    assert_eq!(saved.status().as_u16(), 303);
    open_week(&app, 2).await;
    let mail = latest(&app, "bea@example.org", "round 2");
    let text = mail.text_body();
    let done = choice_link(&app, &text, "Ask Sam what support looks like", "Done");
    let keyed_round = round_link(&app, &text, id, 2);

    // A first sign-in's page, and the join pages behind an invite link.
    let asked = app
        .post_form("/sign-in", &[("email", "dee@example.org")])
        .await;
    assert_eq!(asked.status().as_u16(), 303);
    app.run_jobs().await;
    let welcome = latest(&app, "dee@example.org", "Shoulder");
    let first_sign_in = link_path(&welcome.text_body(), app.public_base(), "/sign-in/");
    let join = app.make_invite_link(&ada, id).await;
    let asked = app
        .post_form(
            &join,
            &[
                ("name", "Eve"),
                ("email", "eve@example.org"),
                ("accept", "yes"),
            ],
        )
        .await;
    assert_eq!(asked.status().as_u16(), 303);
    app.run_jobs().await;
    let confirm_mail = latest(&app, "eve@example.org", "joining");
    let join_confirm = link_path(
        &confirm_mail.text_body(),
        app.public_base(),
        "/join/confirm/",
    );

    let mut problems = Vec::new();
    for (path, what) in [
        (first_sign_in, "a first sign-in"),
        (join.clone(), "the join page"),
        (join_confirm, "confirming a join"),
        ("/".to_string(), "the start page"),
        ("/sign-in".into(), "the sign-in form"),
        ("/no-such-page".into(), "the not-found page"),
        ("/sign-in/sent".into(), "a sign-in link sent"),
        (format!("{join}/sent"), "asked to join"),
        ("/me/deleted".into(), "data deleted"),
        (done.clone(), "a one-click choice"),
        (keyed_round.clone(), "the round page from an email"),
    ] {
        client.goto(&app.url(&path)).await.expect("the page opens");
        problems.extend(axe::problems(client, &axe, what).await);
    }
    // The choice made: its link then says what was recorded.
    client.goto(&app.url(&done)).await.expect("the choice");
    click(client, "main form button[type=submit]").await;
    wait_for(client, "Still open in this round").await;
    problems.extend(axe::problems(client, &axe, "a one-click choice recorded").await);

    let cy = crate::history::membership_of(&app, id, "cy@example.org").await;
    use_session(client, &app, &ada).await;
    client
        .goto(&app.url(&format!("/circles/{id}")))
        .await
        .expect("the circle page");
    let source = client.source().await.expect("source");
    assert!(
        source.contains("Facilitating"),
        "signed in as the facilitator: {source}"
    );
    for (path, what) in [
        ("/".to_string(), "my circles"),
        ("/circles/new".into(), "the new-circle form"),
        (format!("/circles/{id}"), "the circle page of a facilitator"),
        (format!("/circles/{id}/edit"), "the circle settings"),
        (format!("/circles/{id}/invites"), "the invitations"),
        (format!("/circles/{id}/prompts"), "the prompts"),
        (format!("/circles/{id}/history"), "the circle's history"),
        (format!("/circles/{id}/health"), "the circle's health"),
        (
            format!("/circles/{id}/rounds/2"),
            "the round page of a facilitator",
        ),
        (
            format!("/circles/{id}/status?action=archive"),
            "asking before archiving",
        ),
        (format!("/circles/{id}/leave"), "asking before leaving"),
        (
            format!("/circles/{id}/members/{cy}/remove"),
            "asking before removing",
        ),
        (
            format!("/circles/{id}/members/{cy}/facilitator"),
            "asking before handing over",
        ),
        ("/me".into(), "your data"),
        ("/me/delete".into(), "deleting your data"),
        (
            format!("/circles/{id}/invites/link"),
            "asking before replacing the invite link",
        ),
        (
            "/me/calendar".into(),
            "asking before replacing the calendar address",
        ),
    ] {
        client.goto(&app.url(&path)).await.expect("the page opens");
        problems.extend(axe::problems(client, &axe, what).await);
    }
    // At a phone's width, no weekday's box is parted from its name.
    client
        .set_window_size(390, 844)
        .await
        .expect("a phone's width");
    client
        .goto(&app.url("/circles/new"))
        .await
        .expect("the new-circle form");
    let split: serde_json::Value = client
        .execute(
            "return [...document.querySelectorAll('p.days label')] \
               .filter(l => l.getClientRects().length > 1).map(l => l.textContent.trim());",
            vec![],
        )
        .await
        .expect("the weekdays' lines");
    assert_eq!(
        split,
        serde_json::json!([]),
        "weekdays split over two lines"
    );
    client
        .set_window_size(1280, 900)
        .await
        .expect("a desktop's width");
    // Forms sent back with their problems.
    for (path, button, what) in [
        (
            "/circles/new".to_string(),
            "button[value=save]",
            "the new-circle form refused",
        ),
        ("/me".into(), "#your-name button", "a refused name"),
    ] {
        client.goto(&app.url(&path)).await.expect("the page opens");
        if path == "/circles/new" {
            client
                .find(Locator::Css("#name"))
                .await
                .expect("the name field")
                .clear()
                .await
                .expect("cleared");
        } else {
            client
                .execute(
                    "document.getElementById('display_name').value = ' '; return true;",
                    vec![],
                )
                .await
                .expect("a blank name");
        }
        client
            .execute(
                "document.querySelectorAll('[required]').forEach(e => e.removeAttribute('required')); return true;",
                vec![],
            )
            .await
            .expect("the browser's own checks set aside");
        click(client, button).await;
        client
            .wait()
            .for_element(Locator::Css(".error"))
            .await
            .expect("the form comes back with its problems");
        problems.extend(axe::problems(client, &axe, what).await);
    }

    // A replaced invite link is shown after the redirect, with the copy
    // button the script reveals; an invitation with too long a note comes
    // back with its summary focused.
    client
        .goto(&app.url(&format!("/circles/{id}/invites/link")))
        .await
        .expect("the confirmation");
    click(client, "main form button[type=submit]").await;
    client
        .wait()
        .for_element(Locator::Css("#copy-invite-url:not([hidden])"))
        .await
        .expect("the copy button, revealed by the script");
    problems.extend(axe::problems(client, &axe, "a new invite link").await);
    click(client, "#copy-invite-url").await;
    wait_for(client, "Copied.").await;
    client
        .execute(
            "document.getElementById('addresses').value = 'cy@example.org'; \
             document.getElementById('note').value = 'x'.repeat(700); return true;",
            vec![],
        )
        .await
        .expect("a long note");
    click(client, "#email-invites button[type=submit]").await;
    client
        .wait()
        .for_element(Locator::Css("#problems"))
        .await
        .expect("the form comes back with its problems");
    let focused = client
        .execute("return document.activeElement.id;", vec![])
        .await
        .expect("the focused element");
    assert_eq!(
        focused,
        serde_json::json!("problems"),
        "the summary takes focus"
    );
    problems.extend(axe::problems(client, &axe, "an invitation refused").await);

    use_session(client, &app, &bea).await;
    for (path, what) in [
        (format!("/circles/{id}"), "the circle page of a member"),
        (
            format!("/circles/{id}/rounds/2"),
            "the round page of a member",
        ),
        (format!("/circles/{id}/history"), "a member's history"),
    ] {
        client.goto(&app.url(&path)).await.expect("the page opens");
        problems.extend(axe::problems(client, &axe, what).await);
    }
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );

    // The check itself sees a field without a label and a page too wide
    // for a phone.
    client
        .execute(
            "document.querySelector('main').insertAdjacentHTML('beforeend', \
             '<input type=text><canvas width=600 height=10></canvas>'); return true;",
            vec![],
        )
        .await
        .expect("the page is spoiled");
    let found = axe::problems(client, &axe, "a spoiled page")
        .await
        .join("\n");
    assert!(
        found.contains("label") && found.contains("scrolls sideways"),
        "{found}"
    );
}
