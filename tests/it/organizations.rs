//! Identity in organization mode: tenants share the deployment's realm,
//! each an organization in it, checked on the real Keycloak — the admin's
//! token names its organization, neighbours are untouched by undo, and a
//! foreign organization of the same name is refused and left alone.

use crate::harness::TestEnv;
use crate::probe::{Probe, SharedRealm as Shared};
use base64::Engine as _;
use landlord_shared::actions::{DeprovisionMode, rollback_run, start_deprovision};
use landlord_shared::model::{AdminContact, ProvisionParams};
use landlord_shared::secrets::SecretStore;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(180);

const CATALOGUE: &str = r#"
default = "org"

[plans.org]
tier = "standard"
steps = ["identity", "storage"]
[plans.org.identity]
mode = "organization"
"#;

async fn org_env(dir: &tempfile::TempDir) -> TestEnv {
    TestEnv::with_catalogue(dir, CATALOGUE, true).await
}

fn params(tenant: &str) -> ProvisionParams {
    ProvisionParams {
        plan: None,
        domains: vec![format!("{tenant}.example.com")],
        admin: Some(AdminContact {
            email: format!("admin@{tenant}.example.com"),
            first_name: "Org".into(),
            last_name: "Admin".into(),
        }),
    }
}

async fn provision(env: &TestEnv, tenant: &str) -> uuid::Uuid {
    env.provision_ok(tenant, &params(tenant), WAIT).await
}

/// A password grant through a client of the test's own (the tenant's app
/// client is for the browser flow only); the access token's claims.
async fn login(probe: &Probe<'_>, realm: &str, username: &str, password: &str) -> Value {
    let base = &probe.env.cfg.keycloak.as_ref().unwrap().base_url;
    let resp = probe
        .http
        .post(format!(
            "{base}/realms/{realm}/protocol/openid-connect/token"
        ))
        .form(&[
            ("grant_type", "password"),
            ("client_id", "landlord-probe"),
            ("username", username),
            ("password", password),
            ("scope", "openid organization"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let body: Value = resp.json().await.unwrap();
    let token = body["access_token"].as_str().unwrap();
    let payload = token.split('.').nth(1).unwrap();
    let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    let mut claims: Value = serde_json::from_slice(&claims).unwrap();
    claims["raw"] = json!(token);
    claims
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pooled_tenant_is_an_organization_whose_admin_gets_a_token_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let env = org_env(&dir).await;
    let probe = Probe::new(&env).await;
    let worker = env.spawn_worker().await;
    // Two first tenants at once both find no shared realm: one creates it.
    let (a, _) = tokio::join!(provision(&env, "orga"), provision(&env, "orgb"));
    let realm = format!("{}_shared", env.prefix);
    let shared = Shared {
        probe: &probe,
        realm: realm.clone(),
    };
    let rep = shared.get("").await.expect("the shared realm");
    assert_eq!(rep["organizationsEnabled"], true);
    assert!(!probe.realm("orga").await, "no realm of its own");

    let id_a: uuid::Uuid = sqlx::query_scalar("SELECT id FROM tenants WHERE name = 'orga'")
        .fetch_one(&env.pool)
        .await
        .unwrap();
    let org_a = shared.org("orga").await.expect("orga's organization");
    assert_eq!(org_a["alias"], "orga");
    assert_eq!(
        org_a["attributes"]["landlord.tenant"],
        json!([id_a.to_string()])
    );
    assert_eq!(org_a["domains"][0]["name"], "orga.example.com");
    let org_b = shared.org("orgb").await.expect("orgb's organization");
    assert_eq!(shared.members(&org_a).await, ["admin@orga.example.com"]);
    assert_eq!(shared.members(&org_b).await, ["admin@orgb.example.com"]);
    assert!(shared.client("orga").await && shared.client("orgb").await);

    // The admin signs in to the shared realm; the token names A only.
    probe
        .kc
        .create(
            &format!("/{realm}/clients"),
            &json!({ "clientId": "landlord-probe", "publicClient": true,
                     "directAccessGrantsEnabled": true }),
        )
        .await
        .unwrap();
    let identity = env.step(a, "identity").await.output.unwrap();
    let store = SecretStore::from_base64(env.cfg.secret_key.as_ref().unwrap()).unwrap();
    let password = store
        .get(&env.pool, identity["admin_secret_ref"].as_str().unwrap())
        .await
        .unwrap();
    let claims = login(
        &probe,
        &realm,
        "admin@orga.example.com",
        password.expose_secret(),
    )
    .await;
    assert_eq!(claims["organization"], json!(["orga"]), "{claims}");
    // `landlord admin-password` finds the same password.
    let out = env
        .landlord()
        .args(["admin-password", "orga"])
        .output()
        .await
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        password.expose_secret()
    );

    // A's admin administers nothing: it cannot list the realm's users,
    // B's among them, nor B's members.
    let kc = &env.cfg.keycloak.as_ref().unwrap().base_url;
    let token = claims["raw"].as_str().unwrap();
    let org_b_id = org_b["id"].as_str().unwrap();
    for path in [
        "/users".to_owned(),
        format!("/organizations/{org_b_id}/members"),
    ] {
        let status = probe
            .http
            .get(format!("{kc}/admin/realms/{realm}{path}"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 403, "{path}");
    }
    let user_a = identity["admin_user_id"].as_str().unwrap();
    let orgs_of_a = shared
        .get(&format!("/organizations/members/{user_a}/organizations"))
        .await
        .unwrap();
    let aliases: Vec<&str> = orgs_of_a
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["alias"].as_str().unwrap())
        .collect();
    assert_eq!(aliases, ["orga"], "A's admin is a member of A only");
    worker.shutdown().await;
    probe.kc.delete(&format!("/{realm}")).await.unwrap();
}

/// Three tenants in the shared realm: the second rolled back, the third
/// hard-deprovisioned; the first keeps its organization, member and
/// client. A foreign organization named like a fourth tenant is refused
/// and survives that tenant's rollback.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undoing_organizations_leaves_neighbours_and_foreign_ones_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let env = org_env(&dir).await;
    let probe = Probe::new(&env).await;
    let worker = env.spawn_worker().await;
    let realm = format!("{}_shared", env.prefix);
    let shared = Shared {
        probe: &probe,
        realm: realm.clone(),
    };
    provision(&env, "orgfirst").await;
    provision(&env, "orgthird").await;
    worker.shutdown().await;
    // The middle one fails after its identity step, then is rolled back.
    let failing = env
        .spawn_worker_with(&[("LANDLORD_FAULTS", "storage:permanent")])
        .await;
    let middle = env
        .start_with("orgmiddle", &params("orgmiddle"))
        .await
        .run
        .id;
    assert_eq!(env.wait_finished(middle, WAIT).await.status, "failed");
    failing.shutdown().await;
    assert!(shared.org("orgmiddle").await.is_some());
    let worker = env.spawn_worker().await;
    let first = shared.org("orgfirst").await.unwrap();
    let before = (
        shared.members(&first).await,
        shared.client("orgfirst").await,
    );

    rollback_run(&env.pool, middle, env.cfg.notify.outbox())
        .await
        .unwrap();
    assert_eq!(env.wait_finished(middle, WAIT).await.status, "compensated");
    let hard = start_deprovision(&env.pool, &env.key("orgthird"), DeprovisionMode::Hard, true)
        .await
        .unwrap()
        .run;
    let hard = env.wait_finished(hard.id, WAIT).await;
    assert_eq!(hard.status, "completed", "{:?}", hard.error);

    for gone in ["orgmiddle", "orgthird"] {
        assert!(shared.org(gone).await.is_none(), "{gone}: organization");
        assert!(!shared.client(gone).await, "{gone}: client");
        assert!(!shared.user(gone).await, "{gone}: user");
    }
    assert_eq!(
        env.count_all("SELECT count(*) FROM secrets WHERE ref LIKE '%/org/orgmiddle/%' OR ref LIKE '%/org/orgthird/%'")
            .await,
        0
    );
    let first_after = shared.org("orgfirst").await.expect("first stays");
    assert_eq!(first_after["id"], first["id"]);
    assert_eq!(
        (
            shared.members(&first_after).await,
            shared.client("orgfirst").await
        ),
        before
    );
    assert!(shared.get("").await.is_some(), "the shared realm stays");

    // Someone else's organization named like the next tenant.
    assert!(
        probe
            .kc
            .create(
                &format!("/{realm}/organizations"),
                &json!({ "name": "orgforeign", "alias": "orgforeign" }),
            )
            .await
            .unwrap()
    );
    let id = env
        .start_with("orgforeign", &params("orgforeign"))
        .await
        .run
        .id;
    let run = env.wait_finished(id, WAIT).await;
    assert_eq!(run.status, "failed");
    let error = run.error.unwrap_or_default();
    assert!(
        error.contains("organization orgforeign") && error.contains("is not Landlord's"),
        "{error}"
    );
    rollback_run(&env.pool, id, env.cfg.notify.outbox())
        .await
        .unwrap();
    assert_eq!(env.wait_finished(id, WAIT).await.status, "compensated");
    let foreign = shared.org("orgforeign").await.expect("left alone");
    assert!(foreign["attributes"]["landlord.tenant"].is_null());
    assert!(shared.members(&foreign).await.is_empty());
    worker.shutdown().await;
    probe.kc.delete(&format!("/{realm}")).await.unwrap();
}

/// In the shared realm a username is everyone's: a second tenant whose
/// admin has the first one's address is refused, and the first tenant's
/// admin keeps its attributes and its password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_address_another_tenant_holds_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let env = org_env(&dir).await;
    let probe = Probe::new(&env).await;
    let worker = env.spawn_worker().await;
    let shared = Shared {
        probe: &probe,
        realm: format!("{}_shared", env.prefix),
    };
    let same_admin = |tenant: &str| ProvisionParams {
        admin: Some(AdminContact {
            email: "boss@shared.example.com".into(),
            first_name: "Boss".into(),
            last_name: tenant.into(),
        }),
        ..params(tenant)
    };
    env.provision_ok("orgowner", &same_admin("orgowner"), WAIT)
        .await;
    let before = shared
        .get("/users?exact=true&username=boss@shared.example.com&briefRepresentation=false")
        .await
        .unwrap();
    let second = env
        .start_with("orgsecond", &same_admin("orgsecond"))
        .await
        .run;
    let run = env.wait_finished(second.id, WAIT).await;
    worker.shutdown().await;
    assert_eq!(run.status, "failed");
    let error = run.error.unwrap_or_default();
    assert!(error.contains("belongs to another tenant"), "{error}");
    let after = shared
        .get("/users?exact=true&username=boss@shared.example.com&briefRepresentation=false")
        .await
        .unwrap();
    assert_eq!(after[0]["attributes"], before[0]["attributes"]);
    assert_eq!(after[0]["lastName"], "orgowner", "not overwritten");
    let org = shared.org("orgowner").await.unwrap();
    assert_eq!(shared.members(&org).await, ["boss@shared.example.com"]);
}
