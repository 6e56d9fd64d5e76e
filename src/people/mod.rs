//! A person's own data: taking a copy of it ([`export`]) and deleting it
//! ([`delete`]), and a facilitator's copy of everything their circle holds.
//!
//! Both exports come as JSON (the whole structure) and as one CSV file in
//! "long" form: one row per thing, a `record` column saying what the row is,
//! and the same columns for every kind, left empty where they do not apply.
//!
//! Someone who deleted their data appears everywhere as [`FORMER_MEMBER`].
//!
//! People are found by address through [`email_is`], which knows every form
//! an address may be stored in.

pub mod address;
pub mod delete;
pub mod export;
pub mod zone;

use chrono::{NaiveDate, NaiveDateTime, SecondsFormat};
use diesel::prelude::*;

use crate::db::schema::people;
use crate::mail::EmailAddress;

/// How a person who deleted their data is named in what others see.
pub const FORMER_MEMBER: &str = "A former member";

/// Matches the person stored under `email`, an address in its stored form.
///
/// Rows written before domains were put in their ASCII form hold the
/// domain as it was typed, lower-cased (`x@exämple.de`). Punycode cannot be
/// computed in portable SQL, so those rows were not rewritten by a
/// migration; instead a lookup also tries the Unicode spelling of the
/// domain, which finds them when the domain was typed in Unicode, the usual
/// case. New rows are always written in the stored form.
pub fn email_is(email: &str) -> diesel::dsl::EqAny<people::email, Vec<String>> {
    let spellings = match EmailAddress::parse(email) {
        Ok(address) => address.stored_spellings(),
        Err(_) => vec![email.to_string()],
    };
    people::email.eq_any(spellings)
}

/// The name others see: the person's own, or [`FORMER_MEMBER`] once they
/// deleted their data (the row keeps the placeholder too; this makes sure).
pub fn shown_name(display_name: &str, deleted_at: Option<NaiveDateTime>) -> String {
    match deleted_at {
        Some(_) => FORMER_MEMBER.to_string(),
        None => display_name.to_string(),
    }
}

/// A stored UTC instant as RFC 3339, e.g. `2027-03-01T09:00:00Z`.
pub(crate) fn stamp(at: NaiveDateTime) -> String {
    at.and_utc().to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub(crate) fn day(on: NaiveDate) -> String {
    on.format("%Y-%m-%d").to_string()
}

/// Changes the name others see.
pub fn rename(
    conn: &mut crate::db::DbConnection,
    person_id: i64,
    name: &crate::auth::sign_in::DisplayName,
) -> Result<(), crate::db::DbError> {
    use diesel::prelude::*;
    diesel::update(crate::db::schema::people::table.find(person_id))
        .set(crate::db::schema::people::display_name.eq(name.as_str()))
        .execute(conn)?;
    Ok(())
}
