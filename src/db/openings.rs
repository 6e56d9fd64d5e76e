//! Connections open or being opened, counted across every pool of the
//! process, so that a command ends only once none is left.
//!
//! r2d2 opens connections on threads of its own, and a pool dropped while
//! one of them is still opening is dropped on that thread, closing its
//! connections there. A process that exits meanwhile runs OpenSSL's
//! exit-time clean-up under a thread still inside libpq's TLS code, and
//! dies with SIGSEGV after its work is done, which cron and systemd read as
//! failure. So every connection carries an [`Open`] from the moment it
//! starts opening until it is closed, and [`close_connections`] waits for
//! the count to reach zero.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

struct Count {
    open: usize,
    closing: bool,
}

static COUNT: Mutex<Count> = Mutex::new(Count {
    open: 0,
    closing: false,
});
static ALL_CLOSED: Condvar = Condvar::new();

fn count() -> MutexGuard<'static, Count> {
    COUNT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Held by a connection from before it starts opening until after it is
/// closed: declared after the connection in a struct, it drops after it.
#[derive(Debug)]
pub struct Open(());

impl Open {
    /// `None` once the process is closing: no connection starts then.
    pub fn begin() -> Option<Open> {
        let mut count = count();
        if count.closing {
            return None;
        }
        count.open += 1;
        Some(Open(()))
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        let mut count = count();
        count.open -= 1;
        if count.open == 0 {
            ALL_CLOSED.notify_all();
        }
    }
}

/// Refuses new connections from now on and waits, up to `limit`, until
/// every connection of the process is closed, which happens as the pools
/// holding them are dropped. Says whether they all were.
pub fn close_connections(limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    let mut count = count();
    count.closing = true;
    while count.open > 0 {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        count = match ALL_CLOSED.wait_timeout(count, left) {
            Ok((count, _)) => count,
            Err(poisoned) => poisoned.into_inner().0,
        };
    }
    true
}
