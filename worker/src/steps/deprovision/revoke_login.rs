//! Soft deprovisioning: the tenant's Postgres role keeps its database but
//! may no longer log in, and its open sessions are ended.

use super::super::claim::left_alone;
use super::super::postgres::{admin_options, exec_ddl, ownership_comment, role_comment};
use crate::step::{Step, StepCtx, StepError};
use async_trait::async_trait;
use landlord_shared::store::catalog;
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};

pub struct RevokeLogin;

/// `None` when the role does not exist (never created or already dropped).
async fn set_login(ctx: &StepCtx, login: bool) -> Result<Option<String>, StepError> {
    let role = ctx.names.postgres_role();
    let mut conn = PgConnection::connect_with(&admin_options(ctx)?).await?;
    let result = async {
        let Some(comment) = role_comment(&mut conn, &role).await? else {
            return Ok(None);
        };
        if comment.as_deref() != Some(ownership_comment(ctx)?.as_str()) {
            // Someone else's role of the same name: not ours to lock out.
            left_alone(
                ctx,
                "postgres_role",
                role.as_str(),
                "no comment marking it for this tenant",
            );
            return Ok(None);
        }
        let attr = if login { "LOGIN" } else { "NOLOGIN" };
        exec_ddl(&mut conn, format!("ALTER ROLE {} {attr}", role.quoted())).await?;
        if !login {
            // NOLOGIN stops new sessions only.
            catalog::terminate_sessions(&mut conn, role.as_str()).await?;
        }
        Ok(Some(role.as_str().to_owned()))
    }
    .await;
    let _ = conn.close().await;
    result
}

#[async_trait]
impl Step for RevokeLogin {
    fn name(&self) -> &'static str {
        "revoke_login"
    }

    async fn run(&self, ctx: &StepCtx) -> Result<Value, StepError> {
        let role = set_login(ctx, false).await?;
        Ok(json!({ "role": role, "login": false }))
    }

    async fn compensate(&self, ctx: &StepCtx, _: Option<&Value>) -> Result<(), StepError> {
        set_login(ctx, true).await.map(drop)
    }
}
