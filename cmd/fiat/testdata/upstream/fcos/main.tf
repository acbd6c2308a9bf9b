# From dmacvicar/terraform-provider-libvirt v0.8.3, examples/v0.13/fcos
# (main.tf here; ignition.tf and versions.tf unchanged).
# Adapted only in environment:
# - the pool "default" is a pool of its own (var.prefix; the host has none),
#   and the base image "coreos_production_qemu" is fiat's test guest
#   (scripts/guest-image.sh: a kernel and busybox that ask for a DHCP lease,
#   and ignore the Ignition config), served on 127.0.0.1;
# - the interface joins a network of its own instead of "default";
# - type = "qemu": this test host's KVM cannot run a guest past its BIOS
#   (nested virtualisation), so the guest is emulated;
# - names come from var.hostname_format (unique per test run).

terraform {
  required_version = ">= 0.13"
  required_providers {
    libvirt = {
      source  = "dmacvicar/libvirt"
      version = "0.6.12"
    }
    ignition = {
      source = "community-terraform-providers/ignition"
    }
  }
}

# -[Provider]--------------------------------------------------------------
provider "libvirt" {
  uri = "qemu:///system"
}

# -[Variables]-------------------------------------------------------------
variable "hosts" {
  default = 1
}

variable "hostname_format" {
  type    = string
  default = "coreos%02d"
}

variable "libvirt_provider" {
  type = string
}

variable "prefix" {}
variable "subnet" {}
variable "image_url" {}

resource "libvirt_pool" "default" {
  name = var.prefix
  type = "dir"
  path = "/var/lib/libvirt/images/${var.prefix}"
}

resource "libvirt_volume" "coreos_production_qemu" {
  name   = "coreos_production_qemu"
  pool   = libvirt_pool.default.name
  source = var.image_url
}

resource "libvirt_network" "default" {
  name      = var.prefix
  addresses = ["${var.subnet}.0/24"]
}

# -[Resources]-------------------------------------------------------------
resource "libvirt_volume" "coreos-disk" {
  name             = "${format(var.hostname_format, count.index + 1)}.qcow2"
  count            = var.hosts
  base_volume_name = libvirt_volume.coreos_production_qemu.name
  pool             = libvirt_pool.default.name
  format           = "qcow2"
}

# Loading ignition configs in QEMU requires at least QEMU v2.6
resource "libvirt_ignition" "ignition" {
  name    = "${format(var.hostname_format, count.index + 1)}-ignition"
  pool    = libvirt_pool.default.name
  count   = var.hosts
  content = element(data.ignition_config.startup.*.rendered, count.index)
}

# Create the virtual machines
resource "libvirt_domain" "coreos-machine" {
  count  = var.hosts
  name   = format(var.hostname_format, count.index + 1)
  vcpu   = "1"
  memory = "2048"
  type   = "qemu"

  ## Use qemu-agent in conjunction with the container
  #qemu_agent = true
  coreos_ignition = element(libvirt_ignition.ignition.*.id, count.index)

  disk {
    volume_id = element(libvirt_volume.coreos-disk.*.id, count.index)
  }

  graphics {
    ## Bug in linux up to 4.14-rc2
    ## https://bugzilla.redhat.com/show_bug.cgi?id=1432684
    ## No Spice/VNC available if more than one machine is generated at a time
    ## Comment the address line, uncomment the none line and the console block below
    #listen_type = "none"
    listen_type = "address"
  }

  ## Makes the tty0 available via `virsh console`
  #console {
  #  type = "pty"
  #  target_port = "0"
  #}

  network_interface {
    network_name = libvirt_network.default.name

    # Requires qemu-agent container if network is not native to libvirt
    wait_for_lease = true
  }
  ## mounts filesystem local to the kvm host. used to patch in the
  ## qemu-guest-agent as docker container
  #filesystem {
  #  source = "/srv/images/"
  #  target = "qemu_docker_images"
  #  readonly = true
  #}
}

# -[Output]-------------------------------------------------------------
output "ipv4" {
  value = libvirt_domain.coreos-machine.*.network_interface.0.addresses
}
