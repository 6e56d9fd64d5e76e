//! Handlers behind the emailed unsubscribe link (RFC 8058).
//!
//! A GET only shows what the link would do: mail scanners fetch links. The
//! POST mutes; mail providers send it themselves, from their own servers,
//! with `List-Unsubscribe=One-Click` as the body and no cookie, so it needs
//! neither a session nor a same-origin request (the middleware lets
//! `/unsubscribe/` through). The token alone decides, and the body is not
//! read: our own page's form and a provider's POST are answered alike.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::limits::{ClientAddress, Door, refusal_over_limit};
use super::views;
use crate::app::AppState;
use crate::auth::Token;
use crate::circles::unsubscribe;
use crate::error::AppError;

pub async fn confirm_page(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Result<Response, AppError> {
    let Some(token) = Token::parse(&token) else {
        return Ok(unusable());
    };
    let now = state.clock.now().naive_utc();
    let raw = token.as_str().to_string();
    let target = state
        .db
        .run(move |conn| unsubscribe::peek(conn, &token, now))
        .await?;
    Ok(match target {
        Some(target) => views::unsubscribe::confirm(
            &raw,
            target.circle_id,
            &target.circle_name,
            target.already_muted,
        )
        .into_response(),
        None => unusable(),
    })
}

pub async fn unsubscribe(
    State(state): State<AppState>,
    client: ClientAddress,
    Path(token): Path<String>,
) -> Result<Response, AppError> {
    if let Some(refusal) = refusal_over_limit(&state, Door::Link, client) {
        return Ok(refusal);
    }
    let Some(token) = Token::parse(&token) else {
        return Ok(unusable());
    };
    let now = state.clock.now().naive_utc();
    let target = state
        .db
        .run(move |conn| unsubscribe::unsubscribe(conn, &token, now))
        .await?;
    Ok(match target {
        Some(target) => {
            if !target.already_muted {
                tracing::info!(circle.id = target.circle_id, "circle mail muted by link");
            }
            views::unsubscribe::done(target.circle_id, &target.circle_name).into_response()
        }
        None => unusable(),
    })
}

fn unusable() -> Response {
    (StatusCode::NOT_FOUND, views::unsubscribe::unusable()).into_response()
}
