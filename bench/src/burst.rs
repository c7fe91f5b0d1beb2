//! An ingest burst as a CI fleet makes it: `connections` reporters post batches of
//! results as fast as they are answered for a fixed time, then wait until every
//! accepted result is counted. While it runs, a watcher reads the counts every
//! [`WATCH_EVERY`] and records the longest time in which nothing new became visible
//! although results were waiting.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use serde_json::{json, Value};

/// How often the watcher reads the counts.
pub const WATCH_EVERY: Duration = Duration::from_millis(100);

/// What the results of a burst are.
#[derive(Debug, Clone, Copy)]
pub enum Workload {
    /// One run in which every result is a new test.
    NewTests,
    /// Runs of a suite of `tests` tests whose names repeat run after run.
    RepeatingSuite { tests: usize },
}

#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub workload: Workload,
    pub connections: usize,
    pub batch: usize,
    pub duration: Duration,
}

/// What a burst measured.
#[derive(Debug)]
pub struct Outcome {
    pub batches: u64,
    pub accepted: u64,
    /// From the first post until the last batch was answered.
    pub posting: Duration,
    /// From the first post until every accepted result was counted.
    pub queryable: Duration,
    /// The longest interval in which no result became visible while some were waiting.
    pub longest_pause: Duration,
}

/// The bodies of a workload's batches, made without JSON serialization per batch (the
/// load generator shares the cores with the system it loads).
struct Bodies {
    plan: Plan,
    /// `NewTests`: one body whose test names hold the batch number at `offsets`.
    template: Vec<u8>,
    offsets: Vec<usize>,
    /// `RepeatingSuite`: the suite's batches, the same in every run.
    suite: Vec<Vec<u8>>,
}

/// Digits of the batch number in a new test's name.
const BATCH_DIGITS: usize = 9;

fn result(name: &str, index: usize) -> Value {
    let mut result = json!({
        "suite": format!("suite {}", index % 50),
        "name": name,
        "status": "passed",
        "duration_ms": index % 1000,
    });
    if index.is_multiple_of(10) {
        // Absent rather than null when passed: the reference refuses a null message.
        result["status"] = "failed".into();
        result["message"] = format!("assertion failed after {index} ms").into();
    }
    result
}

impl Bodies {
    fn new(plan: Plan) -> anyhow::Result<Self> {
        let placeholder = "#".repeat(BATCH_DIGITS);
        let batch = |names: &mut dyn Iterator<Item = (usize, String)>| {
            let results: Vec<Value> = names.map(|(index, name)| result(&name, index)).collect();
            serde_json::to_vec(&json!({ "results": results }))
        };
        Ok(match plan.workload {
            Workload::NewTests => {
                let template =
                    batch(&mut (0..plan.batch).map(|i| (i, format!("test {placeholder} {i:04}"))))?;
                let offsets = memchr::memmem::find_iter(&template, placeholder.as_bytes())
                    .collect::<Vec<_>>();
                ensure!(offsets.len() == plan.batch, "placeholder collides");
                Self {
                    plan,
                    template,
                    offsets,
                    suite: Vec::new(),
                }
            }
            Workload::RepeatingSuite { tests } => {
                ensure!(
                    tests.is_multiple_of(plan.batch),
                    "the suite must be a whole number of batches"
                );
                let suite = (0..tests / plan.batch)
                    .map(|slot| {
                        batch(&mut (0..plan.batch).map(|i| {
                            let index = slot * plan.batch + i;
                            (index, format!("test {index} of the suite"))
                        }))
                    })
                    .collect::<Result<_, _>>()?;
                Self {
                    plan,
                    template: Vec::new(),
                    offsets: Vec::new(),
                    suite,
                }
            }
        })
    }

    /// Batches per run: all of them in one run, or one suite per run.
    fn per_run(&self) -> u64 {
        match self.plan.workload {
            Workload::NewTests => u64::MAX,
            Workload::RepeatingSuite { .. } => self.suite.len() as u64,
        }
    }

    fn body(&self, batch: u64) -> Vec<u8> {
        match self.plan.workload {
            Workload::NewTests => {
                let mut body = self.template.clone();
                let digits = format!("{batch:0BATCH_DIGITS$}");
                for &offset in &self.offsets {
                    body[offset..offset + BATCH_DIGITS].copy_from_slice(digits.as_bytes());
                }
                body
            }
            Workload::RepeatingSuite { .. } => {
                self.suite[(batch % self.suite.len() as u64) as usize].clone()
            }
        }
    }
}

/// A server of the API reached over HTTP as a reporter.
pub struct Target {
    pub http: reqwest::Client,
    pub base_url: String,
    pub project: String,
    pub token: String,
    /// How the burst's results are counted.
    pub counting: Counting,
}

impl Target {
    /// A fresh project of `system`, posted to with a reporter token of its own.
    pub async fn on(system: &crate::up::UpSystem) -> anyhow::Result<Arc<Self>> {
        let (project, token) = system.reporter().await?;
        Ok(Arc::new(Target {
            http: system.http.clone(),
            base_url: system.base_url.clone(),
            project,
            token,
            counting: Counting::ProjectRuns,
        }))
    }
}

/// How a server tells how many results it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counting {
    /// Verdict: one page of the project's runs, with their counts.
    ProjectRuns,
    /// A server without run lists (the reference): each run the burst used, one by one.
    EachRun,
}

impl Target {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    async fn create_runs(&self, count: u64) -> anyhow::Result<Vec<String>> {
        let mut runs = Vec::new();
        for n in 0..count {
            let run: Value = self
                .http
                .post(self.url(&format!("/api/v1/projects/{}/runs", self.project)))
                .bearer_auth(&self.token)
                .json(&json!({ "name": format!("burst {n}") }))
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            runs.push(run["id"].as_str().context("run id")?.to_owned());
        }
        Ok(runs)
    }

    /// Results counted over the burst's runs, of which the first `used` took results.
    async fn counted(&self, runs: &[String], used: usize) -> anyhow::Result<u64> {
        match self.counting {
            Counting::ProjectRuns => self.counted_in_project().await,
            Counting::EachRun => {
                let mut total = 0;
                for run in runs.iter().take(used) {
                    let run: Value = self
                        .http
                        .get(self.url(&format!("/api/v1/runs/{run}")))
                        .bearer_auth(&self.token)
                        .send()
                        .await?
                        .error_for_status()?
                        .json()
                        .await?;
                    total += run["counts"]["total"].as_u64().unwrap_or(0);
                }
                Ok(total)
            }
        }
    }

    /// Results counted over every run of the project (the burst's runs are all of them).
    async fn counted_in_project(&self) -> anyhow::Result<u64> {
        let mut total = 0;
        let mut cursor: Option<String> = None;
        loop {
            let mut url = self.url(&format!("/api/v1/projects/{}/runs?limit=500", self.project));
            if let Some(cursor) = &cursor {
                url.push_str(&format!("&cursor={cursor}"));
            }
            let page: Value = self
                .http
                .get(url)
                .bearer_auth(&self.token)
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            total += page["items"]
                .as_array()
                .context("items")?
                .iter()
                .filter_map(|run| run["counts"]["total"].as_u64())
                .sum::<u64>();
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return Ok(total),
            }
        }
    }
}

/// The most runs a repeating-suite burst may fill (created before the clock starts).
const MAX_RUNS: u64 = 400;

/// Posts the burst, then waits until every accepted result is counted (at most
/// `drain_limit` after the last post).
pub async fn run(
    target: Arc<Target>,
    plan: Plan,
    drain_limit: Duration,
) -> anyhow::Result<Outcome> {
    let bodies = Arc::new(Bodies::new(plan)?);
    let run_count = match plan.workload {
        Workload::NewTests => 1,
        Workload::RepeatingSuite { .. } => MAX_RUNS,
    };
    let runs = Arc::new(target.create_runs(run_count).await?);
    let next_batch = Arc::new(AtomicU64::new(0));
    let accepted = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + plan.duration;

    let posted = Arc::new(AtomicBool::new(false));
    let watcher = tokio::spawn(watch(
        target.clone(),
        Used {
            runs: runs.clone(),
            next_batch: next_batch.clone(),
            per_run: bodies.per_run(),
        },
        accepted.clone(),
        posted.clone(),
        started,
    ));
    let mut posters = tokio::task::JoinSet::new();
    for _ in 0..plan.connections {
        let (target, bodies, runs) = (target.clone(), bodies.clone(), runs.clone());
        let (next_batch, accepted) = (next_batch.clone(), accepted.clone());
        posters.spawn(async move {
            while Instant::now() < deadline {
                let batch = next_batch.fetch_add(1, Ordering::Relaxed);
                let run = runs
                    .get((batch / bodies.per_run()) as usize)
                    .context("the burst outgrew its runs")?;
                let response = target
                    .http
                    .post(target.url(&format!("/api/v1/runs/{run}/results")))
                    .bearer_auth(&target.token)
                    .header("content-type", "application/json")
                    .body(bodies.body(batch))
                    .send()
                    .await?;
                let status = response.status();
                response.bytes().await?;
                ensure!(status == 202, "a batch got {status}");
                accepted.fetch_add(plan.batch as u64, Ordering::Relaxed);
            }
            anyhow::Ok(())
        });
    }
    while let Some(posted) = posters.join_next().await {
        posted??;
    }
    let posting = started.elapsed();
    posted.store(true, Ordering::Release);
    let total = accepted.load(Ordering::Relaxed);
    let watched = tokio::time::timeout(posting + drain_limit, watcher)
        .await
        .with_context(|| {
            format!("not every accepted result was counted within {drain_limit:?} of the last post")
        })???;
    Ok(Outcome {
        batches: next_batch
            .load(Ordering::Relaxed)
            .min(total / plan.batch as u64),
        accepted: total,
        posting,
        queryable: watched.done,
        longest_pause: watched.longest_pause,
    })
}

/// The runs a burst has posted to so far.
struct Used {
    runs: Arc<Vec<String>>,
    next_batch: Arc<AtomicU64>,
    per_run: u64,
}

impl Used {
    fn count(&self) -> usize {
        let batches = self.next_batch.load(Ordering::Relaxed);
        (batches.div_ceil(self.per_run) as usize).min(self.runs.len())
    }
}

struct Watched {
    done: Duration,
    longest_pause: Duration,
}

/// Reads the counts until, posting over, they reach what was accepted; tracks the
/// longest stretch without progress while results were waiting.
async fn watch(
    target: Arc<Target>,
    used: Used,
    accepted: Arc<AtomicU64>,
    posted: Arc<AtomicBool>,
    started: Instant,
) -> anyhow::Result<Watched> {
    let mut last = 0;
    let mut last_change = Instant::now();
    let mut longest_pause = Duration::ZERO;
    loop {
        tokio::time::sleep(WATCH_EVERY).await;
        let over = posted.load(Ordering::Acquire);
        let waiting = accepted.load(Ordering::Relaxed);
        let counted = target.counted(&used.runs, used.count()).await?;
        let now = Instant::now();
        if counted != last {
            last = counted;
            last_change = now;
        } else if counted < waiting {
            longest_pause = longest_pause.max(now - last_change);
        }
        if over && counted >= waiting {
            return Ok(Watched {
                done: now - started,
                longest_pause,
            });
        }
    }
}
