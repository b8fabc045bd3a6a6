//! Settings from the function's environment (the deployment template sets them).

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is not set; the deployment template sets it (infra/template.yaml)")]
    Missing(&'static str),
    #[error("environment variable {name}={value:?} is not valid: {why}")]
    Invalid {
        name: &'static str,
        value: String,
        why: String,
    },
}

/// A variable that must be set.
pub fn required(name: &'static str) -> Result<String, ConfigError> {
    std::env::var(name).map_err(|_| ConfigError::Missing(name))
}

/// A variable with a default.
pub fn optional(name: &'static str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

/// A number with a default.
pub fn number(name: &'static str, default: usize) -> Result<usize, ConfigError> {
    match std::env::var(name) {
        Err(_) => Ok(default),
        Ok(v) => v
            .parse()
            .map_err(|e: std::num::ParseIntError| ConfigError::Invalid {
                name,
                value: v,
                why: e.to_string(),
            }),
    }
}
