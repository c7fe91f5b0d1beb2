//! Notifications: project webhooks, their signed deliveries (Standard Webhooks) with
//! retries that survive a restart, the delivery log, Slack messages, destination
//! rules and commit statuses, against real HTTP receivers on loopback.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{json, Value};
use sha2::Sha256;
use verdict_contracts::ServiceName;
use verdict_testkit::{Component, ReceivedRequest, Receiver, TestApp};

const WAIT: Duration = Duration::from_secs(20);

/// Loopback allowed (the receivers live there), quick retries, run links.
const SETTINGS: [(&str, &str); 4] = [
    ("VERDICT_NOTIFY_ALLOWED_NETWORKS", "127.0.0.1"),
    ("VERDICT_NOTIFY_RETRY_FIRST", "300ms"),
    ("VERDICT_NOTIFY_RETRY_MAX", "1s"),
    ("VERDICT_PUBLIC_URL", "http://verdict.test"),
];

/// An app with [`SETTINGS`] and `extra`.
async fn spawn(extra: &[(&str, &str)]) -> TestApp {
    let mut settings: Vec<(&str, &str)> = SETTINGS.to_vec();
    settings.extend_from_slice(extra);
    TestApp::spawn_with(&settings).await
}

struct Project {
    token: String,
    slug: String,
}

async fn project(app: &TestApp, slug: &str) -> Project {
    let token = app.admin_token().await;
    app.project(&token, slug).await;
    Project {
        token,
        slug: slug.to_owned(),
    }
}

async fn create_webhook(app: &TestApp, project: &Project, body: Value) -> reqwest::Response {
    app.post(
        &project.token,
        &format!("/api/v1/projects/{}/webhooks", project.slug),
        body,
    )
    .await
}

/// Creates a webhook; returns it, its secret included.
async fn webhook(app: &TestApp, project: &Project, body: Value) -> Value {
    let response = create_webhook(app, project, body).await;
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

/// A run with one passed and one failed test (and `attributes`), finished; its id.
async fn finished_run(app: &TestApp, project: &Project, attributes: Value) -> String {
    let results = json!([
        { "suite": "checkout", "name": "pays", "status": "failed", "message": "expected 200, got 500" },
        { "suite": "checkout", "name": "lists", "status": "passed" },
    ]);
    finished_run_with(app, project, attributes, results).await
}

/// A run with `attributes` and `results`, finished; its id.
async fn finished_run_with(
    app: &TestApp,
    project: &Project,
    attributes: Value,
    results: Value,
) -> String {
    let created = app
        .post(
            &project.token,
            &format!("/api/v1/projects/{}/runs", project.slug),
            json!({ "name": "nightly", "attributes": attributes }),
        )
        .await;
    assert_eq!(created.status(), 201);
    let run: Value = created.json().await.unwrap();
    let run_id = run["id"].as_str().unwrap().to_owned();
    let posted = app
        .post(
            &project.token,
            &format!("/api/v1/runs/{run_id}/results"),
            json!({ "results": results }),
        )
        .await;
    assert_eq!(posted.status(), 202);
    let finished = app
        .post(
            &project.token,
            &format!("/api/v1/runs/{run_id}/finish"),
            json!({}),
        )
        .await;
    assert_eq!(finished.status(), 202);
    run_id
}

async fn deliveries(app: &TestApp, project: &Project, webhook_id: &str) -> Vec<Value> {
    let response = app
        .get_as(
            &project.token,
            &format!(
                "/api/v1/projects/{}/webhooks/{webhook_id}/deliveries",
                project.slug
            ),
        )
        .await;
    assert_eq!(response.status(), 200);
    let page: Value = response.json().await.unwrap();
    page["items"].as_array().unwrap().clone()
}

/// Polls the delivery log until `done` holds for it; panics after [`WAIT`].
async fn wait_for_log(
    app: &TestApp,
    project: &Project,
    webhook_id: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let log = deliveries(app, project, webhook_id).await;
        if done(&log) {
            return log;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "delivery log never got there: {log:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn id(value: &Value) -> String {
    value["id"].as_str().unwrap().to_owned()
}

/// An app with [`SETTINGS`] and `extra`, a receiver, and project `slug` with one
/// webhook to the receiver's `/hook` for `events`, in the default format.
struct Subscribed {
    app: TestApp,
    receiver: Receiver,
    project: Project,
    webhook: Value,
    webhook_id: String,
}

async fn subscribed(extra: &[(&str, &str)], slug: &str, events: Value) -> Subscribed {
    let app = spawn(extra).await;
    let receiver = Receiver::start().await;
    let project = project(&app, slug).await;
    let webhook = webhook(
        &app,
        &project,
        json!({ "url": receiver.url("/hook"), "events": events }),
    )
    .await;
    Subscribed {
        webhook_id: id(&webhook),
        app,
        receiver,
        project,
        webhook,
    }
}

/// The delivery log once its newest delivery succeeded.
async fn once_succeeded(app: &TestApp, project: &Project, webhook_id: &str) -> Vec<Value> {
    wait_for_log(app, project, webhook_id, |log| {
        log.first().is_some_and(|d| d["status"] == "succeeded")
    })
    .await
}

#[tokio::test]
async fn maintainers_create_list_change_and_delete_webhooks_and_see_the_secret_once() {
    let Subscribed {
        app,
        project,
        webhook: created,
        ..
    } = subscribed(
        &[],
        "hooks",
        json!(["run.failed", "run.finished", "run.failed"]),
    )
    .await;
    let secret = created["secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_"), "{created}");
    assert_eq!(STANDARD.decode(&secret[6..]).unwrap().len(), 32);
    assert_eq!(created["events"], json!(["run.finished", "run.failed"]));
    assert_eq!(created["format"], "verdict");
    assert_eq!(created["enabled"], true);
    let webhook_id = id(&created);
    let path = format!("/api/v1/projects/hooks/webhooks/{webhook_id}");

    let listed: Value = app
        .get_as(&project.token, "/api/v1/projects/hooks/webhooks")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    assert!(listed["items"][0].get("secret").is_none(), "{listed}");
    let fetched: Value = app
        .get_as(&project.token, &path)
        .await
        .json()
        .await
        .unwrap();
    assert!(fetched.get("secret").is_none());

    let changed = app
        .send(
            Method::PATCH,
            &project.token,
            &path,
            Some(json!({ "format": "slack", "enabled": false })),
        )
        .await;
    assert_eq!(changed.status(), 200);
    let changed: Value = changed.json().await.unwrap();
    assert_eq!(
        (changed["format"].clone(), changed["enabled"].clone()),
        (json!("slack"), json!(false))
    );

    let deleted = app.send(Method::DELETE, &project.token, &path, None).await;
    assert_eq!(deleted.status(), 204);
    assert_eq!(app.get_as(&project.token, &path).await.status(), 404);
}

#[tokio::test]
async fn only_maintainers_manage_webhooks() {
    let app = spawn(&[]).await;
    let project = project(&app, "roles").await;
    let (_, reporter) = app.api_token(&project.token, "roles", "reporter").await;
    let response = app
        .post(
            &reporter,
            "/api/v1/projects/roles/webhooks",
            json!({ "url": "http://127.0.0.1:9/hook", "events": ["run.finished"] }),
        )
        .await;
    assert_eq!(response.status(), 403);
    let listed = app
        .get_as(&reporter, "/api/v1/projects/roles/webhooks")
        .await;
    assert_eq!(listed.status(), 403);
}

#[tokio::test]
async fn invalid_webhooks_are_refused_naming_the_field() {
    let app = spawn(&[]).await;
    let project = project(&app, "invalid").await;
    for (body, field) in [
        (
            json!({ "url": "ftp://127.0.0.1/x", "events": ["run.finished"] }),
            "url",
        ),
        (
            json!({ "url": "http://127.0.0.1:9/x", "events": [] }),
            "events",
        ),
        (
            json!({ "url": "http://127.0.0.1:9/x", "events": ["run.exploded"] }),
            "events",
        ),
        (
            json!({ "url": "http://127.0.0.1:9/x", "events": ["run.finished"], "secret": "mine" }),
            "secret",
        ),
    ] {
        let response = create_webhook(&app, &project, body.clone()).await;
        assert_eq!(response.status(), 400, "{body}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
        let problem = response.text().await.unwrap();
        assert!(problem.contains(field), "{body}: {problem}");
    }
}

#[tokio::test]
async fn a_loopback_destination_is_refused_unless_its_network_is_allowed() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let project = project(&app, "refused").await;
    let response = create_webhook(
        &app,
        &project,
        json!({ "url": receiver.url("/hook"), "events": ["run.finished"] }),
    )
    .await;
    assert_eq!(response.status(), 400);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let problem: Value = response.json().await.unwrap();
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains("127.0.0.1, a loopback address"), "{detail}");
    assert!(
        detail.contains("VERDICT_NOTIFY_ALLOWED_NETWORKS"),
        "{detail}"
    );
    for url in [
        "http://10.1.2.3/hook",
        "http://169.254.169.254/latest",
        "http://[::1]/",
    ] {
        let response = create_webhook(
            &app,
            &project,
            json!({ "url": url, "events": ["run.finished"] }),
        )
        .await;
        assert_eq!(response.status(), 400, "{url}");
    }
}

#[tokio::test]
async fn a_destination_refused_later_is_checked_again_at_delivery() {
    let Subscribed {
        mut app,
        receiver,
        project,
        webhook_id,
        ..
    } = subscribed(&[], "rechecked", json!(["run.finished"])).await;
    // The operator no longer allows loopback: the saved webhook may not reach it.
    app.stop(Component::Service(ServiceName::Notify)).await;
    app.set("VERDICT_NOTIFY_ALLOWED_NETWORKS", "");
    app.start(Component::Service(ServiceName::Notify)).await;
    finished_run(&app, &project, json!({})).await;
    let log = wait_for_log(&app, &project, &webhook_id, |log| {
        log.first()
            .is_some_and(|d| d["attempts"].as_u64() >= Some(1))
    })
    .await;
    let error = log[0]["error"].as_str().unwrap();
    assert!(error.contains("a loopback address"), "{error}");
    assert!(receiver.received().is_empty());
}

/// Verifies the Standard Webhooks signature of `request` with `secret` as a receiver
/// would, with no code of the service.
fn assert_signed_with(secret: &str, request: &ReceivedRequest) {
    let (msg_id, timestamp) = (
        request.header("webhook-id"),
        request.header("webhook-timestamp"),
    );
    let key = STANDARD
        .decode(secret.trim_start_matches("whsec_"))
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{msg_id}.{timestamp}.").as_bytes());
    mac.update(&request.body);
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    assert_eq!(request.header("webhook-signature"), expected);
}

#[tokio::test]
async fn deliveries_carry_standard_webhooks_signatures_over_the_run() {
    let Subscribed {
        app,
        receiver,
        project,
        webhook: created,
        webhook_id,
        ..
    } = subscribed(&[], "signed", json!(["run.failed"])).await;
    let run_id = finished_run(&app, &project, json!({})).await;
    let request = receiver.wait_for(1, WAIT).await.remove(0);

    assert_signed_with(created["secret"].as_str().unwrap(), &request);
    let msg_id = request.header("webhook-id");
    let sent_at: i64 = request.header("webhook-timestamp").parse().unwrap();
    assert!((time::OffsetDateTime::now_utc().unix_timestamp() - sent_at).abs() < 60);
    assert_eq!(request.header("content-type"), "application/json");

    let body = request.json();
    assert_eq!(body["type"], "run.failed");
    assert_eq!(body["data"]["run"]["id"], run_id.as_str());
    assert_eq!(body["data"]["run"]["status"], "failed");
    assert_eq!(body["data"]["run"]["counts"]["failed"], 1);
    assert_eq!(body["data"]["failures"][0]["name"], "pays");
    assert_eq!(
        body["data"]["url"],
        format!("http://verdict.test/runs/{run_id}")
    );
    let log = deliveries(&app, &project, &webhook_id).await;
    assert_eq!(log[0]["id"], msg_id);
}

#[tokio::test]
async fn a_receiver_that_fails_twice_gets_the_same_webhook_id_three_times() {
    let Subscribed {
        app,
        receiver,
        project,
        webhook_id,
        ..
    } = subscribed(&[], "retried", json!(["run.finished"])).await;
    receiver.answer_with(&[500, 500]);
    finished_run(&app, &project, json!({})).await;
    let received = receiver.wait_for(3, WAIT).await;
    let ids: Vec<&str> = received.iter().map(|r| r.header("webhook-id")).collect();
    assert_eq!(ids, [ids[0]; 3], "{ids:?}");
    let log = once_succeeded(&app, &project, &webhook_id).await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["attempts"], 3);
    assert_eq!(log[0]["response_status"], 200);
    assert!(log[0]["latency_ms"].is_u64());
    assert_eq!(log[0]["error"], Value::Null);
}

#[tokio::test]
async fn redirects_are_not_followed_and_count_as_failed_attempts() {
    let Subscribed {
        app,
        receiver,
        project,
        webhook_id,
        ..
    } = subscribed(
        &[("VERDICT_NOTIFY_RETRY_FIRST", "2s")],
        "redirected",
        json!(["run.finished"]),
    )
    .await;
    let elsewhere = Receiver::start().await;
    receiver.redirect_to(&elsewhere.url("/stolen"));
    receiver.answer_with(&[307]);
    finished_run(&app, &project, json!({})).await;
    let log = wait_for_log(&app, &project, &webhook_id, |log| {
        log.first().is_some_and(|d| d["attempts"] == 1)
    })
    .await;
    assert_eq!(log[0]["status"], "pending");
    assert_eq!(log[0]["response_status"], 307);
    let error = log[0]["error"].as_str().unwrap();
    assert!(error.contains("redirects are not followed"), "{error}");
    once_succeeded(&app, &project, &webhook_id).await;
    assert_eq!(receiver.received().len(), 2);
    assert!(elsewhere.received().is_empty());
}

#[tokio::test]
async fn a_delivery_survives_notify_being_killed_between_attempts() {
    let Subscribed {
        mut app,
        receiver,
        project,
        webhook_id,
        ..
    } = subscribed(
        &[("VERDICT_NOTIFY_RETRY_FIRST", "2s")],
        "restarted",
        json!(["run.finished"]),
    )
    .await;
    receiver.answer_with(&[500]);
    finished_run(&app, &project, json!({})).await;
    receiver.wait_for(1, WAIT).await;
    // Between attempts: the first is recorded, the second waits for its time.
    wait_for_log(&app, &project, &webhook_id, |log| {
        log.first().is_some_and(|d| d["attempts"] == 1)
    })
    .await;
    app.kill(Component::Service(ServiceName::Notify)).await;
    app.start(Component::Service(ServiceName::Notify)).await;
    let received = receiver.wait_for(2, WAIT).await;
    assert_eq!(
        received[0].header("webhook-id"),
        received[1].header("webhook-id")
    );
    let log = once_succeeded(&app, &project, &webhook_id).await;
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0]["attempts"], 2, "{log:?}");
    // Nothing more is sent once it succeeded.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(receiver.received().len(), 2);
}

#[tokio::test]
async fn a_delivery_is_sent_again_on_request_with_its_id() {
    let Subscribed {
        app,
        receiver,
        project,
        webhook: created,
        webhook_id,
        ..
    } = subscribed(&[], "again", json!(["run.finished"])).await;
    finished_run(&app, &project, json!({})).await;
    let first = receiver.wait_for(1, WAIT).await.remove(0);
    let delivery_id = first.header("webhook-id").to_owned();
    let log = once_succeeded(&app, &project, &webhook_id).await;
    assert_eq!(log[0]["id"], delivery_id.as_str());
    let response = app
        .post(
            &project.token,
            &format!(
                "/api/v1/projects/again/webhooks/{}/deliveries/{delivery_id}/redeliver",
                id(&created)
            ),
            json!({}),
        )
        .await;
    assert_eq!(response.status(), 202);
    let again = receiver.wait_for(2, WAIT).await.remove(1);
    assert_eq!(again.header("webhook-id"), delivery_id);
    assert_eq!(again.body, first.body);
    let missing = app
        .post(
            &project.token,
            &format!(
                "/api/v1/projects/again/webhooks/{}/deliveries/nope/redeliver",
                id(&created)
            ),
            json!({}),
        )
        .await;
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn a_webhook_that_keeps_failing_is_disabled_and_says_why() {
    let Subscribed {
        app,
        receiver,
        project,
        webhook: created,
        webhook_id,
        ..
    } = subscribed(
        &[("VERDICT_NOTIFY_DISABLE_AFTER", "1s")],
        "disabled",
        json!(["run.finished"]),
    )
    .await;
    receiver.answer_with(&[503; 100]);
    finished_run(&app, &project, json!({})).await;
    let path = format!("/api/v1/projects/disabled/webhooks/{}", id(&created));
    let deadline = tokio::time::Instant::now() + WAIT;
    let webhook = loop {
        let webhook: Value = app
            .get_as(&project.token, &path)
            .await
            .json()
            .await
            .unwrap();
        if webhook["enabled"] == false {
            break webhook;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never disabled: {webhook}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let reason = webhook["disabled_reason"].as_str().unwrap();
    assert!(reason.contains("every delivery failed since"), "{reason}");
    assert!(reason.contains("503"), "{reason}");
    let log = deliveries(&app, &project, &webhook_id).await;
    assert_eq!(log[0]["status"], "failed");

    // Enabled again by its owner, it starts clean.
    let enabled: Value = app
        .send(
            Method::PATCH,
            &project.token,
            &path,
            Some(json!({ "enabled": true })),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(enabled["disabled_reason"], Value::Null);
    assert_eq!(enabled["failing_since"], Value::Null);
}

#[tokio::test]
async fn slack_webhooks_get_an_incoming_webhook_message() {
    let app = spawn(&[]).await;
    let receiver = Receiver::start().await;
    let project = project(&app, "chat").await;
    webhook(
        &app,
        &project,
        json!({ "url": receiver.url("/services/T0/B0/x"), "events": ["run.failed"], "format": "slack" }),
    )
    .await;
    let run_id = finished_run(&app, &project, json!({})).await;
    let body = receiver.wait_for(1, WAIT).await[0].json();
    assert_eq!(
        body["text"],
        "nightly failed: 1 passed, 1 failed of 2 tests"
    );
    let blocks = body["blocks"].to_string();
    assert!(
        blocks.contains(&format!(
            "<http://verdict.test/runs/{run_id}|nightly> failed"
        )),
        "{blocks}"
    );
    assert!(
        blocks.contains("checkout › pays`: expected 200, got 500"),
        "{blocks}"
    );
}

#[tokio::test]
async fn a_run_with_a_commit_gets_a_github_commit_status() {
    let provider = Receiver::start().await;
    let api = provider.url("/api/v3");
    let app = spawn(&[
        ("VERDICT_NOTIFY_GITHUB_API", &api),
        ("VERDICT_NOTIFY_GITHUB_TOKEN", "ghp_test_token"),
    ])
    .await;
    let project = project(&app, "github").await;
    let sha = "0123456789abcdef0123456789abcdef01234567";
    let run_id = finished_run(
        &app,
        &project,
        json!({ "git.commit": sha, "git.repository": "acme/shop" }),
    )
    .await;
    let request = provider.wait_for(1, WAIT).await.remove(0);
    assert_eq!(request.method, Method::POST);
    assert_eq!(
        request.path,
        format!("/api/v3/repos/acme/shop/statuses/{sha}")
    );
    assert_eq!(request.header("authorization"), "Bearer ghp_test_token");
    assert_eq!(request.header("accept"), "application/vnd.github+json");
    assert!(!request.header("user-agent").is_empty());
    assert_eq!(
        request.json(),
        json!({
            "state": "failure",
            "target_url": format!("http://verdict.test/runs/{run_id}"),
            "description": "1 passed, 1 failed of 2 tests",
            "context": "verdict",
        })
    );
}

#[tokio::test]
async fn a_run_naming_gitlab_gets_a_gitlab_commit_status() {
    let provider = Receiver::start().await;
    let api = provider.url("/api/v4");
    let app = spawn(&[
        ("VERDICT_NOTIFY_GITHUB_TOKEN", "ghp_unused"),
        ("VERDICT_NOTIFY_GITLAB_API", &api),
        ("VERDICT_NOTIFY_GITLAB_TOKEN", "glpat-test-token"),
    ])
    .await;
    let project = project(&app, "gitlab").await;
    let sha = "89abcdef0123";
    let run_id = finished_run(
        &app,
        &project,
        json!({ "git.commit": sha, "git.repository": "group/shop", "git.provider": "gitlab" }),
    )
    .await;
    let request = provider.wait_for(1, WAIT).await.remove(0);
    assert_eq!(
        request.path,
        format!("/api/v4/projects/group%2Fshop/statuses/{sha}")
    );
    assert_eq!(request.header("private-token"), "glpat-test-token");
    assert_eq!(request.header("authorization"), "");
    assert_eq!(
        request.json(),
        json!({
            "state": "failed",
            "name": "verdict",
            "target_url": format!("http://verdict.test/runs/{run_id}"),
            "description": "1 passed, 1 failed of 2 tests",
        })
    );
}

#[tokio::test]
async fn new_failure_signatures_and_flaky_tests_are_delivered_once_for_the_run_that_brought_them() {
    let Subscribed {
        app,
        receiver,
        project,
        webhook_id,
        ..
    } = subscribed(&[], "news", json!(["failure.new", "test.flaky"])).await;
    let finished = webhook(
        &app,
        &project,
        json!({ "url": receiver.url("/finished"), "events": ["run.finished"] }),
    )
    .await;
    let results = json!([
        { "suite": "checkout", "name": "pays", "status": "failed", "message": "expected 200, got 500" },
        { "suite": "login", "name": "works", "status": "failed", "attempt": 1, "message": "timeout" },
        { "suite": "login", "name": "works", "status": "passed", "attempt": 2 },
    ]);

    let first = finished_run_with(&app, &project, json!({}), results.clone()).await;
    let news = receiver.wait_for(3, WAIT).await;

    let of_type = |kind: &str| -> Value {
        news.iter()
            .filter(|request| request.path == "/hook")
            .map(|request| request.json())
            .find(|body| body["type"] == kind)
            .unwrap_or_else(|| panic!("no {kind} delivery"))
    };
    let new_failure = of_type("failure.new");
    assert_eq!(new_failure["data"]["run"]["id"], first.as_str());
    // The flaky test's failed attempt brought a signature of its own.
    let mut patterns: Vec<&str> = new_failure["data"]["new_failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|group| group["pattern"].as_str().unwrap())
        .collect();
    patterns.sort_unstable();
    assert_eq!(patterns, ["expected {n}, got {n}", "timeout"]);
    assert_eq!(
        of_type("test.flaky")["data"]["flaky_tests"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // The same failure again, nothing flaky: nothing new to tell.
    finished_run_with(&app, &project, json!({}), json!([results[0]])).await;
    wait_for_log(&app, &project, &id(&finished), |log| log.len() == 2).await;
    assert_eq!(deliveries(&app, &project, &webhook_id).await.len(), 2);
}

#[tokio::test]
async fn webhook_secrets_are_sealed_at_rest_when_a_key_encryption_key_is_set() {
    let key = STANDARD.encode([5u8; 32]);
    let Subscribed {
        app,
        receiver,
        project,
        webhook,
        ..
    } = subscribed(
        &[("VERDICT_KEY_ENCRYPTION_KEY", key.as_str())],
        "sealed",
        json!(["run.finished"]),
    )
    .await;
    let secret = webhook["secret"].as_str().unwrap();

    finished_run(&app, &project, json!({})).await;

    assert_signed_with(secret, &receiver.wait_for(1, WAIT).await[0]);
    let key_bytes = secret.trim_start_matches("whsec_").as_bytes();
    let database = app.data_dir().join("notify.db");
    assert!(database.exists(), "no {}", database.display());
    for file in ["notify.db", "notify.db-wal"] {
        let stored = std::fs::read(app.data_dir().join(file)).unwrap_or_default();
        assert!(
            !stored
                .windows(key_bytes.len())
                .any(|window| window == key_bytes),
            "{file} holds the secret"
        );
    }
}
