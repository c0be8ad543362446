//! Support commands: the admin API's client. They need no database access,
//! only `LANDLORD_API_URL` (default http://127.0.0.1:8080) and a token in
//! `LANDLORD_API_TOKEN`.

mod api;
mod render;

use api::{Api, ApiError, Exit};
use clap::{Args, Subcommand};
use landlord_client::models::{RunDetail, RunSummary, TenantDetail};
use landlord_client::{DeleteMode, ListQuery};
use secrecy::SecretString;
use serde::Serialize;
use serde_json::json;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Subcommand)]
pub enum ClientCommand {
    /// List tenants or show one tenant's timeline (admin API).
    #[command(subcommand)]
    Tenants(TenantsCommand),
    /// Resume a tenant's failed run at its failed step (admin API).
    Retry {
        tenant: String,
        #[command(flatten)]
        wait: Wait,
        /// Print the API's JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Undo what a tenant's failed provisioning run created (admin API).
    Rollback {
        tenant: String,
        #[command(flatten)]
        wait: Wait,
        /// Print the API's JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Stop a running run at its next step boundary (admin API).
    Cancel {
        run: String,
        /// Also undo the steps the run completed.
        #[arg(long)]
        compensate: bool,
        /// Print the API's JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Deprovision a tenant: soft locks everyone out and keeps the data, --hard deletes it (admin API).
    Deprovision {
        tenant: String,
        /// Delete the tenant's data too (soft deprovisioning keeps it).
        #[arg(long)]
        hard: bool,
        /// Deprovision even an active tenant.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        wait: Wait,
        /// Print the API's JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum TenantsCommand {
    /// Tenants, those whose latest run failed first; `--status failed`
    /// (or another run status) lists runs in that state instead.
    List {
        /// A tenant status (pending_provision, provisioning, active,
        /// suspended, deleting, deleted) or a run status (failed, cancelled, compensation_failed, …).
        #[arg(long)]
        status: Option<String>,
        /// At most this many rows.
        #[arg(long, default_value_t = 200)]
        limit: usize,
        /// Print the API's JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// A tenant, its runs and the latest run's step timeline with errors.
    Show {
        tenant: String,
        /// Print the API's JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
pub struct Wait {
    /// Follow the run to its end; exit 0 only if it reached its goal.
    #[arg(long)]
    wait: bool,
    /// Seconds to wait with --wait.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
}

const TENANT_STATUSES: &[&str] = &[
    "pending_provision",
    "provisioning",
    "active",
    "suspended",
    "deleting",
    "deleted",
];

/// Read once at start-up, like the server's `Config`.
struct ClientConfig {
    url: String,
    token: Option<SecretString>,
}

impl ClientConfig {
    fn from_env() -> Self {
        let get = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        Self {
            url: get("LANDLORD_API_URL").unwrap_or_else(|| "http://127.0.0.1:8080".into()),
            token: get("LANDLORD_API_TOKEN").map(|t| SecretString::from(t.trim().to_owned())),
        }
    }
}

pub async fn run(cmd: ClientCommand) -> ExitCode {
    let cfg = ClientConfig::from_env();
    let json = match &cmd {
        ClientCommand::Tenants(TenantsCommand::List { json, .. })
        | ClientCommand::Tenants(TenantsCommand::Show { json, .. })
        | ClientCommand::Retry { json, .. }
        | ClientCommand::Rollback { json, .. }
        | ClientCommand::Cancel { json, .. }
        | ClientCommand::Deprovision { json, .. } => *json,
    };
    let result = match Api::new(&cfg.url, cfg.token) {
        Ok(api) => dispatch(&api, cmd).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            if json && let Some(p) = &e.problem {
                println!("{p}");
            }
            eprintln!("error: {}", e.message);
            e.exit.into()
        }
    }
}

fn emit(json: bool, value: &impl Serialize, human: impl FnOnce() -> String) {
    if json {
        println!("{}", serde_json::to_value(value).unwrap_or_default());
    } else {
        print!("{}", human());
    }
}

async fn dispatch(api: &Api, cmd: ClientCommand) -> Result<ExitCode, ApiError> {
    let now = chrono::Utc::now;
    match cmd {
        ClientCommand::Tenants(TenantsCommand::List {
            status,
            limit,
            json,
        }) => {
            let runs = status
                .as_deref()
                .is_some_and(|s| !TENANT_STATUSES.contains(&s));
            if runs {
                let items = paged_runs(api, status, limit).await?;
                emit(json, &json!({ "items": items }), || {
                    render::failed_runs(&items, now())
                });
            } else {
                let items = paged_tenants(api, status, limit).await?;
                emit(json, &json!({ "items": items }), || {
                    render::tenants(&items, now())
                });
            }
        }
        ClientCommand::Tenants(TenantsCommand::Show { tenant, json }) => {
            let client = api.client()?;
            // A tenant whose run failed before `register` has runs but no
            // tenants row.
            let found: Option<TenantDetail> = match client.get_tenant(&tenant).await {
                Ok(t) => Some(t),
                Err(e) if e.status() == Some(404) => None,
                Err(e) => return Err(e.into()),
            };
            let mut runs: Vec<RunSummary> = match client.list_tenant_runs(&tenant).await {
                Ok(r) => r.items,
                Err(e) if e.status() == Some(404) => vec![],
                Err(e) => return Err(e.into()),
            };
            if found.is_none() && runs.is_empty() {
                // Only the failed-runs list knows a run that failed that early.
                runs = paged_runs(api, Some("failed".into()), 500)
                    .await?
                    .into_iter()
                    .filter(|r| r.tenant_name == tenant)
                    .collect();
            }
            if found.is_none() && runs.is_empty() {
                return Err(ApiError {
                    exit: Exit::NotFound,
                    message: format!("tenant '{tenant}' not found"),
                    problem: None,
                });
            }
            let latest = runs
                .first()
                .or(found.as_ref().and_then(|t| t.latest_run.as_ref()));
            let detail: Option<RunDetail> = match latest {
                Some(r) => Some(client.get_run(&r.id.to_string()).await?),
                None => None,
            };
            let value = json!({ "tenant": found, "runs": runs, "latest_run": detail });
            emit(json, &value, || {
                render::timeline(found.as_ref(), &runs, detail.as_ref(), now())
            });
        }
        ClientCommand::Retry { tenant, wait, json } => {
            let run = api.client()?.retry_tenant(&tenant).await?;
            emit(json, &run, || {
                format!("{}\n", render::action("retry started", &run))
            });
            return finish(api, &run, &wait, json, Goal::TenantActive).await;
        }
        ClientCommand::Rollback { tenant, wait, json } => {
            let run = api.client()?.rollback_tenant(&tenant).await?;
            emit(json, &run, || {
                format!("{}\n", render::action("rollback started", &run))
            });
            return finish(api, &run, &wait, json, Goal::RunStatus("compensated")).await;
        }
        ClientCommand::Cancel {
            run,
            compensate,
            json,
        } => {
            let value = api.client()?.cancel_run(&run, compensate).await?;
            emit(json, &value, || {
                format!(
                    "{}\n",
                    render::action("cancel requested (takes effect at the next step)", &value)
                )
            });
        }
        ClientCommand::Deprovision {
            tenant,
            hard,
            force,
            wait,
            json,
        } => {
            let (mode, word) = if hard {
                (DeleteMode::Hard, "hard")
            } else {
                (DeleteMode::Soft, "soft")
            };
            let value = api.client()?.delete_tenant(&tenant, mode, force).await?;
            emit(json, &value, || {
                format!(
                    "{}\n",
                    render::action(&format!("{word} deprovisioning"), &value.run)
                )
            });
            return finish(api, &value.run, &wait, json, Goal::RunStatus("completed")).await;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Up to `limit` rows with this status, page after page: `fetch` reads
/// one page (its rows and the next cursor).
async fn paged<T, Fut>(
    status: Option<String>,
    limit: usize,
    mut fetch: impl FnMut(ListQuery) -> Fut,
) -> Result<Vec<T>, ApiError>
where
    Fut: std::future::Future<Output = Result<(Vec<T>, Option<String>), landlord_client::Error>>,
{
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    while items.len() < limit {
        let (page, next) = fetch(ListQuery {
            status: status.clone(),
            cursor: cursor.take(),
            limit: Some(page_size(limit - items.len())),
        })
        .await?;
        items.extend(page);
        match next {
            Some(c) if !c.is_empty() => cursor = Some(c),
            _ => break,
        }
    }
    items.truncate(limit);
    Ok(items)
}

async fn paged_tenants(
    api: &Api,
    status: Option<String>,
    limit: usize,
) -> Result<Vec<landlord_client::models::Tenant>, ApiError> {
    let client = api.client()?;
    paged(status, limit, async |q| {
        client
            .list_tenants(&q)
            .await
            .map(|p| (p.items, p.next_cursor))
    })
    .await
}

async fn paged_runs(
    api: &Api,
    status: Option<String>,
    limit: usize,
) -> Result<Vec<RunSummary>, ApiError> {
    let client = api.client()?;
    paged(status, limit, async |q| {
        client.list_runs(&q).await.map(|p| (p.items, p.next_cursor))
    })
    .await
}

fn page_size(left: usize) -> u32 {
    u32::try_from(left.min(100)).unwrap_or(100)
}

enum Goal {
    TenantActive,
    RunStatus(&'static str),
}

/// With `--wait`: polls the run until it stops moving, prints its steps
/// and exits 0 only if it reached `goal`.
async fn finish(
    api: &Api,
    run: &RunSummary,
    wait: &Wait,
    json: bool,
    goal: Goal,
) -> Result<ExitCode, ApiError> {
    if !wait.wait {
        return Ok(ExitCode::SUCCESS);
    }
    let client = api.client()?;
    let id = run.id.to_string();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait.timeout);
    // On a terminal the steps are drawn live, in place; otherwise (and
    // with --json) the timeline is printed once the run has stopped.
    let live = !json && std::io::stdout().is_terminal();
    let mut table = crate::follow::LiveTable::default();
    let detail = loop {
        let detail = client.get_run(&id).await?;
        if live {
            let mut lines: Vec<String> = detail.steps.iter().map(render::step_line).collect();
            lines.push(format!("run {id}: {}", detail.status));
            table
                .draw(&lines)
                .map_err(|e| ApiError::other(format!("writing progress: {e}")))?;
        }
        if !matches!(detail.status.as_str(), "running" | "compensating") {
            break detail;
        }
        if tokio::time::Instant::now() > deadline {
            return Err(ApiError::other(format!(
                "run {id} still {} after {} s",
                detail.status, wait.timeout
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let tenant = detail.tenant_name.clone();
    let ended = detail.status.clone();
    let (reached, outcome) = match goal {
        Goal::RunStatus(want) => (ended == want, format!("run {id} ended {ended}")),
        Goal::TenantActive => {
            let t = client.get_tenant(&tenant).await?;
            (
                t.status == "active",
                format!("run {id} ended {ended}; tenant '{tenant}' is {}", t.status),
            )
        }
    };
    if !live {
        emit(json, &detail, || {
            render::timeline(None, &[], Some(&detail), chrono::Utc::now())
                .trim_start()
                .to_owned()
        });
    }
    if !json {
        println!("{outcome}");
    }
    Ok(if reached {
        ExitCode::SUCCESS
    } else {
        Exit::Other.into()
    })
}
