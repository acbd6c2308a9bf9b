package executor

import (
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

func TestDeadLocalHolder(t *testing.T) {
	if deadLocalHolder(Holder()) {
		t.Fatal("this process is alive")
	}
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	h := Holder()
	dead := "fiat pid " + strconv.Itoa(cmd.Process.Pid) + h[strings.Index(h, " on "):]
	if !deadLocalHolder(dead) {
		t.Fatalf("%q is gone but not detected", dead)
	}
	other := strings.Replace(dead, "(pidns ", "(pidns 1", 1)
	if deadLocalHolder(other) {
		t.Fatalf("a holder in another pid namespace must not be judged: %q", other)
	}
	if deadLocalHolder("ci-runner 42 on elsewhere") {
		t.Fatal("a foreign holder must not be judged")
	}
}
