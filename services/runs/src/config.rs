use verdict_bus::BusSettings;
use verdict_settings::{Env, SettingError};
use verdict_store::StoreSettings;

/// Everything the runs service is configured with, read once at start.
#[derive(Debug, Clone)]
pub struct Settings {
    pub bus: BusSettings,
    pub store: StoreSettings,
}

impl Settings {
    pub fn from_env(env: &Env) -> Result<Self, SettingError> {
        Ok(Self {
            bus: BusSettings::from_env(env, "verdict-runs")?,
            store: StoreSettings::from_env(env, "runs")?,
        })
    }
}
