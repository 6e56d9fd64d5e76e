//! Changing one's email address. The new address must confirm it: a link
//! goes to it (an `address_changes` row, only the token's hash kept), and
//! the old address is told at once, so a stolen session
//! cannot quietly take an account away. Nothing changes until the link is
//! used; an address belongs to one person.

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde_json::json;

use crate::auth::Token;
use crate::db::schema::{address_changes, people};
use crate::db::{DbConnection, DbError, write_transaction};
use crate::mail::EmailAddress;
use crate::mail::outbox::{self, NewEmail};

/// How long the confirmation link works.
pub const LINK_LIFETIME: Duration = Duration::hours(24);

/// Why an address is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    Same,
    Taken,
}

impl Refused {
    pub fn message(self) -> &'static str {
        match self {
            Refused::Same => "That is already your address.",
            Refused::Taken => {
                "Another account uses that address. If it is yours too, sign in with it and delete that account first."
            }
        }
    }
}

/// Whether someone other than `person_id` has `email`.
fn taken(conn: &mut DbConnection, person_id: i64, email: &str) -> Result<bool, DbError> {
    Ok(diesel::select(diesel::dsl::exists(
        people::table
            .filter(super::email_is(email))
            .filter(people::id.ne(person_id)),
    ))
    .get_result(conn)?)
}

/// Asks `new` to confirm it is the person's address: the link to it, the
/// notice to the old one. Refused when it is the same or someone else's.
pub fn request(
    conn: &mut DbConnection,
    person_id: i64,
    new: &EmailAddress,
    public_base: &str,
    now: DateTime<Utc>,
) -> Result<Result<(), Refused>, DbError> {
    let at = now.naive_utc();
    write_transaction(conn, |conn| {
        let (name, old): (String, String) = people::table
            .find(person_id)
            .select((people::display_name, people::email))
            .first(conn)?;
        if old == new.as_str() {
            return Ok(Err(Refused::Same));
        }
        if taken(conn, person_id, new.as_str())? {
            return Ok(Err(Refused::Taken));
        }
        // One link at a time: an earlier one stops working.
        diesel::update(
            address_changes::table
                .filter(address_changes::person_id.eq(person_id))
                .filter(address_changes::used_at.is_null())
                .filter(address_changes::expires_at.gt(at)),
        )
        .set(address_changes::expires_at.eq(at))
        .execute(conn)?;
        let token = Token::generate();
        diesel::insert_into(address_changes::table)
            .values((
                address_changes::person_id.eq(person_id),
                address_changes::email.eq(new.as_str()),
                address_changes::token_hash.eq(token.hash().as_str()),
                address_changes::created_at.eq(at),
                address_changes::expires_at.eq(at + LINK_LIFETIME),
            ))
            .execute(conn)?;
        let link = format!("{public_base}/me/email/{}", token.as_str());
        let hours = LINK_LIFETIME.num_hours();
        let old_address = EmailAddress::parse(&old).ok();
        let mut emails = vec![NewEmail {
            send_at: None,
            kind: "email_change",
            to: new.clone(),
            to_name: Some(name.clone()),
            round_id: None,
            membership_id: None,
            context: json!({"name": name, "link": link, "hours": hours, "new_email": new.as_str()})
                .into(),
            headers: Vec::new(),
        }];
        if let Some(old_address) = old_address {
            emails.push(NewEmail {
                send_at: None,
                kind: "email_change_notice",
                to: old_address,
                to_name: Some(name.clone()),
                round_id: None,
                membership_id: None,
                context: json!({"name": name, "hours": hours, "new_email": new.as_str(), "public_url": public_base})
                    .into(),
                headers: Vec::new(),
            });
        }
        for email in &emails {
            outbox::enqueue(conn, at, email)?;
        }
        Ok(Ok(()))
    })
}

/// What a confirmation link is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    /// Usable: whose address becomes `new`.
    Valid {
        person_id: i64,
        new: String,
    },
    Expired,
    Used,
    Unknown,
}

fn find(conn: &mut DbConnection, token: &Token, now: NaiveDateTime) -> Result<Link, DbError> {
    let row: Option<(i64, String, NaiveDateTime, Option<NaiveDateTime>)> = address_changes::table
        .filter(address_changes::token_hash.eq(token.hash().as_str()))
        .select((
            address_changes::person_id,
            address_changes::email,
            address_changes::expires_at,
            address_changes::used_at,
        ))
        .first(conn)
        .optional()?;
    Ok(match row {
        None => Link::Unknown,
        Some((_, _, _, Some(_))) => Link::Used,
        Some((_, _, expires, None)) if expires <= now => Link::Expired,
        Some((person_id, new, _, None)) => Link::Valid { person_id, new },
    })
}

/// The link as it stands, changing nothing.
pub fn peek(conn: &mut DbConnection, token: &Token, now: DateTime<Utc>) -> Result<Link, DbError> {
    find(conn, token, now.naive_utc())
}

/// What using a link did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirmed {
    Changed {
        person_id: i64,
    },
    /// Someone else took the address since the link was sent.
    Taken,
    NotUsable(Link),
}

/// Uses a link: the address changes, once.
pub fn confirm(
    conn: &mut DbConnection,
    token: &Token,
    now: DateTime<Utc>,
) -> Result<Confirmed, DbError> {
    let at = now.naive_utc();
    write_transaction(conn, |conn| {
        let (person_id, new) = match find(conn, token, at)? {
            Link::Valid { person_id, new } => (person_id, new),
            other => return Ok(Confirmed::NotUsable(other)),
        };
        if taken(conn, person_id, &new)? {
            return Ok(Confirmed::Taken);
        }
        let used = diesel::update(
            address_changes::table
                .filter(address_changes::token_hash.eq(token.hash().as_str()))
                .filter(address_changes::used_at.is_null()),
        )
        .set(address_changes::used_at.eq(Some(at)))
        .execute(conn)?;
        if used != 1 {
            return Ok(Confirmed::NotUsable(Link::Used));
        }
        diesel::update(
            people::table
                .find(person_id)
                .filter(people::deleted_at.is_null()),
        )
        .set(people::email.eq(&new))
        .execute(conn)?;
        Ok(Confirmed::Changed { person_id })
    })
}
