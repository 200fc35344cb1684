"""Errors and exit statuses shared by the command line, the master and the workers.

They live apart from every module that raises or checks them, so that none of those has
to import another just for a name (that is how import cycles start).
"""

from __future__ import annotations

USAGE_ERROR = 2
"""Exit status for an invalid option, config file or address: nothing was bound."""

BOOT_FAILURE = 3
"""Exit status of a worker that cannot load the application, and of the master when none can."""


class ConfigError(Exception):
    """An invalid option or config file; the message is a single line for the user."""
