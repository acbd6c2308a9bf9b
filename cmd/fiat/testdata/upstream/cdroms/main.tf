# From dmacvicar/terraform-provider-libvirt v0.8.3, examples/v0.13/cdroms/main.tf.
# Adapted only in environment: names are prefixed (unique per test run), and
# the cloud-init disk lives in a pool of its own (the host has no "default"
# pool). image.iso, image2.iso and image3.iso are small placeholder images.

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

provider "libvirt" {
  uri = "qemu:///system"
}

resource "libvirt_pool" "pool" {
  name = var.prefix
  type = "dir"
  path = "/var/lib/libvirt/images/${var.prefix}"
}

resource "libvirt_cloudinit_disk" "commoninit" {
  name      = "commoninit.iso"
  pool      = libvirt_pool.pool.name
  user_data = "#cloud-config"
}

# Up to 4 local file CDROMs can be attached to the domain. When attached,
# cloudinit reserves one of the slots.
resource "libvirt_domain" "example" {
  name = var.prefix

  cloudinit = libvirt_cloudinit_disk.commoninit.id

  disk {
    file = "${path.module}/image.iso"
  }

  disk {
    file = "${path.module}/image2.iso"
  }

  disk {
    file = "${path.module}/image3.iso"
  }
}
