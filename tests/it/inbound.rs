//! Replying by email: messages shaped as mail clients write them (fixtures
//! in `tests/fixtures/replies/`) posted to `POST /inbound/email`, and
//! passed to `shoulder inbound` as a mail server's pipe would. Each asserts
//! what was recorded and which receipt the real SMTP test server received.

use base64::Engine;
use diesel::prelude::*;
use shoulder::db::schema::{
    check_ins, commitments, follow_throughs, inbound_messages, round_skips,
};

use crate::shoulder::{circle_of, query};
use crate::support::{Backend, ReceivedEmail, TestApp, utc};

const PEOPLE: [(&str, &str); 3] = [
    ("ada@example.org", "Ada"),
    ("bea@example.org", "Bea"),
    ("cy@example.org", "Cy"),
];

const SECRET: &str = "inbound-secret-for-tests-0123";
const REPLY_ADDRESS: &str = "reply+{key}@circles.example.org";

/// An app whose emails invite replies, with the HTTP way in open.
async fn start(backend: Backend) -> Option<TestApp> {
    TestApp::builder(backend)
        .config(|config| {
            config.inbound.reply_address = REPLY_ADDRESS.into();
            config.inbound.secret = SECRET.into();
        })
        .start()
        .await
}

/// The latest email to `to` whose subject holds `subject`, once the outbox
/// has delivered what it holds.
async fn latest(app: &TestApp, to: &str, subject: &str) -> ReceivedEmail {
    app.run_jobs().await;
    app.emails()
        .into_iter()
        .rev()
        .find(|m| m.to.iter().any(|t| t == to) && m.subject().is_some_and(|s| s.contains(subject)))
        .unwrap_or_else(|| panic!("no email to {to} about {subject:?}"))
}

fn count_to(app: &TestApp, to: &str) -> usize {
    app.emails()
        .iter()
        .filter(|m| m.to.iter().any(|t| t == to))
        .count()
}

/// What a reply is sent in answer to.
struct Answering {
    reply_to: String,
    message_id: String,
    subject: String,
}

fn answering(email: &ReceivedEmail) -> Answering {
    Answering {
        reply_to: email.header("Reply-To").expect("the email offers a reply"),
        message_id: email
            .header("Message-ID")
            .expect("a Message-ID")
            .trim_matches(['<', '>'])
            .to_string(),
        subject: email.subject().expect("a subject"),
    }
}

/// Quoted-printable, as clients write it, of `text` in `latin1` or UTF-8.
fn quoted_printable(text: &str, latin1: bool) -> String {
    let bytes: Vec<u8> = if latin1 {
        text.chars()
            .map(|c| u8::try_from(u32::from(c)).expect("Latin-1"))
            .collect()
    } else {
        text.as_bytes().to_vec()
    };
    let mut out = String::new();
    for byte in bytes {
        match byte {
            b'\n' => out.push_str("\r\n"),
            b'=' => out.push_str("=3D"),
            32..=126 => out.push(char::from(byte)),
            _ => out.push_str(&format!("={byte:02X}")),
        }
    }
    out
}

/// The fixture `name` filled in: from `from`, to `to`, answering `what`,
/// with `body` as the member's words.
fn fixture(name: &str, from: &str, to: &str, what: &Answering, id: &str, body: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/replies/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let template = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let html = body
        .lines()
        .map(|line| line.replace('&', "&amp;").replace('<', "&lt;"))
        .collect::<Vec<_>>()
        .join("<br>");
    template
        .replace("{FROM}", from)
        .replace("{TO}", to)
        .replace("{SUBJECT}", &what.subject)
        .replace("{MESSAGE_ID}", id)
        .replace("{IN_REPLY_TO}", &what.message_id)
        .replace(
            "{BODY_QP}",
            &quoted_printable(body, name.contains("latin1")),
        )
        .replace("{BODY_HTML}", &quoted_printable(&html, false))
        .replace(
            "{BODY_BASE64}",
            &base64::engine::general_purpose::STANDARD.encode(body.replace('\n', "\r\n")),
        )
        .into_bytes()
}

/// Sends only the head of a POST announcing `length` bytes, and reads the
/// status the server answers from that alone: a client still writing a
/// body the server has refused may find the connection closed under it.
async fn announce_only(app: &TestApp, secret: &str, length: usize) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(app.addr)
        .await
        .expect("connects");
    let head = format!(
        "POST /inbound/email HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {secret}\r\n\
         Content-Type: message/rfc822\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n",
        app.addr
    );
    stream.write_all(head.as_bytes()).await.expect("head sent");
    let mut answer = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut answer),
    )
    .await
    .expect("the server answers without waiting for the body")
    .expect("readable");
    let answer = String::from_utf8_lossy(&answer);
    answer
        .split(' ')
        .nth(1)
        .and_then(|status| status.parse().ok())
        .unwrap_or_else(|| panic!("a status line: {answer}"))
}

async fn post(app: &TestApp, secret: &str, raw: Vec<u8>) -> (u16, String) {
    let response = app
        .client
        .post(app.url("/inbound/email"))
        .header("Authorization", format!("Bearer {secret}"))
        .header("Content-Type", "message/rfc822")
        .body(raw)
        .send()
        .await
        .expect("the server answers");
    let status = response.status().as_u16();
    (status, response.text().await.expect("a body"))
}

async fn reflections(app: &TestApp) -> Vec<String> {
    query(app, |conn| {
        check_ins::table
            .order(check_ins::id.asc())
            .select(check_ins::reflection)
            .load::<String>(conn)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_is_a_check_in_and_gets_a_receipt_on_sqlite() {
    a_reply_is_a_check_in_and_gets_a_receipt(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_is_a_check_in_and_gets_a_receipt_on_postgres() {
    a_reply_is_a_check_in_and_gets_a_receipt(Backend::Postgres).await;
}

async fn a_reply_is_a_check_in_and_gets_a_receipt(backend: Backend) {
    let Some(app) = start(backend).await else {
        return;
    };
    let id = circle_of(&app, &PEOPLE).await;
    let check_in = latest(&app, "ada@example.org", "round 1").await;
    let text = check_in.text_body();
    assert!(
        text.starts_with("Reply above this line to check in by email."),
        "{text}"
    );
    let what = answering(&check_in);
    assert!(
        what.reply_to.starts_with("reply+") && what.reply_to.ends_with("@circles.example.org"),
        "{}",
        what.reply_to
    );

    // Gmail's shape: multipart, quoted-printable, the quote below "On … wrote:".
    let words =
        "+ Call the housing office\n+ Read the tenants’ brief\nA quieter week; I listened more.";
    let raw = fixture(
        "gmail.eml",
        "ada@example.org",
        &what.reply_to,
        &what,
        "r1@mail.example.org",
        words,
    );
    assert_eq!(
        post(&app, SECRET, raw.clone()).await,
        (202, "recorded\n".into())
    );
    assert_eq!(
        reflections(&app).await,
        ["A quieter week; I listened more."]
    );
    let made = query(&app, |conn| {
        commitments::table
            .order(commitments::position.asc())
            .select(commitments::body)
            .load::<String>(conn)
    })
    .await;
    assert_eq!(made, ["Call the housing office", "Read the tenants’ brief"]);
    let receipt = latest(&app, "ada@example.org", "your reply is recorded").await;
    assert_eq!(
        receipt.header("Auto-Submitted").as_deref(),
        Some("auto-replied")
    );
    assert_eq!(
        receipt.header("In-Reply-To").as_deref(),
        Some("<r1@mail.example.org>")
    );
    let said = receipt.text_body();
    assert!(
        said.contains("New commitment: Call the housing office")
            && said.contains("Your reflection: A quieter week;"),
        "{said}"
    );
    assert!(
        said.contains(&format!("/circles/{id}/rounds/1?key=")),
        "{said}"
    );

    // The same message again is taken once: no second receipt.
    let before = app.emails().len();
    assert_eq!(post(&app, SECRET, raw).await, (202, "repeat\n".into()));
    app.run_jobs().await;
    assert_eq!(app.emails().len(), before);

    // Someone else writing to Ada's reply address records nothing and
    // hears nothing back.
    let raw = fixture(
        "gmail.eml",
        "mallory@example.net",
        &what.reply_to,
        &what,
        "r2@evil.example.net",
        "Skip",
    );
    assert_eq!(post(&app, SECRET, raw).await, (202, "stranger\n".into()));
    app.run_jobs().await;
    assert_eq!(count_to(&app, "mallory@example.net"), 0);
    let skips = query(&app, |conn| {
        round_skips::table.count().get_result::<i64>(conn)
    })
    .await;
    assert_eq!(skips, 0);

    // Dropped, and counted.
    let metrics = app.get("/metrics").await.text().await.expect("metrics");
    assert!(
        metrics.contains("shoulder_inbound_messages_total{outcome=\"stranger\"} 1"),
        "{metrics}"
    );

    // An out-of-office answer records nothing and gets no receipt.
    let raw = fixture(
        "out-of-office.eml",
        "ada@example.org",
        &what.reply_to,
        &what,
        "r3@mail.example.org",
        "",
    );
    assert_eq!(post(&app, SECRET, raw).await, (202, "automatic\n".into()));
    app.run_jobs().await;
    assert_eq!(app.emails().len(), before);

    // A message over inbound.max_bytes is refused before it is read.
    let mut huge = fixture(
        "gmail.eml",
        "ada@example.org",
        &what.reply_to,
        &what,
        "big@mail.example.org",
        "Long",
    );
    huge.extend(std::iter::repeat_n(b'x', 1_100_000));
    assert_eq!(announce_only(&app, SECRET, huge.len()).await, 413);

    // The wrong secret, no message, no such address.
    assert_eq!(
        post(&app, "not-the-secret-at-all", b"x".to_vec()).await.0,
        401
    );
    assert_eq!(post(&app, SECRET, b"\r\n\r\n".to_vec()).await.0, 422);
    let stranger = Answering {
        reply_to: "reply+00000000000000000000000000000000@circles.example.org".into(),
        message_id: "nobody@nowhere".into(),
        subject: what.subject.clone(),
    };
    let raw = fixture(
        "gmail.eml",
        "ada@example.org",
        &stranger.reply_to,
        &stranger,
        "r4@mail.example.org",
        "Hello",
    );
    assert_eq!(post(&app, SECRET, raw).await.0, 422);

    // A reply with nothing that can be recorded still gets a receipt that
    // says so, and why.
    let cy = answering(&latest(&app, "cy@example.org", "round 1").await);
    let raw = fixture(
        "gmail.eml",
        "cy@example.org",
        &cy.reply_to,
        &cy,
        "r4b@mail.example.org",
        "3 done",
    );
    assert_eq!(post(&app, SECRET, raw).await, (202, "nothing\n".into()));
    let receipt = latest(&app, "cy@example.org", "your reply recorded nothing")
        .await
        .text_body();
    assert!(
        receipt.contains("line 1 (\"3 done\"): There is no commitment 3: you have none open."),
        "{receipt}"
    );

    // Round 2: follow-through by number, sent to our From address
    // instead (found through In-Reply-To), in Outlook on the web's
    // Latin-1 shape; a report on a commitment that is not there is named.
    app.clock.set(utc("2027-03-03T09:00:00Z"));
    app.run_jobs().await;
    app.clock.set(utc("2027-03-08T09:00:00Z"));
    app.run_jobs().await;
    let check_in = latest(&app, "ada@example.org", "round 2").await;
    let text = check_in.text_body();
    assert!(
        text.contains("1. Call the housing office (round 1)")
            && text.contains("2. Read the tenants’ brief (round 1)"),
        "{text}"
    );
    let what = answering(&check_in);
    let words = "1 done: they called back\n2 not yet\n4 partly\nCafé with Sam helped.";
    let raw = fixture(
        "outlook-web-latin1.eml",
        "Ada@Example.org",
        "shoulder@localhost",
        &what,
        "r5@mail.example.org",
        words,
    );
    assert_eq!(post(&app, SECRET, raw).await, (202, "recorded\n".into()));
    let reported = query(&app, |conn| {
        follow_throughs::table
            .order(follow_throughs::id.asc())
            .select((follow_throughs::outcome, follow_throughs::note))
            .load::<(String, Option<String>)>(conn)
    })
    .await;
    assert_eq!(
        reported,
        [
            ("done".to_string(), Some("they called back".to_string())),
            ("not_yet".to_string(), None)
        ]
    );
    assert_eq!(
        reflections(&app).await.last().map(String::as_str),
        Some("Café with Sam helped.")
    );
    let said = latest(&app, "ada@example.org", "round 2: your reply is recorded")
        .await
        .text_body();
    assert!(
        said.contains("Done: Call the housing office (they called back)"),
        "{said}"
    );
    assert!(
        said.contains("line 3 (\"4 partly\"): There is no commitment 4: yours are 1 to 2."),
        "{said}"
    );

    // A later reply wins field by field: the reflection changes, the
    // follow-through already given stays.
    let raw = fixture(
        "iphone-base64.eml",
        "ada@example.org",
        &what.reply_to,
        &what,
        "r6@mail.example.org",
        "Second thoughts, kinder ones.\n\nSent from my iPhone\n\nOn 8 Mar 2027, at 09:00, Shoulder <shoulder@localhost> wrote:\n> Round 2",
    );
    assert_eq!(post(&app, SECRET, raw).await, (202, "recorded\n".into()));
    assert_eq!(
        reflections(&app).await.last().map(String::as_str),
        Some("Second thoughts, kinder ones.")
    );
    let reported = query(&app, |conn| {
        follow_throughs::table.count().get_result::<i64>(conn)
    })
    .await;
    assert_eq!(reported, 2);

    // Bea skips by replying "skip"; an HTML-only reply in German shape
    // from Cy is read as text.
    let bea = answering(&latest(&app, "bea@example.org", "round 2").await);
    let raw = fixture(
        "gmail.eml",
        "bea@example.org",
        &bea.reply_to,
        &bea,
        "r7@mail.example.org",
        "Skip",
    );
    assert_eq!(post(&app, SECRET, raw).await, (202, "skipped\n".into()));
    let skips = query(&app, |conn| {
        round_skips::table.count().get_result::<i64>(conn)
    })
    .await;
    assert_eq!(skips, 1);
    assert!(
        latest(&app, "bea@example.org", "you are skipping this round")
            .await
            .text_body()
            .contains("You are skipping round 2")
    );
    let cy = answering(&latest(&app, "cy@example.org", "round 2").await);
    let raw = fixture(
        "html-only-german.eml",
        "cy@example.org",
        &cy.reply_to,
        &cy,
        "r8@mail.example.org",
        "Eine gute Woche.\n+ Lisa anrufen",
    );
    assert_eq!(post(&app, SECRET, raw).await, (202, "recorded\n".into()));
    let made = query(&app, |conn| {
        commitments::table
            .select(commitments::body)
            .load::<String>(conn)
    })
    .await;
    assert!(made.contains(&"Lisa anrufen".to_string()), "{made:?}");

    // After the close, a reply is recorded late.
    app.clock.set(utc("2027-03-10T10:00:00Z"));
    app.run_jobs().await;
    let raw = fixture(
        "gmail.eml",
        "bea@example.org",
        &bea.reply_to,
        &bea,
        "r9@mail.example.org",
        "Late, but here.",
    );
    assert_eq!(post(&app, SECRET, raw).await, (202, "recorded\n".into()));
    let late = query(&app, |conn| {
        check_ins::table
            .filter(check_ins::reflection.eq("Late, but here."))
            .select(check_ins::late)
            .first::<bool>(conn)
    })
    .await;
    assert!(late);
    let outcomes = query(&app, |conn| {
        inbound_messages::table
            .order(inbound_messages::id.asc())
            .select(inbound_messages::outcome)
            .load::<String>(conn)
    })
    .await;
    assert_eq!(
        outcomes,
        [
            "recorded",
            "stranger",
            "automatic",
            "nothing",
            "recorded",
            "recorded",
            "skipped",
            "recorded",
            "recorded"
        ]
    );
}

/// Runs `shoulder inbound` on the app's own database with `message` on
/// stdin, as a mail server's pipe transport would; its exit code and
/// what it printed.
fn pipe(app: &TestApp, database_url: &str, message: &[u8]) -> (i32, String) {
    use std::io::Write;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut command = crate::support::process::shoulder(dir.path());
    command
        .arg("inbound")
        .env("SHOULDER_DATABASE__URL", database_url)
        .env("SHOULDER_INBOUND__REPLY_ADDRESS", REPLY_ADDRESS)
        .env("SHOULDER_SERVER__PUBLIC_URL", app.public_base())
        .env("SHOULDER_MAIL__FILE_DIR", dir.path().join("mail"))
        .env("SHOULDER_LOG__FILTER", "warn")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = command.spawn().expect("shoulder inbound starts");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(message)
        .expect("the message is written");
    let output = child.wait_with_output().expect("shoulder inbound ends");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code().unwrap_or(-1), said)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pipe_command_answers_mail_servers_in_their_exit_codes_on_sqlite() {
    the_pipe_command_answers_mail_servers_in_their_exit_codes(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pipe_command_answers_mail_servers_in_their_exit_codes_on_postgres() {
    the_pipe_command_answers_mail_servers_in_their_exit_codes(Backend::Postgres).await;
}

async fn the_pipe_command_answers_mail_servers_in_their_exit_codes(backend: Backend) {
    let Some(app) = start(backend).await else {
        return;
    };
    circle_of(&app, &PEOPLE).await;
    let url = app.state.config.database.url.clone();
    let what = answering(&latest(&app, "ada@example.org", "round 1").await);
    let reply = fixture(
        "gmail.eml",
        "ada@example.org",
        &what.reply_to,
        &what,
        "p1@mail.example.org",
        "+ Bring soup on Thursday",
    );

    // Taken: 0, and the receipt is queued for the server to send.
    let (code, said) = pipe(&app, &url, &reply);
    assert_eq!(code, 0, "{said}");
    assert!(said.contains("recorded"), "{said}");
    let made = query(&app, |conn| {
        commitments::table
            .select(commitments::body)
            .load::<String>(conn)
    })
    .await;
    assert_eq!(made, ["Bring soup on Thursday"]);
    assert!(
        latest(&app, "ada@example.org", "your reply is recorded")
            .await
            .text_body()
            .contains("New commitment: Bring soup on Thursday")
    );
    // Taken before, or dropped on purpose: 0 too, so the server does not bounce it.
    assert_eq!(pipe(&app, &url, &reply).0, 0);

    // No such reply address: 67; no message at all: 65.
    let nobody = Answering {
        reply_to: "reply+1111111111111111111111111111111111111111111111@circles.example.org".into(),
        message_id: "none@nowhere".into(),
        subject: what.subject.clone(),
    };
    let unknown = fixture(
        "gmail.eml",
        "ada@example.org",
        &nobody.reply_to,
        &nobody,
        "p2@mail.example.org",
        "Hello",
    );
    let (code, said) = pipe(&app, &url, &unknown);
    assert_eq!(code, 67, "{said}");
    let (code, said) = pipe(&app, &url, b"");
    assert_eq!(code, 65, "{said}");

    // A database that cannot be reached: 75, try again later; nothing lost.
    let unreachable = match backend {
        Backend::Sqlite => "/nonexistent-folder/shoulder.db".to_string(),
        Backend::Postgres => "postgres://nobody@127.0.0.1:1/none".to_string(),
    };
    let (code, said) = pipe(&app, &unreachable, &reply);
    assert_eq!(code, 75, "{said}");
}

/// Each client's shape, in each language we read: only the member's own
/// words are recorded, whatever the client put below them.
async fn every_client_shape_yields_only_the_members_words(backend: Backend) {
    let Some(app) = TestApp::builder(backend)
        .config(|config| {
            config.inbound.reply_address = REPLY_ADDRESS.into();
            config.inbound.secret = SECRET.into();
            config.inbound.replies_per_round_per_day = 12;
        })
        .start()
        .await
    else {
        return;
    };
    circle_of(&app, &PEOPLE).await;
    let what = answering(&latest(&app, "ada@example.org", "round 1").await);
    let shapes = [
        ("gmail.eml", "Gmail: a good week."),
        ("gmail-spanish.eml", "Una semana tranquila."),
        ("outlook-desktop.eml", "Outlook on the desktop."),
        ("outlook-web-latin1.eml", "Outlook sur le web, déjà."),
        ("outlook-dutch.eml", "Een goede week."),
        ("apple-mail.eml", "Apple Mail, at last."),
        ("thunderbird-french.eml", "Une semaine délicate."),
        ("android-portuguese.eml", "Uma semana boa."),
        ("iphone-base64.eml", "From my phone.\n\nSent from my iPhone"),
        ("html-only-german.eml", "Eine gute Woche."),
    ];
    for (n, (shape, words)) in shapes.iter().enumerate() {
        let id = format!("shape-{n}@mail.example.org");
        let raw = fixture(shape, "ada@example.org", &what.reply_to, &what, &id, words);
        assert_eq!(
            post(&app, SECRET, raw).await,
            (202, "recorded\n".into()),
            "{shape}"
        );
        let expected = words.split("\n\nSent from").next().unwrap_or(words);
        assert_eq!(reflections(&app).await, [expected], "{shape}");
    }
    // Two more are taken today; beyond that, nothing is read or answered.
    for n in 0..3 {
        let raw = fixture(
            "gmail.eml",
            "ada@example.org",
            &what.reply_to,
            &what,
            &format!("more-{n}@mail.example.org"),
            &format!("Reply {n}"),
        );
        let expected = if n < 2 { "recorded\n" } else { "limited\n" };
        assert_eq!(
            post(&app, SECRET, raw).await,
            (202, expected.into()),
            "reply {n}"
        );
    }
    assert_eq!(reflections(&app).await, ["Reply 1"]);

    // An over-long commitment is refused by the page's own limit and named
    // in the receipt; the rest of the reply is recorded.
    let bea = answering(&latest(&app, "bea@example.org", "round 1").await);
    let long = "x".repeat(281);
    let raw = fixture(
        "gmail.eml",
        "bea@example.org",
        &bea.reply_to,
        &bea,
        "long@mail.example.org",
        &format!("+ {long}\n+ Short and sweet"),
    );
    assert_eq!(post(&app, SECRET, raw).await, (202, "recorded\n".into()));
    let made = query(&app, |conn| {
        commitments::table
            .select(commitments::body)
            .load::<String>(conn)
    })
    .await;
    assert_eq!(made, ["Short and sweet"]);
    let receipt = latest(&app, "bea@example.org", "your reply is recorded")
        .await
        .text_body();
    assert!(
        receipt.contains("line 1") && receipt.contains("limited to 280 characters"),
        "{receipt}"
    );

    // A key is for its own round: round 1's, used once round 2 is open,
    // records in round 1, late.
    app.clock.set(utc("2027-03-03T09:00:00Z"));
    app.run_jobs().await;
    app.clock.set(utc("2027-03-08T09:00:00Z"));
    app.run_jobs().await;
    let cy = answering(
        &app.emails()
            .into_iter()
            .find(|m| {
                m.to == ["cy@example.org"]
                    && m.subject()
                        .is_some_and(|s| s.contains("round 1") && !s.contains("went"))
            })
            .expect("Cy's round 1 email"),
    );
    let raw = fixture(
        "gmail.eml",
        "cy@example.org",
        &cy.reply_to,
        &cy,
        "cy-late@mail.example.org",
        "Better late.",
    );
    assert_eq!(post(&app, SECRET, raw).await, (202, "recorded\n".into()));
    let (number, late) = query(&app, |conn| {
        check_ins::table
            .inner_join(shoulder::db::schema::rounds::table)
            .filter(check_ins::reflection.eq("Better late."))
            .select((shoulder::db::schema::rounds::number, check_ins::late))
            .first::<(i32, bool)>(conn)
    })
    .await;
    assert_eq!((number, late), (1, true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_client_shape_yields_only_the_members_words_on_sqlite() {
    every_client_shape_yields_only_the_members_words(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_client_shape_yields_only_the_members_words_on_postgres() {
    every_client_shape_yields_only_the_members_words(Backend::Postgres).await;
}

/// A report fixture (`dsn.eml`, `complaint.eml`) about `original`, the
/// Message-ID (without brackets) of an email of ours to `recipient`.
fn report(
    name: &str,
    to: &str,
    id: &str,
    recipient: &str,
    original: &str,
    action: &str,
    status: &str,
) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/replies/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .replace("{TO}", to)
        .replace("{MESSAGE_ID}", id)
        .replace("{RECIPIENT}", recipient)
        .replace("{ORIGINAL_ID}", original)
        .replace("{ACTION}", action)
        .replace("{STATUS}", status)
        .into_bytes()
}

async fn bounces_and_complaints_reach_the_email_they_are_about(backend: Backend) {
    use shoulder::db::schema::{deliveries, memberships, people, suppressed_addresses};
    let Some(app) = TestApp::builder(backend)
        .config(|config| {
            config.inbound.secret = SECRET.into();
            config.inbound.bounce_address = "bounce+{key}@circles.example.org".into();
        })
        .start()
        .await
    else {
        return;
    };
    circle_of(&app, &PEOPLE).await;
    let ada = latest(&app, "ada@example.org", "round 1").await;
    let ada_id = ada
        .header("Message-ID")
        .expect("an id")
        .trim_matches(['<', '>'])
        .to_string();
    let key = ada_id.split('@').next().expect("a key").to_string();
    // The envelope sender names the email.
    assert_eq!(ada.from, format!("bounce+{key}@circles.example.org"));
    let status_of = |key: String| {
        query(&app, move |conn| {
            deliveries::table
                .filter(deliveries::message_id.eq(key))
                .select((deliveries::status, deliveries::last_error))
                .first::<(String, Option<String>)>(conn)
        })
    };

    // A delay changes nothing.
    let delayed = report(
        "dsn.eml",
        &ada.from,
        "dsn-1@mx.example.net",
        "ada@example.org",
        &ada_id,
        "delayed",
        "4.4.1",
    );
    assert_eq!(post(&app, SECRET, delayed).await, (202, "delayed\n".into()));
    assert_eq!(status_of(key.clone()).await.0, "sent");

    // A permanent failure, to the bounce address: the email failed, the
    // address is suppressed, and no mail answers the bounce.
    let before = app.emails().len();
    let failed = report(
        "dsn.eml",
        &ada.from,
        "dsn-2@mx.example.net",
        "ada@example.org",
        &ada_id,
        "failed",
        "5.1.1",
    );
    assert_eq!(
        post(&app, SECRET, failed.clone()).await,
        (202, "bounced\n".into())
    );
    assert_eq!(
        status_of(key.clone()).await,
        ("failed".to_string(), Some("bounced: 5.1.1".to_string()))
    );
    let suppressed = query(&app, |conn| {
        suppressed_addresses::table
            .select(suppressed_addresses::email)
            .load::<String>(conn)
    })
    .await;
    assert_eq!(suppressed, ["ada@example.org"]);
    assert_eq!(post(&app, SECRET, failed).await, (202, "repeat\n".into()));
    app.run_jobs().await;
    assert_eq!(app.emails().len(), before);

    // Without our key in the address, the quoted Message-ID finds it.
    let bea = latest(&app, "bea@example.org", "round 1").await;
    let bea_id = bea
        .header("Message-ID")
        .expect("an id")
        .trim_matches(['<', '>'])
        .to_string();
    let failed = report(
        "dsn.eml",
        "postmaster@circles.example.org",
        "dsn-3@mx.example.net",
        "bea@example.org",
        &bea_id,
        "failed",
        "5.2.1",
    );
    assert_eq!(post(&app, SECRET, failed).await, (202, "bounced\n".into()));
    assert_eq!(
        status_of(bea_id.split('@').next().expect("key").to_string())
            .await
            .0,
        "failed"
    );

    // A complaint mutes the circle for that person, as the one-click link does.
    let cy = latest(&app, "cy@example.org", "round 1").await;
    let cy_id = cy
        .header("Message-ID")
        .expect("an id")
        .trim_matches(['<', '>'])
        .to_string();
    let complaint = report(
        "complaint.eml",
        &cy.from,
        "arf-1@isp.example.net",
        "cy@example.org",
        &cy_id,
        "",
        "",
    );
    assert_eq!(
        post(&app, SECRET, complaint).await,
        (202, "complained\n".into())
    );
    let muted = query(&app, |conn| {
        memberships::table
            .inner_join(people::table)
            .filter(people::email.eq("cy@example.org"))
            .select(memberships::muted)
            .first::<bool>(conn)
    })
    .await;
    assert!(muted);

    // A report about nothing of ours is refused.
    let stray = report(
        "dsn.eml",
        "postmaster@circles.example.org",
        "dsn-4@mx.example.net",
        "x@example.org",
        "d-unknown@elsewhere",
        "failed",
        "5.1.1",
    );
    assert_eq!(post(&app, SECRET, stray).await.0, 422);

    // The next round: Ada's address is not mailed, Cy's circle mail is off.
    app.clock.set(utc("2027-03-03T09:00:00Z"));
    app.run_jobs().await;
    app.clock.set(utc("2027-03-08T09:00:00Z"));
    app.run_jobs().await;
    let round_two_to = |who: &str| {
        app.emails()
            .iter()
            .filter(|m| {
                m.to.iter().any(|t| t == who)
                    && m.subject()
                        .is_some_and(|s| s.contains("round 2") && !s.contains("went"))
            })
            .count()
    };
    assert_eq!(
        (
            round_two_to("ada@example.org"),
            round_two_to("cy@example.org")
        ),
        (0, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bounces_and_complaints_reach_the_email_they_are_about_on_sqlite() {
    bounces_and_complaints_reach_the_email_they_are_about(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bounces_and_complaints_reach_the_email_they_are_about_on_postgres() {
    bounces_and_complaints_reach_the_email_they_are_about(Backend::Postgres).await;
}

/// With the database gone, a relay is told to try again later (503 with
/// `Retry-After`), not that the message is bad.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_is_asked_to_try_again_while_the_database_is_gone() {
    let Some(app) = start(Backend::Postgres).await else {
        return;
    };
    circle_of(&app, &PEOPLE).await;
    let what = answering(&latest(&app, "ada@example.org", "round 1").await);
    let reply = fixture(
        "gmail.eml",
        "ada@example.org",
        &what.reply_to,
        &what,
        "later@mail.example.org",
        "+ Later",
    );
    crate::support::postgres::drop_database_of(&app.state.config.database.url).await;
    let response = app
        .client
        .post(app.url("/inbound/email"))
        .header("Authorization", format!("Bearer {SECRET}"))
        .body(reply)
        .send()
        .await
        .expect("the server answers");
    assert_eq!(response.status().as_u16(), 503);
    assert_eq!(response.headers()["retry-after"], "60");
}

/// Without `inbound.secret` there is no such route.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_secret_the_route_is_not_there() {
    let app = TestApp::start(Backend::Sqlite).await.expect("SQLite");
    assert_eq!(
        post(&app, SECRET, b"From: a@b\r\n\r\nx".to_vec()).await.0,
        404
    );
}
