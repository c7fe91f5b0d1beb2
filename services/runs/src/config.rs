use std::time::Duration;

use verdict_bus::BusSettings;
use verdict_settings::{Env, SettingError};
use verdict_store::StoreSettings;

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
}

impl Settings {
    pub fn from_env(env: &Env) -> Result<Self, SettingError> {
        Ok(Self {
            bus: BusSettings::from_env(env, "verdict-runs")?,
            store: StoreSettings::from_env(env, "runs")?,
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
}
