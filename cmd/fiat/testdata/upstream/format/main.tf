# From dmacvicar/terraform-provider-libvirt v0.8.3, examples/v0.13/format/libvirt.tf.
# Adapted only in environment: names are prefixed (unique per test run), the
# volumes live in a pool of their own (the host has no "default" pool), the
# images are served by the test on 127.0.0.1 (a raw file and a small qcow2)
# instead of localhost:8000, and the network's subnet comes from a variable.

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
variable "image_base_url" {}

provider "libvirt" {
  uri = "qemu:///system"
}

resource "libvirt_pool" "default" {
  name = var.prefix
  type = "dir"
  path = "/var/lib/libvirt/images/${var.prefix}"
}

resource "libvirt_network" "tf" {
  name      = var.prefix
  domain    = "tf.local"
  mode      = "nat"
  addresses = ["${var.subnet}.0/24"]
}

# raw image from file
resource "libvirt_volume" "debian8-raw" {
  name   = "debian8-raw"
  pool   = libvirt_pool.default.name
  format = "raw"
  source = "${var.image_base_url}/debian8.img"
}

# qcow2 image from file
resource "libvirt_volume" "debian8-qcow2" {
  name   = "debian8-qcow2"
  pool   = libvirt_pool.default.name
  source = "${var.image_base_url}/debian8.qcow2"
}

# volume with raw backing storage
resource "libvirt_volume" "vol-debian8-raw" {
  name           = "vol-debian8-raw"
  pool           = libvirt_pool.default.name
  base_volume_id = libvirt_volume.debian8-raw.id
}

# volume with qcow2 backing storage
resource "libvirt_volume" "vol-debian8-qcow2" {
  name           = "vol-debian8-qcow2"
  pool           = libvirt_pool.default.name
  base_volume_id = libvirt_volume.debian8-qcow2.id
}

# domain using raw-backed volume
resource "libvirt_domain" "domain-debian8-raw" {
  name   = "${var.prefix}-debian8-raw"
  memory = "256"
  vcpu   = 1

  network_interface {
    network_name = libvirt_network.tf.name
  }

  disk {
    volume_id = libvirt_volume.vol-debian8-raw.id
  }

  graphics {
    type        = "spice"
    listen_type = "address"
    autoport    = true
  }
}

# domain using qcow2-backed volume
resource "libvirt_domain" "domain-debian8-qcow2" {
  name   = "${var.prefix}-debian8-qcow2"
  memory = "256"
  vcpu   = 1

  network_interface {
    network_name = libvirt_network.tf.name
  }

  disk {
    volume_id = libvirt_volume.vol-debian8-qcow2.id
  }

  graphics {
    type        = "spice"
    listen_type = "address"
    autoport    = true
  }
}
