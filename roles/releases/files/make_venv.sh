# The venv of a project app's requirements, in one module run (the releases role runs this with /bin/sh -c,
# from ansible.builtin.command):
#
#   sh -c "$(cat make_venv.sh)" make_venv.sh PYTHON VENV WHEELHOUSE REQUIREMENTS PROJECT MARKER
#
# Makes VENV with PYTHON (the system Python mod_wsgi and headrace run on, so compiled extensions match it),
# then with the venv's own pip and no package index, only what the controller shipped in WHEELHOUSE
# (wheels/ and requirements.lock): the locked requirements when REQUIREMENTS is not empty (every file's
# hash checked), and the project itself when PROJECT (its release directory) is not empty, for a project
# with a pyproject.toml (its build backend is among the shipped wheels). Then the venv is marked complete
# (VENV/.wsgi-venv holds MARKER, root's, 0644; a venv without it is made anew by the next build) and
# WHEELHOUSE removed.
set -eu
python=$1
venv=$2
wheelhouse=$3
requirements=$4
project=$5
marker=$6

pip_install() {
    "$venv/bin/pip" install --quiet --no-index --no-cache-dir --disable-pip-version-check \
        --find-links "$wheelhouse/wheels" "$@"
}

"$python" -m venv "$venv"
if [ -n "$requirements" ]; then
    pip_install --require-hashes --requirement "$wheelhouse/requirements.lock"
fi
if [ -n "$project" ]; then
    pip_install --no-deps "$project"
fi
printf '%s' "$marker" > "$venv/.wsgi-venv.new"
chmod 0644 "$venv/.wsgi-venv.new"
mv "$venv/.wsgi-venv.new" "$venv/.wsgi-venv"
rm -rf "$wheelhouse"
