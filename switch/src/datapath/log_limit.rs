//! Rate-limited logging from a PMD: whatever a tenant's traffic makes the datapath warn
//! about, at most one line per site every few seconds, the rest counted.

use std::time::{Duration, Instant};

/// At most one line per this interval per log site; the rest are counted.
const LOG_EVERY: Duration = Duration::from_secs(5);

/// A per-site log limiter.
#[derive(Default)]
pub(crate) struct LogLimit {
    last: Option<Instant>,
    suppressed: u64,
}

impl LogLimit {
    /// `Some(lines suppressed since the last one)` if a line may be logged now.
    pub fn allow(&mut self, now: Instant) -> Option<u64> {
        if self
            .last
            .is_some_and(|l| now.saturating_duration_since(l) < LOG_EVERY)
        {
            self.suppressed += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }
}
