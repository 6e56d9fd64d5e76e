//! The session cookie, and extractors that say who is asking.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

use crate::app::AppState;
use crate::auth::Token;
use crate::auth::session::{self, SESSION_LIFETIME, SignedIn};
use crate::auth::sign_in::ReturnPath;
use crate::db::{Db, DbConnection, DbError};
use crate::error::AppError;

pub const SESSION_COOKIE: &str = "shoulder_session";

/// The session token from the request's cookies, if it has a well-formed one.
pub fn session_token(headers: &HeaderMap) -> Option<Token> {
    cookie_token(headers, SESSION_COOKIE)
}

/// The token in the cookie called `cookie`, if there is one well formed.
pub fn cookie_token(headers: &HeaderMap, cookie: &str) -> Option<Token> {
    cookie_value(headers, cookie).and_then(Token::parse)
}

/// The value of the cookie called `cookie`, as sent.
pub fn cookie_value<'a>(headers: &'a HeaderMap, cookie: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == cookie)
        .map(|(_, value)| value)
}

/// `Set-Cookie` for a new session: HttpOnly, SameSite=Lax, Secure on https.
pub fn session_cookie(token: &Token, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let value = format!(
        "{SESSION_COOKIE}={}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
        token.as_str(),
        SESSION_LIFETIME.num_seconds()
    );
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// A redirect (303) to `to` that sets `cookie` on the way.
pub fn redirect_setting(to: &str, cookie: HeaderValue) -> Response {
    let location = HeaderValue::from_str(to).unwrap_or(HeaderValue::from_static("/"));
    (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, location), (header::SET_COOKIE, cookie)],
    )
        .into_response()
}

/// `Set-Cookie` that removes the session cookie.
pub fn cleared_cookie(secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Whoever is signed in, or nobody.
#[derive(Debug, Clone)]
pub struct Viewer(pub Option<SignedIn>);

impl FromRequestParts<AppState> for Viewer {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let Some(token) = session_token(&parts.headers) else {
            return Ok(Viewer(None));
        };
        let now = state.clock.now().naive_utc();
        let found = state
            .db
            .read({
                let token = token.clone();
                move |conn| session::look_up(conn, &token, now)
            })
            .await?;
        let Some(found) = found else {
            return Ok(Viewer(None));
        };
        if found.due_refresh {
            state
                .db
                .run(move |conn| session::refresh(conn, &token, now))
                .await?;
        }
        Ok(Viewer(Some(found.person)))
    }
}

/// The session cookie, not yet looked up. [`Viewer`] spends a trip to a
/// blocking thread on the lookup alone; a handler that reads the database
/// anyway takes this instead and looks the session up in its own `Db::run`,
/// so the whole request costs one hand-off.
#[derive(Debug, Clone)]
pub struct SessionToken {
    token: Option<Token>,
    /// Where signing in brings the person back to.
    here: String,
}

impl SessionToken {
    /// Whoever the cookie signs in, or nobody; run inside a `Db::run`.
    pub fn find(
        &self,
        conn: &mut DbConnection,
        now: chrono::NaiveDateTime,
    ) -> Result<Option<SignedIn>, DbError> {
        match &self.token {
            Some(token) => session::find(conn, token, now),
            None => Ok(None),
        }
    }

    /// As [`SessionToken::find`], but only reading, for a [`Db::read`]: a
    /// session due a refresh comes back as such, for
    /// [`SessionToken::refresh`] once the reads are done.
    pub fn look_up(
        &self,
        conn: &mut DbConnection,
        now: chrono::NaiveDateTime,
    ) -> Result<Option<session::Found>, DbError> {
        match &self.token {
            Some(token) => session::look_up(conn, token, now),
            None => Ok(None),
        }
    }

    /// Moves the session's expiry on; once a day, so a trip of its own.
    pub async fn refresh(&self, db: &Db, now: chrono::NaiveDateTime) -> Result<(), DbError> {
        let Some(token) = self.token.clone() else {
            return Ok(());
        };
        db.run(move |conn| session::refresh(conn, &token, now))
            .await
    }

    /// True when there is no cookie to look up, so nobody is signed in.
    pub fn is_absent(&self) -> bool {
        self.token.is_none()
    }

    /// The answer to someone who must sign in first, as [`SignedInPerson`]
    /// gives it.
    pub fn sign_in_first(&self) -> SignInFirst {
        SignInFirst::Redirect(sign_in_to(&self.here))
    }
}

impl FromRequestParts<AppState> for SessionToken {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(SessionToken {
            token: session_token(&parts.headers),
            here: here(parts).to_string(),
        })
    }
}

fn here(parts: &Parts) -> &str {
    parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/")
}

/// The sign-in page, set to bring the person back to `next` (without a
/// round link's key: [`ReturnPath::parse`]).
pub fn sign_in_to(next: &str) -> String {
    match ReturnPath::parse(next) {
        Some(next) => format!(
            "/sign-in?next={}",
            url::form_urlencoded::byte_serialize(next.as_str().as_bytes()).collect::<String>()
        ),
        None => "/sign-in".to_string(),
    }
}

/// A signed-in person; anyone else is sent to sign in and brought back.
#[derive(Debug, Clone)]
pub struct SignedInPerson(pub SignedIn);

pub enum SignInFirst {
    Redirect(String),
    Error(AppError),
}

impl From<AppError> for SignInFirst {
    fn from(error: AppError) -> Self {
        SignInFirst::Error(error)
    }
}

impl IntoResponse for SignInFirst {
    fn into_response(self) -> Response {
        match self {
            SignInFirst::Redirect(to) => Redirect::to(&to).into_response(),
            SignInFirst::Error(error) => error.into_response(),
        }
    }
}

impl FromRequestParts<AppState> for SignedInPerson {
    type Rejection = SignInFirst;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, SignInFirst> {
        match Viewer::from_request_parts(parts, state).await {
            Ok(Viewer(Some(person))) => Ok(SignedInPerson(person)),
            Ok(Viewer(None)) => Err(SignInFirst::Redirect(sign_in_to(here(parts)))),
            Err(error) => Err(SignInFirst::Error(error)),
        }
    }
}
