package server

import "testing"

func TestCheckArgsKeepsRunsInTheirUpload(t *testing.T) {
	dir := "/srv/fiat/runs/r1"
	ok := [][]string{
		{"-auto-approve", "-stack", "web", dir + "/config/web"},
		{"-var-file", dir + "/vars/0-prod.tfvars", "-var", "image=/var/lib/x.qcow2", dir + "/config/web"},
		{"-out", dir + "/out/plan", "-stack", "web", dir + "/config/web"},
		{"-stack", "web", "libvirt_pool.images", dir + "/config/web"},
	}
	for _, args := range ok {
		if err := CheckArgs(dir, args); err != nil {
			t.Errorf("%v refused: %v", args, err)
		}
	}
	bad := [][]string{
		{"-data-dir", "/tmp/x", dir + "/config/web"},
		{"-data-dir=/tmp/x", dir + "/config/web"},
		{"-var-file", "/etc/shadow", dir + "/config/web"},
		{"-var-file=" + dir + "/../../etc/shadow", dir + "/config/web"},
		{"-out", "/tmp/plan", dir + "/config/web"},
		{"/etc"},
		{dir + "/../other/config"},
		{"-stack", "web", "../x", dir + "/config/web"},
		{},
	}
	for _, args := range bad {
		if err := CheckArgs(dir, args); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}

func TestRedactVars(t *testing.T) {
	got := redactVars([]string{"-var", "password=hunter2", "-var=token=abc", "-stack", "web"})
	want := []string{"-var", "password=(hidden)", "-var=token=(hidden)", "-stack", "web"}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("redactVars = %v, want %v", got, want)
		}
	}
}
