pool: ${pool}
disks: ${disks}
suffix: ${suffix}
