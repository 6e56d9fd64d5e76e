//! The round page: the shared prompt, the viewer's check-in, whom they
//! shoulder up, the circle's open commitments with their support, and
//! stepping back (skip, away).
//!
//! A member reaches it signed in, or through the round link in their email
//! (`?key=` on the GET, a hidden `key` field on every form), which works
//! for that member and round until the round closes and for nothing else.

use std::collections::HashSet;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use chrono_tz::Tz;
use serde::Deserialize;

use super::form::FormData;
use super::session::{SessionToken, SignInFirst, sign_in_to};
use super::views;
use super::views::rounds::{Drafts, Notice, RoundPage, answer_field};
use crate::app::AppState;
use crate::circles::store::{self, Circle, Membership};
use crate::clock::{time_for, zone_or_utc};
use crate::db::{DbConnection, DbError};
use crate::error::AppError;
use crate::rounds::away::{self, AwayDates, AwayForm, AwayPeriod};
use crate::rounds::check_in::{
    self, CheckIn, CheckInForm, FieldErrors, MAX_COMMITMENTS, OpenCommitment, Saved,
};
use crate::rounds::links::{self, Refusal};
use crate::rounds::notes::{self, Answered, Left, Note};
use crate::rounds::support::{self, CircleCommitment, Offered};
use crate::rounds::{self, Round, pairing, reflections};

/// Who is acting on the page.
#[derive(Debug, Clone)]
struct Actor {
    person_id: i64,
    name: String,
    /// The zone they read times in, when they chose one.
    time_zone: Option<chrono_tz::Tz>,
    /// The round link's token, when that is how they came.
    key: Option<String>,
}

/// Why the page is not shown.
pub enum Denied {
    /// Sign in first, then back to this address.
    SignIn(String),
    Link(Refusal),
    SomeoneElses,
    Error(AppError),
}

impl From<AppError> for Denied {
    fn from(error: AppError) -> Self {
        Denied::Error(error)
    }
}

impl From<DbError> for Denied {
    fn from(error: DbError) -> Self {
        Denied::Error(error.into())
    }
}

impl IntoResponse for Denied {
    fn into_response(self) -> Response {
        match self {
            Denied::SignIn(next) => SignInFirst::Redirect(sign_in_to(&next)).into_response(),
            Denied::Link(Refusal::Unknown) => {
                (StatusCode::NOT_FOUND, views::rounds::link_unknown()).into_response()
            }
            Denied::Link(Refusal::OtherRound) => {
                (StatusCode::NOT_FOUND, views::rounds::link_other_round()).into_response()
            }
            Denied::Link(Refusal::Closed) => {
                (StatusCode::GONE, views::rounds::link_closed()).into_response()
            }
            Denied::SomeoneElses => {
                (StatusCode::FORBIDDEN, views::rounds::link_someone_elses()).into_response()
            }
            Denied::Error(error) => error.into_response(),
        }
    }
}

/// A round link decides when one is given; otherwise the session does.
/// Runs in the request's one `Db::run`, with the session lookup.
fn actor(
    conn: &mut DbConnection,
    session: &SessionToken,
    now: NaiveDateTime,
    circle_id: i64,
    number: i32,
    key: Option<&str>,
) -> Result<Actor, Denied> {
    let viewer = session.find(conn, now)?;
    let Some(key) = key.filter(|k| !k.is_empty()) else {
        return match viewer {
            Some(person) => Ok(Actor {
                person_id: person.person_id,
                name: person.display_name,
                time_zone: person.time_zone,
                key: None,
            }),
            None => Err(sign_in_first(circle_id, number)),
        };
    };
    let holder = match (
        links::resolve(conn, key, circle_id, number, now)?,
        viewer.as_ref(),
    ) {
        (Ok(holder), _) => holder,
        // An old email's link, opened by someone signed in: their session
        // still shows the round, where a late check-in is welcome.
        (Err(Refusal::Closed), Some(person)) => {
            return Ok(Actor {
                person_id: person.person_id,
                name: person.display_name.clone(),
                time_zone: person.time_zone,
                key: None,
            });
        }
        (Err(refusal), _) => return Err(Denied::Link(refusal)),
    };
    if viewer.is_some_and(|person| person.person_id != holder.person_id) {
        return Err(Denied::SomeoneElses);
    }
    Ok(Actor {
        person_id: holder.person_id,
        name: holder.display_name,
        time_zone: holder.time_zone,
        key: Some(key.to_string()),
    })
}

/// Everything the page shows, read in one go.
struct Loaded {
    circle: Circle,
    membership: Membership,
    round: Round,
    open: Vec<OpenCommitment>,
    saved: Option<CheckInForm>,
    /// What the form starts from: the saved check-in, or the follow-through
    /// already recorded from the email.
    start: CheckInForm,
    partner: Option<(i64, String)>,
    circle_open: Vec<CircleCommitment>,
    /// The round's reflections their authors shared with the circle.
    shared: Vec<reflections::Shared>,
    notes: Vec<Note>,
    /// The other active members, whom a note can be for.
    others: Vec<(i64, String)>,
    skipping: bool,
    away: Vec<AwayPeriod>,
    today: NaiveDate,
}

fn zone_of(circle: &Circle) -> Tz {
    zone_or_utc(&circle.time_zone)
}

fn sign_in_first(circle_id: i64, number: i32) -> Denied {
    Denied::SignIn(format!("/circles/{circle_id}/rounds/{number}"))
}

/// With neither a session cookie nor a round link nobody can be let in,
/// and the database need not be asked.
fn nobody(session: &SessionToken, key: Option<&str>) -> bool {
    session.is_absent() && key.is_none_or(str::is_empty)
}

fn load(
    conn: &mut DbConnection,
    actor: &Actor,
    circle_id: i64,
    number: i32,
    now: DateTime<Utc>,
) -> Result<Loaded, Denied> {
    let (circle, membership, round) = target(conn, actor, circle_id, number)?;
    let today = now.with_timezone(&zone_of(&circle)).date_naive();
    let open = check_in::open_before(conn, membership.id, round.id, round.number)?;
    let (own, shared) = reflections::in_round(conn, round.id, Some(membership.id))?;
    let saved = check_in::saved_form(conn, round.id, membership.id, own.as_ref())?;
    let start = match &saved {
        Some(form) => form.clone(),
        None => {
            check_in::reported_form(conn, round.id, membership.id, membership.shares_reflections)?
        }
    };
    let partner = pairing::partner_of(conn, round.id, membership.id)?;
    let circle_open = support::open_in_circle(conn, circle_id, round.number)?;
    let notes = notes::in_round(conn, round.id)?;
    let others = store::list_members(conn, circle_id)?
        .into_iter()
        .filter(|member| member.membership_id != membership.id)
        .map(|member| (member.membership_id, member.display_name))
        .collect();
    let skipping = away::skipping(conn, round.id)?.contains(&membership.id);
    let away = away::upcoming(conn, membership.id, today)?;
    Ok(Loaded {
        circle,
        membership,
        round,
        open,
        saved,
        start,
        partner,
        circle_open,
        shared,
        notes,
        others,
        skipping,
        away,
        today,
    })
}

/// The round and the actor's membership in its circle; anyone else, and
/// any round that does not exist, gets the same 404.
fn target(
    conn: &mut DbConnection,
    actor: &Actor,
    circle_id: i64,
    number: i32,
) -> Result<(Circle, Membership, Round), Denied> {
    let not_found = || Denied::Error(AppError::NotFound);
    let (circle, membership) =
        store::find_for_member(conn, circle_id, actor.person_id)?.ok_or_else(not_found)?;
    let round = rounds::find_by_number(conn, circle_id, number)?.ok_or_else(not_found)?;
    Ok((circle, membership, round))
}

/// The actor and the page's data, with the session, in one `Db::run`: a
/// request hands off to a blocking thread once, not once per step.
async fn page_for(
    state: &AppState,
    session: SessionToken,
    circle_id: i64,
    number: i32,
    key: Option<String>,
) -> Result<(Actor, Loaded), Denied> {
    if nobody(&session, key.as_deref()) {
        return Err(sign_in_first(circle_id, number));
    }
    let now = state.clock.now();
    state
        .db
        .run(move |conn| {
            let actor = actor(
                conn,
                &session,
                now.naive_utc(),
                circle_id,
                number,
                key.as_deref(),
            )?;
            let loaded = load(conn, &actor, circle_id, number, now)?;
            Ok((actor, loaded))
        })
        .await
}

fn render(actor: &Actor, loaded: &Loaded, drafts: &Drafts, notice: Option<Notice>) -> maud::Markup {
    let zone = zone_of(&loaded.circle);
    let local = |at: chrono::NaiveDateTime| time_for(at.and_utc(), zone, actor.time_zone);
    views::rounds::round(&RoundPage {
        viewer: &actor.name,
        key: actor.key.as_deref(),
        circle_id: loaded.circle.id,
        circle_name: &loaded.circle.name,
        membership_id: loaded.membership.id,
        number: loaded.round.number,
        question: &loaded.round.question,
        follow_up: loaded.round.follow_up.as_deref(),
        opened: local(loaded.round.opened_at),
        closes: local(loaded.round.closes_at),
        closed: loaded.round.closed_at.is_some(),
        open_commitments: &loaded.open,
        form: drafts.check_in.as_ref().unwrap_or(&loaded.start),
        checked_in: loaded.saved.is_some(),
        partner: loaded
            .partner
            .as_ref()
            .map(|(id, name)| (*id, name.as_str())),
        circle_open: &loaded.circle_open,
        shared: &loaded.shared,
        notes: &loaded.notes,
        others: &loaded.others,
        skipping: loaded.skipping,
        away: &loaded.away,
        today: loaded.today,
        drafts,
        notice,
    })
}

/// Back to the page after a change, keeping the round link if one was used.
fn back(circle_id: i64, number: i32, key: Option<&str>, notice: Notice) -> Response {
    let mut to = format!(
        "/circles/{circle_id}/rounds/{number}?done={}",
        notice.as_str()
    );
    if let Some(key) = key {
        to.push_str("&key=");
        to.push_str(key);
    }
    Redirect::to(&to).into_response()
}

fn refused(actor: &Actor, loaded: &Loaded, drafts: &Drafts) -> Response {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        render(actor, loaded, drafts, None),
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
pub struct PageQuery {
    key: Option<String>,
    done: Option<String>,
}

pub async fn show(
    State(state): State<AppState>,
    session: SessionToken,
    Path((circle_id, number)): Path<(i64, i32)>,
    Query(query): Query<PageQuery>,
) -> Result<Response, Denied> {
    let (actor, loaded) = page_for(&state, session, circle_id, number, query.key).await?;
    let notice = query.done.as_deref().and_then(Notice::parse);
    Ok(render(&actor, &loaded, &Drafts::default(), notice).into_response())
}

/// The actor and the page's data for a POST, from its `key` field.
async fn for_post(
    state: &AppState,
    session: SessionToken,
    circle_id: i64,
    number: i32,
    data: &FormData,
) -> Result<(Actor, Loaded), Denied> {
    let key = Some(data.get("key").to_string());
    page_for(state, session, circle_id, number, key).await
}

fn form_from(data: &FormData, open: &[OpenCommitment]) -> CheckInForm {
    let mut form = CheckInForm {
        reflection: data.get("reflection").to_string(),
        audience: data.get("audience").to_string(),
        commitments: [
            data.get("commitment-1").to_string(),
            data.get("commitment-2").to_string(),
            data.get("commitment-3").to_string(),
        ],
        extra_commitments: data
            .names()
            .filter(|name| {
                name.strip_prefix("commitment-")
                    .and_then(|n| n.parse::<usize>().ok())
                    .is_some_and(|n| n > MAX_COMMITMENTS)
            })
            .map(|name| data.get(name).to_string())
            .collect(),
        ..CheckInForm::default()
    };
    // Follow-through fields are named after the commitment; any id sent is
    // kept (and refused if it is not one of this member's open ones).
    let mut ids: Vec<String> = open.iter().map(|c| c.id.to_string()).collect();
    let mut seen: HashSet<String> = ids.iter().cloned().collect();
    for name in data.names() {
        if let Some(id) = name.strip_prefix("outcome-")
            && seen.insert(id.to_string())
        {
            ids.push(id.to_string());
        }
    }
    for id in ids {
        let outcome = data.get(&format!("outcome-{id}")).to_string();
        let note = data.get(&format!("note-{id}")).to_string();
        form.follow.insert(id, (outcome, note));
    }
    form
}

/// What a check-in POST came to.
enum Posted {
    Saved {
        actor: Actor,
        late: bool,
    },
    /// Nothing was saved: the page again, with what is wrong.
    Refused {
        actor: Actor,
        loaded: Box<Loaded>,
        errors: FieldErrors,
    },
}

/// Saves a check-in reading only what the write needs, all in one
/// `Db::run`; the page is read only when the form has to be shown again.
pub async fn check_in(
    State(state): State<AppState>,
    session: SessionToken,
    Path((circle_id, number)): Path<(i64, i32)>,
    data: FormData,
) -> Result<Response, Denied> {
    let key = data.get("key").to_string();
    if nobody(&session, Some(&key)) {
        return Err(sign_in_first(circle_id, number));
    }
    // Read only once someone could be let in. The open commitments the page
    // adds to the form carry no answer, and parsing passes over unanswered
    // ones: they matter only when the form is shown again.
    let parsed = CheckIn::parse(&form_from(&data, &[]));
    let now = state.clock.now();
    let posted = state
        .db
        .run(move |conn| {
            let actor = actor(
                conn,
                &session,
                now.naive_utc(),
                circle_id,
                number,
                Some(&key),
            )?;
            let errors = match parsed {
                Ok(parsed) => match save_check_in(conn, &actor, circle_id, number, &parsed, now)? {
                    Saved::Saved { late } => return Ok(Posted::Saved { actor, late }),
                    refused => refusal(refused),
                },
                Err(errors) => errors,
            };
            let loaded = Box::new(load(conn, &actor, circle_id, number, now)?);
            Ok::<_, Denied>(Posted::Refused {
                actor,
                loaded,
                errors,
            })
        })
        .await?;
    match posted {
        Posted::Saved { actor, late } => {
            tracing::info!(
                circle.id = circle_id,
                round.number = number,
                late,
                via_link = actor.key.is_some(),
                "check-in saved"
            );
            Ok(back(
                circle_id,
                number,
                actor.key.as_deref(),
                Notice::CheckedIn,
            ))
        }
        Posted::Refused {
            actor,
            loaded,
            errors,
        } => {
            let drafts = Drafts {
                check_in: Some(form_from(&data, &loaded.open)),
                errors,
                ..Drafts::default()
            };
            Ok(refused(&actor, &loaded, &drafts))
        }
    }
}

/// The round and membership a check-in is for, then the save transaction.
fn save_check_in(
    conn: &mut DbConnection,
    actor: &Actor,
    circle_id: i64,
    number: i32,
    parsed: &CheckIn,
    now: DateTime<Utc>,
) -> Result<Saved, Denied> {
    let (_, membership, round) = target(conn, actor, circle_id, number)?;
    let closed = round.closed_at.is_some();
    Ok(check_in::save(
        conn,
        round.id,
        round.number,
        closed,
        membership.id,
        parsed,
        now,
    )?)
}

/// Why the save transaction turned a check-in down, on the field at fault.
fn refusal(saved: Saved) -> FieldErrors {
    let (field, message) = match saved {
        Saved::Saved { .. } => return FieldErrors::new(),
        Saved::NotYours(id) => (
            format!("follow-{id}"),
            "That commitment is not one of your open ones; nothing was saved.",
        ),
        Saved::Answered(position) => (
            format!("commitment-{position}"),
            "Others have answered this commitment (support, or a report since), \
             so it stays; you can reword it, or release it next round. Nothing was saved.",
        ),
    };
    FieldErrors::from([(field, message.to_string())])
}

/// The commitment a form names, as an id; a malformed one matches nothing.
fn commitment_field(data: &FormData) -> i64 {
    data.get("commitment").trim().parse().unwrap_or(-1)
}

pub async fn support(
    State(state): State<AppState>,
    session: SessionToken,
    Path((circle_id, number)): Path<(i64, i32)>,
    data: FormData,
) -> Result<Response, Denied> {
    let (actor, loaded) = for_post(&state, session, circle_id, number, &data).await?;
    let commitment_id = commitment_field(&data);
    let typed = data.get("body").to_string();
    let field = format!("support-{commitment_id}");
    let mut drafts = Drafts {
        support: Some((commitment_id, typed.clone())),
        ..Drafts::default()
    };
    let body = match support::parse_message(&typed) {
        Ok(body) => body,
        Err(message) => {
            drafts.errors.insert(field, message);
            return Ok(refused(&actor, &loaded, &drafts));
        }
    };
    let (round_id, membership_id) = (loaded.round.id, loaded.membership.id);
    let now = state.clock.now().naive_utc();
    let offered = state
        .db
        .run(move |conn| {
            support::offer(
                conn,
                circle_id,
                round_id,
                membership_id,
                commitment_id,
                &body,
                now,
            )
        })
        .await
        .map_err(AppError::from)?;
    let problem = match offered {
        Offered::Saved => {
            return Ok(back(
                circle_id,
                number,
                actor.key.as_deref(),
                Notice::Supported,
            ));
        }
        Offered::OwnCommitment => {
            "Support is for a peer's commitment. For your own, choose \"I could use help\"; nothing was saved."
        }
        Offered::Unknown => "That commitment is not one in this circle; nothing was saved.",
    };
    drafts.errors.insert("support".into(), problem.into());
    Ok(refused(&actor, &loaded, &drafts))
}

pub async fn note(
    State(state): State<AppState>,
    session: SessionToken,
    Path((circle_id, number)): Path<(i64, i32)>,
    data: FormData,
) -> Result<Response, Denied> {
    let (actor, loaded) = for_post(&state, session, circle_id, number, &data).await?;
    let recipient: i64 = data.get("for").trim().parse().unwrap_or(-1);
    let typed = data.get("body").to_string();
    let mut drafts = Drafts {
        note: Some((recipient, typed.clone())),
        ..Drafts::default()
    };
    let body = match notes::parse_note(&typed) {
        Ok(body) => body,
        Err(message) => {
            drafts.errors.insert("note".into(), message);
            return Ok(refused(&actor, &loaded, &drafts));
        }
    };
    let (round_id, membership_id) = (loaded.round.id, loaded.membership.id);
    let now = state.clock.now().naive_utc();
    let left = state
        .db
        .run(move |conn| {
            notes::leave(
                conn,
                circle_id,
                round_id,
                membership_id,
                recipient,
                &body,
                now,
            )
        })
        .await
        .map_err(AppError::from)?;
    let problem = match left {
        Left::Saved => {
            return Ok(back(
                circle_id,
                number,
                actor.key.as_deref(),
                Notice::NoteLeft,
            ));
        }
        Left::ToOneself => "A note is for someone else in the circle; nothing was saved.",
        Left::NotInCircle => "Choose someone in this circle; nothing was saved.",
    };
    drafts.errors.insert("note-for".into(), problem.into());
    Ok(refused(&actor, &loaded, &drafts))
}

/// The one answer to a note or to support, by the one who received it.
pub async fn answer(
    State(state): State<AppState>,
    session: SessionToken,
    Path((circle_id, number)): Path<(i64, i32)>,
    data: FormData,
) -> Result<Response, Denied> {
    let (actor, loaded) = for_post(&state, session, circle_id, number, &data).await?;
    let on_note = data.get("to") == "note";
    let id: i64 = data.get("id").trim().parse().unwrap_or(-1);
    let typed = data.get("answer").to_string();
    let field = answer_field(on_note, id);
    let mut drafts = Drafts {
        answer: Some((field.clone(), typed.clone())),
        ..Drafts::default()
    };
    let text = match notes::parse_answer(&typed) {
        Ok(text) => text,
        Err(message) => {
            drafts.errors.insert(field, message);
            return Ok(refused(&actor, &loaded, &drafts));
        }
    };
    let membership_id = loaded.membership.id;
    let now = state.clock.now().naive_utc();
    let answered = state
        .db
        .run(move |conn| {
            if on_note {
                notes::answer(conn, id, membership_id, &text, now)
            } else {
                support::answer(conn, id, membership_id, &text, now)
            }
        })
        .await
        .map_err(AppError::from)?;
    let problem = match answered {
        Answered::Saved => {
            return Ok(back(
                circle_id,
                number,
                actor.key.as_deref(),
                Notice::Answered,
            ));
        }
        Answered::Already => {
            "It has your answer already: one is all it takes. Nothing was changed."
        }
        Answered::NotYours => "Only the one it was written to can answer it; nothing was saved.",
    };
    drafts.errors.insert("answer".into(), problem.into());
    Ok(refused(&actor, &loaded, &drafts))
}

pub async fn help(
    State(state): State<AppState>,
    session: SessionToken,
    Path((circle_id, number)): Path<(i64, i32)>,
    data: FormData,
) -> Result<Response, Denied> {
    let (actor, loaded) = for_post(&state, session, circle_id, number, &data).await?;
    let commitment_id = commitment_field(&data);
    let wanted = data.get("wanted") == "yes";
    let membership_id = loaded.membership.id;
    let changed = state
        .db
        .run(move |conn| support::set_help_wanted(conn, membership_id, commitment_id, wanted))
        .await
        .map_err(AppError::from)?;
    if changed {
        let notice = if wanted {
            Notice::HelpAsked
        } else {
            Notice::HelpWithdrawn
        };
        return Ok(back(circle_id, number, actor.key.as_deref(), notice));
    }
    let mut drafts = Drafts::default();
    drafts.errors.insert(
        "help".into(),
        "You can ask for help only on your own commitments; nothing was changed.".into(),
    );
    Ok(refused(&actor, &loaded, &drafts))
}

pub async fn skip(
    State(state): State<AppState>,
    session: SessionToken,
    Path((circle_id, number)): Path<(i64, i32)>,
    data: FormData,
) -> Result<Response, Denied> {
    let (actor, loaded) = for_post(&state, session, circle_id, number, &data).await?;
    let skipping = data.get("skip") != "no";
    let (round_id, membership_id) = (loaded.round.id, loaded.membership.id);
    let now = state.clock.now().naive_utc();
    state
        .db
        .run(move |conn| {
            if skipping {
                away::skip(conn, round_id, membership_id, now)
            } else {
                away::unskip(conn, round_id, membership_id)
            }
        })
        .await
        .map_err(AppError::from)?;
    let notice = if skipping {
        Notice::Skipped
    } else {
        Notice::Unskipped
    };
    Ok(back(circle_id, number, actor.key.as_deref(), notice))
}

pub async fn away(
    State(state): State<AppState>,
    session: SessionToken,
    Path((circle_id, number)): Path<(i64, i32)>,
    data: FormData,
) -> Result<Response, Denied> {
    let (actor, loaded) = for_post(&state, session, circle_id, number, &data).await?;
    let membership_id = loaded.membership.id;
    let now = state.clock.now().naive_utc();
    if let Ok(away_id) = data.get("cancel").trim().parse::<i64>() {
        let cancelled = state
            .db
            .run(move |conn| away::cancel(conn, membership_id, away_id))
            .await
            .map_err(AppError::from)?;
        if cancelled {
            return Ok(back(
                circle_id,
                number,
                actor.key.as_deref(),
                Notice::AwayCancelled,
            ));
        }
        let mut drafts = Drafts::default();
        drafts.errors.insert(
            "away".into(),
            "Those away dates are not yours to change; nothing was changed.".into(),
        );
        return Ok(refused(&actor, &loaded, &drafts));
    }
    let form = AwayForm {
        starts: data.get("starts").to_string(),
        ends: data.get("ends").to_string(),
    };
    let dates = match AwayDates::parse(&form, loaded.today) {
        Ok(dates) => dates,
        Err(errors) => {
            let drafts = Drafts {
                away: Some(form),
                errors,
                ..Drafts::default()
            };
            return Ok(refused(&actor, &loaded, &drafts));
        }
    };
    state
        .db
        .run(move |conn| away::add(conn, membership_id, dates, now))
        .await
        .map_err(AppError::from)?;
    Ok(back(
        circle_id,
        number,
        actor.key.as_deref(),
        Notice::AwaySet,
    ))
}
