//! Configuration, read once at cold start into a typed [`Config`], and the
//! clients built from it.

use curlew::access::{source_client, AccessClients, SessionError};
use curlew::discover::Source;
use curlew::ledger::Ledger;
use curlew::registry::{Connection, Registry};
use curlew::store::{S3Store, Store};

/// Settings from the function's environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Bucket and prefix of curlew's own store (ledger, rollups, registry).
    pub store_bucket: String,
    pub store_prefix: String,
    /// SNS topic of per-file part jobs.
    pub parts_topic_arn: String,
    /// SNS topic of commit notifications.
    pub results_topic_arn: String,
}

#[derive(Debug, thiserror::Error)]
#[error(
    "environment variable {0} is not set; the deployment template sets it (infra/template.yaml)"
)]
pub struct ConfigError(pub &'static str);

impl Config {
    pub fn from_env() -> Result<Config, ConfigError> {
        let get = |k: &'static str| std::env::var(k).map_err(|_| ConfigError(k));
        Ok(Config {
            store_bucket: get("CURLEW_STORE_BUCKET")?,
            store_prefix: std::env::var("CURLEW_STORE_PREFIX").unwrap_or_default(),
            parts_topic_arn: get("CURLEW_PARTS_TOPIC_ARN")?,
            results_topic_arn: get("CURLEW_RESULTS_TOPIC_ARN")?,
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
    /// Clients from the standard AWS settings (path-style S3 when AWS_ENDPOINT_URL is set).
    pub async fn from_env(config: Config) -> Deps {
        let conf = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let mut s3 = aws_sdk_s3::config::Builder::from(&conf);
        if std::env::var_os("AWS_ENDPOINT_URL").is_some() {
            s3 = s3.force_path_style(true);
        }
        Deps {
            config,
            s3: aws_sdk_s3::Client::from_conf(s3.build()),
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
}
