//! Sign-in pages: ask for an address, say an email is on its way, and the
//! page behind the emailed link, whose button does the signing in.

use maud::{Markup, html};

use super::layout::page;
use super::zones::first_choice;
use crate::auth::sign_in::LinkState;

pub fn form(email: &str, next: &str, error: Option<&str>) -> Markup {
    page(
        "Sign in",
        html! {
            h1 { "Sign in" }
            p { "No password: we email you a link that signs you in." }
            form method="post" action="/sign-in" {
                label for="email" { "Your email address" }
                input #email type="email" name="email" value=(email) autocomplete="email" required;
                @if let Some(error) = error {
                    p.error #email-error { (error) }
                }
                input type="hidden" name="next" value=(next);
                p { button type="submit" { "Email me a sign-in link" } }
            }
        },
    )
}

pub fn check_your_email(email: &str) -> Markup {
    page(
        "Check your email",
        html! {
            h1 { "Check your email" }
            p {
                "If " strong { (email) } " can receive mail, a sign-in link is on its way. "
                "It works once, within 15 minutes."
            }
            p.muted { "Nothing arrived? Look in the spam folder, or " a href="/sign-in" { "ask for another link" } "." }
        },
    )
}

/// What a first sign-in asks for, as sent, with a problem for each field.
#[derive(Debug, Default)]
pub struct Welcome<'a> {
    pub name: &'a str,
    pub name_error: Option<&'a str>,
    /// The zone as sent; empty on the first showing, when UTC is chosen
    /// and the browser's own zone proposed.
    pub time_zone: &'a str,
    pub time_zone_error: Option<&'a str>,
}

/// The page behind the link. `welcome` is there when signing in creates
/// the account: it asks for a name and a time zone.
pub fn confirm(token: &str, email: &str, welcome: Option<&Welcome<'_>>) -> Markup {
    page(
        "Sign in",
        html! {
            h1 { "Sign in to Shoulder" }
            p { "You are signing in as " strong { (email) } "." }
            form method="post" action={ "/sign-in/" (token) } {
                @if let Some(welcome) = welcome {
                    p { "Welcome! What should people in your circles call you?" }
                    label for="name" { "Your name" }
                    input #name type="text" name="name" value=(welcome.name) maxlength="60" autocomplete="name" required
                        aria-invalid=[welcome.name_error.map(|_| "true")]
                        aria-describedby=[welcome.name_error.map(|_| "name-error")];
                    @if let Some(error) = welcome.name_error {
                        p.error #name-error { (error) }
                    }
                    (first_choice(welcome.time_zone, welcome.time_zone_error))
                }
                p { button type="submit" { "Sign in" } }
            }
        },
    )
}

pub fn unusable(state: &LinkState) -> Markup {
    let (title, why) = match state {
        LinkState::Expired => (
            "This link has expired",
            "Sign-in links work for 15 minutes. Ask for a new one and use it soon after it arrives.",
        ),
        LinkState::Used => (
            "This link has been used",
            "Each sign-in link works once. If that was not you, ask for a new link; the old one cannot be used again.",
        ),
        LinkState::Unknown | LinkState::Valid { .. } => (
            "This link does not work",
            "It may have been copied incompletely. Ask for a new sign-in link.",
        ),
    };
    page(
        title,
        html! {
            h1 { (title) }
            p { (why) }
            p { a.button href="/sign-in" { "Get a new link" } }
        },
    )
}
