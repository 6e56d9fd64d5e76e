//! A circle's settings as a facilitator types them, and as we accept them.
//!
//! The form keeps every field as typed ([`SettingsForm`]); parsing gives
//! either valid [`Settings`] or a message per field, so a page can show each
//! problem next to its field with the rest of the form intact.

use std::collections::BTreeMap;

use chrono::{NaiveDate, NaiveTime, Weekday};
use chrono_tz::Tz;

use super::cadence::{Cadence, parse_time_zone};
use crate::text::{self, sentence};

pub const MAX_NAME_LEN: usize = 80;
pub const MAX_PURPOSE_LEN: usize = 1000;
pub const MAX_AGREEMENTS_LEN: usize = 2000;
pub const MIN_SIZE_CAP: i32 = 3;
pub const MAX_SIZE_CAP: i32 = 12;
pub const DEFAULT_SIZE_CAP: i32 = 8;
/// A round stays open at least an hour and at most four weeks.
pub const MAX_ROUND_HOURS: i32 = 24 * 28;
pub const DEFAULT_ROUND_HOURS: i32 = 72;
pub const DEFAULT_DECK: &str = "shoulder";

pub const WEEKDAYS: [(Weekday, &str, &str); 7] = [
    (Weekday::Mon, "mon", "Monday"),
    (Weekday::Tue, "tue", "Tuesday"),
    (Weekday::Wed, "wed", "Wednesday"),
    (Weekday::Thu, "thu", "Thursday"),
    (Weekday::Fri, "fri", "Friday"),
    (Weekday::Sat, "sat", "Saturday"),
    (Weekday::Sun, "sun", "Sunday"),
];

/// Every field as typed, so a refused form comes back exactly as it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsForm {
    pub name: String,
    pub purpose: String,
    pub agreements: String,
    /// `weekly`, `monthly` or `cron`.
    pub cadence_kind: String,
    /// Checked weekdays, as `mon`..`sun`.
    pub days: Vec<String>,
    pub time: String,
    pub every_weeks: String,
    pub month_day: String,
    pub cron: String,
    pub time_zone: String,
    pub round_hours: String,
    pub size_cap: String,
}

impl SettingsForm {
    /// A fresh form: weekly on Monday at 09:00, the instance's default zone.
    pub fn new(default_time_zone: &str) -> SettingsForm {
        SettingsForm {
            name: String::new(),
            purpose: String::new(),
            agreements: String::new(),
            cadence_kind: "weekly".into(),
            days: vec!["mon".into()],
            time: "09:00".into(),
            every_weeks: "1".into(),
            month_day: "1".into(),
            cron: String::new(),
            time_zone: default_time_zone.into(),
            round_hours: DEFAULT_ROUND_HOURS.to_string(),
            size_cap: DEFAULT_SIZE_CAP.to_string(),
        }
    }

    /// Fills the cadence fields from one line of text, the command line's
    /// form: `weekly mon,thu 09:00`, `weekly mon 09:00 every 2`,
    /// `monthly 15 09:00`, or else a cron expression.
    pub fn set_cadence_text(&mut self, text: &str) {
        let words: Vec<&str> = text.split_whitespace().collect();
        match words.as_slice() {
            ["weekly", days, time, rest @ ..] => {
                self.cadence_kind = "weekly".into();
                self.days = days.split(',').map(|d| d.trim().to_lowercase()).collect();
                self.time = (*time).into();
                self.every_weeks = match rest {
                    ["every", n] => (*n).into(),
                    [] => "1".into(),
                    _ => "not a number".into(),
                };
            }
            ["monthly", day, time] => {
                self.cadence_kind = "monthly".into();
                self.month_day = (*day).into();
                self.time = (*time).into();
            }
            _ => {
                self.cadence_kind = "cron".into();
                self.cron = text.trim().into();
            }
        }
    }

    /// The form that shows existing settings for editing.
    pub fn from_settings(settings: &Settings) -> SettingsForm {
        let mut form = SettingsForm::new(settings.time_zone.name());
        form.name = settings.name.clone();
        form.purpose = settings.purpose.clone();
        form.agreements = settings.agreements.clone();
        form.round_hours = settings.round_hours.to_string();
        form.size_cap = settings.size_cap.to_string();
        match &settings.cadence {
            Cadence::Weekly(weekly) => {
                form.cadence_kind = "weekly".into();
                form.days = weekly
                    .days()
                    .iter()
                    .filter_map(|day| WEEKDAYS.iter().find(|(d, _, _)| d == day))
                    .map(|(_, key, _)| (*key).to_string())
                    .collect();
                form.time = weekly.time().format("%H:%M").to_string();
                form.every_weeks = weekly.every_weeks().to_string();
            }
            Cadence::Monthly(monthly) => {
                form.cadence_kind = "monthly".into();
                form.month_day = monthly.day().to_string();
                form.time = monthly.time().format("%H:%M").to_string();
            }
            Cadence::Cron(cron) => {
                form.cadence_kind = "cron".into();
                form.cron = cron.expression().to_string();
            }
        }
        form
    }
}

/// Valid settings, ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub name: String,
    pub purpose: String,
    pub agreements: String,
    pub cadence: Cadence,
    pub time_zone: Tz,
    pub round_hours: i32,
    pub size_cap: i32,
}

/// A message per field name, for the fields that were refused.
pub type FieldErrors = BTreeMap<&'static str, String>;

impl Settings {
    /// Parses a form. `anchor` is the date weekly "every N weeks" counts from
    /// (the day the circle starts, in its zone).
    pub fn parse(form: &SettingsForm, anchor: NaiveDate) -> Result<Settings, FieldErrors> {
        let mut errors = FieldErrors::new();
        let mut field = |name: &'static str, outcome: Result<String, String>| match outcome {
            Ok(value) => Some(value),
            Err(message) => {
                errors.insert(name, message);
                None
            }
        };
        let name = field(
            "name",
            text::single_line(&form.name, MAX_NAME_LEN).map_err(|e| sentence(&e.to_string())),
        );
        let purpose = field(
            "purpose",
            text::multi_line(&form.purpose, MAX_PURPOSE_LEN, true)
                .map_err(|e| sentence(&e.to_string())),
        );
        let agreements = field(
            "agreements",
            text::multi_line(&form.agreements, MAX_AGREEMENTS_LEN, true)
                .map_err(|e| sentence(&e.to_string())),
        );
        let time_zone = match parse_time_zone(&form.time_zone) {
            Ok(zone) => Some(zone),
            Err(error) => {
                errors.insert("time_zone", sentence(&error.to_string()));
                None
            }
        };
        let cadence = match parse_cadence(form, anchor) {
            Ok(cadence) => Some(cadence),
            Err((name, message)) => {
                errors.insert(name, message);
                None
            }
        };
        let round_hours = match form.round_hours.trim().parse::<i32>() {
            Ok(hours) if (1..=MAX_ROUND_HOURS).contains(&hours) => Some(hours),
            _ => {
                errors.insert(
                    "round_hours",
                    format!("A round stays open between 1 and {MAX_ROUND_HOURS} hours."),
                );
                None
            }
        };
        let size_cap = match form.size_cap.trim().parse::<i32>() {
            Ok(cap) if (MIN_SIZE_CAP..=MAX_SIZE_CAP).contains(&cap) => Some(cap),
            _ => {
                errors.insert(
                    "size_cap",
                    format!("A circle has room for {MIN_SIZE_CAP} to {MAX_SIZE_CAP} people."),
                );
                None
            }
        };
        match (
            name,
            purpose,
            agreements,
            cadence,
            time_zone,
            round_hours,
            size_cap,
        ) {
            (
                Some(name),
                Some(purpose),
                Some(agreements),
                Some(cadence),
                Some(time_zone),
                Some(round_hours),
                Some(size_cap),
            ) if errors.is_empty() => Ok(Settings {
                name,
                purpose,
                agreements,
                cadence,
                time_zone,
                round_hours,
                size_cap,
            }),
            _ => Err(errors),
        }
    }
}

fn parse_cadence(
    form: &SettingsForm,
    anchor: NaiveDate,
) -> Result<Cadence, (&'static str, String)> {
    let time = || {
        NaiveTime::parse_from_str(form.time.trim(), "%H:%M")
            .map_err(|_| ("time", "Give a time of day like 09:00.".to_string()))
    };
    match form.cadence_kind.as_str() {
        "weekly" => {
            let days: Vec<Weekday> = WEEKDAYS
                .iter()
                .filter(|(_, key, _)| form.days.iter().any(|d| d == key))
                .map(|(day, _, _)| *day)
                .collect();
            let every = form
                .every_weeks
                .trim()
                .parse::<u8>()
                .map_err(|_| ("every_weeks", "Choose every 1 to 4 weeks.".to_string()))?;
            Cadence::weekly(&days, time()?, every, anchor).map_err(|e| cadence_field(&e))
        }
        "monthly" => {
            let day = form.month_day.trim().parse::<u8>().map_err(|_| {
                (
                    "month_day",
                    "Choose a day of the month from 1 to 31.".to_string(),
                )
            })?;
            Cadence::monthly(day, time()?).map_err(|e| cadence_field(&e))
        }
        "cron" => Cadence::cron(&form.cron).map_err(|e| ("cron", sentence(&e.to_string()))),
        _ => Err((
            "cadence_kind",
            "Choose weekly, monthly or a cron expression.".to_string(),
        )),
    }
}

/// Which field a cadence problem belongs next to.
fn cadence_field(error: &super::cadence::CadenceError) -> (&'static str, String) {
    use super::cadence::CadenceError as E;
    let field = match error {
        E::NoDays => "days",
        E::BadTime => "time",
        E::EveryWeeksOutOfRange(_) => "every_weeks",
        E::DayOutOfRange(_) => "month_day",
        _ => "cadence_kind",
    };
    (field, sentence(&error.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn anchor() -> NaiveDate {
        NaiveDate::from_ymd_opt(2027, 3, 1).expect("a date")
    }

    fn filled() -> SettingsForm {
        let mut form = SettingsForm::new("America/Toronto");
        form.name = "Tuesday accomplices".into();
        form.purpose = "Turning what we learn into what we do.".into();
        form.agreements = "We listen first.\nWe give credit.".into();
        form.days = vec!["tue".into(), "fri".into()];
        form
    }

    #[test]
    fn a_filled_form_parses_and_round_trips_through_the_edit_form() {
        let settings = Settings::parse(&filled(), anchor()).expect("valid");
        assert_eq!(settings.name, "Tuesday accomplices");
        assert_eq!(settings.size_cap, 8);
        assert_eq!(settings.time_zone, chrono_tz::America::Toronto);
        let again =
            Settings::parse(&SettingsForm::from_settings(&settings), anchor()).expect("valid");
        assert_eq!(again, settings);
    }

    /// A change to a good form, and the field it should be refused on.
    type Case = (Box<dyn Fn(&mut SettingsForm)>, &'static str);

    #[test]
    fn each_problem_is_named_by_its_field() {
        let cases: Vec<Case> = vec![
            (Box::new(|f| f.name = "  ".into()), "name"),
            (Box::new(|f| f.name = "x".repeat(81)), "name"),
            (Box::new(|f| f.name = "Circle\r\nBcc: x".into()), "name"),
            (Box::new(|f| f.purpose = String::new()), "purpose"),
            (
                Box::new(|f| f.agreements = "a\u{202E}b".into()),
                "agreements",
            ),
            (Box::new(|f| f.days = vec![]), "days"),
            (Box::new(|f| f.time = "9am".into()), "time"),
            (Box::new(|f| f.every_weeks = "5".into()), "every_weeks"),
            (
                Box::new(|f| f.time_zone = "Mars/Olympus".into()),
                "time_zone",
            ),
            (Box::new(|f| f.size_cap = "2".into()), "size_cap"),
            (Box::new(|f| f.size_cap = "13".into()), "size_cap"),
            (Box::new(|f| f.round_hours = "0".into()), "round_hours"),
            (
                Box::new(|f| f.cadence_kind = "daily".into()),
                "cadence_kind",
            ),
            (
                Box::new(|f| {
                    f.cadence_kind = "cron".into();
                    f.cron = "*/15 * * * *".into();
                }),
                "cron",
            ),
            (
                Box::new(|f| {
                    f.cadence_kind = "cron".into();
                    f.cron = "0 9 31 2 *".into();
                }),
                "cron",
            ),
            (
                Box::new(|f| {
                    f.cadence_kind = "monthly".into();
                    f.month_day = "32".into();
                }),
                "month_day",
            ),
        ];
        for (change, field) in cases {
            let mut form = filled();
            change(&mut form);
            let errors = Settings::parse(&form, anchor()).expect_err("refused");
            assert!(errors.contains_key(field), "{field}: {errors:?}");
            assert_eq!(errors.len(), 1, "only {field}: {errors:?}");
        }
    }

    #[test]
    fn cadence_text_from_the_command_line() {
        let mut form = filled();
        form.set_cadence_text("weekly mon,Thu 18:30 every 2");
        let settings = Settings::parse(&form, anchor()).expect("valid");
        assert_eq!(
            settings.cadence.describe(),
            "Every 2 weeks on Monday and Thursday at 18:30"
        );
        form.set_cadence_text("monthly 15 09:00");
        assert!(Settings::parse(&form, anchor()).is_ok());
        form.set_cadence_text("0 9 * * 1");
        assert!(Settings::parse(&form, anchor()).is_ok());
        form.set_cadence_text("weekly mon 09:00 every");
        assert!(
            Settings::parse(&form, anchor())
                .expect_err("bad")
                .contains_key("every_weeks")
        );
        form.set_cadence_text("*/5 * * * *");
        assert!(
            Settings::parse(&form, anchor())
                .expect_err("bad")
                .contains_key("cron")
        );
    }

    #[test]
    fn several_problems_are_reported_together() {
        let mut form = filled();
        form.name = String::new();
        form.size_cap = "40".into();
        let errors = Settings::parse(&form, anchor()).expect_err("refused");
        assert_eq!(
            errors.keys().copied().collect::<Vec<_>>(),
            ["name", "size_cap"]
        );
    }
}
