"""The lab inventory of `make deploy` passes the validation plays.

`make deploy` is the first thing a new user runs; an inventory that only fails once the lab's containers
are up (a project path the role cannot find, a database app without its host) would greet them with an
error after minutes of image building. Validation runs on the controller, so this needs no container: every
host's ansible_host is pointed at a container that does not exist, and any task that tried to reach one
would fail the run.
"""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"


def test_lab_inventory_passes_validation() -> None:
    result = subprocess.run(
        [str(ANSIBLE_PLAYBOOK), "-i", "inventories/lab", "playbooks/validate.yml",
         "-e", f"ansible_host=no-such-container-{uuid.uuid4().hex}"],
        cwd=PROJECT_DIR, capture_output=True, text=True, check=False, timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "failed=0" in output and "unreachable=0" in output, output
    # The web servers' and the balancer's validation ran (a recap line with tasks that passed).
    recap = dict(re.findall(r"^(lab-\S+)\s*: ok=(\d+)", output, re.MULTILINE))
    assert {host for host, ok in recap.items() if int(ok) > 0} >= {
        "lab-web1", "lab-web2", "lab-web3", "lab-balancer"}, output
