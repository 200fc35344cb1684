# Make a release the live one of each project app, in one module run (the releases role runs this with
# /bin/sh -c, from ansible.builtin.command):
#
#   sh -c "$(cat switch.sh)" switch.sh apply|dry-run NAME APP_DIR RELEASE [NAME APP_DIR RELEASE]...
#
# For each app whose APP_DIR/current does not name releases/RELEASE yet: the release it leaves is kept as
# APP_DIR/previous (for a rollback), then `current` is pointed at releases/RELEASE, each link made under a
# temporary name and renamed over the old one (rename(2): a reader sees the old link or the new one, never
# none). Prints NAME for each app it switches (would switch, with dry-run), which is what the task reports
# as changed and the role restarts.
set -eu
mode=$1
shift
case $mode in
    apply | dry-run) ;;
    *) echo "switch.sh: apply|dry-run NAME APP_DIR RELEASE..., not: $mode" >&2; exit 2 ;;
esac
if [ $(($# % 3)) -ne 0 ]; then
    echo "switch.sh: arguments come in threes (NAME APP_DIR RELEASE), got $#" >&2
    exit 2
fi
relink() {  # TARGET LINK
    ln -s "$1" "$2.switch-new"
    mv -T "$2.switch-new" "$2"
}
while [ $# -gt 0 ]; do
    name=$1 app_dir=$2 target=releases/$3
    shift 3
    live=$(readlink "$app_dir/current" || true)
    if [ "$live" = "$target" ]; then
        continue
    fi
    echo "$name"
    if [ "$mode" = apply ]; then
        rm -f "$app_dir/previous.switch-new" "$app_dir/current.switch-new"
        if [ -n "$live" ]; then relink "$live" "$app_dir/previous"; fi
        relink "$target" "$app_dir/current"
    fi
done
