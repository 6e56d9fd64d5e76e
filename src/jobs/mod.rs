//! Background work that runs inside `serve` every `scheduler.interval_secs`.
//!
//! Every job takes "now" from the clock and is safe to run twice, or on two
//! instances at once: it changes rows with conditional statements, never
//! with a read followed by a write.

pub mod cleanup;

use std::time::Duration;

use tokio::sync::watch;

use crate::app::AppState;
use crate::mail::outbox::{self, DeliveryReport, OutboxSettings};
use crate::rounds::open::{Context, OpenError};
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
    let now = state.clock.now();
    let at = now.naive_utc();
    let cleanup = state
        .db
        .run(move |conn| cleanup::run(conn, at))
        .await
        .map_err(OpenError::from)?;
    let worker = state.clone();
    let rounds = state
        .db
        .run(move |conn| {
            let settings = RoundSettings::from_config(&worker.config);
            let context = Context {
                settings: &settings,
                decks: &worker.decks,
            };
            let mut report = RoundReport::default();
            open::open_due(conn, &context, now, &mut report)?;
            lifecycle::advance(conn, &settings, now, &mut report)?;
            Ok::<_, OpenError>(report)
        })
        .await?;
    state.metrics.record_rounds_opened(rounds.opened.len());
    let delivery = if options.deliver {
        let settings = OutboxSettings::from_config(&state.config.mail);
        let delivery = outbox::deliver_due(&state.db, &state.mailer, state.clock.now(), &settings)
            .await
            .map_err(OpenError::from)?;
        state.metrics.record_deliveries(&delivery);
        delivery
    } else {
        DeliveryReport::default()
    };
    Ok(PassReport {
        cleanup,
        rounds,
        delivery,
    })
}

/// Runs passes until `stop` turns true. A failed pass is logged and the
/// next one tries again; nothing here can stop the web server.
pub async fn run_scheduler(state: AppState, mut stop: watch::Receiver<bool>) {
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
        match run_once(&state).await {
            Ok(report) if report != PassReport::default() => {
                tracing::info!(?report, "background pass");
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(error = %error, "background pass failed"),
        }
    }
}
