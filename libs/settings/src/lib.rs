//! Configuration is read once, at start, into typed settings that are passed down.
//! [`Env`] is the only place that looks at variables, and it can be built from a map,
//! so every settings parser is testable without touching the process environment.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

/// What an error shows instead of a secret's value.
pub const REDACTED: &str = "[redacted]";

/// A setting that is present but unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name}={value:?} is invalid: {reason}")]
pub struct SettingError {
    pub name: String,
    pub value: String,
    pub reason: String,
}

/// A source of settings: the process environment, a map in tests, or either with some
/// values set by the program (command-line flags, for instance) on top.
#[derive(Debug, Clone, Default)]
pub struct Env {
    values: HashMap<String, String>,
    read_process: bool,
}

impl Env {
    /// Reads the process environment.
    pub fn process() -> Self {
        Self {
            values: HashMap::new(),
            read_process: true,
        }
    }

    /// Reads only the given pairs.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self {
            values: HashMap::new(),
            read_process: false,
        }
        .with(pairs)
    }

    /// The same source with `pairs` taking precedence.
    pub fn with<K: Into<String>, V: Into<String>>(
        mut self,
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        self.values
            .extend(pairs.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    /// The raw value, if set and not empty.
    pub fn get(&self, name: &str) -> Option<String> {
        let value = match self.values.get(name) {
            Some(value) => Some(value.clone()),
            None if self.read_process => std::env::var(name).ok(),
            None => None,
        };
        value.filter(|v| !v.trim().is_empty())
    }

    /// A secret: the value of `name`, or the content of the file that `name_FILE` names
    /// with surrounding whitespace trimmed (how Docker and Kubernetes secrets are
    /// mounted), or `None` when neither is set. Both set is an error naming both, so a
    /// forgotten variable never silently wins over the file.
    pub fn secret(&self, name: &str) -> Result<Option<String>, SettingError> {
        let file_variable = format!("{name}_FILE");
        match (self.get(name), self.get(&file_variable)) {
            (Some(_), Some(_)) => Err(SettingError {
                name: file_variable.clone(),
                value: REDACTED.to_owned(),
                reason: format!("both {name} and {file_variable} are set; set only one"),
            }),
            (Some(value), None) => Ok(Some(value)),
            (None, Some(path)) => {
                let unreadable = |reason: String| SettingError {
                    name: file_variable.clone(),
                    value: path.clone(),
                    reason,
                };
                let content = std::fs::read_to_string(path.trim())
                    .map_err(|err| unreadable(format!("cannot read the file: {err}")))?;
                let content = content.trim();
                if content.is_empty() {
                    return Err(unreadable(format!(
                        "the file is empty; it must hold {name}"
                    )));
                }
                Ok(Some(content.to_owned()))
            }
            (None, None) => Ok(None),
        }
    }

    pub fn string(&self, name: &str, default: &str) -> String {
        self.get(name).unwrap_or_else(|| default.to_owned())
    }

    /// A value parsed with `FromStr`, or `default` when unset.
    pub fn parse<T>(&self, name: &str, default: T) -> Result<T, SettingError>
    where
        T: FromStr,
        T::Err: std::fmt::Display,
    {
        self.parse_optional(name).map(|v| v.unwrap_or(default))
    }

    /// A value parsed with `FromStr`, or `None` when unset.
    pub fn parse_optional<T>(&self, name: &str) -> Result<Option<T>, SettingError>
    where
        T: FromStr,
        T::Err: std::fmt::Display,
    {
        self.get(name)
            .map(|value| {
                value.trim().parse().map_err(|err: T::Err| SettingError {
                    name: name.to_owned(),
                    value: value.clone(),
                    reason: err.to_string(),
                })
            })
            .transpose()
    }

    /// `true`/`false`, `1`/`0`, `yes`/`no`.
    pub fn flag(&self, name: &str, default: bool) -> Result<bool, SettingError> {
        match self.get(name) {
            None => Ok(default),
            Some(value) => match value.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => Ok(true),
                "0" | "false" | "no" | "off" => Ok(false),
                _ => Err(SettingError {
                    name: name.to_owned(),
                    value,
                    reason: "expected true or false".to_owned(),
                }),
            },
        }
    }

    /// A duration written as an integer with a unit: `250ms`, `30s`, `15m`, `2h`, `7d`.
    pub fn duration(&self, name: &str, default: Duration) -> Result<Duration, SettingError> {
        match self.get(name) {
            None => Ok(default),
            Some(value) => parse_duration(&value).map_err(|reason| SettingError {
                name: name.to_owned(),
                value,
                reason,
            }),
        }
    }
}

/// Parses a duration written as an integer with a unit: `250ms`, `30s`, `15m`, `2h`, `7d`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| "missing unit (ms, s, m, h or d)".to_owned())?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| "expected an integer followed by ms, s, m, h or d".to_owned())?;
    let seconds = |factor: u64| {
        number
            .checked_mul(factor)
            .map(Duration::from_secs)
            .ok_or_else(|| "too large".to_owned())
    };
    match unit {
        "ms" => Ok(Duration::from_millis(number)),
        "s" => seconds(1),
        "m" => seconds(60),
        "h" => seconds(3600),
        "d" => seconds(86_400),
        other => Err(format!("unknown unit `{other}` (use ms, s, m, h or d)")),
    }
}

/// Parses a comma-separated list of IP addresses and networks (`10.0.0.0/8,127.0.0.1`);
/// an address stands for the network of itself alone.
pub fn parse_networks(text: &str) -> Result<Vec<ipnet::IpNet>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            entry
                .parse::<ipnet::IpNet>()
                .or_else(|_| entry.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| format!("`{entry}` is neither an IP address nor a network"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_are_addresses_or_cidr_networks() {
        let networks = parse_networks("10.0.0.0/8, 127.0.0.1,,::1").unwrap();
        assert_eq!(networks.len(), 3);
        assert!(networks[1].contains(&"127.0.0.1".parse::<std::net::IpAddr>().unwrap()));
        assert!(!networks[1].contains(&"127.0.0.2".parse::<std::net::IpAddr>().unwrap()));
        assert!(parse_networks("10.0.0.0/8,nope")
            .unwrap_err()
            .contains("`nope`"));
    }

    #[test]
    fn values_set_on_top_take_precedence() {
        let env = Env::from_pairs([("A", "1"), ("B", "2")]).with([("A", "3")]);
        assert_eq!(env.get("A").as_deref(), Some("3"));
        assert_eq!(env.get("B").as_deref(), Some("2"));
    }

    #[test]
    fn unset_and_empty_values_fall_back_to_the_default() {
        let env = Env::from_pairs([("A", "  ")]);
        assert_eq!(env.parse("A", 7u32).unwrap(), 7);
        assert_eq!(env.parse("B", 8u32).unwrap(), 8);
    }

    #[test]
    fn a_malformed_number_names_the_variable_and_the_value() {
        let env = Env::from_pairs([("VERDICT_X", "ten")]);
        let err = env.parse("VERDICT_X", 1u32).unwrap_err();
        assert_eq!(err.name, "VERDICT_X");
        assert!(err.to_string().contains("VERDICT_X=\"ten\""));
    }

    #[test]
    fn durations_accept_each_unit() {
        let env = Env::from_pairs([
            ("MS", "250ms"),
            ("S", "30s"),
            ("M", "15m"),
            ("H", "2h"),
            ("D", "7d"),
        ]);
        let zero = Duration::ZERO;
        assert_eq!(
            env.duration("MS", zero).unwrap(),
            Duration::from_millis(250)
        );
        assert_eq!(env.duration("S", zero).unwrap(), Duration::from_secs(30));
        assert_eq!(env.duration("M", zero).unwrap(), Duration::from_secs(900));
        assert_eq!(env.duration("H", zero).unwrap(), Duration::from_secs(7200));
        assert_eq!(
            env.duration("D", zero).unwrap(),
            Duration::from_secs(604_800)
        );
    }

    #[test]
    fn a_duration_without_unit_is_refused() {
        let env = Env::from_pairs([("T", "30")]);
        assert!(env
            .duration("T", Duration::ZERO)
            .unwrap_err()
            .reason
            .contains("unit"));
    }

    fn secret_file(content: &str) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), content).unwrap();
        file
    }

    #[test]
    fn a_secret_is_read_from_its_variable() {
        let env = Env::from_pairs([("VERDICT_S", "hunter2")]);
        assert_eq!(env.secret("VERDICT_S").unwrap().as_deref(), Some("hunter2"));
        assert_eq!(Env::default().secret("VERDICT_S").unwrap(), None);
    }

    #[test]
    fn a_secret_is_read_trimmed_from_the_file_its_file_variable_names() {
        let file = secret_file("  s3cret value\n\n");
        let env = Env::from_pairs([("VERDICT_S_FILE", file.path().to_str().unwrap())]);
        assert_eq!(
            env.secret("VERDICT_S").unwrap().as_deref(),
            Some("s3cret value")
        );
    }

    #[test]
    fn a_secret_set_both_ways_is_refused_naming_both_and_showing_neither() {
        let file = secret_file("from-file");
        let env = Env::from_pairs([
            ("VERDICT_S", "from-variable"),
            ("VERDICT_S_FILE", file.path().to_str().unwrap()),
        ]);
        let message = env.secret("VERDICT_S").unwrap_err().to_string();
        assert!(
            message.contains("VERDICT_S and VERDICT_S_FILE"),
            "{message}"
        );
        assert!(!message.contains("from-variable"), "{message}");
        assert!(!message.contains("from-file"), "{message}");
    }

    #[test]
    fn a_missing_or_empty_secret_file_is_refused_naming_its_variable() {
        let env = Env::from_pairs([("VERDICT_S_FILE", "/nonexistent/verdict-secret")]);
        let error = env.secret("VERDICT_S").unwrap_err();
        assert_eq!(error.name, "VERDICT_S_FILE");
        assert!(error.reason.contains("cannot read"), "{error}");

        let empty = secret_file(" \n");
        let env = Env::from_pairs([("VERDICT_S_FILE", empty.path().to_str().unwrap())]);
        let error = env.secret("VERDICT_S").unwrap_err();
        assert_eq!(error.name, "VERDICT_S_FILE");
        assert!(error.reason.contains("empty"), "{error}");
    }

    #[test]
    fn flags_accept_common_spellings_and_refuse_others() {
        let env = Env::from_pairs([("ON", "yes"), ("OFF", "0"), ("BAD", "maybe")]);
        assert!(env.flag("ON", false).unwrap());
        assert!(!env.flag("OFF", true).unwrap());
        assert!(env.flag("BAD", true).is_err());
    }
}
