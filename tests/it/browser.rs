//! Pages as a real browser shows them: headless Chromium over WebDriver,
//! under the Content-Security-Policy the server really sends.

use fantoccini::{Client, Locator};

use crate::support::browser::Browser;
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
