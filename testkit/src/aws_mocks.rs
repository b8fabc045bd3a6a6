//! STS and a customer's S3 bucket mocked with aws-smithy-mocks, for the
//! access-proof tests of the `curlew` crate and of the onboard function:
//! what moto cannot show (sts:ExternalId in a trust policy, KMS refusals).

use aws_sdk_s3::operation::get_bucket_location::GetBucketLocationOutput;
use aws_sdk_s3::operation::get_object::{GetObjectError, GetObjectOutput};
use aws_sdk_s3::operation::list_objects_v2::{ListObjectsV2Error, ListObjectsV2Output};
use aws_sdk_s3::operation::put_object::PutObjectError;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{BucketLocationConstraint, Object};
use aws_sdk_sts::operation::assume_role::{AssumeRoleError, AssumeRoleInput, AssumeRoleOutput};
use aws_sdk_sts::operation::get_caller_identity::GetCallerIdentityOutput;
use aws_smithy_mocks::{mock, mock_client, Rule, RuleBuilder, RuleMode};
use aws_smithy_types::error::ErrorMetadata;
use curlew::access::AccessClients;

/// The customer's (payer) account.
pub const ACCOUNT: &str = "111122223333";
pub const MANIFEST: &str = "cur/curlew-cur/20240101-20240201/curlew-cur-Manifest.json";
pub const DATA: &str = "cur/curlew-cur/20240101-20240201/curlew-cur-1.csv.gz";
/// A session key id and secret as STS would hand them out (they must never be reported).
pub const SESSION_KEY: &str = "ASIAMOCKSESSION00001";
pub const SESSION_SECRET: &str = "mockSessionSecret/abcdefghijklmnop";
pub const SESSION_TOKEN: &str = "mockSessionTokenFwoGZXIvYXdzEXAMPLE";

/// An AccessDenied as AWS words it.
pub fn denied(action: &str) -> ErrorMetadata {
    ErrorMetadata::builder()
        .code("AccessDenied")
        .message(format!(
            "User: arn:aws:iam::999988887777:user/curlew is not authorized to perform: {action}"
        ))
        .build()
}

/// The session AssumeRole grants.
pub fn session() -> AssumeRoleOutput {
    let creds = aws_sdk_sts::types::Credentials::builder()
        .access_key_id(SESSION_KEY)
        .secret_access_key(SESSION_SECRET)
        .session_token(SESSION_TOKEN)
        .expiration(aws_smithy_types::DateTime::from_secs(4_000_000_000))
        .build()
        .unwrap();
    AssumeRoleOutput::builder().credentials(creds).build()
}

/// A rule for AssumeRole of `role_arn` with `external_id` only.
pub fn right_id(
    external_id: &str,
    role_arn: &str,
) -> RuleBuilder<AssumeRoleInput, AssumeRoleOutput, AssumeRoleError> {
    let (id, role) = (external_id.to_owned(), role_arn.to_owned());
    mock!(aws_sdk_sts::Client::assume_role).match_requests(move |r| {
        r.external_id() == Some(id.as_str()) && r.role_arn() == Some(role.as_str())
    })
}

/// `right` for the right External ID, AccessDenied for any other (or none);
/// GetCallerIdentity answers the role's account.
pub fn sts_rules(external_id: &str, role_arn: &str, right: Rule) -> Vec<Rule> {
    let id = external_id.to_owned();
    let other = mock!(aws_sdk_sts::Client::assume_role)
        .match_requests(move |r| r.external_id() != Some(id.as_str()))
        .then_error(|| AssumeRoleError::generic(denied("sts:AssumeRole")));
    let role_name = role_arn.rsplit('/').next().unwrap_or("role").to_owned();
    let who = mock!(aws_sdk_sts::Client::get_caller_identity).then_output(move || {
        GetCallerIdentityOutput::builder()
            .account(ACCOUNT)
            .arn(format!(
                "arn:aws:sts::{ACCOUNT}:assumed-role/{role_name}/curlew-access-proof"
            ))
            .build()
    });
    vec![right, other, who]
}

/// The legacy CUR manifest listed under `cur/`.
pub fn manifest() -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "assemblyId": "a1",
        "reportName": "curlew-cur",
        "billingPeriod": {"start": "20240101T000000.000Z", "end": "20240201T000000.000Z"},
        "reportKeys": [DATA],
    }))
    .unwrap()
}

fn object(key: &str, size: i64) -> Object {
    let two_hours_ago = chrono::Utc::now().timestamp() - 7200;
    Object::builder()
        .key(key)
        .size(size)
        .e_tag("\"e1\"")
        .last_modified(aws_smithy_types::DateTime::from_secs(two_hours_ago))
        .build()
}

/// S3 as a least-privilege role sees it (bucket in eu-west-1): list and read
/// under `cur/`, nothing else; `kms` makes every read under the prefix a KMS
/// refusal.
pub fn s3_rules(kms: bool) -> Vec<Rule> {
    let location = mock!(aws_sdk_s3::Client::get_bucket_location).then_output(|| {
        GetBucketLocationOutput::builder()
            .location_constraint(BucketLocationConstraint::EuWest1)
            .build()
    });
    // Allowed like the read policy's s3:prefix condition (`cur/*`): any
    // listing inside the prefix, answered with the objects under it.
    let list = mock!(aws_sdk_s3::Client::list_objects_v2)
        .match_requests(|r| r.prefix().is_some_and(|p| p.starts_with("cur/")))
        .then_compute_output(|r| {
            let under = r.prefix().unwrap_or_default().to_owned();
            let mut out = ListObjectsV2Output::builder();
            for (key, size) in [(DATA, 20), (MANIFEST, manifest().len() as i64)] {
                if key.starts_with(&under) {
                    out = out.contents(object(key, size));
                }
            }
            out.build()
        });
    let list_outside = mock!(aws_sdk_s3::Client::list_objects_v2)
        .then_error(|| ListObjectsV2Error::generic(denied("s3:ListBucket")));
    let read = mock!(aws_sdk_s3::Client::get_object)
        .match_requests(move |r| !kms && r.key().is_some_and(|k| k.starts_with("cur/")))
        .then_output(|| {
            GetObjectOutput::builder()
                .body(ByteStream::from(manifest()))
                .e_tag("\"e1\"")
                .build()
        });
    let read_refused = mock!(aws_sdk_s3::Client::get_object).then_error(move || {
        GetObjectError::generic(if kms {
            ErrorMetadata::builder()
                .code("AccessDenied")
                .message("User: arn:aws:sts::111122223333:assumed-role/curlew-reader/curlew-access-proof is not authorized to perform: kms:Decrypt on resource: arn:aws:kms:eu-west-1:111122223333:key/k1")
                .build()
        } else {
            denied("s3:GetObject")
        })
    });
    let write = mock!(aws_sdk_s3::Client::put_object)
        .then_error(|| PutObjectError::generic(denied("s3:PutObject")));
    vec![location, list, list_outside, read, read_refused, write]
}

/// curlew's clients with these rules (any matching rule answers).
pub fn mock_clients(sts: &[Rule], s3: &[Rule]) -> AccessClients {
    let sts = mock_client!(aws_sdk_sts, RuleMode::MatchAny, sts);
    let s3 = mock_client!(aws_sdk_s3, RuleMode::MatchAny, s3, |c| c
        .force_path_style(true));
    AccessClients::new(sts, s3)
}
