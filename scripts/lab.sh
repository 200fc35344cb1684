#!/usr/bin/env bash
# The local lab: one systemd container per host of inventories/lab/hosts.yml (the single source of truth:
# add a host there and `up` starts it). Ports are published on 127.0.0.1 only.
#
#   scripts/lab.sh up       start the containers that are missing, wait until systemd runs in each
#   scripts/lab.sh down     remove the lab containers
#   scripts/lab.sh urls     the URLs that answer, with the Host header of each site
#   scripts/lab.sh status   the lab containers
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
INVENTORY=inventories/lab/hosts.yml

# "name image http_port" for every lab host, read from the inventory.
lab_hosts() { "$PYTHON" scripts/lab_inventory.py hosts; }

ensure_bridge() {
  ip link show docker0 >/dev/null 2>&1 && return
  ip link add docker0 type bridge
  ip addr add 172.17.0.1/16 dev docker0
  ip link set docker0 up
}

start_container() { # name image port
  docker run -d --name "$1" --hostname "$1" --label wsgi-lab=1 \
    --cap-add SYS_ADMIN --cap-add NET_ADMIN \
    --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
    --cgroupns=host -v /sys/fs/cgroup:/sys/fs/cgroup:rw \
    --tmpfs /run --tmpfs /run/lock --tmpfs /tmp \
    --stop-signal SIGRTMIN+3 \
    -p "127.0.0.1:$3:80" "$2" >/dev/null
}

wait_for_systemd() { # name
  local state
  for _ in $(seq 1 60); do
    state=$(docker exec "$1" systemctl is-system-running 2>/dev/null || true)
    case "$state" in running|degraded) return 0 ;; esac
    sleep 1
  done
  echo "lab: systemd in $1 did not come up (state: ${state:-unknown})" >&2
  return 1
}

up() {
  local name image port
  while read -r name image port; do
    if [ -n "$(docker ps -q --filter "name=^${name}$")" ]; then
      continue
    fi
    docker rm -f "$name" >/dev/null 2>&1 || true
    if ! start_container "$name" "$image" "$port" 2>/tmp/lab-run.err; then
      if grep -q "could not find bridge docker0" /tmp/lab-run.err; then
        docker rm -f "$name" >/dev/null 2>&1 || true
        ensure_bridge
        start_container "$name" "$image" "$port"
      else
        cat /tmp/lab-run.err >&2
        exit 1
      fi
    fi
    echo "lab: started $name ($image, 127.0.0.1:$port)"
  done < <(lab_hosts)
  while read -r name _ _; do wait_for_systemd "$name"; done < <(lab_hosts)
}

down() {
  local name
  while read -r name _ _; do docker rm -f "$name" >/dev/null 2>&1 && echo "lab: removed $name" || true; done < <(lab_hosts)
}

urls() { "$PYTHON" scripts/lab_inventory.py urls; }

case "${1:-}" in
  up) up ;;
  down) down ;;
  urls) urls ;;
  status) docker ps -a --filter label=wsgi-lab=1 ;;
  *) echo "usage: $0 up|down|urls|status" >&2; exit 2 ;;
esac
