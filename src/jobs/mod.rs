//! Background work that runs inside `serve` every `scheduler.interval_secs`.
//!
//! Every job takes "now" from the clock and is safe to run twice, or on two
//! instances at once: it changes rows with conditional statements, never
//! with a read followed by a write.

pub mod cleanup;

use std::time::Duration;

use tokio::sync::watch;

use crate::app::AppState;
use crate::db::DbError;
use crate::mail::outbox::{self, DeliveryReport, OutboxSettings};

/// What one pass did, for logs and the CLI.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PassReport {
    pub cleanup: cleanup::CleanupReport,
    pub delivery: DeliveryReport,
}

/// One pass of every job, as if at the clock's current instant.
pub async fn run_once(state: &AppState) -> Result<PassReport, DbError> {
    let now = state.clock.now().naive_utc();
    let cleanup = state.db.run(move |conn| cleanup::run(conn, now)).await?;
    let settings = OutboxSettings::from_config(&state.config.mail);
    let delivery =
        outbox::deliver_due(&state.db, &state.mailer, state.clock.now(), &settings).await?;
    state.metrics.record_deliveries(&delivery);
    Ok(PassReport { cleanup, delivery })
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
