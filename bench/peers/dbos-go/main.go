// Peer benchmark: DBOS Transact Go, side by side with bench/engine.rs and
// bench/peers/dbos (DBOS Transact Python).
//
// A workflow of 10 no-op steps (each step's output checkpointed by DBOS as
// usual), on a Postgres system database of its own. Three measures:
//
//  1. latency: sequential workflows started in-process with dbos.RunWorkflow
//     and awaited with handle.GetResult(): start -> complete, and per step (/10).
//  2. drain: workflows enqueued on a DBOS queue while no worker listens to it,
//     then worker processes (this binary, `worker` subcommand) are started;
//     timed from their spawn to the last workflow's updated_at in the system
//     database. Once with 1 worker process, once (on a fresh queue) with 2.
//  3. recovery: a workflow whose step 5 records its start in a table and
//     sleeps; its worker process is SIGKILLed during that sleep and a new one
//     is started; timed from the kill to the next recorded start of step 5.
//     (a) the new process has the killed one's executor ID (both the DBOS
//     default); (b) it has another one, and another executor is running.
//
// Run through run.sh, which sets BENCH_PG_URL and BENCH_DB_NAME and builds
// the binary. BENCH_SMALL=1 makes N small (a smoke check). Subcommands:
//
//	bench run            the benchmark (the default); markdown on stdout
//	bench drop NAME      drop a bench database (used by run.sh's trap)
//	bench worker -queue Q [-executor ID]   a DBOS worker process (internal)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/dbos-inc/dbos-transact-golang/dbos"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

const (
	appName       = "dbos_go_peer_bench"
	steps         = 10
	warmup        = 1 // one workflow before the latency sample, not counted
	slowStep      = 5 // the step of the recovery workflow that sleeps
	slowSleep     = 3 * time.Second
	recoverWait   = 30 * time.Second // (b): how long to wait for a take-over
	drainTimeout  = 5 * time.Minute
	orchestrator  = "bench-main" // executor ID of the process that runs the bench
	noQueue       = "bench_orchestrator_listens_to_none"
	drainQueue1   = "bench_drain_1"
	drainQueue2   = "bench_drain_2"
	recoveryQueue = "bench_recovery"
	modulePath    = "github.com/dbos-inc/dbos-transact-golang"
)

var (
	small       = os.Getenv("BENCH_SMALL") == "1"
	nLatency    = pick(5, 30)
	nDrain      = pick(30, 300)
	nKillsSame  = pick(3, 20)
	nKillsOther = pick(1, 3)
	dbNameRE    = regexp.MustCompile(`^dbosgo_bench_[a-z0-9_]+$`)
	stepNames   [steps]string
	logger      *slog.Logger

	// Worker-process state used by the recovery workflow's slow step.
	attemptsPool     *pgxpool.Pool
	workerExecutorID string
)

func pick(smallN, fullN int) int {
	if small {
		return smallN
	}
	return fullN
}

func init() {
	for i := range steps {
		stepNames[i] = fmt.Sprintf("step_%d", i)
	}
	level := slog.LevelWarn
	if os.Getenv("BENCH_VERBOSE") == "1" {
		level = slog.LevelInfo
	}
	// DBOS logs to stdout by default; stdout is for the markdown only.
	logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	// These would override the executor IDs and the application version this
	// benchmark sets or relies on.
	os.Unsetenv("DBOS__VMID")
	os.Unsetenv("DBOS__APPVERSION")
}

// ---------------------------------------------------------------- workflows

func noop(context.Context) (int, error) { return 0, nil }

// tenSteps is the workload of every peer: 10 sequential no-op steps.
func tenSteps(ctx dbos.Context, _ int) (int, error) {
	for i := range steps {
		if _, err := dbos.RunAsStep(ctx, noop, dbos.WithStepName(stepNames[i])); err != nil {
			return 0, err
		}
	}
	return steps, nil
}

// slowWorkflow is tenSteps with step 5 recording each attempt's start in the
// attempts table, then sleeping slowSleep.
func slowWorkflow(ctx dbos.Context, _ int) (int, error) {
	wfID, err := ctx.GetWorkflowID()
	if err != nil {
		return 0, err
	}
	slow := func(sctx context.Context) (int, error) {
		started := time.Now()
		if attemptsPool == nil {
			return 0, errors.New("slow step outside a worker process")
		}
		if _, err := attemptsPool.Exec(sctx,
			`INSERT INTO attempts (workflow_id, step, started_at, executor_id, pid) VALUES ($1, $2, $3, $4, $5)`,
			wfID, slowStep, started, workerExecutorID, os.Getpid()); err != nil {
			return 0, err
		}
		select {
		case <-time.After(slowSleep):
			return 0, nil
		case <-sctx.Done():
			return 0, sctx.Err()
		}
	}
	for i := range steps {
		fn := noop
		if i == slowStep {
			fn = slow
		}
		if _, err := dbos.RunAsStep(ctx, fn, dbos.WithStepName(stepNames[i])); err != nil {
			return 0, err
		}
	}
	return steps, nil
}

// newDBOS builds a DBOS context with the defaults plus the logger; an empty
// executorID leaves the DBOS default ("local").
func newDBOS(dbURL, executorID string) (dbos.Context, error) {
	cfg := dbos.Config{AppName: appName, DatabaseURL: dbURL, Logger: logger}
	if executorID != "" {
		cfg.ExecutorID = executorID
	}
	ctx, err := dbos.NewContext(context.Background(), cfg)
	if err != nil {
		return nil, err
	}
	dbos.RegisterWorkflow(ctx, tenSteps)
	dbos.RegisterWorkflow(ctx, slowWorkflow)
	return ctx, nil
}

// ---------------------------------------------------------------- database

func serverURL() string {
	if u := os.Getenv("BENCH_PG_URL"); u != "" {
		return u
	}
	return "postgres://postgres:landlord@127.0.0.1:54329/postgres"
}

func dbURLFor(name string) (string, error) {
	u, err := url.Parse(serverURL())
	if err != nil {
		return "", fmt.Errorf("BENCH_PG_URL: %w", err)
	}
	u.Path = "/" + name
	u.RawPath = ""
	return u.String(), nil
}

// adminExec runs one statement on the server URL's own database (only to
// CREATE/DROP the bench database).
func adminExec(sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, serverURL())
	if err != nil {
		return err
	}
	defer c.Close(context.Background())
	_, err = c.Exec(ctx, sql)
	return err
}

func createDB(name string) error {
	if !dbNameRE.MatchString(name) {
		return fmt.Errorf("refusing to create %q: not a bench database name", name)
	}
	return adminExec(fmt.Sprintf(`CREATE DATABASE "%s"`, name))
}

func dropDB(name string) error {
	// Only ever a database this benchmark named.
	if !dbNameRE.MatchString(name) {
		return fmt.Errorf("refusing to drop %q: not a bench database", name)
	}
	return adminExec(fmt.Sprintf(`DROP DATABASE IF EXISTS "%s" WITH (FORCE)`, name))
}

// ---------------------------------------------------------------- worker

func workerMain(args []string) error {
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	queue := fs.String("queue", "", "the queue to listen to")
	executor := fs.String("executor", "", "executor ID (empty: the DBOS default)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	dbURL := os.Getenv("BENCH_DB_URL")
	if dbURL == "" || *queue == "" {
		return errors.New("worker needs BENCH_DB_URL and -queue")
	}
	pool, err := pgxpool.New(context.Background(), dbURL) // connects lazily
	if err != nil {
		return err
	}
	defer pool.Close()
	attemptsPool = pool

	ctx, err := newDBOS(dbURL, *executor)
	if err != nil {
		return err
	}
	workerExecutorID = ctx.GetExecutorID()
	dbos.ListenQueues(ctx, *queue)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	if err := dbos.Launch(ctx); err != nil {
		return err
	}
	// The orchestrator reads this line to know the worker is up.
	fmt.Printf("ready %d %s %s\n", time.Now().UnixMicro(), workerExecutorID, ctx.GetApplicationVersion())
	<-sigs
	return dbos.Shutdown(ctx, 5*time.Second)
}

// ---------------------------------------------------------------- processes

type worker struct {
	name    string
	cmd     *exec.Cmd
	spawned time.Time
	ready   chan time.Time // the worker's clock when Launch returned
	eof     chan struct{}  // its stdout closed (it exited)
	once    sync.Once
}

var (
	liveMu sync.Mutex
	live   = map[*worker]bool{}
)

func spawnWorker(dbURL, queue, executor string) (*worker, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	args := []string{"worker", "-queue", queue}
	if executor != "" {
		args = append(args, "-executor", executor)
	}
	cmd := exec.Command(self, args...)
	cmd.Env = append(os.Environ(), "BENCH_DB_URL="+dbURL)
	cmd.Stderr = os.Stderr
	// If this process dies, so do its workers.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	name := executor
	if name == "" {
		name = "(default executor)"
	}
	w := &worker{name: name, cmd: cmd, ready: make(chan time.Time, 1), eof: make(chan struct{})}
	w.spawned = time.Now()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	liveMu.Lock()
	live[w] = true
	liveMu.Unlock()
	go func() {
		defer close(w.eof)
		buf := make([]byte, 4096)
		var acc strings.Builder
		for {
			n, err := out.Read(buf)
			acc.Write(buf[:n])
			for {
				s := acc.String()
				i := strings.IndexByte(s, '\n')
				if i < 0 {
					break
				}
				line := s[:i]
				acc.Reset()
				acc.WriteString(s[i+1:])
				f := strings.Fields(line)
				if len(f) >= 2 && f[0] == "ready" {
					if us, perr := strconv.ParseInt(f[1], 10, 64); perr == nil {
						w.ready <- time.UnixMicro(us)
					}
				}
			}
			if err != nil {
				return
			}
		}
	}()
	return w, nil
}

func (w *worker) waitReady(timeout time.Duration) (time.Time, error) {
	select {
	case t := <-w.ready:
		return t, nil
	case <-w.eof:
		return time.Time{}, fmt.Errorf("worker %s exited before it was ready", w.name)
	case <-time.After(timeout):
		return time.Time{}, fmt.Errorf("worker %s not ready within %s", w.name, timeout)
	}
}

// stop sends sig, waits for the process to exit (SIGKILL after 10 s) and
// reaps it.
func (w *worker) stop(sig syscall.Signal) {
	w.once.Do(func() {
		_ = w.cmd.Process.Signal(sig)
		select {
		case <-w.eof:
		case <-time.After(10 * time.Second):
			_ = w.cmd.Process.Kill()
			<-w.eof
		}
		_ = w.cmd.Wait()
		liveMu.Lock()
		delete(live, w)
		liveMu.Unlock()
	})
}

// sigkill kills the worker and returns the time right after the kill.
func (w *worker) sigkill() time.Time {
	_ = w.cmd.Process.Signal(syscall.SIGKILL)
	t := time.Now()
	w.stop(syscall.SIGKILL)
	return t
}

func killAll() {
	liveMu.Lock()
	ws := make([]*worker, 0, len(live))
	for w := range live {
		ws = append(ws, w)
	}
	liveMu.Unlock()
	for _, w := range ws {
		w.stop(syscall.SIGKILL)
	}
}

// ---------------------------------------------------------------- helpers

func pct(values []float64, p float64) float64 {
	// Same rank rule as bench/engine.rs: v[ceil((n-1)*p)].
	v := slices.Clone(values)
	slices.Sort(v)
	return v[int(math.Ceil(float64(len(v)-1)*p))]
}

func progress(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "[dbos-go] "+format+"\n", a...)
}

func dbosVersion() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, d := range info.Deps {
			if d.Path == modulePath {
				return strings.TrimPrefix(d.Version, "v")
			}
		}
	}
	return "unknown"
}

// attemptsOf returns the recorded starts of step 5 of a workflow, oldest first.
func attemptsOf(ctx context.Context, pool *pgxpool.Pool, wfID string) ([]time.Time, []string, error) {
	rows, err := pool.Query(ctx, `SELECT started_at, executor_id FROM attempts WHERE workflow_id = $1 AND step = $2 ORDER BY started_at`, wfID, slowStep)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	var ts []time.Time
	var ex []string
	for rows.Next() {
		var t time.Time
		var e string
		if err := rows.Scan(&t, &e); err != nil {
			return nil, nil, err
		}
		ts = append(ts, t)
		ex = append(ex, e)
	}
	return ts, ex, rows.Err()
}

// waitAttempts polls until wfID has at least n recorded attempts.
func waitAttempts(pool *pgxpool.Pool, wfID string, n int, timeout time.Duration) ([]time.Time, []string, error) {
	deadline := time.Now().Add(timeout)
	for {
		ts, ex, err := attemptsOf(context.Background(), pool, wfID)
		if err != nil {
			return nil, nil, err
		}
		if len(ts) >= n {
			return ts, ex, nil
		}
		if time.Now().After(deadline) {
			return ts, ex, errTimeout
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var errTimeout = errors.New("timeout")

func waitStatus(pool *pgxpool.Pool, wfID, want string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		var st string
		err := pool.QueryRow(context.Background(), `SELECT status FROM dbos.workflow_status WHERE workflow_uuid = $1`, wfID).Scan(&st)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if st == want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("workflow %s: status %q, not %s after %s", wfID, st, want, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func secs(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

func wholeSecs(d time.Duration) string { return fmt.Sprintf("%.0f s", d.Seconds()) }

// ---------------------------------------------------------------- bench

type drainResult struct {
	runsPerS   float64
	drain      time.Duration   // spawn -> last updated_at
	ready      []time.Duration // spawn -> each worker's Launch returned
	firstDeq   time.Duration   // spawn -> first started_at (dequeue)
	perExec    map[string]int
	execOrder  []string
	appVersion string
}

func drain(dctx dbos.Context, pool *pgxpool.Pool, dbURL, queue string, nWorkers int) (*drainResult, error) {
	q, err := dbos.RegisterQueue(dctx, queue) // DBOS defaults
	if err != nil {
		return nil, err
	}
	prefix := queue + "-"
	for i := range nDrain {
		if _, err := dbos.RunWorkflow(dctx, tenSteps, 0, dbos.WithQueue(q), dbos.WithWorkflowID(fmt.Sprintf("%s%04d", prefix, i))); err != nil {
			return nil, err
		}
	}
	var ws []*worker
	defer func() {
		for _, w := range ws {
			w.stop(syscall.SIGTERM)
		}
	}()
	t0 := time.Now()
	for k := 1; k <= nWorkers; k++ {
		w, err := spawnWorker(dbURL, queue, fmt.Sprintf("%s-w%d", strings.TrimPrefix(queue, "bench_"), k))
		if err != nil {
			return nil, err
		}
		ws = append(ws, w)
	}
	res := &drainResult{perExec: map[string]int{}}
	for _, w := range ws {
		t, err := w.waitReady(2 * time.Minute)
		if err != nil {
			return nil, err
		}
		res.ready = append(res.ready, t.Sub(t0))
	}
	deadline := time.Now().Add(drainTimeout)
	for {
		var done int
		if err := pool.QueryRow(context.Background(),
			`SELECT count(*) FROM dbos.workflow_status WHERE workflow_uuid LIKE $1 || '%' AND status = 'SUCCESS'`,
			prefix).Scan(&done); err != nil {
			return nil, err
		}
		if done == nDrain {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("drain of %s: %d of %d done after %s", queue, done, nDrain, drainTimeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
	st, err := dbos.ListWorkflows(dctx, dbos.WithFilterWorkflowIDPrefix(prefix),
		dbos.WithFilterLoadInput(false), dbos.WithFilterLoadOutput(false))
	if err != nil {
		return nil, err
	}
	if len(st) != nDrain {
		return nil, fmt.Errorf("drain of %s: listed %d workflows, want %d", queue, len(st), nDrain)
	}
	var last, first time.Time
	for _, s := range st {
		if s.Status != dbos.WorkflowStatusSuccess {
			return nil, fmt.Errorf("workflow %s: %s", s.ID, s.Status)
		}
		if s.UpdatedAt.After(last) {
			last = s.UpdatedAt
		}
		if !s.StartedAt.IsZero() && (first.IsZero() || s.StartedAt.Before(first)) {
			first = s.StartedAt
		}
		if res.perExec[s.ExecutorID] == 0 {
			res.execOrder = append(res.execOrder, s.ExecutorID)
		}
		res.perExec[s.ExecutorID]++
		res.appVersion = s.ApplicationVersion
	}
	for k := 1; k <= nWorkers; k++ { // list idle workers too
		id := fmt.Sprintf("%s-w%d", strings.TrimPrefix(queue, "bench_"), k)
		if _, ok := res.perExec[id]; !ok {
			res.perExec[id] = 0
			res.execOrder = append(res.execOrder, id)
		}
	}
	slices.Sort(res.execOrder)
	res.drain = last.Sub(t0)
	res.firstDeq = first.Sub(t0)
	res.runsPerS = float64(nDrain) / res.drain.Seconds()
	return res, nil
}

type killResult struct {
	recovery  time.Duration // kill -> next attempt of step 5
	newReady  time.Duration // kill -> the new process's Launch returned
	recovered bool
}

// killSame: the killed process and its replacement both leave the executor
// ID to the DBOS default.
func killSame(dctx dbos.Context, q dbos.Queue, pool *pgxpool.Pool, dbURL string, i int) (*killResult, error) {
	wfID := fmt.Sprintf("rec-same-%02d", i)
	if _, err := dbos.RunWorkflow(dctx, slowWorkflow, 0, dbos.WithQueue(q), dbos.WithWorkflowID(wfID)); err != nil {
		return nil, err
	}
	victim, err := spawnWorker(dbURL, recoveryQueue, "")
	if err != nil {
		return nil, err
	}
	defer victim.stop(syscall.SIGKILL)
	if _, _, err := waitAttempts(pool, wfID, 1, 60*time.Second); err != nil {
		return nil, fmt.Errorf("%s: first attempt: %w", wfID, err)
	}
	tKill := victim.sigkill()
	next, err := spawnWorker(dbURL, recoveryQueue, "")
	if err != nil {
		return nil, err
	}
	defer next.stop(syscall.SIGTERM)
	res := &killResult{}
	ts, _, err := waitAttempts(pool, wfID, 2, 60*time.Second)
	if err != nil {
		return nil, fmt.Errorf("%s: no attempt after the kill: %w", wfID, err)
	}
	res.recovered = true
	res.recovery = ts[1].Sub(tKill)
	if t, err := next.waitReady(time.Second); err == nil {
		res.newReady = t.Sub(tKill)
	}
	// Let the recovered run finish and check it.
	if err := waitStatus(pool, wfID, "SUCCESS", slowSleep+30*time.Second); err != nil {
		return nil, err
	}
	ts, _, err = attemptsOf(context.Background(), pool, wfID)
	if err != nil {
		return nil, err
	}
	if len(ts) != 2 {
		return nil, fmt.Errorf("%s: %d attempts of step %d, want 2", wfID, len(ts), slowStep)
	}
	stepsDone, err := dbos.GetWorkflowSteps(dctx, wfID)
	if err != nil {
		return nil, err
	}
	if len(stepsDone) != steps {
		return nil, fmt.Errorf("%s: %d steps recorded, want %d", wfID, len(stepsDone), steps)
	}
	return res, nil
}

type otherResult struct {
	killResult
	resumed time.Duration // after the wait: ResumeWorkflow -> next attempt
	by      string        // executor that ran the resumed attempt
	stuck   bool          // after the wait: still PENDING under the victim's executor ID
}

// killOther: the killed process has its own executor ID; another executor is
// running and listening to the queue, and a new process with a third
// executor ID is started after the kill.
func killOther(dctx dbos.Context, q dbos.Queue, pool *pgxpool.Pool, dbURL string, i int) (*otherResult, error) {
	wfID := fmt.Sprintf("rec-other-%02d", i)
	if _, err := dbos.RunWorkflow(dctx, slowWorkflow, 0, dbos.WithQueue(q), dbos.WithWorkflowID(wfID)); err != nil {
		return nil, err
	}
	victim, err := spawnWorker(dbURL, recoveryQueue, fmt.Sprintf("rec-other-%02d-victim", i))
	if err != nil {
		return nil, err
	}
	defer victim.stop(syscall.SIGKILL)
	if _, _, err := waitAttempts(pool, wfID, 1, 60*time.Second); err != nil {
		return nil, fmt.Errorf("%s: first attempt: %w", wfID, err)
	}
	// Another executor, up and listening before the kill.
	running, err := spawnWorker(dbURL, recoveryQueue, fmt.Sprintf("rec-other-%02d-running", i))
	if err != nil {
		return nil, err
	}
	defer running.stop(syscall.SIGTERM)
	if _, err := running.waitReady(slowSleep / 2); err != nil {
		return nil, err
	}
	tKill := victim.sigkill()
	next, err := spawnWorker(dbURL, recoveryQueue, fmt.Sprintf("rec-other-%02d-new", i))
	if err != nil {
		return nil, err
	}
	defer next.stop(syscall.SIGTERM)
	res := &otherResult{}
	ts, _, err := waitAttempts(pool, wfID, 2, recoverWait)
	switch {
	case err == nil:
		res.recovered = true
		res.recovery = ts[1].Sub(tKill)
		return res, nil
	case !errors.Is(err, errTimeout):
		return nil, err
	}
	var st, ex0 string
	if err := pool.QueryRow(context.Background(), `SELECT status, executor_id FROM dbos.workflow_status WHERE workflow_uuid = $1`, wfID).Scan(&st, &ex0); err != nil {
		return nil, err
	}
	res.stuck = st == "PENDING" && ex0 == victim.name
	progress("%s after %s: status %s, executor %s", wfID, recoverWait, st, ex0)
	// Not taken over: what a person can do, resume it by hand onto the queue.
	tResume := time.Now()
	if _, err := dbos.ResumeWorkflow[int](dctx, wfID, dbos.WithResumeQueue(recoveryQueue)); err != nil {
		return nil, fmt.Errorf("%s: ResumeWorkflow: %w", wfID, err)
	}
	ts, ex, err := waitAttempts(pool, wfID, 2, recoverWait)
	if err != nil {
		progress("%s: no attempt within %s of ResumeWorkflow either", wfID, recoverWait)
		return res, nil
	}
	res.resumed = ts[1].Sub(tResume)
	res.by = ex[1]
	return res, nil
}

func run() error {
	db := os.Getenv("BENCH_DB_NAME")
	if db == "" {
		db = fmt.Sprintf("dbosgo_bench_%d_%d", time.Now().Unix(), os.Getpid())
	}
	dbURL, err := dbURLFor(db)
	if err != nil {
		return err
	}
	if err := createDB(db); err != nil {
		return err
	}
	var dctx dbos.Context
	var pool *pgxpool.Pool
	var cleanupOnce sync.Once
	cleanup := func() {
		cleanupOnce.Do(func() {
			killAll()
			if dctx != nil {
				if err := dbos.Shutdown(dctx, 5*time.Second); err != nil {
					progress("shutdown: %v", err)
				}
			}
			if pool != nil {
				pool.Close()
			}
			if err := dropDB(db); err != nil {
				progress("drop %s: %v", db, err)
			}
		})
	}
	defer cleanup()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		s := <-sigs
		progress("%v: cleaning up", s)
		cleanup()
		os.Exit(128 + int(s.(syscall.Signal)))
	}()

	pool, err = pgxpool.New(context.Background(), dbURL)
	if err != nil {
		return err
	}
	if _, err := pool.Exec(context.Background(), `CREATE TABLE attempts (
		id bigserial PRIMARY KEY, workflow_id text NOT NULL, step int NOT NULL,
		started_at timestamptz NOT NULL, executor_id text NOT NULL, pid int NOT NULL)`); err != nil {
		return err
	}

	// The orchestrator: runs the latency workflows itself and enqueues the
	// rest; it listens to no user queue (only DBOS's internal one).
	dctx, err = newDBOS(dbURL, orchestrator)
	if err != nil {
		return err
	}
	dbos.ListenQueues(dctx, noQueue)
	if err := dbos.Launch(dctx); err != nil {
		return err
	}
	appVersion := dctx.GetApplicationVersion()

	// 1. Latency.
	progress("latency: %d workflows (+%d warm-up)", nLatency, warmup)
	runOne := func() (time.Duration, error) {
		t0 := time.Now()
		h, err := dbos.RunWorkflow(dctx, tenSteps, 0)
		if err != nil {
			return 0, err
		}
		n, err := h.GetResult()
		if err != nil {
			return 0, err
		}
		if n != steps {
			return 0, fmt.Errorf("workflow returned %d", n)
		}
		return time.Since(t0), nil
	}
	for range warmup {
		if _, err := runOne(); err != nil {
			return err
		}
	}
	var lat []float64 // ms
	for range nLatency {
		d, err := runOne()
		if err != nil {
			return err
		}
		lat = append(lat, float64(d.Microseconds())/1000.0)
	}
	perStep := make([]float64, len(lat))
	for i, v := range lat {
		perStep[i] = v / steps
	}

	// 2. Drain, 1 then 2 worker processes, each on a fresh queue.
	progress("drain: %d workflows, 1 worker process", nDrain)
	d1, err := drain(dctx, pool, dbURL, drainQueue1, 1)
	if err != nil {
		return err
	}
	progress("drain: %d workflows, 2 worker processes", nDrain)
	d2, err := drain(dctx, pool, dbURL, drainQueue2, 2)
	if err != nil {
		return err
	}

	// 3. Recovery after SIGKILL.
	rq, err := dbos.RegisterQueue(dctx, recoveryQueue)
	if err != nil {
		return err
	}
	var same []killResult
	for i := 1; i <= nKillsSame; i++ {
		progress("recovery (a) same executor: kill %d/%d", i, nKillsSame)
		r, err := killSame(dctx, rq, pool, dbURL, i)
		if err != nil {
			return err
		}
		same = append(same, *r)
	}
	var other []otherResult
	for i := 1; i <= nKillsOther; i++ {
		progress("recovery (b) other executor: kill %d/%d (waits up to %s)", i, nKillsOther, recoverWait)
		r, err := killOther(dctx, rq, pool, dbURL, i)
		if err != nil {
			return err
		}
		other = append(other, *r)
	}

	// ------------------------------------------------------------ report
	var recS, readyS []float64
	for _, r := range same {
		recS = append(recS, r.recovery.Seconds())
		readyS = append(readyS, r.newReady.Seconds())
	}
	otherRecovered, otherResumed, otherStuck := 0, 0, 0
	var otherS, resumedS []float64
	resumedBy := map[string]bool{}
	for _, r := range other {
		if r.stuck {
			otherStuck++
		}
		if r.recovered {
			otherRecovered++
			otherS = append(otherS, r.recovery.Seconds())
		} else if r.resumed > 0 {
			otherResumed++
			resumedS = append(resumedS, r.resumed.Seconds())
			resumedBy[r.by] = true
		}
	}
	mode := "same executor"
	if otherRecovered == len(other) && len(other) > 0 {
		mode = "any worker"
	}

	version := dbosVersion()
	fmt.Printf("| DBOS Transact Go %s | %.2f ms / %.2f ms | %.1f runs/s | %.1f runs/s | %.2f s / %.2f s (n=%d, %s) |\n",
		version, pct(perStep, 0.5), pct(perStep, 0.99), d1.runsPerS, d2.runsPerS,
		pct(recS, 0.5), slices.Max(recS), len(recS), mode)
	fmt.Println()

	split := func(d *drainResult) string {
		parts := make([]string, 0, len(d.execOrder))
		for _, e := range d.execOrder {
			parts = append(parts, fmt.Sprintf("%s %d", e, d.perExec[e]))
		}
		return strings.Join(parts, ", ")
	}
	readyList := func(d *drainResult) string {
		parts := make([]string, 0, len(d.ready))
		for _, r := range d.ready {
			parts = append(parts, secs(r))
		}
		return strings.Join(parts, " and ")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Settings: DBOS Transact Go %s (OSS module, no Conductor, no enterprise module) with its defaults: dbos.NewContext with only AppName, DatabaseURL (a Postgres system database in its own throwaway database, schema \"dbos\") and Logger (slog to stderr at warn level; the default logs info to stdout, which here carries the table); system pool MaxConns 20 (the default when the URL sets no pool_max_conns), LISTEN/NOTIFY, NotificationCoalesceInterval 10 ms, step retries off, max recovery attempts 100, application version = sha256 of the binary and app name (the default, so every process of this binary shares %s…). ", version, appVersion[:min(8, len(appVersion))])
	fmt.Fprintf(&b, "Queues: dbos.RegisterQueue(name) with defaults (no worker or global concurrency limit, no rate limit, base polling interval 1 s, backoff up to 120 s); each worker process (this binary's `worker` subcommand, a separate OS process) calls ListenQueues(queue), so it polls that queue and DBOS's internal one. ")
	fmt.Fprintf(&b, "Latency: %d sequential workflows of %d no-op steps (+%d warm-up not counted), dbos.RunWorkflow → handle.GetResult() in-process on the orchestrator's context (executor ID %q, listening to no user queue): start→complete median %.1f ms, p99 %.1f ms; the row gives per step (start→complete / %d), median and p99, p99 being the rank ceil((n-1)·0.99) as in bench/engine.rs. ",
		nLatency, steps, warmup, orchestrator, pct(lat, 0.5), pct(lat, 0.99), steps)
	fmt.Fprintf(&b, "Drain: %d workflows enqueued by the orchestrator with RunWorkflow(WithQueue) while no worker listened, then worker processes spawned and timed from the spawn to the last workflow's updated_at in dbos.workflow_status. 1 process (queue %s): %s (Launch returned after %s, first dequeue %s after the spawn; %s). 2 processes (fresh queue %s, both listening to it): %s (Launch returned after %s, first dequeue after %s; %s). ",
		nDrain, drainQueue1, secs(d1.drain), readyList(d1), secs(d1.firstDeq), split(d1),
		drainQueue2, secs(d2.drain), readyList(d2), secs(d2.firstDeq), split(d2))
	fmt.Fprintf(&b, "How DBOS assigns work: there is no assignment; each process's queue runner polls the queue (first poll as soon as Launch returns, then every 1 s) and claims ENQUEUED rows of its own application version (or of none, when it is the latest version) with SELECT … FOR UPDATE SKIP LOCKED, setting executor_id to its own; without a worker concurrency limit there is no LIMIT, so one poll claims everything enqueued and runs it all concurrently in that process, and the other process finds nothing left. ")
	fmt.Fprintf(&b, "Recovery: a workflow of %d steps whose step %d inserts (workflow_id, step, started_at = the worker's clock at step entry) into a table of the bench database and then sleeps %s, enqueued on %s; a worker process runs it, is SIGKILLed once that row appears, and a new worker process is spawned at once; timed from the kill to the next row of that step. ",
		steps, slowStep, wholeSecs(slowSleep), recoveryQueue)
	fmt.Fprintf(&b, "(a) same executor ID (both processes leave ExecutorID to the default \"local\"): %d kills, recovery median %.2f s, max %.2f s, of which the new process's Launch took a median %.2f s: Launch re-enqueues the PENDING workflows of its own executor ID and application version and the queue runner's first poll takes them; every recovered run completed (SUCCESS, %d step checkpoints, step %d started exactly twice). ",
		len(recS), pct(recS, 0.5), slices.Max(recS), pct(readyS, 0.5), steps, slowStep)
	fmt.Fprintf(&b, "(b) other executor IDs: killed process rec-other-N-victim, a worker rec-other-N-running already up and listening to the queue before the kill, and a new process rec-other-N-new spawned after it: ")
	if otherRecovered == 0 {
		fmt.Fprintf(&b, "never within %s in %d of %d kills (%d of them still PENDING under the dead executor ID at the end of the wait) — DBOS Go 1.9 recovers only at Launch and only its own executor ID's workflows, a running executor never takes over (taking over a dead executor's workflows is left to DBOS Conductor, the commercial module); ", wholeSecs(recoverWait), len(other), len(other), otherStuck)
	} else {
		fmt.Fprintf(&b, "%d of %d kills recovered (median %.2f s); ", otherRecovered, len(other), pct(otherS, 0.5))
	}
	if otherResumed > 0 {
		by := make([]string, 0, len(resumedBy))
		for e := range resumedBy {
			by = append(by, e)
		}
		slices.Sort(by)
		fmt.Fprintf(&b, "a manual dbos.ResumeWorkflow(WithResumeQueue(%s)) by the orchestrator after that wait got step %d re-run after a median %.2f s (%d of %d, by %s).",
			recoveryQueue, slowStep, pct(resumedS, 0.5), otherResumed, len(other), strings.Join(by, ", "))
	} else if otherRecovered == 0 {
		fmt.Fprintf(&b, "a manual dbos.ResumeWorkflow after that wait did not get it re-run within %s either.", wholeSecs(recoverWait))
	}
	// Does the 1 s queue poll enter the figures? Only if a worker waited for
	// its second poll: first dequeue well after its Launch returned.
	pollFree := d1.firstDeq-slices.Min(d1.ready) < 500*time.Millisecond &&
		d2.firstDeq-slices.Min(d2.ready) < 500*time.Millisecond && pct(recS, 0.5) < 0.5
	if pollFree {
		fmt.Fprintf(&b, " The 1 s base polling interval entered none of these figures (a worker's first poll runs when its Launch returns and takes all there is), so there is no 'tuned' row with a lower interval.")
	} else {
		fmt.Fprintf(&b, " The 1 s base polling interval may be part of these figures (a first dequeue came 0.5 s or more after Launch returned, or recovery took 0.5 s or more).")
	}
	fmt.Println(b.String())
	return nil
}

func main() {
	args := os.Args[1:]
	cmd := "run"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "run":
		err = run()
	case "worker":
		err = workerMain(args)
	case "drop":
		if len(args) != 1 {
			err = errors.New("usage: drop NAME")
		} else {
			err = dropDB(args[0])
		}
	default:
		err = fmt.Errorf("unknown subcommand %q (run, drop NAME, worker)", cmd)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "dbos-go bench %s: %v\n", cmd, err)
		os.Exit(1)
	}
}
