//! Where the open round stands, for the circle page: who has checked in,
//! skipped, is away, or has not been heard from yet. Counts for everyone;
//! names for facilitators, so they can reach out. Never a ranking.

use std::collections::HashSet;

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

use super::SLOT_FORMAT;
use crate::circles::store::Member;
use diesel::sql_types::Bool;

use crate::db::schema::{away_periods, check_ins, memberships, round_skips, rounds};
use crate::db::{DbConnection, DbError, natively};

/// What a member has done in the open round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    CheckedIn,
    Skipped,
    Away,
    NotYet,
}

/// The circle's open round and each active member's answer in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    pub number: i32,
    pub closes_at: NaiveDateTime,
    /// (membership id, name, answer), in the members' order.
    pub members: Vec<(i64, String, Answer)>,
}

impl Standing {
    pub fn answer_of(&self, membership_id: i64) -> Option<Answer> {
        self.members
            .iter()
            .find(|(id, _, _)| *id == membership_id)
            .map(|&(_, _, answer)| answer)
    }

    /// How many members gave `answer`.
    pub fn count(&self, answer: Answer) -> usize {
        self.members.iter().filter(|m| m.2 == answer).count()
    }

    /// The names of those who gave `answer`.
    pub fn names(&self, answer: Answer) -> Vec<&str> {
        self.members
            .iter()
            .filter(|m| m.2 == answer)
            .map(|m| m.1.as_str())
            .collect()
    }
}

/// The open round of a circle, if one is open, with each of `members`'
/// answers in it. A check-in counts over a skip; away counts on the day of
/// the round's slot.
pub fn of_circle(
    conn: &mut DbConnection,
    circle_id: i64,
    members: &[Member],
) -> Result<Option<Standing>, DbError> {
    // On every page of a circle with an open round: each read runs on the
    // backend's own connection, in statements it keeps prepared.
    let open: Option<(i64, i32, String, NaiveDateTime)> = natively!(conn, |conn| rounds::table
        .filter(rounds::circle_id.eq(circle_id))
        .filter(rounds::closed_at.is_null())
        .order(rounds::number.desc())
        .select((rounds::id, rounds::number, rounds::slot, rounds::closes_at))
        .first(conn)
        .optional())?;
    let Some((round_id, number, slot, closes_at)) = open else {
        return Ok(None);
    };
    // Who checked in (true) and who skipped (false), in one read.
    let answered: Vec<(i64, bool)> = natively!(conn, |conn| check_ins::table
        .filter(check_ins::round_id.eq(round_id))
        .select((check_ins::membership_id, true.into_sql::<Bool>()))
        .union_all(
            round_skips::table
                .filter(round_skips::round_id.eq(round_id))
                .select((round_skips::membership_id, false.into_sql::<Bool>())),
        )
        .load(conn))?;
    let checked_in: HashSet<i64> = answered.iter().filter(|a| a.1).map(|a| a.0).collect();
    let skipped: HashSet<i64> = answered.iter().filter(|a| !a.1).map(|a| a.0).collect();
    let away: HashSet<i64> = match NaiveDateTime::parse_from_str(&slot, SLOT_FORMAT) {
        Ok(slot) => away_on(conn, circle_id, slot.date())?,
        Err(_) => HashSet::new(),
    };
    let members = members
        .iter()
        .map(|member| {
            let id = member.membership_id;
            let answer = if checked_in.contains(&id) {
                Answer::CheckedIn
            } else if skipped.contains(&id) {
                Answer::Skipped
            } else if away.contains(&id) {
                Answer::Away
            } else {
                Answer::NotYet
            };
            (id, member.display_name.clone(), answer)
        })
        .collect();
    Ok(Some(Standing {
        number,
        closes_at,
        members,
    }))
}

fn away_on(
    conn: &mut DbConnection,
    circle_id: i64,
    day: NaiveDate,
) -> Result<HashSet<i64>, DbError> {
    let away: Vec<i64> = natively!(conn, |conn| away_periods::table
        .inner_join(memberships::table)
        .filter(memberships::circle_id.eq(circle_id))
        .filter(away_periods::starts_on.le(day))
        .filter(away_periods::ends_on.ge(day))
        .select(away_periods::membership_id)
        .load::<i64>(conn))?;
    Ok(away.into_iter().collect())
}
