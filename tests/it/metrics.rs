//! `/metrics` under hostile requests and for operators: every label comes
//! from a closed set whatever a client sends, the endpoint can be moved off
//! the public port or put behind a bearer token, and what the outbox and the
//! process are doing shows with believable values.

use chrono::Duration;
use shoulder::mail::outbox;

use crate::on_both_backends;
use crate::outbox::{claim, delivery, email_to, queue};
use crate::support::{Backend, SmtpMode, TestApp};

/// Long enough that keeping even a few of them would show in the text.
const HOSTILE_METHOD_LEN: usize = 4_096;
const HOSTILE_REQUESTS: usize = 200;
/// Far more than the text of a freshly started server's few routes, far
/// less than one hostile method name per request would take.
const MAX_METRICS_BYTES: usize = 64 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_methods_are_counted_as_other_and_never_kept() {
    let app = TestApp::start(Backend::Sqlite).await.expect("sqlite");
    let filler = "Q".repeat(HOSTILE_METHOD_LEN);
    for n in 0..HOSTILE_REQUESTS {
        let name = format!("X{n:04}{filler}");
        let method = reqwest::Method::from_bytes(name.as_bytes()).expect("a token");
        let path = if n % 2 == 0 {
            "/healthz"
        } else {
            "/no/such/page"
        };
        let response = app
            .client
            .request(method, app.url(path))
            .send()
            .await
            .expect("the server answers");
        assert!(
            response.status().is_client_error(),
            "{path}: {}",
            response.status()
        );
    }

    let (status, text) = app.get_text("/metrics").await;
    assert_eq!(status, 200);
    assert!(
        text.len() < MAX_METRICS_BYTES,
        "/metrics grew to {} bytes",
        text.len()
    );
    assert!(!text.contains("X0000"), "a method name was kept");
    assert!(!text.contains(&filler[..64]), "a method name was kept");
    let other: u64 = text
        .lines()
        .filter(|line| {
            line.starts_with("shoulder_http_requests_total{") && line.contains(r#"method="other""#)
        })
        .map(|line| {
            line.rsplit(' ')
                .next()
                .and_then(|n| n.parse::<u64>().ok())
                .expect("a count")
        })
        .sum();
    assert_eq!(other, HOSTILE_REQUESTS as u64, "{text}");
}

const TOKEN: &str = "scrape-0123456789abcdef";

/// The value of the unlabelled sample `name` in a metrics text.
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
        .parse()
        .unwrap_or_else(|_| panic!("{name} is not a number in\n{text}"))
}

async fn status_of(request: reqwest::RequestBuilder) -> u16 {
    request
        .send()
        .await
        .expect("the server answers")
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_bind_moves_metrics_off_the_main_port() {
    let app = TestApp::builder(Backend::Sqlite)
        .config(|config| config.server.metrics_bind = "127.0.0.1:0".into())
        .start()
        .await
        .expect("sqlite");
    let metrics_addr = app.metrics_addr.expect("a metrics listener");
    assert_ne!(metrics_addr, app.addr);
    assert_eq!(app.get_text("/healthz").await.0, 200);

    let (status, page) = app.get_text("/metrics").await;
    assert_eq!(status, 404, "not on the main port");
    assert!(!page.contains("shoulder_http_requests"), "{page}");

    let response = app
        .client
        .get(format!("http://{metrics_addr}/metrics"))
        .send()
        .await
        .expect("the metrics listener answers");
    assert_eq!(response.status().as_u16(), 200);
    let text = response.text().await.expect("text");
    assert!(
        text.contains(
            r#"shoulder_http_requests_total{route="/healthz",method="GET",status="2xx"} 1"#
        ),
        "the main port's requests are counted:\n{text}"
    );
    let elsewhere = app.client.get(format!("http://{metrics_addr}/healthz"));
    assert_eq!(status_of(elsewhere).await, 404, "only /metrics there");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_metrics_token_is_needed_when_one_is_set() {
    let app = TestApp::builder(Backend::Sqlite)
        .config(|config| config.server.metrics_token = TOKEN.into())
        .start()
        .await
        .expect("sqlite");
    let url = app.url("/metrics");

    let response = app.get("/metrics").await;
    assert_eq!(response.status().as_u16(), 401);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    let body = response.text().await.expect("text");
    assert!(!body.contains("shoulder_"), "{body}");

    let wrong = app.client.get(&url).bearer_auth(format!("{TOKEN}x"));
    assert_eq!(status_of(wrong).await, 401);
    let basic = app.client.get(&url).basic_auth("scraper", Some(TOKEN));
    assert_eq!(status_of(basic).await, 401);

    let response = app
        .client
        .get(&url)
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status().as_u16(), 200);
    let text = response.text().await.expect("text");
    assert!(text.contains("shoulder_db_pool_max_connections"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_guards_the_metrics_listener_too() {
    let app = TestApp::builder(Backend::Sqlite)
        .config(|config| {
            config.server.metrics_bind = "127.0.0.1:0".into();
            config.server.metrics_token = TOKEN.into();
        })
        .start()
        .await
        .expect("sqlite");
    let url = format!("http://{}/metrics", app.metrics_addr.expect("a listener"));
    assert_eq!(status_of(app.client.get(&url)).await, 401);
    assert_eq!(
        status_of(app.client.get(&url).bearer_auth(TOKEN)).await,
        200
    );
}

on_both_backends! {
    async fn lost_leases_the_outbox_and_the_process_show_believable_values(app) {
        let started = app.clock.now().naive_utc();
        queue(&app, email_to("ada@example.org")).await;
        app.clock.advance(Duration::minutes(10));
        let (_, text) = app.get_text("/metrics").await;
        assert_eq!(sample(&text, "shoulder_email_queue_depth"), 1.0, "{text}");
        assert_eq!(sample(&text, "shoulder_email_queue_oldest_age_seconds"), 600.0);
        assert_eq!(sample(&text, "shoulder_email_leases_lost_total"), 0.0);

        // Worker A's pass claims the email and stalls in the middle of
        // sending it.
        app.smtp.set_mode(SmtpMode::Stall);
        let pass = tokio::spawn({
            let state = app.state.clone();
            async move { shoulder::jobs::run_once(&state).await }
        });
        tokio::task::block_in_place(|| app.smtp.wait_for_stalled(1));

        // Its lease runs out; worker B takes the email over. Then the
        // server answers A, whose outcome can no longer be recorded.
        let settings = outbox::OutboxSettings::from_config(&app.state.config.mail);
        app.clock.advance(settings.lease + Duration::seconds(1));
        let by_b = claim(&app, settings).await;
        assert_eq!(by_b.len(), 1, "B took the email over");
        app.smtp.set_mode(SmtpMode::Accept);
        let report = pass.await.expect("the pass ran").expect("the pass succeeded");
        assert_eq!(report.delivery.lost_leases, 1, "{:?}", report.delivery);

        let (status, text) = app.get_text("/metrics").await;
        assert_eq!(status, 200);
        assert_eq!(sample(&text, "shoulder_email_leases_lost_total"), 1.0, "{text}");
        assert_eq!(sample(&text, "shoulder_emails_sent_total"), 0.0, "A's send went unrecorded");
        let row = delivery(&app, by_b[0].claim.delivery_id).await;
        assert_eq!(row.status, outbox::status::SENDING, "still B's to send");
        assert_eq!(sample(&text, "shoulder_email_queue_depth"), 1.0);
        let waited = (app.clock.now().naive_utc() - started).num_seconds() as f64;
        assert_eq!(waited, 600.0 + settings.lease.num_seconds() as f64 + 1.0);
        assert_eq!(sample(&text, "shoulder_email_queue_oldest_age_seconds"), waited);

        // The process: this test binary, measured by the kernel.
        let resident = sample(&text, "process_resident_memory_bytes");
        assert!((1e6..8e9).contains(&resident), "resident memory {resident}");
        assert!(sample(&text, "process_virtual_memory_bytes") >= resident);
        let open = sample(&text, "process_open_fds");
        assert!((3.0..100_000.0).contains(&open), "open fds {open}");
        assert!(sample(&text, "process_max_fds") >= open);
        assert!(sample(&text, "process_threads") >= 2.0, "a multi-thread runtime");
        assert!(sample(&text, "process_cpu_seconds_total") > 0.0);
        // The wall clock, not the app's fixed one: the process started in real time.
        let now = shoulder::clock::Clock::system().now().timestamp() as f64;
        let start = sample(&text, "process_start_time_seconds");
        assert!(
            start <= now + 1.0 && start > now - 86_400.0,
            "start time {start}, now {now}"
        );
    }
}
