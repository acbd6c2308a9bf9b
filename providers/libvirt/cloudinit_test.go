package libvirt

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zclconf/go-cty/cty"

	"fiat/providers"
)

func cloudInitConfig(name, pool, userData string) cty.Value {
	return cty.ObjectVal(map[string]cty.Value{
		"name":           cty.StringVal(name),
		"pool":           cty.StringVal(pool),
		"user_data":      cty.StringVal(userData),
		"meta_data":      cty.NullVal(cty.String),
		"network_config": cty.StringVal("version: 2\nethernets:\n  eth0:\n    dhcp4: true\n"),
		"id":             cty.NullVal(cty.String),
		"path":           cty.NullVal(cty.String),
	})
}

// The seed is an ISO 9660 image labelled cidata with the NoCloud file
// names, and reads back as written.
func TestCloudInitSeed(t *testing.T) {
	files := cloudInitFiles{UserData: "#cloud-config\nhostname: a\n", MetaData: "instance-id: i-1\n", NetworkConfig: "version: 2\n", HasNetworkConfig: true}
	iso, err := buildSeed(files)
	if err != nil {
		t.Fatal(err)
	}
	got, err := readSeed(iso)
	if err != nil || got != files {
		t.Fatalf("read back %+v, %v; want %+v", got, err, files)
	}
	if _, err := exec.LookPath("blkid"); err != nil {
		return
	}
	path := filepath.Join(t.TempDir(), "seed.iso")
	if err := os.WriteFile(path, iso, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("blkid", "-p", "-o", "export", path).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "LABEL=cidata") || !strings.Contains(string(out), "TYPE=iso9660") {
		t.Errorf("blkid says %s (%v), want an iso9660 labelled cidata (how cloud-init finds it)", out, err)
	}
	if defaultMetaData(files) == defaultMetaData(cloudInitFiles{UserData: "other"}) {
		t.Error("the default instance-id does not change with the content")
	}
}

func TestCloudInitConformance(t *testing.T) {
	p := newTestProvider(t)
	pool, _ := newTestPool(t, p)
	name := testName("seed") + ".iso"
	cfg := cloudInitConfig(name, pool, "#cloud-config\nhostname: one\n")
	runConformance(t, p, conformanceCase{
		typ:        TypeCloudInit,
		config:     cfg,
		replace:    cloudInitConfig(name, pool, "#cloud-config\nhostname: two\n"), // same name: same id for the domains using it
		importID:   func(cty.Value) string { return pool + "/" + name },
		importSkip: []string{"meta_data"}, // import reads the default config left out
		host: func(t *testing.T, stage string, state cty.Value) {
			t.Helper()
			path := state.GetAttr("path").AsString()
			b, err := os.ReadFile(path)
			switch stage {
			case "purged", "undone", "retired":
				if err == nil {
					t.Errorf("%s: %s is still there", stage, path)
				}
				return
			}
			if err != nil {
				t.Fatalf("%s: %v", stage, err)
			}
			f, err := readSeed(b)
			if err != nil || f.UserData != state.GetAttr("user_data").AsString() {
				t.Errorf("%s: the seed holds %+v (%v), want user-data %q", stage, f, err, state.GetAttr("user_data").AsString())
			}
		},
	})
}

// Seeds are read back (drift, settle, import) concurrently without
// hanging: from the file on a local host, over libvirt's download stream
// (one connection each: see download) otherwise.
func TestCloudInitConcurrentReads(t *testing.T) {
	for _, remote := range []bool{false, true} {
		t.Run(fmt.Sprintf("remote=%v", remote), func(t *testing.T) {
			p := newTestProvider(t)
			p.remoteFiles = remote
			pool, _ := newTestPool(t, p)
			var seeds []providers.CreateResponse
			for i := range 4 {
				c, err := p.Create(testCtx(t), providers.CreateRequest{Type: TypeCloudInit,
					Config: cloudInitConfig(testName("seed")+".iso", pool, fmt.Sprintf("#cloud-config\nhostname: h%d\n", i))})
				if err != nil {
					t.Fatal(err)
				}
				seeds = append(seeds, c)
			}
			for range 5 {
				var wg sync.WaitGroup
				for _, c := range seeds {
					wg.Add(1)
					go func() {
						defer wg.Done()
						got, err := p.Read(testCtx(t), providers.ReadRequest{Type: TypeCloudInit, ID: c.ID, State: c.State})
						if err != nil || !got.Exists || !got.State.Equals(c.State).True() {
							t.Errorf("read %s: %#v, %v", c.ID, got.State, err)
						}
					}()
				}
				wg.Wait()
			}
		})
	}
}

// A download stream that never starts (go-libvirt can lose its start) is
// given up after downloadStall and tried again on a new connection: the
// read succeeds instead of hanging.
func TestStalledDownloadIsRetried(t *testing.T) {
	proxy := newDropProxy(t, procStorageVolDownload)
	p := newTestProvider(t, proxy.URI())
	p.remoteFiles = true
	pool, _ := newTestPool(t, p)
	c, err := p.Create(testCtx(t), providers.CreateRequest{Type: TypeCloudInit,
		Config: cloudInitConfig(testName("stall")+".iso", pool, "#cloud-config\nhostname: stalled\n")})
	if err != nil {
		t.Fatal(err)
	}
	defer func(d time.Duration) { downloadStall = d }(downloadStall)
	downloadStall = time.Second
	proxy.stall.Store(true)
	proxy.armed.Store(true)
	got, err := p.Read(testCtx(t), providers.ReadRequest{Type: TypeCloudInit, ID: c.ID, State: c.State})
	if err != nil || !got.Exists || !got.State.Equals(c.State).True() {
		t.Fatalf("read after a stalled download: %#v, %v", got.State, err)
	}
	if proxy.cuts.Load() != 1 {
		t.Fatalf("the proxy stalled %d downloads, want 1 (the test did not exercise the stall)", proxy.cuts.Load())
	}
}
