//! The cadence parsers: the stored form, a cron expression as a facilitator
//! types it, and the time zone name. Whatever is accepted must read back as
//! itself and schedule rounds strictly later and later.

#![no_main]

use chrono::{TimeZone, Utc};
use libfuzzer_sys::fuzz_target;
use shoulder::circles::cadence::{Cadence, parse_time_zone};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The first line picks a zone and an instant; the rest is the cadence.
    let (head, cadence_text) = text.split_once('\n').unwrap_or(("", text));
    let tz = parse_time_zone(head.trim()).unwrap_or(chrono_tz::UTC);
    let seconds = head.bytes().fold(1_900_000_000_i64, |n, b| {
        n.wrapping_mul(31).wrapping_add(i64::from(b)) % 2_000_000_000
    });
    let after = Utc
        .timestamp_opt(seconds.abs(), 0)
        .single()
        .unwrap_or_default();

    for parsed in [Cadence::parse(cadence_text), Cadence::cron(cadence_text)] {
        let Ok(cadence) = parsed else { continue };
        let canonical = cadence.to_canonical();
        assert_eq!(
            Cadence::parse(&canonical).as_ref(),
            Ok(&cadence),
            "{canonical}"
        );
        let _ = cadence.describe();
        let mut previous = after;
        for occurrence in cadence.upcoming(tz, after, 3) {
            assert!(occurrence.at > previous, "{canonical} in {tz}");
            previous = occurrence.at;
        }
    }
});
