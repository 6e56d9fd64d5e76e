//! Handlers for signing in by emailed link, and signing out.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::form::FormData;
use super::limits::{ClientAddress, Door, Limited, in_words, too_many, wait_over_limit};
use super::session::{Viewer, cleared_cookie, redirect_setting, session_cookie, session_token};
use super::shown_once;
use super::views;
use super::views::sign_in::{Refused, Welcome};
use crate::app::AppState;
use crate::auth::sign_in::{
    self, DisplayName, LinkState, Redeemed, RequestError, Requested, ReturnPath,
};
use crate::auth::{Token, session};
use crate::db::DbError;
use crate::error::AppError;
use crate::mail::EmailAddress;
use crate::people::zone;
use crate::text;

#[derive(Deserialize)]
pub struct Next {
    next: Option<String>,
}

pub async fn form(Viewer(viewer): Viewer, Query(query): Query<Next>) -> Response {
    let next = query.next.as_deref().and_then(ReturnPath::parse);
    if viewer.is_some() {
        return Redirect::to(next.as_ref().map_or("/", ReturnPath::as_str)).into_response();
    }
    views::sign_in::form("", next.as_ref().map_or("", ReturnPath::as_str), None).into_response()
}

pub async fn request(
    State(state): State<AppState>,
    client: ClientAddress,
    form: FormData,
) -> Result<Response, AppError> {
    let typed = form.get("email").to_string();
    let next = ReturnPath::parse(form.get("next"));
    if let Some(wait) = wait_over_limit(&state, Door::SignIn, client) {
        let reason = format!(
            "Many sign-in links have been asked for from your network. Please try again {}.",
            in_words(wait)
        );
        let page = views::sign_in::form(
            &typed,
            next.as_ref().map_or("", ReturnPath::as_str),
            Some(Refused::TooMany(&reason)),
        );
        return Ok(too_many(wait, page));
    }
    let email = match EmailAddress::parse(&typed) {
        Ok(email) => email,
        Err(error) => {
            let page = views::sign_in::form(
                &typed,
                next.as_ref().map_or("", ReturnPath::as_str),
                Some(Refused::Address(&text::sentence(&error.to_string()))),
            );
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
        }
    };
    let shown = email.to_string();
    let worker = state.clone();
    let requested = state
        .db
        .run(move |conn| {
            sign_in::request(
                conn,
                worker.config.public_base(),
                &email,
                next.as_ref(),
                worker.config.limits.new_addresses_per_hour,
                worker.clock.now(),
            )
        })
        .await
        .map_err(|RequestError::Db(error)| AppError::from(error))?;
    // Told apart only here: the person is answered the same either way.
    match requested {
        Requested::Queued => {}
        Requested::AddressLimit => state.metrics.record_limit_reached(Limited::PerAddress),
        Requested::NewAddressCap => state.metrics.record_limit_reached(Limited::NewAddresses),
    }
    state.wake_jobs();
    // Answered the same whoever asked: a redirect, the address beside it.
    let cookie = shown_once::carry_text(&shown, SENT_PAGE, state.config.public_url_is_https());
    Ok(redirect_setting(SENT_PAGE, cookie))
}

/// Where asking for a sign-in link leads.
const SENT_PAGE: &str = "/sign-in/sent";

/// "Check your email", naming the address while the browser still has it.
pub async fn sent(headers: HeaderMap) -> Response {
    views::sign_in::check_your_email(shown_once::carried_text(&headers).as_deref()).into_response()
}

pub async fn confirm_page(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Result<Response, AppError> {
    let Some(token) = Token::parse(&token) else {
        return Ok(unusable(&LinkState::Unknown));
    };
    let now = state.clock.now();
    let raw = token.as_str().to_string();
    let link = state
        .db
        .run(move |conn| sign_in::peek(conn, &token, now))
        .await?;
    Ok(match link {
        LinkState::Valid { email, new_person } => {
            let welcome = new_person.then(Welcome::default);
            views::sign_in::confirm(&raw, &email, welcome.as_ref()).into_response()
        }
        other => unusable(&other),
    })
}

pub async fn redeem(
    State(state): State<AppState>,
    Path(token): Path<String>,
    form: FormData,
) -> Result<Response, AppError> {
    let Some(token) = Token::parse(&token) else {
        return Ok(unusable(&LinkState::Unknown));
    };
    let typed_name = form.get("name").to_string();
    let typed_zone = form.get("time_zone").to_string();
    let mut welcome = Welcome {
        name: &typed_name,
        time_zone: &typed_zone,
        ..Welcome::default()
    };
    let name = if typed_name.trim().is_empty() {
        None
    } else {
        match DisplayName::parse(&typed_name) {
            Ok(name) => Some(name),
            Err(error) => {
                let problem = format!("Your name: {error}.");
                welcome.name_error = Some(&problem);
                return ask_again(&state, token, &welcome).await;
            }
        }
    };
    // Sent only by the first sign-in's form; an earlier choice is kept.
    let zone_name = if typed_zone.trim().is_empty() {
        None
    } else {
        match zone::parse(&typed_zone) {
            Ok(name) => Some(name),
            Err(problem) => {
                welcome.time_zone_error = Some(problem);
                return ask_again(&state, token, &welcome).await;
            }
        }
    };
    let now = state.clock.now();
    let redeeming = token.clone();
    let outcome = state
        .db
        .run(move |conn| {
            let outcome = sign_in::redeem(conn, &redeeming, name.as_ref(), now)?;
            if let (Redeemed::SignedIn { person_id, .. }, Some(zone_name)) = (&outcome, zone_name) {
                zone::set_if_unset(conn, *person_id, &zone_name)?;
            }
            Ok::<_, DbError>(outcome)
        })
        .await?;
    Ok(match outcome {
        Redeemed::SignedIn {
            session, return_to, ..
        } => {
            let to = return_to
                .as_ref()
                .map_or("/", ReturnPath::as_str)
                .to_string();
            redirect_setting(
                &to,
                session_cookie(&session, state.config.public_url_is_https()),
            )
        }
        Redeemed::NameNeeded => {
            welcome.name_error = Some("Please tell us your name.");
            return ask_again(&state, token, &welcome).await;
        }
        Redeemed::NotUsable(link) => unusable(&link),
    })
}

/// The first sign-in's page again, each problem next to its field.
async fn ask_again(
    state: &AppState,
    token: Token,
    welcome: &Welcome<'_>,
) -> Result<Response, AppError> {
    let now = state.clock.now();
    let raw = token.as_str().to_string();
    let link = state
        .db
        .run(move |conn| sign_in::peek(conn, &token, now))
        .await?;
    Ok(match link {
        LinkState::Valid { email, .. } => (
            StatusCode::UNPROCESSABLE_ENTITY,
            views::sign_in::confirm(&raw, &email, Some(welcome)),
        )
            .into_response(),
        other => unusable(&other),
    })
}

fn unusable(link: &LinkState) -> Response {
    let status = match link {
        LinkState::Expired | LinkState::Used => StatusCode::GONE,
        LinkState::Unknown | LinkState::Valid { .. } => StatusCode::NOT_FOUND,
    };
    (status, views::sign_in::unusable(link)).into_response()
}

pub async fn sign_out(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
) -> Result<Response, AppError> {
    if let Some(token) = session_token(&headers) {
        state.db.run(move |conn| session::end(conn, &token)).await?;
    }
    Ok((
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, header::HeaderValue::from_static("/")),
            (
                header::SET_COOKIE,
                cleared_cookie(state.config.public_url_is_https()),
            ),
        ],
    )
        .into_response())
}
