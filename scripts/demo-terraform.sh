#!/usr/bin/env bash
# A Terraform configuration, unchanged: *.tf, terraform.tfvars, the
# terraform block, functions, random_id, a template_file read during the
# apply (its vars use the random suffix), local_file and a local-exec with
# its undo. Plan to a sealed file, apply exactly that,
# re-plan (no changes), destroy.
set -euo pipefail
bin=${1:-bin/fiat}
dir=${2:-examples/terraform}
plan=$(mktemp -d)/tf.plan
step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "fiat validate $dir"
"$bin" validate "$dir"
step "fiat plan -out $plan $dir"
"$bin" plan -out "$plan" "$dir"
step "fiat apply $plan   (exactly the plan shown, verified by its sha256 and the store's signature)"
"$bin" apply "$plan"
step "cat $dir/.inventory.txt"
cat "$dir/.inventory.txt"
step "fiat plan -detailed-exitcode $dir   (expect: no changes, exit 0)"
"$bin" plan -detailed-exitcode "$dir"
step "fiat destroy -auto-approve $dir"
"$bin" destroy -auto-approve "$dir"
rm -rf "$(dirname "$plan")" "$dir/.fiat"
