//! Property tests for every parser that reads what people type or send:
//! cadences, email addresses, names and longer texts, form bodies, and the
//! settings, check-in and support forms built on them. Whatever the input,
//! a parser answers Ok or a named error, never panics, and what it accepts
//! keeps the promises its callers rely on (no line break in a name, no
//! control character anywhere, a cadence that reads back as itself).
//!
//! A failure prints the smallest input proptest could shrink it to; add it
//! to the unit tests of the parser it broke.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use proptest::prelude::*;
use shoulder::circles::cadence::Cadence;
use shoulder::circles::settings::{Settings, SettingsForm};
use shoulder::mail::EmailAddress;
use shoulder::rounds::check_in::{CheckIn, CheckInForm};
use shoulder::text;
use shoulder::web::form::FormData;

/// Characters that have broken parsers before: line breaks, NUL and other
/// controls, bidi overrides, quotes and brackets, separators, non-ASCII.
const AWKWARD: &[char] = &[
    '\r', '\n', '\0', '\t', '\u{7f}', '\u{85}', '\u{202e}', '\u{2066}', '\u{200b}', '\u{feff}',
    '"', '\'', '<', '>', '&', '@', '.', ',', ';', ':', '\\', '%', '+', '=', '*', '/', '-', ' ',
    'é', 'ß', 'İ', 'ﬃ', '水', '🙂',
];

/// Text mixing ordinary letters and digits with [`AWKWARD`] characters.
fn awkward_text(max_len: usize) -> impl Strategy<Value = String> {
    let char = prop_oneof![
        3 => proptest::char::range('a', 'z'),
        1 => proptest::char::range('0', '9'),
        2 => proptest::sample::select(AWKWARD),
        1 => any::<char>(),
    ];
    proptest::collection::vec(char, 0..max_len).prop_map(|chars| chars.into_iter().collect())
}

/// Any text at all, or awkward text: the first finds what nobody thought
/// of, the second reaches the branches that need an `@` or a line break.
fn any_text(max_len: usize) -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::collection::vec(any::<char>(), 0..max_len)
            .prop_map(|chars| chars.into_iter().collect()),
        awkward_text(max_len),
    ]
}

fn no_forbidden_characters(text: &str) -> bool {
    !text.chars().any(|c| {
        (c.is_control() && c != '\n' && c != '\t')
            || ('\u{202a}'..='\u{202e}').contains(&c)
            || ('\u{2066}'..='\u{2069}').contains(&c)
    })
}

const ZONES: &[&str] = &[
    "UTC",
    "America/Toronto",
    "America/Santiago",
    "Europe/London",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "Asia/Kolkata",
    "America/St_Johns",
];

fn zone() -> impl Strategy<Value = Tz> {
    proptest::sample::select(ZONES).prop_map(|name| name.parse().expect("a known zone"))
}

/// An instant between 2000 and 2060, to the second.
fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    (946_684_800_i64..2_871_763_200)
        .prop_map(|secs| Utc.timestamp_opt(secs, 0).single().expect("an instant"))
}

/// Cron fields built from the pieces cron text is made of, so that many of
/// them are accepted and the scheduling properties below get exercised.
fn cron_text() -> impl Strategy<Value = String> {
    let field = prop_oneof![
        Just("*".to_string()),
        (0_u8..70).prop_map(|n| n.to_string()),
        (0_u8..30, 0_u8..30).prop_map(|(a, b)| format!("{a}-{b}")),
        (0_u8..30, 1_u8..15).prop_map(|(a, b)| format!("{a}/{b}")),
        (0_u8..30, 0_u8..30).prop_map(|(a, b)| format!("{a},{b}")),
        Just("*/2".to_string()),
        proptest::sample::select(&["MON", "Sun", "JAN", "dec", "L", "?", "#", "1#2", ""][..])
            .prop_map(str::to_string),
        awkward_text(4),
    ];
    prop_oneof![
        proptest::collection::vec(field, 0..8).prop_map(|fields| fields.join(" ")),
        proptest::sample::select(
            &[
                "@hourly", "@daily", "@weekly", "@monthly", "@yearly", "@reboot", "@"
            ][..]
        )
        .prop_map(str::to_string),
    ]
}

/// Text in the stored cadence's shapes, with each part sometimes wrong.
fn stored_cadence_text() -> impl Strategy<Value = String> {
    let days = proptest::collection::vec(
        proptest::sample::select(
            &["mon", "tue", "wed", "thu", "fri", "sat", "sun", "Mon", "x"][..],
        ),
        0..4,
    )
    .prop_map(|days| days.join(","));
    let time = prop_oneof![
        (0_u8..26, 0_u8..62).prop_map(|(h, m)| format!("{h:02}:{m:02}")),
        awkward_text(6),
    ];
    let date = prop_oneof![
        (1990_i32..2100, 0_u8..14, 0_u8..33).prop_map(|(y, m, d)| format!("{y}-{m:02}-{d:02}")),
        awkward_text(10),
    ];
    prop_oneof![
        (days, time.clone(), 0_u8..7, date)
            .prop_map(|(d, t, n, a)| format!("weekly {d} {t} every {n} from {a}")),
        (0_u8..34, time).prop_map(|(d, t)| format!("monthly {d} {t}")),
        cron_text().prop_map(|c| format!("cron {c}")),
        any_text(40),
    ]
}

/// Inputs tried per property: a few hundred in `cargo test`, many more in
/// the full reliability run (RELIABILITY.md).
fn cases() -> u32 {
    if std::env::var("SHOULDER_FULL_RELIABILITY").is_ok_and(|v| v == "1") {
        20_000
    } else {
        300
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        // A failure is printed, shrunk, and becomes a unit test of its
        // parser; no file of past failures is kept.
        failure_persistence: None,
        ..ProptestConfig::with_cases(cases())
    })]

    #[test]
    fn an_accepted_address_is_one_plain_lowercase_mailbox(raw in prop_oneof![
        any_text(80),
        (awkward_text(20), awkward_text(20)).prop_map(|(l, d)| format!("{l}@{d}")),
    ]) {
        if let Ok(address) = EmailAddress::parse(&raw) {
            let text = address.as_str();
            prop_assert!(text.chars().count() <= shoulder::mail::MAX_EMAIL_LEN);
            prop_assert_eq!(text.matches('@').count(), 1);
            prop_assert!(!text.chars().any(|c| c.is_control() || c.is_whitespace()));
            prop_assert!(!text.contains(['<', '>', '"', ',', ';', ':', '\\']));
            prop_assert_eq!(text, text.to_lowercase());
            prop_assert_eq!(EmailAddress::parse(text), Ok(address.clone()));
        }
    }

    #[test]
    fn ordinary_addresses_are_accepted(
        local in "[a-z0-9_+]{1,20}(\\.[a-z0-9]{1,10})?",
        domain in "[a-z0-9]{1,12}(-[a-z0-9]{1,5})?(\\.[a-z]{2,8}){1,2}",
        padding in "[ \t]{0,2}",
    ) {
        let raw = format!("{padding}{local}@{domain}{padding}");
        let address = EmailAddress::parse(&raw);
        prop_assert_eq!(address.map(|a| a.as_str().to_string()), Ok(format!("{local}@{domain}")));
    }

    #[test]
    fn an_accepted_name_is_one_trimmed_line_of_visible_text(raw in any_text(90), max in 1_usize..80) {
        if let Ok(name) = text::single_line(&raw, max) {
            prop_assert!(!name.is_empty());
            prop_assert!(!name.contains(['\r', '\n', '\t']));
            prop_assert!(no_forbidden_characters(&name));
            prop_assert_eq!(name.trim(), name.as_str());
            prop_assert!(name.chars().count() <= max);
        }
        if let Ok(name) = shoulder::auth::sign_in::DisplayName::parse(&raw) {
            prop_assert!(!name.as_str().contains(['\r', '\n']));
            prop_assert!(no_forbidden_characters(name.as_str()));
        }
    }

    #[test]
    fn an_accepted_longer_text_has_no_carriage_returns_or_controls(
        raw in any_text(300),
        max in 1_usize..300,
        required in any::<bool>(),
    ) {
        match text::multi_line(&raw, max, required) {
            Ok(kept) => {
                prop_assert!(!kept.contains('\r'));
                prop_assert!(no_forbidden_characters(&kept));
                prop_assert!(kept.chars().count() <= max);
                prop_assert!(!required || !kept.is_empty());
            }
            Err(error) => prop_assert!(!error.to_string().is_empty()),
        }
    }

    #[test]
    fn any_form_body_decodes_without_refusing(body in proptest::collection::vec(any::<u8>(), 0..400)) {
        let form = FormData::parse(&body);
        for name in form.names() {
            // Each field reads as the first value sent under its name.
            prop_assert_eq!(form.all(name).first().copied(), Some(form.get(name)));
        }
    }

    #[test]
    fn form_fields_come_back_as_they_were_sent(
        fields in proptest::collection::vec((any_text(12), any_text(40)), 0..8),
    ) {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&fields)
            .finish();
        let form = FormData::parse(body.as_bytes());
        let names: Vec<&str> = form.names().collect();
        let sent: Vec<&str> = fields.iter().map(|(name, _)| name.as_str()).collect();
        prop_assert_eq!(names, sent);
        for (name, value) in &fields {
            prop_assert!(form.all(name).contains(&value.as_str()));
        }
    }

    #[test]
    fn a_stored_cadence_reads_back_as_itself(raw in stored_cadence_text()) {
        if let Ok(cadence) = Cadence::parse(&raw) {
            let canonical = cadence.to_canonical();
            prop_assert_eq!(Cadence::parse(&canonical), Ok(cadence.clone()));
            prop_assert!(!cadence.describe().is_empty());
        }
    }

    #[test]
    fn an_accepted_cron_cadence_fires_later_and_later(
        expression in cron_text(),
        tz in zone(),
        after in instant(),
    ) {
        if let Ok(cadence) = Cadence::cron(&expression) {
            let upcoming = cadence.upcoming(tz, after, 4);
            let mut previous = after;
            for occurrence in &upcoming {
                prop_assert!(occurrence.at > previous, "{expression} in {tz}: {upcoming:?}");
                previous = occurrence.at;
            }
        }
    }

    #[test]
    fn weekly_and_monthly_cadences_fire_in_order_once_per_slot(
        days in proptest::sample::subsequence((0_u8..7).collect::<Vec<_>>(), 1..=7),
        hour in 0_u32..24,
        minute in 0_u32..60,
        every in 1_u8..=4,
        month_day in 1_u8..=31,
        tz in zone(),
        after in instant(),
        monthly in any::<bool>(),
    ) {
        let time = chrono::NaiveTime::from_hms_opt(hour, minute, 0).expect("a time");
        let cadence = if monthly {
            Cadence::monthly(month_day, time)
        } else {
            let days: Vec<chrono::Weekday> = days
                .iter()
                .map(|n| chrono::Weekday::try_from(*n).expect("a weekday"))
                .collect();
            Cadence::weekly(&days, time, every, NaiveDate::from_ymd_opt(2024, 1, 3).expect("a date"))
        };
        let cadence = cadence.expect("a valid weekly or monthly cadence");
        let upcoming = cadence.upcoming(tz, after, 6);
        prop_assert_eq!(upcoming.len(), 6, "weekly and monthly cadences never run out");
        let mut previous = after;
        for occurrence in &upcoming {
            prop_assert!(occurrence.at > previous, "{upcoming:?}");
            previous = occurrence.at;
        }
        let mut slots: Vec<_> = upcoming.iter().map(|o| o.slot).collect();
        slots.dedup();
        prop_assert_eq!(slots.len(), upcoming.len(), "one occurrence per slot: {:?}", upcoming);
    }

    #[test]
    fn any_settings_form_is_accepted_or_refused_field_by_field(
        name in any_text(100),
        kind in proptest::sample::select(&["weekly", "monthly", "cron", "", "yearly"][..]),
        days in proptest::collection::vec(any_text(4), 0..3),
        time in any_text(8),
        every_weeks in any_text(3),
        month_day in any_text(3),
        cron in cron_text(),
        time_zone in prop_oneof![proptest::sample::select(ZONES).prop_map(str::to_string), any_text(20)],
        round_hours in any_text(5),
        size_cap in any_text(3),
    ) {
        let form = SettingsForm {
            name,
            purpose: String::new(),
            agreements: String::new(),
            cadence_kind: kind.to_string(),
            days,
            time,
            every_weeks,
            month_day,
            cron,
            time_zone,
            round_hours,
            size_cap,
        };
        match Settings::parse(&form, NaiveDate::from_ymd_opt(2026, 11, 2).expect("a date")) {
            Ok(settings) => {
                prop_assert!(no_forbidden_characters(&settings.name));
                prop_assert!(!settings.name.contains('\n'));
            }
            Err(errors) => {
                prop_assert!(!errors.is_empty());
                prop_assert!(errors.values().all(|message| message.ends_with('.')));
            }
        }
    }

    #[test]
    fn any_check_in_form_is_accepted_or_refused_field_by_field(
        reflection in any_text(80),
        commitments in proptest::array::uniform3(any_text(40)),
        extra in proptest::collection::vec(any_text(10), 0..2),
        follow in proptest::collection::btree_map(any_text(4), (any_text(8), any_text(20)), 0..3),
        support in any_text(60),
        audience in any_text(8),
        note in any_text(60),
        answer in any_text(30),
    ) {
        let form = CheckInForm {
            reflection,
            audience,
            commitments,
            extra_commitments: extra,
            follow: follow.into_iter().collect::<BTreeMap<_, _>>(),
        };
        match CheckIn::parse(&form) {
            Ok(check_in) => {
                prop_assert!(no_forbidden_characters(&check_in.reflection));
                for commitment in check_in.commitments.iter().flatten() {
                    prop_assert!(no_forbidden_characters(commitment));
                    prop_assert!(!commitment.is_empty());
                }
            }
            Err(errors) => prop_assert!(!errors.is_empty()),
        }
        if let Ok(message) = shoulder::rounds::support::parse_message(&support) {
            prop_assert!(no_forbidden_characters(&message));
        }
        if let Ok(note) = shoulder::rounds::notes::parse_note(&note) {
            prop_assert!(no_forbidden_characters(&note) && !note.is_empty());
        }
        if let Ok(answer) = shoulder::rounds::notes::parse_answer(&answer) {
            prop_assert!(no_forbidden_characters(&answer) && !answer.contains('\n'));
        }
    }
}
