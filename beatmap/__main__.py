"""``python -m beatmap``: the command line."""

from beatmap.cli import entry_point

entry_point()
