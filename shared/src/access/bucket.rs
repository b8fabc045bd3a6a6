//! What the credentials can do with the bucket: its region; list and read at
//! the prefix (must work); list and read outside it and a probe write
//! (should be refused: if allowed, a warning "wider than needed").

use super::{AccessClients, AccessReport, CallError, Cause, CheckItem, Outcome};
use aws_sdk_s3::config::Credentials;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::Object;

const REGION: (&str, &str) = ("bucket-region", "Bucket region");
const LIST: (&str, &str) = ("list-prefix", "List at the prefix");
const READ: (&str, &str) = ("read-prefix", "Read at the prefix");
const LIST_OUT: (&str, &str) = ("list-outside", "List outside the prefix is refused");
const READ_OUT: (&str, &str) = ("read-outside", "Read outside the prefix is refused");
const WRITE: (&str, &str) = ("write-probe", "Write is refused");

/// Every item of this stage, in order (for skipping them all).
pub(super) const ITEMS: &[(&str, &str)] = &[REGION, LIST, READ, LIST_OUT, READ_OUT, WRITE];

/// The key of the probe write, under the prefix.
pub const PROBE_KEY: &str = "curlew-access-probe.txt";
/// A key outside the prefix to try to read when no real one was listed.
pub const OUTSIDE_KEY: &str = "curlew-access-probe-outside.txt";

const WIDER: &str = "wider than needed";

pub(super) struct Probes<'a> {
    pub clients: &'a AccessClients,
    /// `None`: curlew's own credentials (bucket-policy mode).
    pub creds: Option<&'a Credentials>,
    pub bucket: &'a str,
    pub prefix: &'a str,
}

fn item(
    (id, title): (&'static str, &str),
    outcome: Outcome,
    detail: impl Into<String>,
) -> CheckItem {
    CheckItem::new(id, title, outcome, detail)
}

fn failed(it: (&'static str, &str), e: &CallError) -> CheckItem {
    let hint = match e.cause {
        Cause::Kms => ". What to do: allow the role kms:Decrypt on the bucket's KMS key (key policy and role policy)",
        Cause::AccessDenied => ". What to do: check the role's read policy and the bucket policy cover this bucket and prefix",
        Cause::NoSuchBucket => ". What to do: check the bucket name",
        _ => "",
    };
    item(it, Outcome::Fail, format!("{e}{hint}")).because(e.cause)
}

/// An operation that should be refused: Pass if it was, Warn if it was
/// allowed (`allowed` says what that means), Fail only on throttling (retry).
fn expect_denied(
    it: (&'static str, &str),
    result: Result<(), CallError>,
    allowed: String,
) -> CheckItem {
    match result {
        Ok(()) => item(it, Outcome::Warn, format!("{WIDER}: {allowed}")),
        Err(e) if e.is_denial() => item(
            it,
            Outcome::Pass,
            format!("refused ({})", e.code_or_cause()),
        ),
        Err(e) if matches!(e.cause, Cause::Throttled | Cause::Unavailable) => failed(it, &e),
        Err(e) => item(it, Outcome::Warn, format!("could not tell: {e}")).because(e.cause),
    }
}

/// `GetBucketLocation`'s answer as a region name.
fn region_name(constraint: Option<&str>) -> String {
    match constraint {
        None | Some("") => "us-east-1".into(),
        Some("EU") => "eu-west-1".into(),
        Some(r) => r.into(),
    }
}

impl Probes<'_> {
    /// Run the bucket items; the client for the bucket's region when the
    /// prefix can be listed (discovery runs on it).
    pub async fn run(&self, report: &mut AccessReport) -> Option<aws_sdk_s3::Client> {
        let region = match self.region().await {
            Ok(r) => {
                report.items.push(item(REGION, Outcome::Pass, r.clone()));
                report.region = Some(r.clone());
                Some(r)
            }
            Err(e) => {
                report.items.push(failed(REGION, &e));
                if e.cause == Cause::NoSuchBucket {
                    for it in &ITEMS[1..] {
                        report
                            .items
                            .push(item(*it, Outcome::Skip, "the bucket does not exist"));
                    }
                    return None;
                }
                None
            }
        };
        let client = self.clients.s3_with(self.creds, region.as_deref());

        let listed = self.list(&client, self.prefix, 1000).await;
        match &listed {
            Ok(objs) => report.items.push(item(
                LIST,
                Outcome::Pass,
                format!(
                    "{} object(s) in the first page under {:?}",
                    objs.len(),
                    self.prefix
                ),
            )),
            Err(e) => report.items.push(failed(LIST, e)),
        }
        report.items.push(
            self.read_inside(&client, listed.as_deref().unwrap_or(&[]))
                .await,
        );
        let outside = self.list_outside(&client, report).await;
        report.items.push(self.read_outside(&client, outside).await);
        report.items.push(self.write(&client).await);
        listed.is_ok().then_some(client)
    }

    async fn region(&self) -> Result<String, CallError> {
        let out = self
            .clients
            .s3_with(self.creds, None)
            .get_bucket_location()
            .bucket(self.bucket)
            .send()
            .await
            .map_err(|e| CallError::from_sdk(&e))?;
        Ok(region_name(out.location_constraint().map(|c| c.as_str())))
    }

    async fn list(
        &self,
        client: &aws_sdk_s3::Client,
        prefix: &str,
        max: i32,
    ) -> Result<Vec<Object>, CallError> {
        let out = client
            .list_objects_v2()
            .bucket(self.bucket)
            .prefix(prefix)
            .max_keys(max)
            .send()
            .await
            .map_err(|e| CallError::from_sdk(&e))?;
        Ok(out.contents().to_vec())
    }

    /// GetObject of the first byte of `key` (the body is not downloaded).
    async fn read(
        &self,
        client: &aws_sdk_s3::Client,
        key: &str,
        size: i64,
    ) -> Result<(), CallError> {
        let mut req = client.get_object().bucket(self.bucket).key(key);
        if size > 0 {
            req = req.range("bytes=0-0");
        }
        req.send().await.map_err(|e| CallError::from_sdk(&e))?;
        Ok(())
    }

    async fn read_inside(&self, client: &aws_sdk_s3::Client, objs: &[Object]) -> CheckItem {
        // A manifest if there is one (what discovery reads first), else any object.
        let pick = objs
            .iter()
            .find(|o| o.key().is_some_and(|k| k.ends_with("-Manifest.json")))
            .or_else(|| objs.iter().find(|o| o.size().unwrap_or(0) > 0))
            .or(objs.first());
        let Some(obj) = pick else {
            return item(READ, Outcome::Skip, "nothing under the prefix to read yet");
        };
        let key = obj.key().unwrap_or_default();
        match self.read(client, key, obj.size().unwrap_or(0)).await {
            Ok(()) => item(READ, Outcome::Pass, format!("read {key}")),
            Err(e) => failed(READ, &e),
        }
    }

    /// The list-outside item; a key outside the prefix if the list showed one.
    async fn list_outside(
        &self,
        client: &aws_sdk_s3::Client,
        report: &mut AccessReport,
    ) -> Option<(String, i64)> {
        if self.prefix.is_empty() {
            report.items.push(item(
                LIST_OUT,
                Outcome::Skip,
                "the prefix is the whole bucket",
            ));
            return None;
        }
        let listed = self.list(client, "", 100).await;
        let outside = listed.as_ref().ok().and_then(|objs| {
            objs.iter()
                .filter_map(|o| Some((o.key()?, o.size().unwrap_or(0))))
                .find(|(k, _)| !k.starts_with(self.prefix))
                .map(|(k, s)| (k.to_owned(), s))
        });
        let allowed = format!(
            "the whole bucket can be listed, not only {:?} (an s3:prefix condition on s3:ListBucket limits it)",
            self.prefix
        );
        report
            .items
            .push(expect_denied(LIST_OUT, listed.map(|_| ()), allowed));
        outside
    }

    async fn read_outside(
        &self,
        client: &aws_sdk_s3::Client,
        outside: Option<(String, i64)>,
    ) -> CheckItem {
        if self.prefix.is_empty() {
            return item(READ_OUT, Outcome::Skip, "the prefix is the whole bucket");
        }
        let (key, size) = outside.unwrap_or_else(|| (OUTSIDE_KEY.to_owned(), 0));
        let result = match self.read(client, &key, size).await {
            // S3 says "not found" rather than AccessDenied only to a caller allowed to GetObject.
            Err(e) if e.cause == Cause::NotFound => Ok(()),
            other => other,
        };
        expect_denied(
            READ_OUT,
            result,
            format!("s3:GetObject is allowed on {key}, outside the prefix"),
        )
    }

    /// PutObject of a tiny probe under the prefix, removed at once if it worked.
    async fn write(&self, client: &aws_sdk_s3::Client) -> CheckItem {
        let key = format!("{}{PROBE_KEY}", self.prefix);
        let put = client
            .put_object()
            .bucket(self.bucket)
            .key(&key)
            .body(ByteStream::from_static(b"curlew access probe: delete me\n"))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| CallError::from_sdk(&e));
        let mut allowed = format!("curlew could write {key}");
        if put.is_ok() {
            match client
                .delete_object()
                .bucket(self.bucket)
                .key(&key)
                .send()
                .await
            {
                Ok(_) => allowed.push_str(" (the probe was removed)"),
                Err(e) => allowed.push_str(&format!(
                    " and could not remove it ({}): delete it by hand",
                    CallError::from_sdk(&e)
                )),
            }
        }
        expect_denied(WRITE, put, allowed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions() {
        assert_eq!(region_name(None), "us-east-1");
        assert_eq!(region_name(Some("")), "us-east-1");
        assert_eq!(region_name(Some("EU")), "eu-west-1");
        assert_eq!(region_name(Some("ap-south-2")), "ap-south-2");
    }

    #[test]
    fn allowed_is_a_warning_denied_a_pass_throttled_a_failure() {
        let denied = CallError {
            cause: Cause::AccessDenied,
            code: "AccessDenied".into(),
            message: "no".into(),
            ..CallError::default()
        };
        let i = expect_denied(WRITE, Err(denied), "x".into());
        assert_eq!(
            (i.outcome, i.detail.as_str()),
            (Outcome::Pass, "refused (AccessDenied)")
        );
        let i = expect_denied(WRITE, Ok(()), "curlew could write k".into());
        assert_eq!(
            (i.outcome, i.detail.as_str()),
            (Outcome::Warn, "wider than needed: curlew could write k")
        );
        let slow = CallError {
            cause: Cause::Throttled,
            code: "SlowDown".into(),
            message: "slow".into(),
            ..CallError::default()
        };
        let i = expect_denied(WRITE, Err(slow), "x".into());
        assert_eq!(
            (i.outcome, i.cause),
            (Outcome::Fail, Some(Cause::Throttled))
        );
    }
}
