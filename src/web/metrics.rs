//! Prometheus text for `/metrics`: request counts and a latency histogram per
//! route, the database pool's state, and the outbox (emails sent, retried and
//! failed by the background passes, and the queue's depth). Kept by hand: a few
//! counters do not need a metrics framework.
//!
//! Routes are labelled by their pattern (`/join/{token}`), never the raw path,
//! so the label set stays small and no token reaches the metrics.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::app::AppState;
use crate::mail::outbox::{self, DeliveryReport};

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

#[derive(Debug, Default)]
pub struct Metrics {
    routes: Mutex<BTreeMap<String, RouteStats>>,
    emails_sent: AtomicU64,
    emails_retried: AtomicU64,
    emails_failed: AtomicU64,
    rounds_opened: AtomicU64,
}

#[derive(Debug, Default)]
struct RouteStats {
    /// Requests by (method, status).
    counts: BTreeMap<(String, u16), u64>,
    /// Cumulative counts per bucket, in the order of `BUCKETS`.
    buckets: [u64; BUCKETS.len()],
    sum_seconds: f64,
    count: u64,
}

impl Metrics {
    pub fn record(&self, route: &str, method: &str, status: u16, seconds: f64) {
        let mut routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        let stats = routes.entry(route.to_string()).or_default();
        *stats
            .counts
            .entry((method.to_string(), status))
            .or_default() += 1;
        for (bucket, bound) in stats.buckets.iter_mut().zip(BUCKETS) {
            if seconds <= bound {
                *bucket += 1;
            }
        }
        stats.sum_seconds += seconds;
        stats.count += 1;
    }

    /// Adds one delivery pass's outcomes to the email counters.
    pub fn record_deliveries(&self, report: &DeliveryReport) {
        for (counter, count) in [
            (&self.emails_sent, report.sent),
            (&self.emails_retried, report.retried),
            (&self.emails_failed, report.failed),
        ] {
            counter.fetch_add(count as u64, Ordering::Relaxed);
        }
    }

    pub fn record_rounds_opened(&self, opened: usize) {
        self.rounds_opened
            .fetch_add(opened as u64, Ordering::Relaxed);
    }

    /// The metrics text. `queue_depth` is left out when it could not be read.
    pub fn render(&self, pool: crate::db::PoolState, queue_depth: Option<i64>) -> String {
        let routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::new();
        out.push_str("# HELP shoulder_http_requests_total HTTP requests answered, by route, method and status.\n");
        out.push_str("# TYPE shoulder_http_requests_total counter\n");
        for (route, stats) in routes.iter() {
            for ((method, status), count) in &stats.counts {
                let _ = writeln!(
                    out,
                    "shoulder_http_requests_total{{route=\"{}\",method=\"{}\",status=\"{status}\"}} {count}",
                    escape(route),
                    escape(method)
                );
            }
        }
        out.push_str(
            "# HELP shoulder_http_request_duration_seconds Time to answer a request, by route.\n",
        );
        out.push_str("# TYPE shoulder_http_request_duration_seconds histogram\n");
        for (route, stats) in routes.iter() {
            let route = escape(route);
            for (bound, count) in BUCKETS.iter().zip(stats.buckets) {
                let _ = writeln!(
                    out,
                    "shoulder_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "shoulder_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                stats.count
            );
            let _ = writeln!(
                out,
                "shoulder_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                stats.sum_seconds
            );
            let _ = writeln!(
                out,
                "shoulder_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                stats.count
            );
        }
        out.push_str("# HELP shoulder_db_pool_connections Database connections, open and idle.\n");
        out.push_str("# TYPE shoulder_db_pool_connections gauge\n");
        let _ = writeln!(
            out,
            "shoulder_db_pool_connections{{state=\"open\"}} {}",
            pool.size
        );
        let _ = writeln!(
            out,
            "shoulder_db_pool_connections{{state=\"idle\"}} {}",
            pool.idle
        );
        out.push_str("# HELP shoulder_db_pool_max_connections The pool's configured size.\n");
        out.push_str("# TYPE shoulder_db_pool_max_connections gauge\n");
        let _ = writeln!(out, "shoulder_db_pool_max_connections {}", pool.max_size);
        for (name, help, counter) in [
            (
                "shoulder_emails_sent_total",
                "Emails the mail server accepted.",
                &self.emails_sent,
            ),
            (
                "shoulder_emails_retried_total",
                "Email attempts refused for now and scheduled again.",
                &self.emails_retried,
            ),
            (
                "shoulder_emails_failed_total",
                "Emails given up for good.",
                &self.emails_failed,
            ),
            (
                "shoulder_rounds_opened_total",
                "Rounds opened by this instance.",
                &self.rounds_opened,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} counter");
            let _ = writeln!(out, "{name} {}", counter.load(Ordering::Relaxed));
        }
        if let Some(depth) = queue_depth {
            out.push_str(
                "# HELP shoulder_email_queue_depth Emails waiting to be sent or being sent.\n",
            );
            out.push_str("# TYPE shoulder_email_queue_depth gauge\n");
            let _ = writeln!(out, "shoulder_email_queue_depth {depth}");
        }
        out
    }
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Middleware: times each request and counts it under its route pattern.
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let method = request.method().as_str().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    state.metrics.record(
        &route,
        &method,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    // A database that does not answer should not cost the other metrics.
    let queue_depth = match state.db.run(outbox::queue_depth).await {
        Ok(depth) => Some(depth),
        Err(error) => {
            tracing::warn!(error = %error, "cannot read the email queue's depth");
            None
        }
    };
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        state.metrics.render(state.db.state(), queue_depth),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::PoolState;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let metrics = Metrics::default();
        metrics.record("/healthz", "GET", 200, 0.0005);
        metrics.record("/healthz", "GET", 200, 0.02);
        metrics.record("/healthz", "GET", 503, 7.0);
        let text = metrics.render(
            PoolState {
                size: 2,
                max_size: 8,
                idle: 1,
            },
            None,
        );
        assert!(
            text.contains(
                "shoulder_http_requests_total{route=\"/healthz\",method=\"GET\",status=\"200\"} 2"
            ),
            "{text}"
        );
        assert!(text.contains(
            "shoulder_http_requests_total{route=\"/healthz\",method=\"GET\",status=\"503\"} 1"
        ));
        assert!(text.contains(
            "shoulder_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"0.001\"} 1"
        ));
        assert!(text.contains(
            "shoulder_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"0.025\"} 2"
        ));
        assert!(text.contains(
            "shoulder_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"5\"} 2"
        ));
        assert!(text.contains(
            "shoulder_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"+Inf\"} 3"
        ));
        assert!(
            text.contains("shoulder_http_request_duration_seconds_count{route=\"/healthz\"} 3")
        );
        assert!(text.contains("shoulder_db_pool_max_connections 8"));
        assert!(!text.contains("shoulder_email_queue_depth"), "{text}");
    }

    #[test]
    fn email_counters_add_up_across_passes() {
        let metrics = Metrics::default();
        let pass = DeliveryReport {
            sent: 3,
            retried: 1,
            failed: 2,
            lost_leases: 1,
        };
        metrics.record_deliveries(&pass);
        metrics.record_deliveries(&pass);
        let pool = PoolState {
            size: 1,
            max_size: 1,
            idle: 1,
        };
        let text = metrics.render(pool, Some(5));
        for line in [
            "shoulder_emails_sent_total 6",
            "shoulder_emails_retried_total 2",
            "shoulder_emails_failed_total 4",
            "# TYPE shoulder_email_queue_depth gauge",
            "shoulder_email_queue_depth 5",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
    }
}
