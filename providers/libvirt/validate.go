package libvirt

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
)

// validateXML checks a generated document against libvirt's RelaxNG schema
// (kind: "domain", "network", "pool") with virt-xml-validate, read-only,
// for preflight. It needs the local schemas to be the host's: only for a
// local host, and only when virt-xml-validate and xmllint are installed
// (scripts/libvirtd.sh installs them); otherwise it checks nothing and
// the define's own validation (VIR_*_DEFINE_VALIDATE) is the check.
func (p *Provider) validateXML(kind, doc string) error {
	if !p.conn.local() || !xmlValidator() {
		return nil
	}
	f, err := os.CreateTemp("", "fiat-"+kind+"-*.xml")
	if err != nil {
		return nil // cannot check: the define validates anyway
	}
	defer os.Remove(f.Name())
	_, werr := f.WriteString(doc)
	if cerr := f.Close(); werr != nil || cerr != nil {
		return nil
	}
	var out bytes.Buffer
	cmd := exec.Command("virt-xml-validate", f.Name(), kind)
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() != 127 {
		msg := strings.ReplaceAll(strings.TrimSpace(out.String()), f.Name(), kind+".xml")
		return fmt.Errorf("the generated %s XML does not validate against libvirt's schema: %s", kind, msg)
	}
	return nil
}

var xmlValidator = sync.OnceValue(func() bool {
	_, err1 := exec.LookPath("virt-xml-validate")
	_, err2 := exec.LookPath("xmllint")
	return err1 == nil && err2 == nil
})
