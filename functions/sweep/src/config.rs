//! Configuration, read once at cold start into a typed [`Config`], and the
//! clients built from it.

use curlew::access::AccessClients;
use curlew::ledger::Ledger;
use curlew::pipeline::DEFAULT_MAX_FILES;
use curlew::registry::Registry;
use curlew::store::{S3Store, Store};
use curlew::sweep::DEFAULT_STALE_HOURS;
use curlew_lambda::env::{number, optional, required, ConfigError};
use curlew_lambda::publish::SnsNotify;

/// Settings from the function's environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Bucket and prefix of curlew's own store (registry, ledger).
    pub store_bucket: String,
    pub store_prefix: String,
    /// SNS topic of sweep jobs (one per connection; its queue feeds this function).
    pub sweep_topic_arn: String,
    /// SNS topic of per-file part jobs (missed deliveries are planned onto it).
    pub parts_topic_arn: String,
    /// SNS topic of notices (connection-changed, accounts-changed, ...).
    pub results_topic_arn: String,
    pub max_files: usize,
    /// Newest manifest older than this many hours: report-stale.
    pub stale_hours: usize,
    /// Connections of one SQS batch swept at once.
    pub concurrency: usize,
    /// A connection checked less than this many minutes ago is not swept
    /// again (a redelivered job counts no failure twice).
    pub min_interval_minutes: usize,
}

impl Config {
    pub fn from_env() -> Result<Config, ConfigError> {
        Ok(Config {
            store_bucket: required("CURLEW_STORE_BUCKET")?,
            store_prefix: optional("CURLEW_STORE_PREFIX", ""),
            sweep_topic_arn: required("CURLEW_SWEEP_TOPIC_ARN")?,
            parts_topic_arn: required("CURLEW_PARTS_TOPIC_ARN")?,
            results_topic_arn: required("CURLEW_RESULTS_TOPIC_ARN")?,
            max_files: number("CURLEW_MAX_FILES", DEFAULT_MAX_FILES)?,
            stale_hours: number("CURLEW_STALE_HOURS", DEFAULT_STALE_HOURS as usize)?,
            concurrency: number("CURLEW_SWEEP_CONCURRENCY", 5)?.max(1),
            min_interval_minutes: number("CURLEW_SWEEP_MIN_INTERVAL_MINUTES", 10)?,
        })
    }
}

/// Config plus the clients the handler uses.
#[derive(Debug, Clone)]
pub struct Deps {
    pub config: Config,
    pub s3: aws_sdk_s3::Client,
    pub sns: aws_sdk_sns::Client,
    pub sts: aws_sdk_sts::Client,
    /// Organizations (the customer's client is derived from it per connection).
    pub org: aws_sdk_organizations::Client,
    /// Data Exports (likewise, for an export's status).
    pub exports: aws_sdk_bcmdataexports::Client,
    /// Cost and Usage Reports (likewise, for a report's definition).
    pub cur: aws_sdk_costandusagereport::Client,
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
            org: aws_sdk_organizations::Client::new(&conf),
            exports: aws_sdk_bcmdataexports::Client::new(&conf),
            cur: aws_sdk_costandusagereport::Client::new(&conf),
        }
    }

    pub fn own_store(&self) -> Store {
        Store::S3(S3Store::new(
            self.s3.clone(),
            self.config.store_bucket.clone(),
        ))
    }

    pub fn ledger(&self) -> Ledger {
        Ledger::new(self.own_store(), &self.config.store_prefix)
    }

    pub fn registry(&self) -> Registry {
        Registry::new(self.own_store(), &self.config.store_prefix)
    }

    pub fn clients(&self) -> AccessClients {
        AccessClients::new(self.sts.clone(), self.s3.clone())
            .with_org(self.org.clone())
            .with_exports(self.exports.clone())
            .with_cur(self.cur.clone())
    }

    /// Notices go to the results topic.
    pub fn notify(&self) -> SnsNotify {
        SnsNotify {
            sns: self.sns.clone(),
            topic_arn: self.config.results_topic_arn.clone(),
        }
    }
}
