//! `landlord tokens`: API tokens for service callers, managed on the
//! master database directly, so the first token needs no token.

use clap::Subcommand;
use landlord_api::audit;
use landlord_api::auth::tokens::{self, TokenError};
use landlord_api::config::ADMIN_PERMISSION;
use sqlx::PgPool;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Subcommand)]
pub enum TokensCommand {
    /// Create a token and print it (the only time it is shown).
    Create {
        #[arg(long)]
        name: String,
        /// Repeatable: tenants:create, tenants:read, runs:operate,
        /// tenants:delete, tenants:credentials or system:* (every scope,
        /// the default).
        #[arg(long = "permission")]
        permissions: Vec<String>,
        /// Refused after this long: a number and s, m, h or d (`90d`).
        /// Default: until revoked.
        #[arg(long, value_parser = parse_lifetime)]
        expires_in: Option<Duration>,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token by name or id.
    Revoke { name_or_id: String },
}

/// `30s`, `15m`, `12h`, `90d`: a positive whole number and a unit.
fn parse_lifetime(raw: &str) -> Result<Duration, String> {
    let err = || format!("'{raw}' is not a lifetime like 30s, 15m, 12h or 90d");
    let (n, unit) = raw.split_at(raw.len().saturating_sub(1));
    let n: u64 = n.parse().ok().filter(|n| *n > 0).ok_or_else(err)?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(err()),
    };
    n.checked_mul(secs).map(Duration::from_secs).ok_or_else(err)
}

/// Who ran the command, for the audit log.
fn operator() -> String {
    std::env::var("USER").unwrap_or_else(|_| "unknown".into())
}

pub async fn run(pool: &PgPool, cmd: TokensCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        TokensCommand::Create {
            name,
            permissions,
            expires_in,
        } => {
            let permissions = if permissions.is_empty() {
                vec![ADMIN_PERMISSION.to_owned()]
            } else {
                permissions
            };
            let (token, secret) = match tokens::create(pool, &name, &permissions, expires_in).await
            {
                Ok(created) => created,
                Err(
                    e @ (TokenError::BadName
                    | TokenError::BadPermission(_)
                    | TokenError::Duplicate(_)),
                ) => {
                    eprintln!("error: {e}");
                    return Ok(ExitCode::from(2));
                }
                Err(e) => return Err(e.into()),
            };
            let details = serde_json::json!({ "token_id": token.id, "permissions": token.permissions, "expires_at": token.expires_at });
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
                let state = match (t.revoked_at, t.expires_at) {
                    (Some(at), _) => format!("revoked {}", at.to_rfc3339()),
                    (None, Some(at)) if at <= chrono::Utc::now() => {
                        format!("expired {}", at.to_rfc3339())
                    }
                    (None, Some(at)) => format!("active until {}", at.to_rfc3339()),
                    (None, None) => "active".to_owned(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes() {
        assert_eq!(parse_lifetime("90d"), Ok(Duration::from_secs(90 * 86_400)));
        assert_eq!(parse_lifetime("15m"), Ok(Duration::from_secs(900)));
        for bad in [
            "",
            "d",
            "0h",
            "5",
            "5w",
            "-1d",
            "1.5h",
            "99999999999999999d",
        ] {
            assert!(parse_lifetime(bad).is_err(), "{bad}");
        }
    }
}
