//! Follow-through over time, for one member and for a whole circle: how the
//! commitments reported in each round went, and how they stand overall.
//!
//! Two ways of counting sit side by side, and they answer different
//! questions. A round's bar counts the reports made *in that round*, so a
//! commitment carried with "not yet" in round 3 and done in round 4 shows in
//! both bars. The totals count each commitment *once*, by how it last stood,
//! so finishing late is never held against anyone. In both, "release" is an
//! honest outcome: it is shown, and left out of the follow-through figure
//! rather than counted as a miss.
//!
//! Nothing here ranks people. The circle's figures are the circle's; a
//! member's figures are shown only on that member's own page.

use std::collections::BTreeMap;

use diesel::dsl::count_star;
use diesel::prelude::*;

use super::check_in::Outcome;
use crate::circles::store::STATUS_ACTIVE;
use crate::db::schema::{commitments, follow_throughs, memberships, people, rounds};
use crate::db::{DbConnection, DbError};

/// How many of the latest rounds a chart shows.
pub const ROUNDS_SHOWN: i64 = 12;
/// How many commitments a member's page lists, newest first.
pub const COMMITMENTS_LISTED: i64 = 60;

/// Counts of outcomes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub done: u32,
    pub partly: u32,
    pub not_yet: u32,
    pub released: u32,
}

impl Tally {
    pub fn count(&self, outcome: Outcome) -> u32 {
        match outcome {
            Outcome::Done => self.done,
            Outcome::Partly => self.partly,
            Outcome::NotYet => self.not_yet,
            Outcome::Release => self.released,
        }
    }

    fn add(&mut self, outcome: Outcome, n: u32) {
        let slot = match outcome {
            Outcome::Done => &mut self.done,
            Outcome::Partly => &mut self.partly,
            Outcome::NotYet => &mut self.not_yet,
            Outcome::Release => &mut self.released,
        };
        *slot = slot.saturating_add(n);
    }

    /// Every report, released ones included.
    pub fn reported(&self) -> u32 {
        self.done + self.partly + self.not_yet + self.released
    }

    /// The reports the follow-through figure is out of: released ones are
    /// left out, never counted as misses.
    pub fn counted(&self) -> u32 {
        self.done + self.partly + self.not_yet
    }

    /// Done or partly done.
    pub fn followed_through(&self) -> u32 {
        self.done + self.partly
    }

    pub fn is_empty(&self) -> bool {
        self.reported() == 0
    }

    /// The follow-through figure in words, e.g. "Followed through on 7 of 9
    /// commitments reported (2 released, not counted)."
    pub fn summary(&self) -> String {
        let released = match self.released {
            0 => String::new(),
            n => format!("{n} released, not counted"),
        };
        match (self.counted(), self.released) {
            (0, 0) => "Nothing reported yet.".to_string(),
            (0, n) => format!(
                "{n} {} released, not counted; nothing else reported yet.",
                commitments_word(n)
            ),
            (counted, _) => {
                let mut text = format!(
                    "Followed through on {} of {counted} {} reported",
                    self.followed_through(),
                    commitments_word(counted)
                );
                if !released.is_empty() {
                    text.push_str(&format!(" ({released})"));
                }
                text.push('.');
                text
            }
        }
    }
}

fn commitments_word(n: u32) -> &'static str {
    if n == 1 { "commitment" } else { "commitments" }
}

/// The outcomes reported in one round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoundTally {
    pub number: i32,
    pub tally: Tally,
}

/// Follow-through for a circle or a member.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    /// Oldest to newest: the circle's latest [`ROUNDS_SHOWN`] rounds, from
    /// the first of them with a report (a circle's first round never has
    /// one: there is nothing yet to report on). Rounds without reports in
    /// between are kept, with an empty tally, so the axis has no gaps.
    pub rounds: Vec<RoundTally>,
    /// Each commitment once, by its latest reported outcome, over all rounds.
    pub total: Tally,
}

impl History {
    /// Whether the chart would have anything to draw.
    pub fn has_chart(&self) -> bool {
        self.rounds.iter().any(|r| !r.tally.is_empty())
    }
}

/// The whole circle's history, everyone who has been in it included.
pub fn for_circle(conn: &mut DbConnection, circle_id: i64) -> Result<History, DbError> {
    load(conn, circle_id, None)
}

/// A commitment as a member's history lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitmentLine {
    pub id: i64,
    pub made_in_round: i32,
    pub body: String,
    /// How it stands now; `None` while it waits for its first report.
    pub status: Option<Outcome>,
    pub help_wanted: bool,
    /// Every report on it, oldest first.
    pub reports: Vec<Report>,
}

/// One follow-through report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub round: i32,
    pub outcome: Outcome,
    pub note: Option<String>,
}

/// One member's history page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberHistory {
    pub membership_id: i64,
    pub name: String,
    pub history: History,
    /// Newest round first, at most [`COMMITMENTS_LISTED`].
    pub commitments: Vec<CommitmentLine>,
}

/// The history of `membership_id`, if it is an active membership of
/// `circle_id`. Someone who has left keeps their place in the circle's
/// totals, but their own page is no longer shown. Callers check that the
/// viewer is a member of the circle first.
pub fn for_member(
    conn: &mut DbConnection,
    circle_id: i64,
    membership_id: i64,
) -> Result<Option<MemberHistory>, DbError> {
    let name: Option<String> = memberships::table
        .inner_join(people::table)
        .filter(memberships::id.eq(membership_id))
        .filter(memberships::circle_id.eq(circle_id))
        .filter(memberships::status.eq(STATUS_ACTIVE))
        .select(people::display_name)
        .first(conn)
        .optional()?;
    let Some(name) = name else {
        return Ok(None);
    };
    let history = load(conn, circle_id, Some(membership_id))?;
    let commitments = list_commitments(conn, membership_id)?;
    Ok(Some(MemberHistory {
        membership_id,
        name,
        history,
        commitments,
    }))
}

/// Stored outcome text to an outcome. The database's check constraint
/// admits only the four values; anything else is skipped rather than shown.
fn outcome_of(text: &str) -> Option<Outcome> {
    let outcome = Outcome::parse(text);
    if outcome.is_none() {
        tracing::warn!(outcome = text, "unknown follow-through outcome ignored");
    }
    outcome
}

fn load(
    conn: &mut DbConnection,
    circle_id: i64,
    membership_id: Option<i64>,
) -> Result<History, DbError> {
    let numbers: Vec<i32> = rounds::table
        .filter(rounds::circle_id.eq(circle_id))
        .order(rounds::number.desc())
        .limit(ROUNDS_SHOWN)
        .select(rounds::number)
        .load(conn)?;
    let Some(&first) = numbers.last() else {
        return Ok(History::default());
    };

    // Whose commitments count: the member's, or everyone's who has ever
    // been in the circle.
    let whose: Vec<i64> = match membership_id {
        Some(id) => vec![id],
        None => memberships::table
            .filter(memberships::circle_id.eq(circle_id))
            .select(memberships::id)
            .load(conn)?,
    };

    // Reports made in each of the shown rounds, one row per report: at most
    // a few per member and round, so they are counted here.
    let reported: Vec<(i32, String)> = follow_throughs::table
        .inner_join(rounds::table)
        .inner_join(commitments::table)
        .filter(rounds::circle_id.eq(circle_id))
        .filter(rounds::number.ge(first))
        .filter(commitments::membership_id.eq_any(&whose))
        .select((rounds::number, follow_throughs::outcome))
        .load(conn)?;
    let mut by_round: BTreeMap<i32, Tally> =
        numbers.iter().map(|n| (*n, Tally::default())).collect();
    for (number, outcome) in reported {
        if let (Some(tally), Some(outcome)) = (by_round.get_mut(&number), outcome_of(&outcome)) {
            tally.add(outcome, 1);
        }
    }
    let rounds: Vec<RoundTally> = by_round
        .into_iter()
        .map(|(number, tally)| RoundTally { number, tally })
        .skip_while(|round| round.tally.is_empty())
        .collect();

    // Each commitment once, by how it stands now. An open one has no report
    // yet; "not_yet" is its latest report.
    let standing: Vec<(String, i64)> = commitments::table
        .filter(commitments::membership_id.eq_any(&whose))
        .filter(commitments::status.ne("open"))
        .group_by(commitments::status)
        .select((commitments::status, count_star()))
        .load(conn)?;
    let mut total = Tally::default();
    for (status, n) in standing {
        if let Some(outcome) = outcome_of(&status) {
            total.add(outcome, u32::try_from(n).unwrap_or(u32::MAX));
        }
    }
    Ok(History { rounds, total })
}

fn list_commitments(
    conn: &mut DbConnection,
    membership_id: i64,
) -> Result<Vec<CommitmentLine>, DbError> {
    let made: Vec<(i64, i32, String, String, bool)> = commitments::table
        .inner_join(rounds::table)
        .filter(commitments::membership_id.eq(membership_id))
        .order((rounds::number.desc(), commitments::position.asc()))
        .limit(COMMITMENTS_LISTED)
        .select((
            commitments::id,
            rounds::number,
            commitments::body,
            commitments::status,
            commitments::help_wanted,
        ))
        .load(conn)?;
    let ids: Vec<i64> = made.iter().map(|row| row.0).collect();
    let reports: Vec<(i64, i32, String, Option<String>)> = follow_throughs::table
        .inner_join(rounds::table)
        .filter(follow_throughs::commitment_id.eq_any(&ids))
        .order((rounds::number.asc(), follow_throughs::id.asc()))
        .select((
            follow_throughs::commitment_id,
            rounds::number,
            follow_throughs::outcome,
            follow_throughs::note,
        ))
        .load(conn)?;
    let mut by_commitment: BTreeMap<i64, Vec<Report>> = BTreeMap::new();
    for (commitment_id, round, outcome, note) in reports {
        if let Some(outcome) = outcome_of(&outcome) {
            by_commitment
                .entry(commitment_id)
                .or_default()
                .push(Report {
                    round,
                    outcome,
                    note,
                });
        }
    }
    Ok(made
        .into_iter()
        .map(
            |(id, made_in_round, body, status, help_wanted)| CommitmentLine {
                id,
                made_in_round,
                body,
                status: Outcome::parse(&status),
                help_wanted,
                reports: by_commitment.remove(&id).unwrap_or_default(),
            },
        )
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally(done: u32, partly: u32, not_yet: u32, released: u32) -> Tally {
        Tally {
            done,
            partly,
            not_yet,
            released,
        }
    }

    #[test]
    fn release_is_left_out_of_the_figure_not_counted_as_a_miss() {
        let t = tally(5, 2, 2, 2);
        assert_eq!(t.counted(), 9);
        assert_eq!(t.followed_through(), 7);
        assert_eq!(
            t.summary(),
            "Followed through on 7 of 9 commitments reported (2 released, not counted)."
        );
    }

    #[test]
    fn the_summary_reads_well_at_the_edges() {
        assert_eq!(Tally::default().summary(), "Nothing reported yet.");
        assert_eq!(
            tally(1, 0, 0, 0).summary(),
            "Followed through on 1 of 1 commitment reported."
        );
        assert_eq!(
            tally(0, 0, 0, 1).summary(),
            "1 commitment released, not counted; nothing else reported yet."
        );
        assert_eq!(
            tally(0, 0, 3, 0).summary(),
            "Followed through on 0 of 3 commitments reported."
        );
    }

    #[test]
    fn an_empty_history_has_no_chart() {
        let empty = History {
            rounds: vec![RoundTally {
                number: 1,
                tally: Tally::default(),
            }],
            total: Tally::default(),
        };
        assert!(!empty.has_chart());
    }
}
