package libvirt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/zclconf/go-cty/cty"
)

// xml { xslt = file("nicmodel.xsl") }: an XSLT stylesheet applied to the
// XML fiat generates for an object, just before libvirt defines it, as the
// upstream provider (dmacvicar/libvirt) does it: by running xsltproc where
// fiat runs, with no network and no file writes. It reaches what fiat has
// no attribute for (a NIC model, an extra channel). It runs when fiat
// creates the object; later redefines start from libvirt's XML, which
// keeps what it changed. The stylesheet is kept in state as written, and a
// changed stylesheet replaces the object.
var xmlType = cty.ObjectWithOptionalAttrs(map[string]cty.Type{"xslt": cty.String}, []string{"xslt"})

// xsltTimeout bounds one xsltproc run: a stylesheet can loop forever.
const xsltTimeout = 30 * time.Second

// xsltOf returns the stylesheet config gives in its xml block, "" if none.
func xsltOf(v cty.Value) (string, error) {
	blocks, _, err := listAttr(v, "xml")
	if err != nil {
		return "", err
	}
	for _, b := range blocks {
		return field(b, "xslt"), nil
	}
	return "", nil
}

// xmlState is the xml attribute as state keeps it: prior's (config's), or
// null.
func xmlState(prior cty.Value) cty.Value {
	if prior != cty.NilVal && !isNullAttr(prior, "xml") {
		if v := prior.GetAttr("xml"); v.IsWhollyKnown() {
			return v
		}
	}
	return cty.NullVal(cty.List(xmlType.WithoutOptionalAttributesDeep()))
}

// applyXSLT transforms doc with the stylesheet xslt ("" leaves it as is).
// Errors carry xsltproc's own message, which names the line at fault.
func applyXSLT(ctx context.Context, doc, xslt string) (string, error) {
	if strings.TrimSpace(xslt) == "" {
		return doc, nil
	}
	dir, err := os.MkdirTemp("", "fiat-xslt-")
	if err != nil {
		return "", fmt.Errorf("apply xml.xslt: %w", err)
	}
	defer os.RemoveAll(dir)
	style := filepath.Join(dir, "stylesheet.xsl")
	if err := os.WriteFile(style, []byte(strings.TrimSpace(xslt)), 0o600); err != nil {
		return "", fmt.Errorf("apply xml.xslt: %w", err)
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, xsltTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "xsltproc", "--nomkdir", "--nonet", "--nowrite", style, "-")
	cmd.Stdin = strings.NewReader(doc)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if errors.Is(err, exec.ErrNotFound) {
		return "", fmt.Errorf("apply xml.xslt: xsltproc is not installed where fiat runs (Debian: apt install xsltproc): %w", err)
	}
	if err != nil {
		if parent.Err() != nil { // interrupted: say so, as a cancellation
			return "", fmt.Errorf("apply xml.xslt: %w", parent.Err())
		}
		msg := strings.TrimSpace(strings.ReplaceAll(stderr.String(), style, "xslt"))
		if ctx.Err() != nil {
			msg = fmt.Sprintf("stopped after %v", xsltTimeout)
		}
		return "", fmt.Errorf("apply xml.xslt: xsltproc: %s: %w", msg, err)
	}
	if len(bytes.TrimSpace(out)) == 0 {
		return "", errors.New("apply xml.xslt: the stylesheet produced an empty document")
	}
	return string(out), nil
}

// xsltProblems is preflight's check of a stylesheet config gives, before
// the XML it will run on is known: one xsltproc cannot read fails on any
// document, so it is tried on probe, a minimal one of the object's kind.
func xsltProblems(ctx context.Context, config cty.Value, probe string) []string {
	xslt, err := xsltOf(config)
	if err != nil || xslt == "" {
		return nil
	}
	if _, err := applyXSLT(ctx, probe, xslt); err != nil {
		return []string{err.Error()}
	}
	return nil
}
