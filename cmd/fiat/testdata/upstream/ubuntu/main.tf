# From dmacvicar/terraform-provider-libvirt v0.8.3,
# examples/v0.13/ubuntu/ubuntu-example.tf, with the base/overlay volumes of
# website/docs/r/volume.html.markdown and the network_interface of
# website/docs/r/domain.html.markdown ("network_id", "hostname") and the
# network of website/docs/r/network.html.markdown.
# Adapted only in environment: names and the pool path come from variables
# (unique per test run), the cloud image download is a blank base volume of
# a given size, and the domain joins a network of its own (the host has no
# "default" network) instead of network_name = "default".

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

# instance the provider
provider "libvirt" {
  uri = "qemu:///system"
}

resource "libvirt_pool" "ubuntu" {
  name = var.prefix
  type = "dir"
  path = "/var/lib/libvirt/images/${var.prefix}"
}

# We fetch the latest ubuntu release image from their mirrors
resource "libvirt_volume" "ubuntu-qcow2" {
  name   = "ubuntu-qcow2"
  pool   = libvirt_pool.ubuntu.name
  size   = 16777216
  format = "qcow2"
}

# volume to attach to the "master" domain as main disk
resource "libvirt_volume" "master" {
  name           = "master.qcow2"
  pool           = libvirt_pool.ubuntu.name
  base_volume_id = libvirt_volume.ubuntu-qcow2.id
}

# the same base, found by name
resource "libvirt_volume" "worker" {
  name             = "worker.qcow2"
  pool             = libvirt_pool.ubuntu.name
  base_volume_name = libvirt_volume.ubuntu-qcow2.name
  base_volume_pool = libvirt_pool.ubuntu.name
}

# website/docs/r/network.html.markdown (the subnet from a variable, no IPv6
# range, and the commented-out examples filled in)
resource "libvirt_network" "net1" {
  # the name used by libvirt
  name = var.prefix

  # mode can be: "nat" (default), "none", "route", "open", "bridge"
  mode = "nat"

  #  the domain used by the DNS server in this network
  domain = "k8s.local"

  addresses = ["${var.subnet}.0/24"]

  mtu = 9000

  dhcp {
    enabled = true
  }

  # (Optional) DNS configuration
  dns {
    enabled    = true
    local_only = true

    forwarders {
      address = "9.9.9.9"
    }

    hosts {
      hostname = "myhost" # the docs say "my_hostname": libvirt refuses "_" in a DNS name
      ip       = "${var.subnet}.5"
    }
  }

  routes {
    cidr    = "10.17.0.0/16"
    gateway = "${var.subnet}.2"
  }
}

data "template_file" "user_data" {
  template = file("${path.module}/cloud_init.cfg")
}

data "template_file" "network_config" {
  template = file("${path.module}/network_config.cfg")
}

# for more info about paramater check this out
# https://github.com/dmacvicar/terraform-provider-libvirt/blob/master/website/docs/r/cloudinit.html.markdown
# Use CloudInit to add our ssh-key to the instance
# you can add also meta_data field
resource "libvirt_cloudinit_disk" "commoninit" {
  name           = "commoninit.iso"
  user_data      = data.template_file.user_data.rendered
  network_config = data.template_file.network_config.rendered
  pool           = libvirt_pool.ubuntu.name
}

# Create the machine
resource "libvirt_domain" "domain-ubuntu" {
  name   = var.prefix
  memory = "512"
  vcpu   = 1

  cloudinit = libvirt_cloudinit_disk.commoninit.id

  network_interface {
    network_id = libvirt_network.net1.id
    hostname   = "master"
  }

  # IMPORTANT: this is a known bug on cloud images, since they expect a console
  # we need to pass it
  # https://bugs.launchpad.net/cloud-images/+bug/1573095
  console {
    type        = "pty"
    target_port = "0"
    target_type = "serial"
  }

  console {
    type        = "pty"
    target_type = "virtio"
    target_port = "1"
  }

  disk {
    volume_id = libvirt_volume.master.id
  }

  disk {
    volume_id = libvirt_volume.worker.id
  }

  graphics {
    type        = "spice"
    listen_type = "address"
    autoport    = true
  }

  qemu_agent  = true
  description = "ubuntu example"
  # cpu { mode = "host-passthrough" } is left out: this host's nested KVM
  # refuses to start a guest with the host's CPU model (the provider tests
  # check how it is rendered).
  boot_device {
    dev = ["hd", "network"]
  }
}

output "ips" {
  value = libvirt_domain.domain-ubuntu.network_interface[0].addresses
}

# IPs: use wait_for_lease true or after creation use terraform refresh and terraform show for the ips of domain
