// Peer benchmark: Restate (restate-server + TypeScript SDK, plain JavaScript),
// side by side with bench/engine.rs. Started by run.sh, which installs the npm
// packages, starts a fresh restate-server and passes its addresses in the
// environment.
//
// A "workflow" is one invocation of the service handler Bench/tenSteps: 10
// sequential `ctx.run(name, fn)` steps with a no-op fn, each journaled by
// Restate before the next one starts. The service runs in its own OS
// processes: `bench.mjs service` is a node:cluster primary that forks
// BENCH_WORKERS worker processes sharing one listening port (the primary
// accepts connections and hands them round-robin to the workers), so one
// deployment URI is served by 1 or 2 processes. Measures:
//
// 1. boundary / latency: sequential request-response calls through the
//    ingress (POST /Bench/tenSteps), each awaited; start -> complete is the
//    caller's clock around the call, per step = that / 10.
// 2. drain: with the deployment registered but no service process running,
//    invocations are submitted with /send; then the service is started with 1
//    (resp. 2) worker processes; timed from its start to the last
//    completed_at in sys_invocation (admin SQL API, POST /query).
// 3. SIGKILL recovery: step 5 appends {id, pid, t} to an attempts file and
//    sleeps 3 s; with 2 worker processes, the one whose line appeared is
//    SIGKILLed; the sample is kill -> the step's next attempt line. The killed
//    process is replaced after the takeover.
//
// Subcommands: `driver` (the benchmark), `service` (the cluster primary; its
// workers run the same file). BENCH_SMALL=1 makes N small (smoke check).

import cluster from "node:cluster";
import { fork } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import http2 from "node:http2";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const STEPS = 10;
const SLOW_STEP = 5; // the step that records its attempt and sleeps (recovery)
const SLOW_MS = 3000;
const SMALL = process.env.BENCH_SMALL === "1";
const N_LATENCY = SMALL ? 5 : 30;
const N_DRAIN = SMALL ? 30 : 300;
const N_KILLS = SMALL ? 3 : 20;
const WARMUP = 1;
const SERVICE = "Bench";
const HANDLER = "tenSteps";
const SELF = fileURLToPath(import.meta.url);

const log = (...a) => console.error(...a);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function pct(values, p) {
  // Same rank rule as bench/engine.rs: v[ceil((n-1)*p)].
  const v = [...values].sort((a, b) => a - b);
  return v[Math.ceil((v.length - 1) * p)];
}

function modulesRequire() {
  const dir = process.env.BENCH_MODULES;
  if (!dir) throw new Error("BENCH_MODULES (the npm prefix) is not set");
  return createRequire(path.join(dir, "package.json"));
}

// ------------------------------------------------------------------ service

function loadSdk() {
  // SDK 1.17.2 calls Promise.withResolvers (Node >= 22); node 20 lacks it.
  if (typeof Promise.withResolvers !== "function") {
    Promise.withResolvers = function withResolvers() {
      let resolve, reject;
      const promise = new this((a, b) => {
        resolve = a;
        reject = b;
      });
      return { promise, resolve, reject };
    };
  }
  return modulesRequire()("@restatedev/restate-sdk");
}

function serviceWorker() {
  const restate = loadSdk();
  const attemptsFile = process.env.BENCH_ATTEMPTS_FILE;
  const stats = { pid: process.pid, entered: 0, completed: 0, firstEnter: null, lastDone: null };

  const bench = restate.service({
    name: SERVICE,
    handlers: {
      [HANDLER]: async (ctx, input) => {
        stats.entered += 1;
        if (stats.firstEnter === null) stats.firstEnter = Date.now();
        const slowAt = input && typeof input.slowStep === "number" ? input.slowStep : -1;
        const id = ctx.request().id;
        for (let i = 0; i < STEPS; i++) {
          if (i === slowAt) {
            await ctx.run(`step_${i}`, async () => {
              // Outside Restate's journal: one line per attempt of this step.
              fs.appendFileSync(
                attemptsFile,
                JSON.stringify({ id, step: i, pid: process.pid, t: Date.now() }) + "\n",
              );
              await sleep(SLOW_MS);
              return i;
            });
          } else {
            await ctx.run(`step_${i}`, () => i);
          }
        }
        stats.completed += 1;
        stats.lastDone = Date.now();
        return { steps: STEPS };
      },
    },
  });

  const server = http2.createServer(restate.createEndpointHandler({ services: [bench] }));
  server.listen(Number(process.env.BENCH_SERVICE_PORT), "127.0.0.1", () => {
    process.send({ type: "listening", pid: process.pid });
  });
  process.on("message", (m) => {
    if (m && m.cmd === "stats") process.send({ type: "stats", stats });
  });
}

function servicePrimary() {
  const n = Number(process.env.BENCH_WORKERS || "1");
  const pidFile = process.env.BENCH_PIDFILE;
  const workers = new Map(); // pid -> cluster worker
  let pendingStats = null;

  const forkOne = () => {
    const w = cluster.fork();
    const pid = w.process.pid;
    workers.set(pid, w);
    if (pidFile) fs.appendFileSync(pidFile, `${pid}\n`);
    w.on("message", (m) => {
      if (m.type === "listening") process.send({ type: "listening", pid });
      if (m.type === "stats" && pendingStats) {
        pendingStats.got.push(m.stats);
        if (pendingStats.got.length === pendingStats.want) {
          process.send({ type: "stats", stats: pendingStats.got });
          pendingStats = null;
        }
      }
    });
    w.on("exit", (code, signal) => {
      workers.delete(pid);
      if (process.connected) process.send({ type: "exit", pid, code, signal });
    });
  };

  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    for (const w of workers.values()) w.process.kill("SIGTERM");
    const done = () => (workers.size === 0 ? process.exit(0) : setTimeout(done, 20));
    done();
    setTimeout(() => {
      for (const w of workers.values()) w.process.kill("SIGKILL");
      process.exit(1);
    }, 5000).unref();
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  process.on("disconnect", stop); // the driver is gone

  process.on("message", (m) => {
    if (m.cmd === "fork") forkOne();
    if (m.cmd === "stats") {
      pendingStats = { want: workers.size, got: [] };
      for (const w of workers.values()) w.send({ cmd: "stats" });
    }
  });
  cluster.setupPrimary({ exec: SELF, args: ["service"] });
  for (let i = 0; i < n; i++) forkOne();
}

// ------------------------------------------------------------------- driver

const INGRESS = process.env.BENCH_INGRESS_URL;
const ADMIN = process.env.BENCH_ADMIN_URL;
const RUN_DIR = process.env.BENCH_RUN_DIR;
const PORT = Number(process.env.BENCH_SERVICE_PORT);
const PIDFILE = RUN_DIR && path.join(RUN_DIR, "pids");
const ATTEMPTS = RUN_DIR && path.join(RUN_DIR, "attempts.jsonl");

/** A running `bench.mjs service` (cluster primary) and its worker processes. */
class Service {
  constructor(workers) {
    this.want = workers;
    this.listening = new Set();
    this.exits = [];
    this.waiters = [];
    const out = fs.openSync(path.join(RUN_DIR, "service.log"), "a");
    this.startedAt = Date.now();
    this.proc = fork(SELF, ["service"], {
      env: {
        ...process.env,
        BENCH_WORKERS: String(workers),
        BENCH_PIDFILE: PIDFILE,
        BENCH_ATTEMPTS_FILE: ATTEMPTS,
        RESTATE_LOGGING: "WARN",
      },
      stdio: ["ignore", out, out, "ipc"],
    });
    fs.closeSync(out);
    fs.appendFileSync(PIDFILE, `${this.proc.pid}\n`);
    Service.all.add(this);
    this.proc.on("message", (m) => {
      if (m.type === "listening") this.listening.add(m.pid);
      if (m.type === "exit") {
        this.listening.delete(m.pid);
        this.exits.push(m);
      }
      for (const w of this.waiters.splice(0)) w(m);
    });
    this.proc.on("exit", () => {
      Service.all.delete(this);
      for (const w of this.waiters.splice(0)) w({ type: "primary-exit" });
    });
  }

  next(pred, timeoutMs, what) {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), timeoutMs);
      const check = (m) => {
        if (m && m.type === "primary-exit") {
          clearTimeout(t);
          return reject(new Error(`service primary exited while waiting for ${what}`));
        }
        if (pred(m)) {
          clearTimeout(t);
          resolve(m);
        } else this.waiters.push(check);
      };
      this.waiters.push(check);
    });
  }

  async ready() {
    while (this.listening.size < this.want) {
      await this.next((m) => m.type === "listening", 30000, "service workers to listen");
    }
    return [...this.listening];
  }

  async forkOne() {
    this.proc.send({ cmd: "fork" });
    return (await this.next((m) => m.type === "listening", 30000, "a new worker")).pid;
  }

  async stats() {
    this.proc.send({ cmd: "stats" });
    return (await this.next((m) => m.type === "stats", 10000, "worker stats")).stats;
  }

  waitExit(pid, timeoutMs) {
    if (this.exits.some((e) => e.pid === pid)) return Promise.resolve();
    return this.next((m) => m.type === "exit" && m.pid === pid, timeoutMs, `worker ${pid} to exit`);
  }

  async stop() {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const gone = new Promise((r) => this.proc.once("exit", r));
    this.proc.kill("SIGTERM");
    const t = setTimeout(() => this.kill(), 10000);
    await gone;
    clearTimeout(t);
  }

  kill() {
    for (const pid of this.listening) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {}
    }
    try {
      this.proc.kill("SIGKILL");
    } catch {}
  }
}
Service.all = new Set();

async function http(method, url, body, headers = {}) {
  const res = await fetch(url, {
    method,
    headers: body === undefined ? headers : { "content-type": "application/json", ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${url}: ${res.status} ${text}`);
  return { res, text };
}

async function sql(query) {
  const { text } = await http("POST", `${ADMIN}/query`, { query }, { accept: "application/json" });
  return JSON.parse(text).rows;
}

const idList = (ids) => ids.map((id) => `'${id.replace(/[^A-Za-z0-9_]/g, "")}'`).join(",");

async function measureLatency() {
  const total = [];
  const ids = [];
  for (let i = 0; i < WARMUP + N_LATENCY; i++) {
    const t0 = performance.now();
    const { res, text } = await http("POST", `${INGRESS}/${SERVICE}/${HANDLER}`, {});
    const ms = performance.now() - t0;
    if (JSON.parse(text).steps !== STEPS) throw new Error(`unexpected result ${text}`);
    if (i >= WARMUP) {
      total.push(ms);
      ids.push(res.headers.get("x-restate-id"));
    }
  }
  // The server's own view of the same calls (created_at -> completed_at, ms).
  const rows = await sql(
    `SELECT created_at, completed_at, journal_size FROM sys_invocation WHERE id IN (${idList(ids)})`,
  );
  const server = rows.map((r) => Date.parse(r.completed_at) - Date.parse(r.created_at));
  return { total, server, journalSize: rows[0] && rows[0].journal_size };
}

async function measureDrain(workers) {
  // The deployment stays registered; no service process runs now.
  const ids = [];
  const tSubmit = Date.now();
  for (let i = 0; i < N_DRAIN; i++) {
    const { text } = await http("POST", `${INGRESS}/${SERVICE}/${HANDLER}/send`, {});
    ids.push(JSON.parse(text).invocationId);
  }
  const submitS = (Date.now() - tSubmit) / 1000;
  const inList = idList(ids);
  const [before] = await sql(
    `SELECT count(*) AS n, max(retry_count) AS max_retries, max(next_retry_at) AS last_retry_due` +
      ` FROM sys_invocation WHERE id IN (${inList}) AND status = 'backing-off'`,
  );
  const svc = new Service(workers);
  const t0 = svc.startedAt;
  await svc.ready();
  const listenS = (Date.now() - t0) / 1000;
  const deadline = Date.now() + 600000;
  let done;
  for (;;) {
    [done] = await sql(
      `SELECT count(*) AS n, max(completed_at) AS last FROM sys_invocation` +
        ` WHERE id IN (${inList}) AND status = 'completed'`,
    );
    if (Number(done.n) >= N_DRAIN) break;
    if (Date.now() > deadline) throw new Error(`drain with ${workers} worker(s) within 600 s`);
    if (svc.listening.size < workers) throw new Error("a drain worker died");
    await sleep(500);
  }
  const stats = await svc.stats();
  await svc.stop();
  const drainS = (Date.parse(done.last) - t0) / 1000;
  const firstEnter = Math.min(...stats.filter((s) => s.firstEnter).map((s) => s.firstEnter));
  return {
    runsS: N_DRAIN / drainS,
    drainS,
    submitS,
    listenS,
    firstS: (firstEnter - t0) / 1000,
    backingOff: Number(before.n),
    maxRetries: before.max_retries,
    lastRetryDueS: before.last_retry_due ? (Date.parse(before.last_retry_due) - t0) / 1000 : null,
    split: stats.map((s) => s.completed).sort((a, b) => b - a),
    entered: stats.reduce((a, s) => a + s.entered, 0),
  };
}

function attemptsOf(id) {
  let text = "";
  try {
    text = fs.readFileSync(ATTEMPTS, "utf8");
  } catch {}
  return text
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l))
    .filter((a) => a.id === id && a.step === SLOW_STEP);
}

async function waitAttempts(id, n, timeoutMs, what, check = () => {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const got = attemptsOf(id);
    if (got.length >= n) return got;
    if (Date.now() > deadline) throw new Error(`${what} within ${timeoutMs / 1000} s`);
    check();
    await sleep(5);
  }
}

async function measureKills() {
  const svc = new Service(2);
  const slots = await svc.ready();
  const out = [];
  try {
    for (let round = 0; round < N_KILLS; round++) {
      const { text } = await http("POST", `${INGRESS}/${SERVICE}/${HANDLER}/send`, {
        slowStep: SLOW_STEP,
      });
      const id = JSON.parse(text).invocationId;
      const first = (await waitAttempts(id, 1, 30000, "slow step started"))[0];
      const victim = first.pid;
      if (!slots.includes(victim)) throw new Error(`attempt by unknown pid ${victim}`);
      const survivor = slots.find((p) => p !== victim);
      const tKill = Date.now();
      process.kill(victim, "SIGKILL");
      await svc.waitExit(victim, 10000);
      const got = await waitAttempts(id, 2, 180000, "takeover", () => {
        if (!svc.listening.has(survivor)) throw new Error("surviving worker died");
      });
      const next = got[1];
      const who = next.pid === survivor ? "survivor" : "other";
      // The killed process comes back only now, so the survivor is the one
      // that can take over (as in the other peers' runs).
      slots[slots.indexOf(victim)] = await svc.forkOne();
      const { text: result } = await http(
        "GET",
        `${INGRESS}/restate/invocation/${encodeURIComponent(id)}/attach`,
      );
      if (JSON.parse(result).steps !== STEPS) throw new Error(`unexpected result ${result}`);
      out.push({ recoveryS: (next.t - tKill) / 1000, who });
      log(`  kill ${round + 1}/${N_KILLS}: recovery ${out.at(-1).recoveryS.toFixed(3)} s (${who})`);
    }
    const ids = fs
      .readFileSync(ATTEMPTS, "utf8")
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l).id);
    const rows = await sql(
      `SELECT status, count(*) AS n FROM sys_invocation WHERE id IN (${idList([...new Set(ids)])}) GROUP BY status`,
    );
    return { samples: out, statuses: rows };
  } finally {
    await svc.stop();
  }
}

function whoSummary(samples) {
  const nSurv = samples.filter((s) => s.who === "survivor").length;
  if (nSurv === samples.length) return "surviving worker";
  return `surviving worker ${nSurv}×, other ${samples.length - nSurv}×`;
}

async function driver() {
  for (const k of ["BENCH_INGRESS_URL", "BENCH_ADMIN_URL", "BENCH_RUN_DIR", "BENCH_SERVICE_PORT"]) {
    if (!process.env[k]) throw new Error(`${k} is not set (run.sh sets it)`);
  }
  const req = modulesRequire();
  const sdkVersion = req("@restatedev/restate-sdk/package.json").version;
  const serverVersion = JSON.parse((await http("GET", `${ADMIN}/version`)).text).version;
  const tStart = performance.now();

  log(`latency (1 worker process, ${N_LATENCY} calls) ...`);
  const svc = new Service(1);
  await svc.ready();
  const { text: reg } = await http("POST", `${ADMIN}/deployments`, {
    uri: `http://127.0.0.1:${PORT}`,
  });
  const deployment = JSON.parse(reg);
  const svcMeta = deployment.services.find((s) => s.name === SERVICE);
  const dep = JSON.parse((await http("GET", `${ADMIN}/deployments/${deployment.id}`)).text);
  const protocol = [dep.protocol_type, dep.http_version].filter(Boolean).join(" over ") || "?";
  const lat = await measureLatency();
  await svc.stop();

  log(`drain, 1 worker process (${N_DRAIN} invocations) ...`);
  const d1 = await measureDrain(1);
  log(`  ${d1.drainS.toFixed(2)} s, ${d1.runsS.toFixed(1)} runs/s`);
  log(`drain, 2 worker processes (${N_DRAIN} invocations) ...`);
  const d2 = await measureDrain(2);
  log(`  ${d2.drainS.toFixed(2)} s, ${d2.runsS.toFixed(1)} runs/s, split ${d2.split.join("/")}`);
  log(`SIGKILL recovery (${N_KILLS} kills, 2 worker processes) ...`);
  const kills = await measureKills();
  log(`done in ${((performance.now() - tStart) / 1000).toFixed(0)} s`);

  const perStep = lat.total.map((t) => t / STEPS);
  const rec = kills.samples.map((s) => s.recoveryS);
  const rp = svcMeta.retry_policy;
  const name = `Restate ${serverVersion} (TS SDK ${sdkVersion})`;
  const f1 = (x) => x.toFixed(1);
  const f2 = (x) => x.toFixed(2);
  const drainNote = (d, n) =>
    `${f2(d.drainS)} s with ${n} (all workers listening ${f2(d.listenS)} s after the start, first ` +
    `handler entered at ${f2(d.firstS)} s; at the start ${d.backingOff} of the ${N_DRAIN} were ` +
    `backing off after up to ${d.maxRetries} failed attempts, the last retry due at ` +
    `${d.lastRetryDueS === null ? "—" : f2(d.lastRetryDueS)} s; ${d.entered} handler entries` +
    (n > 1 ? `, completions per worker ${d.split.join("/")}` : "") +
    `; submitting took ${f2(d.submitS)} s)`;
  const statuses = kills.statuses.map((r) => `${r.n} ${r.status}`).join(", ");

  console.log(
    `| ${name} | ${f1(pct(perStep, 0.5))} ms / ${f1(pct(perStep, 0.99))} ms ` +
      `| ${f1(d1.runsS)} runs/s | ${f1(d2.runsS)} runs/s ` +
      `| ${f2(pct(rec, 0.5))} s / ${f2(Math.max(...rec))} s (n=${rec.length}, ${whoSummary(kills.samples)}) |`,
  );
  console.log();
  console.log(
    `Settings: restate-server ${serverVersion} (npm @restatedev/restate-server, its static linux binary), ` +
      `single node with all roles, a fresh --base-dir per run; no Postgres: Restate keeps its log and ` +
      `state in its own RocksDB stores under that dir (default-num-partitions=24, default-replication=1, ` +
      `rocksdb-disable-wal-fsync=false, i.e. the WAL is fsynced). Server settings are the defaults ` +
      `except: ingress/admin/fabric bind addresses on free 127.0.0.1 ports, listen-mode=tcp (no Unix ` +
      `sockets), disable-telemetry=true, log-disable-ansi-codes=true. The service: @restatedev/restate-sdk ` +
      `${sdkVersion} on node ${process.versions.node} (plain ESM JavaScript; a Promise.withResolvers ` +
      `polyfill, since the SDK expects node >= 22), \`restate.service\` ${SERVICE} with handler ${HANDLER}: ` +
      `${STEPS} sequential \`await ctx.run("step_i", () => i)\` (journal of ${lat.journalSize} entries per ` +
      `invocation), served by \`createEndpointHandler\` on a node:http2 server (the deployment reports ${protocol}), ` +
      `RESTATE_LOGGING=WARN; no service, handler or ctx.run options. One deployment ` +
      `(POST /deployments, uri http://127.0.0.1:<port>) whose port is served by a node:cluster primary ` +
      `that forks 1 or 2 worker processes and hands them connections round-robin, as a load balancer in ` +
      `front of replicas would (Restate pins each service revision to one deployment and sends new ` +
      `invocations to the latest one, so two deployments of the same service would not share work; ` +
      `node 20 has no SO_REUSEPORT). Defaults that apply (as reported by the deployment): ` +
      `inactivity_timeout=${svcMeta.inactivity_timeout}, abort_timeout=${svcMeta.abort_timeout}, retry policy ` +
      `initial_interval=${rp.initial_interval}, exponentiation_factor=${rp.exponentiation_factor}, ` +
      `max_interval=${rp.max_interval}, max_attempts=${rp.max_attempts}, on_max_attempts=${rp.on_max_attempts}; ` +
      `invoker concurrent-invocations-limit=1000, http2-streams-per-connection-limit=128, connect-timeout=10s. ` +
      `Boundary: ${N_LATENCY} sequential request-response calls POST /${SERVICE}/${HANDLER} to the ingress ` +
      `(+${WARMUP} warm-up not counted) with 1 worker process; start→complete is the caller's clock around ` +
      `the call, per step = /${STEPS}; p99 is the rank ceil((n-1)·0.99) as in bench/engine.rs. Whole ` +
      `call median ${f1(pct(lat.total, 0.5))} ms, p99 ${f1(pct(lat.total, 0.99))} ms; the server's own ` +
      `created_at→completed_at (sys_invocation, ms resolution) median ${pct(lat.server, 0.5)} ms. ` +
      `Drain: ${N_DRAIN} invocations submitted one by one with POST /${SERVICE}/${HANDLER}/send while the ` +
      `deployment was registered but no service process ran (each attempt fails to connect, so they back ` +
      `off under the retry policy), then the service started with 1 (resp. 2) worker processes; timed from ` +
      `its start (fork of the primary) to the last completed_at in sys_invocation (admin POST /query, ` +
      `polled every 0.5 s): ${drainNote(d1, "1")}; ${drainNote(d2, "2")}. Restate pushes ` +
      `invocations to the deployment and does not notice that it is back: each backing-off invocation ` +
      `is retried only when its retry timer fires, so much of the drain window is those timers running ` +
      `out, which a second worker process cannot shorten (and the ${os.cpus().length} cores are shared ` +
      `by restate-server, the worker processes and the driver). ` +
      `Recovery: the handler called with {"slowStep": ${SLOW_STEP}} appends {invocation id, pid, ` +
      `Date.now()} to a file inside ctx.run step ${SLOW_STEP} and then sleeps ${SLOW_MS / 1000} s there; ` +
      `two worker processes serve the deployment; once the line appears (polled every 5 ms) the worker ` +
      `that wrote it is SIGKILLed, and the sample is kill → the step's next attempt line. The killed ` +
      `worker is replaced (a new fork) only after that line appears, so the surviving worker is the one ` +
      `that can take over; each invocation is then awaited to completion (GET ` +
      `/restate/invocation/<id>/attach; final statuses: ${statuses}). The kill closes the HTTP/2 ` +
      `connection at once, so Restate does not wait for the inactivity timeout: it retries after the ` +
      `retry policy's first interval, replays steps 0–${SLOW_STEP - 1} from the journal, and reruns ` +
      `step ${SLOW_STEP}.`,
  );
}

// --------------------------------------------------------------------- main

async function main() {
  const cmd = process.argv[2];
  if (cmd === "service") {
    if (cluster.isPrimary) servicePrimary();
    else serviceWorker();
    return;
  }
  if (cmd !== "driver") {
    log("usage: bench.mjs driver|service (run by bench/peers/restate/run.sh)");
    process.exit(2);
  }
  const cleanup = () => {
    for (const s of Service.all) s.kill();
  };
  process.on("exit", cleanup);
  for (const sig of ["SIGTERM", "SIGINT"]) {
    process.on(sig, () => process.exit(sig === "SIGTERM" ? 143 : 130));
  }
  try {
    await driver();
    process.exit(0);
  } catch (e) {
    log(e && e.stack ? e.stack : e);
    process.exit(1);
  }
}

main();
