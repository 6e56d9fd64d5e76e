//! Reflections the circle reads: the ones their authors shared.
//!
//! A reflection kept for "only me" is read by its author alone, on their
//! own check-in form and in their own export; nothing here returns it.

use diesel::prelude::*;
use serde::Serialize;

use crate::db::schema::{check_ins, memberships, people};
use crate::db::{DbConnection, DbError};

/// A shared reflection, with its author.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Shared {
    pub membership_id: i64,
    pub name: String,
    pub body: String,
}

/// The round's shared reflections, by author's name.
pub fn shared_in_round(conn: &mut DbConnection, round_id: i64) -> Result<Vec<Shared>, DbError> {
    let rows = check_ins::table
        .inner_join(memberships::table.inner_join(people::table))
        .filter(check_ins::round_id.eq(round_id))
        .filter(check_ins::shared.eq(true))
        .filter(check_ins::reflection.ne(""))
        .order((people::display_name.asc(), memberships::id.asc()))
        .select((memberships::id, people::display_name, check_ins::reflection))
        .load::<(i64, String, String)>(conn)?;
    Ok(rows
        .into_iter()
        .map(|(membership_id, name, body)| Shared {
            membership_id,
            name,
            body,
        })
        .collect())
}
