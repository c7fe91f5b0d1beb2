//! Asking what is failing: filters, text search, history, flakiness.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use verdict_testkit::TestApp;

struct Project {
    app: TestApp,
    token: String,
    slug: &'static str,
}

impl Project {
    async fn new() -> Self {
        let app = TestApp::spawn().await;
        let token = app.admin_token().await;
        app.project(&token, "web").await;
        Self {
            app,
            token,
            slug: "web",
        }
    }

    async fn get(&self, path: &str) -> Value {
        let response = self.app.get_as(&self.token, path).await;
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.unwrap()
    }

    /// A finished run with `results`, started at `started_at`; returns its id.
    async fn finished_run(
        &self,
        name: &str,
        started_at: &str,
        attributes: Value,
        results: Value,
    ) -> String {
        let body = json!({ "name": name, "started_at": started_at, "attributes": attributes });
        let run: Value = self
            .app
            .post(
                &self.token,
                &format!("/api/v1/projects/{}/runs", self.slug),
                body,
            )
            .await
            .json()
            .await
            .unwrap();
        let id = run["id"].as_str().unwrap().to_owned();
        let posted = self
            .app
            .post(
                &self.token,
                &format!("/api/v1/runs/{id}/results"),
                json!({ "results": results }),
            )
            .await;
        assert_eq!(posted.status(), 202);
        self.app
            .post(&self.token, &format!("/api/v1/runs/{id}/finish"), json!({}))
            .await;
        let started = Instant::now();
        while self.get(&format!("/api/v1/runs/{id}")).await["status"] == "running" {
            assert!(started.elapsed() < Duration::from_secs(10));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        id
    }

    /// The names of the results `search` finds, once it finds any: search follows the
    /// stored results by a moment (the text index is kept off the writer's path).
    async fn searched(&self, search: &str) -> Vec<String> {
        let started = Instant::now();
        loop {
            let found = names(&self.get(search).await);
            if !found.is_empty() {
                return found;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{search} found nothing for 10 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn names(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn results_filter_by_status_suite_and_text() {
    let project = Project::new().await;
    let run = project
        .finished_run(
            "r",
            "2026-11-01T10:00:00Z",
            json!({}),
            json!([
                { "id": "1", "suite": "api", "name": "login works", "status": "passed" },
                { "id": "2", "suite": "api", "name": "logout works", "status": "failed", "message": "connection timeout after 30s" },
                { "id": "3", "suite": "ui", "name": "button renders", "status": "failed", "message": "element not found" },
            ]),
        )
        .await;
    let base = format!("/api/v1/runs/{run}/results");
    assert_eq!(
        names(&project.get(&format!("{base}?status=failed")).await),
        ["logout works", "button renders"]
    );
    assert_eq!(
        names(&project.get(&format!("{base}?suite=ui")).await),
        ["button renders"]
    );
    assert_eq!(
        project.searched(&format!("{base}?q=timeout")).await,
        ["logout works"]
    );
    assert_eq!(
        names(&project.get(&format!("{base}?q=works")).await),
        ["login works", "logout works"]
    );
    assert_eq!(
        names(&project.get(&format!("{base}?q=butt")).await),
        ["button renders"],
        "prefix search"
    );
    assert!(
        names(&project.get(&format!("{base}?q=%22%20OR%20*")).await).is_empty(),
        "syntax is not interpreted"
    );
    let bad = project
        .app
        .get_as(&project.token, &format!("{base}?status=exploded"))
        .await;
    assert_eq!(bad.status(), 400);
    let unknown = project
        .app
        .get_as(&project.token, &format!("{base}?colour=red"))
        .await;
    assert_eq!(unknown.status(), 400);
}

#[tokio::test]
async fn runs_list_newest_first_and_filter_by_status_attribute_and_time() {
    let project = Project::new().await;
    let passing = json!([{ "id": "1", "name": "t", "status": "passed" }]);
    let failing = json!([{ "id": "1", "name": "t", "status": "failed" }]);
    project
        .finished_run(
            "old",
            "2026-11-01T00:00:00Z",
            json!({ "branch": "main" }),
            passing.clone(),
        )
        .await;
    project
        .finished_run(
            "mid",
            "2026-11-02T00:00:00Z",
            json!({ "branch": "dev" }),
            failing,
        )
        .await;
    project
        .finished_run(
            "new",
            "2026-11-03T00:00:00Z",
            json!({ "branch": "main" }),
            passing,
        )
        .await;

    let base = format!("/api/v1/projects/{}/runs", project.slug);
    assert_eq!(names(&project.get(&base).await), ["new", "mid", "old"]);
    assert_eq!(
        names(&project.get(&format!("{base}?status=failed")).await),
        ["mid"]
    );
    assert_eq!(
        names(&project.get(&format!("{base}?attr.branch=main")).await),
        ["new", "old"]
    );
    assert_eq!(
        names(
            &project
                .get(&format!("{base}?attr.branch=main&status=passed"))
                .await
        ),
        ["new", "old"]
    );
    assert_eq!(
        names(
            &project
                .get(&format!(
                    "{base}?since=2026-11-02T00:00:00Z&until=2026-11-03T00:00:00Z"
                ))
                .await
        ),
        ["mid"]
    );
    let first = project.get(&format!("{base}?limit=2")).await;
    assert_eq!(names(&first), ["new", "mid"]);
    let cursor = first["next_cursor"].as_str().unwrap();
    assert_eq!(
        names(
            &project
                .get(&format!("{base}?limit=2&cursor={cursor}"))
                .await
        ),
        ["old"]
    );
    let forged = project
        .app
        .get_as(&project.token, &format!("{base}?cursor=forged"))
        .await;
    assert_eq!(forged.status(), 400);
}

#[tokio::test]
async fn a_tests_history_lists_each_run_newest_first() {
    let project = Project::new().await;
    for (day, status) in [(1, "passed"), (2, "failed"), (3, "passed")] {
        let started = format!("2026-11-0{day}T00:00:00Z");
        let results = json!([{ "id": "1", "suite": "s", "name": "steady", "status": status, "duration_ms": day * 10 }]);
        project
            .finished_run(
                &format!("day {day}"),
                &started,
                json!({ "day": day.to_string() }),
                results,
            )
            .await;
    }
    let run = project
        .get(&format!("/api/v1/projects/{}/runs?limit=1", project.slug))
        .await;
    let results = project
        .get(&format!(
            "/api/v1/runs/{}/results",
            run["items"][0]["id"].as_str().unwrap()
        ))
        .await;
    let key = results["items"][0]["test_key"].as_str().unwrap();
    let history = project
        .get(&format!(
            "/api/v1/projects/{}/tests/{key}/history",
            project.slug
        ))
        .await;
    let statuses: Vec<&str> = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["passed", "failed", "passed"]);
    assert_eq!(history["items"][0]["run_name"], "day 3");
    assert_eq!(history["items"][0]["duration_ms"], 30);
    assert_eq!(history["items"][0]["attributes"]["day"], "3");
    let bad = project
        .app
        .get_as(
            &project.token,
            &format!("/api/v1/projects/{}/tests/not-a-key/history", project.slug),
        )
        .await;
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn a_tests_history_says_why_it_failed_after_a_retry() {
    let project = Project::new().await;
    let results = json!([
        { "id": "1", "name": "checkout", "status": "failed", "message": "first try: timeout" },
        { "id": "2", "name": "checkout", "status": "failed", "attempt": 2, "message": "card declined" },
    ]);
    let run = project
        .finished_run("nightly", "2026-11-01T00:00:00Z", json!({}), results)
        .await;
    let results = project.get(&format!("/api/v1/runs/{run}/results")).await;
    let key = results["items"][0]["test_key"].as_str().unwrap();
    let history = project
        .get(&format!(
            "/api/v1/projects/{}/tests/{key}/history",
            project.slug
        ))
        .await;
    assert_eq!(history["items"][0]["status"], "failed");
    assert_eq!(
        history["items"][0]["message"], "card declined",
        "the message of the attempt that settled the outcome"
    );
}

#[tokio::test]
async fn flaky_tests_are_those_that_flip_within_the_window() {
    let project = Project::new().await;
    let outcomes = [
        ("passed", "passed"),
        ("failed", "passed"),
        ("passed", "passed"),
        ("failed", "passed"),
    ];
    for (day, (wobbly, steady)) in outcomes.iter().enumerate() {
        let results = json!([
            { "id": "1", "name": "wobbly", "status": wobbly },
            { "id": "2", "name": "steady", "status": steady },
        ]);
        project
            .finished_run(
                &format!("run {day}"),
                &format!("2026-11-0{}T00:00:00Z", day + 1),
                json!({}),
                results,
            )
            .await;
    }
    let flaky = project
        .get(&format!("/api/v1/projects/{}/tests/flaky", project.slug))
        .await;
    let items = flaky["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{flaky}");
    assert_eq!(items[0]["name"], "wobbly");
    assert_eq!(items[0]["flips"], 3);
    assert_eq!(items[0]["runs"], 4);
    assert_eq!(items[0]["last_seen"], "2026-11-04T00:00:00Z");
    // A window of the latest two runs still sees one flip.
    let narrow = project
        .get(&format!(
            "/api/v1/projects/{}/tests/flaky?window=2",
            project.slug
        ))
        .await;
    assert_eq!(narrow["items"][0]["flips"], 1);
}
