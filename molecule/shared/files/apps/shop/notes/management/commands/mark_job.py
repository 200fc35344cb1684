"""A scheduled job of the test shop (its `schedule`): records in the app's database the scheduled time it
runs for (WSGI_JOB_SCHEDULED_FOR, which job-run sets) and the host that ran it, so that a test can check
that each time ran exactly once across the fleet."""

import os
import socket

from django.core.management.base import BaseCommand
from django.db import connection


class Command(BaseCommand):
    help = "Record the scheduled time this run is for, and the host."

    def handle(self, *args, **options) -> None:
        scheduled = os.environ["WSGI_JOB_SCHEDULED_FOR"]
        with connection.cursor() as cursor:
            cursor.execute("CREATE TABLE IF NOT EXISTS job_marks (scheduled_for text, host text, pid integer)")
            cursor.execute("INSERT INTO job_marks VALUES (%s, %s, %s)", [scheduled, socket.gethostname(), os.getpid()])
        self.stdout.write(f"marked {scheduled} on {socket.gethostname()}")
