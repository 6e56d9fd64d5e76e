//! Carrying each other: "I could use help" on one's own commitment, and
//! support messages on a peer's.
//!
//! Neither sends mail of its own. What was asked for and offered appears on
//! the round page, in the next check-in email and in the round's digest.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};

use crate::circles::store::STATUS_ACTIVE;
use crate::db::binds::one_of;
use crate::db::schema::{commitments, memberships, people, rounds, support_messages};
use crate::db::{DbConnection, DbError};
use crate::text::{self, sentence};

use super::notes::{self, Answered};

pub const MAX_SUPPORT_LEN: usize = 500;

/// A support message as people read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Support {
    pub id: i64,
    pub author: String,
    pub body: String,
    /// The commitment owner's one answer.
    pub answer: Option<String>,
}

/// A commitment still open in the circle, with the support it has had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CircleCommitment {
    pub id: i64,
    pub membership_id: i64,
    pub name: String,
    pub body: String,
    pub made_in_round: i32,
    pub help_wanted: bool,
    pub support: Vec<Support>,
}

/// The open commitments of the circle's active members, made in round
/// `up_to` or earlier, oldest round first, with their support messages.
pub fn open_in_circle(
    conn: &mut DbConnection,
    circle_id: i64,
    up_to: i32,
) -> Result<Vec<CircleCommitment>, DbError> {
    let mut open = open_in_circles(conn, &[circle_id])?
        .remove(&circle_id)
        .unwrap_or_default();
    open.retain(|commitment| commitment.made_in_round <= up_to);
    Ok(open)
}

/// The open commitments of every round so far in each of `circle_ids`, in
/// [`open_in_circle`]'s order; for a batch of rounds about to open, read in
/// one go. Circles with none are absent.
pub fn open_in_circles(
    conn: &mut DbConnection,
    circle_ids: &[i64],
) -> Result<HashMap<i64, Vec<CircleCommitment>>, DbError> {
    let rows = commitments::table
        .inner_join(rounds::table)
        .inner_join(memberships::table.inner_join(people::table))
        .filter(one_of(rounds::circle_id, circle_ids))
        .filter(one_of(commitments::status, &["open", "not_yet"]))
        .filter(memberships::status.eq(STATUS_ACTIVE))
        .order((
            rounds::circle_id.asc(),
            rounds::number.asc(),
            people::display_name.asc(),
            commitments::position.asc(),
        ))
        .select((
            rounds::circle_id,
            commitments::id,
            memberships::id,
            people::display_name,
            commitments::body,
            rounds::number,
            commitments::help_wanted,
        ))
        .load::<(i64, i64, i64, String, String, i32, bool)>(conn)?;
    let ids: Vec<i64> = rows.iter().map(|row| row.1).collect();
    let mut support = BTreeMap::new();
    for chunk in ids.chunks(IDS_PER_QUERY) {
        support.extend(support_on(conn, chunk)?);
    }
    let mut by_circle: HashMap<i64, Vec<CircleCommitment>> = HashMap::new();
    for (circle_id, id, membership_id, name, body, made_in_round, help_wanted) in rows {
        by_circle
            .entry(circle_id)
            .or_default()
            .push(CircleCommitment {
                id,
                membership_id,
                name,
                body,
                made_in_round,
                help_wanted,
                support: support.remove(&id).unwrap_or_default(),
            });
    }
    Ok(by_circle)
}

/// Ids bound in one `IN (...)` list: within both backends' limits.
const IDS_PER_QUERY: usize = 1000;

/// A support message as a check-in email reports it to the commitment's
/// owner.
pub struct ReceivedSupport {
    /// The owner of the commitment it was left on.
    pub membership_id: i64,
    pub created_at: NaiveDateTime,
    pub from: String,
    pub commitment: String,
    pub body: String,
}

/// Support received on the commitments of every member of `circle_ids`
/// since `since`, oldest first.
pub fn received_in_circles(
    conn: &mut DbConnection,
    circle_ids: &[i64],
    since: NaiveDateTime,
) -> Result<Vec<ReceivedSupport>, DbError> {
    let rows = support_messages::table
        .inner_join(commitments::table.inner_join(rounds::table))
        .inner_join(
            memberships::table
                .on(memberships::id.eq(support_messages::author_membership_id))
                .inner_join(people::table),
        )
        .filter(one_of(rounds::circle_id, circle_ids))
        .filter(support_messages::created_at.ge(since))
        .order(support_messages::id.asc())
        .select((
            commitments::membership_id,
            support_messages::created_at,
            people::display_name,
            commitments::body,
            support_messages::body,
        ))
        .load::<(i64, NaiveDateTime, String, String, String)>(conn)?;
    Ok(rows
        .into_iter()
        .map(
            |(membership_id, created_at, from, commitment, body)| ReceivedSupport {
                membership_id,
                created_at,
                from,
                commitment,
                body,
            },
        )
        .collect())
}

/// Support messages on each of `commitment_ids`, oldest first.
fn support_on(
    conn: &mut DbConnection,
    commitment_ids: &[i64],
) -> Result<BTreeMap<i64, Vec<Support>>, DbError> {
    let rows = support_messages::table
        .inner_join(
            memberships::table
                .on(memberships::id.eq(support_messages::author_membership_id))
                .inner_join(people::table),
        )
        .filter(support_messages::commitment_id.eq_any(commitment_ids))
        .order(support_messages::id.asc())
        .select((
            support_messages::commitment_id,
            support_messages::id,
            people::display_name,
            support_messages::body,
            support_messages::answer,
        ))
        .load::<(i64, i64, String, String, Option<String>)>(conn)?;
    let mut by_commitment: BTreeMap<i64, Vec<Support>> = BTreeMap::new();
    for (commitment_id, id, author, body, answer) in rows {
        by_commitment
            .entry(commitment_id)
            .or_default()
            .push(Support {
                id,
                author,
                body,
                answer,
            });
    }
    Ok(by_commitment)
}

/// A support message as typed: refused when empty, too long or carrying
/// control characters.
pub fn parse_message(raw: &str) -> Result<String, String> {
    text::multi_line(raw, MAX_SUPPORT_LEN, true).map_err(|error| sentence(&error.to_string()))
}

/// What offering support did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offered {
    Saved,
    /// Support is for peers; one's own commitment takes "I could use help".
    OwnCommitment,
    /// No such commitment in this circle.
    Unknown,
}

/// Leaves `body` (already parsed) on a commitment of a peer in `circle_id`.
pub fn offer(
    conn: &mut DbConnection,
    circle_id: i64,
    round_id: i64,
    author_membership_id: i64,
    commitment_id: i64,
    body: &str,
    now: NaiveDateTime,
) -> Result<Offered, DbError> {
    let owner: Option<i64> = commitments::table
        .inner_join(memberships::table)
        .filter(commitments::id.eq(commitment_id))
        .filter(memberships::circle_id.eq(circle_id))
        .select(memberships::id)
        .first(conn)
        .optional()?;
    match owner {
        None => Ok(Offered::Unknown),
        Some(owner) if owner == author_membership_id => Ok(Offered::OwnCommitment),
        Some(_) => {
            diesel::insert_into(support_messages::table)
                .values((
                    support_messages::commitment_id.eq(commitment_id),
                    support_messages::author_membership_id.eq(author_membership_id),
                    support_messages::round_id.eq(round_id),
                    support_messages::body.eq(body),
                    support_messages::created_at.eq(now),
                ))
                .execute(conn)?;
            Ok(Offered::Saved)
        }
    }
}

/// Sets or clears "I could use help" on one of the member's own
/// commitments. False when the commitment is not theirs; nothing changes.
pub fn set_help_wanted(
    conn: &mut DbConnection,
    membership_id: i64,
    commitment_id: i64,
    wanted: bool,
) -> Result<bool, DbError> {
    let changed = diesel::update(
        commitments::table
            .filter(commitments::id.eq(commitment_id))
            .filter(commitments::membership_id.eq(membership_id)),
    )
    .set(commitments::help_wanted.eq(wanted))
    .execute(conn)?;
    Ok(changed == 1)
}

/// Sets the answer of the commitment's owner to support on it, once.
pub fn answer(
    conn: &mut DbConnection,
    support_id: i64,
    owner: i64,
    answer: &str,
    now: NaiveDateTime,
) -> Result<Answered, DbError> {
    let on_theirs = support_messages::table
        .filter(support_messages::id.eq(support_id))
        .filter(
            support_messages::commitment_id.eq_any(
                commitments::table
                    .filter(commitments::membership_id.eq(owner))
                    .select(commitments::id),
            ),
        );
    let changed = diesel::update(on_theirs.filter(support_messages::answer.is_null()))
        .set((
            support_messages::answer.eq(answer),
            support_messages::answered_at.eq(now),
        ))
        .execute(conn)?;
    if changed == 1 {
        return Ok(Answered::Saved);
    }
    let exists: bool = diesel::select(diesel::dsl::exists(on_theirs)).get_result(conn)?;
    Ok(if exists {
        Answered::Already
    } else {
        Answered::NotYours
    })
}

/// The answers given since `since` to support written by the members of
/// `circle_ids`, for the writers' next check-in emails, oldest first.
pub fn answers_for_emails(
    conn: &mut DbConnection,
    circle_ids: &[i64],
    since: NaiveDateTime,
) -> Result<Vec<notes::ForEmail>, DbError> {
    let rows = support_messages::table
        .inner_join(
            commitments::table
                .inner_join(rounds::table)
                .inner_join(memberships::table.inner_join(people::table)),
        )
        .filter(one_of(rounds::circle_id, circle_ids))
        .filter(support_messages::answered_at.ge(since))
        .order(support_messages::answered_at.asc())
        .select((
            support_messages::author_membership_id,
            support_messages::answered_at.assume_not_null(),
            people::display_name,
            support_messages::body,
            support_messages::answer.assume_not_null(),
        ))
        .load::<(i64, NaiveDateTime, String, String, String)>(conn)?;
    Ok(rows
        .into_iter()
        .map(|(membership_id, at, from, note, body)| notes::ForEmail {
            membership_id,
            at,
            line: notes::Received {
                from,
                note: Some(note),
                body,
            },
        })
        .collect())
}

/// Support offered during a round, for its digest.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Offering {
    pub from: String,
    pub to: String,
    pub commitment: String,
    pub body: String,
    pub answer: Option<String>,
}

pub fn offered_in_round(conn: &mut DbConnection, round_id: i64) -> Result<Vec<Offering>, DbError> {
    let query = diesel::sql_query(
        "SELECT author.display_name AS from_name, owner.display_name AS to_name, \
                c.body AS commitment, s.body AS body, s.answer AS answer \
         FROM support_messages s \
         JOIN memberships am ON am.id = s.author_membership_id \
         JOIN people author ON author.id = am.person_id \
         JOIN commitments c ON c.id = s.commitment_id \
         JOIN memberships om ON om.id = c.membership_id \
         JOIN people owner ON owner.id = om.person_id \
         WHERE s.round_id = $1 \
         ORDER BY s.id",
    )
    .bind::<BigInt, _>(round_id);
    let rows: Vec<OfferingRow> = match conn {
        DbConnection::Postgresql(conn) => query.load(conn)?,
        DbConnection::Sqlite(conn) => query.load(conn)?,
    };
    Ok(rows
        .into_iter()
        .map(|row| Offering {
            from: row.from_name,
            to: row.to_name,
            commitment: row.commitment,
            body: row.body,
            answer: row.answer,
        })
        .collect())
}

#[derive(QueryableByName)]
struct OfferingRow {
    #[diesel(sql_type = Text)]
    from_name: String,
    #[diesel(sql_type = Text)]
    to_name: String,
    #[diesel(sql_type = Text)]
    commitment: String,
    #[diesel(sql_type = Text)]
    body: String,
    #[diesel(sql_type = Nullable<Text>)]
    answer: Option<String>,
}
