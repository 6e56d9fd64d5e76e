//! Probes for load balancers and orchestrators.
//!
//! `/healthz` says the process answers; `/readyz` says it can do its work:
//! the database answers and its schema is current.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;

use crate::app::AppState;

/// A readiness probe must answer quickly even when the database hangs.
const READY_CHECK_TIMEOUT: Duration = Duration::from_secs(3);

pub async fn healthz() -> &'static str {
    "ok\n"
}

pub async fn readyz(State(state): State<AppState>) -> (StatusCode, String) {
    let check = tokio::time::timeout(READY_CHECK_TIMEOUT, state.db.pending_migrations()).await;
    match check {
        Ok(Ok(0)) => (StatusCode::OK, "ready\n".into()),
        Ok(Ok(pending)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {pending} database migrations pending (run `shoulder migrate`)\n"),
        ),
        Ok(Err(error)) => {
            tracing::warn!(error = %error, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "not ready: the database does not answer\n".into(),
            )
        }
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: the database did not answer in time\n".into(),
        ),
    }
}
