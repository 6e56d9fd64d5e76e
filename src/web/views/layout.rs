//! The frame every page shares: head, header, main, footer.

use maud::{DOCTYPE, Markup, html};

use crate::web::assets;

/// A whole page. `title` is shown in the tab after the product's name.
pub fn page(title: &str, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Shoulder" }
                link rel="stylesheet" href=(assets::stylesheet_path());
            }
            body {
                header.site {
                    a.brand href="/" { "Shoulder" }
                }
                main { (content) }
                footer.site {
                    p { "Shoulder keeps small circles shouldering each other up." }
                }
            }
        }
    }
}
