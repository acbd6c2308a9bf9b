# Quickstart: a directory storage pool with two volumes on the local libvirtd.
#   fiat plan examples/quickstart
#   fiat apply examples/quickstart

variable "prefix" {
  type        = string
  default     = "fiat-quickstart"
  description = "Name of the pool, and of its directory under /var/lib/libvirt/images."
}

variable "disk_mib" {
  type    = number
  default = 64
}

provider "libvirt" {
  uri = "qemu:///system"
}

resource "libvirt_pool" "images" {
  name = var.prefix
  type = "dir"
  path = "/var/lib/libvirt/images/${var.prefix}"
}

resource "libvirt_volume" "system" {
  name   = "system.qcow2"
  pool   = libvirt_pool.images.name
  size   = var.disk_mib * 1024 * 1024
  format = "qcow2"
}

resource "libvirt_volume" "data" {
  name   = "data.raw"
  pool   = libvirt_pool.images.name
  size   = local.data_bytes
  format = "raw"
}

locals {
  data_bytes = 2 * var.disk_mib * 1024 * 1024
}

output "system_path" {
  value = libvirt_volume.system.path
}
