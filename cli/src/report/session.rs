//! One run being reported: created (or joined, as a shard of a CI build's run), fed
//! results in batches and artifacts in parallel, finished. `verdict report` drives it
//! from files, `verdict run` from a test command's output as it runs.

use std::time::{Duration, Instant};

use verdict_client::{ArtifactFile, Client, RetryPolicy};
use verdict_contracts::artifacts::MAX_BATCH_ARTIFACTS;
use verdict_contracts::runs::limits::MAX_RESULTS_PER_BATCH;
use verdict_contracts::runs::{
    FinishRun, NewRun, ResultBatchInput, ResultInput, Run, RunStatus, ShardStatus,
};

use super::progress::Progress;
use super::{Failure, Outcome};

/// The most JSON one results batch carries, well below the server's default body limit
/// (32 MiB): a result with long output can weigh megabytes.
const MAX_BATCH_BYTES: usize = 8 << 20;
/// Artifacts uploaded at once.
const PARALLEL_UPLOADS: usize = 8;
/// The most bytes of artifacts one batch holds: the server reads each back to verify it
/// when the batch is completed, within one request.
const MAX_ARTIFACT_BATCH_BYTES: u64 = 1 << 30;
/// How long a finished run may take to show its final status.
const FINISH_WAIT: Duration = Duration::from_secs(120);

pub struct Session {
    client: Client,
    run: Run,
    /// The shard this command joined the run as, when it reports into a build's run.
    shard: Option<String>,
    progress: Progress,
}

impl Session {
    /// Creates the run (or, with a build key, finds the build's run and joins it).
    pub async fn open(
        client: Client,
        project: &str,
        run: &NewRun,
        progress: Progress,
    ) -> Outcome<Session> {
        let created = client.create_run(project, run).await?;
        let session = Session {
            client,
            run: created,
            shard: run.shard.clone(),
            progress,
        };
        let what = match &session.shard {
            Some(shard) => format!("joined run {} as shard {shard}", session.run.id),
            None => format!("created run {}", session.run.id),
        };
        session
            .progress
            .line(&format!("{what} ({})", session.url()));
        Ok(session)
    }

    /// The shard this command reports as, if it joined a build's run.
    pub fn shard(&self) -> Option<&str> {
        self.shard.as_deref()
    }

    /// Where people see the run: the dashboard's page of it.
    pub fn url(&self) -> String {
        let base = self.client.base_url().as_str().trim_end_matches('/');
        format!("{base}/runs/{}", self.run.id)
    }

    /// Posts results in batches of at most 1000 and 8 MiB, in order, each batch with
    /// its own Idempotency-Key kept across its retries.
    pub async fn post(&self, results: Vec<ResultInput>) -> Outcome<()> {
        let mut step = self
            .progress
            .step("results", results.len() as u64, "results");
        for batch in batches(results)? {
            let count = batch.len() as u64;
            self.client
                .post_results(self.run.id, &ResultBatchInput { results: batch })
                .await?;
            step.advance(count);
        }
        step.finish(&self.progress);
        Ok(())
    }

    /// Posts results as a command prints them, in batches as [`Session::post`] does,
    /// with no progress of its own.
    pub async fn send(&self, results: Vec<ResultInput>) -> Outcome<()> {
        for batch in batches(results)? {
            self.client
                .post_results(self.run.id, &ResultBatchInput { results: batch })
                .await?;
        }
        Ok(())
    }

    /// Uploads the files in batches (one declaration and one completion request for
    /// each), several at once; answers the failures, one line each.
    pub async fn upload(&self, files: Vec<ArtifactFile>) -> Vec<String> {
        let mut step = self
            .progress
            .step("artifacts", files.len() as u64, "artifacts");
        let mut failures = Vec::new();
        let mut sized = Vec::with_capacity(files.len());
        for file in files {
            // A file that cannot be read fails in its batch, naming itself.
            let size = tokio::fs::metadata(&file.path).await.map_or(0, |m| m.len());
            sized.push((size, file));
        }
        for batch in chunks_within(sized, MAX_BATCH_ARTIFACTS, MAX_ARTIFACT_BATCH_BYTES) {
            match self
                .client
                .upload_batch(self.run.id, &batch, PARALLEL_UPLOADS)
                .await
            {
                Ok(outcomes) => {
                    for (file, outcome) in batch.iter().zip(outcomes) {
                        match outcome {
                            Ok(_) => step.advance(1),
                            Err(err) => failures.push(format!("{}: {err}", file.name)),
                        }
                    }
                }
                Err(err) => {
                    failures.extend(batch.iter().map(|file| format!("{}: {err}", file.name)))
                }
            }
        }
        step.finish(&self.progress);
        failures
    }

    /// Finishes the run (or this command's shard of it) and waits until the server has
    /// applied that; answers the run as it is then (still running while other shards
    /// are).
    pub async fn finish(&mut self) -> Outcome<&Run> {
        self.end(None).await
    }

    async fn end(&mut self, status: Option<RunStatus>) -> Outcome<&Run> {
        let finish = FinishRun {
            finished_at: None,
            status,
            shard: self.shard.clone(),
        };
        self.client.finish_run(self.run.id, &finish).await?;
        let started = Instant::now();
        let mut pause = Duration::from_millis(50);
        loop {
            let applied = match &self.shard {
                Some(shard) => {
                    self.client.shard(self.run.id, shard).await?.status != ShardStatus::Running
                }
                None => true,
            };
            if applied {
                self.run = self.client.run(self.run.id).await?;
                if self.shard.is_some() || self.run.status != RunStatus::Running {
                    return Ok(&self.run);
                }
            }
            if started.elapsed() > FINISH_WAIT {
                return Err(Failure::server(format!(
                    "the run was finished but still shows as running after {}s: {}",
                    FINISH_WAIT.as_secs(),
                    self.url()
                )));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(1));
        }
    }

    /// Marks the run (or this command's shard) interrupted after a failure, so that it
    /// does not show as running; one attempt, as whatever stopped the report may still
    /// stand in the way.
    pub async fn interrupt(&self) -> Outcome<()> {
        let finish = FinishRun {
            finished_at: None,
            status: Some(RunStatus::Interrupted),
            shard: self.shard.clone(),
        };
        self.client
            .with_retry(RetryPolicy::none())
            .finish_run(self.run.id, &finish)
            .await?;
        Ok(())
    }
}

/// Splits results into batches the API takes: 1 to 1000 results and at most
/// [`MAX_BATCH_BYTES`] of JSON each (a single larger result goes alone).
pub fn batches(results: Vec<ResultInput>) -> Outcome<Vec<Vec<ResultInput>>> {
    let sized = results
        .into_iter()
        .map(|result| {
            let size = serde_json::to_vec(&result)
                .map_err(|err| Failure::internal(format!("encoding a result: {err}")))?
                .len();
            Ok((size as u64, result))
        })
        .collect::<Outcome<Vec<_>>>()?;
    Ok(chunks_within(
        sized,
        MAX_RESULTS_PER_BATCH,
        MAX_BATCH_BYTES as u64,
    ))
}

/// `items` in order, cut into chunks of at most `max_items` whose sizes add up to at
/// most `max_size`; an item larger than that alone makes a chunk of its own.
fn chunks_within<T>(items: Vec<(u64, T)>, max_items: usize, max_size: u64) -> Vec<Vec<T>> {
    let mut chunks = Vec::new();
    let mut chunk = Vec::new();
    let mut size = 0;
    for (item_size, item) in items {
        if !chunk.is_empty() && (chunk.len() == max_items || size + item_size > max_size) {
            chunks.push(std::mem::take(&mut chunk));
            size = 0;
        }
        size += item_size;
        chunk.push(item);
    }
    if !chunk.is_empty() {
        chunks.push(chunk);
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_hold_at_most_their_count_and_size_and_keep_the_order() {
        let items = vec![(5, 'a'), (5, 'b'), (5, 'c'), (20, 'd'), (1, 'e'), (1, 'f')];
        assert_eq!(
            chunks_within(items, 2, 10),
            [vec!['a', 'b'], vec!['c'], vec!['d'], vec!['e', 'f']]
        );
    }

    fn result(name: &str, stdout_bytes: usize) -> ResultInput {
        ResultInput {
            name: name.to_owned(),
            status: "passed".to_owned(),
            stdout: (stdout_bytes > 0).then(|| "o".repeat(stdout_bytes)),
            ..ResultInput::default()
        }
    }

    #[test]
    fn batches_hold_at_most_a_thousand_results() {
        let results = (0..2500).map(|i| result(&i.to_string(), 0)).collect();
        let sizes: Vec<usize> = batches(results).unwrap().iter().map(Vec::len).collect();
        assert_eq!(sizes, [1000, 1000, 500]);
    }

    #[test]
    fn batches_hold_at_most_eight_mebibytes_of_json() {
        let results = (0..10).map(|i| result(&i.to_string(), 3 << 20)).collect();
        let sizes: Vec<usize> = batches(results).unwrap().iter().map(Vec::len).collect();
        assert_eq!(sizes, [2, 2, 2, 2, 2]);
    }

    #[test]
    fn no_results_make_no_batch() {
        assert!(batches(Vec::new()).unwrap().is_empty());
    }
}
