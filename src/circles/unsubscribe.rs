//! Whether a member gets a circle's email: one-click unsubscribe links
//! (RFC 8058) and the per-circle mute behind them.
//!
//! Every check-in, reminder and digest carries a link of its own and the
//! [`headers`] that name it. Using a link sets
//! `memberships.muted` for that one membership; the member turns mail back
//! on (or off) from the circle page through [`set_muted`].
//!
//! Whoever reads `memberships.muted` must honour it: the scheduler leaves
//! muted members out when it writes check-ins, reminders and digests. Mail
//! that is not circle mail (sign-in links, invitations) still goes. A mute
//! outlives leaving and rejoining, since the membership row is kept.
//!
//! Round mail names its own key in its link (`/unsubscribe/<key>`): the
//! email's round link (`rounds::links`), so no row is written for it. It
//! works for [`LINK_LIFETIME`] after its round closes. A link made on its
//! own ([`issue_link`], and every link in mail from before keys) is an
//! `action_tokens` row of kind `unsubscribe` that works for
//! [`LINK_LIFETIME`] after it was made. Only a token's SHA-256 is stored.
//! Unlike a sign-in link a link may be used again: mail providers retry
//! their one-click POST, and a second press must answer the same "done".

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;

use crate::auth::Token;
use crate::db::schema::{action_tokens, circles, memberships, round_links, rounds};
use crate::db::{DbConnection, DbError, write_transaction};
use crate::rounds::{links, own_hour};

use super::store::STATUS_ACTIVE;

/// How long an emailed unsubscribe link keeps working, after its round
/// closes or, for a link of its own, after it was made. Long, because
/// people unsubscribe from old mail; after that, the circle page still
/// works.
pub const LINK_LIFETIME: Duration = Duration::days(365);

/// The `action_tokens.kind` of unsubscribe links.
pub const KIND: &str = "unsubscribe";

/// The circle a link mutes, as its page names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub circle_id: i64,
    pub circle_name: String,
    /// For [`peek`]: muted now. For [`unsubscribe`]: was muted before this
    /// use, so the page can say it had been done already.
    pub already_muted: bool,
}

/// Records a new unsubscribe link for `membership_id` and returns its token,
/// to be put into one email (see [`link`]). A single insert: it runs in the
/// caller's transaction, if any, and opens none of its own.
pub fn issue_link(
    conn: &mut DbConnection,
    membership_id: i64,
    now: NaiveDateTime,
) -> Result<Token, DbError> {
    let token = Token::generate_ordered();
    diesel::insert_into(action_tokens::table)
        .values((
            action_tokens::token_hash.eq(token.hash().as_str()),
            action_tokens::kind.eq(KIND),
            action_tokens::membership_id.eq(membership_id),
            action_tokens::expires_at.eq(now + LINK_LIFETIME),
        ))
        .execute(conn)?;
    Ok(token)
}

/// The link's address: `{public_base}/unsubscribe/{token}`.
pub fn link(public_base: &str, token: &Token) -> String {
    format!("{public_base}/unsubscribe/{}", token.as_str())
}

/// The two headers RFC 8058 asks of circle mail: where to unsubscribe, and
/// that a POST there does it in one click.
pub fn headers(url: &str) -> Vec<(String, String)> {
    vec![
        ("List-Unsubscribe".to_string(), format!("<{url}>")),
        (
            "List-Unsubscribe-Post".to_string(),
            "List-Unsubscribe=One-Click".to_string(),
        ),
    ]
}

/// Where a usable link was found.
enum Source {
    /// An `action_tokens` row.
    Token,
    /// A round email's key: the `round_links` row's id.
    Key(i64),
}

/// A usable (known, unexpired) link's membership and circle.
fn find_usable(
    conn: &mut DbConnection,
    token: &Token,
    now: NaiveDateTime,
) -> Result<Option<(Source, i64, Target)>, DbError> {
    let hash = token.hash();
    let own = action_tokens::table
        .inner_join(memberships::table.inner_join(circles::table))
        .filter(action_tokens::token_hash.eq(hash.as_str()))
        .filter(action_tokens::kind.eq(KIND))
        .filter(action_tokens::expires_at.gt(now))
        .select((
            memberships::id,
            circles::id,
            circles::name,
            memberships::muted,
        ))
        .first::<(i64, i64, String, bool)>(conn)
        .optional()?
        .map(|row| (Source::Token, row));
    let found = match own {
        Some(found) => Some(found),
        None => round_links::table
            .inner_join(rounds::table)
            .inner_join(memberships::table.inner_join(circles::table))
            .filter(round_links::token_hash.eq(hash.as_str()))
            .filter(rounds::closes_at.gt(now - LINK_LIFETIME))
            .select((
                round_links::id,
                (
                    memberships::id,
                    circles::id,
                    circles::name,
                    memberships::muted,
                ),
            ))
            .first::<(i64, (i64, i64, String, bool))>(conn)
            .optional()?
            .map(|(link_id, row)| (Source::Key(link_id), row)),
    };
    Ok(
        found.map(|(source, (membership_id, circle_id, circle_name, muted))| {
            (
                source,
                membership_id,
                Target {
                    circle_id,
                    circle_name,
                    already_muted: muted,
                },
            )
        }),
    )
}

/// What a link would mute, for the page behind it; changes nothing, since
/// mail scanners open links. `None` for an unknown or expired link.
pub fn peek(
    conn: &mut DbConnection,
    token: &Token,
    now: NaiveDateTime,
) -> Result<Option<Target>, DbError> {
    Ok(find_usable(conn, token, now)?.map(|(_, _, target)| target))
}

/// Uses a link: mutes its membership's circle mail and, the first time,
/// marks the link used. Using it again changes nothing and answers the same
/// target. `None` for an unknown or expired link.
///
/// Opens its own write transaction: call it outside one.
pub fn unsubscribe(
    conn: &mut DbConnection,
    token: &Token,
    now: NaiveDateTime,
) -> Result<Option<Target>, DbError> {
    write_transaction(conn, |conn| {
        let Some((source, membership_id, target)) = find_usable(conn, token, now)? else {
            return Ok(None);
        };
        diesel::update(memberships::table.find(membership_id))
            .set(memberships::muted.eq(true))
            .execute(conn)?;
        own_hour::withdraw_all_waiting(conn, membership_id)?;
        // The first use is kept for the record; later ones leave it alone.
        match source {
            Source::Token => {
                diesel::update(
                    action_tokens::table
                        .filter(action_tokens::token_hash.eq(token.hash().as_str()))
                        .filter(action_tokens::used_at.is_null()),
                )
                .set(action_tokens::used_at.eq(now))
                .execute(conn)?;
            }
            Source::Key(link_id) => {
                links::record_use(conn, link_id, KIND, now)?;
            }
        }
        Ok(Some(target))
    })
}

/// Mutes or unmutes a circle's mail for one of its active members. `false`
/// when `person_id` is not an active member of `circle_id`, and nothing
/// changed; setting the value it already has is `true`.
pub fn set_muted(
    conn: &mut DbConnection,
    circle_id: i64,
    person_id: i64,
    muted: bool,
) -> Result<bool, DbError> {
    let changed = diesel::update(
        memberships::table
            .filter(memberships::circle_id.eq(circle_id))
            .filter(memberships::person_id.eq(person_id))
            .filter(memberships::status.eq(STATUS_ACTIVE)),
    )
    .set(memberships::muted.eq(muted))
    .execute(conn)?;
    if changed == 1 && muted {
        let membership_id: i64 = memberships::table
            .filter(memberships::circle_id.eq(circle_id))
            .filter(memberships::person_id.eq(person_id))
            .select(memberships::id)
            .first(conn)?;
        own_hour::withdraw_all_waiting(conn, membership_id)?;
    }
    Ok(changed == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_follow_rfc_8058() {
        assert_eq!(
            headers("https://shoulder.example/unsubscribe/abc"),
            vec![
                (
                    "List-Unsubscribe".to_string(),
                    "<https://shoulder.example/unsubscribe/abc>".to_string()
                ),
                (
                    "List-Unsubscribe-Post".to_string(),
                    "List-Unsubscribe=One-Click".to_string()
                ),
            ]
        );
    }

    #[test]
    fn links_carry_the_token_under_unsubscribe() {
        let token = Token::generate();
        let url = link("https://shoulder.example", &token);
        assert_eq!(
            url,
            format!("https://shoulder.example/unsubscribe/{}", token.as_str())
        );
    }
}
