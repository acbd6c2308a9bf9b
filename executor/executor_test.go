package executor_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"fiat/engine"
	"fiat/executor"
	"fiat/hcl"
	"fiat/planner"
	"fiat/providers"
	"fiat/providers/fake"
	"fiat/state"
)

const stack = "test"

type env struct {
	t     *testing.T
	store *state.Store
	fake  *fake.Provider
}

func newEnv(t *testing.T) *env {
	t.Helper()
	st, err := state.Open(context.Background(), state.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &env{t: t, store: st, fake: fake.New()}
}

// engine plans with the env's fake provider, as every command plans.
func (e *env) engine() *engine.Engine {
	return engine.New(providers.NewRegistry(map[string]providers.Factory{"fake": func() providers.Provider { return e.fake }}))
}

func (e *env) schemas() map[string]providers.Schema {
	return map[string]providers.Schema{"fake": e.fake.Schema()}
}

func (e *env) plan(src string) (*planner.Plan, *hcl.Config) {
	e.t.Helper()
	cfg, diags := hcl.LoadFiles("", map[string][]byte{"main.hcl": []byte(src)}, hcl.Options{Env: []string{}})
	if diags.HasErrors() {
		e.t.Fatal(diags)
	}
	p, err := e.engine().Plan(context.Background(), e.store, engine.PlanOptions{Stack: stack, Config: cfg, NoRefresh: true})
	if err != nil {
		e.t.Fatal(err)
	}
	return p, cfg
}

func (e *env) apply(p *planner.Plan, cfg *hcl.Config, par int) (*executor.Result, error) {
	return executor.Apply(context.Background(), p, executor.Options{
		Store:       e.store,
		Providers:   map[string]providers.Provider{"fake": e.fake},
		Parallelism: par,
		PlanID:      "testplan",
		Eval:        executor.NewEvaluator(cfg, p, e.schemas()),
	})
}

// storeSnapshot renders the stack's entities for comparison.
func (e *env) storeSnapshot() []string {
	ents, err := e.store.List(context.Background(), stack)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, en := range ents {
		out = append(out, fmt.Sprintf("%s id=%s rev=%d %s", en.Address, en.ID, en.Revision, en.Attributes))
	}
	return out
}

// config generates n things; variant changes which get updated, replaced,
// deleted or added, with dependencies chaining every fifth resource.
func config(n int, variant bool) string {
	b := &strings.Builder{}
	for i := 0; i < n; i++ {
		if variant && i%7 == 3 && i%5 != 0 {
			continue // deleted
		}
		value, forced := "v1", "f1"
		if variant && i%5 == 1 {
			value = "v2" // update
		}
		if variant && i%6 == 2 {
			forced = "f2" // replace
		}
		fmt.Fprintf(b, "resource \"fake_thing\" \"r%02d\" {\n  name = \"r%02d\"\n  value = %q\n  forced = %q\n", i, i, value, forced)
		if i%5 != 0 {
			fmt.Fprintf(b, "  depends_on = [fake_thing.r%02d]\n", i-1-(i-1)%5)
		}
		b.WriteString("}\n")
	}
	if variant {
		for i := n; i < n+4; i++ {
			fmt.Fprintf(b, "resource \"fake_thing\" \"r%02d\" {\n  name = fake_thing.r02.id\n}\n", i)
		}
	}
	return b.String()
}

func TestApplyThenNoChanges(t *testing.T) {
	e := newEnv(t)
	p, cfg := e.plan(config(10, false))
	if c := p.Counts(); c[planner.Create] != 10 {
		t.Fatalf("want 10 creates, got %v", c)
	}
	res, err := e.apply(p, cfg, 4)
	if err != nil {
		t.Fatal(err)
	}
	if res.Revision != 1 {
		t.Fatalf("want revision 1, got %d", res.Revision)
	}
	if got := len(e.fake.Objects); got != 10 {
		t.Fatalf("want 10 objects, got %d", got)
	}
	p2, _ := e.plan(config(10, false))
	if p2.HasChanges() {
		t.Fatalf("re-plan after apply has changes: %v", p2.Counts())
	}
}

// TestFaultInjection fails each mutating call of a mixed plan in turn; every
// run must leave the store and the fake's objects exactly as before, and the
// error must name the failing step.
func TestFaultInjection(t *testing.T) {
	const n = 30
	e := newEnv(t)
	p0, cfg0 := e.plan(config(n, false))
	if _, err := e.apply(p0, cfg0, 10); err != nil {
		t.Fatal(err)
	}
	beforeStore, beforeObjs := e.storeSnapshot(), e.fake.Snapshot()

	p, cfg := e.plan(config(n, true))
	c := p.Counts()
	if c[planner.Create] == 0 || c[planner.Update] == 0 || c[planner.Replace] == 0 || c[planner.Delete] == 0 {
		t.Fatalf("plan is not mixed: %v", c)
	}
	// Count the mutating calls of a clean run on a copy of the world.
	calls := 0
	for _, s := range p.Steps {
		switch s.Action {
		case planner.Create, planner.Update, planner.Delete:
			calls++
		case planner.Replace:
			calls += 2
		}
	}
	for k := 1; k <= calls; k++ {
		var seen atomic.Int32
		var failedAt atomic.Value
		e.fake.Fail = func(op, addr string) error {
			if op == "undo" || op == "purge" {
				return nil
			}
			if int(seen.Add(1)) == k {
				failedAt.Store(addr)
				return &providers.Error{Op: op + " " + addr, Code: 42, Message: "injected failure"}
			}
			return nil
		}
		_, err := e.apply(p, cfg, 10)
		var aerr *executor.Error
		if !errors.As(err, &aerr) {
			t.Fatalf("call %d: want *executor.Error, got %v", k, err)
		}
		if want, _ := failedAt.Load().(string); aerr.Address != want || aerr.Source == "" {
			t.Fatalf("call %d: error names %q (%s), failure was at %q", k, aerr.Address, aerr.Source, want)
		}
		if len(aerr.Stuck) != 0 {
			t.Fatalf("call %d: stuck %v", k, aerr.Stuck)
		}
		if got := e.storeSnapshot(); !reflect.DeepEqual(got, beforeStore) {
			t.Fatalf("call %d: store changed:\n%v\nwant\n%v", k, got, beforeStore)
		}
		if got := e.fake.Snapshot(); !reflect.DeepEqual(got, beforeObjs) {
			t.Fatalf("call %d: objects changed:\n%v\nwant\n%v", k, got, beforeObjs)
		}
	}
	e.fake.Fail = nil
	t.Logf("%d failure points tried, all rolled back to the exact prior state", calls)
	if _, err := e.apply(p, cfg, 10); err != nil {
		t.Fatalf("clean apply after faults: %v", err)
	}
	p3, _ := e.plan(config(n, true))
	if p3.HasChanges() {
		t.Fatalf("re-plan has changes: %v", p3.Counts())
	}
}

func TestUndoFailureIsReported(t *testing.T) {
	e := newEnv(t)
	p, cfg := e.plan(config(3, false))
	e.fake.Fail = func(op, addr string) error {
		switch {
		case op == "create" && addr == "fake_thing.r02":
			return errors.New("boom")
		case op == "undo" && addr == "fake_thing.r01":
			return errors.New("undo refused")
		}
		return nil
	}
	_, err := e.apply(p, cfg, 1)
	var aerr *executor.Error
	if !errors.As(err, &aerr) {
		t.Fatalf("want *executor.Error, got %v", err)
	}
	if len(aerr.Stuck) != 1 || aerr.Stuck[0].Address != "fake_thing.r01" {
		t.Fatalf("want r01 stuck, got %+v", aerr.Stuck)
	}
	if !strings.Contains(err.Error(), "undo refused") || !strings.Contains(err.Error(), "fake_thing.r02") {
		t.Fatalf("error does not say what failed:\n%s", err)
	}
	// Exactly the stuck object is in the store, marked needs-attention.
	ents, _ := e.store.List(context.Background(), stack)
	if len(ents) != 1 || ents[0].Address != "test/fake_thing.r01" || ents[0].Status != state.StatusNeedsAttention ||
		!strings.Contains(ents[0].Reason, "undo refused") || ents[0].Attention == nil {
		t.Fatalf("want only r01 needs-attention, got %+v", ents)
	}
	e.fake.Fail = nil

	// A plan that leaves r01 alone still applies.
	p2, cfg2 := e.plan(config(3, false))
	if s := p2.Step("fake_thing.r01"); s.Action != planner.NoOp {
		t.Fatalf("r01 should be untouched, got %s", s.Action)
	}
	if _, err := e.apply(p2, cfg2, 2); err != nil {
		t.Fatalf("unrelated plan refused: %v", err)
	}
	// A plan that touches r01 is refused, saying why and what to run.
	p3, cfg3 := e.plan(strings.Replace(config(3, false), `name = "r01"
  value = "v1"`, `name = "r01"
  value = "changed"`, 1))
	_, err = e.apply(p3, cfg3, 2)
	if err == nil || !strings.Contains(err.Error(), "fake_thing.r01") || !strings.Contains(err.Error(), "fiat recover") {
		t.Fatalf("plan touching a needs-attention entity: %v", err)
	}
	// recover retries the undo; the untracked entity goes with its object.
	objs := len(e.fake.Objects)
	_, att, err := executor.Recover(context.Background(), stack, executor.RecoverOptions{
		Store: e.store, Providers: map[string]providers.Provider{"fake": e.fake}, RetryAttention: true})
	if err != nil || len(att.Resolved) != 1 || len(att.Stuck) != 0 {
		t.Fatalf("recover: %v %+v", err, att)
	}
	if len(e.fake.Objects) != objs-1 {
		t.Fatalf("recover did not delete the stuck object")
	}
	if _, err := e.store.Get(context.Background(), "test/fake_thing.r01"); !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("r01 still in the store: %v", err)
	}
}

func TestStalePlanRefused(t *testing.T) {
	e := newEnv(t)
	p0, cfg0 := e.plan(config(2, false))
	if _, err := e.apply(p0, cfg0, 2); err != nil {
		t.Fatal(err)
	}
	stale, cfg := e.plan(strings.Replace(config(2, false), `"v1"`, `"v9"`, 1))
	fresh, cfgF := e.plan(strings.Replace(config(2, false), `"v1"`, `"v8"`, 1))
	if _, err := e.apply(fresh, cfgF, 2); err != nil {
		t.Fatal(err)
	}
	_, err := e.apply(stale, cfg, 2)
	var se *state.StaleError
	if !errors.As(err, &se) {
		t.Fatalf("want stale error, got %v", err)
	}
	if !strings.Contains(err.Error(), "test/fake_thing.r00") {
		t.Fatalf("stale error does not name the entity: %v", err)
	}
}

func TestSlowStepReportsProgress(t *testing.T) {
	e := newEnv(t)
	p, cfg := e.plan(config(1, false))
	e.fake.Fail = func(op, addr string) error {
		time.Sleep(300 * time.Millisecond)
		return nil
	}
	var progress atomic.Int32
	_, err := executor.Apply(context.Background(), p, executor.Options{
		Store: e.store, Providers: map[string]providers.Provider{"fake": e.fake}, PlanID: "p",
		Progress: 25 * time.Millisecond,
		Events: func(ev executor.Event) {
			if ev.Kind == executor.EventProgress && ev.Address == "fake_thing.r00" && ev.Elapsed > 0 {
				progress.Add(1)
			}
		},
		Eval: executor.NewEvaluator(cfg, p, e.schemas()),
	})
	if err != nil {
		t.Fatal(err)
	}
	if progress.Load() < 2 {
		t.Fatalf("want periodic progress events for a slow step, got %d", progress.Load())
	}
}

func TestErrorJSON(t *testing.T) {
	e := &executor.Error{Phase: "apply", Address: "libvirt_pool.x", Source: "main.hcl:3", Operation: "create",
		Cause:      fmt.Errorf("create pool x: %w", &providers.Error{Op: "create pool x", Code: 38, Message: "cannot create path"}),
		RolledBack: []executor.Undone{{Address: "libvirt_volume.y", Operation: "create"}}}
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"address":"libvirt_pool.x"`, `"source":"main.hcl:3"`, `"provider_code":38`, `"rolled_back":[{"address":"libvirt_volume.y","operation":"create"}]`, `"needs_attention":[]`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("JSON lacks %s: %s", want, b)
		}
	}
}

// An apply that runs longer than its lock's TTL keeps the lock by renewing it.
func TestLeaseRenewedDuringLongApply(t *testing.T) {
	e := newEnv(t)
	p, cfg := e.plan(config(2, false))
	e.fake.Fail = func(op, addr string) error {
		time.Sleep(900 * time.Millisecond)
		return nil
	}
	// A competitor keeps trying to take the stack: it must never get it.
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			// If it got the lock mid-apply, the apply's next write
			// would be fenced and the apply would fail.
			if l, err := e.store.Lock(context.Background(), stack, "competitor", time.Minute); err == nil {
				e.store.Unlock(context.Background(), l)
			}
		}
	}()
	defer close(stop)
	_, err := executor.Apply(context.Background(), p, executor.Options{
		Store: e.store, Providers: map[string]providers.Provider{"fake": e.fake}, PlanID: "p",
		Parallelism: 1, LockTTL: 600 * time.Millisecond,
		Eval: executor.NewEvaluator(cfg, p, e.schemas()),
	})
	if err != nil {
		t.Fatalf("apply longer than the lock TTL failed: %v", err)
	}

}

// Dependents of a failed step never start; independent steps already
// running finish and are rolled back.
func TestDependentsOfFailedStepNeverStart(t *testing.T) {
	e := newEnv(t)
	p, cfg := e.plan(`
resource "fake_thing" "a" { name = "a" }
resource "fake_thing" "b" { name = fake_thing.a.id }
resource "fake_thing" "c" { name = fake_thing.b.id }
`)
	e.fake.Fail = func(op, addr string) error {
		if op == "create" && addr == "fake_thing.b" {
			return errors.New("refused")
		}
		return nil
	}
	_, err := e.apply(p, cfg, 10)
	if err == nil {
		t.Fatal("apply succeeded")
	}
	for _, c := range e.fake.Calls {
		if strings.HasSuffix(c, "fake_thing.c") {
			t.Fatalf("dependent of the failed step was called: %v", e.fake.Calls)
		}
	}
	if len(e.fake.Objects) != 0 {
		t.Fatalf("objects left: %v", e.fake.Snapshot())
	}
}

// A purge that fails after the commit leaves the apply committed and the
// purge pending; recover finishes it.
func TestPurgeFailureIsPendingUntilRecover(t *testing.T) {
	e := newEnv(t)
	p0, cfg0 := e.plan(config(2, false))
	if _, err := e.apply(p0, cfg0, 2); err != nil {
		t.Fatal(err)
	}
	p, cfg := e.plan(config(1, false)) // deletes r01
	e.fake.Fail = func(op, addr string) error {
		if op == "purge" {
			return errors.New("disk busy")
		}
		return nil
	}
	res, err := e.apply(p, cfg, 2)
	if err != nil || len(res.PurgeErrors) != 1 || !strings.Contains(res.PurgeErrors[0].Error(), "disk busy") {
		t.Fatalf("want a committed apply with one purge error, got %v %+v", err, res)
	}
	if len(e.fake.Objects) != 2 || len(e.fake.Retired) != 1 {
		t.Fatalf("the retired object should remain, inert: %v", e.fake.Snapshot())
	}
	txs, _ := e.store.OpenTxs(context.Background(), stack)
	if len(txs) != 1 || txs[0].State != state.TxCommitted {
		t.Fatalf("want the committed transaction kept open for cleanup, got %+v", txs)
	}
	e.fake.Fail = nil
	recs, _, err := executor.Recover(context.Background(), stack, executor.RecoverOptions{
		Store: e.store, Providers: map[string]providers.Provider{"fake": e.fake}})
	if err != nil || len(recs) != 1 || !recs[0].Committed || len(recs[0].Purged) != 1 {
		t.Fatalf("recover: %v %+v", err, recs)
	}
	if len(e.fake.Objects) != 1 {
		t.Fatalf("purge not finished: %v", e.fake.Snapshot())
	}
	if txs, _ := e.store.OpenTxs(context.Background(), stack); len(txs) != 0 {
		t.Fatalf("transaction still open: %+v", txs)
	}
}

// A create whose connection drops after the object was made is settled by
// reading it: the apply goes on, and a later failure rolls it back too.
func TestOutcomeUnknownIsSettledByReading(t *testing.T) {
	e := newEnv(t)
	p, cfg := e.plan(`
resource "fake_thing" "a" { name = "a" }
resource "fake_thing" "b" {
  name       = "b"
  depends_on = [fake_thing.a]
}
`)
	var dropped bool
	e.fake.Fail = func(op, addr string) error {
		if op == "create" && addr == "fake_thing.b" {
			return errors.New("refused")
		}
		return nil
	}
	// Wrap the fake: the create of a succeeds but reports a lost connection.
	prov := &lossy{Provider: e.fake, dropped: &dropped}
	_, err := executor.Apply(context.Background(), p, executor.Options{
		Store: e.store, Providers: map[string]providers.Provider{"fake": prov}, PlanID: "p",
		Eval: executor.NewEvaluator(cfg, p, e.schemas()),
	})
	var aerr *executor.Error
	if !errors.As(err, &aerr) || aerr.Address != "fake_thing.b" {
		t.Fatalf("want b's failure, got %v", err)
	}
	if !dropped || len(aerr.RolledBack) != 1 || aerr.RolledBack[0].Address != "fake_thing.a" {
		t.Fatalf("a's settled create should have been rolled back: %+v", aerr.RolledBack)
	}
	if len(e.fake.Objects) != 0 {
		t.Fatalf("objects left: %v", e.fake.Snapshot())
	}
}

type lossy struct {
	*fake.Provider
	dropped *bool
}

func (l *lossy) Create(ctx context.Context, req providers.CreateRequest) (providers.CreateResponse, error) {
	resp, err := l.Provider.Create(ctx, req)
	if err == nil && req.Address == "fake_thing.a" {
		*l.dropped = true
		return providers.CreateResponse{}, fmt.Errorf("create %s: connection reset: %w", req.Address, providers.ErrOutcomeUnknown)
	}
	return resp, err
}

// create_before_destroy makes the new object before retiring the old one;
// without it the old one is retired first.
func TestReplaceOrder(t *testing.T) {
	for _, cbd := range []bool{false, true} {
		e := newEnv(t)
		src := func(forced string) string {
			return fmt.Sprintf("resource \"fake_thing\" \"x\" {\n  name = \"x\"\n  forced = %q\n  lifecycle {\n    create_before_destroy = %v\n  }\n}\n", forced, cbd)
		}
		p0, cfg0 := e.plan(src("a"))
		if _, err := e.apply(p0, cfg0, 2); err != nil {
			t.Fatal(err)
		}
		e.fake.Calls = nil
		p, cfg := e.plan(src("b"))
		if s := p.Step("fake_thing.x"); s.Action != planner.Replace || s.CreateBeforeDestroy != cbd {
			t.Fatalf("cbd=%v: step %+v", cbd, s)
		}
		if _, err := e.apply(p, cfg, 2); err != nil {
			t.Fatal(err)
		}
		want := []string{"retire fake_thing.x", "create fake_thing.x", "purge fake_thing.x"}
		if cbd {
			want = []string{"create fake_thing.x", "retire fake_thing.x", "purge fake_thing.x"}
		}
		if !reflect.DeepEqual(e.fake.Calls, want) {
			t.Fatalf("cbd=%v: calls %v, want %v", cbd, e.fake.Calls, want)
		}
	}
}

// An entity that stops depending on a deleted one is updated before the
// deleted one is retired: nothing in use is retired.
func TestRetireWaitsForFormerDependents(t *testing.T) {
	e := newEnv(t)
	p0, cfg0 := e.plan(`
resource "fake_thing" "a" { name = "a" }
resource "fake_thing" "b" {
  name  = "b"
  value = fake_thing.a.id
}
`)
	if _, err := e.apply(p0, cfg0, 4); err != nil {
		t.Fatal(err)
	}
	e.fake.Calls = nil
	p, cfg := e.plan(`
resource "fake_thing" "c" { name = "c" }
resource "fake_thing" "b" {
  name  = "b"
  value = fake_thing.c.id
}
`)
	if _, err := e.apply(p, cfg, 4); err != nil {
		t.Fatal(err)
	}
	pos := map[string]int{}
	for i, c := range e.fake.Calls {
		pos[c] = i
	}
	if !(pos["create fake_thing.c"] < pos["update fake_thing.b"] && pos["update fake_thing.b"] < pos["retire fake_thing.a"]) {
		t.Fatalf("want create c, update b, then retire a; got %v", e.fake.Calls)
	}
}

// The new half of a replacement whose outcome is unknown is not mistaken for
// the old object being replaced.
func TestSettleOfReplaceIgnoresOldObject(t *testing.T) {
	e := newEnv(t)
	p0, cfg0 := e.plan("resource \"fake_thing\" \"x\" {\n  name = \"x\"\n  forced = \"a\"\n}\n")
	if _, err := e.apply(p0, cfg0, 2); err != nil {
		t.Fatal(err)
	}
	before := e.fake.Snapshot()
	p, cfg := e.plan("resource \"fake_thing\" \"x\" {\n  name = \"x\"\n  forced = \"b\"\n}\n")
	e.fake.Fail = func(op, addr string) error {
		if op == "create" {
			return fmt.Errorf("create %s: connection reset: %w", addr, providers.ErrOutcomeUnknown)
		}
		return nil
	}
	if _, err := e.apply(p, cfg, 2); err == nil {
		t.Fatal("apply succeeded although the create never happened")
	}
	if got := e.fake.Snapshot(); !reflect.DeepEqual(got, before) {
		t.Fatalf("objects changed:\n%v\nwant\n%v", got, before)
	}
}

// When both halves of a replacement fail to undo, the entity is marked once
// with both undos, and unrelated plans still run.
func TestReplaceWithBothUndosFailing(t *testing.T) {
	e := newEnv(t)
	src := func(forced string) string {
		return "resource \"fake_thing\" \"x\" {\n  name = \"x\"\n  forced = \"" + forced + "\"\n}\nresource \"fake_thing\" \"y\" {\n  name = \"y\"\n  depends_on = [fake_thing.x]\n}\n"
	}
	p0, cfg0 := e.plan(src("a"))
	if _, err := e.apply(p0, cfg0, 2); err != nil {
		t.Fatal(err)
	}
	p, cfg := e.plan(src("b") + "resource \"fake_thing\" \"z\" {\n  name = \"z\"\n  depends_on = [fake_thing.x]\n}\n")
	e.fake.Fail = func(op, addr string) error {
		switch {
		case op == "create" && addr == "fake_thing.z":
			return errors.New("refused")
		case op == "undo" && addr == "fake_thing.x":
			return errors.New("undo refused")
		}
		return nil
	}
	_, err := e.apply(p, cfg, 2)
	var aerr *executor.Error
	if !errors.As(err, &aerr) || len(aerr.Stuck) != 2 || len(aerr.Notes) != 0 {
		t.Fatalf("want two stuck undos of x and no bookkeeping failure, got %v", err)
	}
	ent, gerr := e.store.Get(context.Background(), "test/fake_thing.x")
	if gerr != nil || ent.Status != state.StatusNeedsAttention || ent.Attention == nil || len(ent.Attention.Undos) != 2 {
		t.Fatalf("x: %+v %v", ent, gerr)
	}
	if txs, _ := e.store.OpenTxs(context.Background(), stack); len(txs) != 0 {
		t.Fatalf("transaction left open: %+v", txs)
	}
	e.fake.Fail = nil
	// y is untouched by this plan: it still applies.
	p2, cfg2 := e.plan(src("a") + "resource \"fake_thing\" \"w\" {\n  name = \"w\"\n}\n")
	p2.Steps = keepSteps(p2.Steps, "fake_thing.w", "fake_thing.y")
	if _, err := e.apply(p2, cfg2, 2); err != nil {
		t.Fatalf("unrelated plan: %v", err)
	}
	_, att, err := executor.Recover(context.Background(), stack, executor.RecoverOptions{
		Store: e.store, Providers: map[string]providers.Provider{"fake": e.fake}, RetryAttention: true})
	if err != nil || len(att.Resolved) != 1 {
		t.Fatalf("recover: %v %+v", err, att)
	}
}

func keepSteps(steps []*planner.Step, addrs ...string) []*planner.Step {
	var out []*planner.Step
	for _, s := range steps {
		for _, a := range addrs {
			if s.Address == a {
				out = append(out, s)
			}
		}
	}
	return out
}

// waiting is a fake whose creates of "slow" wait until their context ends.
type waiting struct {
	*fake.Provider
	started chan struct{}
}

func (w waiting) Create(ctx context.Context, req providers.CreateRequest) (providers.CreateResponse, error) {
	if req.Config.GetAttr("name").AsString() == "slow" {
		close(w.started)
		<-ctx.Done()
		return providers.CreateResponse{}, fmt.Errorf("create %s: %w", req.Address, ctx.Err())
	}
	return w.Provider.Create(ctx, req)
}

// A step stopped in flight because another failed is reported cancelled,
// not failed; the error names the step that failed.
func TestInFlightStepIsCancelledNotFailed(t *testing.T) {
	e := newEnv(t)
	p, cfg := e.plan(`
resource "fake_thing" "slow" {
  name = "slow"
}
resource "fake_thing" "bad" {
  name = "bad"
}
`)
	w := waiting{Provider: e.fake, started: make(chan struct{})}
	e.fake.Fail = func(op, addr string) error {
		if addr == "fake_thing.bad" && op == "create" {
			<-w.started // fail only once slow is in flight
			return errors.New("refused")
		}
		return nil
	}
	kinds := map[string]executor.EventKind{}
	var mu sync.Mutex
	_, err := executor.Apply(context.Background(), p, executor.Options{
		Store: e.store, Providers: map[string]providers.Provider{"fake": w}, PlanID: "p",
		Events: func(ev executor.Event) {
			if ev.Kind == executor.EventFailed || ev.Kind == executor.EventCancelled {
				mu.Lock()
				kinds[ev.Address] = ev.Kind
				mu.Unlock()
			}
		},
		Eval: executor.NewEvaluator(cfg, p, e.schemas()),
	})
	var ae *executor.Error
	if !errors.As(err, &ae) || ae.Address != "fake_thing.bad" {
		t.Fatalf("want the error to name fake_thing.bad, got %v", err)
	}
	if kinds["fake_thing.bad"] != executor.EventFailed || kinds["fake_thing.slow"] != executor.EventCancelled {
		t.Fatalf("events: %v; want bad failed and slow cancelled", kinds)
	}
}

// A resource too large to store is refused in preflight, before anything
// is created, naming it and the limit.
func TestOversizedResourceRefusedBeforeAnything(t *testing.T) {
	e := newEnv(t)
	p, cfg := e.plan(fmt.Sprintf(`
resource "fake_thing" "small" {
  name = "small"
}
resource "fake_thing" "huge" {
  name  = "huge"
  value = "%s"
}
`, strings.Repeat("x", 300<<10)))
	_, err := e.apply(p, cfg, 4)
	var ae *executor.Error
	if !errors.As(err, &ae) || ae.Phase != "preflight" || len(ae.Problems) != 1 || ae.Problems[0].Address != "fake_thing.huge" ||
		!strings.Contains(ae.Problems[0].Message, "at most 248 KB per resource") {
		t.Fatalf("want a preflight problem naming fake_thing.huge and the limit, got %#v", err)
	}
	if len(e.fake.Objects) != 0 || len(e.fake.Calls) != 0 {
		t.Fatalf("something was done: %v", e.fake.Calls)
	}
}

// A disk running out of room stops the apply before the next step and
// rolls it back, while the reserve the check keeps can still take the
// rollback's records.
func TestLowSpaceStopsAndRollsBack(t *testing.T) {
	e := newEnv(t)
	p, cfg := e.plan(config(6, false))
	calls := 0
	_, err := executor.Apply(context.Background(), p, executor.Options{
		Store: e.store, Providers: map[string]providers.Provider{"fake": e.fake}, PlanID: "p", Parallelism: 1,
		Eval: executor.NewEvaluator(cfg, p, e.schemas()),
		CheckSpace: func(writes uint64) error {
			if calls++; calls > 3 {
				return state.ErrLowSpace
			}
			return nil
		},
	})
	var ae *executor.Error
	if !errors.As(err, &ae) || !errors.Is(err, state.ErrLowSpace) || len(ae.RolledBack) != 3 {
		t.Fatalf("want the fourth step refused for space and three rolled back, got %v", err)
	}
	if len(e.fake.Objects) != 0 || len(e.storeSnapshot()) != 0 {
		t.Fatalf("left behind: %v %v", e.fake.Snapshot(), e.storeSnapshot())
	}
}
