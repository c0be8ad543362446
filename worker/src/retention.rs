//! Every worker prunes now and then (`store::retention`); the database
//! lock there lets one at a time do it.

use landlord_shared::store::retention;
use sqlx::PgPool;
use std::time::Duration;

pub async fn prune_every(pool: PgPool, every: Duration, keep: Duration, keep_audit: Duration) {
    loop {
        match retention::prune(&pool, keep, keep_audit).await {
            Ok(Some(p)) if p != retention::Pruned::default() => tracing::info!(
                jobs = p.jobs,
                events = p.events,
                logs = p.logs,
                leads = p.leads,
                audit = p.audit,
                "pruned what is past retention"
            ),
            Ok(_) => {}
            // Down or restarting: the next round tries again.
            Err(e) => tracing::warn!("pruning failed: {e}"),
        }
        tokio::time::sleep(every).await;
    }
}
