# headrace's wheel into its venv, in one module run (the headrace role runs this with /bin/sh -c, from
# ansible.builtin.command):
#
#   sh -c "$(cat install.sh)" install.sh PYTHON VENV WHEEL 'PIP_WHEEL_GLOB'
#
# Makes the venv VENV with PYTHON if it has none yet, without pip: ensurepip would copy pip (and on Python
# 3.11 setuptools) into it, most of a venv's cost, for a server that is one wheel without dependencies.
# Then installs WHEEL with Debian's own pip wheel (python3-pip-whl, which python3-venv brings; the last
# matching PIP_WHEEL_GLOB, expanded here on the host), run from the wheel as pip allows, with no index.
# --force-reinstall: a rebuild of the same version is still new code.
set -eu
python=$1
venv=$2
wheel=$3
pip_wheel_glob=$4
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
