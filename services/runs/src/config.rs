use std::time::Duration;

use verdict_bus::BusSettings;
use verdict_settings::{Env, SettingError};
use verdict_store::{Attached, StoreSettings};

/// Everything the runs service is configured with, read once at start.
#[derive(Debug, Clone)]
pub struct Settings {
    pub bus: BusSettings,
    pub store: StoreSettings,
    /// `VERDICT_RUN_TIMEOUT`, default 6h: a running run without any activity for this
    /// long becomes `interrupted`.
    pub run_timeout: Duration,
    /// `VERDICT_RETENTION`, default 90d: runs started longer ago are deleted with their
    /// results and artifacts. `0s` keeps everything.
    pub retention: Duration,
    /// `VERDICT_INGEST_ACK_WAIT`, default 10s: how long a delivered ingest message may
    /// stay unacknowledged before JetStream delivers it again (after a crash, say).
    pub ingest_ack_wait: Duration,
    /// `VERDICT_INGEST_MAX_BYTES`, default 8 GiB: the most accepted-but-unapplied data
    /// the ingest stream holds; beyond it the gateway answers 503 until runs catches up.
    pub ingest_max_bytes: i64,
    /// `VERDICT_STREAM_REPLICAS`, default 1.
    pub replicas: usize,
    /// `VERDICT_HOUSEKEEPING_EVERY`, default 60s: how often timeouts and retention run.
    pub housekeeping_every: Duration,
    /// `VERDICT_IMPORT_ATTEMPTS` and `VERDICT_IMPORT_BACKOFF`: how often an import whose
    /// report cannot be read or stored is tried before it fails.
    pub import_retries: ImportRetries,
}

/// Bounded retries of an import, with pauses doubling from `backoff` up to
/// [`ImportRetries::MAX_PAUSE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportRetries {
    /// Attempts before the import fails, default 10.
    pub attempts: u32,
    /// The pause after the first attempt, default 2s.
    pub backoff: Duration,
}

impl ImportRetries {
    pub const MAX_PAUSE: Duration = Duration::from_secs(300);

    /// The pause after attempt `attempt` (from 1).
    pub fn pause_after(&self, attempt: u32) -> Duration {
        let doubled = self
            .backoff
            .saturating_mul(1 << attempt.saturating_sub(1).min(16));
        doubled.min(Self::MAX_PAUSE)
    }
}

/// The runs database with its text index attached: a file beside it, named after it
/// (`runs.db` gives `runs-text.db`), written by the text indexer.
fn with_text_index(mut store: StoreSettings) -> StoreSettings {
    let stem = store
        .path
        .file_stem()
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_else(|| "runs".into());
    let name = match store.path.extension() {
        Some(extension) => format!("{stem}-text.{}", extension.to_string_lossy()),
        None => format!("{stem}-text"),
    };
    store.attached.push(Attached {
        schema: crate::store::text::SCHEMA,
        path: store.path.with_file_name(name),
    });
    store
}

impl Settings {
    pub fn from_env(env: &Env) -> Result<Self, SettingError> {
        Ok(Self {
            bus: BusSettings::from_env(env, "verdict-runs")?,
            store: with_text_index(StoreSettings::from_env(env, "runs")?),
            run_timeout: env.duration("VERDICT_RUN_TIMEOUT", Duration::from_secs(6 * 3600))?,
            retention: env.duration("VERDICT_RETENTION", Duration::from_secs(90 * 86_400))?,
            ingest_ack_wait: env.duration("VERDICT_INGEST_ACK_WAIT", Duration::from_secs(10))?,
            ingest_max_bytes: env.parse(
                "VERDICT_INGEST_MAX_BYTES",
                verdict_contracts::streams::INGEST.max_bytes,
            )?,
            replicas: env.parse("VERDICT_STREAM_REPLICAS", 1)?,
            housekeeping_every: env
                .duration("VERDICT_HOUSEKEEPING_EVERY", Duration::from_secs(60))?,
            import_retries: ImportRetries {
                attempts: match env.parse::<u32>("VERDICT_IMPORT_ATTEMPTS", 10)? {
                    0 => {
                        return Err(SettingError {
                            name: "VERDICT_IMPORT_ATTEMPTS".into(),
                            value: "0".into(),
                            reason: "an import is tried at least once".into(),
                        })
                    }
                    attempts => attempts,
                },
                backoff: env.duration("VERDICT_IMPORT_BACKOFF", Duration::from_secs(2))?,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_time_out_after_six_hours_and_are_kept_ninety_days_by_default() {
        let settings = Settings::from_env(&Env::from_pairs::<&str, &str>([])).unwrap();
        assert_eq!(settings.run_timeout, Duration::from_secs(21_600));
        assert_eq!(settings.retention, Duration::from_secs(7_776_000));
    }

    #[test]
    fn the_text_index_is_a_file_beside_the_runs_database_named_after_it() {
        let text_index = |pairs: [(&str, &str); 1]| {
            let settings = Settings::from_env(&Env::from_pairs(pairs)).unwrap();
            settings.store.attached[0].path.clone()
        };
        assert_eq!(
            text_index([("VERDICT_DATA_DIR", "/srv/verdict")]),
            std::path::PathBuf::from("/srv/verdict/runs-text.db")
        );
        assert_eq!(
            text_index([("VERDICT_RUNS_DB", "/fast/results.sqlite")]),
            std::path::PathBuf::from("/fast/results-text.sqlite")
        );
    }

    #[test]
    fn import_retries_pause_twice_as_long_each_time_up_to_five_minutes() {
        let retries = Settings::from_env(&Env::from_pairs::<&str, &str>([]))
            .unwrap()
            .import_retries;
        assert_eq!(retries.attempts, 10);
        let pauses: Vec<u64> = (1..=10)
            .map(|attempt| retries.pause_after(attempt).as_secs())
            .collect();
        assert_eq!(pauses, [2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
    }
}
