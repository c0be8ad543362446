//! Deliveries of a run's job live in this process. apalis hands a job out
//! again when its worker misses heartbeats, and a worker that was only
//! slow (not dead) may take its own job back: two deliveries of one job in
//! one process. Its ack is guarded by the worker's name only, so the first
//! delivery to return would mark the job done while the other still
//! drives the run; were the process then killed, nothing would re-queue
//! the run. A delivery therefore returns (and is acked) only once no other
//! delivery of its run is live here.

use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::watch;
use uuid::Uuid;

#[derive(Default)]
pub(super) struct Deliveries {
    live: Mutex<HashMap<Uuid, watch::Sender<usize>>>,
}

/// One live delivery; [`Delivery::leave`] ends it.
pub(super) struct Delivery<'a> {
    set: &'a Deliveries,
    run: Uuid,
    left: bool,
}

impl Deliveries {
    pub(super) fn enter(&self, run: Uuid) -> Delivery<'_> {
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        let count = live.entry(run).or_insert_with(|| watch::Sender::new(0));
        count.send_modify(|n| *n += 1);
        if *count.borrow() > 1 {
            tracing::warn!(run_id = %run,
                "the run's job was delivered again to this worker while it drives the run \
                 (apalis presumed the worker dead): the deliveries are acked together");
        }
        Delivery {
            set: self,
            run,
            left: false,
        }
    }

    /// Counts one delivery of `run` out; a receiver if others remain.
    fn count_out(&self, run: Uuid) -> Option<watch::Receiver<usize>> {
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        let count = live.get(&run)?;
        count.send_modify(|n| *n = n.saturating_sub(1));
        if *count.borrow() == 0 {
            live.remove(&run);
            return None;
        }
        Some(count.subscribe())
    }

    #[cfg(test)]
    fn live(&self, run: Uuid) -> usize {
        let live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        live.get(&run).map_or(0, |c| *c.borrow())
    }
}

impl Delivery<'_> {
    /// Ends this delivery once no other delivery of its run is live here.
    pub(super) async fn leave(mut self) {
        self.left = true;
        if let Some(mut others) = self.set.count_out(self.run) {
            // An error means the last one left and dropped the count.
            let _ = others.wait_for(|n| *n == 0).await;
        }
    }
}

impl Drop for Delivery<'_> {
    /// A delivery dropped mid-way (its task aborted) still counts out.
    fn drop(&mut self) {
        if !self.left {
            self.set.count_out(self.run);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_delivery_returns_only_after_the_other_delivery_of_its_run() {
        let set = Deliveries::default();
        let (run, other_run) = (Uuid::new_v4(), Uuid::new_v4());
        let first = set.enter(run);
        let second = set.enter(run);
        let aborted = set.enter(run);
        assert_eq!(set.live(run), 3);
        drop(aborted);
        assert_eq!(set.live(run), 2, "a dropped delivery counts out");
        // Another run's delivery does not wait for this one.
        tokio::time::timeout(Duration::from_secs(1), set.enter(other_run).leave())
            .await
            .expect("a lone delivery leaves at once");
        let leaving = first.leave();
        tokio::pin!(leaving);
        assert!(
            tokio::time::timeout(Duration::from_millis(100), &mut leaving)
                .await
                .is_err(),
            "left while the second delivery is live"
        );
        second.leave().await;
        tokio::time::timeout(Duration::from_secs(1), leaving)
            .await
            .expect("the waiting delivery leaves once the last one has");
        assert_eq!(set.live(run), 0);
    }
}
