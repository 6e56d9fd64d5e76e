//! Hostile text in every field people type into: markup is kept as text and
//! comes back escaped in pages and in HTML email (and as typed in plain-text
//! email); NUL bytes, other control characters and bidirectional overrides
//! are refused with the form kept and nothing written; CRLF in a name never
//! becomes an email header, even for a name that reached the database by
//! another road than our forms.

use diesel::prelude::*;
use shoulder::db::DbError;
use shoulder::db::schema::{
    away_periods, check_ins, circle_prompts, circles, commitments, follow_throughs, invites,
    memberships, people, support_messages,
};

use crate::on_both_backends;
use crate::support::{ReceivedEmail, TestApp, open_week, utc, weekly_circle};

const SCRIPT: &str = "<script>alert('x')</script>";
const ESCAPED: &str = "&lt;script&gt;alert(";

/// Markup arrives as text: escaped in a page, never live.
fn assert_page_escapes(what: &str, page: &str) {
    assert!(
        !page.contains("<script>alert"),
        "{what}: live markup in\n{page}"
    );
    assert!(
        page.contains(ESCAPED),
        "{what}: the text is missing from\n{page}"
    );
}

/// The HTML part escapes markup; the plain-text part shows it as typed.
fn assert_email_escapes(what: &str, email: &ReceivedEmail) {
    let html = email
        .html_body()
        .unwrap_or_else(|| panic!("{what}: no HTML part"));
    assert_page_escapes(what, &html);
    let text = email.text_body();
    assert!(
        text.contains(SCRIPT),
        "{what}: plain text changed it:\n{text}"
    );
    assert!(
        !text.contains("&lt;"),
        "{what}: plain text HTML-escaped:\n{text}"
    );
}

fn email_to<'a>(emails: &'a [ReceivedEmail], to: &str, subject_part: &str) -> &'a ReceivedEmail {
    emails
        .iter()
        .rev()
        .find(|m| m.to == [to] && m.subject().is_some_and(|s| s.contains(subject_part)))
        .unwrap_or_else(|| panic!("an email to {to} about {subject_part:?}"))
}

async fn commitment_of(app: &TestApp, body_part: &'static str) -> i64 {
    app.state
        .db
        .run(move |conn| {
            Ok::<i64, DbError>(
                commitments::table
                    .filter(commitments::body.like(format!("%{body_part}%")))
                    .select(commitments::id)
                    .first(conn)?,
            )
        })
        .await
        .expect("the commitment")
}

on_both_backends! {
    async fn markup_stays_text_in_pages_and_in_emails(app) {
        let ada_name = format!("Ada {SCRIPT}");
        let id = weekly_circle(
            &app,
            &format!("Night {SCRIPT}"),
            &[("ada@example.org", &ada_name), ("bea@example.org", "Bea")],
        )
        .await;
        open_week(&app, 1).await;
        let emails = app.emails();
        for to in ["ada@example.org", "bea@example.org"] {
            let email = email_to(&emails, to, "round 1");
            assert_email_escapes("check-in email", email);
            let subject = email.subject().expect("a subject");
            assert!(subject.starts_with(&format!("Night {SCRIPT}, round 1")), "{subject}");
        }

        let ada = app.sign_in("ada@example.org", "Ada").await;
        let round1 = format!("/circles/{id}/rounds/1");
        let response = app
            .post_form_as(&ada, &round1, &[
                ("reflection", SCRIPT),
                ("commitment-1", &format!("Call Bea {SCRIPT}")),
            ])
            .await;
        assert_eq!(response.status().as_u16(), 303);

        let bea = app.sign_in("bea@example.org", "Bea").await;
        let page = app.get_as(&bea, &round1).await.text().await.expect("page");
        assert_page_escapes("round page", &page);
        let commitment = commitment_of(&app, "Call Bea").await.to_string();
        let response = app
            .post_form_as(&bea, &format!("{round1}/support"), &[
                ("commitment", commitment.as_str()),
                ("body", &format!("You can {SCRIPT}")),
            ])
            .await;
        assert_eq!(response.status().as_u16(), 303);
        let page = app.get_as(&ada, &round1).await.text().await.expect("page");
        assert!(page.contains("You can &lt;script&gt;"), "the support message, escaped:\n{page}");
        assert_page_escapes("round page with support", &page);
        // A note, and answers to it and to the support, with markup in each.
        let ada_member = crate::shoulder::query(&app, |conn| {
            shoulder::db::schema::memberships::table
                .inner_join(shoulder::db::schema::people::table)
                .filter(shoulder::db::schema::people::email.eq("ada@example.org"))
                .select(shoulder::db::schema::memberships::id)
                .first::<i64>(conn)
        })
        .await
        .to_string();
        let response = app.post_form_as(&bea, &format!("{round1}/note"), &[("for", &ada_member), ("body", &format!("Noticed {SCRIPT}"))]).await;
        assert_eq!(response.status().as_u16(), 303);
        let (note, support) = crate::shoulder::query(&app, |conn| {
            let note = shoulder::db::schema::peer_notes::table.select(shoulder::db::schema::peer_notes::id).first::<i64>(conn)?;
            let support = shoulder::db::schema::support_messages::table.select(shoulder::db::schema::support_messages::id).first::<i64>(conn)?;
            Ok((note.to_string(), support.to_string()))
        })
        .await;
        for (to, id) in [("note", &note), ("support", &support)] {
            let response = app.post_form_as(&ada, &format!("{round1}/answer"), &[("to", to), ("id", id), ("answer", &format!("Thanks {SCRIPT}"))]).await;
            assert_eq!(response.status().as_u16(), 303);
        }
        let page = app.get_as(&bea, &round1).await.text().await.expect("page");
        assert!(page.contains("Noticed &lt;script&gt;") && page.contains("Thanks &lt;script&gt;"), "{page}");
        assert_page_escapes("round page with a note and answers", &page);
        for path in [format!("/circles/{id}"), format!("/circles/{id}/history"), "/me".into()] {
            let page = app.get_as(&ada, &path).await.text().await.expect("page");
            assert_page_escapes(&path, &page);
        }

        // The digest names Ada; the next round's email repeats her commitment.
        app.clock.set(utc("2027-03-03T09:00:00Z"));
        app.run_jobs().await;
        let emails = app.emails();
        assert_email_escapes("digest", email_to(&emails, "bea@example.org", "how round 1 went"));
        open_week(&app, 2).await;
        let emails = app.emails();
        let next = email_to(&emails, "ada@example.org", "round 2");
        assert_email_escapes("next check-in email", next);
        assert!(next.text_body().contains(&format!("Call Bea {SCRIPT}")), "{}", next.text_body());
    }
}

/// Counts and texts of everything people write: unchanged means nothing
/// was written.
async fn everything_written(app: &TestApp) -> String {
    app.state
        .db
        .run(|conn| {
            let counts = [
                people::table.count().get_result::<i64>(conn)?,
                memberships::table.count().get_result(conn)?,
                invites::table.count().get_result(conn)?,
                check_ins::table.count().get_result(conn)?,
                commitments::table.count().get_result(conn)?,
                follow_throughs::table.count().get_result(conn)?,
                support_messages::table.count().get_result(conn)?,
                circle_prompts::table.count().get_result(conn)?,
                away_periods::table.count().get_result(conn)?,
            ];
            let texts: Vec<(String, String, String)> = circles::table
                .order(circles::id)
                .select((circles::name, circles::purpose, circles::agreements))
                .load(conn)?;
            let names: Vec<String> = people::table
                .order(people::id)
                .select(people::display_name)
                .load(conn)?;
            Ok::<_, DbError>(format!("{counts:?} {texts:?} {names:?}"))
        })
        .await
        .expect("read back")
}

/// Who posts (a session cookie, or "" for none), where, the rest of the
/// form, the field under test, and whether it is a one-line field.
type Field<'a> = (&'a str, String, Vec<(&'a str, &'a str)>, &'a str, bool);

/// What may be typed into a field and must be refused.
const REFUSED: [(&str, &str); 6] = [
    ("a NUL byte", "Lovelace\0x"),
    ("a bell", "Lovelace\u{7}x"),
    ("a right-to-left override", "Lovelace\u{202E}txt.exe"),
    ("an isolate", "Lovelace\u{2067}x\u{2069}"),
    ("a zero-width space", "Lovelace\u{200B}x"),
    ("a byte-order mark", "Lovelace\u{FEFF}"),
];

/// What one-line fields refuse besides: a CRLF that would start a header of
/// its own, Unicode's line separator, and the invisible marks longer texts
/// may keep in their place.
const ONE_LINE_ONLY: [(&str, &str); 4] = [
    ("a CRLF", "Lovelace\r\nBcc: eve@example.org"),
    ("a line separator", "Lovelace\u{2028}x"),
    ("a zero-width joiner", "Lovelace\u{200D}x"),
    ("a left-to-right mark", "Lovelace\u{200E}x"),
];

on_both_backends! {
    async fn control_characters_and_bidi_overrides_are_refused_in_every_text_field(app) {
        let id = weekly_circle(&app, "Night shift", &[("ada@example.org", "Ada"), ("bea@example.org", "Bea")]).await;
        open_week(&app, 1).await;
        let ada = app.sign_in("ada@example.org", "Ada").await;
        let bea = app.sign_in("bea@example.org", "Bea").await;
        let round1 = format!("/circles/{id}/rounds/1");
        let made = app.post_form_as(&ada, &round1, &[("commitment-1", "Call Bea")]).await;
        assert_eq!(made.status().as_u16(), 303);
        app.clock.set(utc("2027-03-03T09:00:00Z"));
        app.run_jobs().await;
        open_week(&app, 2).await;
        let round2 = format!("/circles/{id}/rounds/2");
        let commitment = commitment_of(&app, "Call Bea").await;
        let supported = app.post_form_as(&bea, &format!("{round2}/support"), &[("commitment", &commitment.to_string()), ("body", "Go for it")]).await;
        assert_eq!(supported.status().as_u16(), 303);
        let (bea_member, support) = crate::shoulder::query(&app, |conn| {
            let bea = shoulder::db::schema::memberships::table
                .inner_join(shoulder::db::schema::people::table)
                .filter(shoulder::db::schema::people::email.eq("bea@example.org"))
                .select(shoulder::db::schema::memberships::id)
                .first::<i64>(conn)?;
            let support = shoulder::db::schema::support_messages::table
                .select(shoulder::db::schema::support_messages::id)
                .first::<i64>(conn)?;
            Ok((bea.to_string(), support.to_string()))
        })
        .await;
        let join = app.make_invite_link(&ada, id).await;

        let settings = |field: &'static str| -> Vec<(&'static str, &'static str)> {
            let mut form = vec![
                ("name", "Night shift"),
                ("purpose", "Turning what we learn into what we do."),
                ("agreements", "We listen first."),
                ("cadence_kind", "weekly"),
                ("day", "mon"),
                ("time", "09:00"),
                ("every_weeks", "1"),
                ("month_day", "1"),
                ("cron", ""),
                ("time_zone", "UTC"),
                ("round_hours", "48"),
                ("size_cap", "8"),
                ("intent", "save"),
            ];
            form.retain(|(name, _)| *name != field);
            form
        };
        let outcome = format!("outcome-{commitment}");
        let note = format!("note-{commitment}");
        let commitment = commitment.to_string();
        let (ada, bea) = (ada.as_str(), bea.as_str());
        let (outcome, note, commitment) = (outcome.as_str(), note.as_str(), commitment.as_str());
        let fields: Vec<Field> = vec![
            (ada, round2.clone(), vec![("commitment-1", "Call Cy")], "reflection", false),
            (ada, round2.clone(), vec![], "commitment-1", true),
            (ada, round2.clone(), vec![(outcome, "partly")], note, false),
            (bea, format!("{round2}/support"), vec![("commitment", commitment)], "body", false),
            (ada, format!("{round2}/note"), vec![("for", &bea_member)], "body", false),
            (ada, format!("{round2}/answer"), vec![("to", "support"), ("id", &support)], "answer", true),
            (ada, format!("/circles/{id}/edit"), settings("name"), "name", true),
            (ada, format!("/circles/{id}/edit"), settings("purpose"), "purpose", false),
            (ada, format!("/circles/{id}/edit"), settings("agreements"), "agreements", false),
            (ada, "/circles".into(), settings("name"), "name", true),
            (ada, format!("/circles/{id}/prompts/own"), vec![("question", "What helped?")], "theme", true),
            (ada, format!("/circles/{id}/prompts/own"), vec![("theme", "Help")], "question", false),
            (ada, format!("/circles/{id}/invites"), vec![], "addresses", false),
            (ada, format!("/circles/{id}/prompts/own"), vec![("theme", "Help"), ("question", "What helped?")], "follow_up", false),
            (ada, format!("{round2}/away"), vec![("ends", "2027-03-20")], "starts", true),
            (ada, format!("{round2}/away"), vec![("starts", "2027-03-10")], "ends", true),
            (bea, "/me/delete".into(), vec![], "confirm", true),
            ("", join.clone(), vec![("email", "cy@example.org"), ("accept", "yes")], "name", true),
            ("", join.clone(), vec![("name", "Cy"), ("accept", "yes")], "email", true),
            ("", "/sign-in".into(), vec![], "email", true),
        ];

        let before = everything_written(&app).await;
        for (cookie, path, rest, field, one_line) in &fields {
            let payloads = REFUSED.iter().chain(ONE_LINE_ONLY.iter().filter(|_| *one_line));
            for (what, value) in payloads {
                let mut form = rest.clone();
                form.push((field, value));
                let response = app.post_form_as(cookie, path, &form).await;
                let status = response.status().as_u16();
                let page = response.text().await.expect("page");
                let case = format!("{what} in {field} at {path}");
                assert!(!(300..400).contains(&status) && status < 500, "{case}: answered {status}\n{page}");
                assert!(page.contains("Lovelace"), "{case}: the text typed is not kept\n{page}");
                assert_eq!(everything_written(&app).await, before, "{case}: something was written");
            }
        }
    }
}

on_both_backends! {
    async fn crlf_in_a_stored_name_never_becomes_a_header(app) {
        // Names with line breaks cannot come through our forms; these come
        // straight from the database, as after a hand edit or an import.
        let id = weekly_circle(&app, "Night shift", &[("ada@example.org", "Ada"), ("bea@example.org", "Bea")]).await;
        app.state
            .db
            .run(move |conn| {
                diesel::update(people::table.filter(people::email.eq("bea@example.org")))
                    .set(people::display_name.eq("Bea\r\nBcc: eve@example.org\r\nX-Injected: yes"))
                    .execute(conn)?;
                diesel::update(circles::table.find(id))
                    .set(circles::name.eq("Night\r\nCc: mallory@example.org"))
                    .execute(conn)?;
                Ok::<_, DbError>(())
            })
            .await
            .expect("names stored as if by hand");
        open_week(&app, 1).await;
        let emails = app.emails();
        assert!(emails.len() >= 2, "both check-in emails went out: {}", emails.len());
        for email in &emails {
            assert_eq!(email.to.len(), 1, "one recipient per email: {:?}", email.to);
            assert!(!email.to.iter().any(|to| to.contains("eve") || to.contains("mallory")));
            for header in ["Bcc", "Cc", "X-Injected"] {
                assert_eq!(email.header(header), None, "{header} in\n{}", email.data);
            }
            let head = email.data.split("\r\n\r\n").next().unwrap_or_default();
            for line in head.split("\r\n") {
                assert!(
                    !line.starts_with("Bcc:") && !line.starts_with("Cc:") && !line.starts_with("X-Injected:"),
                    "an injected header line: {line}\n{head}"
                );
            }
        }
        let bea = email_to(&emails, "bea@example.org", "round 1");
        let to = bea.header("To").expect("a To header");
        assert!(to.contains("bea@example.org"), "{to}");
    }
}
