//! Importing NUnit, xUnit.net and TRX reports over HTTP, their format told by their
//! content, on both blob stores; and what an import notices without refusing a report
//! (its warnings) or refuses because it is no report at all.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};
use verdict_testkit::{BlobStoreKind, TestApp};

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../services/runs/tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

struct Importer {
    app: TestApp,
    token: String,
}

impl Importer {
    async fn new(store: BlobStoreKind) -> Self {
        let app = TestApp::spawn_internal_only(store, &[]).await;
        let admin = app.admin_token().await;
        app.project(&admin, "web").await;
        let (_, token) = app.api_token(&admin, "web", "reporter").await;
        Self { app, token }
    }

    async fn import(&self, body: Vec<u8>) -> Value {
        let import = self
            .app
            .submit_import(&self.token, "web", "application/xml", body)
            .await;
        self.app
            .import_settled(&self.token, &import, Duration::from_secs(20))
            .await
    }

    async fn counts(&self, import: &Value) -> Value {
        let run_id = import["run_id"].as_str().unwrap();
        let run: Value = self
            .app
            .get_as(&self.token, &format!("/api/v1/runs/{run_id}"))
            .await
            .json()
            .await
            .unwrap();
        run["counts"].clone()
    }
}

#[tokio::test]
async fn nunit_xunit_and_trx_reports_import_with_the_counts_they_declare() {
    dotnet_formats(BlobStoreKind::Disk).await;
}

#[tokio::test]
async fn nunit_xunit_and_trx_reports_import_with_the_counts_they_declare_on_s3() {
    dotnet_formats(BlobStoreKind::S3).await;
}

async fn dotnet_formats(store: BlobStoreKind) {
    let importer = Importer::new(store).await;
    // Each report's own summary, as the import tests of the runs service read it.
    for (name, [total, passed, failed, errored, skipped]) in [
        // total 21 + not-run 7; errors 1 + invalid 3; ignored 4 + inconclusive 1.
        ("nunit2/mock-assembly-2.6.2.xml", [28, 18, 1, 4, 5]),
        // total 9, failed 5 (2 labelled Error), skipped 1.
        ("nunit3/dotnet-nunit.xml", [9, 3, 3, 2, 1]),
        // total 65, passed 61, failed 2, skipped 2.
        ("xunit/Microbenchmarks.Output.xml", [65, 61, 2, 0, 2]),
        // Counters total 7, executed 6, passed 3, failed 3.
        ("trx/dotnet-trx.trx", [7, 3, 3, 0, 1]),
    ] {
        let import = importer.import(fixture(name)).await;
        assert_eq!(import["status"], "done", "{name}: {import}");
        let counts = importer.counts(&import).await;
        let found =
            ["total", "passed", "failed", "errored", "skipped"].map(|key| counts[key].clone());
        assert_eq!(
            found,
            [total, passed, failed, errored, skipped].map(Value::from),
            "{name}: {counts}"
        );
        assert_eq!(import["counts"], counts, "{name}");
        assert!(import.get("warnings").is_none(), "{name}: {import}");
    }
}

#[tokio::test]
async fn what_an_import_notices_is_listed_on_it() {
    let importer = Importer::new(BlobStoreKind::Disk).await;
    let junit = b"<testsuites>\n  <testsuite name=\"setup\" tests=\"3\" failures=\"1\"/>\n  \
                  <testsuite name=\"s\"><testcase classname=\"pkg.Fixture\"/><testcase name=\"ok\"/></testsuite>\n\
                  </testsuites>\n"
        .to_vec();
    let import = importer.import(junit).await;
    assert_eq!(import["status"], "done", "{import}");
    assert_eq!(
        import["warnings"],
        json!([
            "line 2, column 3: <testsuite> \"setup\" declares 3 tests (1 failed, 0 errored, 0 skipped) but lists none; they are recorded as unlisted results",
            "line 3, column 23: a <testcase> without a name is imported as \"pkg.Fixture\""
        ])
    );
    let counts = importer.counts(&import).await;
    assert_eq!(counts["total"], 5, "{counts}");
    assert_eq!(counts["failed"], 1, "{counts}");
    // The warnings are kept with the import.
    let again: Value = importer
        .app
        .get_as(
            &importer.token,
            &format!("/api/v1/imports/{}", import["id"].as_str().unwrap()),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["warnings"], import["warnings"]);
}

#[tokio::test]
async fn a_report_of_no_known_format_fails_naming_what_it_is() {
    let importer = Importer::new(BlobStoreKind::Disk).await;
    let import = importer
        .import(b"<?xml version=\"1.0\"?>\n<html><body>not a report</body></html>".to_vec())
        .await;
    assert_eq!(import["status"], "failed", "{import}");
    let error = import["error"].as_str().unwrap();
    assert!(
        error.contains("found XML whose root element is <html>"),
        "{error}"
    );
    assert_eq!(importer.counts(&import).await["total"], 0);
}
