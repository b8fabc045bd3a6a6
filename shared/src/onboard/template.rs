//! The whole CloudFormation template a customer deploys in the payer
//! account: parameters (bucket, prefix, report/export name), the read role
//! with its trust and read policies, optionally the delivery bucket policy,
//! and the `Custom::CurlewConnection` resource that tells curlew (through its
//! SNS topic) that the role exists, so curlew proves access and registers the
//! connection before the stack completes.
//!
//! The policies come from [`super::policy`], generated with `${BucketName}` /
//! `${Prefix}` placeholders that become `Fn::Sub` expressions: one generator
//! for the JSON a customer pastes and the template they deploy.

use super::pending::check_tenant;
use super::policy::{delivery_bucket_policy, read_policy, trust_policy, ReadExtras};
use super::secret::{ExternalId, OnboardingToken};
use super::OnboardingError;
use serde_json::{json, Map, Value};

/// Every customer role curlew assumes is named with this prefix, so curlew's
/// own IAM policy can allow sts:AssumeRole on `role/curlew-read-*` only.
pub const ROLE_NAME_PREFIX: &str = "curlew-read-";

/// Seconds CloudFormation waits for curlew's answer (the handler retries IAM
/// propagation for about two minutes, and answers before its own deadline).
pub const SERVICE_TIMEOUT_SECONDS: u32 = 600;

/// The role name for a tenant: `curlew-read-<tenant>`.
pub fn role_name(tenant: &str) -> String {
    format!("{ROLE_NAME_PREFIX}{tenant}")
}

/// What goes into a customer's template.
#[derive(Debug, Clone)]
pub struct TemplateSpec<'a> {
    pub tenant: &'a str,
    /// The principal that assumes the role (curlew's function role).
    pub platform_principal: &'a str,
    /// curlew's onboarding SNS topic (the custom resource's ServiceToken).
    pub service_token: &'a str,
    pub external_id: &'a ExternalId,
    pub token: &'a OnboardingToken,
    /// Parameter defaults; the customer may change them at deploy time.
    pub bucket: Option<&'a str>,
    pub prefix: Option<&'a str>,
    pub report: Option<&'a str>,
    pub extras: ReadExtras,
    /// Also attach the bucket policy that lets AWS deliver the report (only
    /// for a bucket that has no policy yet: a bucket has one policy).
    pub delivery_policy: bool,
    /// Forward AWS Health events to curlew's event bus (this ARN): an
    /// EventBridge rule on the default bus and the role it needs.
    pub health_bus: Option<&'a str>,
}

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error(transparent)]
    Tenant(#[from] OnboardingError),
    #[error("role name {0:?} is longer than IAM's 64 characters: use a shorter tenant id")]
    RoleNameTooLong(String),
    #[error("{what} {value:?} is not valid: {hint}")]
    Invalid {
        what: &'static str,
        value: String,
        hint: &'static str,
    },
}

/// Strings holding `${...}` become `{"Fn::Sub": ...}`.
fn substitute(v: Value) -> Value {
    match v {
        Value::String(s) if s.contains("${") => json!({ "Fn::Sub": s }),
        Value::Array(a) => Value::Array(a.into_iter().map(substitute).collect()),
        Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, substitute(v))).collect()),
        other => other,
    }
}

fn check_arn(what: &'static str, value: &str, service: &str) -> Result<(), TemplateError> {
    let parts: Vec<&str> = value.splitn(6, ':').collect();
    let ok = parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == service
        && parts[4].len() == 12
        && parts[4].bytes().all(|b| b.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(TemplateError::Invalid {
            what,
            value: value.to_owned(),
            hint: "give a full ARN with a 12-digit account id",
        })
    }
}

/// `arn:aws:events:<region>:<account>:event-bus/<name>`.
pub fn check_bus_arn(value: &str) -> Result<(), TemplateError> {
    check_arn("health event bus", value, "events")?;
    if value
        .splitn(6, ':')
        .nth(5)
        .is_some_and(|r| r.starts_with("event-bus/"))
    {
        Ok(())
    } else {
        Err(TemplateError::Invalid {
            what: "health event bus",
            value: value.to_owned(),
            hint: "give the event bus ARN (arn:aws:events:REGION:ACCOUNT:event-bus/NAME), the HealthEventBusArn output of curlew's stack",
        })
    }
}

/// The detail-types of AWS Health on EventBridge (a wildcard such as
/// `aws.health*` matches nothing: both are named).
pub const HEALTH_DETAIL_TYPES: [&str; 2] = ["AWS Health Event", "AWS Health Abuse Event"];

/// The rule (default bus, source aws.health) that forwards Health events to
/// curlew's bus, and the role EventBridge assumes for the cross-account
/// target: events:PutEvents on that bus only. Names are left to
/// CloudFormation, so the stack deploys in every region.
fn health_resources(bus: &str, resources: &mut Map<String, Value>) {
    resources.insert(
        "CurlewHealthForwardRole".into(),
        json!({
            "Type": "AWS::IAM::Role",
            "Properties": {
                "Description": "Lets EventBridge put this account's AWS Health events on curlew's event bus",
                "AssumeRolePolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [{
                        "Effect": "Allow",
                        "Principal": { "Service": "events.amazonaws.com" },
                        "Action": "sts:AssumeRole",
                        "Condition": {
                            "StringEquals": { "aws:SourceAccount": { "Ref": "AWS::AccountId" } }
                        }
                    }]
                },
                "Policies": [{
                    "PolicyName": "curlew-health-forward",
                    "PolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [{
                            "Sid": "PutOnCurlewBusOnly",
                            "Effect": "Allow",
                            "Action": "events:PutEvents",
                            "Resource": bus
                        }]
                    }
                }]
            }
        }),
    );
    resources.insert(
        "CurlewHealthRule".into(),
        json!({
            "Type": "AWS::Events::Rule",
            "Properties": {
                "Description": "AWS Health events of this region to curlew (one rule per region)",
                "EventPattern": {
                    "source": ["aws.health"],
                    "detail-type": HEALTH_DETAIL_TYPES,
                },
                "State": "ENABLED",
                "Targets": [{
                    "Id": "curlew-health",
                    "Arn": bus,
                    "RoleArn": { "Fn::GetAtt": ["CurlewHealthForwardRole", "Arn"] }
                }]
            }
        }),
    );
}

/// Check what a template is made from (before anything is recorded).
pub fn check_template_inputs(
    tenant: &str,
    platform_principal: &str,
    service_token: &str,
) -> Result<(), TemplateError> {
    check_tenant(tenant)?;
    let role = role_name(tenant);
    if role.len() > 64 {
        return Err(TemplateError::RoleNameTooLong(role));
    }
    check_arn("platform principal", platform_principal, "iam")?;
    check_arn("service token", service_token, "sns")
}

/// The customer's CloudFormation template (JSON).
pub fn customer_template(spec: &TemplateSpec<'_>) -> Result<Value, TemplateError> {
    check_template_inputs(spec.tenant, spec.platform_principal, spec.service_token)?;
    let role = role_name(spec.tenant);

    let mut parameters = Map::new();
    parameters.insert(
        "BucketName".into(),
        json!({
            "Type": "String",
            "Description": "S3 bucket the Cost and Usage Report / Data Export is delivered to",
            "AllowedPattern": "^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$",
            "Default": spec.bucket.unwrap_or(""),
        }),
    );
    parameters.insert(
        "Prefix".into(),
        json!({
            "Type": "String",
            "Description": "S3 prefix of the report, without leading or trailing '/'",
            "AllowedPattern": "^[^/](.*[^/])?$",
            "Default": spec.prefix.map(super::policy::clean_prefix).unwrap_or("cur"),
        }),
    );
    parameters.insert(
        "ReportName".into(),
        json!({
            "Type": "String",
            "Description": "Name of the CUR report definition or Data Export",
            "MinLength": 1,
            "Default": spec.report.unwrap_or(""),
        }),
    );
    for p in parameters.values_mut() {
        if p["Default"] == "" {
            p.as_object_mut().expect("object").remove("Default");
        }
    }

    let mut resources = Map::new();
    resources.insert(
        "CurlewReadRole".into(),
        json!({
            "Type": "AWS::IAM::Role",
            "Properties": {
                "RoleName": role,
                "Description": "Read-only access for curlew to the billing report prefix",
                "MaxSessionDuration": 3600,
                "AssumeRolePolicyDocument":
                    trust_policy(spec.platform_principal, spec.external_id.expose()),
                "Policies": [{
                    "PolicyName": "curlew-billing-read",
                    "PolicyDocument": substitute(read_policy(
                        "${AWS::Partition}",
                        "${BucketName}",
                        "${Prefix}",
                        spec.extras,
                    )),
                }],
            }
        }),
    );
    let mut connection = json!({
        "Type": "Custom::CurlewConnection",
        "Properties": {
            "ServiceToken": spec.service_token,
            "ServiceTimeout": SERVICE_TIMEOUT_SECONDS,
            "TenantId": spec.tenant,
            "OnboardingToken": spec.token.expose(),
            "RoleArn": { "Fn::GetAtt": ["CurlewReadRole", "Arn"] },
            "BucketName": { "Ref": "BucketName" },
            "Prefix": { "Ref": "Prefix" },
            "ReportName": { "Ref": "ReportName" },
        }
    });
    if spec.delivery_policy {
        resources.insert(
            "BillingDeliveryBucketPolicy".into(),
            json!({
                "Type": "AWS::S3::BucketPolicy",
                "Properties": {
                    "Bucket": { "Ref": "BucketName" },
                    "PolicyDocument":
                        substitute(delivery_bucket_policy(
                            "${AWS::Partition}",
                            "${BucketName}",
                            "${AWS::AccountId}",
                        )),
                }
            }),
        );
        connection["DependsOn"] = json!(["BillingDeliveryBucketPolicy"]);
    }
    resources.insert("CurlewConnection".into(), connection);

    let mut outputs = json!({
        "RoleArn": {
            "Description": "The role curlew assumes (with your External ID)",
            "Value": { "Fn::GetAtt": ["CurlewReadRole", "Arn"] }
        },
        "ConnectionId": {
            "Description": "curlew's id for this connection",
            "Value": { "Fn::GetAtt": ["CurlewConnection", "ConnectionId"] }
        }
    });
    let mut template = json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": format!("curlew: read-only billing access for tenant {}", spec.tenant),
    });
    if let Some(bus) = spec.health_bus {
        check_bus_arn(bus)?;
        // Health events are regional: the same template deploys in every
        // other region with HealthRegionOnly=true (a StackSet, or one deploy
        // per region), and then holds only the rule and its role.
        parameters.insert(
            "HealthRegionOnly".into(),
            json!({
                "Type": "String",
                "Description": "true in every region but the first: only the AWS Health rule (Health events are regional); the other parameters are then unused",
                "AllowedValues": ["false", "true"],
                "Default": "false",
            }),
        );
        for r in resources.values_mut() {
            r["Condition"] = json!("FullStack");
        }
        for o in outputs.as_object_mut().expect("object").values_mut() {
            o["Condition"] = json!("FullStack");
        }
        health_resources(bus, &mut resources);
        outputs["HealthRuleRegion"] = json!({
            "Description": "AWS Health events of this region go to curlew; deploy with HealthRegionOnly=true in every other region you use",
            "Value": { "Ref": "AWS::Region" }
        });
        template["Conditions"] = json!({
            "FullStack": { "Fn::Equals": [{ "Ref": "HealthRegionOnly" }, "false"] }
        });
    }
    template["Parameters"] = Value::Object(parameters);
    template["Resources"] = Value::Object(resources);
    template["Outputs"] = outputs;
    Ok(template)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec<'a>(id: &'a ExternalId, tok: &'a OnboardingToken) -> TemplateSpec<'a> {
        TemplateSpec {
            tenant: "acme",
            platform_principal: "arn:aws:iam::999988887777:role/curlew-ingest",
            service_token: "arn:aws:sns:us-east-1:999988887777:curlew-onboard",
            external_id: id,
            token: tok,
            bucket: Some("acme-billing"),
            prefix: Some("cur/"),
            report: None,
            extras: ReadExtras::default(),
            delivery_policy: false,
            health_bus: None,
        }
    }

    #[test]
    fn template_wires_role_policies_and_the_custom_resource() {
        let id = ExternalId::mint().unwrap();
        let tok = OnboardingToken::mint().unwrap();
        let t = customer_template(&spec(&id, &tok)).unwrap();
        let role = &t["Resources"]["CurlewReadRole"]["Properties"];
        assert_eq!(role["RoleName"], "curlew-read-acme");
        assert_eq!(
            role["AssumeRolePolicyDocument"]["Statement"][0]["Condition"]["StringEquals"]
                ["sts:ExternalId"],
            id.expose()
        );
        let read = &role["Policies"][0]["PolicyDocument"]["Statement"];
        assert_eq!(
            read[0]["Resource"],
            json!({"Fn::Sub": "arn:${AWS::Partition}:s3:::${BucketName}/${Prefix}/*"})
        );
        let c = &t["Resources"]["CurlewConnection"];
        assert_eq!(c["Type"], "Custom::CurlewConnection");
        assert_eq!(c["Properties"]["OnboardingToken"], tok.expose());
        assert_eq!(c["Properties"]["ServiceTimeout"], SERVICE_TIMEOUT_SECONDS);
        assert_eq!(t["Parameters"]["Prefix"]["Default"], "cur");
        assert!(t["Parameters"]["ReportName"].get("Default").is_none());
        assert!(t["Resources"].get("BillingDeliveryBucketPolicy").is_none());

        let mut s = spec(&id, &tok);
        s.delivery_policy = true;
        let t = customer_template(&s).unwrap();
        let bp = &t["Resources"]["BillingDeliveryBucketPolicy"]["Properties"]["PolicyDocument"];
        assert_eq!(
            bp["Statement"][0]["Condition"]["StringLike"]["aws:SourceAccount"],
            json!({"Fn::Sub": "${AWS::AccountId}"})
        );
        // One template for every partition: no ARN of curlew's making names
        // one (the principal and the service token are curlew's own ARNs).
        let mut text = serde_json::to_string(&t).unwrap();
        for given in [s.platform_principal, s.service_token] {
            text = text.replace(given, "");
        }
        assert!(!text.contains("arn:aws:"), "{text}");
        assert!(text.contains("arn:${AWS::Partition}:cur:*:${AWS::AccountId}:definition/*"));
    }

    #[test]
    fn health_adds_the_rule_its_role_and_a_region_only_mode() {
        let id = ExternalId::mint().unwrap();
        let tok = OnboardingToken::mint().unwrap();
        let t = customer_template(&spec(&id, &tok)).unwrap();
        assert!(t["Resources"].get("CurlewHealthRule").is_none());
        assert!(t.get("Conditions").is_none());
        let bus = "arn:aws:events:us-east-1:999988887777:event-bus/curlew-health";
        let mut s = spec(&id, &tok);
        s.health_bus = Some(bus);
        let t = customer_template(&s).unwrap();
        let rule = &t["Resources"]["CurlewHealthRule"]["Properties"];
        assert_eq!(rule["EventPattern"]["source"], json!(["aws.health"]));
        assert_eq!(
            rule["EventPattern"]["detail-type"],
            json!(["AWS Health Event", "AWS Health Abuse Event"])
        );
        assert_eq!(rule["Targets"][0]["Arn"], bus);
        let put = &t["Resources"]["CurlewHealthForwardRole"]["Properties"]["Policies"][0]
            ["PolicyDocument"]["Statement"];
        assert_eq!(
            put,
            &json!([{"Sid": "PutOnCurlewBusOnly", "Effect": "Allow", "Action": "events:PutEvents", "Resource": bus}])
        );
        assert_eq!(t["Resources"]["CurlewReadRole"]["Condition"], "FullStack");
        assert!(t["Resources"]["CurlewHealthRule"]
            .get("Condition")
            .is_none());
        s.health_bus = Some("arn:aws:sns:us-east-1:999988887777:curlew-onboard");
        assert!(matches!(
            customer_template(&s),
            Err(TemplateError::Invalid { .. })
        ));
    }

    #[test]
    fn bad_inputs_are_refused() {
        let id = ExternalId::mint().unwrap();
        let tok = OnboardingToken::mint().unwrap();
        let mut s = spec(&id, &tok);
        s.platform_principal = "curlew-ingest";
        assert!(matches!(
            customer_template(&s),
            Err(TemplateError::Invalid { .. })
        ));
        let long = "t".repeat(60);
        let mut s = spec(&id, &tok);
        s.tenant = &long;
        assert!(matches!(
            customer_template(&s),
            Err(TemplateError::RoleNameTooLong(_))
        ));
    }
}
