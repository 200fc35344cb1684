#!/usr/bin/env bash
# Make sure a Docker engine answers on this machine: install Debian's docker.io if the daemon is missing,
# start dockerd in the background when nothing listens, and recreate the default bridge if it vanished.
# Idempotent: does nothing on a machine where `docker info` already works.
set -euo pipefail

log() { printf 'ensure-docker: %s\n' "$*" >&2; }

if ! command -v dockerd >/dev/null 2>&1; then
  log "installing docker.io"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq docker.io >/dev/null
fi

ensure_bridge() {
  if ! ip link show docker0 >/dev/null 2>&1; then
    log "recreating bridge docker0"
    ip link add docker0 type bridge
    ip addr add 172.17.0.1/16 dev docker0
    ip link set docker0 up
  fi
}

if ! docker info >/dev/null 2>&1; then
  ensure_bridge
  log "starting dockerd"
  nohup dockerd >/var/log/dockerd.log 2>&1 &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  docker info >/dev/null 2>&1 || { log "dockerd did not come up; see /var/log/dockerd.log"; exit 1; }
fi
ensure_bridge
log "engine ready ($(docker version --format '{{.Server.Version}}'))"
