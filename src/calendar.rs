//! Calendars: a person's private feed at `/calendar/<key>.ics` (their
//! circles' open and upcoming rounds, and their away days) and a circle's
//! rounds as a one-off download for its facilitator to share.
//!
//! Times are in UTC. Each round's UID is made of its circle and its slot
//! (the intended local time that is a round's identity), so a calendar
//! program updates an event rather than adding another; `SEQUENCE` is the
//! circle's `schedule_version`, raised whenever its rounds' times may
//! change, so the update wins over what the program holds.

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, Utc};
use diesel::prelude::*;
use icalendar::{Calendar, Component, Event, EventLike};

use crate::auth::Token;
use crate::circles::store::{self, Circle, CircleStatus};
use crate::db::schema::{away_periods, circles, memberships, people, rounds};
use crate::db::{DbConnection, DbError};
use crate::rounds::SLOT_FORMAT;

/// How far ahead upcoming rounds are listed.
pub const WEEKS_AHEAD: i64 = 8;
/// At most this many upcoming rounds per circle (an hourly circle would
/// otherwise fill a calendar).
const UPCOMING_PER_CIRCLE: usize = 60;

/// One round as a calendar shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoundEvent {
    pub circle_id: i64,
    pub circle_name: String,
    /// The round's number once it has opened.
    pub number: Option<i32>,
    pub slot: NaiveDateTime,
    pub opens: DateTime<Utc>,
    pub closes: DateTime<Utc>,
    /// The prompt, once the round has opened.
    pub question: Option<String>,
    pub sequence: i32,
}

/// Days a member is away from a circle, the last one included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwayEvent {
    pub id: i64,
    pub circle_name: String,
    pub starts_on: NaiveDate,
    pub ends_on: NaiveDate,
}

/// The open round and the upcoming ones of each circle in `circle_ids`,
/// in order of opening.
pub fn rounds_of(
    conn: &mut DbConnection,
    circle_ids: &[i64],
    now: DateTime<Utc>,
) -> Result<Vec<RoundEvent>, DbError> {
    let found: Vec<Circle> = circles::table
        .filter(circles::id.eq_any(circle_ids))
        .select(Circle::as_select())
        .load(conn)?;
    let open: Vec<(i64, i32, String, String, NaiveDateTime, NaiveDateTime)> = rounds::table
        .filter(rounds::circle_id.eq_any(circle_ids))
        .filter(rounds::closed_at.is_null())
        .select((
            rounds::circle_id,
            rounds::number,
            rounds::slot,
            rounds::prompt_question,
            rounds::opened_at,
            rounds::closes_at,
        ))
        .load(conn)?;
    let mut events = Vec::new();
    for circle in &found {
        let sequence = circle.schedule_version;
        for (_, number, slot, question, opened, closes) in
            open.iter().filter(|row| row.0 == circle.id)
        {
            let Ok(slot) = NaiveDateTime::parse_from_str(slot, SLOT_FORMAT) else {
                continue;
            };
            events.push(RoundEvent {
                circle_id: circle.id,
                circle_name: circle.name.clone(),
                number: Some(*number),
                slot,
                opens: opened.and_utc(),
                closes: closes.and_utc(),
                question: Some(question.clone()),
                sequence,
            });
        }
        events.extend(upcoming(circle, now));
    }
    events.sort_by_key(|event| (event.opens, event.circle_id));
    Ok(events)
}

/// A circle's rounds still to open within [`WEEKS_AHEAD`]; none while it
/// is paused or archived.
fn upcoming(circle: &Circle, now: DateTime<Utc>) -> Vec<RoundEvent> {
    let (Ok(settings), Some(next), Some(CircleStatus::Active)) = (
        circle.settings(),
        circle.next_round_at,
        CircleStatus::parse(&circle.status),
    ) else {
        return Vec::new();
    };
    let until = now + Duration::weeks(WEEKS_AHEAD);
    let length = Duration::minutes(i64::from(circle.round_length_minutes));
    // From just before the scheduler's next round, which may be due now.
    settings
        .cadence
        .upcoming(
            settings.time_zone,
            next.and_utc() - Duration::seconds(1),
            UPCOMING_PER_CIRCLE,
        )
        .into_iter()
        .take_while(|occurrence| occurrence.at <= until)
        .map(|occurrence| RoundEvent {
            circle_id: circle.id,
            circle_name: circle.name.clone(),
            number: None,
            slot: occurrence.slot,
            opens: occurrence.at,
            closes: occurrence.at + length,
            question: None,
            sequence: circle.schedule_version,
        })
        .collect()
}

/// The calendar of `events` and `away` days; `public_base` makes the links
/// and, by its host, the UIDs.
pub fn render(
    name: &str,
    events: &[RoundEvent],
    away: &[AwayEvent],
    public_base: &str,
    now: DateTime<Utc>,
) -> String {
    // The host of `https://host[:port][/path]`.
    let host = public_base
        .split_once("://")
        .map_or(public_base, |(_, rest)| rest)
        .split(['/', ':'])
        .next()
        .filter(|host| !host.is_empty())
        .unwrap_or("shoulder.invalid");
    let mut calendar = Calendar::new();
    calendar.name(name);
    for event in events {
        let (summary, link, description) = match (event.number, &event.question) {
            (Some(number), Some(question)) => {
                let link = format!("{public_base}/circles/{}/rounds/{number}", event.circle_id);
                (
                    format!("{}: round {number}", event.circle_name),
                    link.clone(),
                    format!("This round's prompt: {question}\n\nCheck in: {link}"),
                )
            }
            _ => {
                let link = format!("{public_base}/circles/{}", event.circle_id);
                (
                    format!("{}: a round", event.circle_name),
                    link.clone(),
                    format!(
                        "The prompt comes by email when the round opens.\n\nThe circle: {link}"
                    ),
                )
            }
        };
        calendar.push(
            Event::new()
                .uid(&format!(
                    "round-{}-{}@{host}",
                    event.circle_id,
                    event.slot.format("%Y%m%dT%H%M")
                ))
                .sequence(u32::try_from(event.sequence).unwrap_or(0))
                .timestamp(now)
                .summary(&summary)
                .description(&description)
                .url(&link)
                .starts(event.opens)
                .ends(event.closes)
                .done(),
        );
    }
    for days in away {
        calendar.push(
            Event::new()
                .uid(&format!("away-{}@{host}", days.id))
                .timestamp(now)
                .summary(&format!("Away from {}", days.circle_name))
                .starts(days.starts_on)
                .ends(days.ends_on.succ_opt().unwrap_or(days.ends_on))
                .done(),
        );
    }
    calendar.done().to_string()
}

/// The person whose feed `key` opens, if it is theirs now.
pub fn person_of_key(conn: &mut DbConnection, key: &str) -> Result<Option<i64>, DbError> {
    let Some(token) = Token::parse(key) else {
        return Ok(None);
    };
    Ok(people::table
        .filter(people::calendar_key_hash.eq(token.hash().as_str()))
        .filter(people::deleted_at.is_null())
        .select(people::id)
        .first(conn)
        .optional()?)
}

/// A new key for the person's feed; the one before stops working.
pub fn replace_key(conn: &mut DbConnection, person_id: i64) -> Result<Token, DbError> {
    let token = Token::generate();
    diesel::update(people::table.find(person_id))
        .set(people::calendar_key_hash.eq(Some(token.hash().as_str())))
        .execute(conn)?;
    Ok(token)
}

/// Whether the person has a feed.
pub fn has_key(conn: &mut DbConnection, person_id: i64) -> Result<bool, DbError> {
    let hash: Option<Option<String>> = people::table
        .find(person_id)
        .select(people::calendar_key_hash)
        .first(conn)
        .optional()?;
    Ok(hash.flatten().is_some())
}

/// The person's feed: every circle they are an active member of, and their
/// away days from today on.
pub fn feed_of(
    conn: &mut DbConnection,
    person_id: i64,
    public_base: &str,
    now: DateTime<Utc>,
) -> Result<String, DbError> {
    let circle_ids: Vec<i64> = memberships::table
        .filter(memberships::person_id.eq(person_id))
        .filter(memberships::status.eq(store::STATUS_ACTIVE))
        .select(memberships::circle_id)
        .load(conn)?;
    let events = rounds_of(conn, &circle_ids, now)?;
    let away = away_periods::table
        .inner_join(memberships::table.inner_join(circles::table))
        .filter(memberships::person_id.eq(person_id))
        .filter(memberships::status.eq(store::STATUS_ACTIVE))
        .filter(away_periods::ends_on.ge(now.date_naive()))
        .order(away_periods::starts_on.asc())
        .select((
            away_periods::id,
            circles::name,
            away_periods::starts_on,
            away_periods::ends_on,
        ))
        .load::<(i64, String, NaiveDate, NaiveDate)>(conn)?
        .into_iter()
        .map(|(id, circle_name, starts_on, ends_on)| AwayEvent {
            id,
            circle_name,
            starts_on,
            ends_on,
        })
        .collect::<Vec<_>>();
    Ok(render("Shoulder", &events, &away, public_base, now))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().expect("an RFC 3339 instant")
    }

    #[test]
    fn events_carry_stable_uids_utc_times_and_escaped_text() {
        let slot = NaiveDateTime::parse_from_str("2027-03-14T02:30", SLOT_FORMAT).expect("slot");
        let round = RoundEvent {
            circle_id: 7,
            circle_name: "Night, shift; crew".into(),
            number: Some(3),
            slot,
            opens: utc("2027-03-14T07:00:00Z"),
            closes: utc("2027-03-16T07:00:00Z"),
            question: Some("Who held you up?\nAnd whom?".into()),
            sequence: 4,
        };
        let away = AwayEvent {
            id: 11,
            circle_name: "Night, shift; crew".into(),
            starts_on: NaiveDate::from_ymd_opt(2027, 3, 20).expect("date"),
            ends_on: NaiveDate::from_ymd_opt(2027, 3, 21).expect("date"),
        };
        let text = render(
            "Shoulder",
            &[round],
            &[away],
            "https://circles.example.org:8443/base",
            utc("2027-03-14T08:00:00Z"),
        );
        let unfolded = text.replace("\r\n ", "");
        for line in [
            "UID:round-7-20270314T0230@circles.example.org",
            "SEQUENCE:4",
            "DTSTART:20270314T070000Z",
            "DTEND:20270316T070000Z",
            "SUMMARY:Night\\, shift\\; crew: round 3",
            "DESCRIPTION:This round's prompt: Who held you up?\\nAnd whom?\\n\\nCheck in: https://circles.example.org:8443/base/circles/7/rounds/3",
            "UID:away-11@circles.example.org",
            "DTSTART;VALUE=DATE:20270320",
            "DTEND;VALUE=DATE:20270322",
        ] {
            assert!(unfolded.contains(line), "{line} in\n{text}");
        }
        assert!(
            text.lines().all(|line| line.len() <= 75),
            "lines folded:\n{text}"
        );
    }
}
