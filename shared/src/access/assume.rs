//! Who reads the bucket: the role assumed with the External ID (and refused
//! without it or with a wrong one), the legacy keys, or curlew itself; and
//! whether the accounts agree.

use super::{
    AccessClients, AccessMode, AccessReport, AccessTarget, CallError, Cause, CheckItem, Outcome,
};
use crate::onboard::ExternalId;
use aws_sdk_s3::config::Credentials;

const SESSION_NAME: &str = "curlew-access-proof";
const WITHOUT_ID: &str = "assume-without-id";
const WRONG_ID: &str = "assume-wrong-id";
const ACCOUNT: &str = "account";

/// The account of `arn:<partition>:iam::<account>:role/<name>`.
pub fn role_account(arn: &str) -> Option<&str> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let ok = parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "iam"
        && parts[4].len() == 12
        && parts[4].bytes().all(|b| b.is_ascii_digit())
        && parts[5].starts_with("role/")
        && parts[5].len() > "role/".len();
    // Not `then_some`: parts[4] exists only when `ok`.
    ok.then(|| parts[4])
}

/// AssumeRole; the session's credentials.
async fn assume(
    clients: &AccessClients,
    role_arn: &str,
    external_id: Option<&ExternalId>,
) -> Result<Credentials, CallError> {
    assume_as(clients, role_arn, external_id, SESSION_NAME, None).await
}

/// AssumeRole under a given session name (CloudTrail shows it to the
/// customer), for the shortest session STS grants (900 s: one job), with an
/// inline session `policy` when given.
pub(super) async fn assume_as(
    clients: &AccessClients,
    role_arn: &str,
    external_id: Option<&ExternalId>,
    session_name: &str,
    policy: Option<String>,
) -> Result<Credentials, CallError> {
    let out = clients
        .sts
        .assume_role()
        .role_arn(role_arn)
        .role_session_name(session_name)
        .duration_seconds(900)
        .set_policy(policy)
        .set_external_id(external_id.map(|e| e.expose().to_owned()))
        .send()
        .await
        .map_err(|e| CallError::from_sdk(&e))?;
    let c = out.credentials().ok_or_else(|| CallError {
        cause: Cause::Other,
        message: "AssumeRole returned no credentials".into(),
        ..CallError::default()
    })?;
    Ok(Credentials::new(
        c.access_key_id(),
        c.secret_access_key(),
        Some(c.session_token().to_owned()),
        None,
        "curlew-assumed-role",
    ))
}

/// The account behind `creds` (GetCallerIdentity needs no permission).
async fn caller_account(clients: &AccessClients, creds: &Credentials) -> Result<String, CallError> {
    let out = clients
        .sts_with(creds)
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| CallError::from_sdk(&e))?;
    Ok(out.account().unwrap_or_default().to_owned())
}

fn fail(id: &'static str, title: &str, e: &CallError, hint: &str) -> CheckItem {
    CheckItem::new(id, title, Outcome::Fail, format!("{e}{hint}")).because(e.cause)
}

/// Run the identity items; the credentials to read the bucket with
/// (`Some(None)`: curlew's own), or `None` when there are none that work.
pub(super) async fn identity(
    clients: &AccessClients,
    target: &AccessTarget,
    report: &mut AccessReport,
) -> Option<Option<Credentials>> {
    match report.mode {
        AccessMode::Role => role(clients, target, report).await.map(Some),
        AccessMode::AccessKeys => keys(clients, target, report).await.map(Some),
        AccessMode::BucketPolicy => {
            report.items.push(CheckItem::new(
                ACCOUNT,
                "Accounts agree",
                Outcome::Skip,
                "bucket-policy mode: curlew reads with its own principal; the bucket policy grants it",
            ));
            Some(None)
        }
    }
}

async fn role(
    clients: &AccessClients,
    target: &AccessTarget,
    report: &mut AccessReport,
) -> Option<Credentials> {
    let title = "Assume the role with the External ID";
    let arn = target.role_arn.as_deref().unwrap_or_default();
    let skip_rest = |report: &mut AccessReport, why: &str| {
        for (id, t) in [
            (WITHOUT_ID, "Assume without the External ID is refused"),
            (WRONG_ID, "Assume with a wrong External ID is refused"),
            (ACCOUNT, "Accounts agree"),
        ] {
            report.items.push(CheckItem::new(id, t, Outcome::Skip, why));
        }
    };
    let Some(role_acct) = role_account(arn) else {
        report.items.push(
            CheckItem::new(
                super::ASSUME,
                title,
                Outcome::Fail,
                format!(
                    "{arn:?} is not an IAM role ARN (arn:aws:iam::<12-digit account>:role/<name>)"
                ),
            )
            .because(Cause::Other),
        );
        skip_rest(report, "needs a role ARN");
        return None;
    };
    let Some(external_id) = target.external_id.as_ref() else {
        report.items.push(
            CheckItem::new(
                super::ASSUME,
                title,
                Outcome::Fail,
                "no External ID given: the tenant's External ID is required in role mode",
            )
            .because(Cause::Other),
        );
        skip_rest(report, "needs the External ID");
        return None;
    };
    let creds = match assume(clients, arn, Some(external_id)).await {
        Ok(c) => {
            report.items.push(CheckItem::new(
                super::ASSUME,
                title,
                Outcome::Pass,
                format!("assumed {arn}"),
            ));
            c
        }
        Err(e) => {
            let hint = match e.cause {
                Cause::AccessDenied => ". What to do: check the role exists, its trust policy names curlew's principal with this tenant's External ID; a role created seconds ago may need a minute",
                Cause::RegionDisabled => ". What to do: activate STS in this region for the account (IAM console, Account settings, Security Token Service endpoints)",
                _ => "",
            };
            report.items.push(fail(super::ASSUME, title, &e, hint));
            skip_rest(report, "needs the role assumed");
            return None;
        }
    };

    // The confused-deputy probes: both must be refused.
    let wrong = ExternalId::mint();
    let probes = [
        (
            WITHOUT_ID,
            "Assume without the External ID is refused",
            None,
        ),
        (
            WRONG_ID,
            "Assume with a wrong External ID is refused",
            wrong.as_ref().ok(),
        ),
    ];
    for (id, t, ext) in probes {
        if id == WRONG_ID && ext.is_none() {
            report.items.push(
                CheckItem::new(id, t, Outcome::Fail, "could not mint a random External ID")
                    .because(Cause::Other),
            );
            continue;
        }
        let item = match assume(clients, arn, ext).await {
            Ok(_) => CheckItem::new(
                id,
                t,
                Outcome::Fail,
                "confused deputy: the role's trust policy does not require the External ID; connection refused. What to do: add the sts:ExternalId StringEquals condition to the trust policy",
            )
            .because(Cause::ConfusedDeputy),
            Err(e) if e.is_denial() => CheckItem::new(id, t, Outcome::Pass, format!("refused ({})", e.code_or_cause())),
            Err(e) => fail(id, t, &e, " (could not tell whether the trust policy requires the External ID)"),
        };
        report.items.push(item);
    }

    accounts(
        clients,
        &creds,
        Some(role_acct),
        target.expected_account.as_deref(),
        report,
    )
    .await;
    Some(creds)
}

async fn keys(
    clients: &AccessClients,
    target: &AccessTarget,
    report: &mut AccessReport,
) -> Option<Credentials> {
    let k = target.access_keys.as_ref()?;
    let creds = Credentials::new(
        &k.access_key_id,
        &k.secret_access_key,
        None,
        None,
        "curlew-access-keys",
    );
    if accounts(
        clients,
        &creds,
        None,
        target.expected_account.as_deref(),
        report,
    )
    .await
    {
        Some(creds)
    } else {
        None
    }
}

/// The `account` item: the role ARN's account (if any), the expected one (if
/// given) and the caller identity's are one. False when the credentials do
/// not work at all.
async fn accounts(
    clients: &AccessClients,
    creds: &Credentials,
    role_acct: Option<&str>,
    expected: Option<&str>,
    report: &mut AccessReport,
) -> bool {
    let title = "Accounts agree (role ARN, expected, caller identity)";
    let caller = match caller_account(clients, creds).await {
        Ok(a) => a,
        Err(e) => {
            report.items.push(fail(
                ACCOUNT,
                title,
                &e,
                " (GetCallerIdentity with the customer's credentials)",
            ));
            return e.cause != Cause::Credentials;
        }
    };
    report.account = Some(caller.clone());
    let mut named = vec![("caller identity", caller.as_str())];
    if let Some(r) = role_acct {
        named.push(("role ARN", r));
    }
    if let Some(e) = expected {
        named.push(("expected", e));
    }
    let item = if named.iter().all(|(_, a)| *a == caller) {
        let which: Vec<&str> = named.iter().map(|(w, _)| *w).collect();
        CheckItem::new(
            ACCOUNT,
            title,
            Outcome::Pass,
            format!("{caller} ({})", which.join(", ")),
        )
    } else {
        let all: Vec<String> = named.iter().map(|(w, a)| format!("{w} {a}")).collect();
        CheckItem::new(
            ACCOUNT,
            title,
            Outcome::Fail,
            format!("accounts differ: {}", all.join(", ")),
        )
        .because(Cause::AccountMismatch)
    };
    report.items.push(item);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_arns() {
        assert_eq!(
            role_account("arn:aws:iam::123456789012:role/curlew/Reader"),
            Some("123456789012")
        );
        assert_eq!(
            role_account("arn:aws-cn:iam::123456789012:role/r"),
            Some("123456789012")
        );
        assert_eq!(role_account("arn:aws:iam::123456789012:user/u"), None);
        assert_eq!(role_account("arn:aws:iam::1234:role/r"), None);
        assert_eq!(role_account("arn:aws:sts::123456789012:role/r"), None);
        assert_eq!(role_account("role/r"), None);
    }
}
