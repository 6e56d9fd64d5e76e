//! Email wording, kept out of the code so operators can change it.
//!
//! Each kind of email has a folder `templates/email/<kind>/` with
//! `subject.txt`, `body.txt` and `body.html`; HTML bodies may extend
//! `_layout.html`. A file missing on disk falls back to the copy compiled into
//! the binary, so a server started outside the repository still has words.
//! `.html` templates escape what they are given; `.txt` ones do not need to.

use std::path::{Path, PathBuf};

use minijinja::Environment;
use serde::Serialize;

/// The wording shipped with the binary, by template name.
const BUILT_IN: &[(&str, &str)] = &[
    (
        "_layout.html",
        include_str!("../../templates/email/_layout.html"),
    ),
    (
        "test/subject.txt",
        include_str!("../../templates/email/test/subject.txt"),
    ),
    (
        "test/body.txt",
        include_str!("../../templates/email/test/body.txt"),
    ),
    (
        "test/body.html",
        include_str!("../../templates/email/test/body.html"),
    ),
    (
        "sign_in/subject.txt",
        include_str!("../../templates/email/sign_in/subject.txt"),
    ),
    (
        "sign_in/body.txt",
        include_str!("../../templates/email/sign_in/body.txt"),
    ),
    (
        "sign_in/body.html",
        include_str!("../../templates/email/sign_in/body.html"),
    ),
    (
        "sign_in_new/subject.txt",
        include_str!("../../templates/email/sign_in_new/subject.txt"),
    ),
    (
        "sign_in_new/body.txt",
        include_str!("../../templates/email/sign_in_new/body.txt"),
    ),
    (
        "sign_in_new/body.html",
        include_str!("../../templates/email/sign_in_new/body.html"),
    ),
    (
        "invite/subject.txt",
        include_str!("../../templates/email/invite/subject.txt"),
    ),
    (
        "invite/body.txt",
        include_str!("../../templates/email/invite/body.txt"),
    ),
    (
        "invite/body.html",
        include_str!("../../templates/email/invite/body.html"),
    ),
    (
        "join_confirm/subject.txt",
        include_str!("../../templates/email/join_confirm/subject.txt"),
    ),
    (
        "join_confirm/body.txt",
        include_str!("../../templates/email/join_confirm/body.txt"),
    ),
    (
        "join_confirm/body.html",
        include_str!("../../templates/email/join_confirm/body.html"),
    ),
    (
        "welcome/subject.txt",
        include_str!("../../templates/email/welcome/subject.txt"),
    ),
    (
        "welcome/body.txt",
        include_str!("../../templates/email/welcome/body.txt"),
    ),
    (
        "welcome/body.html",
        include_str!("../../templates/email/welcome/body.html"),
    ),
    (
        "check_in/subject.txt",
        include_str!("../../templates/email/check_in/subject.txt"),
    ),
    (
        "check_in/body.txt",
        include_str!("../../templates/email/check_in/body.txt"),
    ),
    (
        "check_in/body.html",
        include_str!("../../templates/email/check_in/body.html"),
    ),
    (
        "reminder/subject.txt",
        include_str!("../../templates/email/reminder/subject.txt"),
    ),
    (
        "reminder/body.txt",
        include_str!("../../templates/email/reminder/body.txt"),
    ),
    (
        "reminder/body.html",
        include_str!("../../templates/email/reminder/body.html"),
    ),
    (
        "digest/subject.txt",
        include_str!("../../templates/email/digest/subject.txt"),
    ),
    (
        "digest/body.txt",
        include_str!("../../templates/email/digest/body.txt"),
    ),
    (
        "digest/body.html",
        include_str!("../../templates/email/digest/body.html"),
    ),
    (
        "receipt/subject.txt",
        include_str!("../../templates/email/receipt/subject.txt"),
    ),
    (
        "receipt/body.txt",
        include_str!("../../templates/email/receipt/body.txt"),
    ),
    (
        "receipt/body.html",
        include_str!("../../templates/email/receipt/body.html"),
    ),
    (
        "email_change/subject.txt",
        include_str!("../../templates/email/email_change/subject.txt"),
    ),
    (
        "email_change/body.txt",
        include_str!("../../templates/email/email_change/body.txt"),
    ),
    (
        "email_change/body.html",
        include_str!("../../templates/email/email_change/body.html"),
    ),
    (
        "email_change_notice/subject.txt",
        include_str!("../../templates/email/email_change_notice/subject.txt"),
    ),
    (
        "email_change_notice/body.txt",
        include_str!("../../templates/email/email_change_notice/body.txt"),
    ),
    (
        "email_change_notice/body.html",
        include_str!("../../templates/email/email_change_notice/body.html"),
    ),
    (
        "joined/subject.txt",
        include_str!("../../templates/email/joined/subject.txt"),
    ),
    (
        "joined/body.txt",
        include_str!("../../templates/email/joined/body.txt"),
    ),
    (
        "joined/body.html",
        include_str!("../../templates/email/joined/body.html"),
    ),
];

/// The kinds of email we send; each names its template folder.
pub const KINDS: &[&str] = &[
    "test",
    "sign_in",
    "sign_in_new",
    "invite",
    "join_confirm",
    "welcome",
    "check_in",
    "reminder",
    "digest",
    "receipt",
    "email_change",
    "email_change_notice",
    "joined",
];

/// One email's words, ready for the transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedEmail {
    pub subject: String,
    pub text: String,
    pub html: String,
}

#[derive(Debug, thiserror::Error)]
#[error("email template {name}: {reason}")]
pub struct TemplateError {
    pub name: String,
    pub reason: String,
}

#[derive(Debug)]
pub struct EmailTemplates {
    env: Environment<'static>,
}

impl EmailTemplates {
    /// Loads templates from `dir`, falling back to the built-in copies, and
    /// compiles every kind so a broken edit is found at start, not at send.
    pub fn load(dir: &Path) -> Result<EmailTemplates, TemplateError> {
        let dir: PathBuf = dir.to_path_buf();
        let mut env = Environment::new();
        env.set_loader(move |name| {
            if name.contains("..") {
                return Ok(None);
            }
            match std::fs::read_to_string(dir.join(name)) {
                Ok(text) => Ok(Some(text)),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(BUILT_IN
                    .iter()
                    .find(|(built_in, _)| *built_in == name)
                    .map(|(_, text)| (*text).to_string())),
                Err(error) => Err(minijinja::Error::new(
                    minijinja::ErrorKind::InvalidOperation,
                    format!("cannot read {name}: {error}"),
                )),
            }
        });
        let templates = EmailTemplates { env };
        for kind in KINDS {
            for part in ["subject.txt", "body.txt", "body.html"] {
                let name = format!("{kind}/{part}");
                templates
                    .env
                    .get_template(&name)
                    .map_err(|e| TemplateError {
                        name: name.clone(),
                        reason: describe(&e),
                    })?;
            }
        }
        Ok(templates)
    }

    pub fn render<C: Serialize>(
        &self,
        kind: &str,
        context: &C,
    ) -> Result<RenderedEmail, TemplateError> {
        // Converted once for the three parts, not once for each.
        let context = minijinja::Value::from_serialize(context);
        let part = |part: &str| -> Result<String, TemplateError> {
            let name = format!("{kind}/{part}");
            let template = self.env.get_template(&name).map_err(|e| TemplateError {
                name: name.clone(),
                reason: describe(&e),
            })?;
            template.render(&context).map_err(|e| TemplateError {
                name,
                reason: describe(&e),
            })
        };
        Ok(RenderedEmail {
            subject: one_line(&part("subject.txt")?),
            text: part("body.txt")?,
            html: part("body.html")?,
        })
    }
}

/// A subject is a header: whatever the template or its data hold, it becomes
/// one line, so no line break can start a header of its own.
fn one_line(text: &str) -> String {
    text.split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn describe(error: &minijinja::Error) -> String {
    match error.line() {
        Some(line) => format!("line {line}: {}", error.kind()),
        None => error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn built_in_wording_renders_and_escapes_html() {
        let dir = tempfile::tempdir().expect("temp dir");
        let templates = EmailTemplates::load(dir.path()).expect("built-ins load");
        let email = templates
            .render(
                "test",
                &json!({"public_url": "http://127.0.0.1:3000", "sent_at": "<b>now</b>\r\nBcc: x"}),
            )
            .expect("renders");
        assert!(!email.subject.contains('\n') && !email.subject.contains('\r'));
        assert!(email.text.contains("http://127.0.0.1:3000"));
        assert!(email.html.contains("&lt;b&gt;now&lt;"), "{}", email.html);
        assert!(!email.html.contains("<b>now"));
    }

    #[test]
    fn files_on_disk_win_over_built_ins() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(dir.path().join("test")).expect("mkdir");
        std::fs::write(
            dir.path().join("test/subject.txt"),
            "Hello from {{ public_url }}\nsecond line",
        )
        .expect("write");
        let templates = EmailTemplates::load(dir.path()).expect("loads");
        let email = templates
            .render(
                "test",
                &json!({"public_url": "https://circles.example.org", "sent_at": "x"}),
            )
            .expect("renders");
        assert_eq!(
            email.subject,
            "Hello from https://circles.example.org second line"
        );
    }

    #[test]
    fn a_broken_template_is_reported_at_load_with_its_name() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(dir.path().join("test")).expect("mkdir");
        std::fs::write(dir.path().join("test/body.txt"), "Hello {% if %}").expect("write");
        let error = EmailTemplates::load(dir.path()).expect_err("syntax error found");
        assert_eq!(error.name, "test/body.txt");
    }
}
