//! One pipeline for every message that comes in, whichever way it came
//! (`shoulder inbound`, `POST /inbound/email`, the dev mailbox's Reply box):
//! find whose reply it is, check it may be taken, record it as the same
//! check-in on the round page would be, and answer with a receipt.
//!
//! The key in the address it was sent to is the authority, as the round
//! link is; a reply sent to our From address instead is matched through the
//! email it answers. Besides, the sender must be the member. A stranger, a
//! program, a repeat or one reply too many records nothing and gets no
//! answer: we never mail an address that did not ask.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::message::{self, Incoming};
use super::reply::{self, Problem, Reply};
use super::report::Report;
use super::trim;
use crate::auth::Token;
use crate::db::schema::{
    circles, deliveries, inbound_messages, memberships, people, round_links, rounds,
};
use crate::db::{DbConnection, DbError};
use crate::mail::EmailAddress;
use crate::mail::outbox::{self, EmailContext, NewEmail};
use crate::rounds::check_in::{self, CheckIn, Saved};
use crate::rounds::writes::Writes;
use crate::rounds::{away, links, reflections};

/// What the pipeline needs besides the database.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `inbound.reply_address`, with `{key}`; empty when replies are off.
    pub reply_address: String,
    /// `inbound.bounce_address`, with `{key}`; empty when unused.
    pub bounce_address: String,
    pub max_bytes: usize,
    pub replies_per_round_per_day: u32,
    pub public_base: String,
}

impl Settings {
    pub fn from_config(config: &crate::config::Config) -> Settings {
        Settings {
            reply_address: config.inbound.reply_address.clone(),
            bounce_address: config.inbound.bounce_address.clone(),
            max_bytes: config.inbound.max_bytes,
            replies_per_round_per_day: config.inbound.replies_per_round_per_day,
            public_base: config.public_base().to_string(),
        }
    }
}

/// What became of a message. Each way in says it in its own terms: an exit
/// code for `shoulder inbound`, a status for `POST /inbound/email`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Received {
    /// Taken: a check-in (or part of one) was recorded; a receipt is queued.
    Recorded,
    /// Taken: the member skips the round; a receipt is queued.
    Skipped,
    /// Taken, but nothing in it could be recorded; a receipt says why.
    Nothing,
    /// Dropped: this Message-ID was taken before.
    Repeat,
    /// Dropped: sent by a program (an auto-reply, a list, a bounce).
    Automatic,
    /// Dropped: the sender is not the member the key belongs to.
    Stranger,
    /// Dropped: the member has sent more replies about this round today
    /// than are taken.
    Limited,
    /// No reply address or answered email of ours matches.
    Unknown,
    /// Taken: a bounce; the email failed and its address is suppressed.
    Bounced,
    /// Taken: a delay, or a report of nothing failed; nothing to do.
    Delayed,
    /// Taken: a complaint; the person gets no more of that circle's mail.
    Complained,
    /// Not a message at all.
    Unreadable,
    /// Larger than `inbound.max_bytes`.
    TooBig,
}

impl Received {
    /// Whether the message was taken, or dropped on purpose: either way,
    /// whoever passed it on is done with it.
    pub fn settled(self) -> bool {
        !matches!(
            self,
            Received::Unknown | Received::Unreadable | Received::TooBig
        )
    }

    /// As stored in `inbound_messages.outcome` and logged.
    pub fn as_str(self) -> &'static str {
        match self {
            Received::Recorded => "recorded",
            Received::Skipped => "skipped",
            Received::Nothing => "nothing",
            Received::Repeat => "repeat",
            Received::Automatic => "automatic",
            Received::Stranger => "stranger",
            Received::Limited => "limited",
            Received::Bounced => "bounced",
            Received::Delayed => "delayed",
            Received::Complained => "complained",
            Received::Unknown => "unknown",
            Received::Unreadable => "unreadable",
            Received::TooBig => "too big",
        }
    }
}

/// Whose reply a message is: a member, about a round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Target {
    round_id: i64,
    membership_id: i64,
}

/// Takes one raw message through the pipeline. `Err` only for a database
/// that failed: the message may be offered again later, and since nothing
/// was kept of it, it will then be taken.
pub fn receive(
    conn: &mut DbConnection,
    settings: &Settings,
    raw: &[u8],
    now: NaiveDateTime,
) -> Result<Received, DbError> {
    if raw.len() > settings.max_bytes {
        return Ok(Received::TooBig);
    }
    let Some(incoming) = message::read(raw) else {
        return Ok(Received::Unreadable);
    };
    if let Some((report, quoted)) = &incoming.report {
        return take_report(conn, settings, &incoming, report, quoted, raw, now);
    }
    let Some(target) = target(conn, settings, &incoming)? else {
        tracing::info!(
            answers = incoming.answers.len(),
            "inbound message matches no reply address"
        );
        return Ok(Received::Unknown);
    };
    let message_id = id_of(&incoming, raw);
    if !claim(conn, &message_id, Some(target), now)? {
        return Ok(Received::Repeat);
    }
    let taken = take(conn, settings, &incoming, target, now);
    let received = settle(conn, &message_id, taken)?;
    tracing::info!(
        membership.id = target.membership_id,
        round.id = target.round_id,
        outcome = received.as_str(),
        "inbound reply"
    );
    Ok(received)
}

/// A message's own id; one without an id of its own is known by its bytes.
fn id_of(incoming: &Incoming, raw: &[u8]) -> String {
    incoming
        .message_id
        .clone()
        .unwrap_or_else(|| format!("sha256:{}", hex::encode(Sha256::digest(raw))))
}

/// A bounce or a complaint about an email of ours: found by the key in the
/// address it came back to, else by the Message-ID it quotes.
fn take_report(
    conn: &mut DbConnection,
    settings: &Settings,
    incoming: &Incoming,
    report: &Report,
    quoted: &[String],
    raw: &[u8],
    now: NaiveDateTime,
) -> Result<Received, DbError> {
    let mut keys: Vec<String> = Vec::new();
    if let Some((prefix, suffix)) = settings.bounce_address.split_once("{key}") {
        let (prefix, suffix) = (prefix.to_lowercase(), suffix.to_lowercase());
        keys.extend(incoming.recipients.iter().filter_map(|address| {
            let address = address.to_lowercase();
            address
                .strip_prefix(&prefix)
                .and_then(|rest| rest.strip_suffix(&suffix))
                .map(str::to_string)
        }));
    }
    keys.extend(
        quoted
            .iter()
            .map(|id| id.split('@').next().unwrap_or_default().to_string()),
    );
    let mut delivery = None;
    for key in keys.iter().filter(|k| !k.is_empty()) {
        if let Some(found) = outbox::find_by_key(conn, key)? {
            delivery = Some(found);
            break;
        }
    }
    let Some(delivery) = delivery else {
        tracing::info!("a report about no email of ours");
        return Ok(Received::Unknown);
    };
    let target = match (delivery.round_id, delivery.membership_id) {
        (Some(round_id), Some(membership_id)) => Some(Target {
            round_id,
            membership_id,
        }),
        _ => None,
    };
    let message_id = id_of(incoming, raw);
    if !claim(conn, &message_id, target, now)? {
        return Ok(Received::Repeat);
    }
    let acted = act_on(conn, report, &delivery, now);
    let received = settle(conn, &message_id, acted)?;
    tracing::info!(
        delivery.id = delivery.id,
        outcome = received.as_str(),
        "report about our mail"
    );
    Ok(received)
}

/// What a report about `delivery` changes.
fn act_on(
    conn: &mut DbConnection,
    report: &Report,
    delivery: &outbox::Returned,
    now: NaiveDateTime,
) -> Result<Received, DbError> {
    Ok(match report {
        Report::Failed { status } => {
            outbox::bounced(conn, delivery, status, now)?;
            Received::Bounced
        }
        Report::NotFailed => Received::Delayed,
        Report::Complaint => {
            if let Some(membership_id) = delivery.membership_id {
                diesel::update(memberships::table.find(membership_id))
                    .set(memberships::muted.eq(true))
                    .execute(conn)?;
            }
            Received::Complained
        }
    })
}

/// Keeps what became of a claimed message; when taking it failed, forgets
/// the claim instead, so that it is taken when it is offered again.
fn settle(
    conn: &mut DbConnection,
    message_id: &str,
    taken: Result<Received, DbError>,
) -> Result<Received, DbError> {
    let claimed = inbound_messages::table.filter(inbound_messages::message_id.eq(message_id));
    match taken {
        Ok(received) => {
            diesel::update(claimed)
                .set(inbound_messages::outcome.eq(received.as_str()))
                .execute(conn)?;
            Ok(received)
        }
        Err(error) => {
            diesel::delete(claimed).execute(conn)?;
            Err(error)
        }
    }
}

/// The member and round the message is a reply about: by the key in one of
/// the addresses it was sent to, else by the email of ours it answers.
fn target(
    conn: &mut DbConnection,
    settings: &Settings,
    incoming: &Incoming,
) -> Result<Option<Target>, DbError> {
    if let Some((prefix, suffix)) = settings.reply_address.split_once("{key}") {
        let (prefix, suffix) = (prefix.to_lowercase(), suffix.to_lowercase());
        for address in &incoming.recipients {
            let address = address.to_lowercase();
            let Some(key) = address
                .strip_prefix(&prefix)
                .and_then(|rest| rest.strip_suffix(&suffix))
                .and_then(Token::parse)
            else {
                continue;
            };
            let found: Option<(i64, i64)> = round_links::table
                .filter(round_links::reply_token_hash.eq(key.hash().as_str()))
                .select((round_links::round_id, round_links::membership_id))
                .first(conn)
                .optional()?;
            if let Some((round_id, membership_id)) = found {
                return Ok(Some(Target {
                    round_id,
                    membership_id,
                }));
            }
        }
    }
    for answered in &incoming.answers {
        let key = answered.split('@').next().unwrap_or_default();
        let found: Option<(Option<i64>, Option<i64>)> = deliveries::table
            .filter(deliveries::message_id.eq(key))
            .filter(deliveries::kind.eq_any(["check_in", "reminder", "digest", "receipt"]))
            .select((deliveries::round_id, deliveries::membership_id))
            .first(conn)
            .optional()?;
        if let Some((Some(round_id), Some(membership_id))) = found {
            return Ok(Some(Target {
                round_id,
                membership_id,
            }));
        }
        if let Some((None, Some(membership_id))) = found {
            // A receipt names its round in the round link it carries; its
            // row does not, so that each reply can have one. Its member's
            // latest round is the one it was about.
            if let Some(round_id) = latest_round_of(conn, membership_id)? {
                return Ok(Some(Target {
                    round_id,
                    membership_id,
                }));
            }
        }
    }
    Ok(None)
}

fn latest_round_of(conn: &mut DbConnection, membership_id: i64) -> Result<Option<i64>, DbError> {
    Ok(rounds::table
        .inner_join(memberships::table.on(memberships::circle_id.eq(rounds::circle_id)))
        .filter(memberships::id.eq(membership_id))
        .order(rounds::number.desc())
        .select(rounds::id)
        .first(conn)
        .optional()?)
}

/// Records that the message is being taken; false when it was before.
fn claim(
    conn: &mut DbConnection,
    message_id: &str,
    target: Option<Target>,
    now: NaiveDateTime,
) -> Result<bool, DbError> {
    let query = diesel::insert_into(inbound_messages::table)
        .values((
            inbound_messages::message_id.eq(message_id),
            inbound_messages::membership_id.eq(target.map(|t| t.membership_id)),
            inbound_messages::round_id.eq(target.map(|t| t.round_id)),
            inbound_messages::outcome.eq("taking"),
            inbound_messages::received_at.eq(now),
        ))
        .on_conflict(inbound_messages::message_id)
        .do_nothing();
    let inserted = match conn {
        DbConnection::Postgresql(conn) => query.execute(conn)?,
        DbConnection::Sqlite(conn) => query.execute(conn)?,
    };
    Ok(inserted == 1)
}

/// Who the member is, as the checks and the receipt need them.
struct Member {
    email: String,
    name: String,
    active: bool,
    circle: String,
    circle_id: i64,
}

fn take(
    conn: &mut DbConnection,
    settings: &Settings,
    incoming: &Incoming,
    target: Target,
    now: NaiveDateTime,
) -> Result<Received, DbError> {
    if let Some(why) = incoming.automatic {
        tracing::info!(
            membership.id = target.membership_id,
            why,
            "automatic mail dropped"
        );
        return Ok(Received::Automatic);
    }
    let (email, name, status, circle, circle_id): (String, String, String, String, i64) =
        memberships::table
            .inner_join(people::table)
            .inner_join(circles::table)
            .filter(memberships::id.eq(target.membership_id))
            .select((
                people::email,
                people::display_name,
                memberships::status,
                circles::name,
                circles::id,
            ))
            .first(conn)?;
    let member = Member {
        email,
        name,
        active: status == crate::circles::store::STATUS_ACTIVE,
        circle,
        circle_id,
    };
    if !same_sender(incoming.from.as_deref(), &member.email) || !member.active {
        tracing::warn!(
            membership.id = target.membership_id,
            "reply from someone other than the member dropped"
        );
        return Ok(Received::Stranger);
    }
    let today: i64 = inbound_messages::table
        .filter(inbound_messages::membership_id.eq(target.membership_id))
        .filter(inbound_messages::round_id.eq(target.round_id))
        .filter(inbound_messages::received_at.gt(now - Duration::days(1)))
        .filter(inbound_messages::outcome.eq_any(["recorded", "skipped", "nothing", "taking"]))
        .count()
        .get_result(conn)?;
    // The claim of this very message is among them.
    if today > i64::from(settings.replies_per_round_per_day) {
        return Ok(Received::Limited);
    }
    let (number, closed_at): (i32, Option<NaiveDateTime>) = rounds::table
        .find(target.round_id)
        .select((rounds::number, rounds::closed_at))
        .first(conn)?;
    let closed = closed_at.is_some();
    let open = check_in::open_before(conn, target.membership_id, target.round_id, number)?;
    let words = trim::own_words(&incoming.text);
    let reply = reply::read(&words, open.len());
    let mut receipt = Receipt {
        name: member.name.clone(),
        circle: member.circle.clone(),
        number,
        late: closed,
        recorded: Vec::new(),
        problems: reply.problems.clone(),
        skipped: false,
        round_url: String::new(),
    };
    let received = if reply.skip {
        if closed {
            receipt.problems.push(Problem {
                line: 1,
                text: "skip".into(),
                why: "The round has closed, so there is nothing left to skip.".into(),
            });
            Received::Nothing
        } else {
            away::skip(conn, target.round_id, target.membership_id, now)?;
            receipt.skipped = true;
            Received::Skipped
        }
    } else {
        record(
            conn,
            target,
            number,
            closed,
            &open,
            &reply,
            now,
            &mut receipt,
        )?
    };
    queue_receipt(conn, settings, target, &member, incoming, &mut receipt, now)?;
    Ok(received)
}

/// Whether `from` is `stored`, compared as addresses are stored.
fn same_sender(from: Option<&str>, stored: &str) -> bool {
    let Some(Ok(from)) = from.map(EmailAddress::parse) else {
        return false;
    };
    match EmailAddress::parse(stored) {
        Ok(stored) => from.as_str() == stored.as_str(),
        Err(_) => false,
    }
}

/// Merges the reply into what the member saved for the round (a later
/// reply or page save wins field by field) and saves it the way the round
/// page does.
#[allow(clippy::too_many_arguments)]
fn record(
    conn: &mut DbConnection,
    target: Target,
    number: i32,
    closed: bool,
    open: &[check_in::OpenCommitment],
    reply: &Reply,
    now: NaiveDateTime,
    receipt: &mut Receipt,
) -> Result<Received, DbError> {
    let (own, _) = reflections::in_round(conn, target.round_id, Some(target.membership_id))?;
    let saved = check_in::saved_form(conn, target.round_id, target.membership_id, own.as_ref())?;
    let mut form = match saved {
        Some(form) => form,
        None => {
            let shares: bool = memberships::table
                .find(target.membership_id)
                .select(memberships::shares_reflections)
                .first(conn)?;
            check_in::reported_form(conn, target.round_id, target.membership_id, shares)?
        }
    };
    // The audience stays as it is: a reply cannot say.
    form.audience.clear();
    let mut recorded = Vec::new();
    if !reply.reflection.is_empty() {
        form.reflection = reply.reflection.clone();
        recorded.push(format!("Your reflection: {}", preview(&reply.reflection)));
    }
    for (which, outcome, note) in &reply.follow {
        let commitment = &open[which - 1];
        form.follow.insert(
            commitment.id.to_string(),
            (
                outcome.as_str().to_string(),
                note.clone().unwrap_or_default(),
            ),
        );
        recorded.push(match note {
            Some(note) => format!("{}: {} ({note})", outcome.label(), commitment.body),
            None => format!("{}: {}", outcome.label(), commitment.body),
        });
    }
    for commitment in &reply.commitments {
        if form.commitments.iter().any(|c| c == commitment) {
            recorded.push(format!("Already one of yours: {commitment}"));
            continue;
        }
        match form.commitments.iter_mut().find(|c| c.is_empty()) {
            Some(slot) => {
                *slot = commitment.clone();
                recorded.push(format!("New commitment: {commitment}"));
            }
            None => receipt.problems.push(Problem {
                line: 0,
                text: format!("+ {commitment}"),
                why: format!(
                    "This round already holds your {} commitments; change them on your round page.",
                    check_in::MAX_COMMITMENTS
                ),
            }),
        }
    }
    if recorded.is_empty() {
        return Ok(Received::Nothing);
    }
    let check_in = match CheckIn::parse(&form) {
        Ok(check_in) => check_in,
        Err(errors) => {
            receipt
                .problems
                .extend(errors.into_values().map(|why| Problem {
                    line: 0,
                    text: String::new(),
                    why,
                }));
            return Ok(Received::Nothing);
        }
    };
    let saved = check_in::save(
        conn,
        target.round_id,
        number,
        closed,
        target.membership_id,
        &check_in,
        now.and_utc(),
    )?;
    match saved {
        Saved::Saved { .. } => {
            receipt.recorded = recorded;
            Ok(Received::Recorded)
        }
        Saved::NotYours(_) | Saved::Answered(_) => {
            receipt.problems.push(Problem {
                line: 0,
                text: String::new(),
                why: "Your round page changed in a way this reply cannot follow; nothing was recorded. Please check in there.".into(),
            });
            Ok(Received::Nothing)
        }
    }
}

/// The first words of a longer text, for a receipt.
fn preview(text: &str) -> String {
    const WORDS: usize = 24;
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.len() <= WORDS {
        words.join(" ")
    } else {
        format!("{} …", words[..WORDS].join(" "))
    }
}

/// A receipt's context, as its templates read it.
#[derive(Debug, Clone, Serialize)]
struct Receipt {
    name: String,
    circle: String,
    number: i32,
    late: bool,
    recorded: Vec<String>,
    #[serde(serialize_with = "problem_lines")]
    problems: Vec<Problem>,
    skipped: bool,
    round_url: String,
}

fn problem_lines<S: serde::Serializer>(problems: &[Problem], out: S) -> Result<S::Ok, S::Error> {
    let lines: Vec<String> = problems
        .iter()
        .map(|p| match (p.line, p.text.is_empty()) {
            (0, true) => p.why.clone(),
            (0, false) => format!("\"{}\": {}", p.text, p.why),
            (line, _) => format!("line {line} (\"{}\"): {}", p.text, p.why),
        })
        .collect();
    lines.serialize(out)
}

/// Queues the receipt, with a fresh round link to change anything.
fn queue_receipt(
    conn: &mut DbConnection,
    settings: &Settings,
    target: Target,
    member: &Member,
    incoming: &Incoming,
    receipt: &mut Receipt,
    now: NaiveDateTime,
) -> Result<(), DbError> {
    let Ok(to) = EmailAddress::parse(&member.email) else {
        return Ok(());
    };
    let mut writes = Writes::default();
    let (key, _) = writes.round_link(target.round_id, target.membership_id, false);
    receipt.round_url = links::url(
        &settings.public_base,
        member.circle_id,
        receipt.number,
        &key,
    );
    let mut headers = vec![(
        crate::mail::headers::AUTO_SUBMITTED.to_string(),
        "auto-replied".to_string(),
    )];
    if let Some(id) = &incoming.message_id {
        headers.push(("In-Reply-To".to_string(), format!("<{id}>")));
    }
    writes.email(NewEmail {
        send_at: None,
        kind: "receipt",
        to,
        to_name: Some(member.name.clone()),
        round_id: None,
        membership_id: Some(target.membership_id),
        context: EmailContext::of(receipt)?,
        headers,
    });
    writes.insert(conn, now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_messages_taken_or_dropped_on_purpose_are_settled() {
        for taken in [
            Received::Recorded,
            Received::Bounced,
            Received::Delayed,
            Received::Complained,
            Received::Skipped,
            Received::Nothing,
            Received::Repeat,
            Received::Automatic,
            Received::Stranger,
            Received::Limited,
        ] {
            assert!(taken.settled(), "{taken:?}");
        }
        for refused in [Received::Unknown, Received::Unreadable, Received::TooBig] {
            assert!(!refused.settled(), "{refused:?}");
        }
    }

    #[test]
    fn a_receipt_names_each_problem_with_its_line() {
        let receipt = Receipt {
            name: "Ada".into(),
            circle: "Night shift".into(),
            number: 2,
            late: false,
            recorded: vec!["Done: Ask Sam".into()],
            problems: vec![Problem {
                line: 3,
                text: "4 done".into(),
                why: "There is no commitment 4: yours are 1 to 2.".into(),
            }],
            skipped: false,
            round_url: "http://x/".into(),
        };
        let json = serde_json::to_value(&receipt).expect("json");
        assert_eq!(
            json["problems"][0],
            "line 3 (\"4 done\"): There is no commitment 4: yours are 1 to 2."
        );
    }
}
