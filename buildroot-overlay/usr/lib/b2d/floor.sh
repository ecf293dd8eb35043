#!/bin/sh
# The naive floor of `make bench-boot`: what a minimal shell init does to
# reach a Docker engine, booted in place of the agent's main stage when
# the kernel command line has `b2d.floor` (never in normal use). It runs
# as PID 1 after the same kernel, initramfs stage and squashfs. It mounts
# an ext4 disk (whole /dev/sda, made by the bench) at /var/lib/docker,
# loads the agent's module lists, takes a DHCP lease, starts dockerd and
# waits for `docker version`, then prints one line on the console.

if [ "$1" = bound ] || [ "$1" = renew ]; then # udhcpc's hook
  busybox ip addr add "$ip/${mask:-24}" dev "$interface"
  [ -n "$router" ] && busybox ip route add default via "${router%% *}"
  exit 0
fi
[ -n "$1" ] && exit 0

export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc 2>/dev/null
mount -t sysfs sysfs /sys 2>/dev/null
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /run 2>/dev/null
mount -t tmpfs tmpfs /tmp
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mkdir -p /var/run /var/lib/docker
# Every module the agent loads in a boot, up front: its lists, plus the
# ones it loads only for their device or share (the floor's set does not
# shrink when the agent defers a module).
modprobe -qa $(grep -hv "^#" /etc/b2d/modules /etc/b2d/modules.docker /etc/b2d/modules.after) \
  e1000 9p 9pnet_virtio
mount -t ext4 /dev/sda /var/lib/docker
busybox ip link set lo up
busybox ip link set eth0 up
busybox udhcpc -q -f -n -i eth0 -s /usr/lib/b2d/floor.sh >/dev/null 2>&1
DOCKER_RAMDISK=true dockerd -H unix:///var/run/docker.sock >/run/docker.log 2>&1 &
until docker version >/dev/null 2>&1; do sleep 0.1; done
read up _ < /proc/uptime
echo "b2d-floor-ready $up" > /dev/ttyS0
exec sleep 100000
