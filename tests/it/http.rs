//! The HTTP skeleton: probes, metrics, pages, headers and limits.

use crate::on_both_backends;
use crate::support::{Backend, TestApp};

on_both_backends! {
    async fn health_and_readiness_answer_ok(app) {
        let (status, body) = app.get_text("/healthz").await;
        assert_eq!((status, body.as_str()), (200, "ok\n"));
        let (status, body) = app.get_text("/readyz").await;
        assert_eq!((status, body.as_str()), (200, "ready\n"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_waits_for_migrations() {
    let app = TestApp::builder(Backend::Sqlite)
        .without_migrations()
        .start()
        .await
        .expect("sqlite");
    let (status, body) = app.get_text("/readyz").await;
    assert_eq!(status, 503);
    assert!(body.contains("migrations pending"), "{body}");
    assert_eq!(app.get_text("/healthz").await.0, 200, "alive all the same");

    app.state.db.migrate().await.expect("migrations apply");
    assert_eq!(app.get_text("/readyz").await.0, 200);
}

on_both_backends! {
    async fn metrics_count_requests_by_route_and_show_the_pool(app) {
        for _ in 0..3 {
            app.get("/healthz").await;
        }
        app.get("/no/such/page").await;
        let (status, text) = app.get_text("/metrics").await;
        assert_eq!(status, 200);
        assert!(
            text.contains(r#"shoulder_http_requests_total{route="/healthz",method="GET",status="2xx"} 3"#),
            "{text}"
        );
        assert!(
            text.contains(r#"shoulder_http_requests_total{route="unmatched",method="GET",status="4xx"} 1"#),
            "{text}"
        );
        assert!(text.contains(r#"shoulder_http_request_duration_seconds_count{route="/healthz"} 3"#));
        assert!(text.contains("shoulder_db_pool_max_connections 4"), "{text}");
        assert!(text.contains(r#"shoulder_db_pool_connections{state="open"}"#));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_use_the_layout_and_carry_security_headers() {
    let app = TestApp::start(Backend::Sqlite).await.expect("sqlite");
    for (path, status) in [("/", 200), ("/circles/42/nothing", 404)] {
        let response = app.get(path).await;
        assert_eq!(response.status().as_u16(), status, "{path}");
        let headers = response.headers().clone();
        let csp = headers["content-security-policy"].to_str().expect("ascii");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(csp.contains("default-src 'none'"), "{csp}");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["referrer-policy"], "no-referrer");
        assert_eq!(headers["x-frame-options"], "DENY");
        assert!(
            headers.get("strict-transport-security").is_none(),
            "not over http"
        );
        assert!(!headers["x-request-id"].is_empty());
        assert!(
            headers["content-type"]
                .to_str()
                .expect("ascii")
                .starts_with("text/html")
        );
        let body = response.text().await.expect("body");
        assert!(body.starts_with("<!DOCTYPE html>"), "{path}: {body}");
        assert!(
            body.contains("/static/style-"),
            "the layout links the stylesheet"
        );
    }
    let (_, not_found) = app.get_text("/circles/42/nothing").await;
    assert!(not_found.contains("Nothing here"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_public_url_adds_strict_transport_security() {
    let app = TestApp::builder(Backend::Sqlite)
        .config(|c| c.server.public_url = "https://circles.example.org".into())
        .start()
        .await
        .expect("sqlite");
    let response = app.get("/healthz").await;
    assert_eq!(
        response.headers()["strict-transport-security"],
        "max-age=31536000"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stylesheet_is_cached_for_long_and_compressed_on_request() {
    let app = TestApp::start(Backend::Sqlite).await.expect("sqlite");
    let (_, home) = app.get_text("/").await;
    let start = home.find("/static/style-").expect("stylesheet link");
    let path: String = home[start..].chars().take_while(|c| *c != '"').collect();

    let response = app
        .client
        .get(app.url(&path))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/css; charset=utf-8"
    );
    assert_eq!(
        response.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert_eq!(response.headers()["content-encoding"], "gzip");

    let (status, _) = app.get_text("/static/style-000000000000.css").await;
    assert_eq!(status, 404, "an old or made-up name is not served");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_are_refused_with_413() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let app = TestApp::start(Backend::Sqlite).await.expect("sqlite");
    // Announce 3 MB and send none of it: the answer must come from the
    // announced length alone, before anything is read or stored.
    let mut stream = tokio::net::TcpStream::connect(app.addr)
        .await
        .expect("connects");
    let head = format!(
        "POST / HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        app.addr,
        3 * 1024 * 1024
    );
    stream
        .write_all(head.as_bytes())
        .await
        .expect("request head sent");
    let mut answer = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut answer),
    )
    .await
    .expect("the server answers without waiting for the body")
    .expect("readable");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("more than we accept"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_3_mb_body_sent_in_chunks_is_refused_with_413() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let app = TestApp::start(Backend::Sqlite).await.expect("sqlite");
    // No length announced: the limit must hold while the body is read.
    let stream = tokio::net::TcpStream::connect(app.addr)
        .await
        .expect("connects");
    let (mut reader, mut writer) = stream.into_split();
    let head = format!(
        "POST /sign-in HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Sec-Fetch-Site: same-origin\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        app.addr
    );
    let sending = tokio::spawn(async move {
        writer.write_all(head.as_bytes()).await?;
        let chunk = format!("10000\r\nemail={}\r\n", "a".repeat(0x10000 - 6));
        let mut sent = 0;
        while sent < 3 * 1024 * 1024 {
            writer.write_all(chunk.as_bytes()).await?;
            sent += 0x10000;
        }
        writer.write_all(b"0\r\n\r\n").await?;
        Ok::<usize, std::io::Error>(sent)
    });
    let mut answer = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        reader.read_to_end(&mut answer),
    )
    .await
    .expect("the server answers")
    .ok();
    // The server may stop reading before all 3 MB are sent, which ends the
    // sending with a reset; that is the point.
    let _ = sending.await.expect("the sender ran");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("more than we accept"), "{answer}");
    assert_eq!(
        app.state
            .db
            .run(|conn| {
                use diesel::prelude::*;
                use shoulder::db::schema::sign_in_tokens;
                Ok::<i64, shoulder::db::DbError>(sign_in_tokens::table.count().get_result(conn)?)
            })
            .await
            .expect("counted"),
        0,
        "nothing was stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_method_gets_a_page_not_a_blank() {
    let app = TestApp::start(Backend::Sqlite).await.expect("sqlite");
    let response = app
        .client
        .post(app.url("/healthz"))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status().as_u16(), 405);
    assert!(
        response
            .text()
            .await
            .expect("body")
            .contains("<!DOCTYPE html>")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_connections_use_wal_foreign_keys_and_a_busy_timeout() {
    use diesel::prelude::*;
    use diesel::sql_types::{BigInt, Text};
    use shoulder::db::{DbConnection, DbError};

    #[derive(QueryableByName)]
    struct Mode {
        #[diesel(sql_type = Text)]
        journal_mode: String,
    }
    #[derive(QueryableByName)]
    struct Flag {
        #[diesel(sql_type = BigInt)]
        value: i64,
    }

    let app = TestApp::start(Backend::Sqlite).await.expect("sqlite");
    let (mode, foreign_keys, busy_timeout, synchronous) = app
        .state
        .db
        .run(|conn| {
            let DbConnection::Sqlite(conn) = conn else {
                panic!("a SQLite app has SQLite connections");
            };
            let mode = diesel::sql_query("PRAGMA journal_mode").get_result::<Mode>(conn)?;
            let fk = diesel::sql_query("SELECT foreign_keys AS value FROM pragma_foreign_keys")
                .get_result::<Flag>(conn)?;
            let busy = diesel::sql_query("SELECT timeout AS value FROM pragma_busy_timeout")
                .get_result::<Flag>(conn)?;
            let sync = diesel::sql_query("SELECT synchronous AS value FROM pragma_synchronous")
                .get_result::<Flag>(conn)?;
            Ok::<_, DbError>((mode.journal_mode, fk.value, busy.value, sync.value))
        })
        .await
        .expect("pragmas readable");
    assert_eq!(mode, "wal");
    assert_eq!(foreign_keys, 1);
    assert_eq!(busy_timeout, 5000);
    assert_eq!(synchronous, 1, "NORMAL");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_fails_when_the_postgres_database_goes_away() {
    let Some(app) = TestApp::start(Backend::Postgres).await else {
        return;
    };
    assert_eq!(app.get_text("/readyz").await.0, 200);
    crate::support::postgres::drop_database_of(&app.state.config.database.url).await;

    let (status, body) = app.get_text("/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.starts_with("not ready: the database"), "{body}");
    assert_eq!(
        app.get_text("/healthz").await.0,
        200,
        "the process still answers"
    );
}

/// A page reached through an emailed token, or made for someone signed in,
/// is sent with `Cache-Control: no-store`, so no shared or browser cache
/// keeps a copy; and a round link's key never travels on into the sign-in
/// page's `next`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_with_tokens_or_personal_data_are_never_cached() {
    use crate::shoulder::round_link;
    use crate::support::{link_path, open_week, weekly_circle};

    let app = TestApp::start(Backend::Sqlite).await.expect("sqlite");
    let base = app.public_base().to_string();
    let id = weekly_circle(
        &app,
        "Night shift",
        &[("ada@example.org", "Ada"), ("bea@example.org", "Bea")],
    )
    .await;
    open_week(&app, 1).await;
    let check_in = app
        .emails()
        .into_iter()
        .find(|m| m.to == ["bea@example.org"])
        .expect("Bea's check-in email")
        .text_body();
    let round = round_link(&app, &check_in, id, 1);
    let unsubscribe = link_path(&check_in, &base, "/unsubscribe/");
    let act = link_path(&check_in, &base, "/act/");

    let ada = app.sign_in("ada@example.org", "Ada").await;
    let join = app.make_invite_link(&ada, id).await;
    let before = app.emails().len();
    let asked = app
        .post_form(
            &join,
            &[
                ("name", "Cy"),
                ("email", "cy@example.org"),
                ("accept", "yes"),
            ],
        )
        .await;
    assert_eq!(asked.status().as_u16(), 303);
    app.post_form("/sign-in", &[("email", "bea@example.org")])
        .await;
    app.run_jobs().await;
    let later: Vec<String> = app.emails()[before..]
        .iter()
        .map(|m| m.text_body())
        .collect();
    let confirm = link_path(&later.join("\n"), &base, "/join/confirm/");
    let sign_in = link_path(&later.join("\n"), &base, "/sign-in/");

    let cache_control = |response: &reqwest::Response| {
        response
            .headers()
            .get("cache-control")
            .map(|v| v.to_str().expect("ascii").to_string())
    };
    for path in [&round, &unsubscribe, &act, &join, &confirm, &sign_in] {
        let response = app.get(path).await;
        assert_eq!(response.status().as_u16(), 200, "{path}");
        assert_eq!(
            cache_control(&response).as_deref(),
            Some("no-store"),
            "{path}"
        );
    }
    for path in [
        "/".to_string(),
        "/me".to_string(),
        format!("/circles/{id}"),
        format!("/circles/{id}/rounds/1"),
        format!("/circles/{id}/history"),
    ] {
        let response = app.get_as(&ada, &path).await;
        assert_eq!(response.status().as_u16(), 200, "{path}");
        assert_eq!(
            cache_control(&response).as_deref(),
            Some("no-store"),
            "{path}"
        );
    }
    let style = app.get(&shoulder::web::assets::stylesheet_path()).await;
    assert_eq!(style.status().as_u16(), 200);
    assert_ne!(cache_control(&style).as_deref(), Some("no-store"));

    // A key put on a page that does not take one is dropped on the way to
    // signing in, and so is one handed to the sign-in page itself.
    let key = round.split("key=").nth(1).expect("a key");
    let redirected = app.get(&format!("/circles/{id}?key={key}")).await;
    let location = redirected
        .headers()
        .get("location")
        .expect("sent to sign in")
        .to_str()
        .expect("ascii")
        .to_string();
    assert!(location.starts_with("/sign-in?next="), "{location}");
    assert!(!location.contains(key), "{location}");
    let next = url::form_urlencoded::byte_serialize(format!("/circles/{id}?key={key}").as_bytes())
        .collect::<String>();
    let (status, page) = app.get_text(&format!("/sign-in?next={next}")).await;
    assert_eq!(status, 200);
    assert!(!page.contains(key), "{page}");
}

/// A form body of thousands of fields, under the size limit, is refused
/// whole: no handler decodes it, whoever sends it. Our largest form, a
/// check-in with many commitments to report on, stays far under the cap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_with_more_fields_than_any_of_ours_is_refused_with_413() {
    use crate::support::{open_week, weekly_circle};
    use shoulder::web::form::MAX_FORM_FIELDS;

    let app = TestApp::start(Backend::Sqlite).await.expect("sqlite");
    let id = weekly_circle(
        &app,
        "Night shift",
        &[("ada@example.org", "Ada"), ("bea@example.org", "Bea")],
    )
    .await;
    open_week(&app, 1).await;
    let ada = app.sign_in("ada@example.org", "Ada").await;
    let round = format!("/circles/{id}/rounds/1");
    let flood: Vec<(String, String)> = (0..4_000)
        .map(|n| (format!("outcome-{n}"), "x".to_string()))
        .collect();
    let size = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&flood)
        .finish()
        .len();
    assert!(size < 65_536, "under the body limit: {size}");
    for cookie in ["", ada.as_str()] {
        let response = app.post_form_as(cookie, &round, &flood_refs(&flood)).await;
        assert_eq!(
            response.status().as_u16(),
            413,
            "signed in: {}",
            !cookie.is_empty()
        );
        let page = response.text().await.expect("page");
        assert!(page.contains("more than we accept"), "{page}");
    }

    // Just under the cap, the form is read, and its made-up commitments
    // are refused by name with nothing written.
    let many: Vec<(String, String)> = (0..MAX_FORM_FIELDS - 1)
        .map(|n| (format!("outcome-{}", 1_000_000 + n), "done".to_string()))
        .chain([("commitment-1".to_string(), "Call Bea".to_string())])
        .collect();
    let response = app.post_form_as(&ada, &round, &flood_refs(&many)).await;
    assert_eq!(response.status().as_u16(), 422);
    let page = response.text().await.expect("page");
    assert!(page.contains("Call Bea"), "the text typed is kept: {page}");
}

fn flood_refs(fields: &[(String, String)]) -> Vec<(&str, &str)> {
    fields
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect()
}

/// Sends a keep-alive GET of `/healthz` on `stream` and reads the answer's
/// first bytes; `None` when the server closed the connection instead.
async fn healthz_on(stream: &mut tokio::net::TcpStream) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    if stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: shoulder\r\n\r\n")
        .await
        .is_err()
    {
        return None;
    }
    let mut buffer = vec![0; 4096];
    match tokio::time::timeout(std::time::Duration::from_secs(10), stream.read(&mut buffer))
        .await
        .expect("the server answers or closes")
    {
        Ok(0) | Err(_) => None,
        Ok(read) => Some(String::from_utf8_lossy(&buffer[..read]).into_owned()),
    }
}

/// A client that sends its request head a byte at a time is cut off once
/// `server.header_read_timeout_secs` has passed, however many connections
/// it holds, and the server keeps answering everyone else meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_trickling_its_request_head_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let app = TestApp::builder(Backend::Sqlite)
        .config(|config| config.server.header_read_timeout_secs = 1)
        .start()
        .await
        .expect("sqlite");
    // Long enough to be told apart from the timeout, with room to spare on
    // a slow machine.
    let trickle_for = std::time::Duration::from_secs(8);
    let trickles: Vec<_> = (0..20)
        .map(|_| {
            let addr = app.addr;
            tokio::spawn(async move {
                let mut stream = tokio::net::TcpStream::connect(addr)
                    .await
                    .expect("connects");
                let started = std::time::Instant::now();
                let head = b"GET / HTTP/1.1\r\nHost: shoulder\r\nX-Slow: ";
                let mut sent = 0;
                while started.elapsed() < trickle_for {
                    let byte = head.get(sent).copied().unwrap_or(b'a');
                    if stream.write_all(&[byte]).await.is_err() {
                        return true;
                    }
                    sent += 1;
                    let mut buffer = [0; 512];
                    // Reading for a while is how the trickle waits between
                    // bytes; an end of stream is the server hanging up.
                    if let Ok(read) = tokio::time::timeout(
                        std::time::Duration::from_millis(200),
                        stream.read(&mut buffer),
                    )
                    .await
                    {
                        match read {
                            Ok(0) | Err(_) => return true,
                            Ok(_) => {}
                        }
                    }
                }
                false
            })
        })
        .collect();
    let mut healthy = tokio::net::TcpStream::connect(app.addr)
        .await
        .expect("connects");
    let answer = healthz_on(&mut healthy).await.expect("an answer");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    for trickle in trickles {
        assert!(
            trickle.await.expect("the trickle ran"),
            "a trickling connection was still open after {trickle_for:?}"
        );
    }
}

/// One client address holds at most `server.max_connections_per_client`
/// connections; one more is closed unanswered, and a place given back is
/// free again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_holds_at_most_its_share_of_connections() {
    let app = TestApp::builder(Backend::Sqlite)
        .config(|config| config.server.max_connections_per_client = 4)
        .start()
        .await
        .expect("sqlite");
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut stream = tokio::net::TcpStream::connect(app.addr)
            .await
            .expect("connects");
        let answer = healthz_on(&mut stream).await.expect("an answer");
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        held.push(stream);
    }
    let mut fifth = tokio::net::TcpStream::connect(app.addr)
        .await
        .expect("the kernel accepts");
    assert_eq!(
        healthz_on(&mut fifth).await,
        None,
        "a fifth connection is closed"
    );

    drop(held.pop());
    // The server notices the closed connection on its own time: try until
    // the place is free, within a bound.
    let started = std::time::Instant::now();
    loop {
        let mut again = tokio::net::TcpStream::connect(app.addr)
            .await
            .expect("connects");
        if let Some(answer) = healthz_on(&mut again).await {
            assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "the place given back stays taken"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
