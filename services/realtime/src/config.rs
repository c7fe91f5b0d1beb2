use std::time::Duration;

use verdict_bus::BusSettings;
use verdict_settings::{Env, SettingError};

/// Everything the realtime service is configured with, read once at start. It keeps
/// no database: its state lives in JetStream (`VERDICT_EVENTS`, `VERDICT_LIVE`).
#[derive(Debug, Clone)]
pub struct Settings {
    pub bus: BusSettings,
    /// `VERDICT_STREAM_REPLICAS`, default 1: replicas of the streams it creates.
    pub replicas: usize,
    /// `VERDICT_LIVE_PROGRESS_INTERVAL`, default 100ms: the shortest gap between two
    /// progress frames of one run.
    pub progress_interval: Duration,
    /// `VERDICT_LIVE_REPLAY_LIMIT`, default 1000: the most frames a reconnecting viewer
    /// is replayed; further behind, it gets a snapshot.
    pub replay_limit: u64,
}

impl Settings {
    pub fn from_env(env: &Env) -> Result<Self, SettingError> {
        Ok(Self {
            bus: BusSettings::from_env(env, "verdict-realtime")?,
            replicas: env.parse("VERDICT_STREAM_REPLICAS", 1)?,
            progress_interval: env
                .duration("VERDICT_LIVE_PROGRESS_INTERVAL", Duration::from_millis(100))?,
            replay_limit: env.parse("VERDICT_LIVE_REPLAY_LIMIT", 1000)?,
        })
    }
}
