//! Stepping back for a while: away dates, and skipping one round.
//!
//! Away dates are whole days in the circle's time zone, both inclusive. A
//! round whose slot falls on an away day sends that member no check-in and
//! no reminder, leaves them out of the shoulder-up pairs, and the digest
//! says they are away. Skipping a round that is already open stops its
//! reminder, and the digest says the same.

use std::collections::BTreeMap;

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Timestamp};

use crate::db::schema::{away_periods, round_skips};
use crate::db::{DbConnection, DbError};
use crate::rounds::own_hour;

/// The longest single away period.
pub const MAX_AWAY_DAYS: i64 = 366;

/// The away form as typed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AwayForm {
    pub starts: String,
    pub ends: String,
}

/// Valid away dates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AwayDates {
    pub starts_on: NaiveDate,
    pub ends_on: NaiveDate,
}

/// Field name -> what is wrong with it.
pub type FieldErrors = BTreeMap<String, String>;

fn parse_day(raw: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d").ok()
}

impl AwayDates {
    /// Dates as a date picker sends them (YYYY-MM-DD); `today` is the
    /// circle's local date.
    pub fn parse(form: &AwayForm, today: NaiveDate) -> Result<AwayDates, FieldErrors> {
        let mut errors = FieldErrors::new();
        let starts = parse_day(&form.starts);
        let ends = parse_day(&form.ends);
        if starts.is_none() {
            errors.insert(
                "away-starts".into(),
                "Give the first day away as a date, like 2027-07-01.".into(),
            );
        }
        if ends.is_none() {
            errors.insert(
                "away-ends".into(),
                "Give the last day away as a date, like 2027-07-14.".into(),
            );
        }
        let (Some(starts_on), Some(ends_on)) = (starts, ends) else {
            return Err(errors);
        };
        if ends_on < starts_on {
            errors.insert(
                "away-ends".into(),
                "The last day away comes before the first.".into(),
            );
        } else if ends_on < today {
            errors.insert("away-ends".into(), "Those days have already passed.".into());
        } else if (ends_on - starts_on).num_days() >= MAX_AWAY_DAYS {
            errors.insert(
                "away-ends".into(),
                format!("Away periods are at most {MAX_AWAY_DAYS} days; add another later if you need to."),
            );
        }
        if errors.is_empty() {
            Ok(AwayDates { starts_on, ends_on })
        } else {
            Err(errors)
        }
    }
}

/// An away period as the member's page lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwayPeriod {
    pub id: i64,
    pub starts_on: NaiveDate,
    pub ends_on: NaiveDate,
}

pub fn add(
    conn: &mut DbConnection,
    membership_id: i64,
    dates: AwayDates,
    now: NaiveDateTime,
) -> Result<(), DbError> {
    diesel::insert_into(away_periods::table)
        .values((
            away_periods::membership_id.eq(membership_id),
            away_periods::starts_on.eq(dates.starts_on),
            away_periods::ends_on.eq(dates.ends_on),
            away_periods::created_at.eq(now),
        ))
        .execute(conn)?;
    own_hour::withdraw_waiting_between(conn, membership_id, dates.starts_on, dates.ends_on)?;
    Ok(())
}

/// Away periods that have not ended by `today`, soonest first.
pub fn upcoming(
    conn: &mut DbConnection,
    membership_id: i64,
    today: NaiveDate,
) -> Result<Vec<AwayPeriod>, DbError> {
    let rows = away_periods::table
        .filter(away_periods::membership_id.eq(membership_id))
        .filter(away_periods::ends_on.ge(today))
        .order(away_periods::starts_on.asc())
        .select((
            away_periods::id,
            away_periods::starts_on,
            away_periods::ends_on,
        ))
        .load::<(i64, NaiveDate, NaiveDate)>(conn)?;
    Ok(rows
        .into_iter()
        .map(|(id, starts_on, ends_on)| AwayPeriod {
            id,
            starts_on,
            ends_on,
        })
        .collect())
}

/// Removes one of the member's own away periods; false if it is not theirs.
pub fn cancel(conn: &mut DbConnection, membership_id: i64, away_id: i64) -> Result<bool, DbError> {
    let removed = diesel::delete(
        away_periods::table
            .filter(away_periods::id.eq(away_id))
            .filter(away_periods::membership_id.eq(membership_id)),
    )
    .execute(conn)?;
    Ok(removed == 1)
}

/// Whether `membership_id` is away on `day`.
pub fn is_away(
    conn: &mut DbConnection,
    membership_id: i64,
    day: NaiveDate,
) -> Result<bool, DbError> {
    Ok(diesel::select(diesel::dsl::exists(
        away_periods::table
            .filter(away_periods::membership_id.eq(membership_id))
            .filter(away_periods::starts_on.le(day))
            .filter(away_periods::ends_on.ge(day)),
    ))
    .get_result(conn)?)
}

/// Skips a round; skipping twice is the same as once.
pub fn skip(
    conn: &mut DbConnection,
    round_id: i64,
    membership_id: i64,
    now: NaiveDateTime,
) -> Result<(), DbError> {
    let query = diesel::sql_query(
        "INSERT INTO round_skips (round_id, membership_id, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (round_id, membership_id) DO NOTHING",
    )
    .bind::<BigInt, _>(round_id)
    .bind::<BigInt, _>(membership_id)
    .bind::<Timestamp, _>(now);
    match conn {
        DbConnection::Postgresql(conn) => query.execute(conn)?,
        DbConnection::Sqlite(conn) => query.execute(conn)?,
    };
    own_hour::withdraw_waiting(conn, membership_id, round_id)?;
    Ok(())
}

/// Takes a skip back.
pub fn unskip(conn: &mut DbConnection, round_id: i64, membership_id: i64) -> Result<(), DbError> {
    diesel::delete(
        round_skips::table
            .filter(round_skips::round_id.eq(round_id))
            .filter(round_skips::membership_id.eq(membership_id)),
    )
    .execute(conn)?;
    Ok(())
}

/// Members skipping a round.
pub fn skipping(conn: &mut DbConnection, round_id: i64) -> Result<Vec<i64>, DbError> {
    Ok(round_skips::table
        .filter(round_skips::round_id.eq(round_id))
        .select(round_skips::membership_id)
        .load(conn)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        parse_day(text).expect("a date")
    }

    fn form(starts: &str, ends: &str) -> AwayForm {
        AwayForm {
            starts: starts.into(),
            ends: ends.into(),
        }
    }

    #[test]
    fn a_range_from_today_on_is_accepted() {
        let dates =
            AwayDates::parse(&form("2027-07-01", "2027-07-14"), day("2027-06-20")).expect("valid");
        assert_eq!(dates.starts_on, day("2027-07-01"));
        assert_eq!(dates.ends_on, day("2027-07-14"));
        assert!(AwayDates::parse(&form("2027-06-01", "2027-06-20"), day("2027-06-20")).is_ok());
    }

    #[test]
    fn malformed_backwards_past_and_overlong_ranges_are_refused() {
        let today = day("2027-06-20");
        let errors = AwayDates::parse(&form("next week", ""), today).expect_err("bad");
        assert_eq!(
            errors.keys().collect::<Vec<_>>(),
            ["away-ends", "away-starts"]
        );
        let backwards =
            AwayDates::parse(&form("2027-07-14", "2027-07-01"), today).expect_err("bad");
        assert!(backwards["away-ends"].contains("before"));
        let past = AwayDates::parse(&form("2027-05-01", "2027-05-02"), today).expect_err("bad");
        assert!(past["away-ends"].contains("passed"));
        let long = AwayDates::parse(&form("2027-07-01", "2028-07-01"), today).expect_err("bad");
        assert!(long["away-ends"].contains("at most"));
    }
}
