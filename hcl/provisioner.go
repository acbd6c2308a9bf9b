package hcl

import (
	"fmt"

	hcl2 "github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// Provisioner is a provisioner block of a resource: a command run, or a
// file written, once the object is created, as a step of the same
// transaction.
type Provisioner struct {
	Type       string // "local-exec", "remote-exec", "file"
	Body       hcl2.Body
	OnFailure  string    // "fail" (the transaction rolls back) or "continue"
	Connection hcl2.Body // its own connection block, or nil for the resource's
	DeclRange  hcl2.Range
}

var provisionerMeta = &hcl2.BodySchema{
	Attributes: []hcl2.AttributeSchema{{Name: "when"}, {Name: "on_failure"}},
	Blocks:     []hcl2.BlockHeaderSchema{{Type: "connection"}},
}

// ProvisionerSpecs are the arguments of each provisioner type. local-exec's
// undo is fiat's own: the command that takes the command back on a
// rollback (without it, a local-exec cannot be undone).
var ProvisionerSpecs = map[string]hcldec.ObjectSpec{
	"local-exec": {
		"command":     &hcldec.AttrSpec{Name: "command", Type: cty.String, Required: true},
		"interpreter": &hcldec.AttrSpec{Name: "interpreter", Type: cty.List(cty.String)},
		"working_dir": &hcldec.AttrSpec{Name: "working_dir", Type: cty.String},
		"environment": &hcldec.AttrSpec{Name: "environment", Type: cty.Map(cty.String)},
		"quiet":       &hcldec.AttrSpec{Name: "quiet", Type: cty.Bool},
		"undo":        &hcldec.AttrSpec{Name: "undo", Type: cty.String},
	},
	"remote-exec": {
		"inline":  &hcldec.AttrSpec{Name: "inline", Type: cty.List(cty.String)},
		"script":  &hcldec.AttrSpec{Name: "script", Type: cty.String},
		"scripts": &hcldec.AttrSpec{Name: "scripts", Type: cty.List(cty.String)},
	},
	"file": {
		"source":      &hcldec.AttrSpec{Name: "source", Type: cty.String},
		"content":     &hcldec.AttrSpec{Name: "content", Type: cty.String},
		"destination": &hcldec.AttrSpec{Name: "destination", Type: cty.String, Required: true},
	},
}

// ConnectionSpec is a connection block (ssh).
var ConnectionSpec = hcldec.ObjectSpec{
	"type":        &hcldec.AttrSpec{Name: "type", Type: cty.String},
	"host":        &hcldec.AttrSpec{Name: "host", Type: cty.String, Required: true},
	"port":        &hcldec.AttrSpec{Name: "port", Type: cty.Number},
	"user":        &hcldec.AttrSpec{Name: "user", Type: cty.String},
	"password":    &hcldec.AttrSpec{Name: "password", Type: cty.String},
	"private_key": &hcldec.AttrSpec{Name: "private_key", Type: cty.String},
	"timeout":     &hcldec.AttrSpec{Name: "timeout", Type: cty.String},
	"agent":       &hcldec.AttrSpec{Name: "agent", Type: cty.Bool},
	"host_key":    &hcldec.AttrSpec{Name: "host_key", Type: cty.String},
}

func (r *Resource) addProvisioner(b *hcl2.Block) hcl2.Diagnostics {
	p := &Provisioner{Type: b.Labels[0], OnFailure: "fail", DeclRange: b.DefRange}
	if _, ok := ProvisionerSpecs[p.Type]; !ok {
		return errorDiag("Unsupported provisioner",
			fmt.Sprintf("fiat runs local-exec, remote-exec and file provisioners, not %q.%s", p.Type, DidYouMean(p.Type, keys(ProvisionerSpecs))), b.LabelRanges[0].Ptr())
	}
	content, rest, diags := b.Body.PartialContent(provisionerMeta)
	p.Body = rest
	if a, ok := content.Attributes["when"]; ok {
		t, d := hcl2.AbsTraversalForExpr(a.Expr)
		if d.HasErrors() || len(t) != 1 || (t.RootName() != "create" && t.RootName() != "destroy") {
			diags = append(diags, errorDiag("Invalid when", "when is create or destroy.", a.Expr.Range().Ptr())...)
		} else if t.RootName() == "destroy" {
			diags = append(diags, errorDiag("Destroy-time provisioners are not supported",
				"fiat runs provisioners when an object is created, as steps of that transaction; a command run while an object is destroyed could not be undone. Remove when = destroy, or run the command outside fiat.",
				a.Expr.Range().Ptr())...)
		}
	}
	if a, ok := content.Attributes["on_failure"]; ok {
		t, d := hcl2.AbsTraversalForExpr(a.Expr)
		if d.HasErrors() || len(t) != 1 || (t.RootName() != "fail" && t.RootName() != "continue") {
			diags = append(diags, errorDiag("Invalid on_failure", "on_failure is fail or continue.", a.Expr.Range().Ptr())...)
		} else {
			p.OnFailure = t.RootName()
		}
	}
	for _, cb := range content.Blocks {
		p.Connection = cb.Body
	}
	r.Provisioners = append(r.Provisioners, p)
	return diags
}

// provisionerTraversals are the references of a resource's provisioners
// and connection blocks, less self (the resource itself): what they need
// applied first.
func (r *Resource) provisionerTraversals() []hcl2.Traversal {
	var bodies []hcl2.Body
	if r.Connection != nil {
		bodies = append(bodies, r.Connection)
	}
	for _, p := range r.Provisioners {
		bodies = append(bodies, p.Body)
		if p.Connection != nil {
			bodies = append(bodies, p.Connection)
		}
	}
	// when and on_failure hold keywords, not references.
	meta := map[string]bool{"when": true, "on_failure": true, "connection": true}
	var out []hcl2.Traversal
	for _, b := range bodies {
		travs, _ := bodyTraversals(b, meta)
		for _, t := range travs {
			if t.RootName() != "self" {
				out = append(out, t)
			}
		}
	}
	return out
}

// EvalProvisioner evaluates provisioner i of an instance, and the
// connection it uses, with self the object's final state.
func (e *Evaluator) EvalProvisioner(resource string, key cty.Value, i int, self cty.Value) (config, conn cty.Value, diags hcl2.Diagnostics) {
	r := e.cfg.Resources[resource]
	if r == nil || i >= len(r.Provisioners) {
		return cty.NilVal, cty.NilVal, errorDiag("No such provisioner", fmt.Sprintf("%s has no provisioner %d", resource, i), nil)
	}
	p := r.Provisioners[i]
	inst, d := e.instanceOf(r, key)
	if d.HasErrors() {
		return cty.NilVal, cty.NilVal, d
	}
	ctx, d := e.scope(r.Module, r.refs, inst)
	diags = append(diags, d...)
	if d.HasErrors() {
		return cty.NilVal, cty.NilVal, diags
	}
	ctx.Variables["self"] = self
	config, d = hcldec.Decode(p.Body, ProvisionerSpecs[p.Type], ctx)
	diags = append(diags, d...)
	cb := p.Connection
	if cb == nil {
		cb = r.Connection
	}
	if cb != nil {
		conn, d = hcldec.Decode(cb, ConnectionSpec, ctx)
		diags = append(diags, d...)
	}
	return config, conn, diags
}

// HasUndo says whether a local-exec declares the command that undoes it.
func (p *Provisioner) HasUndo() bool {
	if sb, ok := p.Body.(*hclsyntax.Body); ok {
		_, has := sb.Attributes["undo"]
		return has
	}
	return false
}
