//! Sign-in pages: ask for an address, say an email is on its way, and the
//! page behind the emailed link, whose button does the signing in.

use maud::{Markup, html};

use super::layout::page;
use super::problems::{Problem, described_by, invalid, message, summary};
use super::zones::first_choice;
use crate::auth::sign_in::LinkState;

/// Why the sign-in form came back.
#[derive(Debug, Clone, Copy)]
pub enum Refused<'a> {
    /// The address as typed is not one, and why.
    Address(&'a str),
    /// Too many links were asked for from the network: nothing typed is
    /// wrong, so no field is marked.
    TooMany(&'a str),
}

pub fn form(email: &str, next: &str, refused: Option<Refused<'_>>) -> Markup {
    let address = match refused {
        Some(Refused::Address(why)) => Some(why),
        _ => None,
    };
    let problems: Vec<Problem<'_>> = match refused {
        Some(Refused::Address(why)) => vec![Problem {
            field: Some("email"),
            message: why,
        }],
        Some(Refused::TooMany(why)) => vec![Problem {
            field: None,
            message: why,
        }],
        None => Vec::new(),
    };
    page(
        "Sign in",
        html! {
            h1 { "Sign in" }
            (summary(&problems))
            p { "No password: we email you a link that signs you in." }
            form method="post" action="/sign-in" {
                label for="email" { "Your email address" }
                input #email type="email" name="email" value=(email) autocomplete="email" required
                    aria-invalid=[invalid(address)] aria-describedby=[described_by("email", address)];
                (message("email", address))
                input type="hidden" name="next" value=(next);
                p { button type="submit" { "Email me a sign-in link" } }
            }
        },
    )
}

pub fn check_your_email(email: Option<&str>) -> Markup {
    page(
        "Check your email",
        html! {
            h1 { "Check your email" }
            p {
                @match email {
                    Some(email) => { "If " strong { (email) } " can receive mail, a sign-in link is on its way. " }
                    None => { "If the address you gave can receive mail, a sign-in link is on its way. " }
                }
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
    let problems: Vec<Problem<'_>> = welcome
        .map(|welcome| {
            [
                ("name", welcome.name_error),
                ("time_zone", welcome.time_zone_error),
            ]
        })
        .into_iter()
        .flatten()
        .filter_map(|(field, error)| {
            error.map(|message| Problem {
                field: Some(field),
                message,
            })
        })
        .collect();
    page(
        "Sign in",
        html! {
            h1 { "Sign in to Shoulder" }
            (summary(&problems))
            p { "You are signing in as " strong { (email) } "." }
            form method="post" action={ "/sign-in/" (token) } {
                @if let Some(welcome) = welcome {
                    p { "Welcome! What should people in your circles call you?" }
                    label for="name" { "Your name" }
                    input #name type="text" name="name" value=(welcome.name) maxlength="60" autocomplete="name" required
                        aria-invalid=[invalid(welcome.name_error)]
                        aria-describedby=[described_by("name", welcome.name_error)];
                    (message("name", welcome.name_error))
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
