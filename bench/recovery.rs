//! SIGKILL recovery: how long after a worker process dies mid-step another
//! live worker runs the step again, with the default settings (session
//! sweep 250 ms, poll 500 ms, heartbeat fallback 1 s × 3). Writes the
//! `recovery` section of bench/results.md.
//!
//! Each round: worker A (whose storage step lingers after its work, before
//! its checkpoint) claims a run; worker B, with no fault, is started and
//! given time to register; A is SIGKILLed; the time from the kill to the
//! step's next attempt (its `attempts` going up, polled every 5 ms) is one
//! sample. The run must then complete with the killed attempt counted lost,
//! not against the retry budget.

mod common;
use landlord_testkit::harness;
mod section;

use chrono::Utc;
use common::{machine, pct, spawn_workers_with, stop};
use harness::{TestEnv, wait_until};
use rand::Rng;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

const ROUNDS: usize = 25;

/// One round: milliseconds from SIGKILL to the step's next attempt.
async fn round(env: &TestEnv, i: usize) -> f64 {
    let lingering = [("LANDLORD_FAULTS", "storage:sleep-after:60000")];
    let mut a = spawn_workers_with(env, 1, &lingering).pop().unwrap();
    let run = env.start(&format!("kill{i}")).await.run;
    wait_until("worker A in the storage step", 60, async || {
        env.step(run.id, "storage").await.status == "running"
    })
    .await;
    let b = spawn_workers_with(env, 1, &[]);
    // B registers its queue worker and its session before the kill, which
    // lands at a random point of B's poll and sweep intervals (a fixed
    // delay would put it at the same point every round).
    let pause = 1500 + rand::rng().random_range(0..1000);
    tokio::time::sleep(Duration::from_millis(pause)).await;
    a.start_kill().expect("SIGKILL");
    let killed = Instant::now();
    let _ = a.wait().await;
    // The measurement: polled every 5 ms (wait_until's 25 ms would be most
    // of a fast sample), since the step row keeps its first attempt's start.
    while env.step(run.id, "storage").await.attempts < 2 {
        assert!(
            killed.elapsed() < Duration::from_secs(60),
            "no other attempt of the storage step within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let took = killed.elapsed();
    let done = env.wait_finished(run.id, Duration::from_secs(60)).await;
    assert_eq!(done.status, "completed", "{:?}", done.error);
    let storage = env.step(run.id, "storage").await;
    assert_eq!(
        (storage.attempts, storage.lost_attempts),
        (2, 1),
        "the killed attempt is lost, not counted against retries"
    );
    stop(b).await;
    took.as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    // Master-database steps only: the kill lands in the storage step.
    let env = TestEnv::new(&[("POSTGRES_ADMIN_URL", "")]).await;
    let mut samples = Vec::with_capacity(ROUNDS);
    for i in 0..ROUNDS {
        let took = round(&env, i).await;
        eprintln!("round {i}: step re-ran {took:.0} ms after SIGKILL");
        samples.push(took);
    }
    let max = samples.iter().copied().fold(0.0, f64::max);
    let min = samples.iter().copied().fold(f64::INFINITY, f64::min);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## SIGKILL recovery ({})\n\nMachine: {}. PostgreSQL from deploy/pg.sh, release build, default settings: `LANDLORD_SESSION_SWEEP_MS` 250, `LANDLORD_POLL_INTERVAL_MS` 500, heartbeat fallback 1 s × 3.\n",
        Utc::now().format("%Y-%m-%d %H:%M UTC"),
        machine()
    );
    let _ = writeln!(
        out,
        "{ROUNDS} rounds. Worker A is SIGKILLed in the storage step (after its work, before its checkpoint) while worker B, another process, is idle; time from the kill to the step's next attempt being claimed on B (polled every 5 ms). Every run completed with the killed attempt counted in `lost_attempts` (1), not against `PROVISION_RETRY_ATTEMPTS`.\n"
    );
    out.push_str("| median | p99 | min | max | n |\n|---|---|---|---|---|\n");
    let _ = writeln!(
        out,
        "| {:.0} ms | {:.0} ms | {min:.0} ms | {max:.0} ms | {ROUNDS} |",
        pct(&samples, 0.5),
        pct(&samples, 0.99)
    );
    print!("{out}");
    section::write_section("recovery", &out);
}
