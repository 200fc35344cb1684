# The sockets and services of headrace instances, in one module run (the headrace role runs this with
# /bin/sh -c, from ansible.builtin.command):
#
#   sh -c "$(cat instances.sh)" instances.sh start|stop apply|dry-run reload|no-reload CONFIG_DIR APP...
#
# With reload (the unit files changed), systemd reads the units again first (apply only). start enables
# and starts, stop stops and disables, headrace@APP.socket and headrace@APP.service of each APP, those
# units only that are not so already, in one systemctl call (with dry-run: none). It prints each unit it
# changes (would change), one a line, which is what the task reports as changed; then (start) each on a
# line starting with "config ", the configurations in CONFIG_DIR (*.toml), from which the role tells the apps
# that are gone (one module run instead of a find of its own). A unit is enabled when `systemctl
# is-enabled` says so (exit status 0, the test of ansible.builtin.systemd_service) and running when it is
# active, activating or reloading.
set -euf
action=$1
mode=$2
reload=$3
config_dir=$4
shift 4
case $action:$mode:$reload in
    start:apply:* | start:dry-run:* | stop:apply:* | stop:dry-run:*) ;;
    *) echo "instances.sh: start|stop apply|dry-run reload|no-reload CONFIG_DIR APP..., not: $action $mode" >&2
       exit 2 ;;
esac
case $reload in
    reload) if [ "$mode" = apply ]; then systemctl daemon-reload; fi ;;
    no-reload) ;;
    *) echo "instances.sh: reload|no-reload, not: $reload" >&2; exit 2 ;;
esac
todo=
for app in "$@"; do
    for unit in "headrace@$app.socket" "headrace@$app.service"; do
        if systemctl is-enabled --quiet "$unit" 2>/dev/null; then enabled=yes; else enabled=no; fi
        case $(systemctl show --property=ActiveState --value "$unit") in
            active | activating | reloading) running=yes ;;
            *) running=no ;;
        esac
        case $action:$enabled:$running in
            start:yes:yes | stop:no:no) ;;
            *) todo="$todo $unit"; echo "$unit" ;;
        esac
    done
done
if [ -n "$todo" ] && [ "$mode" = apply ]; then
    # The units' names are the apps' ([a-z0-9_-]): split on the spaces only.
    case $action in
        start) systemctl enable --now $todo >&2 ;;
        stop) systemctl disable --now $todo >&2 ;;
    esac
fi
if [ "$action" = start ] && [ -d "$config_dir" ]; then
    find "$config_dir" -mindepth 1 -maxdepth 1 -name '*.toml' -printf 'config %p\n' | sort
fi
