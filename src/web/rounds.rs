//! The round page: the shared prompt, the viewer's check-in, whom they
//! shoulder up, the circle's open commitments with their support, and
//! stepping back (skip, away).
//!
//! A member reaches it signed in, or through the round link in their email
//! (`?key=` on the GET, a hidden `key` field on every form), which works
//! for that member and round until the round closes and for nothing else.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::NaiveDate;
use chrono_tz::Tz;
use serde::Deserialize;

use super::form::FormData;
use super::session::{SignInFirst, Viewer};
use super::views;
use super::views::rounds::{Drafts, Notice, RoundPage};
use crate::app::AppState;
use crate::circles::store::{self, Circle, Membership};
use crate::clock::{local_text, zone_or_utc};
use crate::db::DbError;
use crate::error::AppError;
use crate::rounds::away::{self, AwayDates, AwayForm, AwayPeriod};
use crate::rounds::check_in::{
    self, CheckIn, CheckInForm, FieldErrors, MAX_COMMITMENTS, OpenCommitment, Saved,
};
use crate::rounds::links::{self, Refusal};
use crate::rounds::support::{self, CircleCommitment, Offered};
use crate::rounds::{self, Round, pairing};

/// Who is acting on the page.
#[derive(Debug, Clone)]
struct Actor {
    person_id: i64,
    name: String,
    /// The round link's token, when that is how they came.
    key: Option<String>,
}

/// Why the page is not shown.
pub enum Denied {
    SignIn(Response),
    Link(Refusal),
    SomeoneElses,
    Error(AppError),
}

impl From<AppError> for Denied {
    fn from(error: AppError) -> Self {
        Denied::Error(error)
    }
}

impl IntoResponse for Denied {
    fn into_response(self) -> Response {
        match self {
            Denied::SignIn(response) => response,
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
async fn actor(
    state: &AppState,
    viewer: Option<crate::auth::session::SignedIn>,
    circle_id: i64,
    number: i32,
    key: Option<&str>,
) -> Result<Actor, Denied> {
    let Some(key) = key.filter(|k| !k.is_empty()) else {
        return match viewer {
            Some(person) => Ok(Actor {
                person_id: person.person_id,
                name: person.display_name,
                key: None,
            }),
            None => {
                let next = format!("/circles/{circle_id}/rounds/{number}");
                Err(Denied::SignIn(
                    SignInFirst::Redirect(sign_in_to(&next)).into_response(),
                ))
            }
        };
    };
    let now = state.clock.now().naive_utc();
    let owned = key.to_string();
    let resolved = state
        .db
        .run(move |conn| links::resolve(conn, &owned, circle_id, number, now))
        .await
        .map_err(AppError::from)?;
    let holder = match (resolved, viewer.as_ref()) {
        (Ok(holder), _) => holder,
        // An old email's link, opened by someone signed in: their session
        // still shows the round, where a late check-in is welcome.
        (Err(Refusal::Closed), Some(person)) => {
            return Ok(Actor {
                person_id: person.person_id,
                name: person.display_name.clone(),
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
        key: Some(key.to_string()),
    })
}

fn sign_in_to(next: &str) -> String {
    format!(
        "/sign-in?next={}",
        url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
    )
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
    skipping: bool,
    away: Vec<AwayPeriod>,
    today: NaiveDate,
}

fn zone_of(circle: &Circle) -> Tz {
    zone_or_utc(&circle.time_zone)
}

async fn load(
    state: &AppState,
    actor: &Actor,
    circle_id: i64,
    number: i32,
) -> Result<Loaded, AppError> {
    let person_id = actor.person_id;
    let now = state.clock.now();
    state
        .db
        .run(move |conn| {
            let Some((circle, membership)) = store::find_for_member(conn, circle_id, person_id)?
            else {
                return Ok(None);
            };
            let Some(round) = rounds::find_by_number(conn, circle_id, number)? else {
                return Ok(None);
            };
            let today = now.with_timezone(&zone_of(&circle)).date_naive();
            let open = check_in::open_before(conn, membership.id, round.id, round.number)?;
            let saved = check_in::saved_form(conn, round.id, membership.id)?;
            let start = match &saved {
                Some(form) => form.clone(),
                None => check_in::reported_form(conn, round.id, membership.id)?,
            };
            let partner = pairing::partner_of(conn, round.id, membership.id)?;
            let circle_open = support::open_in_circle(conn, circle_id, round.number)?;
            let skipping = away::skipping(conn, round.id)?.contains(&membership.id);
            let away = away::upcoming(conn, membership.id, today)?;
            Ok::<_, DbError>(Some(Loaded {
                circle,
                membership,
                round,
                open,
                saved,
                start,
                partner,
                circle_open,
                skipping,
                away,
                today,
            }))
        })
        .await?
        .ok_or(AppError::NotFound)
}

fn render(actor: &Actor, loaded: &Loaded, drafts: &Drafts, notice: Option<Notice>) -> maud::Markup {
    let zone = zone_of(&loaded.circle);
    let local = |at: chrono::NaiveDateTime| local_text(at.and_utc(), zone);
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
    Viewer(viewer): Viewer,
    Path((circle_id, number)): Path<(i64, i32)>,
    Query(query): Query<PageQuery>,
) -> Result<Response, Denied> {
    let actor = actor(&state, viewer, circle_id, number, query.key.as_deref()).await?;
    let loaded = load(&state, &actor, circle_id, number).await?;
    let notice = query.done.as_deref().and_then(Notice::parse);
    Ok(render(&actor, &loaded, &Drafts::default(), notice).into_response())
}

/// The actor and the page's data for a POST, from its `key` field.
async fn for_post(
    state: &AppState,
    viewer: Option<crate::auth::session::SignedIn>,
    circle_id: i64,
    number: i32,
    data: &FormData,
) -> Result<(Actor, Loaded), Denied> {
    let actor = actor(state, viewer, circle_id, number, Some(data.get("key"))).await?;
    let loaded = load(state, &actor, circle_id, number).await?;
    Ok((actor, loaded))
}

fn form_from(data: &FormData, open: &[OpenCommitment]) -> CheckInForm {
    let mut form = CheckInForm {
        reflection: data.get("reflection").to_string(),
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
    for name in data.names() {
        if let Some(id) = name.strip_prefix("outcome-")
            && !ids.iter().any(|known| known == id)
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

pub async fn check_in(
    State(state): State<AppState>,
    Viewer(viewer): Viewer,
    Path((circle_id, number)): Path<(i64, i32)>,
    data: FormData,
) -> Result<Response, Denied> {
    let (actor, loaded) = for_post(&state, viewer, circle_id, number, &data).await?;
    let form = form_from(&data, &loaded.open);
    let parsed = match CheckIn::parse(&form) {
        Ok(parsed) => parsed,
        Err(errors) => {
            let drafts = Drafts {
                check_in: Some(form),
                errors,
                ..Drafts::default()
            };
            return Ok(refused(&actor, &loaded, &drafts));
        }
    };
    let now = state.clock.now();
    let (round_id, round_number, closed, membership_id) = (
        loaded.round.id,
        loaded.round.number,
        loaded.round.closed_at.is_some(),
        loaded.membership.id,
    );
    let saved = state
        .db
        .run(move |conn| {
            check_in::save(
                conn,
                round_id,
                round_number,
                closed,
                membership_id,
                &parsed,
                now,
            )
        })
        .await
        .map_err(AppError::from)?;
    match saved {
        Saved::Saved { late } => {
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
        Saved::NotYours(id) => {
            let message = "That commitment is not one of your open ones; nothing was saved.";
            Ok(refused_check_in(
                &actor,
                &loaded,
                form,
                format!("follow-{id}"),
                message,
            ))
        }
        Saved::Answered(position) => {
            let message = "Others have answered this commitment (support, or a report since), \
                           so it stays; you can reword it, or release it next round. Nothing was saved.";
            let field = format!("commitment-{position}");
            Ok(refused_check_in(&actor, &loaded, form, field, message))
        }
    }
}

/// The check-in form again, as typed, with one problem marked.
fn refused_check_in(
    actor: &Actor,
    loaded: &Loaded,
    form: CheckInForm,
    field: String,
    message: &str,
) -> Response {
    let mut errors = FieldErrors::new();
    errors.insert(field, message.into());
    let drafts = Drafts {
        check_in: Some(form),
        errors,
        ..Drafts::default()
    };
    refused(actor, loaded, &drafts)
}

/// The commitment a form names, as an id; a malformed one matches nothing.
fn commitment_field(data: &FormData) -> i64 {
    data.get("commitment").trim().parse().unwrap_or(-1)
}

pub async fn support(
    State(state): State<AppState>,
    Viewer(viewer): Viewer,
    Path((circle_id, number)): Path<(i64, i32)>,
    data: FormData,
) -> Result<Response, Denied> {
    let (actor, loaded) = for_post(&state, viewer, circle_id, number, &data).await?;
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

pub async fn help(
    State(state): State<AppState>,
    Viewer(viewer): Viewer,
    Path((circle_id, number)): Path<(i64, i32)>,
    data: FormData,
) -> Result<Response, Denied> {
    let (actor, loaded) = for_post(&state, viewer, circle_id, number, &data).await?;
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
    Viewer(viewer): Viewer,
    Path((circle_id, number)): Path<(i64, i32)>,
    data: FormData,
) -> Result<Response, Denied> {
    let (actor, loaded) = for_post(&state, viewer, circle_id, number, &data).await?;
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
    Viewer(viewer): Viewer,
    Path((circle_id, number)): Path<(i64, i32)>,
    data: FormData,
) -> Result<Response, Denied> {
    let (actor, loaded) = for_post(&state, viewer, circle_id, number, &data).await?;
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
