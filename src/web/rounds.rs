//! The round page: the shared prompt, and the member's own check-in.
//! Members only, like everything under a circle.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono_tz::Tz;

use super::form::FormData;
use super::session::SignedInPerson;
use super::views;
use crate::app::AppState;
use crate::auth::session::SignedIn;
use crate::circles::store::{self, Circle, Membership};
use crate::db::DbError;
use crate::error::AppError;
use crate::rounds::check_in::{self, CheckIn, CheckInForm, FieldErrors, OpenCommitment, Saved};
use crate::rounds::{self, Round};

/// Everything the page shows, read in one go.
struct Loaded {
    circle: Circle,
    membership: Membership,
    round: Round,
    open: Vec<OpenCommitment>,
    saved: Option<CheckInForm>,
}

async fn load(
    state: &AppState,
    person: &SignedIn,
    circle_id: i64,
    number: i32,
) -> Result<Loaded, AppError> {
    let person_id = person.person_id;
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
            let open = check_in::open_before(conn, membership.id, round.id, round.number)?;
            let saved = check_in::saved_form(conn, round.id, membership.id)?;
            Ok::<_, DbError>(Some(Loaded {
                circle,
                membership,
                round,
                open,
                saved,
            }))
        })
        .await?
        .ok_or(AppError::NotFound)
}

fn render(
    person: &SignedIn,
    loaded: &Loaded,
    form: &CheckInForm,
    errors: &FieldErrors,
    notice: Option<&str>,
) -> maud::Markup {
    let zone = loaded
        .circle
        .time_zone
        .parse::<Tz>()
        .unwrap_or(chrono_tz::UTC);
    let local = |at: chrono::NaiveDateTime| {
        at.and_utc()
            .with_timezone(&zone)
            .format("%A %-d %B %Y, %H:%M %Z")
            .to_string()
    };
    views::rounds::round(&views::rounds::RoundPage {
        viewer: &person.display_name,
        circle_id: loaded.circle.id,
        circle_name: &loaded.circle.name,
        number: loaded.round.number,
        question: &loaded.round.question,
        follow_up: loaded.round.follow_up.as_deref(),
        opened: local(loaded.round.opened_at),
        closes: local(loaded.round.closes_at),
        closed: loaded.round.closed_at.is_some(),
        open_commitments: &loaded.open,
        form,
        errors,
        checked_in: loaded.saved.is_some(),
        notice,
    })
}

pub async fn show(
    State(state): State<AppState>,
    SignedInPerson(person): SignedInPerson,
    Path((circle_id, number)): Path<(i64, i32)>,
) -> Result<Response, AppError> {
    let loaded = load(&state, &person, circle_id, number).await?;
    let form = loaded.saved.clone().unwrap_or_default();
    Ok(render(&person, &loaded, &form, &FieldErrors::new(), None).into_response())
}

fn form_from(data: &FormData, open: &[OpenCommitment]) -> CheckInForm {
    let mut form = CheckInForm {
        reflection: data.get("reflection").to_string(),
        commitments: [
            data.get("commitment-1").to_string(),
            data.get("commitment-2").to_string(),
            data.get("commitment-3").to_string(),
        ],
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
    SignedInPerson(person): SignedInPerson,
    Path((circle_id, number)): Path<(i64, i32)>,
    data: FormData,
) -> Result<Response, AppError> {
    let loaded = load(&state, &person, circle_id, number).await?;
    let form = form_from(&data, &loaded.open);
    let parsed = match CheckIn::parse(&form) {
        Ok(parsed) => parsed,
        Err(errors) => {
            let page = render(&person, &loaded, &form, &errors, None);
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
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
        .await?;
    match saved {
        Saved::Saved { late } => {
            tracing::info!(
                circle.id = circle_id,
                round.number = number,
                late,
                "check-in saved"
            );
            Ok(Redirect::to(&format!("/circles/{circle_id}/rounds/{number}")).into_response())
        }
        Saved::NotYours(id) => {
            let mut errors = FieldErrors::new();
            errors.insert(
                format!("follow-{id}"),
                "That commitment is not one of your open ones; nothing was saved.".into(),
            );
            let page = render(&person, &loaded, &form, &errors, None);
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
    }
}
