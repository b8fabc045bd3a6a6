//! A connection's health, as a pure state machine: what one sweep observed
//! in, the connection's new fields and at most one `connection-changed`
//! notice out. The only writer of `status` for a swept connection.
//!
//! - transient trouble never counts (only `last_checked_at` moves);
//! - one failed sweep counts, and changes nothing else;
//! - the second failed sweep in a row takes the cause's status (broken, or
//!   degraded for report-stale / org-access / export-unhealthy) and
//!   notifies once; a further failure with another cause notifies again;
//! - a healthy sweep after anything else: connected, one notice;
//! - no change: nothing to publish.

use super::HealthCause;
use crate::pipeline::ConnectionChanged;
use crate::registry::{Connection, ConnectionStatus};
use chrono::{DateTime, Utc};

/// Failed sweeps in a row before a connection leaves connected.
pub const FAILURES_TO_CHANGE: u32 = 2;

/// What one sweep of a connection found (the most serious finding).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observation {
    Healthy,
    Failed { cause: HealthCause, remedy: String },
}

/// Whether the sweep owns this connection's status: a pending one is still
/// being onboarded, a disconnected one is kept, not read.
pub fn swept(conn: &Connection) -> bool {
    !matches!(
        conn.status,
        ConnectionStatus::Pending | ConnectionStatus::Disconnected
    )
}

/// Apply `obs` to `conn`; the notice to publish if its status or cause changed.
pub fn observe(
    conn: &mut Connection,
    obs: &Observation,
    now: DateTime<Utc>,
) -> Option<ConnectionChanged> {
    if !swept(conn) {
        return None;
    }
    conn.last_checked_at = Some(now);
    let (status, cause, remedy) = match obs {
        Observation::Failed { cause, remedy } => {
            // Transient trouble has no status: it never counts.
            let status = cause.status()?;
            conn.consecutive_failures = conn.consecutive_failures.saturating_add(1);
            if conn.consecutive_failures < FAILURES_TO_CHANGE {
                return None;
            }
            (status, Some(*cause), Some(remedy.clone()))
        }
        Observation::Healthy => {
            conn.consecutive_failures = 0;
            (ConnectionStatus::Connected, None, None)
        }
    };
    if conn.status == status && conn.cause == cause {
        // Same diagnosis: AWS's wording (the remedy) may have moved on.
        conn.remedy = remedy;
        return None;
    }
    let change = ConnectionChanged {
        tenant: conn.tenant.clone(),
        payer_account: conn.payer_account.clone(),
        status,
        cause,
        previous_status: conn.status,
        previous_cause: conn.cause,
        remedy: remedy.clone(),
        at: now,
    };
    conn.status = status;
    conn.cause = cause;
    conn.remedy = remedy;
    conn.status_since = Some(now);
    Some(change)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::AccessMode;

    fn connected() -> Connection {
        let mut c = Connection::new(
            "acme",
            "111122223333",
            AccessMode::CrossAccountRole,
            "b",
            "cur",
        );
        c.status = ConnectionStatus::Connected;
        c
    }

    fn failed(cause: HealthCause) -> Observation {
        Observation::Failed {
            cause,
            remedy: super::super::remedy(cause, None),
        }
    }

    fn at(minute: u32) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(&format!("2026-12-02T04:{minute:02}:00Z"))
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn one_failure_changes_nothing_two_break_once_recovery_notifies_once() {
        let mut c = connected();
        assert_eq!(
            observe(&mut c, &failed(HealthCause::AssumeDenied), at(0)),
            None
        );
        assert_eq!(
            (c.status, c.cause, c.consecutive_failures),
            (ConnectionStatus::Connected, None, 1)
        );
        assert_eq!(c.last_checked_at, Some(at(0)));

        let n = observe(&mut c, &failed(HealthCause::AssumeDenied), at(1)).expect("a change");
        assert_eq!(
            (n.status, n.cause, n.previous_status),
            (
                ConnectionStatus::Broken,
                Some(HealthCause::AssumeDenied),
                ConnectionStatus::Connected
            )
        );
        assert!(n.remedy.as_deref().unwrap().contains("External ID"));
        assert_eq!(
            (c.status, c.status_since),
            (ConnectionStatus::Broken, Some(at(1)))
        );

        // Still broken for the same cause: nothing to say.
        assert_eq!(
            observe(&mut c, &failed(HealthCause::AssumeDenied), at(2)),
            None
        );
        assert_eq!((c.consecutive_failures, c.status_since), (3, Some(at(1))));

        let n = observe(&mut c, &Observation::Healthy, at(3)).expect("recovered");
        assert_eq!(
            (n.status, n.cause, n.previous_cause),
            (
                ConnectionStatus::Connected,
                None,
                Some(HealthCause::AssumeDenied)
            )
        );
        assert_eq!(
            (
                c.status,
                c.cause,
                c.remedy.as_deref(),
                c.consecutive_failures
            ),
            (ConnectionStatus::Connected, None, None, 0)
        );
        assert_eq!(observe(&mut c, &Observation::Healthy, at(4)), None);
    }

    #[test]
    fn transient_trouble_never_counts_nor_resets() {
        let mut c = connected();
        assert_eq!(
            observe(&mut c, &failed(HealthCause::BucketGone), at(0)),
            None
        );
        for m in 1..5 {
            assert_eq!(
                observe(&mut c, &failed(HealthCause::Transient), at(m)),
                None
            );
        }
        assert_eq!(
            (c.status, c.consecutive_failures),
            (ConnectionStatus::Connected, 1)
        );
        assert_eq!(c.last_checked_at, Some(at(4)));
        let n = observe(&mut c, &failed(HealthCause::BucketGone), at(5)).unwrap();
        assert_eq!(n.status, ConnectionStatus::Broken);
    }

    #[test]
    fn a_single_failure_between_successes_never_notifies() {
        let mut c = connected();
        for m in 0..6 {
            let obs = if m % 2 == 0 {
                failed(HealthCause::KmsDenied)
            } else {
                Observation::Healthy
            };
            assert_eq!(observe(&mut c, &obs, at(m)), None);
        }
        assert_eq!(c.status, ConnectionStatus::Connected);
    }

    #[test]
    fn stale_reports_and_org_access_degrade() {
        let mut c = connected();
        observe(&mut c, &failed(HealthCause::ReportStale), at(0));
        let n = observe(&mut c, &failed(HealthCause::ReportStale), at(1)).unwrap();
        assert_eq!(n.status, ConnectionStatus::Degraded);
        // Another cause while failing: one more notice, naming it.
        let n = observe(&mut c, &failed(HealthCause::BucketGone), at(2)).unwrap();
        assert_eq!(
            (n.status, n.cause, n.previous_cause),
            (
                ConnectionStatus::Broken,
                Some(HealthCause::BucketGone),
                Some(HealthCause::ReportStale)
            )
        );
    }

    #[test]
    fn a_connection_marked_by_ingestion_recovers_on_a_healthy_sweep() {
        let mut c = connected();
        c.status = ConnectionStatus::Degraded;
        let n = observe(&mut c, &Observation::Healthy, at(0)).unwrap();
        assert_eq!(n.previous_status, ConnectionStatus::Degraded);
    }

    #[test]
    fn pending_and_disconnected_connections_are_not_swept() {
        for s in [ConnectionStatus::Pending, ConnectionStatus::Disconnected] {
            let mut c = connected();
            c.status = s;
            for m in 0..3 {
                assert_eq!(
                    observe(&mut c, &failed(HealthCause::BucketGone), at(m)),
                    None
                );
            }
            assert_eq!((c.status, c.consecutive_failures), (s, 0));
        }
    }

    #[test]
    fn a_document_written_before_the_sweep_loads_healthy_and_untested() {
        let old = r#"{"tenant":"acme","payer_account":"111122223333","access_mode":"cross-account-role",
            "bucket":"b","prefix":"cur","status":"connected","linked_accounts":[],"since":"2024-01",
            "created_at":"2024-01-01T00:00:00Z","updated_at":"2024-01-01T00:00:00Z","version":3}"#;
        let c: Connection = serde_json::from_str(old).unwrap();
        assert_eq!(
            (
                c.cause,
                c.consecutive_failures,
                c.last_checked_at,
                c.since.as_deref()
            ),
            (None, 0, None, Some("2024-01"))
        );
    }

    #[test]
    fn the_notice_carries_the_filter_attributes() {
        let mut c = connected();
        observe(&mut c, &failed(HealthCause::KmsDenied), at(0));
        let n = observe(&mut c, &failed(HealthCause::KmsDenied), at(1)).unwrap();
        let n = crate::pipeline::Notice::ConnectionChanged(n);
        assert_eq!(
            n.attributes(),
            vec![
                ("event", "connection-changed".to_owned()),
                ("tenant", "acme".to_owned()),
                ("payer_account", "111122223333".to_owned()),
                ("status", "broken".to_owned()),
                ("cause", "kms-denied".to_owned()),
            ]
        );
        let json = serde_json::to_value(&n).unwrap();
        assert_eq!(
            (json["event"].as_str(), json["cause"].as_str()),
            (Some("connection-changed"), Some("kms-denied"))
        );
    }
}
