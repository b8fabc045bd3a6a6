//! What changed between two revisions of a source's month (`curlew diff`,
//! and the top changes a commit notice carries when a revision replaces
//! another). Both rollups are streamed through the report's grouping rule
//! ([`crate::report::group_row`]), so memory is the groups of the chosen
//! dimensions, not the rollups' rows; every sum is exact.

use crate::ledger::{Current, Ledger, LedgerError, SourceId};
use crate::money::Money;
use crate::output::{for_each_rollup_row, Finality, OutputError};
use crate::report::{group_row, load_summary, Dim, Grouped, ReportError};
use crate::rollup::{Measure, Sums};
use crate::store::StoreError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Output(#[from] OutputError),
    #[error(transparent)]
    Report(#[from] ReportError),
    #[error("{src} has nothing committed for {period}; run `curlew ingest` first")]
    NothingCommitted { src: SourceId, period: String },
    #[error("{} {}: revision {} is not in the store (gc deletes a superseded revision once its grace has passed); revisions kept: {}", .0.src, .0.period, .0.revision, list(&.0.kept))]
    UnknownRevision(Box<Missing>),
    #[error("{} {}: revision {} replaced no earlier revision kept in the store; name one with --from (revisions kept: {})", .0.src, .0.period, .0.revision, list(&.0.kept))]
    NoEarlier(Box<Missing>),
}

/// A revision a diff cannot use, and the revisions the store keeps.
#[derive(Debug)]
pub struct Missing {
    pub src: SourceId,
    pub period: String,
    pub revision: String,
    pub kept: Vec<String>,
}

fn list(v: &[String]) -> String {
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

/// One revision a diff compares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevisionSide {
    pub revision: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finality: Option<Finality>,
    /// Every measure of the revision, summed.
    pub totals: Sums,
}

/// One group whose measure changed (or that only one revision has).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// The group's values of the diff's dimensions, in their order.
    pub key: Vec<String>,
    /// `None`: the group is not in the earlier revision.
    pub before: Option<Money>,
    /// `None`: the group is not in the later revision.
    pub after: Option<Money>,
    /// `after - before`, a missing side counting as zero.
    pub delta: Money,
}

/// Two revisions compared on one measure by a set of dimensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comparison {
    pub measure: Measure,
    /// Every measure of each side.
    pub before: Sums,
    pub after: Sums,
    /// The measure's total after minus before (exact).
    pub total_delta: Money,
    /// Groups whose measure changed or that one side lacks, largest absolute
    /// delta first, then by key.
    pub changes: Vec<Change>,
}

/// Compare two grouped revisions on `measure`.
pub fn compare(before: &Grouped, after: &Grouped, measure: Measure) -> Comparison {
    let total = |g: &Grouped| {
        let mut t = Sums::default();
        for s in g.values() {
            t.merge(s);
        }
        t
    };
    let (tb, ta) = (total(before), total(after));
    let value = |s: &Sums| s.measure(measure).unwrap_or(Money::ZERO);
    let keys: BTreeSet<&Vec<String>> = before.keys().chain(after.keys()).collect();
    let mut changes: Vec<Change> = keys
        .into_iter()
        .filter_map(|k| {
            let b = before.get(k).map(value);
            let a = after.get(k).map(value);
            let delta = a.unwrap_or(Money::ZERO) - b.unwrap_or(Money::ZERO);
            let changed = !delta.is_zero() || b.is_none() || a.is_none();
            changed.then(|| Change {
                key: k.clone(),
                before: b.map(|m| m.normalize()),
                after: a.map(|m| m.normalize()),
                delta: delta.normalize(),
            })
        })
        .collect();
    changes.sort_by(|x, y| {
        y.delta
            .abs()
            .cmp(&x.delta.abs())
            .then_with(|| x.key.cmp(&y.key))
    });
    Comparison {
        measure,
        total_delta: (value(&ta) - value(&tb)).normalize(),
        before: tb,
        after: ta,
        changes,
    }
}

/// Stream a rollup file into groups of `dims`.
pub fn group_rollup(
    key: &str,
    bytes: impl Into<bytes::Bytes>,
    period: &str,
    dims: &[Dim],
) -> Result<Grouped, OutputError> {
    let mut groups = Grouped::new();
    for_each_rollup_row(key, bytes, |r| group_row(&mut groups, period, dims, &r))?;
    Ok(groups)
}

/// The revisions of a source's month the store holds up to and including
/// CURRENT's (oldest first): each with its summary, as a commit writes it.
pub async fn kept_revisions(
    ledger: &Ledger,
    source: &SourceId,
    period: &str,
    current: &Current,
) -> Result<Vec<String>, DiffError> {
    let dir = ledger.layout.source_dir(source, period);
    let mut revs: BTreeSet<String> = BTreeSet::new();
    for o in ledger.store.list(&dir).await? {
        let rest = &o.key[dir.len()..];
        if let Some((rev, "summary.json")) = rest
            .strip_prefix("revision=")
            .and_then(|r| r.split_once('/'))
        {
            if rev <= current.revision.as_str() {
                revs.insert(rev.to_owned());
            }
        }
    }
    Ok(revs.into_iter().collect())
}

/// `curlew diff` of one source's month: `to` (default CURRENT's revision)
/// against `from` (default the revision `to` replaced: CURRENT's `previous`,
/// or the kept revision just before `to`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevisionDiff {
    pub source: SourceId,
    pub period: String,
    pub dims: Vec<Dim>,
    pub from: RevisionSide,
    pub to: RevisionSide,
    pub comparison: Comparison,
}

/// Which revisions to compare; `None` takes the default.
#[derive(Debug, Clone, Default)]
pub struct Between {
    pub from: Option<String>,
    pub to: Option<String>,
}

/// A revision named by a user: `revision=R` or `R`.
fn bare(name: &str) -> &str {
    name.strip_prefix("revision=").unwrap_or(name)
}

pub async fn diff_revisions(
    ledger: &Ledger,
    source: &SourceId,
    period: &str,
    between: &Between,
    dims: &[Dim],
    measure: Measure,
) -> Result<RevisionDiff, DiffError> {
    let Some((current, _)) = ledger.current(source, period).await? else {
        return Err(DiffError::NothingCommitted {
            src: source.clone(),
            period: period.into(),
        });
    };
    let kept = kept_revisions(ledger, source, period, &current).await?;
    let missing = |revision: String, kept: Vec<String>| {
        Box::new(Missing {
            src: source.clone(),
            period: period.into(),
            revision,
            kept,
        })
    };
    let to = bare(between.to.as_deref().unwrap_or(&current.revision)).to_owned();
    if !kept.contains(&to) {
        return Err(DiffError::UnknownRevision(missing(to, kept)));
    }
    let replaced = match &between.from {
        Some(f) => Some(bare(f).to_owned()),
        None if to == current.revision => current.previous.clone(),
        None => kept.iter().rev().find(|k| **k < to).cloned(),
    };
    let Some(from) = replaced else {
        return Err(DiffError::NoEarlier(missing(to, kept)));
    };
    if !kept.contains(&from) {
        return Err(DiffError::UnknownRevision(missing(from, kept)));
    }
    let side = |rev: String| async move {
        let dir = ledger.layout.revision_dir(source, period, &rev);
        let rollup_key = format!("{dir}rollup.parquet");
        let (_, bytes) = ledger.store.get_bytes(&rollup_key).await?;
        let groups = group_rollup(&rollup_key, bytes, period, dims)?;
        let summary = load_summary(ledger, &format!("{dir}summary.json")).await?;
        Ok::<_, DiffError>((rev, summary.finality, groups))
    };
    let (from_rev, from_finality, before) = side(from).await?;
    let (to_rev, to_finality, after) = side(to).await?;
    let comparison = compare(&before, &after, measure);
    Ok(RevisionDiff {
        source: source.clone(),
        period: period.into(),
        dims: dims.to_vec(),
        from: RevisionSide {
            revision: from_rev,
            finality: from_finality,
            totals: comparison.before.clone(),
        },
        to: RevisionSide {
            revision: to_rev,
            finality: to_finality,
            totals: comparison.after.clone(),
        },
        comparison,
    })
}

/// How many changes a commit notice carries.
pub const NOTICE_TOP: usize = 10;

/// The dimensions of a commit notice's changes: account and service.
pub fn notice_dims() -> [Dim; 2] {
    [Dim::Account, Dim::Service]
}

/// What a commit notice says changed against the revision it replaced:
/// BilledCost's total delta and the largest changes by account and service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoticeChanges {
    /// The replaced revision.
    pub against: String,
    /// BilledCost, after minus before, exact.
    pub total_delta: Money,
    /// Groups (`[SubAccountId, ServiceName]`) whose BilledCost changed, at
    /// most [`NOTICE_TOP`], largest absolute delta first.
    pub top_changes: Vec<Change>,
    /// How many groups changed in all.
    pub groups_changed: usize,
}

/// The notice's changes between the rollup `prior` names and the new
/// rollup's bytes.
pub async fn notice_changes(
    ledger: &Ledger,
    period: &str,
    prior: &Current,
    new_rollup: bytes::Bytes,
) -> Result<NoticeChanges, DiffError> {
    let dims = notice_dims();
    let (_, bytes) = ledger.store.get_bytes(&prior.rollup_key).await?;
    let before = group_rollup(&prior.rollup_key, bytes, period, &dims)?;
    let after = group_rollup("(the new revision's rollup)", new_rollup, period, &dims)?;
    let c = compare(&before, &after, Measure::Billed);
    Ok(NoticeChanges {
        against: prior.revision.clone(),
        total_delta: c.total_delta,
        groups_changed: c.changes.len(),
        top_changes: c.changes.into_iter().take(NOTICE_TOP).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::dec;

    fn grouped(rows: &[(&str, &str)]) -> Grouped {
        rows.iter()
            .map(|(k, v)| {
                let s = Sums {
                    billed_cost: dec(v),
                    rows: 1,
                    ..Default::default()
                };
                (vec![k.to_string()], s)
            })
            .collect()
    }

    #[test]
    fn changes_are_exact_and_largest_first_with_groups_only_one_side_has() {
        let before = grouped(&[("a", "10.000000000001"), ("b", "5"), ("gone", "0")]);
        let after = grouped(&[("a", "10"), ("b", "7.5"), ("new", "-3")]);
        let c = compare(&before, &after, Measure::Billed);
        assert_eq!(c.total_delta, dec("-0.500000000001"));
        let keys: Vec<&str> = c.changes.iter().map(|c| c.key[0].as_str()).collect();
        // |−3| > |2.5| > |−0.000000000001| = |0| by key ("gone" has delta 0
        // but is only in the earlier revision).
        assert_eq!(keys, ["new", "b", "a", "gone"]);
        assert_eq!(c.changes[0].before, None);
        assert_eq!(c.changes[0].after, Some(dec("-3")));
        assert_eq!(c.changes[2].delta, dec("-0.000000000001"));
        assert_eq!(c.changes[3].after, None);
    }

    #[test]
    fn identical_revisions_have_no_changes() {
        let g = grouped(&[("a", "1.25"), ("b", "2")]);
        let c = compare(&g, &g, Measure::Billed);
        assert!(c.changes.is_empty());
        assert!(c.total_delta.is_zero());
        assert_eq!(c.before, c.after);
    }
}
