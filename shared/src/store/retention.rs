//! Retention: what is old enough goes — finished queue jobs, delivered
//! events (with their deliveries), the provision log of finished runs,
//! leads that were never verified (with their verification secret), and,
//! kept longest, audit rows. One worker prunes at a time.

use sqlx::PgPool;
use std::time::Duration;

#[derive(Debug, Default, PartialEq)]
pub struct Pruned {
    pub jobs: u64,
    pub events: u64,
    pub logs: u64,
    pub leads: u64,
    pub audit: u64,
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Deletes what is older than `keep` (audit rows: `keep_audit`); `None`
/// when another worker is pruning right now.
pub async fn prune(
    pool: &PgPool,
    keep: Duration,
    keep_audit: Duration,
) -> sqlx::Result<Option<Pruned>> {
    let mut tx = pool.begin().await?;
    let ours = sqlx::query_scalar!(
        r#"SELECT pg_try_advisory_xact_lock(hashtext('landlord-retention')) AS "ours!""#
    )
    .fetch_one(&mut *tx)
    .await?;
    if !ours {
        return Ok(None);
    }
    let jobs = sqlx::query!(
        "DELETE FROM apalis.jobs
         WHERE status IN ('Done', 'Killed') AND done_at < now() - make_interval(secs => $1)",
        secs(keep)
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let events = sqlx::query!(
        "DELETE FROM events WHERE delivered_at < now() - make_interval(secs => $1)",
        secs(keep)
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    // A run still going keeps its whole log, however old.
    let logs = sqlx::query!(
        "DELETE FROM tenant_provision_logs l
         WHERE l.created_at < now() - make_interval(secs => $1)
           AND NOT EXISTS (SELECT 1 FROM workflow_runs r
                           WHERE r.id = l.run_id AND r.finished_at IS NULL)",
        secs(keep)
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    // Never verified: its verification secret goes first, then the lead.
    sqlx::query!(
        "DELETE FROM secrets WHERE ref IN (
            SELECT 'leads/' || id || '/verification' FROM leads
            WHERE verified_at IS NULL AND tenant_id IS NULL
              AND expires_at < now() - make_interval(secs => $1))",
        secs(keep)
    )
    .execute(&mut *tx)
    .await?;
    let leads = sqlx::query!(
        "DELETE FROM leads
         WHERE verified_at IS NULL AND tenant_id IS NULL
           AND expires_at < now() - make_interval(secs => $1)",
        secs(keep)
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let audit = sqlx::query!(
        "DELETE FROM audit_log WHERE at < now() - make_interval(secs => $1)",
        secs(keep_audit)
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(Some(Pruned {
        jobs,
        events,
        logs,
        leads,
        audit,
    }))
}
