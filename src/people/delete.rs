//! Deleting a person's data, in one write transaction: all of it happens,
//! or (on a refusal or an error) none of it.
//!
//! The rule. Their own words are removed; what other people's history needs
//! stays, without them in it:
//!
//! - Removed: every reflection (the check-in stays, empty, so "checked in"
//!   and "late" still count), every commitment's text (the commitment stays,
//!   empty, with its status and outcomes), every follow-through note (the
//!   outcome stays), every support message they wrote, and every support
//!   message written to them on their commitments (addressed to someone who
//!   is no longer there, and not the writer's to keep in their name), with
//!   the answers to them; likewise every note they wrote or received. Also
//!   deleted: away periods, skipped rounds, one-click links, round links,
//!   sessions (they are signed out everywhere), sign-in links, invitations
//!   addressed to them, and every email to them in the outbox, sent or not.
//! - Kept, anonymised: the person's row, named "A former member", with the
//!   email address replaced by `deleted-<id>@deleted.invalid` (a domain that
//!   can never receive mail, and unique, so the real address is free to sign
//!   up again as someone new) and `deleted_at` set. Their memberships end
//!   (`left`, dated now); ones already ended keep their status and date. So
//!   a circle's rounds, commitment counts and follow-through shape stay as
//!   they were, with no words or name of theirs in them.
//! - Not touched: counters of sign-in requests (they expire within two days
//!   and keep limits honest) and the list of addresses that bounce (it is
//!   about an address, not a person).
//! - Refused, nothing changed: while they are the only facilitator of a
//!   circle that still has other active members. They must make someone
//!   else facilitator first, as when leaving (see `circles::store::leave`).
//!   A circle they were the last active member of is archived, so no more
//!   rounds open for nobody.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

use super::FORMER_MEMBER;
use crate::circles::store::{self, CircleStatus, ROLE_FACILITATOR, STATUS_ACTIVE};
use crate::db::schema::{
    action_tokens, address_changes, away_periods, check_ins, circles, commitments, deliveries,
    follow_throughs, invites, memberships, peer_notes, people, round_links, round_skips, sessions,
    sign_in_tokens, support_messages,
};
use crate::db::{DbConnection, DbError, write_transaction};

/// The status a membership ends with when its person deletes their data.
const STATUS_LEFT: &str = "left";

/// What asking to delete did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deletion {
    Deleted,
    /// Nothing changed: they alone facilitate this circle, which still has
    /// other active members.
    SoleFacilitator {
        circle_id: i64,
        circle_name: String,
    },
    /// No such person, or their data is already deleted.
    NotFound,
}

/// A circle that would be left without a facilitator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeedsFacilitator {
    pub circle_id: i64,
    pub name: String,
}

/// The address a deleted person's row keeps: unique, and undeliverable
/// (`.invalid` is reserved for exactly that, RFC 2606).
pub fn placeholder_email(person_id: i64) -> String {
    format!("deleted-{person_id}@deleted.invalid")
}

/// Circles where `person_id` is the only active facilitator while other
/// people are still active members, by name.
pub fn circles_needing_a_facilitator(
    conn: &mut DbConnection,
    person_id: i64,
) -> Result<Vec<NeedsFacilitator>, DbError> {
    let facilitated: Vec<(i64, String)> = memberships::table
        .inner_join(circles::table)
        .filter(memberships::person_id.eq(person_id))
        .filter(memberships::status.eq(STATUS_ACTIVE))
        .filter(memberships::role.eq(ROLE_FACILITATOR))
        .order((circles::name.asc(), circles::id.asc()))
        .select((circles::id, circles::name))
        .load(conn)?;
    let mut blocking = Vec::new();
    for (circle_id, name) in facilitated {
        let others = || {
            memberships::table
                .filter(memberships::circle_id.eq(circle_id))
                .filter(memberships::status.eq(STATUS_ACTIVE))
                .filter(memberships::person_id.ne(person_id))
        };
        let other_facilitators: i64 = others()
            .filter(memberships::role.eq(ROLE_FACILITATOR))
            .count()
            .get_result(conn)?;
        let other_members: i64 = others().count().get_result(conn)?;
        if other_facilitators == 0 && other_members > 0 {
            blocking.push(NeedsFacilitator { circle_id, name });
        }
    }
    Ok(blocking)
}

/// Deletes `person_id`'s data by the rule in this module's documentation.
pub fn delete(
    conn: &mut DbConnection,
    person_id: i64,
    now: DateTime<Utc>,
) -> Result<Deletion, DbError> {
    let at = now.naive_utc();
    write_transaction(conn, |conn| {
        let email: Option<String> = people::table
            .find(person_id)
            .filter(people::deleted_at.is_null())
            .select(people::email)
            .first(conn)
            .optional()?;
        let Some(email) = email else {
            return Ok(Deletion::NotFound);
        };

        // Hold each circle they are active in (in id order, so two deletions
        // never wait on each other crosswise) before counting facilitators:
        // on PostgreSQL a facilitator leaving or deleting at the same moment
        // then waits for us and counts again, as `store::leave` relies on.
        let active_circles: Vec<i64> = memberships::table
            .filter(memberships::person_id.eq(person_id))
            .filter(memberships::status.eq(STATUS_ACTIVE))
            .order(memberships::circle_id.asc())
            .select(memberships::circle_id)
            .load(conn)?;
        for circle_id in &active_circles {
            store::lock(conn, *circle_id)?;
        }
        if let Some(circle) = circles_needing_a_facilitator(conn, person_id)?
            .into_iter()
            .next()
        {
            return Ok(Deletion::SoleFacilitator {
                circle_id: circle.circle_id,
                circle_name: circle.name,
            });
        }

        let mine: Vec<i64> = memberships::table
            .filter(memberships::person_id.eq(person_id))
            .select(memberships::id)
            .load(conn)?;
        let their_commitments: Vec<i64> = commitments::table
            .filter(commitments::membership_id.eq_any(&mine))
            .select(commitments::id)
            .load(conn)?;

        // Their words.
        diesel::update(check_ins::table.filter(check_ins::membership_id.eq_any(&mine)))
            .set(check_ins::reflection.eq(""))
            .execute(conn)?;
        diesel::update(commitments::table.filter(commitments::id.eq_any(&their_commitments)))
            .set(commitments::body.eq(""))
            .execute(conn)?;
        diesel::update(
            follow_throughs::table
                .filter(follow_throughs::commitment_id.eq_any(&their_commitments)),
        )
        .set(follow_throughs::note.eq(None::<String>))
        .execute(conn)?;
        diesel::delete(
            support_messages::table.filter(
                support_messages::author_membership_id
                    .eq_any(&mine)
                    .or(support_messages::commitment_id.eq_any(&their_commitments)),
            ),
        )
        .execute(conn)?;
        diesel::delete(
            peer_notes::table.filter(
                peer_notes::author_membership_id
                    .eq_any(&mine)
                    .or(peer_notes::recipient_membership_id.eq_any(&mine)),
            ),
        )
        .execute(conn)?;

        // What was theirs alone.
        diesel::delete(away_periods::table.filter(away_periods::membership_id.eq_any(&mine)))
            .execute(conn)?;
        diesel::delete(round_skips::table.filter(round_skips::membership_id.eq_any(&mine)))
            .execute(conn)?;
        diesel::delete(action_tokens::table.filter(action_tokens::membership_id.eq_any(&mine)))
            .execute(conn)?;
        diesel::delete(round_links::table.filter(round_links::membership_id.eq_any(&mine)))
            .execute(conn)?;
        // Every email to them, sent or waiting: a pending one must not go
        // out, and a sent one holds their address and name. A worker that is
        // sending one right now finds its row gone when it marks it.
        diesel::delete(
            deliveries::table.filter(
                deliveries::membership_id
                    .eq_any(&mine)
                    .or(deliveries::to_address.eq(&email)),
            ),
        )
        .execute(conn)?;
        diesel::delete(sessions::table.filter(sessions::person_id.eq(person_id))).execute(conn)?;
        diesel::delete(
            sign_in_tokens::table.filter(
                sign_in_tokens::person_id
                    .eq(person_id)
                    .or(sign_in_tokens::email.eq(&email)),
            ),
        )
        .execute(conn)?;
        diesel::delete(invites::table.filter(invites::email.eq(&email))).execute(conn)?;
        diesel::delete(address_changes::table.filter(address_changes::person_id.eq(person_id)))
            .execute(conn)?;

        // What others' history needs, without them.
        diesel::update(
            memberships::table
                .filter(memberships::person_id.eq(person_id))
                .filter(memberships::status.eq(STATUS_ACTIVE)),
        )
        .set((
            memberships::status.eq(STATUS_LEFT),
            memberships::left_at.eq(Some(at)),
        ))
        .execute(conn)?;
        diesel::update(people::table.find(person_id))
            .set((
                people::display_name.eq(FORMER_MEMBER),
                people::email.eq(placeholder_email(person_id)),
                people::deleted_at.eq(Some(at)),
                people::time_zone.eq(None::<String>),
                people::calendar_key_hash.eq(None::<String>),
            ))
            .execute(conn)?;

        for circle_id in active_circles {
            if store::count_active(conn, circle_id)? == 0 {
                archive_empty(conn, circle_id, at)?;
            }
        }
        Ok(Deletion::Deleted)
    })
}

/// A circle nobody is in any more opens no more rounds.
fn archive_empty(
    conn: &mut DbConnection,
    circle_id: i64,
    at: NaiveDateTime,
) -> Result<(), DbError> {
    diesel::update(circles::table.find(circle_id))
        .set((
            circles::status.eq(CircleStatus::Archived.as_str()),
            circles::next_round_at.eq(None::<NaiveDateTime>),
            circles::updated_at.eq(at),
        ))
        .execute(conn)?;
    tracing::info!(
        circle.id = circle_id,
        "circle archived: its last member deleted their data"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_placeholder_address_is_unique_and_undeliverable() {
        assert_eq!(placeholder_email(42), "deleted-42@deleted.invalid");
        assert_ne!(placeholder_email(1), placeholder_email(11));
        assert!(placeholder_email(7).ends_with(".invalid"));
    }
}
