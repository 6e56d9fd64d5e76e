//! Rounds: opening them on each circle's cadence, reminding, closing, and
//! the emails each step sends.
//!
//! Every step is a conditional change in one transaction, safe to run on
//! several instances at once. Correctness rests on unique keys, not on who
//! runs first: one round per circle and slot, one delivery per round,
//! member and kind. See `open` for the catch-up and DST rules.

pub mod actions;
pub mod away;
pub mod check_in;
pub mod content;
pub mod history;
pub mod lifecycle;
pub mod links;
pub mod notes;
pub mod open;
pub mod own_hour;
pub mod pairing;
pub mod reflections;
pub mod standing;
pub mod support;
pub mod uptime;
pub mod writes;

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;

use crate::db::schema::rounds;
use crate::db::{DbConnection, DbError, natively};

/// What a scheduler pass needs besides the database.
#[derive(Debug, Clone)]
pub struct RoundSettings {
    /// A missed round older than this is skipped rather than opened late.
    pub catch_up_grace: Duration,
    /// How long before a round closes its reminder goes out.
    pub reminder_before_close: Duration,
    /// Rounds reminded or closed on one connection before it goes back to
    /// the pool; a pass goes on until none is due.
    pub batch_size: i64,
    pub public_base: String,
    /// Where circles' `List-Id`s live (see `mail::headers::list_namespace`).
    pub list_namespace: String,
    /// `inbound.reply_address`: check-ins and reminders get a Reply-To with
    /// a key of their own in place of `{key}`; empty, none.
    pub reply_address: String,
}

impl RoundSettings {
    pub fn from_config(config: &crate::config::Config) -> RoundSettings {
        RoundSettings {
            catch_up_grace: Duration::minutes(i64::from(config.scheduler.catch_up_grace_minutes)),
            reminder_before_close: Duration::hours(i64::from(
                config.rounds.reminder_before_close_hours,
            )),
            batch_size: i64::from(config.scheduler.batch_size),
            public_base: config.public_base().to_string(),
            list_namespace: crate::mail::headers::list_namespace(&config.server.public_url),
            reply_address: config.inbound.reply_address.clone(),
        }
    }
}

/// The format of `rounds.slot`: the intended local date-time, to the minute.
pub const SLOT_FORMAT: &str = "%Y-%m-%dT%H:%M";

/// What one pass did to rounds.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RoundReport {
    /// (circle id, round number) of each round opened.
    pub opened: Vec<(i64, i32)>,
    /// Missed slots not opened because they were too old or superseded.
    pub skipped: usize,
    /// Circles paused because their schedule or deck no longer works.
    pub paused: Vec<i64>,
    pub reminded: usize,
    pub closed: usize,
}

impl RoundReport {
    pub fn is_empty(&self) -> bool {
        *self == RoundReport::default()
    }
}

/// A round as its page shows it.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = rounds)]
pub struct Round {
    pub id: i64,
    pub number: i32,
    pub slot: String,
    #[diesel(column_name = prompt_question)]
    pub question: String,
    #[diesel(column_name = prompt_follow_up)]
    pub follow_up: Option<String>,
    pub opened_at: NaiveDateTime,
    pub closes_at: NaiveDateTime,
    pub closed_at: Option<NaiveDateTime>,
}

/// Round `number` of a circle. Callers check membership first.
pub fn find_by_number(
    conn: &mut DbConnection,
    circle_id: i64,
    number: i32,
) -> Result<Option<Round>, DbError> {
    Ok(rounds::table
        .filter(rounds::circle_id.eq(circle_id))
        .filter(rounds::number.eq(number))
        .select(Round::as_select())
        .first(conn)
        .optional()?)
}

/// A round as the circle page lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoundSummary {
    pub number: i32,
    pub question: String,
    pub open: bool,
}

/// A circle's rounds, newest first, as its page lists them. Only what the
/// list shows is read: a timestamp is text in SQLite, parsed on every read.
pub fn list_for_circle(
    conn: &mut DbConnection,
    circle_id: i64,
    limit: i64,
) -> Result<Vec<RoundSummary>, DbError> {
    let query = rounds::table
        .filter(rounds::circle_id.eq(circle_id))
        .order(rounds::number.desc())
        .limit(limit)
        .select((
            rounds::number,
            rounds::prompt_question,
            rounds::closed_at.is_null(),
        ));
    // On every circle page.
    let rows = natively!(conn, |conn| query.load::<(i32, String, bool)>(conn))?;
    Ok(rows
        .into_iter()
        .map(|(number, question, open)| RoundSummary {
            number,
            question,
            open,
        })
        .collect())
}

/// What a circle's page says about how its latest rounds were scheduled:
/// a round that opened late and why, and slots that got no round.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScheduleNotes {
    pub late: Option<LateOpening>,
    pub skipped: Option<SkippedSlots>,
}

/// The latest round, when it opened over a minute after its slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LateOpening {
    pub number: i32,
    /// The local date-time it was meant for.
    pub slot: NaiveDateTime,
    pub opened_at: NaiveDateTime,
    /// `busy` or `downtime`.
    pub because: String,
}

/// The latest run of skipped slots, when nothing opened since.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedSlots {
    pub first: NaiveDateTime,
    pub last: NaiveDateTime,
    pub count: i32,
    /// `downtime` or `superseded`.
    pub because: String,
}

/// Reads [`ScheduleNotes`] for a circle: two reads of one row each.
pub fn schedule_notes(conn: &mut DbConnection, circle_id: i64) -> Result<ScheduleNotes, DbError> {
    use crate::db::schema::skipped_rounds;
    let slot = |text: &str| NaiveDateTime::parse_from_str(text, SLOT_FORMAT).ok();
    let latest: Option<(i32, String, NaiveDateTime, Option<String>)> = rounds::table
        .filter(rounds::circle_id.eq(circle_id))
        .order(rounds::number.desc())
        .select((
            rounds::number,
            rounds::slot,
            rounds::opened_at,
            rounds::late_because,
        ))
        .first(conn)
        .optional()?;
    let opened_at = latest.as_ref().map(|round| round.2);
    let late = latest.and_then(|(number, text, opened_at, because)| {
        Some(LateOpening {
            number,
            slot: slot(&text)?,
            opened_at,
            because: because?,
        })
    });
    let skipped: Option<(String, String, i32, String)> = skipped_rounds::table
        .filter(skipped_rounds::circle_id.eq(circle_id))
        .filter(
            skipped_rounds::recorded_at
                .ge(opened_at.unwrap_or(chrono::DateTime::UNIX_EPOCH.naive_utc())),
        )
        .order(skipped_rounds::recorded_at.desc())
        .select((
            skipped_rounds::first_slot,
            skipped_rounds::last_slot,
            skipped_rounds::count,
            skipped_rounds::because,
        ))
        .first(conn)
        .optional()?;
    let skipped = skipped.and_then(|(first, last, count, because)| {
        Some(SkippedSlots {
            first: slot(&first)?,
            last: slot(&last)?,
            count,
            because,
        })
    });
    Ok(ScheduleNotes { late, skipped })
}
