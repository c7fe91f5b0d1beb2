//! The one rule for a service's background tasks: a critical task (one the service is
//! useless without, such as a consumer of its work queue) that ends before the service
//! is asked to stop stops the service, which then exits with an error naming it; any
//! other task that fails is logged and the service goes on.

use std::error::Error as StdError;
use std::future::Future;

use tokio::task::{JoinError, JoinSet};
use tokio_util::sync::CancellationToken;

use crate::{BoxError, BusError};

/// What a background task's future may end with: nothing, or a result.
pub trait TaskOutcome: Send + 'static {
    fn into_result(self) -> Result<(), BoxError>;
}

impl TaskOutcome for () {
    fn into_result(self) -> Result<(), BoxError> {
        Ok(())
    }
}

impl<E: StdError + Send + Sync + 'static> TaskOutcome for Result<(), E> {
    fn into_result(self) -> Result<(), BoxError> {
        self.map_err(|err| Box::new(err) as BoxError)
    }
}

/// Why a task ended, as the task set sees it.
#[derive(Debug, thiserror::Error)]
pub enum TaskEnd {
    #[error("it stopped")]
    Stopped,
    #[error("it failed: {0}")]
    Failed(#[source] BoxError),
    #[error("it panicked or was cancelled: {0}")]
    Aborted(#[source] JoinError),
}

struct Ended {
    name: &'static str,
    critical: bool,
    end: Option<TaskEnd>,
}

/// The background tasks of one service. Tasks watch the `work` token given to
/// [`Tasks::run_alongside`] and end once it is cancelled.
pub struct Tasks {
    set: JoinSet<Ended>,
    stop: CancellationToken,
}

impl Tasks {
    /// A task set that cancels `stop` (what the service's serving waits on) when a
    /// critical task ends early.
    pub fn new(stop: CancellationToken) -> Self {
        Self {
            set: JoinSet::new(),
            stop,
        }
    }

    /// Runs a task the service cannot do without.
    pub fn critical<F>(&mut self, name: &'static str, task: F)
    where
        F: Future + Send + 'static,
        F::Output: TaskOutcome,
    {
        self.spawn(name, true, task);
    }

    /// Runs a task whose failure is logged; the service goes on without it.
    pub fn logged<F>(&mut self, name: &'static str, task: F)
    where
        F: Future + Send + 'static,
        F::Output: TaskOutcome,
    {
        self.spawn(name, false, task);
    }

    fn spawn<F>(&mut self, name: &'static str, critical: bool, task: F)
    where
        F: Future + Send + 'static,
        F::Output: TaskOutcome,
    {
        // Spawned twice so that a panic is seen here as a `JoinError`, with its name.
        self.set.spawn(async move {
            let end = match tokio::spawn(task).await {
                Ok(outcome) => match outcome.into_result() {
                    Ok(()) => None,
                    Err(err) => Some(TaskEnd::Failed(err)),
                },
                Err(err) => Some(TaskEnd::Aborted(err)),
            };
            Ended {
                name,
                critical,
                end,
            }
        });
    }

    /// Runs `serving` (which ends once `stop` is cancelled) alongside the tasks. When
    /// it ends, `work` is cancelled and every task is waited for. Returns what `serving`
    /// returned, and the first critical task that ended before `work` was cancelled.
    pub async fn run_alongside<T>(
        mut self,
        serving: impl Future<Output = T>,
        work: CancellationToken,
    ) -> (T, Result<(), BusError>) {
        tokio::pin!(serving);
        let mut stopped = None;
        let served = loop {
            tokio::select! {
                served = &mut serving => break served,
                Some(joined) = self.set.join_next() => {
                    if let Some(failure) = self.settle(joined, &work) {
                        stopped.get_or_insert(failure);
                        self.stop.cancel();
                    }
                }
            }
        };
        work.cancel();
        while let Some(joined) = self.set.join_next().await {
            if let Some(failure) = self.settle(joined, &work) {
                stopped.get_or_insert(failure);
            }
        }
        (served, stopped.map_or(Ok(()), Err))
    }

    /// Logs how a task ended; a critical task that ended while work was wanted is the
    /// service's failure.
    fn settle(
        &self,
        joined: Result<Ended, JoinError>,
        work: &CancellationToken,
    ) -> Option<BusError> {
        let ended = match joined {
            Ok(ended) => ended,
            // The outer task only awaits the inner one: it cannot panic.
            Err(err) => {
                tracing::error!(error = %err, "a background task's supervisor ended");
                return None;
            }
        };
        let early = !work.is_cancelled();
        match (ended.critical && early, ended.end) {
            (true, end) => {
                let end = end.unwrap_or(TaskEnd::Stopped);
                tracing::error!(task = ended.name, error = %end, "a critical task ended; stopping the service");
                Some(BusError::TaskEnded {
                    task: ended.name,
                    source: end,
                })
            }
            (false, Some(end)) => {
                tracing::error!(task = ended.name, error = %end, "a background task ended; the service goes on without it");
                None
            }
            (false, None) => None,
        }
    }
}
