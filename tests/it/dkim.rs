//! DKIM signatures on what Shoulder sends, checked with dkimpy against the
//! public key (see `support::dkim`): check-ins over real SMTP for each kind
//! of key file, mail outside a circle, the file and memory transports, and
//! what a changed header does to the verdict.

use shoulder::clock::Clock;
use shoulder::config::MailTransportKind;
use shoulder::mail::{EmailAddress, Mailer, OutgoingEmail, RenderedEmail};

use crate::support::dkim::{self, KeyFormat, TestKey};
use crate::support::{
    Backend, ReceivedEmail, TestApp, default_start, open_week, test_config, weekly_circle,
};

const DOMAIN: &str = "circles.example.org";
const SELECTOR: &str = "s2027";
const FROM: &str = "Shoulder <circles@circles.example.org>";
const PEOPLE: [(&str, &str); 2] = [("ada@example.org", "Ada"), ("bea@example.org", "Bea")];

/// The headers the issue asks every circle email's signature to cover.
const MUST_COVER: [&str; 9] = [
    "from",
    "subject",
    "date",
    "message-id",
    "to",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "auto-submitted",
    "list-id",
];

fn sign_with(config: &mut shoulder::config::Config, key: &TestKey) {
    config.mail.from = FROM.into();
    config.mail.dkim_domain = DOMAIN.into();
    config.mail.dkim_selector = SELECTOR.into();
    config.mail.dkim_private_key_file = key.path.display().to_string();
}

/// The `h=` tag of a message's signature, as names in lower case.
fn signed_names(email: &ReceivedEmail) -> Vec<String> {
    let signature = email.header("DKIM-Signature").expect("a DKIM-Signature");
    let tags: String = signature.split_whitespace().collect();
    let list = tags
        .split(';')
        .find_map(|tag| tag.strip_prefix("h="))
        .expect("an h= tag");
    list.split(':').map(str::to_ascii_lowercase).collect()
}

/// `raw` with the value of its first `name` header changed.
fn tampered(raw: &str, name: &str) -> String {
    let start = format!("\r\n{name}: ");
    let at = raw
        .find(&start)
        .unwrap_or_else(|| panic!("no {name} header in:\n{raw}"));
    let value_at = at + start.len();
    format!("{}X{}", &raw[..value_at], &raw[value_at..])
}

async fn check_ins_verify(format: KeyFormat, algorithm: &str) {
    if !dkim::verifier_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let key = dkim::generate(dir.path(), "dkim", format, 2048);
    let key_for_app = key.clone();
    let app = TestApp::builder(Backend::Sqlite)
        .config(move |config| sign_with(config, &key_for_app))
        .start()
        .await
        .expect("SQLite is always available");
    let id = weekly_circle(&app, "Zoë’s \"Tuesday\" circle", &PEOPLE).await;
    assert_eq!(open_week(&app, 1).await.rounds.opened, [(id, 1)]);
    let check_ins = app.smtp.wait_for_messages(2);
    for email in &check_ins {
        let signature = email.header("DKIM-Signature").expect("signed");
        assert!(
            signature.contains(&format!("a={algorithm};")),
            "{signature}"
        );
        assert!(signature.contains(&format!("d={DOMAIN};")), "{signature}");
        assert!(signature.contains(&format!("s={SELECTOR};")), "{signature}");
        let names = signed_names(email);
        for name in MUST_COVER {
            assert!(names.iter().any(|n| n == name), "{name} in {names:?}");
        }
        dkim::verify(email.data.as_bytes(), &key, SELECTOR, DOMAIN)
            .unwrap_or_else(|why| panic!("the signature verifies: {why}\n{}", email.data));
        for name in ["Subject", "List-Unsubscribe", "List-Id"] {
            let changed = tampered(&email.data, name);
            assert!(
                dkim::verify(changed.as_bytes(), &key, SELECTOR, DOMAIN).is_err(),
                "a changed {name} must fail verification"
            );
        }
    }
    // Mail outside a circle is signed the same way.
    app.sign_in("cy@example.org", "Cy").await;
    let sign_in = app
        .emails()
        .into_iter()
        .find(|email| email.to == ["cy@example.org"])
        .expect("a sign-in email");
    dkim::verify(sign_in.data.as_bytes(), &key, SELECTOR, DOMAIN)
        .unwrap_or_else(|why| panic!("the sign-in email verifies: {why}"));
    let other = dkim::generate(dir.path(), "other", format, 2048);
    assert!(
        dkim::verify(sign_in.data.as_bytes(), &other, SELECTOR, DOMAIN).is_err(),
        "another key's record must not verify it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_ins_signed_with_an_rsa_pkcs8_key_verify() {
    check_ins_verify(KeyFormat::RsaPkcs8, "rsa-sha256").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_ins_signed_with_an_rsa_pkcs1_key_verify() {
    check_ins_verify(KeyFormat::RsaPkcs1, "rsa-sha256").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_ins_signed_with_an_ed25519_key_verify() {
    check_ins_verify(KeyFormat::Ed25519, "ed25519-sha256").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_file_and_memory_transports_keep_signed_messages() {
    if !dkim::verifier_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let key = dkim::generate(dir.path(), "dkim", KeyFormat::Ed25519, 0);
    let email = OutgoingEmail {
        to: EmailAddress::parse("ada@example.org").expect("valid address"),
        to_name: Some("Ada Ünal".into()),
        content: RenderedEmail {
            subject: "Ça avance? Round 3".into(),
            text: "Trailing blanks   \nand a long line ".repeat(40),
            html: "<p>Ça avance?</p>".into(),
        },
        message_key: "delivery.7".into(),
        headers: Vec::new(),
    };
    for transport in [MailTransportKind::File, MailTransportKind::Memory] {
        let mut config = test_config();
        sign_with(&mut config, &key);
        config.mail.transport = transport;
        config.mail.file_dir = dir.path().join("mail").display().to_string();
        let mailer = Mailer::from_config(&config, Clock::fixed(default_start())).expect("mailer");
        mailer.send(&email).await.expect("kept");
        let kept = match transport {
            MailTransportKind::Memory => mailer.memory_messages()[0].raw.clone(),
            _ => {
                let file = std::fs::read_dir(dir.path().join("mail"))
                    .expect("the mail folder")
                    .next()
                    .expect("one file")
                    .expect("an entry")
                    .path();
                std::fs::read_to_string(file).expect("readable")
            }
        };
        dkim::verify(kept.as_bytes(), &key, SELECTOR, DOMAIN)
            .unwrap_or_else(|why| panic!("{transport:?}: the kept message verifies: {why}"));
    }
}
