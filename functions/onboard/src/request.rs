//! A CloudFormation custom resource request as it arrives in an SNS record,
//! checked: the stack ARN it names, its properties, the physical id it carries.
//!
//! Nothing here is trusted because it parsed: anyone allowed to publish to the
//! topic can write any of it. The onboarding token (`handler`) is the gate.

use aws_lambda_events::event::cloudformation::CloudFormationCustomResourceRequest;
use curlew::onboard::pending::check_tenant;
use curlew::onboard::OnboardingToken;
use serde_json::Value;

/// CloudFormation bounds these (stack ARNs are a few hundred bytes, physical
/// ids at most 1 KB); longer ones are not from CloudFormation and could not be
/// echoed inside a 4096-byte answer.
const MAX_STACK_ID: usize = 1024;
const MAX_ID: usize = 256;
const MAX_PHYSICAL_ID: usize = 1024;

/// The only roles curlew may assume: the customer template names its role
/// `curlew-read-<tenant>`, and curlew's own IAM allows sts:AssumeRole on
/// `arn:<partition>:iam::*:role/curlew-read-*` only.
pub use curlew::onboard::template::ROLE_NAME_PREFIX;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Create,
    Update { physical_id: String },
    Delete { physical_id: String },
}

impl Kind {
    pub fn name(&self) -> &'static str {
        match self {
            Kind::Create => "Create",
            Kind::Update { .. } => "Update",
            Kind::Delete { .. } => "Delete",
        }
    }
}

/// A request whose identifiers are well-formed (its properties are checked
/// per request type, see [`Props::from_value`]). Debug leaves out the
/// presigned ResponseURL and the properties (they hold the onboarding token).
#[derive(Clone)]
pub struct Request {
    pub kind: Kind,
    pub stack_id: String,
    pub stack: StackArn,
    pub request_id: String,
    pub logical_resource_id: String,
    /// Presigned: never log it (see `response::CheckedUrl`, whose Debug shows
    /// no query).
    pub response_url: String,
    pub properties: Value,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("kind", &self.kind)
            .field("stack_id", &self.stack_id)
            .field("request_id", &self.request_id)
            .field("logical_resource_id", &self.logical_resource_id)
            .field("response_url", &"<presigned>")
            .field("properties", &"<redacted>")
            .finish()
    }
}

/// Why a record cannot be answered at all. Displays carry no URL, no
/// property values.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum DropReason {
    #[error("the SNS message is not a CloudFormation custom resource request ({0})")]
    NotARequest(String),
    #[error("StackId is not a CloudFormation stack ARN")]
    BadStackId,
    #[error("{0} is empty or longer than CloudFormation sends")]
    BadField(&'static str),
    #[error("ResponseURL refused: {0}")]
    ResponseUrl(String),
    #[error("another copy of this request is being answered (until {0})")]
    InFlight(String),
}

/// `arn:<partition>:cloudformation:<region>:<account>:stack/<name>/<id>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackArn {
    pub partition: String,
    pub region: String,
    pub account: String,
}

/// A 12-digit AWS account id.
pub fn is_account(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// `us-east-1`, `cn-north-1`, `us-gov-west-1`, `ap-southeast-5`...: lower-case
/// letters in dash-separated words, ending in a number.
pub fn is_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    s.len() <= 32
        && parts.len() >= 3
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].bytes().all(|b| b.is_ascii_digit())
        && !parts[parts.len() - 1].is_empty()
}

fn is_partition(s: &str) -> bool {
    matches!(s, "aws" | "aws-cn" | "aws-us-gov")
}

impl StackArn {
    pub fn parse(s: &str) -> Option<StackArn> {
        let mut it = s.splitn(6, ':');
        let (arn, partition, service, region, account, resource) = (
            it.next()?,
            it.next()?,
            it.next()?,
            it.next()?,
            it.next()?,
            it.next()?,
        );
        let mut res = resource.splitn(3, '/');
        let (kind, name, id) = (res.next()?, res.next()?, res.next()?);
        let name_ok = !name.is_empty()
            && name.len() <= 128
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        let id_ok = !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        let ok = arn == "arn"
            && is_partition(partition)
            && service == "cloudformation"
            && is_region(region)
            && (partition == "aws-cn") == region.starts_with("cn-")
            && is_account(account)
            && kind == "stack"
            && name_ok
            && id_ok;
        ok.then(|| StackArn {
            partition: partition.to_owned(),
            region: region.to_owned(),
            account: account.to_owned(),
        })
    }
}

fn bounded(s: &str, max: usize, name: &'static str) -> Result<(), DropReason> {
    // Printable ASCII without quotes or backslashes: what CloudFormation
    // sends, and what keeps an echoed id from growing when JSON-escaped.
    let printable = s
        .bytes()
        .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\');
    if s.is_empty() || s.len() > max || !printable {
        Err(DropReason::BadField(name))
    } else {
        Ok(())
    }
}

impl Request {
    /// The request in an SNS record's Message.
    pub fn parse(message: &str) -> Result<Request, DropReason> {
        // serde's messages can quote values; say only where it went wrong.
        let raw: CloudFormationCustomResourceRequest =
            serde_json::from_str(message).map_err(|e| {
                DropReason::NotARequest(format!(
                    "{:?} error at line {} column {}",
                    e.classify(),
                    e.line(),
                    e.column()
                ))
            })?;
        let (kind, request_id, response_url, stack_id, logical, properties) = match raw {
            CloudFormationCustomResourceRequest::Create(r) => (
                Kind::Create,
                r.request_id,
                r.response_url,
                r.stack_id,
                r.logical_resource_id,
                r.resource_properties,
            ),
            CloudFormationCustomResourceRequest::Update(r) => (
                Kind::Update {
                    physical_id: r.physical_resource_id,
                },
                r.request_id,
                r.response_url,
                r.stack_id,
                r.logical_resource_id,
                r.resource_properties,
            ),
            CloudFormationCustomResourceRequest::Delete(r) => (
                Kind::Delete {
                    physical_id: r.physical_resource_id,
                },
                r.request_id,
                r.response_url,
                r.stack_id,
                r.logical_resource_id,
                r.resource_properties,
            ),
            _ => return Err(DropReason::NotARequest("unknown RequestType".into())),
        };
        bounded(&stack_id, MAX_STACK_ID, "StackId")?;
        bounded(&request_id, MAX_ID, "RequestId")?;
        bounded(&logical, MAX_ID, "LogicalResourceId")?;
        if let Kind::Update { physical_id } | Kind::Delete { physical_id } = &kind {
            bounded(physical_id, MAX_PHYSICAL_ID, "PhysicalResourceId")?;
        }
        let stack = StackArn::parse(&stack_id).ok_or(DropReason::BadStackId)?;
        Ok(Request {
            kind,
            stack_id,
            stack,
            request_id,
            logical_resource_id: logical,
            response_url,
            properties,
        })
    }
}

/// The properties of a `Custom::CurlewConnection`, checked.
#[derive(Debug, Clone)]
pub struct Props {
    pub tenant: String,
    pub role_arn: String,
    /// The account in the role ARN.
    pub role_account: String,
    pub bucket: String,
    pub prefix: String,
    pub report: String,
    /// Redacted in Debug/Display.
    pub token: OnboardingToken,
}

/// What is wrong with the properties: the Reason of a FAILED answer, so it
/// names the property and the rule, never the token's value.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PropsError {
    #[error("ResourceProperties must be an object")]
    NotAnObject,
    #[error("property {0} is missing or empty")]
    Missing(&'static str),
    #[error("property {0} must be a string")]
    NotAString(&'static str),
    #[error("TenantId must be 1-64 letters, digits, '-' or '_'")]
    Tenant,
    #[error("RoleArn must be arn:{partition}:iam::<account>:role/{ROLE_NAME_PREFIX}<name> (curlew may assume only roles named {ROLE_NAME_PREFIX}*, without a path)")]
    RoleArn { partition: String },
    #[error("BucketName is not a valid S3 bucket name")]
    Bucket,
    #[error("Prefix must be at most 1024 characters without control characters")]
    Prefix,
    #[error("ReportName must be 1-256 characters of letters, digits and !-_.*'()")]
    Report,
    #[error("OnboardingToken is not a curlew onboarding token")]
    Token,
}

fn string(v: &serde_json::Map<String, Value>, k: &'static str) -> Result<String, PropsError> {
    match v.get(k) {
        None | Some(Value::Null) => Err(PropsError::Missing(k)),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(PropsError::NotAString(k)),
    }
}

fn required(v: &serde_json::Map<String, Value>, k: &'static str) -> Result<String, PropsError> {
    let s = string(v, k)?;
    if s.is_empty() {
        Err(PropsError::Missing(k))
    } else {
        Ok(s)
    }
}

/// S3 bucket naming: 3-63 of `a-z0-9.-`, starting and ending alphanumeric.
fn is_bucket(s: &str) -> bool {
    let b = s.as_bytes();
    (3..=63).contains(&b.len())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'.' || *c == b'-')
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && !s.contains("..")
}

/// The account of `arn:<partition>:iam::<account>:role/curlew-read-<name>`.
fn role_account(arn: &str, partition: &str) -> Option<String> {
    let rest = arn.strip_prefix("arn:")?.strip_prefix(partition)?;
    let rest = rest.strip_prefix(":iam::")?;
    let (account, resource) = rest.split_once(':')?;
    let name = resource
        .strip_prefix("role/")?
        .strip_prefix(ROLE_NAME_PREFIX)?;
    let ok = is_account(account)
        && !name.is_empty()
        && ROLE_NAME_PREFIX.len() + name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b));
    ok.then(|| account.to_owned())
}

impl Props {
    /// Checks every property of the resource (in the stack's partition).
    pub fn from_value(v: &Value, stack: &StackArn) -> Result<Props, PropsError> {
        let v = v.as_object().ok_or(PropsError::NotAnObject)?;
        let tenant = required(v, "TenantId")?;
        check_tenant(&tenant).map_err(|_| PropsError::Tenant)?;
        let role_arn = required(v, "RoleArn")?;
        let role_account =
            role_account(&role_arn, &stack.partition).ok_or_else(|| PropsError::RoleArn {
                partition: stack.partition.clone(),
            })?;
        let bucket = required(v, "BucketName")?;
        if !is_bucket(&bucket) {
            return Err(PropsError::Bucket);
        }
        let prefix = match v.get("Prefix") {
            None | Some(Value::Null) => String::new(),
            Some(_) => string(v, "Prefix")?,
        };
        if prefix.len() > 1024 || prefix.chars().any(char::is_control) {
            return Err(PropsError::Prefix);
        }
        let report = required(v, "ReportName")?;
        if report.len() > 256
            || !report
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!-_.*'()".contains(&b))
        {
            return Err(PropsError::Report);
        }
        let token = required(v, "OnboardingToken")?;
        if token.len() > 128
            || !token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(PropsError::Token);
        }
        Ok(Props {
            tenant,
            role_arn,
            role_account,
            bucket,
            prefix,
            report,
            token: OnboardingToken::presented(&token),
        })
    }
}

/// `curlew:<tenant>:<payer account>`: one per connection, never changed by an Update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhysicalId {
    pub tenant: String,
    pub account: String,
}

impl PhysicalId {
    pub fn parse(s: &str) -> Option<PhysicalId> {
        let rest = s.strip_prefix("curlew:")?;
        let (tenant, account) = rest.split_once(':')?;
        (check_tenant(tenant).is_ok() && is_account(account)).then(|| PhysicalId {
            tenant: tenant.to_owned(),
            account: account.to_owned(),
        })
    }

    /// The registry's name for the connection.
    pub fn connection_id(&self) -> String {
        format!("{}/{}", self.tenant, self.account)
    }
}

impl std::fmt::Display for PhysicalId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "curlew:{}:{}", self.tenant, self.account)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stack_arns() {
        let s = StackArn::parse(
            "arn:aws:cloudformation:us-east-1:111122223333:stack/curlew-connect/5b6a9d10-abcd",
        )
        .unwrap();
        assert_eq!(
            (s.region.as_str(), s.account.as_str()),
            ("us-east-1", "111122223333")
        );
        assert!(
            StackArn::parse("arn:aws-cn:cloudformation:cn-north-1:111122223333:stack/a/b")
                .is_some()
        );
        for bad in [
            "arn:aws:cloudformation:us-east-1:11112222333:stack/a/b",
            "arn:aws:cloudformation:cn-north-1:111122223333:stack/a/b",
            "arn:aws:s3:us-east-1:111122223333:stack/a/b",
            "arn:aws:cloudformation:us-east-1:111122223333:stackset/a/b",
            "arn:aws:cloudformation:US-EAST-1:111122223333:stack/a/b",
            "arn:aws:cloudformation:us-east-1.evil.com:111122223333:stack/a/b",
            "arn:aws:cloudformation:us-east-1:111122223333:stack/a",
            "arn:aws:cloudformation:us-east-1:111122223333:stack/a/b?c",
        ] {
            assert!(StackArn::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn properties() {
        let stack =
            StackArn::parse("arn:aws:cloudformation:us-east-1:111122223333:stack/a/b").unwrap();
        let good = json!({"TenantId": "acme", "RoleArn": "arn:aws:iam::111122223333:role/curlew-read-acme",
            "BucketName": "billing.bucket-1", "Prefix": "cur/", "ReportName": "curlew-cur",
            "OnboardingToken": "cwt_abc", "ServiceToken": "arn:aws:sns:us-east-1:1:t"});
        let p = Props::from_value(&good, &stack).unwrap();
        assert_eq!(p.role_account, "111122223333");
        assert!(!format!("{p:?}").contains("cwt_abc"));
        let with = |k: &str, v: Value| {
            let mut g = good.clone();
            g[k] = v;
            Props::from_value(&g, &stack).map(|_| ()).unwrap_err()
        };
        assert_eq!(with("TenantId", json!("../x")), PropsError::Tenant);
        assert_eq!(
            with("TenantId", json!(5)),
            PropsError::NotAString("TenantId")
        );
        assert_eq!(
            with("OnboardingToken", json!("")),
            PropsError::Missing("OnboardingToken")
        );
        assert_eq!(with("OnboardingToken", json!("a b")), PropsError::Token);
        assert_eq!(with("BucketName", json!("Bad_Bucket")), PropsError::Bucket);
        assert_eq!(with("ReportName", json!("a/b")), PropsError::Report);
        for arn in [
            "arn:aws:iam::111122223333:role/other",
            "arn:aws:iam::111122223333:role/path/curlew-read-acme",
            "arn:aws-cn:iam::111122223333:role/curlew-read-acme",
            "arn:aws:iam::11112222333:role/curlew-read-acme",
            "arn:aws:iam::111122223333:user/curlew-read-acme",
            "arn:aws:iam::111122223333:role/curlew-read-",
        ] {
            assert!(
                matches!(with("RoleArn", json!(arn)), PropsError::RoleArn { .. }),
                "{arn}"
            );
        }
        let mut no_prefix = good.clone();
        no_prefix.as_object_mut().unwrap().remove("Prefix");
        assert_eq!(Props::from_value(&no_prefix, &stack).unwrap().prefix, "");
    }

    #[test]
    fn physical_ids() {
        let p = PhysicalId::parse("curlew:acme:111122223333").unwrap();
        assert_eq!(p.to_string(), "curlew:acme:111122223333");
        assert_eq!(p.connection_id(), "acme/111122223333");
        for bad in [
            "curlew:acme",
            "curlew:ac/me:111122223333",
            "x:acme:111122223333",
            "curlew:acme:1",
        ] {
            assert!(PhysicalId::parse(bad).is_none(), "{bad}");
        }
    }
}
