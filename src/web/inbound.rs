//! `POST /inbound/email`: a raw message (`message/rfc822`) passed on by a
//! mail relay or provider, into the same pipeline as `shoulder inbound`
//! ([`crate::inbound::receive`]). Registered only when `inbound.secret` is
//! set, and answered only with it as the bearer token.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::metrics::authorized;
use crate::app::AppState;
use crate::inbound::receive::{self, Received};

/// How long a relay is asked to wait before offering the message again.
const RETRY_AFTER_SECS: &str = "60";

pub async fn email(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let secret = &state.config.inbound.secret;
    if secret.is_empty() || !authorized(secret, &headers) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))],
            "a bearer token is needed\n",
        )
            .into_response();
    }
    let settings = receive::Settings::from_config(&state.config);
    let now = state.clock.now().naive_utc();
    let received = state
        .db
        .run(move |conn| receive::receive(conn, &settings, &body, now))
        .await;
    if let Ok(received) = received {
        state.metrics.record_inbound(received);
    }
    let (status, said) = match received {
        Ok(Received::TooBig) => (StatusCode::PAYLOAD_TOO_LARGE, "the message is too big"),
        Ok(Received::Unreadable) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "this is not an email message",
        ),
        Ok(Received::Unknown) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "no reply address or email of ours matches this message",
        ),
        Ok(received) => (StatusCode::ACCEPTED, received.as_str()),
        Err(error) => {
            tracing::warn!(error = %error, "an inbound message could not be taken now");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                [(
                    header::RETRY_AFTER,
                    HeaderValue::from_static(RETRY_AFTER_SECS),
                )],
                "try again later\n",
            )
                .into_response();
        }
    };
    (status, format!("{said}\n")).into_response()
}
