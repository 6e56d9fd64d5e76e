//! Forms sent back with problems: a summary at the top of the page that
//! takes focus and links to each field in the form's order, and each field
//! marked `aria-invalid` and described by its own message beside it, with
//! what was typed kept. The views render on either backend alike, so these
//! run on SQLite.

use crate::shoulder::{body_of, circle_of};
use crate::support::{Backend, TestApp, link_path, open_week, weekly_circle};

/// The opening tag of the one element whose `id` is `id`.
fn tag<'a>(page: &'a str, id: &str) -> &'a str {
    let needle = format!(" id=\"{id}\"");
    assert_eq!(
        page.matches(&needle).count(),
        1,
        "one element is {id}: {page}"
    );
    let at = page.find(&needle).unwrap_or_default();
    let start = page[..at].rfind('<').expect("the tag opens");
    let end = at + page[at..].find('>').expect("the tag closes");
    &page[start..=end]
}

/// An attribute's value in an opening tag.
fn attribute<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let needle = format!(" {name}=\"");
    let from = tag.find(&needle)? + needle.len();
    let len = tag[from..].find('"')?;
    Some(&tag[from..from + len])
}

/// The text of the element whose `id` is `id`, up to its first child tag.
fn text_of<'a>(page: &'a str, id: &str) -> &'a str {
    let opening = tag(page, id);
    let from = page.find(opening).unwrap_or_default() + opening.len();
    let len = page[from..].find('<').unwrap_or_default();
    &page[from..from + len]
}

/// The summary's entries in order: where each link goes (`None` for an
/// entry without one) and what it says. Checks that the summary is there
/// and takes focus, and that nothing else on the page does.
fn summary_of(page: &str) -> Vec<(Option<String>, String)> {
    let summary = tag(page, "problems");
    assert!(
        summary.contains(r#"tabindex="-1""#) && summary.contains(" autofocus"),
        "the summary takes focus: {summary}"
    );
    assert_eq!(page.matches(" autofocus").count(), 1, "{page}");
    let start = page.find(summary).unwrap_or_default();
    let list = &page[start..];
    let list = &list[list.find("<ul>").expect("a list") + 4..list.find("</ul>").expect("its end")];
    list.split("<li>")
        .skip(1)
        .map(|item| {
            let item = item.trim_end_matches("</li>");
            match item.strip_prefix("<a href=\"#") {
                Some(link) => {
                    let (target, rest) = link.split_once("\">").expect("a link");
                    let text = rest.strip_suffix("</a>").expect("the link ends");
                    (Some(target.to_string()), text.to_string())
                }
                None => (None, item.to_string()),
            }
        })
        .collect()
}

/// The summary's link targets in order.
fn targets(summary: &[(Option<String>, String)]) -> Vec<Option<&str>> {
    summary
        .iter()
        .map(|(target, _)| target.as_deref())
        .collect()
}

/// What the summary says about the entry that links to `target`.
fn said_for<'a>(summary: &'a [(Option<String>, String)], target: &str) -> &'a str {
    summary
        .iter()
        .find(|(to, _)| to.as_deref() == Some(target))
        .map(|(_, text)| text.as_str())
        .unwrap_or_else(|| panic!("the summary links to {target}: {summary:?}"))
}

/// Asserts that the field `id` is marked invalid and described by the
/// message `{key}-error`.
fn assert_described(page: &str, id: &str, key: &str) {
    let field = tag(page, id);
    assert_eq!(attribute(field, "aria-invalid"), Some("true"), "{field}");
    let message = format!("{key}-error");
    let described = attribute(field, "aria-describedby").unwrap_or_default();
    assert!(
        described.split(' ').any(|named| named == message),
        "{id} is described by {message}: {field}"
    );
}

/// Asserts that the summary links to the field `id`, which is marked
/// invalid and described by the message `{key}-error` beside it, saying
/// what the summary says.
fn assert_marked(page: &str, summary: &[(Option<String>, String)], id: &str, key: &str) {
    assert_described(page, id, key);
    let said = said_for(summary, id);
    assert!(!said.is_empty(), "{summary:?}");
    assert_eq!(
        text_of(page, &format!("{key}-error")),
        said,
        "the message beside {id}"
    );
}

/// Asserts that the field `id` is not marked.
fn assert_unmarked(page: &str, id: &str) {
    let field = tag(page, id);
    assert_eq!(attribute(field, "aria-invalid"), None, "{field}");
}

/// Every `<input>` tag named `name`.
fn inputs_named<'a>(page: &'a str, name: &str) -> Vec<&'a str> {
    let needle = format!(" name=\"{name}\"");
    page.split("<input")
        .skip(1)
        .map(|rest| &rest[..rest.find('>').unwrap_or(rest.len())])
        .filter(|tag| tag.contains(&needle))
        .collect()
}

fn circle_form(changes: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    let good = [
        ("name", "Tuesday accomplices"),
        ("purpose", "Turning what we learn into what we do."),
        ("agreements", "We listen first."),
        ("cadence_kind", "weekly"),
        ("day", "tue"),
        ("time", "09:00"),
        ("every_weeks", "1"),
        ("month_day", "1"),
        ("cron", ""),
        ("time_zone", "UTC"),
        ("round_hours", "48"),
        ("size_cap", "8"),
        ("intent", "save"),
    ];
    good.into_iter()
        .filter_map(
            |(key, value)| match changes.iter().find(|(k, _)| *k == key) {
                Some((_, "(left out)")) => None,
                Some(&changed) => Some(changed),
                None => Some((key, value)),
            },
        )
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_circle_is_summed_up_in_the_form_s_order_with_each_field_marked() {
    let app = TestApp::builder(Backend::Sqlite)
        .config(|config| config.limits.circles_per_person_per_day = 1)
        .start()
        .await
        .expect("SQLite");
    let ada = app.sign_in("ada@example.org", "Ada").await;

    let form = circle_form(&[
        ("name", ""),
        ("day", "(left out)"),
        ("time_zone", "Mars/Olympus"),
        ("size_cap", "13"),
    ]);
    let (status, page) = body_of(app.post_form_as(&ada, "/circles", &form).await).await;
    assert_eq!(status, 422);
    let summary = summary_of(&page);
    assert_eq!(
        targets(&summary),
        [
            Some("name"),
            Some("days"),
            Some("time_zone"),
            Some("size_cap")
        ],
        "{summary:?}"
    );
    assert!(page.contains("4 answers need another look"), "{page}");
    for field in ["name", "days", "time_zone", "size_cap"] {
        assert_marked(&page, &summary, field, field);
    }
    // The link to the weekdays goes to the first; every one is marked.
    let days = inputs_named(&page, "day");
    assert_eq!(days.len(), 7);
    for day in days {
        assert!(
            day.contains(r#"aria-invalid="true""#)
                && day.contains(r#"aria-describedby="days-error""#),
            "{day}"
        );
    }
    for field in [
        "purpose",
        "agreements",
        "every_weeks",
        "time",
        "round_hours",
    ] {
        assert_unmarked(&page, field);
    }
    // Hints stay with their fields, and what was typed stays too.
    assert_eq!(
        attribute(tag(&page, "purpose"), "aria-describedby"),
        Some("purpose-hint")
    );
    assert!(page.contains("Turning what we learn into what we do."));
    assert!(
        page.contains(r#"<option value="Mars/Olympus" selected>"#),
        "{page}"
    );
    assert!(!page.contains("Some answers need another look"), "{page}");

    // A cron expression refused keeps its hint after its message.
    let form = circle_form(&[("cadence_kind", "cron"), ("cron", "*/10 * * * *")]);
    let (status, page) = body_of(app.post_form_as(&ada, "/circles", &form).await).await;
    assert_eq!(status, 422);
    let summary = summary_of(&page);
    assert_eq!(targets(&summary), [Some("cron")]);
    assert_marked(&page, &summary, "cron", "cron");
    assert_eq!(
        attribute(tag(&page, "cron"), "aria-describedby"),
        Some("cron-error cron-hint")
    );

    // A limit reached is no field's: listed without a link, nothing marked.
    let made = app.post_form_as(&ada, "/circles", &circle_form(&[])).await;
    assert_eq!(made.status().as_u16(), 303);
    let (status, page) = body_of(app.post_form_as(&ada, "/circles", &circle_form(&[])).await).await;
    assert_eq!(status, 429);
    let summary = summary_of(&page);
    assert_eq!(targets(&summary), [None], "{summary:?}");
    assert!(
        summary[0].1.contains("as many as one person may"),
        "{summary:?}"
    );
    assert!(!page.contains("aria-invalid"), "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_check_in_hour_is_summed_up_on_the_circle_page() {
    let app = TestApp::start(Backend::Sqlite).await.expect("SQLite");
    let id = weekly_circle(
        &app,
        "Night shift accomplices",
        &[("ada@example.org", "Ada")],
    )
    .await;
    let ada = app.sign_in("ada@example.org", "Ada").await;
    let path = format!("/circles/{id}/check-in-hour");

    let (status, page) = body_of(
        app.post_form_as(&ada, &path, &[("when", "hour"), ("check_in_at", "25:00")])
            .await,
    )
    .await;
    assert_eq!(status, 422);
    let summary = summary_of(&page);
    assert_eq!(targets(&summary), [Some("check_in_at")]);
    assert_marked(&page, &summary, "check_in_at", "check_in_at");
    assert_eq!(
        attribute(tag(&page, "check_in_at"), "aria-describedby"),
        Some("check_in_at-error check_in_at-hint"),
        "the hint is still named"
    );
    assert_eq!(attribute(tag(&page, "check_in_at"), "value"), Some("25:00"));
    assert_unmarked(&page, "when");

    // Neither choice: the radio buttons are marked, the link goes to the first.
    let (status, page) = body_of(
        app.post_form_as(&ada, &path, &[("check_in_at", "07:30")])
            .await,
    )
    .await;
    assert_eq!(status, 422);
    let summary = summary_of(&page);
    assert_eq!(targets(&summary), [Some("when")]);
    assert_marked(&page, &summary, "when", "when");
    for choice in inputs_named(&page, "when") {
        assert!(
            choice.contains(r#"aria-describedby="when-error""#),
            "{choice}"
        );
    }
    assert_eq!(
        attribute(tag(&page, "check_in_at"), "aria-describedby"),
        Some("check_in_at-hint")
    );
}

/// The `id` of the first field on `page` whose id starts with `prefix`.
fn first_id_with<'a>(page: &'a str, prefix: &str) -> &'a str {
    let needle = format!(" id=\"{prefix}");
    let from = page
        .find(&needle)
        .unwrap_or_else(|| panic!("an id {prefix}…: {page}"))
        + 5;
    let len = page[from..].find('"').expect("the id ends");
    &page[from..from + len]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_form_of_the_round_page_sent_back_is_summed_up_at_the_top() {
    let app = TestApp::start(Backend::Sqlite).await.expect("SQLite");
    let id = circle_of(
        &app,
        &[
            ("ada@example.org", "Ada"),
            ("bea@example.org", "Bea"),
            ("cy@example.org", "Cy"),
        ],
    )
    .await;
    let round = format!("/circles/{id}/rounds/1");
    let ada = app.sign_in("ada@example.org", "Ada").await;
    let bea = app.sign_in("bea@example.org", "Bea").await;
    let post = |who: &str, what: &str, fields: &[(&str, &str)]| {
        let path = format!("{round}{what}");
        let fields: Vec<(String, String)> = fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let who = who.to_string();
        let app = &app;
        async move {
            let fields: Vec<(&str, &str)> = fields
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            body_of(app.post_form_as(&who, &path, &fields).await).await
        }
    };
    let saved = app
        .post_form_as(
            &bea,
            &round,
            &[("commitment-1", "Bring the zine to the meeting")],
        )
        .await;
    assert_eq!(saved.status().as_u16(), 303);
    let noted = app
        .post_form_as(
            &bea,
            &format!("{round}/note"),
            &[("for", "1"), ("body", "Thank you for Tuesday.")],
        )
        .await;
    assert_eq!(noted.status().as_u16(), 303);

    // The check-in: its fields in the form's order, and a problem that is
    // the form's rather than a field's linked to the form.
    let (status, page) = post(
        &ada,
        "",
        &[
            ("reflection", "Quiet week\u{202E}"),
            ("commitment-1", "Call Sam"),
            ("commitment-2", "Two\r\nlines"),
            ("commitment-4", "Four"),
        ],
    )
    .await;
    assert_eq!(status, 422);
    let summary = summary_of(&page);
    assert_eq!(
        targets(&summary),
        [Some("reflection"), Some("commitment-2"), Some("check-in")],
        "{summary:?}"
    );
    assert_marked(&page, &summary, "reflection", "reflection");
    assert_marked(&page, &summary, "commitment-2", "commitment-2");
    assert_unmarked(&page, "commitment-1");
    assert!(tag(&page, "check-in").starts_with("<form"), "{page}");
    assert!(said_for(&summary, "check-in").contains("at most 3 commitments"));
    assert!(page.contains(r#"value="Call Sam""#) && page.contains("Quiet week"));
    assert!(!page.contains("Some answers need another look"), "{page}");

    // Support on Bea's commitment, too long: its own box, typed text kept.
    let page_now = app.get_as(&ada, &round).await.text().await.expect("page");
    let support = first_id_with(&page_now, "support-").to_string();
    let commitment = support
        .trim_start_matches("support-")
        .trim_end_matches("-body")
        .to_string();
    let long = "x".repeat(501);
    let (status, page) = post(
        &ada,
        "/support",
        &[("commitment", &commitment), ("body", &long)],
    )
    .await;
    assert_eq!(status, 422);
    let summary = summary_of(&page);
    assert_eq!(targets(&summary), [Some(support.as_str())]);
    assert_marked(&page, &summary, &support, &format!("support-{commitment}"));
    assert!(page.contains(&long));
    // On a commitment the page does not show, there is no box to go to.
    let (status, page) = post(
        &ada,
        "/support",
        &[("commitment", "999999"), ("body", "Hi")],
    )
    .await;
    assert_eq!(status, 422);
    let summary = summary_of(&page);
    assert_eq!(targets(&summary), [None]);
    assert!(
        summary[0].1.contains("not one in this circle"),
        "{summary:?}"
    );

    // A note with nothing in it.
    let (status, page) = post(&ada, "/note", &[("for", "2"), ("body", "  ")]).await;
    assert_eq!(status, 422);
    let summary = summary_of(&page);
    assert_eq!(targets(&summary), [Some("note-body")]);
    assert_marked(&page, &summary, "note-body", "note");
    assert_unmarked(&page, "note-for");

    // An answer to Bea's note, too long.
    let answer = first_id_with(&page_now, "answer-note-").to_string();
    let note = answer.trim_start_matches("answer-note-").to_string();
    let (status, page) = post(
        &ada,
        "/answer",
        &[("to", "note"), ("id", &note), ("answer", &"y".repeat(300))],
    )
    .await;
    assert_eq!(status, 422);
    let summary = summary_of(&page);
    assert_eq!(targets(&summary), [Some(answer.as_str())]);
    assert_marked(&page, &summary, &answer, &answer);

    // Away dates that are not dates: both fields, in order.
    let (status, page) = post(&ada, "/away", &[("starts", "soon"), ("ends", "")]).await;
    assert_eq!(status, 422);
    let summary = summary_of(&page);
    assert_eq!(targets(&summary), [Some("away-starts"), Some("away-ends")]);
    assert_marked(&page, &summary, "away-starts", "away-starts");
    assert_marked(&page, &summary, "away-ends", "away-ends");
    assert_eq!(attribute(tag(&page, "away-starts"), "value"), Some("soon"));

    // Asking for help on someone else's commitment is an act, not a field.
    let (status, page) = post(
        &ada,
        "/help",
        &[("commitment", &commitment), ("wanted", "yes")],
    )
    .await;
    assert_eq!(status, 422);
    let summary = summary_of(&page);
    assert_eq!(targets(&summary), [None]);
    assert!(
        summary[0].1.contains("only on your own commitments"),
        "{summary:?}"
    );

    // In round 2, a report on Bea's commitment without a real outcome:
    // the link goes to its first choice, and the choices and note are marked.
    open_week(&app, 2).await;
    let round2 = format!("/circles/{id}/rounds/2");
    let (status, page) = body_of(
        app.post_form_as(
            &bea,
            &round2,
            &[
                (format!("outcome-{commitment}").as_str(), "maybe"),
                (format!("note-{commitment}").as_str(), "Half of it"),
            ],
        )
        .await,
    )
    .await;
    assert_eq!(status, 422);
    let follow = format!("follow-{commitment}");
    let summary = summary_of(&page);
    assert_eq!(targets(&summary), [Some(follow.as_str())]);
    assert_marked(&page, &summary, &follow, &follow);
    assert_eq!(attribute(tag(&page, &follow), "type"), Some("radio"));
    assert_described(&page, &format!("note-{commitment}"), &follow);
    let choices = inputs_named(&page, &format!("outcome-{commitment}"));
    assert_eq!(choices.len(), 4);
    assert!(
        choices.iter().all(|c| c.contains(r#"aria-invalid="true""#)),
        "{choices:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_prompts_page_sums_up_each_of_its_forms() {
    let app = TestApp::start(Backend::Sqlite).await.expect("SQLite");
    let id = weekly_circle(
        &app,
        "Night shift accomplices",
        &[("ada@example.org", "Ada")],
    )
    .await;
    let ada = app.sign_in("ada@example.org", "Ada").await;
    let prompts = format!("/circles/{id}/prompts");

    let (status, page) = body_of(
        app.post_form_as(
            &ada,
            &format!("{prompts}/own"),
            &[
                ("theme", ""),
                ("question", "  "),
                ("follow_up", "Listen again."),
            ],
        )
        .await,
    )
    .await;
    assert_eq!(status, 422);
    let summary = summary_of(&page);
    assert_eq!(targets(&summary), [Some("theme"), Some("question")]);
    assert_marked(&page, &summary, "theme", "theme");
    assert_marked(&page, &summary, "question", "question");
    assert_unmarked(&page, "follow_up");
    assert!(page.contains("Listen again."));
    assert!(!page.contains("Something needs another look"), "{page}");

    for (what, field, value) in [
        ("deck", "deck", "no-such-deck"),
        ("pin", "prompt_id", "deck:nowhere"),
    ] {
        let (status, page) = body_of(
            app.post_form_as(&ada, &format!("{prompts}/{what}"), &[(field, value)])
                .await,
        )
        .await;
        assert_eq!(status, 422, "{what}");
        let summary = summary_of(&page);
        assert_eq!(targets(&summary), [Some(field)], "{what}");
        assert_marked(&page, &summary, field, field);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_and_a_first_sign_in_sum_up_what_to_fix() {
    let app = TestApp::start(Backend::Sqlite).await.expect("SQLite");
    let (status, page) = body_of(
        app.post_form("/sign-in", &[("email", "not an address")])
            .await,
    )
    .await;
    assert_eq!(status, 422);
    let summary = summary_of(&page);
    assert_eq!(targets(&summary), [Some("email")]);
    assert_marked(&page, &summary, "email", "email");
    assert_eq!(
        attribute(tag(&page, "email"), "value"),
        Some("not an address")
    );

    let asked = app
        .post_form("/sign-in", &[("email", "rui@example.org")])
        .await;
    assert_eq!(asked.status().as_u16(), 303);
    app.run_jobs().await;
    let mail = app
        .emails()
        .into_iter()
        .rev()
        .find(|m| m.to == ["rui@example.org".to_string()])
        .expect("the sign-in email");
    let link = link_path(&mail.text_body(), app.public_base(), "/sign-in/");
    // The name is looked at first, then the zone.
    for (name, zone, field) in [
        ("Rui\u{202E}", "UTC", "name"),
        ("Rui", "Mars/Olympus", "time_zone"),
    ] {
        let (status, page) = body_of(
            app.post_form(&link, &[("name", name), ("time_zone", zone)])
                .await,
        )
        .await;
        assert_eq!(status, 422, "{field}");
        let summary = summary_of(&page);
        assert_eq!(targets(&summary), [Some(field)]);
        assert_marked(&page, &summary, field, field);
        assert_eq!(page.matches("aria-invalid").count(), 1, "only {field}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_sign_in_links_is_summed_up_without_marking_the_address() {
    let app = TestApp::builder(Backend::Sqlite)
        .config(|config| config.limits.sign_in_per_client_per_hour = 1)
        .start()
        .await
        .expect("SQLite");
    let asked = app
        .post_form("/sign-in", &[("email", "rui@example.org")])
        .await;
    assert_eq!(asked.status().as_u16(), 303);
    let (status, page) = body_of(
        app.post_form("/sign-in", &[("email", "rui@example.org")])
            .await,
    )
    .await;
    assert_eq!(status, 429);
    let summary = summary_of(&page);
    assert_eq!(targets(&summary), [None]);
    assert!(summary[0].1.contains("try again in"), "{summary:?}");
    assert_unmarked(&page, "email");
    assert!(!page.contains("email-error"), "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn your_data_sums_up_each_refused_form() {
    let app = TestApp::start(Backend::Sqlite).await.expect("SQLite");
    let ada = app.sign_in("ada@example.org", "Ada").await;
    for (path, field, value, id) in [
        ("/me/name", "display_name", "   ", "display_name"),
        ("/me/email", "email", "not an address", "new_email"),
        ("/me/time-zone", "time_zone", "Mars/Olympus", "time_zone"),
        ("/me/delete", "confirm", "remove", "confirm"),
    ] {
        let (status, page) = body_of(app.post_form_as(&ada, path, &[(field, value)]).await).await;
        assert_eq!(status, 422, "{path}");
        let summary = summary_of(&page);
        assert_eq!(targets(&summary), [Some(id)], "{path}");
        assert_marked(&page, &summary, id, id);
        assert_eq!(page.matches("aria-invalid").count(), 1, "{path}: only {id}");
    }
}
