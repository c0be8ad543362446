//! A custom-step executor process for the tests (tests/executor/executor.py)
//! and an environment whose plans call it.

use crate::harness::{ApiProcess, TestEnv, Worker, spawn_api};
use landlord_shared::model::ProvisionParams;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::AsyncBufReadExt;
use tokio::process::Child;

pub const WAIT: Duration = Duration::from_secs(90);

/// The executor process: its base URL, its state folder, the process.
pub struct Executor {
    pub url: String,
    pub port: u16,
    state: PathBuf,
    pub child: Child,
}

pub async fn start_executor(state: &Path, port: u16) -> Executor {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/executor/executor.py");
    let mut child = tokio::process::Command::new("python3")
        .arg(script)
        .arg(state)
        .env("PORT", port.to_string())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn the executor");
    let stdout = child.stdout.take().expect("executor stdout");
    let mut line = String::new();
    tokio::io::BufReader::new(stdout)
        .read_line(&mut line)
        .await
        .expect("the executor prints its port");
    let port: u16 = line.trim().parse().expect("a port");
    Executor {
        url: format!("http://127.0.0.1:{port}"),
        port,
        state: state.to_owned(),
        child,
    }
}

impl Executor {
    /// Every line of its log: calls, and its callbacks' answers.
    pub fn log(&self) -> Vec<Value> {
        std::fs::read_to_string(self.state.join("log.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("a log line"))
            .collect()
    }

    pub fn calls(&self, path: &str, tenant: &str) -> Vec<Value> {
        self.log()
            .into_iter()
            .filter(|e| e["path"] == path && e["tenant"] == tenant)
            .collect()
    }
}

/// An environment on Postgres alone whose catalogue is `text` (with
/// `{ex}` standing for the executor's URL), an API to take callbacks, and
/// a worker that tells executors where that is.
pub async fn custom_env(
    dir: &tempfile::TempDir,
    text: &str,
    ex: &Executor,
    worker: &[(&str, &str)],
) -> (TestEnv, ApiProcess, Worker) {
    let env = TestEnv::with_catalogue(dir, &text.replace("{ex}", &ex.url), false).await;
    let api = spawn_api(&env).await;
    let mut vars = vec![("LANDLORD_CALLBACK_URL", api.url.as_str())];
    vars.extend_from_slice(worker);
    let worker = env.spawn_worker_with(&vars).await;
    (env, api, worker)
}

pub fn plan(name: &str) -> ProvisionParams {
    ProvisionParams {
        plan: Some(name.into()),
        ..Default::default()
    }
}
