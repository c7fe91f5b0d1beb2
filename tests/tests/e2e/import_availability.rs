//! A large import does not hold up live reporting: while it is written, batches posted
//! to another run become queryable as quickly as on an idle system.

use std::time::Duration;

use verdict_testkit::{junit_report, LiveReporter, TestApp};

/// The import: 50 MB in 20 000 test cases of 2 500 bytes of output each.
const IMPORT_CASES: usize = 20_000;
const OUTPUT_BYTES: usize = 2_500;
/// The reporter: one batch every 50 ms, as a CI job sending what it has.
const BATCH: usize = 10;
const PAUSE: Duration = Duration::from_millis(50);
/// The budget from a batch's 202 to its results being counted in `GET /runs/{run}`.
const QUERYABLE_P99: Duration = Duration::from_secs(1);

#[tokio::test]
async fn live_batches_stay_queryable_within_a_second_while_a_50_mb_import_is_written() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    app.project(&admin, "web").await;
    let (_, token) = app.api_token(&admin, "web", "reporter").await;
    let mut reporter = LiveReporter::start(&app, &token, "web").await;
    let report = junit_report(IMPORT_CASES, 1, OUTPUT_BYTES);
    assert!(report.len() >= 50_000_000, "{} bytes", report.len());

    let import = app
        .submit_import(&token, "web", "application/xml", report)
        .await;
    let imported_run = import["run_id"].as_str().unwrap();
    let (mut timings, mut during_writes) = (Vec::new(), 0);
    loop {
        let written_before = app.run_total(&token, imported_run).await;
        timings.push(reporter.post_timed(&app, BATCH).await);
        if app.import_status(&token, &import).await["status"] != "pending" {
            break;
        }
        during_writes += usize::from(written_before > 0);
        tokio::time::sleep(PAUSE).await;
    }

    let import = app.import_status(&token, &import).await;
    assert_eq!(import["status"], "done", "{import}");
    assert_eq!(import["counts"]["total"], IMPORT_CASES);
    timings.sort();
    let p99 = timings[(timings.len() * 99).div_ceil(100) - 1];
    assert!(
        p99 < QUERYABLE_P99,
        "p99 from 202 to queryable {p99:?} over {} batches (slowest {:?})",
        timings.len(),
        timings.last()
    );
    assert!(
        during_writes >= 10,
        "only {during_writes} batches were posted while the import was written"
    );
}
