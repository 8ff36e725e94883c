"""``python -m featx``: the command line."""

from .cli import main

raise SystemExit(main())
