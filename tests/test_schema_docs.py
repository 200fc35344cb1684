"""What the wsgi_sites field table generates is committed up to date, and ansible-doc shows every field.

scripts/gen_schema_docs.py renders FIELDS (filter_plugins/wsgi_sites.py) into roles/wsgi/meta/argument_specs.yml
and the table in roles/wsgi/README.md. A field added to or changed in the table without regenerating
fails here, and so does a hand edit of a generated block.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "gen_schema_docs.py"


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_schema_docs", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gen = _load_generator()
PLUGIN = gen.load_plugin()


def test_committed_spec_and_readme_match_the_table() -> None:
    diffs = gen.run(check=True)
    assert diffs == [], "run scripts/gen_schema_docs.py:\n" + "\n".join(diffs)


def test_check_mode_of_the_script_passes_on_the_committed_files() -> None:
    result = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture()
def copies(tmp_path: Path) -> dict[str, Path]:
    """The plugin and both generated files, copied so a test can change them."""
    paths = {"plugin": gen.PLUGIN, "spec": gen.SPEC, "readme": gen.README}
    return {name: Path(shutil.copy(path, tmp_path / f"{name}{path.suffix}")) for name, path in paths.items()}


def _targets(copies: dict[str, Path]) -> tuple:
    return ((copies["spec"], gen.render_spec), (copies["readme"], gen.render_readme))


def test_a_changed_field_makes_both_files_stale(copies: dict[str, Path]) -> None:
    plugin = copies["plugin"]
    text = plugin.read_text()
    changed = text.replace('doc="Threads per daemon process, 1-1000."', 'doc="Threads per daemon process, 1 to 1000."')
    assert changed != text
    plugin.write_text(changed)
    before = {name: path.read_text() for name, path in copies.items()}
    diffs = gen.run(check=True, targets=_targets(copies), plugin_path=plugin)
    assert len(diffs) == 2 and all("1 to 1000" in diff for diff in diffs), diffs
    assert {name: path.read_text() for name, path in copies.items()} == before, "--check must change nothing"
    gen.run(check=False, targets=_targets(copies), plugin_path=plugin)
    assert gen.run(check=True, targets=_targets(copies), plugin_path=plugin) == []
    assert "1 to 1000" in copies["spec"].read_text() and "1 to 1000" in copies["readme"].read_text()


def test_a_hand_edit_of_a_generated_block_is_stale(copies: dict[str, Path]) -> None:
    readme = copies["readme"]
    readme.write_text(readme.read_text().replace("| `wsgi_processes` | app | daemon | `2` |", "| `wsgi_processes` | app | daemon | `3` |"))
    spec = copies["spec"]
    spec.write_text(spec.read_text().replace("            port:\n              type: raw\n",
                                                 "            port:\n              type: int\n"))
    diffs = gen.run(check=True, targets=_targets(copies), plugin_path=copies["plugin"])
    assert len(diffs) == 2, diffs


def test_markers_are_required(copies: dict[str, Path]) -> None:
    readme = copies["readme"]
    readme.write_text(readme.read_text().replace(gen.README_END, ""))
    with pytest.raises(SystemExit, match="expected one"):
        gen.run(check=True, targets=_targets(copies), plugin_path=copies["plugin"])


def test_spec_types_are_as_permissive_as_the_filter() -> None:
    """Ansible checks suboptions only under dict or list/elements dict; raw keeps the filter's messages."""
    spec = gen.argument_spec(PLUGIN)
    assert spec["type"] == "raw" and spec["options"]["apps"]["type"] == "raw"
    for name in ("port", "processes", "wsgi_processes", "threads", "workers"):
        options = spec["options"] if name == "port" else spec["options"]["apps"]["options"]
        assert options[name]["type"] == "raw", name


ANSIBLE_DOC = shutil.which("ansible-doc", path=os.path.dirname(sys.executable))


@pytest.mark.skipif(ANSIBLE_DOC is None, reason="ansible-doc not installed next to this Python")
def test_ansible_doc_documents_every_field(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("ANSIBLE_")}
    env.update(ANSIBLE_NOCOLOR="1", ANSIBLE_HOME=str(tmp_path))
    # By its collection name, as a user of the collection asks (the checkout's ansible.cfg has collections/ on
    # its collections_path); the short name would find the role a second time through roles_path.
    result = subprocess.run([ANSIBLE_DOC, "-t", "role", "wsgi_hosting.debian.wsgi"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    entry_points = result.stdout.split("ENTRY POINT:")[1:]
    # The settings entry point (the plays that do not run the role) takes the settings other roles take from
    # this one, and status (playbooks/status.yml) reads the model the validation built, not wsgi_sites; every
    # other one takes wsgi_sites and documents each of its fields.
    with_sites = [entry for entry in entry_points
                  if not entry.lstrip().startswith(("*settings*", "*status*"))]
    assert len(entry_points) - len(with_sites) == 2, [entry.split("\n", 1)[0] for entry in entry_points]
    for entry_point in with_sites:
        flat = " ".join(entry_point.split())
        for field in PLUGIN.FIELDS:
            assert re.search(rf"^\s+[-=] {field.name}\s", entry_point, re.MULTILINE), (field.name, entry_point)
            assert " ".join(field.doc.split()[:5]) in flat, (field.name, field.doc, entry_point)
    assert len(with_sites) == 2  # main, validate (releases, rollback_check and rollback are the releases role's)
