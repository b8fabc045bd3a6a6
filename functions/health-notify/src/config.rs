//! Configuration, read once at cold start into a typed [`Config`], and the
//! clients built from it.

use curlew::access::AccessClients;
use curlew::health::{HealthCtx, DEFAULT_TTL_DAYS};
use curlew::store::{S3Store, Store};
use curlew_lambda::env::{number, optional, required, ConfigError};
use curlew_lambda::publish::SnsNotify;

/// Settings from the function's environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Bucket and prefix of curlew's own store (registry, ledger, dedupe records).
    pub store_bucket: String,
    pub store_prefix: String,
    /// SNS topic of notices (the results topic).
    pub results_topic_arn: String,
    /// Days a dedupe record lives after its last write.
    pub dedupe_ttl_days: usize,
    /// The daily poll reads events updated in the last this many hours
    /// (more than a day, so consecutive polls overlap).
    pub poll_hours: usize,
}

impl Config {
    pub fn from_env() -> Result<Config, ConfigError> {
        Ok(Config {
            store_bucket: required("CURLEW_STORE_BUCKET")?,
            store_prefix: optional("CURLEW_STORE_PREFIX", ""),
            results_topic_arn: required("CURLEW_RESULTS_TOPIC_ARN")?,
            dedupe_ttl_days: number("CURLEW_HEALTH_DEDUPE_TTL_DAYS", DEFAULT_TTL_DAYS as usize)?
                .max(1),
            poll_hours: number("CURLEW_HEALTH_POLL_HOURS", 26)?.max(1),
        })
    }
}

/// Config plus the clients the handler uses.
#[derive(Debug, Clone)]
pub struct Deps {
    pub config: Config,
    pub s3: aws_sdk_s3::Client,
    pub sns: aws_sdk_sns::Client,
    /// The customer's role is assumed with it (the poll).
    pub sts: aws_sdk_sts::Client,
    /// The customer's Health client is derived from it per connection.
    pub health: aws_sdk_health::Client,
}

impl Deps {
    /// Clients from the standard AWS settings (see [`curlew_lambda::sdk`]).
    pub async fn from_env(config: Config) -> Deps {
        let conf = curlew_lambda::sdk::config().await;
        Deps {
            config,
            s3: curlew_lambda::sdk::s3_client(&conf),
            sns: aws_sdk_sns::Client::new(&conf),
            sts: aws_sdk_sts::Client::new(&conf),
            health: aws_sdk_health::Client::new(&conf),
        }
    }

    pub fn own_store(&self) -> Store {
        Store::S3(S3Store::new(
            self.s3.clone(),
            self.config.store_bucket.clone(),
        ))
    }

    /// Notices go to the results topic.
    pub fn notify(&self) -> SnsNotify {
        SnsNotify {
            sns: self.sns.clone(),
            topic_arn: self.config.results_topic_arn.clone(),
        }
    }

    pub fn clients(&self) -> AccessClients {
        AccessClients::new(self.sts.clone(), self.s3.clone())
    }

    pub fn ctx<'a>(&self, notify: &'a SnsNotify) -> HealthCtx<'a> {
        let mut ctx = HealthCtx::on_store(self.own_store(), &self.config.store_prefix, notify);
        ctx.ttl = chrono::Duration::days(self.config.dedupe_ttl_days as i64);
        ctx
    }
}
