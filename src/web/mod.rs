//! HTTP: the router, the middleware every request passes through, and the
//! handlers, which stay thin: extract, call one domain function, render.
//! Nothing under `web/` touches diesel.

mod account;
mod actions;
pub mod assets;
mod circles;
mod dev_mail;
pub mod form;
mod health;
mod history;
mod inbound;
mod invites;
pub mod limits;
pub mod metrics;
mod prompts;
mod rounds;
pub mod server;
pub mod session;
mod shown_once;
mod sign_in;
mod unsubscribe;
pub mod views;

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::app::AppState;
use crate::error::AppError;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Pages may load only our own stylesheet, script and images, post forms
/// only to us, and may not be framed.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// `/dev/mail`, only where [`crate::config::Config::serves_dev_mailbox`]
/// allows; elsewhere those paths are not found like any other.
fn dev_mailbox(config: &crate::config::Config) -> Router<AppState> {
    let routes = Router::new();
    if !config.serves_dev_mailbox() {
        return routes;
    }
    routes
        .route("/dev/mail", get(dev_mail::list))
        .route("/dev/mail/{id}", get(dev_mail::message))
        .route("/dev/mail/{id}/reply", post(dev_mail::reply))
}

pub fn router(state: AppState) -> Router {
    let state_for_inbound = state.clone();
    let config = &state.config;
    let timeout = Duration::from_secs(config.server.request_timeout_secs);
    let max_body = config.server.max_body_bytes;
    let https = config.public_url_is_https();
    let public_origin = config.public_origin();

    let routes = Router::new()
        .route("/", get(home))
        .route("/sign-in", get(sign_in::form).post(sign_in::request))
        .route("/sign-in/sent", get(sign_in::sent))
        .route(
            "/sign-in/{token}",
            get(sign_in::confirm_page).post(sign_in::redeem),
        )
        .route("/sign-out", post(sign_in::sign_out))
        .route("/me", get(account::page))
        .route("/me/name", post(account::set_name))
        .route("/me/email", post(account::change_address))
        .route("/me/email/changed", get(account::address_changed))
        .route(
            "/me/email/{token}",
            get(account::confirm_address_page).post(account::confirm_address),
        )
        .route("/me/time-zone", post(account::set_time_zone))
        .route(
            "/me/calendar",
            get(account::replace_calendar_key_page).post(account::replace_calendar_key),
        )
        .route("/calendar/{file}", get(account::calendar_feed))
        .route(
            "/circles/{id}/calendar.ics",
            get(circles::calendar_download),
        )
        .route("/me/export.json", get(account::export_json))
        .route("/me/export.csv", get(account::export_csv))
        .route(
            "/me/delete",
            get(account::delete_page).post(account::delete),
        )
        .route("/me/deleted", get(account::deleted))
        .route(
            "/circles/{id}/export.json",
            get(account::circle_export_json),
        )
        .route("/circles/{id}/export.csv", get(account::circle_export_csv))
        .route("/circles", post(circles::create))
        .route("/circles/new", get(circles::new_form))
        .route("/circles/{id}", get(circles::show))
        .route(
            "/circles/{id}/edit",
            get(circles::edit_form).post(circles::update),
        )
        .route(
            "/circles/{id}/status",
            get(circles::status_page).post(circles::change_status),
        )
        .route(
            "/circles/{id}/leave",
            get(circles::leave_page).post(circles::leave),
        )
        .route("/circles/{id}/prompts", get(prompts::page))
        .route("/circles/{id}/prompts/deck", post(prompts::choose_deck))
        .route("/circles/{id}/prompts/pin", post(prompts::pin))
        .route("/circles/{id}/prompts/unpin", post(prompts::unpin))
        .route("/circles/{id}/prompts/own", post(prompts::add_own))
        .route(
            "/circles/{id}/rounds/{number}",
            get(rounds::show).post(rounds::check_in),
        )
        .route(
            "/circles/{id}/rounds/{number}/support",
            post(rounds::support),
        )
        .route("/circles/{id}/rounds/{number}/help", post(rounds::help))
        .route("/circles/{id}/rounds/{number}/note", post(rounds::note))
        .route("/circles/{id}/rounds/{number}/answer", post(rounds::answer))
        .route("/circles/{id}/rounds/{number}/skip", post(rounds::skip))
        .route("/circles/{id}/rounds/{number}/away", post(rounds::away))
        .route(
            "/act/{token}",
            get(actions::confirm_single).post(actions::perform_single),
        )
        .route(
            "/act/{key}/{choice}",
            get(actions::confirm_keyed).post(actions::perform_keyed),
        )
        .route("/circles/{id}/history", get(history::circle_history))
        .route(
            "/circles/{id}/members/{membership}/history",
            get(history::member_history),
        )
        .route("/circles/{id}/health", get(history::health))
        .route("/circles/{id}/mail", post(circles::change_mail))
        .route(
            "/circles/{id}/join-notices",
            post(circles::change_join_notices),
        )
        .route(
            "/circles/{id}/check-in-hour",
            post(circles::set_check_in_hour),
        )
        .route(
            "/circles/{id}/members/{membership}/facilitator",
            get(circles::make_facilitator_page).post(circles::make_facilitator),
        )
        .route(
            "/circles/{id}/members/{membership}/remove",
            get(circles::remove_member_page).post(circles::remove_member),
        )
        .route(
            "/circles/{id}/invites",
            get(invites::invite_page).post(invites::send),
        )
        .route(
            "/circles/{id}/invites/link",
            get(invites::reset_link_page).post(invites::reset_link),
        )
        .route(
            "/circles/{id}/invites/{invite_id}/revoke",
            post(invites::revoke),
        )
        .route(
            "/join/{token}",
            get(invites::join_page).post(invites::request_join),
        )
        .route("/join/{token}/sent", get(invites::join_requested))
        .route(
            "/join/confirm/{token}",
            get(invites::confirm_page).post(invites::confirm),
        )
        .route(
            "/unsubscribe/{token}",
            get(unsubscribe::confirm_page).post(unsubscribe::unsubscribe),
        )
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/static/{name}", get(assets::serve_static))
        .merge(dev_mailbox(config));
    // With a listener of its own, `/metrics` is not on the public port at all.
    let routes = if config.metrics_addr().is_none() {
        routes.route("/metrics", get(metrics::metrics))
    } else {
        routes
    };
    let routes = routes
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .with_state(state);

    let security = ServiceBuilder::new()
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        // Emailed links carry tokens in their path; no Referer may leak them.
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        // Every page is made for one person, often from a token in its
        // link: no cache, shared or the browser's own, may keep a copy.
        // Static files say otherwise for themselves.
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::STRICT_TRANSPORT_SECURITY,
            https.then(|| HeaderValue::from_static("max-age=31536000")),
        ));

    let routes = routes.layer(
        ServiceBuilder::new()
            .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
            .layer(TraceLayer::new_for_http().make_span_with(request_span))
            .layer(PropagateRequestIdLayer::new(REQUEST_ID))
            .layer(security)
            .layer(CatchPanicLayer::custom(panic_page))
            .layer(middleware::from_fn_with_state(
                public_origin,
                same_origin_only,
            ))
            .layer(CompressionLayer::new())
            .layer(middleware::from_fn(plain_error_pages))
            .layer(TimeoutLayer::with_status_code(
                StatusCode::REQUEST_TIMEOUT,
                timeout,
            ))
            .layer(RequestBodyLimitLayer::new(max_body)),
    );
    routes.merge(inbound_route(&state_for_inbound))
}

/// `POST /inbound/email`, only when `inbound.secret` is set. Mail is
/// larger than any form, so the route has a body limit of its own,
/// `inbound.max_bytes`, outside the pages' one; a message over it is
/// answered 413 before it is read.
fn inbound_route(state: &AppState) -> Router {
    let config = &state.config;
    if config.inbound.secret.is_empty() {
        return Router::new();
    }
    let timeout = Duration::from_secs(config.server.request_timeout_secs);
    Router::new()
        .route("/inbound/email", post(inbound::email))
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
                .layer(TraceLayer::new_for_http().make_span_with(request_span))
                .layer(CatchPanicLayer::custom(panic_page))
                .layer(TimeoutLayer::with_status_code(
                    StatusCode::REQUEST_TIMEOUT,
                    timeout,
                ))
                .layer(axum::extract::DefaultBodyLimit::disable())
                .layer(RequestBodyLimitLayer::new(config.inbound.max_bytes)),
        )
        .with_state(state.clone())
}

/// The span names the route pattern, never the raw path: paths carry tokens.
fn request_span(request: &Request<Body>) -> tracing::Span {
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let request_id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    // The method as the metrics name it: an extension method of any length
    // never reaches the logs.
    let method = metrics::ClosedLabel::as_str(metrics::HttpMethod::of(request.method()));
    tracing::info_span!("request", method = method, route = %route, request_id = %request_id)
}

async fn home(
    axum::extract::State(state): axum::extract::State<AppState>,
    session::Viewer(viewer): session::Viewer,
) -> Result<Response, AppError> {
    match viewer {
        Some(person) => circles::home(&state, &person).await,
        None => Ok(views::home::welcome().into_response()),
    }
}

async fn not_found() -> AppError {
    AppError::NotFound
}

/// Gives the middleware's bare answers (408, 413, 405) a real page.
async fn plain_error_pages(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let is_page = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if is_page {
        return response;
    }
    let status = response.status();
    let page = match status {
        StatusCode::REQUEST_TIMEOUT => views::errors::timed_out(),
        StatusCode::PAYLOAD_TOO_LARGE => views::errors::too_large(),
        StatusCode::METHOD_NOT_ALLOWED | StatusCode::NOT_FOUND => views::errors::not_found(),
        StatusCode::BAD_REQUEST => views::errors::bad_request(),
        _ => return response,
    };
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::CONTENT_TYPE);
    let mut page = (status, page).into_response();
    for (name, value) in parts.headers.iter() {
        page.headers_mut().insert(name, value.clone());
    }
    page
}

/// Refuses unsafe requests that a browser says came from another site.
///
/// Browsers send `Sec-Fetch-Site` (and `Origin` on POST); a request with
/// neither comes from a program, not a browser carrying someone's cookies.
/// One-click unsubscribe is posted by mail clients from anywhere (RFC 8058)
/// and needs no cookie, so it is exempt.
async fn same_origin_only(
    axum::extract::State(public_origin): axum::extract::State<String>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method();
    let safe = method == axum::http::Method::GET
        || method == axum::http::Method::HEAD
        || method == axum::http::Method::OPTIONS;
    if safe || request.uri().path().starts_with("/unsubscribe/") {
        return next.run(request).await;
    }
    let headers = request.headers();
    let fetch_site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let same_origin = match (fetch_site, origin) {
        (Some(site), _) => site == "same-origin" || site == "none",
        (None, Some(origin)) => {
            origin == public_origin || Some(origin) == host_origin(headers).as_deref()
        }
        (None, None) => true,
    };
    if same_origin {
        next.run(request).await
    } else {
        tracing::warn!(fetch_site, origin, "cross-site request refused");
        (StatusCode::FORBIDDEN, views::errors::cross_site()).into_response()
    }
}

/// The origin the request itself names, for servers reached by several names.
fn host_origin(headers: &axum::http::HeaderMap) -> Option<String> {
    let host = headers.get(header::HOST)?.to_str().ok()?;
    Some(format!("http://{host}"))
}

fn panic_page(_panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    (StatusCode::INTERNAL_SERVER_ERROR, views::errors::internal()).into_response()
}
