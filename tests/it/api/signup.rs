//! Seed 004's signup flow end to end with real HTTP calls: lead → the
//! verification token by webhook → verify → tenant (`pending_provision`)
//! → an operator provisions it → active → the application reads its
//! credentials and logs in to its database. Refused requests (bad input,
//! wrong, used, expired or foreign tokens, a taken key, too many signups)
//! create nothing.

use super::{Api, Res, WAIT, postgres_login, run_id};
use crate::harness::{TestEnv, create_token_with, spawn_api_with, wait_until};
use crate::receiver::Receiver;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::Connection as _;
use sqlx::postgres::PgConnection;

fn lead(email: &str) -> Value {
    json!({
        "email": email,
        "firstName": "John",
        "lastName": "Doe",
        "companyName": "New Company Inc",
        "address": {
            "country": "US", "address": "123 Main St", "city": "San Francisco",
            "state": "CA", "zip": "94102"
        }
    })
}

async fn post_with(api: &Api, path: &str, bearer: &str, body: Option<&Value>) -> Res {
    let mut req = api.req(Method::POST, path).bearer_auth(bearer);
    if let Some(b) = body {
        req = req.json(b);
    }
    api.send(req).await
}

/// The token the lead was sent, as the webhook channel delivered it.
async fn token_sent(receiver: &Receiver, lead: &str) -> String {
    let got = receiver
        .wait_for(1, |r| {
            r.body["type"] == "lead.verification_requested" && r.body["data"]["leadId"] == lead
        })
        .await;
    let data = &got[0].body["data"];
    assert!(data.get("verificationTokenRef").is_none(), "{data}");
    data["verificationToken"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_004_signup_from_lead_to_an_application_logged_in() {
    let receiver = Receiver::start(0).await;
    let env = TestEnv::new(&[("WEBHOOK_URL", &receiver.url("/hooks"))]).await;
    let worker = env.spawn_worker().await;
    let proc = spawn_api_with(&env, &[("LANDLORD_LEADS_PER_CLIENT_HOUR", "6")]).await;
    let admin = crate::harness::create_token(&env, "system:*").await;
    let api = Api::with(proc, Some(admin));
    let public = api.as_token(None);
    let leads = async || env.count_all("SELECT count(*) FROM leads").await;
    // Tenants other than the one the admin starts below (its row comes
    // with its run's first step, whenever the worker gets to it).
    let tenants = async || {
        env.count_all("SELECT count(*) FROM tenants WHERE name <> 'takenco'")
            .await
    };

    // 1. Sign up. Bad input names its fields and records nothing.
    let mut bad = lead("not-an-email");
    bad["address"]["country"] = json!("USA");
    bad["companyName"] = json!(" ");
    let res = public.post_json("/leads", &bad).await;
    res.assert_problem(422, "validation");
    let mut fields = res.fields();
    fields.sort();
    assert_eq!(fields, ["address.country", "companyName", "email"]);
    public
        .post_json("/leads", &json!({"email": "a@b.co"}))
        .await
        .assert_problem(422, "validation");
    assert_eq!(leads().await, 0);
    let res = public
        .post_json("/leads", &lead("admin@newcompany.com"))
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    assert!(res.body.get("key").is_none() && res.body.get("token").is_none());
    let id = res.body["id"].as_str().unwrap().to_owned();

    // 2. Verify with the token the webhook delivered.
    let sent = token_sent(&receiver, &id).await;
    let verify = format!("/leads/{id}/verify");
    post_with(&public, &verify, "wrong-token", None)
        .await
        .assert_problem(401, "unauthorized");
    public
        .post(&verify)
        .await
        .assert_problem(401, "unauthorized");
    let res = post_with(&public, &verify, &sent, None).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    let token = res.body["token"].as_str().unwrap().to_owned();
    let res = post_with(&public, &verify, &sent, None).await;
    res.assert_problem(401, "unauthorized");
    assert!(
        res.body["detail"].as_str().unwrap().contains("used"),
        "{}",
        res.body
    );

    // Another verified lead's token is foreign here.
    let other = public.post_json("/leads", &lead("ceo@othercorp.com")).await;
    let other_id = other.body["id"].as_str().unwrap().to_owned();
    let other_sent = token_sent(&receiver, &other_id).await;
    let other_token = post_with(
        &public,
        &format!("/leads/{other_id}/verify"),
        &other_sent,
        None,
    )
    .await
    .body["token"]
        .as_str()
        .unwrap()
        .to_owned();

    // 3. The tenant, once; refusals create nothing.
    let create = format!("/leads/{id}/tenants");
    let body = json!({ "key": "newcompany", "domains": ["newcompany.com"] });
    let before = tenants().await;
    post_with(&public, &create, &other_token, Some(&body))
        .await
        .assert_problem(403, "forbidden");
    post_with(&public, &create, "eyJhbGciOiJIUzI1NiJ9.e30.x", Some(&body))
        .await
        .assert_problem(401, "unauthorized");
    let res = post_with(&public, &create, &token, Some(&json!({ "key": "No!" }))).await;
    res.assert_problem(422, "validation");
    assert_eq!(res.fields(), ["key"]);
    api.create("takenco").await;
    post_with(&public, &create, &token, Some(&json!({ "key": "takenco" })))
        .await
        .assert_problem(409, "conflict");
    assert_eq!(tenants().await, before, "refusals create no tenant");
    let res = post_with(&public, &create, &token, Some(&body)).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    assert_eq!(res.body["status"], "pending_provision");
    assert_eq!(res.body["name"], "New Company Inc");
    assert_eq!(res.body["contacts"][0]["email"], "admin@newcompany.com");
    post_with(&public, &create, &token, Some(&json!({ "key": "second" })))
        .await
        .assert_problem(401, "unauthorized");
    assert_eq!(
        env.tenant_status("newcompany").await.as_deref(),
        Some("pending_provision")
    );
    assert_eq!(env.tenant_status("second").await, None);
    let listed = api.get("/tenants?status=pending_provision").await;
    assert_eq!(
        listed.body["items"][0]["name"], "newcompany",
        "{}",
        listed.body
    );
    api.create("newcompany")
        .await
        .assert_problem(409, "conflict");

    // 4. An operator provisions it with the subscription's plan; a
    // signup service's token cannot.
    let signup = api.as_token(Some(
        &create_token_with(&env, &["tenants:read", "tenants:credentials"]).await,
    ));
    signup
        .post_json("/tenants/newcompany/provision", &json!({}))
        .await
        .assert_problem(403, "forbidden");
    let res = api
        .post_json(
            "/tenants/newcompany/provision",
            &json!({ "plan": "nosuchplan" }),
        )
        .await;
    res.assert_problem(422, "validation");
    let res = api
        .post_json("/tenants/newcompany/provision", &json!({}))
        .await;
    assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.body);
    let run = run_id(&res);
    assert_eq!(env.wait_finished(run, WAIT).await.status, "completed");
    assert_eq!(
        env.tenant_status("newcompany").await.as_deref(),
        Some("active")
    );
    api.post_json("/tenants/newcompany/provision", &json!({}))
        .await
        .assert_problem(409, "conflict");
    let welcome = receiver
        .wait_for(1, |r| {
            r.body["type"] == "tenant.provisioned" && r.body["data"]["tenantName"] == "newcompany"
        })
        .await;
    assert_eq!(welcome[0].body["data"]["email"], "admin@newcompany.com");

    // 5. The application reads its credentials and connects.
    let res = signup
        .get("/tenants/newcompany/connections?include=credentials")
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    let (_, opts) = postgres_login(&res.body);
    let mut conn = PgConnection::connect_with(&opts).await.unwrap();
    let one: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(one, 1);
    conn.close().await.unwrap();

    // Rate limits: three signups per email address an hour, and (here)
    // six per client address; 429 with Retry-After, nothing recorded.
    for _ in 0..2 {
        let res = public.post_json("/leads", &lead("twice@example.com")).await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    }
    let before = leads().await;
    let res = public
        .post_json("/leads", &lead("ADMIN@newcompany.com"))
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    let res = public
        .post_json("/leads", &lead("admin@newcompany.com"))
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    let res = public
        .post_json("/leads", &lead("admin@newcompany.com"))
        .await;
    res.assert_problem(429, "too-many-requests");
    assert!(
        res.body["detail"].as_str().unwrap().contains("email"),
        "{}",
        res.body
    );
    let wait: u64 = res.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3600).contains(&wait), "{wait}");
    assert_eq!(leads().await, before + 2);
    // Six from this client now (two seed leads, two twice@, two more).
    let res = public.post_json("/leads", &lead("fresh@example.com")).await;
    res.assert_problem(429, "too-many-requests");
    assert!(
        res.body["detail"].as_str().unwrap().contains("address"),
        "{}",
        res.body
    );
    assert_eq!(leads().await, before + 2);

    wait_until("every verification email delivered", 30, async || {
        env.count_all(
            "SELECT count(*) FROM events WHERE type = 'lead.verification_requested' AND delivered_at IS NULL",
        )
        .await
            == 0
    })
    .await;
    // The tokens sent never sit in the database in clear.
    let stored = env
        .count_all("SELECT count(*) FROM events WHERE payload::text LIKE '%verificationToken\"%'")
        .await;
    assert_eq!(stored, 0);
    worker.shutdown().await;
}
