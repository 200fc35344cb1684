"""Documentation of the wsgi_app_artifacts action (plugins/action/wsgi_app_artifacts.py), read by ansible-doc.

The action runs on the controller only; there is no module code, as for any action-only plugin of a
collection.
"""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: wsgi_app_artifacts
author: wsgi-hosting maintainers
version_added: "1.0.0"
short_description: Build a WSGI app's code archive and offline wheelhouse on the controller
description:
  - Builds, on the controller, what a host without access to any package index needs to install a Python
    WSGI app - a deterministic archive of the project's code and a wheelhouse (the pinned requirements and
    every wheel they need) for the B(target's) Python, glibc and architecture.
  - The requirements are resolved with C(uv pip compile --python-version --python-platform), so environment
    markers are evaluated for the target, not for the controller's Python. pip then downloads binary wheels
    for the target's CPython ABI and every manylinux tag its glibc accepts. A package with only an sdist is
    built into a wheel on the controller, and accepted only when the wheel is pure Python
    (C(py3-none-any)); a platform-specific sdist fails the task.
  - The wheelhouse is cached under O(cache_dir) by a key of the requirement inputs (the requirements file
    and the files it includes), the project's C(pyproject.toml) (and C(setup.cfg), C(setup.py)), O(python_version),
    O(glibc), O(arch) and O(index_url) - one resolution and download per requirement set and target, not per
    host. Parallel forks wait on an fcntl lock of the cache entry, which appears complete by one rename.
    Delete the entry to resolve unpinned requirements again.
  - The code archive leaves out C(.git), C(__pycache__), C(*.pyc) and virtualenvs (C(.venv), C(venv), C(.tox)
    and any directory with a C(pyvenv.cfg)); its entries are sorted, owned by root, dated 2000-01-01, so the
    same content always gives the same bytes. It is cached by its content digest.
  - pip's and uv's configuration files and C(PIP_*)/C(UV_*) settings of the controller (other than
    certificates, proxies and timeouts) are ignored, so that only the task's arguments decide what is shipped.
  - Changes nothing on the hosts, needs no connection to them, and runs the same in check mode.
options:
  name:
    description: The app's name, for messages.
    type: str
    required: true
  project:
    description: The project directory on the controller (relative paths are relative to the playbook).
    type: path
    required: true
  requirements:
    description:
      - The requirements file, a path inside O(project).
      - Unset (or null) means C(requirements.txt) when the project has one, else no requirements file.
      - A project whose C(pyproject.toml) has a C([project]) or C([build-system]) table is installed into the
        virtualenv, so its dependencies are locked too, and the wheels of its C([build-system] requires) (or
        of setuptools and wheel, which pip assumes without them) are shipped. A C(pyproject.toml) that only
        configures tools does not make the project installed.
    type: str
  python_version:
    description: The target's Python version (Debian 12 has 3.11, Debian 13 has 3.13).
    type: str
    required: true
  glibc:
    description: The target's glibc version (Debian 12 has 2.36, Debian 13 has 2.41); 2.17 or newer.
    type: str
    required: true
  arch:
    description: The target's architecture.
    type: str
    choices: [aarch64, x86_64]
    default: x86_64
  build:
    description: The commands that build the release on the host (collectstatic, ...); part of its identity.
    type: list
    elements: str
    default: []
  cache_dir:
    description: The controller's cache of code archives and wheelhouses.
    type: path
    default: ~/.cache/wsgi-hosting
  index_url:
    description: Another package index (a PEP 503 simple URL) for uv and pip instead of PyPI; empty means PyPI.
    type: str
    default: ""
attributes:
  check_mode:
    support: full
    description: Builds the artifacts on the controller in check mode too; nothing changes on the hosts.
  diff_mode:
    support: none
  platform:
    platforms: posix
notes:
  - The controller needs uv (requirements.txt pins it) and network access to the index.
  - The host installs with C(pip install --no-index --find-links wheels --require-hashes -r requirements.lock),
    then, when RV(install_project), C(pip install --no-index --find-links wheels --no-deps <project>).
"""

EXAMPLES = r"""
- name: Build the app's release artifacts on the controller
  wsgi_hosting.debian.wsgi_app_artifacts:
    name: shop
    project: /srv/src/shop
    requirements: requirements.txt
    python_version: "3.11"
    glibc: "2.36"
    arch: x86_64
    build: ["python manage.py collectstatic --noinput"]
    cache_dir: /root/.cache/wsgi-hosting
  register: shop_artifacts
  run_once: true
"""

RETURN = r"""
release:
  description:
    - The release identity, 16 hexadecimal digits of SHA-256 over the code's content digest, the locked
      packages (and build packages), O(python_version) and O(build).
  returned: success
  type: str
  sample: 3f2a9c0d41b7e8a5
code_archive:
  description: The deterministic C(.tar.gz) of the project's code in O(cache_dir), named by its content digest.
  returned: success
  type: str
  sample: /root/.cache/wsgi-hosting/code/04910de027f247a9aaea6cfbce2a0b2d.tar.gz
env_key:
  description:
    - The virtualenv's identity, 16 hexadecimal digits of SHA-256 over the locked packages (and build packages),
      O(python_version) and, only when RV(install_project), the code's content digest.
  returned: success
  type: str
  sample: ab59e0d08de5f59a
wheelhouse_archive:
  description:
    - A C(.tar) in O(cache_dir) holding C(requirements.lock) (every package pinned, with the SHA-256 of the
      wheel shipped), C(wheels/) with every wheel, and for a C(pyproject.toml) project
      C(build-requirements.lock) with the pins of its build requirements.
  returned: success
  type: str
  sample: /root/.cache/wsgi-hosting/wheelhouses/c6fa0cbef3d628c02a2ebcd630812550/wheelhouse.tar
install_project:
  description:
    - Whether the project is itself installed into the virtualenv - its C(pyproject.toml) has a C([project])
      or C([build-system]) table.
  returned: success
  type: bool
packages:
  description: The locked packages, C(name==version), sorted by name (not the build requirements).
  returned: success
  type: list
  elements: str
  sample: [idna==3.10, markupsafe==3.0.3]
cached:
  description: Whether the wheelhouse came from the cache (no resolution, no download).
  returned: success
  type: bool
"""
