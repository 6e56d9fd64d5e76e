//! Opening rounds when they are due.
//!
//! A circle's `next_round_at` is the scheduler's only cursor. A pass takes
//! the active circles whose cursor has passed, [`CIRCLES_PER_TRANSACTION`]
//! at a time, and for each batch in one write transaction: picks each
//! circle's slot to open, inserts the rounds (unique on circle and slot, so
//! a second instance finds a slot taken), records the prompts, pairs the
//! members for shouldering up, queues one check-in per member who should
//! get one, and moves the cursors. A batch reads and writes set-wise, a few
//! statements for all its circles, because opening thousands of rounds is
//! otherwise thousands of round trips. On PostgreSQL the batch's circles
//! are locked with `SKIP LOCKED`, so instances running together take
//! different circles; the unique keys decide either way.
//!
//! Catch-up: of a circle's slots since its cursor only the latest may open.
//! It opens however late if a running scheduler found it due in time (its
//! round waited behind other circles'), and otherwise only if the server
//! came back within the grace window (see `uptime`). Older slots are
//! skipped, logged and kept for the circle's page with the reason. The
//! clock moving backwards opens nothing: the cursor only moves forward, and
//! a slot that already has a round cannot get another.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, NaiveDateTime, Utc};
use chrono_tz::Tz;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;

use super::content::{self, RoundFacts};
use super::lifecycle::{RoundEmail, Writer, mail_member};
use super::uptime::Uptime;
use super::writes::Writes;
use super::{RoundReport, RoundSettings, SLOT_FORMAT, notes, own_hour, pairing, support};
use crate::circles::cadence::Occurrence;
use crate::circles::store::{self, Circle, CircleStatus};
use crate::clock;
use crate::db::binds::{Stamp, one_of};
use crate::db::schema::{away_periods, circles, memberships, people, rounds, skipped_rounds};
use crate::db::wal::checkpoints_aside;
use crate::db::{DbConnection, DbError, per_statement, write_transaction};
use crate::prompts::{self, ChosenPrompt, Decks, PromptError};

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for OpenError {
    fn from(error: diesel::result::Error) -> Self {
        OpenError::Db(DbError::Query(error))
    }
}

/// Everything a round opening needs that is not the database.
pub struct Context<'a> {
    pub settings: &'a RoundSettings,
    pub decks: &'a Decks,
    /// When a scheduler was running, to tell downtime from waiting.
    pub uptime: &'a Uptime,
}

/// Circles looked at in one write transaction. Larger batches commit less
/// often; smaller ones hold SQLite's single write lock for less time, so a
/// check-in saved meanwhile waits less. At this size a batch of first
/// rounds of 8 takes a few tens of milliseconds (BENCHMARKS.md).
pub const CIRCLES_PER_TRANSACTION: i64 = 100;

/// Opens everything due at `now`, [`CIRCLES_PER_TRANSACTION`] circles a
/// transaction, until a transaction finds fewer or `stop` says so. Other
/// writers get in between two transactions: on SQLite they take turns for
/// the write lock (see `db::write_transaction`), on PostgreSQL only the
/// batch's own rows are locked. The whole opening runs on this one
/// connection and thread, so its page cache grows once rather than once a
/// batch in a different thread's memory.
pub fn open_due(
    conn: &mut DbConnection,
    context: &Context<'_>,
    now: DateTime<Utc>,
    report: &mut RoundReport,
    stop: &dyn Fn() -> bool,
) -> Result<(), OpenError> {
    with_batch_cache(conn, |conn| {
        checkpoints_aside(conn, |conn| {
            loop {
                let (looked_at, batch) = write_transaction(conn, |conn| {
                    open_batch(conn, context, now, CIRCLES_PER_TRANSACTION)
                })?;
                report.opened.extend(batch.opened);
                report.skipped += batch.skipped;
                report.paused.extend(batch.paused);
                if looked_at < CIRCLES_PER_TRANSACTION || stop() {
                    return Ok(());
                }
            }
        })
    })
}

/// SQLite's page cache, in KiB, while rounds open. A batch's transaction
/// dirties more pages than the default 2 MiB holds (its rows and their
/// index entries, across six tables); SQLite then spills pages to the WAL
/// before the commit, and reads and writes many of them again, which
/// doubled the time of a large opening. The cache grows only as pages are
/// used.
const BATCH_CACHE_KIB: i64 = 64 * 1024;
/// SQLite's default, restored for the connection's next user.
const DEFAULT_CACHE_KIB: i64 = 2000;

/// Runs `work` with the larger page cache on SQLite; shrinking it again
/// afterwards frees the pages.
fn with_batch_cache<T>(
    conn: &mut DbConnection,
    work: impl FnOnce(&mut DbConnection) -> Result<T, OpenError>,
) -> Result<T, OpenError> {
    if !matches!(conn, DbConnection::Sqlite(_)) {
        return work(conn);
    }
    conn.batch_execute(&format!("PRAGMA cache_size = -{BATCH_CACHE_KIB}"))?;
    let result = work(conn);
    let restored = conn.batch_execute(&format!("PRAGMA cache_size = -{DEFAULT_CACHE_KIB}"));
    let value = result?;
    restored?;
    Ok(value)
}
/// Missed slots counted past this are not looked at one by one: a circle
/// whose cursor is that far behind just moves on.
const MAX_MISSED_LOOKED_AT: usize = 10_000;

/// Which slot to open now, and what happens to the ones before it.
struct Plan {
    open: Option<Occurrence>,
    /// Why the slot opens over a minute late, if it does.
    late: Option<Late>,
    /// The missed slots skipped: how many, the first and last, and why.
    skipped: Option<Skipped>,
    /// The cursor's next value: the first occurrence after `now`.
    next: Option<Occurrence>,
}

/// Why a round opened over a minute after its slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Late {
    /// It waited behind other circles' rounds due then.
    Busy,
    /// No scheduler was running at its time.
    Downtime,
}

impl Late {
    pub fn as_str(self) -> &'static str {
        match self {
            Late::Busy => "busy",
            Late::Downtime => "downtime",
        }
    }
}

/// A round opening this much after its slot is late, and says why.
const ON_TIME: chrono::Duration = chrono::Duration::minutes(1);

/// A run of missed slots a circle gets no round for.
struct Skipped {
    count: usize,
    first: Occurrence,
    last: Occurrence,
    /// Missed while no scheduler ran (and too old to open late), rather
    /// than passed over for a later slot already due.
    downtime: bool,
}

impl Skipped {
    fn because(&self) -> &'static str {
        if self.downtime {
            "downtime"
        } else {
            "superseded"
        }
    }
}

/// The catch-up rule. Of the slots from the cursor up to `now`, only the
/// latest may open, and only if a running scheduler found it due within
/// the grace window: a slot whose round waited behind other circles'
/// openings opens however long that took, while one missed while no
/// server ran opens only if the server came back within the window.
fn plan(
    circle: &Circle,
    cadence: &crate::circles::cadence::Cadence,
    zone: Tz,
    now: DateTime<Utc>,
    grace: chrono::Duration,
    uptime: &Uptime,
) -> Plan {
    let next = cadence.next_after(zone, now);
    let Some(cursor) = circle.next_round_at.map(|at| at.and_utc()) else {
        return Plan {
            open: None,
            late: None,
            skipped: None,
            next,
        };
    };
    // Walk the occurrences from the cursor (itself an occurrence, unless the
    // cadence changed since it was set) up to now, keeping the latest.
    let missed_in_downtime = |o: &Occurrence| uptime.first_seen(o.at, now) - o.at > grace;
    let mut first: Option<Occurrence> = None;
    let mut previous: Option<Occurrence> = None;
    let mut latest: Option<Occurrence> = None;
    let mut count = 0usize;
    let mut downtime = false;
    let mut after = cursor - chrono::Duration::seconds(1);
    while let Some(occurrence) = cadence.next_after(zone, after) {
        if occurrence.at > now || count >= MAX_MISSED_LOOKED_AT {
            break;
        }
        after = occurrence.at;
        count += 1;
        first.get_or_insert(occurrence);
        if let Some(earlier) = latest.replace(occurrence) {
            downtime |= missed_in_downtime(&earlier);
            previous = Some(earlier);
        }
    }
    let Some(latest) = latest else {
        return Plan {
            open: None,
            late: None,
            skipped: None,
            next,
        };
    };
    let first = first.unwrap_or(latest);
    if missed_in_downtime(&latest) {
        return Plan {
            open: None,
            late: None,
            skipped: Some(Skipped {
                count,
                first,
                last: latest,
                downtime: true,
            }),
            next,
        };
    }
    let late = (now - latest.at > ON_TIME).then(|| {
        if uptime.first_seen(latest.at, now) - latest.at > ON_TIME {
            Late::Downtime
        } else {
            Late::Busy
        }
    });
    Plan {
        open: Some(latest),
        late,
        skipped: previous.map(|last| Skipped {
            count: count - 1,
            first,
            last,
            downtime,
        }),
        next,
    }
}

/// A circle whose round opens in this batch.
struct Due {
    circle: Circle,
    zone: Tz,
    occurrence: Occurrence,
    next: Option<Occurrence>,
    late: Option<Late>,
    /// Missed slots passed over for this one.
    skipped: Option<Skipped>,
}

/// Looks at up to `limit` due circles in the caller's transaction. Returns
/// how many it looked at, and what it did.
fn open_batch(
    conn: &mut DbConnection,
    context: &Context<'_>,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<(i64, RoundReport), OpenError> {
    let ids = lock_due(conn, now, limit)?;
    let looked_at = i64::try_from(ids.len()).unwrap_or(limit);
    let batch: Vec<Circle> = circles::table
        .filter(one_of(circles::id, &ids))
        .order(circles::id.asc())
        .select(Circle::as_select())
        .load(conn)?;
    let mut report = RoundReport::default();
    let mut cursors = Cursors::default();
    let mut skips = Vec::new();
    let mut due = Vec::new();
    for circle in batch {
        let Some(cursor) = circle.next_round_at else {
            continue;
        };
        let settings = match circle.settings() {
            Ok(settings) => settings,
            Err(problem) => {
                let reason = format!("Its schedule can no longer be read: {problem}");
                pause(conn, &circle, &reason, now)?;
                report.paused.push(circle.id);
                continue;
            }
        };
        let plan = plan(
            &circle,
            &settings.cadence,
            settings.time_zone,
            now,
            context.settings.catch_up_grace,
            context.uptime,
        );
        match plan.open {
            Some(occurrence) => due.push(Due {
                circle,
                zone: settings.time_zone,
                occurrence,
                next: plan.next,
                late: plan.late,
                skipped: plan.skipped,
            }),
            None => {
                if let Some(skipped) = plan.skipped {
                    report.skipped += skipped.count;
                    skips.push((circle.id, skipped));
                }
                cursors.move_to(circle.id, cursor, plan.next);
            }
        }
    }
    let openings = open_rounds(conn, context, &due, now)?;
    for (due, opening) in due.into_iter().zip(openings) {
        let circle = &due.circle;
        match opening {
            Opening::Opened(number) => report.opened.push((circle.id, number)),
            Opening::AlreadyOpen => {}
            Opening::MustPause(reason) => {
                pause(conn, circle, &reason, now)?;
                report.paused.push(circle.id);
                continue;
            }
        }
        if let Some(skipped) = due.skipped {
            report.skipped += skipped.count;
            skips.push((circle.id, skipped));
        }
        if let Some(cursor) = circle.next_round_at {
            cursors.move_to(circle.id, cursor, due.next);
        }
    }
    record_skips(conn, &skips, now)?;
    cursors.write(conn)?;
    Ok((looked_at, report))
}

/// Logs each circle's skipped slots and keeps them for its page.
fn record_skips(
    conn: &mut DbConnection,
    skips: &[(i64, Skipped)],
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    let at = now.naive_utc();
    let rows: Vec<_> = skips
        .iter()
        .map(|(circle_id, skipped)| {
            let (first, last) = (
                skipped.first.slot.format(SLOT_FORMAT).to_string(),
                skipped.last.slot.format(SLOT_FORMAT).to_string(),
            );
            if skipped.downtime {
                tracing::warn!(
                    circle.id = circle_id,
                    skipped = skipped.count,
                    first,
                    last,
                    "missed rounds skipped: no scheduler was running at their time, \
                     and they are too old to open late"
                );
            } else {
                tracing::warn!(
                    circle.id = circle_id,
                    skipped = skipped.count,
                    first,
                    last,
                    "missed rounds skipped: a later round of the circle was already due"
                );
            }
            (
                skipped_rounds::circle_id.eq(*circle_id),
                skipped_rounds::first_slot.eq(first),
                skipped_rounds::last_slot.eq(last),
                skipped_rounds::count.eq(i32::try_from(skipped.count).unwrap_or(i32::MAX)),
                skipped_rounds::because.eq(skipped.because()),
                skipped_rounds::recorded_at.eq(at),
            )
        })
        .collect();
    // Few: only circles whose cursor was behind.
    for row in rows {
        diesel::insert_into(skipped_rounds::table)
            .values(row)
            .execute(conn)?;
    }
    Ok(())
}

/// When the next round of an active circle is due, if any is scheduled.
pub fn next_due(conn: &mut DbConnection) -> Result<Option<NaiveDateTime>, DbError> {
    use diesel::dsl::min;
    Ok(circles::table
        .filter(circles::status.eq(CircleStatus::Active.as_str()))
        .select(min(circles::next_round_at))
        .first(conn)?)
}

/// The ids of up to `limit` due circles, earliest first. On PostgreSQL
/// their rows stay locked until the transaction ends, and rows another
/// instance holds are passed over; on SQLite the write lock taken when the
/// transaction began already keeps other writers out.
fn lock_due(conn: &mut DbConnection, now: DateTime<Utc>, limit: i64) -> Result<Vec<i64>, DbError> {
    let query = circles::table
        .filter(circles::status.eq(CircleStatus::Active.as_str()))
        .filter(circles::next_round_at.le(now.naive_utc()))
        .order(circles::next_round_at.asc())
        .limit(limit)
        .select(circles::id);
    Ok(match conn {
        DbConnection::Postgresql(conn) => query.for_update().skip_locked().load(conn)?,
        DbConnection::Sqlite(conn) => query.load(conn)?,
    })
}

/// New cursor values, grouped so that circles moving from the same instant
/// to the same instant (the usual case: one cadence, one zone) move in one
/// statement.
#[derive(Default)]
struct Cursors(BTreeMap<(NaiveDateTime, Option<NaiveDateTime>), Vec<i64>>);

impl Cursors {
    fn move_to(&mut self, circle_id: i64, from: NaiveDateTime, to: Option<Occurrence>) {
        let to = to.map(|o| o.at.naive_utc());
        self.0.entry((from, to)).or_default().push(circle_id);
    }

    /// The cursor moves only forward, and only from the value we read.
    fn write(self, conn: &mut DbConnection) -> Result<(), DbError> {
        for ((from, to), ids) in self.0 {
            diesel::update(
                circles::table
                    .filter(one_of(circles::id, &ids))
                    .filter(circles::next_round_at.eq(from)),
            )
            .set(circles::next_round_at.eq(to))
            .execute(conn)?;
        }
        Ok(())
    }
}

fn pause(
    conn: &mut DbConnection,
    circle: &Circle,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    tracing::warn!(
        circle.id = circle.id,
        reason,
        "circle paused: its rounds cannot open"
    );
    diesel::update(circles::table.find(circle.id))
        .set((
            circles::status.eq(CircleStatus::Paused.as_str()),
            circles::paused_reason.eq(reason),
            circles::next_round_at.eq(None::<NaiveDateTime>),
            circles::updated_at.eq(now.naive_utc()),
            circles::schedule_version.eq(circles::schedule_version + 1),
        ))
        .execute(conn)?;
    Ok(())
}

#[derive(Insertable)]
#[diesel(table_name = rounds, treat_none_as_default_value = false)]
struct NewRound<'a> {
    circle_id: i64,
    number: i32,
    slot: String,
    prompt_id: &'a str,
    prompt_question: &'a str,
    prompt_follow_up: Option<&'a str>,
    opened_at: Stamp,
    reminder_at: Stamp,
    closes_at: Stamp,
    late_because: Option<&'static str>,
}

/// What trying to open one slot did.
enum Opening {
    Opened(i32),
    /// The slot already has a round (another instance opened it).
    AlreadyOpen,
    /// The circle cannot open rounds as it is; pause it with this reason.
    MustPause(String),
}

/// A round this batch inserts, and what its emails need.
struct NewRoundFacts<'a> {
    due: &'a Due,
    prompt: ChosenPrompt,
    facts: RoundFacts,
    reminder_at: DateTime<Utc>,
    closes_at: DateTime<Utc>,
    /// When the circle's previous round opened: support since then goes in
    /// this round's check-ins.
    support_since: Option<NaiveDateTime>,
}

/// Inserts the batch's rounds and queues their check-ins. One outcome per
/// entry of `due`, in order.
fn open_rounds(
    conn: &mut DbConnection,
    context: &Context<'_>,
    due: &[Due],
    now: DateTime<Utc>,
) -> Result<Vec<Opening>, OpenError> {
    let at = now.naive_utc();
    let ids: Vec<i64> = due.iter().map(|d| d.circle.id).collect();
    let draws: Vec<(i64, &str, Option<&str>)> = due
        .iter()
        .map(|d| {
            let circle = &d.circle;
            (
                circle.id,
                circle.deck.as_str(),
                circle.pinned_prompt_id.as_deref(),
            )
        })
        .collect();
    let prompts = prompts::choose_for_each(conn, context.decks, &draws)?;
    let previous = previous_rounds(conn, &ids)?;
    let mut outcomes = Vec::with_capacity(due.len());
    let mut planned = Vec::new();
    for (due, prompt) in due.iter().zip(prompts) {
        let prompt = match prompt {
            Ok(prompt) => prompt,
            Err(PromptError::UnknownDeck(deck)) => {
                outcomes.push(Opening::MustPause(format!(
                    "Its prompt deck \"{deck}\" no longer exists."
                )));
                continue;
            }
            Err(PromptError::Db(error)) => return Err(error.into()),
        };
        let (number, support_since) = match previous.get(&due.circle.id) {
            Some(&(number, opened_at)) => (number + 1, Some(opened_at)),
            None => (1, None),
        };
        let (reminder_at, closes_at) = timing(context, &due.circle, due, now);
        planned.push(NewRoundFacts {
            due,
            prompt,
            facts: RoundFacts {
                id: 0,
                circle_id: due.circle.id,
                number,
                closes_at: closes_at.naive_utc(),
                day: due.occurrence.slot.date(),
            },
            reminder_at,
            closes_at,
            support_since,
        });
        outcomes.push(Opening::AlreadyOpen);
    }
    let inserted = insert_rounds(conn, &planned, at)?;
    planned.retain_mut(|round| match inserted.get(&round.facts.circle_id) {
        Some(&id) => {
            round.facts.id = id;
            true
        }
        None => false,
    });
    for (due, outcome) in due.iter().zip(outcomes.iter_mut()) {
        if let Some(round) = planned.iter().find(|r| r.facts.circle_id == due.circle.id) {
            *outcome = Opening::Opened(round.facts.number);
        }
    }
    if planned.is_empty() {
        return Ok(outcomes);
    }
    let uses: Vec<(i64, &str, i64)> = planned
        .iter()
        .map(|r| (r.facts.circle_id, r.prompt.id.as_str(), r.facts.id))
        .collect();
    prompts::record_uses(conn, &uses, at)?;
    queue_check_ins(conn, context, &planned, at)?;
    Ok(outcomes)
}

/// When a round opening at `due`'s occurrence reminds and closes: after
/// the circle's round length, or when the next one opens, whichever comes
/// first, and never in the past.
fn timing(
    context: &Context<'_>,
    circle: &Circle,
    due: &Due,
    now: DateTime<Utc>,
) -> (DateTime<Utc>, DateTime<Utc>) {
    let length = chrono::Duration::minutes(i64::from(circle.round_length_minutes));
    let mut closes_at = due.occurrence.at + length;
    if let Some(next) = &due.next {
        closes_at = closes_at.min(next.at);
    }
    let closes_at = closes_at.max(now + chrono::Duration::minutes(1));
    let reminder_at = if context.settings.reminder_before_close < closes_at - now {
        closes_at - context.settings.reminder_before_close
    } else {
        now + (closes_at - now) / 2
    };
    (reminder_at, closes_at)
}

/// For each of `circle_ids` that has rounds: its highest round number and
/// when its latest round opened.
fn previous_rounds(
    conn: &mut DbConnection,
    circle_ids: &[i64],
) -> Result<HashMap<i64, (i32, NaiveDateTime)>, DbError> {
    use diesel::dsl::max;
    let rows: Vec<(i64, Option<i32>, Option<NaiveDateTime>)> = rounds::table
        .filter(one_of(rounds::circle_id, circle_ids))
        .group_by(rounds::circle_id)
        .select((
            rounds::circle_id,
            max(rounds::number),
            max(rounds::opened_at),
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, number, opened_at)| Some((id, (number?, opened_at?))))
        .collect())
}

/// Inserts the rounds and returns the id of each by circle. A circle whose
/// slot already has a round is absent: the unique (circle, slot) key is
/// what decides when two schedulers get here together, and `DO NOTHING`
/// leaves the other's round and this transaction alone.
fn insert_rounds(
    conn: &mut DbConnection,
    planned: &[NewRoundFacts<'_>],
    now: NaiveDateTime,
) -> Result<HashMap<i64, i64>, DbError> {
    let now = Stamp::new(now);
    let rows: Vec<NewRound<'_>> = planned
        .iter()
        .map(|round| NewRound {
            circle_id: round.facts.circle_id,
            number: round.facts.number,
            slot: round.due.occurrence.slot.format(SLOT_FORMAT).to_string(),
            prompt_id: &round.prompt.id,
            prompt_question: &round.prompt.question,
            prompt_follow_up: round.prompt.follow_up.as_deref(),
            opened_at: now,
            reminder_at: Stamp::new(round.reminder_at.naive_utc()),
            closes_at: Stamp::new(round.closes_at.naive_utc()),
            late_because: round.due.late.map(Late::as_str),
        })
        .collect();
    let mut ids = HashMap::new();
    per_statement!(rows, |values| {
        let insert = diesel::insert_into(rounds::table)
            .values(values)
            .on_conflict((rounds::circle_id, rounds::slot))
            .do_nothing()
            .returning((rounds::circle_id, rounds::id));
        let inserted: Vec<(i64, i64)> = match &mut *conn {
            DbConnection::Postgresql(conn) => insert.get_results(conn)?,
            DbConnection::Sqlite(conn) => insert.get_results(conn)?,
        };
        ids.extend(inserted);
    });
    Ok(ids)
}

/// Pairs the members of each new round and writes each one's check-in,
/// reading what the emails need for all the rounds at once.
fn queue_check_ins(
    conn: &mut DbConnection,
    context: &Context<'_>,
    planned: &[NewRoundFacts<'_>],
    now: NaiveDateTime,
) -> Result<(), OpenError> {
    let ids: Vec<i64> = planned.iter().map(|r| r.facts.circle_id).collect();
    let days: Vec<(i64, chrono::NaiveDate)> = planned
        .iter()
        .map(|r| (r.facts.circle_id, r.facts.day))
        .collect();
    let mut members = recipients_in(conn, &days)?;
    let open = support::open_in_circles(conn, &ids)?;
    let mut received: HashMap<i64, Vec<support::ReceivedSupport>> = HashMap::new();
    let mut words_for: HashMap<i64, Vec<notes::ForEmail>> = HashMap::new();
    if let Some(since) = planned.iter().filter_map(|r| r.support_since).min() {
        for row in support::received_in_circles(conn, &ids, since)? {
            received.entry(row.membership_id).or_default().push(row);
        }
        let mut lines = notes::for_emails(conn, &ids, since)?;
        lines.extend(support::answers_for_emails(conn, &ids, since)?);
        lines.sort_by_key(|line| line.at);
        for line in lines {
            words_for.entry(line.membership_id).or_default().push(line);
        }
    }
    let writer = Writer::of(context.settings);
    let mut writes = Writes::default();
    for round in planned {
        let facts = &round.facts;
        let circle = &round.due.circle;
        let list_id = writer.list_id(circle.id, &circle.name);
        let members = members.remove(&circle.id).unwrap_or_default();
        let ids: Vec<i64> = members.iter().map(|m| m.membership_id).collect();
        let pairs = pairing::rotate(&ids, facts.number);
        writes.pairs(facts.id, &pairs);
        let circle_open = open.get(&circle.id).map_or(&[][..], Vec::as_slice);
        let closes = clock::local_text_short(round.closes_at, round.due.zone);
        let words = content::CheckInRound {
            circle: &circle.name,
            number: facts.number,
            question: &round.prompt.question,
            follow_up: round.prompt.follow_up.as_deref(),
            closes: &closes,
        };
        for member in &members {
            let partner = pairs
                .iter()
                .find(|pair| pair.0 == member.membership_id)
                .and_then(|&(_, receiver)| members.iter().find(|m| m.membership_id == receiver))
                .map(|receiver| (receiver.membership_id, receiver.name.as_str()));
            let support = match (round.support_since, received.get(&member.membership_id)) {
                (Some(since), Some(rows)) => rows
                    .iter()
                    .filter(|row| row.created_at >= since)
                    .map(|row| content::Received {
                        from: row.from.clone(),
                        commitment: row.commitment.clone(),
                        body: row.body.clone(),
                    })
                    .collect(),
                _ => Vec::new(),
            };
            let notes = match (round.support_since, words_for.get(&member.membership_id)) {
                (Some(since), Some(lines)) => lines
                    .iter()
                    .filter(|line| line.at >= since)
                    .map(|line| line.line.clone())
                    .collect(),
                _ => Vec::new(),
            };
            // Their own clock beside the circle's, and their own hour.
            let closes_for_them = member
                .time_zone
                .map(|zone| clock::local_text_for(round.closes_at, round.due.zone, zone));
            let words = content::CheckInRound {
                closes: closes_for_them.as_deref().unwrap_or(&closes),
                ..words
            };
            let send_at = member.check_in_at.map(|hour| {
                own_hour::due(
                    now.and_utc(),
                    round.closes_at,
                    hour,
                    member.time_zone.unwrap_or(round.due.zone),
                )
                .naive_utc()
            });
            let member_part = content::CheckInMember {
                membership_id: member.membership_id,
                partner,
                received: support,
                notes,
            };
            mail_member(
                &mut writes,
                &writer,
                facts.id,
                &list_id,
                member,
                RoundEmail {
                    kind: "check_in",
                    send_at: send_at.filter(|at| *at > now),
                },
                |key| {
                    Ok(content::check_in(
                        key,
                        &words,
                        facts,
                        circle_open,
                        member_part,
                        &context.settings.public_base,
                    ))
                },
            )?;
        }
        let slot = round.due.occurrence.slot.format(SLOT_FORMAT);
        let minutes_late = (now.and_utc() - round.due.occurrence.at).num_minutes();
        match round.due.late {
            None => tracing::info!(
                circle.id = circle.id,
                round.number = facts.number,
                %slot,
                "round opened"
            ),
            Some(Late::Busy) => tracing::info!(
                circle.id = circle.id,
                round.number = facts.number,
                %slot,
                minutes_late,
                "round opened late: it waited behind other circles' rounds due then"
            ),
            Some(Late::Downtime) => tracing::info!(
                circle.id = circle.id,
                round.number = facts.number,
                %slot,
                minutes_late,
                "round opened late: no scheduler was running at its time"
            ),
        }
    }
    writes.insert(conn, now)?;
    Ok(())
}

/// A member who gets this round's mail.
pub struct Recipient {
    pub membership_id: i64,
    pub name: String,
    pub email: String,
    /// The zone they read times in, when they chose one.
    pub time_zone: Option<Tz>,
    /// The hour their check-in email arrives, when not at the opening.
    pub check_in_at: Option<chrono::NaiveTime>,
}

/// Active members who have not muted the circle and are not away on `day`
/// (the slot's local date).
pub fn recipients(
    conn: &mut DbConnection,
    circle_id: i64,
    day: chrono::NaiveDate,
) -> Result<Vec<Recipient>, DbError> {
    Ok(recipients_in(conn, &[(circle_id, day)])?
        .remove(&circle_id)
        .unwrap_or_default())
}

/// [`recipients`] of many circles at once, each on its own day, in order
/// of membership; circles nobody gets mail in are absent.
pub fn recipients_in(
    conn: &mut DbConnection,
    circles: &[(i64, chrono::NaiveDate)],
) -> Result<HashMap<i64, Vec<Recipient>>, DbError> {
    let day_of: HashMap<i64, chrono::NaiveDate> = circles.iter().copied().collect();
    let ids: Vec<i64> = day_of.keys().copied().collect();
    let (Some(first), Some(last)) = (
        circles.iter().map(|c| c.1).min(),
        circles.iter().map(|c| c.1).max(),
    ) else {
        return Ok(HashMap::new());
    };
    let away: HashSet<i64> = away_periods::table
        .inner_join(memberships::table)
        .filter(one_of(memberships::circle_id, &ids))
        .filter(away_periods::starts_on.le(last))
        .filter(away_periods::ends_on.ge(first))
        .select((
            memberships::circle_id,
            away_periods::membership_id,
            away_periods::starts_on,
            away_periods::ends_on,
        ))
        .load::<(i64, i64, chrono::NaiveDate, chrono::NaiveDate)>(conn)?
        .into_iter()
        .filter(|(circle_id, _, starts, ends)| {
            day_of
                .get(circle_id)
                .is_some_and(|day| starts <= day && day <= ends)
        })
        .map(|(_, membership_id, _, _)| membership_id)
        .collect();
    let rows = memberships::table
        .inner_join(people::table)
        .filter(one_of(memberships::circle_id, &ids))
        .filter(memberships::status.eq(store::STATUS_ACTIVE))
        .filter(memberships::muted.eq(false))
        .filter(people::deleted_at.is_null())
        .order(memberships::id.asc())
        .select((
            memberships::circle_id,
            memberships::id,
            people::display_name,
            people::email,
            people::time_zone,
            memberships::check_in_at,
        ))
        .load::<(i64, i64, String, String, Option<String>, Option<String>)>(conn)?;
    let mut by_circle: HashMap<i64, Vec<Recipient>> = HashMap::new();
    for (circle_id, membership_id, name, email, zone, hour) in rows {
        if away.contains(&membership_id) {
            continue;
        }
        by_circle.entry(circle_id).or_default().push(Recipient {
            membership_id,
            name,
            email,
            time_zone: zone.and_then(|name| name.parse().ok()),
            check_in_at: hour.and_then(|hour| own_hour::parse(&hour).ok()),
        });
    }
    Ok(by_circle)
}
