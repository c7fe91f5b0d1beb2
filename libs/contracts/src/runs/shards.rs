//! One run for a CI build that runs in parallel shards: the run is found (or created) by
//! its build key, each shard joins it under a name of its own and finishes it, and the
//! run finishes once every shard that joined has finished (and, when the build said how
//! many shards it has, once that many have).

use serde::{Deserialize, Serialize};

use crate::ids::RunId;

/// The longest build key, in bytes.
pub const MAX_BUILD_KEY_BYTES: usize = 255;
/// The longest shard name, in bytes.
pub const MAX_SHARD_BYTES: usize = 255;
/// The most shards one run takes (and the largest `shards` a build may announce).
pub const MAX_SHARDS: u32 = 1000;

/// Checks a build key or a shard name: 1 to `limit` bytes, not blank, no control
/// characters (it shows in logs and URLs). The message names no field; callers add it.
pub fn check_label(value: &str, limit: usize) -> Result<(), String> {
    if value.trim().is_empty() {
        return Err("must not be empty".into());
    }
    if value.len() > limit {
        return Err(format!(
            "must be at most {limit} bytes, got {}",
            value.len()
        ));
    }
    if value.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(())
}

/// Where a sharded run's shards stand.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ShardCounts {
    /// How many shards the build announced (`shards`), if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<u32>,
    /// Shards that joined the run.
    pub joined: u32,
    /// Shards that finished.
    pub finished: u32,
}

/// Where one shard stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ShardStatus {
    Running,
    Finished,
    /// Finished with `status: "interrupted"`.
    Interrupted,
}

/// One shard of a run, as `GET /runs/{run}/shards/{shard}` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunShard {
    pub run_id: RunId,
    pub shard: String,
    pub status: ShardStatus,
    pub joined_at: String,
    pub finished_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardRef {
    pub run_id: RunId,
    pub shard: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_bounded_printable_text() {
        assert!(check_label("github-123-1", MAX_BUILD_KEY_BYTES).is_ok());
        assert!(check_label("shard 2/4", MAX_SHARD_BYTES).is_ok());
        assert!(check_label(" ", 10).unwrap_err().contains("empty"));
        assert!(check_label("a\nb", 10).unwrap_err().contains("control"));
        assert!(check_label("abcdef", 5)
            .unwrap_err()
            .contains("at most 5 bytes"));
    }

    #[test]
    fn counts_without_an_announced_number_leave_it_out() {
        let counts = ShardCounts {
            expected: None,
            joined: 2,
            finished: 1,
        };
        assert_eq!(
            serde_json::to_value(counts).unwrap(),
            serde_json::json!({"joined": 2, "finished": 1})
        );
    }
}
