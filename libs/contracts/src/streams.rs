//! The JetStream streams Verdict relies on. The bus library creates them idempotently;
//! their names and subjects are defined here and nowhere else.

use std::time::Duration;

/// Where a stream keeps its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    File,
    Memory,
}

/// The shape of one stream. Limits bound both age and bytes so a stream can never
/// fill the disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSpec {
    pub name: &'static str,
    pub subjects: &'static [&'static str],
    pub max_age: Duration,
    pub max_bytes: i64,
    pub storage: Storage,
    /// How long JetStream remembers `Nats-Msg-Id`s to drop a publisher's retries.
    pub duplicate_window: Duration,
    /// Stored messages are published again, by the server, from the first subject
    /// pattern to the second: subscribers there see only what the stream accepted.
    pub republish: Option<(&'static str, &'static str)>,
}

const DAY: Duration = Duration::from_secs(24 * 60 * 60);
const GIB: i64 = 1 << 30;

/// Durable ingest: result batches, run finishes and import jobs, consumed by runs.
/// Accepted data lives here until the runs service has committed it.
pub const INGEST: StreamSpec = StreamSpec {
    name: "VERDICT_INGEST",
    subjects: &["verdict.ingest.>"],
    max_age: Duration::from_secs(7 * 24 * 60 * 60),
    max_bytes: 8 * GIB,
    storage: Storage::File,
    duplicate_window: Duration::from_secs(2 * 60),
    republish: None,
};

/// The runs service's durable consumer of [`INGEST`]: one per runs deployment, so a
/// restarted or upgraded runs service resumes where the previous one stopped.
pub const INGEST_CONSUMER: &str = "runs-ingest";

/// Run events kept for live viewers that reconnect and replay what they missed.
pub const EVENTS: StreamSpec = StreamSpec {
    name: "VERDICT_EVENTS",
    subjects: &["verdict.ev.>"],
    max_age: DAY,
    max_bytes: 2 * GIB,
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

/// Every stream, in creation order.
pub const ALL: [&StreamSpec; 3] = [&INGEST, &EVENTS, &LIVE];

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
