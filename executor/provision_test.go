package executor_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"fiat/executor"
	"fiat/planner"
	"fiat/providers"
	"fiat/providers/provision"
)

func (e *env) applyProvisioned(p *planner.Plan, src string) (*executor.Result, []string, error) {
	_, cfg := e.plan(src)
	var events []string
	res, err := executor.Apply(context.Background(), p, executor.Options{
		Store:     e.store,
		Providers: map[string]providers.Provider{"fake": e.fake, providers.ProvisionerAddress: provision.New()},
		PlanID:    "prov", Parallelism: 4,
		Eval:            executor.NewEvaluator(cfg, p, e.schemas()),
		EvalProvisioner: executor.NewProvisionerEvaluator(cfg, p),
		Events: func(ev executor.Event) {
			events = append(events, fmt.Sprintf("%s %s %s", ev.Kind, ev.Address, ev.Operation))
		},
	})
	return res, events, err
}

// A local-exec runs after its object is created, and its undo runs on the
// rollback, before the object's own undo.
func TestLocalExecUndoneOnRollback(t *testing.T) {
	e := newEnv(t)
	marker := filepath.Join(t.TempDir(), "marker")
	src := fmt.Sprintf(`
resource "fake_thing" "a" {
  name = "a"
  provisioner "local-exec" {
    command = "echo ${self.id} > %[1]s"
    undo    = "rm -f %[1]s"
  }
}
resource "fake_thing" "b" {
  name  = "b"
  value = fake_thing.a.id
}
`, marker)
	p, _ := e.plan(src)
	if s := p.Step("fake_thing.a"); len(s.Provisioners) != 1 || s.Provisioners[0].Reversibility != providers.Reversible {
		t.Fatalf("plan step: %+v", s.Provisioners)
	}
	ran := false
	e.fake.Fail = func(op, addr string) error {
		if addr == "fake_thing.b" && op == "create" {
			_, err := os.Stat(marker)
			ran = err == nil
			return errors.New("refused")
		}
		return nil
	}
	_, events, err := e.applyProvisioned(p, src)
	if err == nil || !ran {
		t.Fatalf("want b to fail after the provisioner ran (ran=%v): %v", ran, err)
	}
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Fatalf("the local-exec's undo did not run: %v", err)
	}
	var ae *executor.Error
	errors.As(err, &ae)
	var order []string
	for _, u := range ae.RolledBack {
		order = append(order, u.Address+" "+u.Operation)
	}
	if got := strings.Join(order, ", "); got != "fake_thing.a provision, fake_thing.a create" {
		t.Fatalf("rolled back %q; want the provisioner, then the create\nevents: %v", got, events)
	}
	if len(e.fake.Objects) != 0 {
		t.Fatalf("objects left: %v", e.fake.Snapshot())
	}
}

// A failing provisioner fails its step: the error names the resource and
// the provisioner, and the object it ran on is undone.
func TestFailingProvisionerRollsBack(t *testing.T) {
	e := newEnv(t)
	src := `
resource "fake_thing" "a" {
  name = "a"
  provisioner "local-exec" {
    command = "echo about to fail; exit 3"
  }
}
`
	p, _ := e.plan(src)
	if s := p.Step("fake_thing.a"); len(s.Provisioners) != 1 || s.Provisioners[0].Reversibility != providers.Irreversible {
		t.Fatalf("a local-exec without undo must plan irreversible: %+v", s.Provisioners)
	}
	_, _, err := e.applyProvisioned(p, src)
	var ae *executor.Error
	if !errors.As(err, &ae) || ae.Address != "fake_thing.a" || ae.Operation != "provision local-exec" ||
		!strings.Contains(err.Error(), "exit status 3") || !strings.Contains(err.Error(), "about to fail") {
		t.Fatalf("want an error naming fake_thing.a's local-exec with its output, got %v", err)
	}
	if len(e.fake.Objects) != 0 {
		t.Fatalf("the object the provisioner ran on is left: %v", e.fake.Snapshot())
	}
	// on_failure = continue: the apply goes on, with a warning.
	src = strings.Replace(src, `command = "echo about to fail; exit 3"`, "command = \"exit 3\"\n    on_failure = continue", 1)
	p, _ = e.plan(src)
	_, events, err := e.applyProvisioned(p, src)
	if err != nil || !strings.Contains(strings.Join(events, "\n"), "warning fake_thing.a provision local-exec") {
		t.Fatalf("on_failure = continue: %v\n%v", err, events)
	}
}
