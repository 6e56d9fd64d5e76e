//! How a form sent back with problems says so. At the top, a summary that
//! takes focus when the page loads (so a screen reader starts there and a
//! keyboard user is one link from each field) and lists every problem as a
//! link to its field; beside each field, its message, which the field names
//! with `aria-describedby` while it is marked `aria-invalid`.

use maud::{Markup, html};

/// One problem: where its link goes and what to do about it.
#[derive(Debug, Clone, Copy)]
pub struct Problem<'a> {
    /// The `id` of the field it belongs to; for a problem that is no one
    /// field's, the form's; `None` when the page shows neither, and the
    /// summary lists it without a link.
    pub field: Option<&'a str>,
    pub message: &'a str,
}

/// The id of a field's message, which its `aria-describedby` names.
pub fn message_id(field: &str) -> String {
    format!("{field}-error")
}

/// The summary at the top of a form: nothing when there are no problems.
/// `autofocus` on an element made focusable by `tabindex="-1"` moves focus
/// to it without any script.
pub fn summary(problems: &[Problem<'_>]) -> Markup {
    html! {
        @if !problems.is_empty() {
            div.error-summary #problems tabindex="-1" autofocus aria-labelledby="problems-title" {
                h2 #problems-title {
                    @if problems.len() == 1 {
                        "One answer needs another look"
                    } @else {
                        (problems.len()) " answers need another look"
                    }
                }
                p { "Nothing was saved. Each link below goes to its answer." }
                ul {
                    @for problem in problems {
                        li {
                            @if let Some(field) = problem.field {
                                a href={ "#" (field) } { (problem.message) }
                            } @else {
                                (problem.message)
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A field's message, shown beside it; nothing when it has none.
pub fn message(field: &str, message: Option<&str>) -> Markup {
    html! {
        @if let Some(message) = message {
            p.error id=(message_id(field)) { (message) }
        }
    }
}

/// `aria-invalid`'s value for a field: present only when it has a problem.
pub fn invalid<T>(problem: Option<T>) -> Option<&'static str> {
    problem.map(|_| "true")
}

/// `aria-describedby`'s value for a field with a problem, naming its message.
pub fn described_by<T>(field: &str, problem: Option<T>) -> Option<String> {
    problem.map(|_| message_id(field))
}

/// `aria-describedby`'s value for a field with a hint of its own: the
/// message first while there is a problem, then the hint, which stays.
pub fn described_by_with_hint<T>(field: &str, problem: Option<T>, hint: &str) -> String {
    match problem {
        Some(_) => format!("{} {hint}", message_id(field)),
        None => hint.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_takes_focus_and_links_to_each_field() {
        let html = summary(&[
            Problem {
                field: Some("name"),
                message: "Give the circle a name.",
            },
            Problem {
                field: Some("size_cap"),
                message: "Room for 3 to 12 people.",
            },
        ])
        .into_string();
        assert!(html.contains(r#"tabindex="-1" autofocus"#), "{html}");
        assert!(html.contains("2 answers need another look"), "{html}");
        assert!(html.contains(r##"<a href="#name">Give the circle a name.</a>"##));
        assert!(html.contains(r##"<a href="#size_cap">Room for 3 to 12 people.</a>"##));
    }

    #[test]
    fn a_problem_with_no_field_on_the_page_is_listed_without_a_link() {
        let html = summary(&[Problem {
            field: None,
            message: "You have started 3 circles today.",
        }])
        .into_string();
        assert!(html.contains("One answer needs another look"), "{html}");
        assert!(
            html.contains("<li>You have started 3 circles today.</li>"),
            "{html}"
        );
        assert!(!html.contains("<a "), "{html}");
    }

    #[test]
    fn no_problems_no_summary() {
        assert_eq!(summary(&[]).into_string(), "");
        assert_eq!(message("name", None).into_string(), "");
        assert_eq!(invalid(None::<&str>), None);
        assert_eq!(described_by("name", None::<&str>), None);
    }

    #[test]
    fn a_field_is_described_by_its_own_message() {
        let html = message("time", Some("Give a time such as 18:30.")).into_string();
        assert_eq!(
            html,
            r#"<p class="error" id="time-error">Give a time such as 18:30.</p>"#
        );
        assert_eq!(invalid(Some("x")), Some("true"));
        assert_eq!(
            described_by("time", Some("x")).as_deref(),
            Some("time-error")
        );
    }

    #[test]
    fn a_hint_stays_beside_the_message() {
        assert_eq!(
            described_by_with_hint("time", Some("x"), "time-hint"),
            "time-error time-hint"
        );
        assert_eq!(
            described_by_with_hint("time", None::<&str>, "time-hint"),
            "time-hint"
        );
    }
}
