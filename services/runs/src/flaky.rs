//! Which tests flip between passing and failing across a window of runs.

use std::collections::HashMap;

use crate::domain::ResultStatus;
use crate::store::OutcomeRow;

/// A test's record over the window, before names are looked up.
#[derive(Debug, Clone, PartialEq)]
pub struct Flakiness {
    /// The test's integer key.
    pub test: i64,
    pub flips: u32,
    pub runs: u32,
    pub flake_rate: f64,
    /// Index in the window (0 = newest) of the latest run the test appeared in.
    pub last_seen: usize,
}

/// `runs` are the window's outcomes, newest first. A flip is a change between passed
/// and failed (or errored) from one run to the next, plus every run in which the test
/// passed only on a retry. Skipped runs neither flip nor break a streak. Tests that never
/// flipped are left out; the rest come flakiest first.
pub fn flaky_tests(runs: &[Vec<OutcomeRow>]) -> Vec<Flakiness> {
    struct Track {
        flips: u32,
        runs: u32,
        last: Option<bool>,
        last_seen: usize,
    }
    let mut tracks: HashMap<i64, Track> = HashMap::new();
    // Oldest first, so "last" is the previous run in time.
    for (age, outcomes) in runs.iter().enumerate().rev() {
        for outcome in outcomes {
            let track = tracks.entry(outcome.test).or_insert(Track {
                flips: 0,
                runs: 0,
                last: None,
                last_seen: age,
            });
            track.runs += 1;
            track.last_seen = age;
            if outcome.status == ResultStatus::Passed && outcome.failed_earlier {
                track.flips += 1;
            }
            let passed = match outcome.status {
                ResultStatus::Passed => true,
                ResultStatus::Failed | ResultStatus::Errored => false,
                ResultStatus::Skipped => continue,
            };
            if track.last.is_some_and(|last| last != passed) {
                track.flips += 1;
            }
            track.last = Some(passed);
        }
    }
    let mut flaky: Vec<Flakiness> = tracks
        .into_iter()
        .filter(|(_, track)| track.flips > 0)
        .map(|(test, track)| Flakiness {
            test,
            flips: track.flips,
            runs: track.runs,
            flake_rate: f64::from(track.flips) / f64::from(track.runs),
            last_seen: track.last_seen,
        })
        .collect();
    flaky.sort_by(|a, b| {
        b.flake_rate
            .total_cmp(&a.flake_rate)
            .then(b.flips.cmp(&a.flips))
            .then(a.test.cmp(&b.test))
    });
    flaky
}

#[cfg(test)]
mod tests {
    use super::*;
    use ResultStatus::{Failed, Passed, Skipped};

    const A: i64 = 1;
    const B: i64 = 2;
    // The rarer flipper has the lower key, so only the flake rate can put it second.
    const RARE: i64 = 3;
    const OFTEN: i64 = 4;

    fn outcome(test: i64, status: ResultStatus, failed_earlier: bool) -> OutcomeRow {
        OutcomeRow {
            test,
            status,
            failed_earlier,
        }
    }

    #[test]
    fn a_test_that_always_passes_or_always_fails_is_not_flaky() {
        let runs = vec![
            vec![outcome(A, Passed, false), outcome(B, Failed, false)],
            vec![outcome(A, Passed, false), outcome(B, Failed, false)],
        ];
        assert!(flaky_tests(&runs).is_empty());
    }

    #[test]
    fn alternating_outcomes_count_every_change() {
        let runs = vec![
            vec![outcome(A, Passed, false)],
            vec![outcome(A, Failed, false)],
            vec![outcome(A, Passed, false)],
        ];
        let flaky = flaky_tests(&runs);
        assert_eq!(flaky[0].flips, 2);
        assert_eq!(flaky[0].runs, 3);
        assert!((flaky[0].flake_rate - 2.0 / 3.0).abs() < 1e-9);
    }

    #[test]
    fn passing_on_retry_is_a_flip_and_skips_do_not_break_a_streak() {
        let runs = vec![
            vec![outcome(A, Passed, true)],
            vec![outcome(A, Skipped, false)],
            vec![outcome(A, Passed, false)],
        ];
        let flaky = flaky_tests(&runs);
        assert_eq!(flaky[0].flips, 1);
        assert_eq!(flaky[0].last_seen, 0);
    }

    #[test]
    fn the_flakiest_test_comes_first() {
        let runs = vec![
            vec![outcome(RARE, Passed, false), outcome(OFTEN, Failed, false)],
            vec![outcome(RARE, Passed, false), outcome(OFTEN, Passed, false)],
            vec![outcome(RARE, Failed, false), outcome(OFTEN, Failed, false)],
            vec![outcome(RARE, Failed, false), outcome(OFTEN, Passed, false)],
        ];
        let tests: Vec<_> = flaky_tests(&runs).into_iter().map(|f| f.test).collect();
        assert_eq!(tests, [OFTEN, RARE]);
    }
}
