//! How results add up to a run's counters and status.
//!
//! A run counts tests, not attempts: each test contributes once, by the status of its
//! latest attempt, and counts as flaky too when that latest attempt passed after an
//! earlier one failed or errored. The store keeps one [`TestOutcome`] per test of a run
//! and the run's [`Counts`]; [`TestOutcome::record`] turns a new attempt into the
//! counter changes, so a write costs O(1) whatever the run's size.

use verdict_contracts::runs::{Attempt, Counts, CountsDelta, ResultStatus, RunStatus};

/// What a run knows about one of its tests after any number of attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TestOutcome {
    /// The highest attempt reported so far.
    pub attempt: Attempt,
    /// The status of that attempt; a resend of the same attempt replaces it.
    pub status: ResultStatus,
    /// Whether an attempt before `attempt` failed or errored.
    pub failed_earlier: bool,
}

/// The new outcome of a test and how the run's counters move because of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutcomeChange {
    pub outcome: TestOutcome,
    pub delta: CountsDelta,
}

impl TestOutcome {
    /// Passed in the end, after failing first.
    pub fn is_flaky(&self) -> bool {
        self.status == ResultStatus::Passed && self.failed_earlier
    }

    /// Folds one attempt into the test's outcome. Attempts may arrive in any order: a
    /// later attempt takes over the status, an earlier one can only reveal that the test
    /// failed before. Re-sending the latest attempt with another status corrects it.
    pub fn record(
        previous: Option<TestOutcome>,
        attempt: Attempt,
        status: ResultStatus,
    ) -> OutcomeChange {
        let outcome = match previous {
            None => TestOutcome {
                attempt,
                status,
                failed_earlier: false,
            },
            Some(prev) if attempt > prev.attempt => TestOutcome {
                attempt,
                status,
                failed_earlier: prev.failed_earlier || prev.status.is_failure(),
            },
            Some(prev) if attempt == prev.attempt => TestOutcome { status, ..prev },
            Some(prev) => TestOutcome {
                failed_earlier: prev.failed_earlier || status.is_failure(),
                ..prev
            },
        };
        let before = previous.map(contribution).unwrap_or_default();
        OutcomeChange {
            outcome,
            delta: CountsDelta::between(&before, &contribution(outcome)),
        }
    }
}

/// The counts of a set of results on their own (an import into a run that holds other
/// results too), counted as a run counts them.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    outcomes: std::collections::HashMap<String, TestOutcome>,
    counts: Counts,
}

impl Tally {
    pub fn add(&mut self, test_key: &str, attempt: Attempt, status: ResultStatus) {
        let previous = self.outcomes.get(test_key).copied();
        let change = TestOutcome::record(previous, attempt, status);
        self.outcomes.insert(test_key.to_owned(), change.outcome);
        self.counts.apply(change.delta);
    }

    pub fn counts(&self) -> Counts {
        self.counts
    }
}

/// What one test contributes to its run's counters.
fn contribution(outcome: TestOutcome) -> Counts {
    let mut counts = Counts {
        total: 1,
        flaky: u64::from(outcome.is_flaky()),
        ..Counts::default()
    };
    *match outcome.status {
        ResultStatus::Passed => &mut counts.passed,
        ResultStatus::Failed => &mut counts.failed,
        ResultStatus::Skipped => &mut counts.skipped,
        ResultStatus::Errored => &mut counts.errored,
    } = 1;
    counts
}

/// Why a run stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// The client finished it normally.
    Completed,
    /// The client finished it with `status: "interrupted"`, or it outlived its timeout.
    Interrupted,
}

/// The status a run takes when it finishes: `failed` if any test's latest attempt
/// failed or errored (a failure no retry recovered) and the test was not quarantined,
/// else `interrupted` if it was cut short, else `passed`. A failure outranks the
/// interruption because it is a definite finding, while an interruption only says the
/// verdict is incomplete.
pub fn finished_status(counts: &Counts, reason: FinishReason) -> RunStatus {
    let failures = counts.failed + counts.errored;
    if failures > counts.quarantined {
        RunStatus::Failed
    } else if reason == FinishReason::Interrupted {
        RunStatus::Interrupted
    } else {
        RunStatus::Passed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;
    use ResultStatus::{Errored, Failed, Passed, Skipped};

    fn attempt(n: u32) -> Attempt {
        Attempt::new(n).unwrap()
    }

    /// Runs attempts of tests (by index) through `record`, as the store would.
    fn count(attempts: &[(usize, u32, ResultStatus)]) -> Counts {
        let mut outcomes: HashMap<usize, TestOutcome> = HashMap::new();
        let mut counts = Counts::default();
        for &(test, number, status) in attempts {
            let change = TestOutcome::record(outcomes.get(&test).copied(), attempt(number), status);
            outcomes.insert(test, change.outcome);
            counts.apply(change.delta);
        }
        counts
    }

    #[test]
    fn each_test_counts_once_by_its_latest_attempt() {
        let counts = count(&[
            (0, 1, Passed),
            (1, 1, Failed),
            (2, 1, Skipped),
            (3, 1, Errored),
        ]);
        assert_eq!(
            counts,
            Counts {
                total: 4,
                passed: 1,
                failed: 1,
                skipped: 1,
                errored: 1,
                flaky: 0,
                quarantined: 0
            }
        );
    }

    #[test]
    fn a_failure_recovered_by_a_retry_is_passed_and_flaky() {
        let counts = count(&[(0, 1, Failed), (0, 2, Errored), (0, 3, Passed)]);
        assert_eq!(
            counts,
            Counts {
                total: 1,
                passed: 1,
                flaky: 1,
                ..Counts::default()
            }
        );
        assert_eq!(
            finished_status(&counts, FinishReason::Completed),
            RunStatus::Passed
        );
    }

    #[test]
    fn a_failure_no_retry_recovered_fails_the_run() {
        let counts = count(&[(0, 1, Failed), (0, 2, Failed), (1, 1, Passed)]);
        assert_eq!(
            counts,
            Counts {
                total: 2,
                passed: 1,
                failed: 1,
                ..Counts::default()
            }
        );
        assert_eq!(
            finished_status(&counts, FinishReason::Completed),
            RunStatus::Failed
        );
        assert_eq!(
            finished_status(&counts, FinishReason::Interrupted),
            RunStatus::Failed
        );
    }

    #[test]
    fn failures_of_quarantined_tests_alone_do_not_fail_the_run() {
        let quarantined = Counts {
            total: 3,
            passed: 1,
            failed: 1,
            errored: 1,
            quarantined: 2,
            ..Counts::default()
        };
        assert_eq!(
            finished_status(&quarantined, FinishReason::Completed),
            RunStatus::Passed
        );
        let one_more = Counts {
            failed: 2,
            ..quarantined
        };
        assert_eq!(
            finished_status(&one_more, FinishReason::Completed),
            RunStatus::Failed
        );
    }

    #[test]
    fn an_errored_test_fails_the_run() {
        let counts = count(&[(0, 1, Errored)]);
        assert_eq!(
            finished_status(&counts, FinishReason::Completed),
            RunStatus::Failed
        );
    }

    #[test]
    fn an_interrupted_run_without_failures_is_interrupted() {
        let counts = count(&[(0, 1, Passed), (1, 1, Skipped)]);
        assert_eq!(
            finished_status(&counts, FinishReason::Interrupted),
            RunStatus::Interrupted
        );
        assert_eq!(
            finished_status(&Counts::default(), FinishReason::Completed),
            RunStatus::Passed
        );
    }

    #[test]
    fn a_late_earlier_attempt_still_marks_the_test_flaky() {
        let counts = count(&[(0, 2, Passed), (0, 1, Failed)]);
        assert_eq!(
            counts,
            Counts {
                total: 1,
                passed: 1,
                flaky: 1,
                ..Counts::default()
            }
        );
    }

    #[test]
    fn resending_the_latest_attempt_corrects_it() {
        let counts = count(&[(0, 1, Failed), (0, 1, Passed)]);
        assert_eq!(
            counts,
            Counts {
                total: 1,
                passed: 1,
                ..Counts::default()
            }
        );
    }

    #[test]
    fn a_flaky_test_that_fails_again_is_no_longer_flaky() {
        let counts = count(&[(0, 1, Failed), (0, 2, Passed), (0, 3, Failed)]);
        assert_eq!(
            counts,
            Counts {
                total: 1,
                failed: 1,
                ..Counts::default()
            }
        );
    }

    #[test]
    fn a_tally_counts_its_own_results_as_a_run_would() {
        let mut tally = Tally::default();
        tally.add("a", attempt(1), Failed);
        tally.add("a", attempt(2), Passed);
        tally.add("b", attempt(1), Skipped);
        assert_eq!(
            tally.counts(),
            Counts {
                total: 2,
                passed: 1,
                skipped: 1,
                flaky: 1,
                ..Counts::default()
            }
        );
    }

    #[test]
    fn the_delta_of_a_first_attempt_adds_one_test() {
        let change = TestOutcome::record(None, Attempt::FIRST, Skipped);
        assert_eq!(
            change.delta,
            CountsDelta {
                total: 1,
                skipped: 1,
                ..CountsDelta::default()
            }
        );
    }

    fn status() -> impl Strategy<Value = ResultStatus> {
        prop_oneof![Just(Passed), Just(Failed), Just(Skipped), Just(Errored)]
    }

    proptest! {
        /// Incremental counting agrees with counting from scratch, in any arrival order.
        #[test]
        fn incremental_counts_match_a_recount(
            attempts in prop::collection::vec((0usize..6, 1u32..5, status()), 0..60)
        ) {
            // One report per attempt of a test: corrections are covered by the unit tests.
            let mut seen = std::collections::HashSet::new();
            let attempts: Vec<_> = attempts
                .into_iter()
                .filter(|&(test, number, _)| seen.insert((test, number)))
                .collect();

            let mut expected = Counts::default();
            let mut tests: HashMap<usize, Vec<(u32, ResultStatus)>> = HashMap::new();
            for &(test, number, status) in &attempts {
                tests.entry(test).or_default().push((number, status));
            }
            for runs in tests.values() {
                let &(last, status) = runs.iter().max_by_key(|(number, _)| *number).unwrap();
                let failed_before = runs.iter().any(|&(n, s)| n < last && s.is_failure());
                expected.total += 1;
                match status {
                    Passed => expected.passed += 1,
                    Failed => expected.failed += 1,
                    Skipped => expected.skipped += 1,
                    Errored => expected.errored += 1,
                }
                expected.flaky += u64::from(status == Passed && failed_before);
            }

            let counts = count(&attempts);
            prop_assert_eq!(counts, expected);
            prop_assert_eq!(
                counts.total,
                counts.passed + counts.failed + counts.skipped + counts.errored
            );
            prop_assert!(counts.flaky <= counts.passed);
        }
    }
}
