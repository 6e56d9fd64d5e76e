//! The time zone picker every form shares: UTC, then the canonical zones
//! grouped by region. A name it does not list (a legacy one stored
//! earlier, or one refused just now) is shown first, so nothing chosen or
//! sent is silently replaced.

use maud::{Markup, html};

use crate::clock::zones;

/// How the picker starts.
pub struct ZonePicker<'a> {
    /// The field's `id` and `name`.
    pub field: &'a str,
    pub selected: &'a str,
    /// Whether the browser's zone, where a script can tell it, should
    /// replace `selected`: true when the person has not chosen yet.
    pub propose_browser_zone: bool,
    /// The id of the error that describes the field, when there is one.
    pub error_id: Option<&'a str>,
}

pub fn picker(picker: &ZonePicker<'_>) -> Markup {
    let selected = picker.selected;
    html! {
        select id=(picker.field) name=(picker.field)
            data-browser-zone=[picker.propose_browser_zone.then_some("propose")]
            aria-invalid=[picker.error_id.map(|_| "true")]
            aria-describedby=[picker.error_id] {
            @if !zones::is_listed(selected) && !selected.is_empty() {
                option value=(selected) selected { (selected) }
            }
            option value="UTC" selected[selected == "UTC"] { "UTC" }
            @for (region, names) in zones::by_region() {
                optgroup label=(region) {
                    @for name in names {
                        option value=(name) selected[selected == name] { (zones::place_in_region(name)) }
                    }
                }
            }
        }
    }
}

/// "Your time zone" where someone is asked for it the first time (signing
/// in for the first time, joining): UTC until a script proposes the
/// browser's zone, or `sent` again with its `error`.
pub fn first_choice(sent: &str, error: Option<&str>) -> Markup {
    html! {
        label for="time_zone" { "Your time zone" }
        p.muted { "Times in your circles are shown to you in it. You can change it later under Your data." }
        (picker(&ZonePicker {
            field: "time_zone",
            selected: if sent.is_empty() { "UTC" } else { sent },
            propose_browser_zone: sent.is_empty(),
            error_id: error.map(|_| "time_zone-error"),
        }))
        @if let Some(error) = error {
            p.error #time_zone-error { (error) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(selected: &str) -> String {
        picker(&ZonePicker {
            field: "time_zone",
            selected,
            propose_browser_zone: false,
            error_id: None,
        })
        .into_string()
    }

    #[test]
    fn canonical_zones_are_grouped_and_a_legacy_choice_is_kept() {
        let html = render("Europe/London");
        assert!(html.contains(r#"<optgroup label="Europe">"#), "{html}");
        assert!(
            html.contains(r#"<option value="Europe/London" selected>London</option>"#),
            "{html}"
        );
        assert!(!html.contains(r#"value="Asia/Calcutta""#), "{html}");
        assert_eq!(html.matches(" selected").count(), 1, "{html}");

        let html = render("Asia/Calcutta");
        assert!(
            html.contains(r#"<option value="Asia/Calcutta" selected>Asia/Calcutta</option>"#),
            "{html}"
        );
        assert!(html.contains(r#"<option value="Asia/Kolkata">Kolkata</option>"#));
        assert_eq!(html.matches(" selected").count(), 1, "{html}");
    }
}
