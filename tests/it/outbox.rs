//! The email outbox end to end: rows enqueued in the database, delivered by
//! the background pass to a real SMTP server, with the fixed clock standing in
//! for the time between attempts.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use shoulder::db::schema::{
    circles, deliveries, memberships, people, rounds, suppressed_addresses,
};
use shoulder::db::{DbConnection, DbError};
use shoulder::mail::EmailAddress;
use shoulder::mail::outbox::{self, Delivery, DeliveryReport, Enqueued, NewEmail, status};

use crate::on_both_backends;
use crate::support::{Backend, SmtpMode, TestApp};

// ---- helpers ----------------------------------------------------------------

/// A small email to `address`, outside any round.
pub(crate) fn email_to(address: &str) -> NewEmail {
    NewEmail {
        send_at: None,
        kind: "test",
        to: EmailAddress::parse(address).expect("a valid address"),
        to_name: Some("Ada".into()),
        round_id: None,
        membership_id: None,
        context: serde_json::json!({
            "public_url": "http://127.0.0.1:3000",
            "sent_at": "Who are we leaving behind?",
        })
        .into(),
        headers: vec![(
            "List-Unsubscribe".into(),
            "<http://127.0.0.1:3000/unsubscribe/abc>".into(),
        )],
    }
}

/// Enqueues at the app clock's current instant.
async fn enqueue(app: &TestApp, email: NewEmail) -> Enqueued {
    let now = app.clock.now().naive_utc();
    app.state
        .db
        .run(move |conn| outbox::enqueue(conn, now, &email))
        .await
        .expect("enqueued")
}

/// Enqueues and returns the new row's id; the email must be queued for sending.
pub(crate) async fn queue(app: &TestApp, email: NewEmail) -> i64 {
    match enqueue(app, email).await {
        Enqueued::Queued { id } => id,
        other => panic!("expected a queued email, got {other:?}"),
    }
}

pub(crate) async fn delivery(app: &TestApp, id: i64) -> Delivery {
    app.state
        .db
        .run(move |conn| outbox::find_by_id(conn, id))
        .await
        .expect("read")
        .expect("the delivery exists")
}

/// Claims due emails as one worker would, at the clock's time.
pub(crate) async fn claim(
    app: &TestApp,
    settings: outbox::OutboxSettings,
) -> Vec<outbox::ClaimedDelivery> {
    let now = app.clock.now().naive_utc();
    app.state
        .db
        .run(move |conn| outbox::claim_due(conn, now, &settings))
        .await
        .expect("claimed")
}

/// Moves the clock to just after `at`.
fn move_clock_past(app: &TestApp, at: NaiveDateTime) {
    app.clock.set((at + Duration::seconds(1)).and_utc());
}

fn delivered_only(report: DeliveryReport) -> bool {
    report.sent > 0 && report.retried == 0 && report.failed == 0 && report.lost_leases == 0
}

/// A circle with one member and one open round: what circle mail is about.
/// Returns (round id, membership id).
fn seed_round(conn: &mut DbConnection, now: NaiveDateTime) -> Result<(i64, i64), DbError> {
    let person: i64 = diesel::insert_into(people::table)
        .values((
            people::email.eq("ada@example.org"),
            people::display_name.eq("Ada"),
            people::created_at.eq(now),
        ))
        .returning(people::id)
        .get_result(conn)?;
    let circle: i64 = diesel::insert_into(circles::table)
        .values((
            circles::name.eq("Writers"),
            circles::purpose.eq("Finish drafts"),
            circles::agreements.eq("Be kind"),
            circles::cadence.eq("weekly mon 09:00"),
            circles::time_zone.eq("UTC"),
            circles::round_length_minutes.eq(2880),
            circles::deck.eq("default"),
            circles::created_at.eq(now),
            circles::updated_at.eq(now),
        ))
        .returning(circles::id)
        .get_result(conn)?;
    let membership: i64 = diesel::insert_into(memberships::table)
        .values((
            memberships::circle_id.eq(circle),
            memberships::person_id.eq(person),
            memberships::unsubscribe_token_hash.eq("hash-of-unsubscribe-token"),
            memberships::joined_at.eq(now),
        ))
        .returning(memberships::id)
        .get_result(conn)?;
    let round: i64 = diesel::insert_into(rounds::table)
        .values((
            rounds::circle_id.eq(circle),
            rounds::number.eq(1),
            rounds::slot.eq("2027-03-01T09:00"),
            rounds::prompt_id.eq("p1"),
            rounds::prompt_question.eq("What will you finish?"),
            rounds::opened_at.eq(now),
            rounds::reminder_at.eq(now + Duration::hours(24)),
            rounds::closes_at.eq(now + Duration::hours(48)),
        ))
        .returning(rounds::id)
        .get_result(conn)?;
    Ok((round, membership))
}

// ---- delivery ---------------------------------------------------------------

on_both_backends! {
    async fn an_enqueued_email_is_sent_once_with_its_message_id(app) {
        let id = queue(&app, email_to("Ada@Example.org")).await;
        assert_eq!(delivery(&app, id).await.status, status::PENDING);
        assert!(app.emails().is_empty(), "nothing is sent at enqueue");

        let report = app.run_jobs().await;
        assert_eq!(report.delivery, DeliveryReport { sent: 1, ..Default::default() });

        let row = delivery(&app, id).await;
        assert_eq!(row.status, status::SENT);
        assert_eq!(row.sent_at, Some(app.clock.now().naive_utc()));
        assert_eq!(row.last_error, None);
        let emails = app.emails();
        assert_eq!(emails.len(), 1);
        let email = &emails[0];
        assert_eq!(email.to, ["ada@example.org"]);
        assert_eq!(
            email.header("Message-ID"),
            Some(app.state.mailer.message_id_for(&row.message_id)),
            "the stored key is the Message-ID's"
        );
        assert!(email.header("To").is_some_and(|to| to.contains("Ada")), "{}", email.data);
        assert_eq!(
            email.header("List-Unsubscribe").as_deref(),
            Some("<http://127.0.0.1:3000/unsubscribe/abc>")
        );
        assert_eq!(
            email.subject().as_deref(),
            Some("Shoulder test email: the mail settings work"),
            "the stored context is rendered with its kind's templates when sent"
        );
        assert!(email.text_body().contains("Sent at Who are we leaving behind?"), "{}", email.data);

        assert_eq!(app.run_jobs().await.delivery, DeliveryReport::default());
        assert_eq!(app.emails().len(), 1, "a second pass sends nothing more");
    }
}

on_both_backends! {
    async fn an_email_queued_with_rendered_words_before_contexts_is_sent_as_it_is(app) {
        let now = app.clock.now().naive_utc();
        let id: i64 = app.state.db.run(move |conn| {
            Ok::<_, DbError>(diesel::insert_into(deliveries::table)
                .values((
                    deliveries::kind.eq("test"),
                    deliveries::to_address.eq("ada@example.org"),
                    deliveries::subject.eq("Rendered before the upgrade"),
                    deliveries::text_body.eq("Words kept from an older version."),
                    deliveries::html_body.eq("<p>Words kept from an older version.</p>"),
                    deliveries::next_attempt_at.eq(now),
                    deliveries::message_id.eq("d-old-0001"),
                    deliveries::created_at.eq(now),
                ))
                .returning(deliveries::id)
                .get_result(conn)?)
        }).await.expect("an old row");

        assert_eq!(app.run_jobs().await.delivery.sent, 1);
        assert_eq!(delivery(&app, id).await.status, status::SENT);
        let emails = app.emails();
        assert_eq!(emails[0].subject().as_deref(), Some("Rendered before the upgrade"));
        assert!(emails[0].text_body().contains("Words kept from an older version."));
    }
}

on_both_backends! {
    async fn a_row_with_neither_context_nor_words_is_refused_by_the_database(app) {
        let now = app.clock.now().naive_utc();
        // The same row but for its context, so that the check is all that
        // can refuse it.
        let insert = move |context: Option<&'static str>, key: &'static str| {
            move |conn: &mut DbConnection| {
                diesel::insert_into(deliveries::table)
                    .values((
                        deliveries::kind.eq("test"),
                        deliveries::to_address.eq("ada@example.org"),
                        deliveries::subject.eq("A subject and nothing else"),
                        deliveries::context_json.eq(context),
                        deliveries::next_attempt_at.eq(now),
                        deliveries::message_id.eq(key),
                        deliveries::created_at.eq(now),
                    ))
                    .execute(conn)
                    .map_err(DbError::from)
            }
        };
        let refused = app.state.db.run(insert(None, "d-bad-0001")).await;
        assert!(refused.is_err(), "the content check holds: {refused:?}");
        let with_context = app.state.db.run(insert(Some("{}"), "d-good-0001")).await;
        assert_eq!(with_context.expect("a row with a context is taken"), 1);
    }
}

on_both_backends! {
    async fn the_same_round_member_and_kind_is_recorded_once(app) {
        let now = app.clock.now().naive_utc();
        let (round, membership) = app.state.db.run(move |conn| seed_round(conn, now))
            .await
            .expect("seeded");
        let for_member = || NewEmail {
            round_id: Some(round),
            membership_id: Some(membership),
            ..email_to("ada@example.org")
        };

        let first = queue(&app, for_member()).await;
        assert_eq!(enqueue(&app, for_member()).await, Enqueued::AlreadyQueued);
        let other_kind = NewEmail { kind: "reminder", ..for_member() };
        assert_ne!(queue(&app, other_kind).await, first, "another kind is another email");

        let report = app.run_jobs().await;
        assert_eq!(report.delivery.sent, 2);
        assert_eq!(app.emails().len(), 2);
        assert_eq!(
            enqueue(&app, for_member()).await,
            Enqueued::AlreadyQueued,
            "still one, after it was sent"
        );
    }
}

on_both_backends! {
    async fn an_email_enqueued_in_a_rolled_back_transaction_is_never_sent(app) {
        let now = app.clock.now().naive_utc();
        let email = email_to("ada@example.org");
        let outcome = app.state.db.run(move |conn| {
            conn.transaction(|conn| {
                outbox::enqueue(conn, now, &email)?;
                // The business change that caused the email fails after it.
                Err::<(), _>(DbError::Query(diesel::result::Error::RollbackTransaction))
            })
        }).await;
        assert!(outcome.is_err());

        assert_eq!(app.run_jobs().await.delivery, DeliveryReport::default());
        assert!(app.emails().is_empty());
    }
}

// ---- refusals -----------------------------------------------------------------

on_both_backends! {
    async fn a_4xx_answer_is_retried_after_a_backoff(app) {
        app.smtp.set_mode(SmtpMode::TempFail);
        let id = queue(&app, email_to("ada@example.org")).await;

        let report = app.run_jobs().await;
        assert_eq!(report.delivery, DeliveryReport { retried: 1, ..Default::default() });
        let row = delivery(&app, id).await;
        let now = app.clock.now().naive_utc();
        assert_eq!(row.status, status::PENDING);
        assert!(row.next_attempt_at > now, "{} is not after {now}", row.next_attempt_at);
        assert!(row.next_attempt_at <= now + Duration::seconds(72), "about a minute, with jitter");
        assert!(row.last_error.as_deref().is_some_and(|e| e.contains("451")), "{row:?}");

        assert_eq!(
            app.run_jobs().await.delivery,
            DeliveryReport::default(),
            "not due again yet"
        );

        app.smtp.set_mode(SmtpMode::Accept);
        move_clock_past(&app, row.next_attempt_at);
        assert!(delivered_only(app.run_jobs().await.delivery));
        let row = delivery(&app, id).await;
        assert_eq!(row.status, status::SENT);
        assert_eq!(row.attempts, 2);
        assert_eq!(row.last_error, None);
        assert_eq!(app.emails().len(), 1);
    }
}

on_both_backends! {
    async fn temporary_failures_give_up_after_the_cutoff(app) {
        app.smtp.set_mode(SmtpMode::TempFail);
        let id = queue(&app, email_to("ada@example.org")).await;
        let cutoff = delivery(&app, id).await.created_at + Duration::hours(24);

        // Follow the retries as they come: the waits grow, never past an
        // hour and a fifth, and the email is given up at the cutoff.
        let mut previous_attempt = app.clock.now().naive_utc();
        for _ in 0..60 {
            app.run_jobs().await;
            let row = delivery(&app, id).await;
            if row.status == status::FAILED {
                assert!(previous_attempt >= cutoff, "failed at {previous_attempt}, before {cutoff}");
                assert!(row.last_error.as_deref().is_some_and(|e| e.contains("gave up")), "{row:?}");
                assert!(row.attempts > 20, "{} attempts", row.attempts);
                assert!(app.emails().is_empty());
                return;
            }
            assert_eq!(row.status, status::PENDING);
            assert!(row.next_attempt_at <= cutoff, "no retry is planned past the cutoff");
            let wait = row.next_attempt_at - previous_attempt;
            assert!(wait <= Duration::minutes(72), "waited {wait}");
            previous_attempt = row.next_attempt_at;
            app.clock.set(row.next_attempt_at.and_utc());
        }
        panic!("still retrying after 60 attempts");
    }
}

on_both_backends! {
    async fn a_5xx_answer_fails_for_good_and_suppresses_the_address(app) {
        app.smtp.set_mode(SmtpMode::PermFail);
        let bounced = queue(&app, email_to("gone@example.org")).await;
        let report = app.run_jobs().await;
        assert_eq!(report.delivery, DeliveryReport { failed: 1, ..Default::default() });
        let row = delivery(&app, bounced).await;
        assert_eq!(row.status, status::FAILED);
        assert!(row.last_error.as_deref().is_some_and(|e| e.contains("550")), "{row:?}");
        let listed: Vec<String> = app.state.db.run(|conn| {
            Ok::<_, DbError>(suppressed_addresses::table.select(suppressed_addresses::email).load(conn)?)
        }).await.expect("read");
        assert_eq!(listed, ["gone@example.org"]);

        app.clock.advance(Duration::days(2));
        assert_eq!(app.run_jobs().await.delivery, DeliveryReport::default(), "never retried");

        app.smtp.set_mode(SmtpMode::Accept);
        let Enqueued::Suppressed { id: suppressed } =
            enqueue(&app, email_to("Gone@Example.org")).await
        else {
            panic!("a suppressed address is recorded as such");
        };
        let other = queue(&app, email_to("bob@example.org")).await;
        let report = app.run_jobs().await;
        assert_eq!(report.delivery, DeliveryReport { sent: 1, ..Default::default() });
        assert_eq!(delivery(&app, suppressed).await.status, status::SUPPRESSED);
        assert_eq!(delivery(&app, other).await.status, status::SENT);
        let recipients: Vec<Vec<String>> = app.emails().into_iter().map(|e| e.to).collect();
        assert_eq!(recipients, [["bob@example.org"]]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_server_hits_our_timeout_and_is_retried_under_the_same_message_id() {
    let app = TestApp::builder(Backend::Sqlite)
        .config(|config| config.mail.send_timeout_secs = 1)
        .start()
        .await
        .expect("SQLite is always available");
    app.smtp.set_mode(SmtpMode::Stall);
    let id = queue(&app, email_to("ada@example.org")).await;

    let report = app.run_jobs().await;
    assert_eq!(
        report.delivery,
        DeliveryReport {
            retried: 1,
            ..Default::default()
        }
    );
    let row = delivery(&app, id).await;
    assert_eq!(row.status, status::PENDING);
    assert!(row.next_attempt_at > app.clock.now().naive_utc());
    assert!(
        row.last_error
            .as_deref()
            .is_some_and(|e| e.contains("no answer within")),
        "{row:?}"
    );

    // The server wakes up and accepts the message it was holding: it had it
    // all along, we never saw its 250. The retry sends it again, recognisably.
    app.smtp.set_mode(SmtpMode::Accept);
    move_clock_past(&app, row.next_attempt_at);
    assert!(delivered_only(app.run_jobs().await.delivery));
    assert_eq!(delivery(&app, id).await.status, status::SENT);
    let copies = app.smtp.wait_for_messages(2);
    assert_eq!(copies.len(), 2);
    assert_eq!(
        copies[0].header("Message-ID"),
        copies[1].header("Message-ID")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emails_not_started_while_the_lease_allows_are_handed_back() {
    // One connection, a one-second limit per send and a two-second lease:
    // a send may start only in the pass's first second.
    let app = TestApp::builder(Backend::Sqlite)
        .config(|config| {
            config.mail.send_timeout_secs = 1;
            config.mail.lease_secs = 2;
            config.mail.smtp_pool_size = 1;
        })
        .start()
        .await
        .expect("SQLite is always available");
    app.smtp.set_mode(SmtpMode::Stall);
    let mut ids = Vec::new();
    for n in 0..4 {
        ids.push(queue(&app, email_to(&format!("person{n}@example.org"))).await);
    }

    // The first send stalls for the whole second; the other three were
    // claimed with it but are given back untried.
    let report = app.run_jobs().await;
    assert_eq!(
        report.delivery,
        DeliveryReport {
            retried: 1,
            ..Default::default()
        }
    );
    let mut handed_back = 0;
    for id in &ids {
        let row = delivery(&app, *id).await;
        assert_eq!(row.status, status::PENDING, "{row:?}");
        if row.attempts == 0 {
            handed_back += 1;
            assert!(
                row.next_attempt_at <= app.clock.now().naive_utc(),
                "{row:?}"
            );
        }
    }
    assert_eq!(handed_back, 3, "not counted as attempts, and due at once");

    // The next pass sends them; the stalled one waits for its retry.
    app.smtp.set_mode(SmtpMode::Accept);
    let report = app.run_jobs().await;
    assert_eq!(report.delivery.sent, 3, "{:?}", report.delivery);
}

// ---- workers ------------------------------------------------------------------

on_both_backends! {
    async fn an_expired_lease_is_taken_over_and_the_late_worker_changes_nothing(app) {
        let id = queue(&app, email_to("ada@example.org")).await;
        let settings = outbox::OutboxSettings::from_config(&app.state.config.mail);

        // Worker A claims the email, then stalls.
        let by_a = claim(&app, settings).await;
        assert_eq!(by_a.len(), 1);
        assert_eq!(delivery(&app, id).await.status, status::SENDING);
        assert_eq!(
            app.run_jobs().await.delivery,
            DeliveryReport::default(),
            "worker B leaves a live lease alone"
        );

        // A's lease runs out; worker B takes the email over and sends it.
        app.clock.advance(settings.lease + Duration::seconds(1));
        assert!(delivered_only(app.run_jobs().await.delivery));
        assert_eq!(app.emails().len(), 1);

        // A wakes up and reports its own send: nothing changes.
        let claim = by_a[0].claim.clone();
        let later = app.clock.now().naive_utc();
        let recorded = app.state.db.run(move |conn| outbox::mark_sent(conn, &claim, later))
            .await
            .expect("update ran");
        assert!(!recorded, "a lost claim records nothing");
        let row = delivery(&app, id).await;
        assert_eq!(row.status, status::SENT);
        assert_eq!(row.attempts, 2, "claimed twice");
    }
}

on_both_backends! {
    async fn recording_a_batch_marks_only_the_rows_whose_claim_still_holds(app) {
        let first = queue(&app, email_to("ada@example.org")).await;
        let second = queue(&app, email_to("bob@example.org")).await;
        let settings = outbox::OutboxSettings::from_config(&app.state.config.mail);

        // Worker A claims both emails, sends them, then stalls before it
        // records anything.
        let by_a = claim(&app, settings).await;
        assert_eq!(by_a.len(), 2);

        // A's lease runs out; worker B takes one of the two over.
        app.clock.advance(settings.lease + Duration::seconds(1));
        let one = outbox::OutboxSettings { batch_size: 1, ..settings };
        let by_b = claim(&app, one).await;
        let later = app.clock.now().naive_utc();
        assert_eq!(by_b.len(), 1);
        let taken = by_b[0].claim.delivery_id;
        let left = if taken == first { second } else { first };

        // A wakes up and records both sends in one go: only the row it
        // still holds changes.
        let attempts: Vec<outbox::Attempt> = by_a
            .iter()
            .map(|delivery| outbox::Attempt {
                claim: delivery.claim.clone(),
                kind: delivery.kind.clone(),
                to_address: delivery.to_address.clone(),
                outcome: outbox::Outcome::Sent,
            })
            .collect();
        let kept = app.state.db.run(move |conn| outbox::record_attempts(conn, later, &attempts))
            .await
            .expect("recorded");
        let kept_ids: Vec<i64> = by_a
            .iter()
            .zip(&kept)
            .filter(|(_, kept)| **kept)
            .map(|(delivery, _)| delivery.claim.delivery_id)
            .collect();
        assert_eq!(kept_ids, [left], "the row B took over is not A's to mark");
        assert_eq!(delivery(&app, left).await.status, status::SENT);
        let row = delivery(&app, taken).await;
        assert_eq!(row.status, status::SENDING, "still B's claim");
        assert_eq!(row.attempts, 2);

        // B's own record of its send still counts.
        let claim = by_b[0].claim.clone();
        let recorded = app.state.db.run(move |conn| outbox::mark_sent(conn, &claim, later))
            .await
            .expect("update ran");
        assert!(recorded);
        assert_eq!(delivery(&app, taken).await.status, status::SENT);
    }
}

on_both_backends! {
    async fn metrics_count_emails_and_show_the_queue(app) {
        queue(&app, email_to("ada@example.org")).await;
        queue(&app, email_to("bob@example.org")).await;
        let (_, text) = app.get_text("/metrics").await;
        assert!(text.contains("\nshoulder_email_queue_depth 2\n"), "{text}");

        app.run_jobs().await;
        let (_, text) = app.get_text("/metrics").await;
        assert!(text.contains("\nshoulder_emails_sent_total 2\n"), "{text}");
        assert!(text.contains("\nshoulder_emails_retried_total 0\n"), "{text}");
        assert!(text.contains("\nshoulder_emails_failed_total 0\n"), "{text}");
        assert!(text.contains("\nshoulder_email_queue_depth 0\n"), "{text}");
    }
}

on_both_backends! {
    async fn an_address_that_needs_smtputf8_fails_for_good_on_a_server_without_it(app) {
        // The test server offers 8BITMIME but not SMTPUTF8, and `é` stays
        // `é` before the @.
        let id = queue(&app, email_to("renée@example.org")).await;
        let report = app.run_jobs().await;
        assert_eq!((report.delivery.sent, report.delivery.failed), (0, 1));
        let row = delivery(&app, id).await;
        assert_eq!(row.status, status::FAILED);
        assert_eq!(row.attempts, 1);
        let error = row.last_error.expect("the reason is kept");
        assert!(error.contains("SMTPUTF8"), "{error}");

        // Not tried again later, and the address is not blamed for it.
        app.clock.advance(Duration::hours(2));
        app.run_jobs().await;
        assert_eq!(delivery(&app, id).await.attempts, 1);
        assert!(app.emails().is_empty());
        let suppressed: i64 = app
            .state
            .db
            .run(|conn| Ok::<_, DbError>(suppressed_addresses::table.count().get_result(conn)?))
            .await
            .expect("counted");
        assert_eq!(suppressed, 0);
    }
}

on_both_backends! {
    async fn a_row_queued_with_a_unicode_domain_goes_out_to_its_ascii_form(app) {
        // As rows were written before domains were put in ASCII.
        let now = app.clock.now().naive_utc();
        let email = email_to("ada@example.org");
        let context = email.context.as_str().to_string();
        let id: i64 = app
            .state
            .db
            .run(move |conn| {
                Ok::<_, DbError>(
                    diesel::insert_into(deliveries::table)
                        .values((
                            deliveries::kind.eq("test"),
                            deliveries::to_address.eq("ada@exämple.de"),
                            deliveries::context_json.eq(context),
                            deliveries::next_attempt_at.eq(now),
                            deliveries::message_id.eq("d-idna-0001"),
                            deliveries::created_at.eq(now),
                        ))
                        .returning(deliveries::id)
                        .get_result(conn)?,
                )
            })
            .await
            .expect("inserted");
        assert_eq!(app.run_jobs().await.delivery.sent, 1);
        assert_eq!(delivery(&app, id).await.status, status::SENT);
        let emails = app.emails();
        assert_eq!(emails.len(), 1);
        assert_eq!(emails[0].to, ["ada@xn--exmple-cua.de"]);
    }
}
