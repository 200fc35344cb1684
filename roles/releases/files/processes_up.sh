# Whether the processes of a host's apps run, where no health check watches them (a host that runs apps'
# processes only, processes.<name>.group), in one module run (the releases role runs this with /bin/sh -c,
# from ansible.builtin.command):
#
#   sh -c "$(cat processes_up.sh)" processes_up.sh STEADY TIMEOUT UNIT...
#
# Waits until every UNIT (an instance, wsgi-<app>-<process>@<n>.service) has run for STEADY seconds
# without a restart, at most TIMEOUT seconds; then exits 0, or 1 naming on stderr each unit that did not,
# with its state. A process that crashes at start (a release it cannot run) restarts again and again: it
# is never steady, so the play stops before any web server switches to that release.
set -eu
steady=$1
timeout=$2
shift 2
seconds_up() { cut -d . -f 1 /proc/uptime; }  # CLOCK_MONOTONIC in seconds: systemd's ...Monotonic clock
deadline=$(($(seconds_up) + timeout))
while :; do
    now=$(seconds_up)
    down=
    for unit do
        active= sub= since=0
        while IFS== read -r key value; do
            case $key in
                ActiveState) active=$value ;;
                SubState) sub=$value ;;
                ActiveEnterTimestampMonotonic) since=$((${value:-0} / 1000000)) ;;
            esac
        done <<SHOWN
$(systemctl show --property=ActiveState --property=SubState --property=ActiveEnterTimestampMonotonic "$unit")
SHOWN
        if [ "$active:$sub" != active:running ] || [ $((now - since)) -lt "$steady" ]; then
            down="$down $unit ($active $sub, for $((now - since)) s)"
        fi
    done
    if [ -z "$down" ]; then exit 0; fi
    if [ "$now" -ge "$deadline" ]; then
        echo "not running steadily for $steady s after $timeout s:$down" >&2
        exit 1
    fi
    sleep 1
done
