//! Bringing people into a circle: the reusable invite link, single-use email
//! invites, and joining through either of them.
//!
//! Both kinds of invite open `/join/{token}`. A circle has at most one
//! reusable link (its token's hash in `circles.invite_token_hash`); resetting
//! it makes the old one stop working. Email invites are rows of `invites`,
//! one per address, used once. Only hashes are stored, so a link can be shown
//! only at the moment it is made.
//!
//! Joining never adds anyone straight from the invite page: it records a
//! pending join (a `sign_in_tokens` row with purpose `join`, its details as
//! JSON in `payload`) and emails a confirmation link to the address given.
//! Using that link proves the address, and only then, in one transaction,
//! is the person created if new, the membership added, the invite marked
//! used and a session started. Every refusal rolls the whole transaction
//! back, so a refused confirmation leaves its link usable for a later try.
//!
//! Caps live in the database so they hold across instances: pending email
//! invites per circle, invites per facilitator per day (a [`rate_limit`]),
//! and join requests per address and per circle, which keep a leaked link
//! from becoming a way to send mail to strangers.

use std::collections::HashSet;

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::store::{self, Circle, CircleStatus, ROLE_FACILITATOR, ROLE_MEMBER, STATUS_ACTIVE};
use crate::auth::sign_in::DisplayName;
use crate::auth::{Token, session};
use crate::db::schema::{circles, invites, memberships, people, sign_in_tokens};
use crate::db::{DbConnection, DbError, write_transaction};
use crate::mail::outbox::{self, NewEmail};
use crate::mail::{EmailAddress, EmailAddressError};
use crate::rate_limit::{self, Limit, Verdict};
use crate::text::{self, TextError};

/// Addresses one invite form may carry.
pub const MAX_ADDRESSES_PER_BATCH: usize = 20;
/// Email invites waiting for an answer in one circle. A circle holds at most
/// twelve people, so thirty open invitations is generous; more looks like a
/// mailing list, which Shoulder is not.
pub const MAX_PENDING_INVITES_PER_CIRCLE: i64 = 30;
/// Email invites one facilitator may send per day (UTC), across all their circles.
pub const INVITES_PER_FACILITATOR_PER_DAY: Limit = Limit {
    name: "invites",
    max: 60,
    window: Duration::days(1),
};
/// An address invited to a circle more recently than this is not emailed again.
pub const RESEND_AFTER: Duration = Duration::days(1);
/// How long the emailed link that confirms a join works. Longer than a
/// sign-in link: people accept an invitation when they have a quiet moment.
pub const JOIN_LINK_LIFETIME: Duration = Duration::hours(24);
/// Join confirmations one address may be sent per hour; more are quietly not sent.
pub const JOIN_REQUESTS_PER_ADDRESS: Limit = Limit {
    name: "join-address",
    max: 5,
    window: Duration::hours(1),
};
/// Join confirmations one circle's invites may cause per hour, so a link
/// posted somewhere public cannot be used to mail a crowd.
pub const JOIN_REQUESTS_PER_CIRCLE: Limit = Limit {
    name: "join-circle",
    max: 50,
    window: Duration::hours(1),
};

const JOIN_PURPOSE: &str = "join";
const STATUS_REMOVED: &str = "removed";

#[derive(Debug, thiserror::Error)]
pub enum InviteError {
    #[error(transparent)]
    Db(#[from] DbError),
    /// Something stored does not read back as what we wrote: a bug or a
    /// hand edit, never the person's doing.
    #[error("stored data unreadable: {0}")]
    BadData(String),
}

impl From<diesel::result::Error> for InviteError {
    fn from(error: diesel::result::Error) -> Self {
        InviteError::Db(DbError::Query(error))
    }
}

/// What an email needs besides its own words: the base of its links.
#[derive(Debug, Clone, Copy)]
pub struct Mailing<'a> {
    pub public_base: &'a str,
    /// `limits.new_addresses_per_hour`.
    pub new_addresses_per_hour: u32,
}

// ---------------------------------------------------------------------------
// The facilitator's side
// ---------------------------------------------------------------------------

/// The circle, only if `person_id` is one of its active facilitators.
pub fn find_for_facilitator(
    conn: &mut DbConnection,
    circle_id: i64,
    person_id: i64,
) -> Result<Option<Circle>, DbError> {
    Ok(store::find_for_member(conn, circle_id, person_id)?
        .filter(|(_, membership)| membership.is_facilitator())
        .map(|(circle, _)| circle))
}

/// The reusable link as the database knows it: whether one exists, never its token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkStatus {
    NotMade,
    Active { expires_at: NaiveDateTime },
    Expired { expired_at: NaiveDateTime },
}

pub fn link_status(circle: &Circle, now: DateTime<Utc>) -> LinkStatus {
    match (&circle.invite_token_hash, circle.invite_expires_at) {
        (Some(_), Some(expires_at)) if expires_at > now.naive_utc() => {
            LinkStatus::Active { expires_at }
        }
        (Some(_), Some(expired_at)) => LinkStatus::Expired { expired_at },
        _ => LinkStatus::NotMade,
    }
}

/// An email invite still waiting for an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingInvite {
    pub id: i64,
    pub email: String,
    pub sent_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

/// What the facilitator's invite page shows.
#[derive(Debug, Clone)]
pub struct InviteOverview {
    pub circle: Circle,
    pub link: LinkStatus,
    pub pending: Vec<PendingInvite>,
    pub members: i64,
}

/// The invite page's contents, or `None` when `person_id` is not a
/// facilitator of the circle (to the caller, a 404).
pub fn overview(
    conn: &mut DbConnection,
    circle_id: i64,
    person_id: i64,
    now: DateTime<Utc>,
) -> Result<Option<InviteOverview>, DbError> {
    let Some(circle) = find_for_facilitator(conn, circle_id, person_id)? else {
        return Ok(None);
    };
    let pending = list_pending_for_circle(conn, circle_id, now.naive_utc())?;
    let members = store::count_active(conn, circle_id)?;
    Ok(Some(InviteOverview {
        link: link_status(&circle, now),
        circle,
        pending,
        members,
    }))
}

/// Pending email invites, newest first.
pub fn list_pending_for_circle(
    conn: &mut DbConnection,
    circle_id: i64,
    now: NaiveDateTime,
) -> Result<Vec<PendingInvite>, DbError> {
    let rows = invites::table
        .filter(is_pending(circle_id, now))
        .order((invites::created_at.desc(), invites::id.desc()))
        .select((
            invites::id,
            invites::email,
            invites::created_at,
            invites::expires_at,
        ))
        .load::<(i64, String, NaiveDateTime, NaiveDateTime)>(conn)?;
    Ok(rows
        .into_iter()
        .map(|(id, email, sent_at, expires_at)| PendingInvite {
            id,
            email,
            sent_at,
            expires_at,
        })
        .collect())
}

/// Unused, unrevoked, unexpired invites of one circle.
#[diesel::dsl::auto_type]
fn is_pending(circle_id: i64, now: NaiveDateTime) -> _ {
    invites::circle_id
        .eq(circle_id)
        .and(invites::used_at.is_null())
        .and(invites::revoked_at.is_null())
        .and(invites::expires_at.gt(now))
}

/// A freshly made reusable link: the only moment its token exists.
#[derive(Debug, Clone)]
pub struct NewLink {
    pub token: Token,
    pub expires_at: NaiveDateTime,
}

#[derive(Debug)]
pub enum ResetLink {
    Made(NewLink),
    NotFacilitator,
    /// Paused or archived circles take nobody new, so they get no new link.
    CircleNotActive(CircleStatus),
}

/// Makes a new reusable link for the circle, replacing (and so disabling)
/// any earlier one.
pub fn reset_link(
    conn: &mut DbConnection,
    circle_id: i64,
    person_id: i64,
    lifetime: Duration,
    now: DateTime<Utc>,
) -> Result<ResetLink, DbError> {
    write_transaction(conn, |conn| {
        let Some(circle) = find_for_facilitator(conn, circle_id, person_id)? else {
            return Ok(ResetLink::NotFacilitator);
        };
        if circle.status() != CircleStatus::Active {
            return Ok(ResetLink::CircleNotActive(circle.status()));
        }
        let token = Token::generate();
        let expires_at = now.naive_utc() + lifetime;
        diesel::update(circles::table.find(circle_id))
            .set((
                circles::invite_token_hash.eq(token.hash().as_str()),
                circles::invite_expires_at.eq(expires_at),
            ))
            .execute(conn)?;
        tracing::info!(circle.id = circle_id, "invite link reset");
        Ok(ResetLink::Made(NewLink { token, expires_at }))
    })
}

/// The addresses typed into the invite form: one per line or separated by
/// commas or semicolons, blanks dropped. Each entry is parsed as an address
/// later, one by one, so a single typo costs only its own line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressList(Vec<String>);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AddressListError {
    #[error("add at least one email address")]
    Empty,
    #[error("at most {MAX_ADDRESSES_PER_BATCH} addresses at once (this list has {count})")]
    TooMany { count: usize },
}

impl AddressList {
    pub fn parse(raw: &str) -> Result<AddressList, AddressListError> {
        let entries: Vec<String> = raw
            .split(['\n', ',', ';'])
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(str::to_string)
            .collect();
        match entries.len() {
            0 => Err(AddressListError::Empty),
            count if count > MAX_ADDRESSES_PER_BATCH => Err(AddressListError::TooMany { count }),
            _ => Ok(AddressList(entries)),
        }
    }

    pub fn entries(&self) -> &[String] {
        &self.0
    }
}

/// The most a personal note in email invites may say.
pub const MAX_NOTE_CHARS: usize = 600;

/// What one press of "Send invitations" sends: the addresses, and a note
/// in the facilitator's own words for every one of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub addresses: AddressList,
    pub note: Option<String>,
}

/// The note as typed: blank is no note; line breaks are kept.
pub fn parse_note(raw: &str) -> Result<Option<String>, TextError> {
    let note = text::multi_line(raw, MAX_NOTE_CHARS, false)?;
    Ok((!note.is_empty()).then_some(note))
}

/// What happened to one address of an invite form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddressOutcome {
    Invited,
    /// An invite older than [`RESEND_AFTER`] was waiting; it was replaced by
    /// a fresh one, and the old link no longer works.
    InvitedAgain,
    AlreadyMember,
    /// Invited within the last day; not emailed again.
    AlreadyInvited,
    /// The same address appeared earlier in this list.
    Repeated,
    Malformed(EmailAddressError),
    /// [`MAX_PENDING_INVITES_PER_CIRCLE`] invites are already waiting.
    CircleCapReached,
    /// The facilitator has sent [`INVITES_PER_FACILITATOR_PER_DAY`] today.
    DailyCapReached,
    /// The instance's hourly cap on mail to new addresses is reached.
    NewAddressCapReached,
}

impl AddressOutcome {
    /// Whether an email went out for this address.
    pub fn sent(&self) -> bool {
        matches!(self, AddressOutcome::Invited | AddressOutcome::InvitedAgain)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressResult {
    /// The entry as typed.
    pub entry: String,
    pub outcome: AddressOutcome,
}

#[derive(Debug)]
pub enum SendInvites {
    Done(Vec<AddressResult>),
    NotFacilitator,
    CircleNotActive(CircleStatus),
}

/// Sends an email invite to each address of the batch that should get one,
/// in one transaction: invite rows and their emails are written together or
/// not at all.
pub fn send_invites(
    conn: &mut DbConnection,
    mailing: Mailing<'_>,
    circle_id: i64,
    person_id: i64,
    batch: &Batch,
    lifetime: Duration,
    now: DateTime<Utc>,
) -> Result<SendInvites, InviteError> {
    let list = &batch.addresses;
    let at = now.naive_utc();
    write_transaction(conn, |conn| {
        let Some(circle) = find_for_facilitator(conn, circle_id, person_id)? else {
            return Ok(SendInvites::NotFacilitator);
        };
        if circle.status() != CircleStatus::Active {
            return Ok(SendInvites::CircleNotActive(circle.status()));
        }
        store::lock(conn, circle_id)?;
        let facilitator: String = people::table
            .find(person_id)
            .select(people::display_name)
            .first(conn)?;
        let mut pending: i64 = invites::table
            .filter(is_pending(circle_id, at))
            .count()
            .get_result(conn)?;
        let mut seen = HashSet::new();
        let mut results = Vec::with_capacity(list.entries().len());
        // Each cap is logged once per form, not once per address it stopped.
        let mut warned = HashSet::new();
        for entry in list.entries() {
            let outcome = match EmailAddress::parse(entry) {
                Err(error) => AddressOutcome::Malformed(error),
                Ok(email) if !seen.insert(email.clone()) => AddressOutcome::Repeated,
                Ok(email) => {
                    let invite = Invitation {
                        circle: &circle,
                        facilitator: &facilitator,
                        person_id,
                        email: &email,
                        note: batch.note.as_deref(),
                        lifetime,
                    };
                    let outcome = invite_one(conn, mailing, &invite, pending, now)?;
                    if outcome == AddressOutcome::Invited {
                        pending += 1;
                    }
                    match outcome {
                        AddressOutcome::CircleCapReached if warned.insert("circle") => {
                            tracing::warn!(
                                circle.id = circle_id,
                                cap = MAX_PENDING_INVITES_PER_CIRCLE,
                                "pending invite cap reached; further invites not sent"
                            );
                        }
                        AddressOutcome::DailyCapReached if warned.insert("daily") => {
                            tracing::warn!(
                                circle.id = circle_id,
                                person.id = person_id,
                                cap = INVITES_PER_FACILITATOR_PER_DAY.max,
                                "daily invite cap reached; further invites not sent"
                            );
                        }
                        AddressOutcome::NewAddressCapReached if warned.insert("instance") => {
                            tracing::warn!(
                                circle.id = circle_id,
                                limit = "limits.new_addresses_per_hour",
                                "hourly cap on mail to new addresses reached; further invites not sent"
                            );
                        }
                        _ => {}
                    }
                    outcome
                }
            };
            results.push(AddressResult {
                entry: entry.clone(),
                outcome,
            });
        }
        let sent = results.iter().filter(|r| r.outcome.sent()).count();
        tracing::info!(circle.id = circle_id, sent, "email invites sent");
        Ok(SendInvites::Done(results))
    })
}

/// One address's invite, with what its email needs.
struct Invitation<'a> {
    circle: &'a Circle,
    facilitator: &'a str,
    note: Option<&'a str>,
    person_id: i64,
    email: &'a EmailAddress,
    lifetime: Duration,
}

fn invite_one(
    conn: &mut DbConnection,
    mailing: Mailing<'_>,
    invite: &Invitation<'_>,
    pending: i64,
    now: DateTime<Utc>,
) -> Result<AddressOutcome, InviteError> {
    let at = now.naive_utc();
    let circle_id = invite.circle.id;
    let is_member: bool = diesel::select(diesel::dsl::exists(
        memberships::table
            .inner_join(people::table)
            .filter(memberships::circle_id.eq(circle_id))
            .filter(memberships::status.eq(STATUS_ACTIVE))
            .filter(crate::people::email_is(invite.email.as_str())),
    ))
    .get_result(conn)?;
    if is_member {
        return Ok(AddressOutcome::AlreadyMember);
    }
    let waiting = invites::table
        .filter(is_pending(circle_id, at))
        .filter(invites::email.eq(invite.email.as_str()))
        .order(invites::created_at.desc())
        .select((invites::id, invites::created_at))
        .first::<(i64, NaiveDateTime)>(conn)
        .optional()?;
    if let Some((_, sent_at)) = waiting
        && at - sent_at < RESEND_AFTER
    {
        return Ok(AddressOutcome::AlreadyInvited);
    }
    // A replacement keeps the count of waiting invites as it is.
    if waiting.is_none() && pending >= MAX_PENDING_INVITES_PER_CIRCLE {
        return Ok(AddressOutcome::CircleCapReached);
    }
    let by = invite.person_id.to_string();
    if rate_limit::hit(conn, INVITES_PER_FACILITATOR_PER_DAY, &by, now)? == Verdict::Limited {
        return Ok(AddressOutcome::DailyCapReached);
    }
    if !rate_limit::may_mail(
        conn,
        invite.email.as_str(),
        mailing.new_addresses_per_hour,
        now,
    )? {
        return Ok(AddressOutcome::NewAddressCapReached);
    }
    let token = Token::generate();
    let expires_at = at + invite.lifetime;
    let outcome = match waiting {
        // The old token is unknown to us (only its hash is kept), so a
        // reminder needs a new one; the row is reused so the address keeps
        // one waiting invite.
        Some((id, _)) => {
            diesel::update(invites::table.find(id))
                .set((
                    invites::token_hash.eq(token.hash().as_str()),
                    invites::invited_by.eq(invite.person_id),
                    invites::created_at.eq(at),
                    invites::expires_at.eq(expires_at),
                ))
                .execute(conn)?;
            AddressOutcome::InvitedAgain
        }
        None => {
            diesel::insert_into(invites::table)
                .values((
                    invites::circle_id.eq(circle_id),
                    invites::email.eq(invite.email.as_str()),
                    invites::token_hash.eq(token.hash().as_str()),
                    invites::invited_by.eq(invite.person_id),
                    invites::created_at.eq(at),
                    invites::expires_at.eq(expires_at),
                ))
                .execute(conn)?;
            AddressOutcome::Invited
        }
    };
    let public_base = mailing.public_base;
    let context = json!({
        "circle_name": invite.circle.name,
        "purpose": invite.circle.purpose,
        "facilitator": invite.facilitator,
        "note": invite.note,
        "link": format!("{public_base}/join/{}", token.as_str()),
        "days": invite.lifetime.num_days(),
        "public_url": public_base,
    });
    outbox::enqueue(
        conn,
        at,
        &NewEmail {
            send_at: None,
            kind: "invite",
            to: invite.email.clone(),
            to_name: None,
            round_id: None,
            membership_id: None,
            context: context.into(),
            headers: Vec::new(),
        },
    )?;
    Ok(outcome)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revoke {
    Revoked,
    /// The invite belongs to this circle but was already used, revoked or
    /// had expired; nothing changed.
    NoLongerPending,
    /// No such invite in this circle (or the person is not its facilitator).
    NotFound,
}

/// Withdraws an email invite: its link stops working at once.
pub fn revoke(
    conn: &mut DbConnection,
    circle_id: i64,
    person_id: i64,
    invite_id: i64,
    now: DateTime<Utc>,
) -> Result<Revoke, DbError> {
    let at = now.naive_utc();
    write_transaction(conn, |conn| {
        if find_for_facilitator(conn, circle_id, person_id)?.is_none() {
            return Ok(Revoke::NotFound);
        }
        let revoked = diesel::update(
            invites::table
                .filter(invites::id.eq(invite_id))
                .filter(is_pending(circle_id, at)),
        )
        .set(invites::revoked_at.eq(at))
        .execute(conn)?;
        if revoked == 1 {
            tracing::info!(
                circle.id = circle_id,
                invite.id = invite_id,
                "invite revoked"
            );
            return Ok(Revoke::Revoked);
        }
        let exists: bool = diesel::select(diesel::dsl::exists(
            invites::table
                .filter(invites::id.eq(invite_id))
                .filter(invites::circle_id.eq(circle_id)),
        ))
        .get_result(conn)?;
        Ok(if exists {
            Revoke::NoLongerPending
        } else {
            Revoke::NotFound
        })
    })
}

// ---------------------------------------------------------------------------
// Joining
// ---------------------------------------------------------------------------

/// Why a join cannot go ahead. Each has its own page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No invite, link or confirmation has this token.
    UnknownLink,
    InviteExpired,
    InviteRevoked,
    InviteUsed,
    /// The facilitator made a new reusable link after this join was asked for.
    LinkReplaced,
    ConfirmationExpired,
    ConfirmationUsed,
    CircleFull {
        circle_name: String,
    },
    CircleNotOpen {
        circle_name: String,
        status: CircleStatus,
    },
    AlreadyMember {
        circle_id: i64,
        circle_name: String,
    },
    /// A facilitator removed this person; the shared link does not bring
    /// them back, a personal email invite does.
    Removed {
        circle_name: String,
    },
}

/// What someone opening an invite sees before deciding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinOffer {
    pub circle_id: i64,
    pub circle_name: String,
    pub purpose: String,
    pub agreements: String,
    pub facilitators: Vec<String>,
    /// For an email invite, the address it went to: the one that joins.
    pub fixed_email: Option<String>,
    /// When rounds open, in words ("Every Tuesday at 18:30"), in the
    /// circle's zone; `None` when the schedule cannot be read.
    pub schedule: Option<String>,
    pub time_zone: String,
    pub next_round_at: Option<NaiveDateTime>,
    pub round_hours: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opened {
    Offer(JoinOffer),
    Refused(Refusal),
}

/// Where an invite token led.
enum Source {
    /// The circle's reusable link; the hash is kept so that a reset can be noticed.
    Link {
        hash: String,
    },
    Email {
        invite_id: i64,
        email: String,
    },
}

/// Finds what `token` opens and whether it can still be used, reading only.
/// `viewer`, when someone is signed in, lets a member be told they are in already.
pub fn open_invite(
    conn: &mut DbConnection,
    token: &Token,
    viewer: Option<i64>,
    now: DateTime<Utc>,
) -> Result<Opened, DbError> {
    let (circle, source) = match resolve(conn, token, now.naive_utc())? {
        Ok(found) => found,
        Err(refusal) => return Ok(Opened::Refused(refusal)),
    };
    if let Some(person_id) = viewer
        && store::find_for_member(conn, circle.id, person_id)?.is_some()
    {
        return Ok(Opened::Refused(Refusal::AlreadyMember {
            circle_id: circle.id,
            circle_name: circle.name,
        }));
    }
    if let Some(refusal) = closed_or_full(conn, &circle)? {
        return Ok(Opened::Refused(refusal));
    }
    let facilitators = store::list_members(conn, circle.id)?
        .into_iter()
        .filter(|member| member.role == ROLE_FACILITATOR)
        .map(|member| member.display_name)
        .collect();
    let schedule = circle
        .settings()
        .ok()
        .map(|settings| settings.cadence.describe());
    Ok(Opened::Offer(JoinOffer {
        schedule,
        round_hours: circle.round_length_minutes / 60,
        next_round_at: circle.next_round_at,
        time_zone: circle.time_zone,
        circle_id: circle.id,
        circle_name: circle.name,
        purpose: circle.purpose,
        agreements: circle.agreements,
        facilitators,
        fixed_email: match source {
            Source::Email { email, .. } => Some(email),
            Source::Link { .. } => None,
        },
    }))
}

/// The circle and kind of invite behind `token`, or why it is unusable.
fn resolve(
    conn: &mut DbConnection,
    token: &Token,
    now: NaiveDateTime,
) -> Result<Result<(Circle, Source), Refusal>, DbError> {
    let hash = token.hash();
    let invite = invites::table
        .filter(invites::token_hash.eq(hash.as_str()))
        .select((
            invites::id,
            invites::circle_id,
            invites::email,
            invites::expires_at,
            invites::used_at,
            invites::revoked_at,
        ))
        .first::<(
            i64,
            i64,
            String,
            NaiveDateTime,
            Option<NaiveDateTime>,
            Option<NaiveDateTime>,
        )>(conn)
        .optional()?;
    if let Some((invite_id, circle_id, email, expires_at, used_at, revoked_at)) = invite {
        // Revoked and used say more than expired, so they are told first.
        let refusal = if revoked_at.is_some() {
            Some(Refusal::InviteRevoked)
        } else if used_at.is_some() {
            Some(Refusal::InviteUsed)
        } else if expires_at <= now {
            Some(Refusal::InviteExpired)
        } else {
            None
        };
        if let Some(refusal) = refusal {
            return Ok(Err(refusal));
        }
        return Ok(match store::find(conn, circle_id)? {
            Some(circle) => Ok((circle, Source::Email { invite_id, email })),
            None => Err(Refusal::UnknownLink),
        });
    }
    let circle = circles::table
        .filter(circles::invite_token_hash.eq(hash.as_str()))
        .select(Circle::as_select())
        .first::<Circle>(conn)
        .optional()?;
    Ok(match circle {
        None => Err(Refusal::UnknownLink),
        Some(circle) if circle.invite_expires_at.is_none_or(|at| at <= now) => {
            Err(Refusal::InviteExpired)
        }
        Some(circle) => Ok((
            circle,
            Source::Link {
                hash: hash.as_str().to_string(),
            },
        )),
    })
}

/// A paused or archived circle takes nobody new; a full one has no room.
fn closed_or_full(conn: &mut DbConnection, circle: &Circle) -> Result<Option<Refusal>, DbError> {
    if circle.status() != CircleStatus::Active {
        return Ok(Some(Refusal::CircleNotOpen {
            circle_name: circle.name.clone(),
            status: circle.status(),
        }));
    }
    if store::count_active(conn, circle.id)? >= i64::from(circle.size_cap) {
        return Ok(Some(Refusal::CircleFull {
            circle_name: circle.name.clone(),
        }));
    }
    Ok(None)
}

/// What a pending join remembers until it is confirmed, as JSON in
/// `sign_in_tokens.payload`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PendingJoin {
    circle_id: i64,
    /// Set when the join came through an email invite.
    invite_id: Option<i64>,
    /// Set when it came through the reusable link: that link's hash.
    link_hash: Option<String>,
    /// The name given on the form, used if the person is new.
    display_name: String,
}

/// A join form that passed its checks.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    pub name: DisplayName,
    /// Ignored for an email invite: the address it went to is the one that joins.
    pub email: EmailAddress,
}

#[derive(Debug)]
pub enum JoinRequested {
    /// A confirmation link is on its way to `email` (or was quietly held
    /// back by a request limit; the answer is the same).
    Sent {
        email: String,
        circle_name: String,
    },
    Refused(Refusal),
}

/// Records a pending join and emails its confirmation link, in one
/// transaction. Adds nobody: that waits for the link.
///
/// Whether the address already belongs to a member is not checked here: the
/// page would tell anyone holding the link who is in the circle. The
/// confirmation, made by the address's owner, says so instead.
pub fn request_join(
    conn: &mut DbConnection,
    mailing: Mailing<'_>,
    token: &Token,
    request: &JoinRequest,
    now: DateTime<Utc>,
) -> Result<JoinRequested, InviteError> {
    let at = now.naive_utc();
    write_transaction(conn, |conn| {
        let (circle, source) = match resolve(conn, token, at)? {
            Ok(found) => found,
            Err(refusal) => return Ok(JoinRequested::Refused(refusal)),
        };
        if let Some(refusal) = closed_or_full(conn, &circle)? {
            return Ok(JoinRequested::Refused(refusal));
        }
        let (email, pending) = match source {
            Source::Email { invite_id, email } => (
                EmailAddress::parse(&email)
                    .map_err(|e| InviteError::BadData(format!("invite address: {e}")))?,
                PendingJoin {
                    circle_id: circle.id,
                    invite_id: Some(invite_id),
                    link_hash: None,
                    display_name: request.name.as_str().to_string(),
                },
            ),
            Source::Link { hash } => (
                request.email.clone(),
                PendingJoin {
                    circle_id: circle.id,
                    invite_id: None,
                    link_hash: Some(hash),
                    display_name: request.name.as_str().to_string(),
                },
            ),
        };
        let sent = JoinRequested::Sent {
            email: email.to_string(),
            circle_name: circle.name.clone(),
        };
        let circle_key = circle.id.to_string();
        let address_key = rate_limit::address_key(email.as_str());
        if rate_limit::hit(conn, JOIN_REQUESTS_PER_ADDRESS, &address_key, now)? == Verdict::Limited
            || rate_limit::hit(conn, JOIN_REQUESTS_PER_CIRCLE, &circle_key, now)?
                == Verdict::Limited
        {
            return Ok(sent);
        }
        // Answered as sent, so that nobody learns whether the address has
        // an account.
        if !rate_limit::may_mail(conn, email.as_str(), mailing.new_addresses_per_hour, now)? {
            tracing::warn!(
                limit = "limits.new_addresses_per_hour",
                "join confirmation not sent: the hourly cap on mail to new addresses is reached"
            );
            return Ok(sent);
        }
        let person = existing_person(conn, email.as_str())?;
        let payload = serde_json::to_string(&pending)
            .map_err(|e| InviteError::BadData(format!("pending join: {e}")))?;
        let link_token = Token::generate();
        diesel::insert_into(sign_in_tokens::table)
            .values((
                sign_in_tokens::email.eq(email.as_str()),
                sign_in_tokens::person_id.eq(person.as_ref().map(|(id, _)| *id)),
                sign_in_tokens::token_hash.eq(link_token.hash().as_str()),
                sign_in_tokens::purpose.eq(JOIN_PURPOSE),
                sign_in_tokens::payload.eq(payload),
                sign_in_tokens::created_at.eq(at),
                sign_in_tokens::expires_at.eq(at + JOIN_LINK_LIFETIME),
            ))
            .execute(conn)?;
        // Someone who already has an account keeps the name they chose.
        let name = person
            .as_ref()
            .map_or(request.name.as_str(), |(_, name)| name.as_str());
        let context = json!({
            "name": name,
            "circle_name": circle.name,
            "link": format!("{}/join/confirm/{}", mailing.public_base, link_token.as_str()),
            "hours": JOIN_LINK_LIFETIME.num_hours(),
            "public_url": mailing.public_base,
        });
        outbox::enqueue(
            conn,
            at,
            &NewEmail {
                send_at: None,
                kind: "join_confirm",
                to: email,
                to_name: Some(name.to_string()),
                round_id: None,
                membership_id: None,
                context: context.into(),
                headers: Vec::new(),
            },
        )?;
        Ok(sent)
    })
}

/// A pending join as stored.
struct JoinToken {
    email: String,
    payload: Option<String>,
    expires_at: NaiveDateTime,
    used_at: Option<NaiveDateTime>,
}

/// The pending join behind a confirmation token. Only purpose `join`: a
/// sign-in link is no confirmation, as a join link is no sign-in.
fn find_join_token(conn: &mut DbConnection, token: &Token) -> Result<Option<JoinToken>, DbError> {
    Ok(sign_in_tokens::table
        .filter(sign_in_tokens::token_hash.eq(token.hash().as_str()))
        .filter(sign_in_tokens::purpose.eq(JOIN_PURPOSE))
        .select((
            sign_in_tokens::email,
            sign_in_tokens::payload,
            sign_in_tokens::expires_at,
            sign_in_tokens::used_at,
        ))
        .first::<(String, Option<String>, NaiveDateTime, Option<NaiveDateTime>)>(conn)
        .optional()?
        .map(|(email, payload, expires_at, used_at)| JoinToken {
            email,
            payload,
            expires_at,
            used_at,
        }))
}

#[derive(Debug, thiserror::Error)]
pub enum ConfirmError {
    #[error(transparent)]
    Db(#[from] DbError),
    /// The stored payload does not read back: bad data, not a bad link.
    #[error("pending join payload unreadable: {0}")]
    Payload(String),
}

impl From<diesel::result::Error> for ConfirmError {
    fn from(error: diesel::result::Error) -> Self {
        ConfirmError::Db(DbError::Query(error))
    }
}

fn read_payload(row: &JoinToken) -> Result<PendingJoin, ConfirmError> {
    let text = row
        .payload
        .as_deref()
        .ok_or_else(|| ConfirmError::Payload("missing".into()))?;
    serde_json::from_str(text).map_err(|e| ConfirmError::Payload(e.to_string()))
}

/// Everything a confirmation would do, decided without writing.
struct Admission {
    circle: Circle,
    person: Option<i64>,
    /// A membership that ended (left, or removed and invited back) to restart.
    rejoin: Option<i64>,
}

/// Checks a pending join against the circle as it is now. The invite must
/// not have been revoked, used or replaced since the join was asked for; its
/// expiry is not checked again, since it held when the person asked and the
/// confirmation link has its own.
fn admit(
    conn: &mut DbConnection,
    email: &str,
    pending: &PendingJoin,
) -> Result<Result<Admission, Refusal>, DbError> {
    let Some(circle) = store::find(conn, pending.circle_id)? else {
        return Ok(Err(Refusal::UnknownLink));
    };
    if let Some(invite_id) = pending.invite_id {
        let state = invites::table
            .filter(invites::id.eq(invite_id))
            .filter(invites::circle_id.eq(circle.id))
            .select((invites::used_at, invites::revoked_at))
            .first::<(Option<NaiveDateTime>, Option<NaiveDateTime>)>(conn)
            .optional()?;
        match state {
            None => return Ok(Err(Refusal::UnknownLink)),
            Some((_, Some(_))) => return Ok(Err(Refusal::InviteRevoked)),
            Some((Some(_), None)) => return Ok(Err(Refusal::InviteUsed)),
            Some((None, None)) => {}
        }
    } else if circle.invite_token_hash.is_none() || circle.invite_token_hash != pending.link_hash {
        return Ok(Err(Refusal::LinkReplaced));
    }
    let status = circle.status();
    if status != CircleStatus::Active {
        return Ok(Err(Refusal::CircleNotOpen {
            circle_name: circle.name,
            status,
        }));
    }
    let person = existing_person(conn, email)?.map(|(id, _)| id);
    let mut rejoin = None;
    if let Some(person_id) = person {
        let earlier = memberships::table
            .filter(memberships::circle_id.eq(circle.id))
            .filter(memberships::person_id.eq(person_id))
            .select((memberships::id, memberships::status))
            .first::<(i64, String)>(conn)
            .optional()?;
        match earlier {
            Some((_, status)) if status == STATUS_ACTIVE => {
                return Ok(Err(Refusal::AlreadyMember {
                    circle_id: circle.id,
                    circle_name: circle.name,
                }));
            }
            Some((_, status)) if status == STATUS_REMOVED && pending.invite_id.is_none() => {
                return Ok(Err(Refusal::Removed {
                    circle_name: circle.name,
                }));
            }
            Some((id, _)) => rejoin = Some(id),
            None => {}
        }
    }
    if store::count_active(conn, circle.id)? >= i64::from(circle.size_cap) {
        return Ok(Err(Refusal::CircleFull {
            circle_name: circle.name,
        }));
    }
    Ok(Ok(Admission {
        circle,
        person,
        rejoin,
    }))
}

/// What the confirmation page shows before its button is pressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirmation {
    Ready {
        circle_name: String,
        email: String,
        /// Whether joining should ask for a time zone: the person is new,
        /// or has not chosen one.
        asks_time_zone: bool,
    },
    Refused(Refusal),
}

/// Looks at a confirmation link for its page; changes nothing.
pub fn peek_confirmation(
    conn: &mut DbConnection,
    token: &Token,
    now: DateTime<Utc>,
) -> Result<Confirmation, ConfirmError> {
    let Some(row) = find_join_token(conn, token)? else {
        return Ok(Confirmation::Refused(Refusal::UnknownLink));
    };
    if let Some(refusal) = link_refusal(&row, now.naive_utc()) {
        return Ok(Confirmation::Refused(refusal));
    }
    let pending = read_payload(&row)?;
    Ok(match admit(conn, &row.email, &pending)? {
        Ok(admission) => Confirmation::Ready {
            circle_name: admission.circle.name,
            asks_time_zone: crate::people::zone::unchosen_for_address(conn, &row.email)?,
            email: row.email,
        },
        Err(refusal) => Confirmation::Refused(refusal),
    })
}

fn link_refusal(row: &JoinToken, now: NaiveDateTime) -> Option<Refusal> {
    if row.used_at.is_some() {
        Some(Refusal::ConfirmationUsed)
    } else if row.expires_at <= now {
        Some(Refusal::ConfirmationExpired)
    } else {
        None
    }
}

#[derive(Debug)]
pub enum Confirmed {
    Joined {
        circle_id: i64,
        person_id: i64,
        session: Token,
    },
    Refused(Refusal),
}

/// Why the confirming transaction rolled back.
enum Abort {
    Refused(Refusal),
    Failed(ConfirmError),
}

impl<E: Into<ConfirmError>> From<E> for Abort {
    fn from(error: E) -> Self {
        Abort::Failed(error.into())
    }
}

/// Queues one short email to each facilitator of `circle` who wants to
/// know that `person_id` joined: not muted, notices on.
fn tell_facilitators(
    conn: &mut DbConnection,
    circle: &Circle,
    person_id: i64,
    public_base: &str,
    at: NaiveDateTime,
) -> Result<(), DbError> {
    let member: String = people::table
        .find(person_id)
        .select(people::display_name)
        .first(conn)?;
    let members = store::count_active(conn, circle.id)?;
    let facilitators = memberships::table
        .inner_join(people::table)
        .filter(memberships::circle_id.eq(circle.id))
        .filter(memberships::role.eq(ROLE_FACILITATOR))
        .filter(memberships::status.eq(STATUS_ACTIVE))
        .filter(memberships::muted.eq(false))
        .filter(memberships::join_notices.eq(true))
        .filter(people::deleted_at.is_null())
        .select((memberships::id, people::email, people::display_name))
        .load::<(i64, String, String)>(conn)?;
    for (membership_id, email, name) in facilitators {
        let Ok(to) = EmailAddress::parse(&email) else {
            continue;
        };
        let context = json!({
            "name": name,
            "member": member,
            "circle_name": circle.name,
            "members": members,
            "size_cap": circle.size_cap,
            "link": format!("{public_base}/circles/{}", circle.id),
            "public_url": public_base,
        });
        outbox::enqueue(
            conn,
            at,
            &NewEmail {
                send_at: None,
                kind: "joined",
                to,
                to_name: Some(name),
                round_id: None,
                membership_id: Some(membership_id),
                context: context.into(),
                headers: Vec::new(),
            },
        )?;
    }
    Ok(())
}

/// Confirms a pending join: creates the person if new, adds (or restarts)
/// the membership, marks the invite used and starts a session, all in one
/// transaction. Any refusal rolls everything back, the link's use included.
pub fn confirm_join(
    conn: &mut DbConnection,
    token: &Token,
    public_base: &str,
    now: DateTime<Utc>,
) -> Result<Confirmed, ConfirmError> {
    let at = now.naive_utc();
    let outcome = write_transaction(conn, |conn| {
        let row = find_join_token(conn, token)?.ok_or(Abort::Refused(Refusal::UnknownLink))?;
        if let Some(refusal) = link_refusal(&row, at) {
            return Err(Abort::Refused(refusal));
        }
        let pending = read_payload(&row)?;
        // Claimed first: of two simultaneous confirmations, the second waits
        // here (PostgreSQL's row lock; SQLite's single writer) and then finds
        // the link used, rather than racing through the checks below.
        let claimed = diesel::update(
            sign_in_tokens::table
                .filter(sign_in_tokens::token_hash.eq(token.hash().as_str()))
                .filter(sign_in_tokens::purpose.eq(JOIN_PURPOSE))
                .filter(sign_in_tokens::used_at.is_null())
                .filter(sign_in_tokens::expires_at.gt(at)),
        )
        .set(sign_in_tokens::used_at.eq(at))
        .execute(conn)?;
        if claimed != 1 {
            return Err(Abort::Refused(Refusal::ConfirmationUsed));
        }
        if !store::lock(conn, pending.circle_id)? {
            return Err(Abort::Refused(Refusal::UnknownLink));
        }
        let admission = admit(conn, &row.email, &pending)?.map_err(Abort::Refused)?;
        let person_id = match admission.person {
            Some(id) => id,
            None => insert_person(conn, &row.email, &pending.display_name, at)?,
        };
        let circle_id = admission.circle.id;
        match admission.rejoin {
            Some(membership_id) => {
                diesel::update(memberships::table.find(membership_id))
                    .set((
                        memberships::status.eq(STATUS_ACTIVE),
                        memberships::role.eq(ROLE_MEMBER),
                        memberships::joined_at.eq(at),
                        memberships::left_at.eq(None::<NaiveDateTime>),
                    ))
                    .execute(conn)?;
            }
            None => {
                store::add_member(conn, circle_id, person_id, ROLE_MEMBER, at)?;
            }
        }
        if let Some(invite_id) = pending.invite_id {
            let marked = diesel::update(
                invites::table
                    .filter(invites::id.eq(invite_id))
                    .filter(invites::used_at.is_null())
                    .filter(invites::revoked_at.is_null()),
            )
            .set(invites::used_at.eq(at))
            .execute(conn)?;
            if marked != 1 {
                return Err(Abort::Refused(Refusal::InviteUsed));
            }
        }
        // Other invites waiting for this address are answered too, so the
        // facilitator's list does not show someone already in.
        diesel::update(
            invites::table
                .filter(invites::circle_id.eq(circle_id))
                .filter(invites::email.eq(&row.email))
                .filter(invites::used_at.is_null())
                .filter(invites::revoked_at.is_null()),
        )
        .set(invites::used_at.eq(at))
        .execute(conn)?;
        tell_facilitators(conn, &admission.circle, person_id, public_base, at)?;
        let session = session::start(conn, person_id, at)?;
        tracing::info!(
            circle.id = circle_id,
            person.id = person_id,
            "joined a circle"
        );
        Ok(Confirmed::Joined {
            circle_id,
            person_id,
            session,
        })
    });
    match outcome {
        Ok(joined) => Ok(joined),
        Err(Abort::Refused(refusal)) => Ok(Confirmed::Refused(refusal)),
        Err(Abort::Failed(error)) => Err(error),
    }
}

fn existing_person(conn: &mut DbConnection, email: &str) -> Result<Option<(i64, String)>, DbError> {
    Ok(people::table
        .filter(crate::people::email_is(email))
        .filter(people::deleted_at.is_null())
        .select((people::id, people::display_name))
        .first(conn)
        .optional()?)
}

fn insert_person(
    conn: &mut DbConnection,
    email: &str,
    name: &str,
    now: NaiveDateTime,
) -> Result<i64, DbError> {
    Ok(diesel::insert_into(people::table)
        .values((
            people::email.eq(email),
            people::display_name.eq(name),
            people::created_at.eq(now),
        ))
        .returning(people::id)
        .get_result(conn)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_lists_split_on_lines_commas_and_semicolons() {
        let list = AddressList::parse("ada@example.org, bea@example.org\r\n\n cy@example.org;dee")
            .expect("a list");
        assert_eq!(
            list.entries(),
            [
                "ada@example.org",
                "bea@example.org",
                "cy@example.org",
                "dee"
            ]
        );
    }

    #[test]
    fn an_empty_or_overlong_list_is_refused_whole() {
        assert_eq!(AddressList::parse(" \n , ;"), Err(AddressListError::Empty));
        let many: Vec<String> = (0..21).map(|i| format!("p{i}@example.org")).collect();
        assert_eq!(
            AddressList::parse(&many.join("\n")),
            Err(AddressListError::TooMany { count: 21 })
        );
        assert!(AddressList::parse(&many[..20].join("\n")).is_ok());
    }

    #[test]
    fn a_pending_join_reads_back_and_refuses_strangers() {
        let pending = PendingJoin {
            circle_id: 7,
            invite_id: None,
            link_hash: Some("ab".repeat(32)),
            display_name: "Ada \"Lovelace\"".into(),
        };
        let text = serde_json::to_string(&pending).expect("serialises");
        assert_eq!(
            serde_json::from_str::<PendingJoin>(&text).expect("reads"),
            pending
        );
        assert!(serde_json::from_str::<PendingJoin>(r#"{"circle_id":1}"#).is_err());
    }
}
