//! Importing reports as a CI job would, and generated reports of any size.

use std::fmt::Write;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::app::TestApp;

impl TestApp {
    /// `POST /projects/{project}/imports` of a report; asserts the 202 and returns the
    /// pending import.
    pub async fn submit_import(
        &self,
        token: &str,
        project: &str,
        content_type: &str,
        report: Vec<u8>,
    ) -> Value {
        let response = self
            .http
            .post(self.url(&format!(
                "/api/v1/projects/{project}/imports?name=imported&attr.ci=true"
            )))
            .bearer_auth(token)
            .header("content-type", content_type)
            .body(report)
            .send()
            .await
            .unwrap_or_else(|err| panic!("importing into {project}: {err}"));
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        assert_eq!(status, 202, "importing into {project}: {body}");
        let import: Value = serde_json::from_str(&body).expect("an import");
        assert_eq!(import["status"], "pending", "{import}");
        import
    }

    /// `GET /imports/{id}`.
    pub async fn import_status(&self, token: &str, import: &Value) -> Value {
        let id = import["id"].as_str().expect("an import id");
        self.get_as(token, &format!("/api/v1/imports/{id}"))
            .await
            .json()
            .await
            .expect("an import")
    }

    /// Polls the import until it is no longer pending; panics after `within`.
    pub async fn import_settled(&self, token: &str, import: &Value, within: Duration) -> Value {
        let started = Instant::now();
        loop {
            let current = self.import_status(token, import).await;
            if current["status"] != "pending" {
                return current;
            }
            assert!(
                started.elapsed() < within,
                "import {} still pending after {within:?}",
                import["id"]
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

/// A CI job reporting live into a run of its own, timing each batch from its 202 until
/// `GET /runs/{run}` counts it.
pub struct LiveReporter {
    token: String,
    run_id: String,
    sent: u64,
}

impl LiveReporter {
    /// Creates the run in `project` as `token` (a reporter).
    pub async fn start(app: &TestApp, token: &str, project: &str) -> Self {
        let created = app
            .post(
                token,
                &format!("/api/v1/projects/{project}/runs"),
                json!({ "name": "live" }),
            )
            .await;
        assert_eq!(created.status(), 201, "creating the live run");
        let run: Value = created.json().await.expect("a run");
        Self {
            token: token.to_owned(),
            run_id: run["id"].as_str().expect("a run id").to_owned(),
            sent: 0,
        }
    }

    /// Posts `batch` passing results and returns how long after the 202 the run's
    /// counts included them.
    pub async fn post_timed(&mut self, app: &TestApp, batch: usize) -> Duration {
        let results: Vec<Value> = (self.sent..self.sent + batch as u64)
            .map(|i| json!({ "name": format!("live {i}"), "status": "passed" }))
            .collect();
        let accepted = app
            .post(
                &self.token,
                &format!("/api/v1/runs/{}/results", self.run_id),
                json!({ "results": results }),
            )
            .await;
        assert_eq!(accepted.status(), 202, "posting a batch");
        let at = Instant::now();
        self.sent += batch as u64;
        while app.run_total(&self.token, &self.run_id).await < self.sent {
            assert!(
                at.elapsed() < Duration::from_secs(60),
                "a batch was never counted"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        at.elapsed()
    }
}

impl TestApp {
    /// `counts.total` of a run.
    pub async fn run_total(&self, token: &str, run_id: &str) -> u64 {
        let run: Value = self
            .get_as(token, &format!("/api/v1/runs/{run_id}"))
            .await
            .json()
            .await
            .expect("a run");
        run["counts"]["total"].as_u64().expect("counts.total")
    }
}

/// A JUnit report of `cases` test cases in suites of 100, every tenth failing; each
/// name is padded to at least `name_bytes` bytes, and each case prints `output_bytes`
/// bytes of captured output.
pub fn junit_report(cases: usize, name_bytes: usize, output_bytes: usize) -> Vec<u8> {
    let output = "o".repeat(output_bytes);
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n");
    for suite in 0..cases.div_ceil(100) {
        let first = suite * 100;
        let count = (cases - first).min(100);
        let _ = writeln!(xml, r#"<testsuite name="suite{suite}" tests="{count}">"#);
        for case in first..first + count {
            let name = format!("{case:0>width$}", width = name_bytes.max(1));
            let _ = write!(
                xml,
                r#"<testcase classname="suite{suite}" name="test{name}" time="0.003">"#
            );
            if case % 10 == 0 {
                let _ = write!(
                    xml,
                    r#"<failure message="expected 1 but was 2">at suite{suite}.test{case}</failure>"#
                );
            }
            if !output.is_empty() {
                let _ = write!(xml, "<system-out>{output}</system-out>");
            }
            xml.push_str("</testcase>\n");
        }
        xml.push_str("</testsuite>\n");
    }
    xml.push_str("</testsuites>\n");
    xml.into_bytes()
}
