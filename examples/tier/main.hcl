# A small tier on the local libvirtd, applied as one transaction: a NAT
# network, a storage pool, a base image with one qcow2 overlay per VM, a
# cloud-init seed per VM, and three VMs. The VMs are tiny (64 MiB) and the
# base image is blank, so they boot no OS; point base_source at a cloud
# image (e.g. a Debian genericcloud qcow2) to boot a real one.
#
#   fiat apply -auto-approve examples/tier       (make demo runs it)
#   fiat destroy -auto-approve examples/tier
#
# subnet must be unused on the host: scripts/demo-tier.sh picks a free one.

variable "prefix" {
  type    = string
  default = "fiat-tier"
}

variable "subnet" {
  type        = string
  default     = "192.168.213"
  description = "First three octets of the network's /24."
}

variable "memory_mib" {
  type    = number
  default = 64
}

provider "libvirt" {
  uri = "qemu:///system"
}

resource "libvirt_network" "lan" {
  name      = var.prefix
  mode      = "nat"
  addresses = ["${var.subnet}.0/24"]
  dhcp      = [{ start = "${var.subnet}.100", end = "${var.subnet}.199" }]
  # Fixed addresses for the VMs (their MACs are set below).
  hosts = [
    { mac = "52:54:00:fa:00:01", ip = "${var.subnet}.11", name = "web1" },
    { mac = "52:54:00:fa:00:02", ip = "${var.subnet}.12", name = "web2" },
    { mac = "52:54:00:fa:00:03", ip = "${var.subnet}.13", name = "db" },
  ]
  dns = [{ ip = "${var.subnet}.13", hostnames = ["db.${var.prefix}"] }]
}

resource "libvirt_pool" "images" {
  name = var.prefix
  path = "/var/lib/libvirt/images/${var.prefix}"
}

resource "libvirt_volume" "base" {
  name   = "base.qcow2"
  pool   = libvirt_pool.images.name
  size   = 256 * 1024 * 1024
  format = "qcow2"
}

locals {
  user_data = <<-EOT
    #cloud-config
    ssh_pwauth: false
    packages: [nginx]
  EOT
}

# web servers: one overlay disk, one cloud-init seed and one VM each -----

locals {
  web = {
    web1 = "52:54:00:fa:00:01"
    web2 = "52:54:00:fa:00:02"
  }
}

resource "libvirt_volume" "web" {
  for_each    = local.web
  name        = "${each.key}.qcow2"
  pool        = libvirt_pool.images.name
  base_volume = libvirt_volume.base.id
}

resource "libvirt_cloudinit_disk" "web" {
  for_each  = local.web
  name      = "${each.key}-cidata.iso"
  pool      = libvirt_pool.images.name
  user_data = local.user_data
  meta_data = "instance-id: ${each.key}\nlocal-hostname: ${each.key}\n"
}

resource "libvirt_domain" "web" {
  for_each          = local.web
  name              = "${var.prefix}-${each.key}"
  memory            = var.memory_mib
  disk              = [{ volume_id = libvirt_volume.web[each.key].id }]
  network_interface = [{ network_name = libvirt_network.lan.name, mac = each.value }]
  cloudinit         = libvirt_cloudinit_disk.web[each.key].id
}

# db -----------------------------------------------------------------------

resource "libvirt_volume" "db" {
  name        = "db.qcow2"
  pool        = libvirt_pool.images.name
  base_volume = libvirt_volume.base.id
}

resource "libvirt_volume" "db_data" {
  name   = "db-data.qcow2"
  pool   = libvirt_pool.images.name
  size   = 128 * 1024 * 1024
  format = "qcow2"
}

resource "libvirt_cloudinit_disk" "db" {
  name      = "db-cidata.iso"
  pool      = libvirt_pool.images.name
  user_data = "#cloud-config\npackages: [postgresql]\n"
  meta_data = "instance-id: db\nlocal-hostname: db\n"
}

resource "libvirt_domain" "db" {
  name   = "${var.prefix}-db"
  memory = var.memory_mib
  disk = [
    { volume_id = libvirt_volume.db.id },
    { volume_id = libvirt_volume.db_data.id },
  ]
  network_interface = [{ network_name = libvirt_network.lan.name, mac = "52:54:00:fa:00:03" }]
  cloudinit         = libvirt_cloudinit_disk.db.id
}

output "vms" {
  value = concat([for d in libvirt_domain.web : d.id], [libvirt_domain.db.id])
}

output "bridge" {
  value = libvirt_network.lan.bridge
}
