//! Retry or give up: the one rule for forward steps, undo steps and event
//! deliveries. A failed attempt is retried while its error is transient and
//! the budget lasts, after a backoff that grows with the attempts counted.

use super::backoff::retry_delay;
use crate::step::StepError;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Retry(Duration),
    GiveUp,
}

/// How many attempts an action may take, the first retry's delay and the
/// longest (before jitter).
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Budget {
    /// After attempt `counted` (1-based; attempts lost with a dead worker
    /// are not counted) failed with `err`.
    pub fn judge(&self, err: &StepError, counted: i32) -> Verdict {
        let max = i32::try_from(self.attempts).unwrap_or(i32::MAX);
        if err.is_transient() && counted < max {
            Verdict::Retry(retry_delay(self.base_delay, self.max_delay, counted))
        } else {
            Verdict::GiveUp
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_transient_errors_until_the_budget_is_spent() {
        let budget = Budget {
            attempts: 3,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(20),
        };
        let transient = StepError::transient("blip");
        assert!(matches!(budget.judge(&transient, 1), Verdict::Retry(_)));
        assert!(matches!(budget.judge(&transient, 2), Verdict::Retry(_)));
        assert_eq!(budget.judge(&transient, 3), Verdict::GiveUp);
        assert_eq!(
            budget.judge(&StepError::permanent("no"), 1),
            Verdict::GiveUp
        );
    }
}
