//! Configuration, read once at cold start into a typed [`Config`], and the
//! clients built from it.

use curlew::access::{source_client, AccessClients, SessionError};
use curlew::discover::Source;
use curlew::ledger::Ledger;
use curlew::pipeline::DEFAULT_MAX_FILES;
use curlew::registry::{Connection, Registry};
use curlew::store::{S3Store, Store};
use curlew_lambda::env::{number, optional, required, ConfigError};
use curlew_lambda::publish::SnsNotify;

/// Settings from the function's environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Bucket and prefix of curlew's own store (ledger, rollups, registry).
    pub store_bucket: String,
    pub store_prefix: String,
    /// SNS topic of per-file part jobs.
    pub parts_topic_arn: String,
    /// SNS topic of notices (revision-committed, delivery-failed).
    pub results_topic_arn: String,
    /// Data files one manifest may list.
    pub max_files: usize,
}

impl Config {
    pub fn from_env() -> Result<Config, ConfigError> {
        Ok(Config {
            store_bucket: required("CURLEW_STORE_BUCKET")?,
            store_prefix: optional("CURLEW_STORE_PREFIX", ""),
            parts_topic_arn: required("CURLEW_PARTS_TOPIC_ARN")?,
            results_topic_arn: required("CURLEW_RESULTS_TOPIC_ARN")?,
            max_files: number("CURLEW_MAX_FILES", DEFAULT_MAX_FILES)?,
        })
    }
}

/// Config plus the clients every handler uses.
#[derive(Debug, Clone)]
pub struct Deps {
    pub config: Config,
    pub s3: aws_sdk_s3::Client,
    pub sns: aws_sdk_sns::Client,
    /// STS (and S3 derived per customer session) for reaching billing buckets.
    pub sts: aws_sdk_sts::Client,
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
        }
    }

    fn own_store(&self) -> Store {
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

    /// Notices go to the results topic.
    pub fn notify(&self) -> SnsNotify {
        SnsNotify {
            sns: self.sns.clone(),
            topic_arn: self.config.results_topic_arn.clone(),
        }
    }

    /// The customer's billing bucket, reached the way the connection says:
    /// its role assumed with the tenant's External ID, its stored access keys,
    /// or (bucket-policy mode) the function's own credentials.
    pub async fn source(&self, conn: &Connection) -> Result<Source, SessionError> {
        let clients = AccessClients::new(self.sts.clone(), self.s3.clone());
        let client =
            source_client(&clients, conn, &self.own_store(), &self.config.store_prefix).await?;
        Ok(Source {
            store: Store::S3(S3Store::new(client, conn.bucket.clone())),
            prefix: conn.prefix.clone(),
        })
    }

    /// Record on a connection that its account refused ingestion. Only a
    /// detail: the status is the sweep's (`curlew::sweep::state`), which
    /// re-verifies within the hour and changes it after two failed sweeps in a
    /// row; a burst of events for one delivery is not many failures.
    pub async fn mark_access_failure(&self, conn: &Connection, why: &str) {
        let why = why.to_owned();
        if let Err(e) = self
            .registry()
            .update(&conn.tenant, &conn.payer_account, |c| {
                c.status_detail = Some(format!("ingestion refused: {why}"));
            })
            .await
        {
            tracing::error!(tenant = %conn.tenant, payer = %conn.payer_account, error = %e, "could not mark the connection");
        }
    }
}
