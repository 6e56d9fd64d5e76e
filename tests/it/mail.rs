//! The mailer against a real SMTP server: what arrives, and how each kind of
//! refusal is classified.

use shoulder::clock::Clock;
use shoulder::config::MailTransportKind;
use shoulder::mail::{EmailAddress, Mailer, OutgoingEmail, RenderedEmail, SendError};

use chrono::{TimeZone, Utc};

use crate::support::{Backend, SmtpMode, TestApp, TestSmtp, default_start, test_config};

fn mailer_for(smtp: &TestSmtp, timeout_secs: u64) -> Mailer {
    let mut config = test_config();
    config.mail.transport = MailTransportKind::Smtp;
    config.mail.smtp_url = smtp.url();
    config.mail.from = "Shoulder <circles@example.org>".into();
    config.mail.send_timeout_secs = timeout_secs;
    config.server.public_url = "https://circles.example.org".into();
    Mailer::from_config(&config, Clock::fixed(default_start())).expect("mailer")
}

fn email(to: &str, name: Option<&str>) -> OutgoingEmail {
    OutgoingEmail {
        to: EmailAddress::parse(to).expect("valid address"),
        to_name: name.map(str::to_string),
        content: RenderedEmail {
            subject: "This week's question".into(),
            text: "Who are we leaving behind?\nhttps://circles.example.org/r/1".into(),
            html: "<p>Who are we leaving behind?</p>".into(),
        },
        message_key: "delivery.41".into(),
        headers: vec![(
            "List-Unsubscribe".into(),
            "<https://circles.example.org/unsubscribe/abc>".into(),
        )],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accepted_email_arrives_whole() {
    let smtp = TestSmtp::start();
    let mailer = mailer_for(&smtp, 5);
    let receipt = mailer
        .send(&email("Ada@Example.org", Some("Ada")))
        .await
        .expect("sent");
    assert_eq!(receipt.message_id, "<delivery.41@circles.example.org>");
    assert!(receipt.response.starts_with("250"), "{}", receipt.response);

    let received = smtp.wait_for_messages(1);
    let message = &received[0];
    assert_eq!(message.to, ["ada@example.org"]);
    assert_eq!(message.from, "circles@example.org");
    assert_eq!(message.subject().as_deref(), Some("This week's question"));
    assert_eq!(
        message.header("Message-ID").as_deref(),
        Some("<delivery.41@circles.example.org>")
    );
    assert_eq!(
        message.header("List-Unsubscribe").as_deref(),
        Some("<https://circles.example.org/unsubscribe/abc>")
    );
    assert!(message.text_body().contains("Who are we leaving behind?"));
    assert!(
        message
            .html_body()
            .expect("an html part")
            .contains("<p>Who are we leaving behind?</p>")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crlf_in_a_name_never_becomes_a_header() {
    let smtp = TestSmtp::start();
    let mailer = mailer_for(&smtp, 5);
    mailer
        .send(&email(
            "ada@example.org",
            Some("Ada\r\nBcc: eve@example.org"),
        ))
        .await
        .expect("sent");
    let message = &smtp.wait_for_messages(1)[0];
    assert_eq!(message.header("Bcc"), None);
    assert_eq!(message.to, ["ada@example.org"], "no extra recipient");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_4xx_answer_is_worth_retrying() {
    let smtp = TestSmtp::start();
    smtp.set_mode(SmtpMode::TempFail);
    let error = mailer_for(&smtp, 5)
        .send(&email("ada@example.org", None))
        .await
        .expect_err("refused for now");
    assert!(matches!(error, SendError::Transient(_)), "{error:?}");
    assert!(error.is_retryable());
    assert!(smtp.messages().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_5xx_answer_is_final() {
    let smtp = TestSmtp::start();
    smtp.set_mode(SmtpMode::PermFail);
    let error = mailer_for(&smtp, 5)
        .send(&email("ada@example.org", None))
        .await
        .expect_err("refused for good");
    assert!(matches!(error, SendError::Permanent(_)), "{error:?}");
    assert!(!error.is_retryable());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_stalls_hits_our_own_timeout() {
    let smtp = TestSmtp::start();
    smtp.set_mode(SmtpMode::Stall);
    let error = mailer_for(&smtp, 1)
        .send(&email("ada@example.org", None))
        .await
        .expect_err("no answer");
    assert!(error.is_retryable(), "{error:?}");
    assert!(
        matches!(error, SendError::Timeout(_) | SendError::Transient(_)),
        "{error:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_listening_is_a_temporary_failure() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
        listener.local_addr().expect("addr").port()
    };
    let mut config = test_config();
    config.mail.transport = MailTransportKind::Smtp;
    config.mail.smtp_url = format!("smtp://127.0.0.1:{port}");
    let mailer = Mailer::from_config(&config, Clock::fixed(default_start())).expect("mailer");
    let error = mailer
        .send(&email("ada@example.org", None))
        .await
        .expect_err("refused");
    assert!(error.is_retryable(), "{error:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_file_transport_writes_one_eml_per_message() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = test_config();
    config.mail.transport = MailTransportKind::File;
    config.mail.file_dir = dir.path().join("mail").display().to_string();
    let mailer = Mailer::from_config(&config, Clock::fixed(default_start())).expect("mailer");
    mailer
        .send(&email("ada@example.org", None))
        .await
        .expect("written");
    let mut second = email("bob@example.org", None);
    second.message_key = "delivery.42".into();
    mailer.send(&second).await.expect("written");

    let files: Vec<_> = std::fs::read_dir(dir.path().join("mail"))
        .expect("mail folder created")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(files.len(), 2);
    let all: String = files
        .iter()
        .map(|f| std::fs::read_to_string(f).expect("readable"))
        .collect();
    assert!(all.contains("Subject: This week's question"));
    assert!(all.contains("To: bob@example.org"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_transport_keeps_what_was_sent() {
    let mut config = test_config();
    config.mail.transport = MailTransportKind::Memory;
    let mailer = Mailer::from_config(&config, Clock::fixed(default_start())).expect("mailer");
    mailer
        .send(&email("ada@example.org", None))
        .await
        .expect("kept");
    let kept = mailer.memory_messages();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].to, ["ada@example.org"]);
    assert!(kept[0].raw.contains("Who are we leaving behind?"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_sends_through_its_smtp_server_dated_by_its_clock() {
    let then = Utc
        .with_ymd_and_hms(2031, 5, 6, 7, 8, 9)
        .single()
        .expect("valid");
    let app = TestApp::builder(Backend::Sqlite)
        .at(then)
        .start()
        .await
        .expect("sqlite");
    app.state
        .mailer
        .send(&email("ada@example.org", None))
        .await
        .expect("sent");
    app.smtp.wait_for_messages(1);
    let emails = app.emails();
    assert_eq!(emails.len(), 1);
    let date = emails[0].header("Date").expect("a Date header");
    assert_eq!(date, "Tue, 06 May 2031 07:08:09 +0000");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_server_drops_a_pooled_connection_the_next_send_still_works() {
    let smtp = TestSmtp::start();
    let mailer = mailer_for(&smtp, 5);
    mailer
        .send(&email("ada@example.org", None))
        .await
        .expect("first send");
    // The pool keeps that connection. A refusal makes the server close it.
    smtp.set_mode(SmtpMode::TempFail);
    let mut second = email("bea@example.org", None);
    second.message_key = "delivery.42".into();
    assert!(
        mailer
            .send(&second)
            .await
            .expect_err("refused")
            .is_retryable()
    );
    smtp.set_mode(SmtpMode::Accept);
    let mut third = email("cy@example.org", None);
    third.message_key = "delivery.43".into();
    mailer
        .send(&third)
        .await
        .expect("a fresh connection carries it");
    let received = smtp.wait_for_messages(2);
    assert_eq!(received[1].to, ["cy@example.org"]);
}
