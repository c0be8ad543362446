//! Mongo step: database `{prefix}_{tenant}` (made real by inserting its
//! marker document `_landlord {_id: "owner", tenant_id}`) and a per-tenant
//! user with `readWrite` on it where the server supports users. A database
//! without our marker is someone else's: refused at create, left alone by
//! undo. Undo drops ours and its user. A plan in `shared` mode uses
//! `mongo_shared` instead.

use super::claim::{foreign, left_alone};
use crate::step::{Step, StepCtx, StepError};
use async_trait::async_trait;
use landlord_shared::catalogue::MongoMode;
use landlord_shared::secrets::{SecretStore, generate_password};
use mongodb::bson::{Document, doc};
use mongodb::error::ErrorKind;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use std::future::IntoFuture;
use tracing::Instrument;

pub struct Mongo;

/// How the run's plan keeps the tenant's documents; runs from before plans
/// had databases of their own.
fn mode(ctx: &StepCtx) -> MongoMode {
    ctx.run
        .plan
        .as_ref()
        .map_or(MongoMode::Database, |p| p.0.mongo)
}

/// Collection and id of the marker document `{_id: "owner", tenant_id}`.
const MARKER: &str = "_landlord";
const MARKER_ID: &str = "owner";
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

pub(super) fn client(ctx: &StepCtx) -> Result<&mongodb::Client, StepError> {
    ctx.deps
        .mongo
        .as_ref()
        .ok_or_else(|| StepError::permanent("MONGODB_ADMIN_URI is not configured"))
}

/// Creates the user, or resets its password when it exists; `false` when
/// the server has no user management.
pub(super) fn mongo_span(operation: &'static str) -> tracing::Span {
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

const NOT_MARKED: &str = "no marker document for this tenant";

enum Owner {
    Absent,
    Ours,
    Foreign,
}

/// What database `db` holds of our marking: `None` when the database does
/// not exist, else its marker document, if any. One `find` when it is
/// marked: `listDatabases` makes FerretDB size every database of its
/// Postgres, about a second on a busy cluster. Mongo has a database only
/// while it has a collection, so an unmarked one is there iff it lists one
/// other than the marker's.
pub(super) async fn marker_of(
    db: &mongodb::Database,
) -> Result<Option<Option<Document>>, StepError> {
    let markers = db.collection::<Document>(MARKER);
    let find = || {
        markers
            .find_one(doc! { "_id": MARKER_ID })
            .into_future()
            .instrument(mongo_span("find"))
    };
    let marker = find().await.map_err(mongo_error)?;
    if marker.is_some() {
        return Ok(Some(marker));
    }
    let collections = db
        .list_collection_names()
        .into_future()
        .instrument(mongo_span("listCollections"))
        .await
        .map_err(mongo_error)?;
    let only_ours = collections.iter().all(|c| c == MARKER);
    // Only our marker's collection, and empty: a concurrent first create
    // of ours (the collection shows before its document), which the
    // caller's insert then meets as a duplicate key.
    if only_ours {
        let held = markers
            .count_documents(doc! {})
            .into_future()
            .instrument(mongo_span("count"))
            .await
            .map_err(mongo_error)?;
        if held == 0 {
            return Ok(None);
        }
    }
    // Something is there. A concurrent first create of ours may have
    // landed its marker (and its tenants' collections) since the first
    // look: the marker as it is now has the last word.
    Ok(Some(find().await.map_err(mongo_error)?))
}

/// Whether the tenant's database exists and holds our marker document.
async fn owner(db: &mongodb::Database, ctx: &StepCtx) -> Result<Owner, StepError> {
    let tenant_id = ctx.require_tenant_id()?.to_string();
    let Some(marker) = marker_of(db).await? else {
        return Ok(Owner::Absent);
    };
    let ours = marker
        .as_ref()
        .and_then(|m| m.get_str("tenant_id").ok())
        .is_some_and(|t| t == tenant_id);
    Ok(if ours { Owner::Ours } else { Owner::Foreign })
}

/// Makes the database ours: inserting the marker document is what creates
/// it, so a database of ours is never without its mark. One that exists
/// without it is someone else's.
async fn ensure_marked(db: &mongodb::Database, name: &str, ctx: &StepCtx) -> Result<(), StepError> {
    match owner(db, ctx).await? {
        Owner::Ours => return Ok(()),
        Owner::Foreign => return Err(foreign(&format!("mongo database {name}"), NOT_MARKED)),
        Owner::Absent => {}
    }
    let tenant_id = ctx.require_tenant_id()?.to_string();
    let inserted = db
        .collection::<Document>(MARKER)
        .insert_one(doc! { "_id": MARKER_ID, "tenant_id": &tenant_id })
        .into_future()
        .instrument(mongo_span("insert"))
        .await;
    match inserted {
        Ok(_) => Ok(()),
        // A marker appeared since we looked: ours only if it names us.
        Err(e) if is_duplicate_key(&e) => match owner(db, ctx).await? {
            Owner::Ours => Ok(()),
            _ => Err(foreign(&format!("mongo database {name}"), NOT_MARKED)),
        },
        Err(e) => Err(mongo_error(e)),
    }
}

pub(super) fn is_duplicate_key(e: &mongodb::error::Error) -> bool {
    match e.kind.as_ref() {
        ErrorKind::Write(mongodb::error::WriteFailure::WriteError(w)) => w.code == 11000,
        _ => code(e) == Some(11000),
    }
}

#[async_trait]
impl Step for Mongo {
    fn name(&self) -> &'static str {
        "mongo"
    }

    async fn run(&self, ctx: &StepCtx) -> Result<Value, StepError> {
        if mode(ctx) == MongoMode::Shared {
            return super::mongo_shared::run(ctx).await;
        }
        let name = ctx.names.mongo_db();
        let db = client(ctx)?.database(&name);
        ensure_marked(&db, &name, ctx).await?;
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
        if mode(ctx) == MongoMode::Shared {
            return super::mongo_shared::compensate(ctx).await;
        }
        let name = ctx.names.mongo_db();
        let db = client(ctx)?.database(&name);
        match owner(&db, ctx).await? {
            Owner::Ours => {
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
            }
            // Someone else's database (and so its user): untouched.
            Owner::Foreign => left_alone(ctx, "mongo_database", &name, NOT_MARKED),
            Owner::Absent => {}
        }
        SecretStore::delete(&ctx.deps.master, &secret_ref(&name))
            .await
            .map_err(StepError::transient)
    }
}
