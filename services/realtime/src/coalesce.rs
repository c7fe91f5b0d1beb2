//! Progress coalescing: a run that reports ten thousand results a second still sends
//! its viewers at most one progress frame per interval, and always the newest counts.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use verdict_contracts::events::Event;
use verdict_contracts::ids::RunId;

/// Runs whose last progress is older than this are forgotten (a run that ends sends
/// `run.finished`, which forgets it at once; this covers runs that never end).
const FORGET_AFTER: Duration = Duration::from_secs(600);

pub struct Coalescer {
    interval: Duration,
    runs: HashMap<RunId, RunProgress>,
}

struct RunProgress {
    last_sent: Instant,
    pending: Option<Event>,
}

impl Coalescer {
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            runs: HashMap::new(),
        }
    }

    /// How often held events should be checked for being due.
    pub fn tick(&self) -> Duration {
        (self.interval / 2).max(Duration::from_millis(5))
    }

    /// A progress event of `run_id`: returned to be sent now, or held (replacing any
    /// older held one) until the run's interval has passed.
    pub fn offer(&mut self, run_id: RunId, event: Event, now: Instant) -> Option<Event> {
        match self.runs.get_mut(&run_id) {
            Some(run) if now.duration_since(run.last_sent) < self.interval => {
                run.pending = Some(event);
                None
            }
            Some(run) => {
                run.last_sent = now;
                run.pending = None;
                Some(event)
            }
            None => {
                self.runs.insert(
                    run_id,
                    RunProgress {
                        last_sent: now,
                        pending: None,
                    },
                );
                Some(event)
            }
        }
    }

    /// The held events whose interval has passed, to be sent now.
    pub fn due(&mut self, now: Instant) -> Vec<Event> {
        let interval = self.interval;
        let mut due = Vec::new();
        self.runs.retain(|_, run| {
            let waited = now.duration_since(run.last_sent);
            if waited >= interval {
                if let Some(event) = run.pending.take() {
                    run.last_sent = now;
                    due.push(event);
                    return true;
                }
            }
            waited < FORGET_AFTER
        });
        due
    }

    /// The run ended: its held progress is superseded by the final counts.
    pub fn forget(&mut self, run_id: RunId) {
        self.runs.remove(&run_id);
    }
}

#[cfg(test)]
mod tests {
    use verdict_contracts::runs::{Counts, RunStatus};

    use super::*;

    const INTERVAL: Duration = Duration::from_millis(100);

    fn the_run() -> RunId {
        "0192a24d-0000-7000-8000-000000000001".parse().unwrap()
    }

    fn progress(passed: u64) -> Event {
        Event::RunProgress {
            project_id: "0192a24d-0000-7000-8000-0000000000ff".parse().unwrap(),
            run_id: the_run(),
            status: RunStatus::Running,
            counts: Counts {
                total: passed,
                passed,
                ..Counts::default()
            },
        }
    }

    #[test]
    fn the_first_progress_of_a_run_is_sent_at_once() {
        let mut coalescer = Coalescer::new(INTERVAL);
        assert_eq!(
            coalescer.offer(the_run(), progress(1), Instant::now()),
            Some(progress(1))
        );
    }

    #[test]
    fn progress_within_the_interval_is_held_and_only_the_newest_is_sent() {
        let mut coalescer = Coalescer::new(INTERVAL);
        let start = Instant::now();
        coalescer.offer(the_run(), progress(1), start);
        assert_eq!(
            coalescer.offer(the_run(), progress(2), start + INTERVAL / 4),
            None
        );
        assert_eq!(
            coalescer.offer(the_run(), progress(3), start + INTERVAL / 2),
            None
        );
        assert!(coalescer.due(start + INTERVAL / 2).is_empty());
        assert_eq!(coalescer.due(start + INTERVAL), vec![progress(3)]);
        assert!(coalescer.due(start + INTERVAL * 3).is_empty());
    }

    #[test]
    fn progress_after_the_interval_is_sent_at_once() {
        let mut coalescer = Coalescer::new(INTERVAL);
        let start = Instant::now();
        coalescer.offer(the_run(), progress(1), start);
        assert_eq!(
            coalescer.offer(the_run(), progress(2), start + INTERVAL),
            Some(progress(2))
        );
    }

    #[test]
    fn a_finished_run_drops_its_held_progress() {
        let mut coalescer = Coalescer::new(INTERVAL);
        let start = Instant::now();
        coalescer.offer(the_run(), progress(1), start);
        coalescer.offer(the_run(), progress(2), start);
        coalescer.forget(the_run());
        assert!(coalescer.due(start + INTERVAL).is_empty());
    }
}
