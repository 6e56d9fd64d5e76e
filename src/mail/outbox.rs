//! The email outbox: every email is first a row in `deliveries`, written by
//! [`enqueue`] in the same transaction as the change that causes it, and only
//! then sent by [`deliver_due`], which the background pass runs.
//!
//! This module owns those rows from insert to their last state, and the
//! `suppressed_addresses` list that a permanent refusal adds to. A row moves
//! `pending` → `sending` (claimed) → `sent` | `pending` again (retry later) |
//! `failed`; an address already suppressed is recorded as `suppressed` and
//! never sent. Suppression is decided at enqueue: a row queued before its
//! address was suppressed is still tried, and its own 5xx fails it.
//!
//! What we promise: one row per (round, member, kind), decided by the unique
//! key, and at most one duplicate email, only if the process dies between the
//! server's 250 and our commit. Such a duplicate carries the same Message-ID,
//! so it is recognisable.
//!
//! `message_id` holds the Message-ID's key, `d-<32 hex>`, drawn at insert; the
//! [`Mailer`] adds `@<host of server.public_url>` when it sends (see
//! [`Mailer::message_id_for`]). Storing the key rather than the whole header
//! keeps one source for the host, so every attempt of a row carries the same id.
//!
//! `headers_json` holds `{"to_name": "Ada", "headers": [["List-Unsubscribe",
//! "<…>"], …]}`: the table has no column for the recipient's display name, so it
//! travels with the extra headers; pairs keep their order and repeated names.

use std::future::Future;
use std::ops::AddAssign;
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};
use std::task::Poll;

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use diesel::dsl;
use diesel::prelude::*;
use rand::Rng;
use serde::Deserialize;
use tokio::time::Instant;

use crate::config::MailConfig;
use crate::db::schema::{deliveries, suppressed_addresses};
use crate::db::{Db, DbConnection, DbError};
use crate::mail::{EmailAddress, Mailer, OutgoingEmail, RenderedEmail, SendError};

/// The values of `deliveries.status`.
pub mod status {
    pub const PENDING: &str = "pending";
    pub const SENDING: &str = "sending";
    pub const SENT: &str = "sent";
    pub const FAILED: &str = "failed";
    pub const SUPPRESSED: &str = "suppressed";
}

/// The first retry waits about this long; each later one twice the one before.
const FIRST_RETRY_DELAY: TimeDelta = TimeDelta::minutes(1);
/// No retry waits longer than this (before jitter).
const MAX_RETRY_DELAY: TimeDelta = TimeDelta::hours(1);
/// Each delay is scaled by a random factor in 1 ± this, so a batch that failed
/// together does not come back together.
const RETRY_JITTER: f64 = 0.2;
/// `last_error` keeps the start of the server's answer, not a novel.
const MAX_ERROR_LEN: usize = 1000;

/// An email to put in the outbox.
#[derive(Debug, Clone)]
pub struct NewEmail {
    /// One of [`crate::mail::KINDS`], e.g. `"sign_in"`.
    pub kind: &'static str,
    pub to: EmailAddress,
    pub to_name: Option<String>,
    /// Set for circle mail, so that each member gets one of each kind per round.
    pub round_id: Option<i64>,
    pub membership_id: Option<i64>,
    pub content: RenderedEmail,
    /// Extra headers such as `List-Unsubscribe`.
    pub headers: Vec<(String, String)>,
}

/// What [`enqueue`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    /// A new row, waiting for the next delivery pass.
    Queued { id: i64 },
    /// A row for this (round, member, kind) exists already; nothing was written.
    AlreadyQueued,
    /// The address is on the suppression list: recorded as `suppressed`, never sent.
    Suppressed { id: i64 },
}

/// Puts one email in the outbox. Runs on the caller's connection, so it can
/// share the transaction of the change that causes the email.
pub fn enqueue(
    conn: &mut DbConnection,
    now: NaiveDateTime,
    email: &NewEmail,
) -> Result<Enqueued, DbError> {
    let suppressed: bool = diesel::select(dsl::exists(
        suppressed_addresses::table.filter(suppressed_addresses::email.eq(email.to.as_str())),
    ))
    .get_result(conn)?;
    let row = NewDeliveryRow {
        round_id: email.round_id,
        membership_id: email.membership_id,
        kind: email.kind,
        to_address: email.to.as_str(),
        subject: &email.content.subject,
        text_body: &email.content.text,
        html_body: &email.content.html,
        headers_json: headers_json(email.to_name.as_deref(), &email.headers),
        status: if suppressed {
            status::SUPPRESSED
        } else {
            status::PENDING
        },
        attempts: 0,
        next_attempt_at: now,
        last_error: suppressed.then_some("not sent: the address is on the suppression list"),
        message_id: random_hex_key("d-"),
        created_at: now,
    };
    // Two callers may enqueue the same (round, member, kind) at once, on two
    // instances; the unique key settles it. DO NOTHING makes the loser's
    // insert a no-op that returns no id, instead of an error that would roll
    // back the caller's transaction; a look-before-insert would race. The
    // target names that key only, so a clash on `message_id` (128 random bits)
    // would still be an error rather than pass for "already queued". Mail
    // outside a round has NULLs in the key, which never conflict.
    let insert = diesel::insert_into(deliveries::table)
        .values(&row)
        .on_conflict((
            deliveries::round_id,
            deliveries::membership_id,
            deliveries::kind,
        ))
        .do_nothing()
        .returning(deliveries::id);
    let id: Option<i64> = match conn {
        DbConnection::Postgresql(conn) => insert.get_result(conn).optional()?,
        DbConnection::Sqlite(conn) => insert.get_result(conn).optional()?,
    };
    Ok(match id {
        None => Enqueued::AlreadyQueued,
        Some(id) if suppressed => {
            tracing::info!(
                delivery.id = id,
                email.kind = email.kind,
                email.to = %email.to.masked(),
                "email not sent: the address is suppressed"
            );
            Enqueued::Suppressed { id }
        }
        Some(id) => Enqueued::Queued { id },
    })
}

#[derive(Insertable)]
#[diesel(table_name = deliveries)]
struct NewDeliveryRow<'a> {
    round_id: Option<i64>,
    membership_id: Option<i64>,
    kind: &'a str,
    to_address: &'a str,
    subject: &'a str,
    text_body: &'a str,
    html_body: &'a str,
    headers_json: Option<String>,
    status: &'a str,
    attempts: i32,
    next_attempt_at: NaiveDateTime,
    last_error: Option<&'a str>,
    message_id: String,
    created_at: NaiveDateTime,
}

/// `prefix` and 128 random bits in hex.
fn random_hex_key(prefix: &str) -> String {
    let bytes: [u8; 16] = rand::random();
    format!("{prefix}{}", hex::encode(bytes))
}

/// The display name and extra headers as stored; `None` when there are neither.
fn headers_json(to_name: Option<&str>, headers: &[(String, String)]) -> Option<String> {
    if to_name.is_none() && headers.is_empty() {
        return None;
    }
    let mut stored = serde_json::Map::new();
    if let Some(name) = to_name {
        stored.insert("to_name".into(), name.into());
    }
    let pairs = headers
        .iter()
        .map(|(name, value)| {
            serde_json::Value::Array(vec![name.as_str().into(), value.as_str().into()])
        })
        .collect();
    stored.insert("headers".into(), serde_json::Value::Array(pairs));
    Some(serde_json::Value::Object(stored).to_string())
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredHeaders {
    #[serde(default)]
    to_name: Option<String>,
    #[serde(default)]
    headers: Vec<(String, String)>,
}

/// How delivery runs; see `[mail]` in `config/default.toml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxSettings {
    /// Rows claimed at once.
    pub batch_size: usize,
    /// Sends in flight at once: the SMTP pool's size, since lettre's pool
    /// caps only idle connections and would otherwise open one per send.
    pub concurrency: usize,
    /// How long a claim holds before another worker may take the row over.
    pub lease: TimeDelta,
    /// The mailer's limit on one whole send.
    pub send_timeout: TimeDelta,
    /// Temporary failures are retried until this long after the row was created.
    pub retry_for: TimeDelta,
}

impl OutboxSettings {
    pub fn from_config(mail: &MailConfig) -> OutboxSettings {
        OutboxSettings {
            batch_size: usize::try_from(mail.batch_size).unwrap_or(usize::MAX),
            concurrency: usize::try_from(mail.smtp_pool_size).unwrap_or(1).max(1),
            lease: seconds(mail.lease_secs),
            send_timeout: seconds(mail.send_timeout_secs),
            retry_for: seconds(mail.retry_for_hours.saturating_mul(3600)),
        }
    }

    /// How long after a claim a send may still start and be sure to end (by
    /// our own timeout) while the lease holds.
    fn start_window(&self) -> std::time::Duration {
        (self.lease - self.send_timeout)
            .to_std()
            .unwrap_or(std::time::Duration::ZERO)
    }
}

fn seconds(secs: u64) -> TimeDelta {
    i64::try_from(secs)
        .ok()
        .and_then(TimeDelta::try_seconds)
        .unwrap_or(TimeDelta::MAX)
}

/// A worker's hold on one row: "sent" and "failed" are written only while
/// the row still carries this claim's token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub delivery_id: i64,
    token: String,
}

/// A row claimed for sending, with everything needed to send it.
#[derive(Clone)]
pub struct ClaimedDelivery {
    pub claim: Claim,
    pub kind: String,
    pub to_address: String,
    pub subject: String,
    pub text_body: String,
    pub html_body: String,
    pub headers_json: Option<String>,
    /// Claims so far, this one included.
    pub attempts: i32,
    pub message_key: String,
    pub created_at: NaiveDateTime,
}

/// Bodies hold sign-in and round links, so they stay out of `{:?}`.
impl std::fmt::Debug for ClaimedDelivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClaimedDelivery")
            .field("delivery_id", &self.claim.delivery_id)
            .field("kind", &self.kind)
            .field("to", &self.masked_to())
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

impl ClaimedDelivery {
    /// The email as the mailer takes it. Rows we cannot read are bad data,
    /// which no retry mends: `SendError::Message`.
    fn outgoing(&self) -> Result<OutgoingEmail, SendError> {
        let to = EmailAddress::parse(&self.to_address)
            .map_err(|e| SendError::Message(format!("stored recipient: {e}")))?;
        let extras: StoredHeaders = match &self.headers_json {
            Some(json) => serde_json::from_str(json)
                .map_err(|e| SendError::Message(format!("stored headers: {e}")))?,
            None => StoredHeaders::default(),
        };
        Ok(OutgoingEmail {
            to,
            to_name: extras.to_name,
            content: RenderedEmail {
                subject: self.subject.clone(),
                text: self.text_body.clone(),
                html: self.html_body.clone(),
            },
            message_key: self.message_key.clone(),
            headers: extras.headers,
        })
    }

    fn masked_to(&self) -> String {
        EmailAddress::parse(&self.to_address)
            .map(|address| address.masked())
            .unwrap_or_else(|_| "(unreadable address)".into())
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = deliveries)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
struct ClaimedRow {
    id: i64,
    kind: String,
    to_address: String,
    subject: String,
    text_body: String,
    html_body: String,
    headers_json: Option<String>,
    attempts: i32,
    message_id: String,
    created_at: NaiveDateTime,
}

/// Claims up to `settings.batch_size` due rows, oldest first, for one worker:
/// each gets status `sending`, one fresh random claim token and a lease until
/// `now + settings.lease`.
///
/// The token, not the status, is what makes a worker's later writes safe: a
/// worker that stalled past its lease finds, when it wakes, that the row
/// carries another worker's token, and its `UPDATE ... WHERE claim_token = ?`
/// changes nothing. PostgreSQL skips rows another worker is claiming at this
/// moment (`FOR UPDATE SKIP LOCKED`) rather than waiting for them; SQLite has
/// a single writer, so the same statement without the lock is already atomic.
pub fn claim_due(
    conn: &mut DbConnection,
    now: NaiveDateTime,
    settings: &OutboxSettings,
) -> Result<Vec<ClaimedDelivery>, DbError> {
    let token = random_hex_key("");
    let limit = i64::try_from(settings.batch_size).unwrap_or(i64::MAX);
    let claim = (
        deliveries::status.eq(status::SENDING),
        deliveries::claim_token.eq(Some(token.clone())),
        deliveries::lease_until.eq(Some(now + settings.lease)),
        deliveries::attempts.eq(deliveries::attempts + 1),
    );
    // The inner SELECT reads the table the UPDATE writes; diesel needs it
    // under another name to tell the two apart.
    let due = diesel::alias!(deliveries as due);
    // Pending rows whose time has come, and claimed rows whose lease ran out
    // (their worker died or hung).
    let is_due = due
        .field(deliveries::status)
        .eq(status::PENDING)
        .and(due.field(deliveries::next_attempt_at).le(now))
        .or(due
            .field(deliveries::status)
            .eq(status::SENDING)
            .and(due.field(deliveries::lease_until).lt(now)));
    let oldest_first = (
        due.field(deliveries::next_attempt_at),
        due.field(deliveries::id),
    );
    let rows: Vec<ClaimedRow> = match conn {
        DbConnection::Postgresql(conn) => {
            let ids = due
                .select(due.field(deliveries::id))
                .filter(is_due)
                .order(oldest_first)
                .limit(limit)
                .for_update()
                .skip_locked();
            diesel::update(deliveries::table.filter(deliveries::id.eq_any(ids)))
                .set(claim)
                .returning(ClaimedRow::as_returning())
                .get_results(conn)?
        }
        DbConnection::Sqlite(conn) => {
            let ids = due
                .select(due.field(deliveries::id))
                .filter(is_due)
                .order(oldest_first)
                .limit(limit);
            diesel::update(deliveries::table.filter(deliveries::id.eq_any(ids)))
                .set(claim)
                .returning(ClaimedRow::as_returning())
                .get_results(conn)?
        }
    };
    Ok(rows
        .into_iter()
        .map(|row| ClaimedDelivery {
            claim: Claim {
                delivery_id: row.id,
                token: token.clone(),
            },
            kind: row.kind,
            to_address: row.to_address,
            subject: row.subject,
            text_body: row.text_body,
            html_body: row.html_body,
            headers_json: row.headers_json,
            attempts: row.attempts,
            message_key: row.message_id,
            created_at: row.created_at,
        })
        .collect())
}

/// Records that the server accepted the email. `false` when the claim was
/// lost (another worker took the row over): then nothing changed.
pub fn mark_sent(
    conn: &mut DbConnection,
    claim: &Claim,
    now: NaiveDateTime,
) -> Result<bool, DbError> {
    let updated = diesel::update(claimed(claim))
        .set((
            deliveries::status.eq(status::SENT),
            deliveries::sent_at.eq(Some(now)),
            deliveries::last_error.eq(None::<String>),
            deliveries::claim_token.eq(None::<String>),
            deliveries::lease_until.eq(None::<NaiveDateTime>),
        ))
        .execute(conn)?;
    Ok(updated == 1)
}

/// Puts the row back to wait until `at`. `false` when the claim was lost.
fn mark_for_retry(
    conn: &mut DbConnection,
    claim: &Claim,
    at: NaiveDateTime,
    error: &str,
) -> Result<bool, DbError> {
    let updated = diesel::update(claimed(claim))
        .set((
            deliveries::status.eq(status::PENDING),
            deliveries::next_attempt_at.eq(at),
            deliveries::last_error.eq(Some(error)),
            deliveries::claim_token.eq(None::<String>),
            deliveries::lease_until.eq(None::<NaiveDateTime>),
        ))
        .execute(conn)?;
    Ok(updated == 1)
}

/// Gives the row up for good. `false` when the claim was lost.
fn mark_failed(conn: &mut DbConnection, claim: &Claim, error: &str) -> Result<bool, DbError> {
    let updated = diesel::update(claimed(claim))
        .set((
            deliveries::status.eq(status::FAILED),
            deliveries::last_error.eq(Some(error)),
            deliveries::claim_token.eq(None::<String>),
            deliveries::lease_until.eq(None::<NaiveDateTime>),
        ))
        .execute(conn)?;
    Ok(updated == 1)
}

/// Hands back claimed rows that were never tried: pending again, due at once,
/// and the claim's attempt not counted.
fn release(conn: &mut DbConnection, claims: &[Claim]) -> Result<usize, DbError> {
    conn.transaction(|conn| {
        let mut released = 0;
        for claim in claims {
            released += diesel::update(claimed(claim))
                .set((
                    deliveries::status.eq(status::PENDING),
                    deliveries::attempts.eq(deliveries::attempts - 1),
                    deliveries::claim_token.eq(None::<String>),
                    deliveries::lease_until.eq(None::<NaiveDateTime>),
                ))
                .execute(conn)?;
        }
        Ok(released)
    })
}

/// The row, if it still carries this claim's token.
#[dsl::auto_type(no_type_alias)]
fn claimed<'a>(claim: &'a Claim) -> _ {
    let id: i64 = claim.delivery_id;
    let token: &'a str = &claim.token;
    deliveries::table
        .filter(deliveries::id.eq(id))
        .filter(deliveries::claim_token.eq(token))
}

/// Adds an address to the suppression list; adding it twice changes nothing.
fn suppress(
    conn: &mut DbConnection,
    address: &str,
    reason: &str,
    now: NaiveDateTime,
) -> Result<(), DbError> {
    // A 5xx for the same address may arrive on two workers at once; the
    // unique key keeps one row and the other insert quietly does nothing.
    let insert = diesel::insert_into(suppressed_addresses::table)
        .values((
            suppressed_addresses::email.eq(address),
            suppressed_addresses::reason.eq(reason),
            suppressed_addresses::created_at.eq(now),
        ))
        .on_conflict(suppressed_addresses::email)
        .do_nothing();
    match conn {
        DbConnection::Postgresql(conn) => insert.execute(conn)?,
        DbConnection::Sqlite(conn) => insert.execute(conn)?,
    };
    Ok(())
}

/// Rows waiting to be sent or being sent, for the `/metrics` gauge.
pub fn queue_depth(conn: &mut DbConnection) -> Result<i64, DbError> {
    Ok(deliveries::table
        .filter(deliveries::status.eq_any([status::PENDING, status::SENDING]))
        .count()
        .get_result(conn)?)
}

/// One outbox row as it stands, bodies left out.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = deliveries)]
pub struct Delivery {
    pub id: i64,
    pub round_id: Option<i64>,
    pub membership_id: Option<i64>,
    pub kind: String,
    pub to_address: String,
    /// One of [`status`].
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: NaiveDateTime,
    pub last_error: Option<String>,
    /// The Message-ID's key (the part before `@`).
    pub message_id: String,
    pub created_at: NaiveDateTime,
    pub sent_at: Option<NaiveDateTime>,
}

pub fn find_by_id(conn: &mut DbConnection, id: i64) -> Result<Option<Delivery>, DbError> {
    Ok(deliveries::table
        .find(id)
        .select(Delivery::as_select())
        .first(conn)
        .optional()?)
}

/// What one delivery pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Accepted by the server and recorded as sent by us.
    pub sent: usize,
    /// Refused for now; waiting for a later attempt.
    pub retried: usize,
    /// Given up: refused for good, bad data, or retried past the cutoff.
    pub failed: usize,
    /// Sent or tried, but another worker had taken the row over meanwhile,
    /// so our outcome was not recorded.
    pub lost_leases: usize,
}

impl AddAssign for DeliveryReport {
    fn add_assign(&mut self, other: DeliveryReport) {
        self.sent += other.sent;
        self.retried += other.retried;
        self.failed += other.failed;
        self.lost_leases += other.lost_leases;
    }
}

/// Sends what is due at `now`: claims a batch, sends it with at most
/// `settings.concurrency` sends in flight, records each outcome, and claims
/// the next batch while the last one was full.
///
/// Send first, then mark: the row says `sent` only after the server's 250,
/// so a crash in between leaves the row claimed, its lease runs out, and
/// another pass sends it again under the same Message-ID. That duplicate is
/// the price of never losing an email; marking first would lose it instead.
///
/// The lease must outlast a send that starts while it holds, or another
/// worker could take the row over mid-send and send it too; hence
/// `mail.lease_secs` > `mail.send_timeout_secs` (checked at start-up). A send
/// starts only while `lease - send_timeout` has not yet passed since the pass
/// began, and the pass stops there: rows claimed but not started by then are
/// handed back for the next pass.
pub async fn deliver_due(
    db: &Db,
    mailer: &Mailer,
    now: DateTime<Utc>,
    settings: &OutboxSettings,
) -> Result<DeliveryReport, DbError> {
    let settings = *settings;
    let last_start = Instant::now() + settings.start_window();
    let now = now.naive_utc();
    let mut report = DeliveryReport::default();
    loop {
        let batch = db.run(move |conn| claim_due(conn, now, &settings)).await?;
        let full = batch.len() >= settings.batch_size;
        if batch.is_empty() {
            break;
        }
        report += send_batch(db, mailer, now, &settings, batch, last_start).await?;
        if !full {
            break;
        }
        if Instant::now() >= last_start {
            tracing::warn!(
                window_secs = settings.start_window().as_secs(),
                "delivery pass reached its time limit (mail.lease_secs - mail.send_timeout_secs); \
                 the rest waits for the next pass"
            );
            break;
        }
    }
    Ok(report)
}

async fn send_batch(
    db: &Db,
    mailer: &Mailer,
    now: NaiveDateTime,
    settings: &OutboxSettings,
    batch: Vec<ClaimedDelivery>,
    last_start: Instant,
) -> Result<DeliveryReport, DbError> {
    // At least one sender, or a full batch would be claimed and handed back
    // over and over until the pass's time ran out.
    let workers = settings.concurrency.max(1).min(batch.len());
    let queue = Mutex::new(batch.into_iter());
    let outcomes = join_all(
        (0..workers)
            .map(|_| send_from_queue(db, mailer, now, settings, &queue, last_start))
            .collect(),
    )
    .await;
    let untried: Vec<Claim> = queue
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner)
        .map(|delivery| delivery.claim)
        .collect();
    if !untried.is_empty() {
        let count = untried.len();
        tracing::warn!(
            count,
            "emails claimed but not started within the lease; handed back for the next pass"
        );
        db.run(move |conn| release(conn, &untried)).await?;
    }
    let mut report = DeliveryReport::default();
    for outcome in outcomes {
        report += outcome?;
    }
    Ok(report)
}

/// One of the concurrent senders: takes rows from the shared queue until it
/// is empty or no send may start any more.
async fn send_from_queue(
    db: &Db,
    mailer: &Mailer,
    now: NaiveDateTime,
    settings: &OutboxSettings,
    queue: &Mutex<std::vec::IntoIter<ClaimedDelivery>>,
    last_start: Instant,
) -> Result<DeliveryReport, DbError> {
    let mut report = DeliveryReport::default();
    while Instant::now() < last_start {
        let next = queue.lock().unwrap_or_else(PoisonError::into_inner).next();
        let Some(delivery) = next else { break };
        let outcome = match delivery.outgoing() {
            Ok(email) => mailer.send(&email).await.map(|_| ()),
            Err(error) => Err(error),
        };
        report += record(db, now, settings, delivery, outcome).await?;
    }
    Ok(report)
}

/// What to write after one attempt.
enum Step {
    Sent,
    Retry { at: NaiveDateTime, error: String },
    Fail { error: String },
    FailAndSuppress { error: String },
}

/// Writes one attempt's outcome under the claim, and logs it.
async fn record(
    db: &Db,
    now: NaiveDateTime,
    settings: &OutboxSettings,
    delivery: ClaimedDelivery,
    outcome: Result<(), SendError>,
) -> Result<DeliveryReport, DbError> {
    let step = match outcome {
        Ok(()) => Step::Sent,
        Err(error) if error.is_retryable() => {
            let error = clip(&error.to_string());
            match retry_at(now, &delivery, settings.retry_for, jitter()) {
                Some(at) => Step::Retry { at, error },
                None => Step::Fail {
                    error: clip(&format!(
                        "gave up after {} attempts: {error}",
                        delivery.attempts
                    )),
                },
            }
        }
        Err(error @ SendError::Permanent(_)) => Step::FailAndSuppress {
            error: clip(&error.to_string()),
        },
        Err(error) => Step::Fail {
            error: clip(&error.to_string()),
        },
    };
    let id = delivery.claim.delivery_id;
    let kind = delivery.kind.clone();
    let masked = delivery.masked_to();
    let (kept, step) = db
        .run(move |conn| {
            let kept = match &step {
                Step::Sent => mark_sent(conn, &delivery.claim, now)?,
                Step::Retry { at, error } => mark_for_retry(conn, &delivery.claim, *at, error)?,
                Step::Fail { error } => mark_failed(conn, &delivery.claim, error)?,
                Step::FailAndSuppress { error } => conn.transaction(|conn| {
                    let kept = mark_failed(conn, &delivery.claim, error)?;
                    // The refusal is about the address whoever holds the
                    // row now, so the address is suppressed either way.
                    suppress(conn, &delivery.to_address, error, now)?;
                    Ok::<_, DbError>(kept)
                })?,
            };
            Ok::<_, DbError>((kept, step))
        })
        .await?;
    let mut report = DeliveryReport::default();
    if !kept {
        tracing::warn!(
            delivery.id = id,
            email.kind = %kind,
            email.to = %masked,
            "delivery lease lost: another worker took the email over; our outcome is not recorded"
        );
        report.lost_leases = 1;
        return Ok(report);
    }
    match step {
        Step::Sent => {
            tracing::info!(delivery.id = id, email.kind = %kind, email.to = %masked, "email sent");
            report.sent = 1;
        }
        Step::Retry { at, error } => {
            tracing::info!(
                delivery.id = id,
                email.kind = %kind,
                email.to = %masked,
                retry_at = %at,
                error = %error,
                "email refused for now; will retry"
            );
            report.retried = 1;
        }
        Step::Fail { error } => {
            tracing::warn!(
                delivery.id = id,
                email.kind = %kind,
                email.to = %masked,
                error = %error,
                "email failed"
            );
            report.failed = 1;
        }
        Step::FailAndSuppress { error } => {
            tracing::warn!(
                delivery.id = id,
                email.kind = %kind,
                email.to = %masked,
                error = %error,
                "email refused for good; address suppressed"
            );
            report.failed = 1;
        }
    }
    Ok(report)
}

/// When to try again after a temporary failure, or `None` once the row is
/// past its cutoff (`retry_for` after it was created). The last retry is
/// moved up to the cutoff itself, so a row always gets a try there.
fn retry_at(
    now: NaiveDateTime,
    delivery: &ClaimedDelivery,
    retry_for: TimeDelta,
    jitter: f64,
) -> Option<NaiveDateTime> {
    let cutoff = delivery.created_at + retry_for;
    if now >= cutoff {
        return None;
    }
    Some((now + retry_delay(delivery.attempts, jitter)).min(cutoff))
}

/// 1 minute after the first attempt, doubling each time up to 1 hour, scaled
/// by `jitter` (expected within 1 ± `RETRY_JITTER`).
fn retry_delay(attempts: i32, jitter: f64) -> TimeDelta {
    // 2^6 minutes is past the cap already; stopping there avoids overflow.
    let doublings = attempts.saturating_sub(1).clamp(0, 6);
    let delay = (FIRST_RETRY_DELAY * 2_i32.pow(doublings.unsigned_abs())).min(MAX_RETRY_DELAY);
    let millis = delay.num_milliseconds() as f64 * jitter;
    TimeDelta::milliseconds(millis.round() as i64)
}

fn jitter() -> f64 {
    rand::rng().random_range((1.0 - RETRY_JITTER)..=(1.0 + RETRY_JITTER))
}

fn clip(text: &str) -> String {
    text.chars().take(MAX_ERROR_LEN).collect()
}

/// Runs `futures` side by side on the current task and returns their outputs
/// in order: `futures::future::join_all` for a handful of senders, without
/// taking on that crate. Each future is polled until it is ready, never after.
async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut all_ready = true;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => *output = Some(value),
                    Poll::Pending => all_ready = false,
                }
            }
        }
        if all_ready {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").expect("a valid instant")
    }

    fn claimed_at(created_at: NaiveDateTime, attempts: i32) -> ClaimedDelivery {
        ClaimedDelivery {
            claim: Claim {
                delivery_id: 1,
                token: "t".into(),
            },
            kind: "test".into(),
            to_address: "ada@example.org".into(),
            subject: "Hello".into(),
            text_body: "text".into(),
            html_body: "<p>html</p>".into(),
            headers_json: None,
            attempts,
            message_key: "d-00".into(),
            created_at,
        }
    }

    #[test]
    fn retry_delays_double_from_a_minute_up_to_an_hour() {
        let minutes: Vec<i64> = (1..=9)
            .map(|attempt| retry_delay(attempt, 1.0).num_minutes())
            .collect();
        assert_eq!(minutes, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(retry_delay(i32::MAX, 1.0), TimeDelta::hours(1));
        assert_eq!(retry_delay(0, 1.0), TimeDelta::minutes(1));
    }

    #[test]
    fn jitter_stays_within_a_fifth() {
        for _ in 0..1000 {
            let delay = retry_delay(1, jitter());
            assert!(delay >= TimeDelta::seconds(48), "{delay}");
            assert!(delay <= TimeDelta::seconds(72), "{delay}");
        }
    }

    #[test]
    fn retries_stop_at_the_cutoff() {
        let created = at("2027-03-01 09:00:00");
        let day = TimeDelta::hours(24);
        assert_eq!(
            retry_at(created, &claimed_at(created, 1), day, 1.0),
            Some(at("2027-03-01 09:01:00"))
        );
        let late = at("2027-03-02 08:30:00");
        assert_eq!(
            retry_at(late, &claimed_at(created, 20), day, 1.0),
            Some(at("2027-03-02 09:00:00")),
            "the last retry is moved up to the cutoff"
        );
        assert_eq!(
            retry_at(
                at("2027-03-02 09:00:00"),
                &claimed_at(created, 21),
                day,
                1.0
            ),
            None
        );
    }

    #[test]
    fn stored_headers_come_back_as_they_went_in() {
        let headers = vec![
            (
                "List-Unsubscribe".to_string(),
                "<https://x/u/1>".to_string(),
            ),
            (
                "List-Unsubscribe-Post".to_string(),
                "List-Unsubscribe=One-Click".to_string(),
            ),
        ];
        let mut delivery = claimed_at(at("2027-03-01 09:00:00"), 1);
        delivery.headers_json = headers_json(Some("Ada \"Countess\""), &headers);
        let email = delivery.outgoing().expect("readable");
        assert_eq!(email.to_name.as_deref(), Some("Ada \"Countess\""));
        assert_eq!(email.headers, headers);
        assert_eq!(email.message_key, "d-00");

        assert_eq!(headers_json(None, &[]), None);
        delivery.headers_json = None;
        assert!(delivery.outgoing().expect("readable").headers.is_empty());
    }

    #[test]
    fn unreadable_rows_are_bad_data_not_worth_retrying() {
        let mut delivery = claimed_at(at("2027-03-01 09:00:00"), 1);
        delivery.headers_json = Some("{not json".into());
        let error = delivery.outgoing().expect_err("bad headers");
        assert!(matches!(error, SendError::Message(_)), "{error:?}");
        let mut delivery = claimed_at(at("2027-03-01 09:00:00"), 1);
        delivery.to_address = "not an address".into();
        assert!(!delivery.outgoing().expect_err("bad address").is_retryable());
    }

    #[test]
    fn message_keys_are_fresh_and_128_bits() {
        let (a, b) = (random_hex_key("d-"), random_hex_key("d-"));
        assert_ne!(a, b);
        assert_eq!(a.len(), 2 + 32);
        assert!(a.starts_with("d-"));
    }
}

/// A circle email that could not be delivered, for the facilitator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedDelivery {
    pub member_name: String,
    pub kind: String,
    pub status: String,
    pub reason: Option<String>,
    pub at: NaiveDateTime,
}

/// The circle's most recent failed or suppressed emails, newest first.
pub fn list_failures_for_circle(
    conn: &mut DbConnection,
    circle_id: i64,
    limit: i64,
) -> Result<Vec<FailedDelivery>, DbError> {
    use crate::db::schema::{memberships, people};
    let rows = deliveries::table
        .inner_join(memberships::table.on(deliveries::membership_id.eq(memberships::id.nullable())))
        .inner_join(people::table.on(memberships::person_id.eq(people::id)))
        .filter(memberships::circle_id.eq(circle_id))
        .filter(deliveries::status.eq_any([status::FAILED, status::SUPPRESSED]))
        .order(deliveries::created_at.desc())
        .limit(limit)
        .select((
            people::display_name,
            deliveries::kind,
            deliveries::status,
            deliveries::last_error,
            deliveries::created_at,
        ))
        .load::<(String, String, String, Option<String>, NaiveDateTime)>(conn)?;
    Ok(rows
        .into_iter()
        .map(|(member_name, kind, status, reason, at)| FailedDelivery {
            member_name,
            kind,
            status,
            reason,
            at,
        })
        .collect())
}
