"""A one-off command of the test shop (playbooks/run.yml): says who and where it runs, and its secret,
which the play must show starred; with --fail it exits 3 after saying so."""

import getpass
import os
import sys

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Print the user, the release, the greeting and the secret; --fail exits 3."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--fail", action="store_true")

    def handle(self, *args, **options) -> None:
        self.stdout.write(f"user {getpass.getuser()}")
        self.stdout.write(f"release {os.getcwd()}")
        self.stdout.write(f"greeting {os.environ.get('SHOP_GREETING', '')}")
        self.stdout.write(f"secret {settings.SECRET_KEY}")
        if options["fail"]:
            self.stderr.write("failing on purpose")
            sys.exit(3)
