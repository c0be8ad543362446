//! Mongo step: database `{prefix}_{tenant}` (made real by a marker
//! collection) and a per-tenant user with `readWrite` on it where the
//! server supports users. Undo drops both.

use crate::step::{Step, StepCtx, StepError};
use async_trait::async_trait;
use landlord_shared::secrets::{SecretStore, generate_password};
use mongodb::bson::{Document, doc};
use mongodb::error::ErrorKind;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use std::future::IntoFuture;
use tracing::Instrument;

pub struct Mongo;

const MARKER: &str = "_landlord";
/// Servers without user management answer createUser with one of these:
/// CommandNotFound, CommandNotSupported, NotImplemented.
const UNSUPPORTED: &[i32] = &[59, 115, 238];

fn code(e: &mongodb::error::Error) -> Option<i32> {
    match e.kind.as_ref() {
        ErrorKind::Command(c) => Some(c.code),
        _ => None,
    }
}

pub fn mongo_error(e: mongodb::error::Error) -> StepError {
    let transient = match e.kind.as_ref() {
        ErrorKind::Io(_)
        | ErrorKind::ServerSelection { .. }
        | ErrorKind::ConnectionPoolCleared { .. }
        | ErrorKind::DnsResolve { .. } => true,
        // HostUnreachable, HostNotFound, NetworkTimeout, ShutdownInProgress,
        // PrimarySteppedDown, InterruptedAtShutdown.
        ErrorKind::Command(c) => [6, 7, 89, 91, 189, 11600].contains(&c.code),
        _ => false,
    } || e.contains_label("RetryableWriteError")
        || e.contains_label("TransientTransactionError");
    if transient {
        StepError::Transient(e.into())
    } else {
        StepError::Permanent(e.into())
    }
}

fn secret_ref(db: &str) -> String {
    format!("mongodb/{db}")
}

fn client(ctx: &StepCtx) -> Result<&mongodb::Client, StepError> {
    ctx.deps
        .mongo
        .as_ref()
        .ok_or_else(|| StepError::permanent("MONGODB_ADMIN_URI is not configured"))
}

/// Creates the user, or resets its password when it exists; `false` when
/// the server has no user management.
fn mongo_span(operation: &'static str) -> tracing::Span {
    tracing::info_span!(
        "mongodb",
        otel.kind = "client",
        db.system = "mongodb",
        db.operation = operation
    )
}

#[tracing::instrument(name = "mongodb", skip_all, fields(otel.kind = "client", db.system = "mongodb", db.operation = "ensure_user"))]
async fn ensure_user(db: &mongodb::Database, name: &str, ctx: &StepCtx) -> Result<bool, StepError> {
    let store = ctx
        .deps
        .secrets
        .as_ref()
        .ok_or_else(|| StepError::permanent("LANDLORD_SECRET_KEY is not configured"))?;
    let password = generate_password(32);
    let roles = vec![doc! { "role": "readWrite", "db": name }];
    let create =
        doc! { "createUser": name, "pwd": password.expose_secret(), "roles": roles.clone() };
    match db.run_command(create).await {
        Ok(_) => {}
        Err(e) if code(&e).is_some_and(|c| UNSUPPORTED.contains(&c)) => return Ok(false),
        // UserAlreadyExists (51003): a re-run after a crash.
        Err(e) if code(&e) == Some(51003) => {
            let update =
                doc! { "updateUser": name, "pwd": password.expose_secret(), "roles": roles };
            db.run_command(update).await.map_err(mongo_error)?;
        }
        Err(e) => return Err(mongo_error(e)),
    }
    store
        .put(&ctx.deps.master, &secret_ref(name), &password)
        .await
        .map_err(StepError::transient)?;
    Ok(true)
}

#[async_trait]
impl Step for Mongo {
    fn name(&self) -> &'static str {
        "mongo"
    }

    async fn run(&self, ctx: &StepCtx) -> Result<Value, StepError> {
        let name = ctx.names.mongo_db();
        let db = client(ctx)?.database(&name);
        let marker = db.collection::<Document>(MARKER);
        marker
            .update_one(
                doc! { "_id": "tenant" },
                doc! { "$set": { "tenant": ctx.key.as_str() } },
            )
            .upsert(true)
            .into_future()
            .instrument(mongo_span("update_one"))
            .await
            .map_err(mongo_error)?;
        let user = ensure_user(&db, &name, ctx).await?;
        let mut resources = vec![json!({ "kind": "mongo_database", "name": name })];
        if user {
            resources.push(json!({ "kind": "mongo_user", "name": name }));
        }
        Ok(json!({
            "database": name,
            "username": user.then_some(&name),
            "secret_ref": user.then(|| secret_ref(&name)),
            "resources": resources,
        }))
    }

    async fn compensate(&self, ctx: &StepCtx, _: Option<&Value>) -> Result<(), StepError> {
        let name = ctx.names.mongo_db();
        let db = client(ctx)?.database(&name);
        match db
            .run_command(doc! { "dropUser": &name })
            .into_future()
            .instrument(mongo_span("dropUser"))
            .await
        {
            // UserNotFound, or no user management at all.
            Err(e) if !code(&e).is_some_and(|c| c == 11 || UNSUPPORTED.contains(&c)) => {
                return Err(mongo_error(e));
            }
            _ => {}
        }
        db.drop()
            .into_future()
            .instrument(mongo_span("dropDatabase"))
            .await
            .map_err(mongo_error)?;
        SecretStore::delete(&ctx.deps.master, &secret_ref(&name))
            .await
            .map_err(StepError::transient)
    }
}
