package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"fiat/planner"
	"fiat/server"
)

// Against a server (-server or FIAT_ADDR) a command is a run: the CLI
// uploads the config directory (and any -var-file or saved plan), the
// leader runs the same command with the same code against the cluster's
// store, and its output streams back as it is printed. Paths on the
// command line become "@/..." references into the upload.

// uploadSkip are directories never uploaded: state, VCS, Terraform's cache.
var uploadSkip = map[string]bool{".fiat": true, ".git": true, ".terraform": true}

// remote runs command on the server named by c.server. raw is the
// command's arguments as given; fset parsed them.
func (m *Main) remote(ctx context.Context, command string, fset *flag.FlagSet, raw []string, c *common) error {
	client, err := server.NewClient(c.server, os.Getenv("FIAT_TOKEN"))
	if err != nil {
		return err
	}
	up, outs, err := buildUpload(command, fset, raw, c)
	if err != nil {
		return err
	}
	if (command == "apply" || command == "destroy") && !hasFlag(fset, "auto-approve") && !isPlanFile(up) {
		return m.remoteApprove(ctx, client, command, up)
	}
	return m.submit(ctx, client, up, outs)
}

// remoteApprove is apply (or destroy) at a terminal: a plan run saves the
// plan, the user approves what it showed, and an apply run applies
// exactly that plan file (refused if anything it read changed).
func (m *Main) remoteApprove(ctx context.Context, client *server.Client, command string, up *server.Upload) error {
	if !m.interactive() {
		return fmt.Errorf("%s needs approval: run it at a terminal, or pass -auto-approve", command)
	}
	plan := *up
	plan.Command = "plan"
	plan.Args = append([]string{"-out", "@/out/approved.plan"}, dropFlags(up.Args, "parallelism", "json")...)
	if command == "destroy" {
		plan.Args = append([]string{"-destroy"}, plan.Args...)
	}
	saved := map[string]string{}
	tmp, err := os.MkdirTemp("", "fiat-plan-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	saved["approved.plan"] = filepath.Join(tmp, "approved.plan")
	if err := m.submit(ctx, client, &plan, saved); err != nil {
		return err
	}
	b, err := os.ReadFile(saved["approved.plan"])
	if err != nil {
		return nil // no plan file: nothing to change
	}
	if err := m.approve(command); err != nil {
		return err
	}
	fmt.Fprintln(m.Stdout)
	// The config goes along with the plan: if the leader is lost mid-apply,
	// the new one rolls back with its provider blocks.
	files := maps.Clone(up.Files)
	files["files/approved.plan"] = b
	apply := &server.Upload{Command: "apply", Stack: up.Stack, NoWait: up.NoWait, Paths: up.Paths, Files: files,
		Args: append(keepFlags(up.Args, "parallelism", "json"), "@/files/approved.plan")}
	return m.submit(ctx, client, apply, nil)
}

// submit starts the run and prints its output; if the connection to the
// leader breaks, it follows the run on the cluster until it has ended.
func (m *Main) submit(ctx context.Context, client *server.Client, up *server.Upload, outs map[string]string) error {
	run, id, err := client.Submit(ctx, up, func(f server.Frame) {
		m.Stdout.Write([]byte(f.Out))
		m.Stderr.Write([]byte(f.Err))
		if f.File != nil {
			if dst, ok := outs[f.File.Name]; ok {
				if werr := os.WriteFile(dst, f.File.Data, 0o600); werr != nil {
					fmt.Fprintf(m.Stderr, "Error: write %s: %v\n", dst, werr)
				}
			}
		}
	})
	if errors.Is(err, server.ErrLost) && id != "" {
		fmt.Fprintf(m.Stderr, "Lost the connection to the server running run %s; following it on the cluster...\n", id)
		d, ferr := client.Follow(ctx, id, 2*time.Minute)
		if ferr != nil {
			return fmt.Errorf("%w; see `fiat run show %s`", ferr, id)
		}
		fmt.Fprintf(m.Stderr, "Run %s: %s\n", id, d.Status)
		if d.Error != "" {
			fmt.Fprintf(m.Stderr, "Error: %s\n", strings.ReplaceAll(d.Error, "\n", "\n       "))
		}
		return exitCode(d.ExitCode)
	}
	if err != nil {
		return fmt.Errorf("run %s on %s: %w", up.Command, strings.Join(client.Endpoints, ","), err)
	}
	return exitCode(run.ExitCode)
}

// buildUpload rewrites the command line for the server and collects the
// files it names. outs maps files the server will send back (plan -out)
// to their local paths.
func buildUpload(command string, fset *flag.FlagSet, raw []string, c *common) (*server.Upload, map[string]string, error) {
	up := &server.Upload{Command: command, Files: map[string][]byte{}, Paths: map[string]string{}, NoWait: c.noWait, Stale: c.stale}
	outs := map[string]string{}
	var pos []string
	for i := 0; i < len(raw); i++ {
		t := raw[i]
		if t == "--" {
			pos = append(pos, raw[i+1:]...)
			break
		}
		if !strings.HasPrefix(t, "-") || t == "-" {
			pos = append(pos, raw[i:]...) // flag parsing stops at the first argument
			break
		}
		name, val, inline := strings.Cut(strings.TrimLeft(t, "-"), "=")
		f := fset.Lookup(name)
		if f == nil {
			continue // Parse refused unknown flags already
		}
		if bf, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && bf.IsBoolFlag() {
			if name != "stale" && name != "no-wait" {
				up.Args = append(up.Args, t)
			}
			continue
		}
		if !inline {
			i++
			if i < len(raw) {
				val = raw[i]
			}
		}
		switch name {
		case "server":
		case "data-dir":
			return nil, nil, errors.New("-data-dir does not apply with -server: the cluster's store holds the stack")
		case "var-file":
			b, err := os.ReadFile(val)
			if err != nil {
				return nil, nil, fmt.Errorf("read -var-file: %w", err)
			}
			ref := fmt.Sprintf("vars/%d-%s", len(up.Files), filepath.Base(val))
			up.Files[ref], up.Paths[ref] = b, val
			up.Args = append(up.Args, "-var-file", "@/"+ref)
		case "out":
			outs[filepath.Base(val)] = val
			up.Paths["out/"+filepath.Base(val)] = val
			up.Args = append(up.Args, "-out", "@/out/"+filepath.Base(val))
		default:
			up.Args = append(up.Args, "-"+name, val)
		}
	}
	// A flag whose value came from the environment (FIAT_BASE_COMMIT) is
	// passed on: the server's environment is not the client's.
	if f := fset.Lookup("base-commit"); f != nil && f.Value.String() != "" && !slices.Contains(up.Args, "-base-commit") {
		up.Args = append(up.Args, "-base-commit", f.Value.String())
	}
	dir := "."
	sawDir := false
	for _, p := range pos {
		st, err := os.Stat(p)
		switch {
		case err == nil && st.IsDir():
			dir, sawDir = p, true
			ref, err := uploadDir(up.Files, p, readsConfig(command))
			if err != nil {
				return nil, nil, err
			}
			up.Paths[ref] = filepath.Clean(p)
			up.Args = append(up.Args, "@/"+ref)
		case err == nil && st.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return nil, nil, err
			}
			ref := "files/" + filepath.Base(p)
			up.Files[ref], up.Paths[ref] = b, p
			up.Args = append(up.Args, "@/"+ref)
		default:
			up.Args = append(up.Args, p) // an address or lock id
		}
	}
	if !sawDir && !isPlanFile(up) {
		ref, err := uploadDir(up.Files, dir, readsConfig(command))
		if err != nil {
			return nil, nil, err
		}
		up.Paths[ref] = dir
		up.Args = append(up.Args, "@/"+ref)
	}
	if isPlanFile(up) {
		// A saved plan names its stack.
		sealed, err := planner.Load(up.Paths[strings.TrimPrefix(up.Args[len(up.Args)-1], "@/")])
		if err != nil {
			return nil, nil, err
		}
		up.Stack = sealed.File.Plan.Stack
		return up, outs, nil
	}
	stack, err := c.stackFor(dir)
	if err != nil {
		return nil, nil, err
	}
	if c.stack == "" {
		up.Args = append([]string{"-stack", stack}, up.Args...)
	}
	up.Stack = stack
	return up, outs, nil
}

// isPlanFile says the command applies a saved plan (no config directory).
func isPlanFile(up *server.Upload) bool {
	return up.Command == "apply" && len(up.Args) > 0 && strings.HasPrefix(up.Args[len(up.Args)-1], "@/files/")
}

// readsConfig says whether a command reads the config directory; the
// others (history, state, unlock) only take the stack's name from it.
func readsConfig(command string) bool {
	switch command {
	case "plan", "apply", "destroy", "recover", "import-tfstate":
		return true
	}
	return false
}

// uploadDir adds every regular file under dir to files (if withFiles),
// under "config/<dir's name>/", and returns that prefix.
func uploadDir(files map[string][]byte, dir string, withFiles bool) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	prefix := path.Join("config", filepath.Base(abs))
	if !withFiles {
		return prefix, nil
	}
	total := 0
	err = filepath.WalkDir(abs, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p != abs && uploadSkip[d.Name()] {
			return filepath.SkipDir
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(abs, p)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		total += len(b)
		if total > 8<<20 {
			return fmt.Errorf("the config directory %s holds more than 8 MiB: keep images and other large files out of it (a volume's source can be a URL)", dir)
		}
		files[path.Join(prefix, filepath.ToSlash(rel))] = b
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("upload %s: %w", dir, err)
	}
	return prefix, nil
}

func hasFlag(fset *flag.FlagSet, name string) bool {
	f := fset.Lookup(name)
	return f != nil && f.Value.String() == "true"
}

// dropFlags removes the named flags (and their values) from args.
func dropFlags(args []string, names ...string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		name := strings.TrimLeft(args[i], "-")
		if strings.HasPrefix(args[i], "-") && slices.Contains(names, name) {
			if name == "parallelism" {
				i++
			}
			continue
		}
		out = append(out, args[i])
	}
	return out
}

// keepFlags keeps only the named flags (and their values) of args.
func keepFlags(args []string, names ...string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		name := strings.TrimLeft(args[i], "-")
		if strings.HasPrefix(args[i], "-") && slices.Contains(names, name) {
			out = append(out, args[i])
			if name == "parallelism" && i+1 < len(args) {
				out = append(out, args[i+1])
				i++
			}
		}
	}
	return out
}
