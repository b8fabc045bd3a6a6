//! Configuration, read once at cold start into a typed [`Config`], the
//! tunables ([`Settings`]: production defaults, tests shorten them), and the
//! clients built from them.

use crate::prove::RetryPolicy;
use crate::records::Records;
use crate::response::{Responder, ResponsePolicy, SendError};
use crate::watchdog::DEFAULT_MARGIN;
use curlew::onboard::Onboardings;
use curlew::registry::Registry;
use curlew::store::{S3Store, Store};
use std::time::Duration;

/// Settings from the function's environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Bucket and prefix of curlew's own store (registry, onboardings, answers).
    pub store_bucket: String,
    pub store_prefix: String,
}

pub use curlew_lambda::env::ConfigError;

impl Config {
    pub fn from_env() -> Result<Config, ConfigError> {
        Ok(Config {
            store_bucket: curlew_lambda::env::required("CURLEW_STORE_BUCKET")?,
            store_prefix: curlew_lambda::env::optional("CURLEW_STORE_PREFIX", ""),
        })
    }
}

/// Tunables. Not read from the environment: the response policy in
/// particular is [`ResponsePolicy::aws`] in every deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The watchdog answers FAILED when this much time is left.
    pub answer_margin: Duration,
    pub retry: RetryPolicy,
    pub response_policy: ResponsePolicy,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            answer_margin: DEFAULT_MARGIN,
            retry: RetryPolicy::default(),
            response_policy: ResponsePolicy::aws(),
        }
    }
}

/// Config, settings and the clients the handler uses.
#[derive(Clone)]
pub struct Deps {
    pub config: Config,
    pub settings: Settings,
    pub store: Store,
    pub responder: Responder,
}

impl Deps {
    /// Deps over curlew's store in `s3`.
    pub fn new(
        config: Config,
        settings: Settings,
        s3: aws_sdk_s3::Client,
    ) -> Result<Deps, SendError> {
        let responder = Responder::new(&settings.response_policy)?;
        let store = Store::S3(S3Store::new(s3, config.store_bucket.clone()));
        Ok(Deps {
            config,
            settings,
            store,
            responder,
        })
    }

    pub fn registry(&self) -> Registry {
        Registry::new(self.store.clone(), &self.config.store_prefix)
    }

    pub fn onboardings(&self) -> Onboardings {
        Onboardings::new(self.store.clone(), &self.config.store_prefix)
    }

    pub fn records(&self) -> Records {
        Records::new(self.store.clone(), &self.config.store_prefix)
    }
}
