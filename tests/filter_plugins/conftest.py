"""Make the filter plugins importable by module name, the way Ansible loads them (by path)."""

import sys
from pathlib import Path

PLUGIN_DIR = Path(__file__).resolve().parents[2] / "filter_plugins"
if str(PLUGIN_DIR) not in sys.path:
    sys.path.insert(0, str(PLUGIN_DIR))
