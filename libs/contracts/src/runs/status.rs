//! The status words of results and runs, as the API spells them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A word that is not one of a status type's values. It lists the accepted ones so the
/// client can fix the request without reading docs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown status `{given}`: expected one of {accepted}")]
pub struct UnknownStatus {
    given: String,
    accepted: &'static str,
}

/// The outcome of one attempt of one test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum ResultStatus {
    Passed,
    Failed,
    Skipped,
    /// The test could not run to a verdict: setup broke, it crashed, it timed out.
    Errored,
}

impl ResultStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            ResultStatus::Passed => "passed",
            ResultStatus::Failed => "failed",
            ResultStatus::Skipped => "skipped",
            ResultStatus::Errored => "errored",
        }
    }

    /// Failed or errored: the outcomes a later passing attempt turns into a flake.
    pub const fn is_failure(self) -> bool {
        matches!(self, ResultStatus::Failed | ResultStatus::Errored)
    }
}

impl FromStr for ResultStatus {
    type Err = UnknownStatus;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "passed" => Ok(ResultStatus::Passed),
            "failed" => Ok(ResultStatus::Failed),
            "skipped" => Ok(ResultStatus::Skipped),
            "errored" => Ok(ResultStatus::Errored),
            _ => Err(UnknownStatus {
                given: text.to_owned(),
                accepted: "passed, failed, skipped, errored",
            }),
        }
    }
}

impl fmt::Display for ResultStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a run stands. See [`RunStatus::on_finish`] for how a finished run is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Running,
    Passed,
    Failed,
    Interrupted,
}

impl RunStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Passed => "passed",
            RunStatus::Failed => "failed",
            RunStatus::Interrupted => "interrupted",
        }
    }
}

impl FromStr for RunStatus {
    type Err = UnknownStatus;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "running" => Ok(RunStatus::Running),
            "passed" => Ok(RunStatus::Passed),
            "failed" => Ok(RunStatus::Failed),
            "interrupted" => Ok(RunStatus::Interrupted),
            _ => Err(UnknownStatus {
                given: text.to_owned(),
                accepted: "running, passed, failed, interrupted",
            }),
        }
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_statuses_round_trip_through_their_words() {
        for status in [
            ResultStatus::Passed,
            ResultStatus::Failed,
            ResultStatus::Skipped,
            ResultStatus::Errored,
        ] {
            assert_eq!(status.as_str().parse::<ResultStatus>(), Ok(status));
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("\"{status}\""));
            assert_eq!(serde_json::from_str::<ResultStatus>(&json).unwrap(), status);
        }
    }

    #[test]
    fn an_unknown_result_status_lists_the_accepted_ones() {
        let err = "PASS".parse::<ResultStatus>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown status `PASS`: expected one of passed, failed, skipped, errored"
        );
    }

    #[test]
    fn run_statuses_round_trip_through_their_words() {
        for status in [
            RunStatus::Running,
            RunStatus::Passed,
            RunStatus::Failed,
            RunStatus::Interrupted,
        ] {
            assert_eq!(status.as_str().parse::<RunStatus>(), Ok(status));
            assert_eq!(
                serde_json::to_string(&status).unwrap(),
                format!("\"{status}\"")
            );
        }
        assert!("done".parse::<RunStatus>().is_err());
    }
}
