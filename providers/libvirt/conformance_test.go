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
	// replace is a config that forces a replacement and keeps the name,
	// so the new object can only be created because the retire of the
	// old one freed the name. cty.NilVal if none.
	replace cty.Value
	// host checks what the host shows at each stage ("created",
	// "updated", "retired", "unretired", "replaced", "purged", "undone").
	host func(t *testing.T, stage string, state cty.Value)
	// volatile attributes change by themselves (free space, DHCP
	// addresses) and are not compared between reads.
	volatile []string
	// importID returns another identity Import accepts (a name, a path),
	// beside the canonical id.
	importID func(state cty.Value) string
	// importSkip are attributes Import cannot know (they exist only in
	// config, e.g. a volume's source); they are not compared.
	importSkip []string
}

// runConformance: create → read → settle → update in place → settle → undo
// of the update → replace (retire old, create new under the same name) →
// undo of both → retire → settle → undo of the retire → retire → purge
// (twice) → read says gone; undo of a create leaves nothing; import finds
// the object. Every undo is also replayed, by a second provider (another
// process after a crash), and must succeed.
func runConformance(t *testing.T, p *Provider, c conformanceCase) {
	schema := p.Schema().Resources[c.typ]
	addr := c.typ + ".test"
	host := c.host
	if host == nil {
		host = func(*testing.T, string, cty.Value) {}
	}
	replay := newTestProvider(t)
	stable := func(v cty.Value, skip ...string) cty.Value {
		if v == cty.NilVal || v.IsNull() {
			return v
		}
		m := v.AsValueMap()
		for _, n := range append(append([]string(nil), c.volatile...), skip...) {
			if _, ok := m[n]; ok {
				m[n] = cty.NullVal(m[n].Type())
			}
		}
		return cty.ObjectVal(m)
	}
	same := func(t *testing.T, what string, got, want cty.Value, skip ...string) {
		t.Helper()
		wantState(t, what, stable(got, skip...), stable(want, skip...))
	}

	undo := func(t *testing.T, what string, raw json.RawMessage) {
		t.Helper()
		if len(raw) == 0 {
			t.Fatalf("%s: empty undo", what)
		}
		if _, err := p.Undo(testCtx(t), providers.UndoRequest{Address: addr, Type: c.typ, Undo: raw}); err != nil {
			t.Fatalf("undo %s: %v", what, err)
		}
		if _, err := replay.Undo(testCtx(t), providers.UndoRequest{Address: addr, Type: c.typ, Undo: raw}); err != nil {
			t.Fatalf("undo %s again (replayed): %v", what, err)
		}
	}
	// read passes the last known state, as the executor does: it keeps
	// what only config decides (a MAC left to the provider: null).
	read := func(t *testing.T, id string, state cty.Value) providers.ReadResponse {
		t.Helper()
		resp, err := p.Read(testCtx(t), providers.ReadRequest{Address: addr, Type: c.typ, ID: id, State: state})
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		return resp
	}
	settle := func(t *testing.T, req providers.SettleRequest, want bool) providers.SettleResponse {
		t.Helper()
		req.Address, req.Type = addr, c.typ
		resp, err := replay.Settle(testCtx(t), req)
		if err != nil {
			t.Fatalf("settle %s: %v", req.Action, err)
		}
		if resp.TookEffect != want {
			t.Fatalf("settle %s: took effect = %v, want %v", req.Action, resp.TookEffect, want)
		}
		if want && len(resp.Undo) == 0 {
			t.Fatalf("settle %s: took effect but no undo", req.Action)
		}
		return resp
	}
	create := func(t *testing.T, cfg cty.Value, opID string) providers.CreateResponse {
		t.Helper()
		problems := mustPreflight(t, p, providers.PreflightStep{Address: addr, Type: c.typ, Action: providers.ActionCreate, Config: cfg})
		wantNoProblems(t, problems)
		resp, err := p.Create(testCtx(t), providers.CreateRequest{Address: addr, Type: c.typ, OpID: opID, Config: cfg})
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
			if a.Default != cty.NilVal && cfg.GetAttr(name).IsNull() && !got.Equals(a.Default).True() {
				t.Errorf("create: attribute %s = %#v, want the default %#v", name, got, a.Default)
			}
			// What config set, state says back: otherwise the next plan
			// would show a change.
			// (As the plan modifier predicts it: an unknown part, such
			// as an interface's leased addresses, may be anything.)
			if cv := planned(c.typ, cty.NilVal, cfg).GetAttr(name); !cv.IsNull() && (a.Required || a.Optional) && !conforms(got, cv) {
				t.Errorf("create: attribute %s = %#v, config said %#v", name, got, cv)
			}
		}
		return resp
	}

	t.Run("lifecycle", func(t *testing.T) {
		opID := newOpID(t)
		created := create(t, c.config, opID)
		id, state := created.ID, created.State
		host(t, "created", state)

		if got := read(t, id, state); !got.Exists {
			t.Fatal("read after create: does not exist")
		} else {
			same(t, "read after create", got.State, state)
		}
		// Read by name only: what settles a create whose outcome is unknown.
		if got, err := p.Read(testCtx(t), providers.ReadRequest{Address: addr, Type: c.typ, State: c.config}); err != nil || !got.Exists {
			t.Fatalf("read by name after create: exists=%v, %v", got.Exists, err)
		}
		s := settle(t, providers.SettleRequest{Action: providers.ActionCreate, OpID: opID, Config: c.config}, true)
		if s.ID != id {
			t.Errorf("settle create: id %q, want %q", s.ID, id)
		}
		same(t, "settle create", s.State, state)
		settle(t, providers.SettleRequest{Action: providers.ActionCreate, OpID: opID + "/other", Config: with(c.config, "name", cty.StringVal(testName("none")))}, false)

		if c.update != cty.NilVal {
			step := providers.PreflightStep{Address: addr, Type: c.typ, Action: providers.ActionUpdate, ID: id, Prior: state, Config: c.update}
			wantNoProblems(t, mustPreflight(t, p, step))
			settle(t, providers.SettleRequest{Action: providers.ActionUpdate, OpID: opID + "/update", ID: id, Prior: state, Config: c.update}, false)
			upd, err := p.Update(testCtx(t), providers.UpdateRequest{Address: addr, Type: c.typ, OpID: opID + "/update", ID: id, Prior: state, Config: c.update})
			if err != nil {
				t.Fatalf("update: %v", err)
			}
			host(t, "updated", upd.State)
			same(t, "read after update", read(t, id, upd.State).State, upd.State)
			s := settle(t, providers.SettleRequest{Action: providers.ActionUpdate, OpID: opID + "/update", ID: id, Prior: state, Config: c.update}, true)
			same(t, "settle update", s.State, upd.State)
			undo(t, "update", upd.Undo)
			same(t, "read after undo of update", read(t, id, state).State, state)
			host(t, "created", state)
			// The undo Settle builds reverses the update as well.
			if _, err := p.Update(testCtx(t), providers.UpdateRequest{Address: addr, Type: c.typ, OpID: opID + "/update2", ID: id, Prior: state, Config: c.update}); err != nil {
				t.Fatalf("update again: %v", err)
			}
			s = settle(t, providers.SettleRequest{Action: providers.ActionUpdate, OpID: opID + "/update2", ID: id, Prior: state, Config: c.update}, true)
			undo(t, "update (from settle)", s.Undo)
			same(t, "read after undo of update (from settle)", read(t, id, state).State, state)
		}

		if c.replace != cty.NilVal {
			// As the executor runs a replacement: retire the old object,
			// create the new one; here the apply then fails, so both are
			// undone, last first.
			wantNoProblems(t, mustPreflight(t, p,
				providers.PreflightStep{Address: addr, Type: c.typ, Action: providers.ActionDelete, ID: id, Prior: state},
				providers.PreflightStep{Address: addr, Type: c.typ, Action: providers.ActionCreate, Config: c.replace}))
			ret, err := p.Retire(testCtx(t), providers.RetireRequest{Address: addr, Type: c.typ, OpID: opID + "/replace-retire", ID: id, State: state})
			if err != nil {
				t.Fatalf("replace: retire: %v", err)
			}
			host(t, "retired", state)
			nc, err := p.Create(testCtx(t), providers.CreateRequest{Address: addr, Type: c.typ, OpID: opID + "/replace-create", Config: c.replace})
			if err != nil {
				t.Fatalf("replace: create under the same name: %v", err)
			}
			host(t, "replaced", nc.State)
			if got := read(t, nc.ID, nc.State); !got.Exists {
				t.Fatal("replace: the new object does not exist")
			}
			undo(t, "replace: create", nc.Undo)
			undo(t, "replace: retire", ret.Undo)
			host(t, "created", state)
			same(t, "read after undo of the replacement", read(t, id, state).State, state)
		}

		ret, err := p.Retire(testCtx(t), providers.RetireRequest{Address: addr, Type: c.typ, OpID: opID + "/retire", ID: id, State: state})
		if err != nil {
			t.Fatalf("retire: %v", err)
		}
		host(t, "retired", state)
		s = settle(t, providers.SettleRequest{Action: providers.ActionDelete, OpID: opID + "/retire", ID: id, Prior: state}, true)
		undo(t, "retire (from settle)", s.Undo)
		host(t, "unretired", state)
		if got := read(t, id, state); !got.Exists {
			t.Fatal("read after undo of retire: does not exist")
		} else {
			same(t, "read after undo of retire", got.State, state)
		}
		undo(t, "retire", ret.Undo) // again: a no-op
		settle(t, providers.SettleRequest{Action: providers.ActionDelete, OpID: opID + "/retire", ID: id, Prior: state}, false)

		ret, err = p.Retire(testCtx(t), providers.RetireRequest{Address: addr, Type: c.typ, OpID: opID + "/retire2", ID: id, State: state})
		if err != nil {
			t.Fatalf("retire again: %v", err)
		}
		host(t, "retired", state)
		for i := 0; i < 2; i++ { // purge is idempotent
			if _, err := p.Purge(testCtx(t), providers.PurgeRequest{Address: addr, Type: c.typ, ID: id, State: state, Undo: ret.Undo}); err != nil {
				t.Fatalf("purge #%d: %v", i+1, err)
			}
		}
		host(t, "purged", state)
		if got := read(t, id, state); got.Exists {
			t.Fatalf("read after purge: still exists: %#v", got.State)
		}
	})

	t.Run("undo-create", func(t *testing.T) {
		created := create(t, c.config, newOpID(t))
		undo(t, "create", created.Undo)
		host(t, "undone", created.State)
		if got := read(t, created.ID, created.State); got.Exists {
			t.Fatalf("read after undo of create: still exists: %#v", got.State)
		}
		if got, err := p.Read(testCtx(t), providers.ReadRequest{Address: addr, Type: c.typ, State: c.config}); err != nil || got.Exists {
			t.Fatalf("read by name after undo of create: exists=%v, %v", got.Exists, err)
		}
	})

	t.Run("import", func(t *testing.T) {
		created := create(t, c.config, newOpID(t))
		defer undo(t, "create", created.Undo)
		ids := []string{created.ID}
		if c.importID != nil {
			ids = append(ids, c.importID(created.State))
		}
		for _, id := range ids {
			imp, err := replay.Import(testCtx(t), providers.ImportRequest{Address: addr, Type: c.typ, ID: id})
			if err != nil {
				t.Fatalf("import %s: %v", id, err)
			}
			if imp.ID != created.ID {
				t.Errorf("import %s: id %q, want %q", id, imp.ID, created.ID)
			}
			if !imp.State.Type().Equals(schema.ImpliedType()) {
				t.Fatalf("import %s: state %#v is not a %s", id, imp.State, schema.ImpliedType().FriendlyName())
			}
			same(t, "import "+id, imp.State, created.State, c.importSkip...)
		}
		if _, err := replay.Import(testCtx(t), providers.ImportRequest{Address: addr, Type: c.typ, ID: testName("missing")}); err == nil {
			t.Error("import of a missing object succeeded")
		}
	})
}

// conforms says whether a known value is what a planned one (whose unknown
// parts may be anything) said.
func conforms(got, plan cty.Value) bool {
	switch {
	case !plan.IsKnown():
		return true
	case plan.IsNull() || got.IsNull() || !got.IsKnown():
		return plan.IsNull() == got.IsNull() && got.IsKnown()
	case plan.Type().IsObjectType() && got.Type().IsObjectType():
		for n := range plan.Type().AttributeTypes() {
			if !got.Type().HasAttribute(n) || !conforms(got.GetAttr(n), plan.GetAttr(n)) {
				return false
			}
		}
		return true
	case (plan.Type().IsListType() || plan.Type().IsTupleType()) && (got.Type().IsListType() || got.Type().IsTupleType()):
		if plan.LengthInt() != got.LengthInt() {
			return false
		}
		ps, gs := plan.AsValueSlice(), got.AsValueSlice()
		for i := range ps {
			if !conforms(gs[i], ps[i]) {
				return false
			}
		}
		return true
	}
	eq := got.Equals(plan)
	return eq.IsKnown() && eq.True()
}
