disks = 3
