//! Live reporting: runs, result batches and finishes through the durable ingest.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};
use verdict_contracts::{streams, ServiceName};
use verdict_testkit::{Component, TestApp};

/// A project with a reporter API token, as a CI job has.
struct Ci {
    app: TestApp,
    project: String,
    token: String,
}

impl Ci {
    async fn new(overrides: &[(&str, &str)]) -> Self {
        let app = TestApp::spawn_with(overrides).await;
        let admin = app.admin_token().await;
        let project = app.project(&admin, "web").await;
        let (_, token) = app.api_token(&admin, &project, "reporter").await;
        Self {
            app,
            project,
            token,
        }
    }

    async fn run(&self, name: &str) -> String {
        let response = self
            .app
            .post(
                &self.token,
                &format!("/api/v1/projects/{}/runs", self.project),
                json!({ "name": name }),
            )
            .await;
        assert_eq!(response.status(), 201);
        let run: Value = response.json().await.unwrap();
        assert_eq!(run["status"], "running");
        run["id"].as_str().unwrap().to_owned()
    }

    async fn post(&self, run: &str, results: Value) -> reqwest::Response {
        self.app
            .post(
                &self.token,
                &format!("/api/v1/runs/{run}/results"),
                json!({ "results": results }),
            )
            .await
    }

    async fn get(&self, path: &str) -> Value {
        let response = self.app.get_as(&self.token, path).await;
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.unwrap()
    }

    /// Polls the run until `done` holds for it.
    async fn run_when(&self, run: &str, done: impl Fn(&Value) -> bool) -> Value {
        let started = Instant::now();
        loop {
            let value = self.get(&format!("/api/v1/runs/{run}")).await;
            if done(&value) {
                return value;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "run never got there: {value}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Every result of a run, following cursors.
    async fn all_results(&self, run: &str, query: &str) -> Vec<Value> {
        let mut results = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("/api/v1/runs/{run}/results?limit=500{query}");
            if let Some(cursor) = &cursor {
                path.push_str(&format!("&cursor={cursor}"));
            }
            let page = self.get(&path).await;
            results.extend(page["items"].as_array().unwrap().iter().cloned());
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return results,
            }
        }
    }
}

fn result(id: &str, name: &str, status: &str) -> Value {
    json!({ "id": id, "suite": "suite", "name": name, "status": status, "duration_ms": 12 })
}

#[tokio::test]
async fn results_become_queryable_and_counted_and_the_finish_decides_the_status() {
    let ci = Ci::new(&[]).await;
    let run = ci.run("nightly").await;
    let accepted = ci
        .post(
            &run,
            json!([
                result("1", "a", "passed"),
                result("2", "b", "failed"),
                result("3", "c", "skipped")
            ]),
        )
        .await;
    assert_eq!(accepted.status(), 202);
    assert_eq!(accepted.json::<Value>().await.unwrap()["accepted"], 3);
    let finish = ci
        .app
        .post(&ci.token, &format!("/api/v1/runs/{run}/finish"), json!({}))
        .await;
    assert_eq!(finish.status(), 202);

    let done = ci.run_when(&run, |r| r["status"] != "running").await;
    assert_eq!(done["status"], "failed");
    assert_eq!(
        done["counts"],
        json!({ "total": 3, "passed": 1, "failed": 1, "skipped": 1, "errored": 0, "flaky": 0, "quarantined": 0 })
    );
    assert!(done["duration_ms"].is_u64());
    let results = ci.all_results(&run, "").await;
    assert_eq!(results.len(), 3);
    assert_eq!(results[0]["name"], "a");
    assert_eq!(results[0]["test_key"].as_str().unwrap().len(), 32);
}

#[tokio::test]
async fn a_failure_recovered_by_a_retry_counts_as_passed_and_flaky() {
    let ci = Ci::new(&[]).await;
    let run = ci.run("retry").await;
    let first = json!({ "id": "x1", "name": "wobbly", "status": "failed", "attempt": 1 });
    let second = json!({ "id": "x2", "name": "wobbly", "status": "passed", "attempt": 2 });
    assert_eq!(ci.post(&run, json!([first])).await.status(), 202);
    assert_eq!(ci.post(&run, json!([second])).await.status(), 202);
    ci.app
        .post(&ci.token, &format!("/api/v1/runs/{run}/finish"), json!({}))
        .await;
    let done = ci.run_when(&run, |r| r["status"] != "running").await;
    assert_eq!(done["status"], "passed");
    assert_eq!(done["counts"]["total"], 1);
    assert_eq!(done["counts"]["passed"], 1);
    assert_eq!(done["counts"]["flaky"], 1);
}

#[tokio::test]
async fn resending_a_batch_changes_nothing() {
    let ci = Ci::new(&[]).await;
    let run = ci.run("resend").await;
    let batch = json!([result("1", "a", "passed"), result("2", "b", "failed")]);
    for _ in 0..3 {
        assert_eq!(ci.post(&run, batch.clone()).await.status(), 202);
    }
    ci.app
        .post(&ci.token, &format!("/api/v1/runs/{run}/finish"), json!({}))
        .await;
    let done = ci.run_when(&run, |r| r["status"] != "running").await;
    assert_eq!(done["counts"]["total"], 2);
    assert_eq!(ci.all_results(&run, "").await.len(), 2);
}

#[tokio::test]
async fn a_malformed_ingest_message_is_dropped_without_holding_up_the_next_ones() {
    let ci = Ci::new(&[]).await;
    let run = ci.run("garbled").await;
    let subject =
        verdict_contracts::runs::ingest_subject(ci.project.parse().unwrap(), run.parse().unwrap());
    let js = async_nats::jetstream::new(ci.app.nats.client().await);
    js.publish(subject, "{\"type\": \"results\", \"results\": 7}".into())
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!(
        ci.post(&run, json!([result("1", "a", "passed")]))
            .await
            .status(),
        202
    );
    let counted = ci.run_when(&run, |r| r["counts"]["total"] == 1).await;
    assert_eq!(counted["counts"]["passed"], 1);
    // Terminated, not left to be redelivered after the ack wait.
    let mut consumer: async_nats::jetstream::consumer::PullConsumer = js
        .get_consumer_from_stream(streams::INGEST_CONSUMER, streams::INGEST.name)
        .await
        .unwrap();
    let started = Instant::now();
    while consumer.info().await.unwrap().num_ack_pending > 0 {
        assert!(started.elapsed() < Duration::from_secs(10), "still pending");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(consumer.info().await.unwrap().num_redelivered, 0);
}

#[tokio::test]
async fn paging_through_twenty_thousand_results_returns_each_once() {
    let ci = Ci::new(&[]).await;
    let run = ci.run("big").await;
    for batch in 0..20 {
        let results: Vec<Value> = (0..1000)
            .map(|i| {
                let n = batch * 1000 + i;
                result(
                    &n.to_string(),
                    &format!("test {n}"),
                    if n % 10 == 0 { "failed" } else { "passed" },
                )
            })
            .collect();
        assert_eq!(ci.post(&run, Value::Array(results)).await.status(), 202);
    }
    ci.run_when(&run, |r| r["counts"]["total"] == 20_000).await;
    let results = ci.all_results(&run, "").await;
    assert_eq!(results.len(), 20_000);
    let ids: std::collections::HashSet<&str> =
        results.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 20_000);
    let failed = ci.all_results(&run, "&status=failed").await;
    assert_eq!(failed.len(), 2_000);
    assert!(failed.iter().all(|r| r["status"] == "failed"));
}

#[tokio::test]
async fn every_accepted_result_survives_a_crash_of_the_runs_service_exactly_once() {
    let mut ci = Ci::new(&[("VERDICT_INGEST_ACK_WAIT", "1s")]).await;
    let run = ci.run("crash").await;
    let runs = Component::Service(ServiceName::Runs);
    let mut accepted = 0;
    for batch in 0..20 {
        if batch == 7 {
            ci.app.kill(runs).await;
        }
        if batch == 13 {
            ci.app.start(runs).await;
        }
        let results: Vec<Value> = (0..1000)
            .map(|i| result(&format!("{batch}-{i}"), &format!("t{batch}-{i}"), "passed"))
            .collect();
        let response = ci.post(&run, Value::Array(results)).await;
        if response.status() == 202 {
            accepted += 1000;
        }
    }
    // While runs was down, the gateway still answered 202 from its cache of the run's
    // project and JetStream kept the batches.
    assert_eq!(accepted, 20_000);
    let done = ci.run_when(&run, |r| r["counts"]["total"] == 20_000).await;
    assert_eq!(done["counts"]["passed"], 20_000);
    let results = ci.all_results(&run, "").await;
    assert_eq!(results.len(), 20_000);
    let ids: std::collections::HashSet<&str> =
        results.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 20_000);
}

#[tokio::test]
async fn invalid_results_are_refused_naming_the_field_and_nothing_is_written() {
    let ci = Ci::new(&[]).await;
    let run = ci.run("bad").await;
    let cases = [
        (
            json!([result("1", "a", "passed"), result("2", "b", "exploded")]),
            "results[1].status",
        ),
        (
            json!([{ "name": "x".repeat(1025), "status": "passed" }]),
            "results[0].name",
        ),
        (
            json!([{ "name": "a", "status": "passed", "attempt": 0 }]),
            "results[0].attempt",
        ),
        (json!([]), "results"),
        (
            Value::Array(
                (0..1001)
                    .map(|i| result(&i.to_string(), "n", "passed"))
                    .collect(),
            ),
            "results",
        ),
    ];
    for (results, field) in cases {
        let response = ci.post(&run, results).await;
        assert_eq!(response.status(), 400, "{field}");
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
    }
    let unknown = ci
        .app
        .post(
            &ci.token,
            &format!("/api/v1/runs/{run}/results"),
            json!({ "results": [{ "name": "a", "status": "passed", "colour": "red" }] }),
        )
        .await;
    assert_eq!(unknown.status(), 400);

    ci.app
        .post(&ci.token, &format!("/api/v1/runs/{run}/finish"), json!({}))
        .await;
    let done = ci.run_when(&run, |r| r["status"] != "running").await;
    assert_eq!(done["counts"]["total"], 0);
}

#[tokio::test]
async fn long_output_is_truncated_with_a_marker() {
    let ci = Ci::new(&[]).await;
    let run = ci.run("noisy").await;
    let stdout = "y".repeat(1_100_000);
    let batch = json!([{ "id": "1", "name": "loud", "status": "passed", "stdout": stdout }]);
    assert_eq!(ci.post(&run, batch).await.status(), 202);
    ci.run_when(&run, |r| r["counts"]["total"] == 1).await;
    let results = ci.all_results(&run, "").await;
    let stored = results[0]["stdout"].as_str().unwrap();
    assert!(stored.len() <= 1 << 20);
    assert!(
        stored.contains("truncated"),
        "{}",
        &stored[stored.len() - 40..]
    );
}

#[tokio::test]
async fn a_run_left_running_past_the_timeout_becomes_interrupted() {
    let ci = Ci::new(&[
        ("VERDICT_RUN_TIMEOUT", "1s"),
        ("VERDICT_HOUSEKEEPING_EVERY", "200ms"),
    ])
    .await;
    let run = ci.run("abandoned").await;
    let done = ci.run_when(&run, |r| r["status"] != "running").await;
    assert_eq!(done["status"], "interrupted");
}

#[tokio::test]
async fn finishing_as_interrupted_is_honoured_and_other_statuses_are_refused() {
    let ci = Ci::new(&[]).await;
    let run = ci.run("cut").await;
    let refused = ci
        .app
        .post(
            &ci.token,
            &format!("/api/v1/runs/{run}/finish"),
            json!({ "status": "passed" }),
        )
        .await;
    assert_eq!(refused.status(), 400);
    let finish = ci
        .app
        .post(
            &ci.token,
            &format!("/api/v1/runs/{run}/finish"),
            json!({ "status": "interrupted" }),
        )
        .await;
    assert_eq!(finish.status(), 202);
    assert_eq!(
        ci.run_when(&run, |r| r["status"] != "running").await["status"],
        "interrupted"
    );
}

#[tokio::test]
async fn viewers_cannot_report_and_other_projects_cannot_see_the_run() {
    let ci = Ci::new(&[]).await;
    let run = ci.run("scoped").await;
    let admin = ci.app.admin_token().await;
    let viewer: Value = ci
        .app
        .post(
            &admin,
            &format!("/api/v1/projects/{}/tokens", ci.project),
            json!({ "name": "v", "role": "viewer" }),
        )
        .await
        .json()
        .await
        .unwrap();
    let viewer = viewer["token"].as_str().unwrap();
    let batch = json!({ "results": [result("1", "a", "passed")] });
    let posted = ci
        .app
        .post(
            viewer,
            &format!("/api/v1/runs/{run}/results"),
            batch.clone(),
        )
        .await;
    assert_eq!(posted.status(), 403);
    assert_eq!(
        ci.app
            .get_as(viewer, &format!("/api/v1/runs/{run}"))
            .await
            .status(),
        200
    );

    let (_, outsider) = ci.app.user(&admin, "outsider@example.com").await;
    ci.app.project(&outsider, "elsewhere").await;
    assert_eq!(
        ci.app
            .get_as(&outsider, &format!("/api/v1/runs/{run}"))
            .await
            .status(),
        404
    );
    assert_eq!(
        ci.app
            .get_as(&outsider, &format!("/api/v1/runs/{run}/results"))
            .await
            .status(),
        404
    );
    assert_eq!(
        ci.app
            .post(&outsider, &format!("/api/v1/runs/{run}/results"), batch)
            .await
            .status(),
        404
    );
    let delete = ci
        .app
        .send(
            Method::DELETE,
            &outsider,
            &format!("/api/v1/runs/{run}"),
            None,
        )
        .await;
    assert_eq!(delete.status(), 404);
}

#[tokio::test]
async fn deleting_a_run_removes_it_and_its_results() {
    let ci = Ci::new(&[]).await;
    let run = ci.run("doomed").await;
    assert_eq!(
        ci.post(&run, json!([result("1", "a", "passed")]))
            .await
            .status(),
        202
    );
    ci.run_when(&run, |r| r["counts"]["total"] == 1).await;
    // A reporter may not delete; a maintainer (here the admin) may.
    let refused = ci
        .app
        .send(
            Method::DELETE,
            &ci.token,
            &format!("/api/v1/runs/{run}"),
            None,
        )
        .await;
    assert_eq!(refused.status(), 403);
    let admin = ci.app.admin_token().await;
    let deleted = ci
        .app
        .send(Method::DELETE, &admin, &format!("/api/v1/runs/{run}"), None)
        .await;
    assert_eq!(deleted.status(), 204);
    assert_eq!(
        ci.app
            .get_as(&admin, &format!("/api/v1/runs/{run}"))
            .await
            .status(),
        404
    );
    assert_eq!(
        ci.app
            .get_as(&admin, &format!("/api/v1/runs/{run}/results"))
            .await
            .status(),
        404
    );
}

#[tokio::test]
async fn a_full_backlog_refuses_posts_with_503_and_every_accepted_result_is_applied_once_later() {
    let mut ci = Ci::new(&[("VERDICT_INGEST_MAX_BYTES", "65536")]).await;
    let run = ci.run("backlog").await;
    // The gateway learns the run's project (from runs) with its first batch.
    assert_eq!(
        ci.post(&run, json!([result("first", "first", "passed")]))
            .await
            .status(),
        202
    );
    ci.run_when(&run, |r| r["counts"]["total"] == 1).await;
    let runs = Component::Service(ServiceName::Runs);
    ci.app.stop(runs).await;
    let mut accepted = std::collections::HashSet::from(["first".to_owned()]);
    let mut refusal = None;
    for batch in 0..200 {
        let results: Vec<Value> = (0..20)
            .map(|i| result(&format!("{batch}-{i}"), &format!("t{batch}-{i}"), "passed"))
            .collect();
        let started = Instant::now();
        let response = ci.post(&run, Value::Array(results)).await;
        match response.status().as_u16() {
            202 => accepted.extend((0..20).map(|i| format!("{batch}-{i}"))),
            503 => {
                refusal = Some((response, started.elapsed()));
                break;
            }
            other => panic!("batch {batch} got {other}"),
        }
    }
    let (refusal, waited) = refusal.expect("the backlog never filled");
    assert!(
        waited < Duration::from_secs(2),
        "a full backlog is refused at once, not after retries ({waited:?})"
    );
    assert!(refusal.headers().contains_key("retry-after"));
    let problem: Value = refusal.json().await.unwrap();
    assert_eq!(problem["status"], 503);
    assert!(
        accepted.len() > 1,
        "batches were accepted while runs was down"
    );

    ci.app.start(runs).await;
    let total = accepted.len();
    ci.run_when(&run, |r| r["counts"]["total"] == total).await;
    let stored = ci.all_results(&run, "").await;
    let ids: Vec<&str> = stored.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids.len(),
        total,
        "every accepted result is stored exactly once"
    );
    assert!(ids.iter().all(|id| accepted.contains(*id)));
    // Applied messages leave the stream, so posting works again.
    assert_eq!(
        ci.post(&run, json!([result("after", "after", "passed")]))
            .await
            .status(),
        202
    );
}

#[tokio::test]
async fn applied_messages_leave_the_ingest_stream() {
    let ci = Ci::new(&[]).await;
    let run = ci.run("drained").await;
    for batch in 0..5 {
        let results: Vec<Value> = (0..100)
            .map(|i| result(&format!("{batch}-{i}"), &format!("t{batch}-{i}"), "passed"))
            .collect();
        assert_eq!(ci.post(&run, Value::Array(results)).await.status(), 202);
    }
    ci.run_when(&run, |r| r["counts"]["total"] == 500).await;
    let js = async_nats::jetstream::new(ci.app.nats.client().await);
    let started = Instant::now();
    loop {
        let mut stream = js.get_stream(streams::INGEST.name).await.unwrap();
        let messages = stream.info().await.unwrap().state.messages;
        if messages == 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{messages} applied messages are still kept"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_deleted_runs_artifacts_go_even_when_the_bus_refused_the_deletion_at_first() {
    let ci = Ci::new(&[]).await;
    let admin = ci.app.admin_token().await;
    let run = ci.run("doomed").await;
    let declared = ci
        .app
        .post(
            &ci.token,
            &format!("/api/v1/runs/{run}/artifacts"),
            json!({ "name": "log.txt", "content_type": "text/plain", "size": 5,
                    "sha256": "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824" }),
        )
        .await;
    assert_eq!(declared.status(), 201);
    let declared: Value = declared.json().await.unwrap();
    let upload = &declared["upload"];
    let mut put = ci.app.http.put(upload["url"].as_str().unwrap());
    for (name, value) in upload["headers"].as_object().unwrap() {
        put = put.header(name, value.as_str().unwrap());
    }
    assert!(put
        .body("hello")
        .send()
        .await
        .unwrap()
        .status()
        .is_success());
    let artifact = declared["id"].as_str().unwrap();
    let completed = ci
        .app
        .post(
            &ci.token,
            &format!("/api/v1/artifacts/{artifact}/complete"),
            json!({}),
        )
        .await;
    assert_eq!(completed.status(), 200);
    assert_eq!(ci.app.blob_keys().len(), 1);

    // No stream takes events or tasks: telling the others of the deletion fails.
    let client = ci.app.nats.client().await;
    let js = async_nats::jetstream::new(client.clone());
    for stream in ["VERDICT_EVENTS", "VERDICT_TASKS"] {
        let _ = js.delete_stream(stream).await;
    }
    let deleted = ci
        .app
        .send(Method::DELETE, &admin, &format!("/api/v1/runs/{run}"), None)
        .await;
    assert_eq!(
        deleted.status(),
        204,
        "the deletion is committed and told later"
    );
    assert_eq!(
        ci.app
            .get_as(&admin, &format!("/api/v1/runs/{run}"))
            .await
            .status(),
        404
    );

    // The streams come back (an operator, or any service's next start): the deletion
    // reaches the artifacts service and the blob goes.
    verdict_bus::streams::ensure(&client, &streams::ALL, 1)
        .await
        .unwrap();
    let started = Instant::now();
    while !ci.app.blob_keys().is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the deleted run's blob is still stored"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        ci.app
            .get_as(&admin, &format!("/api/v1/artifacts/{artifact}"))
            .await
            .status(),
        404
    );
}

#[tokio::test]
async fn an_ingest_consumer_that_makes_no_progress_shows_in_the_oldest_message_age() {
    let ci = Ci::new(&[("VERDICT_INGEST_ACK_WAIT", "2s")]).await;
    let run = ci.run("stalled").await;
    // Another connection holds the runs database's write lock: applying waits, fails
    // after the busy timeout and is retried, and nothing moves meanwhile.
    let db = ci.app.data_dir().join("runs.db");
    let blocker = std::thread::spawn(move || {
        let conn = rusqlite::Connection::open(db).unwrap();
        conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        std::thread::sleep(Duration::from_secs(12));
        conn.execute_batch("COMMIT").unwrap();
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        ci.post(&run, json!([result("1", "a", "passed")]))
            .await
            .status(),
        202
    );
    let started = Instant::now();
    let age = loop {
        let metrics = ci.app.scrape().await;
        let age = metrics
            .lines()
            .filter(|line| line.starts_with("verdict_work_queue_oldest_message_age_seconds"))
            .filter(|line| line.contains("VERDICT_INGEST"))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .next()
            .unwrap_or(0.0);
        if age >= 5.0 {
            break age;
        }
        assert!(
            started.elapsed() < Duration::from_secs(11),
            "the age never reached 5 s: {metrics}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(age < 30.0);
    blocker.join().unwrap();
    ci.run_when(&run, |r| r["counts"]["total"] == 1).await;
}

#[tokio::test]
async fn batches_waiting_behind_a_slow_apply_are_never_delivered_again() {
    let mut ci = Ci::new(&[("VERDICT_INGEST_ACK_WAIT", "1s")]).await;
    let run = ci.run("backlog").await;
    assert_eq!(
        ci.post(&run, json!([result("first", "first", "passed")]))
            .await
            .status(),
        202
    );
    ci.run_when(&run, |r| r["counts"]["total"] == 1).await;
    let runs = Component::Service(ServiceName::Runs);
    ci.app.stop(runs).await;
    for batch in 0..100 {
        let results: Vec<Value> = (0..50)
            .map(|i| result(&format!("{batch}-{i}"), &format!("t{batch}-{i}"), "passed"))
            .collect();
        assert_eq!(ci.post(&run, Value::Array(results)).await.status(), 202);
    }
    // The first apply after the restart waits 3 s for the database (three ack waits)
    // while the backlog is there to be delivered.
    let db = ci.app.data_dir().join("runs.db");
    let (locked, lock) = std::sync::mpsc::channel();
    let blocker = std::thread::spawn(move || {
        let conn = rusqlite::Connection::open(db).unwrap();
        conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        locked.send(()).unwrap();
        std::thread::sleep(Duration::from_secs(3));
        conn.execute_batch("COMMIT").unwrap();
    });
    lock.recv().unwrap();
    ci.app.start(runs).await;
    ci.run_when(&run, |r| r["counts"]["total"] == 5_001).await;
    blocker.join().unwrap();

    let js = async_nats::jetstream::new(ci.app.nats.client().await);
    let mut consumer: async_nats::jetstream::consumer::PullConsumer = js
        .get_consumer_from_stream(streams::INGEST_CONSUMER, streams::INGEST.name)
        .await
        .unwrap();
    let delivered = consumer.info().await.unwrap().delivered;
    assert_eq!(
        delivered.consumer_sequence, delivered.stream_sequence,
        "every message was delivered once"
    );
}
