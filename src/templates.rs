//! `landlord templates`: the template databases of seed 003, by key and
//! version — what the registry holds, and building one ahead of the first
//! tenant that needs it.

use anyhow::Context;
use clap::Subcommand;
use landlord_shared::catalogue::TEMPLATE_KEYS;
use landlord_shared::config::Config;
use landlord_shared::store;
use landlord_worker::templates::{self, TemplateError};
use sqlx::PgPool;
use sqlx::postgres::PgConnectOptions;
use std::process::ExitCode;
use std::str::FromStr;

#[derive(Subcommand)]
pub enum TemplatesCommand {
    /// The keys this binary can build with their current version, and every
    /// template the registry holds with the tenants cloned from it.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Build (or check) the current template of each key; every key when
    /// none is named.
    Build { keys: Vec<String> },
}

pub async fn run(pool: &PgPool, cfg: &Config, cmd: TemplatesCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        TemplatesCommand::List { json } => list(pool, cfg, json).await,
        TemplatesCommand::Build { keys } => build(pool, cfg, keys).await,
    }
}

async fn list(pool: &PgPool, cfg: &Config, json: bool) -> anyhow::Result<ExitCode> {
    let rows = store::templates(pool).await?;
    let current: Vec<(&str, String, String)> = TEMPLATE_KEYS
        .iter()
        .filter_map(|k| templates::template(k))
        .map(|t| (t.key, t.version(), t.database(&cfg.name_prefix).to_string()))
        .collect();
    if json {
        let keys: Vec<_> = current
            .iter()
            .map(|(key, version, database)| {
                serde_json::json!({ "key": key, "version": version, "database": database })
            })
            .collect();
        println!("{}", serde_json::json!({ "keys": keys, "templates": rows }));
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<8} {:<24} {:<40} built",
        "key", "current version", "database"
    );
    for (key, version, database) in &current {
        let built = rows
            .iter()
            .any(|r| r.key == *key && r.version == *version && r.database == *database);
        println!(
            "{key:<8} {version:<24} {database:<40} {}",
            if built {
                "yes"
            } else {
                "no (built on first use)"
            }
        );
    }
    println!();
    if rows.is_empty() {
        println!("no template built yet");
    }
    for r in &rows {
        println!(
            "{:<8} {:<24} {:<40} {} migrations, built {}, {} tenants",
            r.key,
            r.version,
            r.database,
            r.migrations.len(),
            r.built_at.format("%Y-%m-%d %H:%M:%S"),
            r.tenants
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn build(pool: &PgPool, cfg: &Config, keys: Vec<String>) -> anyhow::Result<ExitCode> {
    let keys: Vec<String> = if keys.is_empty() {
        TEMPLATE_KEYS.iter().map(|k| (*k).to_owned()).collect()
    } else {
        keys
    };
    if let Some(bad) = keys.iter().find(|k| templates::template(k).is_none()) {
        eprintln!(
            "error: invalid key: unknown template key '{bad}'; this binary has {}",
            TEMPLATE_KEYS.join(", ")
        );
        return Ok(ExitCode::from(2));
    }
    let url = cfg
        .postgres_admin_url
        .as_deref()
        .context("POSTGRES_ADMIN_URL is not set: templates are built on the tenant server")?;
    let admin = PgConnectOptions::from_str(url).context("POSTGRES_ADMIN_URL is invalid")?;
    for key in &keys {
        match templates::build(&admin, pool, &cfg.name_prefix, key).await {
            Ok(ready) => println!(
                "template {} version {}: {} {}",
                ready.key,
                ready.version,
                ready.database,
                if ready.built {
                    "built"
                } else {
                    "already built"
                }
            ),
            Err(TemplateError::Broken(msg)) => {
                eprintln!("error: template {key}: {msg}");
                return Ok(ExitCode::FAILURE);
            }
            Err(TemplateError::Db(e)) => return Err(e.into()),
        }
    }
    Ok(ExitCode::SUCCESS)
}
