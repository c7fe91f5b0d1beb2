//! Metrics as Prometheus scrapes them: every part serves its metrics on an admin
//! listener of its own process (the API port serves none), in a text format a
//! Prometheus parser reads and `promtool check metrics` finds nothing wrong with;
//! histograms have buckets; every metric the operators' dashboard
//! (`deploy/grafana/verdict.json`) queries exists.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use prometheus_parse::{Sample, Scrape, Value as Measured};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use verdict_testkit::{
    access_token, junit_report, TestApp, TestCluster, ADMIN_EMAIL, ADMIN_PASSWORD,
};

/// What an operator needs from each part, with the kind Prometheus must see.
const REQUIRED: [(&str, Kind); 19] = [
    // gateway
    ("verdict_http_requests_total", Kind::Counter),
    ("verdict_http_request_duration_seconds", Kind::Histogram),
    ("verdict_live_sockets", Kind::Gauge),
    ("verdict_live_frames_total", Kind::Counter),
    // every service, through the bus
    ("verdict_bus_request_duration_seconds", Kind::Histogram),
    // runs
    ("verdict_ingest_batches_applied_total", Kind::Counter),
    ("verdict_ingest_results_applied_total", Kind::Counter),
    ("verdict_ingest_apply_duration_seconds", Kind::Histogram),
    ("verdict_work_queue_messages", Kind::Gauge),
    ("verdict_work_queue_oldest_message_age_seconds", Kind::Gauge),
    ("verdict_import_duration_seconds", Kind::Histogram),
    ("verdict_text_index_results_waiting", Kind::Gauge),
    // realtime
    ("verdict_live_sequencing_lag_seconds", Kind::Histogram),
    ("verdict_live_events_pending", Kind::Gauge),
    // artifacts
    ("verdict_artifact_uploaded_bytes_total", Kind::Counter),
    ("verdict_artifact_downloaded_bytes_total", Kind::Counter),
    ("verdict_artifact_sweeps_total", Kind::Counter),
    // auth
    ("verdict_auth_logins_total", Kind::Counter),
    ("verdict_auth_password_hash_queue_depth", Kind::Gauge),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

fn parse(text: &str) -> Scrape {
    Scrape::parse(text.lines().map(|line| Ok(line.to_owned()))).expect("Prometheus text")
}

fn kind_of(sample: &Sample) -> Option<Kind> {
    match &sample.value {
        Measured::Counter(_) => Some(Kind::Counter),
        Measured::Gauge(_) => Some(Kind::Gauge),
        Measured::Histogram(_) => Some(Kind::Histogram),
        _ => None,
    }
}

/// The samples of metric `name`.
fn samples<'s>(scrape: &'s Scrape, name: &str) -> Vec<&'s Sample> {
    scrape.samples.iter().filter(|s| s.metric == name).collect()
}

/// Checks that `name` is served as `kind` with help text, a histogram with `_bucket`
/// series up to `le="+Inf"`; answers what is wrong.
fn problem_with(scrape: &Scrape, name: &str, kind: Kind) -> Option<String> {
    let found = samples(scrape, name);
    if found.is_empty() {
        return Some(format!("{name} is missing"));
    }
    if let Some(other) = found.iter().find(|s| kind_of(s) != Some(kind)) {
        return Some(format!("{name} is {:?}, not {kind:?}", other.value));
    }
    if !scrape.docs.contains_key(name) {
        return Some(format!("{name} has no HELP"));
    }
    let bucketless = found.iter().any(|sample| match &sample.value {
        Measured::Histogram(buckets) => {
            !buckets.iter().any(|bucket| bucket.less_than.is_infinite()) || buckets.len() < 2
        }
        _ => false,
    });
    bucketless.then(|| format!("{name} has no buckets up to le=\"+Inf\""))
}

/// `promtool check metrics` of `text`: panics with what it reports, if anything.
async fn promtool_finds_nothing(part: &str, text: &str) {
    let Some(promtool) = promtool(&format!("check metrics of {part}")) else {
        return;
    };
    let mut child = tokio::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool starts");
    let mut stdin = child.stdin.take().expect("promtool's stdin");
    stdin.write_all(text.as_bytes()).await.expect("to promtool");
    drop(stdin);
    let output = child.wait_with_output().await.expect("promtool ends");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success() && report.trim().is_empty(),
        "promtool check metrics of {part}: {report}\n{text}"
    );
}

/// promtool, for `check`. Without it the check is skipped with a message, except in CI
/// (`CI=true`), where that is a failure.
fn promtool(check: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .chain([PathBuf::from("/usr/bin")])
        .map(|dir| dir.join("promtool"))
        .find(|path| path.is_file());
    if found.is_none() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "promtool is missing in CI; deploy/install-deps.sh installs it"
        );
        eprintln!("SKIPPED promtool {check}: promtool is not installed (deploy/install-deps.sh installs it)");
    }
    found
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Traffic that touches every part: a login, results posted to a run a viewer watches
/// live, a finish, an imported report, an artifact stored and downloaded. Returns the
/// scrape once the results are applied and the import is done.
async fn scrape_after_traffic(app: &TestApp) -> String {
    let token = app.admin_token().await;
    app.project(&token, "web").await;
    let run: Value = app
        .post(
            &token,
            "/api/v1/projects/web/runs",
            json!({"name": "nightly"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let run = run["id"].as_str().unwrap().to_owned();
    let mut viewer = app.live(&token).await;
    viewer.subscribe(&format!("run:{run}"), None).await;
    viewer.json(Duration::from_secs(5)).await;
    let results: Vec<Value> = (0..20)
        .map(|n| json!({"name": format!("test {n}"), "status": "passed"}))
        .collect();
    let posted = app
        .post(
            &token,
            &format!("/api/v1/runs/{run}/results"),
            json!({ "results": results }),
        )
        .await;
    assert_eq!(posted.status(), 202);
    // The viewer sees the batch: frames sequenced by realtime, sent by the gateway.
    viewer.json(Duration::from_secs(10)).await;

    let bytes = b"a screenshot".to_vec();
    let declared: Value = app
        .post(
            &token,
            &format!("/api/v1/runs/{run}/artifacts"),
            json!({"name": "shot.png", "content_type": "image/png", "size": bytes.len(), "sha256": sha256_hex(&bytes)}),
        )
        .await
        .json()
        .await
        .unwrap();
    let id = declared["id"].as_str().unwrap();
    let uploaded = app
        .http
        .put(declared["upload"]["url"].as_str().unwrap())
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(uploaded.status(), 200);
    let completed = app
        .post(
            &token,
            &format!("/api/v1/artifacts/{id}/complete"),
            json!({}),
        )
        .await;
    assert_eq!(completed.status(), 200);
    let downloaded = app
        .get_as(&token, &format!("/api/v1/artifacts/{id}/download"))
        .await;
    assert_eq!(downloaded.bytes().await.unwrap(), bytes);

    let finished = app
        .post(&token, &format!("/api/v1/runs/{run}/finish"), json!({}))
        .await;
    assert_eq!(finished.status(), 202);
    let import = app
        .submit_import(&token, "web", "application/xml", junit_report(5, 10, 0))
        .await;
    let import = app
        .import_settled(&token, &import, Duration::from_secs(30))
        .await;
    assert_eq!(import["status"], "done", "{import}");

    let started = Instant::now();
    loop {
        let text = app.scrape().await;
        let applied = samples(&parse(&text), "verdict_ingest_results_applied_total")
            .iter()
            .any(|s| matches!(s.value, Measured::Counter(n) if n >= 20.0));
        if applied {
            return text;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "results never counted as applied: {text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn every_required_metric_is_scraped_from_the_admin_listener_after_traffic() {
    let app = TestApp::spawn().await;
    let text = scrape_after_traffic(&app).await;
    let scrape = parse(&text);

    let problems: Vec<String> = REQUIRED
        .iter()
        .filter_map(|(name, kind)| problem_with(&scrape, name, *kind))
        .collect();
    assert!(problems.is_empty(), "{problems:#?}\n{text}");
    let login_outcomes: BTreeSet<&str> = samples(&scrape, "verdict_auth_logins_total")
        .iter()
        .filter_map(|s| s.labels.get("outcome"))
        .collect();
    assert!(login_outcomes.contains("success"), "{login_outcomes:?}");
    promtool_finds_nothing("the test app", &text).await;
}

#[tokio::test]
async fn bus_request_durations_are_labelled_by_service_operation_and_outcome() {
    let app = TestApp::spawn().await;
    let token = app.admin_token().await;
    // A run id no run has: the gateway asks the runs service, which answers not found.
    let missing = app
        .get_as(&token, "/api/v1/runs/01a24dd3-1a36-742d-af3e-72998a5a73e1")
        .await;
    assert_eq!(missing.status(), 404);

    let scrape = parse(&app.scrape().await);
    let labelled = |service: &str, operation: &str, outcome: &str| {
        samples(&scrape, "verdict_bus_request_duration_seconds")
            .iter()
            .any(|s| {
                s.labels.get("service") == Some(service)
                    && s.labels.get("operation") == Some(operation)
                    && s.labels.get("outcome") == Some(outcome)
            })
    };
    assert!(labelled("auth", "login", "ok"));
    assert!(labelled("runs", "get_run", "not_found"));
}

/// The value of the one sample of `name` with `label` (when given), 0 when absent.
fn value_of(scrape: &Scrape, name: &str, label: Option<(&str, &str)>) -> f64 {
    samples(scrape, name)
        .iter()
        .filter(|s| label.is_none_or(|(key, value)| s.labels.get(key) == Some(value)))
        .find_map(|s| match s.value {
            Measured::Counter(value) | Measured::Gauge(value) => Some(value),
            _ => None,
        })
        .unwrap_or(0.0)
}

#[tokio::test]
async fn logins_waiting_for_a_hashing_slot_are_counted_and_each_login_by_its_outcome() {
    let app = TestApp::spawn_with(&[
        ("VERDICT_AUTH_MAX_CONCURRENT_HASHES", "1"),
        ("VERDICT_AUTH_HASH_QUEUE_WAIT", "300ms"),
    ])
    .await;
    let logins: Vec<_> = (0..20)
        .map(|_| {
            let request = app
                .http
                .post(app.url("/api/v1/auth/login"))
                .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}));
            tokio::spawn(async move { request.send().await.unwrap().status().as_u16() })
        })
        .collect();
    let mut deepest: f64 = 0.0;
    while logins.iter().any(|login| !login.is_finished()) {
        let scrape = parse(&app.scrape().await);
        deepest = deepest.max(value_of(
            &scrape,
            "verdict_auth_password_hash_queue_depth",
            None,
        ));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut statuses = Vec::new();
    for login in logins {
        statuses.push(login.await.unwrap());
    }

    assert!(deepest >= 1.0, "no login was seen waiting");
    let scrape = parse(&app.scrape().await);
    assert_eq!(
        value_of(&scrape, "verdict_auth_password_hash_queue_depth", None),
        0.0
    );
    let count = |status| statuses.iter().filter(|s| **s == status).count() as f64;
    let outcome = |outcome| {
        value_of(
            &scrape,
            "verdict_auth_logins_total",
            Some(("outcome", outcome)),
        )
    };
    assert_eq!(outcome("success"), count(200), "{statuses:?}");
    assert_eq!(outcome("busy"), count(503), "{statuses:?}");
}

#[tokio::test]
async fn the_api_port_serves_no_metrics() {
    let app = TestApp::spawn().await;
    assert_eq!(app.get("/metrics").await.status(), 404);
    let openapi: Value = app.get("/api/v1/openapi.json").await.json().await.unwrap();
    assert!(openapi["paths"].get("/metrics").is_none());
}

/// The metric names a PromQL expression refers to (`verdict_…`).
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = expr;
    while let Some(start) = rest.find("verdict_") {
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.insert(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

/// Every `expr` of the dashboard's panels, however deeply nested (rows hold panels).
fn dashboard_expressions() -> Vec<String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/grafana/verdict.json");
    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("the dashboard"))
            .expect("the dashboard is JSON");
    let mut found = Vec::new();
    let mut pending = vec![&dashboard];
    while let Some(value) = pending.pop() {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(expr)) = map.get("expr") {
                    found.push(expr.clone());
                }
                pending.extend(map.values());
            }
            Value::Array(items) => pending.extend(items),
            _ => {}
        }
    }
    found
}

#[tokio::test]
async fn every_metric_the_dashboard_queries_is_served() {
    let expressions = dashboard_expressions();
    assert!(expressions.len() >= 10, "{expressions:?}");
    let app = TestApp::spawn().await;
    let scrape = parse(&scrape_after_traffic(&app).await);
    let served: BTreeSet<String> = scrape
        .samples
        .iter()
        .flat_map(|sample| {
            let name = sample.metric.clone();
            match sample.value {
                Measured::Histogram(_) => {
                    vec![
                        format!("{name}_bucket"),
                        format!("{name}_sum"),
                        format!("{name}_count"),
                    ]
                }
                _ => vec![name],
            }
        })
        .collect();

    let unknown: BTreeSet<String> = expressions
        .iter()
        .flat_map(|expr| metric_names(expr))
        .filter(|name| !served.contains(name))
        .collect();
    assert!(
        unknown.is_empty(),
        "the dashboard queries metrics no part serves: {unknown:?}"
    );
}

/// Each expression of the dashboard as PromQL that promtool parses: Grafana's
/// `$__rate_interval` becomes a plain range.
#[test]
fn the_dashboard_queries_are_valid_promql() {
    let Some(promtool) = promtool("check rules of the dashboard's queries") else {
        return;
    };
    let rules: Vec<Value> = dashboard_expressions()
        .iter()
        .enumerate()
        .map(|(n, expr)| {
            json!({"record": format!("dashboard:query_{n}"), "expr": expr.replace("$__rate_interval", "5m")})
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    // JSON is YAML, which promtool reads rules from.
    let file = dir.path().join("dashboard-rules.yml");
    let groups = json!({"groups": [{"name": "dashboard", "rules": rules}]});
    std::fs::write(&file, groups.to_string()).unwrap();
    let output = std::process::Command::new(promtool)
        .args(["check", "rules"])
        .arg(&file)
        .output()
        .expect("promtool runs");
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn metric_names_are_found_in_promql() {
    let names = metric_names(
        "histogram_quantile(0.99, sum by (le, route) (rate(verdict_http_request_duration_seconds_bucket[$__rate_interval]))) / verdict_live_sockets",
    );
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        [
            "verdict_http_request_duration_seconds_bucket",
            "verdict_live_sockets"
        ]
    );
}

/// POSTs `body` to `path` through the cluster's load balancer; the answer, which must be
/// `status`.
async fn posted(
    cluster: &TestCluster,
    token: Option<&str>,
    path: &str,
    body: Value,
    status: u16,
) -> Value {
    let mut request = cluster.http.post(cluster.url(path)).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), status, "POST {path}");
    response.json().await.unwrap()
}

#[tokio::test]
async fn every_process_of_the_scaled_deployment_serves_its_own_metrics() {
    let cluster = TestCluster::start(env!("CARGO_BIN_EXE_verdict-cluster-node")).await;
    let http = &cluster.http;
    let credentials = json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD});
    let token = access_token(&posted(&cluster, None, "/api/v1/auth/login", credentials, 200).await);
    let token = token.as_str();
    let project = json!({"slug": "web", "name": "Web"});
    posted(&cluster, Some(token), "/api/v1/projects", project, 201).await;
    let nightly = json!({"name": "nightly"});
    let run = posted(
        &cluster,
        Some(token),
        "/api/v1/projects/web/runs",
        nightly,
        201,
    )
    .await;
    // Realtime answers no request of its own here: a viewer's subscription asks it.
    for gateway in cluster.gateway_urls() {
        let mut viewer = verdict_testkit::LiveClient::connect(&gateway, Some(token))
            .await
            .unwrap();
        viewer
            .subscribe(&format!("run:{}", run["id"].as_str().unwrap()), None)
            .await;
        viewer.json(Duration::from_secs(10)).await;
        // Artifacts: a listing of the run's artifacts, through each gateway.
        let listed = http
            .get(format!(
                "{gateway}/api/v1/runs/{}/artifacts",
                run["id"].as_str().unwrap()
            ))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(listed.status(), 200);
        // Notify: a listing of the project's webhooks.
        let webhooks = http
            .get(format!("{gateway}/api/v1/projects/web/webhooks"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(webhooks.status(), 200);
    }

    for (part, url) in cluster.metrics_urls() {
        let response = http.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 200, "{part}: GET {url}");
        let text = response.text().await.unwrap();
        let scrape = parse(&text);
        let is_gateway = part.starts_with("gateway");
        let http_measured = !samples(&scrape, "verdict_http_requests_total").is_empty();
        assert_eq!(
            http_measured, is_gateway,
            "{part} measures HTTP requests: {text}"
        );
        if is_gateway {
            assert_eq!(
                problem_with(
                    &scrape,
                    "verdict_http_request_duration_seconds",
                    Kind::Histogram
                ),
                None,
                "{part}"
            );
        } else {
            assert_eq!(
                problem_with(
                    &scrape,
                    "verdict_bus_request_duration_seconds",
                    Kind::Histogram
                ),
                None,
                "{part}"
            );
            let services: BTreeSet<&str> = samples(&scrape, "verdict_bus_request_duration_seconds")
                .iter()
                .filter_map(|s| s.labels.get("service"))
                .collect();
            assert_eq!(services, BTreeSet::from([part.as_str()]), "{part}: {text}");
        }
        promtool_finds_nothing(&part, &text).await;
    }
}
