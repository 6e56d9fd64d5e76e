//! When a circle's rounds happen.
//!
//! This module owns the cadence a facilitator chooses (some days of the week
//! every N weeks, a day of the month, or a cron expression), the canonical
//! text it is stored as in `circles.cadence`, the plain-English line shown on
//! pages, and the arithmetic that turns a cadence and an IANA time zone into
//! the instants at which rounds open. It is pure: no database and no clock;
//! every "now" is passed in.
//!
//! # Daylight-saving time
//!
//! A cadence names local wall-clock times ("Mondays at 09:00"), so we first
//! list the intended local date-times (the *slots*) without any zone, then
//! place each one in the circle's zone:
//!
//! - a local time that exists once runs then;
//! - a local time that exists twice (the fall-back fold) runs once, at the
//!   earlier instant, so nobody gets the same round twice;
//! - a local time that does not exist (the spring-forward gap) runs at the
//!   first instant after it, so the round is late rather than lost.
//!
//! The slot stays the intended local time even when the instant moved: it is
//! the round's identity (rounds are unique on circle and slot), and it is what
//! people expect to read. The `cron` crate gets this wrong on its own (it
//! skips gap times and fires twice in folds), which is why cron expressions
//! are evaluated zone-free here and placed by the same rule as the rest.

use std::str::FromStr;

use chrono::{
    DateTime, Datelike, Days, LocalResult, Months, NaiveDate, NaiveDateTime, NaiveTime, Offset,
    TimeDelta, TimeZone, Timelike, Utc, Weekday,
};
use chrono_tz::Tz;
use cron::{Schedule, TimeUnitSpec};

/// The longest repeat a weekly cadence allows, in weeks.
pub const MAX_EVERY_WEEKS: u8 = 4;

/// How the canonical text writes times and dates.
const TIME_FORMAT: &str = "%H:%M";
const DATE_FORMAT: &str = "%Y-%m-%d";

/// How far ahead the slot searches look. Each is comfortably more than the
/// longest wait between two slots of an accepted cadence, plus one slot that
/// a fold may make us skip.
const WEEKLY_SEARCH_DAYS: u64 = 2 * 7 * MAX_EVERY_WEEKS as u64 + 1;
const MONTHLY_SEARCH_MONTHS: u32 = 3;
const CRON_SEARCH_SLOTS: usize = 8;

/// The week, Monday first, in the order cadences list their days.
const WEEK: [Weekday; 7] = [
    Weekday::Mon,
    Weekday::Tue,
    Weekday::Wed,
    Weekday::Thu,
    Weekday::Fri,
    Weekday::Sat,
    Weekday::Sun,
];

/// Day names for crontab day-of-week numbers, by position: 0 and 7 are both
/// Sunday, as in every crontab manual.
const CRONTAB_DAYS: [&str; 8] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"];

/// When a circle's rounds happen, as people choose it.
///
/// Build one with [`Cadence::weekly`], [`Cadence::monthly`], [`Cadence::cron`]
/// or [`Cadence::parse`]; the fields are private so that every value has
/// passed those checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cadence {
    /// Some days of the week at a local time, every N weeks.
    Weekly(WeeklyCadence),
    /// One day of every month at a local time.
    Monthly(MonthlyCadence),
    /// A cron expression.
    Cron(CronCadence),
}

/// Some days of the week at a local time, every `every_weeks` weeks.
///
/// Weeks run Monday to Sunday and are counted from the week of the anchor:
/// a week fires when the number of weeks between it and the anchor's week is
/// a multiple of `every_weeks`. The anchor picks *which* weeks, in both
/// directions; it is not a start date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeeklyCadence {
    /// Sorted Monday first, no repeats, never empty.
    days: Vec<Weekday>,
    time: NaiveTime,
    every_weeks: u8,
    /// The Monday of the anchor's week, so two anchors in the same week make
    /// the same cadence.
    anchor: NaiveDate,
}

/// Day `day` (1 to 31) of every month at a local time. In a month that has no
/// such day (the 31st in April, the 30th in February), the round falls on the
/// month's last day instead, so no month is skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonthlyCadence {
    day: u8,
    time: NaiveTime,
}

/// A cron expression, kept as the person typed it (trimmed, with single
/// spaces) and read with crontab's meaning of day-of-week numbers.
///
/// One difference from classic crontab remains, inherited from the `cron`
/// crate: when both the day of the month and the day of the week are
/// restricted, a day must match both (so `0 9 1-7 * 1` is the first Monday
/// of the month), where crontab fires when either matches.
#[derive(Debug, Clone)]
pub struct CronCadence {
    /// What the person typed, normalised; this is what we store and show.
    expression: String,
    /// The same schedule in the crate's dialect: seconds first, day names.
    /// Boxed because it is several times larger than the other cadences.
    schedule: Box<Schedule>,
}

/// Two cron cadences are the same when their text is: the schedule is derived.
impl PartialEq for CronCadence {
    fn eq(&self, other: &Self) -> bool {
        self.expression == other.expression
    }
}

impl Eq for CronCadence {}

/// One round of a cadence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Occurrence {
    /// The intended local date-time: the round's identity, even when `at`
    /// had to move because of a daylight-saving change.
    pub slot: NaiveDateTime,
    /// When the round actually happens.
    pub at: DateTime<Utc>,
}

/// Why a cadence or a time zone was refused. Each message says what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CadenceError {
    #[error("choose at least one day of the week")]
    NoDays,
    #[error("choose a time in whole minutes, such as 09:00")]
    BadTime,
    #[error("a weekly cadence repeats every 1 to 4 weeks, not every {0}")]
    EveryWeeksOutOfRange(u8),
    #[error("the day of the month must be from 1 to 31, not {0}")]
    DayOutOfRange(u8),
    #[error(
        "a cron expression has 5 fields (minute, hour, day of month, month, day of week), \
         or 6 or 7 with seconds first and an optional year; this one has {0}"
    )]
    CronFieldCount(usize),
    #[error("this cron expression could not be read: {0}")]
    CronSyntax(String),
    #[error(
        "rounds can happen at most once an hour: give a single minute (and a single second) value"
    )]
    TooFrequent,
    #[error(
        "this schedule never fires: check the day, month and any year \
         (31 February, for example, does not exist)"
    )]
    NeverFires,
    #[error("\"{0}\" is not a time zone we know: use an IANA name such as America/Toronto")]
    UnknownTimeZone(String),
    #[error("the stored cadence \"{0}\" could not be read")]
    Unreadable(String),
}

impl Cadence {
    /// Some days of the week at `time`, every `every_weeks` weeks (1 to
    /// [`MAX_EVERY_WEEKS`]) counted from the week of `anchor`.
    pub fn weekly(
        days: &[Weekday],
        time: NaiveTime,
        every_weeks: u8,
        anchor: NaiveDate,
    ) -> Result<Self, CadenceError> {
        let mut days = days.to_vec();
        days.sort_by_key(Weekday::num_days_from_monday);
        days.dedup();
        if days.is_empty() {
            return Err(CadenceError::NoDays);
        }
        check_time(time)?;
        if !(1..=MAX_EVERY_WEEKS).contains(&every_weeks) {
            return Err(CadenceError::EveryWeeksOutOfRange(every_weeks));
        }
        Ok(Self::Weekly(WeeklyCadence {
            days,
            time,
            every_weeks,
            anchor: monday_of(anchor),
        }))
    }

    /// Day `day` (1 to 31) of every month at `time`; see [`MonthlyCadence`]
    /// for shorter months.
    pub fn monthly(day: u8, time: NaiveTime) -> Result<Self, CadenceError> {
        if !(1..=31).contains(&day) {
            return Err(CadenceError::DayOutOfRange(day));
        }
        check_time(time)?;
        Ok(Self::Monthly(MonthlyCadence { day, time }))
    }

    /// A cron expression: the 5-field crontab form (minute, hour, day of
    /// month, month, day of week), the `cron` crate's 6- or 7-field form
    /// (seconds first, optional year), or one of `@hourly`, `@daily`,
    /// `@weekly`, `@monthly`, `@yearly`. Day-of-week numbers mean what they
    /// mean in crontab in every form: 0 or 7 is Sunday, 1 Monday, 6 Saturday.
    ///
    /// Refused: expressions the crate cannot read, anything that could fire
    /// twice within an hour, and expressions that never fire. "Never" is
    /// judged from a fixed reference instant (the Unix epoch; the crate looks
    /// no further than 2100), never from the wall clock, so the same text is
    /// accepted today and when it is read back from the database years later.
    /// An expression whose year field has already passed is accepted here;
    /// [`Cadence::first_after`] refuses it when given the current time.
    pub fn cron(expression: &str) -> Result<Self, CadenceError> {
        let fields: Vec<&str> = expression.split_whitespace().collect();
        let mut for_crate: Vec<String> = match fields.len() {
            1 if fields.iter().all(|field| field.starts_with('@')) => vec![fields.join("")],
            // crontab has no seconds field: run at second 0.
            5 => std::iter::once("0")
                .chain(fields.iter().copied())
                .map(String::from)
                .collect(),
            6 | 7 => fields.iter().copied().map(String::from).collect(),
            count => return Err(CadenceError::CronFieldCount(count)),
        };
        // Seconds, minutes, hours, day of month, month: the day of the week is sixth.
        if let Some(weekdays) = for_crate.get_mut(5) {
            *weekdays = crate_weekdays(weekdays)?;
        }
        let schedule = Schedule::from_str(&for_crate.join(" ")).map_err(|error| {
            // The crate quotes its own (translated) text with a caret under
            // it, which would only confuse; its last line is the reason.
            let message = error.to_string();
            let reason = message.lines().rev().find(|line| !line.trim().is_empty());
            CadenceError::CronSyntax(reason.unwrap_or(&message).trim().to_string())
        })?;

        // Fields combine as a product: every chosen minute of every chosen
        // hour. So two seconds, or two minutes, put two firings within the
        // same hour, and with one of each the firings are whole hours apart.
        // That makes "at most hourly" a property of the text, exact and
        // without sampling.
        if schedule.seconds().count() > 1 || schedule.minutes().count() > 1 {
            return Err(CadenceError::TooFrequent);
        }
        if schedule.after(&DateTime::UNIX_EPOCH).next().is_none() {
            return Err(CadenceError::NeverFires);
        }
        Ok(Self::Cron(CronCadence {
            expression: fields.join(" "),
            schedule: Box::new(schedule),
        }))
    }

    /// The canonical text stored in `circles.cadence`; [`Cadence::parse`]
    /// reads it back. For example `weekly mon,thu 09:00 every 2 from
    /// 2027-03-01`, `monthly 31 09:00`, `cron 0 9 * * 1`.
    pub fn to_canonical(&self) -> String {
        match self {
            Self::Weekly(weekly) => {
                let days: Vec<&str> = weekly.days.iter().map(|day| day_names(*day).0).collect();
                format!(
                    "weekly {} {} every {} from {}",
                    days.join(","),
                    weekly.time.format(TIME_FORMAT),
                    weekly.every_weeks,
                    weekly.anchor.format(DATE_FORMAT)
                )
            }
            Self::Monthly(monthly) => {
                format!(
                    "monthly {} {}",
                    monthly.day,
                    monthly.time.format(TIME_FORMAT)
                )
            }
            Self::Cron(cron) => format!("cron {}", cron.expression),
        }
    }

    /// Reads the text [`Cadence::to_canonical`] writes. Text of the wrong
    /// shape is [`CadenceError::Unreadable`]; text of the right shape goes
    /// through the same checks as a new cadence.
    pub fn parse(canonical: &str) -> Result<Self, CadenceError> {
        let unreadable = || CadenceError::Unreadable(canonical.to_string());
        let words: Vec<&str> = canonical.split_whitespace().collect();
        match words.as_slice() {
            ["weekly", days, time, "every", every_weeks, "from", anchor] => {
                let days = days
                    .split(',')
                    .map(|name| WEEK.into_iter().find(|day| day_names(*day).0 == name))
                    .collect::<Option<Vec<Weekday>>>()
                    .ok_or_else(unreadable)?;
                let time =
                    NaiveTime::parse_from_str(time, TIME_FORMAT).map_err(|_| unreadable())?;
                let every_weeks = every_weeks.parse().map_err(|_| unreadable())?;
                let anchor =
                    NaiveDate::parse_from_str(anchor, DATE_FORMAT).map_err(|_| unreadable())?;
                Self::weekly(&days, time, every_weeks, anchor)
            }
            ["monthly", day, time] => {
                let day = day.parse().map_err(|_| unreadable())?;
                let time =
                    NaiveTime::parse_from_str(time, TIME_FORMAT).map_err(|_| unreadable())?;
                Self::monthly(day, time)
            }
            ["cron", expression @ ..] => Self::cron(&expression.join(" ")),
            _ => Err(unreadable()),
        }
    }

    /// The first round strictly after `after`, with the daylight-saving rule
    /// of the module docs applied in `tz`. `None` means the cadence never
    /// fires again: that cannot happen for a weekly or monthly cadence, only
    /// for a cron expression whose year field has run out.
    pub fn next_after(&self, tz: Tz, after: DateTime<Utc>) -> Option<Occurrence> {
        // A slot at or before the local reading of `after` always lands at or
        // before `after` itself, so only later slots need to be looked at.
        // Some later ones may still land too early (the second pass through a
        // fold, or two gap slots moved onto one instant): those are skipped,
        // which is what makes a fold run once.
        let local_after = after.with_timezone(&tz).naive_local();
        self.slots_after(local_after)
            .map(|slot| Occurrence {
                slot,
                at: instant_of(tz, slot),
            })
            .find(|occurrence| occurrence.at > after)
    }

    /// The next `n` rounds after `after` (fewer if the cadence runs out).
    pub fn upcoming(&self, tz: Tz, after: DateTime<Utc>, n: usize) -> Vec<Occurrence> {
        std::iter::successors(self.next_after(tz, after), |previous| {
            self.next_after(tz, previous.at)
        })
        .take(n)
        .collect()
    }

    /// [`Cadence::next_after`] as a check, for saving a cadence: the first
    /// round after `now` (to store as the circle's next round), or
    /// [`CadenceError::NeverFires`] when the cadence has nothing left.
    pub fn first_after(&self, tz: Tz, now: DateTime<Utc>) -> Result<Occurrence, CadenceError> {
        self.next_after(tz, now).ok_or(CadenceError::NeverFires)
    }

    /// Plain English for pages, such as "Every Monday and Thursday at 09:00".
    pub fn describe(&self) -> String {
        match self {
            Self::Weekly(weekly) => {
                let days: Vec<&str> = weekly.days.iter().map(|day| day_names(*day).1).collect();
                let days = join_in_english(&days);
                let time = weekly.time.format(TIME_FORMAT);
                match (weekly.every_weeks, weekly.days.len()) {
                    (1, 7) => format!("Every day at {time}"),
                    (1, _) => format!("Every {days} at {time}"),
                    (every, _) => format!("Every {every} weeks on {days} at {time}"),
                }
            }
            Self::Monthly(monthly) => {
                let time = monthly.time.format(TIME_FORMAT);
                if monthly.day > 28 {
                    format!(
                        "On day {} of every month at {time} (the last day in shorter months)",
                        monthly.day
                    )
                } else {
                    format!("On day {} of every month at {time}", monthly.day)
                }
            }
            Self::Cron(cron) => format!("Cron: {}", cron.expression),
        }
    }

    /// The cadence's local slots strictly after `from`, in order. Bounded:
    /// each search looks only as far ahead as the constants above allow.
    fn slots_after(&self, from: NaiveDateTime) -> Box<dyn Iterator<Item = NaiveDateTime> + '_> {
        match self {
            Self::Weekly(weekly) => Box::new(
                (0..WEEKLY_SEARCH_DAYS)
                    .filter_map(move |n| from.date().checked_add_days(Days::new(n)))
                    .filter(|date| weekly.fires_on(*date))
                    .map(|date| date.and_time(weekly.time))
                    .filter(move |slot| *slot > from),
            ),
            Self::Monthly(monthly) => {
                let first_of_month = from.date().with_day(1);
                Box::new(
                    (0..MONTHLY_SEARCH_MONTHS)
                        .filter_map(move |n| first_of_month?.checked_add_months(Months::new(n)))
                        .filter_map(|first| monthly.date_in(first))
                        .map(|date| date.and_time(monthly.time))
                        .filter(move |slot| *slot > from),
                )
            }
            // The crate is run on UTC only because UTC has no gaps or folds:
            // its answers are read back as naive local times, and placed in
            // the real zone by `instant_of` like every other slot.
            Self::Cron(cron) => Box::new(
                cron.schedule
                    .after(&from.and_utc())
                    .take(CRON_SEARCH_SLOTS)
                    .map(|at| at.naive_utc())
                    .filter(move |slot| *slot > from),
            ),
        }
    }
}

impl WeeklyCadence {
    /// The chosen days, Monday first.
    pub fn days(&self) -> &[Weekday] {
        &self.days
    }

    pub fn time(&self) -> NaiveTime {
        self.time
    }

    pub fn every_weeks(&self) -> u8 {
        self.every_weeks
    }

    /// The Monday of the week the repeat is counted from.
    pub fn anchor(&self) -> NaiveDate {
        self.anchor
    }

    fn fires_on(&self, date: NaiveDate) -> bool {
        let weeks_from_anchor = (monday_of(date) - self.anchor).num_days() / 7;
        self.days.contains(&date.weekday())
            && weeks_from_anchor.rem_euclid(i64::from(self.every_weeks)) == 0
    }
}

impl MonthlyCadence {
    pub fn day(&self) -> u8 {
        self.day
    }

    pub fn time(&self) -> NaiveTime {
        self.time
    }

    /// The date this cadence picks in the month that starts on `first`: its
    /// day, or the month's last day when the month is shorter.
    fn date_in(&self, first: NaiveDate) -> Option<NaiveDate> {
        let last = first.checked_add_months(Months::new(1))?.pred_opt()?;
        first.with_day(u32::from(self.day).min(last.day()))
    }
}

impl CronCadence {
    /// The expression as the person typed it, trimmed, with single spaces.
    pub fn expression(&self) -> &str {
        &self.expression
    }
}

/// An IANA time zone name such as `America/Toronto`.
pub fn parse_time_zone(name: &str) -> Result<Tz, CadenceError> {
    let name = name.trim();
    name.parse()
        .map_err(|_| CadenceError::UnknownTimeZone(name.to_string()))
}

/// Times are stored as `HH:MM`, so seconds would be lost on the way back.
fn check_time(time: NaiveTime) -> Result<(), CadenceError> {
    if time.second() == 0 && time.nanosecond() == 0 {
        Ok(())
    } else {
        Err(CadenceError::BadTime)
    }
}

fn monday_of(date: NaiveDate) -> NaiveDate {
    let since_monday = Days::new(u64::from(date.weekday().num_days_from_monday()));
    // Only the first week chrono can represent has no Monday before it.
    date.checked_sub_days(since_monday).unwrap_or(date)
}

/// The short name used in canonical text and the full name used on pages.
fn day_names(day: Weekday) -> (&'static str, &'static str) {
    match day {
        Weekday::Mon => ("mon", "Monday"),
        Weekday::Tue => ("tue", "Tuesday"),
        Weekday::Wed => ("wed", "Wednesday"),
        Weekday::Thu => ("thu", "Thursday"),
        Weekday::Fri => ("fri", "Friday"),
        Weekday::Sat => ("sat", "Saturday"),
        Weekday::Sun => ("sun", "Sunday"),
    }
}

/// "Monday", "Monday and Thursday", "Monday, Wednesday and Friday".
fn join_in_english(words: &[&str]) -> String {
    match words {
        [] => String::new(),
        [only] => (*only).to_string(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// Where a slot lands in `tz`, by the rule in the module docs.
fn instant_of(tz: Tz, slot: NaiveDateTime) -> DateTime<Utc> {
    match tz.from_local_datetime(&slot) {
        LocalResult::Single(at) => at.with_timezone(&Utc),
        // The fold: the same wall-clock time twice. Run once, the first time.
        LocalResult::Ambiguous(one, other) => one.min(other).with_timezone(&Utc),
        // The gap: this wall-clock time never shows. Run as soon as it has passed.
        LocalResult::None => first_instant_reaching(tz, slot),
    }
}

/// The first whole second whose local reading in `tz` is at or after `slot`,
/// for a slot that falls in a spring-forward gap.
///
/// Read with the offset in force before the gap, the slot names an instant
/// after the clocks jumped; read with the offset after the gap, an instant
/// before it. The jump lies between those two, so we search there rather
/// than assume the jump is an hour (on Lord Howe Island it is 30 minutes).
fn first_instant_reaching(tz: Tz, slot: NaiveDateTime) -> DateTime<Utc> {
    let reaches = |at: DateTime<Utc>| at.with_timezone(&tz).naive_local() >= slot;
    let offset_at = |at: DateTime<Utc>| {
        let seconds = at.with_timezone(&tz).offset().fix().local_minus_utc();
        TimeDelta::seconds(i64::from(seconds))
    };
    let as_if_utc = slot.and_utc();
    let mut early = as_if_utc - offset_at(as_if_utc + TimeDelta::days(1));
    let mut late = as_if_utc - offset_at(as_if_utc - TimeDelta::days(1));
    if reaches(early) || !reaches(late) {
        // Another change within a day of this one would spoil the window
        // above; no real offset is beyond -12 or +14 hours, so this one holds.
        early = as_if_utc - TimeDelta::hours(15);
        late = as_if_utc + TimeDelta::hours(15);
    }
    // `early` never reaches the slot and `late` always does.
    while late - early > TimeDelta::seconds(1) {
        let middle = early + TimeDelta::seconds((late - early).num_seconds() / 2);
        if reaches(middle) {
            late = middle;
        } else {
            early = middle;
        }
    }
    late
}

/// Translates a crontab day-of-week field into the `cron` crate's dialect.
///
/// crontab numbers days 0 to 7 from Sunday (0 and 7 both Sunday, 1 Monday);
/// the crate numbers them 1 to 7 from Sunday (1 Sunday, 2 Monday). Passing
/// numbers through would silently move every round by a day, so each item
/// that uses numbers becomes an explicit list of day names, which both read
/// the same way. Items written with names (`MON-FRI`, `Tue`) and a bare `*`
/// or `?` pass through untouched.
fn crate_weekdays(field: &str) -> Result<String, CadenceError> {
    let items = field
        .split(',')
        .map(crate_weekday_item)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(items.join(","))
}

fn crate_weekday_item(item: &str) -> Result<String, CadenceError> {
    let (base, step) = match item.split_once('/') {
        Some((base, step)) => (base, Some(step)),
        None => (item, None),
    };
    let is_any = base == "*" || base == "?";
    let uses_numbers = base.contains(|c: char| c.is_ascii_digit());
    if !uses_numbers && (step.is_none() || !is_any) {
        return Ok(item.to_string());
    }

    let unreadable = || {
        CadenceError::CronSyntax(format!(
            "day of the week \"{item}\" should use numbers from 0 to 7 (0 and 7 are Sunday), \
             ranges that run forward such as 1-5, or names such as MON"
        ))
    };
    let number = |text: &str| {
        text.parse::<usize>()
            .ok()
            .filter(|n| *n < CRONTAB_DAYS.len())
            .ok_or_else(unreadable)
    };
    let (first, last) = match base.split_once('-') {
        Some((first, last)) => (number(first)?, number(last)?),
        // `*/2` steps through the week from Sunday.
        None if is_any => (0, 6),
        // `1/2` steps from Monday to the end of the week (7, Sunday), as cronie reads it.
        None if step.is_some() => (number(base)?, 7),
        None => (number(base)?, number(base)?),
    };
    let step = match step {
        Some(step) => step
            .parse::<usize>()
            .ok()
            .filter(|step| *step > 0)
            .ok_or_else(unreadable)?,
        None => 1,
    };
    if first > last {
        return Err(unreadable());
    }
    let names: Vec<&str> = CRONTAB_DAYS
        .iter()
        .copied()
        .enumerate()
        .skip(first)
        .take(last - first + 1)
        .step_by(step)
        .map(|(_, name)| name)
        .collect();
    Ok(names.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().expect("a test instant in RFC 3339")
    }

    fn local(text: &str) -> NaiveDateTime {
        text.parse().expect("a test local date-time")
    }

    fn date(text: &str) -> NaiveDate {
        text.parse().expect("a test date")
    }

    fn at(hour: u32, minute: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(hour, minute, 0).expect("a test time")
    }

    fn zone(name: &str) -> Tz {
        parse_time_zone(name).expect("a known test zone")
    }

    fn daily(time: NaiveTime) -> Cadence {
        Cadence::weekly(&WEEK, time, 1, date("2027-01-04")).expect("a daily cadence")
    }

    fn cron(expression: &str) -> Cadence {
        Cadence::cron(expression).expect("an accepted cron expression")
    }

    fn slots_and_instants(rounds: &[Occurrence]) -> Vec<(NaiveDateTime, DateTime<Utc>)> {
        rounds.iter().map(|round| (round.slot, round.at)).collect()
    }

    fn weekdays(rounds: &[Occurrence]) -> Vec<Weekday> {
        rounds.iter().map(|round| round.slot.weekday()).collect()
    }

    #[test]
    fn a_slot_in_the_spring_forward_gap_runs_at_the_first_instant_after_it() {
        let new_york = zone("America/New_York");
        for cadence in [daily(at(2, 30)), cron("30 2 * * *")] {
            let rounds = cadence.upcoming(new_york, utc("2027-03-12T12:00:00Z"), 4);
            assert_eq!(
                slots_and_instants(&rounds),
                vec![
                    (local("2027-03-13T02:30:00"), utc("2027-03-13T07:30:00Z")),
                    // 02:30 does not exist that night: 03:00 EDT, slot unchanged.
                    (local("2027-03-14T02:30:00"), utc("2027-03-14T07:00:00Z")),
                    (local("2027-03-15T02:30:00"), utc("2027-03-15T06:30:00Z")),
                    (local("2027-03-16T02:30:00"), utc("2027-03-16T06:30:00Z")),
                ],
                "{}",
                cadence.describe()
            );
        }
    }

    #[test]
    fn a_slot_in_the_fall_back_fold_runs_once_at_the_earlier_instant() {
        let new_york = zone("America/New_York");
        for cadence in [daily(at(1, 30)), cron("30 1 * * *")] {
            let rounds = cadence.upcoming(new_york, utc("2027-11-05T12:00:00Z"), 3);
            assert_eq!(
                slots_and_instants(&rounds),
                vec![
                    (local("2027-11-06T01:30:00"), utc("2027-11-06T05:30:00Z")),
                    // 01:30 happens twice (05:30Z EDT, 06:30Z EST): only the first.
                    (local("2027-11-07T01:30:00"), utc("2027-11-07T05:30:00Z")),
                    (local("2027-11-08T01:30:00"), utc("2027-11-08T06:30:00Z")),
                ],
                "{}",
                cadence.describe()
            );
            // Asked again from inside the fold's second pass, it does not repeat.
            let next = cadence.next_after(new_york, utc("2027-11-07T06:10:00Z"));
            assert_eq!(
                next.map(|round| round.at),
                Some(utc("2027-11-08T06:30:00Z"))
            );
        }
    }

    #[test]
    fn half_hour_changes_on_lord_howe_island_follow_the_same_rule() {
        let lord_howe = zone("Australia/Lord_Howe");

        // 2027-04-04: at 02:00 (+11:00) clocks go back to 01:30 (+10:30).
        let rounds = daily(at(1, 45)).upcoming(lord_howe, utc("2027-04-02T00:00:00Z"), 3);
        assert_eq!(
            slots_and_instants(&rounds),
            vec![
                (local("2027-04-03T01:45:00"), utc("2027-04-02T14:45:00Z")),
                (local("2027-04-04T01:45:00"), utc("2027-04-03T14:45:00Z")),
                (local("2027-04-05T01:45:00"), utc("2027-04-04T15:15:00Z")),
            ]
        );

        // 2027-10-03: at 02:00 (+10:30) clocks jump to 02:30 (+11:00).
        let rounds = daily(at(2, 15)).upcoming(lord_howe, utc("2027-10-01T00:00:00Z"), 3);
        assert_eq!(
            slots_and_instants(&rounds),
            vec![
                (local("2027-10-02T02:15:00"), utc("2027-10-01T15:45:00Z")),
                // 02:15 does not exist: 02:30 local, the first valid instant.
                (local("2027-10-03T02:15:00"), utc("2027-10-02T15:30:00Z")),
                (local("2027-10-04T02:15:00"), utc("2027-10-03T15:15:00Z")),
            ]
        );
    }

    #[test]
    fn a_whole_skipped_day_still_runs_at_the_first_instant_after_it() {
        // Samoa skipped 30 December 2011: 29 December 23:59:59 (-10:00) was
        // followed by 31 December 00:00 (+14:00), so a gap is not always an hour.
        let rounds = daily(at(9, 0)).upcoming(zone("Pacific/Apia"), utc("2011-12-29T00:00:00Z"), 3);
        assert_eq!(
            slots_and_instants(&rounds),
            vec![
                (local("2011-12-29T09:00:00"), utc("2011-12-29T19:00:00Z")),
                (local("2011-12-30T09:00:00"), utc("2011-12-30T10:00:00Z")),
                (local("2011-12-31T09:00:00"), utc("2011-12-30T19:00:00Z")),
            ]
        );
    }

    #[test]
    fn an_hourly_cron_across_the_gap_runs_once_when_two_slots_land_together() {
        // 02:00 and 03:00 both land on 03:00 EDT; the round runs once, as 02:00.
        let rounds =
            cron("0 * * * *").upcoming(zone("America/New_York"), utc("2027-03-14T05:30:00Z"), 3);
        assert_eq!(
            slots_and_instants(&rounds),
            vec![
                (local("2027-03-14T01:00:00"), utc("2027-03-14T06:00:00Z")),
                (local("2027-03-14T02:00:00"), utc("2027-03-14T07:00:00Z")),
                (local("2027-03-14T04:00:00"), utc("2027-03-14T08:00:00Z")),
            ]
        );
    }

    #[test]
    fn monthly_on_the_31st_uses_the_last_day_of_shorter_months() {
        let cadence = Cadence::monthly(31, at(9, 0)).expect("day 31 is allowed");
        let rounds = cadence.upcoming(zone("America/Toronto"), utc("2027-01-15T00:00:00Z"), 4);
        assert_eq!(
            slots_and_instants(&rounds),
            vec![
                (local("2027-01-31T09:00:00"), utc("2027-01-31T14:00:00Z")),
                (local("2027-02-28T09:00:00"), utc("2027-02-28T14:00:00Z")),
                (local("2027-03-31T09:00:00"), utc("2027-03-31T13:00:00Z")),
                (local("2027-04-30T09:00:00"), utc("2027-04-30T13:00:00Z")),
            ]
        );
    }

    #[test]
    fn crontab_and_six_field_mondays_both_run_on_monday_mornings_in_toronto() {
        let expected = vec![
            (local("2027-03-01T09:00:00"), utc("2027-03-01T14:00:00Z")),
            (local("2027-03-08T09:00:00"), utc("2027-03-08T14:00:00Z")),
            (local("2027-03-15T09:00:00"), utc("2027-03-15T13:00:00Z")),
        ];
        for expression in ["0 9 * * 1", "0 0 9 * * Mon", "0 0 9 * * 1", "0 9 * * MON"] {
            let rounds =
                cron(expression).upcoming(zone("America/Toronto"), utc("2027-02-28T12:00:00Z"), 3);
            assert_eq!(slots_and_instants(&rounds), expected, "{expression}");
        }
    }

    #[test]
    fn day_of_week_numbers_mean_what_they_mean_in_crontab() {
        use Weekday::{Fri, Mon, Sat, Sun, Thu, Tue, Wed};
        let toronto = zone("America/Toronto");
        // Sunday evening in Toronto.
        let from = utc("2027-03-08T00:00:00Z");
        let days_of =
            |expression: &str, n: usize| weekdays(&cron(expression).upcoming(toronto, from, n));

        for sunday in ["0 9 * * 0", "0 9 * * 7", "0 0 9 * * 0", "0 9 * * SUN"] {
            let rounds = cron(sunday).upcoming(toronto, from, 2);
            assert_eq!(
                rounds.iter().map(|round| round.slot).collect::<Vec<_>>(),
                vec![local("2027-03-14T09:00:00"), local("2027-03-21T09:00:00")],
                "{sunday}"
            );
        }
        assert_eq!(
            days_of("0 9 * * 1-5", 10),
            vec![Mon, Tue, Wed, Thu, Fri, Mon, Tue, Wed, Thu, Fri]
        );
        assert_eq!(days_of("0 9 * * 1,3,5", 3), vec![Mon, Wed, Fri]);
        assert_eq!(days_of("0 9 * * 5-7", 3), vec![Fri, Sat, Sun]);
        assert_eq!(days_of("0 9 * * */2", 4), vec![Tue, Thu, Sat, Sun]);
        assert_eq!(days_of("0 9 * * 1-5/2", 3), vec![Mon, Wed, Fri]);
        assert_eq!(days_of("0 0 9 * * 6,Sun", 2), vec![Sat, Sun]);
        assert_eq!(days_of("0 9 * * Tue-Thu", 3), vec![Tue, Wed, Thu]);
    }

    #[test]
    fn every_two_weeks_skips_the_weeks_between() {
        // Anchored on a Wednesday: weeks count from Monday 2027-03-01.
        let cadence = Cadence::weekly(&[Weekday::Mon], at(9, 0), 2, date("2027-03-03"))
            .expect("a fortnightly cadence");
        let rounds = cadence.upcoming(chrono_tz::UTC, utc("2027-02-20T00:00:00Z"), 3);
        assert_eq!(
            slots_and_instants(&rounds),
            vec![
                (local("2027-03-01T09:00:00"), utc("2027-03-01T09:00:00Z")),
                (local("2027-03-15T09:00:00"), utc("2027-03-15T09:00:00Z")),
                (local("2027-03-29T09:00:00"), utc("2027-03-29T09:00:00Z")),
            ]
        );
    }

    #[test]
    fn next_after_is_strictly_after() {
        let cadence = daily(at(9, 0));
        let next = cadence.next_after(chrono_tz::UTC, utc("2027-03-01T09:00:00Z"));
        assert_eq!(
            next.map(|round| round.at),
            Some(utc("2027-03-02T09:00:00Z"))
        );
    }

    #[test]
    fn cron_that_fires_more_than_hourly_is_refused() {
        for expression in [
            "*/30 * * * *",
            "* * * * * *",
            "0,30 9 * * *",
            "*/10 0 9 * * *",
        ] {
            assert_eq!(
                Cadence::cron(expression),
                Err(CadenceError::TooFrequent),
                "{expression}"
            );
        }
        // Hourly itself, and several hours a day, are fine.
        assert!(Cadence::cron("0 * * * *").is_ok());
        assert!(Cadence::cron("0 9,10 * * 1").is_ok());
        assert!(Cadence::cron("@hourly").is_ok());
    }

    #[test]
    fn cron_that_never_fires_is_refused() {
        for expression in [
            "0 9 31 2 *",
            "0 9 30 2 *",
            "0 9 31 4 *",
            "0 0 9 29 2 * 2027",
        ] {
            assert_eq!(
                Cadence::cron(expression),
                Err(CadenceError::NeverFires),
                "{expression}"
            );
        }
        // Rare is not never: 29 February on a Monday comes round again in 2044.
        assert!(Cadence::cron("0 9 29 2 1").is_ok());
    }

    #[test]
    fn a_cron_whose_years_have_passed_is_refused_when_saved() {
        let now = utc("2027-03-01T00:00:00Z");
        let toronto = zone("America/Toronto");
        let past = cron("0 0 9 1 1 * 2001");
        assert_eq!(
            past.first_after(toronto, now),
            Err(CadenceError::NeverFires)
        );
        assert_eq!(past.next_after(toronto, now), None);

        let future = cron("0 0 9 1 1 * 2030");
        assert_eq!(
            future.first_after(toronto, now).map(|round| round.at),
            Ok(utc("2030-01-01T14:00:00Z"))
        );
    }

    #[test]
    fn unreadable_cron_is_refused_with_a_reason() {
        assert_eq!(
            Cadence::cron("0 9 * * funday"),
            Err(CadenceError::CronSyntax(
                "'funday' is not a valid day of the week.".to_string()
            ))
        );
        assert_eq!(
            Cadence::cron("0 9 * *"),
            Err(CadenceError::CronFieldCount(4))
        );
        assert_eq!(
            Cadence::cron("every monday please"),
            Err(CadenceError::CronFieldCount(3))
        );
        assert_eq!(Cadence::cron("   "), Err(CadenceError::CronFieldCount(0)));
        assert_eq!(
            Cadence::cron("0 0 9 * * * 2030 x"),
            Err(CadenceError::CronFieldCount(8))
        );
        for garbage in [
            "0 9 * * funday",
            "a b c d e",
            "0 9 * * 8",
            "0 9 * * 5-1",
            "0 25 * * *",
        ] {
            assert!(
                matches!(Cadence::cron(garbage), Err(CadenceError::CronSyntax(_))),
                "{garbage}: {:?}",
                Cadence::cron(garbage)
            );
        }
    }

    #[test]
    fn weekly_and_monthly_refuse_what_they_cannot_keep() {
        let monday = date("2027-03-01");
        assert_eq!(
            Cadence::weekly(&[], at(9, 0), 1, monday),
            Err(CadenceError::NoDays)
        );
        for every in [0, 5] {
            assert_eq!(
                Cadence::weekly(&[Weekday::Mon], at(9, 0), every, monday),
                Err(CadenceError::EveryWeeksOutOfRange(every))
            );
        }
        let with_seconds = NaiveTime::from_hms_opt(9, 0, 30).expect("a test time");
        assert_eq!(
            Cadence::weekly(&[Weekday::Mon], with_seconds, 1, monday),
            Err(CadenceError::BadTime)
        );
        for day in [0, 32] {
            assert_eq!(
                Cadence::monthly(day, at(9, 0)),
                Err(CadenceError::DayOutOfRange(day))
            );
        }
    }

    #[test]
    fn time_zones_are_iana_names() {
        assert_eq!(
            parse_time_zone("America/Toronto"),
            Ok(chrono_tz::America::Toronto)
        );
        assert_eq!(
            parse_time_zone(" Europe/Berlin "),
            Ok(chrono_tz::Europe::Berlin)
        );
        assert_eq!(
            parse_time_zone("Mars/Olympus"),
            Err(CadenceError::UnknownTimeZone("Mars/Olympus".to_string()))
        );
    }

    #[test]
    fn every_kind_reads_back_from_its_canonical_text() {
        let cases = [
            (
                Cadence::weekly(
                    &[Weekday::Thu, Weekday::Mon, Weekday::Thu],
                    at(9, 0),
                    2,
                    date("2027-03-03"),
                ),
                "weekly mon,thu 09:00 every 2 from 2027-03-01",
            ),
            (Cadence::monthly(31, at(9, 0)), "monthly 31 09:00"),
            (Cadence::cron("  0 9 *  * 1 "), "cron 0 9 * * 1"),
            (
                Cadence::cron("0 0 9 * * Mon 2030"),
                "cron 0 0 9 * * Mon 2030",
            ),
            (Cadence::cron("@weekly"), "cron @weekly"),
        ];
        for (cadence, canonical) in cases {
            let cadence = cadence.expect("a valid cadence");
            assert_eq!(cadence.to_canonical(), canonical);
            assert_eq!(Cadence::parse(&cadence.to_canonical()), Ok(cadence));
        }
    }

    #[test]
    fn stored_text_of_the_wrong_shape_is_unreadable() {
        for text in [
            "",
            "weekly",
            "fortnightly mon 09:00",
            "weekly mon 9am every 1 from 2027-03-01",
            "weekly mon,funday 09:00 every 1 from 2027-03-01",
            "weekly mon 09:00 every one from 2027-03-01",
            "monthly thirty 09:00",
            "monthly 31 09:00 extra",
        ] {
            assert_eq!(
                Cadence::parse(text),
                Err(CadenceError::Unreadable(text.to_string())),
                "{text}"
            );
        }
        // The right shape with a value out of range says which value.
        assert_eq!(
            Cadence::parse("monthly 32 09:00"),
            Err(CadenceError::DayOutOfRange(32))
        );
    }

    #[test]
    fn descriptions_read_as_plain_english() {
        let monday = date("2027-03-01");
        let cases = [
            (
                Cadence::weekly(&[Weekday::Mon, Weekday::Thu], at(9, 0), 1, monday),
                "Every Monday and Thursday at 09:00",
            ),
            (
                Cadence::weekly(&[Weekday::Mon], at(9, 0), 2, monday),
                "Every 2 weeks on Monday at 09:00",
            ),
            (
                Cadence::weekly(
                    &[Weekday::Mon, Weekday::Wed, Weekday::Fri],
                    at(18, 30),
                    1,
                    monday,
                ),
                "Every Monday, Wednesday and Friday at 18:30",
            ),
            (
                Cadence::weekly(&WEEK, at(7, 0), 1, monday),
                "Every day at 07:00",
            ),
            (
                Cadence::monthly(31, at(9, 0)),
                "On day 31 of every month at 09:00 (the last day in shorter months)",
            ),
            (
                Cadence::monthly(1, at(9, 0)),
                "On day 1 of every month at 09:00",
            ),
            (Cadence::cron("0 9 * * 1"), "Cron: 0 9 * * 1"),
        ];
        for (cadence, description) in cases {
            assert_eq!(cadence.expect("a valid cadence").describe(), description);
        }
    }
}
