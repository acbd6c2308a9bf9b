variable "prefix" {
  type    = string
  default = "fiat-tf"
}

variable "disks" {
  type    = number
  default = 2
}
