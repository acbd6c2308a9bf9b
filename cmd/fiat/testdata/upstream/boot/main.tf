# From dmacvicar/terraform-provider-libvirt v0.8.3, examples/v0.13/boot/libvirt.tf.
# Adapted only in environment: names are prefixed (unique per test run), the
# volume lives in a pool of their own (the host has no "default" pool), and
# the bridge "br0" is a bridge the test makes (ip link add ... type bridge).

terraform {
 required_version = ">= 0.13"
  required_providers {
    libvirt = {
      source  = "dmacvicar/libvirt"
      version = "0.6.3"
    }
  }
}

variable "prefix" {}
variable "bridge" {}

provider "libvirt" {
  uri = "qemu:///system"
}

resource "libvirt_pool" "default" {
  name = var.prefix
  type = "dir"
  path = "/var/lib/libvirt/images/${var.prefix}"
}

// blank 10GB image for net install.
resource "libvirt_volume" "debian9-qcow2" {
  name   = "debian9-qcow2"
  pool   = libvirt_pool.default.name
  format = "qcow2"
  size   = 10000000000
}

// set boot order hd, network
resource "libvirt_domain" "domain-debian9-qcow2" {
  name   = var.prefix
  memory = "1024"
  vcpu   = 1

  network_interface {
    bridge = var.bridge
    mac    = "52:54:00:b2:2f:86"
  }

  boot_device {
    dev = ["hd", "network"]
  }

  disk {
    volume_id = libvirt_volume.debian9-qcow2.id
  }

  graphics {
    type        = "vnc"
    listen_type = "address"
  }
}
