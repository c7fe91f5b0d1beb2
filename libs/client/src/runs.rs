//! Runs, results, test history and imports.

use std::collections::BTreeMap;

use bytes::Bytes;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use verdict_contracts::ids::{ImportId, RunId};
use verdict_contracts::page::{Page, PageRequest};
use verdict_contracts::runs::{
    FinishRun, HistoryEntry, Import, NewRun, ReportKind, ResultBatchInput, ResultStatus, Run,
    RunShard, RunStatus, TestResult,
};

use crate::client::{Payload, Repeat};
use crate::projects::paged;
use crate::{Client, Error};

/// What `POST /runs/{run}/results` answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accepted {
    /// Results stored durably; they become queryable within moments.
    pub accepted: usize,
}

/// Filters of a project's runs; all must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunFilter {
    pub status: Option<RunStatus>,
    /// `attr.<key>=<value>`.
    pub attributes: BTreeMap<String, String>,
    /// RFC 3339 bounds on `started_at`.
    pub since: Option<String>,
    pub until: Option<String>,
}

/// Filters of a run's results; all must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResultFilter {
    pub status: Option<ResultStatus>,
    /// Words in the test name or the failure message.
    pub q: Option<String>,
    pub suite: Option<String>,
}

/// A report to import as a new run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportReport {
    pub kind: ReportKind,
    pub body: Bytes,
    /// The run's name.
    pub name: Option<String>,
    pub attributes: BTreeMap<String, String>,
}

impl Client {
    /// `POST /projects/{project}/runs`.
    pub async fn create_run(&self, project: &str, run: &NewRun) -> Result<Run, Error> {
        let mut call = self.call(
            Method::POST,
            self.api(&["projects", project, "runs"]),
            Repeat::keyed(),
        );
        call.payload = Payload::json(run)?;
        self.json(call).await
    }

    /// `GET /projects/{project}/runs`, newest first.
    pub async fn list_runs(
        &self,
        project: &str,
        filter: &RunFilter,
        page: &PageRequest,
    ) -> Result<Page<Run>, Error> {
        let mut call = self.call(
            Method::GET,
            self.api(&["projects", project, "runs"]),
            Repeat::Idempotent,
        );
        {
            let mut query = call.url.query_pairs_mut();
            if let Some(status) = filter.status {
                query.append_pair("status", status.as_str());
            }
            for (key, value) in &filter.attributes {
                query.append_pair(&format!("attr.{key}"), value);
            }
            if let Some(since) = &filter.since {
                query.append_pair("since", since);
            }
            if let Some(until) = &filter.until {
                query.append_pair("until", until);
            }
        }
        paged(&mut call.url, page);
        self.json(call).await
    }

    /// `GET /runs/{run}`.
    pub async fn run(&self, run_id: RunId) -> Result<Run, Error> {
        self.json(self.call(
            Method::GET,
            self.api(&["runs", &run_id.to_string()]),
            Repeat::Idempotent,
        ))
        .await
    }

    /// `DELETE /runs/{run}` (maintainer or owner): results and artifacts go too.
    pub async fn delete_run(&self, run_id: RunId) -> Result<(), Error> {
        self.empty(self.call(
            Method::DELETE,
            self.api(&["runs", &run_id.to_string()]),
            Repeat::Idempotent,
        ))
        .await
    }

    /// `POST /runs/{run}/results` (1 to 1000), gzip-compressed: answered once they are
    /// durable.
    pub async fn post_results(
        &self,
        run_id: RunId,
        batch: &ResultBatchInput,
    ) -> Result<Accepted, Error> {
        let mut call = self.call(
            Method::POST,
            self.api(&["runs", &run_id.to_string(), "results"]),
            Repeat::keyed(),
        );
        call.payload = Payload::json_gzipped(batch)?;
        self.json(call).await
    }

    /// `GET /runs/{run}/shards/{shard}`: whether a shard of the run has finished.
    pub async fn shard(&self, run_id: RunId, shard: &str) -> Result<RunShard, Error> {
        self.json(self.call(
            Method::GET,
            self.api(&["runs", &run_id.to_string(), "shards", shard]),
            Repeat::Idempotent,
        ))
        .await
    }

    /// `POST /runs/{run}/finish`: ordered after every result accepted before it.
    pub async fn finish_run(&self, run_id: RunId, finish: &FinishRun) -> Result<(), Error> {
        let mut call = self.call(
            Method::POST,
            self.api(&["runs", &run_id.to_string(), "finish"]),
            Repeat::keyed(),
        );
        call.payload = Payload::json(finish)?;
        self.empty(call).await
    }

    /// `GET /runs/{run}/results`, in the order they arrived.
    pub async fn list_results(
        &self,
        run_id: RunId,
        filter: &ResultFilter,
        page: &PageRequest,
    ) -> Result<Page<TestResult>, Error> {
        let mut call = self.call(
            Method::GET,
            self.api(&["runs", &run_id.to_string(), "results"]),
            Repeat::Idempotent,
        );
        {
            let mut query = call.url.query_pairs_mut();
            if let Some(status) = filter.status {
                query.append_pair("status", status.as_str());
            }
            if let Some(q) = &filter.q {
                query.append_pair("q", q);
            }
            if let Some(suite) = &filter.suite {
                query.append_pair("suite", suite);
            }
        }
        paged(&mut call.url, page);
        self.json(call).await
    }

    /// `GET /projects/{project}/tests/{test_key}/history`, newest first.
    pub async fn test_history(
        &self,
        project: &str,
        test_key: &str,
        page: &PageRequest,
    ) -> Result<Page<HistoryEntry>, Error> {
        let mut call = self.call(
            Method::GET,
            self.api(&["projects", project, "tests", test_key, "history"]),
            Repeat::Idempotent,
        );
        paged(&mut call.url, page);
        self.json(call).await
    }

    /// `POST /projects/{project}/imports`: the report becomes a new run, parsed by the
    /// server; follow it with [`Client::import`].
    pub async fn create_import(
        &self,
        project: &str,
        report: &ImportReport,
    ) -> Result<Import, Error> {
        let mut call = self.call(
            Method::POST,
            self.api(&["projects", project, "imports"]),
            Repeat::keyed(),
        );
        {
            let mut query = call.url.query_pairs_mut();
            if let Some(name) = &report.name {
                query.append_pair("name", name);
            }
            for (key, value) in &report.attributes {
                query.append_pair(&format!("attr.{key}"), value);
            }
        }
        call.payload = report_payload(report.kind, &report.body)?;
        self.json(call).await
    }

    /// `POST /runs/{run}/imports`: the report's results are added to an existing run;
    /// follow it with [`Client::import`].
    pub async fn import_into_run(
        &self,
        run_id: RunId,
        kind: ReportKind,
        body: &[u8],
    ) -> Result<Import, Error> {
        let mut call = self.call(
            Method::POST,
            self.api(&["runs", &run_id.to_string(), "imports"]),
            Repeat::keyed(),
        );
        call.payload = report_payload(kind, body)?;
        self.json(call).await
    }

    /// `GET /imports/{id}`: pending, done (with counts) or failed (with the place).
    pub async fn import(&self, import_id: ImportId) -> Result<Import, Error> {
        self.json(self.call(
            Method::GET,
            self.api(&["imports", &import_id.to_string()]),
            Repeat::Idempotent,
        ))
        .await
    }
}

/// A report as the imports take it: its format as the content type, gzip-compressed.
fn report_payload(kind: ReportKind, body: &[u8]) -> Result<Payload, Error> {
    Payload::gzipped(
        body,
        match kind {
            ReportKind::Junit => "application/xml",
            ReportKind::Ctrf => "application/json",
        },
    )
}
