// Command benchplan measures planning N fiat_data resources (1,000, 10,000
// and 50,000) in three shapes, from an empty store and with no changes, and
// prints time and peak RSS per case. Each case runs in its own process, so
// its peak RSS is its own. `make bench` runs it.
//
// A case loads the configuration from disk (hcl), plans it with the engine
// (as every command does) and renders its summary; the stored entities are made beforehand, as if
// read from the store. -cli also measures the whole `fiat plan` command on a
// real on-disk store (store read, provider reads, plan).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"fiat/engine"
	"fiat/hcl"
	"fiat/internal/gen"
	"fiat/planner"
	"fiat/state"
)

func main() {
	one := flag.String("case", "", "run one case: SHAPE:N:empty|nochange (internal)")
	fill := flag.String("fill", "", "fill the store DIR with a no-change stack: DIR:SHAPE:N (internal)")
	sizes := flag.String("n", "1000,10000,50000", "resource counts")
	reps := flag.Int("reps", 3, "runs per case; the fastest is reported")
	cli := flag.String("cli", "", "also time the whole `fiat plan` command, using this fiat binary, on a real store (no-change cases)")
	flag.Parse()
	if *fill != "" {
		p := strings.Split(*fill, ":")
		n, _ := strconv.Atoi(p[2])
		if err := fillStore(p[0], gen.Shape(p[1]), n); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	if *one != "" {
		if err := runCase(*one); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	if err := table(os.Stdout, *sizes, *reps); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if *cli != "" {
		if err := cliTable(os.Stdout, *cli, *sizes, *reps); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
}

// cliTable times `fiat plan -detailed-exitcode` against a store holding
// the N entities: store read, provider reads (refresh) and plan.
func cliTable(w io.Writer, fiat, sizes string, reps int) error {
	fmt.Fprintf(w, "\nwhole command: fiat plan on an on-disk store with no changes (store read, refresh reads, plan)\n\n")
	fmt.Fprintf(w, "%-12s %7s %-10s %10s %12s\n", "shape", "N", "refresh", "time", "peak RSS")
	for _, shape := range gen.Shapes {
		for _, ns := range strings.Split(sizes, ",") {
			n, err := strconv.Atoi(ns)
			if err != nil {
				return err
			}
			dir, err := os.MkdirTemp("", "fiat-bench-cli-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			if err := gen.Write(dir, shape, n); err != nil {
				return err
			}
			// In another process: this one must stay small, since a
			// child starts with its parent's RSS until it execs.
			self, err := os.Executable()
			if err != nil {
				return err
			}
			fill := exec.Command(self, "-fill", fmt.Sprintf("%s:%s:%d", filepath.Join(dir, ".fiat"), shape, n))
			fill.Stderr = os.Stderr
			if err := fill.Run(); err != nil {
				return fmt.Errorf("fill store: %w", err)
			}
			for _, refresh := range []bool{true, false} {
				best, rss := time.Duration(0), int64(0)
				for r := 0; r < reps; r++ {
					cmd := exec.Command(fiat, "plan", "-detailed-exitcode", "-stack", "bench", fmt.Sprintf("-refresh=%v", refresh), dir)
					cmd.Stderr = os.Stderr
					start := time.Now()
					out, err := cmd.Output()
					d := time.Since(start)
					if err != nil {
						return fmt.Errorf("fiat plan %s %d: %w\n%s", shape, n, err, out)
					}
					if best == 0 || d < best {
						best = d
					}
					if ru := cmd.ProcessState.SysUsage().(*syscall.Rusage); r == 0 || ru.Maxrss*1024 < rss {
						rss = ru.Maxrss * 1024
					}
				}
				fmt.Fprintf(w, "%-12s %7d %-10v %9.3fs %9.0f MB\n", shape, n, refresh, best.Seconds(), float64(rss)/1e6)
			}
		}
	}
	return nil
}

// fillStore commits the entities of a no-change plan into a new store.
func fillStore(dataDir string, shape gen.Shape, n int) error {
	ctx := context.Background()
	ents, err := gen.Entities("bench", shape, n)
	if err != nil {
		return err
	}
	st, err := state.Open(ctx, state.Options{Dir: dataDir})
	if err != nil {
		return err
	}
	defer st.Close()
	lock, err := st.Lock(ctx, "bench", "benchplan", time.Hour)
	if err != nil {
		return err
	}
	defer st.Unlock(ctx, lock)
	_, err = st.Commit(ctx, lock, state.Commit{Stack: "bench", Put: ents, Meta: state.Meta{Command: "bench"}})
	return err
}

func table(w io.Writer, sizes string, reps int) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "fiat plan benchmark: hcl load + plan + render, fiat_data resources (%s, %d CPUs, %s)\n\n", runtime.GOARCH, runtime.NumCPU(), runtime.Version())
	fmt.Fprintf(w, "%-12s %7s %-10s %10s %12s %10s\n", "shape", "N", "store", "time", "peak RSS", "steps")
	for _, shape := range gen.Shapes {
		for _, ns := range strings.Split(sizes, ",") {
			for _, mode := range []string{"empty", "nochange"} {
				best, rss, steps := time.Duration(0), int64(0), ""
				for r := 0; r < reps; r++ {
					cmd := exec.Command(self, "-case", fmt.Sprintf("%s:%s:%s", shape, ns, mode))
					cmd.Stderr = os.Stderr
					out, err := cmd.Output()
					if err != nil {
						return fmt.Errorf("case %s %s %s: %w", shape, ns, mode, err)
					}
					f := strings.Fields(string(out))
					if len(f) != 2 {
						return fmt.Errorf("case %s %s %s: unexpected output %q", shape, ns, mode, out)
					}
					ns, _ := strconv.ParseInt(f[0], 10, 64)
					d := time.Duration(ns)
					if best == 0 || d < best {
						best = d
					}
					ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
					if r == 0 || ru.Maxrss*1024 < rss {
						rss = ru.Maxrss * 1024 // Linux reports KiB
					}
					steps = f[1]
				}
				fmt.Fprintf(w, "%-12s %7s %-10s %9.3fs %9.0f MB %10s\n", shape, ns, mode, best.Seconds(), float64(rss)/1e6, steps)
			}
		}
	}
	return nil
}

// stored is a store that holds the case's entities, as if read from disk:
// the case measures planning, not the store.
type stored []state.Entity

func (s stored) Revision(context.Context) (uint64, error)             { return 1, nil }
func (s stored) List(context.Context, string) ([]state.Entity, error) { return s, nil }

// runCase plans one case and prints "nanoseconds steps".
func runCase(spec string) error {
	parts := strings.Split(spec, ":")
	if len(parts) != 3 {
		return errors.New("case wants SHAPE:N:MODE")
	}
	shape := gen.Shape(parts[0])
	n, err := strconv.Atoi(parts[1])
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "fiat-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := gen.Write(dir, shape, n); err != nil {
		return err
	}
	var ents []state.Entity
	if parts[2] == "nochange" {
		if ents, err = gen.Entities("bench", shape, n); err != nil {
			return err
		}
	}
	eng := engine.Default()
	runtime.GC()
	if prof := os.Getenv("FIAT_BENCH_CPUPROFILE"); prof != "" {
		f, err := os.Create(prof)
		if err != nil {
			return err
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	start := time.Now()
	cfg, diags := hcl.Load(dir, hcl.Options{Env: []string{}})
	if diags.HasErrors() {
		return diags
	}
	plan, err := eng.Plan(context.Background(), stored(ents), engine.PlanOptions{Stack: "bench", Config: cfg})
	if err != nil {
		return err
	}
	if err := planner.RenderText(io.Discard, plan); err != nil {
		return err
	}
	elapsed := time.Since(start)
	if prof := os.Getenv("FIAT_BENCH_MEMPROFILE"); prof != "" {
		f, err := os.Create(prof)
		if err != nil {
			return err
		}
		runtime.GC()
		pprof.WriteHeapProfile(f)
		f.Close()
		runtime.KeepAlive(plan)
		runtime.KeepAlive(cfg)
	}
	want := planner.Create
	if parts[2] == "nochange" {
		want = planner.NoOp
	}
	if c := plan.Counts(); c[want] != n {
		return fmt.Errorf("plan has %v, want %d %s", c, n, want)
	}
	fmt.Printf("%d %d\n", elapsed.Nanoseconds(), len(plan.Steps))
	return nil
}
