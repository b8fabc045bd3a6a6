//! What is wrong with a connection, in the terms of the cause table,
//! and what the customer can do about it. The only place a failed call
//! becomes a health cause: it reads the access classifier's [`Cause`], the
//! policy type AWS names and the region a redirect expects (all from
//! `access::cause`), never the error text a second time.

use crate::access::{CallError, Cause, DenyingPolicy};
use crate::registry::ConnectionStatus;
use serde::{Deserialize, Serialize};

/// Why a connection is not (fully) connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HealthCause {
    /// STS refused the assume: role deleted, trust policy changed or External
    /// ID mismatch (AWS gives one message for all three).
    AssumeDenied,
    /// The payer account is SUSPENDED, PENDING_CLOSURE or CLOSED.
    AccountNotActive,
    StsRegionDisabled,
    BucketGone,
    WrongRegion,
    /// A service or resource control policy denies.
    ScpDenied,
    BucketPolicyDenied,
    /// The role's policy, a permissions boundary or a session policy denies.
    IamPolicyDenied,
    KmsDenied,
    /// The access keys (keys mode) are unknown, deleted or inactive.
    CredentialsInvalid,
    ExportMissing,
    ExportUnhealthy,
    ReportStale,
    OrgAccess,
    /// Throttling, 5xx, no answer: never changes a connection's state.
    Transient,
    /// A failure none of the above explains (the AWS code is in the detail).
    Other,
}

/// Which call failed: the same AWS error means different things at each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// AssumeRole of the customer's role (role mode).
    Assume,
    /// A call on the billing bucket (location, listing, reading a manifest).
    Bucket,
    /// Organizations `ListAccounts` / `DescribeAccount`.
    Organizations,
}

impl HealthCause {
    pub fn as_str(self) -> &'static str {
        match self {
            HealthCause::AssumeDenied => "assume-denied",
            HealthCause::AccountNotActive => "account-not-active",
            HealthCause::StsRegionDisabled => "sts-region-disabled",
            HealthCause::BucketGone => "bucket-gone",
            HealthCause::WrongRegion => "wrong-region",
            HealthCause::ScpDenied => "scp-denied",
            HealthCause::BucketPolicyDenied => "bucket-policy-denied",
            HealthCause::IamPolicyDenied => "iam-policy-denied",
            HealthCause::KmsDenied => "kms-denied",
            HealthCause::CredentialsInvalid => "credentials-invalid",
            HealthCause::ExportMissing => "export-missing",
            HealthCause::ExportUnhealthy => "export-unhealthy",
            HealthCause::ReportStale => "report-stale",
            HealthCause::OrgAccess => "org-access",
            HealthCause::Transient => "transient",
            HealthCause::Other => "other",
        }
    }

    /// The status a connection takes once this cause is confirmed (two
    /// sweeps in a row); `None` for transient trouble, which never counts.
    /// Data still arrives when the report is late or Organizations is
    /// unreadable: degraded, not broken.
    pub fn status(self) -> Option<ConnectionStatus> {
        match self {
            HealthCause::Transient => None,
            HealthCause::ReportStale | HealthCause::OrgAccess | HealthCause::ExportUnhealthy => {
                Some(ConnectionStatus::Degraded)
            }
            _ => Some(ConnectionStatus::Broken),
        }
    }
}

impl std::fmt::Display for HealthCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The health cause of a failed call at `stage`.
pub fn diagnose(stage: Stage, e: &CallError) -> HealthCause {
    if e.cause.is_transient() {
        return HealthCause::Transient;
    }
    match e.cause {
        Cause::RegionDisabled => HealthCause::StsRegionDisabled,
        Cause::Kms => HealthCause::KmsDenied,
        Cause::NoSuchBucket => HealthCause::BucketGone,
        Cause::WrongRegion => HealthCause::WrongRegion,
        Cause::Credentials => HealthCause::CredentialsInvalid,
        Cause::AccessDenied => denied(stage, e.policy()),
        Cause::NotFound if stage == Stage::Bucket => HealthCause::ExportMissing,
        _ => HealthCause::Other,
    }
}

/// An AccessDenied: the organization's guardrails first (they override any
/// grant), then the policy AWS names, then what the stage implies.
fn denied(stage: Stage, policy: Option<DenyingPolicy>) -> HealthCause {
    match (policy, stage) {
        (Some(DenyingPolicy::ServiceControl | DenyingPolicy::ResourceControl), _) => {
            HealthCause::ScpDenied
        }
        (_, Stage::Organizations) => HealthCause::OrgAccess,
        (_, Stage::Assume) => HealthCause::AssumeDenied,
        (Some(DenyingPolicy::ResourceBased), _) => HealthCause::BucketPolicyDenied,
        // Identity, boundary, session, VPC endpoint, or a bare "Access Denied".
        _ => HealthCause::IamPolicyDenied,
    }
}

/// What the customer can do, in one or two sentences. `e` adds what AWS
/// said where it helps (the expected region, the error code).
pub fn remedy(cause: HealthCause, e: Option<&CallError>) -> String {
    match cause {
        HealthCause::AssumeDenied => "curlew could not assume the role. Likely: the role was deleted, its trust policy was changed, or the External ID in it no longer matches this tenant's. What to do: redeploy the onboarding stack (it recreates the role with the right trust policy)".into(),
        HealthCause::AccountNotActive => "the payer account is suspended or closing in AWS Organizations: it delivers no new billing data. What to do: reinstate the account, or disconnect it".into(),
        HealthCause::StsRegionDisabled => "STS is not activated in curlew's region for the payer account. What to do: activate it (IAM console, Account settings, Security Token Service endpoints)".into(),
        HealthCause::BucketGone => "the billing bucket no longer exists. What to do: recreate the report with a bucket and update the connection".into(),
        HealthCause::WrongRegion => match e.and_then(|e| e.region.as_deref()) {
            Some(r) => format!("the billing bucket is in {r}, not where curlew looked. What to do: nothing if it moved on purpose (the next sweep uses {r}); otherwise check the bucket name"),
            None => "the billing bucket is in another region than curlew asked. What to do: check the bucket name and region".into(),
        },
        HealthCause::ScpDenied => "an organization service or resource control policy denies curlew's read. What to do: exempt the curlew-read role from the SCP/RCP (management account, AWS Organizations, Policies)".into(),
        HealthCause::BucketPolicyDenied => "the billing bucket's policy denies curlew's read. What to do: allow the curlew-read role (or curlew's principal) s3:GetObject and s3:ListBucket on the report prefix".into(),
        HealthCause::IamPolicyDenied => "the role's permissions do not allow the read (its policy, a permissions boundary or a session policy). What to do: restore the read policy of the onboarding stack".into(),
        HealthCause::KmsDenied => "the bucket's KMS key refuses curlew. What to do: allow the curlew-read role kms:Decrypt in the key policy, and check the key is enabled".into(),
        HealthCause::CredentialsInvalid => "AWS does not accept the stored access keys (deleted, inactive or rotated). What to do: store new keys, or move to the cross-account role".into(),
        HealthCause::ExportMissing => "no report or export delivers under the connection's prefix. What to do: check the report exists in Billing (Data Exports) and delivers to this bucket and prefix".into(),
        HealthCause::ExportUnhealthy => "AWS reports the export as unhealthy. What to do: open it in Billing, Data Exports, and fix what its status names".into(),
        HealthCause::ReportStale => "the newest manifest is older than expected: AWS has stopped delivering. What to do: check the report or export is still active in Billing".into(),
        HealthCause::OrgAccess => "curlew cannot read the linked accounts from AWS Organizations (the payer is not the management account, or the role lacks the Organizations permission). What to do: deploy the onboarding stack with --organizations in the management account".into(),
        HealthCause::Transient => "AWS was busy or unreachable; the next sweep tries again".into(),
        HealthCause::Other => match e {
            Some(e) => format!("AWS answered {}. What to do: run `curlew check` for this connection", e.code_or_cause()),
            None => "an unexpected failure. What to do: run `curlew check` for this connection".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kebab_names_are_the_serde_names() {
        for c in [
            HealthCause::AssumeDenied,
            HealthCause::AccountNotActive,
            HealthCause::StsRegionDisabled,
            HealthCause::BucketGone,
            HealthCause::WrongRegion,
            HealthCause::ScpDenied,
            HealthCause::BucketPolicyDenied,
            HealthCause::IamPolicyDenied,
            HealthCause::KmsDenied,
            HealthCause::CredentialsInvalid,
            HealthCause::ExportMissing,
            HealthCause::ExportUnhealthy,
            HealthCause::ReportStale,
            HealthCause::OrgAccess,
            HealthCause::Transient,
            HealthCause::Other,
        ] {
            assert_eq!(serde_json::to_value(c).unwrap(), c.as_str());
            assert!(!remedy(c, None).is_empty());
        }
    }

    #[test]
    fn stale_and_org_access_degrade_transient_never_counts() {
        assert_eq!(HealthCause::Transient.status(), None);
        assert_eq!(
            HealthCause::ReportStale.status(),
            Some(ConnectionStatus::Degraded)
        );
        assert_eq!(
            HealthCause::AssumeDenied.status(),
            Some(ConnectionStatus::Broken)
        );
    }
}
