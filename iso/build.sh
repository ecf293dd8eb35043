#!/usr/bin/env bash
# Build the b2d ISO: out/b2d.iso + out/b2d.iso.manifest.
#
#   iso/build.sh            (as root; `make iso` runs it after `make init`)
#
# Debian trixie packages are fetched with a build-local apt configuration
# (iso/apt/, state under iso/cache/apt; apt verifies the InRelease
# signatures against the trixie keys of the host's debian-archive-keyring)
# and unpacked with dpkg-deb into a staging rootfs; no maintainer script
# runs, the few setup steps they would do are done here. The rootfs becomes
# a squashfs on the ISO; a small initramfs holds b2d-init as /init and the
# modules needed to reach it. See iso/README.md for the boot contract.
#
# Network: only deb.debian.org (iso/apt/sources.list). Writes only under
# iso/cache/ and out/. Cached: a second build with unchanged inputs reuses
# the downloaded packages, the squashfs, the initramfs and the EFI image.
#
# Environment:
#   B2D_INIT_BIN          b2d-init binary (default: the musl release build
#                         under ${CARGO_TARGET_DIR:-target}, as cargo put it)
#   B2D_SQUASHFS_COMP     lz4 (default) | gzip | zstd | xz (see below)
#   B2D_APT_MAX_AGE       seconds before the package lists are refreshed
#                         (default 86400)
#   B2D_ISO_OFFLINE=1     never touch the network; use only the cache
#   B2D_OUT               output directory (default: out/ at the repo root)
set -euo pipefail
shopt -s nullglob

die() { printf 'iso/build.sh: error: %s\n' "$*" >&2; exit 1; }
log() { printf 'iso/build.sh: %s\n' "$*" >&2; }
trap 'die "failed at line $LINENO: $BASH_COMMAND"' ERR

ISO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$ISO_DIR")
CACHE=$ISO_DIR/cache
OUT=${B2D_OUT:-$ROOT/out}
# cargo resolves a relative CARGO_TARGET_DIR against its working directory
# (the repo root under `make`); so does this. Unset: the repo's target/.
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
case $TARGET_DIR in /*) ;; *) TARGET_DIR=$PWD/$TARGET_DIR ;; esac
INIT_BIN=${B2D_INIT_BIN:-$TARGET_DIR/x86_64-unknown-linux-musl/release/b2d-init}
COMP=${B2D_SQUASHFS_COMP:-lz4}
APT_MAX_AGE=${B2D_APT_MAX_AGE:-86400}
OFFLINE=${B2D_ISO_OFFLINE:-0}
OVERLAY=$ROOT/buildroot-overlay
W=$CACHE/work                       # scratch, rebuilt every run
export TMPDIR=$CACHE/tmp            # grub-mkstandalone, mktemp: stay in the cache
export LC_ALL=C
T0=$(date +%s)

# ---------------------------------------------------------------- checks
[ "$(id -u)" = 0 ] || die "must run as root (unpacks packages with their owners and modes, creates device nodes); try: sudo make iso"

# tool -> Debian package that provides it (also listed in iso/host-packages.txt)
need_tools=(
  apt-get:apt dpkg-deb:dpkg gpgv:gpgv xorriso:xorriso mksquashfs:squashfs-tools
  cpio:cpio zstd:zstd xz:xz-utils gzip:gzip depmod:kmod readelf:binutils
  grub-mkstandalone:grub-common mkfs.vfat:dosfstools mmd:mtools mcopy:mtools
  ldconfig:libc-bin sha256sum:coreutils tar:tar
)
missing=()
for tp in "${need_tools[@]}"; do
  command -v "${tp%%:*}" >/dev/null 2>&1 || missing+=("${tp%%:*} (package ${tp##*:})")
done
[ ${#missing[@]} = 0 ] || die "missing host tools: ${missing[*]}; install the packages in iso/host-packages.txt"

need_file() { [ -e "$1" ] || die "missing $1 (from host package $2; see iso/host-packages.txt)"; }
ISOHDPFX=/usr/lib/ISOLINUX/isohdpfx.bin
ISOLINUX_BIN=/usr/lib/ISOLINUX/isolinux.bin
LDLINUX_C32=/usr/lib/syslinux/modules/bios/ldlinux.c32
GRUB_EFI_DIR=/usr/lib/grub/x86_64-efi
need_file "$ISOHDPFX" isolinux
need_file "$ISOLINUX_BIN" isolinux
need_file "$LDLINUX_C32" syslinux-common
need_file "$GRUB_EFI_DIR/linux.mod" grub-efi-amd64-bin
for k in trixie-stable trixie-automatic trixie-security-automatic; do
  need_file "/usr/share/keyrings/debian-archive-$k.gpg" "debian-archive-keyring (>= 2023.3+deb12u1, which carries the trixie keys)"
done
for f in packages.txt exclude.txt prune.txt modules.txt modules-docker.txt modules-after.txt modules-ondemand.txt initrd-modules.txt \
         apt/apt.conf apt/sources.list boot/cmdline.txt boot/isolinux.cfg boot/grub.cfg boot/grub-embed.cfg; do
  need_file "$ISO_DIR/$f" "the b2d repository"
done
[ -d "$OVERLAY/etc" ] || die "missing $OVERLAY/etc (buildroot-overlay/ of the b2d repository)"
[ -x "$INIT_BIN" ] || die "missing $INIT_BIN: build it first with 'make init' (or set B2D_INIT_BIN)"
if readelf -l "$INIT_BIN" 2>/dev/null | grep -q 'Requesting program interpreter'; then
  die "$INIT_BIN is dynamically linked; the initramfs has no libc: build the static musl target ('make init')"
fi
case $COMP in zstd|xz|gzip|lz4) ;; *) die "B2D_SQUASHFS_COMP=$COMP: use zstd, xz, gzip or lz4" ;; esac

VERSION=$(sed -n '/^\[package\]/,/^\[/s/^version *= *"\([^"]*\)".*/\1/p' "$ROOT/Cargo.toml" | head -n1)
[ -n "$VERSION" ] || die "cannot read the package version from $ROOT/Cargo.toml"
VOLID="B2D-$VERSION"
[ ${#VOLID} -le 32 ] || die "volume label $VOLID is longer than the 32 bytes ISO 9660 allows"

mkdir -p "$CACHE" "$TMPDIR" "$OUT"
rm -rf "$W"
mkdir -p "$W"

# Lines of a list file without comments and blanks.
list() { sed -e 's/#.*//' -e 's/[[:space:]]*$//' -e '/^$/d' "$1"; }

# ------------------------------------------------------- build-local apt
APT=$CACHE/apt
mkdir -p "$APT"/{state/lists/partial,cache/archives/partial,etc/apt.conf.d,etc/preferences.d,etc/sources.list.d,etc/trusted.gpg.d,log}
[ -e "$APT/state/status" ] || : > "$APT/state/status"   # empty: nothing "installed"
cat > "$APT/apt.conf" <<EOF
// Generated by iso/build.sh; every path is build-local.
Dir "/";
Dir::Etc "$APT/etc";
Dir::Etc::Main "$APT/etc/apt.conf";
Dir::Etc::Parts "$APT/etc/apt.conf.d";
Dir::Etc::SourceList "$ISO_DIR/apt/sources.list";
Dir::Etc::SourceParts "$APT/etc/sources.list.d";
Dir::Etc::Preferences "$APT/etc/preferences";
Dir::Etc::PreferencesParts "$APT/etc/preferences.d";
Dir::Etc::Trusted "$APT/etc/trusted.gpg";
Dir::Etc::TrustedParts "$APT/etc/trusted.gpg.d";
Dir::State "$APT/state";
Dir::State::status "$APT/state/status";
Dir::Cache "$APT/cache";
Dir::Log "$APT/log";
Debug::NoLocking "true";
#include "$ISO_DIR/apt/apt.conf";
EOF
export APT_CONFIG=$APT/apt.conf    # read first, so /etc/apt is never consulted

mapfile -t PKGS < <(list "$ISO_DIR/packages.txt")
lists=("$APT"/state/lists/*_InRelease)
stale=1
if [ ${#lists[@]} -gt 0 ]; then
  newest=$(stat -c %Y "${lists[@]}" | sort -n | tail -n1)
  [ $(( $(date +%s) - newest )) -lt "$APT_MAX_AGE" ] && [ "$newest" -ge "$(stat -c %Y "$ISO_DIR/apt/sources.list")" ] && stale=0
fi
if [ "$OFFLINE" = 1 ]; then
  [ ${#lists[@]} -gt 0 ] || die "B2D_ISO_OFFLINE=1 but no cached package lists in $APT/state/lists"
  log "offline: using cached package lists"
elif [ $stale = 1 ]; then
  log "apt-get update (trixie, build-local, signatures checked)"
  apt-get -q update -o APT::Update::Error-Mode=any >"$APT/log/update.log" 2>&1 \
    || { cat "$APT/log/update.log" >&2; die "apt-get update failed (network to deb.debian.org? signature?); log: $APT/log/update.log"; }
fi

log "resolving ${#PKGS[@]} packages and their dependencies"
apt-get -q -s install "${PKGS[@]}" >"$W/resolve.log" 2>&1 \
  || { cat "$W/resolve.log" >&2; die "apt cannot resolve iso/packages.txt"; }
# "Inst name (version suite [arch])" -> "name version arch"
sed -n 's/^Inst \([^ ]*\) (\([^ ]*\) [^[]*\[\([a-z0-9]*\)\].*/\1 \2 \3/p' "$W/resolve.log" | sort > "$W/resolved.txt"
[ -s "$W/resolved.txt" ] || die "apt resolved no packages; see $W/resolve.log"
deb_of() { # name version arch -> cached .deb path
  local f="$APT/cache/archives/${1}_${2//:/%3a}_${3}.deb"
  [ -f "$f" ] || die "package $1 $2 was resolved but $f is not in the cache$([ "$OFFLINE" = 1 ] && echo ' (B2D_ISO_OFFLINE=1: build once online first)')"
  printf '%s\n' "$f"
}
if [ "$OFFLINE" = 1 ]; then
  while read -r name ver arch; do deb_of "$name" "$ver" "$arch" >/dev/null; done < "$W/resolved.txt"
else
  apt-get -q install --download-only "${PKGS[@]}" >"$W/download.log" 2>&1 \
    || { cat "$W/download.log" >&2; die "downloading packages failed; log: $W/download.log"; }
fi

mapfile -t EXCL < <(list "$ISO_DIR/exclude.txt")
is_excluded() { local e; for e in "${EXCL[@]}"; do [ "$e" = "$1" ] && return 0; done; return 1; }

# --------------------------------------------------------------- kernel
kpkg=$(awk '$1 ~ /^linux-image-[0-9].*-amd64$/ {print $1, $2, $3}' "$W/resolved.txt")
[ "$(printf '%s\n' "$kpkg" | grep -c .)" = 1 ] || die "expected exactly one linux-image-*-amd64 in the resolution, got: ${kpkg:-none}"
read -r kname kver_pkg karch <<<"$kpkg"
# The unpacked kernel with a full depmod is cached per package version.
KC=$CACHE/kernel/${kname}_${kver_pkg//:/%3a}
if [ ! -f "$KC/.done" ]; then
  log "unpacking $kname $kver_pkg"
  rm -rf "$KC" "$KC.tmp"; mkdir -p "$KC.tmp"
  dpkg-deb -x "$(deb_of "$kname" "$kver_pkg" "$karch")" "$KC.tmp/pkg"
  kdirs=("$KC.tmp"/pkg/usr/lib/modules/*)
  [ ${#kdirs[@]} = 1 ] || die "$kname: expected one modules directory, found ${#kdirs[@]}"
  kv=$(basename "${kdirs[0]}")
  mkdir -p "$KC.tmp/lib/modules"          # depmod -b wants <base>/lib/modules/<version>
  mv "${kdirs[0]}" "$KC.tmp/lib/modules/$kv"
  depmod -b "$KC.tmp" "$kv"
  touch "$KC.tmp/.done"
  mv "$KC.tmp" "$KC"
fi
kdirs=("$KC"/lib/modules/*)
KVER=$(basename "${kdirs[0]}")
KM=$KC/lib/modules/$KVER
VMLINUZ=$KC/pkg/boot/vmlinuz-$KVER
[ -f "$VMLINUZ" ] || die "$kname has no /boot/vmlinuz-$KVER"
log "kernel $KVER ($kname $kver_pkg)"

# Module name -> path (relative to $KM) from modules.dep.
declare -A MODPATH MODDEPS
while IFS=$'\t' read -r n p d; do
  MODPATH[$n]=$p
  MODDEPS[$n]=$d
done < <(awk -F: '{ n = $1; sub(/.*\//, "", n); sub(/\.ko.*/, "", n); gsub(/-/, "_", n); print n "\t" $1 "\t" $2 }' "$KM/modules.dep")
declare -A SOFTPRE
while read -r _ m rest; do
  [[ $rest == pre:* ]] || continue
  pre=${rest#pre:}; pre=${pre%%post:*}
  SOFTPRE[${m//-/_}]=$pre
done < <(grep '^softdep ' "$KM/modules.softdep" || true)

# Closure of module names, dependencies first, one per line on stdout.
# Unknown names fail unless built in; softdep names may be aliases.
declare -A SEEN
resolve_mod() {
  local n d a
  n=${1//-/_}
  [ -n "${SEEN[$n]:-}" ] && return 0
  SEEN[$n]=1
  if [ -z "${MODPATH[$n]:-}" ]; then
    if grep -q "/$n\.ko" "$KM/modules.builtin" 2>/dev/null || grep -q "/${n//_/-}\.ko" "$KM/modules.builtin" 2>/dev/null; then
      return 0
    fi
    if [ "${2:-}" = soft ]; then   # alias, e.g. crypto-crc32c
      for a in $(awk -v al="$1" '$1 == "alias" && $2 == al {print $3}' "$KM/modules.alias"); do resolve_mod "$a" soft; done
      return 0
    fi
    die "kernel module '$1' not found in $KVER (check iso/modules.txt / iso/initrd-modules.txt)"
  fi
  for d in ${SOFTPRE[$n]:-}; do resolve_mod "$d" soft; done
  for d in ${MODDEPS[$n]}; do
    d=${d##*/}; resolve_mod "${d%%.ko*}"
  done
  printf '%s\n' "$n"
}
closure() { # file -> module names, deps first
  SEEN=()
  local m
  while read -r m _; do resolve_mod "$m"; done < <(list "$1")
}
# Copy modules + index files into <base>/lib/modules/$KVER and run depmod.
# Modules are stored uncompressed: the squashfs and the initramfs compress
# them anyway, and the kernel's own xz decompression of each module was
# most of the time spent loading them under TCG.
install_modules() { # base names...
  local base=$1; shift
  local dst=$base/lib/modules/$KVER n f
  mkdir -p "$dst"
  for n in "$@"; do
    [ -n "${MODPATH[$n]:-}" ] || continue
    mkdir -p "$dst/$(dirname "${MODPATH[$n]}")"
    f=$dst/${MODPATH[$n]}
    case $f in
      *.ko.xz) xz -dc "$KM/${MODPATH[$n]}" > "${f%.xz}" ;;
      *.ko.zst) zstd -qdc "$KM/${MODPATH[$n]}" > "${f%.zst}" ;;
      *.ko.gz) gzip -dc "$KM/${MODPATH[$n]}" > "${f%.gz}" ;;
      *) cp -p "$KM/${MODPATH[$n]}" "$f" ;;
    esac
  done
  cp -p "$KM/modules.builtin" "$KM/modules.builtin.modinfo" "$dst/"
  grep -F -f <(for n in "$@"; do [ -n "${MODPATH[$n]:-}" ] && printf '%s\n' "${MODPATH[$n]}"; done) \
    "$KM/modules.order" > "$dst/modules.order" || true
  depmod -b "$base" "$KVER"
}

# ------------------------------------------------------------- manifest
{
  printf '# b2d %s ISO manifest: Debian trixie packages (name, version, arch, status)\n' "$VERSION"
  printf '# kernel %s; "omitted" = resolved as a dependency but not in the image (iso/exclude.txt)\n' "$KVER"
  while read -r name ver arch; do
    if is_excluded "$name"; then st=omitted; else st=installed; fi
    printf '%s\t%s\t%s\t%s\n' "$name" "$ver" "$arch" "$st"
  done < "$W/resolved.txt"
} > "$W/manifest"
for e in "${EXCL[@]}"; do
  grep -q "^$e " "$W/resolved.txt" || log "note: iso/exclude.txt names $e, which apt did not resolve"
done

# ----------------------------------------------------- rootfs cache key
# Inputs that decide the rootfs bytes; a match reuses the cached squashfs
# and skips staging altogether.
EPOCH=$(stat -c %Y "$ROOT/Cargo.toml")
key_root=$( {
  cat "$W/resolved.txt" "$ISO_DIR"/{packages,exclude,prune,modules,modules-docker,modules-after,modules-ondemand}.txt "$ISO_DIR/build.sh"
  sha256sum "$INIT_BIN"
  tar -C "$OVERLAY" --owner=0 --group=0 --numeric-owner --sort=name --mtime=@0 -c . | sha256sum
  echo "$COMP $VERSION"
} | sha256sum | cut -c1-16)
SQ=$CACHE/rootfs-$COMP-$key_root.squashfs
if [ -f "$SQ" ]; then
  log "rootfs squashfs unchanged, cached: $(basename "$SQ")"
else   # stage the rootfs, then squash it
# --------------------------------------------------------------- rootfs
R=$W/rootfs
mkdir -p "$R"/usr/{bin,sbin,lib,lib64}
for d in bin sbin lib lib64; do ln -s "usr/$d" "$R/$d"; done   # merged /usr
while read -r name ver arch; do
  is_excluded "$name" && continue
  [ "$name" = "$kname" ] && continue    # kernel: only the module subset, below
  dpkg-deb --fsys-tarfile "$(deb_of "$name" "$ver" "$arch")" \
    | tar -x --keep-directory-symlink --numeric-owner -C "$R" \
    || die "unpacking $name $ver failed"
done < "$W/resolved.txt"

# Prune what nothing uses (docs, locales, init-system glue, shim v1, ctr...).
while read -r pat; do
  for p in $R/$pat; do rm -rf -- "$p"; done
done < <(list "$ISO_DIR/prune.txt")

# Kernel modules: the closure of iso/modules.txt, iso/modules-docker.txt,
# iso/modules-after.txt and iso/modules-ondemand.txt, with fresh index files.
cat "$ISO_DIR"/modules{,-docker,-after,-ondemand}.txt > "$W/all-modules.txt"
closure "$W/all-modules.txt" > "$W/rootfs-modules"
mapfile -t ROOT_MODS < "$W/rootfs-modules"
install_modules "$R" "${ROOT_MODS[@]}"
mkdir -p "$R/etc/b2d"
{ echo "# Kernel modules b2d-init loads at boot (from iso/modules.txt)."; list "$ISO_DIR/modules.txt"; } > "$R/etc/b2d/modules"
{ echo "# Kernel modules b2d-init loads beside disk and network (from iso/modules-docker.txt)."; list "$ISO_DIR/modules-docker.txt"; } > "$R/etc/b2d/modules.docker"
{ echo "# Kernel modules b2d-init loads once the machine is ready (from iso/modules-after.txt)."; list "$ISO_DIR/modules-after.txt"; } > "$R/etc/b2d/modules.after"

# busybox: an applet link for every command no package provides. Debian's
# busybox is dynamic, so ask it through the staged loader and libraries.
LDSO=$R/usr/lib64/ld-linux-x86-64.so.2
[ -x "$LDSO" ] || die "staged rootfs has no $LDSO (libc6 missing?)"
"$LDSO" --library-path "$R/usr/lib/x86_64-linux-gnu" "$R/usr/bin/busybox" --list-full > "$W/applets" \
  || die "cannot list busybox applets"
n_links=0
while read -r a; do
  a=${a#/}; b=$(basename "$a")
  case $b in init|linuxrc) continue ;; esac   # PID 1 is b2d-init, never busybox init
  case $a in bin/*|usr/bin/*) dir=usr/bin ;; sbin/*|usr/sbin/*) dir=usr/sbin ;; *) continue ;; esac
  [ -e "$R/usr/bin/$b" ] || [ -L "$R/usr/bin/$b" ] || [ -e "$R/usr/sbin/$b" ] || [ -L "$R/usr/sbin/$b" ] && continue
  ln -s /usr/bin/busybox "$R/$dir/$b"; n_links=$((n_links + 1))
done < "$W/applets"
[ -L "$R/usr/bin/sh" ] || die "busybox provides no sh applet"

# iptables: dpkg's alternatives, pointed at the legacy (x_tables) backend.
# Docker 26 programs iptables through the iptables binary; legacy needs only
# the ip_tables/x_tables modules in iso/modules.txt, no nft_compat layer.
mkdir -p "$R/etc/alternatives"
for fam in iptables ip6tables; do
  for suf in "" -restore -save; do
    tgt=/usr/sbin/${fam}-legacy$suf
    [ -e "$R$tgt" ] || [ -L "$R$tgt" ] || die "iptables package has no $tgt"
    ln -sfn "$tgt" "$R/etc/alternatives/$fam$suf"
    ln -sfn "/etc/alternatives/$fam$suf" "$R/usr/sbin/$fam$suf"
  done
done

# The overlay, verbatim, owned by root.
tar -C "$OVERLAY" --owner=0 --group=0 --numeric-owner -c . | tar -x --keep-directory-symlink -C "$R"
chmod 0440 "$R"/etc/sudoers.d/*
for f in shadow gshadow; do [ -f "$R/etc/$f" ] && chown 0:42 "$R/etc/$f" && chmod 0640 "$R/etc/$f"; done
grep -q '^docker:x:1000:' "$R/etc/passwd" || die "buildroot-overlay/etc/passwd must define docker with uid 1000"
printf 'VERSION="%s"\nVERSION_ID=%s\n' "$VERSION" "$VERSION" >> "$R/etc/os-release"
ln -sfn ../../etc/os-release "$R/usr/lib/os-release"

# Directories the running system expects (mount points, state, sshd).
for d in dev proc sys run tmp mnt media home root var/tmp var/log var/cache var/lib/docker \
         var/lib/containerd var/lib/boot2docker etc/ssh etc/docker; do mkdir -p "$R/$d"; done
chmod 1777 "$R/tmp" "$R/var/tmp"; chmod 0700 "$R/root" "$R/var/lib/boot2docker"
ln -sfn /run "$R/var/run"; ln -sfn /run/lock "$R/var/lock"

# CA bundle (what update-ca-certificates would write).
mkdir -p "$R/etc/ssl/certs"
cat "$R"/usr/share/ca-certificates/*/*.crt > "$R/etc/ssl/certs/ca-certificates.crt"
[ -s "$R/etc/ssl/certs/ca-certificates.crt" ] || die "ca-certificates gave an empty bundle"

# b2d-init as PID 1 after the switch.
install -m 0755 "$INIT_BIN" "$R/usr/sbin/b2d-init"
ln -sfn /sbin/b2d-init "$R/init"

# Dynamic linker cache for the staged tree.
ldconfig -r "$R"

# Every ELF file's NEEDED libraries must be in the rootfs (exclude.txt and
# prune.txt must not cut something that is used).
find "$R" -name '*.so*' \( -type f -o -type l \) -printf '%f\n' | sort -u > "$W/have-libs"
: > "$W/missing-libs"
while IFS= read -r -d '' f; do
  [ "$(head -c4 "$f" | od -An -tx1 | tr -d ' \n')" = 7f454c46 ] || continue
  readelf -d "$f" 2>/dev/null | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | while read -r lib; do
    grep -qxF "$lib" "$W/have-libs" || printf '%s needs %s\n' "${f#"$R"}" "$lib" >> "$W/missing-libs"
  done
done < <(find "$R/usr" -type f -print0)
[ -s "$W/missing-libs" ] && { cat "$W/missing-libs" >&2; die "rootfs misses libraries (see above): fix iso/exclude.txt or iso/prune.txt"; }

mkdir -p "$R/usr/share/b2d"
cp "$W/manifest" "$R/usr/share/b2d/manifest"

# Compression, chosen with iso/measure-compression.sh: QEMU TCG, 1 GiB,
# time from QEMU start to dockerd answering (a scratch shell /init doing
# the same squashfs + overlay + switch_root and loading modules.txt with
# kmod), 2 boots each, 256 KiB blocks, rootfs 248 MiB unpacked:
#   comp (level)   squashfs   ISO       boot s
#   xz (bcj x86)   68.6 MiB   85.0 MiB  53.2 51.6
#   zstd (19)      77.4 MiB   94.0 MiB  37.8 39.7
#   gzip (9)       87.5 MiB  104.0 MiB  32.9 29.3
#   lz4 (hc)      102.2 MiB  118.0 MiB  26.9 25.9
# Under TCG every decompressed byte costs emulated CPU time. Again with the
# agent itself (2026-12-06, to b2d-ready from RAM, 3 boots each): gzip
# 21.8 20.6 22.3 s, 106.0 MiB ISO; lz4 19.4 19.3 18.9 s, 122.0 MiB ISO.
# lz4 it is: 2.5 s of every TCG boot for 16 MiB. With KVM the
# decompressors all take milliseconds and zstd would win on size alone.
case $COMP in
  zstd) comp_opts=(-comp zstd -Xcompression-level 19) ;;
  xz)   comp_opts=(-comp xz -Xbcj x86) ;;
  gzip) comp_opts=(-comp gzip -Xcompression-level 9) ;;
  lz4)  comp_opts=(-comp lz4 -Xhc) ;;
esac
# ------------------------------------------------------------- squashfs
log "mksquashfs ($COMP) of $(du -sh "$R" | cut -f1) rootfs"
rm -f "$CACHE"/rootfs-"$COMP"-*.squashfs
SOURCE_DATE_EPOCH=$EPOCH mksquashfs "$R" "$SQ.tmp" -noappend -quiet -no-progress \
  -b 256K -no-xattrs "${comp_opts[@]}" >/dev/null
mv "$SQ.tmp" "$SQ"
fi   # rootfs staging + squashfs

# ------------------------------------------------------------ initramfs
# Just b2d-init as /init plus the modules to reach the squashfs.
closure "$ISO_DIR/initrd-modules.txt" > "$W/initrd-modules"
mapfile -t INITRD_MODS < "$W/initrd-modules"
key_initrd=$( { sha256sum "$INIT_BIN"; echo "$KVER ${INITRD_MODS[*]}"; cat "$ISO_DIR/initrd-modules.txt" "$ISO_DIR/build.sh"; } | sha256sum | cut -c1-16)
INITRD=$CACHE/initrd-$key_initrd.img
if [ -f "$INITRD" ]; then
  log "initramfs unchanged, cached: $(basename "$INITRD")"
else
  I=$W/initrd
  mkdir -p "$I"/{dev,proc,sys,run,mnt,newroot,etc/b2d}
  mknod -m 0600 "$I/dev/console" c 5 1
  mknod -m 0666 "$I/dev/null" c 1 3
  install -m 0755 "$INIT_BIN" "$I/init"
  install_modules "$I" "${INITRD_MODS[@]}"
  rm -f "$I/lib/modules/$KVER/modules.builtin.modinfo"
  {
    echo "# Modules to load, in order (dependencies first), before mounting the root."
    for n in "${INITRD_MODS[@]}"; do [ -n "${MODPATH[$n]:-}" ] && printf '%s\n' "$n"; done
  } > "$I/etc/b2d/initrd-modules"
  printf '%s\n' "$VOLID" > "$I/etc/b2d/volume-label"
  (cd "$I" && find . -mindepth 1 -print0 | sort -z \
     | cpio --null --create --format=newc --owner=0:0 --quiet --reproducible) \
     | zstd -q -19 -T0 > "$INITRD.tmp"
  rm -f "$CACHE"/initrd-*.img
  mv "$INITRD.tmp" "$INITRD"
fi

# ------------------------------------------------------ EFI boot (GRUB)
key_efi=$( { cat "$ISO_DIR/boot/grub-embed.cfg"; echo "$VOLID"; dpkg-query -W grub-efi-amd64-bin grub-common 2>/dev/null || true; } | sha256sum | cut -c1-16)
EFIIMG=$CACHE/efiboot-$key_efi.img
if [ -f "$EFIIMG" ]; then
  log "EFI image unchanged, cached"
else
  E=$W/efi; mkdir -p "$E"
  sed "s/@VOLID@/$VOLID/g" "$ISO_DIR/boot/grub-embed.cfg" > "$E/embed.cfg"
  grub-mkstandalone -O x86_64-efi -o "$E/BOOTX64.EFI" \
    --locales= --fonts= --themes= \
    --install-modules="normal configfile linux echo test search search_label search_fs_file iso9660 fat part_gpt part_msdos serial terminal gzio all_video efi_gop" \
    --modules="part_gpt part_msdos iso9660 search search_label search_fs_file serial terminal configfile normal linux" \
    "boot/grub/grub.cfg=$E/embed.cfg"
  kib=$(( $(stat -c %s "$E/BOOTX64.EFI") / 1024 + 256 ))
  rm -f "$EFIIMG.tmp"
  mkfs.vfat -C -n B2D-EFI "$EFIIMG.tmp" "$kib" >/dev/null
  MTOOLS_SKIP_CHECK=1 mmd -i "$EFIIMG.tmp" ::/EFI ::/EFI/BOOT
  MTOOLS_SKIP_CHECK=1 mcopy -i "$EFIIMG.tmp" "$E/BOOTX64.EFI" ::/EFI/BOOT/BOOTX64.EFI
  rm -f "$CACHE"/efiboot-*.img
  mv "$EFIIMG.tmp" "$EFIIMG"
fi

# ------------------------------------------------------------------ ISO
CMDLINE=$(list "$ISO_DIR/boot/cmdline.txt" | tr '\n' ' ' | sed 's/ *$//')
S=$W/iso
mkdir -p "$S"/{isolinux,boot/grub,b2d,EFI/BOOT}
cp "$ISOLINUX_BIN" "$LDLINUX_C32" "$S/isolinux/"
sed -e "s|@CMDLINE@|$CMDLINE|g" -e "s|@VOLID@|$VOLID|g" "$ISO_DIR/boot/isolinux.cfg" > "$S/isolinux/isolinux.cfg"
sed -e "s|@CMDLINE@|$CMDLINE|g" -e "s|@VOLID@|$VOLID|g" "$ISO_DIR/boot/grub.cfg" > "$S/boot/grub/grub.cfg"
cp "$VMLINUZ" "$S/boot/vmlinuz"
cp "$INITRD" "$S/boot/initrd.img"
cp "$EFIIMG" "$S/boot/grub/efiboot.img"
MTOOLS_SKIP_CHECK=1 mcopy -n -i "$EFIIMG" ::/EFI/BOOT/BOOTX64.EFI "$S/EFI/BOOT/BOOTX64.EFI"
cp "$SQ" "$S/b2d/rootfs.squashfs"
cp "$W/manifest" "$S/b2d/manifest"
printf '%s\n' "$VERSION" > "$S/b2d/version"

# Same inputs, same ISO bytes: file dates too come from $EPOCH (machines
# compare their ISO copy with out/b2d.iso to see whether it changed).
find "$S" -exec touch -h -d "@$EPOCH" {} +
log "xorriso: hybrid ISO (BIOS isolinux + UEFI GRUB), label $VOLID"
rm -f "$OUT/b2d.iso.tmp"
SOURCE_DATE_EPOCH=$EPOCH xorriso -as mkisofs \
  -iso-level 3 -full-iso9660-filenames -joliet -rational-rock \
  -volid "$VOLID" -appid "b2d $VERSION" -publisher "b2d" \
  -eltorito-boot isolinux/isolinux.bin -eltorito-catalog isolinux/boot.cat \
    -no-emul-boot -boot-load-size 4 -boot-info-table \
  -isohybrid-mbr "$ISOHDPFX" \
  -eltorito-alt-boot -e boot/grub/efiboot.img -no-emul-boot -isohybrid-gpt-basdat \
  -output "$OUT/b2d.iso.tmp" "$S" 2>"$W/xorriso.log" \
  || { cat "$W/xorriso.log" >&2; die "xorriso failed"; }
mv "$OUT/b2d.iso.tmp" "$OUT/b2d.iso"
cp "$W/manifest" "$OUT/b2d.iso.manifest"

sz() { du -h --apparent-size "$1" | cut -f1; }
log "done in $(( $(date +%s) - T0 ))s: $OUT/b2d.iso $(sz "$OUT/b2d.iso") (rootfs.squashfs $(sz "$SQ") $COMP, initrd $(sz "$INITRD"), kernel $(sz "$VMLINUZ")); kernel $KVER; ${#INITRD_MODS[@]} initramfs modules"
