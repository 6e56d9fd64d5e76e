//! Handlers for the developer mailbox at `/dev/mail`. On a laptop the `file`
//! or `memory` transport keeps email instead of sending it; these pages show
//! what was "sent" so a newcomer can follow a sign-in link. With the `smtp`
//! transport nothing is kept, and both pages are not found.
//!
//! The pages carry live sign-in links; like every page, they are sent with
//! `Cache-Control: no-store`.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};

use super::views;
use super::views::dev_mail::KeptEmail;
use crate::app::AppState;
use crate::error::AppError;

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

/// An id that does not even decode as a path segment names no message.
pub async fn message(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, AppError> {
    let Path(id) = id.map_err(|_| AppError::NotFound)?;
    let stored = state
        .mailer
        .mailbox_message(&id)
        .await
        .map_err(AppError::Internal)?
        .ok_or(AppError::NotFound)?;
    Ok(views::dev_mail::message(&stored.parse()).into_response())
}
