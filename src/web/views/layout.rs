//! The frame every page shares: head, header, main, footer.

use maud::{DOCTYPE, Markup, html};

use crate::web::assets;

/// A whole page for someone not signed in (or whom the page need not name).
pub fn page(title: &str, content: Markup) -> Markup {
    frame(title, None, content)
}

/// A whole page for a signed-in person: their name and a sign-out button.
pub fn page_for(person: &str, title: &str, content: Markup) -> Markup {
    frame(title, Some(person), content)
}

/// `title` is shown in the tab after the product's name.
fn frame(title: &str, person: Option<&str>, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Shoulder" }
                link rel="stylesheet" href=(assets::stylesheet_path());
                script src=(assets::script_path()) defer {}
            }
            body {
                header.site {
                    a.brand href="/" { "Shoulder" }
                    @if let Some(person) = person {
                        form.account method="post" action="/sign-out" {
                            span.muted { (person) }
                            " "
                            a href="/me" { "Your data" }
                            " "
                            button.link type="submit" { "Sign out" }
                        }
                    }
                }
                main { (content) }
                footer.site {
                    p { "Shoulder keeps small circles shouldering each other up." }
                }
            }
        }
    }
}
