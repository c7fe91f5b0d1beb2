//! `verdict up` as a user runs it: one process, its own nats-server, signals.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use verdict_testkit::ports::free_port;

struct Up {
    child: Child,
    http_port: u16,
    admin_port: u16,
    nats_port: u16,
    data: tempfile::TempDir,
}

impl Up {
    fn start() -> Self {
        let data = tempfile::tempdir().unwrap();
        let http_port = free_port();
        let admin_port = free_port();
        let nats_port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_verdict"))
            .args([
                "up",
                "--listen",
                &format!("127.0.0.1:{http_port}"),
                "--data-dir",
            ])
            .arg(data.path())
            .env_remove("NATS_URL")
            .env("VERDICT_ADMIN_EMAIL", "admin@verdict.test")
            .env("VERDICT_ADMIN_PASSWORD", "admin-password-for-tests")
            .env("VERDICT_NATS_PORT", nats_port.to_string())
            .env("VERDICT_ADMIN_LISTEN", format!("127.0.0.1:{admin_port}"))
            .stdin(Stdio::null())
            .spawn()
            .expect("start verdict up");
        Self {
            child,
            http_port,
            admin_port,
            nats_port,
            data,
        }
    }

    /// A NATS client signed in as the administrator `verdict up` made.
    async fn nats_admin(&self) -> async_nats::Client {
        let path = self
            .data
            .path()
            .join("nats")
            .join(verdict_cli::up::ADMIN_URL_FILE);
        let url = std::fs::read_to_string(path).expect("the administrator's URL");
        let (user, password) = verdict_bus::BusSettings::new(url.trim(), "test")
            .credentials()
            .expect("credentials in the URL");
        async_nats::ConnectOptions::with_user_and_password(user, password)
            .connect(format!("nats://127.0.0.1:{}", self.nats_port))
            .await
            .expect("the administrator signs in")
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.http_port)
    }

    fn admin_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.admin_port)
    }

    fn signal(&self, signal: libc::c_int) {
        // SAFETY: kill(2) on our own child; no memory is involved.
        unsafe { libc::kill(self.child.id() as libc::pid_t, signal) };
    }

    async fn wait_for_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "verdict up still running after {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

/// Waits until the gateway is ready (`/readyz`) and every service answers (each reports
/// its version through `/api/v1/version`).
async fn wait_until_ready(up: &Up, within: Duration) -> Duration {
    verdict_testkit::install_tls_provider();
    let http = reqwest::Client::new();
    let started = Instant::now();
    loop {
        if let Ok(response) = http.get(up.url("/readyz")).send().await {
            let versions = http.get(up.url("/api/v1/version")).send().await;
            let answering = match versions {
                Ok(versions) => versions
                    .json::<serde_json::Value>()
                    .await
                    .ok()
                    .and_then(|v| v["services"].as_object().cloned())
                    .is_some_and(|services| services.values().all(|v| v.is_string())),
                Err(_) => false,
            };
            if response.status() == 200 && answering {
                return started.elapsed();
            }
        }
        assert!(
            started.elapsed() < within,
            "not ready with every service answering within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn up_is_ready_within_five_seconds_and_every_service_answers_srv_ping() {
    let up = Up::start();
    let took = wait_until_ready(&up, Duration::from_secs(5)).await;
    eprintln!("ready after {took:?}");

    let client = up.nats_admin().await;
    let inbox = client.new_inbox();
    let mut replies = client.subscribe(inbox.clone()).await.unwrap();
    client
        .publish_with_reply("$SRV.PING", inbox, "".into())
        .await
        .unwrap();
    let mut names = BTreeSet::new();
    while let Ok(Some(reply)) =
        tokio::time::timeout(Duration::from_millis(500), replies.next()).await
    {
        let pong: serde_json::Value = serde_json::from_slice(&reply.payload).unwrap();
        names.insert(pong["name"].as_str().unwrap().to_owned());
    }
    for service in [
        "verdict-auth",
        "verdict-runs",
        "verdict-artifacts",
        "verdict-realtime",
        "verdict-notify",
        "verdict-gateway",
    ] {
        assert!(names.contains(service), "{service} missing from {names:?}");
    }
}

#[tokio::test]
async fn one_admin_listener_serves_the_metrics_of_every_service_and_the_api_port_none() {
    let up = Up::start();
    wait_until_ready(&up, Duration::from_secs(5)).await;
    let http = reqwest::Client::new();
    let login = http
        .post(up.url("/api/v1/auth/login"))
        .json(&serde_json::json!({"email": "admin@verdict.test", "password": "admin-password-for-tests"}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);

    let response = http.get(up.admin_url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let metrics = response.text().await.unwrap();
    // One metric of each part: gateway, auth, runs, artifacts, realtime.
    for name in [
        "verdict_http_requests_total",
        "verdict_auth_logins_total",
        "verdict_ingest_results_applied_total",
        "verdict_artifact_uploaded_bytes_total",
        "verdict_live_events_pending",
    ] {
        assert!(
            metrics.contains(&format!("\n# TYPE {name} ")),
            "{name} missing from the admin listener: {metrics}"
        );
    }
    assert!(
        metrics.lines().any(|line| line
            .starts_with("verdict_bus_request_duration_seconds_bucket{")
            && line.contains("service=\"auth\"")),
        "no bus request of auth measured: {metrics}"
    );
    let public = http.get(up.url("/metrics")).send().await.unwrap();
    assert_eq!(public.status(), 404, "the API port serves no metrics");
}

#[tokio::test]
async fn the_nats_server_of_up_lets_nobody_in_without_a_password() {
    let up = Up::start();
    wait_until_ready(&up, Duration::from_secs(5)).await;
    let anonymous = async_nats::connect(format!("nats://127.0.0.1:{}", up.nats_port)).await;
    assert!(anonymous.is_err(), "an anonymous client got in");
    let admin_url = up
        .data
        .path()
        .join("nats")
        .join(verdict_cli::up::ADMIN_URL_FILE);
    let mode = std::fs::metadata(admin_url).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the administrator's URL is private");
}

#[tokio::test]
async fn sigterm_stops_everything_with_exit_code_zero_and_stops_nats_server() {
    let mut up = Up::start();
    wait_until_ready(&up, Duration::from_secs(5)).await;

    up.signal(libc::SIGTERM);
    let status = up.wait_for_exit(Duration::from_secs(10)).await;
    assert_eq!(status.code(), Some(0));
    let nats = std::net::TcpStream::connect(("127.0.0.1", up.nats_port));
    assert!(nats.is_err(), "the nats-server child outlived verdict up");
}

#[tokio::test]
async fn sigint_stops_everything_with_exit_code_zero() {
    let mut up = Up::start();
    wait_until_ready(&up, Duration::from_secs(5)).await;

    up.signal(libc::SIGINT);
    let status = up.wait_for_exit(Duration::from_secs(10)).await;
    assert_eq!(status.code(), Some(0));
}

#[tokio::test]
async fn sigterm_during_a_request_lets_it_complete_then_exits_zero_within_ten_seconds() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let mut up = Up::start();
    wait_until_ready(&up, Duration::from_secs(5)).await;

    let body = br#"{"email":"admin@verdict.test","password":"admin-password-for-tests"}"#;
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", up.http_port))
        .await
        .unwrap();
    let head = format!(
        "POST /api/v1/auth/login HTTP/1.1\r\nHost: verdict\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body[..10]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let signalled = Instant::now();
    up.signal(libc::SIGTERM);
    tokio::time::sleep(Duration::from_millis(500)).await;
    stream.write_all(&body[10..]).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("access_token"), "{response}");

    let status = up.wait_for_exit(Duration::from_secs(10)).await;
    assert_eq!(status.code(), Some(0));
    assert!(signalled.elapsed() < Duration::from_secs(10));
}
