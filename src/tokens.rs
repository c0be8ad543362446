//! `landlord tokens`: API tokens for service callers, managed on the
//! master database directly, so the first token needs no token.

use clap::Subcommand;
use landlord_api::audit;
use landlord_api::auth::tokens::{self, TokenError};
use landlord_api::config::ADMIN_PERMISSION;
use sqlx::PgPool;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum TokensCommand {
    /// Create a token and print it (the only time it is shown).
    Create {
        #[arg(long)]
        name: String,
        /// Repeatable; `system:*` when none is given.
        #[arg(long = "permission")]
        permissions: Vec<String>,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token by name or id.
    Revoke { name_or_id: String },
}

/// Who ran the command, for the audit log.
fn operator() -> String {
    std::env::var("USER").unwrap_or_else(|_| "unknown".into())
}

pub async fn run(pool: &PgPool, cmd: TokensCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        TokensCommand::Create { name, permissions } => {
            let permissions = if permissions.is_empty() {
                vec![ADMIN_PERMISSION.to_owned()]
            } else {
                permissions
            };
            let (token, secret) = match tokens::create(pool, &name, &permissions).await {
                Ok(created) => created,
                Err(
                    e
                    @ (TokenError::BadName | TokenError::BadPermission | TokenError::Duplicate(_)),
                ) => {
                    eprintln!("error: {e}");
                    return Ok(ExitCode::from(2));
                }
                Err(e) => return Err(e.into()),
            };
            let details =
                serde_json::json!({ "token_id": token.id, "permissions": token.permissions });
            audit::record(
                pool,
                "cli",
                &operator(),
                "token.create",
                &name,
                None,
                &details,
            )
            .await?;
            eprintln!(
                "created token '{}' ({}) with {}; it is shown only now:",
                token.name,
                token.id,
                token.permissions.join(", ")
            );
            println!("{secret}");
        }
        TokensCommand::List => {
            for t in tokens::list(pool).await? {
                let state = match t.revoked_at {
                    Some(at) => format!("revoked {}", at.to_rfc3339()),
                    None => "active".to_owned(),
                };
                let used = t
                    .last_used_at
                    .map_or_else(|| "never".to_owned(), |at| at.to_rfc3339());
                println!(
                    "{}\t{}\t{}\t{}\tcreated {}\tlast used {}",
                    t.id,
                    t.name,
                    t.permissions.join(","),
                    state,
                    t.created_at.to_rfc3339(),
                    used
                );
            }
        }
        TokensCommand::Revoke { name_or_id } => match tokens::revoke(pool, &name_or_id).await? {
            Some(t) => {
                let details = serde_json::json!({ "token_id": t.id });
                audit::record(
                    pool,
                    "cli",
                    &operator(),
                    "token.revoke",
                    &t.name,
                    None,
                    &details,
                )
                .await?;
                println!("revoked token '{}' ({})", t.name, t.id);
            }
            None => {
                eprintln!("error: no token named '{name_or_id}'");
                return Ok(ExitCode::FAILURE);
            }
        },
    }
    Ok(ExitCode::SUCCESS)
}
