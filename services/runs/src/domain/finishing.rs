//! When a run finishes. A finish of the whole run (one without a shard) ends it; with
//! shards, the run ends once every shard that joined has finished, and no sooner than
//! the number of shards the build announced. Either way it waits for the imports into
//! the run that are still being read, so a finish stays ordered after every report
//! accepted before it.

use super::{finished_status, FinishReason};
use verdict_contracts::runs::{Counts, RunStatus};

/// What a run has been told about its end so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Finishing {
    /// How many shards the build announced, if it did.
    pub shards_expected: Option<u32>,
    pub shards_joined: u32,
    pub shards_finished: u32,
    /// A finish without a shard arrived: the whole run is to finish.
    pub requested: bool,
    /// That finish said `interrupted`.
    pub interrupted: bool,
    /// The latest time any finish (of the run or of a shard) gave.
    pub last_finish_at: Option<i64>,
}

impl Finishing {
    /// Whether the run is complete, with `pending_imports` imports into it still to do.
    pub fn is_complete(&self, pending_imports: u32) -> bool {
        if pending_imports > 0 {
            return false;
        }
        let shards_done = self.shards_joined > 0
            && self.shards_finished >= self.shards_joined
            && self.shards_finished >= self.shards_expected.unwrap_or(0);
        self.requested || shards_done
    }

    /// Why the run ends; `shard_interrupted` tells whether any shard finished
    /// interrupted.
    pub fn reason(&self, shard_interrupted: bool) -> FinishReason {
        if self.interrupted || shard_interrupted {
            FinishReason::Interrupted
        } else {
            FinishReason::Completed
        }
    }

    /// The status the run ends with; `shard_interrupted` tells whether any shard
    /// finished interrupted.
    pub fn status(&self, counts: &Counts, shard_interrupted: bool) -> RunStatus {
        finished_status(counts, self.reason(shard_interrupted))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn shards(expected: Option<u32>, joined: u32, finished: u32) -> Finishing {
        Finishing {
            shards_expected: expected,
            shards_joined: joined,
            shards_finished: finished,
            ..Finishing::default()
        }
    }

    #[test]
    fn a_run_without_shards_finishes_when_asked_to() {
        assert!(!Finishing::default().is_complete(0));
        let asked = Finishing {
            requested: true,
            ..Finishing::default()
        };
        assert!(asked.is_complete(0));
    }

    #[test]
    fn a_sharded_run_finishes_once_every_shard_that_joined_has() {
        assert!(!shards(None, 3, 2).is_complete(0));
        assert!(shards(None, 3, 3).is_complete(0));
    }

    #[test]
    fn an_announced_number_of_shards_holds_the_run_open_until_that_many_finished() {
        assert!(!shards(Some(4), 2, 2).is_complete(0));
        assert!(!shards(Some(4), 4, 3).is_complete(0));
        assert!(shards(Some(4), 4, 4).is_complete(0));
        assert!(
            !shards(Some(4), 5, 4).is_complete(0),
            "a fifth shard joined"
        );
    }

    #[test]
    fn a_finish_of_the_whole_run_ends_it_whatever_its_shards() {
        let asked = Finishing {
            requested: true,
            ..shards(Some(4), 2, 1)
        };
        assert!(asked.is_complete(0));
    }

    #[test]
    fn imports_still_being_read_hold_any_finish_back() {
        assert!(!shards(None, 1, 1).is_complete(1));
        let asked = Finishing {
            requested: true,
            ..Finishing::default()
        };
        assert!(!asked.is_complete(2));
    }

    #[test]
    fn an_interrupted_shard_or_finish_makes_a_run_without_failures_interrupted() {
        let clean = Counts {
            total: 1,
            passed: 1,
            ..Counts::default()
        };
        assert_eq!(
            Finishing::default().status(&clean, false),
            RunStatus::Passed
        );
        assert_eq!(
            Finishing::default().status(&clean, true),
            RunStatus::Interrupted
        );
        let interrupted = Finishing {
            interrupted: true,
            ..Finishing::default()
        };
        assert_eq!(interrupted.status(&clean, false), RunStatus::Interrupted);
        let failed = Counts { failed: 1, ..clean };
        assert_eq!(interrupted.status(&failed, false), RunStatus::Failed);
    }

    proptest! {
        /// Shards finishing one by one, in any number, end the run exactly at the last
        /// one (and not before the announced number).
        #[test]
        fn the_run_ends_exactly_when_the_last_shard_finishes(
            joined in 1u32..20, expected in proptest::option::of(1u32..20)
        ) {
            let target = joined.max(expected.unwrap_or(0));
            for finished in 0..=joined {
                let mut finishing = shards(expected, joined, finished);
                let complete = finishing.is_complete(0);
                prop_assert_eq!(complete, finished == joined && finished >= target);
                finishing.requested = true;
                prop_assert!(finishing.is_complete(0));
            }
        }
    }
}
