#!/usr/bin/env bash
# The tier demo (examples/tier): a NAT network, a storage pool, a base image
# with a qcow2 overlay per VM, cloud-init seeds and three VMs, applied as one
# transaction; then inspected, re-planned (no changes), changed in place
# (more memory: takes effect at the next restart), and destroyed.
#
#   bash scripts/demo-tier.sh [bin/fiat] [examples/tier]
set -euo pipefail
bin=${1:-bin/fiat}
dir=${2:-examples/tier}
uri=qemu:///system
step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

# A 192.168.2xx.0/24 that no interface of this machine and no libvirt
# network uses: the network is a local bridge, and must collide with nothing.
subnet=""
used=$(ip -4 -o addr show | awk '{print $4}'
	for n in $(virsh -c "$uri" net-list --all --name); do virsh -c "$uri" net-dumpxml "$n"; done |
		sed -n "s/.*address='\([0-9.]*\)'.*/\1/p")
for i in $(seq 213 254) $(seq 200 212); do
	if ! grep -q "^192\.168\.$i\." <<<"$used"; then
		subnet=192.168.$i
		break
	fi
done
[ -n "$subnet" ] || { echo "demo-tier.sh: no free 192.168.2xx.0/24 on this machine" >&2; exit 1; }
vars=(-var "subnet=$subnet")

step "fiat validate $dir"
"$bin" validate "$dir"
step "fiat apply -auto-approve ${vars[*]} $dir   (network $subnet.0/24)"
"$bin" apply -auto-approve "${vars[@]}" "$dir"
step "what libvirt really has"
virsh -c "$uri" list --all
virsh -c "$uri" vol-list fiat-tier
virsh -c "$uri" net-dhcp-leases fiat-tier || true
step "fiat plan -detailed-exitcode   (expect: no changes, exit 0)"
"$bin" plan -detailed-exitcode "${vars[@]}" "$dir"
step "fiat apply -var memory_mib=96   (in place; takes effect at the next restart)"
"$bin" apply -auto-approve "${vars[@]}" -var memory_mib=96 "$dir"
step "fiat destroy -auto-approve $dir"
"$bin" destroy -auto-approve "${vars[@]}" -var memory_mib=96 "$dir"
step "fiat history $dir"
"$bin" history "$dir"
