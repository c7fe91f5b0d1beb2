//! `verdict report` as a CI job runs it: the real binary against a real system, with
//! reports in the shapes real tools write (fixtures described in fixtures/reports).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use verdict_client::{Client, RunFilter};
use verdict_contracts::artifacts::ArtifactState;
use verdict_contracts::auth::CreateProject;
use verdict_contracts::page::PageRequest;
use verdict_contracts::runs::{Counts, Run, RunStatus, ShardCounts, TestResult};
use verdict_testkit::TestApp;

/// The CI systems whose variables the command reads; cleared so the tests do not pick
/// up the environment they run in.
const CI_MARKERS: [&str; 6] = [
    "GITHUB_ACTIONS",
    "GITLAB_CI",
    "BUILDKITE",
    "CIRCLECI",
    "TF_BUILD",
    "JENKINS_URL",
];

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/reports")
        .join(name)
}

/// A system with a project `web`, an administrator's client and a reporter token.
struct World {
    app: TestApp,
    admin: Client,
    token: String,
    dir: tempfile::TempDir,
}

impl World {
    async fn new() -> Self {
        Self::with_settings(&[]).await
    }

    async fn with_settings(settings: &[(&str, &str)]) -> Self {
        let app = TestApp::spawn_with(settings).await;
        let admin = Client::builder(app.url(""))
            .token(app.admin_token().await)
            .build()
            .unwrap();
        admin
            .create_project(&CreateProject {
                slug: "web".to_owned().try_into().unwrap(),
                name: "Web".to_owned().try_into().unwrap(),
            })
            .await
            .unwrap();
        let (_, token) = app
            .api_token(&app.admin_token().await, "web", "reporter")
            .await;
        World {
            app,
            admin,
            token,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// Copies a fixture into the working directory of the command.
    fn copy(&self, fixture_name: &str) -> PathBuf {
        let target = self.dir.path().join(fixture_name);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(fixture(fixture_name), &target).unwrap();
        target
    }

    fn write(&self, name: &str, bytes: &[u8]) {
        let path = self.dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }

    /// Runs `verdict report <args>` in the working directory, with the server and the
    /// token in the environment as a CI job would set them.
    async fn report(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_verdict"));
        command
            .arg("report")
            .args(args)
            .current_dir(self.dir.path())
            .env("VERDICT_URL", self.app.url(""))
            .env("VERDICT_TOKEN", &self.token)
            .env("VERDICT_RETRY_BUDGET", "20s")
            .stdin(std::process::Stdio::null());
        for marker in CI_MARKERS {
            command.env_remove(marker);
        }
        for (name, value) in env {
            command.env(name, value);
        }
        let output = tokio::time::timeout(Duration::from_secs(120), command.output())
            .await
            .expect("verdict report ends within 2 minutes")
            .expect("verdict report starts");
        let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
        assert!(
            !text(&output.stdout).contains(&self.token)
                && !text(&output.stderr).contains(&self.token),
            "the token was printed"
        );
        output
    }

    async fn runs(&self) -> Vec<Run> {
        self.admin
            .list_runs("web", &RunFilter::default(), &PageRequest::default())
            .await
            .unwrap()
            .items
    }

    /// Every stored result of the run, page by page.
    async fn results(&self, run: &Run) -> Vec<TestResult> {
        let mut results = Vec::new();
        let mut page = PageRequest {
            cursor: None,
            limit: 500,
        };
        loop {
            let listed = self
                .admin
                .list_results(run.id, &verdict_client::ResultFilter::default(), &page)
                .await
                .unwrap();
            results.extend(listed.items);
            match listed.next_cursor {
                Some(cursor) => page.cursor = Some(cursor),
                None => return results,
            }
        }
    }

    async fn only_run(&self) -> Run {
        let runs = self.runs().await;
        assert_eq!(runs.len(), 1, "one run expected");
        runs.into_iter().next().unwrap()
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn counts(total: u64, passed: u64, failed: u64, errored: u64, skipped: u64, flaky: u64) -> Counts {
    Counts {
        total,
        passed,
        failed,
        skipped,
        errored,
        flaky,
        quarantined: 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jest_junit_report_makes_a_run_with_its_own_counts() {
    let world = World::new().await;
    world.copy("jest-junit.xml");
    let output = world
        .report(&["--project", "web", "jest-junit.xml"], &[])
        .await;
    assert!(output.status.success(), "{}", stderr(&output));
    let run = world.only_run().await;
    // The report's own summary: 7 tests, 1 failure, 1 skipped.
    assert_eq!(run.counts, counts(7, 5, 1, 0, 1, 0));
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(run.name, "jest tests", "the report's name by default");
    let printed = stdout(&output);
    assert!(
        printed.contains(&format!("{}/runs/{}", world.app.url(""), run.id)),
        "{printed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_surefire_report_with_a_flaky_test_counts_as_surefire_does() {
    let world = World::new().await;
    world.copy("TEST-com.example.shop.CartServiceTest.xml");
    let output = world
        .report(&["--project", "web", "--name", "unit", "TEST-*.xml"], &[])
        .await;
    assert!(output.status.success(), "{}", stderr(&output));
    // The report's own summary: 5 tests, 1 failure, 1 error, 1 skipped; one flake.
    assert_eq!(world.only_run().await.counts, counts(5, 2, 1, 1, 1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_reports_of_different_formats_make_one_run() {
    let world = World::new().await;
    world.copy("jest-junit.xml");
    world.copy("ctrf-report.json");
    let output = world
        .report(
            &[
                "--project",
                "web",
                "--json",
                "jest-junit.xml",
                "ctrf-report.json",
            ],
            &[],
        )
        .await;
    assert!(output.status.success(), "{}", stderr(&output));
    let run = world.only_run().await;
    // 7 tests (1 failed, 1 skipped) and 3 tests (1 failed).
    assert_eq!(run.counts, counts(10, 7, 2, 0, 1, 0));
    let document: serde_json::Value = serde_json::from_str(stdout(&output).trim()).unwrap();
    assert_eq!(document["run_id"], run.id.to_string());
    assert_eq!(
        document["url"],
        format!("{}/runs/{}", world.app.url(""), run.id)
    );
    assert_eq!(document["status"], "failed");
    assert_eq!(document["counts"]["total"], 10);
    assert_eq!(document["results"], 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn playwright_attachments_are_uploaded_and_linked_to_their_results() {
    let world = World::new().await;
    world.copy("playwright/results.xml");
    let failed_dir =
        "playwright/test-results/login-login-shows-an-error-for-a-wrong-password-chromium";
    world.write(
        &format!("{failed_dir}/test-failed-1.png"),
        b"\x89PNG screenshot",
    );
    world.write(&format!("{failed_dir}/trace.zip"), b"PK trace");
    // The third attachment of the report, a video, is missing: a warning, not an error.
    let output = world
        .report(&["--project", "web", "playwright/results.xml"], &[])
        .await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("video.webm"),
        "{}",
        stderr(&output)
    );
    let run = world.only_run().await;
    // The report's own summary: 5 tests, 1 failure, 1 skipped.
    assert_eq!(run.counts, counts(5, 3, 1, 0, 1, 0));
    let artifacts = world
        .admin
        .list_artifacts(run.id, None, &PageRequest::default())
        .await
        .unwrap()
        .items;
    let mut names: Vec<&str> = artifacts.iter().map(|a| a.name.as_str()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            format!("{failed_dir}/test-failed-1.png"),
            format!("{failed_dir}/trace.zip")
        ]
    );
    let failures = world
        .admin
        .list_results(
            run.id,
            &verdict_client::ResultFilter {
                status: Some(verdict_contracts::runs::ResultStatus::Failed),
                ..Default::default()
            },
            &PageRequest::default(),
        )
        .await
        .unwrap()
        .items;
    assert_eq!(failures.len(), 1);
    for artifact in &artifacts {
        assert_eq!(artifact.result_id.as_deref(), Some(failures[0].id.as_str()));
        assert_eq!(artifact.state, ArtifactState::Stored);
    }
    let png = artifacts
        .iter()
        .find(|a| a.name.as_str().ends_with(".png"))
        .unwrap();
    assert_eq!(png.content_type.as_str(), "image/png");
    assert_eq!(
        &world.admin.download(png.id).await.unwrap()[..],
        b"\x89PNG screenshot"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_artifacts_of_a_playwright_tree_keep_their_paths_as_names() {
    let world = World::new().await;
    world.copy("jest-junit.xml");
    let mut expected = Vec::new();
    for test in 0..250 {
        for file in ["test-failed-1.png", "trace.zip"] {
            let name = format!("test-results/spec-{test:03}-chromium/{file}");
            world.write(&name, format!("{name} bytes").as_bytes());
            expected.push(name);
        }
    }
    expected.sort();
    let output = world
        .report(
            &[
                "--project",
                "web",
                "--artifacts",
                "test-results/**/*",
                "jest-junit.xml",
            ],
            &[],
        )
        .await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("artifacts: 500 artifacts"),
        "{}",
        stderr(&output)
    );
    let run = world.only_run().await;
    let mut stored = Vec::new();
    let mut page = PageRequest {
        cursor: None,
        limit: 500,
    };
    loop {
        let listed = world
            .admin
            .list_artifacts(run.id, None, &page)
            .await
            .unwrap();
        for artifact in listed.items {
            assert_eq!(artifact.state, ArtifactState::Stored, "{}", artifact.name);
            stored.push(artifact.name.as_str().to_owned());
        }
        match listed.next_cursor {
            Some(cursor) => page.cursor = Some(cursor),
            None => break,
        }
    }
    stored.sort();
    assert_eq!(stored, expected);
    let listed = world
        .admin
        .list_artifacts(run.id, None, &PageRequest::default())
        .await
        .unwrap();
    for artifact in listed.items.iter().take(3) {
        let name = artifact.name.as_str();
        assert_eq!(
            world.admin.download(artifact.id).await.unwrap(),
            format!("{name} bytes").as_bytes(),
            "{name} holds what was uploaded"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_report_is_named_by_file_line_and_column_and_nothing_is_sent() {
    let world = World::new().await;
    world.copy("jest-junit.xml");
    world.write(
        "broken.xml",
        b"<testsuite name=\"x\">\n  <testcase name=\"a\">\n</testsuite>\n",
    );
    let output = world
        .report(&["--project", "web", "jest-junit.xml", "broken.xml"], &[])
        .await;
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(
        message.contains("broken.xml:3:1: "),
        "line 3, column 1: {message}"
    );
    assert!(message.contains("malformed JUnit XML"), "{message}");
    assert!(world.runs().await.is_empty(), "no run was created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_tell_failed_runs_bad_input_and_unreachable_servers_apart() {
    let world = World::new().await;
    world.copy("jest-junit.xml");
    let failed = world
        .report(
            &["--project", "web", "--fail-on-failures", "jest-junit.xml"],
            &[],
        )
        .await;
    assert_eq!(failed.status.code(), Some(1), "{}", stderr(&failed));
    assert!(
        stderr(&failed).contains("the run failed"),
        "{}",
        stderr(&failed)
    );

    let missing = world
        .report(&["--project", "web", "nothing-*.xml"], &[])
        .await;
    assert_eq!(missing.status.code(), Some(2));
    assert!(stderr(&missing).contains("nothing-*.xml: no file matches"));

    let unknown_project = world
        .report(&["--project", "elsewhere", "jest-junit.xml"], &[])
        .await;
    assert_eq!(unknown_project.status.code(), Some(3));
    assert!(
        stderr(&unknown_project).contains("404"),
        "{}",
        stderr(&unknown_project)
    );

    let port = verdict_testkit::ports::free_port();
    let unreachable = world
        .report(
            &["--project", "web", "--retry-budget", "1s", "jest-junit.xml"],
            &[("VERDICT_URL", &format!("http://127.0.0.1:{port}"))],
        )
        .await;
    assert_eq!(unreachable.status.code(), Some(3));
    assert!(
        stderr(&unreachable).contains("cannot connect"),
        "{}",
        stderr(&unreachable)
    );
    assert_eq!(
        world.runs().await.len(),
        1,
        "only the first command made a run"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_results_the_server_refuses_is_marked_interrupted() {
    let world = World::with_settings(&[("VERDICT_RESULTS_BODY_LIMIT", "1024")]).await;
    world.copy("jest-junit.xml");
    let output = world
        .report(&["--project", "web", "jest-junit.xml"], &[])
        .await;
    assert_eq!(output.status.code(), Some(3));
    let message = stderr(&output);
    assert!(message.contains("413"), "{message}");
    assert!(
        message.contains("the run was marked interrupted"),
        "{message}"
    );
    let mut run = world.only_run().await;
    for _ in 0..100 {
        if run.status != RunStatus::Running {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        run = world.only_run().await;
    }
    assert_eq!(run.status, RunStatus::Interrupted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ci_attributes_come_from_the_environment_and_explicit_ones_win() {
    let world = World::new().await;
    world.copy("ctrf-report.json");
    let output = world
        .report(
            &[
                "--project",
                "web",
                "--attr",
                "git.branch=release",
                "--attr",
                "os=linux",
                "ctrf-report.json",
            ],
            &[
                ("GITLAB_CI", "true"),
                ("CI_PIPELINE_ID", "4242"),
                (
                    "CI_PIPELINE_URL",
                    "https://gitlab.example.com/web/-/pipelines/4242",
                ),
                ("CI_COMMIT_SHA", "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b"),
                ("CI_COMMIT_BRANCH", "main"),
            ],
        )
        .await;
    assert!(output.status.success(), "{}", stderr(&output));
    let attributes = world.only_run().await.attributes;
    let expected: BTreeMap<String, String> = [
        ("ci.provider", "gitlab"),
        ("ci.build_id", "4242"),
        (
            "ci.build_url",
            "https://gitlab.example.com/web/-/pipelines/4242",
        ),
        ("git.commit", "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b"),
        ("git.branch", "release"),
        ("os", "linux"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(attributes, expected);
}

/// Copies a report of the runs service's import fixtures (real NUnit, xUnit.net and TRX
/// reports, described in services/runs/tests/fixtures/README.md) into the working
/// directory of the command.
fn copy_import_fixture(world: &World, name: &str, as_name: &str) {
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../services/runs/tests/fixtures")
        .join(name);
    std::fs::copy(&source, world.dir.path().join(as_name))
        .unwrap_or_else(|err| panic!("{}: {err}", source.display()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nunit_xunit_and_trx_reports_are_told_by_content_and_counted_as_they_declare() {
    let world = World::new().await;
    // Names that say nothing of the format: the content tells it.
    copy_import_fixture(&world, "nunit2/mock-assembly-2.6.2.xml", "a.xml");
    copy_import_fixture(&world, "nunit3/dotnet-nunit.xml", "b.xml");
    copy_import_fixture(&world, "xunit/Microbenchmarks.Output.xml", "c.xml");
    copy_import_fixture(&world, "trx/MSTest-net8.0-sample.trx", "d.xml");
    let output = world
        .report(&["--project", "web", "--json", "*.xml"], &[])
        .await;
    assert!(output.status.success(), "{}", stderr(&output));
    let run = world.only_run().await;
    // The reports' own summaries: NUnit 2 28 tests (18 passed, 1 failure, 1 error and 3
    // not runnable, 5 ignored or inconclusive); NUnit 3 9 (3 passed, 5 failed of which 2
    // errors, 1 skipped); xUnit.net 65 (61 passed, 2 failed, 2 skipped); TRX (MSTest) 7
    // (3 passed, 3 failed, 1 not executed).
    assert_eq!(run.counts, counts(109, 85, 9, 6, 9, 0));
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(
        run.name, r"C:\Program Files\NUnit 2.6.2\bin\tests\mock-assembly.dll",
        "the first report's own name"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_reader_notices_is_printed_and_a_file_of_no_known_format_stops_the_command() {
    let world = World::new().await;
    world.write(
        "setup.xml",
        b"<testsuite name=\"s\">\n  <testcase classname=\"pkg.Setup\"/>\n  <testcase name=\"ok\"/>\n</testsuite>\n",
    );
    let output = world.report(&["--project", "web", "setup.xml"], &[]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains(
            "warning: setup.xml: line 2, column 3: a <testcase> without a name is imported as \"pkg.Setup\""
        ),
        "{}",
        stderr(&output)
    );
    assert_eq!(world.only_run().await.counts.total, 2);

    world.write("page.xml", b"<html><body/></html>");
    let refused = world.report(&["--project", "web", "page.xml"], &[]).await;
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        stderr(&refused).contains(
            "page.xml: not a report format Verdict reads: found XML whose root element is <html>"
        ),
        "{}",
        stderr(&refused)
    );
    assert_eq!(world.runs().await.len(), 1, "no run for the refused file");
}

/// A pytest module with each kind of outcome pytest reports.
const PYTEST_MODULE: &str = r#"
import pytest

@pytest.fixture
def database():
    raise ConnectionError("database unreachable")

def test_adds():
    assert 1 + 1 == 2

def test_divides():
    assert 1 / 2 == 0

@pytest.mark.parametrize("n", [1, 2, 3])
def test_is_positive(n):
    assert n > 0

@pytest.mark.skip(reason="not on this platform")
def test_windows_paths():
    pass

@pytest.mark.xfail(reason="known bug")
def test_rounding():
    assert round(2.675, 2) == 2.68

def test_queries(database):
    pass
"#;

/// A count attribute of the first `<testsuite>` element.
fn suite_count(xml: &str, attribute: &str) -> u64 {
    let suite = &xml[xml.find("<testsuite ").expect("a testsuite element")..];
    let suite = &suite[..suite.find('>').unwrap()];
    let start = suite
        .find(&format!(" {attribute}=\""))
        .unwrap_or_else(|| panic!("{attribute} missing in {suite}"))
        + attribute.len()
        + 3;
    suite[start..start + suite[start..].find('"').unwrap()]
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_pytest_writes_at_test_time_keeps_its_own_counts() {
    let world = World::new().await;
    world.write("test_shop.py", PYTEST_MODULE.as_bytes());
    let pytest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/bin/pytest");
    let ran = tokio::process::Command::new(&pytest)
        .args([
            "-q",
            "-p",
            "no:cacheprovider",
            "--junitxml=reports/pytest.xml",
            "test_shop.py",
        ])
        .current_dir(world.dir.path())
        .output()
        .await
        .unwrap_or_else(|err| panic!("{} (run deploy/install-deps.sh): {err}", pytest.display()));
    assert_eq!(ran.status.code(), Some(1), "pytest reports failures");
    let xml = std::fs::read_to_string(world.dir.path().join("reports/pytest.xml")).unwrap();
    let (tests, failures, errors, skipped) = (
        suite_count(&xml, "tests"),
        suite_count(&xml, "failures"),
        suite_count(&xml, "errors"),
        suite_count(&xml, "skipped"),
    );
    assert_eq!((tests, failures, errors, skipped), (8, 1, 1, 2), "{xml}");

    let output = world
        .report(&["--project", "web", "reports/*.xml"], &[])
        .await;
    assert!(output.status.success(), "{}", stderr(&output));
    let run = world.only_run().await;
    let passed = tests - failures - errors - skipped;
    assert_eq!(
        run.counts,
        counts(tests, passed, failures, errors, skipped, 0)
    );
}

/// A JUnit report of `tests` passing tests.
fn large_report(tests: usize) -> String {
    let mut xml = format!("<testsuite name=\"big\" tests=\"{tests}\">\n");
    for i in 0..tests {
        xml.push_str(&format!(
            "<testcase classname=\"big.Suite{}\" name=\"test_{i}\" time=\"0.001\"/>\n",
            i % 50
        ));
    }
    xml.push_str("</testsuite>\n");
    xml
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_restart_while_results_are_posted_loses_and_doubles_nothing() {
    let mut world = World::new().await;
    let tests = 20_000;
    world.write("big.xml", large_report(tests).as_bytes());
    let command = {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_verdict"));
        command
            .args(["report", "--project", "web", "big.xml"])
            .current_dir(world.dir.path())
            .env("VERDICT_URL", world.app.url(""))
            .env("VERDICT_TOKEN", &world.token)
            .stdin(std::process::Stdio::null());
        for marker in CI_MARKERS {
            command.env_remove(marker);
        }
        command.output()
    };
    let reporting = tokio::spawn(command);
    // Once the run exists, its results are being posted: restart the gateway then.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while world.runs().await.is_empty() {
        assert!(std::time::Instant::now() < deadline, "no run was created");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    world.app.stop(verdict_testkit::Component::Gateway).await;
    assert!(
        !reporting.is_finished(),
        "the command was still at work when the gateway stopped"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    world.app.start(verdict_testkit::Component::Gateway).await;
    let output = reporting.await.unwrap().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let run = world.only_run().await;
    assert_eq!(run.counts.total, tests as u64);
    assert_eq!(run.counts.passed, tests as u64);
    let mut stored: Vec<String> = world
        .results(&run)
        .await
        .into_iter()
        .map(|result| result.test_key)
        .collect();
    assert_eq!(stored.len(), tests, "every result stored exactly once");
    stored.sort();
    stored.dedup();
    assert_eq!(stored.len(), tests, "no result stored twice");
}

/// The report of one shard of a build: five tests of its own, the first failing in
/// shard 2.
fn shard_report(shard: usize) -> String {
    let mut xml = format!("<testsuite name=\"shard {shard}\" tests=\"5\">\n");
    for test in 0..5 {
        xml.push_str(&format!(
            "<testcase classname=\"shard{shard}.Suite\" name=\"test_{test}\">"
        ));
        if shard == 2 && test == 0 {
            xml.push_str("<failure message=\"expected 1, got 2\"/>");
        }
        xml.push_str("</testcase>\n");
    }
    xml.push_str("</testsuite>\n");
    xml
}

/// Runs `verdict report` for the given shards of build `build-42` (announced as 4
/// shards) at the same time; answers each command's JSON document.
async fn report_shards(world: &World, shards: &[usize]) -> Vec<serde_json::Value> {
    let commands = shards.iter().map(|shard| {
        let file = format!("shard-{shard}.xml");
        world.write(&file, shard_report(*shard).as_bytes());
        async move {
            let output = world
                .report(
                    &[
                        "--project",
                        "web",
                        "--json",
                        "--build-key",
                        "build-42",
                        "--shards",
                        "4",
                        &file,
                    ],
                    &[],
                )
                .await;
            assert!(output.status.success(), "{}", stderr(&output));
            serde_json::from_str::<serde_json::Value>(stdout(&output).trim()).unwrap()
        }
    });
    futures::future::join_all(commands).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_parallel_shards_of_a_build_make_one_run_with_the_union_of_their_results() {
    let world = World::new().await;
    let documents = report_shards(&world, &[1, 2, 3, 4]).await;
    let run = world.only_run().await;
    for document in &documents {
        assert_eq!(document["run_id"], run.id.to_string(), "{document}");
    }
    assert_eq!(run.build_key.as_deref(), Some("build-42"));
    assert_eq!(run.counts, counts(20, 19, 1, 0, 0, 0));
    assert_eq!(run.status, RunStatus::Failed, "finished: all 4 shards did");
    assert_eq!(
        run.shards,
        Some(ShardCounts {
            expected: Some(4),
            joined: 4,
            finished: 4
        })
    );
    let mut names: Vec<String> = world
        .results(&run)
        .await
        .into_iter()
        .map(|result| format!("{} {}", result.suite.unwrap_or_default(), result.name))
        .collect();
    names.sort();
    let expected: Vec<String> = (1..=4)
        .flat_map(|shard| (0..5).map(move |test| format!("shard{shard}.Suite test_{test}")))
        .collect();
    assert_eq!(names, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_build_run_finishes_only_once_all_its_announced_shards_have() {
    let world = World::new().await;
    let documents = report_shards(&world, &[1, 2, 3]).await;
    let run = world.only_run().await;
    assert_eq!(run.status, RunStatus::Running, "one of 4 shards is missing");
    assert_eq!(run.counts.total, 15);
    for document in &documents {
        assert_eq!(document["status"], "running", "{document}");
    }
    let last = report_shards(&world, &[4]).await;
    let run = world.only_run().await;
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(run.counts.total, 20);
    assert_eq!(
        last[0]["status"], "failed",
        "the last shard sees the run finished"
    );
}

#[tokio::test]
async fn the_help_reads_like_a_manual() {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_verdict"))
        .args(["report", "--help"])
        .output()
        .await
        .unwrap();
    assert!(output.status.success());
    let help = stdout(&output);
    for part in [
        "Examples:",
        "Exit status:",
        "[[ATTACHMENT|path]]",
        "--fail-on-failures",
        "VERDICT_TOKEN",
    ] {
        assert!(help.contains(part), "{part} missing from:\n{help}");
    }
}

/// Every string of a YAML file, read with the tools' Python (PyYAML comes with the
/// OpenAPI validator that deploy/install-deps.sh installs).
fn yaml_strings(file: &Path) -> Vec<String> {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/venv/bin/python3");
    let output = std::process::Command::new(&python)
        .args([
            "-c",
            "import json, sys, yaml; json.dump(yaml.safe_load(open(sys.argv[1])), sys.stdout)",
        ])
        .arg(file)
        .output()
        .unwrap_or_else(|err| panic!("{} (run deploy/install-deps.sh): {err}", python.display()));
    assert!(
        output.status.success(),
        "{} is not YAML: {}",
        file.display(),
        stderr(&output)
    );
    fn strings(value: &serde_json::Value, into: &mut Vec<String>) {
        match value {
            serde_json::Value::String(text) => into.push(text.clone()),
            serde_json::Value::Array(items) => items.iter().for_each(|item| strings(item, into)),
            serde_json::Value::Object(fields) => fields.values().for_each(|v| strings(v, into)),
            _ => {}
        }
    }
    let mut found = Vec::new();
    strings(&serde_json::from_slice(&output.stdout).unwrap(), &mut found);
    found
}

#[tokio::test]
async fn the_example_pipelines_use_only_flags_the_command_has() {
    let help = stdout(
        &tokio::process::Command::new(env!("CARGO_BIN_EXE_verdict"))
            .args(["report", "--help"])
            .output()
            .await
            .unwrap(),
    );
    let pipelines = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/ci");
    for name in ["github-actions.yml", "gitlab-ci.yml"] {
        let commands: Vec<String> = yaml_strings(&pipelines.join(name))
            .into_iter()
            .filter_map(|text| Some(text[text.find("verdict report")?..].to_owned()))
            .collect();
        assert!(!commands.is_empty(), "{name} runs no verdict report");
        for command in commands {
            for flag in command
                .split_whitespace()
                .filter(|word| word.starts_with("--"))
            {
                assert!(
                    help.contains(&format!("{flag} ")) || help.contains(&format!("{flag}\n")),
                    "{name}: {flag} is not a flag of verdict report"
                );
            }
        }
    }
}
