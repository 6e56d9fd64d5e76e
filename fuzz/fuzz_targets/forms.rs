//! Form bodies as a browser (or anyone) sends them, decoded and handed to
//! the parsers of the forms people fill in. None may panic; what they
//! accept carries no control character and no bidirectional override.

#![no_main]

use chrono::NaiveDate;
use libfuzzer_sys::fuzz_target;
use shoulder::auth::sign_in::DisplayName;
use shoulder::circles::invites::AddressList;
use shoulder::circles::settings::{Settings, SettingsForm};
use shoulder::mail::EmailAddress;
use shoulder::rounds::check_in::{CheckIn, CheckInForm};
use shoulder::rounds::support::parse_message;
use shoulder::web::form::FormData;

fn clean(text: &str) -> bool {
    !text.chars().any(|c| {
        (c.is_control() && c != '\n' && c != '\t')
            || ('\u{202a}'..='\u{202e}').contains(&c)
            || ('\u{2066}'..='\u{2069}').contains(&c)
    })
}

fuzz_target!(|body: &[u8]| {
    let form = FormData::parse(body);

    let mut settings = SettingsForm::new("UTC");
    settings.name = form.get("name").into();
    settings.purpose = form.get("purpose").into();
    settings.agreements = form.get("agreements").into();
    settings.cadence_kind = form.get("cadence_kind").into();
    settings.days = form.all("day").into_iter().map(String::from).collect();
    settings.time = form.get("time").into();
    settings.every_weeks = form.get("every_weeks").into();
    settings.month_day = form.get("month_day").into();
    settings.cron = form.get("cron").into();
    settings.time_zone = form.get("time_zone").into();
    settings.round_hours = form.get("round_hours").into();
    settings.size_cap = form.get("size_cap").into();
    let anchor = NaiveDate::from_ymd_opt(2026, 11, 2).unwrap_or_default();
    if let Ok(parsed) = Settings::parse(&settings, anchor) {
        assert!(clean(&parsed.name) && !parsed.name.contains('\n'));
        assert!(clean(&parsed.purpose) && clean(&parsed.agreements));
    }

    let mut check_in = CheckInForm {
        reflection: form.get("reflection").into(),
        ..CheckInForm::default()
    };
    for (slot, name) in ["commitment-1", "commitment-2", "commitment-3"]
        .iter()
        .enumerate()
    {
        check_in.commitments[slot] = form.get(name).into();
    }
    for name in form.names() {
        if let Some(id) = name.strip_prefix("outcome-") {
            let note = form.get(&format!("note-{id}")).to_string();
            check_in
                .follow
                .insert(id.to_string(), (form.get(name).to_string(), note));
        }
    }
    if let Ok(parsed) = CheckIn::parse(&check_in) {
        assert!(clean(&parsed.reflection));
        assert!(parsed.commitments.iter().flatten().all(|c| clean(c)));
    }

    if let Ok(message) = parse_message(form.get("body")) {
        assert!(clean(&message));
    }
    if let Ok(name) = DisplayName::parse(form.get("name")) {
        assert!(clean(name.as_str()) && !name.as_str().contains('\n'));
    }
    if let Ok(address) = EmailAddress::parse(form.get("email")) {
        assert!(!address.as_str().chars().any(char::is_whitespace));
        assert!(clean(address.as_str()));
    }
    if let Ok(list) = AddressList::parse(form.get("addresses")) {
        for entry in list.entries() {
            let _ = EmailAddress::parse(entry);
        }
    }
});
