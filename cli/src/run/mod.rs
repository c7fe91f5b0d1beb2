//! `verdict run -- COMMAND ARGS...`: runs a test command, passes its output through, and
//! streams the results it prints (or writes to followed files and a JUnit directory) to
//! a Verdict run while it runs. The run ends with the command: finished when the
//! command exited, `interrupted` when it was killed or verdict was told to stop.

mod follow;
pub mod formats;
mod junit_dir;
mod lines;
mod reader;

use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{ExitCode, ExitStatus, Stdio};
use std::time::Duration;

use clap::Args;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdout, Command};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc::{self, Receiver, Sender};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use verdict_contracts::runs::limits::MAX_RESULTS_PER_BATCH;
use verdict_contracts::runs::{NewRun, ResultInput};

use self::formats::Format;
use self::reader::Reader;
use crate::report::progress::Progress;
use crate::report::session::Session;
use crate::report::{self, artifacts, environment, Exit, Failure, Outcome, RunArgs, ServerArgs};

/// Results read and not yet sent; past this the readers wait for the sender.
const QUEUED_RESULTS: usize = 100_000;
/// How long the command's output may stay open after the command exited (a process it
/// left behind may hold it).
const OUTPUT_GRACE: Duration = Duration::from_secs(2);
/// The longest default run name taken from the command line.
const MAX_DEFAULT_NAME: usize = 200;

pub const ABOUT: &str = "Run a test command and stream its results to Verdict while it runs";

pub const LONG_ABOUT: &str = "\
Run a test command and stream its results to Verdict while it runs.

verdict run creates a run, starts COMMAND with its ARGS (no shell: write `sh -c '...'`
for pipes and variables), passes its output through unchanged, and reads the results it
prints as it prints them. They are sent in batches (every --batch-interval, or at once
when 1000 are waiting), so the dashboard shows each test within about a second of the
line that reported it.

What is read (--format, default auto: each line by its shape):
  go test -json        every test and subtest; a package failing outside its tests is an
                       errored TestMain
  TAP 13 and 14        prove -v, node --test --test-reporter=tap, bats --tap; a subtest
                       counts as its parent point, # TODO failures as skipped
  libtest JSON         cargo test -- -Z unstable-options --format json,
                       cargo nextest run --message-format libtest-json
  pytest --report-log  JSON lines: pass the file with --follow (see below)
Lines that are none of these pass through and are ignored: they never break the run.

--follow FILE reads a file the command writes its results to (pytest --report-log=FILE)
as it grows, in any format above told line by line; a FILE left by an earlier run is
removed before the command starts.
--junit-dir DIR reads every JUnit (NUnit, xUnit.net) XML report that appears in DIR
while the command runs, once it is complete, and the rest when the command ends.

The command gets verdict's stdin and stderr; its stdout goes through verdict. It runs
in a process group of its own (so it cannot read from a terminal): Ctrl-C (SIGINT),
SIGTERM and SIGHUP sent to verdict are passed on to the whole group, and the run then
ends interrupted.

The run ends when the command exits: finished (passed or failed by its results) when it
exited by itself, interrupted when a signal killed it or verdict was told to stop. If a
batch cannot be sent (the server is unreachable past --retry-budget), the command still
runs to its end and the run is marked interrupted.

Run attributes come from the CI system's environment as for verdict report; --attr adds
more and wins. --artifacts files are uploaded when the command has ended.";

pub const EXAMPLES: &str = "\
Exit status:
  the command's own exit status (128 + N when signal N killed it), so a CI job fails
  as it would without verdict, except 0 when the command exited with an error but the
  run passed because every failure it reported was of a quarantined test; when the
  command succeeded:
  1  the run failed and --fail-on-failures was given
  2  bad input: a flag, a command that cannot be started (the command did not run)
  3  the server refused or could not be reached (the message says why); when the run
     could not even be created, the command did not run

Examples:
  export VERDICT_URL=https://verdict.example.com VERDICT_TOKEN=vdt_...

  # Go:
  verdict run --project api -- go test -json ./...

  # Perl, or anything that prints TAP:
  verdict run --project tools -- prove -v t/

  # pytest, through its report log (pip install pytest-reportlog):
  verdict run --project web --follow report.jsonl -- pytest --report-log=report.jsonl

  # Rust, with nextest:
  NEXTEST_EXPERIMENTAL_LIBTEST_JSON=1 verdict run --project core -- \\
      cargo nextest run --message-format libtest-json

  # Maven writes one JUnit file per test class as it goes:
  verdict run --project shop --junit-dir target/surefire-reports -- mvn test";

/// `verdict run`'s arguments.
#[derive(Debug, Args)]
#[command(mut_arg("name", |arg| arg.help("The run's name [default: the command line]")))]
pub struct RunCommandArgs {
    /// The format of the command's output.
    #[arg(long, value_enum, default_value = "auto")]
    pub format: Format,
    /// A file the command writes results to as it runs (pytest's --report-log), read as
    /// it grows; repeat for more.
    #[arg(long, value_name = "FILE")]
    pub follow: Vec<PathBuf>,
    /// A directory the command writes JUnit XML reports into (searched 8 levels deep);
    /// repeat for more.
    #[arg(long, value_name = "DIR")]
    pub junit_dir: Vec<PathBuf>,
    /// How long a result may wait to be sent with others (a batch of 1000 goes at once).
    #[arg(long, default_value = "200ms", value_name = "DURATION",
        value_parser = verdict_settings::parse_duration)]
    pub batch_interval: Duration,
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub server: ServerArgs,
    /// The test command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
}

/// Runs `verdict run`.
pub fn main(args: RunCommandArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("verdict run: cannot start the runtime: {err}");
            return ExitCode::from(Exit::Server as u8);
        }
    };
    match runtime.block_on(run(args)) {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            eprintln!("verdict run: {}", failure.message);
            ExitCode::from(failure.exit as u8)
        }
    }
}

/// How the command ended.
struct Ending {
    status: ExitStatus,
    /// verdict was told to stop (and told the command).
    stopped: bool,
}

impl Ending {
    /// The exit code the shell would show for the command.
    fn code(&self) -> u8 {
        match (self.status.code(), self.status.signal()) {
            (Some(code), _) => code as u8,
            (None, Some(signal)) => 128u8.saturating_add(signal as u8),
            (None, None) => 1,
        }
    }

    fn interrupted(&self) -> bool {
        self.stopped || self.status.signal().is_some()
    }
}

/// The run to create: the given name or the command line, the CI attributes of this
/// environment under the explicit ones.
fn new_run(args: &RunCommandArgs) -> Outcome<NewRun> {
    let name = args.run.name.clone().unwrap_or_else(|| {
        let line: Vec<String> = args
            .command
            .iter()
            .map(|part| part.to_string_lossy().into_owned())
            .collect();
        formats::capped(line.join(" "), MAX_DEFAULT_NAME)
    });
    args.run.new_run(name, &environment(), None)
}

async fn run(args: RunCommandArgs) -> Outcome<u8> {
    // The command's output shares the terminal: plain lines, no bars.
    let progress = Progress::Lines;
    let cwd = std::env::current_dir()
        .map_err(|err| Failure::input(format!("cannot tell the working directory: {err}")))?;
    for path in &args.follow {
        follow::clear(path)?;
    }
    let baselines: Vec<_> = args
        .junit_dir
        .iter()
        .map(|dir| junit_dir::Watch::baseline(junit_dir::scan(dir)))
        .collect();
    let client = args.server.client()?;
    let mut session = Session::open(
        client,
        &args.run.project,
        &new_run(&args)?,
        progress.clone(),
    )
    .await?;
    let url = session.url();

    let mut command = Command::new(&args.command[0]);
    command
        .args(&args.command[1..])
        .stdin(Stdio::inherit())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .process_group(0);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(err) => {
            let _ = session.interrupt().await;
            return Err(Failure::input(format!(
                "cannot start {}: {err}",
                args.command[0].to_string_lossy()
            )));
        }
    };

    let (sender, receiver) = mpsc::channel(QUEUED_RESULTS);
    let done = CancellationToken::new();
    let mut readers = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        readers.push(tokio::spawn(pass_through(
            stdout,
            Reader::new(args.format),
            args.batch_interval,
            sender.clone(),
            done.clone(),
        )));
    }
    for path in &args.follow {
        readers.push(tokio::spawn(follow::follow(
            path.clone(),
            args.batch_interval / 2,
            sender.clone(),
            done.clone(),
        )));
    }
    for (dir, baseline) in args.junit_dir.iter().zip(baselines) {
        readers.push(tokio::spawn(junit_dir::watch(
            dir.clone(),
            baseline,
            args.batch_interval,
            sender.clone(),
            done.clone(),
            progress.clone(),
        )));
    }
    drop(sender);

    let supervised = async {
        let ending = supervise(&mut child).await;
        done.cancel();
        for reader in readers {
            let _ = reader.await;
        }
        ending
    };
    let (ending, sent) = tokio::join!(supervised, send(&session, receiver, args.batch_interval));
    let ending = ending?;

    // The files exist only now; a pattern that fails is reported like a failed upload.
    let (files, mut failures) = match artifacts::plan(&cwd, &[], &args.run.artifacts) {
        Ok(plan) => {
            for warning in &plan.warnings {
                progress.line(&format!("warning: {warning}"));
            }
            (plan.files, Vec::new())
        }
        Err(failure) => (Vec::new(), vec![failure.message]),
    };
    let declared = files.len();
    if declared > 0 {
        failures.extend(session.upload(files).await);
    }
    let sent = match sent {
        Ok(count) => count,
        Err(failure) => {
            let marked = mark_interrupted(&session).await;
            progress.line(&format!("{}\nthe run was {marked}: {url}", failure.message));
            return Ok(worst(ending.code(), Exit::Server));
        }
    };
    if ending.interrupted() {
        let marked = mark_interrupted(&session).await;
        progress.line(&format!(
            "the command was stopped ({}); {sent} results sent; the run was {marked}: {url}",
            ending.status
        ));
        return Ok(ending.code());
    }
    let run = match session.finish().await {
        Ok(run) => run.clone(),
        Err(failure) => {
            progress.line(&failure.message);
            return Ok(worst(ending.code(), Exit::Server));
        }
    };
    let ending_of_run = report::Ending {
        run: &run,
        url: &url,
        shard: session.shard(),
        results: sent,
        artifacts: declared.saturating_sub(failures.len()),
    };
    println!("{}", ending_of_run.render(args.run.json));
    if !failures.is_empty() {
        progress.line(&format!(
            "artifacts not uploaded:\n  {}",
            failures.join("\n  ")
        ));
        return Ok(worst(ending.code(), Exit::Server));
    }
    if args.run.fail_on_failures && ending_of_run.failed() {
        return Ok(worst(ending.code(), Exit::RunFailed));
    }
    if ending.code() != 0 && ending_of_run.passed_by_quarantine() {
        progress.line(&format!(
            "the command exited with {}, but every failure it reported is quarantined and the run passed",
            ending.code()
        ));
        return Ok(0);
    }
    Ok(ending.code())
}

/// Marks the run interrupted; says how that went, for the user.
async fn mark_interrupted(session: &Session) -> &'static str {
    match session.interrupt().await {
        Ok(()) => "marked interrupted",
        Err(_) => "left running (the server will mark it interrupted)",
    }
}

/// The command's exit code, unless the command succeeded and verdict did not.
fn worst(command: u8, verdict: Exit) -> u8 {
    if command == 0 {
        verdict as u8
    } else {
        command
    }
}

/// Waits for the command to exit, passing on the signals that tell verdict to stop.
async fn supervise(child: &mut Child) -> Outcome<Ending> {
    let listen = |kind: SignalKind| {
        signal(kind).map_err(|err| Failure::internal(format!("cannot listen to signals: {err}")))
    };
    let mut interrupt = listen(SignalKind::interrupt())?;
    let mut terminate = listen(SignalKind::terminate())?;
    let mut hangup = listen(SignalKind::hangup())?;
    let group = child.id();
    let mut stopped = false;
    loop {
        let received = tokio::select! {
            status = child.wait() => {
                let status = status
                    .map_err(|err| Failure::internal(format!("waiting for the command: {err}")))?;
                return Ok(Ending { status, stopped });
            }
            _ = interrupt.recv() => libc::SIGINT,
            _ = terminate.recv() => libc::SIGTERM,
            _ = hangup.recv() => libc::SIGHUP,
        };
        stopped = true;
        if let Some(group) = group {
            // SAFETY: kill(2) on the process group of our own child; no memory is
            // involved.
            unsafe {
                libc::kill(-(group as libc::pid_t), received);
            }
        }
    }
}

/// Copies the command's stdout to verdict's as it comes, reading results from it.
async fn pass_through(
    mut stdout: ChildStdout,
    mut reader: Reader,
    idle: Duration,
    results: Sender<ResultInput>,
    done: CancellationToken,
) {
    let mut out = tokio::io::stdout();
    let mut buffer = vec![0u8; 64 * 1024];
    let mut deadline = None;
    loop {
        let until = match deadline {
            Some(deadline) => deadline,
            None => Instant::now() + idle,
        };
        let read = tokio::select! {
            read = stdout.read(&mut buffer) => Some(read),
            () = tokio::time::sleep_until(until) => None,
            () = done.cancelled(), if deadline.is_none() => {
                deadline = Some(Instant::now() + OUTPUT_GRACE);
                continue;
            }
        };
        let finished = match read {
            Some(Ok(0) | Err(_)) => break,
            Some(Ok(count)) => {
                let _ = out.write_all(&buffer[..count]).await;
                let _ = out.flush().await;
                reader.chunk(&buffer[..count])
            }
            None if deadline.is_some_and(|d| Instant::now() >= d) => break,
            None => reader.idle(),
        };
        for result in finished {
            if results.send(result).await.is_err() {
                return;
            }
        }
    }
    for result in reader.end() {
        let _ = results.send(result).await;
    }
}

/// Sends results as they come: a batch when 1000 are waiting, or when the first of a
/// batch has waited `interval`. Each result gets an id of this command
/// (`<UUIDv7>.<n>`) unless it has one, so a retried batch is stored once. After a
/// batch failed, the rest is received (so that the readers never wait) and dropped;
/// answers how many were sent.
async fn send(
    session: &Session,
    mut results: Receiver<ResultInput>,
    interval: Duration,
) -> Outcome<usize> {
    let prefix = uuid::Uuid::now_v7().simple().to_string();
    let mut numbered = 0u64;
    let mut sent = 0;
    let mut failure = None;
    while let Some(first) = results.recv().await {
        let mut batch = vec![first];
        let deadline = Instant::now() + interval;
        while batch.len() < MAX_RESULTS_PER_BATCH {
            match tokio::time::timeout_at(deadline, results.recv()).await {
                Ok(Some(result)) => batch.push(result),
                Ok(None) | Err(_) => break,
            }
        }
        if failure.is_some() {
            continue;
        }
        for result in &mut batch {
            if result.id.is_none() {
                result.id = Some(format!("{prefix}.{numbered}"));
                numbered += 1;
            }
        }
        let count = batch.len();
        match session.send(batch).await {
            Ok(()) => sent += count,
            Err(err) => failure = Some(err),
        }
    }
    match failure {
        Some(failure) => Err(failure),
        None => Ok(sent),
    }
}
