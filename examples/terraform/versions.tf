# A configuration written for Terraform/OpenTofu and the dmacvicar/libvirt
# provider, run by fiat as it is (see README "Coming from Terraform").
terraform {
  required_version = ">= 1.0"
  required_providers {
    libvirt = {
      source  = "dmacvicar/libvirt"
      version = "~> 0.8.0"
    }
    random = {
      source = "hashicorp/random"
    }
  }
}

provider "libvirt" {
  uri = "qemu:///system"
}
