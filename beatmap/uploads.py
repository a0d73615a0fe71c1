"""Files that come through the dashboard: which upload is the layer, whether a shapefile came whole, and messages
in the page's words (the upload's own name, never its temporary copy; the page's fields, never a command-line flag).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import PurePath

#: The parts a shapefile needs beside its ``.shp``.
SHAPEFILE_PARTS = (".shx", ".dbf", ".prj")
#: Layer files an upload can be, besides a ``.shp`` with its parts.
LAYER_SUFFIXES = (".geojson", ".json", ".zip", ".gpkg", ".parquet", ".shp")

#: Command-line words in library messages, and what the Import page calls the same thing (longest first).
PAGE_WORDS: tuple[tuple[str, str], ...] = (
    ("--beat-id FIELD", "the Beat id field"),
    ("--block-id FIELD", "the Block id field"),
    ("--mapping FILE", "a mapping (build one below, or upload a saved one)"),
    ("--grid-m METRES", "a grid cell size"),
    ("--blocks FILE", "a block file"),
    ("--crs EPSG:3452", "EPSG:3452 in the CRS box"),
    ("--beat-id", "the Beat id field"),
    ("--block-id", "the Block id field"),
    ("--exclude-beats", "the beats to leave out"),
    ("--mapping", "the mapping"),
    ("--grid-m", "the grid cell size"),
    ("--blocks", "the block file"),
    ("--crs", "the CRS box"),
    ("--source", "the feed name"),
)


def layer_upload(names: Sequence[str]) -> tuple[str | None, str | None]:
    """Which of the uploaded files is the layer, or why none can be used: ``(name, None)`` or ``(None, problem)``.

    A shapefile is its ``.shp`` with the ``.shx``, ``.dbf`` and ``.prj`` of the
    same name, or all of them in a ``.zip``.
    """
    if not names:
        return None, "choose the file"
    by_suffix: dict[str, list[str]] = {}
    for name in names:
        by_suffix.setdefault(PurePath(name).suffix.lower(), []).append(name)
    shp = by_suffix.get(".shp", [])
    if len(shp) > 1:
        return None, "upload one shapefile at a time (one .shp with its .shx, .dbf and .prj, or one zip)"
    if shp:
        stem = PurePath(shp[0]).stem.lower()
        have = {PurePath(n).suffix.lower() for n in names if PurePath(n).stem.lower() == stem}
        missing = [s for s in SHAPEFILE_PARTS if s not in have]
        if missing:
            return None, (
                f"{shp[0]} came without its {', '.join(missing)}: upload the .shp with its .shx, .dbf and "
                ".prj (select them together), or a zip of them"
            )
        return shp[0], None
    layers = [n for n in names if PurePath(n).suffix.lower() in LAYER_SUFFIXES]
    if len(layers) != 1:
        return None, (
            "upload one layer: a GeoJSON, a GeoPackage, a GeoParquet, a zipped shapefile, or a .shp with "
            "its .shx, .dbf and .prj"
        )
    return layers[0], None


def for_page(message: str, names: Mapping[str, str]) -> str:
    """A library message in the page's words: each temporary path in ``names`` (path -> upload name) becomes the
    upload's name, and command-line flags become the page's fields; backquoted commands are dropped."""
    for path, name in sorted(names.items(), key=lambda item: -len(item[0])):
        message = message.replace(path, name)
    for flag, words in PAGE_WORDS:
        message = message.replace(flag, words)
    return re.sub(r"`beatmap [^`]*`", "the Import page", message)


#: What a mapping file calls a setting, and where the Import page's mapping wizard has it (patterns, in order).
WIZARD_WORDS: tuple[tuple[str, str], ...] = (
    (
        r"add \[(-?[\d.]+), (-?[\d.]+)\] to reject under \[coordinates\] in the mapping, or set\s+"
        r"reject_pileups = true there\.",
        r"add \1,\2 to 'Placeholder points to reject' in the mapping above, or tick 'Reject points that hold "
        r"many rows'.",
    ),
    (r"\(reject_pileups in the mapping\)", "(the mapping rejects points that hold many rows)"),
    (
        r"set zero_pad under \[reported_beat\] in the mapping",
        "set 'Pad reported beats with zeros' (under 'More columns') in the mapping above",
    ),
    (r"remove time_format to read ISO times", "empty the 'Time format' box to read ISO times"),
    (r"set time_format = ('[^']*') under \[source\]", r"put \1 in the 'Time format' box"),
    (
        r"set time_format under \[source\] to the format the column uses",
        "put the format the column uses in the 'Time format' box",
    ),
    (r"\(no time_format is given, so ISO is expected\)", "(the 'Time format' box is empty, so ISO is expected)"),
    (r"\(time_format\)", "(the 'Time format' box)"),
)


def in_wizard_words(message: str) -> str:
    """A library message about a mapping built in the Import page's wizard: each mapping-file setting it names
    (``zero_pad under [reported_beat]``, ``time_format``, a point to reject) becomes the wizard's field for it."""
    for pattern, words in WIZARD_WORDS:
        message = re.sub(pattern, words, message)
    return message
