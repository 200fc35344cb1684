"""roles/headrace/files/install.sh: the venv without pip, and a wheel installed with Debian's pip wheel.

The script runs here as the role runs it on a host (sh -c with the script's text), with this machine's
Python and Debian's pip wheel (python3-pip-whl, which python3-venv brings and CI installs), installing a
small wheel made by the test with a console script, as headrace's is: what a user sees is the command in
the venv's bin/, importable code, no pip in the venv, and a second run (a rebuilt wheel) installing again.
"""

from __future__ import annotations

import glob
import subprocess
import zipfile
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "roles" / "headrace" / "files" / "install.sh"
PIP_WHEEL_GLOB = "/usr/share/python-wheels/pip-*.whl"  # roles/headrace/vars/Debian.yml's headrace_pip_wheel_glob
PYTHON = "/usr/bin/python3"

pytestmark = pytest.mark.skipif(not glob.glob(PIP_WHEEL_GLOB) or not Path(PYTHON).exists(),
                                reason="needs Debian's python3 and python3-pip-whl (python3-venv)")


def make_wheel(directory: Path, greeting: str) -> Path:
    """A wheel of the module `demo` (demo.GREETING = greeting) with a console script `demo`."""
    wheel = directory / "demo-1.0-py3-none-any.whl"
    files = {
        "demo.py": f"GREETING = {greeting!r}\n\ndef main():\n    print(GREETING)\n",
        "demo-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n",
        "demo-1.0.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        "demo-1.0.dist-info/entry_points.txt": "[console_scripts]\ndemo = demo:main\n",
    }
    files["demo-1.0.dist-info/RECORD"] = "".join(f"{name},,\n" for name in files) + "demo-1.0.dist-info/RECORD,,\n"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return wheel


def install(venv: Path, wheel: Path, pip_wheel_glob: str = PIP_WHEEL_GLOB, mode: str = "apply",
            wheel_state: str = "new") -> subprocess.CompletedProcess:
    return subprocess.run(["/bin/sh", "-c", SCRIPT.read_text(), "install.sh", mode, wheel_state, PYTHON, str(venv),
                           str(wheel), pip_wheel_glob], capture_output=True, text=True, check=False)


def test_a_venv_without_pip_gets_the_wheel_and_its_command(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    result = install(venv, make_wheel(tmp_path, "hello"))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "installed demo-1.0-py3-none-any.whl\n"
    assert subprocess.run([venv / "bin" / "demo"], capture_output=True, text=True, check=True).stdout == "hello\n"
    assert not (venv / "bin" / "pip").exists()
    without_pip = subprocess.run([venv / "bin" / "python", "-c", "import pip"], capture_output=True, check=False)
    assert without_pip.returncode != 0


def test_a_rebuilt_wheel_of_the_same_version_is_installed_again(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    assert install(venv, make_wheel(tmp_path / "one", "first")).returncode == 0
    python_before = (venv / "bin" / "python").resolve()
    assert install(venv, make_wheel(tmp_path / "two", "second")).returncode == 0
    assert subprocess.run([venv / "bin" / "demo"], capture_output=True, text=True, check=True).stdout == "second\n"
    assert (venv / "bin" / "python").resolve() == python_before  # the venv was kept, not made anew


def test_without_a_pip_wheel_it_stops_and_says_what_brings_one(tmp_path: Path) -> None:
    result = install(tmp_path / "venv", make_wheel(tmp_path, "x"), str(tmp_path / "none-*.whl"))
    assert result.returncode == 1
    assert "python3-venv" in result.stderr
    assert not (tmp_path / "venv").exists()


def test_a_kept_wheel_the_venv_has_is_left_alone_and_one_it_lacks_installed(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    wheel = make_wheel(tmp_path, "hello")
    assert install(venv, wheel, wheel_state="kept").stdout == "installed demo-1.0-py3-none-any.whl\n"
    again = install(venv, wheel, wheel_state="kept")
    assert (again.returncode, again.stdout) == (0, "")
    (venv / ".installed-wheel").write_text("demo-0.9-py3-none-any.whl\n")  # the venv has another build
    assert install(venv, wheel, wheel_state="kept").stdout == "installed demo-1.0-py3-none-any.whl\n"


def test_a_dry_run_says_what_it_would_install_and_changes_nothing(tmp_path: Path) -> None:
    result = install(tmp_path / "venv", make_wheel(tmp_path, "x"), mode="dry-run")
    assert (result.returncode, result.stdout) == (0, "installed demo-1.0-py3-none-any.whl\n")
    assert not (tmp_path / "venv").exists()


def test_the_wheels_of_earlier_builds_go_once_the_new_one_is_in(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "demo-0.9-py3-none-any.whl").write_bytes(b"old build")
    wheel = make_wheel(wheels, "new")
    assert install(tmp_path / "venv", wheel).returncode == 0
    assert sorted(path.name for path in wheels.iterdir()) == ["demo-1.0-py3-none-any.whl"]


def test_bad_arguments_are_refused() -> None:
    result = install(Path("/nonexistent/venv"), Path("/x.whl"), mode="maybe")
    assert (result.returncode, result.stderr) == (2, "install.sh: apply|dry-run new|kept ..., not: maybe new\n")
