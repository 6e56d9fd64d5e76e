//! The round page.

use maud::{Markup, html};

use super::layout::page_for;

pub struct RoundPage<'a> {
    pub viewer: &'a str,
    pub circle_id: i64,
    pub circle_name: &'a str,
    pub number: i32,
    pub question: &'a str,
    pub follow_up: Option<&'a str>,
    pub opened: String,
    pub closes: String,
    pub closed: bool,
}

pub fn round(page: &RoundPage<'_>) -> Markup {
    let title = format!("{}, round {}", page.circle_name, page.number);
    page_for(
        page.viewer,
        &title,
        html! {
            p.muted { a href={ "/circles/" (page.circle_id) } { "← " (page.circle_name) } }
            h1 { "Round " (page.number) }
            blockquote.prompt {
                p { (page.question) }
                @if let Some(follow_up) = page.follow_up {
                    p.muted { (follow_up) }
                }
            }
            p.muted {
                "Opened " (page.opened) ". "
                @if page.closed { "Closed " (page.closes) "." } @else { "Open until " (page.closes) "." }
            }
        },
    )
}
