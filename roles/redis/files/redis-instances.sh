# redis-instances CONF_DIR RELOAD RESTART UNIT...: brings the apps' Redis instances to what is asked, run by
# the redis role as `sh -c` (one module run for every instance). RELOAD yes runs daemon-reload first (a
# drop-in changed); RESTART is the comma-separated units whose files changed. Each UNIT ends enabled and
# running: started when it is not, else restarted when in RESTART (so that a new instance starts once).
# Every other instance of ours (a redis-wsgi-*.conf in CONF_DIR whose app has left) is stopped and
# disabled, its data and files kept; Debian's own redis-server.service, unused, too. Prints what it did.
set -eu
conf_dir=$1 reload=$2 restart=$3
shift 3
if [ "$reload" = yes ]; then
    systemctl daemon-reload
fi
running() {  # UNIT: whether it is running (or starting)
    case $(systemctl show --property=ActiveState --value "$1") in
        active | activating | reloading) return 0 ;;
        *) return 1 ;;
    esac
}
for unit in "$@"; do
    if ! systemctl is-enabled --quiet "$unit" 2>/dev/null || ! running "$unit"; then
        systemctl enable --now "$unit" >&2
        echo "started $unit"
    else
        case ",$restart," in
            *",$unit,"*) systemctl restart "$unit" >&2; echo "restarted $unit" ;;
        esac
    fi
done
stop() {  # UNIT WHY: disabled and stopped, when it is either
    if systemctl is-enabled --quiet "$1" 2>/dev/null || running "$1"; then
        systemctl disable --now "$1" >&2
        echo "stopped $1 ($2)"
    fi
}
for conf in "$conf_dir"/redis-wsgi-*.conf; do
    [ -e "$conf" ] || continue
    instance=${conf#"$conf_dir"/redis-}
    unit="redis-server@${instance%.conf}.service"
    case " $* " in
        *" $unit "*) ;;
        *) stop "$unit" "its app has no redis any more; its data is kept" ;;
    esac
done
stop redis-server.service "Debian's own instance, unused"
