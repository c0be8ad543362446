//! Delay before retry `attempt + 1`: exponential from the base delay up to
//! a cap, with jitter, computed by backon's builder rather than by hand.

use backon::{BackoffBuilder, ExponentialBuilder};
use std::time::Duration;

pub fn retry_delay(base: Duration, max: Duration, attempt: i32) -> Duration {
    let n = usize::try_from(attempt.max(1)).unwrap_or(1);
    ExponentialBuilder::default()
        .with_min_delay(base)
        .with_max_delay(max.max(base))
        .with_factor(2.0)
        .with_jitter()
        .with_max_times(n)
        .build()
        .nth(n - 1)
        .unwrap_or(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_with_jitter() {
        let base = Duration::from_millis(1000);
        let max = Duration::from_secs(300);
        let first = retry_delay(base, max, 1);
        let third = retry_delay(base, max, 3);
        assert!(first >= base && first <= base * 2, "{first:?}");
        assert!(third >= base * 4 && third <= base * 8, "{third:?}");
    }

    #[test]
    fn stops_growing_at_the_cap() {
        let base = Duration::from_millis(1000);
        let cap = Duration::from_millis(3000);
        let tenth = retry_delay(base, cap, 10);
        assert!(tenth >= cap && tenth <= cap * 2, "{tenth:?}");
    }
}
