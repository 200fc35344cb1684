"""The wsgi_app_artifacts action: code archive and wheelhouse for the target's Python, built on the controller.

These tests run the real uv and pip against the real PyPI, and against a PEP 503 index that a test serves
on 127.0.0.1 with sdists it makes (one pure Python, one with a C extension). The plugin's functions are
loaded from the file, the way Ansible loads it; the last test runs the action through ansible-playbook,
for two hosts in parallel forks sharing one cache entry.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from plugin_loading import load

PROJECT_DIR = Path(__file__).resolve().parent.parent
PLUGIN = PROJECT_DIR / "plugins" / "action" / "wsgi_app_artifacts.py"
BIN = Path(sys.executable).parent
# The build backend the local index serves, so that the sdists build there without PyPI.
SETUPTOOLS = "setuptools==80.9.0"



artifacts = load(PLUGIN, "wsgi_app_artifacts_under_test")


def make_project(root: Path, requirements: str | None = None, files: dict[str, str] | None = None) -> Path:
    """A small Django-like project; requirements.txt only when given."""
    root.mkdir(parents=True, exist_ok=True)
    for name, text in {"manage.py": "print('manage')\n", "shop/__init__.py": "", "shop/wsgi.py": "application = None\n",
                       **(files or {})}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    if requirements is not None:
        (root / "requirements.txt").write_text(requirements)
    return root


def build(project: Path, cache: Path, **overrides: Any) -> dict[str, Any]:
    """Run the action's work the way ActionModule does, with the arguments of the brief's example."""
    args = {"name": "shop", "project": str(project), "requirements": None, "python_version": "3.11",
            "glibc": "2.36", "arch": "x86_64", "build": ["python manage.py collectstatic --noinput"],
            "cache_dir": str(cache), "index_url": "", **overrides}
    return artifacts.build_artifacts(artifacts.make_spec(args))


def fails(project: Path, cache: Path, **overrides: Any) -> str:
    """The one message a failing build gives; the cache keeps no entry of it, complete or partial."""
    with pytest.raises(artifacts.ArtifactError) as raised:
        build(project, cache, **overrides)
    left = sorted(path.name for path in (cache / "wheelhouses").iterdir() if not path.name.endswith(".lock"))
    assert left == [], f"the failed build left {left} in the cache"
    assert "Traceback" not in str(raised.value)
    return str(raised.value)


def members(archive: str) -> dict[str, bytes | None]:
    """Name -> content (None for directories) of a tar or tar.gz."""
    with tarfile.open(archive) as tar:
        return {info.name: tar.extractfile(info).read() if info.isfile() else None for info in tar.getmembers()}


def wheels(result: dict[str, Any]) -> list[str]:
    return sorted(name.removeprefix("wheels/") for name in members(result["wheelhouse_archive"])
                  if name.startswith("wheels/") and name.endswith(".whl"))


# --- the target's platform -----------------------------------------------------------------------------


def test_the_target_platform_is_named_the_way_uv_and_pip_want_it() -> None:
    debian12 = artifacts.Target("3.11", "2.36", "x86_64")
    assert (debian12.abi, debian12.uv_platform) == ("cp311", "x86_64-manylinux_2_36")
    assert debian12.pip_platforms[:2] == ["manylinux_2_36_x86_64", "manylinux_2_35_x86_64"]
    assert {"manylinux_2_17_x86_64", "manylinux_2_5_x86_64", "manylinux2014_x86_64", "manylinux2010_x86_64",
            "manylinux1_x86_64"} <= set(debian12.pip_platforms)
    assert "manylinux_2_37_x86_64" not in debian12.pip_platforms
    # uv knows manylinux up to 2_40: Debian 13's glibc 2.41 resolves as the newest it knows.
    debian13 = artifacts.Target("3.13", "2.41", "aarch64")
    assert (debian13.abi, debian13.uv_platform) == ("cp313", "aarch64-manylinux_2_40")
    assert debian13.pip_platforms[-1] == "manylinux2014_aarch64"
    assert "manylinux1_aarch64" not in debian13.pip_platforms


@pytest.mark.parametrize(("field", "value"), [("python_version", "3"), ("python_version", "py3.11"),
                                              ("glibc", "2.5"), ("glibc", "236")])
def test_a_malformed_target_is_refused_naming_the_app(tmp_path: Path, field: str, value: str) -> None:
    with pytest.raises(artifacts.ArtifactError, match=f"^shop: {field} must look like"):
        build(make_project(tmp_path / "p"), tmp_path / "cache", **{field: value})


def test_the_documented_options_are_the_argument_spec() -> None:
    """ansible-doc shows plugins/modules/wsgi_app_artifacts.py: it must say what the action checks."""
    stub = PROJECT_DIR / "plugins" / "modules" / "wsgi_app_artifacts.py"
    docs = load(stub, "wsgi_app_artifacts_docs_under_test")
    options = yaml.safe_load(docs.DOCUMENTATION)["options"]
    assert set(options) == set(artifacts.ARGUMENT_SPEC)
    for name, spec in artifacts.ARGUMENT_SPEC.items():
        documented = options[name]
        assert documented["type"] == spec["type"], name
        assert documented.get("required", False) == spec.get("required", False), name
        assert documented.get("default") == spec.get("default"), name
        assert documented.get("choices") == spec.get("choices"), name
    assert set(yaml.safe_load(docs.RETURN)) == {
        "release", "code_archive", "env_key", "wheelhouse_archive", "install_project", "packages", "cached"}


# --- resolution and wheels from PyPI -------------------------------------------------------------------

MARKED = """\
anyio==4.6.2
tomli==2.0.1; python_version < "3.13"
pywin32==308; sys_platform == "win32"
uvloop==0.21.0; platform_machine == "aarch64"
"""


def test_markers_are_evaluated_for_the_target_not_the_controller(tmp_path: Path) -> None:
    """The controller runs 3.11: a 3.10 lock has what 3.10 needs, a 3.13 lock leaves out what 3.13 has."""
    project = make_project(tmp_path / "p", MARKED)
    old = build(project, tmp_path / "cache", python_version="3.10", glibc="2.31")
    new = build(project, tmp_path / "cache", python_version="3.13", glibc="2.41")
    old_names = {pin.split("==")[0] for pin in old["packages"]}
    new_names = {pin.split("==")[0] for pin in new["packages"]}
    # anyio needs exceptiongroup and typing-extensions below 3.11 only; tomli is asked for below 3.13.
    assert {"anyio", "idna", "sniffio", "tomli", "exceptiongroup", "typing-extensions"} <= old_names
    assert new_names == {"anyio", "idna", "sniffio"}
    assert not {"pywin32", "uvloop"} & (old_names | new_names)
    assert old["env_key"] != new["env_key"] and old["release"] != new["release"]
    assert old["wheelhouse_archive"] != new["wheelhouse_archive"]
    lock = members(new["wheelhouse_archive"])["requirements.lock"].decode()
    assert "tomli" not in lock and "anyio==4.6.2 \\\n    --hash=sha256:" in lock


@pytest.mark.parametrize(("python", "glibc", "abi"), [("3.11", "2.36", "cp311"), ("3.13", "2.41", "cp313")])
def test_a_compiled_wheel_is_the_targets(tmp_path: Path, python: str, glibc: str, abi: str) -> None:
    """markupsafe has a C extension: the wheel shipped is the target's CPython and manylinux, hashed in the lock."""
    result = build(make_project(tmp_path / "p", "markupsafe==3.0.3\n"), tmp_path / "cache",
                   python_version=python, glibc=glibc)
    assert result["packages"] == ["markupsafe==3.0.3"]
    [wheel] = wheels(result)
    assert wheel.startswith(f"markupsafe-3.0.3-{abi}-{abi}-") and "manylinux" in wheel, wheel
    content = members(result["wheelhouse_archive"])
    digest = hashlib.sha256(content[f"wheels/{wheel}"]).hexdigest()
    assert content["requirements.lock"].decode() == f"markupsafe==3.0.3 \\\n    --hash=sha256:{digest}\n"


def test_a_package_that_does_not_exist_fails_naming_it(tmp_path: Path) -> None:
    message = fails(make_project(tmp_path / "p", "wsgi-hosting-no-such-package-zz9==1.0\n"), tmp_path / "cache")
    assert message.startswith("shop: cannot resolve the requirements for Python 3.11 (cp311, manylinux_2_36_x86_64)")
    assert "wsgi-hosting-no-such-package-zz9" in message and "\n" not in message


def test_a_version_that_does_not_exist_fails_naming_it(tmp_path: Path) -> None:
    message = fails(make_project(tmp_path / "p", "markupsafe==99.0\n"), tmp_path / "cache")
    assert "there is no version of markupsafe==99.0" in message, message


# --- the cache -----------------------------------------------------------------------------------------


def test_a_second_call_resolves_and_downloads_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = make_project(tmp_path / "p", "idna==3.10\n")
    first = build(project, tmp_path / "cache")
    assert first["cached"] is False
    archive = Path(first["wheelhouse_archive"])
    before = archive.stat().st_mtime_ns

    def no_tools(argv: list[str]) -> subprocess.CompletedProcess[str]:
        raise AssertionError(f"a cached wheelhouse ran {argv}")

    monkeypatch.setattr(artifacts, "run_tool", no_tools)
    (project / "shop" / "views.py").write_text("# new code, same requirements\n")
    second = build(project, tmp_path / "cache")
    assert second["cached"] is True
    assert second["wheelhouse_archive"] == first["wheelhouse_archive"]
    assert archive.stat().st_mtime_ns == before
    assert second["packages"] == first["packages"] == ["idna==3.10"]


def test_parallel_forks_build_the_wheelhouse_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Three processes start together (as Ansible's forks do): one resolves and downloads, two wait and reuse."""
    project = make_project(tmp_path / "p", "idna==3.10\n")
    runs = tmp_path / "runs.log"
    real = artifacts.run_tool

    def slow_and_counted(argv: list[str]) -> subprocess.CompletedProcess[str]:
        with open(runs, "a") as log:
            log.write(" ".join(argv[1:4]) + "\n")
        time.sleep(0.5)  # the others are surely waiting on the lock meanwhile
        return real(argv)

    monkeypatch.setattr(artifacts, "run_tool", slow_and_counted)
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(3)
    results = context.Queue()

    def fork() -> None:
        barrier.wait()
        result = build(project, tmp_path / "cache")
        results.put((result["cached"], result["wheelhouse_archive"], result["release"]))

    processes = [context.Process(target=fork) for _ in range(3)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(120)
        assert process.exitcode == 0
    found = sorted(results.get(timeout=5) for _ in processes)
    assert [cached for cached, _, _ in found] == [False, True, True]
    assert len({(archive, release) for _, archive, release in found}) == 1
    # One resolution (uv pip compile) and one download (python -m pip download), for the three of them.
    assert runs.read_text().splitlines() == ["pip compile --quiet", "-m pip download"]


def test_the_release_follows_the_code_and_the_env_key_the_lock(tmp_path: Path) -> None:
    """Without pyproject.toml the code is not installed into the venv: code changes keep the env_key."""
    project = make_project(tmp_path / "p", "idna==3.10\n")
    first = build(project, tmp_path / "cache")
    (project / "shop" / "wsgi.py").write_text("application = object()\n")
    second = build(project, tmp_path / "cache")
    assert second["release"] != first["release"] and second["code_archive"] != first["code_archive"]
    assert second["env_key"] == first["env_key"] and second["install_project"] is False
    other_build = build(project, tmp_path / "cache", build=[])
    assert other_build["release"] != second["release"] and other_build["env_key"] == second["env_key"]
    (project / "requirements.txt").write_text("idna==3.9\n")
    third = build(project, tmp_path / "cache")
    assert third["env_key"] != second["env_key"] and third["cached"] is False
    for result in (first, second, third):
        assert len(result["release"]) == len(result["env_key"]) == 16
        int(result["release"], 16), int(result["env_key"], 16)


def test_a_pyproject_project_is_installed_and_its_build_requirements_shipped(tmp_path: Path) -> None:
    pyproject = ('[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n\n'
                 '[project]\nname = "shop"\nversion = "1.0"\ndependencies = ["idna==3.10"]\n')
    project = make_project(tmp_path / "p", files={"pyproject.toml": pyproject})
    first = build(project, tmp_path / "cache")
    assert first["install_project"] is True and first["packages"] == ["idna==3.10"]
    content = members(first["wheelhouse_archive"])
    assert content["build-requirements.lock"].decode().startswith("setuptools==")
    assert any(name.startswith("setuptools-") for name in wheels(first)), wheels(first)
    # The project itself goes into the venv: its code is part of the env_key.
    (project / "shop" / "wsgi.py").write_text("application = object()\n")
    second = build(project, tmp_path / "cache")
    assert second["cached"] is True and second["env_key"] != first["env_key"]


def test_a_pyproject_that_only_configures_tools_is_not_installed(tmp_path: Path) -> None:
    """A pyproject.toml with only [tool.*] tables is no package: the requirements file alone is locked."""
    project = make_project(tmp_path / "p", "idna==3.10\n", files={"pyproject.toml": "[tool.ruff]\nline-length = 100\n"})
    result = build(project, tmp_path / "cache")
    assert result["install_project"] is False and result["packages"] == ["idna==3.10"]
    assert "build-requirements.lock" not in members(result["wheelhouse_archive"])


def target_python(version: str) -> str | None:
    """An interpreter of the target's Python version on this machine, if there is one (PATH or pyenv)."""
    candidates = [shutil.which(f"python{version}"),
                  *map(str, sorted(Path.home().glob(f".pyenv/versions/{version}.*/bin/python{version}")))]
    for candidate in filter(None, candidates):  # a pyenv shim may be on PATH without the version behind it
        if subprocess.run([candidate, "-c", ""], capture_output=True, timeout=60, check=False).returncode == 0:
            return candidate
    return None


PYTHON_313 = target_python("3.13")


@pytest.mark.skipif(PYTHON_313 is None, reason="no Python 3.13 on this machine to stand for a host")
def test_the_wheelhouse_installs_offline_on_the_target(tmp_path: Path) -> None:
    """What a Debian 13 host does: a 3.13 venv, the lock with --require-hashes, then the project, all offline."""
    pyproject = ('[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n\n'
                 '[project]\nname = "shop"\nversion = "1.0"\ndependencies = ["markupsafe==3.0.3"]\n\n'
                 '[tool.hatch.build.targets.wheel]\npackages = ["shop"]\n')
    project = make_project(tmp_path / "p", "idna==3.10\n", files={"pyproject.toml": pyproject})
    result = build(project, tmp_path / "cache", python_version="3.13", glibc="2.41")
    host = tmp_path / "host"
    for archive, where in ((result["wheelhouse_archive"], host / "wheelhouse"), (result["code_archive"], host / "src")):
        with tarfile.open(archive) as tar:
            tar.extractall(where, filter="data")
    env = {key: value for key, value in os.environ.items() if not key.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull

    def run(*argv: str) -> None:
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stdout + done.stderr

    run(str(PYTHON_313), "-m", "venv", str(host / "venv"))
    pip = [str(host / "venv" / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-index",
           "--find-links", str(host / "wheelhouse" / "wheels")]
    run(*pip, "--require-hashes", "--requirement", str(host / "wheelhouse" / "requirements.lock"))
    run(*pip, "--no-deps", str(host / "src"))
    run(str(host / "venv" / "bin" / "python"), "-c", "import idna, markupsafe, shop; markupsafe.escape('<')")


# --- the code archive ----------------------------------------------------------------------------------


def test_the_code_archive_leaves_out_what_is_not_code_and_is_reproducible(tmp_path: Path) -> None:
    files = {"shop/__pycache__/wsgi.cpython-311.pyc": "x", "shop/old.pyc": "x", ".git/HEAD": "ref",
             ".venv/bin/python": "", "venv/lib/x.py": "", ".tox/py311/x": "", "env/pyvenv.cfg": "home = /usr",
             "env/lib/site.py": "", "static/app.css": "body {}\n", "empty/.keep": ""}
    project = make_project(tmp_path / "p", "", files=files)
    (project / "manage.py").chmod(0o755)
    result = build(project, tmp_path / "cache")
    content = members(result["code_archive"])
    assert sorted(content) == ["empty", "empty/.keep", "manage.py", "requirements.txt", "shop", "shop/__init__.py",
                               "shop/wsgi.py", "static", "static/app.css"]
    with tarfile.open(result["code_archive"]) as tar:
        infos = {info.name: info for info in tar.getmembers()}
    assert [info.name for info in infos.values()] == sorted(infos)
    assert {(info.uid, info.gid, info.mtime) for info in infos.values()} == {(0, 0, artifacts.FIXED_MTIME)}
    assert (infos["manage.py"].mode, infos["shop/wsgi.py"].mode, infos["shop"].mode) == (0o755, 0o644, 0o755)
    # The same content elsewhere, written at another time, into another cache: the same bytes.
    copy = tmp_path / "copy"
    shutil.copytree(project, copy)
    os.utime(copy / "shop" / "wsgi.py", (0, 0))
    again = build(copy, tmp_path / "other-cache")
    assert Path(again["code_archive"]).name == Path(result["code_archive"]).name
    assert Path(again["code_archive"]).read_bytes() == Path(result["code_archive"]).read_bytes()
    assert again["release"] == result["release"]


# --- a package index of one's own ----------------------------------------------------------------------

C_SOURCE = """\
#include <Python.h>
static struct PyModuleDef speedups = {PyModuleDef_HEAD_INIT, "_speedups", NULL, -1, NULL};
PyMODINIT_FUNC PyInit__speedups(void) { return PyModule_Create(&speedups); }
"""


def sdist(files_dir: Path, name: str, files: dict[str, str]) -> None:
    """name-1.0.tar.gz with static metadata (PKG-INFO, pyproject's [project]) and the given files."""
    module = name.replace("-", "_")
    base = f"{module}-1.0"
    files = {
        "PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n",
        "pyproject.toml": ('[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n'
                           f'\n[project]\nname = "{name}"\nversion = "1.0"\n'),
        f"{module}/__init__.py": "",
        **files,
    }
    with tarfile.open(files_dir / f"{base}.tar.gz", "w:gz") as tar:
        for path, text in sorted(files.items()):
            data = text.encode()
            info = tarfile.TarInfo(f"{base}/{path}")
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))


def write_index(root: Path) -> None:
    """simple/<project>/index.html for every file in files/, with its sha256 (PEP 503)."""
    projects: dict[str, list[Path]] = {}
    for path in sorted((root / "files").iterdir()):
        name = path.name.split("-")[0].replace("_", "-").lower()
        projects.setdefault(name, []).append(path)
    for name, paths in projects.items():
        links = "".join(f'<a href="/files/{path.name}#sha256={hashlib.sha256(path.read_bytes()).hexdigest()}">'
                        f"{path.name}</a>\n" for path in paths)
        (root / "simple" / name).mkdir(parents=True)
        (root / "simple" / name / "index.html").write_text(f"<!DOCTYPE html><html><body>\n{links}</body></html>\n")
    index = "".join(f'<a href="/simple/{name}/">{name}</a>\n' for name in projects)
    (root / "simple" / "index.html").write_text(f"<!DOCTYPE html><html><body>\n{index}</body></html>\n")


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def local_index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A PEP 503 index on 127.0.0.1: setuptools (from PyPI), a pure-Python sdist and a C-extension sdist."""
    root = tmp_path_factory.mktemp("index")
    files = root / "files"
    files.mkdir()
    download = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--dest", str(files), SETUPTOOLS],
        env={**os.environ, "PIP_CONFIG_FILE": os.devnull}, capture_output=True, text=True, timeout=300, check=False,
    )
    assert download.returncode == 0, download.stdout + download.stderr
    sdist(files, "wsgihosting-purepkg", {"wsgihosting_purepkg/__init__.py": "VALUE = 1\n"})
    sdist(files, "wsgihosting-cext", {
        "setup.py": ("from setuptools import Extension, setup\n"
                     "setup(ext_modules=[Extension('wsgihosting_cext._speedups', ['speedups.c'])])\n"),
        "speedups.c": C_SOURCE,
    })
    write_index(root)
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/simple"
    finally:
        server.shutdown()
        server.server_close()


def test_a_pure_python_sdist_is_built_into_a_wheel(tmp_path: Path, local_index: str) -> None:
    result = build(make_project(tmp_path / "p", "wsgihosting-purepkg==1.0\n"), tmp_path / "cache",
                   index_url=local_index)
    assert result["packages"] == ["wsgihosting-purepkg==1.0"]
    assert wheels(result) == ["wsgihosting_purepkg-1.0-py3-none-any.whl"]
    assert members(result["wheelhouse_archive"])["requirements.lock"].startswith(b"wsgihosting-purepkg==1.0 \\\n")


def test_an_sdist_with_a_c_extension_fails_naming_the_package(tmp_path: Path, local_index: str) -> None:
    message = fails(make_project(tmp_path / "p", "wsgihosting-cext==1.0\n"), tmp_path / "cache",
                    index_url=local_index)
    assert message.startswith("shop: wsgihosting-cext==1.0 has no wheel for Python 3.11 (cp311, "
                              "manylinux_2_36_x86_64), and "), message
    assert "platform-specific" in message or "failed" in message, message


def test_the_index_url_replaces_pypi(tmp_path: Path, local_index: str) -> None:
    """idna is on PyPI but not on the local index: with index_url it cannot be found."""
    message = fails(make_project(tmp_path / "p", "idna==3.10\n"), tmp_path / "cache", index_url=local_index)
    assert "idna" in message and "cannot resolve" in message, message


# --- through Ansible -----------------------------------------------------------------------------------

PLAYBOOK = """\
---
- name: Build the artifacts once for every host
  hosts: all
  connection: local
  gather_facts: false
  tasks:
    - name: Build the app's release artifacts on the controller
      wsgi_hosting.debian.wsgi_app_artifacts:
        name: shop
        project: "{{ project }}"
        python_version: "3.11"
        glibc: "2.36"
        build: ["python manage.py collectstatic --noinput"]
        cache_dir: "{{ cache }}"
      register: shop_artifacts

    - name: Keep what it returned
      ansible.builtin.copy:
        content: "{{ shop_artifacts | to_json }}"
        dest: "{{ out }}/{{ inventory_hostname }}.json"
        mode: "0644"
      check_mode: false
"""


def test_ansible_playbook_runs_the_action_once_per_requirement_set(tmp_path: Path) -> None:
    """Two hosts in parallel forks, check mode: one builds the wheelhouse, the other waits and finds it."""
    project = make_project(tmp_path / "p", "idna==3.10\n")
    (tmp_path / "play.yml").write_text(PLAYBOOK)
    out = tmp_path / "out"
    out.mkdir()
    variables = {"project": str(project), "cache": str(tmp_path / "cache"), "out": str(out),
                 "ansible_python_interpreter": sys.executable}
    env = {key: value for key, value in os.environ.items() if not key.startswith("ANSIBLE_")}
    env.update(ANSIBLE_NOCOLOR="1", ANSIBLE_COLLECTIONS_PATH=str(PROJECT_DIR / "collections"),
               ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-local"), ANSIBLE_FORKS="2")
    run = subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", "web1,web2,", "play.yml", "--check", "--extra-vars",
         json.dumps(variables)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    results = {host: json.loads((out / f"{host}.json").read_text()) for host in ("web1", "web2")}
    keys = {"release", "code_archive", "env_key", "wheelhouse_archive", "install_project", "packages", "cached"}
    for result in results.values():
        assert keys <= set(result), result
        assert result["changed"] is False and not result.get("failed"), result
        assert result["packages"] == ["idna==3.10"] and result["install_project"] is False
        assert Path(result["wheelhouse_archive"]).is_file() and Path(result["code_archive"]).is_file()
    assert sorted(result["cached"] for result in results.values()) == [False, True]
    same = sorted(keys - {"cached"})
    assert [results["web1"][key] for key in same] == [results["web2"][key] for key in same]
