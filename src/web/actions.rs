//! One-click choices from round emails (`/act/<key>/<choice>`, and
//! `/act/<token>` from older mail): how a commitment went, skipping the
//! round, going away for a while.
//!
//! The GET only shows what the link will do, since mail scanners open
//! links; the page's button POSTs. A choice works once, while its round is
//! open. It needs no sign-in: the key alone names the member. The POST
//! answers with a redirect to the link itself, whose GET, once the choice
//! is made, shows what was recorded and what is still open; so a reload
//! repeats nothing.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::NaiveDateTime;

use super::form::FormData;
use super::limits::{ClientAddress, Door, refusal_over_limit};
use super::views;
use crate::app::AppState;
use crate::db::DbError;
use crate::error::AppError;
use crate::rounds::actions::{self, Choice, Link, Pending, Unusable};
use crate::rounds::away::{AwayDates, AwayForm, FieldErrors};
use crate::rounds::links;

pub async fn confirm_keyed(
    State(state): State<AppState>,
    Path((key, choice)): Path<(String, String)>,
) -> Result<Response, AppError> {
    confirm(state, Link::parse(&key, Some(&choice))).await
}

pub async fn confirm_single(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Result<Response, AppError> {
    confirm(state, Link::parse(&token, None)).await
}

pub async fn perform_keyed(
    State(state): State<AppState>,
    client: ClientAddress,
    Path((key, choice)): Path<(String, String)>,
    data: FormData,
) -> Result<Response, AppError> {
    if let Some(refusal) = refusal_over_limit(&state, Door::Link, client) {
        return Ok(refusal);
    }
    perform(state, Link::parse(&key, Some(&choice)), data).await
}

pub async fn perform_single(
    State(state): State<AppState>,
    client: ClientAddress,
    Path(token): Path<String>,
    data: FormData,
) -> Result<Response, AppError> {
    if let Some(refusal) = refusal_over_limit(&state, Door::Link, client) {
        return Ok(refusal);
    }
    perform(state, Link::parse(&token, None), data).await
}

async fn confirm(state: AppState, link: Option<Link>) -> Result<Response, AppError> {
    let Some(link) = link else {
        return Ok(unusable(Unusable::Unknown));
    };
    let action = link.path();
    let now = state.clock.now().naive_utc();
    let peek_link = link.clone();
    let pending = state
        .db
        .run(move |conn| actions::peek(conn, &peek_link, now))
        .await?;
    Ok(match pending {
        Ok(pending) => views::actions::confirm(
            &action,
            &pending,
            &AwayForm::default(),
            &FieldErrors::new(),
            actions::local_today(&pending.time_zone, now),
        )
        .into_response(),
        Err(Unusable::Used) => recorded(&state, link, now).await?,
        Err(why) => unusable(why),
    })
}

/// The page a used link shows: what it recorded, what is still open in its
/// round, and the way to the round page.
async fn recorded(state: &AppState, link: Link, now: NaiveDateTime) -> Result<Response, AppError> {
    let key = link.key().cloned();
    let found = state
        .db
        .run(move |conn| {
            let Some((pending, away)) = actions::recorded(conn, &link, now)? else {
                return Ok(None);
            };
            let still_open = actions::still_open(conn, &pending)?;
            Ok::<_, DbError>(Some((pending, away, still_open)))
        })
        .await?;
    let Some((pending, away, still_open)) = found else {
        return Ok(unusable(Unusable::Used));
    };
    // The email's key opens the member's round page, no sign-in.
    let round_page = key.map(|key| {
        links::url(
            state.config.public_base(),
            pending.circle_id,
            pending.round_number,
            &key,
        )
    });
    Ok(views::actions::done(&pending, away, round_page.as_deref(), &still_open).into_response())
}

async fn perform(
    state: AppState,
    link: Option<Link>,
    data: FormData,
) -> Result<Response, AppError> {
    let Some(link) = link else {
        return Ok(unusable(Unusable::Unknown));
    };
    let action = link.path();
    let now = state.clock.now().naive_utc();
    let peek_link = link.clone();
    let pending: Pending = match state
        .db
        .run(move |conn| actions::peek(conn, &peek_link, now))
        .await?
    {
        Ok(pending) => pending,
        Err(why) => return Ok(unusable(why)),
    };
    let mut away = None;
    if pending.choice == Choice::Away {
        let form = AwayForm {
            starts: data.get("starts").to_string(),
            ends: data.get("ends").to_string(),
        };
        let today = actions::local_today(&pending.time_zone, now);
        match AwayDates::parse(&form, today) {
            Ok(dates) => away = Some(dates),
            Err(errors) => {
                let page = views::actions::confirm(&action, &pending, &form, &errors, today);
                return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
            }
        }
    }
    let done = state
        .db
        .run(move |conn| actions::perform(conn, &link, away, now))
        .await?;
    Ok(match done {
        Ok(pending) => {
            tracing::info!(
                circle.id = pending.circle_id,
                round.number = pending.round_number,
                "emailed choice recorded"
            );
            Redirect::to(&action).into_response()
        }
        Err(why) => unusable(why),
    })
}

fn unusable(why: Unusable) -> Response {
    let status = match why {
        Unusable::Unknown => StatusCode::NOT_FOUND,
        Unusable::Used | Unusable::Settled => StatusCode::CONFLICT,
        Unusable::Expired => StatusCode::GONE,
    };
    (status, views::actions::unusable(why)).into_response()
}
