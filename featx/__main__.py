"""``python -m featx``: the command line."""

from .cli import entry

entry()
