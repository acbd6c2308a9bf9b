resource "random_id" "suffix" {
  byte_length = 2
}

resource "libvirt_pool" "images" {
  name = var.prefix
  type = "dir"
  path = "/var/lib/libvirt/images/${var.prefix}"
}

resource "libvirt_volume" "disk" {
  count  = var.disks
  name   = format("disk-%02d-%s.qcow2", count.index, random_id.suffix.hex)
  pool   = libvirt_pool.images.name
  size   = 16 * 1024 * 1024
  format = "qcow2"
}

# Read during the apply, once random_id.suffix exists (the plan says so);
# a data source whose vars are all known is read while planning.
data "template_file" "header" {
  template = file("${path.module}/inventory.tpl")
  vars = {
    pool   = var.prefix
    disks  = var.disks
    suffix = random_id.suffix.hex
  }
}

# Written where fiat runs; a rollback puts back what was there.
resource "local_file" "inventory" {
  filename = "${path.module}/.inventory.txt"
  content  = "${data.template_file.header.rendered}${join("\n", libvirt_volume.disk[*].path)}\n"

  provisioner "local-exec" {
    command = "echo inventory written: ${self.content_sha1}"
    undo    = "echo inventory rolled back"
  }
}

output "disks" {
  value = libvirt_volume.disk[*].path
}
