#!/usr/bin/env bash
# Install and start libvirtd (QEMU driver) on a Debian 12 machine without
# systemd, as root. Idempotent: safe to run many times, fast when libvirtd is
# already answering. Exits non-zero, with the log tail, if it does not come up.
#
#   bash scripts/libvirtd.sh
#
# libvirtd also listens on TCP 127.0.0.1:16509 without authentication, for
# the tests that reach one host through two provider instances
# (qemu:///system and qemu+tcp://127.0.0.1/system). Loopback only: nothing
# off this machine can connect.
#
# Env: LIBVIRT_URI (default qemu:///system), LIBVIRTD_WAIT seconds (default 30).
set -euo pipefail

URI=${LIBVIRT_URI:-qemu:///system}
TCP_URI=qemu+tcp://127.0.0.1/system
WAIT=${LIBVIRTD_WAIT:-30}
RUN_DIR=/run/libvirt
LOG_DIR=/var/log/libvirt
LIBVIRTD_LOG=$LOG_DIR/libvirtd.log
VIRTLOGD_LOG=$LOG_DIR/virtlogd.log
PKGS=(iproute2 openssh-server libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients qemu-system-x86
	qemu-utils dnsmasq-base iptables libxml2-utils
	git chromium ovmf xsltproc) # git, chromium: the server tests (push over HTTP, the page of runs); ovmf: UEFI domains;
	# xsltproc: xml { xslt }, which runs it as upstream does

say() { printf 'libvirtd.sh: %s\n' "$*"; }
die() { printf 'libvirtd.sh: error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root"

answers() { timeout 5 virsh -c "$URI" version >/dev/null 2>&1; }
answers_tcp() { timeout 5 virsh -c "$TCP_URI" version >/dev/null 2>&1; }

# pid_alive FILE NAME: the pid file names a running process called NAME (a
# stale pid file may name a reused pid).
pid_alive() {
	local pid
	[ -s "$1" ] || return 1
	pid=$(cat "$1" 2>/dev/null) || return 1
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null &&
		[ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ]
}

# 1. Packages.
# shellcheck source=scripts/packages.sh
. "$(dirname "$0")/packages.sh"
ensure_packages "${PKGS[@]}"

# Fast path: everything already up.
if command -v virsh >/dev/null 2>&1 && pid_alive "$RUN_DIR/virtlogd.pid" virtlogd && answers && answers_tcp; then
	say "libvirtd already running ($URI and $TCP_URI answer)"
	exit 0
fi

# 2. Groups and the user the QEMU driver looks up ("Failed to parse user
# 'libvirt-qemu'" without it).
for g in kvm libvirt-qemu libvirt; do
	getent group "$g" >/dev/null || { groupadd --system "$g"; say "created group $g"; }
done
if ! getent passwd libvirt-qemu >/dev/null; then
	useradd --system --no-create-home --home-dir /var/lib/libvirt \
		--shell /usr/sbin/nologin --gid libvirt-qemu --groups kvm libvirt-qemu
	say "created user libvirt-qemu"
fi

# 3. Directories (libvirtd -d exits silently without the log dir).
mkdir -p "$LOG_DIR/qemu" /var/lib/libvirt/images "$RUN_DIR" /etc/libvirt

# 4. QEMU driver config: run guests as root, no security driver (containers
# without AppArmor/SELinux).
QEMU_CONF=/etc/libvirt/qemu.conf
want_conf='# Written by fiat scripts/libvirtd.sh.
user = "root"
group = "root"
security_driver = "none"'
conf_changed=0
if [ ! -f "$QEMU_CONF" ] || [ "$(cat "$QEMU_CONF")" != "$want_conf" ]; then
	printf '%s\n' "$want_conf" >"$QEMU_CONF.tmp"
	mv "$QEMU_CONF.tmp" "$QEMU_CONF"
	conf_changed=1
	say "wrote $QEMU_CONF"
fi

# 4b. libvirtd config: TCP on loopback without auth (see the top), and more
# concurrent calls per client than the default 5, so one provider connection
# can run unrelated jobs in parallel. Only these keys are set; the rest of an
# existing file is left alone.
LIBVIRTD_CONF=/etc/libvirt/libvirtd.conf
touch "$LIBVIRTD_CONF"
set_conf() { # set_conf KEY VALUE: one uncommented "KEY = VALUE" line
	local line="$1 = $2"
	if grep -qxF "$line" "$LIBVIRTD_CONF"; then return 0; fi
	sed -i "/^[[:space:]]*#\?[[:space:]]*$1[[:space:]]*=/d" "$LIBVIRTD_CONF"
	printf '%s\n' "$line" >>"$LIBVIRTD_CONF"
	conf_changed=1
	say "set $line in $LIBVIRTD_CONF"
}
set_conf listen_tls 0
set_conf listen_tcp 1
set_conf listen_addr '"127.0.0.1"'
set_conf auth_tcp '"none"'
set_conf max_client_requests 32

# 5. virtlogd (domains fail to start without it).
if pid_alive "$RUN_DIR/virtlogd.pid" virtlogd; then
	say "virtlogd already running"
else
	rm -f "$RUN_DIR/virtlogd.pid"
	virtlogd -d -p "$RUN_DIR/virtlogd.pid" >>"$VIRTLOGD_LOG" 2>&1 || die "virtlogd did not start (see $VIRTLOGD_LOG)"
	say "started virtlogd"
fi

# 6. libvirtd. Restart it if its config changed under a running daemon, or
# it runs without --listen. Running domains survive a libvirtd restart.
listening() { tr '\0' ' ' <"/proc/$(cat "$RUN_DIR/libvirtd.pid")/cmdline" | grep -q -- ' --listen'; }
if pid_alive "$RUN_DIR/libvirtd.pid" libvirtd; then
	if [ "$conf_changed" -eq 1 ] || ! listening; then
		say "restarting libvirtd (config changed, or not listening on tcp)"
		pid=$(cat "$RUN_DIR/libvirtd.pid")
		kill "$pid"
		for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	else
		say "libvirtd already running"
	fi
fi
if ! pid_alive "$RUN_DIR/libvirtd.pid" libvirtd; then
	rm -f "$RUN_DIR/libvirtd.pid"
	export LIBVIRT_LOG_OUTPUTS="3:file:$LIBVIRTD_LOG"
	libvirtd -d --listen -p "$RUN_DIR/libvirtd.pid" >>"$LIBVIRTD_LOG" 2>&1 || true
	unset LIBVIRT_LOG_OUTPUTS
	say "started libvirtd"
fi

# 7. Wait until it answers.
deadline=$((SECONDS + WAIT))
until answers && answers_tcp; do
	if [ "$SECONDS" -ge "$deadline" ]; then
		printf 'libvirtd.sh: error: %s did not answer within %ss; last lines of %s:\n' "$URI" "$WAIT" "$LIBVIRTD_LOG" >&2
		tail -n 30 "$LIBVIRTD_LOG" >&2 2>/dev/null || true
		exit 1
	fi
	sleep 0.5
done
say "ready: $(virsh -c "$URI" version 2>/dev/null | sed -n 's/^Running hypervisor: //p')"
