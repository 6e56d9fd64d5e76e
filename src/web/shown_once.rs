//! Secrets a POST makes and we never store in the clear (a circle's invite
//! link, a calendar address) reach the page the POST redirects to in a
//! cookie: HttpOnly, scoped to that one page's path and gone after ten
//! minutes. The page shows the secret while the cookie lasts and the secret
//! is still the current one, so reloading shows it again and repeats
//! nothing, and a secret replaced since is never shown.

use axum::http::{HeaderMap, HeaderValue};

use super::session::cookie_token;
use crate::auth::Token;

const COOKIE: &str = "shoulder_shown_once";

/// How long the page that a secret was made for can still show it.
pub const LIFETIME_SECONDS: i64 = 600;

/// `Set-Cookie` carrying `token` to the page at `path`.
pub fn carry(token: &Token, path: &str, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE}={}; Path={path}; HttpOnly; SameSite=Strict; Max-Age={LIFETIME_SECONDS}{secure}",
        token.as_str()
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The secret carried to this page, if the browser still has one; the
/// caller checks it is still the current one before showing it.
pub fn carried(headers: &HeaderMap) -> Option<Token> {
    cookie_token(headers, COOKIE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::header;

    #[test]
    fn the_cookie_is_for_one_page_and_comes_back() {
        let token = Token::generate();
        let cookie = carry(&token, "/circles/7/invites", true);
        let text = cookie.to_str().expect("ascii");
        assert!(text.contains("; Path=/circles/7/invites;"), "{text}");
        assert!(text.contains("HttpOnly; SameSite=Strict; Max-Age=600; Secure"));

        let mut headers = HeaderMap::new();
        let pair = text.split(';').next().expect("a pair");
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("other=1; {pair}")).expect("header"),
        );
        assert_eq!(carried(&headers), Some(token));
    }
}
