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
        if error.is_unavailable() {
            AppError::Unavailable(error.to_string())
        } else {
            AppError::Internal(error.to_string())
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

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_of(error: AppError) -> (StatusCode, String) {
        let response = error.into_response();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("a body");
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    #[tokio::test]
    async fn internal_errors_keep_their_details_to_the_log() {
        let (status, page) = body_of(AppError::Internal(
            "UNIQUE constraint failed: people.email".into(),
        ))
        .await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(page.contains("Something went wrong on our side"));
        assert!(!page.contains("UNIQUE"), "{page}");
        assert!(!page.contains("people.email"), "{page}");
    }

    #[tokio::test]
    async fn an_unreachable_database_is_a_503_page() {
        let (status, page) = body_of(AppError::Unavailable(
            "connection refused at 10.0.0.5".into(),
        ))
        .await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(!page.contains("10.0.0.5"), "{page}");
    }

    #[test]
    fn a_connection_the_database_ended_is_unavailable_not_a_bug() {
        use diesel::result::{DatabaseErrorKind, Error};
        let ended = |kind| {
            AppError::from(DbError::Query(Error::DatabaseError(
                kind,
                Box::new("server closed the connection unexpectedly".to_string()),
            )))
        };
        assert!(matches!(
            ended(DatabaseErrorKind::ClosedConnection),
            AppError::Unavailable(_)
        ));
        assert!(matches!(
            ended(DatabaseErrorKind::UnableToSendCommand),
            AppError::Unavailable(_)
        ));
        assert!(matches!(
            ended(DatabaseErrorKind::UniqueViolation),
            AppError::Internal(_)
        ));
        assert!(matches!(
            AppError::from(DbError::Query(Error::NotFound)),
            AppError::Internal(_)
        ));
    }
}
