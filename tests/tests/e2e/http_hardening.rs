//! The gateway faces clients directly (`verdict up` has no proxy in front): a client
//! that is slow with its headers, holds too many connections, or sends a body it may
//! not send must not tie up the gateway's sockets, memory or disk.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use verdict_testkit::{Component, TestApp};

/// Connects to the gateway from `source` (any 127.x.y.z: all loopback on Linux).
async fn connect_from(app: &TestApp, source: Ipv4Addr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(IpAddr::V4(source), 0)).unwrap();
    socket.connect(app.address()).await.unwrap()
}

/// Reads until the server closes the connection (or `within` passes); returns what it
/// sent and whether it closed.
async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> (String, bool) {
    let mut received = Vec::new();
    let mut buffer = [0; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Err(_) => return (String::from_utf8_lossy(&received).into_owned(), false),
            Ok(Ok(0)) | Ok(Err(_)) => {
                return (String::from_utf8_lossy(&received).into_owned(), true)
            }
            Ok(Ok(read)) => received.extend_from_slice(&buffer[..read]),
        }
    }
}

/// Sends one keep-alive request for `/healthz` and reads its answer's status line.
async fn healthz(stream: &mut TcpStream) -> Option<String> {
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: verdict\r\n\r\n")
        .await
        .ok()?;
    let mut buffer = [0; 4096];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buffer))
        .await
        .ok()?
        .ok()?;
    let text = String::from_utf8_lossy(&buffer[..read]).into_owned();
    text.lines().next().map(str::to_owned)
}

#[tokio::test]
async fn a_client_sending_its_headers_slower_than_the_timeout_is_disconnected() {
    let app = TestApp::spawn_with(&[("VERDICT_HEADER_READ_TIMEOUT", "500ms")]).await;
    let mut stream = connect_from(&app, Ipv4Addr::LOCALHOST).await;
    let started = Instant::now();
    let mut closed = false;
    for byte in b"GET /healthz HTTP/1.1\r\nhost: verdict\r\nx-slow: yes\r\n\r\n" {
        if stream.write_all(&[*byte]).await.is_err() {
            closed = true;
            break;
        }
        let (_, gone) = read_until_closed(&mut stream, Duration::from_millis(100)).await;
        if gone {
            closed = true;
            break;
        }
    }
    assert!(closed, "the slow client kept its connection");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn a_kept_alive_connection_idle_past_the_timeout_is_closed() {
    let app = TestApp::spawn_with(&[("VERDICT_HEADER_READ_TIMEOUT", "500ms")]).await;
    let mut stream = connect_from(&app, Ipv4Addr::LOCALHOST).await;
    assert_eq!(healthz(&mut stream).await.unwrap(), "HTTP/1.1 200 OK");
    let (_, closed) = read_until_closed(&mut stream, Duration::from_secs(3)).await;
    assert!(closed, "the idle connection stayed open");
}

#[tokio::test]
async fn connections_beyond_the_limit_of_one_address_are_refused_while_another_is_served() {
    let app = TestApp::spawn_with(&[("VERDICT_MAX_CONNECTIONS_PER_IP", "3")]).await;
    // The harness's own client may hold one of this address's places; the held
    // connections fill the rest.
    let mut held = Vec::new();
    let mut refused = None;
    for _ in 0..4 {
        let mut stream = connect_from(&app, Ipv4Addr::LOCALHOST).await;
        match healthz(&mut stream).await {
            Some(status) if status == "HTTP/1.1 200 OK" => held.push(stream),
            answer => {
                refused = Some(answer);
                break;
            }
        }
    }
    let refused = refused.expect("a connection beyond the limit was served");
    assert!(
        refused.is_none() || refused.as_deref() == Some("HTTP/1.1 503 Service Unavailable"),
        "{refused:?}"
    );
    assert!(held.len() <= 3);

    let mut other = connect_from(&app, Ipv4Addr::new(127, 0, 0, 2)).await;
    assert_eq!(healthz(&mut other).await.unwrap(), "HTTP/1.1 200 OK");

    drop(held);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut again = connect_from(&app, Ipv4Addr::LOCALHOST).await;
    assert_eq!(healthz(&mut again).await.unwrap(), "HTTP/1.1 200 OK");
}

#[tokio::test]
async fn connections_beyond_the_total_limit_are_refused() {
    let app = TestApp::spawn_with(&[("VERDICT_MAX_CONNECTIONS", "3")]).await;
    let mut held = Vec::new();
    let mut refused = false;
    for source in 2..=6 {
        let mut stream = connect_from(&app, Ipv4Addr::new(127, 0, 0, source)).await;
        match healthz(&mut stream).await {
            Some(status) if status == "HTTP/1.1 200 OK" => held.push(stream),
            _ => {
                refused = true;
                break;
            }
        }
    }
    assert!(refused, "every connection was served");
    assert!(held.len() <= 3);
}

/// A project with a run, and an API token with `role` in it.
async fn run_and_token(app: &TestApp, role: &str) -> (String, String) {
    let admin = app.admin_token().await;
    app.project(&admin, "web").await;
    let created = app
        .post(
            &admin,
            "/api/v1/projects/web/runs",
            json!({ "name": "nightly" }),
        )
        .await;
    assert_eq!(created.status(), 201);
    let run: serde_json::Value = created.json().await.unwrap();
    let (_, token) = app.api_token(&admin, "web", role).await;
    (run["id"].as_str().unwrap().to_owned(), token)
}

/// The head of a JSON `POST` to `path` as `token`, announcing `length` body bytes.
fn post_head(path: &str, token: &str, length: usize) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nhost: verdict\r\nauthorization: Bearer {token}\r\n\
         content-type: application/json\r\ncontent-length: {length}\r\n\r\n"
    )
}

/// Announces a JSON body of `announced` bytes to `path` as `token` and sends only its
/// first bytes; returns the status line the gateway answers with before the rest is sent.
async fn post_announcing(app: &TestApp, token: &str, path: &str, announced: usize) -> String {
    let mut stream = connect_from(app, Ipv4Addr::LOCALHOST).await;
    let head = post_head(path, token, announced);
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&[b' '; 1024]).await.unwrap();
    let (answer, _) = read_until_closed(&mut stream, Duration::from_secs(3)).await;
    answer.lines().next().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn a_viewer_posting_a_large_results_body_is_refused_before_it_is_read() {
    let app = TestApp::spawn().await;
    let (run, viewer) = run_and_token(&app, "viewer").await;
    let path = format!("/api/v1/runs/{run}/results");
    let status = post_announcing(&app, &viewer, &path, 20 << 20).await;
    assert_eq!(status, "HTTP/1.1 403 Forbidden");
}

#[tokio::test]
async fn a_viewer_finishing_a_run_is_refused_before_the_body_is_read() {
    let app = TestApp::spawn().await;
    let (run, viewer) = run_and_token(&app, "viewer").await;
    let path = format!("/api/v1/runs/{run}/finish");
    let status = post_announcing(&app, &viewer, &path, 512 << 10).await;
    assert_eq!(status, "HTTP/1.1 403 Forbidden");
}

#[tokio::test]
async fn a_viewer_importing_a_large_report_is_refused_before_it_is_read() {
    let app = TestApp::spawn().await;
    let (_, viewer) = run_and_token(&app, "viewer").await;
    let status = post_announcing(&app, &viewer, "/api/v1/projects/web/imports", 20 << 20).await;
    assert_eq!(status, "HTTP/1.1 403 Forbidden");
}

#[tokio::test]
async fn a_request_in_flight_when_the_gateway_stops_is_still_answered() {
    let mut app = TestApp::spawn().await;
    let (run, reporter) = run_and_token(&app, "reporter").await;
    let body = json!({ "results": [{ "name": "in flight", "status": "passed" }] }).to_string();
    let (first, rest) = body.as_bytes().split_at(body.len() / 2);
    let mut stream = connect_from(&app, Ipv4Addr::LOCALHOST).await;
    let head = post_head(
        &format!("/api/v1/runs/{run}/results"),
        &reporter,
        body.len(),
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(first).await.unwrap();
    // Time for the gateway to take the connection and start on the request: one still
    // waiting in the listen queue at the stop would be refused.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let finish_sending = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        stream.write_all(rest).await.unwrap();
        read_until_closed(&mut stream, Duration::from_secs(5)).await
    };
    let ((answer, closed), ()) = tokio::join!(finish_sending, app.stop(Component::Gateway));
    assert!(answer.starts_with("HTTP/1.1 202 Accepted"), "{answer}");
    assert!(closed, "the connection stayed open after the stop");
}
