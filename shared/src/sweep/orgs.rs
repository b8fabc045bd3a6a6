//! Linked accounts from AWS Organizations, read through the customer's role
//! (the read policy's `--organizations` option): `ListAccounts` to the last
//! page, merged with what the connection knew. A new account or a changed
//! `State` is reported at once; an account gone from the list is removed only
//! after two sweeps in a row without it (one listing may be mid-change).

use crate::access::CallError;
use crate::registry::Connection;
use aws_sdk_organizations::config::retry::RetryConfig;
use aws_sdk_organizations::config::{Credentials, Region};
use aws_sdk_organizations::operation::list_accounts::ListAccountsError;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Sweeps in a row an account may be missing before it is removed.
pub const MISSING_SWEEPS_TO_REMOVE: u8 = 2;

/// No organization lists more pages than this (20 accounts a page).
const MAX_PAGES: usize = 1_000;

/// A member account, as Organizations describes it (`State`, not the
/// retired `Status`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkedAccount {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// ACTIVE, SUSPENDED, PENDING_CLOSURE, CLOSED, PENDING_ACTIVATION.
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub joined_timestamp: Option<DateTime<Utc>>,
    /// INVITED or CREATED.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub joined_method: Option<String>,
    /// Sweeps in a row that did not list it.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub missing_sweeps: u8,
}

fn is_zero(n: &u8) -> bool {
    *n == 0
}

impl LinkedAccount {
    /// SUSPENDED, PENDING_CLOSURE or CLOSED: it delivers no new usage.
    pub fn is_inactive(&self) -> bool {
        matches!(
            self.state.as_str(),
            "SUSPENDED" | "PENDING_CLOSURE" | "CLOSED"
        )
    }
}

/// What the connection knows of its organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Organization {
    pub refreshed_at: DateTime<Utc>,
    /// Not in an organization: the payer is its only account.
    #[serde(default)]
    pub standalone: bool,
    #[serde(default)]
    pub accounts: Vec<LinkedAccount>,
}

/// What one listing said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listing {
    Accounts(Vec<LinkedAccount>),
    /// `AWSOrganizationsNotInUseException`: a standalone account (not an error).
    Standalone,
}

/// A change worth telling, reported by the sweep.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "kebab-case")]
pub enum AccountChange {
    Joined {
        account: String,
        state: String,
    },
    StateChanged {
        account: String,
        from: String,
        to: String,
    },
    Removed {
        account: String,
    },
}

/// An Organizations client for `creds`, on the partition's global endpoint
/// (us-east-1; cn-northwest-1 for aws-cn), with adaptive retry (Organizations
/// throttles with `TooManyRequestsException`).
pub fn org_client(
    base: &aws_sdk_organizations::Client,
    creds: &Credentials,
    partition: &str,
) -> aws_sdk_organizations::Client {
    let region = if partition == "aws-cn" {
        "cn-northwest-1"
    } else {
        "us-east-1"
    };
    let conf = base
        .config()
        .to_builder()
        .credentials_provider(creds.clone())
        .region(Region::new(region))
        .retry_config(RetryConfig::adaptive())
        .build();
    aws_sdk_organizations::Client::from_conf(conf)
}

pub use crate::access::partition_of;

/// Every account of the organization: pages until `NextToken` is absent (a
/// page may be empty while more follow).
pub async fn list_accounts(
    org: &aws_sdk_organizations::Client,
    page_size: Option<i32>,
) -> Result<Listing, CallError> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let page = match org
            .list_accounts()
            .set_next_token(token.take())
            .set_max_results(page_size)
            .send()
            .await
        {
            Ok(p) => p,
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(ListAccountsError::AwsOrganizationsNotInUseException(_))
                ) =>
            {
                return Ok(Listing::Standalone)
            }
            Err(e) => return Err(CallError::from_sdk(&e)),
        };
        out.extend(page.accounts().iter().filter_map(|a| {
            Some(LinkedAccount {
                id: a.id()?.to_owned(),
                name: a.name().map(str::to_owned),
                state: a.state().map_or("ACTIVE", |s| s.as_str()).to_owned(),
                joined_timestamp: a
                    .joined_timestamp()
                    .and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos())),
                joined_method: a.joined_method().map(|m| m.as_str().to_owned()),
                missing_sweeps: 0,
            })
        }));
        match page.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_owned()),
            _ => return Ok(Listing::Accounts(out)),
        }
    }
    Err(CallError {
        message: format!("ListAccounts returned more than {MAX_PAGES} pages"),
        ..CallError::default()
    })
}

/// Merge a listing into what was known: the new organization and the
/// changes to report.
pub fn merge(
    prev: Option<&Organization>,
    listing: Listing,
    now: DateTime<Utc>,
) -> (Organization, Vec<AccountChange>) {
    let listed = match listing {
        Listing::Standalone => {
            let org = Organization {
                refreshed_at: now,
                standalone: true,
                accounts: Vec::new(),
            };
            return (org, Vec::new());
        }
        Listing::Accounts(a) => a,
    };
    let known: &[LinkedAccount] = prev.map_or(&[], |o| &o.accounts);
    let mut changes = Vec::new();
    for a in &listed {
        match known.iter().find(|k| k.id == a.id) {
            None => changes.push(AccountChange::Joined {
                account: a.id.clone(),
                state: a.state.clone(),
            }),
            Some(k) if k.state != a.state => changes.push(AccountChange::StateChanged {
                account: a.id.clone(),
                from: k.state.clone(),
                to: a.state.clone(),
            }),
            Some(_) => {}
        }
    }
    let mut accounts = listed;
    for k in known {
        if accounts.iter().any(|a| a.id == k.id) {
            continue;
        }
        let missing = k.missing_sweeps.saturating_add(1);
        if missing >= MISSING_SWEEPS_TO_REMOVE {
            changes.push(AccountChange::Removed {
                account: k.id.clone(),
            });
        } else {
            accounts.push(LinkedAccount {
                missing_sweeps: missing,
                ..k.clone()
            });
        }
    }
    accounts.sort_by(|a, b| a.id.cmp(&b.id));
    let org = Organization {
        refreshed_at: now,
        standalone: false,
        accounts,
    };
    (org, changes)
}

/// Apply a listing to `conn` (its organization and `linked_accounts`, kept
/// in sync: `pipeline::Scope` reads the ids). Returns the changes, and
/// whether the payer itself is listed inactive (account-not-active).
pub fn apply(
    conn: &mut Connection,
    listing: Listing,
    now: DateTime<Utc>,
) -> (Vec<AccountChange>, bool) {
    let (org, changes) = merge(conn.organization.as_ref(), listing, now);
    let payer_inactive = org
        .accounts
        .iter()
        .any(|a| a.id == conn.payer_account && a.missing_sweeps == 0 && a.is_inactive());
    conn.linked_accounts = linked_ids(&org, &conn.payer_account);
    conn.organization = Some(org);
    (changes, payer_inactive)
}

/// The account ids ingestion attributes (`Connection::linked_accounts`):
/// the payer alone when standalone.
pub fn linked_ids(org: &Organization, payer: &str) -> Vec<String> {
    if org.standalone {
        return vec![payer.to_owned()];
    }
    org.accounts.iter().map(|a| a.id.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acct(id: &str, state: &str) -> LinkedAccount {
        LinkedAccount {
            id: id.into(),
            name: None,
            state: state.into(),
            joined_timestamp: None,
            joined_method: Some("CREATED".into()),
            missing_sweeps: 0,
        }
    }

    #[test]
    fn joined_and_state_changes_at_once_removal_after_two_sweeps() {
        let now = Utc::now();
        let (o1, c) = merge(None, Listing::Accounts(vec![acct("1", "ACTIVE")]), now);
        assert_eq!(c.len(), 1);
        let (o2, c) = merge(
            Some(&o1),
            Listing::Accounts(vec![acct("1", "SUSPENDED"), acct("2", "ACTIVE")]),
            now,
        );
        assert_eq!(
            c,
            vec![
                AccountChange::StateChanged {
                    account: "1".into(),
                    from: "ACTIVE".into(),
                    to: "SUSPENDED".into()
                },
                AccountChange::Joined {
                    account: "2".into(),
                    state: "ACTIVE".into()
                }
            ]
        );
        let (o3, c) = merge(Some(&o2), Listing::Accounts(vec![acct("2", "ACTIVE")]), now);
        assert!(c.is_empty());
        assert_eq!(linked_ids(&o3, "p"), vec!["1", "2"]);
        // Back in the listing: the count starts again.
        let (o4, _) = merge(
            Some(&o3),
            Listing::Accounts(vec![acct("1", "SUSPENDED"), acct("2", "ACTIVE")]),
            now,
        );
        assert!(o4.accounts.iter().all(|a| a.missing_sweeps == 0));
        let (o5, _) = merge(Some(&o4), Listing::Accounts(vec![acct("2", "ACTIVE")]), now);
        let (o6, c) = merge(Some(&o5), Listing::Accounts(vec![acct("2", "ACTIVE")]), now);
        assert_eq!(
            c,
            vec![AccountChange::Removed {
                account: "1".into()
            }]
        );
        assert_eq!(linked_ids(&o6, "p"), vec!["2"]);
    }

    #[test]
    fn a_suspended_payer_is_not_active() {
        let mut c = Connection::new(
            "t",
            "111122223333",
            crate::registry::AccessMode::CrossAccountRole,
            "b",
            "",
        );
        let (_, inactive) = apply(
            &mut c,
            Listing::Accounts(vec![acct("111122223333", "ACTIVE"), acct("2", "SUSPENDED")]),
            Utc::now(),
        );
        assert!(!inactive);
        for state in ["SUSPENDED", "PENDING_CLOSURE", "CLOSED"] {
            let (_, inactive) = apply(
                &mut c,
                Listing::Accounts(vec![acct("111122223333", state)]),
                Utc::now(),
            );
            assert!(inactive, "{state}");
        }
        assert_eq!(c.linked_accounts, vec!["111122223333"]);
    }

    #[test]
    fn a_standalone_account_links_only_itself() {
        let (o, c) = merge(None, Listing::Standalone, Utc::now());
        assert!(c.is_empty());
        assert_eq!(linked_ids(&o, "111122223333"), vec!["111122223333"]);
        assert_eq!(partition_of(Some("arn:aws-cn:iam::1:role/r")), "aws-cn");
        assert_eq!(partition_of(None), "aws");
    }
}
