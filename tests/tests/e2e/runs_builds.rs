//! Runs of CI builds: found or created by build key, joined by shards, finished once
//! every shard has; reports imported into an existing run; `Idempotency-Key` on the
//! creating POSTs; gzip request bodies.

use std::io::Write;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use verdict_testkit::{junit_report, TestApp};

/// A system with a project `web` and a reporter token for it.
struct Build {
    app: TestApp,
    token: String,
}

impl Build {
    async fn new() -> Self {
        Self::with_settings(&[]).await
    }

    async fn with_settings(settings: &[(&str, &str)]) -> Self {
        let app = TestApp::spawn_with(settings).await;
        let admin = app.admin_token().await;
        app.project(&admin, "web").await;
        let (_, token) = app.api_token(&admin, "web", "reporter").await;
        Self { app, token }
    }

    /// `POST path` with a JSON body and extra headers; the status and the JSON answer.
    async fn post(&self, path: &str, body: Value, headers: &[(&str, &str)]) -> (StatusCode, Value) {
        let mut request = self
            .app
            .http
            .post(self.app.url(path))
            .bearer_auth(&self.token)
            .json(&body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        answer(request.send().await.unwrap()).await
    }

    /// `POST /projects/web/runs`.
    async fn create(&self, body: Value) -> (StatusCode, Value) {
        self.post("/api/v1/projects/web/runs", body, &[]).await
    }

    /// Joins shard `shard` of build `key`; answers the run's id.
    async fn join(&self, key: &str, shard: &str) -> String {
        let (status, run) = self
            .create(json!({"name": "ci", "build_key": key, "shard": shard}))
            .await;
        assert!(status.is_success(), "{status}: {run}");
        run["id"].as_str().unwrap().to_owned()
    }

    async fn results(&self, run_id: &str, names: &[&str], status: &str) {
        let results: Vec<Value> = names
            .iter()
            .map(|name| json!({"name": name, "status": status}))
            .collect();
        let (code, body) = self
            .post(
                &format!("/api/v1/runs/{run_id}/results"),
                json!({ "results": results }),
                &[],
            )
            .await;
        assert_eq!(code, StatusCode::ACCEPTED, "{body}");
    }

    async fn finish(&self, run_id: &str, body: Value) {
        let (code, answer) = self
            .post(&format!("/api/v1/runs/{run_id}/finish"), body, &[])
            .await;
        assert_eq!(code, StatusCode::ACCEPTED, "{answer}");
    }

    async fn run(&self, run_id: &str) -> Value {
        self.get(&format!("/api/v1/runs/{run_id}")).await.1
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        answer(self.app.get_as(&self.token, path).await).await
    }

    /// The run once `done` holds for it; panics after 20 s.
    async fn run_when(&self, run_id: &str, done: impl Fn(&Value) -> bool) -> Value {
        let started = Instant::now();
        loop {
            let run = self.run(run_id).await;
            if done(&run) {
                return run;
            }
            assert!(started.elapsed() < Duration::from_secs(20), "{run}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn finished(&self, run_id: &str) -> Value {
        self.run_when(run_id, |run| run["status"] != "running")
            .await
    }

    /// Waits until a shard's finish was applied.
    async fn shard_finished(&self, run_id: &str, shard: &str) -> Value {
        let started = Instant::now();
        loop {
            let (code, shard_state) = self
                .get(&format!("/api/v1/runs/{run_id}/shards/{shard}"))
                .await;
            assert_eq!(code, StatusCode::OK, "{shard_state}");
            if shard_state["status"] != "running" {
                return shard_state;
            }
            assert!(started.elapsed() < Duration::from_secs(20), "{shard_state}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn runs(&self) -> Vec<Value> {
        let (_, page) = self.get("/api/v1/projects/web/runs").await;
        page["items"].as_array().unwrap().clone()
    }

    /// `POST path` with a raw body of `content_type` and extra headers.
    async fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        let mut request = self
            .app
            .http
            .post(self.app.url(path))
            .bearer_auth(&self.token)
            .header("content-type", content_type)
            .body(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        answer(request.send().await.unwrap()).await
    }

    /// `POST /runs/{run}/imports` of a JUnit report; asserts the 202.
    async fn import_into(&self, run_id: &str, report: Vec<u8>) -> Value {
        let (code, import) = self
            .post_raw(
                &format!("/api/v1/runs/{run_id}/imports"),
                "application/xml",
                report,
                &[],
            )
            .await;
        assert_eq!(code, StatusCode::ACCEPTED, "{import}");
        import
    }

    async fn import_settled(&self, import: &Value) -> Value {
        self.app
            .import_settled(&self.token, import, Duration::from_secs(30))
            .await
    }
}

async fn answer(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn counts(run: &Value) -> (u64, u64, u64) {
    let counts = &run["counts"];
    (
        counts["total"].as_u64().unwrap(),
        counts["passed"].as_u64().unwrap(),
        counts["failed"].as_u64().unwrap(),
    )
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn junit(cases: &[(&str, bool)]) -> Vec<u8> {
    let mut xml = format!("<testsuite name=\"s\" tests=\"{}\">", cases.len());
    for (name, passed) in cases {
        xml.push_str(&format!("<testcase classname=\"s\" name=\"{name}\">"));
        if !passed {
            xml.push_str("<failure message=\"boom\"/>");
        }
        xml.push_str("</testcase>");
    }
    xml.push_str("</testsuite>");
    xml.into_bytes()
}

#[tokio::test]
async fn a_build_key_finds_the_run_the_first_request_created() {
    let build = Build::new().await;
    let (first, run) = build
        .create(json!({"name": "first", "build_key": "gh-1", "attributes": {"os": "linux"}}))
        .await;
    assert_eq!(first, StatusCode::CREATED, "{run}");
    assert_eq!(run["build_key"], "gh-1");
    let (again, found) = build
        .create(json!({"name": "second", "build_key": "gh-1"}))
        .await;
    assert_eq!(again, StatusCode::OK, "{found}");
    assert_eq!(found["id"], run["id"]);
    assert_eq!(found["name"], "first", "the first request's run is kept");
    let (other, another) = build
        .create(json!({"name": "other", "build_key": "gh-2"}))
        .await;
    assert_eq!(other, StatusCode::CREATED);
    assert_ne!(another["id"], run["id"]);
    assert_eq!(build.runs().await.len(), 2);
}

#[tokio::test]
async fn a_sharded_run_finishes_once_every_shard_that_joined_has_with_the_union_of_results() {
    let build = Build::new().await;
    let run_id = build.join("gh-7", "a").await;
    assert_eq!(build.join("gh-7", "b").await, run_id);
    build.results(&run_id, &["a1", "a2"], "passed").await;
    build.results(&run_id, &["b1"], "failed").await;
    build.finish(&run_id, json!({"shard": "a"})).await;
    let a = build.shard_finished(&run_id, "a").await;
    assert_eq!(a["status"], "finished");
    let run = build.run(&run_id).await;
    assert_eq!(run["status"], "running", "shard b still runs: {run}");
    assert_eq!(run["shards"], json!({"joined": 2, "finished": 1}));
    let (code, b) = build.get(&format!("/api/v1/runs/{run_id}/shards/b")).await;
    assert_eq!(
        (code, b["status"].as_str()),
        (StatusCode::OK, Some("running"))
    );

    build.finish(&run_id, json!({"shard": "b"})).await;
    let run = build.finished(&run_id).await;
    assert_eq!(run["status"], "failed");
    assert_eq!(counts(&run), (3, 2, 1));
    assert_eq!(run["shards"], json!({"joined": 2, "finished": 2}));
}

#[tokio::test]
async fn an_announced_number_of_shards_holds_the_run_open_until_that_many_finished() {
    let build = Build::new().await;
    let (_, run) = build
        .create(json!({"name": "ci", "build_key": "gl-3", "shard": "1", "shards": 3}))
        .await;
    let run_id = run["id"].as_str().unwrap().to_owned();
    build.join("gl-3", "2").await;
    for shard in ["1", "2"] {
        build.finish(&run_id, json!({"shard": shard})).await;
        build.shard_finished(&run_id, shard).await;
    }
    let run = build.run(&run_id).await;
    assert_eq!(run["status"], "running", "{run}");
    assert_eq!(run["shards"]["expected"], 3);
    build.join("gl-3", "3").await;
    build.results(&run_id, &["late"], "passed").await;
    build.finish(&run_id, json!({"shard": "3"})).await;
    let run = build.finished(&run_id).await;
    assert_eq!(
        (run["status"].as_str(), counts(&run)),
        (Some("passed"), (1, 1, 0))
    );
}

#[tokio::test]
async fn a_shard_that_joins_a_finished_run_opens_it_again() {
    let build = Build::new().await;
    let run_id = build.join("b-1", "a").await;
    build.finish(&run_id, json!({"shard": "a"})).await;
    build.finished(&run_id).await;
    assert_eq!(build.join("b-1", "late").await, run_id);
    assert_eq!(build.run(&run_id).await["status"], "running");
    build.results(&run_id, &["x"], "passed").await;
    build.finish(&run_id, json!({"shard": "late"})).await;
    let run = build.finished(&run_id).await;
    assert_eq!(counts(&run), (1, 1, 0));
}

#[tokio::test]
async fn a_finish_without_a_shard_ends_the_whole_run_and_an_interrupted_shard_marks_it() {
    let build = Build::new().await;
    let run_id = build.join("b-2", "a").await;
    build.join("b-2", "b").await;
    build
        .finish(&run_id, json!({"shard": "a", "status": "interrupted"}))
        .await;
    build.shard_finished(&run_id, "a").await;
    build.finish(&run_id, json!({})).await;
    let run = build.finished(&run_id).await;
    assert_eq!(run["status"], "interrupted", "{run}");
}

#[tokio::test]
async fn shards_need_a_build_key_and_labels_are_checked() {
    let build = Build::new().await;
    for (body, field) in [
        (json!({"name": "x", "shard": "a"}), "shard"),
        (json!({"name": "x", "shards": 2}), "shards"),
        (
            json!({"name": "x", "build_key": "k", "shards": 0}),
            "shards",
        ),
        (json!({"name": "x", "build_key": "a\nb"}), "build_key"),
        (
            json!({"name": "x", "build_key": "k".repeat(256)}),
            "build_key",
        ),
    ] {
        let (code, problem) = build.create(body).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{problem}");
        assert!(
            problem["detail"].as_str().unwrap().starts_with(field),
            "{field}: {problem}"
        );
    }
    let run_id = build.join("k", "a").await;
    let (code, problem) = build
        .post(
            &format!("/api/v1/runs/{run_id}/finish"),
            json!({"shard": ""}),
            &[],
        )
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert_eq!(problem["errors"][0]["field"], "shard");
    let (code, _) = build
        .get(&format!("/api/v1/runs/{run_id}/shards/nobody"))
        .await;
    assert_eq!(code, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn reports_imported_into_a_run_add_their_results_with_counts_of_their_own() {
    let build = Build::new().await;
    let run_id = build.join("imports", "live").await;
    build.results(&run_id, &["live"], "passed").await;
    let first = build
        .import_into(&run_id, junit(&[("a", true), ("b", false)]))
        .await;
    assert_eq!(first["run_id"], run_id.as_str());
    let second = build
        .import_into(&run_id, junit(&[("c", true), ("a", true)]))
        .await;
    let first = build.import_settled(&first).await;
    let second = build.import_settled(&second).await;
    assert_eq!(first["status"], "done", "{first}");
    assert_eq!(first["counts"]["total"], 2);
    assert_eq!(first["counts"]["failed"], 1);
    assert_eq!(second["counts"]["total"], 2);
    let run = build.run(&run_id).await;
    assert_eq!(
        run["status"], "running",
        "an import does not finish the run"
    );
    assert_eq!(counts(&run), (4, 3, 1), "live, a, b, c: {run}");
    let (_, artifacts) = build.get(&format!("/api/v1/runs/{run_id}/artifacts")).await;
    assert_eq!(
        artifacts["items"].as_array().unwrap().len(),
        2,
        "both reports kept"
    );
}

#[tokio::test]
async fn a_finish_waits_for_the_imports_into_its_run() {
    let build = Build::new().await;
    let run_id = build.join("big", "only").await;
    let import = build.import_into(&run_id, junit_report(20_000, 0, 0)).await;
    build.finish(&run_id, json!({"shard": "only"})).await;
    let run = build.finished(&run_id).await;
    assert_eq!(counts(&run).0, 20_000, "{run}");
    assert_eq!(build.import_settled(&import).await["status"], "done");
}

#[tokio::test]
async fn a_malformed_report_into_a_run_fails_alone_and_leaves_the_run_to_finish() {
    let build = Build::new().await;
    let run_id = build.join("broken", "only").await;
    build.results(&run_id, &["kept"], "passed").await;
    let import = build
        .import_into(&run_id, b"<testsuite><testcase name=\"a\">".to_vec())
        .await;
    build.finish(&run_id, json!({"shard": "only"})).await;
    let failed = build.import_settled(&import).await;
    assert_eq!(failed["status"], "failed");
    assert!(
        failed["error"].as_str().unwrap().contains("line"),
        "{failed}"
    );
    let run = build.finished(&run_id).await;
    assert_eq!(
        (run["status"].as_str(), counts(&run)),
        (Some("passed"), (1, 1, 0))
    );
}

#[tokio::test]
async fn an_import_into_a_run_is_checked_before_its_report_is_read() {
    let build = Build::new().await;
    let admin = build.app.admin_token().await;
    build.app.project(&admin, "other").await;
    let (_, outsider) = build.app.api_token(&admin, "other", "reporter").await;
    let run_id = build.join("scoped", "a").await;
    let response = build
        .app
        .http
        .post(build.app.url(&format!("/api/v1/runs/{run_id}/imports")))
        .bearer_auth(&outsider)
        .header("content-type", "application/xml")
        .body(junit(&[("a", true)]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let (code, problem) = build
        .post_raw(
            &format!("/api/v1/runs/{run_id}/imports?name=x"),
            "application/xml",
            junit(&[("a", true)]),
            &[],
        )
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert_eq!(problem["errors"][0]["field"], "name");
}

#[tokio::test]
async fn the_same_idempotency_key_and_body_get_the_first_answer_and_create_nothing_more() {
    let build = Build::new().await;
    let key = [("idempotency-key", "create-1")];
    let body = json!({"name": "once", "attributes": {"os": "linux"}});
    let (first, run) = build
        .post("/api/v1/projects/web/runs", body.clone(), &key)
        .await;
    let (again, repeat) = build.post("/api/v1/projects/web/runs", body, &key).await;
    assert_eq!((first, again), (StatusCode::CREATED, StatusCode::CREATED));
    assert_eq!(repeat, run);
    assert_eq!(build.runs().await.len(), 1);

    let (code, problem) = build
        .post("/api/v1/projects/web/runs", json!({"name": "other"}), &key)
        .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert!(problem["detail"]
        .as_str()
        .unwrap()
        .contains("Idempotency-Key"));

    let admin = build.app.admin_token().await;
    let (_, other_token) = build.app.api_token(&admin, "web", "reporter").await;
    let response = build
        .app
        .http
        .post(build.app.url("/api/v1/projects/web/runs"))
        .bearer_auth(&other_token)
        .header("idempotency-key", "create-1")
        .json(&json!({"name": "theirs"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::CREATED,
        "keys are per caller"
    );
    assert_eq!(build.runs().await.len(), 2);

    let (code, problem) = build
        .post(
            "/api/v1/projects/web/runs",
            json!({"name": "x"}),
            &[("idempotency-key", "has space")],
        )
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert_eq!(problem["errors"][0]["field"], "Idempotency-Key");
}

#[tokio::test]
async fn a_repeated_join_answers_as_it_did_the_first_time() {
    let build = Build::new().await;
    let key = [("idempotency-key", "join-1")];
    let body = json!({"name": "ci", "build_key": "gh-9", "shard": "a"});
    let (first, run) = build
        .post("/api/v1/projects/web/runs", body.clone(), &key)
        .await;
    build.join("gh-9", "b").await;
    let (again, repeat) = build.post("/api/v1/projects/web/runs", body, &key).await;
    assert_eq!((first, again), (StatusCode::CREATED, StatusCode::CREATED));
    assert_eq!(repeat, run, "the first answer, not the run as it is now");
    assert_eq!(
        build.run(run["id"].as_str().unwrap()).await["shards"]["joined"],
        2
    );
}

#[tokio::test]
async fn a_repeated_import_with_its_key_imports_nothing_twice() {
    let build = Build::new().await;
    let report = junit(&[("a", true), ("b", true)]);
    let key = [("idempotency-key", "import-1")];
    let path = "/api/v1/projects/web/imports";
    let (first, import) = build
        .post_raw(path, "application/xml", report.clone(), &key)
        .await;
    assert_eq!(first, StatusCode::ACCEPTED, "{import}");
    let (again, repeat) = build
        .post_raw(path, "application/xml", report.clone(), &key)
        .await;
    assert_eq!(again, StatusCode::ACCEPTED, "{repeat}");
    assert_eq!(repeat["id"], import["id"]);
    assert_eq!(build.runs().await.len(), 1);
    let (code, _) = build
        .post_raw(path, "application/xml", junit(&[("c", true)]), &key)
        .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "another report");

    let run_id = build.join("into", "a").await;
    let into = format!("/api/v1/runs/{run_id}/imports");
    let key = [("idempotency-key", "into-1")];
    let (_, first) = build
        .post_raw(&into, "application/xml", report.clone(), &key)
        .await;
    let (_, second) = build.post_raw(&into, "application/xml", report, &key).await;
    assert_eq!(first["id"], second["id"]);
    build.import_settled(&first).await;
    let (_, artifacts) = build.get(&format!("/api/v1/runs/{run_id}/artifacts")).await;
    assert_eq!(
        artifacts["items"].as_array().unwrap().len(),
        1,
        "one report stored"
    );
}

#[tokio::test]
async fn gzip_bodies_are_taken_on_results_and_imports() {
    let build = Build::new().await;
    let run_id = build.join("gz", "a").await;
    let batch = json!({"results": [{"name": "zipped", "status": "passed"}]});
    let (code, accepted) = build
        .post_raw(
            &format!("/api/v1/runs/{run_id}/results"),
            "application/json",
            gzip(batch.to_string().as_bytes()),
            &[("content-encoding", "gzip")],
        )
        .await;
    assert_eq!(
        (code, &accepted["accepted"]),
        (StatusCode::ACCEPTED, &json!(1))
    );
    let (code, import) = build
        .post_raw(
            &format!("/api/v1/runs/{run_id}/imports"),
            "application/xml",
            gzip(&junit(&[("from gzip", true)])),
            &[("content-encoding", "gzip")],
        )
        .await;
    assert_eq!(code, StatusCode::ACCEPTED, "{import}");
    assert_eq!(build.import_settled(&import).await["status"], "done");
    let run = build
        .run_when(&run_id, |run| run["counts"]["total"] == 2)
        .await;
    assert_eq!(counts(&run), (2, 2, 0));
}

#[tokio::test]
async fn a_gzip_bomb_gets_413_and_broken_or_other_encodings_are_refused() {
    let build = Build::with_settings(&[("VERDICT_RESULTS_BODY_LIMIT", "1048576")]).await;
    let run_id = build.join("bomb", "a").await;
    let path = format!("/api/v1/runs/{run_id}/results");
    let mut bomb = br#"{"results": [{"name": "x", "status": "passed", "message": ""#.to_vec();
    bomb.extend(std::iter::repeat_n(b'a', 64 << 20));
    bomb.extend(br#""}]}"#);
    let bomb = gzip(&bomb);
    assert!(bomb.len() < 1 << 20);
    let gz = [("content-encoding", "gzip")];
    let (code, problem) = build.post_raw(&path, "application/json", bomb, &gz).await;
    assert_eq!(code, StatusCode::PAYLOAD_TOO_LARGE, "{problem}");
    let (code, problem) = build
        .post_raw(
            &path,
            "application/json",
            b"{\"results\": []}".to_vec(),
            &gz,
        )
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("gzip"),
        "{problem}"
    );
    let (code, _) = build
        .post_raw(
            &path,
            "application/json",
            b"{}".to_vec(),
            &[("content-encoding", "br")],
        )
        .await;
    assert_eq!(code, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(build.run(&run_id).await["counts"]["total"], 0);
}
