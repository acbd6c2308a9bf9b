# From dmacvicar/terraform-provider-libvirt v0.8.3, examples/v0.13/xslt/main.tf
# (with its nicmodel.xsl and add_spicevmc.xsl, unchanged).
# Adapted only in environment: the domain's name is prefixed (unique per test
# run) and it joins a network of its own instead of network_name = "default"
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

provider "libvirt" {
  uri = "qemu:///system"
}

resource "libvirt_network" "default" {
  name      = var.prefix
  addresses = ["${var.subnet}.0/24"]
}

resource "libvirt_domain" "xslt-demo-domain" {
  name   = "${var.prefix}-xslt-demo-domain"
  memory = "512"

  network_interface {
    network_name = libvirt_network.default.name
  }

  xml {
    xslt = file("nicmodel.xsl")
  }
}
