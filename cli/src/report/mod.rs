//! `verdict report`: sends test reports (JUnit XML, NUnit, xUnit.net, TRX, CTRF JSON) and their artifacts to a
//! Verdict server as one run. Every report is parsed here first, with the readers the
//! server's import uses, so a malformed one stops the command before anything is sent.

pub(crate) mod artifacts;
pub mod ci;
pub(crate) mod inputs;
pub(crate) mod progress;
pub(crate) mod session;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;

use clap::Args;
use serde_json::json;
use time::format_description::well_known::Rfc3339;
use verdict_client::{Client, RetryPolicy};
use verdict_contracts::runs::{NewRun, ResultInput, Run, RunStatus};

use self::artifacts::Attachment;
use self::inputs::Report;
use self::progress::Progress;
use self::session::Session;

/// How `verdict report` ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The run failed and `--fail-on-failures` was given.
    RunFailed = 1,
    /// Bad input: flags, missing files, a malformed report.
    Input = 2,
    /// The server (or the way to it) refused or failed.
    Server = 3,
}

/// Why the command stopped.
#[derive(Debug)]
pub struct Failure {
    pub exit: Exit,
    pub message: String,
}

impl Failure {
    pub fn input(message: impl Into<String>) -> Self {
        Failure {
            exit: Exit::Input,
            message: message.into(),
        }
    }

    pub fn server(message: impl Into<String>) -> Self {
        Failure {
            exit: Exit::Server,
            message: message.into(),
        }
    }

    /// Something that should not happen (a task that panicked).
    pub fn internal(message: impl Into<String>) -> Self {
        Self::server(message)
    }
}

impl From<verdict_client::Error> for Failure {
    fn from(error: verdict_client::Error) -> Self {
        match error {
            verdict_client::Error::Config(_) | verdict_client::Error::File { .. } => {
                Failure::input(error.to_string())
            }
            _ => Failure::server(error.to_string()),
        }
    }
}

pub type Outcome<T> = Result<T, Failure>;

/// A secret given on the command line or in the environment: never shown, not even in
/// debug output.
#[derive(Clone)]
pub struct Token(String);

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl FromStr for Token {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let value = value.trim();
        if value.is_empty() {
            return Err("must not be empty".into());
        }
        Ok(Token(value.to_owned()))
    }
}

/// Where the server is and how to reach it (shared by the commands that report).
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// The server's base URL; the API is under <URL>/api/v1.
    #[arg(long, env = "VERDICT_URL", value_name = "URL")]
    pub url: String,
    /// An API token of the project with the reporter role (or higher). Never printed.
    /// Without it, the token is read from VERDICT_TOKEN, or from the file
    /// VERDICT_TOKEN_FILE names (a mounted secret; not both).
    #[arg(long, value_name = "TOKEN")]
    pub token: Option<Token>,
    /// Also trust this PEM certificate (a private CA) for HTTPS, besides the system's roots.
    #[arg(long, value_name = "PEM")]
    pub ca_cert: Option<PathBuf>,
    /// How long a request that may be repeated is retried while the server is
    /// unreachable or busy (429, 502, 503, 504), e.g. 30s or 5m.
    #[arg(long, env = "VERDICT_RETRY_BUDGET", default_value = "60s", value_name = "DURATION",
        value_parser = verdict_settings::parse_duration)]
    pub retry_budget: Duration,
}

impl ServerArgs {
    pub fn client(&self) -> Outcome<Client> {
        let token = match &self.token {
            Some(token) => token.clone(),
            None => token_from_env(&verdict_settings::Env::process())?,
        };
        let mut builder = Client::builder(self.url.trim_end_matches('/'))
            .token(token.0)
            .retry(RetryPolicy {
                budget: self.retry_budget,
                ..RetryPolicy::default()
            });
        if let Some(ca_cert) = &self.ca_cert {
            builder = builder.ca_cert(ca_cert);
        }
        Ok(builder.build()?)
    }
}

/// The token of `VERDICT_TOKEN` or `VERDICT_TOKEN_FILE`, when `--token` is not given.
fn token_from_env(env: &verdict_settings::Env) -> Outcome<Token> {
    let missing =
        || Failure::input("no API token: give --token, or set VERDICT_TOKEN or VERDICT_TOKEN_FILE");
    let text = env
        .secret("VERDICT_TOKEN")
        .map_err(|err| Failure::input(err.to_string()))?
        .ok_or_else(missing)?;
    text.parse().map_err(|_: String| missing())
}

/// What run to report into, and how to report the outcome.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The project (slug or id).
    #[arg(long, value_name = "PROJECT")]
    pub project: String,
    /// The run's name [default: the first report's own name, else "verdict report"].
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// A run attribute; repeat for more. Wins over the CI attributes found in the
    /// environment.
    #[arg(long = "attr", value_name = "KEY=VALUE", value_parser = parse_attribute)]
    pub attributes: Vec<(String, String)>,
    /// Files to attach to the run (a glob such as 'test-results/**/*.png', quoted so the
    /// shell leaves it alone); repeat for more. Their relative paths are their names.
    #[arg(long = "artifacts", value_name = "GLOB")]
    pub artifacts: Vec<String>,
    /// Print one JSON document on stdout (run id, URL, status, counts) instead of text.
    #[arg(long)]
    pub json: bool,
    /// Exit with 1 when the run failed (a failed or errored test that no retry fixed).
    #[arg(long)]
    pub fail_on_failures: bool,
    /// Report into the project's run of this CI build, created by whichever command
    /// comes first: parallel jobs (shards) of one build make one run [default: the CI
    /// build id (ci.build_id), when a CI system is detected].
    #[arg(long, value_name = "KEY", conflicts_with = "no_build_key")]
    pub build_key: Option<String>,
    /// Make a run of its own, even in CI (no build key).
    #[arg(long)]
    pub no_build_key: bool,
    /// With a build key: the name this command joins the build's run under; the run
    /// finishes once every shard that joined has finished [default: a new id for each
    /// command].
    #[arg(long, value_name = "NAME")]
    pub shard: Option<String>,
    /// With a build key: how many shards the build has; the run finishes no sooner than
    /// that many have finished (1 to 1000).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub shards: Option<u32>,
}

impl RunArgs {
    /// The run to create (or join): `name`, the CI attributes of `env` under the
    /// explicit ones, the build key (given, or the CI build id) with this command's
    /// shard, and `started_at`.
    pub fn new_run(
        &self,
        name: String,
        env: &BTreeMap<String, String>,
        started_at: Option<String>,
    ) -> Outcome<NewRun> {
        let mut attributes = ci::attributes(env);
        let build_key = match (&self.build_key, self.no_build_key) {
            (Some(key), _) => Some(key.clone()),
            (None, false) => attributes.get(ci::BUILD_ID).cloned(),
            (None, true) => None,
        };
        attributes.extend(self.attributes.iter().cloned());
        if build_key.is_none() && (self.shard.is_some() || self.shards.is_some()) {
            return Err(Failure::input(
                "--shard and --shards need a build key (--build-key, or a CI build id)",
            ));
        }
        let shard = build_key.as_ref().map(|_| {
            self.shard
                .clone()
                .unwrap_or_else(|| uuid::Uuid::now_v7().to_string())
        });
        Ok(NewRun {
            name,
            attributes,
            started_at,
            shards: build_key.as_ref().and(self.shards),
            build_key,
            shard,
        })
    }
}

/// The process's environment; a variable that is not UTF-8 is no CI's, and is skipped
/// (`vars()` would panic on it).
pub fn environment() -> BTreeMap<String, String> {
    std::env::vars_os()
        .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
        .collect()
}

fn parse_attribute(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_owned(), value.to_owned()))
        }
        _ => Err(format!("expected KEY=VALUE, got {text:?}")),
    }
}

pub const ABOUT: &str = "Send test reports (JUnit XML, NUnit, xUnit.net, TRX, CTRF JSON) and artifacts to Verdict as one run";

pub const LONG_ABOUT: &str = "\
Send test reports (JUnit XML, NUnit 2 and 3 XML, xUnit.net v2 XML, Visual Studio TRX,
CTRF JSON) and artifacts to Verdict as one run.

Every FILE (or file a GLOB matches) is read and parsed here first, with the same readers
the server's import uses; its format is told by its content, as the import tells it (the
root element of XML: <testsuites> or <testsuite> for JUnit, <test-results> for NUnit 2,
<test-run> for NUnit 3, <assemblies> for xUnit.net, <TestRun> for TRX; a JSON object for
CTRF), so file names do not matter. JUnit dialects: Ant, Maven Surefire and Failsafe
(including flaky and rerun elements), Gradle, pytest, jest-junit, gotestsum, googletest,
Playwright. When any file is missing, malformed or of no known format, the command stops
before anything is sent: the message names the file, line and column (or what the file
holds), and no run is created. What a reader notices without refusing a report (a test
case without a name, counts without test cases) is printed as a warning.

Then one run is created in the project (or, with a build key, the build's run is found or
created and joined as a shard: in CI the build id is the build key, so parallel jobs of
one build make one run, finished once every shard that joined has finished, or no
sooner than --shards N have), every result is posted (in batches of at most
1000, each batch with an Idempotency-Key so a retried batch is stored once), the
artifacts are uploaded (several at once; each file's SHA-256 is computed as it is read
and checked by the server), and the run is finished. Files a report attaches to a test
(`[[ATTACHMENT|path]]` in its output, as Playwright writes) are uploaded and linked to
that test's result, found relative to the report's directory (or the working
directory); their names, like those of --artifacts files, are their paths below the
working directory.

Run attributes are taken from the CI system's environment (GitHub Actions, GitLab CI,
Buildkite, CircleCI, Jenkins, Azure Pipelines): ci.provider, ci.build_id,
ci.build_url, git.branch, git.commit, git.pr. --attr KEY=VALUE adds more and wins.

Progress goes to stderr: bars on a terminal, plain lines otherwise. The result goes to
stdout: the run's status and counts and its URL (<URL>/runs/<id>), or with --json one
JSON document: {\"run_id\", \"url\", \"status\", \"counts\": {total, passed, failed,
skipped, errored, flaky}, \"results\", \"artifacts\"}.

Requests that may be repeated are retried while the server is unreachable or answers
429, 502, 503 or 504, honouring Retry-After, for up to --retry-budget.";

pub const EXAMPLES: &str = "\
Exit status:
  0  the reports were sent (and, with --fail-on-failures, the run passed; failures of
     quarantined tests do not fail it)
  1  the run failed and --fail-on-failures was given
  2  bad input: a flag, a missing file, a malformed report (nothing was sent)
  3  the server refused or could not be reached (the message says why)

Examples:
  # Every JUnit file of a Maven build, from a CI job:
  export VERDICT_URL=https://verdict.example.com VERDICT_TOKEN=vdt_...
  verdict report --project web 'target/surefire-reports/*.xml'

  # Playwright's JUnit report with its screenshots and traces, failing the job on failures:
  verdict report --project web --name e2e --fail-on-failures \\
      --artifacts 'test-results/**/*' results/junit.xml

  # Several reports into one run, with attributes, for a script:
  verdict report --project api --attr suite=integration --attr os=linux --json \\
      reports/unit.xml reports/ctrf.json

  # Shard 2 of a build of 4 parallel jobs, into the build's one run:
  verdict report --project web --build-key \"$BUILD_ID\" --shard 2 --shards 4 junit.xml

  # A server with a certificate from a private CA:
  verdict report --url https://verdict.internal --ca-cert ca.pem --project web junit.xml";

/// `verdict report`'s arguments.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Report files, or glob patterns matching them (quote patterns).
    #[arg(value_name = "FILE|GLOB", required = true)]
    pub reports: Vec<String>,
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// Runs `verdict report`.
pub fn main(args: ReportArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("verdict report: cannot start the runtime: {err}");
            return ExitCode::from(Exit::Server as u8);
        }
    };
    match runtime.block_on(report(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("verdict report: {}", failure.message);
            ExitCode::from(failure.exit as u8)
        }
    }
}

/// Results and attachments of every report, results with ids of this invocation
/// (`<UUIDv7>.<n>`), unique even among several reporters of one run.
fn collect(reports: Vec<Report>) -> (Vec<ResultInput>, Vec<Attachment>) {
    let prefix = uuid::Uuid::now_v7().simple().to_string();
    let mut results = Vec::new();
    let mut attachments = Vec::new();
    for report in reports {
        let report_dir = report.path.parent().map(PathBuf::from).unwrap_or_default();
        for result in report.parsed.results {
            let id = format!("{prefix}.{}", results.len());
            for output in [&result.stdout, &result.stderr].into_iter().flatten() {
                for path in artifacts::attachment_paths(output.as_str()) {
                    attachments.push(Attachment {
                        report_dir: report_dir.clone(),
                        path: path.to_owned(),
                        result_id: id.clone(),
                    });
                }
            }
            let mut wire = ResultInput::from(result);
            wire.id = Some(id);
            results.push(wire);
        }
    }
    (results, attachments)
}

/// The run to create: the given name or the first report's, and the earliest start any
/// report states.
fn new_run(args: &RunArgs, reports: &[Report]) -> Outcome<NewRun> {
    let name = args
        .name
        .clone()
        .or_else(|| reports.iter().find_map(|r| r.parsed.summary.name.clone()))
        .unwrap_or_else(|| "verdict report".to_owned());
    let started_at = reports
        .iter()
        .filter_map(|r| r.parsed.summary.started_at)
        .min()
        .and_then(|at| at.format(&Rfc3339).ok());
    args.new_run(name, &environment(), started_at)
}

async fn report(args: ReportArgs) -> Outcome<()> {
    let progress = Progress::for_stderr();
    let cwd = std::env::current_dir()
        .map_err(|err| Failure::input(format!("cannot tell the working directory: {err}")))?;
    let files = inputs::resolve(&args.reports)?;
    let reports = inputs::parse_all(files).await?;
    for report in &reports {
        for warning in &report.parsed.warnings {
            progress.line(&format!("warning: {}: {warning}", report.path.display()));
        }
    }
    let new_run = new_run(&args.run, &reports)?;
    let report_count = reports.len();
    let (results, attachments) = collect(reports);
    let plan = artifacts::plan(&cwd, &attachments, &args.run.artifacts)?;
    for warning in &plan.warnings {
        progress.line(&format!("warning: {warning}"));
    }
    progress.line(&format!(
        "read {report_count} report(s): {} results, {} artifacts to upload",
        results.len(),
        plan.files.len()
    ));
    let client = args.server.client()?;
    let mut session = Session::open(client, &args.run.project, &new_run, progress).await?;
    let (posted, uploaded) = (results.len(), plan.files.len());
    let sent = async {
        session.post(results).await?;
        let failures = session.upload(plan.files).await;
        let run = session.finish().await?.clone();
        Ok::<_, Failure>((run, failures))
    }
    .await;
    let url = session.url();
    let (run, failures) = match sent {
        Ok(sent) => sent,
        Err(failure) => {
            let marked = match session.interrupt().await {
                Ok(()) => "marked interrupted",
                Err(_) => "left running (the server will mark it interrupted)",
            };
            return Err(Failure {
                message: format!("{}\nthe run was {marked}: {url}", failure.message),
                ..failure
            });
        }
    };
    let ending = Ending {
        run: &run,
        url: &url,
        shard: session.shard(),
        results: posted,
        artifacts: uploaded - failures.len(),
    };
    println!("{}", ending.render(args.run.json));
    if !failures.is_empty() {
        return Err(Failure::server(format!(
            "{} of {uploaded} artifacts were not uploaded (the run holds every result):\n  {}",
            failures.len(),
            failures.join("\n  ")
        )));
    }
    if args.run.fail_on_failures && ending.failed() {
        return Err(Failure {
            exit: Exit::RunFailed,
            message: format!("the run {} (--fail-on-failures)", ending.verdict()),
        });
    }
    Ok(())
}

/// What a command that reported says of the run at its end.
pub struct Ending<'a> {
    pub run: &'a Run,
    pub url: &'a str,
    /// The shard the command reported as; the run may still be running then.
    pub shard: Option<&'a str>,
    pub results: usize,
    pub artifacts: usize,
}

impl Ending<'_> {
    /// Whether the run failed; for a shard whose run still runs, whether a test failed
    /// so far.
    pub fn failed(&self) -> bool {
        let counts = &self.run.counts;
        match self.run.status {
            RunStatus::Failed | RunStatus::Interrupted => true,
            RunStatus::Running => counts.failed + counts.errored > 0,
            RunStatus::Passed => false,
        }
    }

    /// Whether the run passed only because its failures were of quarantined tests.
    pub fn passed_by_quarantine(&self) -> bool {
        self.run.status == RunStatus::Passed && self.run.counts.quarantined > 0
    }

    /// The run's status in words.
    pub fn verdict(&self) -> String {
        match (self.run.status, self.shard) {
            (RunStatus::Running, Some(_)) if self.failed() => {
                "has failed tests (other shards still run)".to_owned()
            }
            (RunStatus::Running, Some(_)) => "runs on (other shards still run)".to_owned(),
            (status, _) => status.as_str().to_owned(),
        }
    }

    /// One JSON document, or two lines of text: status and counts, then the URL.
    pub fn render(&self, as_json: bool) -> String {
        let run = self.run;
        let counts = &run.counts;
        if as_json {
            let mut document = json!({
                "run_id": run.id,
                "url": self.url,
                "status": run.status,
                "counts": counts,
                "results": self.results,
                "artifacts": self.artifacts,
            });
            if let Some(shard) = self.shard {
                document["shard"] = json!(shard);
            }
            return document.to_string();
        }
        let shard = self
            .shard
            .map(|shard| format!(" (shard {shard} finished)"))
            .unwrap_or_default();
        // Quarantined failures are counted among the failed and errored and do not
        // fail the run: say so, so a passed run with failures explains itself.
        let quarantined = match counts.quarantined {
            0 => String::new(),
            n => format!(" ({n} of them quarantined)"),
        };
        format!(
            "{}: {}{shard} — {} tests: {} passed, {} failed, {} errored{quarantined}, {} skipped, {} flaky\n{}",
            run.name,
            run.status.as_str(),
            counts.total,
            counts.passed,
            counts.failed,
            counts.errored,
            counts.skipped,
            counts.flaky,
            self.url
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_key_equals_value() {
        assert_eq!(
            parse_attribute("os=linux").unwrap(),
            ("os".to_owned(), "linux".to_owned())
        );
        assert_eq!(
            parse_attribute("query=a=b").unwrap(),
            ("query".to_owned(), "a=b".to_owned())
        );
        assert!(parse_attribute("novalue").is_err());
        assert!(parse_attribute("=x").is_err());
    }

    #[test]
    fn the_token_may_come_from_the_file_verdict_token_file_names() {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), "vdt_from_file\n").unwrap();
        let path = file.path().to_str().unwrap();
        let env = verdict_settings::Env::from_pairs([("VERDICT_TOKEN_FILE", path)]);
        assert_eq!(token_from_env(&env).unwrap().0, "vdt_from_file");

        let both = env.with([("VERDICT_TOKEN", "vdt_from_variable")]);
        let refused = token_from_env(&both).unwrap_err();
        assert_eq!(refused.exit, Exit::Input);
        assert!(refused
            .message
            .contains("VERDICT_TOKEN and VERDICT_TOKEN_FILE"));
        assert!(!refused.message.contains("vdt_from"), "{}", refused.message);

        let none = token_from_env(&verdict_settings::Env::default()).unwrap_err();
        assert!(none.message.contains("--token"), "{}", none.message);
    }

    #[test]
    fn a_token_never_shows_in_debug_output() {
        let token: Token = "vdt_secret".parse().unwrap();
        assert!(!format!("{token:?}").contains("secret"));
    }
}
