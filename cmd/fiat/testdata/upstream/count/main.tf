# From dmacvicar/terraform-provider-libvirt v0.8.3, examples/v0.13/count/main.tf.
# Adapted only in environment: names are prefixed (unique per test run), the
# volumes live in a pool of their own (the host has no "default" pool), the
# image URL is served by the test (a small qcow2 on 127.0.0.1) instead of
# download.opensuse.org, and the domains join a network of their own (the
# host has no "default" network) without waiting for a lease (the image
# boots no OS).

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
variable "subnet" {}
variable "image_url" {}

provider "libvirt" {
  uri = "qemu:///system"
}

resource "libvirt_pool" "default" {
  name = var.prefix
  type = "dir"
  path = "/var/lib/libvirt/images/${var.prefix}"
}

resource "libvirt_network" "default" {
  name      = var.prefix
  mode      = "nat"
  addresses = ["${var.subnet}.0/24"]
  dhcp {
    enabled = true
  }
}

resource "libvirt_volume" "os_image" {
  name   = "os_image"
  pool   = libvirt_pool.default.name
  source = var.image_url
}

resource "libvirt_volume" "volume" {
  name           = "volume-${count.index}"
  pool           = libvirt_pool.default.name
  base_volume_id = libvirt_volume.os_image.id
  count          = 4
}

resource "libvirt_domain" "domain" {
  name = "${var.prefix}-domain-${count.index}"

  disk {
    volume_id = element(libvirt_volume.volume.*.id, count.index)
  }

  network_interface {
    network_name   = libvirt_network.default.name
    wait_for_lease = false
  }

  count = 4
}

output "ips" {
  value = libvirt_domain.domain.*.network_interface.0.addresses
}
