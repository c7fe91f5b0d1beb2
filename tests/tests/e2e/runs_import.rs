//! Importing JUnit XML and CTRF JSON reports, on both blob stores (S3 with a public
//! endpoint nothing resolves: reports move only inside the deployment).

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;
use verdict_testkit::{BlobStoreKind, TestApp};

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../services/runs/tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// What a JUnit report says of itself: the sums of its `<testsuite>` attributes (and,
/// where suites do not declare `skipped`, as gotestsum's do not, its `<skipped>` elements).
fn declared_junit(xml: &str) -> (u64, u64, u64, u64) {
    let attribute = |tag: &str, name: &str| -> u64 {
        tag.split(&format!(" {name}=\""))
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    let mut sums = (0, 0, 0, 0);
    for tag in xml
        .split("<testsuite ")
        .skip(1)
        .map(|rest| rest.split('>').next().unwrap_or_default())
    {
        let tag = format!(" {tag}");
        sums.0 += attribute(&tag, "tests");
        sums.1 += attribute(&tag, "failures");
        sums.2 += attribute(&tag, "errors");
        sums.3 += attribute(&tag, "skipped");
    }
    if !xml.contains(" skipped=\"") {
        sums.3 = xml.matches("<skipped").count() as u64;
    }
    sums
}

struct Importer {
    app: TestApp,
    token: String,
}

impl Importer {
    async fn new(store: BlobStoreKind) -> Self {
        let app = TestApp::spawn_internal_only(store, &[]).await;
        let admin = app.admin_token().await;
        app.project(&admin, "web").await;
        let (_, token) = app.api_token(&admin, "web", "reporter").await;
        Self { app, token }
    }

    async fn import(&self, content_type: &str, body: Vec<u8>) -> Value {
        let import = self
            .app
            .submit_import(&self.token, "web", content_type, body)
            .await;
        self.app
            .import_settled(&self.token, &import, Duration::from_secs(20))
            .await
    }

    async fn run(&self, id: &str) -> Value {
        self.app
            .get_as(&self.token, &format!("/api/v1/runs/{id}"))
            .await
            .json()
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn junit_reports_of_each_dialect_import_with_the_counts_they_declare() {
    junit_dialects(BlobStoreKind::Disk).await;
}

#[tokio::test]
async fn junit_reports_of_each_dialect_import_with_the_counts_they_declare_on_s3() {
    junit_dialects(BlobStoreKind::S3).await;
}

async fn junit_dialects(store: BlobStoreKind) {
    let importer = Importer::new(store).await;
    for name in [
        "pytest.xml",
        "jest-junit.xml",
        "surefire.xml",
        "gotestsum.xml",
        "playwright.xml",
    ] {
        let xml = fixture(name);
        let (tests, failures, errors, skipped) = declared_junit(&String::from_utf8_lossy(&xml));
        let import = importer.import("application/xml", xml).await;
        assert_eq!(import["status"], "done", "{name}: {import}");
        let run = importer.run(import["run_id"].as_str().unwrap()).await;
        let counts = &run["counts"];
        assert_eq!(counts["total"], tests, "{name} total: {counts}");
        assert_eq!(counts["failed"], failures, "{name} failed: {counts}");
        assert_eq!(counts["errored"], errors, "{name} errored: {counts}");
        assert_eq!(counts["skipped"], skipped, "{name} skipped: {counts}");
        assert_eq!(
            counts["passed"],
            tests - failures - errors - skipped,
            "{name} passed: {counts}"
        );
        assert_eq!(import["counts"], *counts);
        assert_ne!(run["status"], "running");
        assert_eq!(run["attributes"]["ci"], "true");
    }
}

#[tokio::test]
async fn a_ctrf_report_imports_with_the_counts_of_its_summary() {
    ctrf_summary(BlobStoreKind::Disk).await;
}

#[tokio::test]
async fn a_ctrf_report_imports_with_the_counts_of_its_summary_on_s3() {
    ctrf_summary(BlobStoreKind::S3).await;
}

async fn ctrf_summary(store: BlobStoreKind) {
    let importer = Importer::new(store).await;
    let json = fixture("ctrf.json");
    let summary: Value =
        serde_json::from_slice::<Value>(&json).unwrap()["results"]["summary"].clone();
    let import = importer.import("application/json", json).await;
    assert_eq!(import["status"], "done", "{import}");
    let counts = importer.run(import["run_id"].as_str().unwrap()).await["counts"].clone();
    assert_eq!(counts["total"], summary["tests"]);
    assert_eq!(counts["passed"], summary["passed"]);
    assert_eq!(counts["failed"], summary["failed"]);
    let not_run = summary["skipped"].as_u64().unwrap()
        + summary["pending"].as_u64().unwrap()
        + summary["other"].as_u64().unwrap();
    assert_eq!(counts["skipped"], not_run);
}

#[tokio::test]
async fn a_malformed_report_fails_naming_line_and_column_and_leaves_no_results() {
    malformed_report(BlobStoreKind::Disk).await;
}

#[tokio::test]
async fn a_malformed_report_fails_naming_line_and_column_and_leaves_no_results_on_s3() {
    malformed_report(BlobStoreKind::S3).await;
}

async fn malformed_report(store: BlobStoreKind) {
    let importer = Importer::new(store).await;
    let broken = b"<testsuites>\n  <testsuite name=\"a\">\n    <testcase name=\"x\"></testsuite>\n</testsuites>\n".to_vec();
    let import = importer.import("application/xml", broken).await;
    assert_eq!(import["status"], "failed");
    let error = import["error"].as_str().unwrap();
    assert!(error.contains("line 3"), "{error}");
    let run_id = import["run_id"].as_str().unwrap();
    assert_eq!(importer.run(run_id).await["counts"]["total"], 0);
    let results: Value = importer
        .app
        .get_as(&importer.token, &format!("/api/v1/runs/{run_id}/results"))
        .await
        .json()
        .await
        .unwrap();
    assert!(results["items"].as_array().unwrap().is_empty());

    let json = importer
        .import(
            "application/json",
            b"{\"results\": {\"tests\": [ }".to_vec(),
        )
        .await;
    assert_eq!(json["status"], "failed");
    assert!(json["error"].as_str().unwrap().contains("line 1"), "{json}");
}

#[tokio::test]
async fn the_raw_report_is_kept_as_an_artifact_of_the_run() {
    raw_report_kept(BlobStoreKind::Disk).await;
}

#[tokio::test]
async fn the_raw_report_is_kept_as_an_artifact_of_the_run_on_s3() {
    raw_report_kept(BlobStoreKind::S3).await;
}

async fn raw_report_kept(store: BlobStoreKind) {
    let importer = Importer::new(store).await;
    let xml = fixture("pytest.xml");
    let import = importer.import("application/xml", xml.clone()).await;
    let run_id = import["run_id"].as_str().unwrap();
    let artifacts: Value = importer
        .app
        .get_as(&importer.token, &format!("/api/v1/runs/{run_id}/artifacts"))
        .await
        .json()
        .await
        .unwrap();
    let report = &artifacts["items"][0];
    assert_eq!(report["name"], "report.xml");
    assert_eq!(report["size"], xml.len());
    assert_eq!(report["state"], "stored");
}

#[tokio::test]
async fn other_content_types_are_refused() {
    let importer = Importer::new(BlobStoreKind::Disk).await;
    let response = importer
        .app
        .http
        .post(importer.app.url("/api/v1/projects/web/imports"))
        .bearer_auth(&importer.token)
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
}

#[tokio::test]
async fn an_import_id_that_is_no_id_is_not_found_like_an_unknown_one() {
    let importer = Importer::new(BlobStoreKind::Disk).await;
    for id in ["no-such-import", "01a24dd3-1a36-742d-af3e-72998a5a73e1"] {
        let response = importer
            .app
            .http
            .get(importer.app.url(&format!("/api/v1/imports/{id}")))
            .bearer_auth(&importer.token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{id}");
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["detail"], "import not found", "{id}");
    }
}
