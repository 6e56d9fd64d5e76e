//! Round links: the address in a check-in or reminder email that lets one
//! member check in for one round without signing in.
//!
//! A link names its round in the path and carries a token
//! (`/circles/<id>/rounds/<n>?key=<token>`); only the token's SHA-256 is
//! stored, in `round_links`, next to the round and the membership it was
//! written for. It works until the round closes and grants nothing beyond
//! that round's page and what can be done there. Each email gets a link of
//! its own, and its token is the email's one key: its one-click choices
//! (`super::actions`) and its unsubscribe link (`circles::unsubscribe`)
//! name it too, and [`record_use`] keeps the first use of each.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::auth::Token;
use crate::circles::store::STATUS_ACTIVE;
use crate::db::schema::{memberships, people, round_link_uses, round_links, rounds};
use crate::db::{DbConnection, DbError};

/// The link's address.
pub fn url(public_base: &str, circle_id: i64, number: i32, token: &Token) -> String {
    format!(
        "{public_base}/circles/{circle_id}/rounds/{number}?key={}",
        token.as_str()
    )
}

/// Whom a link lets in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub person_id: i64,
    pub display_name: String,
    pub membership_id: i64,
    /// The zone the holder reads times in, when they chose one.
    pub time_zone: Option<chrono_tz::Tz>,
}

/// Why a link does not open the page it was used on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Not a link we made, or its member has left the circle.
    Unknown,
    /// A real link, but to another round or circle.
    OtherRound,
    /// The round has closed; signing in still works.
    Closed,
}

/// Checks `key` against round `number` of `circle_id` at `now`.
pub fn resolve(
    conn: &mut DbConnection,
    key: &str,
    circle_id: i64,
    number: i32,
    now: NaiveDateTime,
) -> Result<Result<Holder, Refusal>, DbError> {
    let Some(token) = Token::parse(key) else {
        return Ok(Err(Refusal::Unknown));
    };
    let row = round_links::table
        .inner_join(rounds::table)
        .inner_join(memberships::table.inner_join(people::table))
        .filter(round_links::token_hash.eq(token.hash().as_str()))
        .filter(memberships::status.eq(STATUS_ACTIVE))
        .filter(people::deleted_at.is_null())
        .select((
            rounds::circle_id,
            rounds::number,
            rounds::closes_at,
            rounds::closed_at,
            people::id,
            people::display_name,
            memberships::id,
            people::time_zone,
        ))
        .first::<(
            i64,
            i32,
            NaiveDateTime,
            Option<NaiveDateTime>,
            i64,
            String,
            i64,
            Option<String>,
        )>(conn)
        .optional()?;
    let Some((
        link_circle,
        link_number,
        closes_at,
        closed_at,
        person_id,
        display_name,
        membership_id,
        zone,
    )) = row
    else {
        return Ok(Err(Refusal::Unknown));
    };
    if (link_circle, link_number) != (circle_id, number) {
        return Ok(Err(Refusal::OtherRound));
    }
    if closed_at.is_some() || closes_at <= now {
        return Ok(Err(Refusal::Closed));
    }
    Ok(Ok(Holder {
        person_id,
        display_name,
        membership_id,
        time_zone: zone.and_then(|name| name.parse().ok()),
    }))
}

/// Records the first use of `choice` through the link `link_id`: `false`
/// when it was used before. A conditional insert, so that two presses at
/// once record one use.
pub fn record_use(
    conn: &mut DbConnection,
    link_id: i64,
    choice: &str,
    now: NaiveDateTime,
) -> Result<bool, DbError> {
    let insert = diesel::insert_into(round_link_uses::table)
        .values((
            round_link_uses::round_link_id.eq(link_id),
            round_link_uses::choice.eq(choice),
            round_link_uses::used_at.eq(now),
        ))
        .on_conflict((round_link_uses::round_link_id, round_link_uses::choice))
        .do_nothing();
    let inserted = match conn {
        DbConnection::Postgresql(conn) => insert.execute(conn)?,
        DbConnection::Sqlite(conn) => insert.execute(conn)?,
    };
    Ok(inserted == 1)
}
