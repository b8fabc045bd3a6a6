//! Garbage collection of superseded and abandoned revisions and stale staging.
//! Never touches what CURRENT names (CURRENT is re-read before each delete);
//! a revision newer than CURRENT (possibly still being built) is only removed
//! once it is older than the grace period, and a superseded one once the
//! revision that replaced it is (until then `curlew diff` compares against it).

use crate::ledger::{Ledger, LedgerError};
use crate::store::ObjectMeta;
use chrono::{DateTime, Duration, Utc};
use std::collections::BTreeMap;

/// What a GC run removed and kept.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GcReport {
    /// Revision directories deleted (as `.../payer=A/report=N/revision=R/`).
    pub deleted_revisions: Vec<String>,
    /// Staging directories deleted.
    pub deleted_staging: Vec<String>,
    pub objects_deleted: usize,
    /// Revisions newer than CURRENT kept because they are younger than the
    /// grace period, and superseded ones replaced less than the grace period
    /// ago (the base of `curlew diff`).
    pub kept_in_flight: Vec<String>,
}

/// Objects under `prefix` grouped by their first `depth` path segments after it.
fn group_by_dir<'a>(
    objects: &'a [ObjectMeta],
    prefix: &str,
    depth: usize,
) -> BTreeMap<String, Vec<&'a ObjectMeta>> {
    let mut out: BTreeMap<String, Vec<&ObjectMeta>> = BTreeMap::new();
    for o in objects {
        if let Some(rest) = o.key.strip_prefix(prefix) {
            let segs: Vec<&str> = rest.split('/').collect();
            if segs.len() > depth {
                out.entry(segs[..depth].join("/")).or_default().push(o);
            }
        }
    }
    out
}

/// Collect garbage for one tenant.
pub async fn gc(
    ledger: &Ledger,
    tenant: &str,
    grace: Duration,
    now: DateTime<Utc>,
) -> Result<GcReport, LedgerError> {
    gc_observed(ledger, tenant, grace, now, &|_| {}).await
}

/// [`gc`], calling `after_delete` with each key of a revision directory it
/// deleted (how a test lets a commit land in the middle of a run).
async fn gc_observed(
    ledger: &Ledger,
    tenant: &str,
    grace: Duration,
    now: DateTime<Utc>,
    after_delete: &(dyn Fn(&str) + Sync),
) -> Result<GcReport, LedgerError> {
    let mut report = GcReport::default();
    let cutoff = now - grace;
    for (period, source) in ledger.sources(tenant, None).await? {
        let dir = ledger.layout.source_dir(&source, &period);
        let objects = ledger.store.list(&dir).await?;
        let revisions = group_by_dir(&objects, &dir, 1);
        // When each revision was written (its newest object).
        let written: BTreeMap<&str, DateTime<Utc>> = revisions
            .iter()
            .filter_map(|(sub, objs)| {
                let rev = sub.strip_prefix("revision=")?;
                Some((rev, objs.iter().map(|o| o.last_modified).max()?))
            })
            .collect();
        for (sub, objs) in &revisions {
            let Some(rev) = sub.strip_prefix("revision=") else {
                continue;
            };
            // Re-read CURRENT for every directory: a commit may have moved it meanwhile.
            let Some((current, _)) = ledger.current(&source, &period).await? else {
                continue;
            };
            if rev == current.revision {
                continue;
            }
            let superseded = rev < current.revision.as_str();
            // A superseded revision stays for the grace period after the
            // revision that replaced it (the next one up to CURRENT) was
            // written: `curlew diff` compares against it. When the listing
            // does not show that revision (a commit landed after it), keep.
            let replaced_before_cutoff = written
                .range::<str, _>((std::ops::Bound::Excluded(rev), std::ops::Bound::Unbounded))
                .find(|(r, _)| **r <= current.revision.as_str())
                .is_some_and(|(_, t)| *t < cutoff);
            // The revision CURRENT says it replaced (the default base of a
            // diff) stays while CURRENT's own revision is younger than the
            // grace period, whatever lies between them (a revision written
            // but never made current).
            let base_of_current = current.previous.as_deref() == Some(rev)
                && written
                    .get(current.revision.as_str())
                    .is_none_or(|t| *t >= cutoff);
            let replaced_before_cutoff = replaced_before_cutoff && !base_of_current;
            let stale = objs.iter().all(|o| o.last_modified < cutoff);
            if (superseded && replaced_before_cutoff) || (!superseded && stale) {
                let mut deleted = 0;
                for o in objs {
                    // Again before each delete: a slow commit may have made
                    // this revision current since (then the rest is kept).
                    let named = ledger.current(&source, &period).await?;
                    if named.is_some_and(|(c, _)| c.revision == rev) {
                        break;
                    }
                    ledger.store.delete(&o.key).await?;
                    after_delete(&o.key);
                    deleted += 1;
                }
                report.objects_deleted += deleted;
                if deleted < objs.len() {
                    report.kept_in_flight.push(format!("{dir}{sub}/"));
                    continue;
                }
                report.deleted_revisions.push(format!("{dir}{sub}/"));
            } else {
                report.kept_in_flight.push(format!("{dir}{sub}/"));
            }
        }
    }
    // _staging/payer=A/report=N/<revision>/...
    let staging = format!("{}_staging/", ledger.layout.tenant_dir(tenant));
    let objects = ledger.store.list(&staging).await?;
    for (sub, objs) in group_by_dir(&objects, &staging, 3) {
        if objs.iter().all(|o| o.last_modified < cutoff) {
            for o in &objs {
                ledger.store.delete(&o.key).await?;
                report.objects_deleted += 1;
            }
            report.deleted_staging.push(format!("{staging}{sub}/"));
        }
    }
    // Sent outbox records older than the grace period; an unsent one is kept
    // (its notice is still owed).
    let outbox = format!("{}_outbox/", ledger.layout.tenant_dir(tenant));
    for o in ledger.store.list(&outbox).await? {
        if o.last_modified < cutoff
            && crate::pipeline::outbox_sent(&ledger.store.get_bytes(&o.key).await?.1)
        {
            ledger.store.delete(&o.key).await?;
            report.objects_deleted += 1;
        }
    }
    Ok(report)
}

/// The shortest grace `curlew gc` accepts: a part job is retried by SQS up
/// to five times 30 minutes after it was planned (the parts queue's
/// visibility timeout x maxReceiveCount), and its plan must still be there.
pub const MIN_GRACE_MINUTES: i64 = 180;

/// Delete onboarding tokens no stack redeemed that expired more than a day
/// ago, and tokens retired (their stack deleted) more than a week ago; a
/// redeemed, live one stays: its stack presents it again on Update and
/// Delete. Returns how many.
pub async fn gc_onboarding(
    store: &crate::store::Store,
    prefix: &str,
    now: DateTime<Utc>,
) -> Result<usize, crate::onboard::OnboardingError> {
    crate::onboard::Onboardings::new(store.clone(), prefix)
        .remove_stale(now)
        .await
}

/// Delete the AWS Health dedupe records (`health/dedupe/`, not per tenant)
/// whose `expires_at` has passed; returns how many. A record rewritten since
/// it was listed is younger and is kept (it is re-read before the delete).
pub async fn gc_health(
    store: &crate::store::Store,
    prefix: &str,
    now: DateTime<Utc>,
) -> Result<usize, crate::health::HealthError> {
    crate::health::dedupe::DedupeStore::new(store.clone(), prefix)
        .gc(now)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{Current, SourceId};
    use crate::store::Store;

    fn current(revision: &str, day: u32) -> Current {
        let time = chrono::NaiveDate::from_ymd_opt(2024, 1, day)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc();
        Current {
            revision: revision.into(),
            time,
            id: revision.into(),
            rollup_key: String::new(),
            summary_key: String::new(),
            previous: None,
        }
    }

    /// A revision newer than CURRENT whose files look abandoned is being
    /// deleted when a slow commit makes it current: gc stops at once and
    /// keeps the rest (it re-reads CURRENT before every delete; reading it
    /// once per directory deleted all five files of the now-current revision).
    #[tokio::test]
    async fn a_revision_committed_while_gc_deletes_it_keeps_its_remaining_files() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::new(Store::local(dir.path()), "");
        let source = SourceId::new("acme", "111122223333", "cur");
        let (old, slow) = ("20240101T000000Z-a", "20240102T000000Z-b");
        ledger
            .commit(&source, "2024-01", &current(old, 1))
            .await
            .unwrap();
        let rev_dir = ledger.layout.revision_dir(&source, "2024-01", slow);
        for i in 0..5 {
            ledger
                .store
                .put(&format!("{rev_dir}part-{i}"), b"x".to_vec())
                .await
                .unwrap();
        }
        // The commit of `slow` lands right after gc's first delete.
        let mut next = current(slow, 2);
        next.previous = Some(old.into());
        let body = serde_json::to_vec_pretty(&next).unwrap();
        let current_path = dir.path().join(ledger.layout.current(&source, "2024-01"));
        let landed = std::sync::atomic::AtomicBool::new(false);
        let commit_once = |_: &str| {
            if !landed.swap(true, std::sync::atomic::Ordering::SeqCst) {
                std::fs::write(&current_path, &body).unwrap();
            }
        };
        let later = Utc::now() + Duration::days(2);
        let r = gc_observed(&ledger, "acme", Duration::hours(3), later, &commit_once)
            .await
            .unwrap();
        assert_eq!(r.objects_deleted, 1, "{r:?}");
        assert_eq!(r.kept_in_flight, std::slice::from_ref(&rev_dir));
        assert!(r.deleted_revisions.is_empty());
        let left = ledger.store.list(&rev_dir).await.unwrap();
        assert_eq!(left.len(), 4);
    }

    /// The grace of a superseded revision runs from when what replaced it
    /// was written, and the revision CURRENT replaced (a diff's default
    /// base) stays while CURRENT is young even when a revision written but
    /// never made current lies between them.
    #[tokio::test]
    async fn a_replaced_revision_stays_for_the_grace_after_its_replacement() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::new(Store::local(dir.path()), "");
        let source = SourceId::new("acme", "111122223333", "cur");
        let (r1, r2, r3) = (
            "20240101T000000Z-a",
            "20240102T000000Z-b",
            "20240103T000000Z-c",
        );
        let ten_days_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(864_000);
        for (r, old) in [(r1, true), (r2, true), (r3, false)] {
            let key = format!(
                "{}summary.json",
                ledger.layout.revision_dir(&source, "2024-01", r)
            );
            ledger.store.put(&key, b"{}".to_vec()).await.unwrap();
            if old {
                std::fs::File::options()
                    .write(true)
                    .open(dir.path().join(&key))
                    .unwrap()
                    .set_modified(ten_days_ago)
                    .unwrap();
            }
        }
        // r1 was current, r2 was written and never committed, r3 replaced r1 just now.
        ledger
            .commit(&source, "2024-01", &current(r1, 1))
            .await
            .unwrap();
        ledger
            .commit(&source, "2024-01", &current(r3, 3))
            .await
            .unwrap();
        let (cur, _) = ledger.current(&source, "2024-01").await.unwrap().unwrap();
        assert_eq!(cur.previous.as_deref(), Some(r1));
        let grace = Duration::hours(3);
        let now = Utc::now();
        let kept = |r: &GcReport, rev: &str| r.kept_in_flight.iter().any(|k| k.contains(rev));
        let r = gc(&ledger, "acme", grace, now).await.unwrap();
        assert!(r.deleted_revisions.is_empty(), "{r:?}");
        assert!(kept(&r, r1) && kept(&r, r2), "{r:?}");
        // Once r3 is older than the grace period, both go.
        let r = gc(&ledger, "acme", grace, now + Duration::hours(4))
            .await
            .unwrap();
        assert_eq!(r.deleted_revisions.len(), 2, "{r:?}");
        let left = ledger
            .store
            .list(&ledger.layout.source_dir(&source, "2024-01"))
            .await
            .unwrap();
        assert!(
            left.iter()
                .all(|o| !o.key.contains(r1) && !o.key.contains(r2)),
            "{left:?}"
        );
    }
}
