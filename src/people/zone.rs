//! The time zone a person reads times in: chosen on `/me`, empty until
//! then. Any name the zone database knows is taken, legacy ones
//! (`Asia/Calcutta`, `US/Eastern`) included, and kept as given.

use chrono_tz::Tz;
use diesel::prelude::*;

use crate::circles::cadence::parse_time_zone;
use crate::db::schema::people;
use crate::db::{DbConnection, DbError};

/// Why a zone is refused.
pub const UNKNOWN_ZONE: &str = "Choose a time zone from the list, or type one the time zone database knows, such as Europe/London.";

/// The person's zone, if they chose one.
pub fn of(conn: &mut DbConnection, person_id: i64) -> Result<Option<Tz>, DbError> {
    let name: Option<String> = people::table
        .find(person_id)
        .select(people::time_zone)
        .first(conn)
        .optional()?
        .flatten();
    Ok(name.and_then(|name| parse_time_zone(&name).ok()))
}

/// Whether the person with `email` has yet to choose a zone (true too
/// when there is nobody with that address yet).
pub fn unchosen_for_address(conn: &mut DbConnection, email: &str) -> Result<bool, DbError> {
    let chosen: Option<Option<String>> = people::table
        .filter(super::email_is(email))
        .filter(people::deleted_at.is_null())
        .select(people::time_zone)
        .first(conn)
        .optional()?;
    Ok(chosen.flatten().is_none())
}

/// A zone as typed or picked: its name trimmed, when the database knows it.
pub fn parse(raw: &str) -> Result<String, &'static str> {
    let name = raw.trim();
    parse_time_zone(name)
        .map(|_| name.to_string())
        .map_err(|_| UNKNOWN_ZONE)
}

/// Keeps `name` (already parsed) as the person's zone.
pub fn set(conn: &mut DbConnection, person_id: i64, name: &str) -> Result<(), DbError> {
    diesel::update(people::table.find(person_id))
        .set(people::time_zone.eq(Some(name)))
        .execute(conn)?;
    Ok(())
}

/// Keeps `name` (already parsed) as the person's zone unless they have
/// chosen one.
pub fn set_if_unset(conn: &mut DbConnection, person_id: i64, name: &str) -> Result<(), DbError> {
    diesel::update(
        people::table
            .find(person_id)
            .filter(people::time_zone.is_null()),
    )
    .set(people::time_zone.eq(Some(name)))
    .execute(conn)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_zones_are_taken_as_given_and_others_refused() {
        assert_eq!(parse(" Europe/London "), Ok("Europe/London".into()));
        assert_eq!(parse("Asia/Calcutta"), Ok("Asia/Calcutta".into()));
        assert_eq!(parse("Mars/Olympus"), Err(UNKNOWN_ZONE));
        assert_eq!(parse(""), Err(UNKNOWN_ZONE));
    }
}
