# From dmacvicar/terraform-provider-libvirt v0.8.3, examples/v0.13/tumbleweed/tumbleweed.tf
# (cloud_init.cfg and network_config.cfg as they are). Adapted only in
# environment: names are prefixed (unique per test run), the volume and the
# cloud-init disk live in a pool of their own (the host has no "default"
# pool), the image URL is served by the test (a small qcow2 on 127.0.0.1)
# instead of download.opensuse.org, and the domain joins a network of its own
# (the host has no "default" network).

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

# instance the provider
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
}

# adapt the build number 
resource "libvirt_volume" "tumbleweed" {
  name   = "tumbleweed"
  pool   = libvirt_pool.default.name
  source = var.image_url
  format = "qcow2"
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
  pool           = libvirt_pool.default.name
  user_data      = data.template_file.user_data.rendered
  network_config = data.template_file.network_config.rendered
}

# Create the machine
resource "libvirt_domain" "domain-tumbleweed" {
  name   = "${var.prefix}-tumbleweed-terraform"
  memory = "512"
  vcpu   = 1

  cloudinit = libvirt_cloudinit_disk.commoninit.id

  network_interface {
    network_name = libvirt_network.default.name
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
    volume_id = libvirt_volume.tumbleweed.id
  }

  graphics {
    type        = "spice"
    listen_type = "address"
    autoport    = true
  }
}
