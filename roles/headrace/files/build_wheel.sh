# headrace's wheel, built on the controller in one module run (the headrace role runs this with
# /bin/sh -c, from ansible.builtin.command):
#
#   sh -c "$(cat build_wheel.sh)" build_wheel.sh SOURCE PYTHON WHEEL_DIR
#
# Copies the server's project file and package from SOURCE (server/) to a temporary directory, so that the
# build writes nothing into the source tree, builds the wheel there with PYTHON's pip into WHEEL_DIR (made
# if missing) and removes the temporary directory, whatever happened. The caller sets SOURCE_DATE_EPOCH, so
# the same source gives the same bytes.
set -eu
source=$1
python=$2
wheel_dir=$3
build=$(mktemp -d "${TMPDIR:-/tmp}/headrace-build.XXXXXX")
trap 'rm -rf "$build"' EXIT
(cd "$source" && cp -R --parents -- pyproject.toml src/headrace "$build/")
"$python" -m pip wheel --quiet --no-deps --disable-pip-version-check --wheel-dir "$wheel_dir" "$build"
