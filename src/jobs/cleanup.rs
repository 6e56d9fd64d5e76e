//! Forgets what has expired: used or stale sign-in links, ended sessions,
//! old request counters, and the record of messages that came in a month
//! ago. Deleting by a time bound is naturally idempotent.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;

use crate::db::schema::{inbound_messages, rate_limits, sessions, sign_in_tokens};
use crate::db::{DbConnection, DbError};

/// Expired sign-in links are kept a day so a late click can be told
/// "this link has expired" rather than "unknown link".
const EXPIRED_LINK_GRACE: Duration = Duration::days(1);
/// The longest window any request limit counts over.
const LONGEST_RATE_WINDOW: Duration = Duration::days(2);
/// How long a message that came in is remembered, so that a copy of it
/// offered again is known; far longer than any mail server retries.
const INBOUND_MEMORY: Duration = Duration::days(30);

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CleanupReport {
    pub sign_in_tokens: usize,
    pub sessions: usize,
    pub rate_limits: usize,
    pub inbound_messages: usize,
}

pub fn run(conn: &mut DbConnection, now: NaiveDateTime) -> Result<CleanupReport, DbError> {
    let sign_in_tokens = diesel::delete(
        sign_in_tokens::table.filter(sign_in_tokens::expires_at.lt(now - EXPIRED_LINK_GRACE)),
    )
    .execute(conn)?;
    let sessions =
        diesel::delete(sessions::table.filter(sessions::expires_at.lt(now))).execute(conn)?;
    let rate_limits = diesel::delete(
        rate_limits::table.filter(rate_limits::window_start.lt(now - LONGEST_RATE_WINDOW)),
    )
    .execute(conn)?;
    let inbound_messages = diesel::delete(
        inbound_messages::table.filter(inbound_messages::received_at.lt(now - INBOUND_MEMORY)),
    )
    .execute(conn)?;
    Ok(CleanupReport {
        sign_in_tokens,
        sessions,
        rate_limits,
        inbound_messages,
    })
}
