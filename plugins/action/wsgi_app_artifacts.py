"""Build an app's release artifacts on the controller: its code archive and a wheelhouse for the target's Python.

The Debian hosts cannot reach a package index, so whatever a host installs must come from the controller.
The controller is not the target, though: it runs its own Python (3.11 for ansible-core 2.19) and the
hosts run Debian's (3.11 on Debian 12, 3.13 on Debian 13), with their own glibc. So the requirements are
resolved with uv for the target's Python version and platform (environment markers evaluated for the
target, not for the controller), and pip downloads binary wheels for the target's interpreter, ABI and
every manylinux tag its glibc accepts. A package with only an sdist is built into a wheel here when the
result is pure Python (it then runs anywhere); a platform-specific build would be the controller's
platform, not the target's, so it is refused.

The wheelhouse is cached under cache_dir by a key of its inputs: the action runs once per host, in parallel
forks, but a requirement set is resolved and downloaded once per Python version and platform. An fcntl
lock on the cache entry makes the other forks wait for the first one, and the entry appears by one
rename of a finished directory, so nobody sees half of it and a failure leaves nothing behind.

The functions below take plain values and raise ArtifactError with the one message the task fails with,
so that tests can call them without Ansible; ActionModule only validates the arguments and calls them.
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import tomllib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ansible.plugins.action import ActionBase
from packaging.tags import Tag
from packaging.utils import (
    InvalidWheelFilename,
    canonicalize_name,
    parse_wheel_filename,
)
from packaging.version import Version

PYPI = "https://pypi.org/simple"
# Part of every cache key: a change of the cache's layout or of what goes into a wheelhouse gets new entries.
CACHE_FORMAT = 1
# How long one uv or pip run may take (a slow index, a large wheel) before the task gives up.
TOOL_TIMEOUT = 900
# Directories that are not the project's code: version control, caches, virtualenvs by their usual names
# (any other directory holding a pyvenv.cfg is a virtualenv too).
EXCLUDED_DIRS = frozenset({".git", "__pycache__", ".venv", "venv", ".tox"})
EXCLUDED_SUFFIXES = (".pyc",)
# Every entry of an archive gets this mtime (2000-01-01): fixed, so the archive depends only on the content,
# and after 1980, so tools that zip the extracted files (a wheel build of the project) accept it.
FIXED_MTIME = 946684800
# The manylinux platforms uv knows for --python-platform (x86_64-manylinux_2_NN); the highest one that the
# target's glibc accepts is used.
UV_MANYLINUX_MINORS = (17, 28, *range(31, 41))
# The oldest manylinux_2_NN wheel each architecture has, and the legacy names of some of them (PEP 600).
MANYLINUX_FLOOR = {"x86_64": 5, "aarch64": 17}
MANYLINUX_ALIASES = {"manylinux2014": 17, "manylinux2010": 12, "manylinux1": 5}
PURE_TAG = Tag("py3", "none", "any")
# pip and uv settings from the controller's environment that only say how to reach the network; every other
# PIP_*/UV_* setting (an index, find-links, constraints) would change what is shipped and is dropped.
KEPT_TOOL_SETTINGS = frozenset({
    "PIP_CERT", "PIP_CLIENT_CERT", "PIP_PROXY", "PIP_TRUSTED_HOST", "PIP_DEFAULT_TIMEOUT", "PIP_RETRIES",
    "UV_NATIVE_TLS", "UV_HTTP_TIMEOUT", "UV_CACHE_DIR", "UV_INSECURE_HOST",
})

ARGUMENT_SPEC: dict[str, Any] = {
    "name": {"type": "str", "required": True},
    "project": {"type": "path", "required": True},
    "requirements": {"type": "str"},
    "python_version": {"type": "str", "required": True},
    "glibc": {"type": "str", "required": True},
    "arch": {"type": "str", "default": "x86_64", "choices": sorted(MANYLINUX_FLOOR)},
    "build": {"type": "list", "elements": "str", "default": []},
    "cache_dir": {"type": "path", "default": "~/.cache/wsgi-hosting"},
    "index_url": {"type": "str", "default": ""},
}


# An archive member and where its content comes from: a file, bytes, or nothing (a directory or link).
Member = tuple[tarfile.TarInfo, bytes | Path | None]


class ArtifactError(Exception):
    """A failure the task reports as its one message: app, package, target and the tool's own words."""


@dataclass(frozen=True)
class Target:
    """The host's interpreter and platform, as pip and uv name them."""

    python_version: str
    glibc: str
    arch: str

    @property
    def glibc_minor(self) -> int:
        return int(self.glibc.split(".")[1])

    @property
    def abi(self) -> str:
        """cp311 for Python 3.11: Debian's python3 is CPython."""
        return "cp" + self.python_version.replace(".", "")

    @property
    def platform(self) -> str:
        """The newest manylinux tag of the target, for messages: manylinux_2_36_x86_64."""
        return f"manylinux_2_{self.glibc_minor}_{self.arch}"

    @property
    def uv_platform(self) -> str:
        """The --python-platform for uv: the newest manylinux it knows that the target's glibc accepts."""
        accepted = [minor for minor in UV_MANYLINUX_MINORS if minor <= self.glibc_minor]
        if not accepted:
            raise ArtifactError(f"glibc {self.glibc} is older than manylinux2014 (glibc 2.17), which uv needs")
        return f"{self.arch}-manylinux_2_{accepted[-1]}"

    @property
    def pip_platforms(self) -> list[str]:
        """Every manylinux tag the target accepts, newest first, with the legacy aliases (PEP 600)."""
        floor = MANYLINUX_FLOOR[self.arch]
        tags = [f"manylinux_2_{minor}_{self.arch}" for minor in range(self.glibc_minor, floor - 1, -1)]
        tags += [f"{alias}_{self.arch}" for alias, minor in MANYLINUX_ALIASES.items()
                 if floor <= minor <= self.glibc_minor]
        return tags

    def describe(self) -> str:
        return f"Python {self.python_version} ({self.abi}, {self.platform})"


@dataclass(frozen=True)
class Spec:
    """What to build, from the task's arguments."""

    name: str
    project: Path
    requirements: Path | None
    target: Target
    build: tuple[str, ...]
    cache_dir: Path
    index_url: str

    pyproject: Path | None = None

    @property
    def index(self) -> str:
        return self.index_url or PYPI


@dataclass(frozen=True)
class Pin:
    """One line of a lock: a package, its exact version and the hashes the index gave for its files."""

    name: str
    version: str
    hashes: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"{self.name}=={self.version}"

    def requirement(self) -> str:
        """The line pip reads: hashes make pip check every file it downloads against the index's."""
        return " ".join([str(self), *(f"--hash={digest}" for digest in self.hashes)])


# --- arguments -----------------------------------------------------------------------------------------


def make_spec(args: dict[str, Any]) -> Spec:
    """Check the arguments that the argument spec cannot and find the requirements file."""
    name = args["name"]
    if not re.fullmatch(r"3\.\d{1,2}", args["python_version"] or ""):
        raise ArtifactError(f"{name}: python_version must look like 3.11, not {args['python_version']!r}")
    if not re.fullmatch(r"2\.\d{1,2}", args["glibc"] or "") or int(args["glibc"].split(".")[1]) < 17:
        raise ArtifactError(f"{name}: glibc must look like 2.36 and be 2.17 (manylinux2014) or newer, "
                            f"not {args['glibc']!r}")
    project = Path(args["project"])
    if not project.is_dir():
        raise ArtifactError(f"{name}: the project directory {project} does not exist on the controller")
    return Spec(
        name=name, project=project, requirements=requirements_file(name, project, args.get("requirements")),
        target=Target(args["python_version"], args["glibc"], args["arch"]), build=tuple(args["build"] or ()),
        cache_dir=Path(os.path.expanduser(args["cache_dir"])), index_url=(args["index_url"] or "").strip(),
        pyproject=installable_pyproject(name, project),
    )


def installable_pyproject(name: str, project: Path) -> Path | None:
    """The project's pyproject.toml when it makes the project installable ([project] or [build-system]).

    A pyproject.toml that only configures tools (ruff, black, pytest) is no package: pip could not build
    it, so the project is not installed and only its requirements file is locked.
    """
    path = project / "pyproject.toml"
    if not path.is_file():
        return None
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise ArtifactError(f"{name}: {path} is not valid TOML: {error}") from None
    return path if "project" in data or "build-system" in data else None


def requirements_file(name: str, project: Path, requirements: str | None) -> Path | None:
    """The requirements file inside the project; unset means requirements.txt when there is one."""
    if not requirements:
        default = project / "requirements.txt"
        return default if default.is_file() else None
    path = project / requirements
    if not path.is_file():
        raise ArtifactError(f"{name}: the requirements file {path} does not exist on the controller")
    return path


# --- the project's code --------------------------------------------------------------------------------


def is_excluded_dir(path: Path) -> bool:
    """Version control, caches and virtualenvs: any name in EXCLUDED_DIRS or any directory with a pyvenv.cfg."""
    return path.name in EXCLUDED_DIRS or (path / "pyvenv.cfg").is_file()


def project_entries(project: Path, skip: Iterable[Path] = ()) -> list[Path]:
    """Every directory, file and link of the project that is its code, relative to it, sorted."""
    skipped = {path.resolve() for path in skip}
    found: list[Path] = []
    for root, dirs, files in os.walk(project):
        here = Path(root)
        dirs[:] = sorted(d for d in dirs if not is_excluded_dir(here / d) and (here / d).resolve() not in skipped)
        for name in [*dirs, *files]:
            path = here / name
            if name in EXCLUDED_DIRS or name.endswith(EXCLUDED_SUFFIXES):
                continue
            if path.is_symlink() or path.is_dir() or path.is_file():
                found.append(path.relative_to(project))
    return sorted(found, key=lambda path: path.as_posix())


def fixed_info(name: str) -> tarfile.TarInfo:
    """An archive member with nothing of this machine in it: root's, the fixed mtime."""
    info = tarfile.TarInfo(name)
    info.mtime, info.uid, info.gid, info.uname, info.gname = FIXED_MTIME, 0, 0, "root", "root"
    return info


def tar_entry(project: Path, relative: Path) -> Member:
    """The archive member for one entry; the mode is 0755 or 0644 by the executable bit, not the umask."""
    path = project / relative
    info = fixed_info(relative.as_posix())
    if path.is_symlink():
        info.type, info.linkname, info.mode = tarfile.SYMTYPE, os.readlink(path), 0o777
        return info, None
    if path.is_dir():
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        return info, None
    status = path.stat()
    info.size, info.mode = status.st_size, 0o755 if status.st_mode & 0o111 else 0o644
    return info, path


def content_digest(data: bytes | Path | None) -> bytes:
    """SHA-256 of a member's content, read in chunks from a file (a project may hold large assets)."""
    if isinstance(data, Path):
        with open(data, "rb") as handle:
            return hashlib.file_digest(handle, "sha256").digest()
    return hashlib.sha256(data or b"").digest()


def code_digest(members: list[Member]) -> str:
    """SHA-256 over what the archive holds: names, kinds, modes, link targets and contents."""
    digest = hashlib.sha256()
    for info, data in members:
        digest.update(f"{info.name}\0{info.type!r}\0{info.mode:o}\0{info.linkname}\0".encode())
        digest.update(content_digest(data))
    return digest.hexdigest()


def write_tar(handle: Any, members: Iterable[Member]) -> None:
    """Write the members, in the order given, as a POSIX tar."""
    with tarfile.open(fileobj=handle, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for info, data in members:
            if isinstance(data, Path):
                with open(data, "rb") as source:
                    archive.addfile(info, source)
            else:
                archive.addfile(info, io.BytesIO(data) if data is not None else None)


def code_archive(spec: Spec) -> tuple[Path, str]:
    """The project's deterministic .tar.gz, cached by its content digest; returns it and the digest.

    The same content always gives the same bytes (sorted entries, fixed mtime and owners, a gzip header
    without name or time), so an archive found in the cache is the one this run would write.
    """
    members = [tar_entry(spec.project, relative) for relative in project_entries(spec.project, [spec.cache_dir])]
    digest = code_digest(members)
    path = spec.cache_dir / "code" / f"{digest[:32]}.tar.gz"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".tar.gz")
        try:
            with os.fdopen(handle, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
                write_tar(gz, members)
            os.chmod(temporary, 0o644)
            os.replace(temporary, path)  # atomic: a parallel fork writing the same bytes is harmless
        finally:
            Path(temporary).unlink(missing_ok=True)
    return path, digest


# --- cache key and locking -----------------------------------------------------------------------------

REQUIREMENT_INCLUDE = re.compile(r"^\s*(?:-r|--requirement|-c|--constraint)(?:\s+|\s*=\s*)(\S+)")


def requirement_inputs(path: Path, seen: set[Path] | None = None) -> list[tuple[str, str]]:
    """The requirements file and every file it includes (-r, -c), as (path, content), for the cache key."""
    seen = set() if seen is None else seen
    if path.resolve() in seen:
        return []
    seen.add(path.resolve())
    text = path.read_text()
    found = [(str(path), text)]
    for line in text.splitlines():
        match = REQUIREMENT_INCLUDE.match(line)
        if match and (path.parent / match.group(1)).is_file():
            found += requirement_inputs(path.parent / match.group(1), seen)
    return found


def wheelhouse_key(spec: Spec) -> str:
    """What decides the wheelhouse: the requirement inputs, the project's metadata and the target.

    Not the rest of the code: editing a view must not resolve again. The index is part of it, since
    another index may have other versions.
    """
    metadata = {name: (spec.project / name).read_text() for name in ("pyproject.toml", "setup.cfg", "setup.py")
                if (spec.project / name).is_file()}
    key = {
        "format": CACHE_FORMAT,
        "requirements": [(os.path.relpath(path, spec.project), text)
                         for path, text in (requirement_inputs(spec.requirements) if spec.requirements else [])],
        "project_metadata": metadata,
        "python_version": spec.target.python_version,
        "glibc": spec.target.glibc,
        "arch": spec.target.arch,
        "index_url": spec.index,
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32]


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive fcntl lock on path: the other forks (processes) wait until it is released."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --- running uv and pip --------------------------------------------------------------------------------


def tool_env() -> dict[str, str]:
    """The controller's environment without the pip and uv settings that would change what is shipped.

    pip's configuration files are skipped too (PIP_CONFIG_FILE=/dev/null): a controller's find-links or
    extra index must not slip other files into a wheelhouse. What reaches the network (certificates,
    proxies) is kept.
    """
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("PIP_", "UV_")) or key in KEPT_TOOL_SETTINGS}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1",
               PIP_NO_COLOR="1", NO_COLOR="1", UV_NO_CONFIG="1", UV_PYTHON_DOWNLOADS="never")
    return env


def run_tool(argv: list[str]) -> subprocess.CompletedProcess[str]:
    """Run uv or pip; the one place that starts a process (tests replace it to count the runs)."""
    try:
        return subprocess.run(argv, env=tool_env(), capture_output=True, text=True, timeout=TOOL_TIMEOUT,
                              check=False, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as error:
        command = " ".join([Path(argv[0]).name, *argv[1:4]])
        raise ArtifactError(f"{command} took longer than {TOOL_TIMEOUT}s") from error


def uv_binary() -> str:
    """The uv that requirements.txt installs next to Ansible (the uv package knows where), or one on PATH."""
    try:
        from uv import find_uv_bin

        return find_uv_bin()
    except (ImportError, FileNotFoundError):
        found = shutil.which("uv")
        if not found:
            raise ArtifactError("uv is not installed on the controller (requirements.txt pins it)") from None
        return found


def pip_command(*args: str) -> list[str]:
    """pip of the Python that runs Ansible (tool_env keeps it from reading pip's configuration)."""
    return [sys.executable, "-m", "pip", *args]


def tool_lines(output: str) -> list[str]:
    """The lines of uv's or pip's output that say what went wrong (uv's error and cause, pip's ERROR)."""
    lines = [line.strip() for line in output.splitlines()]
    wanted = [line for line in lines if re.match(r"(?i)(error|cause)\b:?", line) and line.lower() not in {
        "error: subprocess-exited-with-error", "error: metadata-generation-failed"}]
    return wanted or [line for line in lines if line][-1:]


def tool_message(output: str) -> str:
    """One line for the task's message."""
    return " ".join(dict.fromkeys(tool_lines(output)))


# --- resolution ----------------------------------------------------------------------------------------

LOCK_LINE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")


def parse_lock(text: str) -> list[Pin]:
    """uv's compiled requirements (no header, no annotations, hashes) as pins, sorted by name."""
    pins = []
    for line in text.replace("\\\n", " ").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = LOCK_LINE.match(line)
        if not match:
            raise ArtifactError(f"cannot ship {line.split()[0]!r}: only packages from an index can be locked")
        pins.append(Pin(canonicalize_name(match.group(1)), match.group(2), tuple(re.findall(r"--hash=(\S+)", line))))
    return sorted(pins, key=lambda pin: pin.name)


def resolve(spec: Spec, sources: list[Path], what: str) -> list[Pin]:
    """Lock the sources for the target with uv: markers and wheel tags are the target's, not the controller's."""
    if not sources:
        return []
    target = spec.target
    done = run_tool([
        uv_binary(), "pip", "compile", "--quiet", "--color", "never", "--no-config", "--no-python-downloads",
        "--python", sys.executable, "--python-version", target.python_version,
        "--python-platform", target.uv_platform, "--default-index", spec.index,
        "--no-header", "--no-annotate", "--generate-hashes", *map(str, sources),
    ])
    if done.returncode != 0:
        raise ArtifactError(f"{spec.name}: cannot resolve {what} for {target.describe()}: "
                            f"{tool_message(done.stderr + done.stdout)}")
    try:
        return parse_lock(done.stdout)
    except ArtifactError as error:
        raise ArtifactError(f"{spec.name}: {what}: {error}") from None


def build_requires(pyproject: Path) -> list[str]:
    """[build-system] requires, or what pip assumes without one, so the host can build the project offline."""
    system = tomllib.loads(pyproject.read_text()).get("build-system")
    if not isinstance(system, dict) or "requires" not in system:
        return ["setuptools>=40.8.0", "wheel"]
    return [str(requirement) for requirement in system["requires"]]


# --- wheels --------------------------------------------------------------------------------------------

MISSING = re.compile(r"No matching distribution found for ([A-Za-z0-9][A-Za-z0-9._-]*)")


def download_wheels(spec: Spec, pins: list[Pin], wheels: Path, work: Path) -> None:
    """Download the target's binary wheel of every pin; build the pure-Python ones that have only an sdist.

    pip stops at the first package without a wheel, so that one is built from its sdist and pip is run
    again for the rest (files already downloaded are not fetched twice).
    """
    remaining = {pin.name: pin for pin in pins}
    target = spec.target
    while remaining:
        listing = work / "download.txt"
        listing.write_text("".join(pin.requirement() + "\n" for pin in remaining.values()))
        done = run_tool(pip_command(
            "download", "--no-deps", "--only-binary=:all:", "--python-version", target.python_version,
            "--implementation", "cp", "--abi", target.abi, *(f"--platform={tag}" for tag in target.pip_platforms),
            "--index-url", spec.index, "--dest", str(wheels), "--requirement", str(listing),
        ))
        if done.returncode == 0:
            return
        output = done.stderr + done.stdout
        missing = MISSING.search(output)
        name = canonicalize_name(missing.group(1)) if missing else None
        if name not in remaining:
            raise ArtifactError(f"{spec.name}: cannot download the wheels for {target.describe()}: "
                                f"{tool_message(output)}")
        build_pure_wheel(spec, remaining.pop(name), wheels, work)


def build_pure_wheel(spec: Spec, pin: Pin, wheels: Path, work: Path) -> None:
    """Build a pin that has no wheel for the target from its sdist; only a pure-Python wheel is kept."""
    out = Path(tempfile.mkdtemp(dir=work, prefix="sdist-"))
    listing = out / "requirement.txt"
    listing.write_text(pin.requirement() + "\n")
    done = run_tool(pip_command(
        "wheel", "--no-deps", "--no-binary", pin.name, "--index-url", spec.index, "--wheel-dir", str(out),
        "--requirement", str(listing),
    ))
    why = f"{spec.name}: {pin} has no wheel for {spec.target.describe()}"
    if done.returncode != 0:
        raise ArtifactError(f"{why}, and building its sdist on the controller failed: "
                            f"{tool_message(done.stderr + done.stdout)}")
    built = sorted(out.glob("*.whl"))
    if len(built) != 1:
        raise ArtifactError(f"{why}, and building its sdist gave {len(built)} wheels instead of one")
    tags = parse_wheel_filename(built[0].name)[3]
    if PURE_TAG not in tags or any(tag.abi != "none" or tag.platform != "any" for tag in tags):
        raise ArtifactError(f"{why}, and its sdist builds a platform-specific wheel ({built[0].name}): only "
                            "pure-Python sdists are built on the controller; publish a wheel for the target")
    shutil.move(str(built[0]), wheels / built[0].name)


def wheel_files(wheels: Path) -> dict[tuple[str, Version], Path]:
    """The wheels of the wheelhouse by (canonical name, version): 1.0 and 1.0.0 are one version."""
    found = {}
    for path in sorted(wheels.glob("*.whl")):
        try:
            name, version, _, _ = parse_wheel_filename(path.name)
        except InvalidWheelFilename:
            continue
        found[(str(name), version)] = path
    return found


def lock_text(spec: Spec, pins: list[Pin], wheels: Path) -> str:
    """requirements.lock: every pin with the SHA-256 of the very wheel shipped, for pip's --require-hashes."""
    files = wheel_files(wheels)
    lines = []
    for pin in pins:
        path = files.get((pin.name, Version(pin.version)))
        if path is None:
            raise ArtifactError(f"{spec.name}: {pin} was downloaded but no wheel of it is in the wheelhouse")
        lines.append(f"{pin} \\\n    --hash=sha256:{hashlib.sha256(path.read_bytes()).hexdigest()}\n")
    return "".join(lines)


def wheelhouse_members(work: Path, locks: dict[str, str]) -> list[Member]:
    """The wheelhouse tar's members, sorted, with fixed owners and mtimes: the locks and wheels/."""
    members: list[Member] = []
    for name, text in sorted(locks.items()):
        info = fixed_info(name)
        data = text.encode()
        info.size, info.mode = len(data), 0o644
        members.append((info, data))
    members.append(tar_entry(work, Path("wheels")))
    members += [tar_entry(work, Path("wheels") / path.name) for path in sorted((work / "wheels").glob("*.whl"))]
    return members


def build_wheelhouse(spec: Spec, entry: Path, work: Path) -> dict[str, Any]:
    """Resolve, download and pack into entry/: wheelhouse.tar and meta.json (what a cache hit returns)."""
    sources = [path for path in (spec.requirements, spec.pyproject) if path]
    pins = resolve(spec, sources, "the requirements")
    build_pins: list[Pin] = []
    if spec.pyproject:
        listing = work / "build-requires.in"
        listing.write_text("".join(line + "\n" for line in build_requires(spec.pyproject)))
        build_pins = resolve(spec, [listing], "the project's [build-system] requires")
    wheels = work / "wheels"
    wheels.mkdir()
    download_wheels(spec, pins, wheels, work)
    # Apart: the build requirements may pin another version of a runtime package (both wheels are shipped).
    download_wheels(spec, [pin for pin in build_pins if pin not in pins], wheels, work)
    locks = {"requirements.lock": lock_text(spec, pins, wheels)}
    if spec.pyproject:
        locks["build-requirements.lock"] = lock_text(spec, build_pins, wheels)
    with open(entry / "wheelhouse.tar", "wb") as handle:
        write_tar(handle, wheelhouse_members(work, locks))
    meta = {"packages": [str(pin) for pin in pins], "build_packages": [str(pin) for pin in build_pins]}
    (entry / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return meta


def wheelhouse(spec: Spec) -> tuple[Path, dict[str, Any], bool]:
    """The cached wheelhouse of spec's inputs, built under the entry's lock when missing.

    Returns the archive, its meta data and whether it came from the cache. The entry is built in a
    temporary directory beside it and renamed into place when complete; on any failure the temporary
    directory goes, so the cache never holds a partial entry.
    """
    key = wheelhouse_key(spec)
    root = spec.cache_dir / "wheelhouses"
    final = root / key
    with locked(root / f"{key}.lock"):
        if (final / "meta.json").is_file():
            return final / "wheelhouse.tar", json.loads((final / "meta.json").read_text()), True
        for stale in root.glob(f".tmp-{key}-*"):  # left by a run that was killed
            shutil.rmtree(stale, ignore_errors=True)
        shutil.rmtree(final, ignore_errors=True)
        temporary = Path(tempfile.mkdtemp(dir=root, prefix=f".tmp-{key}-"))
        try:
            (temporary / "entry").mkdir()
            (temporary / "work").mkdir()
            meta = build_wheelhouse(spec, temporary / "entry", temporary / "work")
            os.rename(temporary / "entry", final)
        finally:
            shutil.rmtree(temporary, ignore_errors=True)
    return final / "wheelhouse.tar", meta, False


# --- identities ----------------------------------------------------------------------------------------


def short_hash(data: dict[str, Any]) -> str:
    """16 hex digits of SHA-256 over canonical JSON."""
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def build_artifacts(spec: Spec) -> dict[str, Any]:
    """Everything the task returns: the archives, the identities, the pinned packages."""
    archive, digest = code_archive(spec)
    tar, meta, cached = wheelhouse(spec)
    install_project = spec.pyproject is not None
    lock = {"packages": meta["packages"], "build_packages": meta["build_packages"]}
    release = short_hash({"code": digest, "lock": lock, "python_version": spec.target.python_version,
                          "build": list(spec.build)})
    env_key = short_hash({"lock": lock, "python_version": spec.target.python_version,
                          "code": digest if install_project else None})
    return {
        "release": release, "env_key": env_key, "code_archive": str(archive), "wheelhouse_archive": str(tar),
        "install_project": install_project, "packages": meta["packages"], "cached": cached,
    }


class ActionModule(ActionBase):
    """Ansible entry point: runs on the controller only and changes nothing on the host."""

    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        """Validate the arguments, build (or find in the cache) the artifacts, return them; changed is false."""
        result = super().run(tmp, task_vars)
        _, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        args = dict(args)
        if not os.path.isabs(os.path.expanduser(args["project"])):
            args["project"] = self._loader.path_dwim(args["project"])
        try:
            result.update(build_artifacts(make_spec(args)))
        except ArtifactError as error:
            result.update(failed=True, msg=str(error))
        result["changed"] = False
        return result
