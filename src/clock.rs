//! The one source of "now". Production reads the system clock; tests hold a
//! fixed instant and move it by hand, so nothing time-dependent needs a sleep.

pub mod zones;

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;

#[derive(Clone, Debug)]
pub struct Clock {
    inner: Arc<Source>,
}

#[derive(Debug)]
enum Source {
    System,
    Fixed(Mutex<DateTime<Utc>>),
}

impl Clock {
    pub fn system() -> Self {
        Clock {
            inner: Arc::new(Source::System),
        }
    }

    pub fn fixed(at: DateTime<Utc>) -> Self {
        Clock {
            inner: Arc::new(Source::Fixed(Mutex::new(at))),
        }
    }

    #[expect(
        clippy::disallowed_methods,
        reason = "the only place that reads the system time"
    )]
    pub fn now(&self) -> DateTime<Utc> {
        match &*self.inner {
            Source::System => Utc::now(),
            Source::Fixed(at) => *at.lock().unwrap_or_else(|poisoned| poisoned.into_inner()),
        }
    }

    /// Moves a fixed clock to `at`. A system clock cannot be set; that is a bug.
    pub fn set(&self, at: DateTime<Utc>) {
        match &*self.inner {
            Source::System => panic!("the system clock cannot be set"),
            Source::Fixed(now) => {
                *now.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = at;
            }
        }
    }

    pub fn advance(&self, by: Duration) {
        self.set(self.now() + by);
    }
}

/// A circle's stored zone name as a zone; a name the zone database no
/// longer knows reads as UTC.
pub fn zone_or_utc(name: &str) -> Tz {
    name.parse().unwrap_or(chrono_tz::UTC)
}

/// An instant as a circle's members read it, in their zone:
/// "Monday 1 March 2027, 09:00 EST".
pub fn local_text(at: DateTime<Utc>, zone: Tz) -> String {
    at.with_timezone(&zone)
        .format("%A %-d %B %Y, %H:%M %Z")
        .to_string()
}

/// The same without the year, for emails about the days just ahead:
/// "Monday 1 March, 09:00 EST".
pub fn local_text_short(at: DateTime<Utc>, zone: Tz) -> String {
    at.with_timezone(&zone)
        .format("%A %-d %B, %H:%M %Z")
        .to_string()
}

/// The place a zone is named after, as people say it: "New York" for
/// `America/New_York`, "UTC" for `UTC`.
pub fn place_of(zone: Tz) -> String {
    zone.name()
        .rsplit('/')
        .next()
        .unwrap_or(zone.name())
        .replace('_', " ")
}

/// An instant as one person reads it when their zone may not be the
/// circle's: in the circle's zone, saying where, and in theirs beside it
/// when the clocks differ ("Tuesday 9 March, 18:30 in London, 19:30 your
/// time"; the day is repeated when it is another day there).
pub fn local_text_for(at: DateTime<Utc>, circle: Tz, person: Tz) -> String {
    let there = at.with_timezone(&circle);
    let here = at.with_timezone(&person);
    let mut text = format!(
        "{} in {}",
        there.format("%A %-d %B, %H:%M"),
        place_of(circle)
    );
    if here.naive_local() != there.naive_local() {
        if here.date_naive() == there.date_naive() {
            text.push_str(&format!(", {} your time", here.format("%H:%M")));
        } else {
            text.push_str(&format!(", {} your time", here.format("%A %-d %B, %H:%M")));
        }
    }
    text
}

/// An instant on a page or in an email for one reader: beside the
/// circle's time in their own zone when they chose one, else in the
/// circle's zone alone, as [`local_text`] says it.
pub fn time_for(at: DateTime<Utc>, circle: Tz, reader: Option<Tz>) -> String {
    match reader {
        Some(reader) => local_text_for(at, circle, reader),
        None => local_text(at, circle),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn fixed_clock_stands_still_until_moved() {
        let start = Utc
            .with_ymd_and_hms(2027, 3, 14, 6, 0, 0)
            .single()
            .expect("valid");
        let clock = Clock::fixed(start);
        assert_eq!(clock.now(), start);
        assert_eq!(clock.now(), start);
        clock.advance(Duration::minutes(90));
        assert_eq!(clock.now(), start + Duration::minutes(90));
        let copy = clock.clone();
        copy.set(start);
        assert_eq!(clock.now(), start, "clones share one instant");
    }

    #[test]
    fn instants_read_in_the_circle_zone_and_unknown_zones_as_utc() {
        let at = Utc
            .with_ymd_and_hms(2027, 3, 1, 14, 0, 0)
            .single()
            .expect("valid");
        let toronto = zone_or_utc("America/Toronto");
        assert_eq!(local_text(at, toronto), "Monday 1 March 2027, 09:00 EST");
        assert_eq!(local_text_short(at, toronto), "Monday 1 March, 09:00 EST");
        assert_eq!(zone_or_utc("Atlantis/Central"), chrono_tz::UTC);
    }

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().expect("an RFC 3339 instant")
    }

    #[test]
    fn a_time_says_the_circle_s_place_and_the_reader_s_clock() {
        let london = chrono_tz::Europe::London;
        let toronto = chrono_tz::America::Toronto;
        let berlin = chrono_tz::Europe::Berlin;
        // Tuesday 9 March 2027, 18:30 GMT: both still on winter time,
        // Toronto five hours behind.
        let at = utc("2027-03-09T18:30:00Z");
        assert_eq!(
            local_text_for(at, london, london),
            "Tuesday 9 March, 18:30 in London"
        );
        assert_eq!(
            local_text_for(at, london, berlin),
            "Tuesday 9 March, 18:30 in London, 19:30 your time"
        );
        assert_eq!(
            local_text_for(at, london, toronto),
            "Tuesday 9 March, 18:30 in London, 13:30 your time"
        );
        // The week between North America's change (14 March) and
        // Europe's (28 March): four hours apart, not five.
        let between = utc("2027-03-16T18:30:00Z");
        assert_eq!(
            local_text_for(between, london, toronto),
            "Tuesday 16 March, 18:30 in London, 14:30 your time"
        );
        // After both changed: five hours again, an hour later in London.
        let after = utc("2027-03-30T17:30:00Z");
        assert_eq!(
            local_text_for(after, london, toronto),
            "Tuesday 30 March, 18:30 in London, 13:30 your time"
        );
        // Another day where the reader is.
        let late = utc("2027-03-09T23:30:00Z");
        assert_eq!(
            local_text_for(late, london, chrono_tz::Asia::Tokyo),
            "Tuesday 9 March, 23:30 in London, Wednesday 10 March, 08:30 your time"
        );
        // Same clock, another zone: nothing to add.
        assert_eq!(
            local_text_for(at, london, chrono_tz::Europe::Lisbon),
            "Tuesday 9 March, 18:30 in London"
        );
        assert_eq!(
            time_for(at, london, Some(berlin)),
            "Tuesday 9 March, 18:30 in London, 19:30 your time"
        );
        assert_eq!(
            time_for(at, london, None),
            "Tuesday 9 March 2027, 18:30 GMT"
        );
        assert_eq!(place_of(chrono_tz::America::New_York), "New York");
        assert_eq!(place_of(chrono_tz::UTC), "UTC");
    }
}
