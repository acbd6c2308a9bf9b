# From dmacvicar/terraform-provider-libvirt v0.8.3, examples/v0.13/multiple/main.tf.
# Adapted only in environment: the "remotehost" alias reaches this same host
# over TCP (qemu+tcp://127.0.0.1/system) instead of qemu+ssh to a SUSE QA
# machine, names are prefixed (unique per test run), and each host's
# volume lives in a pool made on that host through its provider (the host
# has no "default" pool).

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

provider "libvirt" {
  alias = "remotehost"
  uri   = "qemu+tcp://127.0.0.1/system"
}

resource "libvirt_pool" "local" {
  name = "${var.prefix}-local"
  type = "dir"
  path = "/var/lib/libvirt/images/${var.prefix}-local"
}

resource "libvirt_pool" "remotehost" {
  provider = libvirt.remotehost
  name     = "${var.prefix}-remotehost"
  type     = "dir"
  path     = "/var/lib/libvirt/images/${var.prefix}-remotehost"
}

resource "libvirt_volume" "local-qcow2" {
  name   = "local-qcow2"
  pool   = libvirt_pool.local.name
  format = "qcow2"
  size   = 100000
}

resource "libvirt_volume" "remotehost-qcow2" {
  provider = libvirt.remotehost
  name     = "remotehost-qcow2"
  pool     = libvirt_pool.remotehost.name
  format   = "qcow2"
  size     = 100000
}

resource "libvirt_domain" "local-domain" {
  name   = "${var.prefix}-local"
  memory = "2048"
  vcpu   = 2

  disk {
    volume_id = libvirt_volume.local-qcow2.id
  }
}

resource "libvirt_domain" "remotehost-domain" {
  provider = libvirt.remotehost
  name     = "${var.prefix}-remotehost"
  memory   = "2048"
  vcpu     = 2

  disk {
    volume_id = libvirt_volume.remotehost-qcow2.id
  }
}
