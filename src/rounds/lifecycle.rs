//! After a round opens: one reminder before it closes, to those who have
//! not checked in, and at close a digest to the whole circle.
//!
//! Each step first marks the round (`reminded_at`, `closed_at`) with a
//! conditional update, so only one instance goes on to queue the emails;
//! and the emails' unique (round, member, kind) key would stop a second
//! copy even if two did.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use serde_json::json;

use super::open::{Recipient, recipients};
use super::{RoundReport, RoundSettings, SLOT_FORMAT};
use crate::circles::unsubscribe;
use crate::db::schema::{away_periods, check_ins, circles, memberships, people, rounds};
use crate::db::{DbConnection, DbError, write_transaction};
use crate::mail::outbox::{self, NewEmail};
use crate::mail::{EmailAddress, EmailTemplates};
use crate::rounds::open::OpenError;

/// A round as the reminder and digest need it.
#[derive(Debug, Clone, Queryable)]
struct RoundRow {
    id: i64,
    circle_id: i64,
    number: i32,
    slot: String,
    question: String,
    closes_at: NaiveDateTime,
    circle_name: String,
    time_zone: String,
}

fn load_round(conn: &mut DbConnection, round_id: i64) -> Result<RoundRow, DbError> {
    Ok(rounds::table
        .inner_join(circles::table)
        .filter(rounds::id.eq(round_id))
        .select((
            rounds::id,
            rounds::circle_id,
            rounds::number,
            rounds::slot,
            rounds::prompt_question,
            rounds::closes_at,
            circles::name,
            circles::time_zone,
        ))
        .first(conn)?)
}

fn slot_day(slot: &str) -> NaiveDate {
    NaiveDateTime::parse_from_str(slot, SLOT_FORMAT)
        .map(|at| at.date())
        .unwrap_or_default()
}

fn checked_in(conn: &mut DbConnection, round_id: i64) -> Result<Vec<i64>, DbError> {
    Ok(check_ins::table
        .filter(check_ins::round_id.eq(round_id))
        .select(check_ins::membership_id)
        .load(conn)?)
}

/// Where round mail is written from.
struct Writer<'a> {
    templates: &'a EmailTemplates,
    public_base: &'a str,
}

/// Renders `kind` for one member, with an unsubscribe link of their own,
/// and puts it in the outbox.
fn mail_member(
    conn: &mut DbConnection,
    writer: &Writer<'_>,
    round: &RoundRow,
    member: &Recipient,
    kind: &'static str,
    mut context: serde_json::Value,
    now: NaiveDateTime,
) -> Result<(), OpenError> {
    let Ok(to) = EmailAddress::parse(&member.email) else {
        tracing::warn!(
            membership.id = member.membership_id,
            "member has an unusable address"
        );
        return Ok(());
    };
    let token = unsubscribe::issue_link(conn, member.membership_id, now)?;
    let unsubscribe_url = unsubscribe::link(writer.public_base, &token);
    context["name"] = json!(member.name);
    context["unsubscribe_url"] = json!(unsubscribe_url);
    let content = writer.templates.render(kind, &context)?;
    outbox::enqueue(
        conn,
        now,
        &NewEmail {
            kind,
            to,
            to_name: Some(member.name.clone()),
            round_id: Some(round.id),
            membership_id: Some(member.membership_id),
            content,
            headers: unsubscribe::headers(&unsubscribe_url),
        },
    )?;
    Ok(())
}

/// Sends due reminders and closes due rounds.
pub fn advance(
    conn: &mut DbConnection,
    settings: &RoundSettings,
    templates: &EmailTemplates,
    now: DateTime<Utc>,
    report: &mut RoundReport,
) -> Result<(), OpenError> {
    let at = now.naive_utc();
    let due_reminders: Vec<i64> = rounds::table
        .filter(rounds::reminded_at.is_null())
        .filter(rounds::closed_at.is_null())
        .filter(rounds::reminder_at.le(at))
        .order(rounds::reminder_at.asc())
        .limit(settings.batch_size)
        .select(rounds::id)
        .load(conn)?;
    for round_id in due_reminders {
        if remind(conn, settings, templates, round_id, now)? {
            report.reminded += 1;
        }
    }
    let due_closes: Vec<i64> = rounds::table
        .filter(rounds::closed_at.is_null())
        .filter(rounds::closes_at.le(at))
        .order(rounds::closes_at.asc())
        .limit(settings.batch_size)
        .select(rounds::id)
        .load(conn)?;
    for round_id in due_closes {
        if close(conn, settings, templates, round_id, now)? {
            report.closed += 1;
        }
    }
    Ok(())
}

fn remind(
    conn: &mut DbConnection,
    settings: &RoundSettings,
    templates: &EmailTemplates,
    round_id: i64,
    now: DateTime<Utc>,
) -> Result<bool, OpenError> {
    let at = now.naive_utc();
    write_transaction(conn, |conn| {
        let marked = diesel::update(
            rounds::table
                .filter(rounds::id.eq(round_id))
                .filter(rounds::reminded_at.is_null()),
        )
        .set(rounds::reminded_at.eq(at))
        .execute(conn)?;
        if marked != 1 {
            return Ok(false);
        }
        let round = load_round(conn, round_id)?;
        let done = checked_in(conn, round_id)?;
        let zone = round
            .time_zone
            .parse::<chrono_tz::Tz>()
            .unwrap_or(chrono_tz::UTC);
        let closes = round
            .closes_at
            .and_utc()
            .with_timezone(&zone)
            .format("%A %-d %B, %H:%M %Z")
            .to_string();
        let round_url = format!(
            "{}/circles/{}/rounds/{}",
            settings.public_base, round.circle_id, round.number
        );
        let writer = Writer {
            templates,
            public_base: &settings.public_base,
        };
        let context = json!({
            "circle": round.circle_name,
            "number": round.number,
            "question": round.question,
            "round_url": round_url,
            "closes": closes,
        });
        for member in recipients(conn, round.circle_id, slot_day(&round.slot))? {
            if done.contains(&member.membership_id) {
                continue;
            }
            mail_member(
                conn,
                &writer,
                &round,
                &member,
                "reminder",
                context.clone(),
                at,
            )?;
        }
        Ok(true)
    })
}

/// One line of the digest.
#[derive(Serialize)]
struct DigestLine {
    name: String,
    /// "checked in", "away", or "no check-in this round": never "missed".
    status: &'static str,
}

fn close(
    conn: &mut DbConnection,
    settings: &RoundSettings,
    templates: &EmailTemplates,
    round_id: i64,
    now: DateTime<Utc>,
) -> Result<bool, OpenError> {
    let at = now.naive_utc();
    write_transaction(conn, |conn| {
        let marked = diesel::update(
            rounds::table
                .filter(rounds::id.eq(round_id))
                .filter(rounds::closed_at.is_null()),
        )
        .set(rounds::closed_at.eq(at))
        .execute(conn)?;
        if marked != 1 {
            return Ok(false);
        }
        let round = load_round(conn, round_id)?;
        let day = slot_day(&round.slot);
        let done = checked_in(conn, round_id)?;
        let away: Vec<i64> = away_periods::table
            .filter(away_periods::starts_on.le(day))
            .filter(away_periods::ends_on.ge(day))
            .select(away_periods::membership_id)
            .load(conn)?;
        let members: Vec<(i64, String)> = memberships::table
            .inner_join(people::table)
            .filter(memberships::circle_id.eq(round.circle_id))
            .filter(memberships::status.eq("active"))
            .order(people::display_name.asc())
            .select((memberships::id, people::display_name))
            .load(conn)?;
        let lines: Vec<DigestLine> = members
            .into_iter()
            .map(|(id, name)| DigestLine {
                name,
                status: if done.contains(&id) {
                    "checked in"
                } else if away.contains(&id) {
                    "away"
                } else {
                    "no check-in this round"
                },
            })
            .collect();
        let round_url = format!(
            "{}/circles/{}/rounds/{}",
            settings.public_base, round.circle_id, round.number
        );
        let writer = Writer {
            templates,
            public_base: &settings.public_base,
        };
        let context = json!({
            "circle": round.circle_name,
            "number": round.number,
            "question": round.question,
            "round_url": round_url,
            "members": lines,
        });
        for member in recipients(conn, round.circle_id, day)? {
            mail_member(
                conn,
                &writer,
                &round,
                &member,
                "digest",
                context.clone(),
                at,
            )?;
        }
        tracing::info!(
            circle.id = round.circle_id,
            round.number = round.number,
            "round closed"
        );
        Ok(true)
    })
}
