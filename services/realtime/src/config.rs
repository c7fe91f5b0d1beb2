use verdict_bus::BusSettings;
use verdict_settings::{Env, SettingError};

/// Everything the realtime service is configured with, read once at start. It keeps
/// no database: its state is rebuilt from JetStream.
#[derive(Debug, Clone)]
pub struct Settings {
    pub bus: BusSettings,
}

impl Settings {
    pub fn from_env(env: &Env) -> Result<Self, SettingError> {
        Ok(Self {
            bus: BusSettings::from_env(env, "verdict-realtime")?,
        })
    }
}
