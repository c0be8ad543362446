//! Plans benchmark (issue 20): a pooled tenant (a schema in the shared
//! database + a folder) against a silo tenant (a database cloned from the
//! template + a folder), alternating in one run on one worker process; then
//! 200 pooled tenants, one after the other, in one pooled database, to see
//! whether a tenant gets slower as the pool fills.
//!
//! Run with `bench/run.sh plans` (Postgres only).

mod common;
use landlord_testkit::harness;
mod section;

use chrono::Utc;
use common::{machine, ms, pct, row, spawn_workers_with, stop};
use harness::TestEnv;
use landlord_shared::model::{ProvisionParams, Run};
use landlord_shared::store;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

/// Runs of each plan in the side-by-side comparison.
const COMPARE_RUNS: usize = 30;
const POOL_TENANTS: usize = 200;

const CATALOGUE: &str = r#"
default = "silo"

[plans.silo]
tier = "enterprise"
steps = ["postgres", "migrate", "check_schema", "storage"]

[plans.pooled]
tier = "standard"
steps = ["postgres", "migrate", "check_schema", "storage"]
[plans.pooled.postgres]
mode = "schema"
"#;

async fn env(dir: &tempfile::TempDir) -> TestEnv {
    let path = dir.path().join("plans.toml");
    std::fs::write(&path, CATALOGUE).unwrap();
    TestEnv::new(&[("LANDLORD_PLANS_PATH", path.to_str().unwrap())]).await
}

/// Provisions `tenant` on `plan` and waits: the run and its steps' times.
async fn provision(env: &TestEnv, tenant: &str, plan: &str) -> (Run, BTreeMap<String, f64>) {
    let params = ProvisionParams {
        plan: Some(plan.to_owned()),
        ..Default::default()
    };
    let id = env.start_with(tenant, &params).await.run.id;
    let run = env.wait_finished(id, Duration::from_secs(120)).await;
    assert_eq!(run.status, "completed", "{tenant}: {:?}", run.error);
    let steps = store::steps_of_run(&env.pool, id)
        .await
        .unwrap()
        .into_iter()
        .filter(|s| s.status == "completed")
        .map(|s| (s.name, ms(s.started_at.unwrap(), s.finished_at.unwrap())))
        .collect();
    (run, steps)
}

fn total(run: &Run) -> f64 {
    ms(run.created_at, run.finished_at.unwrap())
}

#[derive(Default)]
struct Sample {
    totals: Vec<f64>,
    steps: BTreeMap<String, Vec<f64>>,
}

impl Sample {
    fn add(&mut self, run: &Run, steps: BTreeMap<String, f64>) {
        self.totals.push(total(run));
        for (name, v) in steps {
            self.steps.entry(name).or_default().push(v);
        }
    }
}

async fn side_by_side(out: &mut String) {
    let dir = tempfile::tempdir().unwrap();
    let env = env(&dir).await;
    let workers = spawn_workers_with(&env, 1, &[]);
    tokio::time::sleep(Duration::from_secs(1)).await;
    // The first of each builds the template or the pool: not measured.
    provision(&env, "warmsilo", "silo").await;
    provision(&env, "warmpool", "pooled").await;
    let (mut silo, mut pooled) = (Sample::default(), Sample::default());
    for i in 0..COMPARE_RUNS {
        let (run, steps) = provision(&env, &format!("silo{i}"), "silo").await;
        silo.add(&run, steps);
        let (run, steps) = provision(&env, &format!("pool{i}"), "pooled").await;
        pooled.add(&run, steps);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop(workers).await;
    let _ = writeln!(
        out,
        "### Pooled and silo tenants side by side ({COMPARE_RUNS} of each, alternating, 1 worker process, idle between runs)\n\n\
         pooled: schema `tenant_{{key}}` in the shared database, its tables and indexes, a role; \
         silo: a database cloned from the template and a role; both then a folder.\n"
    );
    out.push_str("| measure | pooled median | pooled p99 | silo median | silo p99 | pooled / silo (median) |\n|---|---|---|---|---|---|\n");
    let mut line = |name: &str, p: &[f64], s: &[f64]| {
        let (pm, pp, sm, sp) = (pct(p, 0.5), pct(p, 0.99), pct(s, 0.5), pct(s, 0.99));
        let _ = writeln!(
            out,
            "| {name} | {pm:.1} ms | {pp:.1} ms | {sm:.1} ms | {sp:.1} ms | {:.2}× |",
            pm / sm
        );
    };
    line(
        "**total** (enqueue → run completed)",
        &pooled.totals,
        &silo.totals,
    );
    for name in ["postgres", "migrate", "check_schema", "storage"] {
        line(
            &format!("step {name}"),
            &pooled.steps[name],
            &silo.steps[name],
        );
    }
    out.push('\n');
}

async fn filling_the_pool(out: &mut String) {
    let dir = tempfile::tempdir().unwrap();
    let env = env(&dir).await;
    let workers = spawn_workers_with(&env, 1, &[]);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut totals = Vec::with_capacity(POOL_TENANTS);
    let mut postgres = Vec::with_capacity(POOL_TENANTS);
    for i in 0..POOL_TENANTS {
        let (run, steps) = provision(&env, &format!("fill{i}"), "pooled").await;
        totals.push(total(&run));
        postgres.push(steps["postgres"] + steps["migrate"] + steps["check_schema"]);
    }
    stop(workers).await;
    let schemas = env.schemas_in_pool("fill").await;
    assert_eq!(schemas, POOL_TENANTS as i64);
    let _ = writeln!(
        out,
        "### {POOL_TENANTS} pooled tenants in one database (1 worker process, one after the other)\n"
    );
    out.push_str("| tenant | total | postgres + migrate + check_schema |\n|---|---|---|\n");
    for n in [1, 10, 100, POOL_TENANTS] {
        let _ = writeln!(
            out,
            "| #{n} | {:.1} ms | {:.1} ms |",
            totals[n - 1],
            postgres[n - 1]
        );
    }
    out.push('\n');
    out.push_str("| window | median total | p99 total | n |\n|---|---|---|---|\n");
    let window = |from: usize, to: usize| &totals[from - 1..to];
    out.push_str(&row("tenants #1–#20", window(1, 20), "ms"));
    out.push_str(&row(
        &format!("tenants #{}–#{POOL_TENANTS}", POOL_TENANTS - 19),
        window(POOL_TENANTS - 19, POOL_TENANTS),
        "ms",
    ));
    let _ = writeln!(
        out,
        "\nLast 20 / first 20 (median): {:.2}×; {schemas} schemas in the pool at the end.\n",
        pct(window(POOL_TENANTS - 19, POOL_TENANTS), 0.5) / pct(window(1, 20), 0.5)
    );
}

#[tokio::main]
async fn main() {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## Plans benchmark ({})\n\nMachine: {}. PostgreSQL from deploy/pg.sh (fsync off), release build, default worker settings.\n",
        Utc::now().format("%Y-%m-%d %H:%M UTC"),
        machine()
    );
    side_by_side(&mut out).await;
    filling_the_pool(&mut out).await;
    print!("{out}");
    section::write_section("plans", &out);
}
