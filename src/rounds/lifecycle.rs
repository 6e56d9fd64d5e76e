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

use super::away;
use super::content::{self, RoundFacts};
use super::open::{Recipient, recipients};
use super::writes::Writes;
use super::{RoundReport, RoundSettings, SLOT_FORMAT};
use crate::auth::Token;
use crate::circles::unsubscribe;
use crate::clock;
use crate::db::schema::{check_ins, circles, rounds};
use crate::db::{DbConnection, DbError, write_transaction};
use crate::mail::outbox::{EmailContext, NewEmail};
use crate::mail::{EmailAddress, headers};
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

impl RoundRow {
    fn facts(&self) -> RoundFacts {
        RoundFacts {
            id: self.id,
            circle_id: self.circle_id,
            number: self.number,
            closes_at: self.closes_at,
            day: slot_day(&self.slot),
        }
    }
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

/// A round email's context: whom it is to, and what `content` says.
#[derive(Serialize)]
struct Addressed<'a, C> {
    name: &'a str,
    unsubscribe_url: &'a str,
    /// Whether a reply to this email is read (see [`crate::inbound`]).
    reply: bool,
    #[serde(flatten)]
    content: C,
}

/// Where round mail is written from.
pub(super) struct Writer<'a> {
    pub public_base: &'a str,
    pub list_namespace: &'a str,
    /// See [`RoundSettings::reply_address`]; `None` when replies are off.
    pub reply_address: Option<&'a str>,
}

impl<'a> Writer<'a> {
    pub fn of(settings: &'a RoundSettings) -> Writer<'a> {
        Writer {
            public_base: &settings.public_base,
            list_namespace: &settings.list_namespace,
            reply_address: Some(settings.reply_address.as_str()).filter(|a| !a.is_empty()),
        }
    }

    /// The `List-Id` of a circle's mail.
    pub fn list_id(&self, circle_id: i64, circle_name: &str) -> String {
        headers::list_id(circle_id, circle_name, self.list_namespace)
    }
}

/// Which email of a round, and when it may be sent.
pub(super) struct RoundEmail {
    pub kind: &'static str,
    /// `None`: at once.
    pub send_at: Option<NaiveDateTime>,
}

impl RoundEmail {
    pub fn at_once(kind: &'static str) -> RoundEmail {
        RoundEmail {
            kind,
            send_at: None,
        }
    }
}

/// Adds `kind` for one member to `writes` for the outbox. The email gets a
/// key of its own, a round link, which its unsubscribe link and any
/// one-click choices name; `content` builds the member's own parts of it
/// around that key. `list_id` names the circle (see [`Writer::list_id`]).
pub(super) fn mail_member<C: Serialize>(
    writes: &mut Writes,
    writer: &Writer<'_>,
    round_id: i64,
    list_id: &str,
    member: &Recipient,
    email: RoundEmail,
    content: impl FnOnce(&Token) -> Result<C, DbError>,
) -> Result<(), DbError> {
    let RoundEmail { kind, send_at } = email;
    let Ok(to) = EmailAddress::parse(&member.email) else {
        tracing::warn!(
            membership.id = member.membership_id,
            "member has an unusable address"
        );
        return Ok(());
    };
    // Check-ins and reminders can be answered by replying; a digest
    // closes its round and asks nothing.
    let reply_address = writer
        .reply_address
        .filter(|_| kind == "check_in" || kind == "reminder");
    let (key, reply_key) =
        writes.round_link(round_id, member.membership_id, reply_address.is_some());
    let unsubscribe_url = unsubscribe::link(writer.public_base, &key);
    let context = EmailContext::of(&Addressed {
        name: &member.name,
        unsubscribe_url: &unsubscribe_url,
        reply: reply_key.is_some(),
        content: content(&key)?,
    })?;
    writes.email(NewEmail {
        send_at,
        kind,
        to,
        to_name: Some(member.name.clone()),
        round_id: Some(round_id),
        membership_id: Some(member.membership_id),
        context,
        headers: {
            let mut headers = unsubscribe::headers(&unsubscribe_url);
            headers.push((headers::LIST_ID.to_string(), list_id.to_string()));
            if let (Some(address), Some(key)) = (reply_address, &reply_key) {
                headers.push((
                    "Reply-To".to_string(),
                    address.replace("{key}", key.as_str()),
                ));
            }
            headers
        },
    });
    Ok(())
}

/// Sends due reminders and closes due rounds, up to the settings'
/// `batch_size` of each; returns whether more of either may be due.
pub fn advance(
    conn: &mut DbConnection,
    settings: &RoundSettings,
    now: DateTime<Utc>,
    report: &mut RoundReport,
) -> Result<bool, OpenError> {
    let at = now.naive_utc();
    let due_reminders: Vec<i64> = rounds::table
        .filter(rounds::reminded_at.is_null())
        .filter(rounds::closed_at.is_null())
        .filter(rounds::reminder_at.le(at))
        // A round already due to close gets its digest, not a late nudge.
        .filter(rounds::closes_at.gt(at))
        .order(rounds::reminder_at.asc())
        .limit(settings.batch_size)
        .select(rounds::id)
        .load(conn)?;
    // Each one looked at is reminded or closed here, or was by another
    // instance just now, so a full batch is the only sign of more.
    let mut more_due = due_reminders.len() >= usize::try_from(settings.batch_size).unwrap_or(0);
    for round_id in due_reminders {
        if remind(conn, settings, round_id, now)? {
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
    more_due |= due_closes.len() >= usize::try_from(settings.batch_size).unwrap_or(0);
    for round_id in due_closes {
        if close(conn, settings, round_id, now)? {
            report.closed += 1;
        }
    }
    Ok(more_due)
}

fn remind(
    conn: &mut DbConnection,
    settings: &RoundSettings,
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
        let circle_zone = clock::zone_or_utc(&round.time_zone);
        let closes = clock::local_text_short(round.closes_at.and_utc(), circle_zone);
        let writer = Writer::of(settings);
        let list_id = writer.list_id(round.circle_id, &round.circle_name);
        let facts = round.facts();
        let skipping = away::skipping(conn, round_id)?;
        let reported = content::reported_in(conn, &facts)?;
        let mut writes = Writes::default();
        for member in recipients(conn, round.circle_id, facts.day)? {
            if done.contains(&member.membership_id) || skipping.contains(&member.membership_id) {
                continue;
            }
            mail_member(
                &mut writes,
                &writer,
                round_id,
                &list_id,
                &member,
                RoundEmail::at_once("reminder"),
                |key| {
                    let mut context = content::reminder(
                        conn,
                        key,
                        &facts,
                        &reported,
                        member.membership_id,
                        &settings.public_base,
                    )?;
                    context["circle"] = json!(round.circle_name);
                    context["number"] = json!(round.number);
                    context["question"] = json!(round.question);
                    context["closes"] = json!(member.time_zone.map_or_else(
                        || closes.clone(),
                        |zone| clock::local_text_for(round.closes_at.and_utc(), circle_zone, zone)
                    ));
                    Ok(context)
                },
            )?;
        }
        writes.insert(conn, at)?;
        Ok(true)
    })
}

fn close(
    conn: &mut DbConnection,
    settings: &RoundSettings,
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
        let facts = round.facts();
        let round_url = format!(
            "{}/circles/{}/rounds/{}",
            settings.public_base, round.circle_id, round.number
        );
        let writer = Writer::of(settings);
        let list_id = writer.list_id(round.circle_id, &round.circle_name);
        let mut context = content::digest(conn, &facts)?;
        context["circle"] = json!(round.circle_name);
        context["number"] = json!(round.number);
        context["question"] = json!(round.question);
        context["round_url"] = json!(round_url);
        let mut writes = Writes::default();
        for member in recipients(conn, round.circle_id, facts.day)? {
            mail_member(
                &mut writes,
                &writer,
                round_id,
                &list_id,
                &member,
                RoundEmail::at_once("digest"),
                |_| Ok(&context),
            )?;
        }
        writes.insert(conn, at)?;
        tracing::info!(
            circle.id = round.circle_id,
            round.number = round.number,
            "round closed"
        );
        Ok(true)
    })
}
