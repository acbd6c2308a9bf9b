# From dmacvicar/terraform-provider-libvirt v0.8.3,
# examples/v0.13/flatcar-linux (main.tf here; ignition.tf and units/
# unchanged).
# Adapted only in environment:
# - the pool "container-linux" is a pool of its own (var.prefix), and the
#   base image is fiat's test guest (scripts/guest-image.sh: a kernel and
#   busybox that ask for a DHCP lease, and ignore the Ignition config),
#   served on 127.0.0.1;
# - the interfaces join a network of their own instead of "default";
# - type = "qemu": this test host's KVM cannot run a guest past its BIOS
#   (nested virtualisation), so the guest is emulated;
# - names come from var.hostname_format (unique per test run).

terraform {
 required_version = ">= 0.13"
  required_providers {
    libvirt = {
      source  = "dmacvicar/libvirt"
      version = "0.6.2"
    }
  }
}

provider "libvirt" {
  uri = "qemu:///system"
}

variable "hosts" {
  default = 2
}

variable "hostname_format" {
  type    = string
  default = "node-%02d"
}

variable "prefix" {}
variable "subnet" {}
variable "image_url" {}

resource "libvirt_pool" "container-linux" {
  name = var.prefix
  type = "dir"
  path = "/var/lib/libvirt/images/${var.prefix}"
}

resource "libvirt_volume" "flatcar_production_qemu_image" {
  name   = "flatcar_production_qemu_image.img"
  pool   = libvirt_pool.container-linux.name
  source = var.image_url
}

resource "libvirt_network" "default" {
  name      = var.prefix
  addresses = ["${var.subnet}.0/24"]
}

resource "libvirt_volume" "flatcar-disk" {
  name             = "flatcar-${format(var.hostname_format, count.index + 1)}.qcow2"
  count            = var.hosts
  base_volume_name = libvirt_volume.flatcar_production_qemu_image.name
  pool             = libvirt_pool.container-linux.name
  format           = "qcow2"
}

resource "libvirt_ignition" "ignition" {
  name    = "${format(var.hostname_format, count.index + 1)}-ignition"
  pool    = libvirt_pool.container-linux.name
  count   = var.hosts
  content = element(data.ignition_config.ignition.*.rendered, count.index)
}

resource "libvirt_domain" "node" {
  count  = var.hosts
  name   = format(var.hostname_format, count.index + 1)
  vcpu   = 1
  memory = 2048
  type   = "qemu"

  disk {
    volume_id = element(libvirt_volume.flatcar-disk.*.id, count.index)
  }

  network_interface {
    network_name   = libvirt_network.default.name
    mac            = "52:54:00:00:00:a${count.index + 1}"
    wait_for_lease = true
  }

  coreos_ignition = element(libvirt_ignition.ignition.*.id, count.index)
  fw_cfg_name = "opt/org.flatcar-linux/config"
}
