//! The JetStream streams Verdict relies on. The bus library creates them idempotently;
//! their names and subjects are defined here and nowhere else.

use std::time::Duration;

/// Where a stream keeps its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    File,
    Memory,
}

/// When a stream lets go of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retention {
    /// When a limit (age, bytes) is reached.
    Limits,
    /// When every consumer has acknowledged it. A message published while no consumer
    /// exists is dropped at once, so such a stream names its [`StreamSpec::keepers`].
    Interest,
    /// When its one consumer has acknowledged it; kept however long that takes.
    WorkQueue,
}

/// What a full stream does with a new message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Discard {
    /// Drops its oldest messages to make room: for data kept elsewhere too.
    Old,
    /// Refuses the new message, so its publisher knows: for data nobody else holds.
    New,
}

/// The shape of one stream. Limits bound bytes, and age where losing old messages is
/// harmless, so a stream can never fill the disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSpec {
    pub name: &'static str,
    pub subjects: &'static [&'static str],
    /// Zero keeps messages however old they are.
    pub max_age: Duration,
    pub max_bytes: i64,
    pub retention: Retention,
    pub discard: Discard,
    /// Durable consumers that exist whenever the stream does: created with it by
    /// whoever creates it, so an interest stream never drops a message for lack of them.
    pub keepers: &'static [&'static str],
    pub storage: Storage,
    /// How long JetStream remembers `Nats-Msg-Id`s to drop a publisher's retries.
    pub duplicate_window: Duration,
    /// Stored messages are published again, by the server, from the first subject
    /// pattern to the second: subscribers there see only what the stream accepted.
    pub republish: Option<(&'static str, &'static str)>,
}

const DAY: Duration = Duration::from_secs(24 * 60 * 60);
const GIB: i64 = 1 << 30;

/// Durable ingest: result batches and run finishes, consumed by runs. Accepted data
/// lives here, and only here, until the runs service has committed it: a message goes
/// once runs acknowledged it, never because of its age, and a full stream refuses new
/// messages (the gateway answers 503) rather than dropping accepted ones.
///
/// Interest retention, because it is what a stream that kept applied messages (as
/// this one did before) can be changed to in place; [`INGEST_CONSUMER`] is its keeper.
pub const INGEST: StreamSpec = StreamSpec {
    name: "VERDICT_INGEST",
    subjects: &["verdict.ingest.>"],
    max_age: Duration::ZERO,
    max_bytes: 8 * GIB,
    retention: Retention::Interest,
    discard: Discard::New,
    keepers: &[INGEST_CONSUMER],
    storage: Storage::File,
    duplicate_window: Duration::from_secs(2 * 60),
    republish: None,
};

/// The runs service's durable consumer of [`INGEST`]: one per runs deployment, so a
/// restarted or upgraded runs service resumes where the previous one stopped.
pub const INGEST_CONSUMER: &str = "runs-ingest";

/// Work a service owes because of what another service did (today: deleting the
/// artifacts of a deleted run), one subject per kind of task
/// (`verdict.task.<service>.<task>`). A task stays until its one consumer has done it,
/// however long that service is away; a full stream refuses new tasks, and their
/// publisher (an outbox) tries again.
pub const TASKS: StreamSpec = StreamSpec {
    name: "VERDICT_TASKS",
    subjects: &["verdict.task.>"],
    max_age: Duration::ZERO,
    // Tasks are a few hundred bytes: millions fit. JetStream reserves every stream's
    // limit on disk when it is created, so limits stay no larger than needed.
    max_bytes: 256 << 20,
    retention: Retention::WorkQueue,
    discard: Discard::New,
    keepers: &[],
    storage: Storage::File,
    duplicate_window: Duration::from_secs(2 * 60),
    republish: None,
};

/// Run events kept for live viewers that reconnect and replay what they missed.
pub const EVENTS: StreamSpec = StreamSpec {
    name: "VERDICT_EVENTS",
    subjects: &["verdict.ev.>"],
    max_age: DAY,
    max_bytes: 2 * GIB,
    retention: Retention::Limits,
    discard: Discard::Old,
    keepers: &[],
    storage: Storage::File,
    duplicate_window: Duration::from_secs(2 * 60),
    republish: None,
};

/// Live frames: each channel's events with their `seq`, one subject per channel, so a
/// viewer that reconnects replays what it missed and realtime replicas agree on `seq`.
///
/// Gateways watch the republished copies (`verdict.view.>`), never the published
/// subjects: a frame a racing replica published but the stream refused is delivered to
/// plain subscribers of its subject, and must reach no viewer.
pub const LIVE: StreamSpec = StreamSpec {
    name: "VERDICT_LIVE",
    subjects: &["verdict.live.>"],
    max_age: DAY,
    max_bytes: 2 * GIB,
    retention: Retention::Limits,
    discard: Discard::Old,
    keepers: &[],
    storage: Storage::File,
    duplicate_window: Duration::from_secs(2 * 60),
    republish: Some(("verdict.live.>", "verdict.view.>")),
};

/// A JetStream key-value bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketSpec {
    pub name: &'static str,
    /// Entries expire after this long.
    pub max_age: Duration,
    pub max_bytes: i64,
}

/// Revocations of sessions, users and API tokens. Every gateway watches it, so a
/// revocation reaches all of them at once and a gateway that starts later still sees
/// it. Entries outlive every access token they can concern (access tokens last at most
/// a day).
pub const REVOCATIONS: BucketSpec = BucketSpec {
    name: "VERDICT_REVOCATIONS",
    max_age: DAY,
    max_bytes: 256 << 20,
};

impl StreamSpec {
    /// The same stream with another byte limit (an operator's setting).
    pub fn with_max_bytes(&self, max_bytes: i64) -> StreamSpec {
        StreamSpec {
            max_bytes,
            ..self.clone()
        }
    }
}

/// Every stream, in creation order.
pub const ALL: [&StreamSpec; 4] = [&INGEST, &TASKS, &EVENTS, &LIVE];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_subjects_do_not_overlap() {
        let subjects: Vec<_> = ALL.iter().flat_map(|s| s.subjects.iter()).collect();
        let prefixes: Vec<_> = subjects.iter().map(|s| s.trim_end_matches(".>")).collect();
        for (i, a) in prefixes.iter().enumerate() {
            for b in prefixes.iter().skip(i + 1) {
                assert!(!a.starts_with(b) && !b.starts_with(a), "{a} overlaps {b}");
            }
        }
    }

    #[test]
    fn streams_that_hold_the_only_copy_refuse_rather_than_drop() {
        for spec in [&INGEST, &TASKS] {
            assert_eq!(spec.discard, Discard::New, "{}", spec.name);
            assert_eq!(spec.max_age, Duration::ZERO, "{}", spec.name);
        }
    }

    #[test]
    fn interest_streams_name_a_keeper() {
        for spec in ALL {
            if spec.retention == Retention::Interest {
                assert!(!spec.keepers.is_empty(), "{}", spec.name);
            }
        }
    }

    #[test]
    fn republished_copies_are_not_captured_by_any_stream() {
        for spec in ALL {
            let Some((_, destination)) = spec.republish else {
                continue;
            };
            let destination = destination.trim_end_matches(".>");
            for stream in ALL {
                for subject in stream.subjects {
                    assert!(!destination.starts_with(subject.trim_end_matches(".>")));
                }
            }
        }
    }

    #[test]
    fn request_subjects_are_not_captured_by_any_stream() {
        let request = crate::ServiceName::Runs.subject_prefix();
        for stream in ALL {
            for subject in stream.subjects {
                assert!(!request.starts_with(subject.trim_end_matches(".>")));
            }
        }
    }
}
