# An apply that fails at libvirt and rolls back: the first pool is created,
# the second cannot be (libvirt cannot mkdir under /proc), so fiat undoes the
# first and reports both. Nothing is left in libvirt or in the store.
#   fiat apply -auto-approve examples/broken

resource "libvirt_pool" "good" {
  name = "fiat-good"
  path = "/var/lib/libvirt/images/fiat-good"
}

resource "libvirt_pool" "bad" {
  name       = "fiat-bad"
  path       = "/proc/fiat-bad"
  depends_on = [libvirt_pool.good]
}
