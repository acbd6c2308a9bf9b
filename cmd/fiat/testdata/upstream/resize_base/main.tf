# From dmacvicar/terraform-provider-libvirt v0.8.3,
# examples/v0.13/resize_base/main.tf (with its id_rsa.pub; the private key
# is left out: nothing here logs in).
# Adapted only in environment:
# - the pool "default" is a pool of its own (var.prefix), and the network
#   "default" a network of its own (the host has neither);
# - the Ubuntu cloud image is fiat's test guest (scripts/guest-image.sh: a
#   kernel and busybox that ask for a DHCP lease), served on 127.0.0.1;
# - type = "qemu": this test host's KVM cannot run a guest past its BIOS
#   (nested virtualisation), so the guest is emulated;
# - the domain's name is prefixed (unique per test run).

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
  addresses = ["${var.subnet}.0/24"]
}

resource "libvirt_volume" "os_image_ubuntu" {
  name   = "os_image_ubuntu"
  pool   = libvirt_pool.default.name
  source = var.image_url
}

resource "libvirt_volume" "disk_ubuntu_resized" {
  name           = "disk"
  base_volume_id = libvirt_volume.os_image_ubuntu.id
  pool           = libvirt_pool.default.name
  size           = 5361393152
}

# Use CloudInit to add our ssh-key to the instance
resource "libvirt_cloudinit_disk" "cloudinit_ubuntu_resized" {
  name = "cloudinit_ubuntu_resized.iso"
  pool = libvirt_pool.default.name

  user_data = <<EOF
#cloud-config
disable_root: 0
ssh_pwauth: 1
users:
  - name: root
    ssh-authorized-keys:
      - ${file("id_rsa.pub")}
growpart:
  mode: auto
  devices: ['/']
EOF

}

resource "libvirt_domain" "domain_ubuntu_resized" {
  name = "${var.prefix}-doman_ubuntu_resized"
  memory = "512"
  vcpu = 1
  type = "qemu"

  cloudinit = libvirt_cloudinit_disk.cloudinit_ubuntu_resized.id

  network_interface {
    network_name = libvirt_network.default.name
    wait_for_lease = true
  }

  # IMPORTANT
  # Ubuntu can hang if an isa-serial is not present at boot time.
  # If you find your CPU 100% and never is available this is why
  console {
    type = "pty"
    target_port = "0"
    target_type = "serial"
  }

  console {
    type = "pty"
    target_type = "virtio"
    target_port = "1"
  }

  disk {
    volume_id = libvirt_volume.disk_ubuntu_resized.id
  }

  graphics {
    type = "spice"
    listen_type = "address"
    autoport = true
  }
}

output "ip" {
  value = libvirt_domain.domain_ubuntu_resized.network_interface[0].addresses[0]
}
