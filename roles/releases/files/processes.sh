# The project apps' long-running processes, in one module run (the releases role runs this with /bin/sh
# -c, from ansible.builtin.command):
#
#   sh -c "$(cat processes.sh)" processes.sh apply|dry-run UNIT_DIR reload|no-reload [TEMPLATE COUNT RESTART]...
#       [-- TIMER...]
#
# Each TEMPLATE (wsgi-<app>-<process>@.service, written by the role in UNIT_DIR) runs as the instances @1
# to @COUNT: those not enabled and running are enabled and started; with RESTART yes (a new release, a
# changed environment or unit) the running ones are restarted: stopped gracefully (SIGTERM, then SIGKILL
# after the unit's TimeoutStopSec) and started on the live release. Instances beyond COUNT are stopped and
# disabled, and so are all instances of a template in UNIT_DIR that carries the role's mark but is not
# asked for any more (a process type or an app removed), whose file is then removed. Each TIMER (a scheduled
# job's wsgi-<app>-job-<name>.timer) not enabled and active is enabled and started; a marked timer in
# UNIT_DIR not asked for any more is stopped and disabled, and its file and its service's removed (a run
# still going finishes). With reload, systemd reads the units again first. It prints what it changes
# (would change, with dry-run), one line each, which is what the task reports as changed.
set -eu
mode=$1
unit_dir=$2
reload=$3
shift 3
case $mode:$reload in
    apply:reload | apply:no-reload | dry-run:reload | dry-run:no-reload) ;;
    *) echo "processes.sh: apply|dry-run UNIT_DIR reload|no-reload [TEMPLATE COUNT RESTART]..., not: $mode $reload" >&2
       exit 2 ;;
esac
triples=0
for argument in "$@"; do
    if [ "$argument" = -- ]; then break; fi
    triples=$((triples + 1))
done
if [ $((triples % 3)) -ne 0 ]; then
    echo "processes.sh: TEMPLATE COUNT RESTART come in threes, got $triples arguments" >&2
    exit 2
fi
MARK='# wsgi-hosting: a process of a project app'
act() {  # VERB UNIT...: systemctl VERB (enable and disable --now), when there are units, in apply only
    verb=$1
    shift
    if [ $# -eq 0 ] || [ "$mode" != apply ]; then return 0; fi
    case $verb in
        enable | disable) systemctl "$verb" --now "$@" >&2 ;;
        *) systemctl "$verb" "$@" >&2 ;;
    esac
}
running() {  # UNIT
    case $(systemctl show --property=ActiveState --value "$1") in
        active | activating | reloading) return 0 ;;
        *) return 1 ;;
    esac
}
instances() {  # BASE: every instance of the template that is enabled or loaded, one a line
    {
        for link in "$unit_dir"/*.wants/"$1"@*.service; do
            if [ -L "$link" ]; then basename "$link"; fi
        done
        systemctl list-units --all --plain --no-legend "$1@*.service" | awk '{print $1}'
    } | sort -u
}
if [ "$reload" = reload ] && [ "$mode" = apply ]; then systemctl daemon-reload; fi
wanted=' '
start='' restart='' stop=''
while [ $# -gt 0 ] && [ "$1" != -- ]; do
    template=$1 count=$2 again=$3
    shift 3
    wanted="$wanted$template "
    base=${template%@.service}
    number=1
    while [ "$number" -le "$count" ]; do
        unit=$base@$number.service
        if ! systemctl is-enabled --quiet "$unit" 2>/dev/null || ! running "$unit"; then
            start="$start $unit"
            echo "started $unit"
        elif [ "$again" = yes ]; then
            restart="$restart $unit"
            echo "restarted $unit"
        fi
        number=$((number + 1))
    done
    for unit in $(instances "$base"); do
        number=${unit#"$base"@}
        number=${number%.service}
        case $number in
            *[!0-9]* | '') continue ;;
        esac
        if [ "$number" -gt "$count" ]; then
            stop="$stop $unit"
            echo "stopped $unit"
        fi
    done
done
if [ $# -gt 0 ]; then shift; fi  # --
for timer in "$@"; do
    wanted="$wanted$timer "
    if ! systemctl is-enabled --quiet "$timer" 2>/dev/null || ! running "$timer"; then
        start="$start $timer"
        echo "started $timer"
    fi
done
gone=''
for file in "$unit_dir"/wsgi-*.timer; do
    if [ ! -f "$file" ] || ! grep -qxF "$MARK" "$file"; then continue; fi
    timer=${file##*/}
    case $wanted in
        *" $timer "*) continue ;;
    esac
    stop="$stop $timer"
    echo "stopped $timer"
    gone="$gone $file ${file%.timer}.service"
    echo "removed $file"
done
for file in "$unit_dir"/wsgi-*@.service; do
    if [ ! -f "$file" ] || ! grep -qxF "$MARK" "$file"; then continue; fi
    template=${file##*/}
    case $wanted in
        *" $template "*) continue ;;
    esac
    for unit in $(instances "${template%@.service}"); do
        stop="$stop $unit"
        echo "stopped $unit"
    done
    gone="$gone $file"
    echo "removed $file"
done
# The units' names are the apps' and processes' ([a-z0-9_-]): split on the spaces only.
# shellcheck disable=SC2086
{
    act disable $stop
    act restart $restart
    act enable $start
}
if [ -n "$gone" ] && [ "$mode" = apply ]; then
    # shellcheck disable=SC2086
    rm -f $gone
    systemctl daemon-reload
fi
