//! What a step is: a `run` that returns its checkpoint and an idempotent
//! `compensate`, with errors that say whether retrying can help.

use crate::deps::Deps;
use async_trait::async_trait;
use landlord_shared::backend::Backend;
use landlord_shared::model::Run;
use landlord_shared::tenant::{TenantKey, TenantNames};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;

/// The engine branches on the variant, never on the message.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error("{0:#}")]
    Transient(anyhow::Error),
    #[error("{0:#}")]
    Permanent(anyhow::Error),
}

impl StepError {
    pub fn transient(msg: impl std::fmt::Display) -> Self {
        Self::Transient(anyhow::anyhow!("{msg}"))
    }

    pub fn permanent(msg: impl std::fmt::Display) -> Self {
        Self::Permanent(anyhow::anyhow!("{msg}"))
    }

    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient(_))
    }
}

/// SQLSTATE classes worth another attempt: connection exceptions (08),
/// transaction rollbacks such as serialization failures and deadlocks (40),
/// insufficient resources (53), operator intervention (57), and
/// object_in_use (55006: a template still has sessions).
fn sqlstate_is_transient(code: &str) -> bool {
    matches!(&code[..2.min(code.len())], "08" | "40" | "53" | "57") || code == "55006"
}

impl From<sqlx::Error> for StepError {
    fn from(e: sqlx::Error) -> Self {
        let transient = match &e {
            sqlx::Error::Database(db) => db.code().is_some_and(|c| sqlstate_is_transient(&c)),
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Protocol(_) => true,
            _ => false,
        };
        if transient {
            Self::Transient(e.into())
        } else {
            Self::Permanent(e.into())
        }
    }
}

impl From<landlord_shared::store::OutboxError> for StepError {
    fn from(e: landlord_shared::store::OutboxError) -> Self {
        match e {
            landlord_shared::store::OutboxError::Db(db) => db.into(),
            other => Self::Transient(other.into()),
        }
    }
}

impl From<std::io::Error> for StepError {
    fn from(e: std::io::Error) -> Self {
        use std::io::ErrorKind::*;
        match e.kind() {
            PermissionDenied | InvalidInput | InvalidData | AlreadyExists | NotADirectory => {
                Self::Permanent(e.into())
            }
            _ => Self::Transient(e.into()),
        }
    }
}

/// Everything a step may read. Owned, so an attempt can run on its own task
/// and be abandoned on timeout.
#[derive(Clone)]
pub struct StepCtx {
    pub deps: Arc<Deps>,
    pub run: Run,
    pub key: TenantKey,
    pub names: TenantNames,
    /// Known once `register` has completed.
    pub tenant_id: Option<Uuid>,
    /// Checkpoints of the steps completed before this one, by step name.
    pub outputs: HashMap<String, Value>,
    pub attempt: i32,
    /// The backend the run decided this step uses (for storage: bucket or
    /// folder), whatever this worker could also do.
    pub needs: Option<Backend>,
}

impl StepCtx {
    pub fn output_of(&self, step: &str) -> Option<&Value> {
        self.outputs.get(step)
    }

    pub fn require_tenant_id(&self) -> Result<Uuid, StepError> {
        self.tenant_id
            .ok_or_else(|| StepError::permanent("tenant is not registered yet"))
    }
}

/// How a step's attempt ended when it did not fail.
#[derive(Debug)]
pub enum Outcome {
    /// The work is done; its checkpoint.
    Done(Value),
    /// An executor took the work on and reports its end by a callback
    /// (a plan's custom steps).
    Accepted,
}

#[async_trait]
pub trait Step: Send + Sync + 'static {
    fn name(&self) -> &'static str;

    /// Does the work and returns the checkpoint. Must be idempotent: an
    /// interrupted attempt is run again. A `"resources"` array of
    /// `{kind, name}` in the output is recorded in `tenant_resources`.
    async fn run(&self, ctx: &StepCtx) -> Result<Value, StepError>;

    /// Starts the work: done (the checkpoint), or accepted by an executor
    /// that reports later. Built-in steps are done when `run` returns.
    async fn start(&self, ctx: &StepCtx) -> Result<Outcome, StepError> {
        self.run(ctx).await.map(Outcome::Done)
    }

    /// Undoes `run`. `output` is `None` when the step failed or was
    /// interrupted before checkpointing, so this must also clean up partial
    /// work and treat "already gone" as success.
    async fn compensate(&self, ctx: &StepCtx, output: Option<&Value>) -> Result<(), StepError>;
}
