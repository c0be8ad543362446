//! What every benchmark here shares: percentiles, table rows, worker
//! processes and the machine's description.

#![allow(dead_code)] // each benchmark binary uses a part

use crate::harness::TestEnv;
use chrono::{DateTime, Utc};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::Child;

pub fn ms(a: DateTime<Utc>, b: DateTime<Utc>) -> f64 {
    (b - a).num_microseconds().unwrap_or(0) as f64 / 1000.0
}

pub fn pct(values: &[f64], p: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::NAN;
    }
    v[((v.len() - 1) as f64 * p).ceil() as usize]
}

pub fn row(name: &str, values: &[f64], unit: &str) -> String {
    format!(
        "| {name} | {:.1} {unit} | {:.1} {unit} | {} |\n",
        pct(values, 0.5),
        pct(values, 0.99),
        values.len()
    )
}

/// The product's defaults where the test harness sets quicker ones: a
/// benchmark measures what an operator gets.
pub const DEFAULTS: [(&str, &str); 4] = [
    ("LANDLORD_POLL_INTERVAL_MS", "500"),
    ("PROVISION_RETRY_DELAY_MS", "1500"),
    ("LANDLORD_HEARTBEAT_MS", "1000"),
    ("LANDLORD_MISSED_HEARTBEATS", "3"),
];

/// `n` worker processes with the defaults, then `vars`.
pub fn spawn_workers_with(env: &TestEnv, n: usize, vars: &[(&str, &str)]) -> Vec<Child> {
    (0..n)
        .map(|_| {
            env.landlord()
                .arg("worker")
                .envs(DEFAULTS.iter().copied())
                .envs(vars.iter().copied())
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .expect("spawn worker")
        })
        .collect()
}

/// Peak resident set of a live process, from /proc (VmHWM), in MiB.
pub fn peak_rss_mib(child: &Child) -> f64 {
    let pid = child.id().expect("live worker");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// SIGTERM first, so a worker exporting spans flushes them; SIGKILL if it
/// does not stop within 10 s.
pub async fn stop(mut workers: Vec<Child>) {
    for w in &mut workers {
        if let Some(pid) = w.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        if tokio::time::timeout(Duration::from_secs(10), w.wait())
            .await
            .is_err()
        {
            let _ = w.start_kill();
            let _ = w.wait().await;
        }
    }
}

pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_default();
    let mem = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cores} cores ({cpu}), {mem}")
}
