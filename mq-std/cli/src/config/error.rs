//! Why a configuration could not be used: one error with the text `mqd`
//! prints.

use std::fmt;

/// Why the configuration could not be used.
#[derive(Debug)]
pub struct ConfigError(String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

pub(super) fn err(msg: impl Into<String>) -> ConfigError {
    ConfigError(msg.into())
}
