//! The developer mailbox at `/dev/mail`: what the file and memory
//! transports kept, read over real HTTP (and in a real browser, under the
//! Content-Security-Policy the server sends); nothing at all with SMTP.

use chrono::Duration;
use fantoccini::Locator;
use shoulder::config::MailTransportKind;
use shoulder::mail::{EmailAddress, OutgoingEmail, RenderedEmail};

use crate::support::browser::Browser;
use crate::support::{Backend, TestApp, link_path};

async fn start(backend: Backend, transport: MailTransportKind) -> Option<TestApp> {
    TestApp::builder(backend)
        .config(move |config| config.mail.transport = transport)
        .start()
        .await
}

/// Asks for a sign-in link for `email` and delivers the outbox.
async fn ask_for_link(app: &TestApp, email: &str) {
    let response = app.post_form("/sign-in", &[("email", email)]).await;
    assert_eq!(response.status().as_u16(), 303);
    app.run_jobs().await;
}

/// The message ids the list page links to, in the order it shows them.
fn listed_ids(page: &str) -> Vec<String> {
    let marker = "href=\"/dev/mail/";
    page.match_indices(marker)
        .map(|(at, _)| {
            page[at + marker.len()..]
                .split('"')
                .next()
                .expect("the link ends")
                .to_string()
        })
        .collect()
}

/// Sends one crafted message straight through the app's mailer.
async fn send(app: &TestApp, key: &str, to_name: Option<&str>, content: RenderedEmail) {
    app.state
        .mailer
        .send(&OutgoingEmail {
            to: EmailAddress::parse("ada@example.org").expect("an address"),
            to_name: to_name.map(str::to_string),
            content,
            message_key: key.into(),
            headers: Vec::new(),
        })
        .await
        .expect("the transport keeps it");
}

async fn a_sign_in_email_can_be_read_and_its_link_followed(app: TestApp) {
    let (status, empty) = app.get_text("/dev/mail").await;
    assert_eq!(status, 200);
    assert!(empty.contains("Nothing has been sent yet"), "{empty}");

    ask_for_link(&app, "ada@example.org").await;
    let response = app.get("/dev/mail").await;
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let list = response.text().await.expect("a page");
    assert!(list.contains("Start a circle on Shoulder"), "{list}");
    assert!(list.contains("ada@example.org"), "{list}");
    let ids = listed_ids(&list);
    assert_eq!(ids.len(), 1, "{list}");

    let (status, page) = app.get_text(&format!("/dev/mail/{}", ids[0])).await;
    assert_eq!(status, 200);
    assert!(page.contains("Start a circle on Shoulder"), "{page}");
    assert!(
        page.contains("Shoulder &lt;shoulder@localhost&gt;"),
        "{page}"
    );
    let clickable = format!("<a href=\"{}/sign-in/", app.public_base());
    assert!(page.contains(&clickable), "the link is clickable:\n{page}");
    assert!(page.contains("<iframe sandbox srcdoc=\""), "{page}");

    // The link on the page is the one that signs in.
    let link = link_path(&page, app.public_base(), "/sign-in/");
    let (status, confirm) = app.get_text(&link).await;
    assert_eq!(status, 200);
    assert!(confirm.contains("ada@example.org"), "{confirm}");
    assert!(confirm.contains(r#"method="post""#), "{confirm}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_file_transport_mailbox_shows_a_sign_in_link_on_sqlite() {
    let app = start(Backend::Sqlite, MailTransportKind::File)
        .await
        .expect("SQLite is always available");
    a_sign_in_email_can_be_read_and_its_link_followed(app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_file_transport_mailbox_shows_a_sign_in_link_on_postgres() {
    let Some(app) = start(Backend::Postgres, MailTransportKind::File).await else {
        return;
    };
    a_sign_in_email_can_be_read_and_its_link_followed(app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_transport_mailbox_shows_a_sign_in_link() {
    let app = start(Backend::Sqlite, MailTransportKind::Memory)
        .await
        .expect("SQLite is always available");
    a_sign_in_email_can_be_read_and_its_link_followed(app).await;
}

async fn the_newest_message_comes_first(transport: MailTransportKind) {
    let app = start(Backend::Sqlite, transport)
        .await
        .expect("SQLite is always available");
    ask_for_link(&app, "ada@example.org").await;
    app.clock.advance(Duration::minutes(1));
    ask_for_link(&app, "bob@example.org").await;

    let (status, list) = app.get_text("/dev/mail").await;
    assert_eq!(status, 200);
    assert_eq!(listed_ids(&list).len(), 2, "{list}");
    let bob = list.find("bob@example.org").expect("Bob's email is listed");
    let ada = list.find("ada@example.org").expect("Ada's email is listed");
    assert!(bob < ada, "the later email comes first:\n{list}");

    let (_, newest) = app
        .get_text(&format!("/dev/mail/{}", listed_ids(&list)[0]))
        .await;
    assert!(newest.contains("bob@example.org"), "{newest}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_file_mailbox_lists_the_newest_first() {
    the_newest_message_comes_first(MailTransportKind::File).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_mailbox_lists_the_newest_first() {
    the_newest_message_comes_first(MailTransportKind::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_smtp_there_is_no_mailbox() {
    let app = TestApp::start(Backend::Sqlite)
        .await
        .expect("SQLite is always available");
    ask_for_link(&app, "ada@example.org").await;
    assert_eq!(app.smtp.wait_for_messages(1).len(), 1, "the email went out");

    for path in ["/dev/mail", "/dev/mail/0", "/dev/mail/x.eml"] {
        let (status, page) = app.get_text(path).await;
        assert_eq!(status, 404, "{path}");
        assert!(
            page.contains("Nothing here"),
            "our not-found page for {path}:\n{page}"
        );
        assert!(!page.contains("Start a circle"), "{page}");
    }
}

/// A server that listens beyond loopback outside development and tests
/// keeps its mailbox to itself: the messages hold live sign-in links.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mailbox_is_served_only_on_loopback_or_in_development() {
    for (environment, bind, served) in [
        ("production", "0.0.0.0:3000", false),
        ("staging", "[::]:3000", false),
        ("production", "127.0.0.1:3000", true),
        ("development", "0.0.0.0:3000", true),
        ("test", "0.0.0.0:3000", true),
    ] {
        for transport in [MailTransportKind::File, MailTransportKind::Memory] {
            let app = TestApp::builder(Backend::Sqlite)
                .config(move |config| {
                    config.mail.transport = transport;
                    config.environment = environment.into();
                    // What the server was told to listen on; the test's
                    // own listener stays on loopback.
                    config.server.bind = bind.into();
                })
                .start()
                .await
                .expect("SQLite is always available");
            ask_for_link(&app, "ada@example.org").await;
            let case = format!("{transport:?} transport, {environment} on {bind}");
            let (status, page) = app.get_text("/dev/mail").await;
            let (id_status, _) = app.get_text("/dev/mail/0").await;
            if served {
                assert_eq!(status, 200, "{case}");
                assert_eq!(listed_ids(&page).len(), 1, "{case}: {page}");
            } else {
                assert_eq!((status, id_status), (404, 404), "{case}");
                assert!(!page.contains("/sign-in/"), "{case}: {page}");
            }
            assert_eq!(
                app.state.config.warnings().len(),
                usize::from(bind.starts_with("0.0.0.0") || bind.starts_with("[::]")),
                "{case}: {:?}",
                app.state.config.warnings()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_ids_never_reach_outside_the_mail_folder() {
    let app = start(Backend::Sqlite, MailTransportKind::File)
        .await
        .expect("SQLite is always available");
    ask_for_link(&app, "ada@example.org").await;
    let mail_dir = app.state.config.mail_file_dir().to_path_buf();
    let outside = mail_dir.parent().expect("a parent").join("secret.eml");
    std::fs::write(&outside, "Subject: SECRET-MARKER\r\n\r\nSECRET-MARKER\r\n").expect("written");
    #[cfg(unix)]
    std::os::unix::fs::symlink(&outside, mail_dir.join("20270301T090000.000000Z-link.eml"))
        .expect("a link in the mail folder");

    for id in [
        "..%2Fsecret.eml",
        "..%2F..%2F..%2F..%2Fetc%2Fpasswd",
        "%2E%2E%2Fsecret.eml",
        "..%5Csecret.eml",
        "%2Fetc%2Fpasswd",
        "secret.eml",
        "20270301T090000.000000Z-link.eml",
        "nothing-here.eml",
        ".eml",
        "%FF%FE",
        "%00",
    ] {
        let (status, page) = app.get_text(&format!("/dev/mail/{id}")).await;
        assert_eq!(status, 404, "{id}");
        assert!(page.contains("Nothing here"), "{id}:\n{page}");
        assert!(!page.contains("SECRET-MARKER"), "{id}:\n{page}");
        assert!(!page.contains("root:"), "{id}:\n{page}");
    }
    let (status, list) = app.get_text("/dev/mail").await;
    assert_eq!(status, 200);
    assert_eq!(
        listed_ids(&list).len(),
        1,
        "only what the transport wrote:\n{list}"
    );
    assert!(!list.contains("SECRET-MARKER"), "{list}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_ids_are_plain_indexes() {
    let app = start(Backend::Sqlite, MailTransportKind::Memory)
        .await
        .expect("SQLite is always available");
    ask_for_link(&app, "ada@example.org").await;
    assert_eq!(app.get("/dev/mail/0").await.status().as_u16(), 200);
    for id in ["1", "+0", "00", "-1", "0.0", "18446744073709551616", "x"] {
        assert_eq!(
            app.get(&format!("/dev/mail/{id}")).await.status().as_u16(),
            404,
            "{id}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_message_comes_back_escaped() {
    let app = start(Backend::Sqlite, MailTransportKind::File)
        .await
        .expect("SQLite is always available");
    send(
        &app,
        "hostile.1",
        Some("<b>Ada</b>"),
        RenderedEmail {
            subject: "<script>alert('subject')</script> hello".into(),
            text:
                "Click <a href=\"javascript:alert(1)\">here</a> or https://example.org/x?a=1&b=<2>"
                    .into(),
            html: "<script>alert('html')</script><p onclick=\"alert(2)\">Hi</p>".into(),
        },
    )
    .await;

    let (status, list) = app.get_text("/dev/mail").await;
    assert_eq!(status, 200);
    assert!(!list.contains("<script>"), "{list}");
    assert!(
        list.contains("&lt;script&gt;alert('subject')&lt;/script&gt; hello"),
        "{list}"
    );
    assert!(!list.contains("<b>Ada"), "{list}");

    let (status, page) = app
        .get_text(&format!("/dev/mail/{}", listed_ids(&list)[0]))
        .await;
    assert_eq!(status, 200);
    assert!(!page.contains("<script>"), "{page}");
    assert!(!page.contains("<p onclick"), "{page}");
    assert!(!page.contains("<b>Ada"), "{page}");
    assert!(!page.contains("href=\"javascript:"), "{page}");
    assert!(
        page.contains("&lt;a href=&quot;javascript:alert(1)&quot;&gt;here&lt;/a&gt;"),
        "{page}"
    );
    assert!(
        page.contains("<a href=\"https://example.org/x?a=1&amp;b=\">"),
        "{page}"
    );
    assert!(
        page.contains("srcdoc=\"&lt;script&gt;alert('html')&lt;/script&gt;"),
        "{page}"
    );
}

/// The sandboxed frame really shows the HTML under our policy, and nothing
/// in it runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_html_version_shows_in_its_sandboxed_frame_in_a_browser() {
    let app = start(Backend::Sqlite, MailTransportKind::Memory)
        .await
        .expect("SQLite is always available");
    let Some(browser) = Browser::start().await else {
        return;
    };
    send(
        &app,
        "framed.1",
        None,
        RenderedEmail {
            subject: "Framed".into(),
            text: "The text version".into(),
            html: "<p id=\"greeting\" style=\"color: rgb(255, 0, 0)\">Hello from the HTML part</p>\
                   <script>parent.document.title = 'taken over'; \
                   document.getElementById('greeting').textContent = 'script ran';</script>"
                .into(),
        },
    )
    .await;
    let client = browser.client();
    client
        .goto(&app.url("/dev/mail/0"))
        .await
        .expect("the message page loads");

    let title = client.title().await.expect("a title");
    assert!(title.starts_with("Framed"), "title: {title}");
    client.enter_frame(0).await.expect("the frame is there");
    let greeting = client
        .find(Locator::Css("#greeting"))
        .await
        .unwrap_or_else(|e| {
            panic!(
                "the HTML version is shown in the frame: {e}\n{}",
                browser.chromedriver_output()
            )
        });
    let text = greeting.text().await.expect("its text");
    assert_eq!(
        text, "Hello from the HTML part",
        "and its script did not run"
    );
    // The frame inherits our policy, which refuses inline styles; the
    // page says so, and this keeps that sentence true.
    let colour = greeting.css_value("color").await.expect("its colour");
    assert_ne!(
        colour, "rgba(255, 0, 0, 1)",
        "the email's inline style is held back"
    );
    client.enter_parent_frame().await.expect("back to the page");
    assert!(client.title().await.expect("a title").starts_with("Framed"));
}

/// Whether the page in `client` is wider than its window, at the window's
/// present size.
async fn scrolls_sideways(client: &fantoccini::Client) -> serde_json::Value {
    client
        .execute(
            "return { page: document.documentElement.scrollWidth, window: window.innerWidth };",
            vec![],
        )
        .await
        .expect("the page's width")
}

/// The mailbox and a message with long headers, a long link and a long
/// line of HTML fit a 390 px phone: the page never scrolls sideways (the
/// text and source scroll in their own boxes), and axe-core finds nothing,
/// at a desktop's width either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mailbox_and_a_message_fit_a_phone_and_pass_axe() {
    let app = start(Backend::Sqlite, MailTransportKind::File)
        .await
        .expect("SQLite is always available");
    let Some(browser) = Browser::start().await else {
        return;
    };
    let Some(axe) = crate::support::axe::script() else {
        return;
    };
    ask_for_link(&app, "ada@example.org").await;
    let long_word = "accountability".repeat(8);
    send(
        &app,
        "wide.1",
        Some(&format!("Ada {long_word}")),
        RenderedEmail {
            subject: format!("A subject with a very long word {long_word} in it"),
            text: format!(
                "Your round: https://circles.example.org/circles/1/rounds/2?key={}\n{}",
                "k".repeat(120),
                "-".repeat(200)
            ),
            html: format!("<p>{}</p>", "<b>wide</b>".repeat(60)),
        },
    )
    .await;
    let (_, list) = app.get_text("/dev/mail").await;
    let ids = listed_ids(&list);
    assert_eq!(ids.len(), 2, "{list}");

    let client = browser.client();
    let mut problems = Vec::new();
    for (path, what) in [
        ("/dev/mail".to_string(), "the mailbox"),
        (format!("/dev/mail/{}", ids[0]), "a message with long lines"),
        (format!("/dev/mail/{}", ids[1]), "a sign-in email"),
    ] {
        client.goto(&app.url(&path)).await.expect("the page opens");
        // The HTML source, shown as it would be when opened.
        client
            .execute(
                "document.querySelectorAll('details').forEach(d => d.open = true); return true;",
                vec![],
            )
            .await
            .expect("the source opened");
        problems.extend(crate::support::axe::problems(client, &axe, what).await);
        client
            .set_window_size(390, 844)
            .await
            .expect("a phone's width");
        let widths = scrolls_sideways(client).await;
        assert!(
            widths["page"].as_u64() <= widths["window"].as_u64(),
            "{what} at 390 px: {widths}"
        );
        client
            .set_window_size(1280, 900)
            .await
            .expect("a desktop's width");
    }
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
