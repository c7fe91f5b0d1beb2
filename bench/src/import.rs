//! Parsing a large JUnit report: time and peak memory of the streaming reader, in this
//! process alone (nothing else runs in it while it parses); and live reporting while a
//! large report is imported by a whole system.

use std::io::{BufWriter, Write};
use std::time::{Duration, Instant};

use verdict_runs::import::{JunitReader, ReportItem};
use verdict_testkit::LiveReporter;

use crate::stats::{ms, Summary};

/// Peak resident memory of this process so far (Linux `VmHWM`), in KiB.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmHWM:"))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kib| kib.parse().ok())
        })
        .unwrap_or_default()
}

/// Writes a Surefire-style report of about `megabytes` MB: suites of 100 cases, one in
/// ten failing with a message, a trace and captured output.
fn write_report(path: &std::path::Path, megabytes: usize) -> anyhow::Result<usize> {
    let mut out = BufWriter::new(std::fs::File::create(path)?);
    writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
    writeln!(out, "<testsuites>")?;
    let target = megabytes * 1_000_000;
    let (mut written, mut cases, mut suite) = (0usize, 0usize, 0usize);
    while written < target {
        let mut block = format!(r#"<testsuite name="com.example.Suite{suite}" tests="100">"#);
        for case in 0..100 {
            cases += 1;
            if case % 10 == 0 {
                block.push_str(&format!(
                    r#"<testcase classname="com.example.Suite{suite}" name="test{case}" time="0.123"><failure message="expected 1 but was 2" type="AssertionError">at com.example.Suite{suite}.test{case}(Suite.java:{case})
{}</failure><system-out>{}</system-out></testcase>"#,
                    "\tat org.junit.Assert.fail(Assert.java:89)\n".repeat(20),
                    "log line of the test under way\n".repeat(30)
                ));
            } else {
                block.push_str(&format!(r#"<testcase classname="com.example.Suite{suite}" name="test{case}" time="0.004"/>"#));
            }
        }
        block.push_str("</testsuite>\n");
        written += block.len();
        out.write_all(block.as_bytes())?;
        suite += 1;
    }
    writeln!(out, "</testsuites>")?;
    out.flush()?;
    Ok(cases)
}

pub fn run(megabytes: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("report.xml");
    let cases = write_report(&path, megabytes)?;
    let size = std::fs::metadata(&path)?.len();
    let before = peak_rss_kib();
    let started = Instant::now();
    let (mut results, mut failed) = (0usize, 0usize);
    for item in JunitReader::new(std::io::BufReader::new(std::fs::File::open(&path)?)) {
        if let ReportItem::Result(result) = item? {
            results += 1;
            failed += usize::from(result.status.is_failure());
        }
    }
    let took = started.elapsed();
    let after = peak_rss_kib();
    anyhow::ensure!(results == cases, "parsed {results} of {cases} cases");
    println!("| measure | value |");
    println!("| --- | --- |");
    println!(
        "| report | {:.1} MB, {cases} test cases ({failed} failed with trace and output) |",
        size as f64 / 1e6
    );
    println!(
        "| parse time | {:.2} s ({:.0} MB/s, {:.0} cases/s) |",
        took.as_secs_f64(),
        size as f64 / 1e6 / took.as_secs_f64(),
        cases as f64 / took.as_secs_f64()
    );
    println!(
        "| peak RSS of the process before parsing | {:.1} MiB |",
        before as f64 / 1024.0
    );
    println!(
        "| peak RSS of the process after parsing | {:.1} MiB |",
        after as f64 / 1024.0
    );
    Ok(())
}

/// What the availability benchmark does.
pub struct Availability {
    pub megabytes: usize,
    /// Results per live batch.
    pub batch: usize,
    /// Pause between live batches.
    pub pause: Duration,
}

/// Imports a generated report of `megabytes` MB while a reporter posts small batches to
/// another run, each timed from its 202 until `GET /runs/{run}` counts it.
pub async fn availability(plan: Availability) -> anyhow::Result<()> {
    let crate::fixture::Reporting {
        app,
        project,
        reporter: token,
        ..
    } = crate::fixture::Reporting::start().await;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("report.xml");
    let cases = write_report(&path, plan.megabytes)?;
    let report = std::fs::read(&path)?;
    let size = report.len();
    let mut reporter = LiveReporter::start(&app, &token, &project).await;
    let idle: Vec<Duration> = {
        let mut idle = Vec::new();
        for _ in 0..50 {
            idle.push(reporter.post_timed(&app, plan.batch).await);
            tokio::time::sleep(plan.pause).await;
        }
        idle
    };

    let submitted = Instant::now();
    let import = app
        .submit_import(&token, &project, "application/xml", report)
        .await;
    let accepted = submitted.elapsed();
    let imported_run = import["run_id"].as_str().unwrap_or_default().to_owned();
    let (mut pending, mut writing) = (Vec::new(), Vec::new());
    let mut first_write = None;
    loop {
        let written_before = app.run_total(&token, &imported_run).await;
        let took = reporter.post_timed(&app, plan.batch).await;
        if app.import_status(&token, &import).await["status"] != "pending" {
            break;
        }
        pending.push(took);
        if written_before > 0 {
            first_write.get_or_insert_with(Instant::now);
            writing.push(took);
        }
        tokio::time::sleep(plan.pause).await;
    }
    let done = submitted.elapsed();
    let import = app.import_status(&token, &import).await;
    anyhow::ensure!(import["status"] == "done", "the import ended {import}");
    anyhow::ensure!(
        !writing.is_empty(),
        "no batch was posted while the import was written"
    );
    let write_phase = first_write.map(|at| at.elapsed()).unwrap_or_default();

    println!("| measure | value |");
    println!("| --- | --- |");
    println!(
        "| import | {:.1} MB, {cases} test cases; accepted (uploaded and stored) after {:.1} s, done after {:.1} s ({:.0} results/s while written) |",
        size as f64 / 1e6,
        accepted.as_secs_f64(),
        done.as_secs_f64(),
        cases as f64 / write_phase.as_secs_f64().max(f64::EPSILON)
    );
    for (label, samples) in [
        ("idle system", idle),
        ("while the import was read and written", pending),
        ("while the import was written", writing),
    ] {
        let summary = Summary::of(samples);
        println!(
            "| 202 to queryable, {label} ({} batches of {}) | p50 {}, p99 {}, max {} |",
            summary.count,
            plan.batch,
            ms(summary.p50),
            ms(summary.p99),
            ms(summary.max)
        );
    }
    Ok(())
}
