//! `landlord`: one binary for the worker, the API, migrations and the
//! operator commands.

mod client;
mod follow;
mod secrets;
mod seed;
mod templates;
mod tokens;

use anyhow::Context;
use clap::{Parser, Subcommand};
use landlord_shared::backend::Backend;
use landlord_shared::config::Config;
use landlord_shared::model::{AdminContact, ProvisionParams};
use landlord_shared::plan::plan_provision;
use landlord_shared::request::ProvisionRequest;
use landlord_shared::secrets::{SecretStore, admin_secret_ref};
use landlord_shared::start::start_provision;
use landlord_shared::tenant::{TenantKey, TenantNames};
use landlord_shared::{migrate, store, telemetry};
use secrecy::ExposeSecret;
use sqlx::PgPool;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;
use tracing::Instrument;

#[derive(Parser)]
#[command(name = "landlord", version, about = "Durable tenant provisioning")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Apply master-database migrations (and the job queue's).
    Migrate,
    /// Seed the master database (seed 001, SEED_* variables).
    Seed,
    /// Run a worker until SIGINT/SIGTERM.
    Worker,
    /// Serve the HTTP API.
    Api {
        #[arg(long, env = "LANDLORD_API_BIND", default_value = "127.0.0.1:8080")]
        bind: String,
    },
    /// Start provisioning a tenant (idempotent per tenant).
    Provision {
        tenant: String,
        /// Follow the run and exit 0 only if the tenant ends up active.
        #[arg(long)]
        wait: bool,
        #[arg(long)]
        plan: Option<String>,
        #[arg(long = "domain")]
        domains: Vec<String>,
        /// The tenant's first administrator (a Keycloak user).
        #[arg(long, requires_all = ["admin_first_name", "admin_last_name"])]
        admin_email: Option<String>,
        #[arg(long)]
        admin_first_name: Option<String>,
        #[arg(long)]
        admin_last_name: Option<String>,
        /// Seconds to wait with --wait.
        #[arg(long, default_value_t = 600)]
        timeout: u64,
    },
    /// Show a tenant and its latest run.
    Status {
        tenant: String,
        #[arg(long)]
        json: bool,
    },
    #[command(flatten)]
    Client(client::ClientCommand),
    /// Print the tenant admin's initial password (from the secret store).
    AdminPassword { tenant: String },
    /// The secret store: rotate its key (`rotate-key`).
    Secrets {
        #[command(subcommand)]
        command: secrets::SecretsCommand,
    },
    /// Create, list and revoke API tokens (master database directly).
    Tokens {
        #[command(subcommand)]
        command: tokens::TokensCommand,
    },
    /// The template databases tenants are cloned from (seed 003).
    Templates {
        #[command(subcommand)]
        command: templates::TemplatesCommand,
    },
    /// Inspect this process's configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Migrate, run a worker in-process and provision a demo tenant.
    Dev {
        #[arg(long, default_value = "demo")]
        tenant: String,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the effective configuration (secrets masked) and which steps
    /// this process can run; exit 2 when a worker would refuse to start.
    Check,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // `dev` on a terminal draws live progress; interleaved info logs would
    // tear it, so there they start at warn (RUST_LOG overrides).
    let quiet = matches!(cli.command, Command::Dev { .. }) && std::io::stdout().is_terminal();
    // Dropped at the end of main: buffered spans are flushed on every exit
    // path, a worker's SIGTERM included.
    let _telemetry = telemetry::init(
        std::env::var("LOG_FORMAT").is_ok_and(|v| v == "json"),
        if quiet { "warn" } else { "info" },
    );
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn connect(cfg: &Config) -> anyhow::Result<PgPool> {
    PgPool::connect(&cfg.master_database_url)
        .await
        .context("connecting to MASTER_DATABASE_URL")
}

fn parse_key(raw: &str) -> Result<TenantKey, ExitCode> {
    TenantKey::parse(raw).map_err(|e| {
        eprintln!("error: invalid tenant name: {e}");
        ExitCode::from(2)
    })
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    // Support commands talk to the API and need no database settings.
    let command = match cli.command {
        Command::Client(c) => return Ok(client::run(c).await),
        other => other,
    };
    let cfg = Config::from_env()?;
    match command {
        Command::Migrate => {
            migrate::migrate_master(&connect(&cfg).await?).await?;
            println!("master database migrated");
        }
        Command::Seed => seed::seed(&connect(&cfg).await?).await?,
        Command::Worker => {
            let engine = landlord_worker::runner::build_engine(cfg).await?;
            landlord_worker::runner::run_worker(engine, shutdown_signal()).await?;
        }
        Command::Api { bind } => {
            let listener = tokio::net::TcpListener::bind(&bind).await?;
            tracing::info!("API listening on {bind}");
            let api_cfg = landlord_api::config::ApiConfig::from_env(&cfg)?;
            // A graceful stop lets main flush the request spans on exit.
            let pool = landlord_api::pool_options()
                .connect(&cfg.master_database_url)
                .await
                .context("connecting to MASTER_DATABASE_URL")?;
            landlord_api::serve_until(pool, api_cfg, listener, shutdown_signal()).await?;
        }
        Command::Provision {
            tenant,
            wait,
            plan,
            domains,
            admin_email,
            admin_first_name,
            admin_last_name,
            timeout,
        } => {
            // The API's rules and messages, so the CLI accepts nothing the
            // API would refuse.
            let request = ProvisionRequest {
                name: tenant,
                plan,
                domains,
                admin: admin_email.map(|email| AdminContact {
                    email,
                    first_name: admin_first_name.unwrap_or_default(),
                    last_name: admin_last_name.unwrap_or_default(),
                }),
            };
            let (key, params) = match request.parse() {
                Ok(parsed) => parsed,
                Err(errors) => {
                    for e in errors {
                        eprintln!("error: invalid {e}");
                    }
                    return Ok(ExitCode::from(2));
                }
            };
            if let Err(e) = cfg.plans.resolve(params.plan.as_deref()) {
                eprintln!("error: invalid {e}");
                return Ok(ExitCode::from(2));
            }
            let pool = connect(&cfg).await?;
            return provision(
                &pool,
                &cfg,
                &key,
                &params,
                wait.then(|| Duration::from_secs(timeout)),
            )
            .await;
        }
        Command::Client(_) => unreachable!("dispatched above"),
        Command::AdminPassword { tenant } => {
            let pool = connect(&cfg).await?;
            let secrets = SecretStore::from_config(&cfg)?
                .ok_or_else(|| anyhow::anyhow!("LANDLORD_SECRET_KEY is not set"))?;
            // Where the identity step kept it (per tenant in a shared
            // realm); the realm's own place for runs from before that.
            let kept = store::provision_checkpoint(&pool, &tenant, "identity")
                .await?
                .and_then(|out| out["admin_secret_ref"].as_str().map(str::to_owned));
            let reference = match kept {
                Some(r) => r,
                None => admin_secret_ref(
                    &TenantNames::new(&cfg.name_prefix, &TenantKey::parse(&tenant)?).realm(),
                ),
            };
            let password = secrets.get(&pool, &reference).await?;
            println!("{}", password.expose_secret());
        }
        Command::Status { tenant, json } => {
            return status(&connect(&cfg).await?, &tenant, json).await;
        }
        Command::Tokens { command } => return tokens::run(&connect(&cfg).await?, command).await,
        Command::Secrets { command } => {
            return secrets::run(&connect(&cfg).await?, &cfg, command).await;
        }
        Command::Templates { command } => {
            return templates::run(&connect(&cfg).await?, &cfg, command).await;
        }
        Command::Config {
            command: ConfigCommand::Check,
        } => return Ok(config_check(&cfg)),
        Command::Dev { tenant } => {
            let key = match parse_key(&tenant) {
                Ok(k) => k,
                Err(code) => return Ok(code),
            };
            let pool = connect(&cfg).await?;
            migrate::migrate_master(&pool).await?;
            let engine = landlord_worker::runner::build_engine(cfg.clone()).await?;
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let worker = tokio::spawn(landlord_worker::runner::run_worker(engine, async move {
                let _ = stopped.await;
            }));
            // The catalogue's default plan.
            let params = ProvisionParams::default();
            let code = provision(&pool, &cfg, &key, &params, Some(Duration::from_secs(600))).await;
            let _ = stop.send(());
            worker.await??;
            return code;
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn provision(
    pool: &PgPool,
    cfg: &Config,
    key: &TenantKey,
    params: &ProvisionParams,
    wait: Option<Duration>,
) -> anyhow::Result<ExitCode> {
    // The command is the root of the run's trace when no API request is.
    let span = tracing::info_span!("provision", tenant = %key, otel.kind = "client");
    let started = start_provision(pool, cfg, key, params, None)
        .instrument(span)
        .await?;
    let run = &started.run;
    if started.created {
        println!(
            "started run {} ({}) for tenant '{key}'",
            run.id, run.workflow_id
        );
    } else {
        println!(
            "run {} ({}) already exists for tenant '{key}': {}",
            run.id, run.workflow_id, run.status
        );
    }
    match wait {
        Some(timeout) => finish(pool, key.as_str(), run.id, timeout).await,
        None => Ok(ExitCode::SUCCESS),
    }
}

/// Follows a run to its end; success only if the tenant is active.
async fn finish(
    pool: &PgPool,
    tenant: &str,
    run_id: uuid::Uuid,
    timeout: Duration,
) -> anyhow::Result<ExitCode> {
    let run = follow::follow(pool, run_id, timeout).await?;
    follow::print_summary(pool, &run).await?;
    let found = store::tenant_by_name(pool, tenant).await?;
    let status = found.as_ref().map_or("absent", |t| t.status.as_str());
    println!("tenant '{tenant}' is {status}");
    Ok(if status == "active" {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn config_check(cfg: &Config) -> ExitCode {
    for (name, value) in cfg.describe() {
        println!("{name:<30} {value}");
    }
    println!();
    for b in Backend::ALL {
        let state = if b.configured(cfg) { "yes" } else { "no" };
        println!("backend {:<9} {state:<4} ({})", b.as_str(), b.variable());
    }
    // A step this process lacks the backend for is the step a run started
    // here skips; a worker with this configuration leaves it to others.
    let Ok(default) = cfg.plans.resolve(None) else {
        unreachable!("a loaded catalogue has its default plan");
    };
    for p in cfg.plans.plans.values() {
        println!(
            "plan {:<14} tier {} ({}): {}",
            p.name,
            p.tier.as_str(),
            p.tier.deployment(),
            p.steps.join(", ")
        );
    }
    let plan = plan_provision(cfg, &default);
    let runs: Vec<&str> = plan
        .iter()
        .filter(|s| s.skipped.is_none())
        .map(|s| s.name.as_ref())
        .collect();
    println!("steps this process can run: {}", runs.join(", "));
    for s in plan.iter().filter(|s| s.skipped.is_some()) {
        println!(
            "runs started here skip {}: {}",
            s.name,
            s.skipped.as_deref().unwrap_or("")
        );
    }
    match cfg.check_runner() {
        Ok(()) => {
            println!("configuration ok");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: a worker would refuse to start: {e}");
            ExitCode::from(2)
        }
    }
}

async fn status(pool: &PgPool, tenant: &str, json: bool) -> anyhow::Result<ExitCode> {
    let t = store::tenant_by_name(pool, tenant).await?;
    let run = store::latest_run_for_tenant(pool, tenant).await?;
    let steps = match &run {
        Some(r) => store::steps_of_run(pool, r.id).await?,
        None => vec![],
    };
    if json {
        println!(
            "{}",
            serde_json::json!({ "tenant": t, "run": run, "steps": steps })
        );
    } else {
        match &t {
            Some(t) => println!("tenant '{}' ({}) is {}", t.name, t.id, t.status),
            None => println!("tenant '{tenant}' is not registered"),
        }
        if let Some(run) = &run {
            follow::print_summary(pool, run).await?;
        }
    }
    Ok(if t.is_some() || run.is_some() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down: finishing in-flight steps");
}
