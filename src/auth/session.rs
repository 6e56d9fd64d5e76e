//! Signed-in browsers. The cookie holds a random session id; the database
//! holds only its hash, so signing out (deleting the row) ends it everywhere.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;

use super::token::Token;
use crate::db::schema::{people, sessions};
use crate::db::{DbConnection, DbError, natively};

/// A session lasts this long after it was last used.
pub const SESSION_LIFETIME: Duration = Duration::days(30);
/// Refreshing the expiry on every request would write on every page view;
/// once a day keeps sessions alive at a fraction of the cost.
const REFRESH_AFTER: Duration = Duration::days(1);

/// Who a valid session belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn {
    pub person_id: i64,
    pub email: String,
    pub display_name: String,
    /// The zone they read times in, when they chose one.
    pub time_zone: Option<chrono_tz::Tz>,
}

/// Starts a session for `person_id` and returns the id for the cookie.
pub fn start(
    conn: &mut DbConnection,
    person_id: i64,
    now: NaiveDateTime,
) -> Result<Token, DbError> {
    let token = Token::generate();
    diesel::insert_into(sessions::table)
        .values((
            sessions::id_hash.eq(token.hash().as_str()),
            sessions::person_id.eq(person_id),
            sessions::created_at.eq(now),
            sessions::expires_at.eq(now + SESSION_LIFETIME),
            sessions::last_seen_at.eq(now),
        ))
        .execute(conn)?;
    Ok(token)
}

/// The person behind a live session, refreshing its expiry now and then.
pub fn find(
    conn: &mut DbConnection,
    token: &Token,
    now: NaiveDateTime,
) -> Result<Option<SignedIn>, DbError> {
    let Some(found) = look_up(conn, token, now)? else {
        return Ok(None);
    };
    if found.due_refresh {
        refresh(conn, token, now)?;
    }
    Ok(Some(found.person))
}

/// A live session's person, and whether its expiry is due to move on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub person: SignedIn,
    pub due_refresh: bool,
}

/// The person behind a live session, only reading: a caller that cannot
/// write here calls [`refresh`] afterwards when the session is due.
pub fn look_up(
    conn: &mut DbConnection,
    token: &Token,
    now: NaiveDateTime,
) -> Result<Option<Found>, DbError> {
    let hash = token.hash();
    // On every signed-in page.
    let query = sessions::table
        .inner_join(people::table)
        .filter(sessions::id_hash.eq(hash.as_str()))
        .filter(sessions::expires_at.gt(now))
        .filter(people::deleted_at.is_null())
        .select((
            people::id,
            people::email,
            people::display_name,
            people::time_zone,
            sessions::last_seen_at,
        ));
    let found = natively!(conn, |conn| query
        .first::<(i64, String, String, Option<String>, NaiveDateTime)>(conn)
        .optional())?;
    Ok(
        found.map(|(person_id, email, display_name, zone, last_seen)| Found {
            person: SignedIn {
                person_id,
                email,
                display_name,
                time_zone: zone.and_then(|name| name.parse().ok()),
            },
            due_refresh: now - last_seen > REFRESH_AFTER,
        }),
    )
}

/// Moves a session's expiry on from `now`.
pub fn refresh(conn: &mut DbConnection, token: &Token, now: NaiveDateTime) -> Result<(), DbError> {
    diesel::update(sessions::table.filter(sessions::id_hash.eq(token.hash().as_str())))
        .set((
            sessions::last_seen_at.eq(now),
            sessions::expires_at.eq(now + SESSION_LIFETIME),
        ))
        .execute(conn)?;
    Ok(())
}

/// Ends a session; ending one that is already gone is fine.
pub fn end(conn: &mut DbConnection, token: &Token) -> Result<(), DbError> {
    diesel::delete(sessions::table.filter(sessions::id_hash.eq(token.hash().as_str())))
        .execute(conn)?;
    Ok(())
}
