package provision

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"

	"github.com/zclconf/go-cty/cty"
)

func localExec(ctx context.Context, c cty.Value, out func(string)) error {
	return runLocal(ctx, optString(c, "command"), optStrings(c, "interpreter"), optString(c, "working_dir"), optMap(c, "environment"), out)
}

// runLocal runs command with interpreter (default /bin/sh -c), streaming
// its output line by line; cancelling ctx kills it.
func runLocal(ctx context.Context, command string, interp []string, dir string, env map[string]string, out func(string)) error {
	if len(interp) == 0 {
		interp = []string{"/bin/sh", "-c"}
	}
	cmd := exec.CommandContext(ctx, interp[0], append(interp[1:], command)...)
	cmd.Dir = dir
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	var wg sync.WaitGroup
	var tail []string
	wg.Add(1)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			out(sc.Text())
			if tail = append(tail, sc.Text()); len(tail) > 5 {
				tail = tail[1:]
			}
		}
		io.Copy(io.Discard, pr)
	}()
	err := cmd.Run()
	pw.Close()
	wg.Wait()
	if err != nil {
		msg := fmt.Sprintf("command %q: %v", command, err)
		if len(tail) > 0 {
			msg += "; its last output: " + strings.Join(tail, " | ")
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", msg, ctx.Err())
		}
		return fmt.Errorf("%s", msg)
	}
	return nil
}
