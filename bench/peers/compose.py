"""Builds the `peers` section of bench/results.md: one table with Landlord
and every peer measured in the same `bench/run.sh peers` invocation.

Landlord's row comes from the `engine` and `recovery` sections that the
same invocation has just rewritten; each peer's row and settings paragraph
from the output its run.sh printed (a file per peer, given as
NAME=PATH arguments; a peer whose file holds no row is listed as not run).

  python3 compose.py RESULTS_MD OUT_MD 'MACHINE' NAME=PATH...
"""

import re
import sys


def section(text: str, name: str) -> str:
    m = re.search(rf"<!-- bench:{name} -->(.*?)<!-- /bench:{name} -->", text, re.S)
    if not m:
        raise SystemExit(f"bench/results.md has no {name} section")
    return m.group(1)


def drain_rows(engine: str, heading: str) -> dict:
    """runs/s by worker processes, from the drain table under `heading`."""
    m = re.search(rf"^### Drain throughput, {heading}.*?\n\n(.*?)\n\n", engine, re.M | re.S)
    return dict(re.findall(r"^\| ([12]) \| \d+ \| ([\d.]+) \|$", m.group(1), re.M)) if m else {}


def landlord_rows(results: str) -> list:
    engine = section(results, "engine")
    recovery = section(results, "recovery")
    boundary = re.search(
        r"\| engine overhead per step \(worker clock: [^|]*\) \| ([\d.]+) ms \| ([\d.]+) ms \|",
        engine,
    )
    tenant = drain_rows(engine, r"\d+ queued runs of master-DB-only steps")
    noop = drain_rows(engine, "the peers' shape")
    kills = re.search(
        r"^\| (\d+) ms \| \d+ ms \| \d+ ms \| (\d+) ms \| (\d+) \|$", recovery, re.M
    )
    if not (boundary and len(tenant) == 2 and len(noop) == 2 and kills):
        raise SystemExit("the engine or recovery section lacks a figure")
    med, mx, n = (int(kills.group(i)) for i in (1, 2, 3))
    return [
        f"| Landlord (this commit), tenant steps | {boundary.group(1)} ms / {boundary.group(2)} ms "
        f"| {tenant['1']} runs/s | {tenant['2']} runs/s "
        f"| {med / 1000:.2f} s / {mx / 1000:.2f} s (n={n}, any worker) |",
        f"| Landlord (this commit), the peers' shape | | {noop['1']} runs/s | {noop['2']} runs/s | |",
    ]


def main() -> None:
    results_path, out_path, machine, *peers = sys.argv[1:]
    results = open(results_path).read()
    rows, notes = landlord_rows(results), []
    for arg in peers:
        name, path = arg.split("=", 1)
        text = open(path).read().strip() if path else ""
        lines = text.splitlines()
        peer_rows = [l for l in lines if l.startswith("| ")]
        rest = "\n".join(l for l in lines if not l.startswith("| ")).strip()
        if peer_rows:
            rows.extend(peer_rows)
            notes.append(f"**{name}.** {rest}" if rest else f"**{name}.**")
        else:
            rows.append(f"| {name} | not run | | | |")
            notes.append(f"**{name}**: no result in this run. {rest}".strip())
    out = [
        "## Peer engines side by side (bench/run.sh peers)",
        "",
        f"Machine: {machine}. One invocation: Landlord's engine and recovery "
        "benchmarks, then each peer, one after the other on the same "
        "PostgreSQL of deploy/pg.sh (each peer in a throwaway database of its "
        "own; Restate keeps its own store).",
        "",
        "| engine | step boundary, median / p99 | drain of 300 queued runs, 1 worker process | 2 worker processes | SIGKILL mid-step → the step runs again, median / max |",
        "|---|---|---|---|---|",
        *rows,
        "",
        "Landlord's first row drains runs that do real work (5 steps writing "
        "the master database and the filesystem, 5 skipped); its second, the "
        "peers' shape, drains 10 sequential steps of which 6 are custom steps "
        "whose executor (an HTTP server in the benchmark process) answers at "
        "once, and 4 are the built-in steps every run has (validate, register, "
        "record, activate, which write the tenant's rows and its event). The "
        "peers' 10 steps are no-op functions. Landlord's boundary is the "
        "worker's own time from one step body's end to the next one's start "
        "(`engine` section, from its landlord_step_boundary_seconds "
        "histogram); a peer's is a 10-step workflow's start→complete "
        "divided by 10, which includes its pickup. Landlord's recovery is the "
        "`recovery` section: another, idle worker process takes the step over.",
        "",
        *[n + "\n" for n in notes],
    ]
    open(out_path, "w").write("\n".join(out).rstrip() + "\n")


if __name__ == "__main__":
    main()
