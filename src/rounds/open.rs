//! Opening rounds when they are due.
//!
//! A circle's `next_round_at` is the scheduler's only cursor. A pass looks
//! for active circles whose cursor has passed and, for each, in one write
//! transaction: picks the slot to open, inserts the round (unique on circle
//! and slot, so a second instance finds it taken), records the prompt,
//! pairs the members for shouldering up, queues one check-in per member who
//! should get one, and moves the cursor.
//!
//! Catch-up: after downtime only the latest missed slot may open, and only
//! if it is no older than the grace window; older slots are logged as
//! skipped. The clock moving backwards opens nothing: the cursor only moves
//! forward, and a slot that already has a round cannot get another.

use chrono::{DateTime, NaiveDateTime, Utc};
use chrono_tz::Tz;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Nullable, Text, Timestamp};
use serde_json::json;

use super::content::{self, RoundFacts};
use super::lifecycle::{Writer, mail_member};
use super::{RoundReport, RoundSettings, SLOT_FORMAT, pairing};
use crate::circles::cadence::Occurrence;
use crate::circles::store::{self, Circle, CircleStatus};
use crate::clock;
use crate::db::schema::{away_periods, circles, memberships, people, rounds};
use crate::db::{DbConnection, DbError, write_transaction};
use crate::mail::{EmailTemplates, TemplateError};
use crate::prompts::{self, Decks, PromptError};

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Template(#[from] TemplateError),
}

impl From<diesel::result::Error> for OpenError {
    fn from(error: diesel::result::Error) -> Self {
        OpenError::Db(DbError::Query(error))
    }
}

/// What looking at one due circle did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CircleOutcome {
    Opened {
        number: i32,
        skipped: usize,
    },
    /// Every missed slot was too old; the cursor moved on.
    Skipped {
        skipped: usize,
    },
    /// Another instance got there first, or the circle changed meanwhile.
    Nothing,
    Paused {
        reason: String,
    },
}

/// Everything a round opening needs that is not the database.
pub struct Context<'a> {
    pub settings: &'a RoundSettings,
    pub templates: &'a EmailTemplates,
    pub decks: &'a Decks,
}

/// Opens what is due at `now` across all circles.
pub fn open_due(
    conn: &mut DbConnection,
    context: &Context<'_>,
    now: DateTime<Utc>,
    report: &mut RoundReport,
) -> Result<(), OpenError> {
    let due: Vec<i64> = circles::table
        .filter(circles::status.eq(CircleStatus::Active.as_str()))
        .filter(circles::next_round_at.le(now.naive_utc()))
        .order(circles::next_round_at.asc())
        .limit(context.settings.batch_size)
        .select(circles::id)
        .load(conn)?;
    for circle_id in due {
        match open_for_circle(conn, context, circle_id, now)? {
            CircleOutcome::Opened { number, skipped } => {
                report.opened.push((circle_id, number));
                report.skipped += skipped;
            }
            CircleOutcome::Skipped { skipped } => report.skipped += skipped,
            CircleOutcome::Paused { .. } => report.paused.push(circle_id),
            CircleOutcome::Nothing => {}
        }
    }
    Ok(())
}

/// Missed slots counted past this are not looked at one by one: a circle
/// whose cursor is that far behind just moves on.
const MAX_MISSED_LOOKED_AT: usize = 10_000;

/// Which slot to open now, and what happens to the ones before it.
struct Plan {
    open: Option<Occurrence>,
    /// How many missed slots are skipped, and the first and last of them.
    skipped: usize,
    skipped_span: Option<(Occurrence, Occurrence)>,
    /// The cursor's next value: the first occurrence after `now`.
    next: Option<Occurrence>,
}

fn plan(
    circle: &Circle,
    cadence: &crate::circles::cadence::Cadence,
    zone: Tz,
    now: DateTime<Utc>,
    grace: chrono::Duration,
) -> Plan {
    let next = cadence.next_after(zone, now);
    let Some(cursor) = circle.next_round_at.map(|at| at.and_utc()) else {
        return Plan {
            open: None,
            skipped: 0,
            skipped_span: None,
            next,
        };
    };
    // Walk the occurrences from the cursor (itself an occurrence, unless the
    // cadence changed since it was set) up to now, keeping the latest.
    let mut first: Option<Occurrence> = None;
    let mut previous: Option<Occurrence> = None;
    let mut latest: Option<Occurrence> = None;
    let mut count = 0usize;
    let mut after = cursor - chrono::Duration::seconds(1);
    while let Some(occurrence) = cadence.next_after(zone, after) {
        if occurrence.at > now || count >= MAX_MISSED_LOOKED_AT {
            break;
        }
        after = occurrence.at;
        count += 1;
        first.get_or_insert(occurrence);
        previous = latest.replace(occurrence);
    }
    match latest {
        Some(latest) if now - latest.at <= grace => Plan {
            open: Some(latest),
            skipped: count - 1,
            skipped_span: first.zip(previous).filter(|_| count > 1),
            next,
        },
        Some(latest) => Plan {
            open: None,
            skipped: count,
            skipped_span: first.map(|first| (first, latest)),
            next,
        },
        None => Plan {
            open: None,
            skipped: 0,
            skipped_span: None,
            next,
        },
    }
}

/// Looks at one circle inside its own transaction.
pub fn open_for_circle(
    conn: &mut DbConnection,
    context: &Context<'_>,
    circle_id: i64,
    now: DateTime<Utc>,
) -> Result<CircleOutcome, OpenError> {
    write_transaction(conn, |conn| {
        // Another instance opening this circle's round waits here, then sees
        // the cursor it moved and finds nothing due.
        if !store::lock(conn, circle_id)? {
            return Ok(CircleOutcome::Nothing);
        }
        let Some(circle) = store::find(conn, circle_id)? else {
            return Ok(CircleOutcome::Nothing);
        };
        let due = circle.status() == CircleStatus::Active
            && circle.next_round_at.is_some_and(|at| at <= now.naive_utc());
        if !due {
            return Ok(CircleOutcome::Nothing);
        }
        let settings = match circle.settings() {
            Ok(settings) => settings,
            Err(problem) => {
                return pause(
                    conn,
                    &circle,
                    &format!("Its schedule can no longer be read: {problem}"),
                    now,
                );
            }
        };
        let plan = plan(
            &circle,
            &settings.cadence,
            settings.time_zone,
            now,
            context.settings.catch_up_grace,
        );
        if let Some((first, last)) = &plan.skipped_span {
            tracing::warn!(
                circle.id = circle_id,
                skipped = plan.skipped,
                first = %first.slot.format(SLOT_FORMAT),
                last = %last.slot.format(SLOT_FORMAT),
                "missed rounds skipped: too old to open late"
            );
        }
        let opened = match &plan.open {
            Some(occurrence) => open_round(
                conn,
                context,
                &circle,
                settings.time_zone,
                occurrence,
                plan.next.as_ref(),
                now,
            )?,
            None => Opening::AlreadyOpen,
        };
        if let Opening::MustPause(reason) = &opened {
            return pause(conn, &circle, reason, now);
        }
        // The cursor moves only forward, and only from the value we read.
        diesel::update(
            circles::table
                .filter(circles::id.eq(circle_id))
                .filter(circles::next_round_at.eq(circle.next_round_at)),
        )
        .set(circles::next_round_at.eq(plan.next.map(|o| o.at.naive_utc())))
        .execute(conn)?;
        Ok(match opened {
            Opening::Opened(number) => CircleOutcome::Opened {
                number,
                skipped: plan.skipped,
            },
            _ if plan.skipped == 0 => CircleOutcome::Nothing,
            _ => CircleOutcome::Skipped {
                skipped: plan.skipped,
            },
        })
    })
}

fn pause(
    conn: &mut DbConnection,
    circle: &Circle,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<CircleOutcome, OpenError> {
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
        ))
        .execute(conn)?;
    Ok(CircleOutcome::Paused {
        reason: reason.to_string(),
    })
}

#[derive(QueryableByName)]
struct InsertedRound {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// What trying to open one slot did.
enum Opening {
    Opened(i32),
    /// The slot already has a round (another instance opened it).
    AlreadyOpen,
    /// The circle cannot open rounds as it is; pause it with this reason.
    MustPause(String),
}

/// Inserts the round and queues its check-ins.
fn open_round(
    conn: &mut DbConnection,
    context: &Context<'_>,
    circle: &Circle,
    zone: Tz,
    occurrence: &Occurrence,
    next: Option<&Occurrence>,
    now: DateTime<Utc>,
) -> Result<Opening, OpenError> {
    let prompt = match prompts::choose_next(conn, context.decks, circle.id) {
        Ok(prompt) => prompt,
        Err(PromptError::UnknownDeck(deck)) => {
            return Ok(Opening::MustPause(format!(
                "Its prompt deck \"{deck}\" no longer exists."
            )));
        }
        Err(PromptError::Db(error)) => return Err(error.into()),
    };
    let number: i32 = rounds::table
        .filter(rounds::circle_id.eq(circle.id))
        .select(diesel::dsl::max(rounds::number))
        .first::<Option<i32>>(conn)?
        .unwrap_or(0)
        + 1;
    // A round closes after the circle's round length, or when the next one
    // opens, whichever comes first.
    let length = chrono::Duration::minutes(i64::from(circle.round_length_minutes));
    let mut closes_at = occurrence.at + length;
    if let Some(next) = next {
        closes_at = closes_at.min(next.at);
    }
    let closes_at = closes_at.max(now + chrono::Duration::minutes(1));
    let reminder_at = if context.settings.reminder_before_close < closes_at - now {
        closes_at - context.settings.reminder_before_close
    } else {
        now + (closes_at - now) / 2
    };
    let slot = occurrence.slot.format(SLOT_FORMAT).to_string();
    // ON CONFLICT on the inner connection: the unique (circle, slot) key is
    // what decides, when two schedulers reach this line together.
    const INSERT: &str = "INSERT INTO rounds (circle_id, number, slot, prompt_id, prompt_question, \
                          prompt_follow_up, opened_at, reminder_at, closes_at) \
                          VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                          ON CONFLICT (circle_id, slot) DO NOTHING RETURNING id";
    let query = diesel::sql_query(INSERT)
        .bind::<BigInt, _>(circle.id)
        .bind::<Integer, _>(number)
        .bind::<Text, _>(&slot)
        .bind::<Text, _>(&prompt.id)
        .bind::<Text, _>(&prompt.question)
        .bind::<Nullable<Text>, _>(prompt.follow_up.as_deref())
        .bind::<Timestamp, _>(now.naive_utc())
        .bind::<Timestamp, _>(reminder_at.naive_utc())
        .bind::<Timestamp, _>(closes_at.naive_utc());
    let inserted = match conn {
        DbConnection::Postgresql(conn) => query.get_results::<InsertedRound>(conn)?,
        DbConnection::Sqlite(conn) => query.get_results::<InsertedRound>(conn)?,
    };
    let Some(round) = inserted.first() else {
        return Ok(Opening::AlreadyOpen);
    };
    prompts::record_use(conn, circle.id, &prompt.id, round.id, now.naive_utc())?;
    let closes_local = clock::local_text_short(closes_at, zone);
    let facts = RoundFacts {
        id: round.id,
        circle_id: circle.id,
        number,
        closes_at: closes_at.naive_utc(),
        day: occurrence.slot.date(),
    };
    // Support received since the previous round opened goes in this email.
    let support_since: Option<NaiveDateTime> = rounds::table
        .filter(rounds::circle_id.eq(circle.id))
        .filter(rounds::number.lt(number))
        .select(diesel::dsl::max(rounds::opened_at))
        .first(conn)?;
    let members = recipients(conn, circle.id, facts.day)?;
    let ids: Vec<i64> = members.iter().map(|m| m.membership_id).collect();
    pairing::assign(conn, round.id, number, &ids)?;
    let writer = Writer {
        templates: context.templates,
        public_base: &context.settings.public_base,
    };
    let circle_open = content::open_commitments(conn, &facts)?;
    for member in &members {
        let mut mail = content::check_in(
            conn,
            &facts,
            &circle_open,
            member.membership_id,
            support_since,
            &context.settings.public_base,
        )?;
        mail["circle"] = json!(circle.name);
        mail["number"] = json!(number);
        mail["question"] = json!(prompt.question);
        mail["follow_up"] = json!(prompt.follow_up);
        mail["closes"] = json!(closes_local);
        mail_member(
            conn,
            &writer,
            round.id,
            member,
            "check_in",
            mail,
            now.naive_utc(),
        )?;
    }
    tracing::info!(
        circle.id = circle.id,
        round.number = number,
        slot,
        "round opened"
    );
    Ok(Opening::Opened(number))
}

/// A member who gets this round's mail.
pub struct Recipient {
    pub membership_id: i64,
    pub name: String,
    pub email: String,
}

/// Active members who have not muted the circle and are not away on `day`
/// (the slot's local date).
pub fn recipients(
    conn: &mut DbConnection,
    circle_id: i64,
    day: chrono::NaiveDate,
) -> Result<Vec<Recipient>, DbError> {
    let away = away_periods::table
        .filter(away_periods::starts_on.le(day))
        .filter(away_periods::ends_on.ge(day))
        .select(away_periods::membership_id);
    let rows = memberships::table
        .inner_join(people::table)
        .filter(memberships::circle_id.eq(circle_id))
        .filter(memberships::status.eq(store::STATUS_ACTIVE))
        .filter(memberships::muted.eq(false))
        .filter(people::deleted_at.is_null())
        .filter(diesel::dsl::not(memberships::id.eq_any(away)))
        .order(memberships::id.asc())
        .select((memberships::id, people::display_name, people::email))
        .load::<(i64, String, String)>(conn)?;
    Ok(rows
        .into_iter()
        .map(|(membership_id, name, email)| Recipient {
            membership_id,
            name,
            email,
        })
        .collect())
}
