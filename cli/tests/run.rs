//! `verdict run` as a CI job runs it: the real binary wrapping real test commands (a
//! shell script printing TAP, prove, pytest, replayed `go test -json`) against a real
//! system, with a WebSocket viewer watching.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use serde_json::Value;
use verdict_client::{Client, RunFilter};
use verdict_contracts::auth::CreateProject;
use verdict_contracts::ids::RunId;
use verdict_contracts::page::PageRequest;
use verdict_contracts::runs::{Counts, Run, RunStatus};
use verdict_testkit::{Component, LiveClient, TestApp};

const WAIT: Duration = Duration::from_secs(30);

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
        .join("tests/fixtures/run")
        .join(name)
}

/// A system with a project `web`, an administrator and a reporter token, and a working
/// directory for the command.
struct World {
    app: TestApp,
    admin: Client,
    admin_token: String,
    token: String,
    dir: tempfile::TempDir,
}

/// `verdict run` under way.
struct Running {
    child: tokio::process::Child,
}

/// What a finished `verdict run` left.
struct Finished {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl World {
    async fn new() -> Self {
        let app = TestApp::spawn().await;
        let admin_token = app.admin_token().await;
        let admin = Client::builder(app.url(""))
            .token(admin_token.clone())
            .build()
            .unwrap();
        admin
            .create_project(&CreateProject {
                slug: "web".to_owned().try_into().unwrap(),
                name: "Web".to_owned().try_into().unwrap(),
            })
            .await
            .unwrap();
        let (_, token) = app.api_token(&admin_token, "web", "reporter").await;
        World {
            app,
            admin,
            admin_token,
            token,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, text: &str) {
        let path = self.path(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// Starts `verdict run <args>` in the working directory, with the server and the
    /// token in the environment as a CI job would set them.
    fn start(&self, args: &[&str]) -> Running {
        self.start_with(&[], args)
    }

    /// [`World::start`] with more environment variables.
    fn start_with(&self, env: &[(&str, &str)], args: &[&str]) -> Running {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_verdict"));
        command
            .arg("run")
            .arg("--project")
            .arg("web")
            .args(args)
            .current_dir(self.dir.path())
            .env("VERDICT_URL", self.app.url(""))
            .env("VERDICT_TOKEN", &self.token)
            .env("VERDICT_RETRY_BUDGET", "20s")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for marker in CI_MARKERS {
            command.env_remove(marker);
        }
        command.envs(env.iter().copied());
        Running {
            child: command.spawn().expect("verdict run starts"),
        }
    }

    async fn run(&self, args: &[&str]) -> Finished {
        self.start(args).finished().await
    }

    async fn runs(&self) -> Vec<Run> {
        self.admin
            .list_runs("web", &RunFilter::default(), &PageRequest::default())
            .await
            .unwrap()
            .items
    }

    async fn only_run(&self) -> Run {
        let runs = self.runs().await;
        assert_eq!(runs.len(), 1, "one run expected");
        runs.into_iter().next().unwrap()
    }

    /// The only run, once it no longer runs (marking it interrupted is applied after
    /// the command has exited).
    async fn ended_run(&self) -> Run {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let run = self.only_run().await;
            if run.status != RunStatus::Running {
                return run;
            }
            assert!(tokio::time::Instant::now() < deadline, "the run still runs");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The run the command created, once it exists.
    async fn created_run(&self) -> Run {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some(run) = self.runs().await.into_iter().next() {
                return run;
            }
            assert!(tokio::time::Instant::now() < deadline, "no run was created");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A viewer of the run from its first event on.
    async fn viewer(&self, run: RunId) -> LiveClient {
        let mut viewer = LiveClient::connect(&self.app.url(""), Some(&self.admin_token))
            .await
            .expect("socket");
        viewer.subscribe(&format!("run:{run}"), Some(0)).await;
        let subscribed = viewer.json(WAIT).await;
        assert_eq!(subscribed["type"], "subscribed", "{subscribed}");
        viewer
    }

    async fn wait_for_file(&self, name: &str) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while !self.path(name).exists() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{name} never appeared"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Running {
    async fn finished(self) -> Finished {
        let output = tokio::time::timeout(Duration::from_secs(120), self.child.wait_with_output())
            .await
            .expect("verdict run ends within 2 minutes")
            .expect("verdict run ends");
        Finished {
            status: output.status,
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    fn signal(&self, signal: libc::c_int) {
        let pid = self.child.id().expect("verdict runs") as libc::pid_t;
        // SAFETY: kill(2) on our own child; no memory is involved.
        unsafe {
            libc::kill(pid, signal);
        }
    }
}

/// Names of the tests of the `test.finished` events the viewer receives until `wanted`
/// are all among them.
async fn seen_tests(viewer: &mut LiveClient, wanted: &[&str]) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    while !wanted.iter().all(|name| seen.iter().any(|s| s == name)) {
        let message = viewer.json(WAIT).await;
        if message["event"]["kind"] == "test.finished" {
            let tests = message["event"]["tests"].as_array().unwrap();
            seen.extend(
                tests
                    .iter()
                    .filter_map(|t| t["name"].as_str().map(str::to_owned)),
            );
        }
        assert_ne!(message["event"]["kind"], "run.finished", "{seen:?}");
    }
    seen
}

fn counts(total: u64, passed: u64, failed: u64, errored: u64, skipped: u64) -> Counts {
    Counts {
        total,
        passed,
        failed,
        skipped,
        errored,
        flaky: 0,
        quarantined: 0,
    }
}

/// A test command printing two TAP results, then waiting for `release` before the last
/// one and exiting with 7.
const WAITING_TAP: &str = "\
echo 'TAP version 13'
echo 'ok 1 - first'
echo 'ok 2 - second'
while [ ! -e release ]; do sleep 0.05; done
echo 'not ok 3 - third'
echo '1..3'
exit 7
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_sees_results_while_the_command_still_runs() {
    let world = World::new().await;
    world.write("tests.sh", WAITING_TAP);
    let running = world.start(&["--", "sh", "tests.sh"]);
    let run = world.created_run().await;
    let mut viewer = world.viewer(run.id).await;
    // The command waits for `release`: whatever the viewer sees came before its end.
    seen_tests(&mut viewer, &["first", "second"]).await;
    assert_eq!(world.only_run().await.status, RunStatus::Running);
    world.write("release", "");
    let finished = running.finished().await;
    assert_eq!(finished.status.code(), Some(7), "{}", finished.stderr);
    let run = world.only_run().await;
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(run.counts, counts(3, 2, 1, 0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_commands_output_passes_through_and_its_success_is_the_exit_code() {
    let world = World::new().await;
    let finished = world
        .run(&[
            "--name",
            "smoke",
            "--",
            "sh",
            "-c",
            "echo 'ok 1 - works'; echo done >&2",
        ])
        .await;
    assert!(finished.status.success(), "{}", finished.stderr);
    assert!(
        finished.stdout.starts_with("ok 1 - works\n"),
        "{}",
        finished.stdout
    );
    assert!(finished.stderr.contains("done\n"), "{}", finished.stderr);
    let run = world.only_run().await;
    assert_eq!(run.name, "smoke");
    assert_eq!(run.status, RunStatus::Passed);
    assert_eq!(run.counts, counts(1, 1, 0, 0, 0));
    assert!(
        finished.stdout.contains(&format!("/runs/{}", run.id)),
        "the run's URL is printed: {}",
        finished.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_killed_by_a_signal_leaves_the_run_interrupted() {
    let world = World::new().await;
    let finished = world
        .run(&[
            "--",
            "sh",
            "-c",
            "echo 'ok 1 - before the crash'; kill -9 $$",
        ])
        .await;
    assert_eq!(finished.status.code(), Some(128 + 9), "{}", finished.stderr);
    let run = world.ended_run().await;
    assert_eq!(run.status, RunStatus::Interrupted);
    assert_eq!(run.counts.passed, 1, "results before the crash are kept");
}

/// A command that reports a test, says it started, and on `signal` writes which one it
/// got and exits as a shell does.
fn trapping(signal: &str) -> String {
    format!(
        "trap 'echo {signal} > got-signal; exit 1' {signal}\n\
         echo 'ok 1 - started'\n\
         touch started\n\
         while true; do sleep 0.05; done\n"
    )
}

async fn stopping_verdict_stops_the_command(signal: libc::c_int, name: &str) {
    let world = World::new().await;
    world.write("tests.sh", &trapping(name));
    let running = world.start(&["--", "sh", "tests.sh"]);
    world.wait_for_file("started").await;
    running.signal(signal);
    let finished = running.finished().await;
    assert_eq!(
        std::fs::read_to_string(world.path("got-signal"))
            .unwrap()
            .trim(),
        name,
        "the command got the signal"
    );
    assert_eq!(finished.status.code(), Some(1), "{}", finished.stderr);
    let run = world.ended_run().await;
    assert_eq!(run.status, RunStatus::Interrupted);
    assert_eq!(run.counts.passed, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_to_verdict_is_passed_to_the_command_and_the_run_ends_interrupted() {
    stopping_verdict_stops_the_command(libc::SIGTERM, "TERM").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_to_verdict_is_passed_to_the_command_and_the_run_ends_interrupted() {
    stopping_verdict_stops_the_command(libc::SIGINT, "INT").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_of_no_format_pass_through_and_never_break_the_run() {
    let world = World::new().await;
    let mut noise = Vec::new();
    noise
        .extend_from_slice(b"compiling...\n{\"Action\": broken json\n\xff\xfe binary \x00 bytes\n");
    noise.extend_from_slice(b"ok 1 - real\n");
    noise.extend(std::iter::repeat_n(b'x', 5 << 20));
    noise.extend_from_slice(b"\n{\"type\":\"test\",\"event\":\"ok\"}\nnot ok 2 - also real\n");
    std::fs::write(world.path("output.txt"), &noise).unwrap();
    let finished = world.start(&["--", "cat", "output.txt"]).finished().await;
    assert!(finished.status.success(), "{}", finished.stderr);
    assert!(
        finished
            .stdout
            .starts_with("compiling...\n{\"Action\": broken json\n"),
        "passed through"
    );
    let run = world.only_run().await;
    assert_eq!(run.counts, counts(2, 1, 1, 0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prove_counts_as_prove_summarises() {
    let world = World::new().await;
    world.write(
        "t/a.t",
        "use Test::More tests => 4;\n\
         ok(1, 'first');\n\
         ok(0, 'second fails');\n\
         SKIP: { skip 'no network', 1; ok(1) }\n\
         TODO: { local $TODO = 'later'; ok(0, 'todo thing') }\n",
    );
    world.write(
        "t/b.t",
        "use Test::More;\n\
         ok(1, 'b one');\n\
         subtest 'group' => sub { ok(1, 'inner'); ok(1, 'inner2'); };\n\
         done_testing;\n",
    );
    let finished = world.run(&["--", "prove", "-v", "t/"]).await;
    assert_eq!(
        finished.status.code(),
        Some(1),
        "prove's own: {}",
        finished.stderr
    );
    // prove's summary, passed through: "Files=2, Tests=6" and one failed test.
    assert!(
        finished.stdout.contains("Files=2, Tests=6"),
        "{}",
        finished.stdout
    );
    assert!(
        finished.stdout.contains("Failed: 1)"),
        "{}",
        finished.stdout
    );
    let run = world.only_run().await;
    assert_eq!(run.counts, counts(6, 3, 1, 0, 2));
    assert_eq!(run.status, RunStatus::Failed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pytests_report_log_followed_counts_as_pytest_summarises() {
    let world = World::new().await;
    std::fs::copy(fixture("test_shop.py"), world.path("test_shop.py")).unwrap();
    // A log left by an earlier run is not sent again.
    std::fs::copy(fixture("pytest-report-log.jsonl"), world.path("log.jsonl")).unwrap();
    let pytest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/bin/pytest");
    let pytest = pytest.to_str().unwrap();
    let finished = world
        .run(&[
            "--follow",
            "log.jsonl",
            "--",
            pytest,
            "-q",
            "-p",
            "no:cacheprovider",
            "--report-log=log.jsonl",
            "test_shop.py",
        ])
        .await;
    assert_eq!(
        finished.status.code(),
        Some(1),
        "pytest's own: {}",
        finished.stderr
    );
    assert!(
        finished
            .stdout
            .contains("1 failed, 4 passed, 1 skipped, 1 xfailed, 2 errors"),
        "{}",
        finished.stdout
    );
    let run = world.only_run().await;
    // xfailed counts as skipped; the teardown error as an errored result of its own.
    assert_eq!(run.counts, counts(9, 4, 1, 2, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_test_json_counts_as_go_test_summarises() {
    let world = World::new().await;
    let go_output = fixture("go-test.jsonl");
    let finished = world
        .run(&[
            "--format",
            "go-test",
            "--",
            "cat",
            go_output.to_str().unwrap(),
        ])
        .await;
    assert!(finished.status.success(), "{}", finished.stderr);
    // go test -v of the same packages: 10 tests with subtests, 3 failed, 1 skipped.
    let run = world.only_run().await;
    assert_eq!(run.counts, counts(10, 6, 3, 0, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junit_reports_appearing_in_a_directory_are_sent_while_the_command_runs() {
    let world = World::new().await;
    let junit = "<testsuite name=\"shop\" tests=\"2\" failures=\"1\">\
        <testcase classname=\"Cart\" name=\"adds\"/>\
        <testcase classname=\"Cart\" name=\"removes\"><failure message=\"boom\"/></testcase>\
        </testsuite>";
    // There before the command: not this run's.
    world.write("reports/TEST-old.xml", junit);
    world.write("TEST-Cart.xml", junit);
    world.write(
        "tests.sh",
        "cp TEST-Cart.xml reports/TEST-Cart.xml\n\
         while [ ! -e release ]; do sleep 0.05; done\n",
    );
    let running = world.start(&["--junit-dir", "reports", "--", "sh", "tests.sh"]);
    let run = world.created_run().await;
    let mut viewer = world.viewer(run.id).await;
    seen_tests(&mut viewer, &["adds", "removes"]).await;
    world.write("release", "");
    let finished = running.finished().await;
    assert!(finished.status.success(), "{}", finished.stderr);
    assert_eq!(world.only_run().await.counts, counts(2, 1, 1, 0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_that_cannot_start_is_an_input_error_and_the_run_is_interrupted() {
    let world = World::new().await;
    let finished = world.run(&["--", "./no-such-command"]).await;
    assert_eq!(finished.status.code(), Some(2));
    assert!(
        finished.stderr.contains("cannot start ./no-such-command"),
        "{}",
        finished.stderr
    );
    assert_eq!(world.ended_run().await.status, RunStatus::Interrupted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_output_is_one_document_after_the_commands_output() {
    let world = World::new().await;
    let finished = world
        .run(&["--json", "--", "sh", "-c", "echo 'ok 1 - a'"])
        .await;
    assert!(finished.status.success(), "{}", finished.stderr);
    let last = finished.stdout.lines().last().unwrap();
    let document: Value = serde_json::from_str(last).unwrap();
    assert_eq!(document["status"], "passed");
    assert_eq!(document["results"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_that_cannot_be_sent_never_stop_the_command_and_a_success_exits_3() {
    let mut world = World::new().await;
    world.write(
        "tests.sh",
        "while [ ! -e release ]; do sleep 0.05; done\n\
         echo 'ok 1 - during the outage'\n\
         sleep 2\n\
         touch finished\n",
    );
    let running = world.start_with(&[("VERDICT_RETRY_BUDGET", "1s")], &["--", "sh", "tests.sh"]);
    world.created_run().await;
    world.app.stop(Component::Gateway).await;
    world.write("release", "");
    let finished = running.finished().await;
    assert!(
        world.path("finished").exists(),
        "the command ran to its end"
    );
    assert_eq!(finished.status.code(), Some(3), "{}", finished.stderr);
    assert!(
        finished.stderr.contains("left running"),
        "{}",
        finished.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn artifacts_the_command_wrote_are_uploaded_when_it_ends() {
    let world = World::new().await;
    let finished = world
        .run(&[
            "--artifacts",
            "screens/*.png",
            "--json",
            "--",
            "sh",
            "-c",
            "mkdir screens && printf png > screens/login.png && echo 'ok 1 - login'",
        ])
        .await;
    assert!(finished.status.success(), "{}", finished.stderr);
    let document: Value = serde_json::from_str(finished.stdout.lines().last().unwrap()).unwrap();
    assert_eq!(document["artifacts"], 1);
    let run = world.only_run().await;
    let listed = world
        .admin
        .list_artifacts(run.id, None, &PageRequest::default())
        .await
        .unwrap();
    let names: Vec<&str> = listed.items.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["screens/login.png"]);
}
