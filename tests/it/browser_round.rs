//! One round, end to end, in a real headless Chromium: checking in from the
//! emailed round link without signing in, marking a commitment done from
//! the next round's email, shouldering up a peer on the round page, and the
//! follow-through chart on the member's history page after signing in.
//! Every email is read from the real SMTP server. And reflections shared or
//! kept, as three members find them on the round page and in the digest at
//! `/dev/mail`, reached from their emails there.

use diesel::prelude::*;
use fantoccini::{Client, Locator};
use shoulder::db::schema::{check_ins, commitments, memberships, people, support_messages};

use crate::shoulder::{choice_link, circle_of, query, round_link};
use crate::support::browser::{Browser, click, fill, wait_for};
use crate::support::{Backend, ReceivedEmail, TestApp, axe, utc};

const PEOPLE: [(&str, &str); 3] = [
    ("ada@example.org", "Ada"),
    ("bea@example.org", "Bea"),
    ("cy@example.org", "Cy"),
];

/// The latest email to `to` whose subject contains `subject`, once the
/// outbox has delivered what it holds.
async fn latest(app: &TestApp, to: &str, subject: &str) -> ReceivedEmail {
    app.run_jobs().await;
    app.emails()
        .into_iter()
        .rev()
        .find(|m| m.to.iter().any(|t| t == to) && m.subject().is_some_and(|s| s.contains(subject)))
        .unwrap_or_else(|| panic!("no email to {to} about {subject:?}"))
}

/// The `value` property of the form field at `css`.
async fn value_of(client: &Client, css: &str) -> String {
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("the page has {css}: {e}"))
        .prop("value")
        .await
        .unwrap_or_else(|e| panic!("{css} has a value: {e}"))
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_round_in_the_browser_check_in_follow_through_support_and_history() {
    let app = TestApp::start(Backend::Sqlite).await.expect("SQLite");
    let Some(browser) = Browser::start().await else {
        return;
    };
    let ada = browser.client();

    // 1. Ada, Bea and Cy; round 1 opens on Monday 1 March.
    let id = circle_of(&app, &PEOPLE).await;

    // 2. Ada checks in from her emailed round link, without signing in.
    let mail = latest(&app, "ada@example.org", "round 1").await;
    let link = round_link(&app, &mail.text_body(), id, 1);
    ada.goto(&app.url(&link))
        .await
        .expect("the round link opens");
    let page = wait_for(ada, "Checking in as Ada").await;
    assert!(page.contains("Your check-in"), "{page}");
    fill(ada, "textarea#reflection", "I waited to be asked.").await;
    fill(ada, "#commitment-1", "Ask Sam what support looks like").await;
    fill(ada, "#commitment-2", "Credit Lee in the newsletter").await;
    click(ada, "form#check-in button[type=submit]").await;
    let page = wait_for(ada, "Your check-in is saved.").await;
    assert!(page.contains("You have checked in this round."), "{page}");
    assert_eq!(
        value_of(ada, "#commitment-1").await,
        "Ask Sam what support looks like"
    );
    assert_eq!(
        value_of(ada, "#commitment-2").await,
        "Credit Lee in the newsletter"
    );
    assert_eq!(
        value_of(ada, "textarea#reflection").await,
        "I waited to be asked."
    );
    let url = ada.current_url().await.expect("a URL");
    assert!(
        url.query().is_some_and(|q| q.contains("key=")),
        "the page stays on the round link: {url}"
    );
    let saved = query(&app, |conn| {
        check_ins::table
            .inner_join(memberships::table.inner_join(people::table))
            .select((people::email, check_ins::reflection, check_ins::late))
            .load::<(String, String, bool)>(conn)
    })
    .await;
    assert_eq!(
        saved,
        [(
            "ada@example.org".to_string(),
            "I waited to be asked.".to_string(),
            false
        )]
    );
    let made = query(&app, |conn| {
        commitments::table
            .order(commitments::position.asc())
            .select((
                commitments::position,
                commitments::body,
                commitments::status,
            ))
            .load::<(i32, String, String)>(conn)
    })
    .await;
    assert_eq!(
        made,
        [
            (
                1,
                "Ask Sam what support looks like".to_string(),
                "open".to_string()
            ),
            (
                2,
                "Credit Lee in the newsletter".to_string(),
                "open".to_string()
            ),
        ]
    );

    // 3. Bea checks in over HTTP (not the flow under test).
    let bea = app.sign_in("bea@example.org", "Bea").await;
    let response = app
        .post_form_as(
            &bea,
            &format!("/circles/{id}/rounds/1"),
            &[("commitment-1", "Bring the zine to the meeting")],
        )
        .await;
    assert_eq!(response.status().as_u16(), 303, "Bea's check-in saved");
    let beas: i64 = query(&app, |conn| {
        commitments::table
            .filter(commitments::body.eq("Bring the zine to the meeting"))
            .select(commitments::id)
            .first(conn)
    })
    .await;

    // 4. A week on, round 2 opens (and round 1 has closed).
    app.clock.set(utc("2027-03-08T09:00:00Z"));
    let report = app.run_jobs().await;
    assert_eq!(report.rounds.opened, [(id, 2)]);

    // 5. Ada marks her first commitment Done from her round-2 email.
    let mail = latest(&app, "ada@example.org", "round 2").await;
    let text = mail.text_body();
    let done = choice_link(&app, &text, "Ask Sam what support looks like", "Done");
    ada.goto(&app.url(&done))
        .await
        .expect("the Done link opens");
    let page = wait_for(ada, "Mark as Done?").await;
    assert!(page.contains("Ask Sam what support looks like"), "{page}");
    click(ada, "main form button[type=submit]").await;
    let page = wait_for(ada, "Marked Done").await;
    assert!(page.contains("Ask Sam what support looks like"), "{page}");
    let status: String = query(&app, |conn| {
        commitments::table
            .filter(commitments::body.eq("Ask Sam what support looks like"))
            .select(commitments::status)
            .first(conn)
    })
    .await;
    assert_eq!(status, "done");

    // 6. On her round-2 page (same email's link) Ada offers Bea support.
    let link = round_link(&app, &text, id, 2);
    ada.goto(&app.url(&link))
        .await
        .expect("the round-2 link opens");
    wait_for(ada, "Checking in as Ada").await;
    let item = format!(
        "#shoulder-up li.commitment[data-commitment=\"{beas}\"], \
         #circle li.commitment[data-commitment=\"{beas}\"]"
    );
    let beas_item = ada
        .find(Locator::Css(&item))
        .await
        .unwrap_or_else(|e| panic!("Bea's commitment is on Ada's round page ({item}): {e}"));
    let shown = beas_item.text().await.expect("text");
    assert!(shown.contains("Bring the zine to the meeting"), "{shown}");
    let support = "I can carry the zines with you.";
    beas_item
        .find(Locator::Css("form.support textarea[name=body]"))
        .await
        .expect("a support field under Bea's commitment")
        .send_keys(support)
        .await
        .expect("the support field takes text");
    beas_item
        .find(Locator::Css("form.support button[type=submit]"))
        .await
        .expect("an Offer support button")
        .click()
        .await
        .expect("Offer support can be clicked");
    wait_for(ada, "Your support is on its way").await;
    let shown = ada
        .find(Locator::Css(&format!(
            "li.commitment[data-commitment=\"{beas}\"] ul.support"
        )))
        .await
        .expect("the support is listed under Bea's commitment")
        .text()
        .await
        .expect("text");
    assert!(shown.contains(&format!("Ada: {support}")), "{shown}");
    let stored = query(&app, |conn| {
        support_messages::table
            .select((support_messages::commitment_id, support_messages::body))
            .load::<(i64, String)>(conn)
    })
    .await;
    assert_eq!(stored, [(beas, support.to_string())]);

    // 7. Ada signs in in the browser and opens her history from the circle.
    ada.goto(&app.url(&format!("/sign-in?next=/circles/{id}")))
        .await
        .expect("the sign-in page opens");
    fill(ada, "#email", "ada@example.org").await;
    click(ada, "main form button[type=submit]").await;
    wait_for(ada, "Check your email").await;
    let mail = latest(&app, "ada@example.org", "sign in").await;
    let link = crate::support::link_path(&mail.text_body(), app.public_base(), "/sign-in/");
    ada.goto(&app.url(&link))
        .await
        .expect("the sign-in link opens");
    wait_for(ada, "You are signing in as").await;
    click(ada, "main form button[type=submit]").await;
    wait_for(ada, "Your history").await;
    let membership: i64 = query(&app, move |conn| {
        memberships::table
            .inner_join(people::table)
            .filter(memberships::circle_id.eq(id))
            .filter(people::email.eq("ada@example.org"))
            .select(memberships::id)
            .first(conn)
    })
    .await;
    let history = format!("/circles/{id}/members/{membership}/history");
    click(ada, &format!("p.history-links a[href='{history}']")).await;
    let page = wait_for(ada, "Your follow-through").await;
    assert!(page.contains("Ask Sam what support looks like"), "{page}");
    let url = ada.current_url().await.expect("a URL");
    assert_eq!(url.path(), history);
    ada.find(Locator::Css("figure.history-chart svg"))
        .await
        .expect("the chart is an inline SVG");
    let bar = ada
        .find(Locator::Css("svg g.bar[data-round=\"2\"]"))
        .await
        .expect("a bar for round 2");
    assert_eq!(
        bar.attr("data-done")
            .await
            .expect("an attribute")
            .as_deref(),
        Some("1"),
        "round 2's bar counts Ada's one Done"
    );
    chart_holds_up_on_a_phone(ada).await;
}

/// The chart on the page in `client`, at a 390 px phone: drawn at its own
/// size, so its smallest text is 12 px or more, with every texture its
/// pieces are filled with defined, and nothing for axe-core to find.
async fn chart_holds_up_on_a_phone(client: &Client) {
    let Some(axe) = axe::script() else {
        return;
    };
    client
        .set_window_size(390, 844)
        .await
        .expect("a phone's width");
    let seen = client
        .execute(
            "const svg = document.querySelector('svg.chart'); \
             const scale = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width; \
             const sizes = [...svg.querySelectorAll('text')].map(t => t.getBoundingClientRect().height > 0 ? \
                 parseFloat(t.getAttribute('font-size')) * scale : 0); \
             const missing = [...svg.querySelectorAll('[fill^=\"url(#\"]')] \
                 .map(e => e.getAttribute('fill').slice(5, -1)) \
                 .filter(id => !(document.getElementById(id) instanceof SVGPatternElement)); \
             return { smallest: Math.min(...sizes), missing: missing, textures: \
                 svg.querySelectorAll('[fill^=\"url(#\"]').length };",
            vec![],
        )
        .await
        .expect("the chart measured");
    let smallest = seen["smallest"].as_f64().expect("a size");
    assert!(
        smallest >= 12.0,
        "the chart's smallest text at 390 px: {seen}"
    );
    assert_eq!(seen["missing"], serde_json::json!([]), "{seen}");
    assert!(seen["textures"].as_u64().unwrap_or(0) >= 3, "{seen}");
    let problems = axe::problems(client, &axe, "the history chart").await;
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The id `/dev/mail` lists for the newest email to `to` whose subject
/// holds `subject`.
async fn kept_message(app: &TestApp, to: &str, subject: &str) -> String {
    let (status, list) = app.get_text("/dev/mail").await;
    assert_eq!(status, 200);
    list.split("<tr>")
        .find(|row| row.contains(to) && row.contains(subject))
        .and_then(|row| row.split("href=\"/dev/mail/").nth(1))
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no email to {to} about {subject:?} in {list}"))
        .to_string()
}

/// Opens the member's round 1 email at `/dev/mail` and follows its round
/// link, as someone trying Shoulder on their own machine would.
async fn round_from_dev_mail(app: &TestApp, client: &Client, to: &str) {
    let id = kept_message(app, to, "round 1").await;
    client
        .goto(&app.url(&format!("/dev/mail/{id}")))
        .await
        .expect("the message page loads");
    click(client, "pre a[href*='/rounds/1?key=']").await;
}

/// Text under "What the circle said" on the page in `client`.
async fn said_on_page(client: &Client) -> String {
    client
        .find(Locator::Css("section#said"))
        .await
        .expect("the shared reflections section")
        .text()
        .await
        .expect("its text")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_shares_one_keeps_private_and_each_sees_what_they_should_on_the_page_and_in_the_digest()
{
    let app = TestApp::builder(Backend::Sqlite)
        .config(|config| config.mail.transport = shoulder::config::MailTransportKind::Memory)
        .start()
        .await
        .expect("SQLite");
    let Some(browser) = Browser::start().await else {
        return;
    };
    let client = browser.client();
    circle_of(&app, &PEOPLE).await;
    let shared = "Being asked made it easier to say yes.";
    let private = "I am tired in a way I cannot explain yet.";

    // Ada shares with the circle; the form starts there for someone new.
    round_from_dev_mail(&app, client, "ada@example.org").await;
    wait_for(client, "Checking in as Ada").await;
    let circle = client
        .find(Locator::Css("input[name=audience][value=circle]"))
        .await
        .expect("the circle choice");
    assert_eq!(
        circle.prop("checked").await.expect("checked"),
        Some("true".into())
    );
    fill(client, "textarea#reflection", shared).await;
    click(client, "form#check-in button[type=submit]").await;
    wait_for(client, "Your check-in is saved.").await;
    assert!(said_on_page(client).await.contains(shared));

    // Bea keeps hers for herself: her page shows it in her form only.
    round_from_dev_mail(&app, client, "bea@example.org").await;
    wait_for(client, "Checking in as Bea").await;
    fill(client, "textarea#reflection", private).await;
    click(client, "input[name=audience][value=me]").await;
    click(client, "form#check-in button[type=submit]").await;
    wait_for(client, "Your check-in is saved.").await;
    let said = said_on_page(client).await;
    assert!(said.contains(shared) && !said.contains(private), "{said}");
    assert_eq!(value_of(client, "textarea#reflection").await, private);
    let only_me = client
        .find(Locator::Css("input[name=audience][value=me]"))
        .await
        .expect("the only-me choice");
    assert_eq!(
        only_me.prop("checked").await.expect("checked"),
        Some("true".into())
    );

    // Ada, and Cy who has not checked in, read Ada's and never Bea's.
    for who in ["ada@example.org", "cy@example.org"] {
        round_from_dev_mail(&app, client, who).await;
        wait_for(client, "What the circle said").await;
        let said = said_on_page(client).await;
        assert!(said.contains("Ada") && said.contains(shared), "{said}");
        let main = client
            .find(Locator::Css("main"))
            .await
            .expect("main")
            .text()
            .await
            .expect("text");
        assert!(!main.contains(private), "{main}");
    }

    // The round closes; the digest at /dev/mail says what was shared, in
    // its text and in its HTML, and not what was kept.
    app.clock.set(utc("2027-03-03T09:00:00Z"));
    app.run_jobs().await;
    for who in ["ada@example.org", "bea@example.org", "cy@example.org"] {
        let id = kept_message(&app, who, "how round 1 went").await;
        client
            .goto(&app.url(&format!("/dev/mail/{id}")))
            .await
            .expect("the digest loads");
        let text = wait_for(client, "What the circle said").await;
        assert!(text.contains(shared) && !text.contains(private), "{text}");
        client.enter_frame(0).await.expect("the HTML version");
        let html = client
            .find(Locator::Css("body"))
            .await
            .expect("its body")
            .text()
            .await
            .expect("its text");
        assert!(
            html.contains("What the circle said") && html.contains(shared),
            "{html}"
        );
        assert!(!html.contains(private), "{html}");
        client.enter_parent_frame().await.expect("back out");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_from_the_dev_mailbox_is_a_check_in_on_the_round_page() {
    let app = TestApp::builder(Backend::Sqlite)
        .config(|config| {
            config.mail.transport = shoulder::config::MailTransportKind::Memory;
            config.inbound.reply_address = "reply+{key}@circles.example.org".into();
        })
        .start()
        .await
        .expect("SQLite");
    let Some(browser) = Browser::start().await else {
        return;
    };
    let client = browser.client();
    circle_of(&app, &PEOPLE).await;

    // Ada opens her check-in at /dev/mail and replies in the box under it.
    let id = kept_message(&app, "ada@example.org", "round 1").await;
    client
        .goto(&app.url(&format!("/dev/mail/{id}")))
        .await
        .expect("the message page loads");
    wait_for(client, "Reply above this line").await;
    fill(
        client,
        "textarea#reply-words",
        "+ Call the housing office\nA week of listening.",
    )
    .await;
    click(client, "section#reply button[type=submit]").await;
    wait_for(client, "Your reply was recorded").await;

    // The receipt arrives in the mailbox, and the round page has it all.
    app.run_jobs().await;
    kept_message(&app, "ada@example.org", "your reply is recorded").await;
    round_from_dev_mail(&app, client, "ada@example.org").await;
    wait_for(client, "You have checked in this round.").await;
    assert_eq!(
        value_of(client, "#commitment-1").await,
        "Call the housing office"
    );
    assert_eq!(
        value_of(client, "textarea#reflection").await,
        "A week of listening."
    );
}
