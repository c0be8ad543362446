//! The Rust client (`client/`) against a real API: it names every
//! operation of the served document, and every answer it reads, refusals
//! included, fits its types exactly (they refuse unknown fields).

use super::WAIT;
use crate::harness::{TestEnv, create_token, spawn_api_with};
use crate::receiver::Receiver;
use landlord_client::models::{Address, CreateLead, CreateTenant};
use landlord_client::{Client, DeleteMode, Error, ListQuery, OPERATIONS};
use std::collections::BTreeSet;

fn refused(r: Result<impl std::fmt::Debug, Error>, status: u16) {
    match r {
        Err(Error::Problem(p)) => assert_eq!(p.status, status, "{p:?}"),
        other => panic!("expected a {status} problem, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_client_covers_the_document_and_reads_every_answer() {
    let receiver = Receiver::start(0).await;
    let env = TestEnv::new(&[("WEBHOOK_URL", &receiver.url("/hooks"))]).await;
    let worker = env.spawn_worker().await;
    let proc = spawn_api_with(&env, &[]).await;
    let token = create_token(&env, "system:*").await;
    let api = Client::new(&proc.url, Some(token.into())).unwrap();

    // Every operation of the document but the probes and the executors'
    // callback has its method.
    let doc: serde_json::Value = reqwest::get(format!("{}/openapi.json", proc.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let served: BTreeSet<String> = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|item| item.as_object().unwrap().values())
        .map(|op| op["operationId"].as_str().unwrap().to_owned())
        .filter(|id| !["healthz", "readyz", "reportStep"].contains(&id.as_str()))
        .collect();
    let covered: BTreeSet<String> = OPERATIONS.iter().map(|s| (*s).to_owned()).collect();
    assert_eq!(served, covered);

    let request = CreateTenant {
        name: "typed".into(),
        ..Default::default()
    };
    let (started, created) = api.create_tenant(&request, Some("k1")).await.unwrap();
    assert!(created);
    let run_id = started.run.id.to_string();
    // The same request and key again: the same run, not a new one.
    let (again, created) = api.create_tenant(&request, Some("k1")).await.unwrap();
    assert!(!created && again.run.id == started.run.id);
    assert_eq!(
        env.wait_finished(started.run.id, WAIT).await.status,
        "completed"
    );

    let page = api.list_tenants(&ListQuery::default()).await.unwrap();
    assert_eq!(page.items[0].name, "typed");
    let t = api.get_tenant("typed").await.unwrap();
    assert_eq!(t.status, "active");
    assert!(!t.resources.is_empty());
    assert_eq!(api.list_tenant_runs("typed").await.unwrap().items.len(), 1);
    let run = api.get_run(&run_id).await.unwrap();
    assert_eq!(run.status, "completed");
    assert!(
        run.steps
            .iter()
            .all(|s| s.status == "completed" || s.status == "skipped")
    );
    assert!(!run.logs.is_empty());
    let runs = api
        .list_runs(&ListQuery {
            status: Some("completed".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(runs.items.len(), 1);
    let conns = api.list_tenant_connections("typed", true).await.unwrap();
    assert!(
        conns
            .items
            .iter()
            .any(|c| c.service == "postgres" && c.secret.is_some())
    );

    // Refusals come back as the server's problem.
    refused(api.retry_tenant("typed").await, 409);
    refused(api.rollback_tenant("typed").await, 409);
    refused(api.cancel_run(&run_id, false).await, 409);
    refused(api.issue_storage_credentials("typed", None).await, 409);
    refused(api.provision_pending_tenant("typed", None).await, 409);
    refused(api.get_tenant("nosuchtenant").await, 404);
    match api
        .create_tenant(
            &CreateTenant {
                name: "No!".into(),
                ..Default::default()
            },
            None,
        )
        .await
    {
        Err(Error::Problem(p)) => {
            assert_eq!(p.status, 422);
            assert_eq!(p.errors.unwrap()[0].field, "name");
        }
        other => panic!("{other:?}"),
    }

    // The signup, typed end to end.
    let public = api.with_token(None);
    let lead = public
        .create_lead(&CreateLead {
            email: "typed@example.com".into(),
            first_name: "Ty".into(),
            last_name: "Ped".into(),
            company_name: "Typed Inc".into(),
            address: Address {
                country: "DE".into(),
                address: "Hauptstr. 1".into(),
                city: "Berlin".into(),
                state: None,
                zip: "10115".into(),
            },
        })
        .await
        .unwrap();
    let id = lead.id.to_string();
    let sent = receiver
        .wait_for(1, |r| r.body["type"] == "lead.verification_requested")
        .await;
    let secret = sent[0].body["data"]["verificationToken"].as_str().unwrap();
    let verified = public.verify_lead(&id, secret).await.unwrap();
    let pending = public
        .create_lead_tenant(
            &id,
            &verified.token,
            "typedco",
            &["typed.example.com".into()],
        )
        .await
        .unwrap();
    assert_eq!(pending.status, "pending_provision");
    let provisioning = api.provision_pending_tenant("typedco", None).await.unwrap();
    assert_eq!(
        env.wait_finished(provisioning.run.id, WAIT).await.status,
        "completed"
    );

    let gone = api
        .delete_tenant("typedco", DeleteMode::Hard, true)
        .await
        .unwrap();
    assert_eq!(
        env.wait_finished(gone.run.id, WAIT).await.status,
        "completed"
    );
    worker.shutdown().await;
}
