"""Where the apache role's ``config`` entry point writes each file, and which template it renders.

Every role that changes Apache's configuration goes through that one entry point, naming a template and a
kind of file (``conf``, ``site``, ``ports``); the destination and the link that enables it come from the
apache role's OS-specific layout, so no other role spells Apache's paths. The mapping is here, where a
unit test pins it and bad input is refused with the field's name before any host changes.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ansible.errors import AnsibleFilterError

TEMPLATE_SUFFIX = ".j2"


def _fail(index: int | None, field: str, value: Any, allowed: str) -> AnsibleFilterError:
    """An error that names the entry of apache_config_files, the field and what is allowed."""
    where = "apache_config_files" if index is None else f"apache_config_files[{index}]"
    return AnsibleFilterError(f"{where}: field '{field}' is {value!r}; allowed: {allowed}")


def _template_path(template: str, parent_role_paths: Sequence[str]) -> str:
    """The template's path: absolute as given, else in the calling role's templates/ directory.

    The caller's own role_path cannot be passed in: variables given to include_role are templated inside
    the included role, where role_path is the apache role's. ansible_parent_role_paths (set by
    include_role, the calling role first) names the caller. Without a calling role the name is left to
    the template lookup's own search path.
    """
    if posixpath.isabs(template) or not parent_role_paths:
        return template
    return posixpath.join(str(parent_role_paths[0]), "templates", template)


def _file_name(index: int, entry: Mapping[str, Any], template: str) -> str:
    """The file's name: the name field, else the template's base name without .j2."""
    name = entry.get("name")
    if name is None:
        name = posixpath.basename(template)
        name = name.removesuffix(TEMPLATE_SUFFIX)
    if not isinstance(name, str) or not name or "/" in name or name in (".", ".."):
        raise _fail(index, "name", name, "a file name without '/' (default: the template's name without .j2)")
    return name


def apache_config_targets(
    files: Any, layout: Mapping[str, Mapping[str, str]], parent_role_paths: Sequence[str] | None = None
) -> list[dict[str, str]]:
    """Turn apache_config_files into [{template, dest, link?}], one per file, in the given order.

    files: [{template, kind, name?}]. layout: kind -> {path} (one fixed file, e.g. ports.conf) or
    {dir, link_dir?} (the file goes to dir/<name>; link_dir/<name> is the symlink that enables it).
    """
    kinds = ", ".join(sorted(layout))
    if not isinstance(files, Sequence) or isinstance(files, (str, bytes)) or not files:
        raise _fail(None, "apache_config_files", files, "a non-empty list of {template, kind, name}")
    targets = []
    for index, entry in enumerate(files):
        if not isinstance(entry, Mapping):
            raise _fail(index, "entry", entry, "a mapping with template, kind and optionally name")
        unknown = sorted(set(entry) - {"template", "kind", "name"})
        if unknown:
            raise _fail(index, unknown[0], entry[unknown[0]], "only the fields template, kind and name")
        template = entry.get("template")
        if not isinstance(template, str) or not template.strip():
            raise _fail(index, "template", template, "a template file name in the calling role's templates/")
        kind = entry.get("kind")
        if not isinstance(kind, str) or kind not in layout:
            raise _fail(index, "kind", kind, kinds)
        place = layout[kind]
        target = {"template": _template_path(template, parent_role_paths or [])}
        if "path" in place:
            if "name" in entry:
                raise _fail(index, "name", entry["name"], f"no name for kind {kind!r}: its file is {place['path']}")
            target["dest"] = str(place["path"])
        else:
            name = _file_name(index, entry, template)
            target["dest"] = posixpath.join(str(place["dir"]), name)
            if place.get("link_dir"):
                target["link"] = posixpath.join(str(place["link_dir"]), name)
        targets.append(target)
    dests = [target["dest"] for target in targets]
    for index, dest in enumerate(dests):
        if dest in dests[:index]:
            raise _fail(index, "name", posixpath.basename(dest), "each file once in one call")
    return targets


def apache_config_entries(targets: Sequence[Mapping[str, Any]], contents: Sequence[str],
                          removed: Sequence[str] = ()) -> list[dict[str, Any]]:
    """The wsgi_files entries of one call of the config entry point: every file (root's, 0644), then the
    links that enable them, then the paths to remove (absolute, inside Apache's configuration), in one
    module run, which puts them all back if configtest rejects the result."""
    if len(targets) != len(contents):
        raise AnsibleFilterError(f"apache_config_entries: {len(targets)} targets but {len(contents)} contents")
    for path in removed:
        if not posixpath.isabs(str(path)):
            raise AnsibleFilterError(f"apache_config_remove: {path!r}; allowed: an absolute path")
    files = [{"path": target["dest"], "content": content, "owner": "root", "group": "root", "mode": "0644"}
             for target, content in zip(targets, contents)]
    links = [{"path": target["link"], "state": "link", "src": target["dest"]} for target in targets if "link" in target]
    return files + links + [{"path": str(path), "state": "absent"} for path in removed]


class FilterModule:
    """Ansible entry point: the filters of the apache role."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"apache_config_targets": apache_config_targets, "apache_config_entries": apache_config_entries}
