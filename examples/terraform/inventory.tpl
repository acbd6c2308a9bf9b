pool: ${pool}
disks: ${disks}
