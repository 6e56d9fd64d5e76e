//! Passwordless sign-in: an emailed link, single-use, valid 15 minutes.
//!
//! Asking for a link does the same work whether or not the address has an
//! account (one token row, one email), so neither the page nor its timing
//! tells who uses Shoulder. An unknown address gets an email that offers to
//! start a circle; its link creates the person when it is used.
//!
//! Opening a link (GET) only looks; a POST uses it. Mail scanners fetch
//! links, and a fetch must not sign anyone in or spend the link.

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde_json::json;

use super::session;
use super::token::Token;
use crate::db::schema::{people, sign_in_tokens};
use crate::db::{DbConnection, DbError, write_transaction};
use crate::mail::EmailAddress;
use crate::mail::outbox::{self, NewEmail};
use crate::rate_limit::{self, Limit, Verdict};
use crate::text::{self, TextError};

/// How long an emailed sign-in link works.
pub const LINK_LIFETIME: Duration = Duration::minutes(15);
/// Links one address may ask for per hour; more are quietly not sent.
pub const SIGN_IN_LIMIT: Limit = Limit {
    name: "sign-in",
    max: 5,
    window: Duration::hours(1),
};
pub const MAX_DISPLAY_NAME_LEN: usize = 60;

const PURPOSE: &str = "sign_in";
const START_A_CIRCLE: &str = "/circles/new";

/// A local path to return to after signing in; never another site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnPath(String);

impl ReturnPath {
    /// Only paths on this server: `/…`, not `//host` or `/\host`, no control
    /// characters. A `key` parameter is dropped: a round link's key opens
    /// one member's round page and travels no further, not into a sign-in
    /// link, a form or a log.
    pub fn parse(raw: &str) -> Option<ReturnPath> {
        let ok = raw.starts_with('/')
            && !raw.starts_with("//")
            && !raw.starts_with("/\\")
            && raw.len() <= 512
            && !raw.chars().any(char::is_control);
        ok.then(|| ReturnPath(without_key(raw)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn without_key(path: &str) -> String {
    let Some((path, query)) = path.split_once('?') else {
        return path.to_string();
    };
    let kept: Vec<_> = url::form_urlencoded::parse(query.as_bytes())
        .filter(|(name, _)| name != "key")
        .collect();
    if kept.is_empty() {
        return path.to_string();
    }
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(kept)
        .finish();
    format!("{path}?{query}")
}

/// A person's name as others in their circles will see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    pub fn parse(raw: &str) -> Result<DisplayName, TextError> {
        text::single_line(raw, MAX_DISPLAY_NAME_LEN).map(DisplayName)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for RequestError {
    fn from(error: diesel::result::Error) -> Self {
        RequestError::Db(DbError::Query(error))
    }
}

/// What became of a request for a link. Either way the person is told
/// the same, so that nobody learns whether an address has an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requested {
    Queued,
    /// Over the address's hourly limit: not sent.
    AddressLimit,
    /// Over the instance's hourly cap on mail to new addresses: not sent.
    NewAddressCap,
}

/// Records a link for `email` and puts its email in the outbox, in one
/// transaction. Over the address's hourly limit (tags after `+` count as
/// the same address), or the instance's cap on mail to addresses of nobody
/// with an account, nothing is sent, and the caller answers exactly as if
/// it had been.
pub fn request(
    conn: &mut DbConnection,
    public_base: &str,
    email: &EmailAddress,
    return_to: Option<&ReturnPath>,
    new_addresses_per_hour: u32,
    now: DateTime<Utc>,
) -> Result<Requested, RequestError> {
    write_transaction(conn, |conn| {
        let key = rate_limit::address_key(email.as_str());
        if rate_limit::hit(conn, SIGN_IN_LIMIT, &key, now)? == Verdict::Limited {
            return Ok(Requested::AddressLimit);
        }
        if !rate_limit::may_mail(conn, email.as_str(), new_addresses_per_hour, now)? {
            tracing::warn!(
                limit = "limits.new_addresses_per_hour",
                "sign-in link not sent: the hourly cap on mail to new addresses is reached"
            );
            return Ok(Requested::NewAddressCap);
        }
        let person = people::table
            .filter(crate::people::email_is(email.as_str()))
            .filter(people::deleted_at.is_null())
            .select((people::id, people::display_name))
            .first::<(i64, String)>(conn)
            .optional()?;
        let token = Token::generate();
        let at = now.naive_utc();
        diesel::insert_into(sign_in_tokens::table)
            .values((
                sign_in_tokens::email.eq(email.as_str()),
                sign_in_tokens::person_id.eq(person.as_ref().map(|(id, _)| *id)),
                sign_in_tokens::token_hash.eq(token.hash().as_str()),
                sign_in_tokens::purpose.eq(PURPOSE),
                sign_in_tokens::redirect_to.eq(return_to.map(ReturnPath::as_str).or(
                    // Someone new was offered to start a circle: take them there.
                    person.is_none().then_some(START_A_CIRCLE),
                )),
                sign_in_tokens::created_at.eq(at),
                sign_in_tokens::expires_at.eq(at + LINK_LIFETIME),
            ))
            .execute(conn)?;
        let link = format!("{public_base}/sign-in/{}", token.as_str());
        let minutes = LINK_LIFETIME.num_minutes();
        let (kind, context) = match &person {
            Some((_, name)) => (
                "sign_in",
                json!({"name": name, "link": link, "minutes": minutes}),
            ),
            None => (
                "sign_in_new",
                json!({"link": link, "minutes": minutes, "public_url": public_base}),
            ),
        };
        outbox::enqueue(
            conn,
            at,
            &NewEmail {
                send_at: None,
                kind,
                to: email.clone(),
                to_name: person.map(|(_, name)| name),
                round_id: None,
                membership_id: None,
                context: context.into(),
                headers: Vec::new(),
            },
        )?;
        Ok(Requested::Queued)
    })
}

/// What an emailed link is, without using it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkState {
    /// Usable; `new_person` when using it will create the account.
    Valid {
        email: String,
        new_person: bool,
    },
    Expired,
    Used,
    Unknown,
}

struct LinkRow {
    email: String,
    person_id: Option<i64>,
    redirect_to: Option<String>,
    expires_at: NaiveDateTime,
    used_at: Option<NaiveDateTime>,
}

fn find_link(conn: &mut DbConnection, token: &Token) -> Result<Option<LinkRow>, DbError> {
    let row = sign_in_tokens::table
        .filter(sign_in_tokens::token_hash.eq(token.hash().as_str()))
        .filter(sign_in_tokens::purpose.eq(PURPOSE))
        .select((
            sign_in_tokens::email,
            sign_in_tokens::person_id,
            sign_in_tokens::redirect_to,
            sign_in_tokens::expires_at,
            sign_in_tokens::used_at,
        ))
        .first::<(
            String,
            Option<i64>,
            Option<String>,
            NaiveDateTime,
            Option<NaiveDateTime>,
        )>(conn)
        .optional()?;
    Ok(row.map(
        |(email, person_id, redirect_to, expires_at, used_at)| LinkRow {
            email,
            person_id,
            redirect_to,
            expires_at,
            used_at,
        },
    ))
}

fn state_of(row: Option<&LinkRow>, now: NaiveDateTime) -> LinkState {
    match row {
        None => LinkState::Unknown,
        Some(row) if row.used_at.is_some() => LinkState::Used,
        Some(row) if row.expires_at <= now => LinkState::Expired,
        Some(row) => LinkState::Valid {
            email: row.email.clone(),
            new_person: row.person_id.is_none(),
        },
    }
}

/// Looks at a link for its confirmation page; changes nothing.
pub fn peek(
    conn: &mut DbConnection,
    token: &Token,
    now: DateTime<Utc>,
) -> Result<LinkState, DbError> {
    Ok(state_of(find_link(conn, token)?.as_ref(), now.naive_utc()))
}

/// What using a link did.
#[derive(Debug)]
pub enum Redeemed {
    SignedIn {
        session: Token,
        person_id: i64,
        return_to: Option<ReturnPath>,
    },
    /// A first sign-in needs the person's name; nothing was used up.
    NameNeeded,
    NotUsable(LinkState),
}

/// Uses a link: marks it used and starts a session, in one transaction.
/// The conditional update is what makes a link single-use: of two
/// simultaneous uses, only one finds it unused.
pub fn redeem(
    conn: &mut DbConnection,
    token: &Token,
    name: Option<&DisplayName>,
    now: DateTime<Utc>,
) -> Result<Redeemed, DbError> {
    let at = now.naive_utc();
    let outcome = write_transaction(conn, |conn| {
        let row = find_link(conn, token)?;
        let state = state_of(row.as_ref(), at);
        let (LinkState::Valid { .. }, Some(row)) = (&state, row) else {
            return Ok(Redeemed::NotUsable(state));
        };
        let person_id = match row.person_id {
            Some(id) => id,
            None => match existing_person(conn, &row.email)? {
                Some(id) => id,
                None => {
                    let Some(name) = name else {
                        return Ok(Redeemed::NameNeeded);
                    };
                    insert_person(conn, &row.email, name, at)?
                }
            },
        };
        let claimed = diesel::update(
            sign_in_tokens::table
                .filter(sign_in_tokens::token_hash.eq(token.hash().as_str()))
                .filter(sign_in_tokens::used_at.is_null())
                .filter(sign_in_tokens::expires_at.gt(at)),
        )
        .set(sign_in_tokens::used_at.eq(at))
        .execute(conn)?;
        if claimed != 1 {
            // Someone else used it between our read and this update: roll
            // back anything written above.
            return Err(RedeemAbort::LostRace);
        }
        let session = session::start(conn, person_id, at)?;
        Ok(Redeemed::SignedIn {
            session,
            person_id,
            return_to: row.redirect_to.as_deref().and_then(ReturnPath::parse),
        })
    });
    match outcome {
        Ok(redeemed) => Ok(redeemed),
        Err(RedeemAbort::LostRace) => Ok(Redeemed::NotUsable(LinkState::Used)),
        Err(RedeemAbort::Db(error)) => Err(error),
    }
}

/// Why the redeeming transaction rolled back.
enum RedeemAbort {
    LostRace,
    Db(DbError),
}

impl From<DbError> for RedeemAbort {
    fn from(error: DbError) -> Self {
        RedeemAbort::Db(error)
    }
}

impl From<diesel::result::Error> for RedeemAbort {
    fn from(error: diesel::result::Error) -> Self {
        RedeemAbort::Db(DbError::Query(error))
    }
}

fn existing_person(conn: &mut DbConnection, email: &str) -> Result<Option<i64>, DbError> {
    Ok(people::table
        .filter(crate::people::email_is(email))
        .filter(people::deleted_at.is_null())
        .select(people::id)
        .first(conn)
        .optional()?)
}

fn insert_person(
    conn: &mut DbConnection,
    email: &str,
    name: &DisplayName,
    now: NaiveDateTime,
) -> Result<i64, DbError> {
    diesel::insert_into(people::table)
        .values((
            people::email.eq(email),
            people::display_name.eq(name.as_str()),
            people::created_at.eq(now),
        ))
        .execute(conn)?;
    Ok(people::table
        .filter(people::email.eq(email))
        .select(people::id)
        .first(conn)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_paths_stay_on_this_server() {
        assert!(ReturnPath::parse("/circles/3").is_some());
        assert!(ReturnPath::parse("/circles/3?tab=members").is_some());
        for bad in [
            "https://evil.example",
            "//evil.example",
            "/\\evil.example",
            "circles",
            "/a\r\nb",
        ] {
            assert_eq!(ReturnPath::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn return_paths_never_keep_a_round_links_key() {
        for (raw, kept) in [
            ("/circles/3/rounds/2?key=abc", "/circles/3/rounds/2"),
            ("/circles/3?tab=x&key=abc&key=def", "/circles/3?tab=x"),
            ("/circles/3?%6Bey=abc", "/circles/3"),
            ("/circles/3?keys=1", "/circles/3?keys=1"),
        ] {
            let path = ReturnPath::parse(raw).expect("a local path");
            assert_eq!(path.as_str(), kept, "{raw}");
        }
    }
}
