//! The WAL checkpointer: a connection and a thread of its own that copy committed pages
//! from the write-ahead log into the database file.
//!
//! Left to itself, SQLite checkpoints on whichever connection commits past
//! `wal_autocheckpoint`, which is the writer: its commits then copy pages and wait for
//! the database file's `fsync` (a fifth of the runs service's apply thread under a burst,
//! BENCHMARKS "The drain of a large burst, profiled"). Here that work runs beside the
//! writer, and the writer's own autocheckpoint stays only as a backstop, at a much higher
//! mark, against a log that would grow without end if this thread fell behind.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

/// WAL pages past which the writer checkpoints by itself: about 64 MiB of 4 KiB pages.
pub(crate) const WRITER_BACKSTOP_PAGES: u32 = 16_384;

/// A running checkpointer. Dropping it asks the thread to stop after the checkpoint
/// under way; [`Checkpointer::stop`] also waits for that.
pub(crate) struct Checkpointer {
    stop: mpsc::Sender<()>,
    thread: JoinHandle<()>,
}

impl Checkpointer {
    /// Checkpoints through `conn` (a read-write connection to the database) every
    /// `interval`, never waiting for readers or the writer (`PASSIVE`).
    pub(crate) fn start(conn: Connection, interval: Duration) -> std::io::Result<Self> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || {
                let mut failing = false;
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
                    // Without a schema name the pragma checkpoints every attached file
                    // too. A busy log or a reader holding old pages is not an error:
                    // the result's first column says so, and the next pass goes on.
                    match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                        Ok(()) if failing => {
                            failing = false;
                            tracing::info!("WAL checkpoints work again");
                        }
                        Ok(()) => {}
                        Err(error) if !failing => {
                            failing = true;
                            tracing::warn!(%error, "a WAL checkpoint failed; the writer checkpoints by itself until they work again");
                        }
                        Err(_) => {}
                    }
                }
            })?;
        Ok(Self { stop, thread })
    }

    /// Stops the thread and waits for it, so no checkpoint runs after this returns.
    pub(crate) fn stop(self) {
        drop(self.stop);
        // The thread only runs pragmas, which report failures as errors, not panics.
        let _ = self.thread.join();
    }
}
