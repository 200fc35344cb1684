#!/usr/bin/env bash
# Build a bare Debian base image with systemd as PID 1 for the lab and Molecule, without any registry:
# debootstrap a root filesystem from the Debian mirror this machine's apt already uses, then
# `docker import` it. Skips the work when the image exists (pass --force to rebuild).
#
#   scripts/build-image.sh 12|13 [--force]   ->  image wsgi-lab/debian:12 or :13
set -euo pipefail

version=${1:?usage: build-image.sh 12|13 [--force]}
force=${2:-}
case "$version" in
  12) suite=bookworm ;;
  13) suite=trixie ;;
  *) echo "build-image: unsupported Debian version '$version' (allowed: 12, 13)" >&2; exit 2 ;;
esac
image="wsgi-lab/debian:${version}"

if [ "$force" != "--force" ] && docker image inspect "$image" >/dev/null 2>&1; then
  echo "build-image: $image exists" >&2
  exit 0
fi

command -v debootstrap >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }

# The mirror is whatever this machine's apt is configured with (deb822 or one-line format).
mirror=$(grep -hE '^(URIs:|deb )' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null \
  | grep -v -e security -e '\[' | awk '/^URIs:/ {print $2; exit} /^deb / {print $2; exit}' || true)
[ -n "$mirror" ] || { echo "build-image: no Debian mirror found in /etc/apt" >&2; exit 1; }
security_mirror="${mirror%/debian}/debian-security"

rootfs=$(mktemp -d /var/tmp/wsgi-lab-rootfs.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT

echo "build-image: debootstrap $suite from the configured mirror" >&2
debootstrap --variant=minbase \
  --include=systemd,systemd-sysv,dbus,python3,python3-apt,ca-certificates,procps,iproute2 \
  "$suite" "$rootfs" "$mirror" >/dev/null

cat >"$rootfs/etc/apt/sources.list" <<SOURCES
deb $mirror $suite main
deb $mirror $suite-updates main
deb $security_mirror $suite-security main
SOURCES

# A container has no consoles, udev or kernel modules to manage; these units only slow boot or fail.
for unit in getty.target console-getty.service systemd-udevd.service systemd-udev-trigger.service \
            systemd-modules-load.service sys-kernel-debug.mount sys-kernel-tracing.mount \
            systemd-remount-fs.service systemd-firstboot.service; do
  ln -sf /dev/null "$rootfs/etc/systemd/system/$unit"
done
: >"$rootfs/etc/machine-id"
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/archives/*.deb
# An empty package list must look old, or `apt: cache_valid_time` would trust it and find no packages.
touch -d @0 "$rootfs/var/lib/apt/lists"

# `docker import` cannot set a stop signal; a one-line build on top of the imported layer can (no registry
# involved: the base is local). SIGRTMIN+3 makes systemd halt at once instead of waiting for SIGKILL.
tar -C "$rootfs" -c . | docker import --change 'CMD ["/sbin/init"]' --change 'ENV container=docker' \
  - "${image}-rootfs" >/dev/null
printf 'FROM %s\nSTOPSIGNAL SIGRTMIN+3\n' "${image}-rootfs" | docker build -q -t "$image" - >/dev/null 2>&1 \
  || { echo "build-image: docker build on top of ${image}-rootfs failed" >&2; exit 1; }
docker image rm "${image}-rootfs" >/dev/null
echo "build-image: built $image" >&2
