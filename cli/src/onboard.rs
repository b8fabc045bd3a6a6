//! `curlew onboard new|template|policy`: start a connection and generate what
//! the customer deploys. The External ID and the onboarding token are minted
//! by curlew and go only to stdout / the template file, never to a log.

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use curlew::access::{prove, render, AccessClients, AccessTarget};
use curlew::onboard::keys::{check_keys, KeyVault};
use curlew::onboard::policy::{
    allowed_actions, bucket_share_policy, delivery_bucket_policy, read_policy, trust_policy,
};
use curlew::onboard::{
    check_template_inputs, customer_template, role_name, OnboardingHints, Onboardings, ReadExtras,
    Started, TemplateSpec,
};
use curlew::registry::{AccessMode, Connection, ConnectionStatus, Registry};
use curlew::store::Store;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum OnboardCommand {
    /// Start an onboarding: mint the tenant's External ID (first time) and a
    /// single-use token, record it, and write the customer's template.
    New(NewArgs),
    /// Like `new`, but print only the template (a new single-use token each time).
    Template(NewArgs),
    /// Print one generated policy document.
    Policy(PolicyArgs),
    /// Legacy mode: connect with an IAM user's access keys (from
    /// CURLEW_CUSTOMER_ACCESS_KEY_ID / CURLEW_CUSTOMER_SECRET_ACCESS_KEY, never
    /// arguments). The access proof runs first; the keys are stored only in
    /// curlew's store and never printed.
    Keys(KeysArgs),
}

#[derive(Args)]
pub struct KeysArgs {
    #[arg(long)]
    pub tenant: String,
    #[arg(long)]
    pub payer_account: String,
    #[arg(long)]
    pub bucket: String,
    #[arg(long, default_value = "")]
    pub prefix: String,
    #[arg(long)]
    pub report: Option<String>,
    #[arg(long = "store", visible_alias = "out", default_value = "curlew-out")]
    pub store: String,
    /// The KMS key (ARN: the curlew stack's SecretsKeyArn output) the access
    /// keys are stored under in an s3:// store; that store's bucket policy
    /// refuses keys under any other.
    #[arg(long, env = "CURLEW_SECRETS_KMS_KEY")]
    pub secrets_kms_key: Option<String>,
}

#[derive(Args, Clone)]
pub struct PlatformArgs {
    /// The principal that assumes customer roles (curlew's function role ARN).
    #[arg(long, env = "CURLEW_PLATFORM_PRINCIPAL")]
    pub principal: String,
    /// curlew's onboarding SNS topic ARN (the custom resource's ServiceToken).
    #[arg(long, env = "CURLEW_ONBOARD_TOPIC_ARN")]
    pub service_token: String,
    /// curlew's AWS Health event bus ARN (the HealthEventBusArn output of
    /// curlew's stack); needed with --health.
    #[arg(long, env = "CURLEW_HEALTH_BUS_ARN")]
    pub health_bus: Option<String>,
}

#[derive(Args, Clone)]
pub struct NewArgs {
    #[arg(long)]
    pub tenant: String,
    /// curlew's store (directory or s3://bucket/prefix): onboardings live next to the registry.
    #[arg(long = "store", visible_alias = "out", default_value = "curlew-out")]
    pub store: String,
    #[command(flatten)]
    pub platform: PlatformArgs,
    /// The customer's payer (management) account, if known: the token is
    /// then refused to a stack in any other account.
    #[arg(long)]
    pub payer_account: Option<String>,
    /// Days the single-use token can be redeemed by a stack (1-90).
    #[arg(long, default_value_t = curlew::onboard::DEFAULT_TOKEN_TTL_DAYS,
          value_parser = clap::value_parser!(i64).range(1..=90))]
    pub token_ttl_days: i64,
    /// Defaults for the template's parameters.
    #[arg(long)]
    pub bucket: Option<String>,
    #[arg(long)]
    pub prefix: Option<String>,
    #[arg(long)]
    pub report: Option<String>,
    /// Also grant organizations:List*/Describe* (linked account names).
    #[arg(long)]
    pub organizations: bool,
    /// Also grant cur:DescribeReportDefinitions.
    #[arg(long)]
    pub report_definitions: bool,
    /// Also grant bcm-data-exports:GetExport/ListExports (export status in the sweep).
    #[arg(long)]
    pub data_exports: bool,
    /// Also attach the delivery bucket policy (only for a bucket without a policy).
    #[arg(long)]
    pub delivery_policy: bool,
    /// Also forward AWS Health events to curlew (and grant the read role
    /// Health's organizational view for the daily poll): an EventBridge rule on the
    /// default bus (regional: deploy in every region, HealthRegionOnly=true
    /// after the first) targeting curlew's event bus (--health-bus).
    #[arg(long)]
    pub health: bool,
    /// Where `new` writes the template (default: curlew-connect-<tenant>.json).
    #[arg(long)]
    pub template_out: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum PolicyKind {
    /// The role's trust policy (needs the tenant's External ID: --tenant and --store).
    Trust,
    /// The least-privilege read policy.
    Read,
    /// The bucket policy that lets AWS deliver CUR / Data Exports.
    Delivery,
    /// Bucket-policy sharing: curlew's principal reads the prefix directly.
    Share,
}

#[derive(Args)]
pub struct PolicyArgs {
    #[arg(value_enum)]
    pub kind: PolicyKind,
    #[arg(long)]
    pub bucket: Option<String>,
    #[arg(long, default_value = "")]
    pub prefix: String,
    #[arg(long)]
    pub tenant: Option<String>,
    #[arg(long = "store", visible_alias = "out", default_value = "curlew-out")]
    pub store: String,
    /// The principal that assumes the role / reads the bucket (trust, share).
    #[arg(long, env = "CURLEW_PLATFORM_PRINCIPAL")]
    pub principal: Option<String>,
    /// The payer account (delivery).
    #[arg(long)]
    pub payer_account: Option<String>,
    #[arg(long)]
    pub organizations: bool,
    #[arg(long)]
    pub report_definitions: bool,
    #[arg(long)]
    pub data_exports: bool,
    /// Also grant the AWS Health organizational view (the daily poll).
    #[arg(long)]
    pub health: bool,
    /// The customer's partition, for the ARNs of the read and delivery
    /// policies (share: the principal's).
    #[arg(long, default_value = "aws", value_parser = ["aws", "aws-cn", "aws-us-gov"])]
    pub partition: String,
}

pub async fn run(cmd: OnboardCommand) -> Result<i32> {
    match cmd {
        OnboardCommand::New(a) => new(a, false).await,
        OnboardCommand::Template(a) => new(a, true).await,
        OnboardCommand::Policy(a) => policy(a).await,
        OnboardCommand::Keys(a) => keys(a).await,
    }
}

fn extras(
    organizations: bool,
    report_definitions: bool,
    data_exports: bool,
    health: bool,
) -> ReadExtras {
    ReadExtras {
        organizations,
        report_definitions,
        data_exports,
        health,
    }
}

pub(crate) fn check_account(id: &str) -> Result<()> {
    if id.len() != 12 || !id.bytes().all(|b| b.is_ascii_digit()) {
        bail!("--payer-account {id:?} is not a 12-digit AWS account id");
    }
    Ok(())
}

async fn onboardings(store: &str) -> Onboardings {
    let (store, prefix) = Store::open(store).await;
    Onboardings::new(store, &prefix)
}

async fn new(a: NewArgs, template_only: bool) -> Result<i32> {
    if let Some(p) = &a.payer_account {
        check_account(p)?;
    }
    let hints = OnboardingHints {
        payer_account: a.payer_account.clone(),
        bucket: a.bucket.clone(),
        prefix: a.prefix.clone(),
        report: a.report.clone(),
    };
    // Validate the template inputs before anything is recorded.
    check_template_inputs(&a.tenant, &a.platform.principal, &a.platform.service_token)?;
    if a.health {
        match &a.platform.health_bus {
            None => bail!("--health needs curlew's AWS Health event bus: --health-bus ARN or CURLEW_HEALTH_BUS_ARN (the HealthEventBusArn output of curlew's stack)"),
            Some(bus) => curlew::onboard::template::check_bus_arn(bus)?,
        }
    }
    let started = onboardings(&a.store)
        .await
        .begin_with_ttl(&a.tenant, hints, chrono::Duration::days(a.token_ttl_days))
        .await?;
    let template = customer_template(&spec(&a, &started))?;
    let text = serde_json::to_string_pretty(&template)? + "\n";
    if template_only {
        print!("{text}");
        return Ok(0);
    }
    let path = a
        .template_out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("curlew-connect-{}.json", a.tenant)));
    std::fs::write(&path, &text).with_context(|| format!("writing {}", path.display()))?;
    let read = read_policy(
        "aws",
        a.bucket.as_deref().unwrap_or("BUCKET"),
        a.prefix.as_deref().unwrap_or("cur"),
        extras(
            a.organizations,
            a.report_definitions,
            a.data_exports,
            a.health,
        ),
    );
    println!("Onboarding started for tenant {}", a.tenant);
    println!(
        "  External ID      {}  (the customer's role trusts only this; it is in the template)",
        started.external_id.expose()
    );
    println!("  Role name        {}", role_name(&a.tenant));
    println!(
        "  Read policy      {} (prefix only)",
        allowed_actions(&read).join(", ")
    );
    println!(
        "  Template         {}  (single-use onboarding token inside, valid until {}{})",
        path.display(),
        started.pending.expires_at().format("%Y-%m-%d %H:%M UTC"),
        match &a.payer_account {
            Some(p) => format!(", for account {p} only"),
            None => String::new(),
        }
    );
    println!();
    println!("Next: the customer deploys the template in the payer account, for example");
    println!(
        "  aws cloudformation deploy --template-file {} --stack-name curlew-connect \\",
        path.display()
    );
    println!("      --capabilities CAPABILITY_NAMED_IAM --parameter-overrides BucketName=... Prefix=... ReportName=...");
    println!("curlew proves the access and registers the connection before the stack completes.");
    if a.health {
        println!();
        println!("AWS Health events are regional: the stack's rule forwards the events of the region it is deployed in.");
        println!("Deploy the same template in every other region the customer uses with HealthRegionOnly=true");
        println!("(a StackSet across the regions, or one deploy per region); it then creates only the rule and its role.");
    }
    Ok(0)
}

fn spec<'a>(a: &'a NewArgs, s: &'a Started) -> TemplateSpec<'a> {
    TemplateSpec {
        tenant: &a.tenant,
        platform_principal: &a.platform.principal,
        service_token: &a.platform.service_token,
        external_id: &s.external_id,
        token: &s.token,
        bucket: a.bucket.as_deref(),
        prefix: a.prefix.as_deref(),
        report: a.report.as_deref(),
        extras: extras(
            a.organizations,
            a.report_definitions,
            a.data_exports,
            a.health,
        ),
        delivery_policy: a.delivery_policy,
        health_bus: if a.health {
            a.platform.health_bus.as_deref()
        } else {
            None
        },
    }
}

async fn policy(a: PolicyArgs) -> Result<i32> {
    let need = |v: &Option<String>, flag: &str| -> Result<String> {
        v.clone()
            .with_context(|| format!("this policy needs {flag}"))
    };
    let doc = match a.kind {
        PolicyKind::Trust => {
            let tenant = need(&a.tenant, "--tenant")?;
            let principal = need(&a.principal, "--principal")?;
            let id = onboardings(&a.store).await.external_id(&tenant).await?;
            trust_policy(&principal, id.expose())
        }
        PolicyKind::Read => read_policy(
            &a.partition,
            &need(&a.bucket, "--bucket")?,
            &a.prefix,
            extras(
                a.organizations,
                a.report_definitions,
                a.data_exports,
                a.health,
            ),
        ),
        PolicyKind::Delivery => {
            let payer = need(&a.payer_account, "--payer-account")?;
            check_account(&payer)?;
            delivery_bucket_policy(&a.partition, &need(&a.bucket, "--bucket")?, &payer)
        }
        PolicyKind::Share => bucket_share_policy(
            &need(&a.bucket, "--bucket")?,
            &a.prefix,
            &need(&a.principal, "--principal")?,
        ),
    };
    println!("{}", serde_json::to_string_pretty(&doc)?);
    Ok(0)
}

async fn keys(a: KeysArgs) -> Result<i32> {
    check_account(&a.payer_account)?;
    curlew::onboard::pending::check_tenant(&a.tenant)?;
    let keys = crate::check::access_keys()?;
    check_keys(&keys)?;
    let target = AccessTarget {
        role_arn: None,
        external_id: None,
        access_keys: Some(keys.clone()),
        expected_account: Some(a.payer_account.clone()),
        bucket: a.bucket.clone(),
        prefix: a.prefix.clone(),
        report: a.report.clone(),
    };
    let report = prove(&AccessClients::from_env().await, &target).await;
    print!("{}", render::table(&report));
    if !report.passed() {
        eprintln!("not connected: the access proof failed (nothing was stored)");
        return Ok(1);
    }
    let (store, prefix) = Store::open(&a.store).await;
    KeyVault::new(store.clone(), &prefix)
        .with_kms_key(a.secrets_kms_key.clone())?
        .put(&a.tenant, &a.payer_account, &keys)
        .await?;
    let registry = Registry::new(store, &prefix);
    let mut conn = Connection::new(
        &a.tenant,
        &a.payer_account,
        AccessMode::AccessKeys,
        &a.bucket,
        &a.prefix,
    );
    conn.report = a.report.clone();
    conn.status = ConnectionStatus::Connected;
    conn.status_detail = Some(report.summary());
    registry.connect(&conn).await?;
    println!(
        "connected {}/{} with access keys (stored in curlew's store only)",
        a.tenant, a.payer_account
    );
    Ok(0)
}
