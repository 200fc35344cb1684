"""A long-running process of the test shop (its `processes`), as a queue's worker would be.

Every second it writes what it sees to heartbeat-<instance>.json in the state directory: its pid, the
release it runs (its working directory), the shop's version, a value of the app's environment and whether
its secret is set (never the secret). On SIGTERM it finishes the beat it is in, notes a graceful stop in
stopped-<instance>.json and exits 0, as a worker finishes its task; the tests read both files.
"""

import json
import os
import signal
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand
from shop.version import VERSION


def write(path: Path, values: dict) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(values))
    temporary.rename(path)


class Command(BaseCommand):
    help = "Write a heartbeat to the state directory every second until SIGTERM."

    def handle(self, *args, **options) -> None:
        stopping: list[int] = []
        signal.signal(signal.SIGTERM, lambda number, frame: stopping.append(number))
        instance = os.environ.get("PROCESS_INSTANCE", "0")
        state = Path(os.environ["STATE_DIRECTORY"])
        seen = {"pid": os.getpid(), "release": os.getcwd(), "version": VERSION,
                "greeting": os.environ.get("SHOP_GREETING", ""), "secret_set": bool(settings.SECRET_KEY)}
        self.stdout.write(f"heartbeat {instance} of release {seen['release']} (version {VERSION})", ending="\n")
        self.stdout.flush()
        while not stopping:
            write(state / f"heartbeat-{instance}.json", {**seen, "time": time.time()})
            time.sleep(1)
        write(state / f"stopped-{instance}.json", {**seen, "graceful": True, "time": time.time()})
        self.stdout.write(f"heartbeat {instance} stopped gracefully", ending="\n")
