//! Triage over generated history: failures grouped by signature, new failures,
//! quarantine (with the CLI's exit codes), the catalog, trends, the slowest tests and the
//! flaky list's pages.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use verdict_testkit::TestApp;

const PROJECT: &str = "web";

struct History {
    app: TestApp,
    token: String,
}

impl History {
    async fn new() -> Self {
        let app = TestApp::spawn().await;
        let token = app.admin_token().await;
        app.project(&token, PROJECT).await;
        Self { app, token }
    }

    async fn get(&self, path: &str) -> Value {
        let response = self.app.get_as(&self.token, path).await;
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.unwrap()
    }

    /// A run started on day `day` of November 2026 with `results`, finished; its final
    /// state.
    async fn run(&self, day: u32, attributes: Value, results: Value) -> Value {
        let body = json!({
            "name": format!("nightly {day}"),
            "started_at": format!("2026-11-{day:02}T10:00:00Z"),
            "attributes": attributes,
        });
        let run: Value = self
            .app
            .post(
                &self.token,
                &format!("/api/v1/projects/{PROJECT}/runs"),
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
        self.finished(&id).await
    }

    async fn finished(&self, id: &str) -> Value {
        let started = Instant::now();
        loop {
            let run = self.get(&format!("/api/v1/runs/{id}")).await;
            if run["status"] != "running" {
                return run;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "run {id} never finished"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The test key of the test called `name`, from a run's results.
    async fn test_key(&self, run: &Value, name: &str) -> String {
        let results = self
            .get(&format!(
                "/api/v1/runs/{}/results",
                run["id"].as_str().unwrap()
            ))
            .await;
        results["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|result| result["name"] == name)
            .unwrap_or_else(|| panic!("no result named {name}"))["test_key"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn quarantine(&self, test_key: &str, body: Value) -> reqwest::Response {
        self.app
            .send(
                reqwest::Method::PUT,
                &self.token,
                &format!("/api/v1/projects/{PROJECT}/tests/{test_key}/quarantine"),
                Some(body),
            )
            .await
    }
}

fn passed(name: &str) -> Value {
    json!({ "id": name, "name": name, "status": "passed", "duration_ms": 10 })
}

fn failed(name: &str, message: &str) -> Value {
    json!({ "id": name, "name": name, "status": "failed", "message": message, "duration_ms": 10 })
}

fn items(page: &Value) -> &Vec<Value> {
    page["items"].as_array().unwrap()
}

fn strings(values: &Value) -> Vec<String> {
    values
        .as_array()
        .unwrap()
        .iter()
        .map(|value| value.as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_regression_on_a_branch_shows_as_new_and_a_repeat_does_not() {
    let history = History::new().await;
    let main = json!({ "git.branch": "main" });
    let feature = json!({ "git.branch": "feature" });
    history
        .run(
            1,
            main.clone(),
            json!([passed("checkout"), passed("login")]),
        )
        .await;
    // The feature branch already fails; that must not make main's failure old.
    history
        .run(
            2,
            feature,
            json!([
                failed("checkout", "expected: <3> but was: <4>"),
                passed("login")
            ]),
        )
        .await;
    let passing = history
        .run(
            3,
            main.clone(),
            json!([passed("checkout"), passed("login")]),
        )
        .await;
    let regressed = history
        .run(
            4,
            main.clone(),
            json!([
                failed("checkout", "expected: <3> but was: <5>"),
                passed("login")
            ]),
        )
        .await;

    let new = history
        .get(&format!(
            "/api/v1/runs/{}/failures?new=true",
            regressed["id"].as_str().unwrap()
        ))
        .await;
    let groups = items(&new);
    assert_eq!(groups.len(), 1, "{new}");
    assert_eq!(groups[0]["regressions"], 1);
    assert_eq!(groups[0]["pattern"], "expected: <{n}> but was: <{n}>");
    assert_eq!(groups[0]["new_signature"], false, "seen on feature before");
    assert_eq!(groups[0]["baseline_run_id"], passing["id"]);
    assert_eq!(
        strings(&groups[0]["test_keys"]),
        [history.test_key(&regressed, "checkout").await]
    );

    let repeated = history
        .run(
            5,
            main,
            json!([
                failed("checkout", "expected: <3> but was: <6>"),
                passed("login")
            ]),
        )
        .await;
    let repeat_id = repeated["id"].as_str().unwrap();
    let new = history
        .get(&format!("/api/v1/runs/{repeat_id}/failures?new=true"))
        .await;
    assert!(items(&new).is_empty(), "failed before on main: {new}");
    let all = history
        .get(&format!("/api/v1/runs/{repeat_id}/failures"))
        .await;
    assert_eq!(items(&all).len(), 1);
    assert_eq!(items(&all)[0]["regressions"], 0);
}

#[tokio::test]
async fn a_signature_first_seen_in_a_run_is_new_there() {
    let history = History::new().await;
    history
        .run(1, json!({}), json!([failed("a", "connection refused")]))
        .await;
    let run = history
        .run(
            2,
            json!({}),
            json!([failed("a", "connection refused"), failed("b", "disk full")]),
        )
        .await;
    let new = history
        .get(&format!(
            "/api/v1/runs/{}/failures?new=true",
            run["id"].as_str().unwrap()
        ))
        .await;
    let patterns: Vec<_> = items(&new).iter().map(|g| g["pattern"].clone()).collect();
    assert_eq!(patterns, [json!("disk full")]);
    assert_eq!(items(&new)[0]["new_signature"], true);
}

#[tokio::test]
async fn the_same_error_with_other_numbers_is_one_signature() {
    let history = History::new().await;
    let timeout = |ms: u32, dir: &str| {
        format!("Error: Timed out {ms}ms waiting for expect(locator).toBeVisible() in /tmp/{dir}/trace.zip")
    };
    let first = history
        .run(
            1,
            json!({}),
            json!([
                failed("cart shows", &timeout(5000, "pw-a1b2")),
                failed("menu opens", &timeout(30000, "pw-c3d4")),
                failed("login", "AssertionError: assert 3 == 4"),
            ]),
        )
        .await;
    history
        .run(
            2,
            json!({}),
            json!([
                failed("cart shows", &timeout(7000, "pw-e5f6")),
                passed("menu opens"),
                passed("login")
            ]),
        )
        .await;

    let failures = history
        .get(&format!("/api/v1/projects/{PROJECT}/failures?window=10"))
        .await;
    let signatures = items(&failures);
    assert_eq!(signatures.len(), 2, "{failures}");
    let top = &signatures[0];
    assert_eq!(
        top["pattern"],
        "Error: Timed out {n}ms waiting for expect(locator).toBeVisible() in {tmp}"
    );
    assert_eq!(
        (
            top["failures"].as_u64(),
            top["tests"].as_u64(),
            top["runs"].as_u64()
        ),
        (Some(3), Some(2), Some(2))
    );
    assert_eq!(top["first_seen"], "2026-11-01T10:00:00Z");
    assert_eq!(top["last_seen"], "2026-11-02T10:00:00Z");
    assert_eq!(signatures[1]["failures"], 1);

    // The results behind it, newest run first, a page at a time.
    let signature = top["signature"].as_str().unwrap();
    let base = format!("/api/v1/projects/{PROJECT}/failures/{signature}");
    let mut names = Vec::new();
    let mut path = format!("{base}?limit=2");
    loop {
        let page = history.get(&path).await;
        names.extend(
            items(&page)
                .iter()
                .map(|r| r["name"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("{base}?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    names[1..].sort();
    assert_eq!(names, ["cart shows", "cart shows", "menu opens"]);

    let groups = history
        .get(&format!(
            "/api/v1/runs/{}/failures",
            first["id"].as_str().unwrap()
        ))
        .await;
    let counts: Vec<_> = items(&groups)
        .iter()
        .map(|g| g["failures"].as_u64().unwrap())
        .collect();
    assert_eq!(counts, [2, 1]);

    let unknown = history
        .app
        .get_as(
            &history.token,
            &format!("/api/v1/projects/{PROJECT}/failures/0123456789abcdef"),
        )
        .await;
    assert_eq!(unknown.status(), 404);
    let malformed = history
        .app
        .get_as(
            &history.token,
            &format!("/api/v1/projects/{PROJECT}/failures?window=0"),
        )
        .await;
    assert_eq!(malformed.status(), 400);
}

#[tokio::test]
async fn quarantine_keeps_a_run_green_counts_it_apart_and_leaves_an_audit_trail() {
    let history = History::new().await;
    let first = history
        .run(
            1,
            json!({}),
            json!([passed("stable"), failed("wobbly", "timeout")]),
        )
        .await;
    assert_eq!(first["status"], "failed");
    let wobbly = history.test_key(&first, "wobbly").await;

    let (_, reporter) = history
        .app
        .api_token(&history.token, PROJECT, "reporter")
        .await;
    let refused = history
        .app
        .send(
            reqwest::Method::PUT,
            &reporter,
            &format!("/api/v1/projects/{PROJECT}/tests/{wobbly}/quarantine"),
            Some(json!({ "reason": "flaky on CI" })),
        )
        .await;
    assert_eq!(refused.status(), 403);
    let blank = history.quarantine(&wobbly, json!({ "reason": "" })).await;
    assert_eq!(blank.status(), 400);
    let unknown_field = history
        .quarantine(&wobbly, json!({ "reason": "x", "owner": "me" }))
        .await;
    assert_eq!(unknown_field.status(), 400);

    let set = history
        .quarantine(&wobbly, json!({ "reason": "flaky on CI, #123" }))
        .await;
    assert_eq!(set.status(), 200);
    let quarantine: Value = set.json().await.unwrap();
    assert!(quarantine["by"].as_str().unwrap().starts_with("user:"));

    let green = history
        .run(
            2,
            json!({}),
            json!([passed("stable"), failed("wobbly", "timeout")]),
        )
        .await;
    assert_eq!(green["status"], "passed", "{green}");
    assert_eq!(green["counts"]["failed"], 1);
    assert_eq!(green["counts"]["quarantined"], 1);

    let listed = history
        .get(&format!(
            "/api/v1/projects/{PROJECT}/tests?quarantined=true"
        ))
        .await;
    let keys: Vec<_> = items(&listed)
        .iter()
        .map(|t| t["test_key"].clone())
        .collect();
    assert_eq!(keys, [json!(wobbly)]);
    assert_eq!(
        items(&listed)[0]["quarantine"]["reason"],
        "flaky on CI, #123"
    );

    let released = history
        .app
        .send(
            reqwest::Method::DELETE,
            &history.token,
            &format!("/api/v1/projects/{PROJECT}/tests/{wobbly}/quarantine"),
            None,
        )
        .await;
    assert_eq!(released.status(), 204);
    let red = history
        .run(
            3,
            json!({}),
            json!([passed("stable"), failed("wobbly", "timeout")]),
        )
        .await;
    assert_eq!(red["status"], "failed");
    assert_eq!(red["counts"]["quarantined"], 0);

    let state = history
        .get(&format!(
            "/api/v1/projects/{PROJECT}/tests/{wobbly}/quarantine"
        ))
        .await;
    assert_eq!(state["quarantine"], Value::Null);
    let actions: Vec<_> = state["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["action"].clone())
        .collect();
    assert_eq!(actions, [json!("released"), json!("quarantined")]);
    assert!(state["audit"][0]["by"]
        .as_str()
        .unwrap()
        .starts_with("user:"));
    assert!(history
        .get(&format!(
            "/api/v1/projects/{PROJECT}/tests?quarantined=true"
        ))
        .await["items"]
        .as_array()
        .unwrap()
        .is_empty());
}

/// Runs the `verdict` command against the app from `dir`.
async fn verdict(history: &History, dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_verdict-cluster-node"))
        .args(args)
        .current_dir(dir)
        .env("VERDICT_URL", history.app.url(""))
        .env("VERDICT_TOKEN", &history.token)
        .stdin(std::process::Stdio::null())
        .output();
    tokio::time::timeout(Duration::from_secs(120), output)
        .await
        .expect("verdict ends within 2 minutes")
        .expect("verdict starts")
}

async fn latest_run(history: &History) -> Value {
    let runs = history
        .get(&format!("/api/v1/projects/{PROJECT}/runs?limit=1"))
        .await;
    items(&runs)[0].clone()
}

#[tokio::test]
async fn verdict_report_and_verdict_run_exit_0_when_only_quarantined_tests_fail() {
    let history = History::new().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("junit.xml"),
        r#"<testsuite name="cart" tests="2" failures="1">
             <testcase classname="cart" name="total" time="0.1"/>
             <testcase classname="cart" name="tax" time="0.2"><failure message="expected: &lt;3&gt; but was: &lt;4&gt;">at cart.tax</failure></testcase>
           </testsuite>"#,
    )
    .unwrap();
    let report = [
        "report",
        "--project",
        PROJECT,
        "--fail-on-failures",
        "junit.xml",
    ];
    let failing = verdict(&history, dir.path(), &report).await;
    assert_eq!(failing.status.code(), Some(1), "{failing:?}");
    let tax = history.test_key(&latest_run(&history).await, "tax").await;
    assert_eq!(
        history
            .quarantine(&tax, json!({ "reason": "rounding, #7" }))
            .await
            .status(),
        200
    );
    let green = verdict(&history, dir.path(), &report).await;
    assert_eq!(green.status.code(), Some(0), "{green:?}");
    assert!(String::from_utf8_lossy(&green.stdout).contains("1 of them quarantined"));
    let run = latest_run(&history).await;
    assert_eq!(
        (run["status"].clone(), run["counts"]["quarantined"].clone()),
        (json!("passed"), json!(1))
    );

    let tap = [
        "run",
        "--project",
        PROJECT,
        "--",
        "sh",
        "-c",
        "printf '1..2\\nok 1 - adds\\nnot ok 2 - divides\\n'; exit 1",
    ];
    let failing = verdict(&history, dir.path(), &tap).await;
    assert_eq!(failing.status.code(), Some(1), "{failing:?}");
    let divides = history
        .test_key(&latest_run(&history).await, "divides")
        .await;
    assert_eq!(
        history
            .quarantine(&divides, json!({ "reason": "known bug" }))
            .await
            .status(),
        200
    );
    let green = verdict(&history, dir.path(), &tap).await;
    assert_eq!(green.status.code(), Some(0), "{green:?}");
}

#[tokio::test]
async fn the_catalog_finds_tests_by_name_with_their_recent_record() {
    let history = History::new().await;
    for day in 1..=4 {
        let checkout = match day % 2 {
            0 => failed("checkout applies coupon", "boom"),
            _ => passed("checkout applies coupon"),
        };
        history
            .run(
                day,
                json!({}),
                json!([
                    checkout,
                    passed("login works"),
                    passed("checkout_total 100%")
                ]),
            )
            .await;
    }
    let found = history
        .get(&format!("/api/v1/projects/{PROJECT}/tests?q=checkout"))
        .await;
    let mut names: Vec<_> = items(&found)
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["checkout applies coupon", "checkout_total 100%"]);
    let coupon = items(&found)
        .iter()
        .find(|t| t["name"] == "checkout applies coupon")
        .unwrap();
    assert_eq!(coupon["last_status"], "failed");
    assert_eq!(coupon["last_run_at"], "2026-11-04T10:00:00Z");
    assert_eq!(coupon["flake_rate"], 0.75, "3 flips in 4 runs");
    assert_eq!(coupon["p95_duration_ms"], 10);

    // `%` and `_` are taken literally.
    let literal = history
        .get(&format!("/api/v1/projects/{PROJECT}/tests?q=100%25"))
        .await;
    assert_eq!(items(&literal).len(), 1);
    let underscore = history
        .get(&format!("/api/v1/projects/{PROJECT}/tests?q=t_t"))
        .await;
    assert_eq!(items(&underscore).len(), 1, "{underscore}");

    // Every test once, a page at a time, in the order they were first reported.
    let mut names = Vec::new();
    let mut path = format!("/api/v1/projects/{PROJECT}/tests?limit=2");
    loop {
        let page = history.get(&path).await;
        names.extend(
            items(&page)
                .iter()
                .map(|t| t["name"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(cursor) => {
                path = format!("/api/v1/projects/{PROJECT}/tests?limit=2&cursor={cursor}")
            }
            None => break,
        }
    }
    assert_eq!(
        names,
        [
            "checkout applies coupon",
            "login works",
            "checkout_total 100%"
        ]
    );
}

#[tokio::test]
async fn trends_and_the_slowest_tests_follow_the_environment_filter() {
    let history = History::new().await;
    let timed = |name: &str, ms: u64| json!({ "id": name, "name": name, "status": "passed", "duration_ms": ms });
    for day in 1..=4u64 {
        history
            .run(
                day as u32,
                json!({ "env": "staging" }),
                json!([
                    timed("upload", 1000 * day),
                    timed("render", 50),
                    timed("search", 300)
                ]),
            )
            .await;
    }
    history
        .run(
            5,
            json!({ "env": "prod" }),
            json!([
                timed("upload", 10),
                timed("render", 5000),
                failed("search", "500")
            ]),
        )
        .await;

    let staging = history
        .get(&format!(
            "/api/v1/projects/{PROJECT}/tests/slowest?attr.env=staging&window=10&limit=2"
        ))
        .await;
    let names: Vec<_> = staging
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].clone())
        .collect();
    assert_eq!(names, [json!("upload"), json!("search")]);
    assert_eq!(staging[0]["p95_duration_ms"], 4000);
    assert_eq!(staging[0]["p50_duration_ms"], 2000);
    let prod = history
        .get(&format!(
            "/api/v1/projects/{PROJECT}/tests/slowest?attr.env=prod&window=10&limit=1"
        ))
        .await;
    assert_eq!(prod[0]["name"], "render");

    let finished = latest_run(&history).await;
    let search = history.test_key(&finished, "search").await;
    let trend = history
        .get(&format!(
            "/api/v1/projects/{PROJECT}/tests/{search}/trend?window=10"
        ))
        .await;
    assert_eq!(
        (trend["runs"].as_u64(), trend["passed"].as_u64()),
        (Some(5), Some(4))
    );
    assert_eq!(trend["pass_rate"], 0.8);
    let staging_trend = history
        .get(&format!(
            "/api/v1/projects/{PROJECT}/tests/{search}/trend?window=10&attr.env=staging"
        ))
        .await;
    assert_eq!(staging_trend["pass_rate"], 1.0);

    let days = history
        .get(&format!("/api/v1/projects/{PROJECT}/trend?window=10"))
        .await;
    let summary: Vec<_> = days
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["day"].as_str().unwrap().to_owned(),
                d["passed"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(summary.len(), 5);
    assert_eq!(summary[0], ("2026-11-01".to_owned(), 1));
    assert_eq!(summary[4], ("2026-11-05".to_owned(), 0));
    let prod_days = history
        .get(&format!(
            "/api/v1/projects/{PROJECT}/trend?window=10&attr.env=prod"
        ))
        .await;
    assert_eq!(prod_days.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn the_flaky_list_pages_and_filters_by_branch() {
    let history = History::new().await;
    for day in 1..=4u32 {
        let flip = |name: &str, every: u32| match day % every {
            0 => failed(name, "nope"),
            _ => passed(name),
        };
        history
            .run(
                day,
                json!({ "git.branch": "main" }),
                json!([flip("often", 2), flip("rarely", 4), flip("sometimes", 3)]),
            )
            .await;
    }
    history
        .run(
            5,
            json!({ "git.branch": "feature" }),
            json!([failed("steady", "x")]),
        )
        .await;
    history
        .run(
            6,
            json!({ "git.branch": "feature" }),
            json!([passed("steady")]),
        )
        .await;

    let mut names = Vec::new();
    let mut path = format!("/api/v1/projects/{PROJECT}/tests/flaky?branch=main&limit=1");
    loop {
        let page = history.get(&path).await;
        assert!(items(&page).len() <= 1);
        names.extend(
            items(&page)
                .iter()
                .map(|t| t["name"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(cursor) => {
                path = format!(
                    "/api/v1/projects/{PROJECT}/tests/flaky?branch=main&limit=1&cursor={cursor}"
                )
            }
            None => break,
        }
    }
    assert_eq!(names, ["often", "sometimes", "rarely"]);

    let feature = history
        .get(&format!(
            "/api/v1/projects/{PROJECT}/tests/flaky?branch=feature"
        ))
        .await;
    let feature_names: Vec<_> = items(&feature).iter().map(|t| t["name"].clone()).collect();
    assert_eq!(feature_names, [json!("steady")]);
    let two_runs = history
        .get(&format!("/api/v1/projects/{PROJECT}/tests/flaky?window=2"))
        .await;
    let two_run_names: Vec<_> = items(&two_runs).iter().map(|t| t["name"].clone()).collect();
    assert_eq!(two_run_names, [json!("steady")]);
}
