//! Health's service codes against the rollup's service codes (the CUR's
//! `lineItem/ProductCode`, FOCUS `x_ServiceCode`).
//!
//! The rule: compare both lower-cased with everything but letters and
//! digits dropped, and with a leading `amazon` or `aws` dropped from the
//! rollup's code: Health `EC2` is `AmazonEC2`, `LAMBDA` is `AWSLambda`,
//! `CLOUDFRONT` is `AmazonCloudFront`. Where the two names differ beyond
//! that, [`ALIASES`] names the billing code(s): `EBS` volumes are billed
//! under `AmazonEC2`, `ELASTICLOADBALANCING` is `AWSELB`, `SQS` is
//! `AWSQueueService`.

/// Health service code -> billing codes, where the rule does not find them.
pub const ALIASES: &[(&str, &[&str])] = &[
    ("EBS", &["AmazonEC2"]),
    ("VPC", &["AmazonVPC", "AmazonEC2"]),
    ("ELASTICLOADBALANCING", &["AWSELB"]),
    ("ELB", &["AWSELB"]),
    ("SQS", &["AWSQueueService"]),
    ("KMS", &["awskms"]),
    ("CLOUDWATCH", &["AmazonCloudWatch"]),
    ("LOGS", &["AmazonCloudWatch"]),
    ("EVENTS", &["AWSEvents"]),
    ("STATES", &["AWSStepFunctions"]),
    ("ES", &["AmazonES"]),
    ("APIGATEWAY", &["AmazonApiGateway"]),
    ("DIRECTCONNECT", &["AWSDirectConnect"]),
    ("BILLING", &[]),
];

fn norm(s: &str) -> String {
    s.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Whether the rollup's `billing_code` is what Health calls `health_service`.
pub fn matches(health_service: &str, billing_code: &str) -> bool {
    if let Some((_, codes)) = ALIASES
        .iter()
        .find(|(h, _)| h.eq_ignore_ascii_case(health_service))
    {
        if codes.iter().any(|c| c.eq_ignore_ascii_case(billing_code)) {
            return true;
        }
    }
    let h = norm(health_service);
    if h.is_empty() {
        return false;
    }
    let b = norm(billing_code);
    let bare = b
        .strip_prefix("amazon")
        .or_else(|| b.strip_prefix("aws"))
        .unwrap_or(&b);
    h == b || h == bare
}

/// Whether a rollup row's region is the event's: `global` (and no region)
/// matches every region, and a row without a region (global charges)
/// matches a `global` event only.
pub fn region_matches(event_region: Option<&str>, row_region: &str) -> bool {
    match event_region {
        None | Some("") | Some("global") => true,
        Some(r) => r.eq_ignore_ascii_case(row_region),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_codes_find_their_billing_codes() {
        assert!(matches("EC2", "AmazonEC2"));
        assert!(matches("S3", "AmazonS3"));
        assert!(matches("LAMBDA", "AWSLambda"));
        assert!(matches("CLOUDFRONT", "AmazonCloudFront"));
        assert!(matches("EBS", "AmazonEC2"));
        assert!(matches("ELASTICLOADBALANCING", "AWSELB"));
        assert!(matches("SQS", "AWSQueueService"));
        assert!(!matches("EC2", "AmazonECS"));
        assert!(!matches("EC2", "AmazonEC2Extra"));
        assert!(!matches("", "AmazonEC2"));
        assert!(region_matches(Some("global"), "eu-west-1"));
        assert!(region_matches(Some("us-east-1"), "US-EAST-1"));
        assert!(!region_matches(Some("us-east-1"), "us-west-2"));
    }
}
