//! Prometheus text for `/metrics`, kept by `prometheus-client`: requests and
//! their latency per route, the background passes' counts (emails sent,
//! retried, failed or lost to another worker; rounds opened), and, read at
//! each scrape, the database pool, the outbox's depth and the age of its
//! oldest email, and the process itself (see [`process`]).
//!
//! Every label value comes from a set fixed when the code is compiled, so
//! nothing a client sends can add a series: a method outside the standard
//! ones counts as `other`, a path no route matches as `unmatched`, a status
//! by its class. Routes are labelled by their pattern (`/join/{token}`),
//! never the raw path, so no token reaches the metrics either.
//!
//! A new counter with a label: write an enum of its values, implement
//! [`ClosedLabel`] for it, add a [`CounterBy`] field to [`Metrics`],
//! register it in [`Metrics::new`], and give it a `record_*` method.
//!
//! Operators may keep `/metrics` off the public port (`server.metrics_bind`,
//! served by [`router`] on a listener of its own) and behind a bearer token
//! (`server.metrics_token`).

pub mod process;

use std::fmt;
use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabel, EncodeLabelSet, EncodeMetric, LabelSetEncoder, prometheus_text,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::inbound::receive::Received;
use tower_http::timeout::TimeoutLayer;

use super::limits::Limited;
use crate::app::AppState;
use crate::db::PoolState;
use crate::mail::outbox::{self, DeliveryReport, QueueState};

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// The route label of a request no route matched.
const UNMATCHED: &str = "unmatched";

/// A label whose every value is known when the code is compiled, so the
/// series it makes are bounded whatever happens at run time.
pub trait ClosedLabel: Copy + Eq + Hash + fmt::Debug + Send + Sync + 'static {
    /// The label's name, as in `method="GET"`.
    const NAME: &'static str;
    fn as_str(self) -> &'static str;
}

/// The label set of a metric with one closed label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct By<L>(pub L);

impl<L: ClosedLabel> EncodeLabelSet for By<L> {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> fmt::Result {
        (L::NAME, self.0.as_str()).encode(encoder.encode_label())
    }
}

/// A counter per value of one closed label.
pub type CounterBy<L> = Family<By<L>, Counter>;

/// The request methods counted by name; any other is `other`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HttpMethod {
    Get,
    Head,
    Post,
    Put,
    Delete,
    Patch,
    Options,
    Connect,
    Trace,
    Other,
}

impl HttpMethod {
    pub fn of(method: &Method) -> HttpMethod {
        match method.as_str() {
            "GET" => HttpMethod::Get,
            "HEAD" => HttpMethod::Head,
            "POST" => HttpMethod::Post,
            "PUT" => HttpMethod::Put,
            "DELETE" => HttpMethod::Delete,
            "PATCH" => HttpMethod::Patch,
            "OPTIONS" => HttpMethod::Options,
            "CONNECT" => HttpMethod::Connect,
            "TRACE" => HttpMethod::Trace,
            _ => HttpMethod::Other,
        }
    }
}

impl ClosedLabel for HttpMethod {
    const NAME: &'static str = "method";
    fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Head => "HEAD",
            HttpMethod::Post => "POST",
            HttpMethod::Put => "PUT",
            HttpMethod::Delete => "DELETE",
            HttpMethod::Patch => "PATCH",
            HttpMethod::Options => "OPTIONS",
            HttpMethod::Connect => "CONNECT",
            HttpMethod::Trace => "TRACE",
            HttpMethod::Other => "other",
        }
    }
}

/// A response status by its class: enough to tell errors from successes
/// without a series per code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StatusClass {
    Informational,
    Success,
    Redirection,
    ClientError,
    ServerError,
    /// 600 to 999, which `http` allows and nothing here sends.
    Other,
}

impl StatusClass {
    pub fn of(status: StatusCode) -> StatusClass {
        match status.as_u16() {
            100..=199 => StatusClass::Informational,
            200..=299 => StatusClass::Success,
            300..=399 => StatusClass::Redirection,
            400..=499 => StatusClass::ClientError,
            500..=599 => StatusClass::ServerError,
            _ => StatusClass::Other,
        }
    }
}

impl ClosedLabel for StatusClass {
    const NAME: &'static str = "status";
    fn as_str(self) -> &'static str {
        match self {
            StatusClass::Informational => "1xx",
            StatusClass::Success => "2xx",
            StatusClass::Redirection => "3xx",
            StatusClass::ClientError => "4xx",
            StatusClass::ServerError => "5xx",
            StatusClass::Other => "other",
        }
    }
}

/// A request's route pattern, as the router matched it. The patterns are
/// the router's own, a closed set; the pattern is shared, not copied, so
/// labelling a request allocates nothing.
#[derive(Clone, Debug)]
pub struct Route(Option<MatchedPath>);

impl Route {
    pub fn of(request: &Request) -> Route {
        Route(request.extensions().get::<MatchedPath>().cloned())
    }

    pub fn as_str(&self) -> &str {
        self.0.as_ref().map_or(UNMATCHED, MatchedPath::as_str)
    }
}

impl PartialEq for Route {
    fn eq(&self, other: &Route) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Route {}

impl Hash for Route {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct RequestLabels {
    route: Route,
    method: HttpMethod,
    status: StatusClass,
}

impl EncodeLabelSet for RequestLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> fmt::Result {
        ("route", self.route.as_str()).encode(encoder.encode_label())?;
        (HttpMethod::NAME, self.method.as_str()).encode(encoder.encode_label())?;
        (StatusClass::NAME, self.status.as_str()).encode(encoder.encode_label())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct RouteLabel {
    route: Route,
}

impl EncodeLabelSet for RouteLabel {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> fmt::Result {
        ("route", self.route.as_str()).encode(encoder.encode_label())
    }
}

fn latency_histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

/// What this process has counted since it started, and how to show it.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: Family<RouteLabel, Histogram, fn() -> Histogram>,
    emails_sent: Counter,
    emails_retried: Counter,
    emails_failed: Counter,
    email_leases_lost: Counter,
    rounds_opened: Counter,
    limits_reached: CounterBy<Limited>,
    inbound: CounterBy<Received>,
}

impl ClosedLabel for Received {
    const NAME: &'static str = "outcome";

    fn as_str(self) -> &'static str {
        Received::as_str(self)
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "shoulder_http_requests",
            "HTTP requests answered, by route, method and status class",
            requests.clone(),
        );
        let durations = Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        registry.register(
            "shoulder_http_request_duration_seconds",
            "Time to answer a request, by route",
            durations.clone(),
        );
        let mut counter = |name: &str, help: &str| {
            let counter = Counter::default();
            registry.register(name, help, counter.clone());
            counter
        };
        let emails_sent = counter("shoulder_emails_sent", "Emails the mail server accepted");
        let emails_retried = counter(
            "shoulder_emails_retried",
            "Email attempts refused for now and scheduled again",
        );
        let emails_failed = counter("shoulder_emails_failed", "Emails given up for good");
        let email_leases_lost = counter(
            "shoulder_email_leases_lost",
            "Email attempts whose outcome went unrecorded because another worker had taken the email over",
        );
        let rounds_opened = counter("shoulder_rounds_opened", "Rounds opened by this instance");
        let limits_reached = CounterBy::<Limited>::default();
        registry.register(
            "shoulder_limits_reached",
            "Requests refused, and emails not sent, because a limit was reached, by limit",
            limits_reached.clone(),
        );
        let inbound = CounterBy::<Received>::default();
        registry.register(
            "shoulder_inbound_messages",
            "Messages posted to /inbound/email or the dev mailbox's Reply box, by what became of them",
            inbound.clone(),
        );
        registry.register_collector(Box::new(process::ProcessCollector));
        Metrics {
            inbound,
            registry,
            requests,
            durations,
            emails_sent,
            emails_retried,
            emails_failed,
            email_leases_lost,
            rounds_opened,
            limits_reached,
        }
    }

    /// Counts one answered request. Cheap on purpose: it runs for every
    /// request, and after the first of its kind it only takes a read lock
    /// and bumps atomics.
    pub fn record_request(
        &self,
        route: Route,
        method: HttpMethod,
        status: StatusCode,
        elapsed: Duration,
    ) {
        let status = StatusClass::of(status);
        self.durations
            .get_or_create(&RouteLabel {
                route: route.clone(),
            })
            .observe(elapsed.as_secs_f64());
        self.requests
            .get_or_create(&RequestLabels {
                route,
                method,
                status,
            })
            .inc();
    }

    /// Adds one delivery pass's outcomes to the email counters.
    pub fn record_deliveries(&self, report: &DeliveryReport) {
        for (counter, count) in [
            (&self.emails_sent, report.sent),
            (&self.emails_retried, report.retried),
            (&self.emails_failed, report.failed),
            (&self.email_leases_lost, report.lost_leases),
        ] {
            counter.inc_by(count as u64);
        }
    }

    pub fn record_limit_reached(&self, limit: Limited) {
        self.limits_reached.get_or_create(&By(limit)).inc();
    }

    /// Counts one message that came in: replies taken, strangers and
    /// programs dropped, bounces, complaints.
    pub fn record_inbound(&self, received: Received) {
        self.inbound.get_or_create(&By(received)).inc();
    }

    pub fn record_rounds_opened(&self, opened: usize) {
        self.rounds_opened.inc_by(opened as u64);
    }

    /// The metrics text: what was counted, then what `scrape` read now.
    pub fn render(&self, scrape: Scrape) -> String {
        let mut now = Registry::default();
        now.register_collector(Box::new(scrape));
        let mut out = String::new();
        // Writing to a String fails only if an encoder itself reports an
        // error, which ours never do; a scrape gets what was written.
        for registry in [&self.registry, &now] {
            if let Err(error) = prometheus_text::encode(&mut out, registry) {
                tracing::warn!(error = %error, "cannot write the metrics text");
            }
        }
        out
    }
}

/// The figures read at scrape time rather than counted as they happen.
#[derive(Debug, Clone, Copy)]
pub struct Scrape {
    pub pool: PoolState,
    /// `None` when the database did not answer: left out, not shown as zero.
    pub queue: Option<QueueState>,
    /// The clock's now, to age the oldest waiting email.
    pub now: chrono::NaiveDateTime,
}

/// The pool's connections by state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum PoolConnections {
    Open,
    Idle,
}

impl ClosedLabel for PoolConnections {
    const NAME: &'static str = "state";
    fn as_str(self) -> &'static str {
        match self {
            PoolConnections::Open => "open",
            PoolConnections::Idle => "idle",
        }
    }
}

/// Writes one unlabelled gauge.
pub(crate) fn encode_gauge<N>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: N,
) -> fmt::Result
where
    N: prometheus_client::encoding::EncodeGaugeValue,
{
    let gauge = ConstGauge::new(value);
    gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)
}

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let mut connections = encoder.encode_descriptor(
            "shoulder_db_pool_connections",
            "Database connections, open and idle.",
            None,
            MetricType::Gauge,
        )?;
        for (state, count) in [
            (PoolConnections::Open, self.pool.size),
            (PoolConnections::Idle, self.pool.idle),
        ] {
            ConstGauge::new(i64::from(count)).encode(connections.encode_family(&By(state))?)?;
        }
        encode_gauge(
            &mut encoder,
            "shoulder_db_pool_max_connections",
            "The pool's configured size.",
            i64::from(self.pool.max_size),
        )?;
        if let Some(queue) = self.queue {
            encode_gauge(
                &mut encoder,
                "shoulder_email_queue_depth",
                "Emails waiting to be sent or being sent.",
                queue.depth,
            )?;
            let age = queue.oldest_age(self.now);
            encode_gauge(
                &mut encoder,
                "shoulder_email_queue_oldest_age_seconds",
                "How long the oldest email waiting to be sent has waited; 0 when none waits.",
                age.as_seconds_f64(),
            )?;
        }
        Ok(())
    }
}

/// Middleware: times each request and counts it under its route pattern.
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = Route::of(&request);
    let method = HttpMethod::of(request.method());
    let started = Instant::now();
    let response = next.run(request).await;
    state
        .metrics
        .record_request(route, method, response.status(), started.elapsed());
    response
}

/// `/metrics` on a listener of its own (`server.metrics_bind`): nothing
/// else answers there.
pub fn router(state: AppState) -> Router {
    let timeout = Duration::from_secs(state.config.server.request_timeout_secs);
    Router::new()
        .route("/metrics", get(metrics))
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found\n") })
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .with_state(state)
}

pub async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if !authorized(&state.config.server.metrics_token, &headers) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))],
            "a bearer token is needed for /metrics\n",
        )
            .into_response();
    }
    // A database that does not answer should not cost the other metrics.
    let queue = match state.db.run(outbox::queue_state).await {
        Ok(queue) => Some(queue),
        Err(error) => {
            tracing::warn!(error = %error, "cannot read the email queue");
            None
        }
    };
    let scrape = Scrape {
        pool: state.db.state(),
        queue,
        now: state.clock.now().naive_utc(),
    };
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(prometheus_text::CONTENT_TYPE),
        )],
        state.metrics.render(scrape),
    )
        .into_response()
}

/// Whether the request may read `/metrics`: always when no token is set,
/// else only with `Authorization: Bearer <token>`. Both sides are hashed
/// before a constant-time comparison, so the time taken tells neither how
/// much of the token matched nor how long it is.
pub(super) fn authorized(token: &str, headers: &HeaderMap) -> bool {
    if token.is_empty() {
        return true;
    }
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| bearer_token(value.as_bytes()))
    else {
        return false;
    };
    let given = Sha256::digest(given);
    let expected = Sha256::digest(token.as_bytes());
    given.ct_eq(&expected).into()
}

/// The token of an `Authorization: Bearer <token>` value (the scheme's
/// case does not matter, RFC 9110 section 11.1).
fn bearer_token(value: &[u8]) -> Option<&[u8]> {
    const SCHEME: &[u8] = b"bearer ";
    let (scheme, token) = value.split_at_checked(SCHEME.len())?;
    scheme.eq_ignore_ascii_case(SCHEME).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(metrics: &Metrics, queue: Option<QueueState>) -> String {
        metrics.render(Scrape {
            pool: PoolState {
                size: 2,
                max_size: 8,
                idle: 1,
            },
            queue,
            now: chrono::DateTime::UNIX_EPOCH.naive_utc() + chrono::TimeDelta::seconds(600),
        })
    }

    fn has_line(text: &str, line: &str) -> bool {
        text.lines().any(|l| l == line)
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_statuses_go_by_class() {
        let metrics = Metrics::new();
        let route = Route(None);
        for (status, millis) in [(200, 0), (204, 20), (503, 7_000)] {
            metrics.record_request(
                route.clone(),
                HttpMethod::Get,
                StatusCode::from_u16(status).expect("a status"),
                Duration::from_millis(millis),
            );
        }
        let text = render(&metrics, None);
        for line in [
            r#"shoulder_http_requests_total{route="unmatched",method="GET",status="2xx"} 2"#,
            r#"shoulder_http_requests_total{route="unmatched",method="GET",status="5xx"} 1"#,
            r#"shoulder_http_request_duration_seconds_bucket{route="unmatched",le="0.001"} 1"#,
            r#"shoulder_http_request_duration_seconds_bucket{route="unmatched",le="0.025"} 2"#,
            r#"shoulder_http_request_duration_seconds_bucket{route="unmatched",le="5"} 2"#,
            r#"shoulder_http_request_duration_seconds_bucket{route="unmatched",le="+Inf"} 3"#,
            r#"shoulder_http_request_duration_seconds_count{route="unmatched"} 3"#,
            r#"shoulder_db_pool_connections{state="open"} 2"#,
            r#"shoulder_db_pool_connections{state="idle"} 1"#,
            "shoulder_db_pool_max_connections 8",
        ] {
            assert!(has_line(&text, line), "{line} in\n{text}");
        }
        assert!(!text.contains("shoulder_email_queue_depth"), "{text}");
    }

    #[test]
    fn email_counters_add_up_across_passes_and_the_queue_shows_its_age() {
        let metrics = Metrics::new();
        let pass = DeliveryReport {
            sent: 3,
            retried: 1,
            failed: 2,
            lost_leases: 1,
        };
        metrics.record_deliveries(&pass);
        metrics.record_deliveries(&pass);
        metrics.record_rounds_opened(4);
        let queue = QueueState {
            depth: 5,
            oldest_queued_at: Some(chrono::DateTime::UNIX_EPOCH.naive_utc()),
        };
        let text = render(&metrics, Some(queue));
        for line in [
            "shoulder_emails_sent_total 6",
            "shoulder_emails_retried_total 2",
            "shoulder_emails_failed_total 4",
            "shoulder_email_leases_lost_total 2",
            "shoulder_rounds_opened_total 4",
            "# TYPE shoulder_email_queue_depth gauge",
            "shoulder_email_queue_depth 5",
            "shoulder_email_queue_oldest_age_seconds 600.0",
        ] {
            assert!(has_line(&text, line), "{line} in\n{text}");
        }
        let empty = QueueState {
            depth: 0,
            oldest_queued_at: None,
        };
        let text = render(&metrics, Some(empty));
        assert!(
            has_line(&text, "shoulder_email_queue_oldest_age_seconds 0.0"),
            "{text}"
        );
    }

    #[test]
    fn methods_outside_the_standard_set_are_other() {
        for (raw, label) in [
            ("GET", "GET"),
            ("PATCH", "PATCH"),
            ("get", "other"),
            ("PROPFIND", "other"),
        ] {
            let method = Method::from_bytes(raw.as_bytes()).expect("a method");
            assert_eq!(HttpMethod::of(&method).as_str(), label, "{raw}");
        }
    }

    #[test]
    fn a_counter_by_a_closed_label_shows_each_value_used() {
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        enum Door {
            Front,
            Back,
        }
        impl ClosedLabel for Door {
            const NAME: &'static str = "door";
            fn as_str(self) -> &'static str {
                match self {
                    Door::Front => "front",
                    Door::Back => "back",
                }
            }
        }
        let mut registry = Registry::default();
        let opened = CounterBy::<Door>::default();
        registry.register("doors_opened", "Doors opened", opened.clone());
        opened.get_or_create(&By(Door::Front)).inc();
        opened.get_or_create(&By(Door::Front)).inc();
        opened.get_or_create(&By(Door::Back)).inc();
        let mut text = String::new();
        prometheus_text::encode(&mut text, &registry).expect("encodes");
        assert!(
            has_line(&text, r#"doors_opened_total{door="front"} 2"#),
            "{text}"
        );
        assert!(
            has_line(&text, r#"doors_opened_total{door="back"} 1"#),
            "{text}"
        );
    }

    #[test]
    fn only_the_configured_bearer_token_reads_the_metrics() {
        let token = "0123456789abcdef-scrape";
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(
                header::AUTHORIZATION,
                HeaderValue::from_str(value).expect("a header value"),
            );
            headers
        };
        assert!(authorized("", &HeaderMap::new()), "no token configured");
        assert!(!authorized(token, &HeaderMap::new()));
        assert!(authorized(token, &with(&format!("Bearer {token}"))));
        assert!(authorized(token, &with(&format!("bearer {token}"))));
        assert!(!authorized(token, &with(&format!("Bearer {token}x"))));
        assert!(!authorized(token, &with(&format!("Basic {token}"))));
        assert!(!authorized(token, &with("Bearer")));
        assert!(!authorized(token, &with(token)));
    }
}
