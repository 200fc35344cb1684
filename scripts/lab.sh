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
NETWORK=wsgi-lab  # the lab's own network: its containers resolve each other's names

# "name image http_port https_port" for every lab host, read from the inventory ('-': not published).
lab_hosts() { "$PYTHON" scripts/lab_inventory.py hosts; }

ensure_bridge() {
  ip link show docker0 >/dev/null 2>&1 && return
  ip link add docker0 type bridge
  ip addr add 172.17.0.1/16 dev docker0
  ip link set docker0 up
}

ensure_network() {
  docker network inspect "$NETWORK" >/dev/null 2>&1 || docker network create --label wsgi-lab=1 "$NETWORK" >/dev/null
}

# The port binding of a lab host: none for a port it does not publish ('-').
binding() { # port
  [ "$1" = - ] || echo "127.0.0.1:$1"
}

start_container() { # name image http_port https_port
  local publish=()
  [ "$3" = - ] || publish=(-p "$(binding "$3"):80")
  [ "$4" = - ] || publish+=(-p "$(binding "$4"):443")
  docker run -d --pull never --name "$1" --hostname "$1" --label wsgi-lab=1 --network "$NETWORK" \
    --cap-add SYS_ADMIN --cap-add NET_ADMIN \
    --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
    --cgroupns=host -v /sys/fs/cgroup:/sys/fs/cgroup:rw \
    --tmpfs /run --tmpfs /run/lock --tmpfs /tmp \
    --stop-signal SIGRTMIN+3 \
    "${publish[@]}" "$2" >/dev/null
}

# "image 127.0.0.1:http_port 127.0.0.1:https_port network" of a running lab container, to compare with what
# the inventory asks for.
running_as() { # name
  docker inspect --format \
    '{{if .State.Running}}{{.Config.Image}} {{with index .HostConfig.PortBindings "80/tcp"}}{{(index . 0).HostIp}}:{{(index . 0).HostPort}}{{end}} {{with index .HostConfig.PortBindings "443/tcp"}}{{(index . 0).HostIp}}:{{(index . 0).HostPort}}{{end}} {{.HostConfig.NetworkMode}}{{end}}' \
    "$1" 2>/dev/null || true
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
  local name image port https_port hosts where
  hosts=$(lab_hosts)  # an assignment, so that a broken inventory stops the script (set -e)
  err=$(mktemp)  # global: the EXIT trap runs after this function's locals are gone
  trap 'rm -f "$err"' EXIT
  ensure_network
  while read -r name image port https_port; do
    [ -n "$name" ] || continue
    if [ "$(running_as "$name")" = "$image $(binding "$port") $(binding "$https_port") $NETWORK" ]; then
      continue
    fi
    docker image inspect "$image" >/dev/null 2>&1 \
      || { echo "lab: image $image is missing; build it with scripts/build-image.sh ${image##*:}" >&2; exit 1; }
    # Stopped, or started with another image or port than the inventory now says: start it afresh.
    docker rm -f "$name" >/dev/null 2>&1 || true
    if ! start_container "$name" "$image" "$port" "$https_port" 2>"$err"; then
      if grep -q "could not find bridge docker0" "$err"; then
        docker rm -f "$name" >/dev/null 2>&1 || true
        ensure_bridge
        start_container "$name" "$image" "$port" "$https_port"
      else
        cat "$err" >&2
        exit 1
      fi
    fi
    if [ "$port" = - ]; then where="no HTTP port"; else where=$(binding "$port"); fi
    [ "$https_port" = - ] || where="$where, HTTPS $(binding "$https_port")"
    echo "lab: started $name ($image, $where)"
  done <<<"$hosts"
  while read -r name _ _ _; do wait_for_systemd "$name"; done <<<"$hosts"
  echo "lab: up ($(wc -l <<<"$hosts") hosts)"
}

down() {
  # The inventory's hosts, and any container this script started for a host since removed from it.
  local name hosts
  hosts=$(lab_hosts | cut -d' ' -f1)
  while read -r name; do
    [ -n "$name" ] || continue
    docker container inspect "$name" >/dev/null 2>&1 || continue
    docker rm -f "$name" >/dev/null && echo "lab: removed $name"
  done < <({ echo "$hosts"; docker ps -a --filter label=wsgi-lab=1 --format '{{.Names}}'; } | sort -u)
  docker network rm "$NETWORK" >/dev/null 2>&1 && echo "lab: removed network $NETWORK" || true
}

urls() { "$PYTHON" scripts/lab_inventory.py urls; }

case "${1:-}" in
  up) up ;;
  down) down ;;
  urls) urls ;;
  status) docker ps -a --filter label=wsgi-lab=1 ;;
  *) echo "usage: $0 up|down|urls|status" >&2; exit 2 ;;
esac
