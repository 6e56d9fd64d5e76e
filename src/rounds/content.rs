//! What each round email says, gathered from the database as template
//! context. The words themselves are in `templates/email/`.
//!
//! Each email's links hang on the key it is given, its round link
//! ([`links`]): the member's own round page, and one-click choices
//! ([`actions`]) for each of their open commitments, for skipping the round
//! and for going away.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use serde::Serialize;
use serde_json::{Value, json};

use super::actions::{self, Named};
use super::check_in::{self, Outcome};
use super::support::{self, CircleCommitment};
use super::{away, links, notes, reflections};
use crate::auth::Token;
use crate::circles::store::STATUS_ACTIVE;
use crate::db::schema::{
    away_periods, check_ins, commitments, follow_throughs, memberships, people, rounds,
};
use crate::db::{DbConnection, DbError};

/// The round an email is about.
#[derive(Debug, Clone)]
pub struct RoundFacts {
    pub id: i64,
    pub circle_id: i64,
    pub number: i32,
    pub closes_at: NaiveDateTime,
    /// The slot's local date, which away periods are measured against.
    pub day: NaiveDate,
}

#[derive(Serialize)]
struct Link {
    label: &'static str,
    url: String,
}

#[derive(Serialize)]
struct OpenLine<'a> {
    /// As a reply by email names it: the order of the member's open
    /// commitments, from 1.
    number: usize,
    body: &'a str,
    made_in_round: i32,
    choices: Vec<Link>,
}

#[derive(Serialize)]
struct PeerLine<'a> {
    name: &'a str,
    body: &'a str,
    help_wanted: bool,
}

#[derive(Serialize)]
struct Partner<'a> {
    name: &'a str,
    commitments: Vec<PeerLine<'a>>,
}

/// Support a member received: who wrote it, on which of their commitments.
#[derive(Debug, Clone, Serialize)]
pub struct Received {
    pub from: String,
    pub commitment: String,
    pub body: String,
}

/// One member's part of a check-in email, as the round opening read it for
/// the whole circle.
pub struct CheckInMember<'a> {
    pub membership_id: i64,
    /// Whom they are asked to shoulder up: (membership id, name).
    pub partner: Option<(i64, &'a str)>,
    /// Support received on their commitments since the previous round opened.
    pub received: Vec<Received>,
    /// Notes received, and answers to what they wrote, since then.
    pub notes: Vec<notes::Received>,
}

/// What every check-in email of a round says alike.
#[derive(Serialize)]
pub struct CheckInRound<'a> {
    pub circle: &'a str,
    pub number: i32,
    pub question: &'a str,
    pub follow_up: Option<&'a str>,
    /// When the round closes, in the circle's time zone (with the member's
    /// own clock beside it, in the copy each member's email is made from).
    pub closes: &'a str,
}

/// A check-in email's context, as its templates read it.
#[derive(Serialize)]
pub struct CheckIn<'a> {
    #[serde(flatten)]
    round: &'a CheckInRound<'a>,
    round_url: String,
    open: Vec<OpenLine<'a>>,
    partner: Option<Partner<'a>>,
    help_asked: Vec<PeerLine<'a>>,
    support_received: Vec<Received>,
    notes_received: Vec<notes::Received>,
    answers_received: Vec<notes::Received>,
    skip_url: String,
    away_url: String,
}

/// The parts of a check-in email that are this member's own, with its
/// links under `key`. `circle_open` is the circle's open commitments
/// ([`open_commitments`]), read once for the whole round; a member's own are
/// among them, since the round is new and nothing in it is reported yet.
pub fn check_in<'a>(
    key: &Token,
    round: &'a CheckInRound<'a>,
    facts: &RoundFacts,
    circle_open: &'a [CircleCommitment],
    member: CheckInMember<'a>,
    public_base: &str,
) -> CheckIn<'a> {
    let membership_id = member.membership_id;
    let open = circle_open
        .iter()
        .filter(|commitment| commitment.membership_id == membership_id)
        .enumerate()
        .map(|(index, commitment)| OpenLine {
            number: index + 1,
            body: &commitment.body,
            made_in_round: commitment.made_in_round,
            choices: Outcome::ALL
                .into_iter()
                .map(|outcome| Link {
                    label: outcome.label(),
                    url: actions::url(
                        public_base,
                        key,
                        Named::Follow {
                            commitment_id: commitment.id,
                            outcome,
                        },
                    ),
                })
                .collect(),
        })
        .collect();
    let partner = member.partner.map(|(partner_id, name)| Partner {
        name,
        commitments: peer_lines(circle_open, |c| c.membership_id == partner_id),
    });
    let help_asked = peer_lines(circle_open, |c| {
        c.help_wanted && c.membership_id != membership_id
    });
    CheckIn {
        round,
        round_url: links::url(public_base, facts.circle_id, facts.number, key),
        open,
        partner,
        help_asked,
        support_received: member.received,
        notes_received: member
            .notes
            .iter()
            .filter(|line| line.note.is_none())
            .cloned()
            .collect(),
        answers_received: member
            .notes
            .into_iter()
            .filter(|line| line.note.is_some())
            .collect(),
        skip_url: actions::url(public_base, key, Named::Skip),
        away_url: actions::url(public_base, key, Named::Away),
    }
}

fn peer_lines(
    commitments: &[CircleCommitment],
    keep: impl Fn(&CircleCommitment) -> bool,
) -> Vec<PeerLine<'_>> {
    commitments
        .iter()
        .filter(|c| keep(c))
        .map(|c| PeerLine {
            name: &c.name,
            body: &c.body,
            help_wanted: c.help_wanted,
        })
        .collect()
}

/// What every check-in email of a round draws on: the circle's open
/// commitments made up to this round, with their support.
pub fn open_commitments(
    conn: &mut DbConnection,
    round: &RoundFacts,
) -> Result<Vec<CircleCommitment>, DbError> {
    support::open_in_circle(conn, round.circle_id, round.number)
}

/// The commitments reported on during a round, read once for all its
/// reminders.
pub fn reported_in(conn: &mut DbConnection, round: &RoundFacts) -> Result<Vec<i64>, DbError> {
    Ok(follow_throughs::table
        .filter(follow_throughs::round_id.eq(round.id))
        .select(follow_throughs::commitment_id)
        .load(conn)?)
}

/// The parts of a reminder that are this member's own: its links under
/// `key`, and the earlier commitments they have not reported on yet
/// (`reported` is [`reported_in`]).
pub fn reminder(
    conn: &mut DbConnection,
    key: &Token,
    round: &RoundFacts,
    reported: &[i64],
    membership_id: i64,
    public_base: &str,
) -> Result<Value, DbError> {
    // Numbered among all the member's open commitments, reported or not,
    // as a reply by email names them.
    let still_open: Vec<Value> =
        check_in::open_before(conn, membership_id, round.id, round.number)?
            .into_iter()
            .enumerate()
            .filter(|(_, c)| !reported.contains(&c.id))
            .map(|(index, c)| {
                json!({ "number": index + 1, "body": c.body, "made_in_round": c.made_in_round })
            })
            .collect();
    Ok(json!({
        "round_url": links::url(public_base, round.circle_id, round.number, key),
        "still_open": still_open,
        "skip_url": actions::url(public_base, key, Named::Skip),
    }))
}

#[derive(Serialize)]
struct Reported {
    body: String,
    outcome: &'static str,
    note: Option<String>,
}

#[derive(Serialize)]
struct DigestMember {
    name: String,
    /// "checked in", "checked in late", "away", or "no check-in this
    /// round": never "missed".
    status: &'static str,
    commitments: Vec<String>,
    follow_through: Vec<Reported>,
    help_wanted: Vec<String>,
}

/// The digest's content, the same for everyone in the circle.
pub fn digest(conn: &mut DbConnection, round: &RoundFacts) -> Result<Value, DbError> {
    let members: Vec<(i64, String)> = memberships::table
        .inner_join(people::table)
        .filter(memberships::circle_id.eq(round.circle_id))
        .filter(memberships::status.eq(STATUS_ACTIVE))
        .order((people::display_name.asc(), memberships::id.asc()))
        .select((memberships::id, people::display_name))
        .load(conn)?;
    let checked_in: Vec<(i64, bool)> = check_ins::table
        .filter(check_ins::round_id.eq(round.id))
        .select((check_ins::membership_id, check_ins::late))
        .load(conn)?;
    let mut away_ids: Vec<i64> = away_periods::table
        .filter(away_periods::starts_on.le(round.day))
        .filter(away_periods::ends_on.ge(round.day))
        .select(away_periods::membership_id)
        .load(conn)?;
    away_ids.extend(away::skipping(conn, round.id)?);
    let made: Vec<(i64, String, bool)> = commitments::table
        .filter(commitments::round_id.eq(round.id))
        .order((
            commitments::membership_id.asc(),
            commitments::position.asc(),
        ))
        .select((
            commitments::membership_id,
            commitments::body,
            commitments::help_wanted,
        ))
        .load(conn)?;
    let reported: Vec<(i64, String, String, Option<String>)> = follow_throughs::table
        .inner_join(commitments::table.inner_join(rounds::table))
        .filter(follow_throughs::round_id.eq(round.id))
        .order((rounds::number.asc(), commitments::position.asc()))
        .select((
            commitments::membership_id,
            commitments::body,
            follow_throughs::outcome,
            follow_throughs::note,
        ))
        .load(conn)?;
    let open_help: Vec<(i64, String)> = commitments::table
        .inner_join(rounds::table)
        .filter(rounds::circle_id.eq(round.circle_id))
        .filter(rounds::number.lt(round.number))
        .filter(commitments::help_wanted.eq(true))
        .filter(commitments::status.eq_any(["open", "not_yet"]))
        .select((commitments::membership_id, commitments::body))
        .load(conn)?;
    let mut lines = Vec::new();
    let mut away_names = Vec::new();
    for (id, name) in members {
        let late = checked_in.iter().find(|c| c.0 == id).map(|c| c.1);
        let status = match late {
            Some(false) => "checked in",
            Some(true) => "checked in late",
            None if away_ids.contains(&id) => "away",
            None => "no check-in this round",
        };
        if late.is_none() && away_ids.contains(&id) {
            away_names.push(name.clone());
        }
        let mut help_wanted: Vec<String> = made
            .iter()
            .filter(|m| m.0 == id && m.2)
            .map(|m| m.1.clone())
            .collect();
        help_wanted.extend(open_help.iter().filter(|h| h.0 == id).map(|h| h.1.clone()));
        lines.push(DigestMember {
            name,
            status,
            commitments: made
                .iter()
                .filter(|m| m.0 == id)
                .map(|m| m.1.clone())
                .collect(),
            follow_through: reported
                .iter()
                .filter(|r| r.0 == id)
                .map(|r| Reported {
                    body: r.1.clone(),
                    outcome: Outcome::parse(&r.2).map_or("", Outcome::label),
                    note: r.3.clone(),
                })
                .collect(),
            help_wanted,
        });
    }
    Ok(json!({
        "members": lines,
        "said": reflections::shared_in_round(conn, round.id)?,
        "notes": notes::in_round(conn, round.id)?,
        "support": support::offered_in_round(conn, round.id)?,
        "away": away_names,
    }))
}
