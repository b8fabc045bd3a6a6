//! `curlew health replay`: saved AWS Health events through the
//! health-notify function's code against the connections of a local store;
//! the second replay of the same files says `duplicate`.

use curlew::registry::{AccessMode, Connection, ConnectionStatus, Registry};
use curlew::store::Store;
use serde_json::Value;
use std::process::{Command, Output};

fn curlew(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_curlew"))
        .args(args)
        .output()
        .expect("curlew runs")
}

fn lines(o: &Output) -> Vec<Value> {
    assert!(o.status.success(), "{o:?}");
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn replay_publishes_then_says_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let store_arg = store.display().to_string();
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let registry = Registry::new(Store::local(&store), "");
        let mut c = Connection::new(
            "acme",
            "111122223333",
            AccessMode::CrossAccountRole,
            "billing",
            "cur",
        );
        c.status = ConnectionStatus::Connected;
        c.linked_accounts = vec!["222233334444".into()];
        registry.create(&c).await.unwrap();
    });
    let events = curlew_testkit::events::dir();
    let files: Vec<String> = [
        "health-ec2-issue.json",
        "health-scheduled-change.json",
        "health-paged-1.json",
        "health-paged-2.json",
    ]
    .iter()
    .map(|n| events.join(n).display().to_string())
    .collect();
    let mut unknown = curlew_testkit::events::event("health-abuse.json");
    unknown["detail"]["affectedAccount"] = "999988887777".into();
    let unknown_file = dir.path().join("unknown.json");
    std::fs::write(&unknown_file, unknown.to_string()).unwrap();
    let mut args = vec![
        "health", "replay", "--store", &store_arg, "--format", "json",
    ];
    args.extend(files.iter().map(String::as_str));
    let unknown_arg = unknown_file.display().to_string();
    args.push(&unknown_arg);

    let first = lines(&curlew(&args));
    let outcomes: Vec<&str> = first
        .iter()
        .map(|v| v["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes,
        [
            "published",
            "published",
            "awaiting-pages",
            "published",
            "unknown-account"
        ]
    );
    assert_eq!(first[1]["account_id"], "222233334444");
    assert_eq!(first[1]["tenants"], serde_json::json!(["acme"]));
    assert!(first[1]["event_arn"]
        .as_str()
        .unwrap()
        .contains("AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED"));
    assert_eq!(first[4]["tenants"], serde_json::json!([]));

    let second = lines(&curlew(&args));
    let outcomes: Vec<&str> = second
        .iter()
        .map(|v| v["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes,
        [
            "duplicate",
            "duplicate",
            "duplicate",
            "duplicate",
            "unknown-account"
        ]
    );
    // The table names each file's outcome.
    let table = curlew(&[
        "health", "replay", "--store", &store_arg, "--format", "table", &files[0],
    ]);
    assert!(table.status.success());
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains("health-ec2-issue.json") && text.contains("duplicate"),
        "{text}"
    );
}

#[test]
fn a_file_that_is_no_health_event_is_one_readable_error() {
    let dir = tempfile::tempdir().unwrap();
    let store_arg = dir.path().join("store").display().to_string();
    let sweep = curlew_testkit::events::dir()
        .join("scheduled-sweep.json")
        .display()
        .to_string();
    let o = curlew(&["health", "replay", "--store", &store_arg, &sweep]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("not aws.health"), "{err}");
    let o = curlew(&[
        "health",
        "replay",
        "--store",
        &store_arg,
        "no-such-file.json",
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.starts_with("error: reading no-such-file.json"), "{err}");
    // Nothing was recorded.
    assert!(!dir.path().join("store/health").exists());
}
