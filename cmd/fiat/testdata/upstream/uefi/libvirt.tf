# From dmacvicar/terraform-provider-libvirt v0.8.3, examples/v0.13/uefi/libvirt.tf.
# Adapted in environment: names are prefixed (unique per test run), the
# volumes live in a pool of their own (the host has no "default" pool), the
# image is served by the test on 127.0.0.1, and the NVRAM template is the
# one Debian's ovmf package ships (the example's is "provided by the user").
# One change beyond environment: the example makes one volume and two
# domains on element() of it; qemu refuses two running domains on one
# writable disk, so this copy makes one volume per domain.

terraform {
 required_version = ">= 0.13"
  required_providers {
    libvirt = {
      source  = "dmacvicar/libvirt"
      version = "0.6.2"
    }
  }
}

variable "prefix" {}
variable "image_url" {}

provider "libvirt" {
  uri = "qemu:///system"
}

resource "libvirt_pool" "pool" {
  name = var.prefix
  type = "dir"
  path = "/var/lib/libvirt/images/${var.prefix}"
}

resource "libvirt_volume" "ubuntu-cloud-uefi" {
  name   = "ubuntu-cloud-uefi"
  pool   = libvirt_pool.pool.name
  source = var.image_url
}

resource "libvirt_volume" "volume" {
  name           = "vm${count.index}"
  pool           = libvirt_pool.pool.name
  base_volume_id = libvirt_volume.ubuntu-cloud-uefi.id
  count          = 2
}

resource "libvirt_domain" "domain" {
  count  = 2
  name   = "${var.prefix}-${count.index}"
  memory = "512"
  vcpu   = 1

  # This file is usually present as part of the ovmf firmware package in many
  # Linux distributions.
  firmware = "/usr/share/OVMF/OVMF_CODE.fd"

  nvram {
    # This is the file which will back the UEFI NVRAM content.
    file = "/var/lib/libvirt/qemu/nvram/${var.prefix}-vm${count.index}_VARS.fd"

    # This file needs to be provided by the user.
    template = "/usr/share/OVMF/OVMF_VARS.fd"
  }

  disk {
    volume_id = element(libvirt_volume.volume.*.id, count.index)
  }

  graphics {
    type        = "spice"
    listen_type = "address"
    autoport    = true
  }
}
