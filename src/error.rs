//! The one error type at the HTTP edge. Domain errors become a status and a
//! page here; internal errors are logged once, at this boundary, and their
//! text never reaches the person who asked.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::db::DbError;
use crate::web::views::errors;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("not found")]
    NotFound,
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<DbError> for AppError {
    fn from(error: DbError) -> Self {
        match error {
            DbError::Pool(e) => AppError::Unavailable(e.to_string()),
            other => AppError::Internal(other.to_string()),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        match self {
            AppError::NotFound => (StatusCode::NOT_FOUND, errors::not_found()).into_response(),
            AppError::Unavailable(detail) => {
                tracing::error!(error = %detail, "database unavailable");
                (StatusCode::SERVICE_UNAVAILABLE, errors::unavailable()).into_response()
            }
            AppError::Internal(detail) => {
                tracing::error!(error = %detail, "request failed");
                (StatusCode::INTERNAL_SERVER_ERROR, errors::internal()).into_response()
            }
        }
    }
}
