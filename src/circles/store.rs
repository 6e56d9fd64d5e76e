//! Circles and memberships in the database: starting a circle, changing
//! it, and who is in it with which role.
//!
//! Every function takes the connection it runs on, so callers can combine
//! several writes in one transaction. Reads that serve a person go through
//! [`find_for_member`]: a circle answers only to its active members.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

use super::cadence::{Cadence, parse_time_zone};
use super::settings::{DEFAULT_DECK, Settings};
use crate::auth::Token;
use crate::db::schema::{circles, memberships, people};
use crate::db::{DbConnection, DbError, natively, write_transaction};
use crate::rate_limit;

pub const ROLE_FACILITATOR: &str = "facilitator";
pub const ROLE_MEMBER: &str = "member";
pub const STATUS_ACTIVE: &str = "active";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircleStatus {
    Active,
    Paused,
    Archived,
}

impl CircleStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CircleStatus::Active => "active",
            CircleStatus::Paused => "paused",
            CircleStatus::Archived => "archived",
        }
    }

    pub fn parse(text: &str) -> Option<CircleStatus> {
        match text {
            "active" => Some(CircleStatus::Active),
            "paused" => Some(CircleStatus::Paused),
            "archived" => Some(CircleStatus::Archived),
            _ => None,
        }
    }
}

/// A row of `circles`.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = circles)]
pub struct Circle {
    pub id: i64,
    pub name: String,
    pub purpose: String,
    pub agreements: String,
    pub cadence: String,
    pub time_zone: String,
    pub round_length_minutes: i32,
    pub size_cap: i32,
    pub deck: String,
    pub status: String,
    pub paused_reason: Option<String>,
    pub next_round_at: Option<NaiveDateTime>,
    pub pinned_prompt_id: Option<String>,
    pub invite_token_hash: Option<String>,
    pub invite_expires_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub schedule_version: i32,
}

impl Circle {
    /// The stored settings, parsed. A cadence or zone that no longer parses
    /// (a zone renamed in a newer time zone database) is reported, not hidden.
    pub fn settings(&self) -> Result<Settings, String> {
        let cadence = Cadence::parse(&self.cadence).map_err(|e| e.to_string())?;
        let time_zone = parse_time_zone(&self.time_zone).map_err(|e| e.to_string())?;
        Ok(Settings {
            name: self.name.clone(),
            purpose: self.purpose.clone(),
            agreements: self.agreements.clone(),
            cadence,
            time_zone,
            round_hours: self.round_length_minutes / 60,
            size_cap: self.size_cap,
        })
    }

    pub fn status(&self) -> CircleStatus {
        CircleStatus::parse(&self.status).unwrap_or(CircleStatus::Paused)
    }
}

/// The viewer's own membership in a circle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub id: i64,
    pub role: String,
    /// Whether they asked for no more round emails from this circle.
    pub muted: bool,
    /// Whether their next reflection starts out shared with the circle.
    pub shares_reflections: bool,
    /// When their check-in email arrives (`HH:MM` in their zone), when not
    /// at the opening.
    pub check_in_at: Option<String>,
    /// Whether, as a facilitator, they are emailed when someone joins.
    pub join_notices: bool,
}

impl Membership {
    pub fn is_facilitator(&self) -> bool {
        self.role == ROLE_FACILITATOR
    }
}

/// An active member, as others in the circle see them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub membership_id: i64,
    pub person_id: i64,
    pub display_name: String,
    pub email: String,
    pub role: String,
    pub joined_at: NaiveDateTime,
}

/// When the next round opens after `now`, if the circle is active.
fn next_round(
    settings: &Settings,
    status: CircleStatus,
    now: DateTime<Utc>,
) -> Option<NaiveDateTime> {
    (status == CircleStatus::Active)
        .then(|| settings.cadence.next_after(settings.time_zone, now))
        .flatten()
        .map(|occurrence| occurrence.at.naive_utc())
}

/// What became of asking to start a circle through the web.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Started {
    Circle(i64),
    /// `limits.circles_per_person_per_day` reached; the next day starts
    /// after `retry_after`.
    LimitReached {
        retry_after: chrono::Duration,
    },
}

/// Circles one person may start per day (UTC) through the web.
pub fn circles_per_person(per_day: u32) -> rate_limit::Limit {
    rate_limit::Limit {
        name: "circles",
        max: i32::try_from(per_day).unwrap_or(i32::MAX),
        window: chrono::Duration::days(1),
    }
}

/// [`create`], for someone who has not reached today's limit of circles
/// started. Operators starting circles from the command line are not
/// limited.
pub fn start(
    conn: &mut DbConnection,
    facilitator: i64,
    settings: &Settings,
    per_day: u32,
    now: DateTime<Utc>,
) -> Result<Started, DbError> {
    let limit = circles_per_person(per_day);
    if rate_limit::hit(conn, limit, &facilitator.to_string(), now)? == rate_limit::Verdict::Limited
    {
        return Ok(Started::LimitReached {
            retry_after: rate_limit::retry_after(limit, now),
        });
    }
    Ok(Started::Circle(create(conn, facilitator, settings, now)?))
}

/// Starts a circle with `facilitator` as its first member.
pub fn create(
    conn: &mut DbConnection,
    facilitator: i64,
    settings: &Settings,
    now: DateTime<Utc>,
) -> Result<i64, DbError> {
    let at = now.naive_utc();
    write_transaction(conn, |conn| {
        let circle_id: i64 = diesel::insert_into(circles::table)
            .values((
                circles::name.eq(&settings.name),
                circles::purpose.eq(&settings.purpose),
                circles::agreements.eq(&settings.agreements),
                circles::cadence.eq(settings.cadence.to_canonical()),
                circles::time_zone.eq(settings.time_zone.name()),
                circles::round_length_minutes.eq(settings.round_hours * 60),
                circles::size_cap.eq(settings.size_cap),
                circles::deck.eq(DEFAULT_DECK),
                circles::status.eq(STATUS_ACTIVE),
                circles::next_round_at.eq(next_round(settings, CircleStatus::Active, now)),
                circles::created_at.eq(at),
                circles::updated_at.eq(at),
            ))
            .returning(circles::id)
            .get_result(conn)?;
        add_member(conn, circle_id, facilitator, ROLE_FACILITATOR, at)?;
        Ok(circle_id)
    })
}

/// Adds a person to a circle. The unique key on (circle, person) refuses a
/// second membership; callers check for an existing one first to explain.
pub fn add_member(
    conn: &mut DbConnection,
    circle_id: i64,
    person_id: i64,
    role: &str,
    now: NaiveDateTime,
) -> Result<i64, DbError> {
    // Someone who left (or was removed) and comes back keeps their one row,
    // and with it their history in the circle.
    let returning: Option<i64> = diesel::update(
        memberships::table
            .filter(memberships::circle_id.eq(circle_id))
            .filter(memberships::person_id.eq(person_id))
            .filter(memberships::status.ne(STATUS_ACTIVE)),
    )
    .set((
        memberships::status.eq(STATUS_ACTIVE),
        memberships::role.eq(role),
        memberships::joined_at.eq(now),
        memberships::left_at.eq(None::<NaiveDateTime>),
    ))
    .returning(memberships::id)
    .get_result(conn)
    .optional()?;
    if let Some(id) = returning {
        return Ok(id);
    }
    // Unsubscribe links are made per email later; the column keeps a secret
    // nobody holds until then.
    let unsubscribe = Token::generate();
    Ok(diesel::insert_into(memberships::table)
        .values((
            memberships::circle_id.eq(circle_id),
            memberships::person_id.eq(person_id),
            memberships::role.eq(role),
            memberships::unsubscribe_token_hash.eq(unsubscribe.hash().as_str()),
            memberships::joined_at.eq(now),
        ))
        .returning(memberships::id)
        .get_result(conn)?)
}

/// What changing settings did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateOutcome {
    Updated,
    /// The new cap is below the number of people already in the circle.
    CapBelowMembers {
        members: i64,
    },
}

pub fn update(
    conn: &mut DbConnection,
    circle_id: i64,
    settings: &Settings,
    now: DateTime<Utc>,
) -> Result<UpdateOutcome, DbError> {
    write_transaction(conn, |conn| {
        let members = count_active(conn, circle_id)?;
        if i64::from(settings.size_cap) < members {
            return Ok(UpdateOutcome::CapBelowMembers { members });
        }
        let status: String = circles::table
            .find(circle_id)
            .select(circles::status)
            .first(conn)?;
        let status = CircleStatus::parse(&status).unwrap_or(CircleStatus::Paused);
        diesel::update(circles::table.find(circle_id))
            .set((
                circles::name.eq(&settings.name),
                circles::purpose.eq(&settings.purpose),
                circles::agreements.eq(&settings.agreements),
                circles::cadence.eq(settings.cadence.to_canonical()),
                circles::time_zone.eq(settings.time_zone.name()),
                circles::round_length_minutes.eq(settings.round_hours * 60),
                circles::size_cap.eq(settings.size_cap),
                circles::next_round_at.eq(next_round(settings, status, now)),
                circles::updated_at.eq(now.naive_utc()),
                circles::schedule_version.eq(circles::schedule_version + 1),
            ))
            .execute(conn)?;
        Ok(UpdateOutcome::Updated)
    })
}

/// Pauses, resumes or archives. Resuming schedules from now on: rounds
/// missed while paused are not made up.
pub fn set_status(
    conn: &mut DbConnection,
    circle_id: i64,
    status: CircleStatus,
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    write_transaction(conn, |conn| {
        let circle: Circle = circles::table
            .find(circle_id)
            .select(Circle::as_select())
            .first(conn)?;
        let next = match circle.settings() {
            Ok(settings) => next_round(&settings, status, now),
            Err(_) => None,
        };
        diesel::update(circles::table.find(circle_id))
            .set((
                circles::status.eq(status.as_str()),
                circles::paused_reason.eq(None::<String>),
                circles::next_round_at.eq(next),
                circles::updated_at.eq(now.naive_utc()),
                circles::schedule_version.eq(circles::schedule_version + 1),
            ))
            .execute(conn)?;
        Ok(())
    })
}

pub fn count_active(conn: &mut DbConnection, circle_id: i64) -> Result<i64, DbError> {
    Ok(memberships::table
        .filter(memberships::circle_id.eq(circle_id))
        .filter(memberships::status.eq(STATUS_ACTIVE))
        .count()
        .get_result(conn)?)
}

/// Whether a facilitator is emailed when someone joins.
pub fn set_join_notices(
    conn: &mut DbConnection,
    membership_id: i64,
    on: bool,
) -> Result<(), DbError> {
    diesel::update(memberships::table.find(membership_id))
        .set(memberships::join_notices.eq(on))
        .execute(conn)?;
    Ok(())
}

/// The circle and the viewer's membership, only if they are an active member.
pub fn find_for_member(
    conn: &mut DbConnection,
    circle_id: i64,
    person_id: i64,
) -> Result<Option<(Circle, Membership)>, DbError> {
    // On every page of a circle. Built in each arm: `as_select` takes the
    // backend it is run on.
    let found = natively!(conn, |conn| circles::table
        .inner_join(memberships::table)
        .filter(circles::id.eq(circle_id))
        .filter(memberships::person_id.eq(person_id))
        .filter(memberships::status.eq(STATUS_ACTIVE))
        .select((
            Circle::as_select(),
            memberships::id,
            memberships::role,
            memberships::muted,
            memberships::shares_reflections,
            memberships::check_in_at,
            memberships::join_notices,
        ))
        .first::<(Circle, i64, String, bool, bool, Option<String>, bool)>(conn)
        .optional())?;
    Ok(found.map(
        |(circle, id, role, muted, shares_reflections, check_in_at, join_notices)| {
            (
                circle,
                Membership {
                    id,
                    role,
                    muted,
                    shares_reflections,
                    check_in_at,
                    join_notices,
                },
            )
        },
    ))
}

pub fn find(conn: &mut DbConnection, circle_id: i64) -> Result<Option<Circle>, DbError> {
    Ok(circles::table
        .find(circle_id)
        .select(Circle::as_select())
        .first(conn)
        .optional()?)
}

/// Active members, facilitators first, then by when they joined.
pub fn list_members(conn: &mut DbConnection, circle_id: i64) -> Result<Vec<Member>, DbError> {
    let query = memberships::table
        .inner_join(people::table)
        .filter(memberships::circle_id.eq(circle_id))
        .filter(memberships::status.eq(STATUS_ACTIVE))
        .order((
            memberships::role.asc(),
            memberships::joined_at.asc(),
            memberships::id.asc(),
        ))
        .select((
            memberships::id,
            people::id,
            people::display_name,
            people::email,
            memberships::role,
            memberships::joined_at,
        ));
    type Row = (i64, i64, String, String, String, NaiveDateTime);
    let rows = natively!(conn, |conn| query.load::<Row>(conn))?;
    Ok(rows
        .into_iter()
        .map(
            |(membership_id, person_id, display_name, email, role, joined_at)| Member {
                membership_id,
                person_id,
                display_name,
                email,
                role,
                joined_at,
            },
        )
        .collect())
}

/// The circles a person is an active member of, with their role, by name.
pub fn list_for_person(
    conn: &mut DbConnection,
    person_id: i64,
) -> Result<Vec<(Circle, String)>, DbError> {
    Ok(circles::table
        .inner_join(memberships::table)
        .filter(memberships::person_id.eq(person_id))
        .filter(memberships::status.eq(STATUS_ACTIVE))
        .filter(circles::status.ne(CircleStatus::Archived.as_str()))
        .order((circles::name.asc(), circles::id.asc()))
        .select((Circle::as_select(), memberships::role))
        .load(conn)?)
}

/// The archived circles `person_id` facilitates, by name: (id, name).
pub fn archived_facilitated_by(
    conn: &mut DbConnection,
    person_id: i64,
) -> Result<Vec<(i64, String)>, DbError> {
    Ok(circles::table
        .inner_join(memberships::table)
        .filter(memberships::person_id.eq(person_id))
        .filter(memberships::status.eq(STATUS_ACTIVE))
        .filter(memberships::role.eq(ROLE_FACILITATOR))
        .filter(circles::status.eq(CircleStatus::Archived.as_str()))
        .order((circles::name.asc(), circles::id.asc()))
        .select((circles::id, circles::name))
        .load(conn)?)
}

/// Makes a member a facilitator. Only members of this circle qualify.
pub fn make_facilitator(
    conn: &mut DbConnection,
    circle_id: i64,
    membership_id: i64,
) -> Result<bool, DbError> {
    let changed = diesel::update(
        memberships::table
            .filter(memberships::id.eq(membership_id))
            .filter(memberships::circle_id.eq(circle_id))
            .filter(memberships::status.eq(STATUS_ACTIVE)),
    )
    .set(memberships::role.eq(ROLE_FACILITATOR))
    .execute(conn)?;
    Ok(changed == 1)
}

/// What leaving, or removing someone, did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Departure {
    Done,
    /// The circle would be left without a facilitator; hand over first.
    LastFacilitator,
    /// No such active member in this circle.
    NotAMember,
}

/// Ends a membership (`left` or `removed`), unless it is the circle's last
/// facilitator. Counted and changed in one write transaction, so two
/// facilitators leaving at once cannot both succeed.
fn depart(
    conn: &mut DbConnection,
    circle_id: i64,
    membership_id: i64,
    new_status: &'static str,
    now: NaiveDateTime,
) -> Result<Departure, DbError> {
    write_transaction(conn, |conn| {
        let role: Option<String> = memberships::table
            .filter(memberships::id.eq(membership_id))
            .filter(memberships::circle_id.eq(circle_id))
            .filter(memberships::status.eq(STATUS_ACTIVE))
            .select(memberships::role)
            .first(conn)
            .optional()?;
        let Some(role) = role else {
            return Ok(Departure::NotAMember);
        };
        if role == ROLE_FACILITATOR {
            let facilitators: i64 = memberships::table
                .filter(memberships::circle_id.eq(circle_id))
                .filter(memberships::status.eq(STATUS_ACTIVE))
                .filter(memberships::role.eq(ROLE_FACILITATOR))
                .count()
                .get_result(conn)?;
            if facilitators <= 1 {
                return Ok(Departure::LastFacilitator);
            }
        }
        diesel::update(memberships::table.find(membership_id))
            .set((
                memberships::status.eq(new_status),
                memberships::left_at.eq(Some(now)),
            ))
            .execute(conn)?;
        Ok(Departure::Done)
    })
}

pub fn leave(
    conn: &mut DbConnection,
    circle_id: i64,
    membership_id: i64,
    now: NaiveDateTime,
) -> Result<Departure, DbError> {
    depart(conn, circle_id, membership_id, "left", now)
}

pub fn remove(
    conn: &mut DbConnection,
    circle_id: i64,
    membership_id: i64,
    now: NaiveDateTime,
) -> Result<Departure, DbError> {
    depart(conn, circle_id, membership_id, "removed", now)
}

/// The person with this address, created with `name` if there is none.
pub fn find_or_create_person(
    conn: &mut DbConnection,
    email: &str,
    name: &str,
    now: NaiveDateTime,
) -> Result<i64, DbError> {
    let existing: Option<i64> = people::table
        .filter(crate::people::email_is(email))
        .select(people::id)
        .first(conn)
        .optional()?;
    match existing {
        Some(id) => Ok(id),
        None => Ok(diesel::insert_into(people::table)
            .values((
                people::email.eq(email),
                people::display_name.eq(name),
                people::created_at.eq(now),
            ))
            .returning(people::id)
            .get_result(conn)?),
    }
}

/// Holds the circle's row until the transaction ends, so that work which
/// reads the circle and then writes for it (opening a round, counting places)
/// runs one transaction at a time per circle. On PostgreSQL a no-op update
/// takes the row lock and a second transaction waits, then reads what the
/// first committed; SQLite's `write_transaction` already has one writer.
pub fn lock(conn: &mut DbConnection, circle_id: i64) -> Result<bool, DbError> {
    let locked = diesel::update(circles::table.find(circle_id))
        .set(circles::updated_at.eq(circles::updated_at))
        .execute(conn)?;
    Ok(locked == 1)
}
