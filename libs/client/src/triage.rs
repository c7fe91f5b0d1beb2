//! Triage: failures by signature, new failures, quarantine, the test catalog, trends
//! and the slowest tests.

use reqwest::{Method, Url};
use verdict_contracts::ids::RunId;
use verdict_contracts::page::{Page, PageRequest};
use verdict_contracts::runs::triage::{
    CatalogTest, FailureGroup, FailureSignature, Quarantine, QuarantineRequest, QuarantineState,
    RunSelection, TestStats, TrendDay, BRANCH_ATTRIBUTE,
};
use verdict_contracts::runs::{FlakyTest, TestResult};

use crate::client::{Payload, Repeat};
use crate::projects::paged;
use crate::{Client, Error};

/// Adds a selection's `window` and attribute filters (`branch` for `git.branch`) to a URL.
fn selected(url: &mut Url, selection: &RunSelection) {
    let mut query = url.query_pairs_mut();
    query.append_pair("window", &selection.window.to_string());
    for (key, value) in &selection.attributes {
        if key == BRANCH_ATTRIBUTE {
            query.append_pair("branch", value);
        } else {
            query.append_pair(&format!("attr.{key}"), value);
        }
    }
}

impl Client {
    /// `GET /projects/{project}/tests/flaky` over a window of finished runs.
    pub async fn flaky_tests(
        &self,
        project: &str,
        selection: &RunSelection,
        page: &PageRequest,
    ) -> Result<Page<FlakyTest>, Error> {
        let mut call = self.call(
            Method::GET,
            self.api(&["projects", project, "tests", "flaky"]),
            Repeat::Idempotent,
        );
        selected(&mut call.url, selection);
        paged(&mut call.url, page);
        self.json(call).await
    }

    /// `GET /projects/{project}/failures`: signatures over a window, most failures first.
    pub async fn failures(
        &self,
        project: &str,
        selection: &RunSelection,
        page: &PageRequest,
    ) -> Result<Page<FailureSignature>, Error> {
        let mut call = self.call(
            Method::GET,
            self.api(&["projects", project, "failures"]),
            Repeat::Idempotent,
        );
        selected(&mut call.url, selection);
        paged(&mut call.url, page);
        self.json(call).await
    }

    /// `GET /projects/{project}/failures/{signature}`: the results behind a signature.
    pub async fn signature_results(
        &self,
        project: &str,
        signature: &str,
        page: &PageRequest,
    ) -> Result<Page<TestResult>, Error> {
        let mut call = self.call(
            Method::GET,
            self.api(&["projects", project, "failures", signature]),
            Repeat::Idempotent,
        );
        paged(&mut call.url, page);
        self.json(call).await
    }

    /// `GET /runs/{run}/failures[?new=true]`: a run's failures by signature.
    pub async fn run_failures(
        &self,
        run_id: RunId,
        new_only: bool,
        baseline: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<FailureGroup>, Error> {
        let mut call = self.call(
            Method::GET,
            self.api(&["runs", &run_id.to_string(), "failures"]),
            Repeat::Idempotent,
        );
        {
            let mut query = call.url.query_pairs_mut();
            if new_only {
                query.append_pair("new", "true");
            }
            if let Some(baseline) = baseline {
                query.append_pair("baseline", baseline);
            }
        }
        paged(&mut call.url, page);
        self.json(call).await
    }

    /// `PUT /projects/{project}/tests/{test_key}/quarantine` (maintainer or owner).
    pub async fn quarantine(
        &self,
        project: &str,
        test_key: &str,
        quarantine: &QuarantineRequest,
    ) -> Result<Quarantine, Error> {
        let mut call = self.call(
            Method::PUT,
            self.api(&["projects", project, "tests", test_key, "quarantine"]),
            Repeat::Idempotent,
        );
        call.payload = Payload::json(quarantine)?;
        self.json(call).await
    }

    /// `DELETE /projects/{project}/tests/{test_key}/quarantine` (maintainer or owner).
    pub async fn release_quarantine(&self, project: &str, test_key: &str) -> Result<(), Error> {
        self.empty(self.call(
            Method::DELETE,
            self.api(&["projects", project, "tests", test_key, "quarantine"]),
            Repeat::Idempotent,
        ))
        .await
    }

    /// `GET /projects/{project}/tests/{test_key}/quarantine`: the quarantine and its
    /// audit trail.
    pub async fn quarantine_state(
        &self,
        project: &str,
        test_key: &str,
    ) -> Result<QuarantineState, Error> {
        self.json(self.call(
            Method::GET,
            self.api(&["projects", project, "tests", test_key, "quarantine"]),
            Repeat::Idempotent,
        ))
        .await
    }

    /// `GET /projects/{project}/tests[?q=&quarantined=true]`: the test catalog.
    pub async fn tests(
        &self,
        project: &str,
        q: Option<&str>,
        quarantined: bool,
        page: &PageRequest,
    ) -> Result<Page<CatalogTest>, Error> {
        let mut call = self.call(
            Method::GET,
            self.api(&["projects", project, "tests"]),
            Repeat::Idempotent,
        );
        {
            let mut query = call.url.query_pairs_mut();
            if let Some(q) = q {
                query.append_pair("q", q);
            }
            if quarantined {
                query.append_pair("quarantined", "true");
            }
        }
        paged(&mut call.url, page);
        self.json(call).await
    }

    /// `GET /projects/{project}/tests/slowest`: the `limit` tests of highest p95.
    pub async fn slowest_tests(
        &self,
        project: &str,
        selection: &RunSelection,
        limit: u32,
    ) -> Result<Vec<TestStats>, Error> {
        let mut call = self.call(
            Method::GET,
            self.api(&["projects", project, "tests", "slowest"]),
            Repeat::Idempotent,
        );
        selected(&mut call.url, selection);
        call.url
            .query_pairs_mut()
            .append_pair("limit", &limit.to_string());
        self.json(call).await
    }

    /// `GET /projects/{project}/tests/{test_key}/trend`: pass rate and durations.
    pub async fn test_trend(
        &self,
        project: &str,
        test_key: &str,
        selection: &RunSelection,
    ) -> Result<TestStats, Error> {
        let mut call = self.call(
            Method::GET,
            self.api(&["projects", project, "tests", test_key, "trend"]),
            Repeat::Idempotent,
        );
        selected(&mut call.url, selection);
        self.json(call).await
    }

    /// `GET /projects/{project}/trend`: finished runs per day.
    pub async fn project_trend(
        &self,
        project: &str,
        selection: &RunSelection,
    ) -> Result<Vec<TrendDay>, Error> {
        let mut call = self.call(
            Method::GET,
            self.api(&["projects", project, "trend"]),
            Repeat::Idempotent,
        );
        selected(&mut call.url, selection);
        self.json(call).await
    }
}
