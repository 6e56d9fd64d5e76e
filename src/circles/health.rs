//! The facilitator's private view of how a circle is holding up: where
//! someone might welcome a hand, not who is falling behind.
//!
//! Three things, each with a rule simple enough to state on the page:
//!
//! - **Commitments carried a while.** Still open (never reported) or carried
//!   with "not yet", and made in a round whose number is at most the latest
//!   round's number minus [`CARRIED_ROUNDS`]. Rounds carried is the latest
//!   round's number minus the round it was made in.
//! - **Members nobody has encouraged lately.** Active members who have
//!   received no support message from anyone else on any of their
//!   commitments since the oldest of the latest [`QUIET_ROUNDS`] rounds
//!   opened. We go by when the message was written (`created_at`) rather
//!   than the round it was filed under, so a word sent late about an older
//!   commitment still counts as recent encouragement, and a message whose
//!   round was deleted still counts. A member's notes to themselves do not
//!   count. Members who joined after that window began are left out: they
//!   have barely had the chance.
//! - **Members not heard from.** Active members with no check-in, no skip
//!   and no away days in any of the latest [`UNHEARD_ROUNDS`] closed rounds.
//!   Members who joined after the oldest of those opened are left out.
//! - **Emails that did not arrive**, from the outbox.
//!
//! Members of the circle who are not facilitators never see this.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::store::STATUS_ACTIVE;
use crate::db::schema::{
    away_periods, check_ins, commitments, memberships, people, round_skips, rounds,
    support_messages,
};
use crate::db::{DbConnection, DbError};
use crate::mail::outbox::{self, FailedDelivery};
use crate::rounds::{SLOT_FORMAT, support};

/// A commitment made this many rounds before the latest one, and still
/// open, is "carried a while".
pub const CARRIED_ROUNDS: i32 = 3;
/// "Lately" means since the oldest of this many latest rounds opened.
pub const QUIET_ROUNDS: i64 = 3;
/// "Not heard from" looks at this many of the latest closed rounds.
pub const UNHEARD_ROUNDS: i64 = 2;
/// Delivery failures shown, newest first.
pub const FAILURES_SHOWN: i64 = 20;

/// A commitment that has stayed open for a while.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Carried {
    pub commitment_id: i64,
    pub membership_id: i64,
    pub member_name: String,
    pub body: String,
    pub made_in_round: i32,
    /// The latest round's number minus `made_in_round`.
    pub rounds_carried: i32,
    pub help_wanted: bool,
}

/// An active member nobody has written a word of support to lately.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quiet {
    pub membership_id: i64,
    pub name: String,
}

/// Everything the health view shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// `None` before the circle's first round.
    pub latest_round: Option<i32>,
    /// Longest carried first.
    pub carried: Vec<Carried>,
    /// By name: this is a list of people to reach out to, not a ranking.
    pub quiet: Vec<Quiet>,
    /// By name, as `quiet`: members not heard from lately.
    pub unheard: Vec<Quiet>,
    pub failures: Vec<FailedDelivery>,
}

/// Reads the health view of a circle. Callers check that the viewer
/// facilitates it.
pub fn for_circle(conn: &mut DbConnection, circle_id: i64) -> Result<Health, DbError> {
    let latest: Vec<(i32, NaiveDateTime)> = rounds::table
        .filter(rounds::circle_id.eq(circle_id))
        .order(rounds::number.desc())
        .limit(QUIET_ROUNDS)
        .select((rounds::number, rounds::opened_at))
        .load(conn)?;
    let failures = outbox::list_failures_for_circle(conn, circle_id, FAILURES_SHOWN)?;
    let (Some(&(latest_round, _)), Some(&(_, window_start))) = (latest.first(), latest.last())
    else {
        return Ok(Health {
            latest_round: None,
            carried: Vec::new(),
            quiet: Vec::new(),
            unheard: Vec::new(),
            failures,
        });
    };
    Ok(Health {
        latest_round: Some(latest_round),
        carried: list_carried(conn, circle_id, latest_round)?,
        quiet: list_quiet(conn, circle_id, window_start)?,
        unheard: list_unheard(conn, circle_id)?,
        failures,
    })
}

/// Members with no check-in, skip or away day in any of the latest
/// [`UNHEARD_ROUNDS`] closed rounds; none until that many have closed.
fn list_unheard(conn: &mut DbConnection, circle_id: i64) -> Result<Vec<Quiet>, DbError> {
    let closed: Vec<(i64, String, NaiveDateTime)> = rounds::table
        .filter(rounds::circle_id.eq(circle_id))
        .filter(rounds::closed_at.is_not_null())
        .order(rounds::number.desc())
        .limit(UNHEARD_ROUNDS)
        .select((rounds::id, rounds::slot, rounds::opened_at))
        .load(conn)?;
    let Some(&(_, _, since)) = closed
        .last()
        .filter(|_| closed.len() as i64 == UNHEARD_ROUNDS)
    else {
        return Ok(Vec::new());
    };
    let ids: Vec<i64> = closed.iter().map(|r| r.0).collect();
    let days: Vec<chrono::NaiveDate> = closed
        .iter()
        .filter_map(|r| NaiveDateTime::parse_from_str(&r.1, SLOT_FORMAT).ok())
        .map(|slot| slot.date())
        .collect();
    let mut heard: Vec<i64> = check_ins::table
        .filter(check_ins::round_id.eq_any(&ids))
        .select(check_ins::membership_id)
        .load(conn)?;
    heard.extend(
        round_skips::table
            .filter(round_skips::round_id.eq_any(&ids))
            .select(round_skips::membership_id)
            .load::<i64>(conn)?,
    );
    for day in days {
        heard.extend(
            away_periods::table
                .inner_join(memberships::table)
                .filter(memberships::circle_id.eq(circle_id))
                .filter(away_periods::starts_on.le(day))
                .filter(away_periods::ends_on.ge(day))
                .select(away_periods::membership_id)
                .load::<i64>(conn)?,
        );
    }
    members_besides(conn, circle_id, since, &heard)
}

fn list_carried(
    conn: &mut DbConnection,
    circle_id: i64,
    latest_round: i32,
) -> Result<Vec<Carried>, DbError> {
    let open = support::open_in_circle(conn, circle_id, latest_round - CARRIED_ROUNDS)?;
    Ok(open
        .into_iter()
        .map(|c| Carried {
            commitment_id: c.id,
            membership_id: c.membership_id,
            member_name: c.name,
            body: c.body,
            made_in_round: c.made_in_round,
            rounds_carried: latest_round - c.made_in_round,
            help_wanted: c.help_wanted,
        })
        .collect())
}

fn list_quiet(
    conn: &mut DbConnection,
    circle_id: i64,
    since: NaiveDateTime,
) -> Result<Vec<Quiet>, DbError> {
    // Memberships that received a word from someone else in the window.
    let encouraged: Vec<i64> = support_messages::table
        .inner_join(commitments::table)
        .inner_join(memberships::table.on(commitments::membership_id.eq(memberships::id)))
        .filter(memberships::circle_id.eq(circle_id))
        .filter(support_messages::created_at.ge(since))
        .filter(support_messages::author_membership_id.ne(commitments::membership_id))
        .select(commitments::membership_id)
        .distinct()
        .load(conn)?;
    members_besides(conn, circle_id, since, &encouraged)
}

/// The circle's active members who joined by `since`, other than those in
/// `besides`, by name.
fn members_besides(
    conn: &mut DbConnection,
    circle_id: i64,
    since: NaiveDateTime,
    besides: &[i64],
) -> Result<Vec<Quiet>, DbError> {
    let rows: Vec<(i64, String)> = memberships::table
        .inner_join(people::table)
        .filter(memberships::circle_id.eq(circle_id))
        .filter(memberships::status.eq(STATUS_ACTIVE))
        .filter(memberships::joined_at.le(since))
        .filter(memberships::id.ne_all(besides))
        .order((people::display_name.asc(), memberships::id.asc()))
        .select((memberships::id, people::display_name))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(membership_id, name)| Quiet {
            membership_id,
            name,
        })
        .collect())
}
