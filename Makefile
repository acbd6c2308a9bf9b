# fiat: make demo (plan and apply examples/quickstart against a real libvirtd)
#       make test (unit and integration tests; needs root for libvirtd)
GO       ?= go
BIN      := bin/fiat
EXAMPLE  ?= examples/quickstart

.PHONY: all build libvirtd demo test fuzz unit bench bench-libvirt clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/fiat

# Installs (Debian packages) and starts libvirtd if it is not running.
libvirtd:
	bash scripts/libvirtd.sh
	bash scripts/guest-image.sh

demo: libvirtd build
	bash scripts/demo.sh $(BIN) $(EXAMPLE)
	bash scripts/demo-tier.sh $(BIN) examples/tier
	bash scripts/demo-terraform.sh $(BIN) examples/terraform
	bash scripts/demo-cluster.sh $(BIN)

# Ten VMs with overlay disks and a network in one apply, then destroy: fiat's
# provider calls in parallel vs raw go-libvirt in parallel and serially.
bench-libvirt: libvirtd
	$(GO) test -run '^$$' -bench Tier -benchtime 3x -timeout 30m ./providers/libvirt/

# Everything: vet, unit tests and integration tests against the real libvirtd.
# With CI=true a libvirtd that cannot be reached fails the tests.
test: libvirtd
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 20m ./...
	$(MAKE) fuzz

# Each fuzz target for a bounded time (seed corpora are in testdata/fuzz
# and run with every go test): the HCL loader, -var-file, saved plans.
FUZZTIME ?= 15s
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzLoad$$' -fuzztime $(FUZZTIME) ./hcl/
	$(GO) test -run '^$$' -fuzz '^FuzzVarFile$$' -fuzztime $(FUZZTIME) ./hcl/
	$(GO) test -run '^$$' -fuzz '^FuzzUnseal$$' -fuzztime $(FUZZTIME) ./planner/

# Unit tests only (no libvirtd needed).
unit:
	$(GO) test -count=1 -short ./...

# Plan benchmark table (time and peak RSS per case, one process each; see
# README "Performance"), then every Go benchmark.
APPLY_CASES := independent-1000 independent-10000 chain-1000 chain-2000

bench: build
	$(GO) run ./internal/benchplan -cli $(BIN)
	@echo "Apply of N fiat_data resources, full journal on the embedded store (one process per case):"
	@for c in $(APPLY_CASES); do for v in "" -durable; do \
		$(GO) test ./executor/ -run '^$$' -bench "Apply/$$c$$v\$$" -benchtime 1x | grep '^Benchmark'; \
	done; done
	@echo "The same 1000-step apply, journal replicated on a 3-node cluster (loopback):"
	@for c in independent chain; do \
		$(GO) test ./executor/ -run '^$$' -bench "Apply/$$c-1000-durable-cluster3\$$" -benchtime 1x | grep '^Benchmark'; \
	done
	$(GO) test -run '^$$' -bench . -benchmem -timeout 60m ./state/ ./planner/
	@echo "A 3-node fiat server cluster (real processes): run latency, leader RSS idle and with 50,000 entities:"
	$(GO) test -run '^$$' -bench Server -benchtime 10x -timeout 30m ./server/
	$(MAKE) bench-libvirt

clean:
	rm -rf bin
