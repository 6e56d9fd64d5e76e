//! Copies of what Shoulder holds: everything of one person's ([`person`]),
//! and everything of one circle's for its facilitators ([`circle`]).
//!
//! A person's copy holds their profile, every membership they have had (also
//! in circles they left), and per circle their check-ins, commitments,
//! follow-throughs, the support they wrote (with the commitment it was about,
//! which its owner shared with the circle), the support written to them,
//! the notes they wrote and received, with their answers, their away
//! periods and skipped rounds. Each reflection says who reads it (`audience`:
//! `the circle` or `only me`). Nobody else's reflections are in it.
//!
//! A circle's copy holds its settings, everyone who has been a member (name,
//! role, status, dates), every round with its prompt, and all the check-ins,
//! commitments, follow-throughs, support messages, notes, away periods and
//! skipped rounds in it: what the circle shared among itself. A reflection
//! its author kept for "only me" is not in it: such a check-in's `reflection`
//! is empty, whatever was written. It holds no email
//! addresses: an export is a file that travels, and an address is for
//! reaching a person, not part of what the circle did together; the
//! facilitator can reach members through the circle. People who deleted
//! their data appear as "A former member", their words already removed.
//!
//! Each copy is read in one transaction, so it is consistent with itself.
//! CSV cells that a spreadsheet would run as a formula are neutralised (see
//! [`neutralise`]).

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;

use super::{day, shown_name, stamp};
use crate::circles::store::{self, Circle};
use crate::db::schema::{
    away_periods, check_ins, circles, commitments, follow_throughs, memberships, peer_notes,
    people, round_skips, rounds, support_messages,
};
use crate::db::{DbConnection, DbError};

/// Writing an export as JSON or CSV failed; a bug, not bad input.
#[derive(Debug, thiserror::Error)]
#[error("cannot write the export: {0}")]
pub struct FormatError(String);

// ---------------------------------------------------------------------------
// What a person's copy holds.

#[derive(Debug, Clone, Serialize)]
pub struct PersonExport {
    pub exported_at: String,
    pub profile: Profile,
    /// Every circle they have been in, including ones they left.
    pub circles: Vec<MyCircle>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Profile {
    pub name: String,
    pub email: String,
    pub created_at: String,
    /// The zone they chose to read times in, if any.
    pub time_zone: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MyCircle {
    pub circle: String,
    pub circle_id: i64,
    pub role: String,
    /// `active`, `left` or `removed`.
    pub status: String,
    pub joined_at: String,
    pub left_at: Option<String>,
    pub check_ins: Vec<CheckInRecord>,
    pub commitments: Vec<CommitmentRecord>,
    pub follow_throughs: Vec<FollowThroughRecord>,
    pub support_given: Vec<SupportRecord>,
    pub support_received: Vec<SupportRecord>,
    pub notes_written: Vec<NoteRecord>,
    pub notes_received: Vec<NoteRecord>,
    pub away: Vec<AwayRecord>,
    pub skipped_rounds: Vec<SkipRecord>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckInRecord {
    pub round: i32,
    pub prompt: String,
    pub reflection: String,
    /// Who reads the reflection: [`THE_CIRCLE`] or [`ONLY_ME`].
    pub audience: &'static str,
    pub late: bool,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct CommitmentRecord {
    pub id: i64,
    /// The round it was made in.
    pub round_made: i32,
    pub position: i32,
    pub body: String,
    /// `open`, `done`, `partly`, `not_yet` or `released`.
    pub status: String,
    pub help_wanted: bool,
    pub created_at: String,
    pub closed_at: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FollowThroughRecord {
    pub commitment_id: i64,
    pub commitment: String,
    /// The round it was reported in.
    pub round_reported: i32,
    pub outcome: String,
    pub note: Option<String>,
    pub recorded_at: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct SupportRecord {
    pub round: Option<i32>,
    /// Who wrote it.
    pub from: String,
    /// Whose commitment it was about.
    pub to: String,
    pub commitment_id: i64,
    pub commitment: String,
    pub message: String,
    pub written_at: String,
    /// The commitment owner's answer.
    pub answer: Option<String>,
}

/// A note from one member to another, and its answer.
#[derive(Debug, Clone, Serialize)]
pub struct NoteRecord {
    pub round: i32,
    pub from: String,
    pub to: String,
    pub message: String,
    pub written_at: String,
    pub answer: Option<String>,
}

/// The audiences of a reflection, as exports name them.
pub const THE_CIRCLE: &str = "the circle";
pub const ONLY_ME: &str = "only me";

#[derive(Debug, Clone, Serialize)]
pub struct AwayRecord {
    pub starts_on: String,
    pub ends_on: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct SkipRecord {
    pub round: i32,
    pub skipped_at: String,
}

// ---------------------------------------------------------------------------
// What a circle's copy holds.

#[derive(Debug, Clone, Serialize)]
pub struct CircleExport {
    pub exported_at: String,
    pub circle: CircleSettings,
    pub members: Vec<MemberRecord>,
    pub rounds: Vec<RoundRecord>,
    pub check_ins: Vec<Attributed<CheckInRecord>>,
    pub commitments: Vec<Attributed<CommitmentRecord>>,
    pub follow_throughs: Vec<Attributed<FollowThroughRecord>>,
    pub support_messages: Vec<SupportRecord>,
    pub notes: Vec<NoteRecord>,
    pub away: Vec<Attributed<AwayRecord>>,
    pub skipped_rounds: Vec<Attributed<SkipRecord>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CircleSettings {
    pub name: String,
    pub purpose: String,
    pub agreements: String,
    /// The cadence as stored, e.g. `weekly mon 09:00`.
    pub schedule: String,
    pub time_zone: String,
    pub round_length_hours: i32,
    pub size_cap: i32,
    pub deck: String,
    pub status: String,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct MemberRecord {
    /// Tells apart two members of the same name (or two former members).
    pub member_id: i64,
    pub name: String,
    pub role: String,
    pub status: String,
    pub joined_at: String,
    pub left_at: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RoundRecord {
    pub number: i32,
    pub prompt: String,
    pub follow_up: Option<String>,
    pub opened_at: String,
    pub closes_at: String,
    pub closed_at: Option<String>,
}

/// A record and whose it is, in a circle's copy.
#[derive(Debug, Clone, Serialize)]
pub struct Attributed<T> {
    pub member_id: i64,
    pub member: String,
    #[serde(flatten)]
    pub record: T,
}

// ---------------------------------------------------------------------------
// Rows as read.

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = memberships)]
struct MembershipRow {
    id: i64,
    circle_id: i64,
    role: String,
    status: String,
    joined_at: NaiveDateTime,
    left_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = rounds)]
struct RoundRow {
    id: i64,
    circle_id: i64,
    number: i32,
    prompt_question: String,
    prompt_follow_up: Option<String>,
    opened_at: NaiveDateTime,
    closes_at: NaiveDateTime,
    closed_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = check_ins)]
struct CheckInRow {
    round_id: i64,
    membership_id: i64,
    reflection: String,
    shared: bool,
    late: bool,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = commitments)]
struct CommitmentRow {
    id: i64,
    membership_id: i64,
    round_id: i64,
    position: i32,
    body: String,
    status: String,
    help_wanted: bool,
    created_at: NaiveDateTime,
    closed_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = follow_throughs)]
struct FollowThroughRow {
    commitment_id: i64,
    round_id: i64,
    outcome: String,
    note: Option<String>,
    recorded_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = support_messages)]
struct SupportRow {
    commitment_id: i64,
    author_membership_id: i64,
    round_id: Option<i64>,
    body: String,
    created_at: NaiveDateTime,
    answer: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = peer_notes)]
struct NoteRow {
    round_id: i64,
    author_membership_id: i64,
    recipient_membership_id: i64,
    body: String,
    created_at: NaiveDateTime,
    answer: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = away_periods)]
struct AwayRow {
    membership_id: i64,
    starts_on: NaiveDate,
    ends_on: NaiveDate,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = round_skips)]
struct SkipRow {
    round_id: i64,
    membership_id: i64,
    created_at: NaiveDateTime,
}

/// Everything written under a set of memberships, with what it refers to.
struct Gathered {
    rounds: HashMap<i64, RoundRow>,
    check_ins: Vec<CheckInRow>,
    /// The memberships' own commitments.
    commitments: Vec<CommitmentRow>,
    /// Own commitments and the ones support was written on, by id.
    commitment_by_id: HashMap<i64, CommitmentRow>,
    follow_throughs: Vec<FollowThroughRow>,
    support_written: Vec<SupportRow>,
    support_received: Vec<SupportRow>,
    /// Notes written or received under the memberships.
    notes: Vec<NoteRow>,
    away: Vec<AwayRow>,
    skips: Vec<SkipRow>,
    /// Membership id -> the name to show, for everyone referred to.
    names: HashMap<i64, String>,
}

impl Gathered {
    fn round_number(&self, round_id: i64) -> i32 {
        self.rounds.get(&round_id).map_or(0, |r| r.number)
    }

    fn name(&self, membership_id: i64) -> String {
        self.names
            .get(&membership_id)
            .cloned()
            .unwrap_or_else(|| super::FORMER_MEMBER.to_string())
    }

    fn commitment_body(&self, commitment_id: i64) -> String {
        self.commitment_by_id
            .get(&commitment_id)
            .map(|c| c.body.clone())
            .unwrap_or_default()
    }

    fn support(&self, row: &SupportRow) -> SupportRecord {
        let owner = self
            .commitment_by_id
            .get(&row.commitment_id)
            .map(|c| c.membership_id);
        SupportRecord {
            round: row.round_id.map(|id| self.round_number(id)),
            from: self.name(row.author_membership_id),
            to: owner.map(|id| self.name(id)).unwrap_or_default(),
            commitment_id: row.commitment_id,
            commitment: self.commitment_body(row.commitment_id),
            message: row.body.clone(),
            written_at: stamp(row.created_at),
            answer: row.answer.clone(),
        }
    }

    fn note(&self, row: &NoteRow) -> NoteRecord {
        NoteRecord {
            round: self.round_number(row.round_id),
            from: self.name(row.author_membership_id),
            to: self.name(row.recipient_membership_id),
            message: row.body.clone(),
            written_at: stamp(row.created_at),
            answer: row.answer.clone(),
        }
    }

    fn check_in(&self, row: &CheckInRow) -> CheckInRecord {
        let round = self.rounds.get(&row.round_id);
        CheckInRecord {
            round: round.map_or(0, |r| r.number),
            prompt: round.map(|r| r.prompt_question.clone()).unwrap_or_default(),
            reflection: row.reflection.clone(),
            audience: if row.shared { THE_CIRCLE } else { ONLY_ME },
            late: row.late,
            created_at: stamp(row.created_at),
            updated_at: stamp(row.updated_at),
        }
    }

    fn commitment(&self, row: &CommitmentRow) -> CommitmentRecord {
        CommitmentRecord {
            id: row.id,
            round_made: self.round_number(row.round_id),
            position: row.position,
            body: row.body.clone(),
            status: row.status.clone(),
            help_wanted: row.help_wanted,
            created_at: stamp(row.created_at),
            closed_at: row.closed_at.map(stamp),
        }
    }

    fn follow_through(&self, row: &FollowThroughRow) -> FollowThroughRecord {
        FollowThroughRecord {
            commitment_id: row.commitment_id,
            commitment: self.commitment_body(row.commitment_id),
            round_reported: self.round_number(row.round_id),
            outcome: row.outcome.clone(),
            note: row.note.clone(),
            recorded_at: stamp(row.recorded_at),
        }
    }

    fn skip(&self, row: &SkipRow) -> SkipRecord {
        SkipRecord {
            round: self.round_number(row.round_id),
            skipped_at: stamp(row.created_at),
        }
    }

    fn attributed<T>(&self, membership_id: i64, record: T) -> Attributed<T> {
        Attributed {
            member_id: membership_id,
            member: self.name(membership_id),
            record,
        }
    }

    fn commitment_owner(&self, commitment_id: i64) -> Option<i64> {
        self.commitment_by_id
            .get(&commitment_id)
            .map(|c| c.membership_id)
    }
}

fn away(row: &AwayRow) -> AwayRecord {
    AwayRecord {
        starts_on: day(row.starts_on),
        ends_on: day(row.ends_on),
    }
}

/// Reads everything written under `membership_ids` (all in `circle_ids`).
fn gather(
    conn: &mut DbConnection,
    circle_ids: &[i64],
    membership_ids: &[i64],
) -> Result<Gathered, DbError> {
    let rounds: HashMap<i64, RoundRow> = rounds::table
        .filter(rounds::circle_id.eq_any(circle_ids))
        .select(RoundRow::as_select())
        .load(conn)?
        .into_iter()
        .map(|r| (r.id, r))
        .collect();
    let check_ins: Vec<CheckInRow> = check_ins::table
        .filter(check_ins::membership_id.eq_any(membership_ids))
        .order(check_ins::id.asc())
        .select(CheckInRow::as_select())
        .load(conn)?;
    let own: Vec<CommitmentRow> = commitments::table
        .filter(commitments::membership_id.eq_any(membership_ids))
        .order(commitments::id.asc())
        .select(CommitmentRow::as_select())
        .load(conn)?;
    let own_ids: Vec<i64> = own.iter().map(|c| c.id).collect();
    let follow_throughs: Vec<FollowThroughRow> = follow_throughs::table
        .filter(follow_throughs::commitment_id.eq_any(&own_ids))
        .order(follow_throughs::id.asc())
        .select(FollowThroughRow::as_select())
        .load(conn)?;
    let support_written: Vec<SupportRow> = support_messages::table
        .filter(support_messages::author_membership_id.eq_any(membership_ids))
        .order((
            support_messages::created_at.asc(),
            support_messages::id.asc(),
        ))
        .select(SupportRow::as_select())
        .load(conn)?;
    let support_received: Vec<SupportRow> = support_messages::table
        .filter(support_messages::commitment_id.eq_any(&own_ids))
        .order((
            support_messages::created_at.asc(),
            support_messages::id.asc(),
        ))
        .select(SupportRow::as_select())
        .load(conn)?;
    let mut commitment_by_id: HashMap<i64, CommitmentRow> =
        own.iter().map(|c| (c.id, c.clone())).collect();
    let others: BTreeSet<i64> = support_written
        .iter()
        .map(|s| s.commitment_id)
        .filter(|id| !commitment_by_id.contains_key(id))
        .collect();
    if !others.is_empty() {
        let others: Vec<i64> = others.into_iter().collect();
        let rows: Vec<CommitmentRow> = commitments::table
            .filter(commitments::id.eq_any(&others))
            .select(CommitmentRow::as_select())
            .load(conn)?;
        commitment_by_id.extend(rows.into_iter().map(|c| (c.id, c)));
    }
    let notes: Vec<NoteRow> = peer_notes::table
        .filter(
            peer_notes::author_membership_id
                .eq_any(membership_ids)
                .or(peer_notes::recipient_membership_id.eq_any(membership_ids)),
        )
        .order(peer_notes::id.asc())
        .select(NoteRow::as_select())
        .load(conn)?;
    let away: Vec<AwayRow> = away_periods::table
        .filter(away_periods::membership_id.eq_any(membership_ids))
        .order((away_periods::starts_on.asc(), away_periods::id.asc()))
        .select(AwayRow::as_select())
        .load(conn)?;
    let skips: Vec<SkipRow> = round_skips::table
        .filter(round_skips::membership_id.eq_any(membership_ids))
        .order(round_skips::id.asc())
        .select(SkipRow::as_select())
        .load(conn)?;

    let mut named: BTreeSet<i64> = membership_ids.iter().copied().collect();
    named.extend(commitment_by_id.values().map(|c| c.membership_id));
    named.extend(support_received.iter().map(|s| s.author_membership_id));
    named.extend(
        notes
            .iter()
            .flat_map(|n| [n.author_membership_id, n.recipient_membership_id]),
    );
    let named: Vec<i64> = named.into_iter().collect();
    let names = memberships::table
        .inner_join(people::table)
        .filter(memberships::id.eq_any(&named))
        .select((memberships::id, people::display_name, people::deleted_at))
        .load::<(i64, String, Option<NaiveDateTime>)>(conn)?
        .into_iter()
        .map(|(id, name, deleted_at)| (id, shown_name(&name, deleted_at)))
        .collect();

    Ok(Gathered {
        rounds,
        check_ins,
        commitments: own,
        commitment_by_id,
        follow_throughs,
        support_written,
        support_received,
        notes,
        away,
        skips,
        names,
    })
}

/// Everything of one person's; `None` when there is no such person, or they
/// have already deleted their data.
pub fn person(
    conn: &mut DbConnection,
    person_id: i64,
    now: DateTime<Utc>,
) -> Result<Option<PersonExport>, DbError> {
    conn.transaction(|conn| {
        let found = people::table
            .find(person_id)
            .filter(people::deleted_at.is_null())
            .select((
                people::display_name,
                people::email,
                people::created_at,
                people::time_zone,
            ))
            .first::<(String, String, NaiveDateTime, Option<String>)>(conn)
            .optional()?;
        let Some((name, email, created_at, time_zone)) = found else {
            return Ok(None);
        };
        let mine: Vec<MembershipRow> = memberships::table
            .filter(memberships::person_id.eq(person_id))
            .order(memberships::id.asc())
            .select(MembershipRow::as_select())
            .load(conn)?;
        let circle_ids: Vec<i64> = mine.iter().map(|m| m.circle_id).collect();
        let membership_ids: Vec<i64> = mine.iter().map(|m| m.id).collect();
        let circle_names: HashMap<i64, String> = circles::table
            .filter(circles::id.eq_any(&circle_ids))
            .select((circles::id, circles::name))
            .load::<(i64, String)>(conn)?
            .into_iter()
            .collect();
        let data = gather(conn, &circle_ids, &membership_ids)?;

        let mut circles: Vec<MyCircle> = mine
            .iter()
            .map(|m| my_circle(&data, m, &circle_names))
            .collect();
        circles.sort_by(|a, b| a.circle.cmp(&b.circle).then(a.circle_id.cmp(&b.circle_id)));
        Ok(Some(PersonExport {
            exported_at: stamp(now.naive_utc()),
            profile: Profile {
                name,
                email,
                created_at: stamp(created_at),
                time_zone,
            },
            circles,
        }))
    })
}

fn my_circle(
    data: &Gathered,
    membership: &MembershipRow,
    circle_names: &HashMap<i64, String>,
) -> MyCircle {
    let id = membership.id;
    let mut check_ins: Vec<CheckInRecord> = data
        .check_ins
        .iter()
        .filter(|c| c.membership_id == id)
        .map(|c| data.check_in(c))
        .collect();
    check_ins.sort_by_key(|c| c.round);
    let mut commitments: Vec<CommitmentRecord> = data
        .commitments
        .iter()
        .filter(|c| c.membership_id == id)
        .map(|c| data.commitment(c))
        .collect();
    commitments.sort_by_key(|c| (c.round_made, c.position));
    let mut follow_throughs: Vec<FollowThroughRecord> = data
        .follow_throughs
        .iter()
        .filter(|f| data.commitment_owner(f.commitment_id) == Some(id))
        .map(|f| data.follow_through(f))
        .collect();
    follow_throughs.sort_by_key(|f| (f.round_reported, f.commitment_id));
    let support_given = data
        .support_written
        .iter()
        .filter(|s| s.author_membership_id == id)
        .map(|s| data.support(s))
        .collect();
    let support_received = data
        .support_received
        .iter()
        .filter(|s| data.commitment_owner(s.commitment_id) == Some(id))
        .map(|s| data.support(s))
        .collect();
    let notes_written = data
        .notes
        .iter()
        .filter(|n| n.author_membership_id == id)
        .map(|n| data.note(n))
        .collect();
    let notes_received = data
        .notes
        .iter()
        .filter(|n| n.recipient_membership_id == id)
        .map(|n| data.note(n))
        .collect();
    let away = data
        .away
        .iter()
        .filter(|a| a.membership_id == id)
        .map(away)
        .collect();
    let mut skipped_rounds: Vec<SkipRecord> = data
        .skips
        .iter()
        .filter(|s| s.membership_id == id)
        .map(|s| data.skip(s))
        .collect();
    skipped_rounds.sort_by_key(|s| s.round);
    MyCircle {
        circle: circle_names
            .get(&membership.circle_id)
            .cloned()
            .unwrap_or_default(),
        circle_id: membership.circle_id,
        role: membership.role.clone(),
        status: membership.status.clone(),
        joined_at: stamp(membership.joined_at),
        left_at: membership.left_at.map(stamp),
        check_ins,
        commitments,
        follow_throughs,
        support_given,
        support_received,
        notes_written,
        notes_received,
        away,
        skipped_rounds,
    }
}

/// Everything of a circle's, for one of its active facilitators; `None` for
/// anyone else (a member, a stranger), who is told nothing more.
pub fn circle_for_facilitator(
    conn: &mut DbConnection,
    circle_id: i64,
    person_id: i64,
    now: DateTime<Utc>,
) -> Result<Option<CircleExport>, DbError> {
    conn.transaction(
        |conn| match store::find_for_member(conn, circle_id, person_id)? {
            Some((circle, membership)) if membership.is_facilitator() => {
                circle_export(conn, &circle, now).map(Some)
            }
            _ => Ok(None),
        },
    )
}

fn circle_export(
    conn: &mut DbConnection,
    circle: &Circle,
    now: DateTime<Utc>,
) -> Result<CircleExport, DbError> {
    let all: Vec<MembershipRow> = memberships::table
        .filter(memberships::circle_id.eq(circle.id))
        .order((memberships::joined_at.asc(), memberships::id.asc()))
        .select(MembershipRow::as_select())
        .load(conn)?;
    let membership_ids: Vec<i64> = all.iter().map(|m| m.id).collect();
    let data = gather(conn, &[circle.id], &membership_ids)?;

    let members = all
        .iter()
        .map(|m| MemberRecord {
            member_id: m.id,
            name: data.name(m.id),
            role: m.role.clone(),
            status: m.status.clone(),
            joined_at: stamp(m.joined_at),
            left_at: m.left_at.map(stamp),
        })
        .collect();
    let mut round_rows: Vec<&RoundRow> = data
        .rounds
        .values()
        .filter(|r| r.circle_id == circle.id)
        .collect();
    round_rows.sort_by_key(|r| r.number);
    let rounds = round_rows
        .into_iter()
        .map(|r| RoundRecord {
            number: r.number,
            prompt: r.prompt_question.clone(),
            follow_up: r.prompt_follow_up.clone(),
            opened_at: stamp(r.opened_at),
            closes_at: stamp(r.closes_at),
            closed_at: r.closed_at.map(stamp),
        })
        .collect();
    // A reflection kept for "only me" stays with its author.
    let mut check_ins: Vec<Attributed<CheckInRecord>> = data
        .check_ins
        .iter()
        .map(|c| {
            let mut record = data.check_in(c);
            if !c.shared {
                record.reflection.clear();
            }
            data.attributed(c.membership_id, record)
        })
        .collect();
    check_ins.sort_by_key(|c| (c.record.round, c.member_id));
    let mut commitments: Vec<Attributed<CommitmentRecord>> = data
        .commitments
        .iter()
        .map(|c| data.attributed(c.membership_id, data.commitment(c)))
        .collect();
    commitments.sort_by_key(|c| (c.record.round_made, c.member_id, c.record.position));
    let mut follow_throughs: Vec<Attributed<FollowThroughRecord>> = data
        .follow_throughs
        .iter()
        .filter_map(|f| {
            let owner = data.commitment_owner(f.commitment_id)?;
            Some(data.attributed(owner, data.follow_through(f)))
        })
        .collect();
    follow_throughs.sort_by_key(|f| (f.record.round_reported, f.member_id, f.record.commitment_id));
    // Support on the circle's commitments is all the support in the circle:
    // only members write it, on members' commitments.
    let support_messages = data
        .support_received
        .iter()
        .map(|s| data.support(s))
        .collect();
    // Notes between the circle's members are all the notes in it, each
    // read once (as written).
    let notes = data
        .notes
        .iter()
        .filter(|n| membership_ids.contains(&n.author_membership_id))
        .map(|n| data.note(n))
        .collect();
    let away = data
        .away
        .iter()
        .map(|a| data.attributed(a.membership_id, away(a)))
        .collect();
    let mut skipped_rounds: Vec<Attributed<SkipRecord>> = data
        .skips
        .iter()
        .map(|s| data.attributed(s.membership_id, data.skip(s)))
        .collect();
    skipped_rounds.sort_by_key(|s| (s.record.round, s.member_id));

    Ok(CircleExport {
        exported_at: stamp(now.naive_utc()),
        circle: CircleSettings {
            name: circle.name.clone(),
            purpose: circle.purpose.clone(),
            agreements: circle.agreements.clone(),
            schedule: circle.cadence.clone(),
            time_zone: circle.time_zone.clone(),
            round_length_hours: circle.round_length_minutes / 60,
            size_cap: circle.size_cap,
            deck: circle.deck.clone(),
            status: circle.status.clone(),
            created_at: stamp(circle.created_at),
        },
        members,
        rounds,
        check_ins,
        commitments,
        follow_throughs,
        support_messages,
        notes,
        away,
        skipped_rounds,
    })
}

// ---------------------------------------------------------------------------
// JSON and CSV.

/// Pretty JSON, for people to read as well as programs.
pub fn to_json<T: Serialize>(export: &T) -> Result<String, FormatError> {
    serde_json::to_string_pretty(export).map_err(|e| FormatError(e.to_string()))
}

/// The columns of a person's CSV. Every row has them all; `record` says
/// which kind of row it is and so which of the others it fills.
pub const PERSON_CSV_COLUMNS: &[&str] = &[
    "record",
    "circle",
    "round",
    "date",
    "until",
    "person",
    "for_person",
    "role",
    "status",
    "prompt",
    "text",
    "audience",
    "commitment_id",
    "commitment",
    "outcome",
    "note",
    "late",
    "help_wanted",
];

/// The columns of a circle's CSV: as a person's, without `circle` (it is one
/// circle, named in the `setting` rows) and with `setting` and `member_id`.
pub const CIRCLE_CSV_COLUMNS: &[&str] = &[
    "record",
    "setting",
    "member_id",
    "round",
    "date",
    "until",
    "person",
    "for_person",
    "role",
    "status",
    "prompt",
    "text",
    "audience",
    "commitment_id",
    "commitment",
    "outcome",
    "note",
    "late",
    "help_wanted",
];

/// One CSV row: column name -> cell; missing columns are empty.
#[derive(Debug, Default)]
struct Row(BTreeMap<&'static str, String>);

impl Row {
    fn new(record: &str) -> Row {
        Row::default().with("record", record)
    }

    fn with(mut self, column: &'static str, value: impl ToString) -> Row {
        self.0.insert(column, value.to_string());
        self
    }

    fn with_some(self, column: &'static str, value: Option<impl ToString>) -> Row {
        match value {
            Some(value) => self.with(column, value),
            None => self,
        }
    }
}

/// A cell that a spreadsheet would take for a formula (it starts with `=`,
/// `+`, `-` or `@`, or with a tab or carriage return that hides one) gets a
/// leading `'`, so it is shown as text instead of run. The price is a visible
/// quote on text that merely starts with a dash; the export is for keeping,
/// and a formula that fetches a URL when the file is opened is worse.
pub fn neutralise(cell: &str) -> Cow<'_, str> {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

fn write_csv(columns: &[&str], rows: &[Row]) -> Result<String, FormatError> {
    let error = |e: &dyn std::fmt::Display| FormatError(e.to_string());
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(columns).map_err(|e| error(&e))?;
    for row in rows {
        writer
            .write_record(columns.iter().map(|column| {
                neutralise(row.0.get(column).map(String::as_str).unwrap_or_default()).into_owned()
            }))
            .map_err(|e| error(&e))?;
    }
    let bytes = writer.into_inner().map_err(|e| error(&e))?;
    String::from_utf8(bytes).map_err(|e| error(&e))
}

fn check_in_row(record: &CheckInRecord) -> Row {
    Row::new("check_in")
        .with("round", record.round)
        .with("date", &record.created_at)
        .with("prompt", &record.prompt)
        .with("text", &record.reflection)
        .with("audience", record.audience)
        .with("late", record.late)
}

fn commitment_row(record: &CommitmentRecord) -> Row {
    Row::new("commitment")
        .with("round", record.round_made)
        .with("date", &record.created_at)
        .with_some("until", record.closed_at.as_ref())
        .with("commitment_id", record.id)
        .with("text", &record.body)
        .with("status", &record.status)
        .with("help_wanted", record.help_wanted)
}

fn follow_through_row(record: &FollowThroughRecord) -> Row {
    Row::new("follow_through")
        .with("round", record.round_reported)
        .with("date", &record.recorded_at)
        .with("commitment_id", record.commitment_id)
        .with("commitment", &record.commitment)
        .with("outcome", &record.outcome)
        .with_some("note", record.note.as_ref())
}

fn support_row(kind: &str, record: &SupportRecord) -> Row {
    Row::new(kind)
        .with_some("round", record.round)
        .with("date", &record.written_at)
        .with("person", &record.from)
        .with("for_person", &record.to)
        .with("commitment_id", record.commitment_id)
        .with("commitment", &record.commitment)
        .with("text", &record.message)
        .with_some("note", record.answer.as_ref())
}

/// A note's row; its answer is in `note`, as a support message's is.
fn note_row(kind: &str, record: &NoteRecord) -> Row {
    Row::new(kind)
        .with("round", record.round)
        .with("date", &record.written_at)
        .with("person", &record.from)
        .with("for_person", &record.to)
        .with("text", &record.message)
        .with_some("note", record.answer.as_ref())
}

fn away_row(record: &AwayRecord) -> Row {
    Row::new("away")
        .with("date", &record.starts_on)
        .with("until", &record.ends_on)
}

fn skip_row(record: &SkipRecord) -> Row {
    Row::new("skip")
        .with("round", record.round)
        .with("date", &record.skipped_at)
}

/// A person's copy as one CSV file: a `profile` row, then per circle a
/// `membership` row and its `check_in`, `commitment`, `follow_through`,
/// `support_given`, `support_received`, `note_written`, `note_received`,
/// `away` and `skip` rows.
pub fn person_csv(export: &PersonExport) -> Result<String, FormatError> {
    let mut rows = vec![
        Row::new("profile")
            .with("person", &export.profile.name)
            .with("text", &export.profile.email)
            .with("date", &export.profile.created_at)
            .with_some("note", export.profile.time_zone.as_ref()),
    ];
    for circle in &export.circles {
        let mut mine = vec![
            Row::new("membership")
                .with("role", &circle.role)
                .with("status", &circle.status)
                .with("date", &circle.joined_at)
                .with_some("until", circle.left_at.as_ref()),
        ];
        mine.extend(circle.check_ins.iter().map(check_in_row));
        mine.extend(circle.commitments.iter().map(commitment_row));
        mine.extend(circle.follow_throughs.iter().map(follow_through_row));
        mine.extend(
            circle
                .support_given
                .iter()
                .map(|s| support_row("support_given", s)),
        );
        mine.extend(
            circle
                .support_received
                .iter()
                .map(|s| support_row("support_received", s)),
        );
        mine.extend(
            circle
                .notes_written
                .iter()
                .map(|n| note_row("note_written", n)),
        );
        mine.extend(
            circle
                .notes_received
                .iter()
                .map(|n| note_row("note_received", n)),
        );
        mine.extend(circle.away.iter().map(away_row));
        mine.extend(circle.skipped_rounds.iter().map(skip_row));
        rows.extend(
            mine.into_iter()
                .map(|row| row.with("circle", &circle.circle)),
        );
    }
    write_csv(PERSON_CSV_COLUMNS, &rows)
}

/// A circle's copy as one CSV file: `setting` rows, `member` and `round`
/// rows, then `check_in`, `commitment`, `follow_through`, `support`, `note`,
/// `away` and `skip` rows, each naming its member.
pub fn circle_csv(export: &CircleExport) -> Result<String, FormatError> {
    let settings = &export.circle;
    let setting = |key: &str, value: &dyn ToString| {
        Row::new("setting")
            .with("setting", key)
            .with("text", value.to_string())
    };
    let mut rows = vec![
        setting("name", &settings.name),
        setting("purpose", &settings.purpose),
        setting("agreements", &settings.agreements),
        setting("schedule", &settings.schedule),
        setting("time_zone", &settings.time_zone),
        setting("round_length_hours", &settings.round_length_hours),
        setting("size_cap", &settings.size_cap),
        setting("deck", &settings.deck),
        setting("status", &settings.status),
        setting("created_at", &settings.created_at),
    ];
    rows.extend(export.members.iter().map(|m| {
        Row::new("member")
            .with("member_id", m.member_id)
            .with("person", &m.name)
            .with("role", &m.role)
            .with("status", &m.status)
            .with("date", &m.joined_at)
            .with_some("until", m.left_at.as_ref())
    }));
    rows.extend(export.rounds.iter().map(|r| {
        Row::new("round")
            .with("round", r.number)
            .with("date", &r.opened_at)
            .with("until", r.closed_at.as_ref().unwrap_or(&r.closes_at))
            .with(
                "status",
                if r.closed_at.is_some() {
                    "closed"
                } else {
                    "open"
                },
            )
            .with("prompt", &r.prompt)
            .with_some("note", r.follow_up.as_ref())
    }));
    fn by<T>(a: &Attributed<T>, row: Row) -> Row {
        row.with("member_id", a.member_id).with("person", &a.member)
    }
    rows.extend(
        export
            .check_ins
            .iter()
            .map(|a| by(a, check_in_row(&a.record))),
    );
    rows.extend(
        export
            .commitments
            .iter()
            .map(|a| by(a, commitment_row(&a.record))),
    );
    rows.extend(
        export
            .follow_throughs
            .iter()
            .map(|a| by(a, follow_through_row(&a.record))),
    );
    rows.extend(
        export
            .support_messages
            .iter()
            .map(|s| support_row("support", s)),
    );
    rows.extend(export.notes.iter().map(|n| note_row("note", n)));
    rows.extend(export.away.iter().map(|a| by(a, away_row(&a.record))));
    rows.extend(
        export
            .skipped_rounds
            .iter()
            .map(|a| by(a, skip_row(&a.record))),
    );
    write_csv(CIRCLE_CSV_COLUMNS, &rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_a_spreadsheet_would_run_are_neutralised() {
        for risky in [
            "=HYPERLINK(\"http://x\")",
            "+1",
            "-2+3",
            "@SUM(A1)",
            "\tx",
            "\r=1",
        ] {
            assert_eq!(neutralise(risky), format!("'{risky}"), "{risky:?}");
        }
        for plain in ["Listen first", "", "2027-03-01", "a=b", " =1"] {
            assert_eq!(neutralise(plain), plain, "{plain:?}");
        }
    }

    fn sample() -> PersonExport {
        PersonExport {
            exported_at: "2027-03-09T10:00:00Z".into(),
            profile: Profile {
                name: "Ada".into(),
                email: "ada@example.org".into(),
                created_at: "2027-03-01T08:00:00Z".into(),
                time_zone: Some("Europe/London".into()),
            },
            circles: vec![MyCircle {
                circle: "Night, \"shift\"".into(),
                circle_id: 1,
                role: "member".into(),
                status: "active".into(),
                joined_at: "2027-03-01T08:00:00Z".into(),
                left_at: None,
                check_ins: vec![CheckInRecord {
                    round: 1,
                    prompt: "Who are we leaving behind?".into(),
                    reflection: "Line one\nline two, with a comma".into(),
                    audience: THE_CIRCLE,
                    late: false,
                    created_at: "2027-03-01T10:00:00Z".into(),
                    updated_at: "2027-03-01T10:00:00Z".into(),
                }],
                commitments: vec![CommitmentRecord {
                    id: 7,
                    round_made: 1,
                    position: 1,
                    body: "=cmd|' /C calc'!A0".into(),
                    status: "open".into(),
                    help_wanted: true,
                    created_at: "2027-03-01T10:00:00Z".into(),
                    closed_at: None,
                }],
                follow_throughs: Vec::new(),
                support_given: Vec::new(),
                notes_written: Vec::new(),
                notes_received: Vec::new(),
                support_received: Vec::new(),
                away: vec![AwayRecord {
                    starts_on: "2027-04-01".into(),
                    ends_on: "2027-04-10".into(),
                }],
                skipped_rounds: Vec::new(),
            }],
        }
    }

    #[test]
    fn a_person_csv_parses_back_with_every_row_in_place() {
        let text = person_csv(&sample()).expect("csv");
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let header: Vec<String> = reader
            .headers()
            .expect("header")
            .iter()
            .map(str::to_string)
            .collect();
        assert_eq!(header, PERSON_CSV_COLUMNS);
        let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("row")).collect();
        let kinds: Vec<&str> = rows.iter().map(|r| &r[0]).collect();
        assert_eq!(
            kinds,
            ["profile", "membership", "check_in", "commitment", "away"]
        );
        let column = |name: &str| {
            PERSON_CSV_COLUMNS
                .iter()
                .position(|c| *c == name)
                .expect("column")
        };
        assert_eq!(&rows[0][column("circle")], "");
        assert_eq!(&rows[1][column("circle")], "Night, \"shift\"");
        assert_eq!(&rows[2][column("text")], "Line one\nline two, with a comma");
        assert_eq!(&rows[3][column("text")], "'=cmd|' /C calc'!A0");
        assert_eq!(&rows[3][column("help_wanted")], "true");
        assert_eq!(&rows[4][column("until")], "2027-04-10");
    }

    #[test]
    fn json_keeps_the_words_as_written() {
        let json = to_json(&sample()).expect("json");
        let value: serde_json::Value = serde_json::from_str(&json).expect("parses");
        assert_eq!(
            value["circles"][0]["commitments"][0]["body"],
            "=cmd|' /C calc'!A0"
        );
        assert_eq!(value["profile"]["email"], "ada@example.org");
    }
}
