//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod moto;

use curlew::discover::Source;
use curlew::ingest::{ingest, DeliveryStatus, IngestOptions, IngestReport};
use curlew::ledger::Ledger;
use curlew::output::Summary;
use curlew::store::Store;
use std::path::{Path, PathBuf};

/// `../shared/data/<rel>` beside the repository. In CI (CI=true) a missing file
/// is a failure; elsewhere the test is skipped with a message.
pub fn shared_data(rel: &str) -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data")
        .join(rel);
    if p.exists() {
        return Some(p);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!(
            "{} is missing; CI must have ../shared/data beside the repository",
            p.display()
        );
    }
    eprintln!(
        "skipping: {} not found (set up ../shared beside the repository)",
        p.display()
    );
    None
}

pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Ingest `root` into `out` for tenant `t` with `opts` tweaks.
pub fn ingest_dir(root: &Path, out: &Path, f: impl FnOnce(&mut IngestOptions)) -> IngestReport {
    let mut opts = IngestOptions::new("t");
    f(&mut opts);
    let source = Source {
        store: Store::local(root),
        prefix: String::new(),
    };
    let ledger = Ledger::new(Store::local(out), "");
    rt().block_on(ingest(&source, &ledger, &opts))
        .expect("ingest runs")
}

/// The committed summaries of a report, panicking with the failure if any delivery failed.
pub fn summaries(r: &IngestReport) -> Vec<Summary> {
    assert!(r.errors.is_empty(), "errors: {:?}", r.errors);
    let mut out = Vec::new();
    for d in &r.deliveries {
        match &d.status {
            DeliveryStatus::Committed(c) => out.extend(c.iter().map(|p| p.summary.clone())),
            other => panic!(
                "delivery {} {:?} not committed: {other:?}",
                d.report, d.period
            ),
        }
    }
    out
}

/// The first failure of a report, as text.
pub fn failure(r: &IngestReport) -> String {
    for d in &r.deliveries {
        if let DeliveryStatus::Failed(e) = &d.status {
            return e.to_string();
        }
    }
    r.errors
        .first()
        .cloned()
        .unwrap_or_else(|| panic!("expected a failure, got {r:?}"))
}
