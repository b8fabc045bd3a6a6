//! Linked accounts from AWS Organizations: the real SDK client against
//! moto_server (moto pages `list_accounts`, carries `State`, suspends on
//! `close_account`, drops on `remove_account_from_organization`). moto ties
//! an organization to the caller's account, so each test assumes a role into
//! its own payer account first, as the sweep does with the customer's role.
//! What moto cannot show (an empty page that still has a NextToken, the
//! not-in-use error of an account in no organization) is mocked.

use aws_sdk_organizations::operation::list_accounts::ListAccountsOutput;
use aws_sdk_organizations::types::{Account, AccountState};
use aws_sdk_s3::config::Credentials;
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use curlew::registry::{AccessMode, Connection};
use curlew::sweep::orgs::{self, AccountChange, Listing};
use curlew_testkit::aws::sdk_conf;

/// Credentials of `account` (moto: a role assumed there acts as that account).
async fn as_account(account: &str) -> Credentials {
    let sts = aws_sdk_sts::Client::new(&sdk_conf());
    let c = sts
        .assume_role()
        .role_arn(format!("arn:aws:iam::{account}:role/curlew-read-acme"))
        .role_session_name("curlew-sweep")
        .external_id("not-checked-by-moto")
        .send()
        .await
        .unwrap()
        .credentials
        .unwrap();
    Credentials::new(
        c.access_key_id,
        c.secret_access_key,
        Some(c.session_token),
        None,
        "moto-assumed",
    )
}

async fn org_of(payer: &str) -> aws_sdk_organizations::Client {
    let base = aws_sdk_organizations::Client::new(&sdk_conf());
    orgs::org_client(&base, &as_account(payer).await, "aws")
}

async fn sweep(org: &aws_sdk_organizations::Client, conn: &mut Connection) -> Vec<AccountChange> {
    let listing = orgs::list_accounts(org, Some(5)).await.unwrap();
    orgs::apply(conn, listing, chrono::Utc::now()).0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_pages_joined_suspended_and_removed_after_two_sweeps() {
    let payer = "210987654321";
    let org = org_of(payer).await;
    org.create_organization()
        .feature_set(aws_sdk_organizations::types::OrganizationFeatureSet::All)
        .send()
        .await
        .unwrap();
    let mut members = Vec::new();
    for i in 0..11 {
        let out = org
            .create_account()
            .account_name(format!("member-{i}"))
            .email(format!("member-{i}@example.com"))
            .send()
            .await
            .unwrap();
        members.push(out.create_account_status.unwrap().account_id.unwrap());
    }
    let mut conn = Connection::new("acme", payer, AccessMode::CrossAccountRole, "b", "cur");

    // 12 accounts at 5 a page: three pages, every account read.
    let changes = sweep(&org, &mut conn).await;
    assert_eq!(changes.len(), 12, "{changes:?}");
    assert!(changes
        .iter()
        .all(|c| matches!(c, AccountChange::Joined { state, .. } if state == "ACTIVE")));
    assert_eq!(conn.linked_accounts.len(), 12);
    assert!(conn.linked_accounts.contains(&payer.to_owned()));
    let stored = conn.organization.as_ref().unwrap();
    let m0 = stored.accounts.iter().find(|a| a.id == members[0]).unwrap();
    assert_eq!(m0.joined_method.as_deref(), Some("CREATED"));
    assert!(m0.joined_timestamp.is_some());

    // Closing an account suspends it: reported at once.
    org.close_account()
        .account_id(&members[0])
        .send()
        .await
        .unwrap();
    assert_eq!(
        sweep(&org, &mut conn).await,
        vec![AccountChange::StateChanged {
            account: members[0].clone(),
            from: "ACTIVE".into(),
            to: "SUSPENDED".into()
        }]
    );

    // Removed from the organization: kept one sweep, gone after the second.
    org.remove_account_from_organization()
        .account_id(&members[1])
        .send()
        .await
        .unwrap();
    assert_eq!(sweep(&org, &mut conn).await, vec![]);
    assert!(conn.linked_accounts.contains(&members[1]));
    assert_eq!(
        sweep(&org, &mut conn).await,
        vec![AccountChange::Removed {
            account: members[1].clone()
        }]
    );
    assert!(!conn.linked_accounts.contains(&members[1]));
    assert_eq!(conn.linked_accounts.len(), 11);
    // Nothing changed since: nothing to report.
    assert_eq!(sweep(&org, &mut conn).await, vec![]);
}

/// moto lists no accounts for an account in no organization; AWS answers
/// `AWSOrganizationsNotInUseException` (HTTP 400, awsJson 1.1), mocked here.
#[tokio::test]
async fn an_account_in_no_organization_is_standalone() {
    let rule = mock!(aws_sdk_organizations::Client::list_accounts).then_http_response(|| {
        let mut r = aws_sdk_s3::config::http::HttpResponse::new(
            400.try_into().unwrap(),
            aws_smithy_types::body::SdkBody::from(
                r#"{"__type":"AWSOrganizationsNotInUseException","Message":"Your account is not a member of an organization."}"#,
            ),
        );
        r.headers_mut()
            .insert("content-type", "application/x-amz-json-1.1");
        r
    });
    let org = mock_client!(aws_sdk_organizations, RuleMode::MatchAny, &[rule]);
    let listing = orgs::list_accounts(&org, None).await.unwrap();
    assert_eq!(listing, Listing::Standalone);
    let payer = "310987654321";
    let mut conn = Connection::new("acme", payer, AccessMode::CrossAccountRole, "b", "cur");
    let (changes, inactive) = orgs::apply(&mut conn, listing, chrono::Utc::now());
    assert!(changes.is_empty() && !inactive);
    assert_eq!(conn.linked_accounts, vec![payer.to_owned()]);
    assert!(conn.organization.unwrap().standalone);
}

#[tokio::test]
async fn an_empty_page_with_a_token_is_not_the_last() {
    let first = mock!(aws_sdk_organizations::Client::list_accounts)
        .match_requests(|r| r.next_token().is_none())
        .then_output(|| ListAccountsOutput::builder().next_token("t1").build());
    let second = mock!(aws_sdk_organizations::Client::list_accounts)
        .match_requests(|r| r.next_token() == Some("t1"))
        .then_output(|| {
            ListAccountsOutput::builder()
                .accounts(
                    Account::builder()
                        .id("444455556666")
                        .state(AccountState::PendingClosure)
                        .build(),
                )
                .build()
        });
    let org = mock_client!(aws_sdk_organizations, RuleMode::MatchAny, &[first, second]);
    match orgs::list_accounts(&org, None).await.unwrap() {
        Listing::Accounts(a) => {
            assert_eq!(a.len(), 1);
            assert_eq!(a[0].state, "PENDING_CLOSURE");
            assert!(a[0].is_inactive());
        }
        other => panic!("{other:?}"),
    }
}
