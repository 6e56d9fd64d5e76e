//! Reflections the circle reads: the ones their authors shared.
//!
//! A reflection kept for "only me" is read by its author alone, on their
//! own check-in form and in their own export; nothing here returns it.

use diesel::prelude::*;
use serde::Serialize;

use crate::db::schema::{check_ins, memberships, people};
use crate::db::{DbConnection, DbError};
use crate::rounds::check_in::Own;

/// A shared reflection, with its author.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Shared {
    pub membership_id: i64,
    pub name: String,
    pub body: String,
}

/// The round's shared reflections, by author's name.
pub fn shared_in_round(conn: &mut DbConnection, round_id: i64) -> Result<Vec<Shared>, DbError> {
    Ok(in_round(conn, round_id, None)?.1)
}

/// The viewer's own check-in's reflection, whoever reads it, and the
/// round's shared reflections (theirs among them if they shared it), in one
/// read for the round page.
pub fn in_round(
    conn: &mut DbConnection,
    round_id: i64,
    viewer: Option<i64>,
) -> Result<(Option<Own>, Vec<Shared>), DbError> {
    let viewer = viewer.unwrap_or(-1);
    let rows = check_ins::table
        .inner_join(memberships::table.inner_join(people::table))
        .filter(check_ins::round_id.eq(round_id))
        .filter(
            check_ins::membership_id
                .eq(viewer)
                .or(check_ins::shared.eq(true).and(check_ins::reflection.ne(""))),
        )
        .order((people::display_name.asc(), memberships::id.asc()))
        .select((
            memberships::id,
            people::display_name,
            check_ins::reflection,
            check_ins::shared,
        ))
        .load::<(i64, String, String, bool)>(conn)?;
    let mut own = None;
    let mut shared = Vec::new();
    for (membership_id, name, body, is_shared) in rows {
        if membership_id == viewer {
            own = Some(Own {
                reflection: body.clone(),
                shared: is_shared,
            });
        }
        if is_shared && !body.is_empty() {
            shared.push(Shared {
                membership_id,
                name,
                body,
            });
        }
    }
    Ok((own, shared))
}
