//! Parsing a large JUnit report: time and peak memory of the streaming reader, in this
//! process alone (nothing else runs in it while it parses).

use std::io::{BufWriter, Write};
use std::time::Instant;

use verdict_runs::import::{JunitReader, ReportItem};

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
