//! Leads (seed 004's signup): who signs up, their email verification, and
//! the tenant they create, waiting in `pending_provision`.

use super::events::{Outbox, OutboxError, write_event};
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Lead {
    pub id: Uuid,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub company_name: String,
    pub address: serde_json::Value,
    pub verification_hash: String,
    pub expires_at: DateTime<Utc>,
    pub verified_at: Option<DateTime<Utc>>,
    pub tenant_id: Option<Uuid>,
    pub domains: Vec<String>,
    pub created_at: DateTime<Utc>,
}

pub struct NewLead<'a> {
    pub id: Uuid,
    pub email: &'a str,
    pub first_name: &'a str,
    pub last_name: &'a str,
    pub company_name: &'a str,
    pub address: &'a serde_json::Value,
    pub client_addr: &'a str,
    pub verification_hash: &'a str,
    pub expires_at: DateTime<Utc>,
}

pub async fn insert_lead(ex: impl PgExecutor<'_>, lead: &NewLead<'_>) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO leads (id, email, first_name, last_name, company_name, address,
                            client_addr, verification_hash, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        lead.id,
        lead.email,
        lead.first_name,
        lead.last_name,
        lead.company_name,
        lead.address,
        lead.client_addr,
        lead.verification_hash,
        lead.expires_at
    )
    .execute(ex)
    .await
    .map(drop)
}

/// Serialises, until the transaction ends, signups for one email address
/// and from one client, so that the rate limits' counts cannot be raced.
pub async fn lock_signup(
    conn: &mut PgConnection,
    email: &str,
    client_addr: &str,
) -> sqlx::Result<()> {
    sqlx::query!(
        "SELECT pg_advisory_xact_lock(hashtext('lead-email:' || lower($1))),
                pg_advisory_xact_lock(hashtext('lead-client:' || $2))",
        email,
        client_addr
    )
    .execute(conn)
    .await
    .map(drop)
}

/// The oldest of the leads made since `since` by this email address and by
/// this client address, with their counts: a rate limit's inputs.
pub struct RecentLeads {
    pub by_email: i64,
    pub by_client: i64,
    pub oldest_by_email: Option<DateTime<Utc>>,
    pub oldest_by_client: Option<DateTime<Utc>>,
}

pub async fn recent_leads(
    ex: impl PgExecutor<'_>,
    email: &str,
    client_addr: &str,
    since: DateTime<Utc>,
) -> sqlx::Result<RecentLeads> {
    let row = sqlx::query!(
        r#"SELECT
             count(*) FILTER (WHERE lower(email) = lower($1)) AS "by_email!",
             count(*) FILTER (WHERE client_addr = $2) AS "by_client!",
             min(created_at) FILTER (WHERE lower(email) = lower($1)) AS oldest_by_email,
             min(created_at) FILTER (WHERE client_addr = $2) AS oldest_by_client
           FROM leads
           WHERE created_at > $3 AND (lower(email) = lower($1) OR client_addr = $2)"#,
        email,
        client_addr,
        since
    )
    .fetch_one(ex)
    .await?;
    Ok(RecentLeads {
        by_email: row.by_email,
        by_client: row.by_client,
        oldest_by_email: row.oldest_by_email,
        oldest_by_client: row.oldest_by_client,
    })
}

pub async fn lead_by_id(ex: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Option<Lead>> {
    sqlx::query_as!(
        Lead,
        "SELECT id, email, first_name, last_name, company_name, address, verification_hash,
                expires_at, verified_at, tenant_id, domains, created_at
         FROM leads WHERE id = $1",
        id
    )
    .fetch_optional(ex)
    .await
}

pub async fn lead_of_tenant(
    ex: impl PgExecutor<'_>,
    tenant_id: Uuid,
) -> sqlx::Result<Option<Lead>> {
    sqlx::query_as!(
        Lead,
        "SELECT id, email, first_name, last_name, company_name, address, verification_hash,
                expires_at, verified_at, tenant_id, domains, created_at
         FROM leads WHERE tenant_id = $1",
        tenant_id
    )
    .fetch_optional(ex)
    .await
}

/// Marks the lead verified, once, while its verification is still open;
/// false when it was verified already or expired.
pub async fn verify_lead(ex: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<bool> {
    let done = sqlx::query!(
        "UPDATE leads SET verified_at = now()
         WHERE id = $1 AND verified_at IS NULL AND expires_at > now()",
        id
    )
    .execute(ex)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Serialises, until the transaction ends, everything that decides who
/// gets a tenant key: a signup's tenant and a provisioning run's start.
pub async fn lock_tenant_key(conn: &mut PgConnection, key: &str) -> sqlx::Result<()> {
    sqlx::query!(
        "SELECT pg_advisory_xact_lock(hashtext('tenant-key:' || $1::text))",
        key
    )
    .execute(conn)
    .await
    .map(drop)
}

/// The lead's tenant, `pending_provision`, made in the caller's
/// transaction. The key is taken when a tenant has it or a provisioning run
/// was started for it (its row comes with the run's first step). A lead
/// that already has its tenant makes none (its token is used): the caller
/// rolls back.
pub async fn create_lead_tenant(
    conn: &mut PgConnection,
    lead_id: Uuid,
    key: &str,
    domains: &[String],
) -> sqlx::Result<LeadTenant> {
    lock_tenant_key(conn, key).await?;
    let running = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM workflow_runs WHERE workflow_id = 'provision-tenant-' || $1) AS "found!""#,
        key
    )
    .fetch_one(&mut *conn)
    .await?;
    if running {
        return Ok(LeadTenant::KeyTaken);
    }
    let id = sqlx::query_scalar!(
        "INSERT INTO tenants (id, name, status) VALUES ($1, $2, 'pending_provision')
         ON CONFLICT (name) DO NOTHING RETURNING id",
        Uuid::now_v7(),
        key
    )
    .fetch_optional(&mut *conn)
    .await?;
    let Some(id) = id else {
        return Ok(LeadTenant::KeyTaken);
    };
    let attached = sqlx::query!(
        "UPDATE leads SET tenant_id = $2, domains = $3
         WHERE id = $1 AND tenant_id IS NULL AND verified_at IS NOT NULL",
        lead_id,
        id,
        domains
    )
    .execute(&mut *conn)
    .await?;
    Ok(match attached.rows_affected() {
        1 => LeadTenant::Created(id),
        _ => LeadTenant::AlreadyUsed,
    })
}

#[derive(Debug, PartialEq)]
pub enum LeadTenant {
    Created(Uuid),
    KeyTaken,
    /// The lead has its tenant already: the caller rolls back.
    AlreadyUsed,
}

/// The lead's own event (no run, no tenant), once per lead and type.
pub async fn insert_lead_event(
    conn: &mut PgConnection,
    outbox: Outbox,
    lead_id: Uuid,
    kind: &str,
    payload: &serde_json::Value,
) -> Result<(), OutboxError> {
    let key = format!("lead:{lead_id}:{kind}");
    write_event(conn, outbox, None, None, kind, payload, key).await
}
