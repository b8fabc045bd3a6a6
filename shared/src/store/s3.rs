//! S3 through aws-sdk-s3: any endpoint (path-style when one is set), conditional
//! puts with If-None-Match: * and If-Match, streaming gets bridged to a
//! blocking `Read` for the parsers (ranged reads: [`super::s3_ranges`]).

use super::{ObjectMeta, StoreError};
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use chrono::{DateTime, Utc};
use std::io::{self, Read};

/// A bucket reached through an S3 client.
#[derive(Debug, Clone)]
pub struct S3Store {
    client: Client,
    bucket: String,
}

pub(super) fn to_chrono(t: Option<&aws_sdk_s3::primitives::DateTime>) -> DateTime<Utc> {
    t.and_then(|t| DateTime::<Utc>::from_timestamp(t.secs(), t.subsec_nanos()))
        .unwrap_or_default()
}

/// Map an SDK error to a store error, keeping the S3 code and HTTP status.
pub(super) fn map_err<E>(key: &str, e: SdkError<E, HttpResponse>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let status = e.raw_response().map(|r| r.status().as_u16());
    let code = e.code().unwrap_or("").to_owned();
    let message = e
        .message()
        .map(str::to_owned)
        .unwrap_or_else(|| format!("{e}"));
    match (code.as_str(), status) {
        ("NoSuchBucket", _) => StoreError::Access {
            key: key.into(),
            message: format!("NoSuchBucket: the bucket does not exist: {message}"),
        },
        ("NoSuchKey" | "NotFound", _) | (_, Some(404)) => StoreError::NotFound { key: key.into() },
        (
            "AccessDenied"
            | "AllAccessDisabled"
            | "InvalidAccessKeyId"
            | "SignatureDoesNotMatch"
            | "ExpiredToken"
            | "InvalidToken"
            | "PermanentRedirect"
            | "AuthorizationHeaderMalformed"
            | "KMS.DisabledException"
            | "KMS.KMSInvalidStateException"
            | "KMS.NotFoundException",
            _,
        )
        | (_, Some(301 | 403)) => StoreError::Access {
            key: key.into(),
            message: if code.is_empty() {
                format!("HTTP {}: {message}", status.unwrap_or(0))
            } else {
                format!("{code}: {message}")
            },
        },
        ("PreconditionFailed" | "ConditionalRequestConflict", _) | (_, Some(412 | 409)) => {
            StoreError::PreconditionFailed { key: key.into() }
        }
        _ => {
            let retryable = matches!(e, SdkError::TimeoutError(_) | SdkError::DispatchFailure(_))
                || matches!(status, Some(429 | 500..=599))
                || code.contains("Throttl")
                || code == "SlowDown";
            let what = if code.is_empty() {
                message
            } else {
                format!("{code}: {message}")
            };
            StoreError::Service {
                key: key.into(),
                message: what,
                retryable,
            }
        }
    }
}

impl S3Store {
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        S3Store {
            client,
            bucket: bucket.into(),
        }
    }

    /// A client from the standard AWS settings (env, profile, AWS_ENDPOINT_URL);
    /// path-style addressing when an endpoint URL is set.
    pub async fn from_env(bucket: &str) -> Self {
        let conf = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let mut b = aws_sdk_s3::config::Builder::from(&conf);
        if std::env::var_os("AWS_ENDPOINT_URL").is_some()
            || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some()
        {
            b = b.force_path_style(true);
        }
        S3Store::new(Client::from_conf(b.build()), bucket)
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub async fn head(&self, key: &str) -> Result<ObjectMeta, StoreError> {
        let o = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| map_err(key, e))?;
        Ok(ObjectMeta {
            key: key.into(),
            size: o.content_length().unwrap_or(0).max(0) as u64,
            etag: o.e_tag().unwrap_or("").to_owned(),
            last_modified: to_chrono(o.last_modified()),
        })
    }

    /// GetObject (only if the ETag is `if_match`, when given) and the metadata of what it returned.
    async fn get_object(
        &self,
        key: &str,
        if_match: Option<&str>,
    ) -> Result<
        (
            ObjectMeta,
            aws_sdk_s3::operation::get_object::GetObjectOutput,
        ),
        StoreError,
    > {
        let o = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .set_if_match(if_match.map(str::to_owned))
            .send()
            .await
            .map_err(|e| map_err(key, e))?;
        let meta = ObjectMeta {
            key: key.into(),
            size: o.content_length().unwrap_or(0).max(0) as u64,
            etag: o.e_tag().unwrap_or("").to_owned(),
            last_modified: to_chrono(o.last_modified()),
        };
        Ok((meta, o))
    }

    /// Stream an object: the body is pulled by a task and handed over in chunks,
    /// so the blocking parser never holds more than a few chunks.
    pub async fn get(&self, key: &str) -> Result<(ObjectMeta, Box<dyn Read + Send>), StoreError> {
        self.stream(key, None).await
    }

    /// [`S3Store::get`] pinned to one version: `PreconditionFailed` (412) if rewritten since.
    pub async fn get_if_match(
        &self,
        key: &str,
        etag: &str,
    ) -> Result<(ObjectMeta, Box<dyn Read + Send>), StoreError> {
        self.stream(key, Some(etag)).await
    }

    async fn stream(
        &self,
        key: &str,
        if_match: Option<&str>,
    ) -> Result<(ObjectMeta, Box<dyn Read + Send>), StoreError> {
        let (meta, o) = self.get_object(key, if_match).await?;
        let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<bytes::Bytes>>(8);
        let mut body: ByteStream = o.body;
        tokio::spawn(async move {
            loop {
                match body.try_next().await {
                    Ok(Some(chunk)) => {
                        if tx.send(Ok(chunk)).await.is_err() {
                            return;
                        }
                    }
                    Ok(None) => return,
                    Err(e) => {
                        let _ = tx.send(Err(io::Error::other(e.to_string()))).await;
                        return;
                    }
                }
            }
        });
        Ok((
            meta,
            Box::new(ChunkReader {
                rx,
                current: bytes::Bytes::new(),
            }),
        ))
    }

    pub async fn get_bytes(&self, key: &str) -> Result<(ObjectMeta, Vec<u8>), StoreError> {
        let (meta, o) = self.get_object(key, None).await?;
        let bytes = o.body.collect().await.map_err(|e| StoreError::Service {
            key: key.into(),
            message: e.to_string(),
            retryable: true,
        })?;
        Ok((meta, bytes.into_bytes().to_vec()))
    }

    pub async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        let mut out = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| map_err(prefix, e))?;
            for o in page.contents() {
                out.push(ObjectMeta {
                    key: o.key().unwrap_or("").to_owned(),
                    size: o.size().unwrap_or(0).max(0) as u64,
                    etag: o.e_tag().unwrap_or("").to_owned(),
                    last_modified: to_chrono(o.last_modified()),
                });
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    pub async fn put(
        &self,
        key: &str,
        body: Vec<u8>,
        cond: super::Condition<'_>,
    ) -> Result<String, StoreError> {
        let mut req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(body));
        req = match cond {
            super::Condition::None => req,
            super::Condition::Absent => req.if_none_match("*"),
            super::Condition::Matches(etag) => req.if_match(etag),
        };
        let o = req.send().await.map_err(|e| map_err(key, e))?;
        Ok(o.e_tag().unwrap_or("").to_owned())
    }

    pub async fn put_encrypted(
        &self,
        key: &str,
        body: Vec<u8>,
        kms_key_arn: &str,
    ) -> Result<String, StoreError> {
        let o = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .server_side_encryption(aws_sdk_s3::types::ServerSideEncryption::AwsKms)
            .ssekms_key_id(kms_key_arn)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| map_err(key, e))?;
        Ok(o.e_tag().unwrap_or("").to_owned())
    }

    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| map_err(key, e))?;
        Ok(())
    }
}

/// The blocking end of a streamed body (used on a blocking thread, never on a runtime worker).
struct ChunkReader {
    rx: tokio::sync::mpsc::Receiver<io::Result<bytes::Bytes>>,
    current: bytes::Bytes,
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.current = b,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        let _ = self.current.split_to(n);
        Ok(n)
    }
}
