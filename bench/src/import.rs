//! Parsing a large report of each format the import reads: time and peak memory of the
//! streaming reader, each format in a process of its own (so the peak is that reader's);
//! and live reporting while a large report is imported by a whole system.

use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use verdict_runs::import::{ReportFormat, ReportItem, ReportReader};
use verdict_testkit::LiveReporter;

use crate::stats::{ms, Summary};

/// The report formats the parse benchmark generates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Junit,
    Nunit2,
    Nunit3,
    Xunit,
    Trx,
}

impl Format {
    const ALL: [Format; 5] = [
        Format::Junit,
        Format::Nunit2,
        Format::Nunit3,
        Format::Xunit,
        Format::Trx,
    ];

    fn report_format(self) -> ReportFormat {
        match self {
            Format::Junit => ReportFormat::Junit,
            Format::Nunit2 => ReportFormat::Nunit2,
            Format::Nunit3 => ReportFormat::Nunit3,
            Format::Xunit => ReportFormat::Xunit2,
            Format::Trx => ReportFormat::Trx,
        }
    }

    fn argument(self) -> &'static str {
        match self {
            Format::Junit => "junit",
            Format::Nunit2 => "nunit2",
            Format::Nunit3 => "nunit3",
            Format::Xunit => "xunit",
            Format::Trx => "trx",
        }
    }
}

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

const FAILURE_MESSAGE: &str = "expected 1 but was 2";

/// The trace of a failing case: 20 frames.
fn trace(suite: usize, case: usize) -> String {
    format!(
        "at com.example.Suite{suite}.test{case}(Suite.java:{case})\n{}",
        "\tat org.junit.Assert.fail(Assert.java:89)\n".repeat(20)
    )
}

/// What a failing case printed: 30 lines.
fn output() -> String {
    "log line of the test under way\n".repeat(30)
}

/// One suite of 100 cases, one in ten failing with a message, a trace and captured
/// output (NUnit 2 has no place for output), in `format`; the cases of a TRX without
/// their definitions, which [`trx_definitions`] writes after all results.
fn suite_block(format: Format, suite: usize) -> String {
    let mut block = match format {
        Format::Junit => format!(r#"<testsuite name="com.example.Suite{suite}" tests="100">"#),
        Format::Nunit2 => format!(
            r#"<test-suite type="TestFixture" name="Suite{suite}" executed="True" result="Failure" success="False" time="1.000"><results>"#
        ),
        Format::Nunit3 => format!(
            r#"<test-suite type="TestFixture" name="Suite{suite}" fullname="com.example.Suite{suite}" classname="com.example.Suite{suite}" result="Failed" total="100">"#
        ),
        Format::Xunit => format!(
            r#"<collection name="Test collection for com.example.Suite{suite}" total="100">"#
        ),
        Format::Trx => String::new(),
    };
    for case in 0..100 {
        let failing = case % 10 == 0;
        let (trace, output) = (trace(suite, case), output());
        let id = guid(suite, case);
        block.push_str(&match (format, failing) {
            (Format::Junit, true) => format!(
                r#"<testcase classname="com.example.Suite{suite}" name="test{case}" time="0.123"><failure message="{FAILURE_MESSAGE}" type="AssertionError">{trace}</failure><system-out>{output}</system-out></testcase>"#
            ),
            (Format::Junit, false) => format!(
                r#"<testcase classname="com.example.Suite{suite}" name="test{case}" time="0.004"/>"#
            ),
            (Format::Nunit2, true) => format!(
                r#"<test-case name="com.example.Suite{suite}.test{case}" executed="True" result="Failure" success="False" time="0.123" asserts="1"><failure><message><![CDATA[{FAILURE_MESSAGE}]]></message><stack-trace><![CDATA[{trace}]]></stack-trace></failure></test-case>"#
            ),
            (Format::Nunit2, false) => format!(
                r#"<test-case name="com.example.Suite{suite}.test{case}" executed="True" result="Success" success="True" time="0.004" asserts="1" />"#
            ),
            (Format::Nunit3, true) => format!(
                r#"<test-case id="{id}" name="test{case}" fullname="com.example.Suite{suite}.test{case}" methodname="test{case}" classname="com.example.Suite{suite}" result="Failed" duration="0.123"><failure><message><![CDATA[{FAILURE_MESSAGE}]]></message><stack-trace><![CDATA[{trace}]]></stack-trace></failure><output><![CDATA[{output}]]></output></test-case>"#
            ),
            (Format::Nunit3, false) => format!(
                r#"<test-case id="{id}" name="test{case}" fullname="com.example.Suite{suite}.test{case}" methodname="test{case}" classname="com.example.Suite{suite}" result="Passed" duration="0.004" />"#
            ),
            (Format::Xunit, true) => format!(
                r#"<test name="com.example.Suite{suite}.test{case}" type="com.example.Suite{suite}" method="test{case}" time="0.123" result="Fail"><failure exception-type="Xunit.Sdk.EqualException"><message><![CDATA[{FAILURE_MESSAGE}]]></message><stack-trace><![CDATA[{trace}]]></stack-trace></failure><output><![CDATA[{output}]]></output></test>"#
            ),
            (Format::Xunit, false) => format!(
                r#"<test name="com.example.Suite{suite}.test{case}" type="com.example.Suite{suite}" method="test{case}" time="0.004" result="Pass" />"#
            ),
            (Format::Trx, true) => format!(
                r#"<UnitTestResult executionId="{id}" testId="{id}" testName="test{case}" duration="00:00:00.1230000" outcome="Failed"><Output><StdOut>{output}</StdOut><ErrorInfo><Message>{FAILURE_MESSAGE}</Message><StackTrace>{trace}</StackTrace></ErrorInfo></Output></UnitTestResult>"#
            ),
            (Format::Trx, false) => format!(
                r#"<UnitTestResult executionId="{id}" testId="{id}" testName="test{case}" duration="00:00:00.0040000" outcome="Passed" />"#
            ),
        });
        block.push('\n');
    }
    block.push_str(match format {
        Format::Junit => "</testsuite>\n",
        Format::Nunit2 => "</results></test-suite>\n",
        Format::Nunit3 => "</test-suite>\n",
        Format::Xunit => "</collection>\n",
        Format::Trx => "",
    });
    block
}

/// A test's id, made of its suite and case numbers.
fn guid(suite: usize, case: usize) -> String {
    format!("{suite:08x}-0000-4000-8000-{case:012x}")
}

/// The `<TestDefinitions>` of a TRX whose results were `suites` suite blocks.
fn trx_definitions(out: &mut impl Write, suites: usize) -> std::io::Result<()> {
    writeln!(out, "<TestDefinitions>")?;
    for suite in 0..suites {
        for case in 0..100 {
            let id = guid(suite, case);
            writeln!(
                out,
                r#"<UnitTest name="test{case}" storage="bench.dll" id="{id}"><Execution id="{id}" /><TestMethod codeBase="bench.dll" adapterTypeName="executor://mstestadapter/v2" className="com.example.Suite{suite}" name="test{case}" /></UnitTest>"#
            )?;
        }
    }
    writeln!(out, "</TestDefinitions>")
}

/// Writes a report of about `megabytes` MB in `format`: suites of 100 cases, one in ten
/// failing with a message, a trace and captured output. Returns the number of cases.
fn write_report(format: Format, path: &Path, megabytes: usize) -> anyhow::Result<usize> {
    let mut out = BufWriter::new(std::fs::File::create(path)?);
    writeln!(out, r#"<?xml version="1.0" encoding="utf-8"?>"#)?;
    writeln!(
        out,
        "{}",
        match format {
            Format::Junit => "<testsuites>",
            Format::Nunit2 =>
                r#"<test-results name="bench.dll"><test-suite type="Assembly" name="bench.dll"><results>"#,
            Format::Nunit3 =>
                r#"<test-run id="2" name="bench.dll"><test-suite type="Assembly" name="bench.dll">"#,
            Format::Xunit =>
                r#"<assemblies><assembly name="bench.dll" test-framework="xUnit.net 2.4.2">"#,
            Format::Trx =>
                r#"<TestRun id="0" name="bench" xmlns="http://microsoft.com/schemas/VisualStudio/TeamTest/2010"><Results>"#,
        }
    )?;
    // The definitions a TRX adds after its results: about 290 bytes a test.
    let definitions_bytes = if format == Format::Trx { 290 * 100 } else { 0 };
    let target = megabytes * 1_000_000;
    let (mut written, mut suites) = (0usize, 0usize);
    while written < target {
        let block = suite_block(format, suites);
        written += block.len() + definitions_bytes;
        out.write_all(block.as_bytes())?;
        suites += 1;
    }
    match format {
        Format::Junit => writeln!(out, "</testsuites>")?,
        Format::Nunit2 => writeln!(out, "</results></test-suite></test-results>")?,
        Format::Nunit3 => writeln!(out, "</test-suite></test-run>")?,
        Format::Xunit => writeln!(out, "</assembly></assemblies>")?,
        Format::Trx => {
            writeln!(out, "</Results>")?;
            trx_definitions(&mut out, suites)?;
            writeln!(out, "</TestRun>")?;
        }
    }
    out.flush()?;
    Ok(suites * 100)
}

/// Parses a generated report of each format, each in a child process (this binary,
/// asked for one format), or of the one format asked for.
pub fn run(megabytes: usize, format: Option<Format>, row_only: bool) -> anyhow::Result<()> {
    if !row_only {
        println!("| format | report | parse time | throughput | peak RSS before, after parsing |");
        println!("| --- | --- | --- | --- | --- |");
    }
    if let Some(format) = format {
        return measure(format, megabytes);
    }
    let me = std::env::current_exe()?;
    for format in Format::ALL {
        let child = std::process::Command::new(&me)
            .args(["import", "--megabytes", &megabytes.to_string(), "--format"])
            .arg(format.argument())
            .arg("--row-only")
            .status()?;
        anyhow::ensure!(child.success(), "the {format:?} benchmark failed");
    }
    Ok(())
}

/// Generates and parses one report, printing its row of the table.
fn measure(format: Format, megabytes: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("report.xml");
    let cases = write_report(format, &path, megabytes)?;
    let size = std::fs::metadata(&path)?.len();
    let before = peak_rss_kib();
    let started = Instant::now();
    let (mut results, mut failed) = (0usize, 0usize);
    let file = std::io::BufReader::new(std::fs::File::open(&path)?);
    for item in ReportReader::with_format(format.report_format(), file)? {
        if let ReportItem::Result(result) = item? {
            results += 1;
            failed += usize::from(result.status.is_failure());
        }
    }
    let took = started.elapsed();
    let after = peak_rss_kib();
    anyhow::ensure!(results == cases, "parsed {results} of {cases} cases");
    println!(
        "| {} | {:.1} MB, {cases} test cases ({failed} failed with trace{}) | {:.2} s | {:.0} MB/s, {:.0} cases/s | {:.1} MiB, {:.1} MiB |",
        format.report_format(),
        size as f64 / 1e6,
        if format == Format::Nunit2 { "" } else { " and output" },
        took.as_secs_f64(),
        size as f64 / 1e6 / took.as_secs_f64(),
        cases as f64 / took.as_secs_f64(),
        before as f64 / 1024.0,
        after as f64 / 1024.0,
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
    let cases = write_report(Format::Junit, &path, plan.megabytes)?;
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
