//! IAM and bucket policies generated for the customer: the least that lets
//! curlew read one billing prefix, and nothing more.
//!
//! Compare: CloudSpend asks for about 55 actions across services; curlew's
//! read policy has three S3 actions scoped to one prefix (plus, on request,
//! Organizations and CUR definition reads).

use serde_json::{json, Value};

/// A billing prefix without leading/trailing slashes (`cur/` -> `cur`).
pub fn clean_prefix(prefix: &str) -> &str {
    prefix.trim_matches('/')
}

fn object_arn_in(partition: &str, bucket: &str, prefix: &str) -> String {
    match clean_prefix(prefix) {
        "" => format!("arn:{partition}:s3:::{bucket}/*"),
        p => format!("arn:{partition}:s3:::{bucket}/{p}/*"),
    }
}

fn bucket_arn_in(partition: &str, bucket: &str) -> String {
    format!("arn:{partition}:s3:::{bucket}")
}

/// The `s3:prefix` values a list at the billing prefix uses.
fn list_prefixes(prefix: &str) -> Value {
    let p = clean_prefix(prefix);
    json!([format!("{p}/"), format!("{p}/*")])
}

/// Optional grants beyond the bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadExtras {
    /// organizations:List* / Describe*: linked account names and the org tree.
    pub organizations: bool,
    /// cur:DescribeReportDefinitions: name the report's settings in the access check.
    pub report_definitions: bool,
    /// bcm-data-exports:GetExport / ListExports: the sweep reads an export's
    /// status (UNHEALTHY and why) and tells a deleted export from a late one.
    pub data_exports: bool,
    /// health:Describe*ForOrganization: the optional daily poll of AWS
    /// Health's organizational view (what a pushed event missed).
    pub health: bool,
}

/// The role's trust policy: only `principal_arn` may assume it, and only
/// with the tenant's External ID.
pub fn trust_policy(principal_arn: &str, external_id: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "CurlewAssumeWithExternalId",
            "Effect": "Allow",
            "Principal": { "AWS": principal_arn },
            "Action": "sts:AssumeRole",
            "Condition": { "StringEquals": { "sts:ExternalId": external_id } }
        }]
    })
}

/// The inline session policy curlew passes when it assumes a customer's
/// role for one job: the read policy of the connection's own bucket and
/// prefix (plus `extras`, what the job reads beyond it), and kms:Decrypt
/// only through S3 (an SSE-KMS bucket). A session can do only what both
/// this and the role's own policies allow, so a role granted more than it
/// should be (a whole bucket, other services) still yields a session that
/// reads this prefix and nothing else.
pub fn session_policy(partition: &str, bucket: &str, prefix: &str, extras: ReadExtras) -> Value {
    let mut p = read_policy(partition, bucket, prefix, extras);
    p["Statement"]
        .as_array_mut()
        .expect("statements")
        .push(json!({
            "Sid": "DecryptBillingFilesThroughS3",
            "Effect": "Allow",
            "Action": "kms:Decrypt",
            "Resource": "*",
            "Condition": { "StringLike": { "kms:ViaService": "s3.*.amazonaws.com*" } },
        }));
    p
}

/// The least-privilege read policy for one billing prefix, with ARNs of
/// `partition` (`aws`, `aws-cn`, `aws-us-gov`, or `${AWS::Partition}` in a
/// template).
pub fn read_policy(partition: &str, bucket: &str, prefix: &str, extras: ReadExtras) -> Value {
    let mut list = json!({
        "Sid": "ListBillingPrefix",
        "Effect": "Allow",
        "Action": "s3:ListBucket",
        "Resource": bucket_arn_in(partition, bucket),
    });
    if !clean_prefix(prefix).is_empty() {
        list["Condition"] = json!({ "StringLike": { "s3:prefix": list_prefixes(prefix) } });
    }
    let mut statements = vec![
        json!({
            "Sid": "ReadBillingFiles",
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": object_arn_in(partition, bucket, prefix),
        }),
        list,
        json!({
            "Sid": "LocateBillingBucket",
            "Effect": "Allow",
            "Action": "s3:GetBucketLocation",
            "Resource": bucket_arn_in(partition, bucket),
        }),
    ];
    if extras.organizations {
        statements.push(json!({
            "Sid": "ReadOrganization",
            "Effect": "Allow",
            "Action": ["organizations:List*", "organizations:Describe*"],
            "Resource": "*",
        }));
    }
    if extras.report_definitions {
        statements.push(json!({
            "Sid": "ReadReportDefinitions",
            "Effect": "Allow",
            "Action": "cur:DescribeReportDefinitions",
            "Resource": "*",
        }));
    }
    if extras.data_exports {
        // Read-only; neither action supports a narrower resource than the
        // export ARN, unknown before the export exists (ListExports: none).
        statements.push(json!({
            "Sid": "ReadDataExports",
            "Effect": "Allow",
            "Action": ["bcm-data-exports:GetExport", "bcm-data-exports:ListExports"],
            "Resource": "*",
        }));
    }
    if extras.health {
        // Read-only; the Health API has no resource-level permissions.
        statements.push(json!({
            "Sid": "ReadHealthEvents",
            "Effect": "Allow",
            "Action": [
                "health:DescribeEventsForOrganization",
                "health:DescribeAffectedAccountsForOrganization",
                "health:DescribeEventDetailsForOrganization",
                "health:DescribeAffectedEntitiesForOrganization"
            ],
            "Resource": "*",
        }));
    }
    json!({ "Version": "2012-10-17", "Statement": statements })
}

/// The billing bucket's policy that lets AWS deliver legacy CUR
/// (billingreports) and Data Exports (bcm-data-exports) for `payer_account`
/// only, as AWS documents it (any region of the definition: us-east-1 in
/// aws, cn-northwest-1 in aws-cn).
pub fn delivery_bucket_policy(partition: &str, bucket: &str, payer_account: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "AllowBillingDelivery",
            "Effect": "Allow",
            "Principal": {
                "Service": ["billingreports.amazonaws.com", "bcm-data-exports.amazonaws.com"]
            },
            "Action": ["s3:PutObject", "s3:GetBucketPolicy"],
            "Resource": [
                format!("arn:{partition}:s3:::{bucket}/*"),
                bucket_arn_in(partition, bucket)
            ],
            "Condition": {
                "StringLike": {
                    "aws:SourceAccount": payer_account,
                    "aws:SourceArn": [
                        format!("arn:{partition}:cur:*:{payer_account}:definition/*"),
                        format!("arn:{partition}:bcm-data-exports:*:{payer_account}:export/*")
                    ]
                }
            }
        }]
    })
}

/// Bucket-policy sharing (no role): curlew's own principal may read the
/// billing prefix and nothing else of the bucket (ARNs of the principal's
/// partition).
pub fn bucket_share_policy(bucket: &str, prefix: &str, principal_arn: &str) -> Value {
    let partition = crate::access::partition_of(Some(principal_arn));
    let bucket_arn = |b: &str| bucket_arn_in(partition, b);
    let object_arn = |b: &str, p: &str| object_arn_in(partition, b, p);
    let mut list = json!({
        "Sid": "CurlewListBillingPrefix",
        "Effect": "Allow",
        "Principal": { "AWS": principal_arn },
        "Action": "s3:ListBucket",
        "Resource": bucket_arn(bucket),
    });
    if !clean_prefix(prefix).is_empty() {
        list["Condition"] = json!({ "StringLike": { "s3:prefix": list_prefixes(prefix) } });
    }
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "CurlewReadBillingFiles",
                "Effect": "Allow",
                "Principal": { "AWS": principal_arn },
                "Action": "s3:GetObject",
                "Resource": object_arn(bucket, prefix),
            },
            list,
            {
                "Sid": "CurlewLocateBucket",
                "Effect": "Allow",
                "Principal": { "AWS": principal_arn },
                "Action": "s3:GetBucketLocation",
                "Resource": bucket_arn(bucket),
            }
        ]
    })
}

/// Every action a policy document allows (for tests and the CLI's summary).
pub fn allowed_actions(policy: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for s in policy["Statement"].as_array().into_iter().flatten() {
        if s["Effect"] != "Allow" {
            continue;
        }
        match &s["Action"] {
            Value::String(a) => out.push(a.clone()),
            Value::Array(v) => out.extend(v.iter().filter_map(|a| a.as_str().map(str::to_owned))),
            _ => {}
        }
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_policy_is_three_s3_actions_on_the_prefix() {
        let p = read_policy("aws", "bill", "/cur/", ReadExtras::default());
        assert_eq!(
            allowed_actions(&p),
            ["s3:GetBucketLocation", "s3:GetObject", "s3:ListBucket"]
        );
        let s = &p["Statement"];
        assert_eq!(s[0]["Resource"], "arn:aws:s3:::bill/cur/*");
        assert_eq!(s[1]["Resource"], "arn:aws:s3:::bill");
        assert_eq!(
            s[1]["Condition"]["StringLike"]["s3:prefix"],
            json!(["cur/", "cur/*"])
        );
        // No wildcard action, no write, nothing on other resources.
        let text = p.to_string();
        assert!(!text.contains("s3:*") && !text.contains("Put") && !text.contains("Delete"));
        let full = read_policy(
            "aws",
            "bill",
            "cur",
            ReadExtras {
                organizations: true,
                report_definitions: true,
                data_exports: true,
                health: true,
            },
        );
        assert_eq!(
            allowed_actions(&full),
            [
                "bcm-data-exports:GetExport",
                "bcm-data-exports:ListExports",
                "cur:DescribeReportDefinitions",
                "health:DescribeAffectedAccountsForOrganization",
                "health:DescribeAffectedEntitiesForOrganization",
                "health:DescribeEventDetailsForOrganization",
                "health:DescribeEventsForOrganization",
                "organizations:Describe*",
                "organizations:List*",
                "s3:GetBucketLocation",
                "s3:GetObject",
                "s3:ListBucket"
            ]
        );
    }

    #[test]
    fn trust_requires_the_external_id_from_one_principal() {
        let t = trust_policy("arn:aws:iam::999988887777:role/curlew-ingest", "XYZ");
        let s = &t["Statement"][0];
        assert_eq!(
            s["Principal"]["AWS"],
            "arn:aws:iam::999988887777:role/curlew-ingest"
        );
        assert_eq!(s["Action"], "sts:AssumeRole");
        assert_eq!(s["Condition"]["StringEquals"]["sts:ExternalId"], "XYZ");
        assert_eq!(t["Statement"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn delivery_and_share_policies() {
        let d = delivery_bucket_policy("aws", "bill", "111122223333");
        let s = &d["Statement"][0];
        assert_eq!(allowed_actions(&d), ["s3:GetBucketPolicy", "s3:PutObject"]);
        assert_eq!(
            s["Condition"]["StringLike"]["aws:SourceAccount"],
            "111122223333"
        );
        assert_eq!(
            s["Condition"]["StringLike"]["aws:SourceArn"][1],
            "arn:aws:bcm-data-exports:*:111122223333:export/*"
        );
        // Other partitions: their own ARNs throughout.
        let cn = delivery_bucket_policy("aws-cn", "bill", "111122223333");
        assert_eq!(cn["Statement"][0]["Resource"][0], "arn:aws-cn:s3:::bill/*");
        assert_eq!(
            cn["Statement"][0]["Condition"]["StringLike"]["aws:SourceArn"][0],
            "arn:aws-cn:cur:*:111122223333:definition/*"
        );
        let gov = bucket_share_policy("bill", "cur", "arn:aws-us-gov:iam::999988887777:role/x");
        assert_eq!(
            gov["Statement"][0]["Resource"],
            "arn:aws-us-gov:s3:::bill/cur/*"
        );
        assert_eq!(gov["Statement"][1]["Resource"], "arn:aws-us-gov:s3:::bill");
        let sh = bucket_share_policy("bill", "cur", "arn:aws:iam::999988887777:role/x");
        assert_eq!(
            allowed_actions(&sh),
            ["s3:GetBucketLocation", "s3:GetObject", "s3:ListBucket"]
        );
        assert_eq!(sh["Statement"][0]["Resource"], "arn:aws:s3:::bill/cur/*");
        // An empty prefix shares the whole bucket, without a prefix condition.
        let whole = read_policy("aws", "bill", "", ReadExtras::default());
        assert_eq!(whole["Statement"][0]["Resource"], "arn:aws:s3:::bill/*");
        assert!(whole["Statement"][1].get("Condition").is_none());
    }
}
