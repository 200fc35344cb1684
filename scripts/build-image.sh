#!/usr/bin/env bash
# Build a bare Debian base image with systemd as PID 1 for the lab and Molecule, without any registry:
# debootstrap a root filesystem from the Debian mirror this machine's apt already uses, then
# `docker import` it.
#
#   scripts/build-image.sh 12|13 [--force]   ->  image wsgi-lab/debian:12 or :13
#
# The image carries the SHA-256 of this script as the label wsgi-lab.build-script: the script skips the work
# when the image exists with the label of its current text, and rebuilds it when the script has changed
# since (or with --force). Builds of one version wait for each other (a lock per version), so that two
# `make images` at once build it once.
#
# What makes the image quick to install packages into (every scenario installs Apache, mod_wsgi, Python's
# venv and more into fresh containers), in /etc/dpkg/dpkg.cfg.d/ and /etc/apt/apt.conf.d/ of the image:
#   - no documentation, man or info pages and no translations (the copyright files and locale.alias stay);
#   - dpkg without fsync (force-unsafe-io): a container that crashes is thrown away, not repaired;
#   - apt without recommended or suggested packages, and no Translation indexes on `apt-get update`: the
#     roles name every package they need (none relies on a recommended one), so the tests also show that
#     a host installed without recommends works.
set -euo pipefail

version=${1:?usage: build-image.sh 12|13 [--force]}
force=${2:-}
case "$version" in
  12) suite=bookworm ;;
  13) suite=trixie ;;
  *) echo "build-image: unsupported Debian version '$version' (allowed: 12, 13)" >&2; exit 2 ;;
esac
image="wsgi-lab/debian:${version}"
label=wsgi-lab.build-script
script_hash=$(sha256sum "${BASH_SOURCE[0]}" | cut -d' ' -f1)

built_hash() {
  docker image inspect --format "{{ index .Config.Labels \"$label\" }}" "$image" 2>/dev/null || true
}

exec 9>"/var/tmp/wsgi-lab-image-${version}.lock"
flock 9

if [ "$force" != "--force" ]; then
  case $(built_hash) in
    "$script_hash") echo "build-image: $image exists (built by this script's current text)" >&2; exit 0 ;;
    "") docker image inspect "$image" >/dev/null 2>&1 \
          && echo "build-image: $image was built by an older build-image.sh: rebuilding" >&2 ;;
    *) echo "build-image: $image was built by another text of build-image.sh: rebuilding" >&2 ;;
  esac
fi

command -v debootstrap >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }

# The mirror is whatever this machine's apt is configured with (deb822 or one-line format).
mirror=$(grep -hE '^(URIs:|deb )' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null \
  | grep -v -e security -e '\[' | awk '/^URIs:/ {print $2; exit} /^deb / {print $2; exit}' || true)
[ -n "$mirror" ] || { echo "build-image: no Debian mirror found in /etc/apt" >&2; exit 1; }
security_mirror="${mirror%/debian}/debian-security"

rootfs=$(mktemp -d /var/tmp/wsgi-lab-rootfs.XXXXXX)
# A tag of this build's own: another build of the same version may be importing at the same time.
rootfs_image="${image}-rootfs-$$"
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

# Every package installed later leaves these paths out (dpkg still records them as the package's files).
cat >"$rootfs/etc/dpkg/dpkg.cfg.d/01-wsgi-lab-nodoc" <<'DPKG'
# wsgi-lab image (scripts/build-image.sh): no documentation, manuals or translations.
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
DPKG
cat >"$rootfs/etc/dpkg/dpkg.cfg.d/02-wsgi-lab-unsafe-io" <<'DPKG'
# wsgi-lab image (scripts/build-image.sh): no fsync while unpacking; a broken container is thrown away.
force-unsafe-io
DPKG
cat >"$rootfs/etc/apt/apt.conf.d/01-wsgi-lab" <<'APT'
// wsgi-lab image (scripts/build-image.sh): only the packages asked for, and no Translation indexes.
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
APT
# What debootstrap itself unpacked, before those rules existed.
find "$rootfs/usr/share/doc" -mindepth 1 -not -type d -not -name copyright -delete
find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
rm -rf "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/lintian/*

# A container has no consoles, udev or kernel modules to manage; these units only slow boot or fail.
for unit in getty.target console-getty.service systemd-udevd.service systemd-udev-trigger.service \
            systemd-modules-load.service sys-kernel-debug.mount sys-kernel-tracing.mount \
            systemd-remount-fs.service systemd-firstboot.service; do
  ln -sf /dev/null "$rootfs/etc/systemd/system/$unit"
done
: >"$rootfs/etc/machine-id"
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin
# An empty package list must look old, or `apt: cache_valid_time` would trust it and find no packages.
touch -d @0 "$rootfs/var/lib/apt/lists"

# `docker import` cannot set a stop signal; a one-line build on top of the imported layer can (no registry
# involved: the base is local). SIGRTMIN+3 makes systemd halt at once instead of waiting for SIGKILL.
tar -C "$rootfs" -c . | docker import --change 'CMD ["/sbin/init"]' --change 'ENV container=docker' \
  - "$rootfs_image" >/dev/null
printf 'FROM %s\nSTOPSIGNAL SIGRTMIN+3\n' "$rootfs_image" \
  | docker build -q --label "$label=$script_hash" -t "$image" - >/dev/null 2>&1 \
  || { docker image rm "$rootfs_image" >/dev/null 2>&1; echo "build-image: docker build on top of $rootfs_image failed" >&2; exit 1; }
docker image rm "$rootfs_image" >/dev/null
echo "build-image: built $image (label $label=${script_hash:0:12})" >&2
