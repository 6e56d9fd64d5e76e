//! What tells mail programs that our mail is automatic, read from the real
//! SMTP server: `Auto-Submitted` on every kind, and on circle mail a
//! `List-Id` naming the circle, whatever its name holds.

use shoulder::mail::mime;

use crate::on_both_backends;
use crate::support::{ReceivedEmail, TestApp, open_week, utc, weekly_circle};

const PEOPLE: [(&str, &str); 2] = [("ada@example.org", "Ada"), ("bea@example.org", "Bea")];

fn assert_automatic(email: &ReceivedEmail) {
    assert_eq!(
        email.header("Auto-Submitted").as_deref(),
        Some("auto-generated"),
        "{}",
        email.data
    );
}

/// The check-ins of week 1, the reminder a day later and the digest at
/// close, for a circle called `name` whose round opens on 1 March 2027.
async fn one_round_of_mail(app: &TestApp, name: &str) -> (i64, Vec<ReceivedEmail>) {
    let id = weekly_circle(app, name, &PEOPLE).await;
    let before = app.emails().len();
    assert_eq!(open_week(app, 1).await.rounds.opened, [(id, 1)]);
    app.clock.set(utc("2027-03-02T09:00:00Z"));
    assert_eq!(app.run_jobs().await.rounds.reminded, 1);
    app.clock.set(utc("2027-03-03T09:00:00Z"));
    assert_eq!(app.run_jobs().await.rounds.closed, 1);
    // Two check-ins, two reminders, two digests.
    let all = app.smtp.wait_for_messages(before + 6);
    (id, all[before..].to_vec())
}

on_both_backends! {
    async fn every_email_of_a_round_says_it_is_automatic_and_names_its_circle(app) {
        let name = "Zoë’s \"Dienstag\" Kreis";
        let (id, emails) = one_round_of_mail(&app, name).await;
        assert_eq!(emails.len(), 6);
        let expected_id = format!("<circle-{id}.lists.127.0.0.1>");
        for email in &emails {
            assert_automatic(email);
            assert!(email.header("List-Unsubscribe").is_some(), "{}", email.data);
            let list_id = email.header("List-Id").expect("a List-Id");
            assert!(list_id.is_ascii(), "{list_id}");
            assert_eq!(
                mime::decode_encoded_words(&list_id),
                format!("{name} {expected_id}")
            );
        }
    }
}

on_both_backends! {
    async fn quotes_and_backslashes_in_a_plain_name_stay_inside_the_quoted_string(app) {
        let (id, emails) = one_round_of_mail(&app, r#"The "A\B" team"#).await;
        for email in &emails {
            assert_eq!(
                email.header("List-Id"),
                Some(format!(r#""The \"A\\B\" team" <circle-{id}.lists.127.0.0.1>"#))
            );
        }
    }
}

on_both_backends! {
    async fn mail_outside_a_circle_is_automatic_but_no_list(app) {
        app.sign_in("cy@example.org", "Cy").await;
        let emails = app.emails();
        assert_eq!(emails.len(), 1);
        assert_automatic(&emails[0]);
        assert_eq!(emails[0].header("List-Id"), None);
        assert_eq!(emails[0].header("List-Unsubscribe"), None);
    }
}
