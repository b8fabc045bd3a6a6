//! The commit: when every part of a plan is staged, merge them one at a time,
//! write the rollup, commitments and summary under `revision=R/`, write the notice to the
//! outbox, and swap the source's CURRENT (conditional write, newer only).

use super::notice::{outbox_put, CommittedNotice};
use super::part::{abandoned, load_part, OffPeriod};
use super::worker::InHand;
use super::{PipelineError, Plan};
use crate::commitments::{commitments_key, write_commitments};
use crate::discover::Source;
use crate::ledger::{CommitOutcome, Current, Ledger};
use crate::manifest::DeliveryKind;
use crate::output::{write_rollup, Finality, InputFile, SourceInfo, Summary};
use crate::rollup::RollupMerge;
use std::collections::{BTreeMap, BTreeSet};

/// Whether the revision `cur` names was final (a summary from before curlew
/// recorded finality counts as not final).
async fn prior_was_final(ledger: &Ledger, cur: &Current) -> Result<bool, PipelineError> {
    let (_, bytes) = ledger.store.get_bytes(&cur.summary_key).await?;
    Ok(serde_json::from_slice::<Summary>(&bytes)
        .ok()
        .and_then(|s| s.finality)
        == Some(Finality::Final))
}

/// What changed against the revision `cur` names, for the commit notice. A
/// notice is worth less than the commit: a prior rollup that cannot be read
/// (deleted, or from a curlew that wrote another layout) leaves it out.
async fn replaced_changes(
    ledger: &Ledger,
    period: &str,
    cur: &Current,
    rollup: &[u8],
) -> Option<crate::diff::NoticeChanges> {
    let t = std::time::Instant::now();
    match crate::diff::notice_changes(ledger, period, cur, bytes::Bytes::copy_from_slice(rollup))
        .await
    {
        Ok(c) => {
            tracing::debug!(groups_changed = c.groups_changed, elapsed = ?t.elapsed(), "changes against the replaced revision");
            Some(c)
        }
        Err(e) => {
            tracing::warn!(replaced = %cur.revision, error = %e, "the commit notice goes without changes: the replaced revision could not be compared");
            None
        }
    }
}

/// Staged parts read at once while merging (memory: this many parts plus the merged rollup).
const PART_FETCHES: usize = 8;

/// The result of committing one billing period of a revision.
#[derive(Debug, Clone)]
pub struct PeriodCommit {
    pub period: String,
    pub outcome: CommitOutcome,
    pub summary: Summary,
    /// A restatement: the final revision of this month that this one
    /// replaced. Not in summary.json, which depends on the data alone (what a
    /// revision replaces depends on the order deliveries arrived in, as
    /// CURRENT's `previous`); the commit notice carries it.
    pub restates: Option<String>,
    /// Against the revision this one replaced (none for a first revision).
    pub changes: Option<crate::diff::NoticeChanges>,
}

/// What a commit attempt came to.
#[derive(Debug, Clone)]
pub enum CommitResult {
    Committed(Vec<PeriodCommit>),
    /// The manifest or a data file changed while the revision was read; a
    /// newer delivery is on its way. Nothing was committed.
    Abandoned {
        why: String,
    },
}

fn kind_name(kind: DeliveryKind) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Commit `plan`, whose parts are all staged.
pub async fn commit_plan(
    source: &Source,
    ledger: &Ledger,
    plan: &Plan,
) -> Result<CommitResult, PipelineError> {
    commit_parts(source, ledger, plan, None).await
}

/// Commit `plan`: every part staged but the one in hand (if any), which is
/// merged from memory.
pub(super) async fn commit_parts(
    source: &Source,
    ledger: &Ledger,
    plan: &Plan,
    in_hand: Option<InHand>,
) -> Result<CommitResult, PipelineError> {
    if let Some(why) = abandoned(ledger, plan).await? {
        return Ok(CommitResult::Abandoned { why });
    }
    let delivery = &plan.delivery;
    if let Some((key, etag)) = &delivery.manifest {
        let now = source.store.head(key).await?;
        if &now.etag != etag {
            let why = format!(
                "{key} changed while its files were being read (ETag {etag} -> {}); revision abandoned, a newer delivery is on its way",
                now.etag
            );
            tracing::warn!(manifest = %key, "manifest changed while reading; revision abandoned");
            super::part::abandon(ledger, plan, &why).await?;
            return Ok(CommitResult::Abandoned { why });
        }
    }
    // Merge the parts one at a time: memory holds the merged rollup and one part.
    let started = std::time::Instant::now();
    let mut merged = RollupMerge::default();
    let mut files_per_period: BTreeMap<String, Vec<InputFile>> = BTreeMap::new();
    let mut off_period: BTreeMap<String, OffPeriod> = BTreeMap::new();
    let mut dialects: BTreeSet<String> = BTreeSet::new();
    // Parts are fetched PART_FETCHES at once and merged in order.
    use futures_util::stream::{self, StreamExt};
    let mut in_hand = in_hand;
    let mut parts = stream::iter(0..delivery.files.len())
        .map(|i| {
            let held = in_hand.take_if(|h| h.index == i).map(|h| h.part);
            async move {
                match held {
                    Some(p) => Ok(p),
                    None => load_part(ledger, plan, i).await,
                }
            }
        })
        .buffered(PART_FETCHES);
    while let Some(part) = parts.next().await {
        let part = part?;
        for (period, r) in part.periods {
            let mut f = part.file.clone();
            f.rows = r.totals.rows;
            files_per_period.entry(period.clone()).or_default().push(f);
            merged.add(&period, r);
        }
        for (p, o) in &part.off_period {
            off_period.entry(p.clone()).or_default().merge(o);
        }
        if let Some(d) = serde_json::to_value(part.dialect)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
        {
            dialects.insert(d);
        }
    }
    if let Some(p) = &delivery.period {
        // A manifest's files may all be header-only: the period still gets an (empty) revision.
        merged.touch(p);
    }
    let rev_name = plan.revision();
    let mut out = Vec::new();
    let merged = merged.finish();
    tracing::debug!(parts = delivery.files.len(), elapsed = ?started.elapsed(), "parts loaded and merged");
    for (period, rollup) in merged {
        let dir = ledger.layout.revision_dir(&plan.source, &period, &rev_name);
        let rollup_key = format!("{dir}rollup.parquet");
        let summary_key = format!("{dir}summary.json");
        let info = SourceInfo {
            kind: kind_name(delivery.kind),
            report: delivery.report.clone(),
            manifest_key: delivery.manifest.as_ref().map(|m| m.0.clone()),
            manifest_etag: delivery.manifest.as_ref().map(|m| m.1.clone()),
            vouched_by_manifest: delivery.kind != DeliveryKind::Bare,
            dialects: dialects.iter().cloned().collect(),
        };
        let files = files_per_period.remove(&period).unwrap_or_default();
        let mut summary = Summary::new(
            &plan.source.tenant,
            &period,
            &rev_name,
            delivery.kind,
            info,
            files,
            &rollup,
        );
        summary.payer_account = Some(plan.source.payer.clone());
        summary.off_period = off_period.clone();
        summary.dimensions = plan.dimensions.clone();
        let current = Current {
            revision: rev_name.clone(),
            time: delivery.revision.time,
            id: delivery.revision.id.clone(),
            rollup_key: rollup_key.clone(),
            summary_key: summary_key.clone(),
            previous: None,
        };
        let prior = ledger.current(&plan.source, &period).await?;
        let mut restates = None;
        if let Some((cur, _)) = &prior {
            if delivery.revision <= cur.rev() {
                if cur.revision == rev_name {
                    // A retry after CURRENT moved: the index may not have
                    // followed (the earlier attempt failed after the commit).
                    super::index::refresh(ledger, &plan.source.tenant).await?;
                }
                out.push(PeriodCommit {
                    period,
                    outcome: CommitOutcome::NotNewer {
                        current: cur.revision.clone(),
                    },
                    summary,
                    restates: None,
                    changes: None,
                });
                continue;
            }
            // A new revision of a month that was final is a restatement.
            if prior_was_final(ledger, cur).await? {
                restates = Some(cur.revision.clone());
            }
        }
        let t = std::time::Instant::now();
        let bytes = write_rollup(&period, &rollup)?;
        tracing::debug!(groups = rollup.groups.len(), bytes = bytes.len(), elapsed = ?t.elapsed(), "rollup written");
        let changes = match &prior {
            Some((cur, _)) => replaced_changes(ledger, &period, cur, &bytes).await,
            None => None,
        };
        ledger.store.put(&rollup_key, bytes).await?;
        ledger
            .store
            .put(
                &commitments_key(&rollup_key),
                write_commitments(&period, &rollup.commitments)?,
            )
            .await?;
        ledger
            .store
            .put(
                &summary_key,
                serde_json::to_vec_pretty(&summary).expect("summary serialises"),
            )
            .await?;
        // The notice goes to the outbox before CURRENT moves, so a crash or a
        // failed publish after the move still leaves it to be sent.
        let mut notice = CommittedNotice::new(plan, &summary);
        notice.restates = restates.clone();
        notice.changes = changes.clone();
        outbox_put(ledger, plan, &period, &notice).await?;
        let outcome = ledger.commit(&plan.source, &period, &current).await?;
        tracing::info!(source = %plan.source, period = %period, revision = %rev_name, ?outcome, "commit");
        if matches!(outcome, CommitOutcome::Committed { .. }) {
            super::index::refresh(ledger, &plan.source.tenant).await?;
        }
        out.push(PeriodCommit {
            period,
            outcome,
            summary,
            restates,
            changes,
        });
    }
    Ok(CommitResult::Committed(out))
}
