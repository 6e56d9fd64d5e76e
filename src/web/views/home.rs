//! The front page for someone who has not signed in.

use maud::{Markup, html};

use super::layout::page;

pub fn welcome() -> Markup {
    page(
        "Shouldering each other up",
        html! {
            section.intro {
                h1 { "Shouldering each other up" }
                p {
                    "Shoulder keeps a small circle of people honest and kind with each other. "
                    "On a rhythm you choose, everyone gets the same question to reflect on, "
                    "says what they will do before the next round, reports on what they said "
                    "last time, and encourages someone else with theirs."
                }
                p {
                    "It is accountability you carry together: no scores, no leaderboards, "
                    "and \"not yet\" or \"I let this one go\" are honest answers, not failures."
                }
                p {
                    a.button href="/sign-in" { "Sign in" }
                    " "
                    a href="/circles/new" { "Start a circle" }
                }
            }
        },
    )
}
