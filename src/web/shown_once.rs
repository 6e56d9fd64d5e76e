//! What a POST made or was told, for the page it redirects to, which is
//! all a reload then asks for. Secrets we never store in the clear (a
//! circle's invite link, a calendar address) and an address a link was just
//! sent to travel in a cookie: HttpOnly, scoped to that one page's path and
//! gone after ten minutes. The page shows a secret while the cookie lasts
//! and the secret is still the current one, so reloading shows it again and
//! repeats nothing, and a secret replaced since is never shown.

use axum::http::{HeaderMap, HeaderValue};

use super::session::{cookie_token, cookie_value};
use crate::auth::Token;

const COOKIE: &str = "shoulder_shown_once";
const TEXT_COOKIE: &str = "shoulder_told";

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

/// `Set-Cookie` carrying a short text (an address, say) to the page at
/// `path`, percent-encoded.
pub fn carry_text(text: &str, path: &str, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let value: String = url::form_urlencoded::byte_serialize(text.as_bytes()).collect();
    HeaderValue::from_str(&format!(
        "{TEXT_COOKIE}={value}; Path={path}; HttpOnly; SameSite=Strict; Max-Age={LIFETIME_SECONDS}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The text carried to this page, if the browser still has it.
pub fn carried_text(headers: &HeaderMap) -> Option<String> {
    let value = cookie_value(headers, TEXT_COOKIE)?;
    url::form_urlencoded::parse(format!("t={value}").as_bytes())
        .next()
        .map(|(_, text)| text.into_owned())
        .filter(|text| !text.is_empty())
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

    #[test]
    fn text_travels_encoded_and_comes_back_whole() {
        let cookie = carry_text("zoë+1@exämple.org; x", "/sign-in/sent", false);
        let text = cookie.to_str().expect("ascii");
        assert!(!text.contains("; x"), "{text}");
        let pair = text.split(';').next().expect("a pair");
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_str(pair).expect("header"));
        assert_eq!(
            carried_text(&headers).as_deref(),
            Some("zoë+1@exämple.org; x")
        );
    }
}
