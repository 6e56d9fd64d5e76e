//! Handlers for the developer mailbox at `/dev/mail`. On a laptop the `file`
//! or `memory` transport keeps email instead of sending it; these pages show
//! what was "sent" so a newcomer can follow a sign-in link. With the `smtp`
//! transport nothing is kept, and both pages are not found.
//!
//! The pages carry live sign-in links; like every page, they are sent with
//! `Cache-Control: no-store`.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::form::FormData;
use super::views;
use super::views::dev_mail::{KeptEmail, ReplyBox};
use crate::app::AppState;
use crate::error::AppError;
use crate::inbound::{compose, receive};
use crate::mail::StoredEmail;

pub async fn list(State(state): State<AppState>) -> Result<Response, AppError> {
    let kept = state
        .mailer
        .mailbox()
        .await
        .map_err(AppError::Internal)?
        .ok_or(AppError::NotFound)?;
    let shown: Vec<KeptEmail<'_>> = kept
        .iter()
        .map(|stored| KeptEmail {
            id: &stored.id,
            email: stored.parse(),
        })
        .collect();
    let page = views::dev_mail::list(state.mailer.transport_name(), &shown);
    Ok(page.into_response())
}

#[derive(Debug, Deserialize)]
pub struct MessageQuery {
    /// What the reply just sent came to.
    reply: Option<String>,
}

/// An id that does not even decode as a path segment names no message.
pub async fn message(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    Query(query): Query<MessageQuery>,
) -> Result<Response, AppError> {
    let stored = stored(&state, id).await?;
    let reply = round_mail(&stored).then_some(ReplyBox {
        id: &stored.id,
        outcome: query.reply.as_deref(),
    });
    Ok(views::dev_mail::message(&stored.parse(), reply).into_response())
}

async fn stored(
    state: &AppState,
    id: Result<Path<String>, PathRejection>,
) -> Result<StoredEmail, AppError> {
    let Path(id) = id.map_err(|_| AppError::NotFound)?;
    state
        .mailer
        .mailbox_message(&id)
        .await
        .map_err(AppError::Internal)?
        .ok_or(AppError::NotFound)
}

/// Check-ins, reminders and digests: a circle's mail, which a reply can
/// answer.
fn round_mail(stored: &StoredEmail) -> bool {
    stored.parse_header(crate::mail::headers::LIST_ID).is_some() && compose::can_reply(&stored.raw)
}

/// The Reply box: builds the reply a mail client would, from the
/// recipient, and takes it through the pipeline every reply goes through.
pub async fn reply(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    data: FormData,
) -> Result<Response, AppError> {
    let stored = stored(&state, id).await?;
    if !round_mail(&stored) {
        return Err(AppError::NotFound);
    }
    let now = state.clock.now().naive_utc();
    let Some(raw) = compose::reply(&stored.raw, data.get("reply"), now) else {
        return Err(AppError::NotFound);
    };
    let settings = receive::Settings::from_config(&state.config);
    let received = state
        .db
        .run(move |conn| receive::receive(conn, &settings, &raw, now))
        .await?;
    state.metrics.record_inbound(received);
    // The receipt is in the outbox: send it now rather than at the next tick.
    state.wake_jobs();
    Ok(Redirect::to(&format!(
        "/dev/mail/{}?reply={}#reply",
        stored.id,
        received.as_str()
    ))
    .into_response())
}
