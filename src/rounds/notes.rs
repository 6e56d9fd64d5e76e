//! A word for a peer: a short note from one member to another during a
//! round, and the one brief answer its recipient may give.
//!
//! Like support messages, notes send no mail of their own. The circle reads
//! them on the round page and in the digest; the recipient finds theirs in
//! their next check-in email, and the writer finds the answer in theirs.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;

use crate::circles::store::STATUS_ACTIVE;
use crate::db::binds::one_of;
use crate::db::schema::{memberships, peer_notes, people, rounds};
use crate::db::{DbConnection, DbError};
use crate::text::{self, sentence};

pub const MAX_NOTE_LEN: usize = 500;
/// An answer is brief: "thank you", "yes, let's talk".
pub const MAX_ANSWER_LEN: usize = 200;

/// A note as the circle reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Note {
    pub id: i64,
    #[serde(skip)]
    pub from_id: i64,
    pub from: String,
    #[serde(skip)]
    pub to_id: i64,
    pub to: String,
    pub body: String,
    pub answer: Option<String>,
}

/// The notes left during a round, oldest first.
pub fn in_round(conn: &mut DbConnection, round_id: i64) -> Result<Vec<Note>, DbError> {
    let (authors, recipients) = diesel::alias!(memberships as authors, memberships as recipients);
    let (author_people, recipient_people) =
        diesel::alias!(people as author_people, people as recipient_people);
    let rows = peer_notes::table
        .inner_join(
            authors.on(authors
                .field(memberships::id)
                .eq(peer_notes::author_membership_id)),
        )
        .inner_join(
            author_people.on(author_people
                .field(people::id)
                .eq(authors.field(memberships::person_id))),
        )
        .inner_join(
            recipients.on(recipients
                .field(memberships::id)
                .eq(peer_notes::recipient_membership_id)),
        )
        .inner_join(
            recipient_people.on(recipient_people
                .field(people::id)
                .eq(recipients.field(memberships::person_id))),
        )
        .filter(peer_notes::round_id.eq(round_id))
        .order(peer_notes::id.asc())
        .select((
            peer_notes::id,
            peer_notes::author_membership_id,
            author_people.field(people::display_name),
            peer_notes::recipient_membership_id,
            recipient_people.field(people::display_name),
            peer_notes::body,
            peer_notes::answer,
        ))
        .load::<(i64, i64, String, i64, String, String, Option<String>)>(conn)?;
    Ok(rows
        .into_iter()
        .map(|(id, from_id, from, to_id, to, body, answer)| Note {
            id,
            from_id,
            from,
            to_id,
            to,
            body,
            answer,
        })
        .collect())
}

/// A note as typed: refused when empty, too long or carrying control
/// characters.
pub fn parse_note(raw: &str) -> Result<String, String> {
    text::multi_line(raw, MAX_NOTE_LEN, true).map_err(|error| sentence(&error.to_string()))
}

/// An answer as typed, to a note or to support.
pub fn parse_answer(raw: &str) -> Result<String, String> {
    text::single_line(raw, MAX_ANSWER_LEN).map_err(|error| sentence(&error.to_string()))
}

/// What leaving a note did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Left {
    Saved,
    /// A note is for someone else.
    ToOneself,
    /// The recipient is not an active member of this circle.
    NotInCircle,
}

/// Leaves `body` (already parsed) for `recipient`, a member of `circle_id`.
pub fn leave(
    conn: &mut DbConnection,
    circle_id: i64,
    round_id: i64,
    author: i64,
    recipient: i64,
    body: &str,
    now: NaiveDateTime,
) -> Result<Left, DbError> {
    if author == recipient {
        return Ok(Left::ToOneself);
    }
    let member: Option<i64> = memberships::table
        .find(recipient)
        .filter(memberships::circle_id.eq(circle_id))
        .filter(memberships::status.eq(STATUS_ACTIVE))
        .select(memberships::id)
        .first(conn)
        .optional()?;
    if member.is_none() {
        return Ok(Left::NotInCircle);
    }
    diesel::insert_into(peer_notes::table)
        .values((
            peer_notes::round_id.eq(round_id),
            peer_notes::author_membership_id.eq(author),
            peer_notes::recipient_membership_id.eq(recipient),
            peer_notes::body.eq(body),
            peer_notes::created_at.eq(now),
        ))
        .execute(conn)?;
    Ok(Left::Saved)
}

/// What answering a note or support did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answered {
    Saved,
    /// It has its answer already; one is all it takes.
    Already,
    /// Only its recipient answers it (or there is no such thing).
    NotYours,
}

/// Sets the answer of a note `recipient` received, once.
pub fn answer(
    conn: &mut DbConnection,
    note_id: i64,
    recipient: i64,
    answer: &str,
    now: NaiveDateTime,
) -> Result<Answered, DbError> {
    let theirs = peer_notes::table
        .filter(peer_notes::id.eq(note_id))
        .filter(peer_notes::recipient_membership_id.eq(recipient));
    let changed = diesel::update(theirs.filter(peer_notes::answer.is_null()))
        .set((
            peer_notes::answer.eq(answer),
            peer_notes::answered_at.eq(now),
        ))
        .execute(conn)?;
    if changed == 1 {
        return Ok(Answered::Saved);
    }
    let exists: bool = diesel::select(diesel::dsl::exists(theirs)).get_result(conn)?;
    Ok(if exists {
        Answered::Already
    } else {
        Answered::NotYours
    })
}

/// Something a member's next check-in email tells them: a note they
/// received, or the answer to one they wrote.
#[derive(Debug, Clone)]
pub struct ForEmail {
    /// Whose email it goes in.
    pub membership_id: i64,
    pub at: NaiveDateTime,
    pub line: Received,
}

/// A note or an answer, as a check-in email says it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Received {
    pub from: String,
    /// The note itself, for an answer to it.
    pub note: Option<String>,
    pub body: String,
}

/// The notes received, and the answers to notes written, by the members of
/// `circle_ids` since `since`, oldest first.
pub fn for_emails(
    conn: &mut DbConnection,
    circle_ids: &[i64],
    since: NaiveDateTime,
) -> Result<Vec<ForEmail>, DbError> {
    let in_circles = || {
        peer_notes::table
            .inner_join(rounds::table)
            .filter(one_of(rounds::circle_id, circle_ids))
    };
    let received = in_circles()
        .inner_join(
            memberships::table
                .on(memberships::id.eq(peer_notes::author_membership_id))
                .inner_join(people::table),
        )
        .filter(peer_notes::created_at.ge(since))
        .order(peer_notes::id.asc())
        .select((
            peer_notes::recipient_membership_id,
            peer_notes::created_at,
            people::display_name,
            peer_notes::body,
        ))
        .load::<(i64, NaiveDateTime, String, String)>(conn)?;
    let answers = in_circles()
        .inner_join(
            memberships::table
                .on(memberships::id.eq(peer_notes::recipient_membership_id))
                .inner_join(people::table),
        )
        .filter(peer_notes::answered_at.ge(since))
        .order(peer_notes::id.asc())
        .select((
            peer_notes::author_membership_id,
            peer_notes::answered_at.assume_not_null(),
            people::display_name,
            peer_notes::body,
            peer_notes::answer.assume_not_null(),
        ))
        .load::<(i64, NaiveDateTime, String, String, String)>(conn)?;
    let mut lines: Vec<ForEmail> = received
        .into_iter()
        .map(|(membership_id, at, from, body)| ForEmail {
            membership_id,
            at,
            line: Received {
                from,
                note: None,
                body,
            },
        })
        .collect();
    lines.extend(
        answers
            .into_iter()
            .map(|(membership_id, at, from, note, body)| ForEmail {
                membership_id,
                at,
                line: Received {
                    from,
                    note: Some(note),
                    body,
                },
            }),
    );
    lines.sort_by_key(|line| line.at);
    Ok(lines)
}
