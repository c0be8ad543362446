//! Support commands: the admin API's client. They need no database access,
//! only `LANDLORD_API_URL` (default http://127.0.0.1:8080) and a token in
//! `LANDLORD_API_TOKEN`.

mod api;
mod render;

use api::{Api, ApiError, Exit, segment};
use clap::{Args, Subcommand};
use secrecy::SecretString;
use serde_json::{Value, json};
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

fn emit(json: bool, value: &Value, human: impl FnOnce() -> String) {
    if json {
        println!("{value}");
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
            let path = if runs { "/runs" } else { "/tenants" };
            let items = paged(api, path, status, limit).await?;
            let value = json!({ "items": items });
            emit(json, &value, || {
                if runs {
                    render::failed_runs(&items, now())
                } else {
                    render::tenants(&items, now())
                }
            });
        }
        ClientCommand::Tenants(TenantsCommand::Show { tenant, json }) => {
            let path = format!("/tenants/{}", segment(&tenant));
            // A tenant whose run failed before `register` has runs but no
            // tenants row.
            let found = match api.get(&path, &[]).await {
                Ok(t) => t,
                Err(e) if e.exit == Exit::NotFound => Value::Null,
                Err(e) => return Err(e),
            };
            let mut runs = match api.get(&format!("{path}/runs"), &[]).await {
                Ok(r) => r["items"].as_array().cloned().unwrap_or_default(),
                Err(e) if e.exit == Exit::NotFound => vec![],
                Err(e) => return Err(e),
            };
            if found.is_null() && runs.is_empty() {
                // Only the failed-runs list knows a run that failed that early.
                runs = paged(api, "/runs", Some("failed".into()), 500)
                    .await?
                    .into_iter()
                    .filter(|r| r["tenant_name"].as_str() == Some(tenant.as_str()))
                    .collect();
            }
            if found.is_null() && runs.is_empty() {
                return Err(ApiError {
                    exit: Exit::NotFound,
                    message: format!("tenant '{tenant}' not found"),
                    problem: None,
                });
            }
            let latest = runs.first().or(found.get("latest_run"));
            let detail = match latest.and_then(|r| r["id"].as_str()) {
                Some(id) => api.get(&format!("/runs/{}", segment(id)), &[]).await?,
                None => Value::Null,
            };
            let value = json!({ "tenant": found, "runs": runs, "latest_run": detail });
            emit(json, &value, || {
                render::timeline(&found, &runs, &detail, now())
            });
        }
        ClientCommand::Retry { tenant, wait, json } => {
            let run = api
                .post(&format!("/tenants/{}/retry", segment(&tenant)), &[])
                .await?;
            emit(json, &run, || {
                format!("{}\n", render::action("retry started", &run))
            });
            return finish(api, &run, &wait, json, Goal::TenantActive).await;
        }
        ClientCommand::Rollback { tenant, wait, json } => {
            let run = api
                .post(&format!("/tenants/{}/rollback", segment(&tenant)), &[])
                .await?;
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
            let value = api
                .post(
                    &format!("/runs/{}/cancel", segment(&run)),
                    &[("compensate", compensate.to_string())],
                )
                .await?;
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
            let mode = if hard { "hard" } else { "soft" };
            let mut query = vec![("mode", mode.to_owned())];
            if force {
                query.push(("force", "true".into()));
            }
            let value = api
                .delete(&format!("/tenants/{}", segment(&tenant)), &query)
                .await?;
            emit(json, &value, || {
                format!(
                    "{}\n",
                    render::action(&format!("{mode} deprovisioning"), &value["run"])
                )
            });
            return finish(
                api,
                &value["run"],
                &wait,
                json,
                Goal::RunStatus("completed"),
            )
            .await;
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn paged(
    api: &Api,
    path: &str,
    status: Option<String>,
    limit: usize,
) -> Result<Vec<Value>, ApiError> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    while items.len() < limit {
        let mut query = vec![("limit", (limit - items.len()).min(100).to_string())];
        if let Some(s) = &status {
            query.push(("status", s.clone()));
        }
        if let Some(c) = &cursor {
            query.push(("cursor", c.clone()));
        }
        let page = api.get(path, &query).await?;
        items.extend(page["items"].as_array().cloned().unwrap_or_default());
        match page["next_cursor"].as_str() {
            Some(c) if !c.is_empty() => cursor = Some(c.to_owned()),
            _ => break,
        }
    }
    items.truncate(limit);
    Ok(items)
}

enum Goal {
    TenantActive,
    RunStatus(&'static str),
}

/// With `--wait`: polls the run until it stops moving, prints its steps
/// and exits 0 only if it reached `goal`.
async fn finish(
    api: &Api,
    run: &Value,
    wait: &Wait,
    json: bool,
    goal: Goal,
) -> Result<ExitCode, ApiError> {
    if !wait.wait {
        return Ok(ExitCode::SUCCESS);
    }
    let id = run["id"]
        .as_str()
        .ok_or_else(|| ApiError::other("the API's answer has no run id"))?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait.timeout);
    let detail = loop {
        let detail = api.get(&format!("/runs/{}", segment(id)), &[]).await?;
        if !matches!(render::s(&detail["status"]), "running" | "compensating") {
            break detail;
        }
        if tokio::time::Instant::now() > deadline {
            return Err(ApiError::other(format!(
                "run {id} still {} after {} s",
                render::s(&detail["status"]),
                wait.timeout
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let tenant = render::s(&detail["tenant_name"]).to_owned();
    let ended = render::s(&detail["status"]).to_owned();
    let (reached, outcome) = match goal {
        Goal::RunStatus(want) => (ended == want, format!("run {id} ended {ended}")),
        Goal::TenantActive => {
            let t = api
                .get(&format!("/tenants/{}", segment(&tenant)), &[])
                .await?;
            let status = render::s(&t["status"]);
            (
                status == "active",
                format!("run {id} ended {ended}; tenant '{tenant}' is {status}"),
            )
        }
    };
    emit(json, &detail, || {
        render::timeline(&Value::Null, &[], &detail, chrono::Utc::now())
            .trim_start()
            .to_owned()
    });
    if !json {
        println!("{outcome}");
    }
    Ok(if reached {
        ExitCode::SUCCESS
    } else {
        Exit::Other.into()
    })
}
