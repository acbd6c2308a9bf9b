#!/usr/bin/env bash
# Build the test guest: a small bootable disk image (qcow2) whose only job
# is to boot Linux and ask every network interface for a DHCP lease, so the
# tests can see a real guest take a lease (wait_for_lease, addresses). Made
# from Debian packages only: the cloud kernel, busybox-static and syslinux
# on a FAT filesystem. Idempotent and cached: fast when the image exists.
#
#   bash scripts/guest-image.sh [OUT]    (default /var/lib/fiat-test/guest-v2.qcow2)
#
# The guest's init loads the virtio network modules, then runs udhcpc on
# each interface every 10 s, forever, as host fiat-guest-MAC (the MAC
# without colons). The -vN in the name changes with what the image does.
set -euo pipefail

OUT=${1:-/var/lib/fiat-test/guest-v2.qcow2}
PKGS=(syslinux syslinux-common mtools dosfstools qemu-utils busybox-static)
say() { printf 'guest-image.sh: %s\n' "$*"; }
die() { printf 'guest-image.sh: error: %s\n' "$*" >&2; exit 1; }

if [ -s "$OUT" ]; then
	say "$OUT exists"
	exit 0
fi
[ "$(id -u)" -eq 0 ] || die "must run as root"

# shellcheck source=scripts/packages.sh
. "$(dirname "$0")/packages.sh"
ensure_packages "${PKGS[@]}"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

# The kernel: the versioned package the cloud metapackage names, unpacked
# (not installed: no initramfs hooks run on this machine).
kernel_pkg() { apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-/ {print $2; exit}'; }
kpkg=$(kernel_pkg)
if [ -z "$kpkg" ]; then # no package lists yet on this machine
	apt-get update -q >/dev/null
	kpkg=$(kernel_pkg)
fi
[ -n "$kpkg" ] || die "no linux-image-cloud-amd64 in the package lists"
apt-get download -q "$kpkg" >/dev/null 2>&1 || die "download $kpkg failed"
dpkg-deb -x ./*.deb kern
vmlinuz=$(ls kern/boot/vmlinuz-*)
moddir=$(ls -d kern/lib/modules/*)

mkdir -p root/bin root/proc root/sys root/dev root/lib/modules root/etc/udhcpc
cp /bin/busybox root/bin/busybox
# Load order: each after what it needs.
mods="virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci failover net_failover virtio_net"
for m in $mods; do
	f=$(find "$moddir" -name "$m.ko*" | head -1)
	[ -n "$f" ] || die "module $m not in $kpkg"
	case "$f" in
	*.xz) xz -dc "$f" >"root/lib/modules/$m.ko" ;;
	*) cp "$f" "root/lib/modules/$m.ko" ;;
	esac
done
cat >root/init <<EOF
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $mods; do insmod /lib/modules/\$m.ko; done
ip link set lo up
echo "fiat test guest: asking for DHCP leases"
while true; do
	for i in \$(ls /sys/class/net); do
		[ "\$i" = lo ] && continue
		ip link set "\$i" up
		udhcpc -i "\$i" -n -q -t 3 -s /etc/udhcpc/script -x hostname:fiat-guest-\$(tr -d : </sys/class/net/\$i/address)
	done
	sleep 10
done
EOF
cat >root/etc/udhcpc/script <<'EOF'
#!/bin/sh
case "$1" in
bound|renew) ip addr add "$ip/${mask:-24}" dev "$interface" 2>/dev/null; echo "lease $ip on $interface" ;;
esac
EOF
chmod +x root/init root/etc/udhcpc/script
(cd root && find . | busybox cpio -o -H newc 2>/dev/null | gzip -9) >initrd.gz

truncate -s 48M disk.img
mkfs.vfat -n FIATGUEST disk.img >/dev/null
printf 'DEFAULT linux\nLABEL linux\n KERNEL vmlinuz\n APPEND initrd=initrd.gz console=ttyS0 quiet\n' >syslinux.cfg
mcopy -i disk.img "$vmlinuz" ::vmlinuz
mcopy -i disk.img initrd.gz ::initrd.gz
mcopy -i disk.img syslinux.cfg ::syslinux.cfg
syslinux --install disk.img

mkdir -p "$(dirname "$OUT")"
qemu-img convert -f raw -O qcow2 disk.img "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
say "built $OUT ($(du -h "$OUT" | cut -f1), kernel $kpkg)"
