//! A member's check-in email at their own hour. The email is queued when
//! the round opens, like every other, with a later time to be sent; so the
//! rules that make it one per member and round are the opening's.
//!
//! The hour is `HH:MM` in the person's own zone (the circle's when they
//! chose none). It is due at the first such moment at or after the opening
//! while the round is still open, or at the opening when there is none.

use chrono::{DateTime, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use diesel::prelude::*;

use crate::db::schema::{deliveries, memberships, rounds};
use crate::db::{DbConnection, DbError};
use crate::mail::outbox::status;
use crate::rounds::SLOT_FORMAT;

/// Why an hour is refused.
pub const NOT_AN_HOUR: &str = "Give the hour as HH:MM, for example 07:30.";

/// An hour as typed: `HH:MM`, 00:00 to 23:59.
pub fn parse(raw: &str) -> Result<NaiveTime, &'static str> {
    NaiveTime::parse_from_str(raw.trim(), "%H:%M").map_err(|_| NOT_AN_HOUR)
}

/// An hour as stored and shown.
pub fn text(hour: NaiveTime) -> String {
    hour.format("%H:%M").to_string()
}

/// When the check-in email of a round open from `opens` to `closes` is
/// due for someone who wants it at `hour` in `zone`.
pub fn due(
    opens: DateTime<Utc>,
    closes: DateTime<Utc>,
    hour: NaiveTime,
    zone: Tz,
) -> DateTime<Utc> {
    let mut day = opens.with_timezone(&zone).date_naive();
    loop {
        let at = first_moment_at_or_after(day.and_time(hour), zone);
        if at >= closes {
            return opens;
        }
        if at >= opens {
            return at;
        }
        let Some(next) = day.succ_opt() else {
            return opens;
        };
        day = next;
    }
}

/// The first instant at or after the wall-clock time `local` in `zone`:
/// of a time the clocks pass twice, the first; of one they skip, the
/// moment they jump (02:30 on a night that goes from 02:00 to 03:00 is
/// 03:00).
fn first_moment_at_or_after(local: NaiveDateTime, zone: Tz) -> DateTime<Utc> {
    let mut wall = local;
    // The longest jump on record skipped a whole day.
    for _ in 0..=(26 * 60) {
        match zone.from_local_datetime(&wall) {
            LocalResult::Single(at) => return at.with_timezone(&Utc),
            LocalResult::Ambiguous(first, _) => return first.with_timezone(&Utc),
            LocalResult::None => wall += Duration::minutes(1),
        }
    }
    local.and_utc()
}

/// Moves a check-in email still waiting for `membership_id` to their new
/// hour (`None`: when the round opens, so at once). An email already sent,
/// or being sent, is left alone. Returns how many were moved.
pub fn reschedule_waiting(
    conn: &mut DbConnection,
    membership_id: i64,
    hour: Option<NaiveTime>,
    zone: Tz,
    now: DateTime<Utc>,
) -> Result<usize, DbError> {
    let waiting: Vec<(i64, NaiveDateTime, NaiveDateTime)> = deliveries::table
        .inner_join(rounds::table)
        .filter(deliveries::membership_id.eq(membership_id))
        .filter(deliveries::kind.eq("check_in"))
        .filter(deliveries::status.eq(status::PENDING))
        .filter(deliveries::attempts.eq(0))
        .filter(rounds::closed_at.is_null())
        .select((deliveries::id, rounds::opened_at, rounds::closes_at))
        .load(conn)?;
    let mut moved = 0;
    for (id, opened, closes) in waiting {
        let at = match hour {
            Some(hour) => due(opened.and_utc(), closes.and_utc(), hour, zone),
            None => opened.and_utc(),
        }
        .max(now)
        .naive_utc();
        moved += diesel::update(
            deliveries::table
                .filter(deliveries::id.eq(id))
                .filter(deliveries::status.eq(status::PENDING)),
        )
        .set((
            deliveries::next_attempt_at.eq(at),
            deliveries::created_at.eq(at),
        ))
        .execute(conn)?;
    }
    Ok(moved)
}

/// Withdraws a check-in email not yet sent to `membership_id` for
/// `round_id`: they checked in, skipped or went away before it left, so
/// there is nothing left for it to ask. One statement, the same each time,
/// since every check-in saved runs it.
pub fn withdraw_waiting(
    conn: &mut DbConnection,
    membership_id: i64,
    round_id: i64,
) -> Result<usize, DbError> {
    Ok(diesel::delete(
        deliveries::table
            .filter(deliveries::membership_id.eq(membership_id))
            .filter(deliveries::round_id.eq(round_id))
            .filter(deliveries::kind.eq("check_in"))
            .filter(deliveries::status.eq(status::PENDING))
            .filter(deliveries::attempts.eq(0)),
    )
    .execute(conn)?)
}

/// [`withdraw_waiting`] for every round: the member muted the circle.
pub fn withdraw_all_waiting(conn: &mut DbConnection, membership_id: i64) -> Result<usize, DbError> {
    Ok(diesel::delete(
        deliveries::table
            .filter(deliveries::membership_id.eq(membership_id))
            .filter(deliveries::kind.eq("check_in"))
            .filter(deliveries::status.eq(status::PENDING))
            .filter(deliveries::attempts.eq(0)),
    )
    .execute(conn)?)
}

/// [`withdraw_waiting`] for the rounds whose day falls in an away period
/// from `starts_on` to `ends_on`.
pub fn withdraw_waiting_between(
    conn: &mut DbConnection,
    membership_id: i64,
    starts_on: NaiveDate,
    ends_on: NaiveDate,
) -> Result<usize, DbError> {
    let waiting: Vec<(i64, String)> = deliveries::table
        .inner_join(rounds::table)
        .filter(deliveries::membership_id.eq(membership_id))
        .filter(deliveries::kind.eq("check_in"))
        .filter(deliveries::status.eq(status::PENDING))
        .filter(deliveries::attempts.eq(0))
        .select((deliveries::id, rounds::slot))
        .load(conn)?;
    let ids: Vec<i64> = waiting
        .into_iter()
        .filter(|(_, slot)| {
            NaiveDateTime::parse_from_str(slot, SLOT_FORMAT)
                .is_ok_and(|slot| (starts_on..=ends_on).contains(&slot.date()))
        })
        .map(|(id, _)| id)
        .collect();
    if ids.is_empty() {
        return Ok(0);
    }
    Ok(diesel::delete(
        deliveries::table
            .filter(deliveries::id.eq_any(ids))
            .filter(deliveries::status.eq(status::PENDING)),
    )
    .execute(conn)?)
}

/// Keeps a member's hour (`None`: when the round opens).
pub fn set(
    conn: &mut DbConnection,
    membership_id: i64,
    hour: Option<NaiveTime>,
) -> Result<(), DbError> {
    diesel::update(memberships::table.find(membership_id))
        .set(memberships::check_in_at.eq(hour.map(text)))
        .execute(conn)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().expect("an RFC 3339 instant")
    }

    fn hour(text: &str) -> NaiveTime {
        parse(text).expect("an hour")
    }

    #[test]
    fn hours_are_hh_mm() {
        assert_eq!(
            parse(" 07:30 "),
            Ok(NaiveTime::from_hms_opt(7, 30, 0).expect("valid"))
        );
        for bad in ["7.30", "24:00", "07:60", "", "seven"] {
            assert_eq!(parse(bad), Err(NOT_AN_HOUR), "{bad}");
        }
        assert_eq!(text(hour("07:05")), "07:05");
    }

    #[test]
    fn the_first_such_hour_after_the_opening_while_the_round_is_open() {
        let tokyo = chrono_tz::Asia::Tokyo;
        // Opens Monday 09:00 UTC (18:00 in Tokyo), open 48 hours.
        let opens = utc("2027-03-01T09:00:00Z");
        let closes = utc("2027-03-03T09:00:00Z");
        // 20:00 in Tokyo is still to come that evening.
        assert_eq!(
            due(opens, closes, hour("20:00"), tokyo),
            utc("2027-03-01T11:00:00Z")
        );
        // 07:30 has passed on the opening day: the next morning.
        assert_eq!(
            due(opens, closes, hour("07:30"), tokyo),
            utc("2027-03-01T22:30:00Z")
        );
        // The opening minute itself counts.
        assert_eq!(due(opens, closes, hour("18:00"), tokyo), opens);
        // A round that closes before the hour comes: at the opening.
        let short = utc("2027-03-01T10:00:00Z");
        assert_eq!(due(opens, short, hour("20:00"), tokyo), opens);
        assert_eq!(due(opens, short, hour("07:30"), tokyo), opens);
    }

    #[test]
    fn a_skipped_hour_is_the_jump_and_a_doubled_one_the_first() {
        let london = chrono_tz::Europe::London;
        // 28 March 2027: clocks go from 01:00 GMT to 02:00 BST.
        let opens = utc("2027-03-27T12:00:00Z");
        let closes = utc("2027-03-29T12:00:00Z");
        assert_eq!(
            due(opens, closes, hour("01:30"), london),
            utc("2027-03-28T01:00:00Z"),
            "01:30 does not exist that night: the moment the clocks jump"
        );
        // 31 October 2027: 01:00 to 02:00 BST, then 01:00 to 02:00 GMT.
        let opens = utc("2027-10-30T12:00:00Z");
        let closes = utc("2027-11-01T12:00:00Z");
        assert_eq!(
            due(opens, closes, hour("01:30"), london),
            utc("2027-10-31T00:30:00Z"),
            "01:30 happens twice: the first"
        );
        // The day after, an hour later in UTC than before the change.
        let opens = utc("2027-10-31T12:00:00Z");
        let closes = utc("2027-11-02T12:00:00Z");
        assert_eq!(
            due(opens, closes, hour("07:00"), london),
            utc("2027-11-01T07:00:00Z")
        );
    }
}
