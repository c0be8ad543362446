"""Peer benchmark: DBOS Transact Python, side by side with bench/engine.rs.

A workflow of 10 no-op steps (each step's output checkpointed by DBOS as
usual), on a Postgres system database of its own. Two measures:

1. latency: sequential workflows, each started with DBOS.start_workflow and
   awaited with handle.get_result(): start -> complete, and per step (/10).
2. drain: workflows enqueued on a DBOS queue while no worker listens to it,
   then a DBOS process that listens is launched; timed from the DBOS.launch()
   call to the last workflow's completion (its updated_at in the system DB).

Run through run.sh, which sets BENCH_PG_URL and BENCH_DB_NAME. BENCH_SMALL=1
makes N small (latency 5, drain 30) to check that the script works.
`bench.py --drop NAME` drops a bench database (used by run.sh's trap).
"""

import importlib.metadata
import os
import re
import signal
import sys
import time

import psycopg
import sqlalchemy as sa

STEPS = 10
SMALL = os.environ.get("BENCH_SMALL") == "1"
N_LATENCY = 5 if SMALL else 30
N_DRAIN = 30 if SMALL else 300
WARMUP = 1  # one workflow run before the latency sample, not counted
QUEUE = "bench_drain"
DB_NAME_RE = re.compile(r"^dbos_bench_[a-z0-9_]+$")


def server_url() -> sa.URL:
    url = os.environ.get(
        "BENCH_PG_URL", "postgres://postgres:landlord@127.0.0.1:54329/postgres"
    )
    u = sa.make_url(url.replace("postgres://", "postgresql://", 1))
    return u.set(drivername="postgresql")


def admin_conn() -> psycopg.Connection:
    # Connects to the URL's own database only to CREATE/DROP the bench one.
    u = server_url()
    return psycopg.connect(
        u.render_as_string(hide_password=False), autocommit=True
    )


def create_db(name: str) -> None:
    assert DB_NAME_RE.match(name), name
    with admin_conn() as c:
        c.execute(f'CREATE DATABASE "{name}"')


def drop_db(name: str) -> None:
    # Only ever a database this benchmark named.
    if not DB_NAME_RE.match(name):
        raise SystemExit(f"refusing to drop {name!r}: not a bench database")
    with admin_conn() as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if len(sys.argv) == 3 and sys.argv[1] == "--drop":
    drop_db(sys.argv[2])
    sys.exit(0)

from dbos import DBOS, DBOSConfig  # noqa: E402  (after --drop, which needs no DBOS)


# The 10 steps: no-ops that return at once; DBOS checkpoints each output.
@DBOS.step()
def step_0() -> None:
    return None


@DBOS.step()
def step_1() -> None:
    return None


@DBOS.step()
def step_2() -> None:
    return None


@DBOS.step()
def step_3() -> None:
    return None


@DBOS.step()
def step_4() -> None:
    return None


@DBOS.step()
def step_5() -> None:
    return None


@DBOS.step()
def step_6() -> None:
    return None


@DBOS.step()
def step_7() -> None:
    return None


@DBOS.step()
def step_8() -> None:
    return None


@DBOS.step()
def step_9() -> None:
    return None


NOOP_STEPS = [step_0, step_1, step_2, step_3, step_4, step_5, step_6, step_7, step_8, step_9]


@DBOS.workflow()
def ten_steps() -> int:
    for s in NOOP_STEPS:
        s()
    return len(NOOP_STEPS)


def pct(values, p):
    # Same rank rule as bench/engine.rs: v[ceil((n-1)*p)].
    v = sorted(values)
    return v[int(-(-((len(v) - 1) * p) // 1))]


def main() -> None:
    db = os.environ.get("BENCH_DB_NAME") or f"dbos_bench_{os.getpid()}_{int(time.time())}"
    sys_url = server_url().set(database=db).render_as_string(hide_password=False)
    config: DBOSConfig = {"name": "dbos_peer_bench", "system_database_url": sys_url}
    create_db(db)
    try:
        run(config)
    finally:
        if DBOS_LAUNCHED[0]:
            DBOS.destroy()
        drop_db(db)


DBOS_LAUNCHED = [False]


def run(config: "DBOSConfig") -> None:
    # Phase 1: latency. This process listens to no user queue, so workflows
    # enqueued below wait in the database until phase 2's worker starts.
    DBOS(config=config)
    DBOS.listen_queues([])
    DBOS.launch()
    DBOS_LAUNCHED[0] = True

    for _ in range(WARMUP):
        assert DBOS.start_workflow(ten_steps).get_result() == STEPS
    lat = []
    for _ in range(N_LATENCY):
        t0 = time.perf_counter()
        h = DBOS.start_workflow(ten_steps)
        assert h.get_result() == STEPS
        lat.append((time.perf_counter() - t0) * 1000.0)

    # Phase 2: drain. Register the queue with DBOS's defaults and enqueue.
    queue = DBOS.register_queue(QUEUE)
    poll = queue.polling_interval_sec
    ids = [queue.enqueue(ten_steps).workflow_id for _ in range(N_DRAIN)]
    DBOS.destroy()
    DBOS_LAUNCHED[0] = False

    # Start the worker: a DBOS instance that listens to every queue.
    DBOS(config=config)
    t_launch_ms = time.time() * 1000.0
    t0 = time.perf_counter()
    DBOS.launch()
    DBOS_LAUNCHED[0] = True
    launch_s = time.perf_counter() - t0
    for wid in ids:
        assert DBOS.retrieve_workflow(wid, existing_workflow=True).get_result() == STEPS
    statuses = DBOS.list_workflows(
        queue_name=QUEUE, load_input=False, load_output=False
    )
    assert len(statuses) == N_DRAIN and all(s.status == "SUCCESS" for s in statuses)
    t_done_ms = max(s.updated_at for s in statuses)
    first_deq = [s.dequeued_at for s in statuses if getattr(s, "dequeued_at", None)]
    drain_s = (t_done_ms - t_launch_ms) / 1000.0
    runs_s = N_DRAIN / drain_s

    version = importlib.metadata.version("dbos")
    med, p99 = pct(lat, 0.5), pct(lat, 0.99)
    # One row of bench/run.sh peers' side-by-side table: per step median /
    # p99, drain with 1 and 2 worker processes, SIGKILL recovery (this
    # bench runs one process and kills none).
    print(
        f"| DBOS Python {version} | {med / STEPS:.2f} ms / {p99 / STEPS:.2f} ms "
        f"| {runs_s:.1f} runs/s | — | — |"
    )
    print()
    first = (
        f"; first dequeue {(min(first_deq) - t_launch_ms) / 1000.0:.2f} s after launch()"
        if first_deq
        else ""
    )
    print(
        f"Settings: DBOS defaults, Postgres system database (its own throwaway DB), "
        f"use_listen_notify default, executor thread pool unbounded (max_executor_threads unset), "
        f"sys_db_pool_size default (20 in 3.4.0). Latency: {N_LATENCY} sequential workflows of {STEPS} no-op steps "
        f"(+{WARMUP} warm-up not counted), DBOS.start_workflow → handle.get_result() in-process; "
        f"p99 is the rank ceil((n-1)·0.99) as in bench/engine.rs. Drain: {N_DRAIN} workflows enqueued "
        f"on DBOS.register_queue('{QUEUE}') with defaults (no concurrency limits, "
        f"polling_interval_sec={poll:g} s, the DBOS default) while no worker listened, then timed "
        f"from the DBOS.launch() call of a listening process to the last workflow's updated_at: "
        f"{drain_s:.2f} s (launch() itself {launch_s:.2f} s{first}). One process, one executor; "
        f"start→complete {med:.1f} ms median, {p99:.1f} ms p99."
    )


if __name__ == "__main__":
    # SIGTERM runs the cleanup (destroy, drop database) like Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    main()
