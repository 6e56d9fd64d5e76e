//! One-click choices in round emails: how an earlier commitment went
//! (Done, Partly, Not yet, Release), skipping the round, or going away for a
//! while.
//!
//! Each choice is its own `action_tokens` row (only the token's SHA-256 is
//! stored) for one member and round. Opening the link changes nothing, as
//! mail scanners open links: its page shows what the choice will do, and
//! its button posts. A link works once, and only while its round is open;
//! an away link, which asks for dates, works for [`AWAY_LINK_LIFETIME`].

use chrono::{Duration, NaiveDate, NaiveDateTime};
use diesel::prelude::*;

use super::away::{self, AwayDates};
use super::check_in::{self, Outcome};
use crate::auth::Token;
use crate::circles::store::STATUS_ACTIVE;
use crate::clock;
use crate::db::schema::{
    action_tokens, circles, commitments, follow_throughs, memberships, people, rounds,
};
use crate::db::{DbConnection, DbError, write_transaction};

pub const KIND_FOLLOW: &str = "follow";
pub const KIND_SKIP: &str = "skip";
pub const KIND_AWAY: &str = "away";

/// How long an emailed away link keeps working.
pub const AWAY_LINK_LIFETIME: Duration = Duration::days(30);

/// What a link will do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    Follow {
        commitment_id: i64,
        commitment: String,
        outcome: Outcome,
    },
    Skip,
    Away,
}

/// A usable link, as its page describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub choice: Choice,
    pub membership_id: i64,
    pub member_name: String,
    pub circle_id: i64,
    pub circle_name: String,
    pub time_zone: String,
    pub round_id: i64,
    pub round_number: i32,
}

/// Why a link cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unusable {
    /// Not a link we made, or its member has left.
    Unknown,
    /// It has done its work once already.
    Used,
    /// Its round has closed, or an away link has grown old.
    Expired,
    /// The commitment has been settled some other way since.
    Settled,
}

/// The link's address.
pub fn url(public_base: &str, token: &Token) -> String {
    format!("{public_base}/act/{}", token.as_str())
}

type LinkRow = (
    String,
    Option<i64>,
    Option<String>,
    NaiveDateTime,
    Option<NaiveDateTime>,
    i64,
    String,
    i64,
    String,
    String,
    i64,
    i32,
    Option<NaiveDateTime>,
);

/// Reads a link without using it.
pub fn peek(
    conn: &mut DbConnection,
    token: &Token,
    now: NaiveDateTime,
) -> Result<Result<Pending, Unusable>, DbError> {
    let row = action_tokens::table
        .inner_join(rounds::table.inner_join(circles::table))
        .inner_join(memberships::table.inner_join(people::table))
        .filter(action_tokens::token_hash.eq(token.hash().as_str()))
        .filter(action_tokens::kind.eq_any([KIND_FOLLOW, KIND_SKIP, KIND_AWAY]))
        .filter(memberships::status.eq(STATUS_ACTIVE))
        .filter(people::deleted_at.is_null())
        .select((
            action_tokens::kind,
            action_tokens::commitment_id,
            action_tokens::choice,
            action_tokens::expires_at,
            action_tokens::used_at,
            memberships::id,
            people::display_name,
            circles::id,
            circles::name,
            circles::time_zone,
            rounds::id,
            rounds::number,
            rounds::closed_at,
        ))
        .first::<LinkRow>(conn)
        .optional()?;
    let Some((
        kind,
        commitment_id,
        choice,
        expires_at,
        used_at,
        membership_id,
        member_name,
        circle_id,
        circle_name,
        time_zone,
        round_id,
        round_number,
        closed_at,
    )) = row
    else {
        return Ok(Err(Unusable::Unknown));
    };
    if used_at.is_some() {
        return Ok(Err(Unusable::Used));
    }
    if expires_at <= now || (kind != KIND_AWAY && closed_at.is_some()) {
        return Ok(Err(Unusable::Expired));
    }
    let choice = match kind.as_str() {
        KIND_SKIP => Choice::Skip,
        KIND_AWAY => Choice::Away,
        _ => {
            let (Some(commitment_id), Some(outcome)) =
                (commitment_id, choice.as_deref().and_then(Outcome::parse))
            else {
                return Ok(Err(Unusable::Unknown));
            };
            let still_open = check_in::open_before(conn, membership_id, round_id, round_number)?
                .into_iter()
                .any(|c| c.id == commitment_id);
            if !still_open {
                return Ok(Err(Unusable::Settled));
            }
            let commitment = commitments::table
                .find(commitment_id)
                .select(commitments::body)
                .first(conn)?;
            Choice::Follow {
                commitment_id,
                commitment,
                outcome,
            }
        }
    };
    Ok(Ok(Pending {
        choice,
        membership_id,
        member_name,
        circle_id,
        circle_name,
        time_zone,
        round_id,
        round_number,
    }))
}

/// Uses a link once: records its choice and marks it used, together.
/// `away` carries the dates an away link asks for (already checked).
pub fn perform(
    conn: &mut DbConnection,
    token: &Token,
    away: Option<AwayDates>,
    now: NaiveDateTime,
) -> Result<Result<Pending, Unusable>, DbError> {
    write_transaction(conn, |conn| {
        let pending = match peek(conn, token, now)? {
            Ok(pending) => pending,
            Err(unusable) => return Ok(Err(unusable)),
        };
        if pending.choice == Choice::Away && away.is_none() {
            return Ok(Err(Unusable::Unknown));
        }
        // Marked first and on condition, so that two presses at once
        // record one choice.
        let marked = diesel::update(
            action_tokens::table
                .filter(action_tokens::token_hash.eq(token.hash().as_str()))
                .filter(action_tokens::used_at.is_null()),
        )
        .set(action_tokens::used_at.eq(now))
        .execute(conn)?;
        if marked != 1 {
            return Ok(Err(Unusable::Used));
        }
        match &pending.choice {
            Choice::Follow {
                commitment_id,
                outcome,
                ..
            } => {
                // A note written on the round page stays.
                let note: Option<String> = follow_throughs::table
                    .filter(follow_throughs::commitment_id.eq(commitment_id))
                    .filter(follow_throughs::round_id.eq(pending.round_id))
                    .select(follow_throughs::note)
                    .first::<Option<String>>(conn)
                    .optional()?
                    .flatten();
                check_in::record_follow_through(
                    conn,
                    *commitment_id,
                    pending.round_id,
                    *outcome,
                    note.as_deref(),
                    now,
                )?
            }
            Choice::Skip => away::skip(conn, pending.round_id, pending.membership_id, now)?,
            Choice::Away => {
                if let Some(dates) = away {
                    away::add(conn, pending.membership_id, dates, now)?;
                }
            }
        }
        Ok(Ok(pending))
    })
}

/// The circle's local date at `now`, for checking away dates.
pub fn local_today(time_zone: &str, now: NaiveDateTime) -> NaiveDate {
    now.and_utc()
        .with_timezone(&clock::zone_or_utc(time_zone))
        .date_naive()
}
