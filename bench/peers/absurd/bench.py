"""Peer benchmark: Absurd (Python SDK `absurd-sdk`), side by side with bench/engine.rs.

A task ("workflow") of 10 sequential no-op steps, each a `ctx.step(name, fn)`
whose result Absurd checkpoints (absurd.set_task_checkpoint_state). Workers
are separate OS processes (`bench.py worker QUEUE [CLAIM_TIMEOUT]`) running
the SDK's synchronous `Absurd.start_worker()` with its defaults. Measures:

1. boundary / latency: sequential tasks spawned on a queue served by one
   worker process and awaited with `await_task_result`; start -> complete is
   read from Absurd's tables (t_<queue>.enqueue_at -> r_<queue>.completed_at
   of the last run), per step = that / 10.
2. drain: tasks spawned while no worker runs, then worker processes are
   started; timed from their start (Popen) to the last run's completed_at.
   Once with 1 worker process, once with 2, each on a fresh queue.
3. SIGKILL recovery: step 5 records its start in the table `attempts` of the
   bench database, then sleeps. With two worker processes on a queue, the one
   whose row appeared is SIGKILLed; the sample is kill -> the next attempt
   row of that step. The killed worker is restarted after the takeover.

Subcommands: `create NAME`, `url NAME`, `drop NAME` (used by run.sh),
`run` (the benchmark; needs BENCH_DB_URL), `worker QUEUE [CLAIM_TIMEOUT]`.
BENCH_SMALL=1 makes N small to check that the script works.
"""

import importlib.metadata
import inspect
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse

import psycopg
from psycopg import sql

STEPS = 10
SLOW_STEP = 5  # the step that records its attempt and sleeps (recovery)
SLOW_S = 3.0
SMALL = os.environ.get("BENCH_SMALL") == "1"
N_LATENCY = 5 if SMALL else 30
N_DRAIN = 30 if SMALL else 300
N_KILLS_DEFAULT = int(os.environ.get("BENCH_DEFAULT_KILLS", "1" if SMALL else "3"))
N_KILLS_TUNED = 3 if SMALL else 20
TUNED_CLAIM_TIMEOUT = int(os.environ.get("BENCH_TUNED_CLAIM_TIMEOUT", "5"))
WARMUP = 1  # one task before the latency sample, not counted
TASK = "ten_steps"
DB_NAME_RE = re.compile(r"^absurd_bench_[a-z0-9_]+$")


def log(*a) -> None:
    print(*a, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- databases


def server_url() -> str:
    url = os.environ.get(
        "BENCH_PG_URL", "postgres://postgres:landlord@127.0.0.1:54329/postgres"
    )
    return url.replace("postgres://", "postgresql://", 1)


def db_url(name: str) -> str:
    assert DB_NAME_RE.match(name), name
    u = urllib.parse.urlsplit(server_url())
    return urllib.parse.urlunsplit(u._replace(path="/" + name))


def admin(statement: str) -> None:
    # Connects to the URL's own database only to CREATE/DROP the bench one.
    with psycopg.connect(server_url(), autocommit=True) as c:
        c.execute(statement)


def create_db(name: str) -> None:
    assert DB_NAME_RE.match(name), name
    admin(f'CREATE DATABASE "{name}"')


def drop_db(name: str) -> None:
    # Only ever a database this benchmark named.
    if not DB_NAME_RE.match(name):
        raise SystemExit(f"refusing to drop {name!r}: not a bench database")
    admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pct(values, p):
    # Same rank rule as bench/engine.rs: v[ceil((n-1)*p)].
    v = sorted(values)
    return v[int(-(-((len(v) - 1) * p) // 1))]


# ------------------------------------------------------------------- worker


def worker_main(queue: str, claim_timeout: "int | None") -> None:
    from absurd_sdk import Absurd

    url = os.environ["BENCH_DB_URL"]
    app = Absurd(url, queue_name=queue)
    side = psycopg.connect(url, autocommit=True)  # for the attempts table only
    # start_worker's own default worker_id; it is also runs.claimed_by.
    worker_id = f"{socket.gethostname()}:{os.getpid()}"

    def noop():
        return None

    def slow(task_id: str, step: int):
        side.execute(
            "INSERT INTO attempts (workflow_id, step, worker_id, pid) VALUES (%s, %s, %s, %s)",
            (str(task_id), step, worker_id, os.getpid()),
        )
        time.sleep(SLOW_S)
        return None

    @app.register_task(TASK)
    def ten_steps(params, ctx):
        slow_at = (params or {}).get("slow_step")
        for i in range(STEPS):
            if i == slow_at:
                ctx.step(f"step_{i}", lambda: slow(ctx.task_id, i))
            else:
                ctx.step(f"step_{i}", noop)
        return STEPS

    # Defaults (claim_timeout, concurrency, batch_size, poll_interval) unless
    # a tuned claim_timeout is given.
    kw = {} if claim_timeout is None else {"claim_timeout": claim_timeout}
    app.start_worker(**kw)


class Workers:
    """Worker processes started by this benchmark; stopped by pid only."""

    def __init__(self) -> None:
        self.procs: "list[subprocess.Popen]" = []
        self.lock = threading.Lock()

    def start(self, queue: str, claim_timeout: "int | None" = None) -> subprocess.Popen:
        cmd = [sys.executable, os.path.abspath(__file__), "worker", queue]
        if claim_timeout is not None:
            cmd.append(str(claim_timeout))
        p = subprocess.Popen(cmd, stdout=sys.stderr, stdin=subprocess.DEVNULL)
        with self.lock:
            self.procs.append(p)
        return p

    def stop(self, procs) -> None:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def stop_all(self) -> None:
        with self.lock:
            procs = list(self.procs)
        self.stop(procs)


WORKERS = Workers()


# ---------------------------------------------------------------- measures


def q_ident(prefix: str, queue: str) -> sql.Composed:
    return sql.SQL("absurd.{}").format(sql.Identifier(prefix + queue))


def measure_latency(url: str) -> dict:
    from absurd_sdk import Absurd

    queue = "latency"
    app = Absurd(url, queue_name=queue)
    app.create_queue(queue)
    w = WORKERS.start(queue)
    conn = psycopg.connect(url, autocommit=True)
    q = sql.SQL(
        "SELECT t.enqueue_at, r.started_at, r.completed_at, t.attempts"
        " FROM {t} t JOIN {r} r ON r.run_id = t.last_attempt_run WHERE t.task_id = %s"
    ).format(t=q_ident("t_", queue), r=q_ident("r_", queue))
    total, pickup, run = [], [], []
    for i in range(WARMUP + N_LATENCY):
        spawned = app.spawn(TASK, {}, queue=queue)
        snap = app.await_task_result(spawned["task_id"], timeout=60, queue_name=queue)
        assert snap.state == "completed" and snap.result == STEPS, snap
        enq, started, done, attempts = conn.execute(q, (spawned["task_id"],)).fetchone()
        assert attempts == 1
        if i >= WARMUP:
            total.append((done - enq).total_seconds() * 1000.0)
            pickup.append((started - enq).total_seconds() * 1000.0)
            run.append((done - started).total_seconds() * 1000.0)
    WORKERS.stop([w])
    app.close()
    conn.close()
    return {"total": total, "pickup": pickup, "run": run}


def measure_drain(url: str, queue: str, nproc: int) -> dict:
    from absurd_sdk import Absurd

    app = Absurd(url, queue_name=queue)
    app.create_queue(queue)
    for _ in range(N_DRAIN):
        app.spawn(TASK, {}, queue=queue)
    app.close()
    conn = psycopg.connect(url, autocommit=True)
    count = sql.SQL("SELECT count(*) FILTER (WHERE state = 'completed') FROM {t}").format(
        t=q_ident("t_", queue)
    )
    assert conn.execute(count).fetchone()[0] == 0
    t0 = time.time()
    procs = [WORKERS.start(queue) for _ in range(nproc)]
    deadline = time.monotonic() + 600
    while conn.execute(count).fetchone()[0] < N_DRAIN:
        assert time.monotonic() < deadline, f"drain of {queue} within 600 s"
        assert all(p.poll() is None for p in procs), "a drain worker died"
        time.sleep(0.2)
    WORKERS.stop(procs)
    first, last, n_runs, n_workers = conn.execute(
        sql.SQL(
            "SELECT min(started_at), max(completed_at), count(*), count(DISTINCT claimed_by) FROM {r}"
        ).format(r=q_ident("r_", queue))
    ).fetchone()
    conn.close()
    assert n_runs == N_DRAIN, f"{n_runs} runs for {N_DRAIN} tasks (retries?)"
    drain_s = last.timestamp() - t0
    return {
        "runs_s": N_DRAIN / drain_s,
        "drain_s": drain_s,
        "first_claim_s": first.timestamp() - t0,
        "workers_used": n_workers,
    }


def kill_rounds(url: str, queue: str, claim_timeout: "int | None", rounds: int, out: list) -> None:
    """Rounds of: spawn a slow task, SIGKILL the worker running its slow step,
    time the kill -> the step's next attempt row. Appends dicts to out."""
    from absurd_sdk import Absurd

    app = Absurd(url, queue_name=queue)
    app.create_queue(queue)
    conn = psycopg.connect(url, autocommit=True)
    slots = [WORKERS.start(queue, claim_timeout) for _ in range(2)]
    lease = claim_timeout if claim_timeout is not None else default_claim_timeout()
    rows = (
        "SELECT pid, started_at FROM attempts WHERE workflow_id = %s AND step = %s"
        " ORDER BY started_at"
    )
    claim_q = sql.SQL(
        "SELECT r.claim_expires_at FROM {r} r WHERE r.task_id = %s AND r.attempt = 1"
    ).format(r=q_ident("r_", queue))
    try:
        for _ in range(rounds):
            task_id = str(app.spawn(TASK, {"slow_step": SLOW_STEP}, queue=queue)["task_id"])
            deadline = time.monotonic() + 30
            while not (got := conn.execute(rows, (task_id, SLOW_STEP)).fetchall()):
                assert time.monotonic() < deadline, "slow step started within 30 s"
                time.sleep(0.005)
            pid = got[0][0]
            victim = next(i for i, p in enumerate(slots) if p.pid == pid)
            t_kill = time.time()
            os.kill(pid, signal.SIGKILL)
            slots[victim].wait()
            survivor = slots[1 - victim]
            deadline = time.monotonic() + lease + 60
            while len(got := conn.execute(rows, (task_id, SLOW_STEP)).fetchall()) < 2:
                assert time.monotonic() < deadline, f"takeover within {lease + 60} s"
                assert survivor.poll() is None, "surviving worker died"
                time.sleep(0.05)
            taker_pid, t_next = got[1]
            who = "survivor" if taker_pid == survivor.pid else "other"
            # The killed worker comes back only now, so the survivor is the one
            # that can take over.
            slots[victim] = WORKERS.start(queue, claim_timeout)
            expires = conn.execute(claim_q, (task_id,)).fetchone()[0]
            deadline = time.monotonic() + 60
            while (snap := app.fetch_task_result(task_id, queue_name=queue)).state != "completed":
                assert snap.state in ("pending", "running", "sleeping"), snap
                assert time.monotonic() < deadline, "task completed within 60 s"
                time.sleep(0.05)
            assert snap.result == STEPS, snap
            out.append(
                {
                    "recovery_s": t_next.timestamp() - t_kill,
                    "lease_left_s": expires.timestamp() - t_kill,
                    "who": who,
                }
            )
            log(f"  kill on {queue}: recovery {out[-1]['recovery_s']:.2f} s ({who})")
    finally:
        WORKERS.stop(slots)
        app.close()
        conn.close()


def default_claim_timeout() -> int:
    from absurd_sdk import Absurd

    return inspect.signature(Absurd.start_worker).parameters["claim_timeout"].default


def measure_kills_default(url: str) -> list:
    # Each default-settings kill waits out a full lease, so they run at the
    # same time, each on its own queue with its own two worker processes.
    out: list = []
    errors: list = []

    def one(i: int) -> None:
        try:
            kill_rounds(url, f"kill_default_{i}", None, 1, out)
        except BaseException as e:  # noqa: BLE001 (re-raised below)
            errors.append(e)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(N_KILLS_DEFAULT)]
    for t in threads:
        t.start()
        time.sleep(0.5)  # stagger the starts a little
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return out


def who_summary(samples: list) -> str:
    n_surv = sum(1 for s in samples if s["who"] == "survivor")
    if n_surv == len(samples):
        return "surviving worker"
    return f"surviving worker {n_surv}×, other {len(samples) - n_surv}×"


def run() -> None:
    url = os.environ["BENCH_DB_URL"]
    from absurd_sdk import Absurd

    with psycopg.connect(url, autocommit=True) as c:
        c.execute(
            "CREATE TABLE attempts (workflow_id text NOT NULL, step int NOT NULL,"
            " worker_id text NOT NULL, pid int NOT NULL,"
            " started_at timestamptz NOT NULL DEFAULT clock_timestamp())"
        )
        schema_version = c.execute("SELECT absurd.get_schema_version()").fetchone()[0]
    version = importlib.metadata.version("absurd-sdk")
    ctl_version = importlib.metadata.version("absurdctl")
    sw = inspect.signature(Absurd.start_worker).parameters
    d_claim = sw["claim_timeout"].default
    d_conc = sw["concurrency"].default
    d_poll = sw["poll_interval"].default
    d_batch = sw["batch_size"].default
    d_attempts = inspect.signature(Absurd.__init__).parameters["default_max_attempts"].default

    t_start = time.monotonic()
    log("latency ...")
    lat = measure_latency(url)
    log("drain, 1 worker process ...")
    d1 = measure_drain(url, "drain_1", 1)
    log("drain, 2 worker processes ...")
    d2 = measure_drain(url, "drain_2", 2)
    log(f"SIGKILL recovery, defaults ({N_KILLS_DEFAULT} kills at once, ~{d_claim} s) ...")
    kd = measure_kills_default(url)
    log(f"SIGKILL recovery, claim_timeout={TUNED_CLAIM_TIMEOUT} s ({N_KILLS_TUNED} kills) ...")
    kt: list = []
    kill_rounds(url, "kill_tuned", TUNED_CLAIM_TIMEOUT, N_KILLS_TUNED, kt)
    log(f"done in {time.monotonic() - t_start:.0f} s")

    per_step = [t / STEPS for t in lat["total"]]
    rd = [s["recovery_s"] for s in kd]
    rt = [s["recovery_s"] for s in kt]
    ld = [s["lease_left_s"] for s in kd]
    lt = [s["lease_left_s"] for s in kt]
    name = f"Absurd {version}"
    kills_default = (
        f"{len(kd)} default kills, run at the same time on separate queues (two workers each) "
        f"to wait out one lease instead of {len(kd)}"
        if len(kd) > 1
        else "1 default kill"
    )
    print(
        f"| {name} | {pct(per_step, 0.5):.1f} ms / {pct(per_step, 0.99):.1f} ms "
        f"| {d1['runs_s']:.1f} runs/s | {d2['runs_s']:.1f} runs/s "
        f"| {pct(rd, 0.5):.1f} s / {max(rd):.1f} s (n={len(rd)}, {who_summary(kd)}) |"
    )
    print(
        f"| {name}, tuned: claim_timeout={TUNED_CLAIM_TIMEOUT} s | — | — | — "
        f"| {pct(rt, 0.5):.2f} s / {max(rt):.2f} s (n={len(rt)}, {who_summary(kt)}) |"
    )
    print()
    print(
        f"Settings: absurd-sdk {version} (the synchronous `Absurd` client and `start_worker`), schema "
        f"{schema_version} installed by `absurdctl init` (absurdctl {ctl_version}, its bundled SQL) into a "
        f"throwaway database; unpartitioned queues made with `create_queue` defaults. Worker defaults: "
        f"claim_timeout={d_claim} s, concurrency={d_conc} (so batch_size={d_batch or d_conc}), "
        f"poll_interval={d_poll} s when a claim finds nothing; spawn defaults: max_attempts={d_attempts}, "
        f"no retry_strategy (a failed run is retried at once). Workers are separate processes (`bench.py worker`). "
        f"Each of the {STEPS} steps is `ctx.step(name, fn)` with a no-op fn: a checkpoint lookup and an "
        f"`absurd.set_task_checkpoint_state` call (which also extends the claim). "
        f"Boundary: {N_LATENCY} sequential tasks (+{WARMUP} warm-up not counted), each spawned and awaited "
        f"with `await_task_result` while one worker process runs; start→complete is t_.enqueue_at → the run's "
        f"completed_at in Absurd's tables, per step = /{STEPS}; p99 is the rank ceil((n-1)·0.99) as in "
        f"bench/engine.rs. Whole task median {pct(lat['total'], 0.5):.1f} ms, p99 {pct(lat['total'], 0.99):.1f} ms, "
        f"of which the wait to be claimed (the idle worker's {d_poll} s poll) median {pct(lat['pickup'], 0.5):.1f} ms; "
        f"claim→complete alone is {pct(lat['run'], 0.5) / STEPS:.2f} ms per step (median). "
        f"Drain: {N_DRAIN} tasks spawned on a fresh queue while no worker ran, then 1 (resp. 2) worker "
        f"processes started; timed from their start to the last run's completed_at: "
        f"{d1['drain_s']:.2f} s (first claim {d1['first_claim_s']:.2f} s after start) and "
        f"{d2['drain_s']:.2f} s (first claim {d2['first_claim_s']:.2f} s, {d2['workers_used']} workers claimed). "
        f"Recovery: step {SLOW_STEP} inserts (workflow_id, step, worker_id, pid, started_at = clock_timestamp()) "
        f"into `attempts` and sleeps {SLOW_S:g} s; two worker processes serve the queue; once the row "
        f"appears (polled every 5 ms) the worker that wrote it is SIGKILLed, and the sample is kill → the step's "
        f"next attempt row. The killed worker is restarted only after that row appears, so the surviving "
        f"worker is the one that takes over: its first `claim_task` after the claim expires fails the run "
        f"($ClaimTimeout) and queues the retry at once, but stamped with fail_run's own clock, a moment "
        f"after that claim's, so the retry is claimed by the next poll ({d_poll} s later). The lease still "
        f"left at the kill was median {pct(ld, 0.5):.1f} s with the default claim_timeout ({d_claim} s from "
        f"the last checkpoint), so the default figure is that lease, not detection: {kills_default}. "
        f"Tuned row: the same with claim_timeout={TUNED_CLAIM_TIMEOUT} s on the workers (a whole number of "
        f"seconds with a margin over the {SLOW_S:g} s step, which sends no heartbeat), {len(kt)} kills one "
        f"after the other, lease left at the kill median {pct(lt, 0.5):.2f} s; claim_timeout does not enter "
        f"the boundary or drain paths, which were not rerun for it (—)."
    )


def main() -> None:
    args = sys.argv[1:]
    if len(args) == 2 and args[0] == "create":
        create_db(args[1])
    elif len(args) == 2 and args[0] == "drop":
        drop_db(args[1])
    elif len(args) == 2 and args[0] == "url":
        print(db_url(args[1]))
    elif len(args) in (2, 3) and args[0] == "worker":
        worker_main(args[1], int(args[2]) if len(args) == 3 else None)
    elif args == ["run"]:
        # SIGTERM runs the cleanup (stop the workers) like Ctrl-C does.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        try:
            run()
        finally:
            WORKERS.stop_all()
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
