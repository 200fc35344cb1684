"""Allow ``python -m headrace``."""

from headrace.cli import main

raise SystemExit(main())
