use verdict_bus::BusSettings;
use verdict_settings::{Env, SettingError};
use verdict_store::StoreSettings;

/// Everything the auth service is configured with, read once at start.
#[derive(Debug, Clone)]
pub struct Settings {
    pub bus: BusSettings,
    pub store: StoreSettings,
}

impl Settings {
    pub fn from_env(env: &Env) -> Result<Self, SettingError> {
        Ok(Self {
            bus: BusSettings::from_env(env, "verdict-auth")?,
            store: StoreSettings::from_env(env, "auth")?,
        })
    }
}
