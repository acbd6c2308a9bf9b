// Package panics turns a panic into something an operator can act on: the
// full trace goes to a file, and the caller gets a short message naming it.
// fiat never lets a panic end a run with Go's exit code 2, which
// -detailed-exitcode defines as "changes".
package panics

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"
)

// WriteTrace writes a panic's value and stack to a new file in the
// system's temporary directory and returns its path ("" when it could not
// be written; the caller still reports the value).
func WriteTrace(value any, stack []byte) string {
	name := filepath.Join(os.TempDir(), fmt.Sprintf("fiat-panic-%s-%d.txt", time.Now().UTC().Format("20060102T150405"), os.Getpid()))
	f, err := os.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return ""
	}
	defer f.Close()
	if _, err := fmt.Fprintf(f, "panic: %v\n\n%s", value, stack); err != nil {
		return ""
	}
	return name
}

// Error is a panic recovered into an error.
type Error struct {
	Where string // what was running: "provider libvirt: create"
	Value any
	Trace string // file holding the full stack, "" if none was written
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("%s panicked: %v", e.Where, e.Value)
	if e.Trace != "" {
		msg += fmt.Sprintf(" (a bug: the full trace is in %s)", e.Trace)
	}
	return msg
}

// Recover, deferred, turns a panic of the current goroutine into *err.
//
//	defer panics.Recover("provider libvirt: create", &err)
func Recover(where string, err *error) {
	if r := recover(); r != nil {
		*err = &Error{Where: where, Value: r, Trace: WriteTrace(r, debug.Stack())}
	}
}
