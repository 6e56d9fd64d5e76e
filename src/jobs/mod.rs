//! Background work that runs inside `serve` every `scheduler.interval_secs`.
//!
//! Every job takes "now" from the clock and is safe to run twice, or on two
//! instances at once: it changes rows with conditional statements, never
//! with a read followed by a write.

pub mod cleanup;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::app::AppState;
use crate::db::{Backend, DbError};
use crate::mail::outbox::{self, DeliveryReport, OutboxSettings};
use crate::rounds::open::{Context, OpenError};
use crate::rounds::uptime::Uptime;
use crate::rounds::{RoundReport, RoundSettings, lifecycle, open};

/// What one pass did, for logs and the CLI.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PassReport {
    pub cleanup: cleanup::CleanupReport,
    pub rounds: RoundReport,
    pub delivery: DeliveryReport,
}

/// Options for one pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PassOptions {
    /// Send what is due; `shoulder tick --no-deliver` leaves it queued.
    pub deliver: bool,
}

impl Default for PassOptions {
    fn default() -> Self {
        PassOptions { deliver: true }
    }
}

/// One pass of every job, as if at the clock's current instant.
pub async fn run_once(state: &AppState) -> Result<PassReport, OpenError> {
    run_with(state, PassOptions::default()).await
}

pub async fn run_with(state: &AppState, options: PassOptions) -> Result<PassReport, OpenError> {
    let (cleanup, rounds) = run_rounds(state, None).await?;
    let delivery = if options.deliver {
        deliver(state, None).await?
    } else {
        DeliveryReport::default()
    };
    Ok(PassReport {
        cleanup,
        rounds,
        delivery,
    })
}

/// Clean-up, then rounds: opening, reminding, closing. Ends early, between
/// batches, once `stop` turns true.
async fn run_rounds(
    state: &AppState,
    stop: Option<&watch::Receiver<bool>>,
) -> Result<(cleanup::CleanupReport, RoundReport), OpenError> {
    let now = state.clock.now();
    let at = now.naive_utc();
    let cleanup = state
        .db
        .run(move |conn| cleanup::run(conn, at))
        .await
        .map_err(OpenError::from)?;
    let rounds = open_rounds(state, now, stop).await?;
    state.metrics.record_rounds_opened(rounds.opened.len());
    Ok((cleanup, rounds))
}

/// Sends what the outbox holds that is due, claiming no more once `stop`
/// turns true.
async fn deliver(
    state: &AppState,
    stop: Option<&watch::Receiver<bool>>,
) -> Result<DeliveryReport, OpenError> {
    let settings = OutboxSettings::from_config(&state.config.mail);
    let now = state.clock.now();
    let delivery = outbox::deliver_due(&state.db, &state.mailer, now, &settings, stop.cloned())
        .await
        .map_err(OpenError::from)?;
    state.metrics.record_deliveries(&delivery);
    Ok(delivery)
}

/// Openers working side by side on PostgreSQL. Its every connection is a
/// process of its own, so while one opener's batch is with the database,
/// another's can be built or written too; `SKIP LOCKED` gives them
/// different circles. SQLite has one writer at a time, so it gets one.
const OPENERS_ON_POSTGRES: u32 = 2;

/// Opens everything due, then sends reminders and closes rounds.
///
/// Each opener goes on, one transaction of circles after another, until
/// nothing is due (or the server is stopping): a slot thousands of circles
/// share opens in one pass, judged against the one instant the pass
/// started at. The pass first records that a scheduler is running
/// (`rounds::uptime`), so a round that waits behind others, in this pass
/// or across a restart, is never taken for one missed in downtime. Pages
/// and check-ins are served meanwhile on the pool's other connections, and
/// their writes get in between the openers' transactions.
async fn open_rounds(
    state: &AppState,
    now: DateTime<Utc>,
    stop: Option<&watch::Receiver<bool>>,
) -> Result<RoundReport, OpenError> {
    let stopping = || stop.is_some_and(|stop| *stop.borrow());
    let openers = match state.db.backend() {
        Backend::Postgres => OPENERS_ON_POSTGRES.min(state.config.database.pool_size),
        Backend::Sqlite => 1,
    };
    let settings = RoundSettings::from_config(&state.config);
    let gap = Uptime::gap(state.config.scheduler.interval_secs);
    let uptime = state
        .db
        .run(move |conn| Uptime::record(conn, now, gap))
        .await
        .map_err(OpenError::from)?;
    let uptime = Arc::new(uptime);
    let mut openings = JoinSet::new();
    for _ in 0..openers {
        let (db, decks, settings, uptime) = (
            state.db.clone(),
            state.decks.clone(),
            settings.clone(),
            uptime.clone(),
        );
        let stop = stop.cloned();
        openings.spawn(async move {
            db.run(move |conn| {
                let context = Context {
                    settings: &settings,
                    decks: &decks,
                    uptime: &uptime,
                };
                let stopping = || stop.as_ref().is_some_and(|stop| *stop.borrow());
                let mut report = RoundReport::default();
                open::open_due(conn, &context, now, &mut report, &stopping)?;
                Ok::<_, OpenError>(report)
            })
            .await
        });
    }
    let mut rounds = RoundReport::default();
    while let Some(opened) = openings.join_next().await {
        let opened = opened.map_err(|e| OpenError::Db(DbError::Task(e.to_string())))??;
        rounds.opened.extend(opened.opened);
        rounds.skipped += opened.skipped;
        rounds.paused.extend(opened.paused);
    }
    if stopping() {
        return Ok(rounds);
    }
    // Reminders and closings, `batch_size` rounds at a time, each share on
    // a connection taken afresh.
    loop {
        let settings = settings.clone();
        let (more_due, advanced) = state
            .db
            .run(move |conn| {
                let mut advanced = RoundReport::default();
                let more_due = lifecycle::advance(conn, &settings, now, &mut advanced)?;
                Ok::<_, OpenError>((more_due, advanced))
            })
            .await?;
        rounds.reminded += advanced.reminded;
        rounds.closed += advanced.closed;
        if !more_due || stopping() {
            return Ok(rounds);
        }
    }
}

/// Runs the background jobs until `stop` turns true: rounds when the next
/// is due and at least every `scheduler.interval_secs`; the outbox every
/// interval too, as soon as rounds queued mail, and whenever a request
/// wakes it. The two run apart, so a slot's rounds never wait for the
/// previous slot's emails to be sent. A failed pass is logged and the next
/// one tries again; nothing here can stop the web server.
pub async fn run_scheduler(state: AppState, stop: watch::Receiver<bool>) {
    let rounds = tokio::spawn(rounds_loop(state.clone(), stop.clone()));
    delivery_loop(state, stop).await;
    if let Err(error) = rounds.await {
        tracing::warn!(error = %error, "the rounds scheduler stopped");
    }
}

/// Passes of the rounds jobs: one at start, then one every interval, or as
/// soon as the next round is due if that is sooner, so that a round opens
/// at its time rather than up to an interval after it.
async fn rounds_loop(state: AppState, mut stop: watch::Receiver<bool>) {
    let period = Duration::from_secs(state.config.scheduler.interval_secs);
    let mut wait = Duration::ZERO;
    loop {
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    break;
                }
                continue;
            }
        }
        match run_rounds(&state, Some(&stop)).await {
            Ok((cleanup, rounds)) => {
                if rounds != RoundReport::default() {
                    state.wake_jobs();
                }
                if cleanup != cleanup::CleanupReport::default() || rounds != RoundReport::default()
                {
                    // Counts: a large opening's list of rounds would make
                    // one log line of hundreds of kilobytes.
                    tracing::info!(
                        ?cleanup,
                        opened = rounds.opened.len(),
                        skipped = rounds.skipped,
                        paused = rounds.paused.len(),
                        reminded = rounds.reminded,
                        closed = rounds.closed,
                        "rounds pass"
                    );
                }
            }
            Err(error) => tracing::warn!(error = %error, "rounds pass failed"),
        }
        wait = until_next_due(&state)
            .await
            .clamp(SOONEST_NEXT_PASS, period);
    }
}

/// The shortest wait between two passes, so that a round due but held
/// elsewhere (another instance opening it) is not asked for in a spin.
const SOONEST_NEXT_PASS: Duration = Duration::from_secs(1);

/// How long until the next round is due to open by the clock: zero when
/// one is due already, and as long as can be when none is scheduled or the
/// database cannot say (the pass that failed has logged why).
async fn until_next_due(state: &AppState) -> Duration {
    match state.db.run(open::next_due).await {
        Ok(Some(at)) => (at.and_utc() - state.clock.now())
            .to_std()
            .unwrap_or(Duration::ZERO),
        Ok(None) | Err(_) => Duration::MAX,
    }
}

/// Passes of the outbox: one at start, then every interval, and whenever
/// woken (`AppState::wake_jobs`).
async fn delivery_loop(state: AppState, mut stop: watch::Receiver<bool>) {
    let period = Duration::from_secs(state.config.scheduler.interval_secs);
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let waker = state.jobs_waker.clone();
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = waker.notified() => {}
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    break;
                }
                continue;
            }
        }
        match deliver(&state, Some(&stop)).await {
            Ok(delivery) if delivery != DeliveryReport::default() => {
                tracing::info!(?delivery, "delivery pass");
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(error = %error, "delivery pass failed"),
        }
    }
}
