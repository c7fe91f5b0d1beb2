//! Retries: what is repeated, how long the client waits, and that a creating POST keeps
//! its Idempotency-Key across attempts.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use verdict_client::{Client, RetryPolicy};
use verdict_contracts::runs::NewRun;
use verdict_contracts::ServiceName;
use verdict_testkit::{Component, TestApp};

fn new_run(name: &str) -> NewRun {
    NewRun {
        name: name.to_owned(),
        attributes: BTreeMap::new(),
        started_at: None,
        ..NewRun::default()
    }
}

/// The `Idempotency-Key` of every request a fake gateway received, and how many
/// unavailable answers it gives before it creates.
#[derive(Clone, Default)]
struct Recorder {
    keys: Arc<Mutex<Vec<Option<String>>>>,
    failures_left: Arc<Mutex<u32>>,
}

impl Recorder {
    fn keys(&self) -> Vec<Option<String>> {
        self.keys.lock().unwrap().clone()
    }
}

async fn create_run(State(recorder): State<Recorder>, headers: HeaderMap) -> Response {
    let key = headers
        .get("idempotency-key")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    recorder.keys.lock().unwrap().push(key);
    let mut failures_left = recorder.failures_left.lock().unwrap();
    if *failures_left > 0 {
        *failures_left -= 1;
        let problem = r#"{"type":"urn:verdict:problem:service-unavailable","title":"Service Unavailable","status":503,"detail":"a backend service is unavailable; retry shortly"}"#;
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [
                ("content-type", "application/problem+json"),
                ("retry-after", "0"),
            ],
            problem,
        )
            .into_response();
    }
    let run = r#"{"id":"0192a24d-0000-7000-8000-000000000001","project_id":"0192a24d-0000-7000-8000-0000000000ff","name":"nightly","status":"running","attributes":{},
        "started_at":"2026-12-06T08:00:00Z","finished_at":null,"duration_ms":null,
        "counts":{"total":0,"passed":0,"failed":0,"skipped":0,"errored":0,"flaky":0}}"#;
    (
        StatusCode::CREATED,
        [("content-type", "application/json")],
        run,
    )
        .into_response()
}

/// A local HTTP server standing in for a gateway: it fails `failures` times with 503,
/// then creates.
async fn fake_gateway(failures: u32) -> (String, Recorder) {
    let recorder = Recorder {
        failures_left: Arc::new(Mutex::new(failures)),
        ..Recorder::default()
    };
    let app = Router::new()
        .route("/api/v1/projects/{project}/runs", post(create_run))
        .route("/api/v1/auth/login", post(create_run))
        .with_state(recorder.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, recorder)
}

#[tokio::test]
async fn a_retried_creating_post_carries_the_same_idempotency_key() {
    let (url, recorder) = fake_gateway(1).await;
    let client = Client::builder(url).token("t").build().unwrap();
    let run = client.create_run("web", &new_run("nightly")).await.unwrap();
    assert_eq!(run.id.to_string(), "0192a24d-0000-7000-8000-000000000001");
    let keys = recorder.keys();
    assert_eq!(keys.len(), 2, "one 503, then the retry that created");
    assert_eq!(keys[0], keys[1]);
    let key = uuid::Uuid::parse_str(keys[0].as_deref().unwrap()).unwrap();
    assert_eq!(key.get_version_num(), 7);
}

#[tokio::test]
async fn each_logical_creating_post_has_its_own_idempotency_key() {
    let (url, recorder) = fake_gateway(0).await;
    let client = Client::builder(url).token("t").build().unwrap();
    client.create_run("web", &new_run("a")).await.unwrap();
    client.create_run("web", &new_run("b")).await.unwrap();
    let keys = recorder.keys();
    assert_eq!(keys.len(), 2);
    assert_ne!(keys[0], keys[1]);
}

#[tokio::test]
async fn retries_end_with_the_last_problem_when_the_budget_is_spent() {
    let (url, recorder) = fake_gateway(u32::MAX).await;
    let budget = Duration::from_millis(800);
    let client = Client::builder(url)
        .retry(RetryPolicy {
            budget,
            base: Duration::from_millis(50),
            cap: Duration::from_millis(200),
        })
        .build()
        .unwrap();
    let started = Instant::now();
    let error = client.create_run("web", &new_run("a")).await.unwrap_err();
    assert!(started.elapsed() < budget + Duration::from_millis(500));
    assert_eq!(error.status(), Some(StatusCode::SERVICE_UNAVAILABLE));
    assert_eq!(
        error.problem().unwrap().retry_after,
        Some(Duration::ZERO),
        "Retry-After: 0 is kept"
    );
    assert!(
        recorder.keys().len() >= 3,
        "{} attempts",
        recorder.keys().len()
    );
}

#[tokio::test]
async fn a_call_that_is_not_safe_to_repeat_is_sent_once() {
    let (url, recorder) = fake_gateway(u32::MAX).await;
    let client = Client::builder(url).build().unwrap();
    let error = client
        .login(
            "a@example.com".to_owned().try_into().unwrap(),
            "password".to_owned().try_into().unwrap(),
        )
        .await
        .unwrap_err();
    assert_eq!(error.status(), Some(StatusCode::SERVICE_UNAVAILABLE));
    assert_eq!(recorder.keys(), vec![None], "one attempt, without a key");
}

#[tokio::test]
async fn a_refused_connection_is_retried_until_the_server_listens() {
    let port = verdict_testkit::ports::free_port();
    let client = Client::builder(format!("http://127.0.0.1:{port}"))
        .build()
        .unwrap();
    let late_server = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(700)).await;
        let app = Router::new().route("/healthz", axum::routing::get(|| async { "ok" }));
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        axum::serve(listener, app).await
    });
    client.healthz().await.unwrap();
    late_server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_waits_out_a_stopped_service_as_retry_after_says() {
    let mut app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let project = app.project(&admin, "web").await;
    let client = Client::builder(app.url("")).token(&admin).build().unwrap();
    let no_retries = Client::builder(app.url(""))
        .token(&admin)
        .retry(RetryPolicy::none())
        .build()
        .unwrap();
    app.stop(Component::Service(ServiceName::Runs)).await;

    let refused = no_retries
        .create_run(&project, &new_run("refused"))
        .await
        .unwrap_err();
    let problem = refused.problem().expect("a problem answer");
    assert_eq!(problem.status, 503);
    assert_eq!(problem.retry_after, Some(Duration::from_secs(1)));

    let started = Instant::now();
    let pending = tokio::spawn({
        let client = client.clone();
        let project = project.clone();
        async move {
            client
                .create_run(&project, &new_run("after the restart"))
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    app.start(Component::Service(ServiceName::Runs)).await;
    let run = pending.await.unwrap().expect("created once runs is back");
    assert!(started.elapsed() >= Duration::from_millis(1500));
    assert_eq!(client.run(run.id).await.unwrap().name, "after the restart");
}
