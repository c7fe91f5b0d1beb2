//! The transactional outbox: a message other services must get about a change (a run
//! deleted: its artifacts go too) is written in the change's own transaction, then
//! relayed to JetStream in order, retried until JetStream has it, and only then
//! removed. So a committed change always reaches the others, however long NATS is away
//! and across restarts, and nothing is told of a change that did not commit.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use verdict_contracts::events::Event;
use verdict_contracts::tasks::Task;
use verdict_store::rusqlite::Transaction;

use crate::context::Runs;
use crate::store::{self, OutboxRow};
use crate::Error;

/// Messages relayed per read of the outbox.
const PER_READ: u32 = 100;
/// The first pause after JetStream refused a message; it doubles up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(200);
const MAX_PAUSE: Duration = Duration::from_secs(30);
/// How often the relay looks even when nobody woke it (a wake-up lost to a crash
/// between commit and notify is covered by the read at start, this is the backstop).
const BACKSTOP: Duration = Duration::from_secs(30);

/// Wakes the relay after a transaction that wrote to the outbox committed.
#[derive(Clone, Default)]
pub struct Outbox {
    wakeup: Arc<Notify>,
}

impl Outbox {
    /// Writes `event` into the outbox within `tx`.
    pub fn event(tx: &Transaction<'_>, event: &Event, now: i64) -> Result<(), Error> {
        Self::message(tx, &event.subject(), &serde_json::to_vec(event)?, now)
    }

    /// Writes `task` into the outbox within `tx`.
    pub fn task(tx: &Transaction<'_>, task: &Task, now: i64) -> Result<(), Error> {
        Self::message(tx, task.subject(), &serde_json::to_vec(task)?, now)
    }

    fn message(tx: &Transaction<'_>, subject: &str, payload: &[u8], now: i64) -> Result<(), Error> {
        // Unique for ever: JetStream drops a message whose id it saw in the last two
        // minutes, so a reused row id would lose a message.
        let message_id = format!("runs-outbox-{}", uuid::Uuid::now_v7().simple());
        store::enqueue(tx, &message_id, subject, payload, now)?;
        Ok(())
    }

    /// Tells the relay that committed messages wait.
    pub fn wake(&self) {
        self.wakeup.notify_one();
    }
}

/// Relays the outbox until `shutdown`.
pub async fn relay(runs: Runs, outbox: Outbox, shutdown: CancellationToken) {
    let mut pause = FIRST_PAUSE;
    loop {
        let waiting = runs
            .store
            .read(|conn| Ok::<_, Error>(store::outbox(conn, PER_READ)?))
            .await;
        let rest = match waiting {
            Ok(rows) if rows.is_empty() => Rest::Idle,
            Ok(rows) => match relay_rows(&runs, rows).await {
                Ok(()) => Rest::No,
                Err(err) => {
                    tracing::warn!(error = %err, ?pause, "the outbox could not be relayed; retrying");
                    Rest::Pause
                }
            },
            Err(err) => {
                tracing::error!(error = %err, "could not read the outbox");
                Rest::Pause
            }
        };
        let wait = match rest {
            Rest::No => {
                pause = FIRST_PAUSE;
                continue;
            }
            Rest::Idle => {
                pause = FIRST_PAUSE;
                BACKSTOP
            }
            Rest::Pause => {
                let wait = pause;
                pause = (pause * 2).min(MAX_PAUSE);
                wait
            }
        };
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = outbox.wakeup.notified(), if matches!(rest, Rest::Idle) => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}

enum Rest {
    No,
    Idle,
    Pause,
}

/// Publishes each row in order and removes it once JetStream has it; stops at the
/// first refusal, so order is kept.
async fn relay_rows(runs: &Runs, rows: Vec<OutboxRow>) -> Result<(), Error> {
    for row in rows {
        runs.bus
            .publish_durable(&row.subject, row.payload.into(), &row.message_id)
            .await?;
        let id = row.id;
        runs.store
            .write(move |conn| Ok::<_, Error>(store::relayed(conn, id)?))
            .await?;
    }
    Ok(())
}
