//! The proof as a table (for people) and as JSON (for programs). Both are
//! built from the report alone, which never holds a secret.

use super::{AccessReport, Outcome};

/// Pretty JSON of the whole report.
pub fn json(report: &AccessReport) -> String {
    serde_json::to_string_pretty(report).expect("an access report serialises")
}

/// One line per item (outcome, id, detail), then a verdict.
pub fn table(report: &AccessReport) -> String {
    let width = report.items.iter().map(|i| i.id.len()).max().unwrap_or(0);
    let mut out = format!(
        "Access to s3://{}/{} ({} mode{})\n",
        report.bucket,
        report.prefix,
        match report.mode {
            super::AccessMode::Role => "role",
            super::AccessMode::AccessKeys => "access keys",
            super::AccessMode::BucketPolicy => "bucket policy",
        },
        report
            .region
            .as_deref()
            .map(|r| format!(", bucket in {r}"))
            .unwrap_or_default()
    );
    for i in &report.items {
        let cause = i.cause.map(|c| format!(" [{c:?}]")).unwrap_or_default();
        out.push_str(&format!(
            "{:<4}  {:<width$}  {}{cause}\n",
            i.outcome.to_string(),
            i.id,
            i.detail
        ));
    }
    let count = |o: Outcome| report.items.iter().filter(|i| i.outcome == o).count();
    out.push_str(&format!(
        "{}: {} passed, {} warning(s), {} failed, {} skipped{}\n",
        if report.passed() {
            "PROVEN"
        } else {
            "NOT PROVEN"
        },
        count(Outcome::Pass),
        count(Outcome::Warn),
        count(Outcome::Fail),
        count(Outcome::Skip),
        if report.attempts > 1 {
            format!(" (after {} attempts)", report.attempts)
        } else {
            String::new()
        }
    ));
    out
}
