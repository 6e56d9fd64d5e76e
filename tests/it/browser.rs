//! Pages as a real browser shows them: headless Chromium over WebDriver,
//! under the Content-Security-Policy the server really sends.

use fantoccini::{Client, Locator};

use crate::support::browser::{Browser, click, fill, wait_for};
use crate::support::{Backend, TestApp};

/// The `--paper` colour of `src/web/style.css`, as the browser computes it.
const PAPER: &str = "rgb(251, 249, 245)";

async fn text_of(client: &Client, css: &str) -> String {
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("the page has {css}: {e}"))
        .text()
        .await
        .unwrap_or_else(|e| panic!("{css} has text: {e}"))
}

/// The body's background colour as the browser computed it from our CSS.
async fn body_background(client: &Client) -> String {
    let script = "return getComputedStyle(document.body).backgroundColor";
    let value = client
        .execute(script, vec![])
        .await
        .unwrap_or_else(|e| panic!("the browser runs `{script}`: {e}"));
    value
        .as_str()
        .unwrap_or_else(|| panic!("`{script}` should give a string, gave {value}"))
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn home_page_renders_with_its_stylesheet_under_the_content_security_policy() {
    let app = TestApp::start(Backend::Sqlite).await.expect("SQLite");
    let Some(browser) = Browser::start().await else {
        return;
    };
    let client = browser.client();

    client
        .goto(&app.url("/"))
        .await
        .expect("the home page loads");

    let title = client.title().await.expect("a title");
    assert!(title.contains("Shoulder"), "title: {title}");
    assert_eq!(text_of(client, "h1").await, "Shouldering each other up");
    assert_eq!(
        body_background(client).await,
        PAPER,
        "the stylesheet loaded despite the strict policy: the body has its paper colour"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_page_shows_the_not_found_page_in_the_layout() {
    let app = TestApp::start(Backend::Sqlite).await.expect("SQLite");
    let Some(browser) = Browser::start().await else {
        return;
    };
    let client = browser.client();

    client
        .goto(&app.url("/no/such/page"))
        .await
        .expect("the not-found page loads");

    assert_eq!(text_of(client, "main h1").await, "Nothing here");
    assert_eq!(text_of(client, "header.site a.brand").await, "Shoulder");
    let title = client.title().await.expect("a title");
    assert!(title.contains("Not found"), "title: {title}");
    assert_eq!(
        body_background(client).await,
        PAPER,
        "the not-found page is styled like every other page"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_header_link_leads_from_an_unknown_page_back_to_the_start() {
    let app = TestApp::start(Backend::Sqlite).await.expect("SQLite");
    let Some(browser) = Browser::start().await else {
        return;
    };
    let client = browser.client();
    client
        .goto(&app.url("/no/such/page"))
        .await
        .expect("the not-found page loads");

    client
        .find(Locator::Css("header.site a.brand"))
        .await
        .expect("the header link")
        .click()
        .await
        .expect("the header link can be clicked");

    let home = url::Url::parse(&app.url("/")).expect("a URL");
    client
        .wait()
        .at_most(std::time::Duration::from_secs(10))
        .for_url(&home)
        .await
        .expect("the click leads to the home page");
    assert_eq!(text_of(client, "h1").await, "Shouldering each other up");
}

/// The newest email to `to`, once the outbox has delivered it.
async fn latest_email_to(app: &TestApp, to: &str) -> crate::support::ReceivedEmail {
    app.run_jobs().await;
    app.emails()
        .into_iter()
        .rev()
        .find(|m| m.to == [to.to_string()])
        .unwrap_or_else(|| panic!("an email to {to}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_facilitator_starts_a_circle_and_a_second_person_joins_through_its_link() {
    let app = TestApp::start(Backend::Sqlite).await.expect("SQLite");
    let Some(facilitator) = Browser::start().await else {
        return;
    };
    let Some(joiner) = Browser::start().await else {
        return;
    };
    let ada = facilitator.client();

    // Ada signs in through the emailed link.
    ada.goto(&app.url("/sign-in")).await.expect("sign-in page");
    fill(ada, "#email", "ada@example.org").await;
    click(ada, "form button[type=submit]").await;
    wait_for(ada, "Check your email").await;
    let email = latest_email_to(&app, "ada@example.org").await;
    let link = crate::support::link_path(&email.text_body(), app.public_base(), "/sign-in/");
    ada.goto(&app.url(&link))
        .await
        .expect("the emailed link opens");
    wait_for(ada, "You are signing in as").await;
    fill(ada, "#name", "Ada").await;
    click(ada, "main form button[type=submit]").await;
    // Someone new was offered to start a circle, and lands on its form.
    wait_for(ada, "When rounds open").await;
    fill(ada, "#name", "Night shift accomplices").await;
    fill(ada, "#purpose", "Turning what we learn into what we do.").await;
    fill(ada, "#agreements", "We listen first.").await;
    click(ada, "button[value=save]").await;
    let circle_page = wait_for(ada, "Members (1 of 8)").await;
    assert!(
        circle_page.contains("Night shift accomplices"),
        "{circle_page}"
    );
    // Her zone was asked for at sign-in, so the page says the next round
    // in it rather than leaving that to the browser.
    let next = text_of(ada, "main p strong").await;
    assert!(next.contains(" in UTC"), "{next}");
    assert!(
        ada.find(Locator::Css("time[data-local]")).await.is_err(),
        "no browser-local line for someone with a zone"
    );

    // And copies the circle's invite link.
    click(ada, "a[href$='/invites']").await;
    wait_for(ada, "A link to share").await;
    click(ada, "#invite-link form button[type=submit]").await;
    let invite = ada
        .wait()
        .at_most(std::time::Duration::from_secs(20))
        .for_element(Locator::Css("#invite-url"))
        .await
        .expect("the new link is shown")
        .prop("value")
        .await
        .expect("a value")
        .expect("a link");
    assert!(invite.starts_with(&app.url("/join/")), "{invite}");

    // Bea, in a browser of her own, asks to join and confirms from her email.
    let bea = joiner.client();
    bea.goto(&invite).await.expect("the invite opens");
    wait_for(bea, "We listen first.").await;
    fill(bea, "#name", "Bea").await;
    fill(bea, "#email", "bea@example.org").await;
    click(bea, "#accept").await;
    click(bea, "main form button[type=submit]").await;
    wait_for(bea, "A confirmation link is on its way").await;
    let email = latest_email_to(&app, "bea@example.org").await;
    let confirm =
        crate::support::link_path(&email.text_body(), app.public_base(), "/join/confirm/");
    bea.goto(&app.url(&confirm))
        .await
        .expect("the confirmation opens");
    wait_for(bea, "You are joining as").await;
    click(bea, "main form button[type=submit]").await;

    let members = wait_for(bea, "Members (2 of 8)").await;
    assert!(members.contains("Night shift accomplices"), "{members}");
    assert!(members.contains("Members (2 of 8)"), "{members}");
    assert!(members.contains("Ada"));
    assert!(members.contains("Bea"));
}

/// The value a form control holds now.
async fn value_of(client: &Client, css: &str) -> String {
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .prop("value")
        .await
        .expect("a value")
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_sign_in_proposes_the_browser_s_time_zone_and_keeps_it() {
    let app = TestApp::start(Backend::Sqlite).await.expect("SQLite");
    let Some(browser) = Browser::start_in_zone("America/Sao_Paulo").await else {
        return;
    };
    let client = browser.client();
    client
        .goto(&app.url("/sign-in"))
        .await
        .expect("sign-in page");
    fill(client, "#email", "rui@example.org").await;
    click(client, "form button[type=submit]").await;
    wait_for(client, "Check your email").await;
    let email = latest_email_to(&app, "rui@example.org").await;
    let link = crate::support::link_path(&email.text_body(), app.public_base(), "/sign-in/");
    client.goto(&app.url(&link)).await.expect("the link opens");
    wait_for(client, "You are signing in as").await;

    // The page is served with UTC chosen; the script proposes the zone
    // Chromium runs in.
    let page = client.source().await.expect("source");
    assert!(
        page.contains(r#"<option value="UTC" selected="">UTC</option>"#),
        "served with UTC: {page}"
    );
    let mut proposed = String::new();
    for _ in 0..100 {
        proposed = value_of(client, "#time_zone").await;
        if proposed != "UTC" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(proposed, "America/Sao_Paulo");

    fill(client, "#name", "Rui").await;
    click(client, "main form button[type=submit]").await;
    // The new circle starts in Rui's zone, chosen by the server now.
    wait_for(client, "When rounds open").await;
    let page = client.source().await.expect("source");
    assert!(
        page.contains(r#"<option value="America/Sao_Paulo" selected="">Sao Paulo</option>"#)
            && !page.contains("data-browser-zone"),
        "{page}"
    );
    client.goto(&app.url("/me")).await.expect("/me");
    let page = wait_for(client, "Your time zone").await;
    assert!(
        page.contains("Times are shown to you in America/Sao_Paulo."),
        "{page}"
    );
}

/// The `id` of the element that has focus, once it is `expected` (the
/// page's autofocus runs after it loads), or whatever has it after a while.
async fn focus_settles_on(client: &Client, expected: &str) -> String {
    let mut focused = String::new();
    for _ in 0..100 {
        focused = client
            .execute(
                "return document.activeElement ? document.activeElement.id : '';",
                vec![],
            )
            .await
            .expect("the focused element")
            .as_str()
            .unwrap_or_default()
            .to_string();
        if focused == expected {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    focused
}

/// The `id` of the element the address's fragment points at, if any.
async fn target_id(client: &Client) -> String {
    client
        .execute(
            "const t = document.querySelector(':target'); return t ? t.id : '';",
            vec![],
        )
        .await
        .expect("the target")
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_form_opens_on_its_summary_whose_links_lead_to_each_field() {
    let app = TestApp::start(Backend::Sqlite).await.expect("SQLite");
    let Some(browser) = Browser::start().await else {
        return;
    };
    let client = browser.client();
    client
        .goto(&app.url("/sign-in"))
        .await
        .expect("sign-in page");
    fill(client, "#email", "rui@example.org").await;
    click(client, "form button[type=submit]").await;
    wait_for(client, "Check your email").await;
    let email = latest_email_to(&app, "rui@example.org").await;
    let link = crate::support::link_path(&email.text_body(), app.public_base(), "/sign-in/");
    client.goto(&app.url(&link)).await.expect("the link opens");
    wait_for(client, "You are signing in as").await;
    fill(client, "#name", "Rui").await;
    click(client, "main form button[type=submit]").await;
    wait_for(client, "When rounds open").await;

    // A circle with nothing written and room for too many, past the
    // browser's own checks, which would stop the form before the server.
    fill(client, "#size_cap", "13").await;
    client
        .execute(
            "document.querySelectorAll('[required], [min], [max]').forEach(e => { \
                e.removeAttribute('required'); e.removeAttribute('min'); e.removeAttribute('max'); }); \
             return true;",
            vec![],
        )
        .await
        .expect("the browser's own checks set aside");
    click(client, "button[value=save]").await;
    // The name, purpose and agreements are empty, and the room too big.
    let summary = wait_for(client, "4 answers need another look").await;
    assert!(summary.contains("3 to 12 people"), "{summary}");

    assert_eq!(
        focus_settles_on(client, "problems").await,
        "problems",
        "the page opens on its summary"
    );
    for field in ["size_cap", "name"] {
        click(client, &format!("#problems a[href='#{field}']")).await;
        assert_eq!(
            focus_settles_on(client, field).await,
            field,
            "the link leads to {field}"
        );
        assert_eq!(target_id(client).await, field);
    }
    assert_eq!(
        value_of(client, "#size_cap").await,
        "13",
        "what was typed is kept"
    );
}
