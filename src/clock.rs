//! The one source of "now". Production reads the system clock; tests hold a
//! fixed instant and move it by hand, so nothing time-dependent needs a sleep.

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
}
