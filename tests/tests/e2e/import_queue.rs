//! The import queue: an accepted import does not depend on its submitter's session, and
//! an import that cannot be done fails on its own after bounded retries instead of
//! holding up every import behind it. On both blob stores; on S3 with a public endpoint
//! nothing resolves, since reports move only inside the deployment.

use std::time::Duration;

use serde_json::{json, Value};
use verdict_bus::RequestError;
use verdict_contracts::artifacts::{self, ReportRef};
use verdict_contracts::ErrorCode;
use verdict_testkit::{junit_report, BlobStoreKind, TestApp};

const XML: &str = "application/xml";

/// Test cases of the report that keeps the import worker busy while a test arranges
/// what the worker will find next.
const BUSY_CASES: usize = 15_000;

/// Submits a large report; the worker takes it at once and is busy with it for a while.
async fn occupy_the_worker(app: &TestApp, token: &str, project: &str) -> Value {
    app.submit_import(token, project, XML, junit_report(BUSY_CASES, 1, 0))
        .await
}

/// What a test arranged behind a busy worker only means something if the worker was
/// still busy when it was done.
async fn assert_still_busy(app: &TestApp, token: &str, busy: &Value) {
    assert_eq!(
        app.import_status(token, busy).await["status"],
        "pending",
        "the worker finished its large import before the test was arranged; enlarge it"
    );
}

#[tokio::test]
async fn an_accepted_import_completes_after_its_submitter_is_disabled() {
    completes_after_its_submitter_is_disabled(BlobStoreKind::Disk).await;
}

#[tokio::test]
async fn an_accepted_import_completes_after_its_submitter_is_disabled_on_s3() {
    completes_after_its_submitter_is_disabled(BlobStoreKind::S3).await;
}

async fn completes_after_its_submitter_is_disabled(store: BlobStoreKind) {
    let app = TestApp::spawn_internal_only(store, &[]).await;
    let admin = app.admin_token().await;
    app.project(&admin, "web").await;
    let (user_id, user_token) = app.user(&admin, "ci-user@verdict.test").await;
    let joined = app
        .send(
            reqwest::Method::PUT,
            &admin,
            &format!("/api/v1/projects/web/members/{user_id}"),
            Some(json!({ "role": "reporter" })),
        )
        .await;
    assert_eq!(joined.status(), 200);

    let busy = occupy_the_worker(&app, &admin, "web").await;
    let import = app
        .submit_import(&user_token, "web", XML, junit_report(30, 1, 0))
        .await;
    let disabled = app
        .send(
            reqwest::Method::PATCH,
            &admin,
            &format!("/api/v1/users/{user_id}"),
            Some(json!({ "disabled": true })),
        )
        .await;
    assert_eq!(disabled.status(), 200);
    assert_still_busy(&app, &admin, &busy).await;

    let settled = app
        .import_settled(&admin, &import, Duration::from_secs(60))
        .await;
    assert_eq!(settled["status"], "done", "{settled}");
    assert_eq!(settled["counts"]["total"], 30);
    assert_eq!(settled["counts"]["failed"], 3);
}

#[tokio::test]
async fn an_import_whose_report_is_gone_fails_after_bounded_retries_and_holds_up_no_other() {
    fails_when_its_report_is_gone_and_holds_up_no_other(BlobStoreKind::Disk).await;
}

#[tokio::test]
async fn an_import_whose_report_is_gone_fails_after_bounded_retries_and_holds_up_no_other_on_s3() {
    fails_when_its_report_is_gone_and_holds_up_no_other(BlobStoreKind::S3).await;
}

async fn fails_when_its_report_is_gone_and_holds_up_no_other(store: BlobStoreKind) {
    let app = TestApp::spawn_internal_only(
        store,
        &[
            ("VERDICT_IMPORT_ATTEMPTS", "3"),
            ("VERDICT_IMPORT_BACKOFF", "500ms"),
        ],
    )
    .await;
    let admin = app.admin_token().await;
    app.project(&admin, "web").await;
    app.project(&admin, "api").await;

    let busy = occupy_the_worker(&app, &admin, "web").await;
    let lost = app
        .submit_import(&admin, "web", XML, junit_report(10, 1, 0))
        .await;
    let artifacts: Value = app
        .get_as(
            &admin,
            &format!(
                "/api/v1/runs/{}/artifacts",
                lost["run_id"].as_str().unwrap()
            ),
        )
        .await
        .json()
        .await
        .unwrap();
    app.remove_blob(artifacts["items"][0]["id"].as_str().unwrap());
    let later = app
        .submit_import(&admin, "api", XML, junit_report(20, 1, 0))
        .await;
    assert_still_busy(&app, &admin, &busy).await;

    let later = app
        .import_settled(&admin, &later, Duration::from_secs(60))
        .await;
    assert_eq!(later["status"], "done", "{later}");
    assert_eq!(later["counts"]["total"], 20);

    let lost = app
        .import_settled(&admin, &lost, Duration::from_secs(30))
        .await;
    assert_eq!(lost["status"], "failed", "{lost}");
    let reason = lost["error"].as_str().unwrap();
    assert!(
        reason.contains("report") && reason.contains("3 attempts"),
        "{reason}"
    );
    assert!(
        !reason.contains("X-Amz") && !reason.contains("signature"),
        "{reason}"
    );
    let run: Value = app
        .get_as(
            &admin,
            &format!("/api/v1/runs/{}", lost["run_id"].as_str().unwrap()),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(run["status"], "interrupted");
    assert_eq!(run["counts"]["total"], 0);
}

#[tokio::test]
async fn the_report_source_answers_only_for_the_report_of_the_named_run() {
    report_source_answers_only_for_the_report_of_the_named_run(BlobStoreKind::Disk).await;
}

#[tokio::test]
async fn the_report_source_answers_only_for_the_report_of_the_named_run_on_s3() {
    report_source_answers_only_for_the_report_of_the_named_run(BlobStoreKind::S3).await;
}

/// The answer is a URL the services reach: the store's internal endpoint.
async fn report_source_answers_only_for_the_report_of_the_named_run(store: BlobStoreKind) {
    let app = TestApp::spawn_internal_only(store, &[]).await;
    let admin = app.admin_token().await;
    app.project(&admin, "web").await;
    let import = app
        .submit_import(&admin, "web", XML, junit_report(5, 1, 0))
        .await;
    let run_id = import["run_id"].as_str().unwrap().to_owned();
    let listed: Value = app
        .get_as(&admin, &format!("/api/v1/runs/{run_id}/artifacts"))
        .await
        .json()
        .await
        .unwrap();
    let report_id = listed["items"][0]["id"].as_str().unwrap().to_owned();
    let attachment: Value = app
        .post(
            &admin,
            &format!("/api/v1/runs/{run_id}/artifacts"),
            json!({ "name": "log.txt", "content_type": "text/plain", "size": 1,
                    "sha256": format!("{:0>64}", "a") }),
        )
        .await
        .json()
        .await
        .unwrap();
    let other_run: Value = app
        .post(
            &admin,
            "/api/v1/projects/web/runs",
            json!({ "name": "other" }),
        )
        .await
        .json()
        .await
        .unwrap();
    let settings = verdict_bus::BusSettings::from_env(&app.env(), "test").unwrap();
    let bus = verdict_bus::Bus::new(app.nats.client().await, &settings);
    let source = |run_id: &str, artifact_id: &str| {
        let reference = ReportRef {
            run_id: run_id.parse().unwrap(),
            artifact_id: artifact_id.parse().unwrap(),
        };
        let bus = bus.clone();
        async move { bus.request(&artifacts::REPORT_SOURCE, &reference).await }
    };

    let found = source(&run_id, &report_id).await.unwrap();
    let report = reqwest::get(&found.url).await.unwrap();
    assert_eq!(report.status(), 200);
    assert_eq!(
        report.bytes().await.unwrap().as_ref(),
        junit_report(5, 1, 0)
    );
    for (run, artifact) in [
        (run_id.as_str(), attachment["id"].as_str().unwrap()),
        (other_run["id"].as_str().unwrap(), report_id.as_str()),
        (run_id.as_str(), "01a24dd3-1a36-742d-af3e-72998a5a73e1"),
    ] {
        match source(run, artifact).await {
            Err(RequestError::Service(error)) => assert_eq!(error.code, ErrorCode::NotFound),
            other => panic!("{run}/{artifact}: {other:?}"),
        }
    }
}
