package libvirt

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/zclconf/go-cty/cty"
	"libvirt.org/go/libvirtxml"

	"fiat/providers"
)

// BenchmarkTier times one apply of a network and 10 domains, each on its
// own qcow2 overlay of a shared base image, and the destroy of it all:
//
//	fiat:        the provider's calls as the executor makes them: creates in
//	             dependency order, in parallel where the graph allows
//	             (overlays take turns on their pool); the destroy retires
//	             dependents first (in parallel), then purges one by one.
//	raw-parallel: go-libvirt calls doing the same to libvirt (define, start,
//	             create, destroy, undefine, delete) with the same
//	             parallelism, without fiat's reads, undo records, renames.
//	raw-serial:  the same raw calls one after the other.
//
// go test -run '^$' -bench Tier -benchtime 3x ./providers/libvirt/
// The pool and base image are made once, outside the timing.
func BenchmarkTier(b *testing.B) {
	const vms = 10
	p := newBenchProvider(b)
	l, err := p.client(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	poolName := "fiatbench-" + runID
	poolResp, err := p.Create(context.Background(), providers.CreateRequest{Address: "libvirt_pool.bench", Type: TypePool, OpID: poolName,
		Config: poolConfig(poolName, "/var/lib/libvirt/images/"+poolName)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { benchCleanup(l, poolName, poolResp) })
	base, err := p.Create(context.Background(), providers.CreateRequest{Address: "libvirt_volume.base", Type: TypeVolume,
		Config: volumeConfig("base.qcow2", poolName, 64*MiB, "")})
	if err != nil {
		b.Fatal(err)
	}
	sub := freeSubnet(b, p).String()

	run := func(b *testing.B, name string, apply, destroy func(i int) error) {
		b.Run(name, func(b *testing.B) {
			var applyT, destroyT time.Duration
			for i := 0; i < b.N; i++ {
				start := time.Now()
				if err := apply(i); err != nil {
					b.Fatal(err)
				}
				mid := time.Now()
				if err := destroy(i); err != nil {
					b.Fatal(err)
				}
				applyT += mid.Sub(start)
				destroyT += time.Since(mid)
			}
			b.ReportMetric(applyT.Seconds()/float64(b.N), "apply-s/op")
			b.ReportMetric(destroyT.Seconds()/float64(b.N), "destroy-s/op")
		})
	}

	// fiat: provider calls in the executor's order and parallelism.
	var fiatRun struct {
		net  providers.CreateResponse
		vols []providers.CreateResponse
		doms []providers.CreateResponse
	}
	run(b, "fiat", func(i int) error {
		ctx := context.Background()
		netName := fmt.Sprintf("fiatbench-%s-%d", runID, i)
		fiatRun.vols = make([]providers.CreateResponse, vms)
		fiatRun.doms = make([]providers.CreateResponse, vms)
		var netErr error
		netDone := make(chan struct{})
		go func() {
			defer close(netDone)
			fiatRun.net, netErr = p.Create(ctx, providers.CreateRequest{Address: "libvirt_network.lan", Type: TypeNetwork, OpID: netName, Config: benchNetConfig(netName, sub)})
		}()
		return parallel(vms, func(k int) error {
			vol, err := p.Create(ctx, providers.CreateRequest{Address: fmt.Sprintf("libvirt_volume.vm[%d]", k), Type: TypeVolume,
				Config: with(with(volumeConfig(fmt.Sprintf("vm%d-%d.qcow2", i, k), poolName, 0, ""), "size", cty.NullVal(cty.Number)), "base_volume", cty.StringVal(base.ID))})
			if err != nil {
				return err
			}
			fiatRun.vols[k] = vol
			<-netDone
			if netErr != nil {
				return netErr
			}
			cfg := domainConfig(fmt.Sprintf("%s-vm%d", netName, k), []string{vol.ID}, []string{netName}, "")
			fiatRun.doms[k], err = p.Create(ctx, providers.CreateRequest{Address: fmt.Sprintf("libvirt_domain.vm[%d]", k), Type: TypeDomain,
				OpID: fmt.Sprintf("%s/%d", netName, k), Config: cfg})
			return err
		})
	}, func(i int) error {
		ctx := context.Background()
		retired := make([]json.RawMessage, vms) // the volumes' retire Undos: their purges need them
		// Retire: domains first (in parallel), then what they used.
		if err := parallel(vms, func(k int) error {
			_, err := p.Retire(ctx, providers.RetireRequest{Type: TypeDomain, ID: fiatRun.doms[k].ID, State: fiatRun.doms[k].State})
			return err
		}); err != nil {
			return err
		}
		if err := parallel(vms+1, func(k int) error {
			if k == vms {
				_, err := p.Retire(ctx, providers.RetireRequest{Type: TypeNetwork, ID: fiatRun.net.ID, State: fiatRun.net.State})
				return err
			}
			ret, err := p.Retire(ctx, providers.RetireRequest{Type: TypeVolume, ID: fiatRun.vols[k].ID, State: fiatRun.vols[k].State})
			retired[k] = ret.Undo
			return err
		}); err != nil {
			return err
		}
		// Purge after the commit, one by one.
		for k := range vms {
			if _, err := p.Purge(ctx, providers.PurgeRequest{Type: TypeDomain, ID: fiatRun.doms[k].ID, State: fiatRun.doms[k].State}); err != nil {
				return err
			}
		}
		for k := range vms {
			if _, err := p.Purge(ctx, providers.PurgeRequest{Type: TypeVolume, ID: fiatRun.vols[k].ID, State: fiatRun.vols[k].State, Undo: retired[k]}); err != nil {
				return err
			}
		}
		_, err := p.Purge(ctx, providers.PurgeRequest{Type: TypeNetwork, ID: fiatRun.net.ID, State: fiatRun.net.State})
		return err
	})

	// Raw go-libvirt: the same effect on libvirt.
	host, err := p.conn.facts(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	pool, err := l.StoragePoolLookupByName(poolName)
	if err != nil {
		b.Fatal(err)
	}
	baseDoc, err := volumeXMLDoc(l, mustVol(b, l, base.ID), "bench")
	if err != nil {
		b.Fatal(err)
	}
	var raw struct {
		net  golibvirt.Network
		vols []golibvirt.StorageVol
		doms []golibvirt.Domain
	}
	rawApply := func(par bool) func(i int) error {
		return func(i int) error {
			netName := fmt.Sprintf("fiatbench-raw-%s-%d-%v", runID, i, par)
			raw.vols = make([]golibvirt.StorageVol, vms)
			raw.doms = make([]golibvirt.Domain, vms)
			var mu sync.Mutex // one job per pool, as libvirt wants
			var netErr error
			netDone := make(chan struct{})
			mkNet := func() {
				defer close(netDone)
				spec, _ := networkSpecFrom(benchNetConfig(netName, sub))
				x, _ := marshalNetwork(newNetworkDoc(spec, formatUUID(newUUID("", netName))))
				if raw.net, netErr = l.NetworkDefineXML(x); netErr != nil {
					return
				}
				if netErr = l.NetworkCreate(raw.net); netErr != nil {
					return
				}
				netErr = l.NetworkSetAutostart(raw.net, 1)
			}
			vm := func(k int) error {
				mu.Lock()
				x, _ := marshalVolume(volumeDoc(fmt.Sprintf("raw%d-%d.qcow2", i, k), formatQcow2, 64*MiB,
					&libvirtxml.StorageVolumeBackingStore{Path: baseDoc.Target.Path, Format: baseDoc.Target.Format}))
				vol, err := l.StorageVolCreateXML(pool, x, 0)
				mu.Unlock()
				if err != nil {
					return err
				}
				raw.vols[k] = vol
				<-netDone
				if netErr != nil {
					return netErr
				}
				spec, _ := domainSpecFrom(domainConfig(fmt.Sprintf("%s-vm%d", netName, k), []string{vol.Key}, []string{netName}, ""))
				doc := newDomainDoc(spec, formatUUID(newUUID("", netName)), host)
				setDomainSpec(&doc, spec, []resolvedDisk{{Path: vol.Key, Format: formatQcow2}}, nil)
				dx, _ := marshalDomain(doc)
				d, err := l.DomainDefineXMLFlags(dx, golibvirt.DomainDefineValidate)
				if err != nil {
					return err
				}
				raw.doms[k] = d
				return l.DomainCreate(d)
			}
			if par {
				go mkNet()
				return parallel(vms, vm)
			}
			mkNet()
			for k := range vms {
				if err := vm(k); err != nil {
					return err
				}
			}
			return nil
		}
	}
	rawDestroy := func(par bool) func(i int) error {
		return func(i int) error {
			each := func(n int, fn func(k int) error) error {
				if par {
					return parallel(n, fn)
				}
				for k := range n {
					if err := fn(k); err != nil {
						return err
					}
				}
				return nil
			}
			if err := each(vms, func(k int) error {
				if err := l.DomainDestroyFlags(raw.doms[k], golibvirt.DomainDestroyGraceful); err != nil {
					return err
				}
				return l.DomainUndefineFlags(raw.doms[k], 0)
			}); err != nil {
				return err
			}
			var mu sync.Mutex
			return each(vms+1, func(k int) error {
				if k == vms {
					if err := l.NetworkDestroy(raw.net); err != nil {
						return err
					}
					return l.NetworkUndefine(raw.net)
				}
				mu.Lock()
				defer mu.Unlock()
				return l.StorageVolDelete(raw.vols[k], 0)
			})
		}
	}
	run(b, "raw-parallel", rawApply(true), rawDestroy(true))
	run(b, "raw-serial", rawApply(false), rawDestroy(false))
}

func newBenchProvider(b *testing.B) *Provider {
	p := New()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := p.Configure(ctx, providers.ConfigureRequest{Config: cty.ObjectVal(map[string]cty.Value{"uri": cty.StringVal(testURI())})}); err != nil {
		b.Skipf("libvirtd is not reachable: %v", err)
	}
	b.Cleanup(func() { _ = p.Close() })
	return p
}

func benchNetConfig(name, sub string) cty.Value {
	return cty.ObjectVal(map[string]cty.Value{
		"name": cty.StringVal(name), "mode": cty.NullVal(cty.String), "addresses": cty.ListVal([]cty.Value{cty.StringVal(sub)}),
		"bridge": cty.NullVal(cty.String), "dhcp": cty.NullVal(cty.List(dhcpRangeType)), "hosts": cty.NullVal(cty.List(dhcpHostType.WithoutOptionalAttributesDeep())),
		"dns": cty.NullVal(cty.List(dnsHostType)), "autostart": cty.NullVal(cty.Bool), "id": cty.NullVal(cty.String),
	})
}

func mustVol(b *testing.B, l *golibvirt.Libvirt, key string) golibvirt.StorageVol {
	v, err := l.StorageVolLookupByKey(key)
	if err != nil {
		b.Fatal(err)
	}
	return v
}

// parallel runs fn(0..n-1) at once and returns the first error.
func parallel(n int, fn func(k int) error) error {
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for k := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- fn(k)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// benchCleanup removes what a failed benchmark left: its domains, networks,
// volumes and pool.
func benchCleanup(l *golibvirt.Libvirt, poolName string, pool providers.CreateResponse) {
	doms, _, _ := l.ConnectListAllDomains(1, 0)
	for _, d := range doms {
		if len(d.Name) > 10 && d.Name[:10] == "fiatbench-" {
			_ = removeDomain(l, d, "cleanup")
		}
	}
	nets, _, _ := l.ConnectListAllNetworks(1, 0)
	for _, n := range nets {
		if len(n.Name) > 10 && n.Name[:10] == "fiatbench-" {
			_ = removeNetwork(l, n, "cleanup")
		}
	}
	if lp, err := l.StoragePoolLookupByName(poolName); err == nil {
		vols, _, _ := l.StoragePoolListAllVolumes(lp, 1, 0)
		for _, v := range vols {
			_ = l.StorageVolDelete(v, 0)
		}
		doc, _ := poolDoc(l, lp)
		_ = stopAndUndefine(l, lp, "cleanup")
		if doc.Target != nil {
			_ = removeEmptyDir(l, doc.Target.Path, "cleanup")
		}
	}
}
