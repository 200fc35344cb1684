"""Read the lab inventory for scripts/lab.sh: the containers to run, and the URLs that answer.

The inventory is the single source of truth for the lab, so the shell script asks this helper instead of
keeping a host list of its own.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import yaml

INVENTORY = Path(__file__).resolve().parent.parent / "inventories" / "lab"


def walk(group: dict) -> Iterator[tuple[str, dict]]:
    """Every (host, vars) of a group and its children, as written in hosts.yml."""
    for name, hostvars in (group.get("hosts") or {}).items():
        yield name, hostvars or {}
    for child in (group.get("children") or {}).values():
        yield from walk(child or {})


def lab_hosts() -> dict[str, dict]:
    hosts: dict[str, dict] = {}
    for name, hostvars in walk(yaml.safe_load((INVENTORY / "hosts.yml").read_text())["all"]):
        hosts.setdefault(name, hostvars)
    return hosts


def print_hosts() -> None:
    """name, image, published HTTP and HTTPS ports of each host; '-' for a port it does not publish (the
    database host serves no HTTP, only the balancer HTTPS)."""
    for name, hostvars in lab_hosts().items():
        print(name, hostvars["lab_image"], hostvars.get("lab_http_port", "-"), hostvars.get("lab_https_port", "-"))


def print_urls() -> None:
    """One curl command per app of each site on port 80: through the balancer first, then each web host."""
    inventory = json.loads(
        subprocess.run(
            [str(Path(sys.executable).parent / "ansible-inventory"), "-i", str(INVENTORY), "--list"],
            check=True, capture_output=True, text=True,
        ).stdout
    )
    hostvars = inventory["_meta"]["hostvars"]
    balancers = inventory.get("balancers", {}).get("hosts", [])
    webservers = inventory.get("webservers", {}).get("hosts", [])
    lab = lab_hosts()
    for name in balancers + webservers:
        # A balancer serves the sites of the web servers behind it.
        sites = hostvars.get(webservers[0] if name in balancers and webservers else name, {}).get("wsgi_sites", [])
        role = "balancer" if name in balancers else "web"
        for site in sites:
            if int(site.get("port", 80)) != 80:
                continue
            for app in site.get("apps", []):
                url = f"http://127.0.0.1:{lab[name]['lab_http_port']}{app['mount']}"
                print(f"{name:<13} {role:<8} {app['mode']:<8}  curl -H 'Host: {site['server_name']}' {url}")
                # The balancer ends TLS for the sites with tls (self-signed in the lab: -k).
                https_port = lab[name].get("lab_https_port")
                if site.get("tls") and https_port:
                    server_name = site["server_name"]
                    print(f"{name:<13} {role:<8} {app['mode']:<8}  curl -k --resolve {server_name}:{https_port}:127.0.0.1 "
                          f"https://{server_name}:{https_port}{app['mount']}")


if __name__ == "__main__":
    {"hosts": print_hosts, "urls": print_urls}[sys.argv[1]]()
