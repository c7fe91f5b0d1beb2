//! The text indexer: keeps the text index (`store::text`, a file of its own) up with the
//! results on a connection and a thread of its own, so the writer, which every result
//! passes through, does not carry it. Search sees a result a moment after its counts
//! do: at most one pause of [`IDLE_PAUSE`] plus a pass.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use verdict_store::rusqlite::Connection;
use verdict_store::{Store, StoreError};

use crate::store::text;
use crate::Error;

/// Results indexed in one transaction: enough that FTS5 writes few segments, few
/// enough that a pass stays well under a second.
const RESULTS_PER_PASS: u64 = 20_000;
/// How long the indexer rests when no note waited.
const IDLE_PAUSE: Duration = Duration::from_millis(100);
/// How long it rests after a pass failed (the index's file locked by another instance
/// for longer than the busy timeout, a full disk).
const FAILED_PAUSE: Duration = Duration::from_secs(1);

/// The indexer's own connection: the runs database read, the index's file written.
#[derive(Clone)]
pub struct TextIndexer {
    conn: Arc<Mutex<Connection>>,
}

impl TextIndexer {
    /// Opens the indexer's connection and makes sure the index's tables exist; before
    /// the service answers searches.
    pub async fn open(store: &Store) -> Result<Self, Error> {
        let store = store.clone();
        let conn = blocking(move || {
            let mut conn = store.side_writer()?;
            text::prepare(&mut conn)?;
            Ok(conn)
        })
        .await?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Indexes noted results until `shutdown`, and lets the writer forget the notes
    /// taken.
    pub async fn run(self, store: Store, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            let pause = match self.pass().await {
                Ok(pass) => {
                    if pass.rebuilt {
                        tracing::info!("the text index was rebuilt from the stored results");
                    }
                    metrics::gauge!(crate::metrics::TEXT_INDEX_RESULTS_WAITING)
                        .set(pass.waiting as f64);
                    if pass.results > 0 {
                        forget(&store, pass.through).await;
                    }
                    // A pass that was not full rests, so that under load the next one
                    // takes more at once: FTS5 writes a segment per transaction and
                    // merges them later, so fewer, larger passes cost less in all.
                    if pass.results >= RESULTS_PER_PASS {
                        continue;
                    }
                    IDLE_PAUSE
                }
                Err(err) => {
                    tracing::warn!(error = %err, "a text index pass failed; it is tried again");
                    FAILED_PAUSE
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => {}
                () = tokio::time::sleep(pause) => {}
            }
        }
    }

    async fn pass(&self) -> Result<text::Pass, Error> {
        let conn = self.conn.clone();
        blocking(move || {
            let mut conn = conn.lock().unwrap_or_else(|p| p.into_inner());
            Ok(text::index_queued(&mut conn, RESULTS_PER_PASS)?)
        })
        .await
    }
}

/// Runs SQLite work on the blocking pool.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|err| Error::Store(StoreError::Task(err)))?
}

/// Lets the writer drop the notes the index holds; one that fails is retried with the
/// next pass's, which covers it.
async fn forget(store: &Store, through: i64) {
    let forgotten = store
        .write(move |conn| Ok::<_, Error>(text::forget_indexed(conn, through)?))
        .await;
    if let Err(err) = forgotten {
        tracing::warn!(error = %err, "the text index's notes could not be forgotten; tried again after the next pass");
    }
}
