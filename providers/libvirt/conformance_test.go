package libvirt

import (
	"encoding/json"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"fiat/providers"
)

// conformanceCase is one resource type run through the lifecycle every
// resource type must support.
type conformanceCase struct {
	typ    string
	config cty.Value // planned config of a create
	update cty.Value // an in-place change of config; cty.NilVal if none
	// host checks what the host shows at each stage ("created", "updated",
	// "retired", "unretired", "purged", "undone").
	host func(t *testing.T, stage string, state cty.Value)
}

// runConformance: create → read → update → undo of update → retire → undo
// of retire → retire → purge → read says gone; and undo of create leaves
// nothing. Every undo is also replayed, by a second provider (another
// process after a crash), and must succeed.
func runConformance(t *testing.T, p *Provider, c conformanceCase) {
	schema := p.Schema().Resources[c.typ]
	addr := c.typ + ".test"
	host := c.host
	if host == nil {
		host = func(*testing.T, string, cty.Value) {}
	}
	replay := newTestProvider(t)

	undo := func(t *testing.T, what string, raw json.RawMessage) {
		t.Helper()
		if len(raw) == 0 {
			t.Fatalf("%s: empty undo", what)
		}
		if err := p.Undo(testCtx(t), providers.UndoRequest{Address: addr, Type: c.typ, Undo: raw}); err != nil {
			t.Fatalf("undo %s: %v", what, err)
		}
		if err := replay.Undo(testCtx(t), providers.UndoRequest{Address: addr, Type: c.typ, Undo: raw}); err != nil {
			t.Fatalf("undo %s again (replayed): %v", what, err)
		}
	}
	read := func(t *testing.T, id string) providers.ReadResponse {
		t.Helper()
		resp, err := p.Read(testCtx(t), providers.ReadRequest{Address: addr, Type: c.typ, ID: id})
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		return resp
	}
	create := func(t *testing.T) providers.CreateResponse {
		t.Helper()
		problems := mustPreflight(t, p, providers.PreflightStep{Address: addr, Type: c.typ, Action: providers.ActionCreate, Config: c.config})
		wantNoProblems(t, problems)
		resp, err := p.Create(testCtx(t), providers.CreateRequest{Address: addr, Type: c.typ, OpID: t.Name(), Config: c.config})
		if err != nil {
			t.Fatalf("create: %v", err)
		}
		if resp.ID == "" {
			t.Fatal("create: empty ID")
		}
		if !resp.State.Type().Equals(schema.ImpliedType()) || !resp.State.IsWhollyKnown() {
			t.Fatalf("create: state %#v is not a known %s", resp.State, schema.ImpliedType().FriendlyName())
		}
		for name, a := range schema.Attributes {
			got := resp.State.GetAttr(name)
			if a.Computed && got.IsNull() {
				t.Errorf("create: computed attribute %s is null", name)
			}
			if a.Default != cty.NilVal && c.config.GetAttr(name).IsNull() && !got.Equals(a.Default).True() {
				t.Errorf("create: attribute %s = %#v, want the default %#v", name, got, a.Default)
			}
		}
		return resp
	}

	t.Run("lifecycle", func(t *testing.T) {
		created := create(t)
		id, state := created.ID, created.State
		host(t, "created", state)

		if got := read(t, id); !got.Exists {
			t.Fatal("read after create: does not exist")
		} else {
			wantState(t, "read after create", got.State, state)
		}
		// Read by name only: what settles a create whose outcome is unknown.
		if got, err := p.Read(testCtx(t), providers.ReadRequest{Address: addr, Type: c.typ, State: c.config}); err != nil || !got.Exists {
			t.Fatalf("read by name after create: exists=%v, %v", got.Exists, err)
		}

		if c.update != cty.NilVal {
			step := providers.PreflightStep{Address: addr, Type: c.typ, Action: providers.ActionUpdate, ID: id, Prior: state, Config: c.update}
			wantNoProblems(t, mustPreflight(t, p, step))
			upd, err := p.Update(testCtx(t), providers.UpdateRequest{Address: addr, Type: c.typ, OpID: t.Name() + "/update", ID: id, Prior: state, Config: c.update})
			if err != nil {
				t.Fatalf("update: %v", err)
			}
			host(t, "updated", upd.State)
			wantState(t, "read after update", read(t, id).State, upd.State)
			undo(t, "update", upd.Undo)
			wantState(t, "read after undo of update", read(t, id).State, state)
			host(t, "created", state)
		}

		ret, err := p.Retire(testCtx(t), providers.RetireRequest{Address: addr, Type: c.typ, OpID: t.Name() + "/retire", ID: id, State: state})
		if err != nil {
			t.Fatalf("retire: %v", err)
		}
		host(t, "retired", state)
		undo(t, "retire", ret.Undo)
		host(t, "unretired", state)
		if got := read(t, id); !got.Exists {
			t.Fatal("read after undo of retire: does not exist")
		}

		if _, err := p.Retire(testCtx(t), providers.RetireRequest{Address: addr, Type: c.typ, OpID: t.Name() + "/retire2", ID: id, State: state}); err != nil {
			t.Fatalf("retire again: %v", err)
		}
		host(t, "retired", state)
		for i := 0; i < 2; i++ { // purge is idempotent
			if err := p.Purge(testCtx(t), providers.PurgeRequest{Address: addr, Type: c.typ, ID: id, State: state}); err != nil {
				t.Fatalf("purge #%d: %v", i+1, err)
			}
		}
		host(t, "purged", state)
		if got := read(t, id); got.Exists {
			t.Fatalf("read after purge: still exists: %#v", got.State)
		}
	})

	t.Run("undo-create", func(t *testing.T) {
		created := create(t)
		undo(t, "create", created.Undo)
		host(t, "undone", created.State)
		if got := read(t, created.ID); got.Exists {
			t.Fatalf("read after undo of create: still exists: %#v", got.State)
		}
		if got, err := p.Read(testCtx(t), providers.ReadRequest{Address: addr, Type: c.typ, State: c.config}); err != nil || got.Exists {
			t.Fatalf("read by name after undo of create: exists=%v, %v", got.Exists, err)
		}
	})
}
