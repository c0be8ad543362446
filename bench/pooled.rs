//! Pooled tenants on the whole stack (issue 22): a full `standard` tenant
//! (organization, schema, shared Mongo and Qdrant, a storage prefix)
//! against a full `enterprise` one (realm, database, Mongo database,
//! collection, bucket), alternating in one run on one worker; then many
//! `standard` tenants queued at once and drained by two worker processes,
//! and (with S3) storage credentials issued by the API once they exist.
//!
//! Run with `bench/run.sh pooled` (starts the test stack);
//! `BENCH_POOLED_TENANTS` sets the drain's size (default 1000);
//! `BENCH_POOLED_DRAIN_S3=0` drains without S3 (folders).

mod common;
use landlord_testkit::harness;
mod section;

use chrono::Utc;
use common::{machine, ms, pct, spawn_workers_with, stop};
use harness::{TestEnv, create_token, spawn_api};
use landlord_shared::model::{AdminContact, ProvisionParams, Run};
use landlord_shared::store;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

const COMPARE_RUNS: usize = 20;

fn params(tenant: &str, plan: &str) -> ProvisionParams {
    ProvisionParams {
        plan: Some(plan.to_owned()),
        domains: vec![format!("{tenant}.example.com")],
        admin: Some(AdminContact {
            email: format!("admin@{tenant}.example.com"),
            first_name: "Bench".into(),
            last_name: "Admin".into(),
        }),
    }
}

/// The run's total and each completed step's duration.
async fn timings(env: &TestEnv, run: &Run) -> (f64, BTreeMap<String, f64>) {
    let steps = store::steps_of_run(&env.pool, run.id)
        .await
        .unwrap()
        .into_iter()
        .filter(|s| s.status == "completed")
        .map(|s| (s.name, ms(s.started_at.unwrap(), s.finished_at.unwrap())))
        .collect();
    (ms(run.created_at, run.finished_at.unwrap()), steps)
}

async fn provision(env: &TestEnv, tenant: &str, plan: &str) -> (f64, BTreeMap<String, f64>) {
    let id = env.start_with(tenant, &params(tenant, plan)).await.run.id;
    let run = env.wait_finished(id, Duration::from_secs(300)).await;
    assert_eq!(run.status, "completed", "{tenant}: {:?}", run.error);
    timings(env, &run).await
}

async fn side_by_side(env: &TestEnv, out: &mut String) {
    let workers = spawn_workers_with(env, 1, &[]);
    tokio::time::sleep(Duration::from_secs(1)).await;
    // The first of each makes the shared realm, pool, bucket, template.
    provision(env, "warmstd", "standard").await;
    provision(env, "warment", "enterprise").await;
    let mut totals: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    let mut steps: BTreeMap<(&str, String), Vec<f64>> = BTreeMap::new();
    for i in 0..COMPARE_RUNS {
        for (plan, tenant) in [
            ("standard", format!("std{i}")),
            ("enterprise", format!("ent{i}")),
        ] {
            let (total, by_step) = provision(env, &tenant, plan).await;
            totals.entry(plan).or_default().push(total);
            for (name, v) in by_step {
                steps.entry((plan, name)).or_default().push(v);
            }
        }
    }
    stop(workers).await;
    let _ = writeln!(
        out,
        "### A full pooled tenant and a full silo tenant ({COMPARE_RUNS} of each, alternating, 1 worker process)\n\n\
         standard: organization in the shared realm, schema, shared Mongo and Qdrant, a storage prefix (credentials are issued on request, outside the run); \
         enterprise: realm, database, Mongo database, collection, bucket.\n"
    );
    out.push_str("| measure | standard median | standard p99 | enterprise median | enterprise p99 |\n|---|---|---|---|---|\n");
    let mut line = |name: &str, s: &[f64], e: &[f64]| {
        let _ = writeln!(
            out,
            "| {name} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms |",
            pct(s, 0.5),
            pct(s, 0.99),
            pct(e, 0.5),
            pct(e, 0.99)
        );
    };
    line(
        "**total** (enqueue → run completed)",
        &totals["standard"],
        &totals["enterprise"],
    );
    for name in [
        "identity", "postgres", "migrate", "mongo", "qdrant", "storage",
    ] {
        let empty = Vec::new();
        line(
            &format!("step {name}"),
            steps.get(&("standard", name.to_owned())).unwrap_or(&empty),
            steps
                .get(&("enterprise", name.to_owned()))
                .unwrap_or(&empty),
        );
    }
    out.push('\n');
}

async fn drain(env: &TestEnv, out: &mut String) -> usize {
    let n: usize = std::env::var("BENCH_POOLED_TENANTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let tenant = format!("pool{i}");
        ids.push(
            env.start_with(&tenant, &params(&tenant, "standard"))
                .await
                .run
                .id,
        );
    }
    let started = Instant::now();
    let workers = spawn_workers_with(env, 2, &[]);
    let deadline = Instant::now() + Duration::from_secs(3600);
    loop {
        let open: i64 =
            sqlx::query_scalar("SELECT count(*) FROM workflow_runs WHERE finished_at IS NULL")
                .fetch_one(&env.pool)
                .await
                .unwrap();
        if open == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the drain did not finish");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let took = started.elapsed();
    stop(workers).await;
    // Active time of a run: its first step's start to its end, so the
    // queue's wait is left out; identity alone shows the organization
    // create as the realm fills.
    // A failed run is reported, not fatal: the drain's numbers still stand.
    let mut failed = Vec::new();
    let mut active = Vec::with_capacity(n);
    let mut identity = Vec::with_capacity(n);
    let mut storage = Vec::with_capacity(n);
    for id in &ids {
        let run = store::run_by_id(&env.pool, *id).await.unwrap().unwrap();
        if run.status != "completed" {
            failed.push(format!(
                "{}: {}",
                run.tenant_name,
                run.error.unwrap_or_default()
            ));
            continue;
        }
        let steps = store::steps_of_run(&env.pool, *id).await.unwrap();
        let first = steps.iter().filter_map(|s| s.started_at).min().unwrap();
        active.push(ms(first, run.finished_at.unwrap()));
        let took = |name: &str| {
            let s = steps.iter().find(|s| s.name == name).unwrap();
            ms(s.started_at.unwrap(), s.finished_at.unwrap())
        };
        identity.push(took("identity"));
        storage.push(took("storage"));
    }
    let _ = writeln!(
        out,
        "### {n} pooled tenants queued at once, 2 worker processes\n\n\
         All ended in {:.1} s ({:.1} tenants/s); {} failed{}.\n",
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64(),
        failed.len(),
        if failed.is_empty() {
            String::new()
        } else {
            format!(": {}", failed.join("; "))
        }
    );
    let n = active.len();
    out.push_str("| tenants (by creation) | active time median | p99 | identity step median | p99 | storage step median | p99 | n |\n|---|---|---|---|---|---|---|---|\n");
    let window =
        |from: usize, to: usize| (&active[from..to], &identity[from..to], &storage[from..to]);
    let last = format!("#{}–#{n}", n.saturating_sub(19));
    for (label, (a, i, st)) in [
        ("#1–#20", window(0, 20.min(n))),
        (last.as_str(), window(n.saturating_sub(20), n)),
    ] {
        let _ = writeln!(
            out,
            "| {label} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {} |",
            pct(a, 0.5),
            pct(a, 0.99),
            pct(i, 0.5),
            pct(i, 0.99),
            pct(st, 0.5),
            pct(st, 0.99),
            a.len()
        );
    }
    if n >= 10 {
        let _ = writeln!(
            out,
            "\nTenant #10: {:.1} ms active, identity {:.1} ms; tenant #{n}: {:.1} ms active, identity {:.1} ms ({:.2}× #10). Last 20 / first 20 (active, median): {:.2}×.\n",
            active[9],
            identity[9],
            active[n - 1],
            identity[n - 1],
            active[n - 1] / active[9],
            pct(&active[n.saturating_sub(20)..], 0.5) / pct(&active[..20.min(n)], 0.5)
        );
    }
    ids.len()
}

/// `POST /tenants/{id}/storage-credentials` for the first and the last 50
/// drained tenants, one at a time: what an application waits for, and
/// whether it depends on how many tenants exist (STS stores nothing).
async fn issue_credentials(env: &TestEnv, n: usize, out: &mut String) {
    let api = spawn_api(env).await;
    let token = create_token(env, "system:*").await;
    let http = reqwest::Client::new();
    let issue = async |i: usize| {
        let t = Instant::now();
        let resp = http
            .post(format!("{}/tenants/pool{i}/storage-credentials", api.url))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status(),
            200,
            "pool{i}: {}",
            resp.text().await.unwrap()
        );
        t.elapsed().as_secs_f64() * 1000.0
    };
    let k = 50.min(n);
    let mut first = Vec::with_capacity(k);
    for i in 0..k {
        first.push(issue(i).await);
    }
    let mut last = Vec::with_capacity(k);
    for i in n - k..n {
        last.push(issue(i).await);
    }
    let _ = writeln!(
        out,
        "Storage credentials issued by the API (STS, one request at a time, {n} tenants existing): \
         first {k} tenants {:.1} ms median / {:.1} ms p99, last {k} {:.1} ms / {:.1} ms.\n",
        pct(&first, 0.5),
        pct(&first, 0.99),
        pct(&last, 0.5),
        pct(&last, 0.99)
    );
}

/// The bench's realms are its own: removed after each section, so the
/// stack's Keycloak, which slows past a few hundred realms, stays quick for
/// whatever runs on it next.
async fn drop_realms(env: &TestEnv) {
    let Some(cfg) = env.cfg.keycloak.clone() else {
        return;
    };
    let kc = landlord_worker::clients::keycloak::Keycloak::new(cfg, reqwest::Client::new());
    let Ok(Some(list)) = kc.get_json("?briefRepresentation=true").await else {
        eprintln!("could not list Keycloak's realms; the bench's are left");
        return;
    };
    let ours = list
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["realm"].as_str())
        .filter(|r| r.starts_with(&env.prefix));
    for realm in ours {
        if let Err(e) = kc.delete(&format!("/{realm}")).await {
            eprintln!("could not delete realm {realm}: {e}");
        }
    }
}

#[tokio::main]
async fn main() {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## Pooled tenants on the whole stack ({})\n\nMachine: {}. PostgreSQL from deploy/pg.sh (fsync off), Keycloak (dev mode, H2), FerretDB, SeaweedFS and the Qdrant stand-in of deploy/stack.sh on the same cores; release build, default worker settings.\n",
        Utc::now().format("%Y-%m-%d %H:%M UTC"),
        machine()
    );
    let env = TestEnv::full_stack(&[]).await;
    side_by_side(&env, &mut out).await;
    drop_realms(&env).await;
    // BENCH_POOLED_DRAIN_S3=0: the drain's tenants keep their files in
    // folders (to measure the rest without SeaweedFS).
    let with_s3 = std::env::var("BENCH_POOLED_DRAIN_S3").map_or(true, |v| v != "0");
    let env = match with_s3 {
        true => TestEnv::full_stack(&[]).await,
        false => {
            out.push_str("The drain below ran without S3 (BENCH_POOLED_DRAIN_S3=0): storage is a folder per tenant.\n\n");
            TestEnv::full_stack(&[("S3_ENDPOINT", "")]).await
        }
    };
    let n = drain(&env, &mut out).await;
    if with_s3 {
        issue_credentials(&env, n, &mut out).await;
    }
    drop_realms(&env).await;
    print!("{out}");
    section::write_section("pooled", &out);
}
