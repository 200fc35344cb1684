# headrace's wheel into its venv, in one module run (the headrace role runs this with /bin/sh -c, from
# ansible.builtin.command):
#
#   sh -c "$(cat install.sh)" install.sh apply|dry-run new|kept PYTHON VENV WHEEL 'PIP_WHEEL_GLOB'
#
# Installs WHEEL when it is new (the copy task put a new file there: a rebuild of the same version is
# still new code), or when the venv does not have it (no record, or the record names another wheel:
# VENV/.installed-wheel); prints "installed WHEEL" when it does (would, with dry-run), which is what the
# task reports as changed, and then removes the other wheels beside WHEEL (earlier builds). One command
# instead of a stat, a find and a removal of their own.
#
# Makes the venv VENV with PYTHON if it has none yet, without pip: ensurepip would copy pip (and on Python
# 3.11 setuptools) into it, most of a venv's cost, for a server that is one wheel without dependencies.
# Installs WHEEL with Debian's own pip wheel (python3-pip-whl, which python3-venv brings; the last matching
# PIP_WHEEL_GLOB, expanded here on the host), run from the wheel as pip allows, with no index.
set -eu
mode=$1
wheel_state=$2
python=$3
venv=$4
wheel=$5
pip_wheel_glob=$6
case $mode:$wheel_state in
    apply:new | apply:kept | dry-run:new | dry-run:kept) ;;
    *) echo "install.sh: apply|dry-run new|kept ..., not: $mode $wheel_state" >&2; exit 2 ;;
esac
record=$venv/.installed-wheel
name=${wheel##*/}
if [ "$wheel_state" = kept ] && [ -x "$venv/bin/python" ] && [ "$(cat "$record" 2>/dev/null)" = "$name" ]; then
    exit 0
fi
echo "installed $name"
if [ "$mode" = dry-run ]; then
    exit 0
fi
pip_wheel=
for candidate in $pip_wheel_glob; do
    if [ -f "$candidate" ]; then pip_wheel=$candidate; fi
done
if [ -z "$pip_wheel" ]; then
    echo "install.sh: no pip wheel matches $pip_wheel_glob; python3-venv brings one (python3-pip-whl)" >&2
    exit 1
fi
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv --without-pip "$venv"
fi
"$venv/bin/python" "$pip_wheel/pip" install --quiet --no-index --no-deps --force-reinstall \
    --disable-pip-version-check --no-cache-dir "$wheel"
printf '%s\n' "$name" > "$record.new"
mv "$record.new" "$record"
for other in "${wheel%/*}"/*.whl; do
    if [ "$other" != "$wheel" ] && [ -f "$other" ]; then rm -f "$other"; fi
done
