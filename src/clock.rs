//! The one source of "now". Production reads the system clock; tests hold a
//! fixed instant and move it by hand, so nothing time-dependent needs a sleep.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};

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
}
