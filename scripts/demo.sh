#!/usr/bin/env bash
# The main job: validate, plan, apply, inspect, re-plan (no changes), destroy.
set -euo pipefail
bin=${1:-bin/fiat}
dir=${2:-examples/quickstart}
step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "fiat validate $dir"
"$bin" validate "$dir"
step "fiat plan $dir"
"$bin" plan "$dir"
step "fiat apply -auto-approve $dir"
"$bin" apply -auto-approve "$dir"
step "fiat state list $dir"
"$bin" state list "$dir"
step "fiat state show libvirt_volume.system $dir"
"$bin" state show libvirt_volume.system "$dir"
step "virsh vol-list (what libvirt really has)"
virsh -c qemu:///system vol-list fiat-quickstart || true
step "fiat plan -detailed-exitcode $dir   (expect: no changes, exit 0)"
"$bin" plan -detailed-exitcode "$dir"
step "fiat destroy -auto-approve $dir"
"$bin" destroy -auto-approve "$dir"
step "fiat history $dir"
"$bin" history "$dir"
