//! CloudFormation waits for one answer per request; a function that dies at
//! its timeout without answering leaves the stack waiting for up to an hour.
//! The watchdog gives up on the work while there is still time to answer.

use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::Instant;

/// How much time to keep for answering when the work is cut short.
pub const DEFAULT_MARGIN: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("gave up {margin:?} before the deadline")]
pub struct TimedOut {
    pub margin: Duration,
}

/// `work`, unless less than `margin` remains before `deadline` first (then
/// `work` is dropped, so it does nothing more).
pub async fn before_deadline<F: Future>(
    work: F,
    deadline: Instant,
    margin: Duration,
) -> Result<F::Output, TimedOut> {
    let cutoff = deadline.checked_sub(margin).unwrap_or_else(Instant::now);
    tokio::select! {
        out = work => Ok(out),
        _ = tokio::time::sleep_until(cutoff) => Err(TimedOut { margin }),
    }
}

/// The Lambda context's deadline (milliseconds since the epoch) as an Instant.
pub fn deadline_from_epoch_ms(deadline_ms: u64) -> Instant {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    Instant::now() + Duration::from_millis(deadline_ms.saturating_sub(now_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn cuts_work_short_before_the_deadline() {
        let deadline = Instant::now() + Duration::from_millis(300);
        let r = before_deadline(
            std::future::pending::<()>(),
            deadline,
            Duration::from_millis(100),
        )
        .await;
        assert!(r.is_err());
        assert!(Instant::now() < deadline);
        let later = Instant::now() + Duration::from_secs(10);
        let quick = before_deadline(async { 7 }, later, Duration::from_millis(100)).await;
        assert_eq!(quick, Ok(7));
        let past = deadline_from_epoch_ms(0);
        assert!(past <= Instant::now());
    }
}
