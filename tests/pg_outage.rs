//! Postgres itself goes away while runs are in flight: stopped for 10 s,
//! then restarted after a 1.5 s blip. Two real `landlord worker` processes
//! ride both out without an operator (they reconnect as new apalis
//! workers), a third stops on SIGTERM during the outage, the API answers
//! 503 quickly meanwhile, and every run completes once, with nothing
//! duplicated and no job left `Running`.
//! Its own test binary: stopping Postgres must not overlap other tests.

use landlord_testkit::harness;

use harness::{ApiProcess, TestEnv, create_token, spawn_api};
use serde_json::json;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::process::Child;
use uuid::Uuid;

/// The cluster under test, stopped and started with deploy/pg.sh. The port
/// comes from the URL the tests connect to, so the script can only ever
/// stop the cluster this test uses.
struct Cluster {
    home: String,
    port: String,
    down: AtomicBool,
}

impl Cluster {
    fn from_env() -> Self {
        let home = std::env::var("LANDLORD_HOME").expect(
            "LANDLORD_HOME is unset: run with tests/run.sh (or export it with the LANDLORD_PG_PORT of a private cluster)",
        );
        let url = harness::admin_url();
        let port = url
            .rsplit_once('@')
            .and_then(|(_, rest)| rest.split_once('/'))
            .and_then(|(host, _)| host.rsplit_once(':'))
            .map(|(_, port)| port.to_owned())
            .expect("LANDLORD_TEST_ADMIN_URL names a port");
        if let Ok(p) = std::env::var("LANDLORD_PG_PORT") {
            assert_eq!(
                p, port,
                "LANDLORD_PG_PORT and LANDLORD_TEST_ADMIN_URL name different clusters"
            );
        }
        Self {
            home,
            port,
            down: AtomicBool::new(false),
        }
    }

    fn command(&self, action: &str) -> std::process::Command {
        let mut cmd =
            std::process::Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/pg.sh"));
        cmd.arg(action)
            .env("LANDLORD_HOME", &self.home)
            .env("LANDLORD_PG_PORT", &self.port)
            .stdout(Stdio::null());
        cmd
    }

    async fn pg(&self, action: &str) {
        let status = tokio::process::Command::from(self.command(action))
            .status()
            .await
            .expect("run deploy/pg.sh");
        assert!(status.success(), "deploy/pg.sh {action} failed");
    }

    async fn stop(&self) {
        self.down.store(true, Ordering::SeqCst);
        self.pg("stop").await;
    }

    async fn start(&self) {
        self.pg("start").await;
        self.down.store(false, Ordering::SeqCst);
    }
}

impl Drop for Cluster {
    /// A failed assertion mid-outage must not leave the suite's cluster down.
    fn drop(&mut self) {
        if self.down.load(Ordering::SeqCst) {
            let _ = self.command("start").status();
        }
    }
}

fn worker_process(env: &TestEnv, extra: &[(&str, &str)], log: &Path) -> Child {
    env.landlord()
        .arg("worker")
        .envs(extra.iter().copied())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn landlord worker")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

fn assert_alive(workers: &mut [Child], when: &str) {
    for (i, w) in workers.iter_mut().enumerate() {
        let status = w.try_wait().expect("try_wait");
        assert!(status.is_none(), "worker {i} exited {when}: {status:?}");
    }
}

/// SIGTERM, then the exit status within `within`.
async fn terminate(w: &mut Child, within: Duration) -> (std::process::ExitStatus, Duration) {
    let pid = w.id().unwrap().to_string();
    let status = tokio::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(status.success());
    let t = Instant::now();
    let exit = tokio::time::timeout(within, w.wait())
        .await
        .expect("worker stops promptly on SIGTERM")
        .unwrap();
    (exit, t.elapsed())
}

struct Http {
    client: reqwest::Client,
    api: String,
    token: String,
}

impl Http {
    async fn readyz(&self) -> (u16, Duration) {
        let t = Instant::now();
        let res = self
            .client
            .get(format!("{}/readyz", self.api))
            .send()
            .await
            .expect("readyz answers");
        (res.status().as_u16(), t.elapsed())
    }

    /// `POST /tenants`: status, elapsed, content type and body.
    async fn create(&self, name: &str) -> (u16, Duration, String, serde_json::Value) {
        let t = Instant::now();
        let res = self
            .client
            .post(format!("{}/tenants", self.api))
            .bearer_auth(&self.token)
            .json(&json!({ "name": name }))
            .send()
            .await
            .expect("POST /tenants answers");
        let elapsed = t.elapsed();
        let status = res.status().as_u16();
        let ctype = res
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = res.json().await.unwrap_or_default();
        (status, elapsed, ctype, body)
    }
}

/// Waits until at least `n` steps of these runs are mid-attempt.
async fn wait_in_flight(env: &TestEnv, runs: &[Uuid], n: i64) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let running: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM workflow_steps WHERE status = 'running' AND run_id = ANY($1)",
        )
        .bind(runs)
        .fetch_one(&env.pool)
        .await
        .unwrap();
        if running >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "runs never got mid-flight ({running} steps running)"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits for every run to finish; returns each run's finish time after
/// `since`. A fresh pool: the test's own may hold connections the restart
/// closed.
async fn wait_all_finished(env: &TestEnv, runs: &[Uuid], since: Instant) -> Vec<Duration> {
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut finished = vec![None; runs.len()];
    loop {
        for (i, id) in runs.iter().enumerate() {
            if finished[i].is_some() {
                continue;
            }
            let run = landlord_shared::store::run_by_id(&env.pool, *id).await;
            if let Ok(Some(run)) = run
                && run.is_finished()
            {
                finished[i] = Some(since.elapsed());
            }
        }
        if finished.iter().all(Option::is_some) {
            return finished.into_iter().flatten().collect();
        }
        if Instant::now() > deadline {
            let mut left = Vec::new();
            for (i, id) in runs.iter().enumerate() {
                if finished[i].is_none() {
                    left.push((id, env.steps(*id).await));
                }
            }
            panic!("runs unfinished 240 s after Postgres came back: {left:#?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn median_max(mut d: Vec<Duration>) -> (Duration, Duration) {
    d.sort();
    (d[d.len() / 2], *d.last().unwrap())
}

/// One outage: `count` runs started, Postgres stopped once they are
/// mid-flight, started again after `down_for`. During the long outage the
/// API and the worker's metrics are probed and `quitter` gets SIGTERM.
/// Returns the phase's run ids.
#[expect(clippy::too_many_arguments)]
async fn outage(
    env: &TestEnv,
    cluster: &Cluster,
    http: &Http,
    workers: &mut [Child],
    mut quitter: Option<Child>,
    metrics: &str,
    label: &str,
    count: usize,
    down_for: Duration,
) -> Vec<Uuid> {
    let mut runs = Vec::new();
    for i in 0..count {
        runs.push(env.start(&format!("{label}{i}")).await.run.id);
    }
    wait_in_flight(env, &runs, 3).await;
    let stopping = Instant::now();
    cluster.stop().await;
    let down = Instant::now();
    eprintln!(
        "[{label}] Postgres stopped ({:?} for pg_ctl stop)",
        down - stopping
    );
    let probe = down_for > Duration::from_secs(5);
    if probe {
        for _ in 0..3 {
            let (status, took) = http.readyz().await;
            eprintln!("[{label}] /readyz during the outage: {status} in {took:?}");
            assert_eq!(status, 503);
            assert!(took < Duration::from_secs(1), "/readyz took {took:?}");
            let (status, took, ctype, body) = http.create(&format!("{label}down")).await;
            eprintln!("[{label}] POST /tenants during the outage: {status} in {took:?}");
            assert_eq!(status, 503, "{body}");
            assert!(took < Duration::from_millis(2500), "POST took {took:?}");
            assert_eq!(ctype, "application/problem+json");
            assert!(
                body["type"]
                    .as_str()
                    .unwrap_or("")
                    .ends_with("/unavailable"),
                "{body}"
            );
            tokio::time::sleep(Duration::from_millis(700)).await;
        }
        let t = Instant::now();
        let scrape = http
            .client
            .get(format!("{metrics}/metrics"))
            .timeout(Duration::from_secs(15))
            .send()
            .await
            .expect("worker metrics answer during the outage");
        assert_eq!(scrape.status(), 200);
        eprintln!(
            "[{label}] worker /metrics during the outage: 200 in {:?}",
            t.elapsed()
        );
        // The worker's probes: alive, not ready.
        let worker_probe = |path: &'static str| {
            http.client
                .get(format!("{metrics}{path}"))
                .timeout(Duration::from_secs(5))
                .send()
        };
        assert_eq!(
            worker_probe("/healthz")
                .await
                .expect("worker /healthz")
                .status(),
            200
        );
        let ready = worker_probe("/readyz").await.expect("worker /readyz");
        assert_eq!(ready.status(), 503);
        let why = ready.text().await.unwrap_or_default();
        assert!(why.contains("master database is unreachable"), "{why}");
        eprintln!("[{label}] worker /readyz during the outage: 503 ({why})");
        assert_alive(workers, "during the outage");
        if let Some(w) = quitter.as_mut() {
            // Stopping is not held up by the reconnect loop.
            let (exit, took) = terminate(w, Duration::from_secs(15)).await;
            eprintln!("[{label}] a third worker stopped {took:?} after SIGTERM during the outage");
            assert!(exit.success(), "{exit:?}");
        }
    }
    tokio::time::sleep(down_for.saturating_sub(down.elapsed())).await;
    assert_alive(workers, "during the outage");
    cluster.start().await;
    let back = Instant::now();
    let unreachable = back - stopping;
    if probe {
        let deadline = Instant::now() + Duration::from_secs(30);
        while http.readyz().await.0 != 200 {
            assert!(Instant::now() < deadline, "/readyz never recovered");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        eprintln!(
            "[{label}] /readyz 200 again {:?} after restart",
            back.elapsed()
        );
        // The worker is ready again once its queue worker is back too.
        while http
            .client
            .get(format!("{metrics}/readyz"))
            .send()
            .await
            .map_or(true, |r| r.status() != 200)
        {
            assert!(
                Instant::now() < deadline,
                "the worker's /readyz never recovered"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        eprintln!(
            "[{label}] worker /readyz 200 again {:?} after restart",
            back.elapsed()
        );
        let (status, _, _, body) = http.create(&format!("{label}after")).await;
        assert_eq!(status, 202, "POST /tenants after the outage: {body}");
        runs.push(body["run"]["id"].as_str().unwrap().parse().unwrap());
    }
    let finished = wait_all_finished(env, &runs, back).await;
    let (median, max) = median_max(finished);
    eprintln!(
        "[{label}] {} runs; Postgres unreachable {unreachable:?} (stop issued to start returned); \
         after it was back: median run finished in {median:?}, all in {max:?}",
        runs.len()
    );
    for id in &runs {
        let run = landlord_shared::store::run_by_id(&env.pool, *id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            run.status,
            "completed",
            "{} {:?}: {:#?}",
            run.tenant_name,
            run.error,
            env.steps(*id).await
        );
    }
    assert_alive(workers, "after the outage");
    runs
}

/// Every apalis job acknowledged: none left `Running` (or fetched and
/// `Queued`) by a worker that lost its connection.
async fn wait_jobs_settled(env: &TestEnv) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let open: Vec<(String, String, i32, Option<String>)> = sqlx::query_as(
            "SELECT job_type, status, attempts, lock_by FROM apalis.jobs WHERE status <> 'Done'",
        )
        .fetch_all(&env.pool)
        .await
        .unwrap();
        if open.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "jobs never settled: {open:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_and_api_ride_out_a_postgres_restart() {
    let cluster = Cluster::from_env();
    let env = TestEnv::new(&[]).await;
    // TEST_LOG keeps the worker logs (and prints where) even if it fails.
    let logs = tempfile::tempdir().unwrap();
    let logs = if std::env::var_os("TEST_LOG").is_some() {
        let kept = logs.keep();
        eprintln!("worker logs in {}", kept.display());
        Logs::Kept(kept)
    } else {
        Logs::Temp(logs)
    };
    let token = create_token(&env, "system:*").await;
    let api: ApiProcess = spawn_api(&env).await;
    let metrics = format!("127.0.0.1:{}", free_port());
    // The postgres step lingers 1.5 s after its work, so runs are
    // mid-step when Postgres goes away.
    let slow = ("LANDLORD_FAULTS", "postgres:sleep-after:1500");
    let mut workers = vec![
        worker_process(
            &env,
            &[slow, ("LANDLORD_METRICS_BIND", &metrics)],
            &logs.path().join("a.log"),
        ),
        worker_process(&env, &[slow], &logs.path().join("b.log")),
    ];
    // A third one holds runs too and is stopped during the outage.
    let quitter = worker_process(&env, &[slow], &logs.path().join("c.log"));
    let pids: Vec<_> = workers.iter().map(|w| w.id().unwrap()).collect();
    let http = Http {
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        api: api.url.clone(),
        token,
    };
    let metrics = format!("http://{metrics}");

    let mut runs = outage(
        &env,
        &cluster,
        &http,
        &mut workers,
        Some(quitter),
        &metrics,
        "long",
        10,
        Duration::from_secs(10),
    )
    .await;
    runs.extend(
        outage(
            &env,
            &cluster,
            &http,
            &mut workers,
            None,
            &metrics,
            "blip",
            6,
            Duration::from_millis(1500),
        )
        .await,
    );

    // The same two processes did all of it.
    assert_alive(&mut workers, "at the end");
    let now: Vec<_> = workers.iter().map(|w| w.id().unwrap()).collect();
    assert_eq!(pids, now);
    let scrape = http
        .client
        .get(format!("{metrics}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(scrape.status(), 200, "worker metrics after the outages");

    // Every run provisioned its tenant exactly once.
    let n = i64::try_from(runs.len()).unwrap();
    wait_jobs_settled(&env).await;
    assert_eq!(
        env.count_all("SELECT count(*) FROM workflow_steps WHERE status = 'running'")
            .await,
        0
    );
    assert_eq!(
        env.count_all("SELECT count(*) FROM tenants WHERE status = 'active'")
            .await,
        n
    );
    assert_eq!(env.count_all("SELECT count(*) FROM tenants").await, n);
    let provisioned: (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(DISTINCT tenant_id) FROM events WHERE type = 'tenant.provisioned'",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(provisioned, (n, n), "one tenant.provisioned event each");
    // Nothing duplicated on the server: exactly the tenants' databases and
    // roles carry the test's prefix (besides its master and templates).
    let mut expected = Vec::new();
    for id in &runs {
        let run = landlord_shared::store::run_by_id(&env.pool, *id)
            .await
            .unwrap()
            .unwrap();
        expected.push(env.db_name(&run.tenant_name));
    }
    expected.sort();
    let like = format!("{}\\_%", env.prefix);
    let dbs: Vec<String> = sqlx::query_scalar(
        "SELECT datname FROM pg_database WHERE datname LIKE $1 AND datname <> $2
           AND datname NOT LIKE $3 ORDER BY datname",
    )
    .bind(&like)
    .bind(format!("{}_master", env.prefix))
    .bind(format!("{}\\_tpl\\_%", env.prefix))
    .fetch_all(&env.admin)
    .await
    .unwrap();
    // The role that owns the template databases is not a tenant's.
    let roles: Vec<String> = sqlx::query_scalar(
        "SELECT rolname FROM pg_roles WHERE rolname LIKE $1 AND rolname <> $2 ORDER BY rolname",
    )
    .bind(&like)
    .bind(format!("{}_tpl_owner", env.prefix))
    .fetch_all(&env.admin)
    .await
    .unwrap();
    assert_eq!(dbs, expected, "one database per tenant");
    assert_eq!(roles, expected, "one role per tenant");
    let retried: Vec<(String, i32)> = sqlx::query_as(
        "SELECT name, attempts FROM workflow_steps WHERE attempts > 1 ORDER BY name",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap();
    eprintln!("steps that took more than one attempt: {retried:?}");

    // Each process logged its reconnect (the 10 s outage outlasts every
    // acquire timeout; the blip may pass without a new generation), and
    // SIGTERM still stops it. With no notification channel a worker runs
    // one queue worker, so one reconnect per outage at most.
    for (i, w) in workers.iter_mut().enumerate() {
        let (exit, took) = terminate(w, Duration::from_secs(20)).await;
        assert!(exit.success(), "worker {i}: {exit:?}");
        let log = std::fs::read_to_string(logs.path().join(if i == 0 { "a.log" } else { "b.log" }))
            .unwrap();
        let reconnects = log.matches("starting a new one").count();
        eprintln!("worker {i}: {reconnects} reconnects logged, stopped {took:?} after SIGTERM");
        assert!(reconnects >= 1, "worker {i} log:\n{log}");
    }
    api.stop().await;
}

enum Logs {
    Temp(tempfile::TempDir),
    Kept(std::path::PathBuf),
}

impl Logs {
    fn path(&self) -> &Path {
        match self {
            Self::Temp(t) => t.path(),
            Self::Kept(p) => p,
        }
    }
}
