//! The pages behind an emailed unsubscribe link: the question (whose button
//! does the muting), the answer, and the page for a link that does not work.
//! None of them needs the reader to be signed in, so none names the person.

use maud::{Markup, html};

use super::layout::page;

/// Sign in, then land on the circle's page, where mail can be turned back on.
fn way_back(circle_id: i64) -> Markup {
    html! {
        a href={ "/sign-in?next=/circles/" (circle_id) } { "sign in" }
    }
}

/// What a GET shows: the circle, and a button that POSTs to the same link.
pub fn confirm(token: &str, circle_id: i64, circle_name: &str, already_muted: bool) -> Markup {
    page(
        "Stop this circle's emails",
        html! {
            h1 { "Stop emails from " (circle_name) "?" }
            @if already_muted {
                p {
                    "You have already turned these emails off; nothing more will come from this circle. "
                    "To have them again, " (way_back(circle_id)) " and choose \"Turn email back on\" on the circle's page."
                }
            } @else {
                p {
                    "You will get no more check-ins, reminders or digests from this circle. "
                    "You stay a member, and you can still visit its pages."
                }
                form method="post" action={ "/unsubscribe/" (token) } {
                    // The same body a mail program sends for a one-click unsubscribe.
                    input type="hidden" name="List-Unsubscribe" value="One-Click";
                    p { button type="submit" { "Stop these emails" } }
                }
            }
        },
    )
}

/// What a POST answers, however often it comes.
pub fn done(circle_id: i64, circle_name: &str) -> Markup {
    page(
        "Emails stopped",
        html! {
            h1 { "No more emails from " (circle_name) }
            p { "You will get no more email from this circle. You are still a member of it." }
            p {
                "Changed your mind? " (way_back(circle_id))
                " and choose \"Turn email back on\" on the circle's page."
            }
        },
    )
}

/// A link that is malformed, unknown or past its year.
pub fn unusable() -> Markup {
    page(
        "This link does not work",
        html! {
            h1 { "This unsubscribe link does not work" }
            p {
                "It may have been copied incompletely, or it is more than a year old. "
                "Nothing has changed."
            }
            p {
                "You can stop a circle's emails yourself: "
                a href="/sign-in" { "sign in" }
                ", open the circle, and choose \"Mute this circle's emails\"."
            }
        },
    )
}
