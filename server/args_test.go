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

func TestRecoverArgsUseTheRunsConfig(t *testing.T) {
	up := &Upload{Stack: "web", Args: []string{"-auto-approve", "-var", "a=1", "-var-file", "@/vars/0-x.tfvars", "@/config/web"}}
	files := map[string][]byte{"config/web/main.tf": nil, "vars/0-x.tfvars": nil}
	got, err := recoverArgs(up, files)
	want := []string{"-stack", "web", "-var", "a=1", "-var-file", "@/vars/0-x.tfvars", "@/config/web"}
	if err != nil || len(got) != len(want) {
		t.Fatalf("recoverArgs = %v, %v; want %v", got, err, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("recoverArgs = %v; want %v", got, want)
		}
	}
	if _, err := recoverArgs(&Upload{Stack: "web"}, map[string][]byte{"files/junk": []byte("not a plan")}); err == nil {
		t.Error("an upload with no configuration gave recover arguments")
	}
}
