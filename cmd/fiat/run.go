package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"

	"fiat/engine"
	"fiat/executor"
	"fiat/hcl"
	"fiat/internal/panics"
	"fiat/server"
)

// Exit codes. With -detailed-exitcode, plan exits 2 when there are changes.
const (
	exitOK      = 0
	exitError   = 1
	exitChanges = 2
)

// Main is the CLI; tests drive it with their own streams.
type Main struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Interactive reports whether approval can be asked on Stdin; nil
	// means "is Stdin a terminal".
	Interactive func() bool

	// Engine plans and applies; nil means engine.Default().
	Engine *engine.Engine

	jsonOut *json.Encoder // set by commands run with -json

	// inv is set when a fiat server runs the command for a client: the
	// store is the server's, and outcome records how the command ended.
	inv     *server.Invocation
	outcome server.Outcome
}

func (m *Main) engine() *engine.Engine {
	if m.Engine == nil {
		m.Engine = engine.Default()
	}
	return m.Engine
}

const usage = `Usage: fiat <command> [flags] [DIR]

Commands:
  validate            check the configuration in DIR (default .)
  plan                show what apply would change
  apply [FILE]        apply the configuration, or a plan saved with plan -out
  show FILE           show a plan saved with plan -out (-json, -markdown)
  destroy             delete everything the stack manages
  state list          list the stack's entities
  state show ADDRESS  show one entity
  history             list the stack's revisions
  recover             roll back a crashed run, finish pending cleanup, retry failed undos
  unlock LOCK_ID      release a stack lock held by a run that is gone
  state forget ADDR   stop managing an object (the object is not touched)
  import-tfstate FILE adopt the objects a Terraform/OpenTofu state manages (nothing is changed)

Cluster (see README "A fiat cluster"):
  server              run one node of a fiat cluster
  operator members    list the cluster's nodes (also: remove NAME, snapshot save|restore FILE)
  runs [STACK]        list the runs of a cluster (runs retry ID: run a failed git commit again)
  run show ID         show one run: status, output, error

Every command above takes -server URL[,URL...] (or FIAT_ADDR) to run on a cluster.

Run "fiat <command> -h" for a command's flags.
`

// Run runs one command and returns the process exit code. A panic is a
// bug: it is reported in two lines (the full trace goes to a file) and
// exits 1, never Go's 2, which -detailed-exitcode defines as "changes".
func (m *Main) Run(ctx context.Context, args []string) (code int) {
	defer func() {
		if r := recover(); r != nil {
			trace := panics.WriteTrace(r, debug.Stack())
			if trace == "" {
				trace = "(the trace could not be written)"
			}
			fmt.Fprintf(m.Stderr, "Error: fiat crashed: %v\n       This is a bug in fiat; please report it with the trace in %s\n", r, trace)
			code = exitError
		}
	}()
	return m.run(ctx, args)
}

func (m *Main) run(ctx context.Context, args []string) int {
	if len(args) == 0 {
		fmt.Fprint(m.Stderr, usage)
		return exitError
	}
	var err error
	code := exitOK
	switch args[0] {
	case "validate":
		err = m.validate(ctx, args[1:])
	case "plan":
		code, err = m.plan(ctx, args[1:])
	case "show":
		err = m.show(ctx, args[1:])
	case "apply":
		err = m.apply(ctx, args[1:], false)
	case "destroy":
		err = m.apply(ctx, args[1:], true)
	case "state":
		err = m.state(ctx, args[1:])
	case "history":
		err = m.history(ctx, args[1:])
	case "recover":
		err = m.recover(ctx, args[1:])
	case "unlock":
		err = m.unlock(ctx, args[1:])
	case "import-tfstate":
		err = m.importTFState(ctx, args[1:])
	case "server":
		err = m.serve(ctx, args[1:])
	case "operator":
		err = m.operator(ctx, args[1:])
	case "runs":
		err = m.runs(ctx, args[1:], false)
	case "run":
		if len(args) < 2 || args[1] != "show" {
			err = errors.New("run needs a subcommand: show ID")
			break
		}
		err = m.runs(ctx, args[2:], true)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(m.Stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(m.Stderr, "fiat: unknown command %q\n\n%s", args[0], usage)
		return exitError
	}
	m.outcome.Err = err
	var ec exitCode
	if errors.As(err, &ec) {
		return int(ec) // the server printed everything
	}
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		m.printError(err)
		return exitError
	}
	return code
}

// exitCode ends a command with a code and nothing more to print: a run on
// a server printed its own output and error.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// actor and holder name who runs a command on a server (embedded: the
// defaults, this process).
func (m *Main) actor() string {
	if m.inv != nil {
		return m.inv.Actor
	}
	return ""
}

func (m *Main) holder() string {
	if m.inv != nil {
		return m.inv.Holder
	}
	return ""
}

func (m *Main) printError(err error) {
	if errors.Is(err, errSilent) {
		return // already reported (validate -json)
	}
	if m.jsonOut != nil {
		var ae *executor.Error
		if errors.As(err, &ae) {
			m.jsonOut.Encode(map[string]any{"type": "error", "error": ae})
		} else {
			m.jsonOut.Encode(map[string]any{"type": "error", "error": map[string]string{"message": err.Error()}})
		}
		return
	}
	var de *hcl.DiagError
	if errors.As(err, &de) {
		writeDiagnostics(m.Stderr, de.Diags, de.Files)
		return
	}
	msg := err.Error()
	fmt.Fprintf(m.Stderr, "Error: %s\n", strings.ReplaceAll(msg, "\n", "\n       "))
}

func (m *Main) interactive() bool {
	if m.Interactive != nil {
		return m.Interactive()
	}
	f, ok := m.Stdin.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// varFlags collects repeated -var name=value flags.
type varFlags map[string]string

func (v varFlags) String() string { return "" }

func (v varFlags) Set(s string) error {
	name, val, ok := strings.Cut(s, "=")
	if !ok || name == "" {
		return fmt.Errorf("-var wants name=value, got %q", s)
	}
	v[name] = val
	return nil
}
