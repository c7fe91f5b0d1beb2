//! Imports on an S3 store whose public endpoint the services cannot reach (as inside a
//! container, where `localhost` is the container): the gateway uploads reports and the
//! runs service reads them through the store's internal endpoint, in parts above the
//! multipart threshold; and the services' HTTP client speaks TLS to https URLs.

use std::time::Duration;

use serde_json::Value;
use tokio::io::AsyncReadExt;
use verdict_testkit::{junit_report, BlobStoreKind, TestApp};

const WAIT: Duration = Duration::from_secs(60);

async fn import_on_s3(overrides: &[(&str, &str)], report: Vec<u8>) -> (TestApp, String, Value) {
    let app = TestApp::spawn_internal_only(BlobStoreKind::S3, overrides).await;
    let admin = app.admin_token().await;
    app.project(&admin, "web").await;
    let (_, token) = app.api_token(&admin, "web", "reporter").await;
    let import = app
        .submit_import(&token, "web", "application/xml", report)
        .await;
    let settled = app.import_settled(&token, &import, WAIT).await;
    (app, token, settled)
}

async fn stored_report(app: &TestApp, token: &str, import: &Value) -> Value {
    let listed: Value = app
        .get_as(
            token,
            &format!(
                "/api/v1/runs/{}/artifacts",
                import["run_id"].as_str().unwrap()
            ),
        )
        .await
        .json()
        .await
        .unwrap();
    listed["items"][0].clone()
}

#[tokio::test]
async fn a_report_is_imported_through_the_stores_internal_endpoint() {
    let report = junit_report(300, 10, 100);
    let size = report.len();
    let (app, token, import) = import_on_s3(&[], report).await;

    assert_eq!(import["status"], "done", "{import}");
    assert_eq!(import["counts"]["total"], 300);
    assert_eq!(import["counts"]["failed"], 30);
    let stored = stored_report(&app, &token, &import).await;
    assert_eq!(
        (stored["state"].as_str(), stored["size"].as_u64()),
        (Some("stored"), Some(size as u64))
    );
}

#[tokio::test]
async fn a_report_above_the_multipart_threshold_is_uploaded_in_parts() {
    let report = junit_report(3_100, 10, 4_000);
    let size = report.len();
    assert!(size > 12 << 20, "{size} bytes");
    let (app, token, import) = import_on_s3(
        &[
            ("VERDICT_S3_MULTIPART_THRESHOLD", &(6u64 << 20).to_string()),
            ("VERDICT_S3_PART_SIZE", &(5u64 << 20).to_string()),
        ],
        report,
    )
    .await;

    assert_eq!(import["status"], "done", "{import}");
    assert_eq!(import["counts"]["total"], 3_100);
    let stored = stored_report(&app, &token, &import).await;
    assert_eq!(
        (stored["state"].as_str(), stored["size"].as_u64()),
        (Some("stored"), Some(size as u64))
    );
}

#[tokio::test]
async fn https_urls_are_reached_over_tls() {
    verdict_testkit::install_tls_provider();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let request = tokio::spawn(async move {
        reqwest::Client::new()
            .get(format!("https://{address}/"))
            .timeout(Duration::from_secs(5))
            .send()
            .await
    });
    let (mut socket, _) = tokio::time::timeout(Duration::from_secs(5), listener.accept())
        .await
        .expect("the client never connected: no TLS for https")
        .unwrap();
    let mut first = [0u8; 3];
    socket.read_exact(&mut first).await.unwrap();
    // A TLS record: handshake (22), protocol version 3.x.
    assert_eq!(&first[..2], &[0x16, 0x03], "{first:?}");
    drop(socket);
    assert!(request.await.unwrap().is_err());
}
