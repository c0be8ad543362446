//! Test harness: every test gets a fresh master database (a clone of a
//! migrated template, `master_template`) on the shared test
//! cluster, its own resource-name prefix (tenant databases and roles are
//! cluster-wide) and its own storage root.

use crate::master_template::{ddl, with_database};
use landlord_shared::config::Config;
use landlord_shared::model::{ProvisionParams, Run, StepRow};
use landlord_shared::secrets::SecretStore;
use landlord_shared::start::{Started, start_provision};
use landlord_shared::store;
use landlord_shared::tenant::TenantKey;
use rand::Rng;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use uuid::Uuid;

pub fn admin_url() -> String {
    std::env::var("LANDLORD_TEST_ADMIN_URL")
        .expect("LANDLORD_TEST_ADMIN_URL is unset: run the tests with tests/run.sh")
}

pub async fn admin_pool() -> PgPool {
    PgPoolOptions::new()
        .max_connections(3)
        .connect(&admin_url())
        .await
        .expect("admin connection")
}

pub struct TestEnv {
    pub vars: HashMap<String, String>,
    pub cfg: Config,
    pub pool: PgPool,
    pub admin: PgPool,
    pub prefix: String,
    pub storage: tempfile::TempDir,
}

fn random_suffix(n: usize) -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..n)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}

/// Addresses of the services deploy/stack.sh started, from the environment
/// tests/run.sh exports.
pub fn stack_vars() -> Vec<(String, String)> {
    const NAMES: &[&str] = &[
        "KEYCLOAK_BASE_URL",
        "KEYCLOAK_ADMIN_USERNAME",
        "KEYCLOAK_ADMIN_PASSWORD",
        "MONGODB_ADMIN_URI",
        "QDRANT_URL",
        "S3_ENDPOINT",
        "S3_ACCESS_KEY",
        "S3_SECRET_KEY",
        "S3_REGION",
    ];
    NAMES
        .iter()
        .map(|n| {
            let v = std::env::var(n).unwrap_or_else(|_| {
                panic!(
                    "{n} is unset: run the tests with tests/run.sh, which starts deploy/stack.sh"
                )
            });
            ((*n).to_owned(), v)
        })
        .collect()
}

/// The `landlord` binary cargo built for this test or bench: it sits next
/// to the `deps/` folder the test binary runs from (cargo builds a
/// package's binaries before its integration tests and benches). The
/// benchmark compares builds: `LANDLORD_BENCH_BIN` names another.
pub fn landlord_bin() -> std::path::PathBuf {
    if let Some(bin) = std::env::var_os("LANDLORD_BENCH_BIN") {
        return bin.into();
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("a test binary runs from target/<profile>/deps")
        .join("landlord");
    assert!(
        bin.is_file(),
        "{} is missing: run the tests with cargo test (or tests/run.sh)",
        bin.display()
    );
    bin
}

/// What a passing test leaves is dropped with its environment: its master
/// database, its tenants' databases and roles (all named `{prefix}_…`) and
/// its Keycloak realms. A failing test's stay to look at; tests/sweep.sh
/// drops them before the next run. Other servers' leftovers (Mongo
/// databases, buckets, collections) are not swept.
impl Drop for TestEnv {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        crate::cleanup::spawn(admin_url(), self.prefix.clone(), self.cfg.keycloak.clone());
    }
}

impl TestEnv {
    pub async fn new(overrides: &[(&str, &str)]) -> Self {
        Self::with_vars(
            overrides
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        )
        .await
    }

    /// Postgres plus every service of the test stack.
    pub async fn full_stack(overrides: &[(&str, &str)]) -> Self {
        let extra = overrides
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()));
        Self::with_vars(stack_vars().into_iter().chain(extra)).await
    }

    pub async fn with_vars(overrides: impl IntoIterator<Item = (String, String)>) -> Self {
        let prefix = format!("t{}", random_suffix(8));
        let admin = admin_pool().await;
        let master_db = format!("{prefix}_master");
        // A clone of the migrated template: a file copy, not every
        // migration again (the migrate below then finds nothing to do).
        let template = crate::master_template::name(&admin_url()).await;
        let clone = format!("CREATE DATABASE {master_db} TEMPLATE {template}");
        ddl(&admin, clone).await.expect("clone the master database");
        let storage = tempfile::tempdir().expect("tempdir");
        let mut vars: HashMap<String, String> = [
            (
                "MASTER_DATABASE_URL",
                with_database(&admin_url(), &master_db),
            ),
            ("POSTGRES_ADMIN_URL", admin_url()),
            ("LANDLORD_NAME_PREFIX", prefix.clone()),
            (
                "TENANT_STORAGE_ROOT",
                storage.path().to_string_lossy().into_owned(),
            ),
            ("LANDLORD_SECRET_KEY", SecretStore::generate_key()),
            ("PROVISION_RETRY_DELAY_MS", "200".into()),
            ("LANDLORD_POLL_INTERVAL_MS", "200".into()),
            ("LANDLORD_HEARTBEAT_MS", "1000".into()),
            ("LANDLORD_MISSED_HEARTBEATS", "3".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        vars.extend(overrides);
        let cfg = Config::from_lookup(|k| vars.get(k).cloned()).expect("test config");
        let pool = PgPoolOptions::new()
            .max_connections(20)
            .connect(&cfg.master_database_url)
            .await
            .expect("master connection");
        landlord_shared::migrate::migrate_master(&pool)
            .await
            .expect("migrate");
        Self {
            vars,
            cfg,
            pool,
            admin,
            prefix,
            storage,
        }
    }

    /// An environment whose plan catalogue is `text`, written into `dir`
    /// (which must outlive it), on Postgres alone or the whole stack.
    pub async fn with_catalogue(dir: &tempfile::TempDir, text: &str, full_stack: bool) -> Self {
        let path = dir.path().join("plans.toml");
        std::fs::write(&path, text).expect("write the catalogue");
        let plans = [("LANDLORD_PLANS_PATH", path.to_str().expect("utf-8 path"))];
        if full_stack {
            Self::full_stack(&plans).await
        } else {
            Self::new(&plans).await
        }
    }

    /// Provisions `tenant` and waits for its run, which must complete.
    pub async fn provision_ok(
        &self,
        tenant: &str,
        params: &ProvisionParams,
        wait: Duration,
    ) -> Uuid {
        let id = self.start_with(tenant, params).await.run.id;
        let run = self.wait_finished(id, wait).await;
        assert_eq!(run.status, "completed", "{tenant}: {:?}", run.error);
        id
    }

    /// What Landlord records of the tenant's `service` connection (what
    /// the application reads back): database or collection, and options.
    pub async fn connection(&self, tenant: &str, service: &str) -> (String, serde_json::Value) {
        sqlx::query_as::<_, (String, Option<sqlx::types::Json<serde_json::Value>>)>(
            "SELECT c.db_name, c.options FROM tenant_connections c
             JOIN tenants t ON t.id = c.tenant_id WHERE t.name = $1 AND c.service = $2",
        )
        .bind(tenant)
        .bind(service)
        .fetch_one(&self.pool)
        .await
        .map(|(db, opts)| (db, opts.map(|o| o.0).unwrap_or_default()))
        .expect("the tenant's connection")
    }

    pub fn key(&self, name: &str) -> TenantKey {
        TenantKey::parse(name).expect("test tenant key")
    }

    pub fn db_name(&self, tenant: &str) -> String {
        format!("{}_{tenant}", self.prefix)
    }

    pub async fn start(&self, tenant: &str) -> Started {
        self.start_with(tenant, &ProvisionParams::default()).await
    }

    pub async fn start_with(&self, tenant: &str, params: &ProvisionParams) -> Started {
        start_provision(&self.pool, &self.cfg, &self.key(tenant), params, None)
            .await
            .expect("start provision")
    }

    /// An in-process worker with this environment's config.
    pub async fn spawn_worker(&self) -> Worker {
        self.spawn_worker_with(&[]).await
    }

    /// An in-process worker with some variables changed (say, no faults).
    pub async fn spawn_worker_with(&self, overrides: &[(&str, &str)]) -> Worker {
        let mut vars = self.vars.clone();
        for (k, v) in overrides {
            vars.insert((*k).to_owned(), (*v).to_owned());
        }
        let cfg = Config::from_lookup(|k| vars.get(k).cloned()).expect("worker config");
        let engine = landlord_worker::runner::build_engine(cfg)
            .await
            .expect("engine");
        let (stop, stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(landlord_worker::runner::run_worker(engine, async move {
            let _ = stopped.await;
        }));
        Worker {
            stop: Some(stop),
            handle: Some(handle),
        }
    }

    pub async fn wait_finished(&self, run_id: Uuid, timeout: Duration) -> Run {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let run = store::run_by_id(&self.pool, run_id)
                .await
                .unwrap()
                .expect("run exists");
            if run.is_finished() {
                return run;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "run {run_id} still {} after {timeout:?}: {:#?}",
                run.status,
                self.steps(run_id).await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn steps(&self, run_id: Uuid) -> Vec<StepRow> {
        store::steps_of_run(&self.pool, run_id).await.unwrap()
    }

    pub async fn step(&self, run_id: Uuid, name: &str) -> StepRow {
        self.steps(run_id)
            .await
            .into_iter()
            .find(|s| s.name == name)
            .expect("step exists")
    }

    pub async fn tenant_status(&self, tenant: &str) -> Option<String> {
        store::tenant_by_name(&self.pool, tenant)
            .await
            .unwrap()
            .map(|t| t.status.to_string())
    }

    pub async fn database_exists(&self, tenant: &str) -> bool {
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(self.db_name(tenant))
            .fetch_one(&self.admin)
            .await
            .unwrap()
    }

    /// Databases and roles on the cluster named for the tenant (a prefix
    /// match): `(1, 1)` means nothing was duplicated.
    pub async fn databases_and_roles(&self, tenant: &str) -> (i64, i64) {
        let like = format!("{}\\_{tenant}%", self.prefix);
        sqlx::query_as(
            "SELECT (SELECT count(*) FROM pg_database WHERE datname LIKE $1),
                    (SELECT count(*) FROM pg_roles WHERE rolname LIKE $1)",
        )
        .bind(&like)
        .fetch_one(&self.admin)
        .await
        .unwrap()
    }

    /// Schemas named for the tenant in the pooled database (seed 002): 0
    /// when the pool itself does not exist, 1 for a pooled tenant.
    pub async fn schemas_in_pool(&self, tenant: &str) -> i64 {
        let opts = admin_url()
            .parse::<sqlx::postgres::PgConnectOptions>()
            .unwrap()
            .database(&format!("{}_pool", self.prefix));
        let Ok(mut conn) = <sqlx::PgConnection as sqlx::Connection>::connect_with(&opts).await
        else {
            return 0;
        };
        let found = sqlx::query_scalar("SELECT count(*) FROM pg_namespace WHERE nspname LIKE $1")
            .bind(format!("tenant\\_{tenant}%"))
            .fetch_one(&mut conn)
            .await
            .unwrap();
        sqlx::Connection::close(conn).await.unwrap();
        found
    }

    /// A real `landlord worker` process with some variables changed, its
    /// log in `log`; killed when dropped.
    pub fn worker_process(
        &self,
        vars: &[(&str, &str)],
        log: &std::path::Path,
    ) -> tokio::process::Child {
        self.landlord()
            .arg("worker")
            .envs(vars.iter().copied())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn landlord worker")
    }

    pub async fn role_exists(&self, tenant: &str) -> bool {
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
            .bind(self.db_name(tenant))
            .fetch_one(&self.admin)
            .await
            .unwrap()
    }

    pub fn folder_exists(&self, tenant: &str) -> bool {
        self.storage.path().join(tenant).exists()
    }

    /// A `SELECT count(*) …` without parameters, on the master DB.
    pub async fn count_all(&self, sql: &'static str) -> i64 {
        sqlx::query_scalar(sql).fetch_one(&self.pool).await.unwrap()
    }

    pub async fn count(&self, sql: &'static str, run_or_tenant: impl ToString) -> i64 {
        sqlx::query_scalar(sql)
            .bind(run_or_tenant.to_string())
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    /// Jobs apalis holds for this run, as (position, direction, status, attempts).
    pub async fn jobs_of(&self, run_id: Uuid) -> Vec<(i32, String, String, i32)> {
        sqlx::query_as(
            "SELECT (j->>'position')::int, j->>'direction', status, attempts
             FROM (SELECT convert_from(job, 'UTF8')::jsonb AS j, status, attempts, run_at FROM apalis.jobs) q
             WHERE j->>'run_id' = $1 ORDER BY run_at",
        )
        .bind(run_id.to_string())
        .fetch_all(&self.pool)
        .await
        .unwrap()
    }

    /// The run's jobs once apalis has acknowledged all of them: the last
    /// handler commits the run's outcome a moment before its ack. Fails if a
    /// job stays unfinished (stuck `Running`).
    pub async fn settled_jobs(&self, run_id: Uuid) -> Vec<(i32, String, String, i32)> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let jobs = self.jobs_of(run_id).await;
            if jobs.iter().all(|j| j.2 == "Done") {
                return jobs;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "jobs never settled: {jobs:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Runs `landlord {args}` with these variables added, to its end: exit
    /// code, stdout, stderr.
    pub async fn run(
        &self,
        args: &[&str],
        extra: &[(&str, &str)],
    ) -> (Option<i32>, String, String) {
        let out = self
            .landlord()
            .args(args)
            .envs(extra.iter().copied())
            .output()
            .await
            .expect("run landlord");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// A `landlord` command that sees this environment's variables only:
    /// the test process's own (the stack's addresses, say) must not leak in.
    pub fn landlord(&self) -> tokio::process::Command {
        let bin = landlord_bin();
        let mut cmd = tokio::process::Command::new(bin);
        cmd.env_clear().envs(&self.vars);
        for keep in ["PATH", "HOME", "RUST_LOG", "RUST_BACKTRACE"] {
            if let Ok(v) = std::env::var(keep) {
                cmd.env(keep, v);
            }
        }
        cmd
    }
}

pub struct Worker {
    stop: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Worker {
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(handle) = self.handle.take() {
            handle
                .await
                .expect("worker task")
                .expect("worker ran cleanly");
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Some(handle) = &self.handle {
            handle.abort();
        }
    }
}

/// A real `landlord api` process on a free port; killed on drop.
pub struct ApiProcess {
    pub url: String,
    pub child: tokio::process::Child,
}

impl ApiProcess {
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

pub async fn spawn_api(env: &TestEnv) -> ApiProcess {
    spawn_api_with(env, &[]).await
}

/// `landlord api` with some variables added (JWT issuer, say); returns
/// once /healthz answers.
pub async fn spawn_api_with(env: &TestEnv, extra: &[(&str, &str)]) -> ApiProcess {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let child = env
        .landlord()
        .args(["api", "--bind", &format!("127.0.0.1:{port}")])
        .envs(extra.iter().copied())
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn landlord api");
    let url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !http
        .get(format!("{url}/healthz"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "landlord api never answered /healthz"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    ApiProcess { url, child }
}

/// A new API token with one permission, made by `landlord tokens create`.
pub async fn create_token(env: &TestEnv, permission: &str) -> String {
    create_token_with(env, &[permission]).await
}

/// A new API token with these permissions.
pub async fn create_token_with(env: &TestEnv, permissions: &[&str]) -> String {
    let out = env
        .landlord()
        .args([
            "tokens",
            "create",
            "--name",
            &format!("test-{}", random_suffix(6)),
        ])
        .args(permissions.iter().flat_map(|p| ["--permission", p]))
        .output()
        .await
        .expect("landlord tokens create");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Polls `done` until it holds; fails the test after `secs`, naming `what`.
pub async fn wait_until(what: &str, secs: u64, mut done: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !done().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
