//! `landlord secrets rotate-key`: re-encrypts under `LANDLORD_SECRET_KEY`
//! every secret another key holds (`LANDLORD_SECRET_KEY_PREVIOUS`, or rows
//! from before key ids). Safe to run again; processes keep working
//! throughout, since they read both keys.

use clap::Subcommand;
use landlord_api::audit;
use landlord_shared::config::Config;
use landlord_shared::secrets::SecretStore;
use sqlx::PgPool;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum SecretsCommand {
    /// Re-encrypt every secret under the current key.
    RotateKey,
}

pub async fn run(pool: &PgPool, cfg: &Config, cmd: SecretsCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        SecretsCommand::RotateKey => {
            let Some(store) = SecretStore::from_config(cfg)? else {
                eprintln!("error: LANDLORD_SECRET_KEY is not set");
                return Ok(ExitCode::from(2));
            };
            let done = store.rotate_key(pool).await?;
            let details = serde_json::json!({
                "key_id": store.key_id(),
                "rotated": done.rotated,
                "unreadable": done.unreadable.len(),
            });
            let operator = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
            audit::record(
                pool,
                "cli",
                &operator,
                "secrets.rotate_key",
                "secrets",
                None,
                &details,
            )
            .await?;
            println!(
                "re-encrypted {} secret(s) under key {}",
                done.rotated,
                store.key_id()
            );
            if done.unreadable.is_empty() {
                return Ok(ExitCode::SUCCESS);
            }
            eprintln!(
                "error: {} secret(s) open with neither LANDLORD_SECRET_KEY nor \
                 LANDLORD_SECRET_KEY_PREVIOUS and were left as they are: {}",
                done.unreadable.len(),
                done.unreadable.join(", ")
            );
            Ok(ExitCode::FAILURE)
        }
    }
}
