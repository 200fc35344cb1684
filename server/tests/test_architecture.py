"""The package's shape: no import cycles, the request path layered one way, one table of options."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from import_graph import PACKAGE, find_cycle, import_graph

from headrace.config import OPTIONS, Config, build_parser, load_toml

# The request path, lowest first: a module may import only modules below it.
LAYERS = ["transport", "protocol", "wsgi", "worker", "bootstrap"]


def test_no_import_cycle():
    assert find_cycle(import_graph()) is None


def test_the_cycle_finder_finds_cycles(tmp_path):
    (tmp_path / "a.py").write_text("from headrace import b\n")
    (tmp_path / "b.py").write_text("def f():\n    from headrace.c import x\n")
    (tmp_path / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import headrace.a\n")
    graph = import_graph(tmp_path)
    assert graph == {"a": {"b"}, "b": {"c"}, "c": {"a"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]


def test_requests_flow_one_way():
    graph = import_graph()
    for index, module in enumerate(LAYERS):
        above = set(LAYERS[index + 1 :])
        assert not graph[module] & above, f"{module} imports {graph[module] & above}, a layer above it"
    assert graph["transport"] == set(), "the transport knows nothing of HTTP or WSGI"


def test_every_module_is_in_the_readme_layout():
    readme = (PACKAGE.parent.parent / "README.md").read_text()
    layout = readme.split("## Layout", 1)[1]
    listed = set(re.findall(r"^\| `(\w+)\.py` \|", layout, re.M))
    assert listed == {p.stem for p in PACKAGE.glob("*.py")} - {"__init__", "__main__"}


# -- the option table -------------------------------------------------------------------
def test_config_is_derived_from_the_option_records():
    assert [f.name for f in dataclasses.fields(Config)] == [o.name for o in OPTIONS]
    defaults = Config()
    for option in OPTIONS:
        assert getattr(defaults, option.name) == option.default


def test_every_option_is_a_flag_and_in_the_readme():
    readme = (PACKAGE.parent.parent / "README.md").read_text()
    flags = {flag for action in build_parser()._actions for flag in action.option_strings}
    for option in OPTIONS:
        if option.positional:
            continue
        assert option.flag in flags
        assert f"| `{option.flag}" in readme, f"{option.flag} missing from the README's option table"


def test_the_ansible_role_config_keys_load(tmp_path):
    """The keys roles/headrace renders into /etc/headrace/<app>.toml, with its value types."""
    path = Path(tmp_path) / "app.toml"
    path.write_text('app = "/srv/app.wsgi"\ncallable = "application"\nworkers = 2\nthreads = 1\n'
                    'root_path = "/app"\nforwarded_allow_ips = "unix"\nkeep_alive = 5\ngraceful_timeout = 30\n'
                    'timeout = 30\nlog_level = "info"\nmax-requests = 100\n')
    values = load_toml(str(path))
    assert values["keep_alive"] == 5.0 and isinstance(values["keep_alive"], float)
    assert values["max_requests"] == 100 and values["forwarded_allow_ips"] == "unix"


@pytest.mark.parametrize("option", [o for o in OPTIONS if o.minimum is not None], ids=lambda o: o.name)
def test_minimums_apply_to_both_sources(option):
    from headrace.errors import ConfigError

    below = option.kind(option.minimum) - 1
    with pytest.raises(ConfigError, match=f"^{option.flag}: must be at least"):
        option.parse(str(below), from_cli=True)
    with pytest.raises(ConfigError, match=f"^{option.name}: must be at least"):
        option.parse(below, from_cli=False)
