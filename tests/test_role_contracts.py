"""Each role's README states what the role takes and what it publishes, and the docs cannot drift.

Issue 21: the data flows one way. The wsgi role's validation builds one model per host (wsgi_model), the
composition point (playbooks/vars/*.yml) hands each role its inputs, and every role documents, in its
README:

- "## Takes": tables whose first header cell is "variable", listing every option of every entry point
  of meta/argument_specs.yml (and nothing else). A table may have a "handed over by" column: the
  variables with something in it are exactly the role's options that playbooks/vars/*.yml sets. The
  generated wsgi_sites field table (scripts/gen_schema_docs.py, tests/test_schema_docs.py) is not a
  "Takes" table: its rows are fields, not variables.
- "## Publishes": what it leaves for other roles under documented names. The names in the first column
  of its "variable" tables are set by the role itself (defaults, vars, set_fact or register); those of its
  "handler" tables are handlers of handlers/main.yml; those of its "entry point" tables are task files. A
  role that publishes nothing says so in prose.

And a role does not look into other hosts' facts from its defaults (the composition point does): no
defaults/main.yml reads hostvars, except the documented allow-list below.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
ROLES_DIR = ROOT / "roles"
ROLES = sorted(path.name for path in ROLES_DIR.iterdir() if (path / "meta" / "argument_specs.yml").is_file())
COMPOSITION_POINT = sorted((ROOT / "playbooks" / "vars").glob("*.yml"))

# The generated wsgi_sites field tables of roles/wsgi/README.md (scripts/gen_schema_docs.py).
GENERATED_BLOCK = re.compile(r"<!-- BEGIN wsgi_sites fields.*?<!-- END wsgi_sites fields -->", re.DOTALL)
BACKTICKED = re.compile(r"`([^`]+)`")
VARIABLE_NAME = re.compile(r"[a-z_][a-z0-9_]*")
HANDED_OVER = "handed over by"

# Role defaults that still read other hosts' variables (hostvars), each with the reason it is still there.
# A role should take such a value from the composition point (playbooks/vars/*.yml) instead; moving one
# there means removing its entry here (test_the_hostvars_allow_list_is_current says so).
DEFAULTS_READING_HOSTVARS: dict[tuple[str, str], str] = {
    ("wsgi", "wsgi_trusted_proxies"): (
        "the balancers' addresses (each balancer's balancer_address host variable, else its ansible_host, "
        "else its name, through wsgi_balancer_addresses(hostvars)); not yet handed over by "
        "playbooks/vars/webservers.yml"
    ),
}


# --------------------------------------------------------------------------- reading the README


def readme(role: str) -> str:
    return (ROLES_DIR / role / "README.md").read_text()


def sections(text: str) -> dict[str, str]:
    """The level-2 sections of a Markdown text (heading -> body), fenced code blocks left alone."""
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    fenced = False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        if not fenced and line.startswith("## "):
            heading = line[3:].strip()
            assert heading not in found, f"section {heading!r} twice"
            current = found.setdefault(heading, [])
            continue
        if current is not None:
            current.append(line)
    return {heading: "\n".join(lines) for heading, lines in found.items()}


def section(role: str, heading: str) -> str:
    found = sections(GENERATED_BLOCK.sub("", readme(role)))
    assert heading in found, f"roles/{role}/README.md has no '## {heading}' section"
    return found[heading]


def cells(row: str) -> list[str]:
    """The cells of a Markdown table row; an escaped pipe (\\|) stays inside its cell."""
    inner = row.strip()
    inner = inner.removeprefix("|")
    inner = inner[:-1] if inner.endswith("|") and not inner.endswith("\\|") else inner
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", inner)]


def tables(text: str) -> Iterator[tuple[list[str], list[list[str]]]]:
    """Every Markdown table of a text: its header cells (lower case) and its rows' cells."""
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        if lines[index].lstrip().startswith("|") and index + 1 < len(lines) and re.fullmatch(
            r"\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*", lines[index + 1]
        ):
            header = [cell.lower() for cell in cells(lines[index])]
            index += 2
            rows = []
            while index < len(lines) and lines[index].lstrip().startswith("|"):
                rows.append(cells(lines[index]))
                index += 1
            yield header, rows
        else:
            index += 1


def first_column_names(text: str, kind: str) -> list[tuple[str, list[str], list[str]]]:
    """(name, header, row) for every backticked name in the first column of the tables whose first header
    cell is kind."""
    return [
        (name, header, row)
        for header, rows in tables(text)
        if header and header[0] == kind
        for row in rows
        for name in BACKTICKED.findall(row[0])
    ]


# --------------------------------------------------------------------------- reading the role


def options(role: str) -> dict[str, list[str]]:
    """Every option of every entry point of the role's argument specs: name -> entry points."""
    specs = yaml.safe_load((ROLES_DIR / role / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    found: dict[str, list[str]] = {}
    for entry_point, spec in specs.items():
        for name in spec.get("options") or {}:
            found.setdefault(name, []).append(entry_point)
    return found


def _set_in_tasks(node: Any) -> Iterator[str]:
    """The names a task list sets: set_fact keys and register names, in blocks too."""
    if isinstance(node, list):
        for item in node:
            yield from _set_in_tasks(item)
    elif isinstance(node, dict):
        if isinstance(node.get("register"), str):
            yield node["register"]
        for module in ("ansible.builtin.set_fact", "set_fact"):
            if isinstance(node.get(module), dict):
                yield from (key for key in node[module] if key != "cacheable")
        for value in node.values():
            if isinstance(value, list | dict):
                yield from _set_in_tasks(value)


def names_set_by(role: str) -> set[str]:
    """What the role itself defines: its defaults and vars files, and what its tasks and handlers set."""
    role_dir = ROLES_DIR / role
    names: set[str] = set()
    for kind in ("defaults", "vars"):
        for path in sorted((role_dir / kind).glob("*.yml")):
            names.update(yaml.safe_load(path.read_text()) or {})
    for kind in ("tasks", "handlers"):
        for path in sorted((role_dir / kind).glob("*.yml")):
            names.update(_set_in_tasks(yaml.safe_load(path.read_text())))
    return names


def handlers(role: str) -> set[str]:
    path = ROLES_DIR / role / "handlers" / "main.yml"
    if not path.is_file():
        return set()
    found: set[str] = set()
    for handler in yaml.safe_load(path.read_text()) or []:
        found.add(handler["name"])
        listen = handler.get("listen", [])
        found.update([listen] if isinstance(listen, str) else listen)
    return found


def composition_point_variables() -> set[str]:
    """The variables the composition point hands over (every playbooks/vars/*.yml file)."""
    names: set[str] = set()
    for path in COMPOSITION_POINT:
        names.update(yaml.safe_load(path.read_text()) or {})
    return names


def defaults_reading_hostvars() -> set[tuple[str, str]]:
    """(role, variable) for every role default whose value reads hostvars."""
    found: set[tuple[str, str]] = set()
    for role in ROLES:
        path = ROLES_DIR / role / "defaults" / "main.yml"
        if path.is_file():
            for name, value in (yaml.safe_load(path.read_text()) or {}).items():
                if re.search(r"\bhostvars\b", str(value)):
                    found.add((role, name))
    return found


# --------------------------------------------------------------------------- the tests


@pytest.mark.parametrize("role", ROLES)
def test_the_readme_has_takes_and_publishes(role: str) -> None:
    for heading in ("Takes", "Publishes"):
        assert section(role, heading).strip(), f"roles/{role}/README.md: '## {heading}' is empty"


@pytest.mark.parametrize("role", ROLES)
def test_takes_lists_every_option_of_the_argument_specs(role: str) -> None:
    entries = first_column_names(section(role, "Takes"), "variable")
    documented = {name for name, _, _ in entries}
    assert all(VARIABLE_NAME.fullmatch(name) for name in documented), sorted(documented)
    specified = options(role)
    missing = {name: specified[name] for name in set(specified) - documented}
    unknown = documented - set(specified)
    assert not missing and not unknown, (
        f"roles/{role}/README.md, '## Takes': options not in its tables: {missing}; "
        f"rows that are no option of meta/argument_specs.yml: {sorted(unknown)}"
    )


@pytest.mark.parametrize("role", ROLES)
def test_takes_names_what_the_composition_point_hands_over(role: str) -> None:
    handed_over = {
        name
        for name, header, row in first_column_names(section(role, "Takes"), "variable")
        if HANDED_OVER in header and row[header.index(HANDED_OVER)].strip()
    }
    expected = composition_point_variables() & set(options(role))
    assert handed_over == expected, (
        f"roles/{role}/README.md, '## Takes': the '{HANDED_OVER}' column names {sorted(handed_over)}, "
        f"playbooks/vars/*.yml sets {sorted(expected)}"
    )


@pytest.mark.parametrize("role", ROLES)
def test_published_variables_are_set_by_the_role(role: str) -> None:
    published = {name.split(".")[0] for name, _, _ in first_column_names(section(role, "Publishes"), "variable")}
    assert all(VARIABLE_NAME.fullmatch(name) for name in published), sorted(published)
    unset = published - names_set_by(role)
    assert not unset, (
        f"roles/{role}/README.md, '## Publishes' names {sorted(unset)}, which no defaults, vars, set_fact or "
        "register of the role sets"
    )


@pytest.mark.parametrize("role", ROLES)
def test_published_handlers_and_entry_points_exist(role: str) -> None:
    text = section(role, "Publishes")
    published_handlers = {name for name, _, _ in first_column_names(text, "handler")}
    assert published_handlers <= handlers(role), (
        f"roles/{role}/README.md publishes handlers {sorted(published_handlers - handlers(role))}, "
        "which handlers/main.yml does not have"
    )
    entry_points = {name for name, _, _ in first_column_names(text, "entry point")}
    missing = sorted(name for name in entry_points if not (ROLES_DIR / role / "tasks" / f"{name}.yml").is_file())
    assert not missing, f"roles/{role}/README.md publishes entry points without a task file: {missing}"


def test_the_contract_tables_are_found() -> None:
    """The parsing above finds what it checks (a renamed header would make the checks vacuous)."""
    assert {"wsgi_model", "wsgi_changed_proxy_apps"} <= {
        name for name, _, _ in first_column_names(section("wsgi", "Publishes"), "variable")
    }
    assert {"reload apache", "restart apache"} <= {
        name for name, _, _ in first_column_names(section("apache", "Publishes"), "handler")
    }
    assert "server_name" not in {name for name, _, _ in first_column_names(section("wsgi", "Takes"), "field")}
    assert cells(r"| `a \| b` | c |") == [r"`a \| b`", "c"]


def test_no_role_default_reads_hostvars() -> None:
    """A role does not look into other hosts' facts: the composition point does, and hands the result over."""
    offenders = defaults_reading_hostvars() - set(DEFAULTS_READING_HOSTVARS)
    assert not offenders, (
        f"role defaults reading hostvars: {sorted(offenders)}; take the value from the composition point "
        "(playbooks/vars/*.yml) instead"
    )


def test_the_hostvars_allow_list_is_current() -> None:
    stale = set(DEFAULTS_READING_HOSTVARS) - defaults_reading_hostvars()
    assert not stale, f"no longer reading hostvars, remove from DEFAULTS_READING_HOSTVARS: {sorted(stale)}"
