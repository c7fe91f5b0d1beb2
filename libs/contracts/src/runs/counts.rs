//! A run's counters, as stored and as shown.

use serde::{Deserialize, Serialize};

/// A run's counters: tests by the status of their latest attempt, plus the flaky ones
/// (which are also counted as passed) and, once the run finished, the quarantined ones
/// among the failed and errored (which then do not fail the run).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Counts {
    pub total: u64,
    pub passed: u64,
    pub failed: u64,
    pub skipped: u64,
    pub errored: u64,
    pub flaky: u64,
    /// Failed or errored tests that were quarantined when the run finished.
    #[serde(default)]
    pub quarantined: u64,
}

impl Counts {
    pub fn apply(&mut self, delta: CountsDelta) {
        self.total = self.total.saturating_add_signed(delta.total);
        self.passed = self.passed.saturating_add_signed(delta.passed);
        self.failed = self.failed.saturating_add_signed(delta.failed);
        self.skipped = self.skipped.saturating_add_signed(delta.skipped);
        self.errored = self.errored.saturating_add_signed(delta.errored);
        self.flaky = self.flaky.saturating_add_signed(delta.flaky);
    }
}

/// Signed changes to [`Counts`], ready for `UPDATE … SET passed = passed + ?`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CountsDelta {
    pub total: i64,
    pub passed: i64,
    pub failed: i64,
    pub skipped: i64,
    pub errored: i64,
    pub flaky: i64,
}

impl CountsDelta {
    /// Adds another change to this one, for a batch's total.
    pub fn add(&mut self, other: &CountsDelta) {
        self.total += other.total;
        self.passed += other.passed;
        self.failed += other.failed;
        self.skipped += other.skipped;
        self.errored += other.errored;
        self.flaky += other.flaky;
    }

    /// The change from one test's contribution to another's; both are 0 or 1 per field.
    pub fn between(before: &Counts, after: &Counts) -> CountsDelta {
        let diff = |before: u64, after: u64| i64::from(after > before) - i64::from(before > after);
        CountsDelta {
            total: diff(before.total, after.total),
            passed: diff(before.passed, after.passed),
            failed: diff(before.failed, after.failed),
            skipped: diff(before.skipped, after.skipped),
            errored: diff(before.errored, after.errored),
            flaky: diff(before.flaky, after.flaky),
        }
    }
}
