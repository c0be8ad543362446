//! What the tenant's application reads back through the API: its
//! connections, and with `tenants:credentials` the secrets, with which it
//! logs in to its own database.

use super::{Api, WAIT, audit_rows, postgres_login};
use crate::harness::{TestEnv, create_token_with};
use reqwest::StatusCode;
use sqlx::Connection as _;
use sqlx::postgres::PgConnection;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_application_reads_its_connections_and_logs_in_with_its_credentials() {
    let env = TestEnv::new(&[]).await;
    let api = Api::start(&env).await;
    let worker = env.spawn_worker().await;
    env.provision_ok("conn", &Default::default(), WAIT).await;
    let reader = api.as_token(Some(&create_token_with(&env, &["tenants:read"]).await));
    let app = api.as_token(Some(
        &create_token_with(&env, &["tenants:read", "tenants:credentials"]).await,
    ));

    // Where, without secrets.
    let res = reader.get("/tenants/conn/connections").await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    let items = res.body["items"].as_array().unwrap();
    let pg = items.iter().find(|c| c["service"] == "postgres").unwrap();
    assert_eq!(pg["database"], env.db_name("conn").as_str());
    assert_eq!(pg["user"], env.db_name("conn").as_str());
    assert!(pg["secret_ref"].as_str().is_some_and(|r| !r.is_empty()));
    assert!(items.iter().all(|c| c.get("secret").is_none()), "{items:?}");
    assert!(audit_rows(&env, "tenant.credentials_read").await.is_empty());

    // Secrets need their own scope; the refusal is audited.
    let res = reader
        .get("/tenants/conn/connections?include=credentials")
        .await;
    res.assert_problem(403, "forbidden");
    assert!(
        res.body["detail"]
            .as_str()
            .unwrap()
            .contains("tenants:credentials")
    );
    reader
        .get("/tenants/conn/connections?include=everything")
        .await
        .assert_problem(400, "bad-request");

    let res = app
        .get("/tenants/conn/connections?include=credentials")
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    let (user, opts) = postgres_login(&res.body);
    let secret = res.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|c| (c["service"] == "postgres").then(|| c["secret"].as_str()))
        .flatten()
        .unwrap()
        .to_owned();
    let mut conn = PgConnection::connect_with(&opts).await.unwrap();
    let me: String = sqlx::query_scalar("SELECT current_user::text")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(me, user);
    conn.close().await.unwrap();

    let audit = audit_rows(&env, "tenant.credentials_read").await;
    let statuses: Vec<_> = audit.iter().map(|r| r.3).collect();
    assert_eq!(statuses, [Some(403), Some(200)], "{audit:?}");
    let details: Vec<String> = sqlx::query_scalar(
        "SELECT details::text FROM audit_log WHERE action = 'tenant.credentials_read'",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap();
    assert!(details.iter().all(|d| !d.contains(&secret)), "{details:?}");
    worker.shutdown().await;
}
