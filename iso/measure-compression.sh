#!/usr/bin/env bash
# Choose the rootfs squashfs compression: build the ISO once per compression
# (iso/build.sh with B2D_SQUASHFS_COMP) and boot each under QEMU TCG,
# timing from QEMU start to a marker line on the serial console.
#
#   iso/measure-compression.sh                 # all of zstd xz gzip lz4, 3 boots each
#   COMPS="zstd xz" RUNS=5 iso/measure-compression.sh
#
# Environment:
#   COMPS          compressions to compare (default: zstd xz gzip lz4)
#   RUNS           boots per compression (default 3)
#   MARKER         extended regex ending the timing (default: b2d-ready, the
#                  agent's readiness line)
#   TIMEOUT        seconds per boot before giving up (default 600)
#   MEASURE_INITRD use this initramfs instead of the ISO's (experiments,
#                  e.g. a shell-script /init while the agent is unfinished)
#   QEMU_ARGS      extra QEMU arguments (default: 1 GiB, virtio-net user)
#
# Boots use QEMU's direct kernel boot (-kernel/-initrd from the ISO, the
# ISO as the CD-ROM): the boot loader's time does not depend on the
# squashfs compression, the reads from the CD-ROM do. Only 127.0.0.1 is
# ever bound on the host (no host forwards at all here).
# Results: a table on stdout; ISOs and logs under iso/cache/measure/.
set -euo pipefail

die() { printf 'measure-compression: error: %s\n' "$*" >&2; exit 1; }
ISO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
M=$ISO_DIR/cache/measure
COMPS=${COMPS:-zstd xz gzip lz4}
RUNS=${RUNS:-3}
MARKER=${MARKER:-b2d-ready}
TIMEOUT=${TIMEOUT:-600}
QEMU_ARGS=${QEMU_ARGS:--m 1024 -netdev user,id=n0 -device virtio-net-pci,netdev=n0}
for t in qemu-system-x86_64 xorriso timeout; do
  command -v "$t" >/dev/null || die "missing $t (packages qemu-system-x86, xorriso, coreutils)"
done
mkdir -p "$M"

now() { date +%s.%N; }
printf '%-6s %10s %10s %s\n' comp squashfs iso "boot seconds to /$MARKER/ (each run)"
for c in $COMPS; do
  out=$M/$c
  B2D_SQUASHFS_COMP=$c B2D_OUT=$out "$ISO_DIR/build.sh" >"$M/build-$c.log" 2>&1 \
    || die "build with $c failed; see $M/build-$c.log"
  iso=$out/b2d.iso
  rm -rf "$out/boot"; mkdir -p "$out/boot"
  xorriso -osirrox on -indev "$iso" -extract /boot "$out/boot" -extract /isolinux/isolinux.cfg "$out/isolinux.cfg" >/dev/null 2>&1 \
    || die "cannot extract the kernel from $iso"
  chmod -R u+w "$out/boot"
  append=$(sed -n 's/^ *APPEND //p' "$out/isolinux.cfg")
  initrd=${MEASURE_INITRD:-$out/boot/initrd.img}
  sq=$(xorriso -indev "$iso" -find /b2d/rootfs.squashfs -exec lsdl 2>/dev/null | awk '{print $5}')
  times=()
  for r in $(seq 1 "$RUNS"); do
    log=$M/boot-$c-$r.log
    : > "$log"
    t0=$(now)
    # shellcheck disable=SC2086
    qemu-system-x86_64 -accel tcg -display none -no-reboot $QEMU_ARGS \
      -kernel "$out/boot/vmlinuz" -initrd "$initrd" -append "$append" \
      -cdrom "$iso" -serial "file:$log" -monitor none </dev/null >/dev/null 2>&1 &
    qpid=$!
    t1=
    while kill -0 "$qpid" 2>/dev/null; do
      if grep -qaE "$MARKER" "$log"; then t1=$(now); break; fi
      if awk -v a="$(now)" -v b="$t0" -v t="$TIMEOUT" 'BEGIN { exit !(a - b > t) }'; then break; fi
      sleep 0.1
    done
    kill "$qpid" 2>/dev/null || true
    wait "$qpid" 2>/dev/null || true
    if [ -n "$t1" ]; then times+=("$(awk -v a="$t1" -v b="$t0" 'BEGIN { printf "%.1f", a - b }')"); else times+=(none); fi
  done
  printf '%-6s %10s %10s %s\n' "$c" "$sq" "$(stat -c %s "$iso")" "${times[*]}"
done
