//! Error pages: what happened in plain words, and a way back. Never internals.

use maud::{Markup, html};

use super::layout::page;

pub fn not_found() -> Markup {
    page(
        "Not found",
        html! {
            h1 { "Nothing here" }
            p { "This page does not exist, or it belongs to a circle you are not part of." }
            p { a href="/" { "Back to the start" } }
        },
    )
}

pub fn internal() -> Markup {
    page(
        "Something went wrong",
        html! {
            h1 { "Something went wrong on our side" }
            p { "Nothing you did caused this. What you sent may not have been saved; please try again in a moment." }
            p { a href="/" { "Back to the start" } }
        },
    )
}

pub fn unavailable() -> Markup {
    page(
        "Temporarily unavailable",
        html! {
            h1 { "Shoulder is briefly unavailable" }
            p { "The server cannot reach its database right now. Please try again in a minute." }
        },
    )
}

pub fn timed_out() -> Markup {
    page(
        "Too slow",
        html! {
            h1 { "That took too long" }
            p { "The server did not finish in time. Please try again." }
        },
    )
}

pub fn too_large() -> Markup {
    page(
        "Too much at once",
        html! {
            h1 { "That was more than we accept at once" }
            p { "The form sent more text than a page takes. Please shorten it and send again." }
        },
    )
}

/// A limit per client was reached; `when` says when to try again ("in 5
/// minutes").
pub fn too_many(when: &str) -> Markup {
    page(
        "Please wait a moment",
        html! {
            h1 { "Too many requests from your network" }
            p { "To keep Shoulder from being used to send unwanted email, each network may ask for only so much at a time. Please try again " (when) "." }
            p { a href="/" { "Back to the start" } }
        },
    )
}

pub fn cross_site() -> Markup {
    page(
        "Refused",
        html! {
            h1 { "That form came from another site" }
            p { "For your safety, Shoulder only accepts forms sent from its own pages. Please go back, reload the page and try again." }
        },
    )
}

pub fn bad_request() -> Markup {
    page(
        "Not understood",
        html! {
            h1 { "That address or form was not understood" }
            p { "Part of it was not in the shape we expect, perhaps from a link copied incompletely." }
            p { a href="/" { "Back to the start" } }
        },
    )
}
