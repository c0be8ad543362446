//! API benchmark: `POST /tenants` against a real `landlord api` process
//! (release build) on the Postgres of deploy/pg.sh. No worker runs: this
//! measures accepting and enqueueing a run, not provisioning it.
//!
//! Run with `bench/run.sh api`.

mod common;
use landlord_testkit::harness;
mod section;

use chrono::Utc;
use common::{pct, peak_rss_mib};
use harness::TestEnv;
use std::fmt::Write as _;
use std::time::Instant;

const CLIENTS: usize = 50;
const PER_CLIENT: usize = 40;
const SEQUENTIAL: usize = 200;
const WARMUP: usize = 50;

/// One POST /tenants; its latency in ms. Anything but 202 is a failure of
/// the benchmark, not a data point.
async fn create(client: &reqwest::Client, url: &str, token: &str, name: &str) -> f64 {
    let t0 = Instant::now();
    let resp = client
        .post(format!("{url}/tenants"))
        .bearer_auth(token)
        .json(&serde_json::json!({ "name": name, "plan": "bench" }))
        .send()
        .await
        .expect("POST /tenants");
    let status = resp.status();
    let _ = resp.bytes().await;
    let ms = t0.elapsed().as_secs_f64() * 1000.0;
    assert_eq!(status, 202, "POST /tenants {name}");
    ms
}

fn client() -> reqwest::Client {
    // One connection per simulated client, as separate callers would have.
    reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .build()
        .expect("HTTP client")
}

#[tokio::main]
async fn main() {
    let env = TestEnv::new(&[]).await;
    let api = harness::spawn_api_with(&env, &[("RUST_LOG", "warn")]).await;
    let url = api.url.clone();
    let token = harness::create_token(&env, "system:*").await;

    let one = client();
    for i in 0..WARMUP {
        create(&one, &url, &token, &format!("warm{i:05}")).await;
    }
    let mut sequential = Vec::with_capacity(SEQUENTIAL);
    for i in 0..SEQUENTIAL {
        sequential.push(create(&one, &url, &token, &format!("seq{i:05}")).await);
    }

    let started = Instant::now();
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (url, token) = (url.clone(), token.clone());
            tokio::spawn(async move {
                let http = client();
                let mut lat = Vec::with_capacity(PER_CLIENT);
                for i in 0..PER_CLIENT {
                    lat.push(create(&http, &url, &token, &format!("c{c:02}n{i:04}")).await);
                }
                lat
            })
        })
        .collect();
    let mut concurrent = Vec::with_capacity(CLIENTS * PER_CLIENT);
    for t in tasks {
        concurrent.extend(t.await.expect("client task"));
    }
    let wall = started.elapsed().as_secs_f64();
    let rss = peak_rss_mib(&api.child);
    let runs = env.count_all("SELECT count(*) FROM workflow_runs").await;
    assert_eq!(
        runs as usize,
        WARMUP + SEQUENTIAL + CLIENTS * PER_CLIENT,
        "every accepted request made exactly one run"
    );

    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## API benchmark ({})\n\n`POST /tenants` against a `landlord api` process (release build, API token auth) on the PostgreSQL of deploy/pg.sh (fsync off); no worker, so each request is validation + run + job rows in one transaction. The load generator shares the machine's {cores} cores with the API and Postgres.\n",
        Utc::now().format("%Y-%m-%d %H:%M UTC"),
    );
    out.push_str("| measure | median | p99 | requests |\n|---|---|---|---|\n");
    let _ = writeln!(
        out,
        "| latency, 1 client (sequential) | {:.1} ms | {:.1} ms | {SEQUENTIAL} |",
        pct(&sequential, 0.5),
        pct(&sequential, 0.99)
    );
    let _ = writeln!(
        out,
        "| latency, {CLIENTS} concurrent clients | {:.1} ms | {:.1} ms | {} |",
        pct(&concurrent, 0.5),
        pct(&concurrent, 0.99),
        concurrent.len()
    );
    let _ = writeln!(
        out,
        "\nThroughput with {CLIENTS} concurrent clients: **{:.0} requests/s** ({} requests in {wall:.2} s).\n\nAPI process peak RSS (VmHWM) after the run: **{rss:.1} MiB**.",
        concurrent.len() as f64 / wall,
        concurrent.len(),
    );
    print!("{out}");
    section::write_section("api", &out);
    drop(api);
}
