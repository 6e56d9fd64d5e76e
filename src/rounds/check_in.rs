//! A member's check-in for a round: a reflection on the shared prompt, one
//! to three commitments for the next round, and how the commitments still
//! open from earlier rounds went.
//!
//! A check-in can be edited until the round closes, and one made after the
//! close is accepted and marked late. Follow-through is honest, never a
//! score: "not yet" carries a commitment into the next round, and "release"
//! closes it without counting as a miss.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Integer, Nullable, Text, Timestamp};

use crate::db::schema::{commitments, follow_throughs, rounds, support_messages};
use crate::db::{DbConnection, DbError, write_transaction};
use crate::rounds::own_hour;
use crate::text::{self, sentence};

pub const MAX_REFLECTION_LEN: usize = 2000;
pub const MAX_COMMITMENT_LEN: usize = 280;
pub const MAX_NOTE_LEN: usize = 500;
pub const MAX_COMMITMENTS: usize = 3;

/// How a commitment went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Done,
    Partly,
    NotYet,
    Release,
}

impl Outcome {
    pub const ALL: [Outcome; 4] = [
        Outcome::Done,
        Outcome::Partly,
        Outcome::NotYet,
        Outcome::Release,
    ];

    /// As stored, and as a form value.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Done => "done",
            Outcome::Partly => "partly",
            Outcome::NotYet => "not_yet",
            Outcome::Release => "released",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Outcome::Done => "Done",
            Outcome::Partly => "Partly",
            Outcome::NotYet => "Not yet",
            Outcome::Release => "Release",
        }
    }

    pub fn parse(text: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == text)
    }
}

/// Why a check-in with nothing in it is refused.
pub const NOTHING_IN_IT: &str = "Write a reflection, say how an earlier commitment went, or make \
     a commitment for the next round: a check-in needs one of them. To sit this round out, \
     skip it instead.";

/// Who reads a reflection, as a form value: the circle's members, or its
/// author alone.
pub const FOR_THE_CIRCLE: &str = "circle";
pub const FOR_ME: &str = "me";

/// Why an audience that is neither is refused.
pub const WHICH_AUDIENCE: &str = "Choose who reads your reflection: the circle, or only you.";

/// The check-in form as typed: a missing or blank commitment slot is "".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckInForm {
    pub reflection: String,
    /// [`FOR_THE_CIRCLE`], [`FOR_ME`], or "" when the form did not say.
    pub audience: String,
    pub commitments: [String; MAX_COMMITMENTS],
    /// Commitments sent beyond the third, which are refused, not dropped.
    pub extra_commitments: Vec<String>,
    /// Commitment id (as typed) -> (outcome, note).
    pub follow: BTreeMap<String, (String, String)>,
}

/// A valid check-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckIn {
    pub reflection: String,
    /// Whether the circle reads the reflection; `None` keeps what was
    /// chosen before (the saved check-in's, else the member's default).
    pub shared: Option<bool>,
    /// Up to three, each in the slot it was typed in (slot 1 is index 0),
    /// so that editing one never moves another's text or support.
    pub commitments: [Option<String>; MAX_COMMITMENTS],
    pub follow: Vec<(i64, Outcome, Option<String>)>,
}

/// Field name -> what is wrong with it.
pub type FieldErrors = BTreeMap<String, String>;

impl CheckIn {
    pub fn parse(form: &CheckInForm) -> Result<CheckIn, FieldErrors> {
        let mut errors = FieldErrors::new();
        let reflection = match text::multi_line(&form.reflection, MAX_REFLECTION_LEN, false) {
            Ok(text) => text,
            Err(error) => {
                errors.insert("reflection".into(), sentence(&error.to_string()));
                String::new()
            }
        };
        let shared = match form.audience.as_str() {
            "" => None,
            FOR_THE_CIRCLE => Some(true),
            FOR_ME => Some(false),
            _ => {
                errors.insert("audience".into(), WHICH_AUDIENCE.into());
                None
            }
        };
        let mut commitments: [Option<String>; MAX_COMMITMENTS] = Default::default();
        for (index, raw) in form.commitments.iter().enumerate() {
            if raw.trim().is_empty() {
                continue;
            }
            match text::single_line(raw, MAX_COMMITMENT_LEN) {
                Ok(body) => commitments[index] = Some(body),
                Err(error) => {
                    errors.insert(
                        format!("commitment-{}", index + 1),
                        sentence(&error.to_string()),
                    );
                }
            }
        }
        if form.extra_commitments.iter().any(|c| !c.trim().is_empty()) {
            errors.insert(
                "commitment-extra".into(),
                format!("A round holds at most {MAX_COMMITMENTS} commitments; choose the ones that matter most."),
            );
        }
        let mut follow = Vec::new();
        for (id, (outcome, note)) in &form.follow {
            let field = format!("follow-{id}");
            let Ok(commitment_id) = id.parse::<i64>() else {
                errors.insert(field, "This commitment is not one of yours.".into());
                continue;
            };
            if outcome.is_empty() && note.trim().is_empty() {
                continue;
            }
            let Some(outcome) = Outcome::parse(outcome) else {
                errors.insert(field, "Choose Done, Partly, Not yet or Release.".into());
                continue;
            };
            match text::multi_line(note, MAX_NOTE_LEN, false) {
                Ok(note) => {
                    follow.push((commitment_id, outcome, Some(note).filter(|n| !n.is_empty())))
                }
                Err(error) => {
                    errors.insert(field, sentence(&error.to_string()));
                }
            }
        }
        // A round without new promises is still a check-in; one with nothing
        // in it at all is not (that is what "Skip this round" is for).
        if errors.is_empty()
            && reflection.is_empty()
            && follow.is_empty()
            && commitments.iter().all(Option::is_none)
        {
            errors.insert("reflection".into(), NOTHING_IN_IT.into());
        }
        if errors.is_empty() {
            Ok(CheckIn {
                reflection,
                shared,
                commitments,
                follow,
            })
        } else {
            Err(errors)
        }
    }
}

/// A commitment from an earlier round that is still open for this member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenCommitment {
    pub id: i64,
    pub body: String,
    pub made_in_round: i32,
}

/// The member's commitments made before `round_number` that are still open
/// (or carried with "not yet"), plus any already reported in this round.
pub fn open_before(
    conn: &mut DbConnection,
    membership_id: i64,
    round_id: i64,
    round_number: i32,
) -> Result<Vec<OpenCommitment>, DbError> {
    let reported_here = follow_throughs::table
        .filter(follow_throughs::round_id.eq(round_id))
        .select(follow_throughs::commitment_id);
    let rows = commitments::table
        .inner_join(rounds::table)
        .filter(commitments::membership_id.eq(membership_id))
        .filter(rounds::number.lt(round_number))
        // Two `eq`s rather than `eq_any` over a list: diesel prepares a
        // statement with a bound list afresh on every call.
        .filter(
            commitments::status
                .eq("open")
                .or(commitments::status.eq("not_yet"))
                .or(commitments::id.eq_any(reported_here)),
        )
        .order((rounds::number.asc(), commitments::position.asc()))
        .select((commitments::id, commitments::body, rounds::number))
        .load::<(i64, String, i32)>(conn)?;
    Ok(rows
        .into_iter()
        .map(|(id, body, made_in_round)| OpenCommitment {
            id,
            body,
            made_in_round,
        })
        .collect())
}

/// What the member has saved for this round so far, as a form, given
/// their check-in's reflection and audience (see
/// [`super::reflections::in_round`]); `None` until they have checked in.
pub fn saved_form(
    conn: &mut DbConnection,
    round_id: i64,
    membership_id: i64,
    saved: Option<&Own>,
) -> Result<Option<CheckInForm>, DbError> {
    let Some(Own { reflection, shared }) = saved.cloned() else {
        return Ok(None);
    };
    let mut form = reported_form(conn, round_id, membership_id, shared)?;
    form.reflection = reflection;
    let made: Vec<(i32, String)> = commitments::table
        .filter(commitments::round_id.eq(round_id))
        .filter(commitments::membership_id.eq(membership_id))
        .order(commitments::position.asc())
        .select((commitments::position, commitments::body))
        .load(conn)?;
    for (position, body) in made {
        if let Some(slot) = usize::try_from(position - 1)
            .ok()
            .and_then(|i| form.commitments.get_mut(i))
        {
            *slot = body;
        }
    }
    Ok(Some(form))
}

/// A member's own saved reflection and its audience.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Own {
    pub reflection: String,
    pub shared: bool,
}

/// The form value of an audience.
pub fn audience(shared: bool) -> &'static str {
    if shared { FOR_THE_CIRCLE } else { FOR_ME }
}

/// A form holding only the follow-through reported in this round, which
/// one-click choices from the email record before any check-in, and the
/// audience the member chose last in this circle (`shares`).
pub fn reported_form(
    conn: &mut DbConnection,
    round_id: i64,
    membership_id: i64,
    shares: bool,
) -> Result<CheckInForm, DbError> {
    let mut form = CheckInForm {
        audience: audience(shares).into(),
        ..CheckInForm::default()
    };
    let reported: Vec<(i64, String, Option<String>)> = follow_throughs::table
        .inner_join(commitments::table)
        .filter(follow_throughs::round_id.eq(round_id))
        .filter(commitments::membership_id.eq(membership_id))
        .select((
            follow_throughs::commitment_id,
            follow_throughs::outcome,
            follow_throughs::note,
        ))
        .load(conn)?;
    for (id, outcome, note) in reported {
        form.follow
            .insert(id.to_string(), (outcome, note.unwrap_or_default()));
    }
    Ok(form)
}

/// What saving did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Saved {
    Saved {
        late: bool,
    },
    /// A follow-through named a commitment that is not this member's open
    /// one; nothing was saved.
    NotYours(i64),
    /// The commitment in this slot (1 to 3) has support from others or a
    /// report in a later round, so it cannot be emptied; nothing was saved.
    Answered(usize),
}

/// Why the save transaction rolled back.
enum Abort {
    NotYours(i64),
    Answered(usize),
    Db(DbError),
}

impl From<diesel::result::Error> for Abort {
    fn from(error: diesel::result::Error) -> Self {
        Abort::Db(DbError::Query(error))
    }
}

impl From<DbError> for Abort {
    fn from(error: DbError) -> Self {
        Abort::Db(error)
    }
}

/// Saves a check-in in one transaction: the reflection, this round's
/// commitments (replacing earlier edits), and follow-through on earlier ones.
pub fn save(
    conn: &mut DbConnection,
    round_id: i64,
    round_number: i32,
    closed: bool,
    membership_id: i64,
    check_in: &CheckIn,
    now: DateTime<Utc>,
) -> Result<Saved, DbError> {
    let at = now.naive_utc();
    let outcome = write_transaction(conn, |conn| {
        upsert_check_in(
            conn,
            round_id,
            membership_id,
            &check_in.reflection,
            check_in.shared,
            closed,
            at,
        )?;
        let made = if check_in.commitments.iter().any(Option::is_none) {
            made_in_round(conn, round_id, membership_id)?
        } else {
            Vec::new()
        };
        for (index, body) in check_in.commitments.iter().enumerate() {
            let position = index + 1;
            let existing = made
                .iter()
                .find(|(made_at, _)| *made_at == position as i32)
                .map(|(_, id)| *id);
            let kept = save_commitment(
                conn,
                round_id,
                membership_id,
                position as i32,
                body.as_deref(),
                existing,
                at,
            )?;
            if !kept {
                return Err(Abort::Answered(position));
            }
        }
        // Most edits report nothing new; the open list is read only to check
        // what is reported.
        let open: Vec<i64> = if check_in.follow.is_empty() {
            Vec::new()
        } else {
            open_before(conn, membership_id, round_id, round_number)?
                .into_iter()
                .map(|c| c.id)
                .collect()
        };
        for (commitment_id, outcome, note) in &check_in.follow {
            if !open.contains(commitment_id) {
                return Err(Abort::NotYours(*commitment_id));
            }
            record_follow_through(
                conn,
                *commitment_id,
                round_id,
                *outcome,
                note.as_deref(),
                at,
            )?;
        }
        if !closed {
            own_hour::withdraw_waiting(conn, membership_id, round_id)?;
        }
        Ok(Saved::Saved { late: closed })
    });
    match outcome {
        Ok(saved) => Ok(saved),
        Err(Abort::NotYours(id)) => Ok(Saved::NotYours(id)),
        Err(Abort::Answered(position)) => Ok(Saved::Answered(position)),
        Err(Abort::Db(error)) => Err(error),
    }
}

/// Upserts are the same SQL on both backends, bound through each backend's
/// own connection.
macro_rules! on_inner {
    ($conn:expr, $query:expr) => {
        match $conn {
            DbConnection::Postgresql(conn) => $query.execute(conn),
            DbConnection::Sqlite(conn) => $query.execute(conn),
        }
    };
}

fn upsert_check_in(
    conn: &mut DbConnection,
    round_id: i64,
    membership_id: i64,
    reflection: &str,
    shared: Option<bool>,
    late: bool,
    now: NaiveDateTime,
) -> Result<(), DbError> {
    // A check-in first made after the close stays marked late; editing an
    // on-time one after the close does not make it late. Without a choice
    // of audience, a new check-in takes the member's default and an edited
    // one keeps its own.
    let query = diesel::sql_query(
        "INSERT INTO check_ins (round_id, membership_id, reflection, late, created_at, updated_at, shared) \
         VALUES ($1, $2, $3, $4, $5, $5, \
                 COALESCE($6, (SELECT shares_reflections FROM memberships WHERE id = $2))) \
         ON CONFLICT (round_id, membership_id) DO UPDATE \
         SET reflection = excluded.reflection, updated_at = excluded.updated_at, \
             shared = COALESCE($6, check_ins.shared)",
    )
    .bind::<BigInt, _>(round_id)
    .bind::<BigInt, _>(membership_id)
    .bind::<Text, _>(reflection)
    .bind::<Bool, _>(late)
    .bind::<Timestamp, _>(now)
    .bind::<Nullable<Bool>, _>(shared);
    on_inner!(conn, query)?;
    if let Some(shared) = shared {
        use crate::db::schema::memberships;
        diesel::update(
            memberships::table
                .find(membership_id)
                .filter(memberships::shares_reflections.ne(shared)),
        )
        .set(memberships::shares_reflections.eq(shared))
        .execute(conn)?;
    }
    Ok(())
}

/// The slot and id of each commitment the member has made in this round.
/// Read once per save, not once per emptied slot: inside the transaction
/// every query is a round trip made while holding the check-in's row lock.
fn made_in_round(
    conn: &mut DbConnection,
    round_id: i64,
    membership_id: i64,
) -> Result<Vec<(i32, i64)>, DbError> {
    Ok(commitments::table
        .filter(commitments::round_id.eq(round_id))
        .filter(commitments::membership_id.eq(membership_id))
        .select((commitments::position, commitments::id))
        .load(conn)?)
}

/// Writes one slot; `existing` is the commitment already in it, if any.
fn save_commitment(
    conn: &mut DbConnection,
    round_id: i64,
    membership_id: i64,
    position: i32,
    body: Option<&str>,
    existing: Option<i64>,
    now: NaiveDateTime,
) -> Result<bool, DbError> {
    match body {
        Some(body) => {
            let query = diesel::sql_query(
                "INSERT INTO commitments (membership_id, round_id, position, body, status, help_wanted, created_at) \
                 VALUES ($1, $2, $3, $4, 'open', FALSE, $5) \
                 ON CONFLICT (round_id, membership_id, position) DO UPDATE SET body = excluded.body",
            )
            .bind::<BigInt, _>(membership_id)
            .bind::<BigInt, _>(round_id)
            .bind::<Integer, _>(position)
            .bind::<Text, _>(body)
            .bind::<Timestamp, _>(now);
            on_inner!(conn, query)?;
        }
        None => {
            // A slot emptied while editing: the commitment goes, unless others
            // have answered it (support, or a report in a later round, made
            // while this round is edited late), whose words would go with it.
            let Some(id) = existing else {
                return Ok(true);
            };
            let answered: bool = diesel::select(
                diesel::dsl::exists(
                    support_messages::table.filter(support_messages::commitment_id.eq(id)),
                )
                .or(diesel::dsl::exists(
                    follow_throughs::table.filter(follow_throughs::commitment_id.eq(id)),
                )),
            )
            .get_result(conn)?;
            if answered {
                return Ok(false);
            }
            diesel::delete(commitments::table.find(id)).execute(conn)?;
        }
    }
    Ok(true)
}

pub(crate) fn record_follow_through(
    conn: &mut DbConnection,
    commitment_id: i64,
    round_id: i64,
    outcome: Outcome,
    note: Option<&str>,
    now: NaiveDateTime,
) -> Result<(), DbError> {
    let query = diesel::sql_query(
        "INSERT INTO follow_throughs (commitment_id, round_id, outcome, note, recorded_at) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (commitment_id, round_id) DO UPDATE \
         SET outcome = excluded.outcome, note = excluded.note, recorded_at = excluded.recorded_at",
    )
    .bind::<BigInt, _>(commitment_id)
    .bind::<BigInt, _>(round_id)
    .bind::<Text, _>(outcome.as_str())
    .bind::<Nullable<Text>, _>(note)
    .bind::<Timestamp, _>(now);
    on_inner!(conn, query)?;
    // "Not yet" keeps the commitment open for the next round; the others
    // settle it.
    let closed_at = (outcome != Outcome::NotYet).then_some(now);
    diesel::update(commitments::table.find(commitment_id))
        .set((
            commitments::status.eq(outcome.as_str()),
            commitments::closed_at.eq(closed_at),
        ))
        .execute(conn)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(commitments: [&str; 3]) -> CheckInForm {
        CheckInForm {
            reflection: "I talked more than I listened.".into(),
            commitments: commitments.map(str::to_string),
            ..CheckInForm::default()
        }
    }

    #[test]
    fn commitments_keep_their_slots() {
        let check_in =
            CheckIn::parse(&form(["", "Ask before advising", "Credit Sam's idea"])).expect("valid");
        assert_eq!(
            check_in.commitments,
            [
                None,
                Some("Ask before advising".to_string()),
                Some("Credit Sam's idea".to_string())
            ]
        );
    }

    #[test]
    fn a_check_in_needs_something_in_it_but_not_a_commitment() {
        let reflection_only = CheckIn::parse(&form(["", "", ""])).expect("a reflection alone");
        assert!(reflection_only.commitments.iter().all(Option::is_none));
        let mut follow_only = CheckInForm::default();
        follow_only
            .follow
            .insert("7".into(), ("partly".into(), String::new()));
        assert!(CheckIn::parse(&follow_only).is_ok(), "follow-through alone");
        let nothing = CheckInForm {
            reflection: " \n ".into(),
            ..CheckInForm::default()
        };
        let errors = CheckIn::parse(&nothing).expect_err("nothing");
        assert_eq!(
            errors.get("reflection").map(String::as_str),
            Some(NOTHING_IN_IT)
        );
    }

    #[test]
    fn over_long_commitments_are_refused_by_field() {
        let long = "x".repeat(MAX_COMMITMENT_LEN + 1);
        let errors = CheckIn::parse(&form(["fine", &long, "a\r\nb"])).expect_err("bad");
        assert_eq!(
            errors.keys().collect::<Vec<_>>(),
            ["commitment-2", "commitment-3"]
        );
    }

    #[test]
    fn a_fourth_commitment_is_refused_not_dropped() {
        let mut four = form(["One", "Two", "Three"]);
        four.extra_commitments = vec!["Four".into()];
        let errors = CheckIn::parse(&four).expect_err("four");
        assert_eq!(errors.keys().collect::<Vec<_>>(), ["commitment-extra"]);
        four.extra_commitments = vec!["  ".into()];
        assert!(
            CheckIn::parse(&four).is_ok(),
            "an empty extra field is no commitment"
        );
    }

    #[test]
    fn follow_through_needs_a_known_outcome_and_a_short_note() {
        let mut with_follow = form(["Ask before advising", "", ""]);
        with_follow
            .follow
            .insert("7".into(), ("maybe".into(), String::new()));
        with_follow
            .follow
            .insert("8".into(), ("done".into(), "x".repeat(MAX_NOTE_LEN + 1)));
        with_follow
            .follow
            .insert("9".into(), ("not_yet".into(), "Next week".into()));
        with_follow
            .follow
            .insert("10".into(), (String::new(), String::new()));
        let errors = CheckIn::parse(&with_follow).expect_err("bad");
        assert_eq!(errors.keys().collect::<Vec<_>>(), ["follow-7", "follow-8"]);
        with_follow.follow.remove("7");
        with_follow.follow.remove("8");
        let check_in = CheckIn::parse(&with_follow).expect("valid");
        assert_eq!(
            check_in.follow,
            [(9, Outcome::NotYet, Some("Next week".into()))]
        );
    }
}
