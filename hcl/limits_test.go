package hcl

import (
	"strings"
	"testing"
	"time"
)

// Absurd sizes are clear errors in bounded time and memory, never a panic.
func TestInstanceLimits(t *testing.T) {
	for _, c := range []struct{ meta, want string }{
		{`count = 1e300`, "fiat plans at most 10000 instances"},
		{`count = 1e8`, "fiat plans at most 10000 instances"},
		{`count = 10001`, "fiat plans at most 10000 instances"},
		{`for_each = toset(flatten([for i in range(11) : [for j in range(1000) : "${i}-${j}"]]))`, "for_each has 11000 elements"},
	} {
		cfg, errs := load(t, "resource \"thing\" \"a\" {\n  "+c.meta+"\n  name = \"x\"\n}\n", Options{})
		if errs != "" {
			t.Fatalf("%s: load: %s", c.meta, errs)
		}
		_, diags := cfg.NewEvaluator(nil).Expand("thing.a")
		if !diags.HasErrors() || !strings.Contains(diags.Error(), c.want) || !strings.Contains(diags.Error(), "main.hcl:2") {
			t.Fatalf("%s: want %q at main.hcl:2, got %v", c.meta, c.want, diags)
		}
	}
	cfg, _ := load(t, "resource \"thing\" \"a\" {\n  count = 10000\n  name = \"x\"\n}\n", Options{})
	if x, diags := cfg.NewEvaluator(nil).Expand("thing.a"); diags.HasErrors() || len(x.Keys) != 10000 {
		t.Fatalf("10000 instances are allowed: %v", diags)
	}
}

// A module that calls itself, once or several times, is a cycle found at
// load, reported once per call, fast.
func TestModuleCycles(t *testing.T) {
	self := func(n int) string {
		var b strings.Builder
		for i := 0; i < n; i++ {
			b.WriteString("module \"m" + string(rune('a'+i)) + "\" {\n  source = \"./\"\n}\n")
		}
		return b.String()
	}
	for _, srcs := range []map[string]string{
		{"main.hcl": "module \"a\" {\n  source = \"./modules/a\"\n}\n", "modules/a/main.hcl": self(2)},
		{"main.hcl": "module \"a\" {\n  source = \"./modules/a\"\n}\n", "modules/a/main.hcl": self(3)},
		{"main.hcl": "module \"a\" {\n  source = \"./modules/a\"\n}\n",
			"modules/a/main.hcl": "module \"b\" {\n  source = \"../b\"\n}\n",
			"modules/b/main.hcl": "module \"a\" {\n  source = \"../a\"\n}\n"},
	} {
		start := time.Now()
		_, errs := loadMany(t, srcs, Options{})
		if el := time.Since(start); el > 5*time.Second {
			t.Errorf("took %v", el)
		}
		if !strings.Contains(errs, "Module cycle") || !strings.Contains(errs, "→") {
			t.Fatalf("want a module cycle error, got:\n%s", errs)
		}
		if n := strings.Count(errs, "Module cycle"); n > 3 {
			t.Fatalf("%d copies of the cycle error:\n%s", n, errs)
		}
	}
}

// A tree of modules without a cycle that still expands too far (every
// level calls the next twice) is refused, once.
func TestTooManyModules(t *testing.T) {
	srcs := map[string]string{"main.hcl": "module \"l0\" {\n  source = \"./l1\"\n}\n"}
	dir := "l1"
	for i := 1; i <= 14; i++ {
		next := "l" + string(rune('a'+i))
		srcs[dir+"/main.hcl"] = "module \"x\" {\n  source = \"./" + next + "\"\n}\nmodule \"y\" {\n  source = \"./" + next + "\"\n}\n"
		dir += "/" + next
	}
	srcs[dir+"/main.hcl"] = "locals {\n  x = 1\n}\n"
	_, errs := loadMany(t, srcs, Options{})
	if !strings.Contains(errs, "Too many modules") || strings.Count(errs, "Too many modules") != 1 {
		t.Fatalf("want one 'Too many modules' error, got:\n%.2000s", errs)
	}
}
