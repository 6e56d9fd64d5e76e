//! One-click choices in round emails: how an earlier commitment went
//! (Done, Partly, Not yet, Release), skipping the round, or going away for a
//! while.
//!
//! A round email's choices all hang on its one key, the token of its round
//! link ([`super::links`]): `/act/<key>/<choice>`, where the choice is
//! `skip`, `away` or an outcome and a commitment, such as `done-42`. The key
//! already lets its member check in for that round, and a choice is a part
//! of checking in, so a link grants nothing the key did not. Each choice
//! works once per key; its first use is a `round_link_uses` row.
//!
//! Mail from before keys carried a token per choice, an `action_tokens`
//! row, at `/act/<token>`; those links keep working as they did.
//!
//! Opening a link changes nothing, as mail scanners open links: its page
//! shows what the choice will do, and its button posts. A choice works only
//! while its round is open; the away choice, which asks for dates, works
//! for [`AWAY_LINK_LIFETIME`] after the round closes.

use chrono::{Duration, NaiveDate, NaiveDateTime};
use diesel::prelude::*;

use super::away::{self, AwayDates};
use super::check_in::{self, Outcome};
use super::links;
use crate::auth::Token;
use crate::circles::store::STATUS_ACTIVE;
use crate::clock;
use crate::db::schema::{
    action_tokens, away_periods, check_ins, circles, commitments, follow_throughs, memberships,
    people, round_link_uses, round_links, rounds,
};
use crate::db::{DbConnection, DbError, write_transaction};

/// The `action_tokens.kind` of each choice's link in mail from before keys.
pub const KIND_FOLLOW: &str = "follow";
pub const KIND_SKIP: &str = "skip";
pub const KIND_AWAY: &str = "away";

/// How long an emailed away link keeps working after its round closes.
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

impl Pending {
    /// `choice`, for the member and round a link reaches.
    fn reaching(choice: Choice, reach: Reach) -> Pending {
        let (
            membership_id,
            member_name,
            circle_id,
            circle_name,
            time_zone,
            round_id,
            round_number,
            ..,
        ) = reach;
        Pending {
            choice,
            membership_id,
            member_name,
            circle_id,
            circle_name,
            time_zone,
            round_id,
            round_number,
        }
    }
}

/// What is still waiting for the member in a round after a choice.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StillOpen {
    /// Earlier commitments not yet reported on in this round.
    pub unreported: Vec<String>,
    /// Whether they have saved a check-in, or skip the round.
    pub answered: bool,
}

/// What the member still has to do in the round a choice was made in.
pub fn still_open(conn: &mut DbConnection, pending: &Pending) -> Result<StillOpen, DbError> {
    let reported: Vec<i64> = follow_throughs::table
        .filter(follow_throughs::round_id.eq(pending.round_id))
        .select(follow_throughs::commitment_id)
        .load(conn)?;
    let unreported = check_in::open_before(
        conn,
        pending.membership_id,
        pending.round_id,
        pending.round_number,
    )?
    .into_iter()
    .filter(|commitment| !reported.contains(&commitment.id))
    .map(|commitment| commitment.body)
    .collect();
    let checked_in = diesel::select(diesel::dsl::exists(
        check_ins::table
            .filter(check_ins::round_id.eq(pending.round_id))
            .filter(check_ins::membership_id.eq(pending.membership_id)),
    ))
    .get_result::<bool>(conn)?;
    let skipping = away::skipping(conn, pending.round_id)?.contains(&pending.membership_id);
    Ok(StillOpen {
        unreported,
        answered: checked_in || skipping,
    })
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

/// A choice as a link names it, before it is looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Named {
    Follow {
        commitment_id: i64,
        outcome: Outcome,
    },
    Skip,
    Away,
}

impl Named {
    /// The choice's part of the path, and its name in `round_link_uses`.
    pub fn code(self) -> String {
        match self {
            Named::Follow {
                commitment_id,
                outcome,
            } => format!("{}-{commitment_id}", outcome.as_str()),
            Named::Skip => "skip".to_string(),
            Named::Away => "away".to_string(),
        }
    }

    pub fn parse(code: &str) -> Option<Named> {
        match code {
            "skip" => Some(Named::Skip),
            "away" => Some(Named::Away),
            _ => {
                let (outcome, id) = code.rsplit_once('-')?;
                let commitment_id = id.parse().ok().filter(|id| *id > 0)?;
                Some(Named::Follow {
                    commitment_id,
                    outcome: Outcome::parse(outcome)?,
                })
            }
        }
    }
}

/// A one-click link from an email.
#[derive(Debug, Clone)]
pub enum Link {
    /// A round email's key and one of its choices.
    Keyed { key: Token, choice: Named },
    /// A token of its own, from mail sent before keys.
    Single(Token),
}

impl Link {
    /// The round email's key, when the link carries one: it also opens the
    /// member's round page.
    pub fn key(&self) -> Option<&Token> {
        match self {
            Link::Keyed { key, .. } => Some(key),
            Link::Single(_) => None,
        }
    }

    /// Reads the path's parts: a token, and the choice when there is one.
    pub fn parse(token: &str, choice: Option<&str>) -> Option<Link> {
        let token = Token::parse(token)?;
        Some(match choice {
            Some(choice) => Link::Keyed {
                key: token,
                choice: Named::parse(choice)?,
            },
            None => Link::Single(token),
        })
    }

    /// The link's path, where its page posts.
    pub fn path(&self) -> String {
        match self {
            Link::Keyed { key, choice } => keyed_path(key, *choice),
            Link::Single(token) => format!("/act/{}", token.as_str()),
        }
    }
}

/// The address of `choice` under a round email's `key`.
pub fn url(public_base: &str, key: &Token, choice: Named) -> String {
    format!("{public_base}{}", keyed_path(key, choice))
}

fn keyed_path(key: &Token, choice: Named) -> String {
    format!("/act/{}/{}", key.as_str(), choice.code())
}

/// Where a link's first use is recorded.
enum UseRecord {
    /// A `round_link_uses` row for the key's link and the choice.
    Key { link_id: i64, choice: String },
    /// `used_at` on the `action_tokens` row with this hash.
    Token { hash: String },
}

/// What a link was found to be, before it is checked.
struct Found {
    choice: Named,
    used: bool,
    record: UseRecord,
    /// Until when the choice works, if its round stays open.
    expires_at: NaiveDateTime,
    reach: Reach,
}

/// The round and member a link reaches: what both kinds of link read, in
/// [`REACH`]'s order.
type Reach = (
    i64,
    String,
    i64,
    String,
    String,
    i64,
    i32,
    NaiveDateTime,
    Option<NaiveDateTime>,
);

const REACH: (
    memberships::id,
    people::display_name,
    circles::id,
    circles::name,
    circles::time_zone,
    rounds::id,
    rounds::number,
    rounds::closes_at,
    rounds::closed_at,
) = (
    memberships::id,
    people::display_name,
    circles::id,
    circles::name,
    circles::time_zone,
    rounds::id,
    rounds::number,
    rounds::closes_at,
    rounds::closed_at,
);

fn find(conn: &mut DbConnection, link: &Link) -> Result<Option<Found>, DbError> {
    match link {
        Link::Keyed { key, choice } => {
            let row = round_links::table
                .inner_join(rounds::table.inner_join(circles::table))
                .inner_join(memberships::table.inner_join(people::table))
                .filter(round_links::token_hash.eq(key.hash().as_str()))
                .filter(memberships::status.eq(STATUS_ACTIVE))
                .filter(people::deleted_at.is_null())
                .select((round_links::id, REACH))
                .first::<(i64, Reach)>(conn)
                .optional()?;
            let Some((link_id, reach)) = row else {
                return Ok(None);
            };
            let code = choice.code();
            let used = diesel::select(diesel::dsl::exists(
                round_link_uses::table
                    .filter(round_link_uses::round_link_id.eq(link_id))
                    .filter(round_link_uses::choice.eq(&code)),
            ))
            .get_result(conn)?;
            let closes_at = reach.7;
            Ok(Some(Found {
                choice: *choice,
                used,
                record: UseRecord::Key {
                    link_id,
                    choice: code,
                },
                expires_at: match choice {
                    Named::Away => closes_at + AWAY_LINK_LIFETIME,
                    _ => closes_at,
                },
                reach,
            }))
        }
        Link::Single(token) => {
            let hash = token.hash().as_str().to_string();
            let row = action_tokens::table
                .inner_join(rounds::table.inner_join(circles::table))
                .inner_join(memberships::table.inner_join(people::table))
                .filter(action_tokens::token_hash.eq(&hash))
                .filter(action_tokens::kind.eq_any([KIND_FOLLOW, KIND_SKIP, KIND_AWAY]))
                .filter(memberships::status.eq(STATUS_ACTIVE))
                .filter(people::deleted_at.is_null())
                .select((
                    action_tokens::kind,
                    action_tokens::commitment_id,
                    action_tokens::choice,
                    action_tokens::expires_at,
                    action_tokens::used_at,
                    REACH,
                ))
                .first::<(
                    String,
                    Option<i64>,
                    Option<String>,
                    NaiveDateTime,
                    Option<NaiveDateTime>,
                    Reach,
                )>(conn)
                .optional()?;
            let Some((kind, commitment_id, outcome, expires_at, used_at, reach)) = row else {
                return Ok(None);
            };
            let choice = match kind.as_str() {
                KIND_SKIP => Named::Skip,
                KIND_AWAY => Named::Away,
                _ => match (commitment_id, outcome.as_deref().and_then(Outcome::parse)) {
                    (Some(commitment_id), Some(outcome)) => Named::Follow {
                        commitment_id,
                        outcome,
                    },
                    _ => return Ok(None),
                },
            };
            Ok(Some(Found {
                choice,
                used: used_at.is_some(),
                record: UseRecord::Token { hash },
                expires_at,
                reach,
            }))
        }
    }
}

/// Reads a link without using it.
pub fn peek(
    conn: &mut DbConnection,
    link: &Link,
    now: NaiveDateTime,
) -> Result<Result<Pending, Unusable>, DbError> {
    Ok(check(conn, link, now)?.map(|(pending, _)| pending))
}

/// What a usable link will do, and where its use is to be recorded.
fn check(
    conn: &mut DbConnection,
    link: &Link,
    now: NaiveDateTime,
) -> Result<Result<(Pending, UseRecord), Unusable>, DbError> {
    let Some(found) = find(conn, link)? else {
        return Ok(Err(Unusable::Unknown));
    };
    let (membership_id, round_id, round_number, closed_at) =
        (found.reach.0, found.reach.5, found.reach.6, found.reach.8);
    if found.used {
        return Ok(Err(Unusable::Used));
    }
    if found.expires_at <= now || (found.choice != Named::Away && closed_at.is_some()) {
        return Ok(Err(Unusable::Expired));
    }
    let choice = match found.choice {
        Named::Skip => Choice::Skip,
        Named::Away => Choice::Away,
        Named::Follow {
            commitment_id,
            outcome,
        } => {
            // Only the member's own commitments are among these, so a key
            // reaches no one else's.
            let still_open = check_in::open_before(conn, membership_id, round_id, round_number)?
                .into_iter()
                .find(|c| c.id == commitment_id);
            let Some(commitment) = still_open else {
                let theirs = commitments::table
                    .filter(commitments::id.eq(commitment_id))
                    .filter(commitments::membership_id.eq(membership_id))
                    .count()
                    .get_result::<i64>(conn)?;
                return Ok(Err(if theirs == 1 {
                    Unusable::Settled
                } else {
                    Unusable::Unknown
                }));
            };
            Choice::Follow {
                commitment_id,
                commitment: commitment.body,
                outcome,
            }
        }
    };
    Ok(Ok((Pending::reaching(choice, found.reach), found.record)))
}

/// What a link already used recorded, for the page its use redirects to
/// (and for opening it again from the email while its round is open):
/// `None` for a link not used, not ours, or past its time. An away link
/// brings the member's latest away dates.
pub fn recorded(
    conn: &mut DbConnection,
    link: &Link,
    now: NaiveDateTime,
) -> Result<Option<(Pending, Option<AwayDates>)>, DbError> {
    let Some(found) = find(conn, link)? else {
        return Ok(None);
    };
    let (membership_id, closed_at) = (found.reach.0, found.reach.8);
    if !found.used
        || found.expires_at <= now
        || (found.choice != Named::Away && closed_at.is_some())
    {
        return Ok(None);
    }
    let mut dates = None;
    let choice = match found.choice {
        Named::Skip => Choice::Skip,
        Named::Away => {
            dates = away_periods::table
                .filter(away_periods::membership_id.eq(membership_id))
                .order(away_periods::id.desc())
                .select((away_periods::starts_on, away_periods::ends_on))
                .first::<(NaiveDate, NaiveDate)>(conn)
                .optional()?
                .map(|(starts_on, ends_on)| AwayDates { starts_on, ends_on });
            Choice::Away
        }
        Named::Follow {
            commitment_id,
            outcome,
        } => {
            let body = commitments::table
                .filter(commitments::id.eq(commitment_id))
                .filter(commitments::membership_id.eq(membership_id))
                .select(commitments::body)
                .first::<String>(conn)
                .optional()?;
            let Some(commitment) = body else {
                return Ok(None);
            };
            Choice::Follow {
                commitment_id,
                commitment,
                outcome,
            }
        }
    };
    Ok(Some((Pending::reaching(choice, found.reach), dates)))
}

/// Records a link's first use: `false` when it was used already. On
/// condition, so that two presses at once record one choice.
fn mark_used(
    conn: &mut DbConnection,
    record: &UseRecord,
    now: NaiveDateTime,
) -> Result<bool, DbError> {
    match record {
        UseRecord::Key { link_id, choice } => links::record_use(conn, *link_id, choice, now),
        UseRecord::Token { hash } => {
            let marked = diesel::update(
                action_tokens::table
                    .filter(action_tokens::token_hash.eq(hash))
                    .filter(action_tokens::used_at.is_null()),
            )
            .set(action_tokens::used_at.eq(now))
            .execute(conn)?;
            Ok(marked == 1)
        }
    }
}

/// Uses a link once: records its choice and marks it used, together.
/// `away` carries the dates an away link asks for (already checked).
pub fn perform(
    conn: &mut DbConnection,
    link: &Link,
    away: Option<AwayDates>,
    now: NaiveDateTime,
) -> Result<Result<Pending, Unusable>, DbError> {
    write_transaction(conn, |conn| {
        let (pending, record) = match check(conn, link, now)? {
            Ok(checked) => checked,
            Err(unusable) => return Ok(Err(unusable)),
        };
        if pending.choice == Choice::Away && away.is_none() {
            return Ok(Err(Unusable::Unknown));
        }
        if !mark_used(conn, &record, now)? {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_choice_reads_back_from_its_code() {
        let mut choices = vec![Named::Skip, Named::Away];
        choices.extend(Outcome::ALL.map(|outcome| Named::Follow {
            commitment_id: 42,
            outcome,
        }));
        for choice in choices {
            assert_eq!(
                Named::parse(&choice.code()),
                Some(choice),
                "{}",
                choice.code()
            );
        }
        assert_eq!(
            Named::parse("not_yet-7"),
            Some(Named::Follow {
                commitment_id: 7,
                outcome: Outcome::NotYet
            })
        );
    }

    #[test]
    fn codes_that_name_no_choice_are_refused() {
        for code in [
            "",
            "done",
            "done-",
            "-5",
            "done-0",
            "done--5",
            "done-x",
            "maybe-5",
            "Skip",
            "skip-1",
            "done-99999999999999999999",
        ] {
            assert_eq!(Named::parse(code), None, "{code:?}");
        }
    }

    #[test]
    fn a_link_without_a_token_is_refused_whatever_its_choice() {
        assert!(Link::parse("not-a-token", Some("skip")).is_none());
        let token = Token::generate();
        assert!(Link::parse(token.as_str(), Some("maybe-1")).is_none());
        let keyed = Link::parse(token.as_str(), Some("skip")).expect("a link");
        assert_eq!(keyed.path(), format!("/act/{}/skip", token.as_str()));
        let single = Link::parse(token.as_str(), None).expect("a link");
        assert_eq!(single.path(), format!("/act/{}", token.as_str()));
    }
}
