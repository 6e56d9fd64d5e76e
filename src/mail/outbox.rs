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
//! `message_id` holds the Message-ID's key, `d-<16 hex of time><32 hex>`,
//! drawn at insert (see `random_hex_key`); the
//! [`Mailer`] adds `@<host of server.public_url>` when it sends (see
//! [`Mailer::message_id_for`]). Storing the key rather than the whole header
//! keeps one source for the host, so every attempt of a row carries the same id.
//!
//! `headers_json` holds `{"to_name": "Ada", "headers": [["List-Unsubscribe",
//! "<…>"], …]}`: the table has no column for the recipient's display name, so it
//! travels with the extra headers; pairs keep their order and repeated names.
//!
//! `context_json` holds what the templates of `kind` are given: the words
//! are rendered when the row is sent, so a queued email is a few hundred
//! bytes rather than two bodies of kilobytes. Rows queued before contexts
//! existed hold `subject`, `text_body` and `html_body`, sent as they are.

use std::collections::{BTreeMap, HashSet};
use std::ops::AddAssign;
use std::sync::Arc;

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use diesel::dsl;
use diesel::prelude::*;
use rand::Rng;
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::config::MailConfig;
use crate::db::binds::{Stamp, one_of};
use crate::db::schema::{deliveries, suppressed_addresses};
use crate::db::{Db, DbConnection, DbError, natively, per_statement};
use crate::mail::{EmailAddress, EmailTemplates, Mailer, OutgoingEmail, RenderedEmail, SendError};

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
    /// When it may be sent: `None` for at once. An email held for later
    /// (a member's check-in at their own hour) counts as queued from then.
    pub send_at: Option<NaiveDateTime>,
    /// One of [`crate::mail::KINDS`], e.g. `"sign_in"`.
    pub kind: &'static str,
    pub to: EmailAddress,
    pub to_name: Option<String>,
    /// Set for circle mail, so that each member gets one of each kind per round.
    pub round_id: Option<i64>,
    pub membership_id: Option<i64>,
    /// What the templates of `kind` are rendered with when the email is
    /// sent. Storing this rather than the rendered words keeps a queued
    /// email to a few hundred bytes.
    pub context: EmailContext,
    /// Extra headers such as `List-Unsubscribe`.
    pub headers: Vec<(String, String)>,
}

/// A template context as it is stored: JSON text, written once when the
/// email is queued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailContext(String);

impl EmailContext {
    /// Serialises a typed context straight to its text, with no
    /// `serde_json::Value` tree in between: the round scheduler writes tens
    /// of thousands of these at once.
    pub fn of(context: &impl Serialize) -> Result<EmailContext, DbError> {
        serde_json::to_string(context)
            .map(EmailContext)
            .map_err(|e| DbError::Query(diesel::result::Error::SerializationError(Box::new(e))))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<serde_json::Value> for EmailContext {
    fn from(context: serde_json::Value) -> Self {
        EmailContext(context.to_string())
    }
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
    let row = delivery_row(Stamp::new(now), email, suppressed);
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

/// Puts many emails in the outbox in a few multi-row statements, in the
/// caller's transaction: what [`enqueue`] does for one, with the same
/// suppression and conflict rules, for the round scheduler, which writes
/// thousands at once. Returns how many rows were written.
pub fn enqueue_all(
    conn: &mut DbConnection,
    now: NaiveDateTime,
    emails: &[NewEmail],
) -> Result<usize, DbError> {
    let mut addresses: Vec<&str> = emails.iter().map(|email| email.to.as_str()).collect();
    addresses.sort_unstable();
    addresses.dedup();
    let suppressed: std::collections::HashSet<String> = suppressed_addresses::table
        .filter(one_of(suppressed_addresses::email, &addresses))
        .select(suppressed_addresses::email)
        .load::<String>(conn)?
        .into_iter()
        .collect();
    let now = Stamp::new(now);
    let rows: Vec<NewDeliveryRow<'_>> = emails
        .iter()
        .map(|email| delivery_row(now, email, suppressed.contains(email.to.as_str())))
        .collect();
    // The same conflict clause as in `enqueue`, for the same reasons.
    let mut written = 0;
    per_statement!(rows, |values| {
        let insert = diesel::insert_into(deliveries::table)
            .values(values)
            .on_conflict((
                deliveries::round_id,
                deliveries::membership_id,
                deliveries::kind,
            ))
            .do_nothing();
        written += match &mut *conn {
            DbConnection::Postgresql(conn) => insert.execute(conn)?,
            DbConnection::Sqlite(conn) => insert.execute(conn)?,
        };
    });
    if !suppressed.is_empty() {
        tracing::info!(
            addresses = suppressed.len(),
            "emails not sent: their addresses are suppressed"
        );
    }
    Ok(written)
}

fn delivery_row(now: Stamp, email: &NewEmail, suppressed: bool) -> NewDeliveryRow<'_> {
    let now = email.send_at.map_or(now, Stamp::new);
    NewDeliveryRow {
        round_id: email.round_id,
        membership_id: email.membership_id,
        kind: email.kind,
        to_address: email.to.as_str(),
        context_json: email.context.as_str(),
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
    }
}

#[derive(Insertable)]
#[diesel(table_name = deliveries, treat_none_as_default_value = false)]
struct NewDeliveryRow<'a> {
    round_id: Option<i64>,
    membership_id: Option<i64>,
    kind: &'a str,
    to_address: &'a str,
    context_json: &'a str,
    headers_json: Option<String>,
    status: &'a str,
    attempts: i32,
    next_attempt_at: Stamp,
    last_error: Option<&'a str>,
    message_id: String,
    created_at: Stamp,
}

/// `prefix`, the time in microseconds and 128 random bits, in hex. The time
/// first keeps the unique index on `message_id` growing at its end rather
/// than at random pages (see `auth::token` on ordered tokens).
fn random_hex_key(prefix: &str) -> String {
    let micros = crate::auth::token::ordering_micros();
    let bytes: [u8; 16] = rand::random();
    format!("{prefix}{micros:016x}{}", hex::encode(bytes))
}

/// The display name and extra headers as stored; `None` when there are neither.
fn headers_json(to_name: Option<&str>, headers: &[(String, String)]) -> Option<String> {
    if to_name.is_none() && headers.is_empty() {
        return None;
    }
    #[derive(Serialize)]
    struct Stored<'a> {
        #[serde(skip_serializing_if = "Option::is_none")]
        to_name: Option<&'a str>,
        headers: &'a [(String, String)],
    }
    // Plain strings only, which JSON always takes.
    serde_json::to_string(&Stored { to_name, headers }).ok()
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
    /// Rows claimed at once; a delivery pass claims at most [`CLAIM_STEP`]
    /// at once, whatever this says.
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
    /// The template context, for rows queued with one.
    pub context_json: Option<String>,
    /// The words as rendered at queueing, for rows queued before contexts.
    pub rendered: Option<RenderedEmail>,
    pub headers_json: Option<String>,
    /// Claims so far, this one included.
    pub attempts: i32,
    pub message_key: String,
    pub created_at: NaiveDateTime,
}

/// Contexts and bodies hold sign-in and round links, so they stay out of
/// `{:?}`.
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
    /// The email as the mailer takes it, rendered with `templates`. Rows we
    /// cannot read or render are bad data, which no retry mends:
    /// `SendError::Message`.
    fn outgoing(&self, templates: &EmailTemplates) -> Result<OutgoingEmail, SendError> {
        let to = EmailAddress::parse(&self.to_address)
            .map_err(|e| SendError::Message(format!("stored recipient: {e}")))?;
        let extras: StoredHeaders = match &self.headers_json {
            Some(json) => serde_json::from_str(json)
                .map_err(|e| SendError::Message(format!("stored headers: {e}")))?,
            None => StoredHeaders::default(),
        };
        let content = match (&self.context_json, &self.rendered) {
            (Some(json), _) => {
                let context: serde_json::Value = serde_json::from_str(json)
                    .map_err(|e| SendError::Message(format!("stored context: {e}")))?;
                templates
                    .render(&self.kind, &context)
                    .map_err(|e| SendError::Message(e.to_string()))?
            }
            (None, Some(rendered)) => rendered.clone(),
            (None, None) => return Err(SendError::Message("the stored email has no words".into())),
        };
        Ok(OutgoingEmail {
            to,
            to_name: extras.to_name,
            content,
            message_key: self.message_key.clone(),
            headers: extras.headers,
        })
    }

    fn masked_to(&self) -> String {
        masked(&self.to_address)
    }
}

/// A stored address as logs show it.
fn masked(address: &str) -> String {
    EmailAddress::parse(address)
        .map(|address| address.masked())
        .unwrap_or_else(|_| "(unreadable address)".into())
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = deliveries)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
struct ClaimedRow {
    id: i64,
    kind: String,
    to_address: String,
    context_json: Option<String>,
    subject: Option<String>,
    text_body: Option<String>,
    html_body: Option<String>,
    headers_json: Option<String>,
    attempts: i32,
    message_id: String,
    created_at: NaiveDateTime,
}

/// Claims up to `settings.batch_size` due rows for one worker: first rows
/// whose lease ran out (their worker died or hung), then pending rows whose
/// time has come, oldest first. Each gets status `sending`, one fresh random
/// claim token and a lease until `now + settings.lease`.
///
/// The token, not the status, is what makes a worker's later writes safe: a
/// worker that stalled past its lease finds, when it wakes, that the row
/// carries another worker's token, and its `UPDATE ... WHERE claim_token = ?`
/// changes nothing. PostgreSQL skips rows another worker is claiming at this
/// moment (`FOR UPDATE SKIP LOCKED`) rather than waiting for them; SQLite has
/// a single writer, so the same statements without the lock are already
/// atomic.
///
/// Two statements rather than one with `status = 'pending' AND ... OR
/// status = 'sending' AND ...`: with the OR, SQLite read both halves through
/// the `(status, next_attempt_at)` index and sorted every due row to find
/// the oldest, so each claim cost time in proportion to the whole queue (7
/// ms per claim with 18,000 emails waiting). Each half alone reads that
/// index in order and stops at the limit.
pub fn claim_due(
    conn: &mut DbConnection,
    now: NaiveDateTime,
    settings: &OutboxSettings,
) -> Result<Vec<ClaimedDelivery>, DbError> {
    let token = random_hex_key("");
    let lease_until = now + settings.lease;
    let limit = i64::try_from(settings.batch_size).unwrap_or(i64::MAX);
    // Each statement is atomic on its own, and they need not be together:
    // should the second fail, the rows of the first are claimed as if by a
    // worker that died, and taken over when their lease runs out. Outside a
    // transaction SQLite also keeps no statement journal, which a multi-row
    // UPDATE inside one writes page by page (a fifth of a claim's time).
    let mut rows = claim_expired(conn, now, limit, &token, lease_until)?;
    let left = limit.saturating_sub(i64::try_from(rows.len()).unwrap_or(i64::MAX));
    if left > 0 {
        rows.extend(claim_pending(conn, now, left, &token, lease_until)?);
    }
    Ok(rows
        .into_iter()
        .map(|row| ClaimedDelivery {
            claim: Claim {
                delivery_id: row.id,
                token: token.clone(),
            },
            kind: row.kind,
            to_address: row.to_address,
            context_json: row.context_json,
            rendered: match (row.subject, row.text_body, row.html_body) {
                (Some(subject), Some(text), Some(html)) => Some(RenderedEmail {
                    subject,
                    text,
                    html,
                }),
                _ => None,
            },
            headers_json: row.headers_json,
            attempts: row.attempts,
            message_key: row.message_id,
            created_at: row.created_at,
        })
        .collect())
}

/// Claims the rows that the SELECT `$ids` (over the alias `due`) finds, on
/// either backend: PostgreSQL locks them, skipping rows locked already. A
/// macro because the claim's two SELECTs differ in type, and each backend
/// needs the statement built for it.
macro_rules! claim_selected {
    ($conn:expr, $ids:expr, $token:expr, $lease_until:expr) => {{
        let claim = (
            deliveries::status.eq(status::SENDING),
            deliveries::claim_token.eq(Some($token)),
            deliveries::lease_until.eq(Some($lease_until)),
            deliveries::attempts.eq(deliveries::attempts + 1),
        );
        match $conn {
            DbConnection::Postgresql(conn) => {
                let ids = $ids.for_update().skip_locked();
                diesel::update(deliveries::table.filter(deliveries::id.eq_any(ids)))
                    .set(claim)
                    .returning(ClaimedRow::as_returning())
                    .get_results(conn)?
            }
            DbConnection::Sqlite(conn) => {
                diesel::update(deliveries::table.filter(deliveries::id.eq_any($ids)))
                    .set(claim)
                    .returning(ClaimedRow::as_returning())
                    .get_results(conn)?
            }
        }
    }};
}

// The inner SELECTs read the table the UPDATE writes; diesel needs it under
// another name to tell the two apart.
diesel::alias!(deliveries as due: DueDeliveries);

/// Takes over claimed rows whose lease ran out, longest expired first.
fn claim_expired(
    conn: &mut DbConnection,
    now: NaiveDateTime,
    limit: i64,
    token: &str,
    lease_until: NaiveDateTime,
) -> Result<Vec<ClaimedRow>, DbError> {
    let ids = due
        .select(due.field(deliveries::id))
        .filter(due.field(deliveries::status).eq(status::SENDING))
        .filter(due.field(deliveries::lease_until).lt(now))
        .order((
            due.field(deliveries::lease_until),
            due.field(deliveries::id),
        ))
        .limit(limit);
    Ok(claim_selected!(conn, ids, token, lease_until))
}

/// Claims pending rows whose time has come, oldest first.
fn claim_pending(
    conn: &mut DbConnection,
    now: NaiveDateTime,
    limit: i64,
    token: &str,
    lease_until: NaiveDateTime,
) -> Result<Vec<ClaimedRow>, DbError> {
    let ids = due
        .select(due.field(deliveries::id))
        .filter(due.field(deliveries::status).eq(status::PENDING))
        .filter(due.field(deliveries::next_attempt_at).le(now))
        .order((
            due.field(deliveries::next_attempt_at),
            due.field(deliveries::id),
        ))
        .limit(limit);
    Ok(claim_selected!(conn, ids, token, lease_until))
}

/// Records that the server accepted the email. `false` when the claim was
/// lost (another worker took the row over): then nothing changed.
pub fn mark_sent(
    conn: &mut DbConnection,
    claim: &Claim,
    now: NaiveDateTime,
) -> Result<bool, DbError> {
    Ok(mark_all_sent(conn, &[claim], now)?.contains(&claim.delivery_id))
}

/// Records that the server accepted these emails, each only while its row
/// still carries its claim's token: one `UPDATE ... WHERE claim_token = ?
/// AND id IN (...)` per token. Returns the ids marked; a claim that was
/// lost leaves its row as it is, and its id out.
pub fn mark_all_sent(
    conn: &mut DbConnection,
    claims: &[&Claim],
    now: NaiveDateTime,
) -> Result<HashSet<i64>, DbError> {
    let mut by_token: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for claim in claims {
        by_token
            .entry(claim.token.as_str())
            .or_default()
            .push(claim.delivery_id);
    }
    let mut marked = HashSet::with_capacity(claims.len());
    for (token, ids) in by_token {
        let update = diesel::update(
            deliveries::table
                .filter(deliveries::claim_token.eq(token))
                .filter(deliveries::id.eq_any(ids)),
        )
        .set((
            deliveries::status.eq(status::SENT),
            deliveries::sent_at.eq(Some(now)),
            deliveries::last_error.eq(None::<String>),
            deliveries::claim_token.eq(None::<String>),
            deliveries::lease_until.eq(None::<NaiveDateTime>),
        ))
        .returning(deliveries::id);
        let ids: Vec<i64> = match conn {
            DbConnection::Postgresql(conn) => update.get_results(conn)?,
            DbConnection::Sqlite(conn) => update.get_results(conn)?,
        };
        marked.extend(ids);
    }
    Ok(marked)
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

/// A delivery that bounced after it was sent: what it was, as a bounce
/// or complaint needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Returned {
    pub id: i64,
    pub round_id: Option<i64>,
    pub membership_id: Option<i64>,
    pub to_address: String,
}

/// The delivery with the message key `key` (its Message-ID's local part).
pub fn find_by_key(conn: &mut DbConnection, key: &str) -> Result<Option<Returned>, DbError> {
    Ok(deliveries::table
        .filter(deliveries::message_id.eq(key))
        .select((
            deliveries::id,
            deliveries::round_id,
            deliveries::membership_id,
            deliveries::to_address,
        ))
        .first::<(i64, Option<i64>, Option<i64>, String)>(conn)
        .optional()?
        .map(|(id, round_id, membership_id, to_address)| Returned {
            id,
            round_id,
            membership_id,
            to_address,
        }))
}

/// A delivery the receiving server refused for good after accepting it
/// (a bounce): failed with `status`, and its address suppressed, as a 5xx
/// while sending would have done.
pub fn bounced(
    conn: &mut DbConnection,
    delivery: &Returned,
    status: &str,
    now: NaiveDateTime,
) -> Result<(), DbError> {
    let error = format!("bounced: {status}");
    diesel::update(deliveries::table.find(delivery.id))
        .set((
            deliveries::status.eq(status::FAILED),
            deliveries::last_error.eq(Some(error.as_str())),
        ))
        .execute(conn)?;
    suppress(conn, &delivery.to_address, &error, now)
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

/// The outbox as `/metrics` shows it: the emails waiting to be sent or
/// being sent, and when the oldest of them was queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueState {
    pub depth: i64,
    pub oldest_queued_at: Option<NaiveDateTime>,
}

impl QueueState {
    /// How long the oldest waiting email has waited at `now`; zero when
    /// nothing waits, so an alert on the age clears once the queue drains.
    pub fn oldest_age(&self, now: NaiveDateTime) -> TimeDelta {
        self.oldest_queued_at.map_or(TimeDelta::zero(), |queued| {
            (now - queued).max(TimeDelta::zero())
        })
    }
}

/// One query for both figures, read through the `(status, ...)` index.
pub fn queue_state(conn: &mut DbConnection) -> Result<QueueState, DbError> {
    let (depth, oldest_queued_at) = deliveries::table
        .filter(deliveries::status.eq_any([status::PENDING, status::SENDING]))
        .select((dsl::count_star(), dsl::min(deliveries::created_at)))
        .get_result::<(i64, Option<NaiveDateTime>)>(conn)?;
    Ok(QueueState {
        depth,
        oldest_queued_at,
    })
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

/// Most attempts the recorder writes at once, and most waiting for it:
/// together they bound how many emails a kill can leave sent but unmarked
/// (see [`deliver_due`]).
pub const RECORD_BATCH: usize = 64;

/// Most rows one claim of a delivery pass takes, whatever `mail.batch_size`
/// says. A claim rewrites every row it takes (status, token, lease), about
/// 40 µs a row on SQLite when rows still held bodies of a few kilobytes,
/// and the recorder waits for its turn meanwhile; while it waits, the
/// senders' attempts pile up, and with [`RECORD_BATCH`] waiting the senders
/// stop. A step of 100
/// takes a few milliseconds, which that queue absorbs; 1,000 at once took
/// 40 ms, and the senders stood still for about an eighth of the pass.
pub const CLAIM_STEP: usize = 100;

/// How long the recorder waits for more attempts before it writes a batch
/// that is not full. A commit costs about as much as writing a few rows,
/// and the senders finish an email every few hundred microseconds each:
/// without the wait most transactions would carry one or two rows.
const RECORD_LINGER: std::time::Duration = std::time::Duration::from_millis(1);

/// Sends what is due at `now`. Three parts run side by side:
///
/// - the claimer takes due rows ([`claim_due`]), `settings.batch_size` but
///   at most [`CLAIM_STEP`] at a time, and queues them for the senders; it
///   claims the next step while the senders still work through the last
///   one (the queue holds two), so that they do not wait for it, and stops
///   after a claim that came back short;
/// - `settings.concurrency` senders each take the next claimed row and send
///   it, and hand what happened to the recorder;
/// - the recorder writes those attempts, as many as have come in, up to
///   [`RECORD_BATCH`], at once ([`record_attempts`]: one statement for all
///   the emails sent under one claim), each row still under its own claim
///   token.
///
/// Send first, then mark: the row says `sent` only after the server's 250,
/// so a crash in between leaves the row claimed, its lease runs out, and
/// another pass sends it again under the same Message-ID. That duplicate is
/// the price of never losing an email; marking first would lose it instead.
/// Writing attempts in batches widens that window but keeps the promise: an
/// email that a kill leaves sent but unmarked is one the recorder was
/// writing (at most [`RECORD_BATCH`]), one waiting for it (at most
/// [`RECORD_BATCH`] more), or one a sender was handing over (one per
/// sender). So a kill re-sends at most `2 × RECORD_BATCH +
/// mail.smtp_pool_size` emails, 132 with the default pool of 4, and each of
/// them once. One transaction per email, as before, cost a commit and a
/// hand-off to a blocking thread per email, and on SQLite the senders'
/// writes queued for its one writer lock, each wait a sleep of a
/// millisecond or more in SQLite's busy handler: the outbox sent at a
/// quarter of the rate of a bare SMTP loop, or less.
///
/// For the same reason the claimer and the recorder never write at once
/// (they take turns, see [`Pass::write`]); on PostgreSQL that costs little.
///
/// The lease must outlast a send that starts while it holds, or another
/// worker could take the row over mid-send and send it too; hence
/// `mail.lease_secs` > `mail.send_timeout_secs` (checked at start-up). A send
/// starts only while `lease - send_timeout` has not yet passed since the pass
/// began, and the pass stops there: rows claimed but not started by then are
/// handed back for the next pass.
///
/// `stop`, when it turns true (the server is shutting down), ends the pass
/// early too: nothing more is claimed, and what was claimed is sent.
pub async fn deliver_due(
    db: &Db,
    mailer: &Arc<Mailer>,
    now: DateTime<Utc>,
    settings: &OutboxSettings,
    stop: Option<watch::Receiver<bool>>,
) -> Result<DeliveryReport, DbError> {
    let (to_send, claimed) = mpsc::channel(2 * settings.batch_size.clamp(1, CLAIM_STEP));
    let (to_record, attempts) = mpsc::channel(RECORD_BATCH);
    let pass = Arc::new(Pass {
        db: db.clone(),
        mailer: Arc::clone(mailer),
        now: now.naive_utc(),
        settings: *settings,
        last_start: Instant::now() + settings.start_window(),
        writing: Mutex::new(()),
        claimed: Mutex::new(claimed),
        stop,
    });
    let (claiming, mut untried, recording) = tokio::join!(
        pass.claim_ahead(to_send),
        pass.send_claimed(to_record),
        pass.record(attempts),
    );
    let mut claimed = pass.claimed.lock().await;
    while let Ok(delivery) = claimed.try_recv() {
        untried.push(delivery.claim);
    }
    drop(claimed);
    let claiming = claiming.map(|left| untried.extend(left));
    let released = if untried.is_empty() {
        Ok(())
    } else {
        tracing::warn!(
            count = untried.len(),
            "emails claimed but not started within the lease; handed back for the next pass"
        );
        pass.write(move |conn| release(conn, &untried))
            .await
            .map(|_| ())
    };
    let report = recording?;
    claiming?;
    released?;
    Ok(report)
}

/// What the parts of one delivery pass share.
struct Pass {
    db: Db,
    mailer: Arc<Mailer>,
    now: NaiveDateTime,
    settings: OutboxSettings,
    /// No send starts from this instant on.
    last_start: Instant,
    /// Held around each write of the pass, so that they take turns.
    writing: Mutex<()>,
    /// Claimed rows waiting for a sender.
    claimed: Mutex<mpsc::Receiver<ClaimedDelivery>>,
    /// Turns true when the server is shutting down.
    stop: Option<watch::Receiver<bool>>,
}

impl Pass {
    /// Runs one write of the pass, when it is its turn.
    async fn write<T, F>(&self, work: F) -> Result<T, DbError>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, DbError> + Send + 'static,
        T: Send + 'static,
    {
        let _turn = self.writing.lock().await;
        self.db.run(work).await
    }

    /// The claimer: claims rows, a step at a time, and queues them for the
    /// senders, until a claim comes back short or no send may start any
    /// more. Returns the claims it could not queue because the senders had
    /// stopped.
    async fn claim_ahead(
        &self,
        to_send: mpsc::Sender<ClaimedDelivery>,
    ) -> Result<Vec<Claim>, DbError> {
        let now = self.now;
        let step = OutboxSettings {
            batch_size: self.settings.batch_size.clamp(1, CLAIM_STEP),
            ..self.settings
        };
        loop {
            let batch = self.write(move |conn| claim_due(conn, now, &step)).await?;
            let full = batch.len() >= step.batch_size;
            // Room for the whole batch at once: waiting for each free slot
            // would wake the claimer once per email.
            match to_send.reserve_many(batch.len()).await {
                Ok(room) => room
                    .zip(batch)
                    .for_each(|(slot, delivery)| slot.send(delivery)),
                Err(_closed) => return Ok(batch.into_iter().map(|d| d.claim).collect()),
            }
            if !full || to_send.is_closed() {
                return Ok(Vec::new());
            }
            if self.stop.as_ref().is_some_and(|stop| *stop.borrow()) {
                return Ok(Vec::new());
            }
            if Instant::now() >= self.last_start {
                tracing::warn!(
                    window_secs = self.settings.start_window().as_secs(),
                    "delivery pass reached its time limit (mail.lease_secs - mail.send_timeout_secs); \
                     the rest waits for the next pass"
                );
                return Ok(Vec::new());
            }
        }
    }

    /// The senders, each a task of its own, so that the runtime's workers
    /// run them side by side (`shoulder tick` would otherwise poll them all
    /// on its main thread). When they stop, the queue is closed, which
    /// stops the claimer too. Returns the claims a sender took but could
    /// not start.
    async fn send_claimed(self: &Arc<Self>, to_record: mpsc::Sender<Attempt>) -> Vec<Claim> {
        // At least one sender, or a full batch would be claimed and handed
        // back over and over until the pass's time ran out.
        let mut senders = JoinSet::new();
        for _ in 0..self.settings.concurrency.max(1) {
            senders.spawn(Arc::clone(self).send_from_queue(to_record.clone()));
        }
        drop(to_record);
        let mut untried = Vec::new();
        while let Some(sender) = senders.join_next().await {
            match sender {
                Ok(claim) => untried.extend(claim),
                Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
                Err(_) => {}
            }
        }
        self.claimed.lock().await.close();
        untried
    }

    /// One sender: sends queued rows until the queue is closed and empty,
    /// no send may start any more, or the recorder has stopped.
    async fn send_from_queue(self: Arc<Self>, to_record: mpsc::Sender<Attempt>) -> Option<Claim> {
        loop {
            let delivery = self.claimed.lock().await.recv().await?;
            if Instant::now() >= self.last_start {
                return Some(delivery.claim);
            }
            let sent = match delivery.outgoing(self.mailer.templates()) {
                Ok(email) => self.mailer.send(&email).await.map(|_| ()),
                Err(error) => Err(error),
            };
            let attempt = Attempt::after(delivery, sent, self.now, self.settings.retry_for);
            // The recorder stops only on a database error, which ends the
            // pass; this row stays claimed until its lease runs out.
            to_record.send(attempt).await.ok()?;
        }
    }

    /// The recorder: writes attempts as they come, in batches, until every
    /// sender has stopped.
    async fn record(
        &self,
        mut attempts: mpsc::Receiver<Attempt>,
    ) -> Result<DeliveryReport, DbError> {
        let now = self.now;
        let mut report = DeliveryReport::default();
        let mut batch = Vec::with_capacity(RECORD_BATCH);
        while attempts.recv_many(&mut batch, RECORD_BATCH).await > 0 {
            if batch.len() < RECORD_BATCH {
                tokio::time::sleep(RECORD_LINGER).await;
                while batch.len() < RECORD_BATCH {
                    match attempts.try_recv() {
                        Ok(attempt) => batch.push(attempt),
                        Err(_) => break,
                    }
                }
            }
            let written = std::mem::take(&mut batch);
            let (written, kept) = self
                .write(move |conn| {
                    let kept = record_attempts(conn, now, &written)?;
                    Ok((written, kept))
                })
                .await?;
            for (attempt, kept) in written.iter().zip(kept) {
                report += attempt.log(kept);
            }
        }
        Ok(report)
    }
}

/// What to write after one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The server answered 250.
    Sent,
    /// Refused for now: pending again from `at`.
    Retry { at: NaiveDateTime, error: String },
    /// Given up: bad data, a server that cannot carry the message, or
    /// refused for now past the cutoff.
    Failed { error: String },
    /// Refused for good (5xx): failed, and the address suppressed.
    Refused { error: String },
}

/// One attempt at one claimed row, as the recorder writes it.
#[derive(Clone)]
pub struct Attempt {
    pub claim: Claim,
    pub kind: String,
    pub to_address: String,
    pub outcome: Outcome,
}

/// The address stays out of `{:?}`, as in [`ClaimedDelivery`].
impl std::fmt::Debug for Attempt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attempt")
            .field("delivery_id", &self.claim.delivery_id)
            .field("kind", &self.kind)
            .field("outcome", &self.outcome)
            .finish_non_exhaustive()
    }
}

impl Attempt {
    /// What a send came to: a refusal for now is retried with backoff until
    /// the row's cutoff (`retry_for` after it was queued).
    fn after(
        delivery: ClaimedDelivery,
        sent: Result<(), SendError>,
        now: NaiveDateTime,
        retry_for: TimeDelta,
    ) -> Attempt {
        let outcome = match sent {
            Ok(()) => Outcome::Sent,
            Err(error) if error.is_retryable() => {
                let error = clip(&error.to_string());
                match retry_at(now, &delivery, retry_for, jitter()) {
                    Some(at) => Outcome::Retry { at, error },
                    None => Outcome::Failed {
                        error: clip(&format!(
                            "gave up after {} attempts: {error}",
                            delivery.attempts
                        )),
                    },
                }
            }
            Err(error @ SendError::Permanent(_)) => Outcome::Refused {
                error: clip(&error.to_string()),
            },
            Err(error) => Outcome::Failed {
                error: clip(&error.to_string()),
            },
        };
        Attempt {
            claim: delivery.claim,
            kind: delivery.kind,
            to_address: delivery.to_address,
            outcome,
        }
    }

    fn masked_to(&self) -> String {
        masked(&self.to_address)
    }

    /// Logs the attempt once written (`kept`: its claim still held) and
    /// counts it. The address is masked only for a line that is logged.
    fn log(&self, kept: bool) -> DeliveryReport {
        let id = self.claim.delivery_id;
        let mut report = DeliveryReport::default();
        if !kept {
            tracing::warn!(
                delivery.id = id,
                email.kind = %self.kind,
                email.to = %self.masked_to(),
                "delivery lease lost: another worker took the email over; our outcome is not recorded"
            );
            report.lost_leases = 1;
            return report;
        }
        match &self.outcome {
            Outcome::Sent => {
                tracing::info!(
                    delivery.id = id,
                    email.kind = %self.kind,
                    email.to = %self.masked_to(),
                    "email sent"
                );
                report.sent = 1;
            }
            Outcome::Retry { at, error } => {
                tracing::info!(
                    delivery.id = id,
                    email.kind = %self.kind,
                    email.to = %self.masked_to(),
                    retry_at = %at,
                    error = %error,
                    "email refused for now; will retry"
                );
                report.retried = 1;
            }
            Outcome::Failed { error } => {
                tracing::warn!(
                    delivery.id = id,
                    email.kind = %self.kind,
                    email.to = %self.masked_to(),
                    error = %error,
                    "email failed"
                );
                report.failed = 1;
            }
            Outcome::Refused { error } => {
                tracing::warn!(
                    delivery.id = id,
                    email.kind = %self.kind,
                    email.to = %self.masked_to(),
                    error = %error,
                    "email refused for good; address suppressed"
                );
                report.failed = 1;
            }
        }
        report
    }
}

/// Writes several attempts, each under its own claim: the answer says,
/// attempt by attempt, whether its claim still held (when it did not,
/// another worker took the row over and that attempt changed nothing). A
/// refusal for good suppresses the address whoever holds the row now: the
/// refusal is about the address.
///
/// The emails sent are marked by one statement per claim token
/// ([`mark_all_sent`]), which in a pass usually means one statement for
/// the whole batch; the rest, rare, one row at a time. There is no
/// transaction around them: each outcome stands on its own, and inside a
/// transaction SQLite would copy every page a many-row UPDATE touches to a
/// statement journal first.
pub fn record_attempts(
    conn: &mut DbConnection,
    now: NaiveDateTime,
    attempts: &[Attempt],
) -> Result<Vec<bool>, DbError> {
    let sent: Vec<&Claim> = attempts
        .iter()
        .filter(|attempt| attempt.outcome == Outcome::Sent)
        .map(|attempt| &attempt.claim)
        .collect();
    let marked = mark_all_sent(conn, &sent, now)?;
    attempts
        .iter()
        .map(|attempt| match &attempt.outcome {
            Outcome::Sent => Ok(marked.contains(&attempt.claim.delivery_id)),
            Outcome::Retry { at, error } => mark_for_retry(conn, &attempt.claim, *at, error),
            Outcome::Failed { error } => mark_failed(conn, &attempt.claim, error),
            Outcome::Refused { error } => conn.transaction(|conn| {
                let kept = mark_failed(conn, &attempt.claim, error)?;
                suppress(conn, &attempt.to_address, error, now)?;
                Ok(kept)
            }),
        })
        .collect()
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
            context_json: None,
            rendered: Some(RenderedEmail {
                subject: "Hello".into(),
                text: "text".into(),
                html: "<p>html</p>".into(),
            }),
            headers_json: None,
            attempts,
            message_key: "d-00".into(),
            created_at,
        }
    }

    /// The wording compiled into the binary: no folder of that name exists.
    fn built_in() -> EmailTemplates {
        EmailTemplates::load(std::path::Path::new("/nonexistent/shoulder-templates"))
            .expect("the built-in templates load")
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
        let email = delivery.outgoing(&built_in()).expect("readable");
        assert_eq!(email.to_name.as_deref(), Some("Ada \"Countess\""));
        assert_eq!(email.headers, headers);
        assert_eq!(email.message_key, "d-00");

        delivery.headers_json = headers_json(None, &headers);
        let email = delivery.outgoing(&built_in()).expect("readable");
        assert_eq!((email.to_name, email.headers), (None, headers));

        assert_eq!(headers_json(None, &[]), None);
        delivery.headers_json = None;
        assert!(
            delivery
                .outgoing(&built_in())
                .expect("readable")
                .headers
                .is_empty()
        );
    }

    #[test]
    fn unreadable_rows_are_bad_data_not_worth_retrying() {
        let mut delivery = claimed_at(at("2027-03-01 09:00:00"), 1);
        delivery.headers_json = Some("{not json".into());
        let error = delivery.outgoing(&built_in()).expect_err("bad headers");
        assert!(matches!(error, SendError::Message(_)), "{error:?}");
        let mut delivery = claimed_at(at("2027-03-01 09:00:00"), 1);
        delivery.to_address = "not an address".into();
        assert!(
            !delivery
                .outgoing(&built_in())
                .expect_err("bad address")
                .is_retryable()
        );
    }

    #[test]
    fn a_stored_context_is_rendered_with_its_kinds_templates_when_sent() {
        let mut delivery = claimed_at(at("2027-03-01 09:00:00"), 1);
        delivery.context_json = Some(
            serde_json::json!({"public_url": "https://circles.example.org", "sent_at": "<b>9:00</b>"})
                .to_string(),
        );
        let email = delivery.outgoing(&built_in()).expect("renders");
        assert!(
            email.content.subject.starts_with("Shoulder test email"),
            "{}",
            email.content.subject
        );
        assert!(email.content.text.contains("https://circles.example.org"));
        assert!(
            email.content.html.contains("&lt;b&gt;9:00"),
            "{}",
            email.content.html
        );

        delivery.context_json = Some("[not a context".into());
        let error = delivery.outgoing(&built_in()).expect_err("bad context");
        assert!(matches!(error, SendError::Message(_)), "{error:?}");

        delivery.kind = "no_such_kind".into();
        delivery.context_json = Some("{}".into());
        let error = delivery.outgoing(&built_in()).expect_err("no templates");
        assert!(matches!(error, SendError::Message(_)), "{error:?}");

        delivery.context_json = None;
        delivery.rendered = None;
        let error = delivery.outgoing(&built_in()).expect_err("no words");
        assert!(matches!(error, SendError::Message(_)), "{error:?}");
    }

    #[test]
    fn message_keys_are_fresh_and_128_bits() {
        let (a, b) = (random_hex_key("d-"), random_hex_key("d-"));
        assert_ne!(a, b);
        assert_eq!(a.len(), 2 + 16 + 32);
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

/// `deliveries.status IN ('failed', 'suppressed')`, for the failures on every
/// facilitator's view of the circle page. As an `IN` list SQLite reads only
/// the failures, through the index by membership and status; as two
/// comparisons joined by `OR` it may seek by status alone, across every
/// circle. diesel prepares an `IN` list from `eq_any`, or one written with
/// `dsl::sql`, anew on every run; this type's SQL never changes, so its
/// statement stays prepared.
#[derive(Debug, Clone, Copy, diesel::query_builder::QueryId)]
struct DidNotArrive;

impl Expression for DidNotArrive {
    type SqlType = diesel::sql_types::Bool;
}

impl<QS> AppearsOnTable<QS> for DidNotArrive where deliveries::status: AppearsOnTable<QS> {}

impl diesel::expression::ValidGrouping<()> for DidNotArrive {
    type IsAggregate = diesel::expression::is_aggregate::Never;
}

impl<DB: diesel::backend::Backend> diesel::query_builder::QueryFragment<DB> for DidNotArrive {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, DB>,
    ) -> QueryResult<()> {
        for part in [
            "deliveries.status IN ('",
            status::FAILED,
            "', '",
            status::SUPPRESSED,
            "')",
        ] {
            out.push_sql(part);
        }
        Ok(())
    }
}

/// The circle's most recent failed or suppressed emails, newest first.
pub fn list_failures_for_circle(
    conn: &mut DbConnection,
    circle_id: i64,
    limit: i64,
) -> Result<Vec<FailedDelivery>, DbError> {
    use crate::db::schema::{memberships, people};
    let query = deliveries::table
        .inner_join(memberships::table.on(deliveries::membership_id.eq(memberships::id.nullable())))
        .inner_join(people::table.on(memberships::person_id.eq(people::id)))
        .filter(memberships::circle_id.eq(circle_id))
        .filter(DidNotArrive)
        .order(deliveries::created_at.desc())
        .limit(limit)
        .select((
            people::display_name,
            deliveries::kind,
            deliveries::status,
            deliveries::last_error,
            deliveries::created_at,
        ));
    let rows = natively!(conn, |conn| query.load::<(
        String,
        String,
        String,
        Option<String>,
        NaiveDateTime
    )>(conn))?;
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
