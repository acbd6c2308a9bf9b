#!/usr/bin/env bash
# A 3-node fiat cluster on 127.0.0.1-3: an apply through a follower, a push
# that applies before the branch moves, a push whose apply rolls back and
# is rejected, the runs, then destroy. The nodes stop when the demo ends.
set -euo pipefail
bin=$(realpath "${1:-bin/fiat}")
work=$(mktemp -d /tmp/fiat-demo-cluster.XXXXXX)
api=17700 raft=17800
step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

cat >"$work/server.hcl" <<'HCL'
repo "infra" {
  branch = "main"
  stacks = { lab = "stacks/lab" }
}
HCL
join=127.0.0.1:$api,127.0.0.2:$api,127.0.0.3:$api
step "fiat server x3 (-bootstrap-expect 3 -join $join)"
for i in 1 2 3; do
	"$bin" server -config "$work/server.hcl" -name "n$i" -data-dir "$work/n$i" -api "127.0.0.$i:$api" \
		-raft "127.0.0.$i:$raft" -bootstrap-expect 3 -join "$join" >"$work/n$i.log" 2>&1 &
	pids+=($!)
done
for i in $(seq 100); do
	ready=0
	for n in 1 2 3; do curl -sf "http://127.0.0.$n:$api/health" >/dev/null && ready=$((ready + 1)); done
	[ "$ready" = 3 ] && break
	sleep 0.1
done
export FIAT_ADDR=http://127.0.0.2:$api,http://127.0.0.3:$api,http://127.0.0.1:$api
step "fiat operator members"
"$bin" operator members

mkdir -p "$work/cli/demo"
sed 's/fiat-quickstart/fiat-cluster-demo/' examples/quickstart/main.hcl >"$work/cli/demo/main.hcl"
step "fiat apply -auto-approve (through a follower; the leader runs it)"
"$bin" apply -auto-approve "$work/cli/demo"
step "fiat destroy -auto-approve"
"$bin" destroy -auto-approve "$work/cli/demo" | tail -1

step "git push: the pushed commit is applied before main moves"
git clone -q "http://127.0.0.1:$api/git/infra.git" "$work/infra" 2>/dev/null
cd "$work/infra"
git checkout -q -b main
export GIT_AUTHOR_NAME=Demo GIT_AUTHOR_EMAIL=demo@example.com GIT_COMMITTER_NAME=Demo GIT_COMMITTER_EMAIL=demo@example.com
mkdir -p stacks/lab
cat >stacks/lab/main.tf <<'HCL'
resource "libvirt_network" "lab" {
  name = "fiat-demo-lab"
  mode = "isolated"
}
HCL
git add -A && git commit -qm "lab: an isolated network"
git push origin main 2>&1 | grep -E '^remote: (fiat|libvirt|Apply)|->'

step "git push of a broken change: rolled back, rejected, main stays"
cat >stacks/lab/bad.tf <<'HCL'
resource "libvirt_network" "second" {
  name = "fiat-demo-lab2"
  mode = "isolated"
}
resource "libvirt_pool" "bad" {
  name       = "fiat-demo-bad"
  path       = "/proc/fiat-demo-bad"
  depends_on = [libvirt_network.second]
}
HCL
git add -A && git commit -qm "lab: a second network, then a pool libvirt cannot create"
if git push origin main 2>&1 | grep -E '^remote: (fiat|Error|libvirt_network.second)|rejected'; then :; fi
virsh -c qemu:///system net-info fiat-demo-lab2 >/dev/null 2>&1 && echo "fiat-demo-lab2 exists (unexpected)" || echo "virsh: no network fiat-demo-lab2 (rolled back)"
git ls-remote origin main
cd - >/dev/null

step "fiat runs"
"$bin" runs
step "clean up: destroy stack lab"
git -C "$work/infra" reset -q --hard HEAD~1
"$bin" destroy -auto-approve -stack lab "$work/infra/stacks/lab" | tail -1
