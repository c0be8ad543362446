//! Rotating `LANDLORD_SECRET_KEY`: processes read both keys meanwhile,
//! `landlord secrets rotate-key` re-encrypts what the old key holds, and
//! afterwards the new key alone opens everything and the old one nothing.

use crate::api::Api;
use crate::harness::{TestEnv, create_token, spawn_api_with};
use landlord_shared::model::ProvisionParams;
use landlord_shared::secrets::SecretStore;
use reqwest::StatusCode;
use sqlx::Connection as _;
use sqlx::postgres::PgConnection;
use std::time::Duration;

/// Logs in to the tenant's database with what the API gives its
/// application, through an API started with these keys.
async fn logs_in_with(env: &TestEnv, keys: &[(&str, &str)]) -> bool {
    let api = Api::with(
        spawn_api_with(env, keys).await,
        Some(create_token(env, "system:*").await),
    );
    let res = api
        .get("/tenants/rotor/connections?include=credentials")
        .await;
    if res.status != StatusCode::OK {
        return false;
    }
    let (_, opts) = crate::api::postgres_login(&res.body);
    PgConnection::connect_with(&opts).await.is_ok()
}

async fn rotate(env: &TestEnv, keys: &[(&str, &str)]) -> (Option<i32>, String, String) {
    env.run(&["secrets", "rotate-key"], keys).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_secret_key_rotates_without_losing_a_secret() {
    let env = TestEnv::new(&[]).await;
    let worker = env.spawn_worker().await;
    env.provision_ok(
        "rotor",
        &ProvisionParams::default(),
        Duration::from_secs(60),
    )
    .await;
    worker.shutdown().await;
    let old = env.vars["LANDLORD_SECRET_KEY"].clone();
    let new = SecretStore::generate_key();
    // One row from before key ids.
    sqlx::query("UPDATE secrets SET key_id = NULL WHERE ref = (SELECT min(ref) FROM secrets)")
        .execute(&env.pool)
        .await
        .unwrap();
    let rows = env.count_all("SELECT count(*) FROM secrets").await;
    assert!(rows >= 1);

    // The new key alone opens nothing yet; with the old one beside it,
    // everything.
    let new_only = [("LANDLORD_SECRET_KEY", new.as_str())];
    let both = [
        ("LANDLORD_SECRET_KEY", new.as_str()),
        ("LANDLORD_SECRET_KEY_PREVIOUS", old.as_str()),
    ];
    assert!(!logs_in_with(&env, &new_only).await);
    assert!(logs_in_with(&env, &both).await);

    // A malformed previous key stops the command, naming it.
    let (code, _, err) = rotate(
        &env,
        &[
            ("LANDLORD_SECRET_KEY", new.as_str()),
            ("LANDLORD_SECRET_KEY_PREVIOUS", "not-a-key"),
        ],
    )
    .await;
    assert_ne!(code, Some(0));
    assert!(err.contains("LANDLORD_SECRET_KEY_PREVIOUS"), "{err}");

    let (code, out, err) = rotate(&env, &both).await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains(&format!("re-encrypted {rows} secret(s)")),
        "{out}"
    );
    let under_new = SecretStore::from_base64(&secrecy::SecretString::from(new.clone())).unwrap();
    let key_ids: Vec<Option<String>> = sqlx::query_scalar("SELECT DISTINCT key_id FROM secrets")
        .fetch_all(&env.pool)
        .await
        .unwrap();
    assert_eq!(key_ids, [Some(under_new.key_id().to_owned())]);
    let (code, out, _) = rotate(&env, &both).await;
    assert_eq!(code, Some(0));
    assert!(out.contains("re-encrypted 0 secret(s)"), "again: {out}");

    // The new key alone now opens everything; the old one nothing.
    assert!(logs_in_with(&env, &new_only).await);
    let (code, _, err) = rotate(&env, &[("LANDLORD_SECRET_KEY", old.as_str())]).await;
    assert_eq!(code, Some(1));
    assert!(
        err.contains(&format!("{rows} secret(s) open with neither")),
        "{err}"
    );
    let audited = env
        .count_all("SELECT count(*) FROM audit_log WHERE action = 'secrets.rotate_key'")
        .await;
    assert_eq!(audited, 3);
}
