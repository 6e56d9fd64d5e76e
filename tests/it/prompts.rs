//! Prompt decks in use: the order a circle moves through its prompts (as the
//! round scheduler drives it, inside its own transaction), pins, the
//! circle's own prompts, and the facilitator's prompts page.

use chrono::Duration;
use diesel::prelude::*;
use shoulder::circles::store;
use shoulder::db::schema::{circle_prompts, circles, people, prompt_usage, rounds};
use shoulder::db::{DbError, write_transaction};
use shoulder::prompts::{self, ChosenPrompt, PromptError};

use crate::on_both_backends;
use crate::support::{Backend, TestApp};

/// Starts a circle through the page, as `cookie`'s person, and returns its id.
async fn start_circle(app: &TestApp, cookie: &str) -> i64 {
    let response = app
        .post_form_as(
            cookie,
            "/circles",
            &[
                ("name", "Tuesday accomplices"),
                ("purpose", "Turning what we learn into what we do."),
                ("agreements", "We listen first."),
                ("cadence_kind", "weekly"),
                ("day", "tue"),
                ("time", "09:00"),
                ("every_weeks", "1"),
                ("month_day", "1"),
                ("time_zone", "America/Toronto"),
                ("round_hours", "72"),
                ("size_cap", "8"),
                ("intent", "save"),
            ],
        )
        .await;
    assert_eq!(response.status().as_u16(), 303);
    let location = response.headers()["location"].to_str().expect("ascii");
    location
        .strip_prefix("/circles/")
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("redirected to the circle, not {location}"))
}

/// Opens round `number` the way the scheduler does: choose, insert the
/// round, record the use, all in one write transaction.
async fn open_round(app: &TestApp, circle_id: i64, number: i32) -> ChosenPrompt {
    let decks = app.state.decks.clone();
    let at = app.clock.now().naive_utc() + Duration::days(7 * i64::from(number));
    app.state
        .db
        .run(move |conn| {
            write_transaction(conn, |conn| {
                let prompt = prompts::choose_next(conn, &decks, circle_id)?;
                let round_id: i64 = diesel::insert_into(rounds::table)
                    .values((
                        rounds::circle_id.eq(circle_id),
                        rounds::number.eq(number),
                        rounds::slot.eq(format!("slot-{number}")),
                        rounds::prompt_id.eq(&prompt.id),
                        rounds::prompt_question.eq(&prompt.question),
                        rounds::prompt_follow_up.eq(prompt.follow_up.as_deref()),
                        rounds::opened_at.eq(at),
                        rounds::reminder_at.eq(at + Duration::hours(48)),
                        rounds::closes_at.eq(at + Duration::hours(72)),
                    ))
                    .returning(rounds::id)
                    .get_result(conn)?;
                prompts::record_use(conn, circle_id, &prompt.id, round_id, at)?;
                Ok::<_, PromptError>(prompt)
            })
        })
        .await
        .expect("the round opens with a prompt")
}

fn deck_ids(app: &TestApp) -> Vec<String> {
    app.state
        .decks
        .get("shoulder")
        .expect("the default deck")
        .prompts()
        .iter()
        .map(|p| p.id.clone())
        .collect()
}

async fn pinned(app: &TestApp, circle_id: i64) -> Option<String> {
    app.state
        .db
        .run(move |conn| {
            Ok::<_, DbError>(
                circles::table
                    .find(circle_id)
                    .select(circles::pinned_prompt_id)
                    .first::<Option<String>>(conn)?,
            )
        })
        .await
        .expect("read")
}

async fn own_prompt_count(app: &TestApp) -> i64 {
    app.state
        .db
        .run(|conn| Ok::<i64, DbError>(circle_prompts::table.count().get_result(conn)?))
        .await
        .expect("counted")
}

async fn page(app: &TestApp, cookie: &str, path: &str) -> (u16, String) {
    let response = app.get_as(cookie, path).await;
    let status = response.status().as_u16();
    (status, response.text().await.expect("a page"))
}

async fn post(app: &TestApp, cookie: &str, path: &str, fields: &[(&str, &str)]) -> (u16, String) {
    let response = app.post_form_as(cookie, path, fields).await;
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = response.text().await.expect("a body");
    (status, location.unwrap_or(body))
}

/// Signs `email` in and makes them a plain member of the circle.
async fn member(app: &TestApp, circle_id: i64, email: &'static str, name: &str) -> String {
    let cookie = app.sign_in(email, name).await;
    let now = app.clock.now().naive_utc();
    app.state
        .db
        .run(move |conn| {
            let person: i64 = people::table
                .filter(people::email.eq(email))
                .select(people::id)
                .first(conn)?;
            store::add_member(conn, circle_id, person, store::ROLE_MEMBER, now)
        })
        .await
        .expect("member added");
    cookie
}

on_both_backends! {
    async fn a_circle_walks_its_deck_without_repeats_then_starts_over(app) {
        let ada = app.sign_in("ada@example.org", "Ada").await;
        let circle_id = start_circle(&app, &ada).await;
        let deck = deck_ids(&app);
        assert!(deck.len() >= 48);

        let mut asked = Vec::new();
        for number in 1..=deck.len() {
            let number = i32::try_from(number).expect("small");
            asked.push(open_round(&app, circle_id, number).await.id);
        }
        assert_eq!(asked, deck, "the whole deck, in deck order, nothing twice");

        // Used up: the one asked longest ago comes round again, and so on.
        let next = i32::try_from(deck.len()).expect("small") + 1;
        assert_eq!(open_round(&app, circle_id, next).await.id, deck[0]);
        assert_eq!(open_round(&app, circle_id, next + 1).await.id, deck[1]);
        let rows = app
            .state
            .db
            .run(move |conn| {
                Ok::<i64, DbError>(
                    prompt_usage::table
                        .filter(prompt_usage::circle_id.eq(circle_id))
                        .count()
                        .get_result(conn)?,
                )
            })
            .await
            .expect("counted");
        assert_eq!(rows, i64::try_from(deck.len()).expect("small"), "one usage row per prompt");
    }
}

on_both_backends! {
    async fn a_pin_wins_once_and_is_then_cleared(app) {
        let ada = app.sign_in("ada@example.org", "Ada").await;
        let circle_id = start_circle(&app, &ada).await;
        let deck = deck_ids(&app);
        let pin = deck[9].clone();

        let (status, location) =
            post(&app, &ada, &format!("/circles/{circle_id}/prompts/pin"), &[("prompt_id", &pin)]).await;
        assert_eq!(status, 303);
        assert_eq!(location, format!("/circles/{circle_id}/prompts?done=pinned"));
        let (_, shown) = page(&app, &ada, &format!("/circles/{circle_id}/prompts")).await;
        assert!(shown.contains("Pinned for the next round"), "{shown}");

        assert_eq!(open_round(&app, circle_id, 1).await.id, pin);
        assert_eq!(pinned(&app, circle_id).await, None, "the pin is used up");
        assert_eq!(open_round(&app, circle_id, 2).await.id, deck[0], "back to deck order");

        // Walking on, the pinned prompt is not asked a second time.
        let mut asked = vec![pin.clone(), deck[0].clone()];
        for number in 3..=i32::try_from(deck.len()).expect("small") {
            asked.push(open_round(&app, circle_id, number).await.id);
        }
        let mut sorted = asked.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), deck.len(), "every prompt once: {asked:?}");

        // Unpinning puts the order back.
        post(&app, &ada, &format!("/circles/{circle_id}/prompts/pin"), &[("prompt_id", &deck[3])]).await;
        assert_eq!(pinned(&app, circle_id).await.as_deref(), Some(deck[3].as_str()));
        let (status, _) = post(&app, &ada, &format!("/circles/{circle_id}/prompts/unpin"), &[]).await;
        assert_eq!(status, 303);
        assert_eq!(pinned(&app, circle_id).await, None);
    }
}

on_both_backends! {
    async fn own_prompts_come_after_the_deck(app) {
        let ada = app.sign_in("ada@example.org", "Ada").await;
        let circle_id = start_circle(&app, &ada).await;
        let (status, location) = post(
            &app,
            &ada,
            &format!("/circles/{circle_id}/prompts/own"),
            &[
                ("theme", "Our neighbourhood"),
                ("question", "Which local group led by the people most affected could use our help this month?"),
                ("follow_up", "Ask them what they need."),
            ],
        )
        .await;
        assert_eq!(status, 303, "{location}");
        assert_eq!(location, format!("/circles/{circle_id}/prompts?done=added"));
        post(
            &app,
            &ada,
            &format!("/circles/{circle_id}/prompts/own"),
            &[("theme", "Our neighbourhood"), ("question", "Who did we not invite?"), ("follow_up", "")],
        )
        .await;

        let deck = deck_ids(&app);
        for (index, expected) in deck.iter().enumerate() {
            let number = i32::try_from(index + 1).expect("small");
            assert_eq!(&open_round(&app, circle_id, number).await.id, expected);
        }
        let after = i32::try_from(deck.len()).expect("small");
        let own = open_round(&app, circle_id, after + 1).await;
        assert_eq!(own.id, "own:1");
        assert_eq!(own.follow_up.as_deref(), Some("Ask them what they need."));
        let second = open_round(&app, circle_id, after + 2).await;
        assert_eq!(second.id, "own:2");
        assert_eq!(second.follow_up, None);
        assert_eq!(open_round(&app, circle_id, after + 3).await.id, deck[0], "then round again");

        // An own prompt can be pinned too.
        post(&app, &ada, &format!("/circles/{circle_id}/prompts/pin"), &[("prompt_id", "own:2")]).await;
        assert_eq!(open_round(&app, circle_id, after + 4).await.id, "own:2");
    }
}

on_both_backends! {
    async fn a_deck_that_is_gone_is_an_unknown_deck(app) {
        let ada = app.sign_in("ada@example.org", "Ada").await;
        let circle_id = start_circle(&app, &ada).await;
        app.state
            .db
            .run(move |conn| {
                diesel::update(circles::table.find(circle_id))
                    .set(circles::deck.eq("retired"))
                    .execute(conn)
                    .map_err(DbError::from)
            })
            .await
            .expect("deck renamed");
        let decks = app.state.decks.clone();
        let outcome = app
            .state
            .db
            .run(move |conn| Ok::<_, DbError>(prompts::choose_next(conn, &decks, circle_id)))
            .await
            .expect("the query runs");
        match outcome {
            Err(PromptError::UnknownDeck(name)) => assert_eq!(name, "retired"),
            other => panic!("expected UnknownDeck, got {other:?}"),
        }

        // The page says so and offers the way out.
        let (status, shown) = page(&app, &ada, &format!("/circles/{circle_id}/prompts")).await;
        assert_eq!(status, 200);
        assert!(shown.contains("&quot;retired&quot; is no longer available"), "{shown}");
        let (status, _) =
            post(&app, &ada, &format!("/circles/{circle_id}/prompts/deck"), &[("deck", "shoulder")]).await;
        assert_eq!(status, 303);
        let deck = deck_ids(&app);
        assert_eq!(open_round(&app, circle_id, 1).await.id, deck[0]);
    }
}

on_both_backends! {
    async fn the_page_refuses_bad_input_with_the_form_kept(app) {
        let ada = app.sign_in("ada@example.org", "Ada").await;
        let circle_id = start_circle(&app, &ada).await;
        let path = format!("/circles/{circle_id}/prompts/own");
        let long = "y".repeat(501);
        let cases: [(&str, &str, &str, &str, &str); 5] = [
            ("", "What did you hear this week?", "Listen again.", "theme-error", "Give the prompt a theme"),
            ("Listening", "  ", "Listen again.", "question-error", "Write the question"),
            ("Listening", &long, "Listen again.", "question-error", "limited to 500 characters (you wrote 501)"),
            ("Two\r\nlines", "What did you hear?", "Listen again.", "theme-error", "one line"),
            ("Listening", "What did you hear?", "Listen \u{202E}again.", "follow_up-error", "control character"),
        ];
        for (theme, question, follow_up, field, message) in cases {
            let (status, shown) =
                post(&app, &ada, &path, &[("theme", theme), ("question", question), ("follow_up", follow_up)]).await;
            assert_eq!(status, 422, "{field}: {message}");
            assert!(shown.contains(&format!("id=\"{field}\"")), "{field} marked: {shown}");
            assert!(shown.contains(message), "{message} in the page");
            if field != "follow_up-error" {
                assert!(shown.contains("Listen again."), "the follow-up is kept");
            }
        }
        let (status, shown) = post(
            &app,
            &ada,
            &path,
            &[("theme", "<b>bold</b>"), ("question", ""), ("follow_up", "<script>alert(1)</script>")],
        )
        .await;
        assert_eq!(status, 422);
        assert!(shown.contains("&lt;b&gt;bold&lt;/b&gt;"), "kept and escaped");
        assert!(!shown.contains("<script>alert"), "escaped");
        assert_eq!(own_prompt_count(&app).await, 0, "nothing was saved");

        for prompt_id in ["no-such-prompt", "own:1", ""] {
            let (status, shown) = post(
                &app,
                &ada,
                &format!("/circles/{circle_id}/prompts/pin"),
                &[("prompt_id", prompt_id)],
            )
            .await;
            assert_eq!(status, 422, "{prompt_id:?}");
            assert!(shown.contains("Choose one of the prompts listed."), "{shown}");
        }
        assert_eq!(pinned(&app, circle_id).await, None);

        let (status, shown) =
            post(&app, &ada, &format!("/circles/{circle_id}/prompts/deck"), &[("deck", "../../etc/passwd")]).await;
        assert_eq!(status, 422);
        assert!(shown.contains("Choose one of the decks listed."));
    }
}

on_both_backends! {
    async fn only_facilitators_see_the_prompts_page(app) {
        let ada = app.sign_in("ada@example.org", "Ada").await;
        let circle_id = start_circle(&app, &ada).await;
        let bea = member(&app, circle_id, "bea@example.org", "Bea").await;
        let eve = app.sign_in("eve@example.org", "Eve").await;

        let (status, circle_page) = page(&app, &ada, &format!("/circles/{circle_id}")).await;
        assert_eq!(status, 200);
        assert!(circle_page.contains(&format!("/circles/{circle_id}/prompts")), "linked for facilitators");
        let (_, member_view) = page(&app, &bea, &format!("/circles/{circle_id}")).await;
        assert!(!member_view.contains(&format!("/circles/{circle_id}/prompts")), "not for members");

        for cookie in [&bea, &eve] {
            let (status, _) = page(&app, cookie, &format!("/circles/{circle_id}/prompts")).await;
            assert_eq!(status, 404);
            for (path, fields) in [
                ("deck", vec![("deck", "shoulder")]),
                ("pin", vec![("prompt_id", "shared-why")]),
                ("unpin", vec![]),
                ("own", vec![("theme", "T"), ("question", "Q?")]),
            ] {
                let (status, _) =
                    post(&app, cookie, &format!("/circles/{circle_id}/prompts/{path}"), &fields).await;
                assert_eq!(status, 404, "{path}");
            }
        }
        assert_eq!(own_prompt_count(&app).await, 0);
        assert_eq!(pinned(&app, circle_id).await, None);
        let (status, _) = page(&app, &ada, "/circles/999999/prompts").await;
        assert_eq!(status, 404);
        let (status, _) = page(&app, &ada, "/circles/not-a-number/prompts").await;
        assert_eq!(status, 404);
        let anonymous = app.get(&format!("/circles/{circle_id}/prompts")).await;
        assert_eq!(anonymous.status().as_u16(), 303, "sent to sign in");
    }
}

on_both_backends! {
    async fn facilitators_adding_prompts_at_once_get_distinct_keys(app) {
        let ada = app.sign_in("ada@example.org", "Ada").await;
        let circle_id = start_circle(&app, &ada).await;
        let now = app.clock.now().naive_utc();
        let mut tasks = Vec::new();
        for n in 0..6 {
            let db = app.state.db.clone();
            tasks.push(tokio::spawn(async move {
                let prompt = prompts::circle::NewOwnPrompt {
                    theme: "Together".into(),
                    question: format!("Question {n}?"),
                    follow_up: None,
                };
                db.run(move |conn| prompts::circle::add_own(conn, circle_id, &prompt, now)).await
            }));
        }
        let mut ids = Vec::new();
        for task in tasks {
            match task.await.expect("joined").expect("added") {
                prompts::circle::AddOwnPrompt::Added { prompt_id } => ids.push(prompt_id),
                other => panic!("{other:?}"),
            }
        }
        ids.sort();
        assert_eq!(ids, ["own:1", "own:2", "own:3", "own:4", "own:5", "own:6"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_the_next_prompt_what_was_used_and_the_decks_on_disk() {
    let folder = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        folder.path().join("short.toml"),
        r#"name = "short"
title = "A short deck"
description = "Two questions to begin with."

[[prompts]]
id = "begin"
theme = "Beginning"
question = "What brought you to this circle?"
follow_up = "Tell one person in it."
inspired_by = "Starting from shared purpose."

[[prompts]]
id = "listen"
theme = "Listening"
question = "Whom will you listen to this week?"
inspired_by = "Listen more, speak less."
"#,
    )
    .expect("deck written");
    let dir = folder.path().display().to_string();
    let app = TestApp::builder(Backend::Sqlite)
        .config(move |config| config.rounds.prompts_dir = dir)
        .start()
        .await
        .expect("sqlite");
    let names: Vec<&str> = app.state.decks.iter().map(|d| d.name()).collect();
    assert_eq!(
        names,
        ["short", "shoulder"],
        "the file, and the built-in default"
    );

    let ada = app.sign_in("ada@example.org", "Ada").await;
    let circle_id = start_circle(&app, &ada).await;
    let path = format!("/circles/{circle_id}/prompts");
    let (status, shown) = page(&app, &ada, &path).await;
    assert_eq!(status, 200);
    assert!(shown.contains("Next in order"), "{shown}");
    assert!(
        shown.contains("What first drew you to this work?"),
        "the default deck's first prompt"
    );
    assert!(
        shown.contains("A short deck (2 prompts, 2 themes)"),
        "{shown}"
    );

    let (status, location) = post(&app, &ada, &format!("{path}/deck"), &[("deck", "short")]).await;
    assert_eq!(status, 303);
    let (_, shown) = page(&app, &ada, &location).await;
    assert!(shown.contains("The circle now draws from the deck you chose."));
    assert!(shown.contains("What brought you to this circle?"));
    assert!(shown.contains("Tell one person in it."));

    open_round(&app, circle_id, 1).await;
    let (_, shown) = page(&app, &ada, &path).await;
    // Round 1 is recorded a week after the clock's start, 1 March 2027.
    assert!(
        shown.contains("What brought you to this circle? (used 8 Mar 2027)"),
        "{shown}"
    );
    assert!(shown.contains("1 of 2 prompts have been asked"), "{shown}");
    assert!(shown.contains("Whom will you listen to this week?"));

    // A pin on the short deck's prompt goes when the circle switches decks.
    post(
        &app,
        &ada,
        &format!("{path}/pin"),
        &[("prompt_id", "listen")],
    )
    .await;
    post(&app, &ada, &format!("{path}/deck"), &[("deck", "shoulder")]).await;
    assert_eq!(pinned(&app, circle_id).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_deck_stops_the_start_with_its_file_and_line() {
    let folder = tempfile::tempdir().expect("temp dir");
    let file = folder.path().join("broken.toml");
    std::fs::write(
        &file,
        "name = \"broken\"\ntitle = \"Broken\"\ndescription = \"One bad prompt.\"\n\n[[prompts]]\nid = \"a\"\ntheme = \"T\"\nquestion = \"\"\ninspired_by = \"x\"\n",
    )
    .expect("deck written");
    let mut config = crate::support::test_config();
    config.database.url = folder.path().join("db.sqlite").display().to_string();
    config.rounds.prompts_dir = folder.path().display().to_string();
    let error = shoulder::app::AppState::build(config, shoulder::clock::Clock::system(), true)
        .await
        .expect_err("refuses to start");
    let message = error.to_string();
    assert!(message.contains(&file.display().to_string()), "{message}");
    assert!(message.contains("line 8"), "{message}");
    assert!(
        message.contains("prompt 1 (\"a\"): question is empty"),
        "{message}"
    );
    assert!(!message.contains('\n'));
}

#[test]
fn check_config_validates_the_decks() {
    let folder = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(folder.path().join("config")).expect("config dir");
    std::fs::create_dir_all(folder.path().join("templates/prompts")).expect("prompts dir");
    std::fs::write(
        folder.path().join("templates/prompts/mine.toml"),
        "name = \"yours\"\n",
    )
    .expect("deck written");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_shoulder"))
        .current_dir(folder.path())
        .env_remove("SHOULDER_ENV")
        .env_remove("SHOULDER_ROUNDS__PROMPTS_DIR")
        .arg("check-config")
        .output()
        .expect("the binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("templates/prompts/mine.toml"), "{stderr}");
    assert!(stderr.contains("missing field `title`"), "{stderr}");
}
