//! Helpers shared by the integration tests.
#![allow(unused_imports)]
#![allow(dead_code)]

pub use curlew_testkit::data::shared_data;
pub use curlew_testkit::{moto, rt};

use curlew::discover::Source;
use curlew::ingest::{ingest, DeliveryStatus, IngestOptions, IngestReport};
use curlew::ledger::Ledger;
use curlew::output::Summary;
use curlew::store::Store;
use std::path::Path;

/// Ingest `root` into `out` for tenant `t` with `opts` tweaks.
pub fn ingest_dir(root: &Path, out: &Path, f: impl FnOnce(&mut IngestOptions)) -> IngestReport {
    let mut opts = IngestOptions::new("t");
    f(&mut opts);
    let source = Source {
        store: Store::local(root),
        prefix: String::new(),
    };
    let ledger = Ledger::new(Store::local(out), "");
    rt().block_on(ingest(&source, &ledger, &opts, &curlew::pipeline::Silent))
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
        match &d.status {
            DeliveryStatus::Failed(rec) => return rec.error.clone(),
            DeliveryStatus::Retry(e) => return e.to_string(),
            _ => {}
        }
    }
    r.errors
        .first()
        .cloned()
        .unwrap_or_else(|| panic!("expected a failure, got {r:?}"))
}
